#include "runtime/emu_driver.h"

#include <filesystem>

#include "importers/import.h"
#include "numeric/emulator.h"
#include "numeric/precision.h"
#include "runtime/batch_validation.h"

namespace fpgaserve::runtime {

namespace {

class EmuDriver : public BoardDriver {
 public:
  EmuDriver(firmware::BundleMetadata metadata, numeric::QuantizedModel model)
      : metadata_(std::move(metadata)), model_(std::move(model)) {}

  std::string kind() const override { return "emu"; }

  Result<BatchResult> Infer(const numeric::RawBatch& inputs) override {
    RETURN_IF_ERROR(ValidateInputBatch(inputs, metadata_));
    ASSIGN_OR_RETURN(numeric::EmulationResult emu, model_.RunRaw({inputs}));
    BatchResult r;
    r.outputs = std::move(emu.raw_outputs[0]);
    // The emulator has no clock: report what the pipeline would take at full throughput.
    const auto latency = static_cast<std::uint64_t>(metadata_.latency_cycles);
    r.latency_cycles.assign(inputs.rows, latency);
    if (inputs.rows > 0) {
      r.total_cycles =
          latency + (inputs.rows - 1) * static_cast<std::uint64_t>(metadata_.initiation_interval);
    }
    return r;
  }

 private:
  firmware::BundleMetadata metadata_;
  numeric::QuantizedModel model_;
};

}  // namespace

Result<std::unique_ptr<BoardDriver>> OpenEmuDriver(const std::string& bundle_dir,
                                                   const firmware::BundleMetadata& metadata) {
  namespace fs = std::filesystem;
  RETURN_IF_ERROR(firmware::VerifyBundleFile(bundle_dir, metadata, firmware::kModelFile));
  RETURN_IF_ERROR(firmware::VerifyBundleFile(bundle_dir, metadata, firmware::kPrecisionFile));
  const std::string model_path = (fs::path(bundle_dir) / firmware::kModelFile).string();
  const std::string precision_path = (fs::path(bundle_dir) / firmware::kPrecisionFile).string();
  ASSIGN_OR_RETURN(model::Graph graph, importers::ImportModel(model_path));
  ASSIGN_OR_RETURN(numeric::PrecisionConfig precision,
                   numeric::ResolvePrecision(graph, {"", precision_path}, nullptr));
  if (!(precision.input == metadata.input_format)) {
    return InvalidArgument(precision_path + ": input format " + precision.input.ToString() +
                           " differs from " + metadata.input_format.ToString() + " in " +
                           firmware::kMetadataFile);
  }
  ASSIGN_OR_RETURN(numeric::QuantizedModel model, numeric::QuantizedModel::Build(graph, precision));
  if (graph.inputs.size() != 1 || graph.outputs.size() != 1 ||
      model::ElementCount(graph.inputs[0].shape) != metadata.n_inputs ||
      model::ElementCount(graph.outputs[0].shape) != metadata.n_outputs) {
    return InvalidArgument(model_path + ": its inputs/outputs differ from " +
                           firmware::kMetadataFile + " (n_inputs " +
                           std::to_string(metadata.n_inputs) + ", n_outputs " +
                           std::to_string(metadata.n_outputs) + ")");
  }
  const int last = graph.ProducerOf(graph.outputs[0].name);
  const numeric::NumberFormat out_format =
      last < 0 ? precision.input : precision.layers.at(graph.layers[last].name).result;
  if (!(out_format == metadata.output_format)) {
    return InvalidArgument(precision_path + ": output format " + out_format.ToString() +
                           " differs from " + metadata.output_format.ToString() + " in " +
                           firmware::kMetadataFile);
  }
  return std::unique_ptr<BoardDriver>(new EmuDriver(metadata, std::move(model)));
}

}  // namespace fpgaserve::runtime
