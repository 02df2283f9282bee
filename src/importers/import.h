// The one entry point that turns a model file into a finalized, verified IR Graph.
// Per-format importers live beside it; each returns the same IR and fails with one clear error.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"
#include "importers/format.h"
#include "model/graph.h"

namespace fpgaserve::importers {

struct ImportOptions {
  std::optional<ModelFormat> format;  // overrides content detection
  // Keras: the HDF5 weights file for an architecture JSON. When empty, <stem>.h5 and
  // <stem>.weights.h5 beside the JSON are tried.
  std::string weights_path;
  std::uint64_t max_file_bytes = 1ULL << 30;
  std::int64_t max_layers = 10'000;
  std::int64_t max_parameters = 100'000'000;
};

// Reads, imports, finalizes (model::Finalize) and checks the limits. Errors start with the path.
Result<model::Graph> ImportModel(const std::string& path, const ImportOptions& options = {});

// Per-format importers. They return a graph that has not been finalized yet; ImportModel does it.
// `origin` names the source in error messages (usually the path).
Result<model::Graph> ImportOnnx(std::string_view bytes, const std::string& origin);
Result<model::Graph> ImportKeras(const std::string& path, const std::string& weights_path,
                                 const ImportOptions& options);
Result<model::Graph> ImportNeuralbond(std::string_view json_text, const std::string& origin);
Result<model::Graph> ImportNative(std::string_view json_text, const std::string& origin);

// Exporters. Neuralbond accepts chains of Dense layers each followed by at most one activation
// (ReLU, Linear, Softmax as the last layer); anything else fails naming the layer.
Result<std::string> ExportNeuralbond(const model::Graph& graph);
std::string ExportNative(const model::Graph& graph);

}  // namespace fpgaserve::importers
