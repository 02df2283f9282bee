// The quantized emulator: runs the IR under a PrecisionConfig with exactly the hardware's
// arithmetic, bit for bit. It is the `emu` board's engine and the oracle of RTL co-simulation.
#pragma once

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

 private:
  model::Graph graph_;
  PrecisionConfig precision_;
  std::vector<std::shared_ptr<const LayerPlan>> plans_;
};

}  // namespace fpgaserve::numeric
