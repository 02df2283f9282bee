// The IR verifier: the invariants every later stage relies on, checked with clear errors.
// Empty graphs, dangling or duplicate tensors, cycles, shape mismatches and NaN/Inf parameters fail.
#pragma once

#include "core/status.h"
#include "model/graph.h"

namespace fpgaserve::model {

// Checks a graph; layers must be topologically sorted (a cycle or a use-before-definition fails).
Status Verify(const Graph& graph);

}  // namespace fpgaserve::model
