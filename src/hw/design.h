// A generated hardware design: the Verilog of the inference core plus the facts every later stage
// needs (port layout, element formats, latency, initiation interval, per-layer schedule).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/status.h"
#include "model/graph.h"
#include "numeric/fixed_format.h"
#include "numeric/number_format.h"
#include "numeric/precision.h"

namespace fpgaserve::hw {

// The core's top module is always `fpgaserve_core` with these ports (docs/hardware.md):
//   input  clk, rst                       synchronous, active-high reset
//   input  in_valid;  output in_ready;    input  [n_in*in_width-1:0]  in_data
//   output out_valid; input  out_ready;   output [n_out*out_width-1:0] out_data
//   output [63:0] out_cycles              cycles since this inference's input handshake (stamped by
//                                         a free-running counter): the latency when read at the
//                                         output handshake of an unstalled output
//   output [63:0] cycle_count             the free-running counter
// Element i of a vector port occupies bits [i*width +: width], two's complement (or unsigned for
// ufixed formats) raw values of a fixed element format, or the bit pattern of a float format. A transfer happens when valid && ready.
inline constexpr const char* kCoreModule = "fpgaserve_core";

struct LayerSchedule {
  std::string name;
  std::string op;          // "Dense", "ReLU", "Softmax", ...
  int reuse = 1;           // effective reuse factor of this layer
  int latency = 0;         // cycles from accepting an input to its output register holding it
  int initiation_interval = 1;
  std::int64_t multipliers = 0;
};

struct VerilogFile {
  std::string name;  // "fpgaserve_core.v"
  std::string text;
};

struct HwDesign {
  std::vector<VerilogFile> files;  // all modules; `fpgaserve_core` is the top
  int n_in = 0;
  int n_out = 0;
  numeric::NumberFormat in_format;   // every input element (fixed raw or float bits)
  numeric::NumberFormat out_format;  // every output element
  int in_width() const { return in_format.width(); }
  int out_width() const { return out_format.width(); }
  int latency_cycles = 0;       // input handshake to output valid, when the output is not stalled
  int initiation_interval = 1;  // cycles between accepted inputs at full throughput
  std::vector<LayerSchedule> layers;
};

struct HwOptions {
  HwOptions() = default;
  HwOptions(int uniform_reuse) : reuse(uniform_reuse) {}  // NOLINT: {R} reads as "reuse R"
  int reuse = 1;  // requested reuse factor R >= 1 for every Dense layer (docs/hardware.md)
  // Per-layer overrides (layer name -> R), e.g. from `--reuse auto`; unknown names are an error.
  std::map<std::string, int> layer_reuse;
};

// Generates the design for a finalized graph under a fixed-point precision configuration.
// Fails (UNIMPLEMENTED) on float formats (F8), accumulators narrower than the exact default,
// graphs that are not a single chain, multiple inputs/outputs; INVALID_ARGUMENT on a reuse factor
// of 0 or larger than every layer.
Result<HwDesign> GenerateDesign(const model::Graph& graph, const numeric::PrecisionConfig& precision,
                                const HwOptions& options);

}  // namespace fpgaserve::hw
