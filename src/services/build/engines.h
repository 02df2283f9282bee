// Build engines besides our own compiler: adapters that export a model to another tool's input
// format and run that tool when it is on PATH.
//   bondmachine: the model as BondMachine neuralbond JSON (PROTOCOLS.md) plus the `bondmachine`
//                tool's command line for the board; runs `bondmachine` (and `make` in its
//                project directory is the tool's own business).
//   hls4ml:      the model as an hls4ml project config (YAML: Backend, Part, ClockPeriod,
//                IOType, HLSConfig.Model.{Precision,ReuseFactor}) plus the weights as a Keras-style
//                JSON + weights, and runs `hls4ml convert -c config.yml` then `hls4ml build -p DIR`.
// When the tool is missing the adapter fails with FAILED_PRECONDITION naming the executable
// and what provides it; a tool that exits non-zero gives INTERNAL with its last output lines.
// Nothing is run through a shell.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "boards/board.h"
#include "core/status.h"
#include "model/graph.h"

namespace fpgaserve::build {

struct EngineRequest {
  const model::Graph* graph = nullptr;  // finalized
  boards::Board board;
  std::string precision;  // our spec ("fixed<16,6>", "float32", empty: default)
  int reuse = 1;
  std::string interface;  // stream|axis|axilite; empty: the board's default
  std::string work_dir;   // an empty directory the engine owns
  std::string out_dir;    // where the engine leaves its artifacts (created)
  std::chrono::seconds timeout{std::chrono::hours(2)};
  const std::atomic<bool>* cancel = nullptr;  // set: stop the tool (CANCELLED)
  std::function<void(const std::string& line)> log;  // one line per call (the build log)
};

struct EngineResult {
  std::vector<std::string> artifacts;  // paths relative to out_dir, sorted
};

// The names accepted by SubmitBuild.engine besides "native".
std::vector<std::string> ExternalEngines();  // {"bondmachine", "hls4ml"}

// OK when engine `name`'s program is on PATH; FAILED_PRECONDITION naming what is missing (the
// build server checks at submit time); INVALID_ARGUMENT for an unknown name.
Status CheckEngineAvailable(const std::string& name);

// Runs engine `name` ("bondmachine" | "hls4ml"); INVALID_ARGUMENT for another name.
Result<EngineResult> RunExternalEngine(const std::string& name, const EngineRequest& request);

// The exporters on their own (tested without the tools).
Result<std::string> ExportNeuralbondJson(const model::Graph& graph);  // BondMachine's model format
// hls4ml's config.yml for the request (precision mapped to ap_fixed<W,I>/float, reuse factor,
// io_parallel/io_stream from the interface, the board's part and clock).
Result<std::string> ExportHls4mlConfig(const EngineRequest& request, const std::string& model_json_path,
                                       const std::string& weights_path, const std::string& output_dir);

}  // namespace fpgaserve::build
