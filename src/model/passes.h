// Graph passes, each with one purpose; Finalize runs the standard pipeline every importer ends with.
// All passes are pure functions of the graph and fail with a Status naming the layer and the problem.
#pragma once

#include <map>
#include <string>

#include "core/status.h"
#include "model/graph.h"

namespace fpgaserve::model {

// Orders layers so every layer comes after the producers of its inputs; fails on a cycle,
// naming the layers involved.
Status SortTopologically(Graph& graph);

// Renames a tensor everywhere: graph inputs/outputs, the producing layer's output and every use
// (used when a no-op layer is dropped).
void RenameTensor(Graph& graph, const std::string& from, const std::string& to);

// Merges Scale layers into an adjacent Dense when exact: a Scale whose single consumer is a Dense
// (W' = W diag(s), b' = b + W t) or a Scale that is the single consumer of a Dense
// (W' = diag(s) W, b' = s*b + t). Also merges consecutive Scales. Requires sorted layers.
Status FoldAffineLayers(Graph& graph);

// Computes per-sample shapes of every tensor; fills graph.outputs[].shape.
Result<std::map<std::string, Shape>> InferShapes(Graph& graph);

// Runs SortTopologically, FoldAffineLayers, InferShapes and Verify.
Status Finalize(Graph& graph);

}  // namespace fpgaserve::model
