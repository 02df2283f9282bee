// Precision configuration: which number format each variable of each layer uses (hls4ml-style
// weight / bias / accum / result), from one spec, a JSON/YAML file, or `auto` from calibration data.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "model/graph.h"
#include "model/reference_evaluator.h"
#include "numeric/number_format.h"

namespace fpgaserve::numeric {

enum class SoftmaxMode {
  kTable,   // exp table + sum + reciprocal table (fixed) / exp, sum, divide (float)
  kArgmax,  // one-hot of the largest input: no exp hardware at all, same predicted class
};

struct LayerPrecision {
  NumberFormat weight;  // Dense weights, Scale scales, LeakyReLU alpha
  NumberFormat bias;    // Dense biases, Scale shifts
  NumberFormat accum;   // the multiply-accumulate register
  NumberFormat result;  // the layer's output tensor
  int table_size = 1024;  // fixed-point sigmoid/tanh/exp/reciprocal tables
};

struct PrecisionConfig {
  std::string spec;             // what the user asked for: "fixed<16,6>", "auto", a file path
  NumberFormat input;           // graph inputs are rounded into this format
  std::map<std::string, LayerPrecision> layers;  // one entry per layer of the graph
  SoftmaxMode softmax = SoftmaxMode::kTable;
};

// Per-tensor and per-layer value ranges seen on calibration data (float64 evaluation).
struct CalibrationRanges {
  double input_max_abs = 0;
  std::map<std::string, double> accum_max_abs;   // per layer: largest |pre-rounding sum|
  std::map<std::string, double> result_max_abs;  // per layer: largest |output|
};

Result<CalibrationRanges> Calibrate(const model::Graph& graph, const model::SampleBatch& data);

// A request as the CLI receives it: --precision SPEC (a format or "auto"/"auto<W>") or
// --precision-config FILE (JSON or YAML).
struct PrecisionRequest {
  std::string spec;
  std::string config_file;
};

// Resolves a request into a full configuration for `graph`. `calibration` is required for auto
// (anywhere in the request). Errors: malformed specs, unknown layers in a file, bad table sizes.
Result<PrecisionConfig> ResolvePrecision(const model::Graph& graph, const PrecisionRequest& request,
                                         const CalibrationRanges* calibration);

// Integer bits a signed fixed format needs so that max_abs is representable: floor(log2 m) + 2.
int SignedIntegerBitsFor(double max_abs);

// The accumulator that can hold any sum of n_terms products of `x` and `w` values plus a bias
// of format `b` without overflow and without rounding (capped at 64 bits by dropping fraction
// bits, which then truncate).
FixedFormat NonOverflowingAccum(const FixedFormat& x, const FixedFormat& w, const FixedFormat& b,
                                std::int64_t n_terms);

}  // namespace fpgaserve::numeric
