// The float64 reference forward pass: the ground truth every quantized and hardware result is
// compared against. Batched: one call evaluates many samples.
#pragma once

#include <cstdint>
#include <vector>

#include "core/status.h"
#include "model/graph.h"

namespace fpgaserve::model {

// A batch of samples of one tensor: rows = batch size, features = elements per sample.
struct SampleBatch {
  std::size_t rows = 0;
  std::size_t features = 0;
  std::vector<double> values;  // row-major rows * features

  double at(std::size_t r, std::size_t f) const { return values[r * features + f]; }
};

// Evaluates a finalized graph: one SampleBatch per graph input (same row count), returns one per
// graph output, in graph order.
Result<std::vector<SampleBatch>> EvaluateReference(const Graph& graph,
                                                   const std::vector<SampleBatch>& inputs);

// Convenience for single-input, single-output graphs.
Result<SampleBatch> EvaluateReference(const Graph& graph, const SampleBatch& input);

// Index of the largest value in each row (first one on ties).
std::vector<std::int64_t> ArgmaxRows(const SampleBatch& batch);

// The class predicted for each row: argmax over the outputs, or a 0.5 threshold when there is a
// single output (a sigmoid binary classifier).
std::vector<std::int64_t> PredictClasses(const SampleBatch& out);

}  // namespace fpgaserve::model
