// Shape propagation shared by the verifier and InferShapes: per-sample shapes of every tensor.
// Internal to src/model; other modules use InferShapes (passes.h) or Verify (verify.h).
#pragma once

#include <map>
#include <string>

#include "core/status.h"
#include "model/graph.h"

namespace fpgaserve::model {

// Walks sorted layers from the graph inputs; fails on undefined tensors, duplicate definitions,
// feature-count mismatches or parameter sizes that disagree with the incoming tensor.
Result<std::map<std::string, Shape>> ComputeShapes(const Graph& graph);

// "layer 'fc1' (Dense)" — the prefix of every layer-level error message.
std::string DescribeLayer(const Layer& layer);

}  // namespace fpgaserve::model
