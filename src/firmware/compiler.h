// The compile driver: model graph -> precision -> hardware design -> board artifact -> bundle.
// Everything `fpgaserve compile` does, as one library call that tests and services share.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <string>

#include "core/status.h"
#include "firmware/bundle.h"
#include "model/graph.h"
#include "model/reference_evaluator.h"
#include "numeric/precision.h"
#include "toolchain/verilator_build.h"

namespace fpgaserve::firmware {

inline constexpr const char* kDefaultPrecision = "fixed<16,6>";

struct CompileOptions {
  std::string board = "sim";  // an id of the board catalog (fpgaserve boards)
  // Empty spec and file: kDefaultPrecision.
  numeric::PrecisionRequest precision;
  // Calibration data; required when the precision uses auto.
  const model::SampleBatch* calibration = nullptr;
  int reuse = 1;                     // >= 1, or 0 = auto (sized to the board)
  std::string interface;             // stream | axis | axilite; empty: the board's default
  int testbench_vectors = 200;       // random vectors in tb/ (plus the edge vectors)
  unsigned testbench_seed = 1;
  toolchain::SimBuildOptions sim;
  std::chrono::seconds stage_timeout{std::chrono::minutes(30)};  // each synthesis tool run
  // When set and it becomes true, the running tool is killed and the compile fails with CANCELLED.
  const std::atomic<bool>* cancel = nullptr;
  // Called as each stage starts: "generate", "verilator", then the board flow's stages
  // ("synth", "place_route", "pack", ...). From the compiling thread or the simulator build's.
  std::function<void(const std::string& stage)> on_stage;
};

struct CompileResult {
  BundleMetadata metadata;
  bool sim_cache_hit = false;
};

// Checks board, interface, reuse factor and testbench size without touching the model, so the
// command line can reject bad flags before the (slower) import.
Status ValidateCompileOptions(const CompileOptions& options);

// Compiles a finalized graph into a bundle in `out_dir` (created when missing). Refuses an
// existing non-empty directory that is not a bundle; an existing bundle is replaced, and its
// metadata.json is removed first so a failed recompile never leaves a stale-but-valid bundle.
// Bad options and models the hardware cannot implement fail with INVALID_ARGUMENT/UNIMPLEMENTED;
// a tool failure (Verilator) with INTERNAL naming the build log.
Result<CompileResult> CompileFirmware(const model::Graph& graph, const std::string& out_dir,
                                      const CompileOptions& options);

}  // namespace fpgaserve::firmware
