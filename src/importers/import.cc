#include "importers/import.h"

#include "core/file_io.h"
#include "model/passes.h"

namespace fpgaserve::importers {

Result<model::Graph> ImportModel(const std::string& path, const ImportOptions& options) {
  ModelFormat format;
  if (options.format) {
    format = *options.format;
  } else {
    ASSIGN_OR_RETURN(format, DetectModelFormat(path));
  }
  Result<model::Graph> imported = InvalidArgument("unreachable");
  if (format == ModelFormat::kKeras) {
    imported = ImportKeras(path, options.weights_path, options);
  } else {
    ASSIGN_OR_RETURN(std::string bytes, ReadFile(path, options.max_file_bytes));
    switch (format) {
      case ModelFormat::kOnnx: imported = ImportOnnx(bytes, path); break;
      case ModelFormat::kNeuralbond: imported = ImportNeuralbond(bytes, path); break;
      case ModelFormat::kNative: imported = ImportNative(bytes, path); break;
      case ModelFormat::kKeras: break;
    }
  }
  if (!imported.ok()) return imported.status();
  model::Graph graph = std::move(imported).value();
  if (static_cast<std::int64_t>(graph.layers.size()) > options.max_layers) {
    return ResourceExhausted(path + ": " + std::to_string(graph.layers.size()) +
                             " layers, more than the limit of " + std::to_string(options.max_layers));
  }
  if (graph.ParameterCount() > options.max_parameters) {
    return ResourceExhausted(path + ": " + std::to_string(graph.ParameterCount()) +
                             " parameters, more than the limit of " +
                             std::to_string(options.max_parameters));
  }
  if (Status st = model::Finalize(graph); !st.ok()) return st.WithContext(path);
  return graph;
}

}  // namespace fpgaserve::importers
