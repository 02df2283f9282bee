// Per-layer Verilog modules of the inference core (internal to src/hw): affine layers with a
// reuse factor, elementwise activations, table softmax. Each module speaks valid/ready + a tag.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"
#include "model/graph.h"
#include "numeric/number_format.h"
#include "numeric/precision.h"

namespace fpgaserve::hw {

// Every layer module has the ports
//   clk, rst, in_valid, in_ready, in_data[n_in*in.width], in_tag[kTagBits-1:0],
//   out_valid, out_ready, out_data[n_out*result.width], out_tag[kTagBits-1:0]
// and carries the tag (the low bits of the input's cycle stamp) alongside its data. The core
// subtracts it modulo 2^kTagBits, so measured latencies are exact below 2^32 cycles; a wider tag
// would only cost flip-flops in every stage (7 stages x 32 FFs on the banknote iCE40 build).
inline constexpr int kTagBits = 32;
inline const std::string kTagRange = "31:0";

struct LayerContext {
  std::string module;
  const model::Layer* layer = nullptr;
  numeric::NumberFormat in;  // the incoming elements (the previous layer's result format)
  int n_in = 0;
  numeric::LayerPrecision precision;  // one family: all fixed, or all float (float_layers.h)
  int n_out = 0;
  int reuse = 1;  // requested; the emitter reports the effective one
  // Float layers: the slot period (their II) to build for; 0 asks for the layer's smallest. The
  // core asks for its own II when a layer's does not divide it (float_layers.cc).
  int period = 0;
  numeric::SoftmaxMode softmax = numeric::SoftmaxMode::kTable;
};

struct EmittedLayer {
  std::string text;
  int latency = 1;
  int initiation_interval = 1;
  int reuse = 1;  // the effective reuse factor (affine layers; 1 otherwise)
  std::int64_t multipliers = 0;
  // Further modules the layer instantiates (float units), one file each: {file name, text}.
  std::vector<std::pair<std::string, std::string>> unit_files;
};

Result<EmittedLayer> EmitAffineLayer(const LayerContext& ctx);
Result<EmittedLayer> EmitActivationLayer(const LayerContext& ctx);

}  // namespace fpgaserve::hw
