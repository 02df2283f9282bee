// The quantized emulator: runs the IR under a PrecisionConfig with exactly the hardware's
// arithmetic, bit for bit. It is the `emu` board's engine and the oracle of RTL co-simulation.
#pragma once

#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "model/graph.h"
#include "model/reference_evaluator.h"
#include "numeric/number_format.h"
#include "numeric/precision.h"

namespace fpgaserve::numeric {

// Raw values of one tensor for a batch: rows x features words in the tensor's NumberFormat.
struct RawBatch {
  std::size_t rows = 0;
  std::size_t features = 0;
  std::vector<RawValue> values;
};

// FixedFromDouble(x, to), bit for bit, with the format's constants resolved once (the emulator's
// input conversion). A finite x whose scaled value y = x · 2^F (F = to.fraction_bits()) is exact
// and below 2^52 in magnitude is rounded on doubles: floor(y) is an exact integer, floor(y) + 1/2
// is exact, so comparing y with it decides TRN/RND/RND_CONV exactly; in-range results are
// returned directly. Everything else (NaN, Inf, huge or underflowing values, overflow) goes
// through FixedFromDouble itself. A randomized test compares both on millions of values.
class FixedFromDoubleConverter {
 public:
  FixedFromDoubleConverter() = default;
  explicit FixedFromDoubleConverter(const FixedFormat& to);

  FixedValue operator()(double x) const {
    if (fast_) {
      const double y = x * scale_;
      const double ay = std::fabs(y);
      // ay < 2^52 also rejects NaN and Inf; ay >= min_exact_ rules out a lossy underflow.
      if (ay < 0x1p52 && ay >= min_exact_) {
        auto q = static_cast<std::int64_t>(y);  // toward zero; exact integer in a double
        if (static_cast<double>(q) > y) --q;  // floor
        if (to_.quantization != Quantization::kTrn) {
          // Branch-free (the fraction of input data is unpredictable).
          const double mid = static_cast<double>(q) + 0.5;  // exact: |q| < 2^52
          const bool tie_up = to_.quantization == Quantization::kRnd || (q & 1) != 0;
          q += static_cast<int>(y > mid) | (static_cast<int>(y == mid) & static_cast<int>(tie_up));
        }
        if (q >= lo_ && q <= hi_) return {q, false};
      }
    }
    return FixedFromDouble(x, to_);
  }

 private:
  FixedFormat to_;
  bool fast_ = false;     // 2^F is a normal double
  double scale_ = 1;      // 2^F
  double min_exact_ = 0;  // F < 0: smallest |y| known not to have lost bits (2^-1022)
  std::int64_t lo_ = 0, hi_ = 0;
};

struct EmulationResult {
  std::vector<RawBatch> raw_outputs;             // in the formats of output_formats
  std::vector<NumberFormat> output_formats;
  std::vector<model::SampleBatch> outputs;       // the same values as exact doubles
  std::map<std::string, std::int64_t> overflows;  // per layer ("input" for the inputs); >0 only
};

class QuantizedModel {
 public:
  // Quantizes the parameters and prepares every layer's datapath. The graph must be finalized.
  // Fast paths (64-bit integer MACs when provably exact, host float32 arithmetic when every
  // format is float32) give identical bits; tests turn them off to prove it.
  static Result<QuantizedModel> Build(const model::Graph& graph, const PrecisionConfig& precision,
                                      bool allow_fast_paths = true);

  // Runs a batch given as doubles (rounded into the input format first).
  Result<EmulationResult> Run(const std::vector<model::SampleBatch>& inputs) const;
  Result<EmulationResult> Run(const model::SampleBatch& input) const;
  // Runs a batch already in the input format (as hardware receives it).
  Result<EmulationResult> RunRaw(const std::vector<RawBatch>& inputs) const;

  const model::Graph& graph() const { return graph_; }
  const PrecisionConfig& precision() const { return precision_; }

  struct LayerPlan;  // per-layer quantized parameters and datapath choice (emulator.cc)
  struct Program;    // tensors resolved to buffer slots, input/output conversions (emulator.cc)

 private:
  model::Graph graph_;
  PrecisionConfig precision_;
  std::vector<std::shared_ptr<const LayerPlan>> plans_;
  std::shared_ptr<const Program> program_;
};

}  // namespace fpgaserve::numeric
