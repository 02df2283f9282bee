// Small hand-built graphs shared by the model tests.
// Weights are chosen so that expected outputs can be computed by hand.
#pragma once

#include "model/graph.h"

namespace fpgaserve::model::testing {

// input[2] -> Dense(2->3) -> ReLU -> Dense(3->2) -> Softmax
inline Graph TwoLayerMlp() {
  Graph g;
  g.name = "mlp";
  g.inputs.push_back({"x", {2}});
  DenseParams d1{2, 3, {1, 0, 0, 1, 1, -1}, {0, 0, 0.5}};
  DenseParams d2{3, 2, {1, 1, 0, 0, 0, 1}, {0, 0}};
  g.layers.push_back(MakeDense("fc1", "x", "h", d1));
  g.layers.push_back(MakeActivation("relu", "h", "hr", ActivationKind::kReLU));
  g.layers.push_back(MakeDense("fc2", "hr", "logits", d2));
  g.layers.push_back(MakeActivation("softmax", "logits", "probs", ActivationKind::kSoftmax));
  g.outputs.push_back({"probs", {}});
  return g;
}

}  // namespace fpgaserve::model::testing
