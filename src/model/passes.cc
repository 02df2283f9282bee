#include "model/passes.h"

#include <algorithm>
#include <deque>
#include <set>

#include "core/text.h"
#include "model/shapes.h"
#include "model/verify.h"

namespace fpgaserve::model {

std::string DescribeLayer(const Layer& layer) {
  return "layer '" + layer.name + "' (" + layer.OpName() + ")";
}

Result<std::map<std::string, Shape>> ComputeShapes(const Graph& graph) {
  std::map<std::string, Shape> shapes;
  for (const auto& in : graph.inputs) {
    if (in.name.empty()) return InvalidArgument("graph input with an empty name");
    if (shapes.count(in.name)) return InvalidArgument("graph input '" + in.name + "' is declared twice");
    if (in.shape.empty() || ElementCount(in.shape) <= 0) {
      return InvalidArgument("graph input '" + in.name + "' has shape " + ShapeToString(in.shape) +
                             "; expected positive per-sample dimensions");
    }
    shapes[in.name] = in.shape;
  }
  for (const auto& layer : graph.layers) {
    const std::string who = DescribeLayer(layer);
    if (layer.inputs.size() != 1 || layer.outputs.size() != 1) {
      return InvalidArgument(who + ": has " + std::to_string(layer.inputs.size()) + " inputs and " +
                             std::to_string(layer.outputs.size()) +
                             " outputs; expected exactly one of each");
    }
    auto it = shapes.find(layer.inputs[0]);
    if (it == shapes.end()) {
      return InvalidArgument(who + ": input tensor '" + layer.inputs[0] +
                             "' is not defined before this layer (missing producer or a cycle)");
    }
    const Shape in_shape = it->second;
    const std::int64_t n = ElementCount(in_shape);
    Shape out_shape;
    switch (layer.kind) {
      case LayerKind::kDense: {
        if (!std::holds_alternative<DenseParams>(layer.params)) {
          return Internal(who + ": parameters are not Dense parameters");
        }
        const auto& d = layer.dense();
        if (d.in_features <= 0 || d.out_features <= 0) {
          return InvalidArgument(who + ": has " + std::to_string(d.in_features) + " inputs and " +
                                 std::to_string(d.out_features) + " units; expected both > 0");
        }
        if (n != d.in_features) {
          return InvalidArgument(who + ": input '" + layer.inputs[0] + "' has " + std::to_string(n) +
                                 " features (shape " + ShapeToString(in_shape) + "); expected " +
                                 std::to_string(d.in_features) + " (the weights' input width)");
        }
        out_shape = {d.out_features};
        break;
      }
      case LayerKind::kScale: {
        if (!std::holds_alternative<ScaleParams>(layer.params)) {
          return Internal(who + ": parameters are not Scale parameters");
        }
        const auto& s = layer.scale();
        if (static_cast<std::int64_t>(s.scale.size()) != n ||
            static_cast<std::int64_t>(s.shift.size()) != n) {
          return InvalidArgument(who + ": has " + std::to_string(s.scale.size()) + " scales and " +
                                 std::to_string(s.shift.size()) + " shifts; expected " +
                                 std::to_string(n) + " (one per feature of '" + layer.inputs[0] +
                                 "')");
        }
        out_shape = in_shape;
        break;
      }
      case LayerKind::kActivation:
        if (!std::holds_alternative<ActivationParams>(layer.params)) {
          return Internal(who + ": parameters are not activation parameters");
        }
        out_shape = in_shape;
        break;
      default:
        return Unimplemented(who + ": unsupported op; supported: Dense, Scale, Activation");
    }
    const std::string& out = layer.outputs[0];
    if (out.empty()) return InvalidArgument(who + ": output tensor has an empty name");
    if (shapes.count(out)) {
      return InvalidArgument(who + ": output tensor '" + out +
                             "' is already defined (by a graph input or another layer)");
    }
    shapes[out] = out_shape;
  }
  return shapes;
}

Status SortTopologically(Graph& graph) {
  const std::size_t n = graph.layers.size();
  std::map<std::string, std::size_t> producer;
  for (std::size_t i = 0; i < n; ++i) {
    for (const auto& o : graph.layers[i].outputs) {
      if (!producer.emplace(o, i).second) {
        return InvalidArgument("tensor '" + o + "' is produced by both layer '" +
                               graph.layers[producer[o]].name + "' and layer '" +
                               graph.layers[i].name + "'");
      }
    }
  }
  std::vector<int> pending(n, 0);
  std::vector<std::vector<std::size_t>> users(n);
  for (std::size_t i = 0; i < n; ++i) {
    for (const auto& in : graph.layers[i].inputs) {
      auto it = producer.find(in);
      if (it == producer.end()) continue;  // graph input or undefined: the verifier reports it
      ++pending[i];
      users[it->second].push_back(i);
    }
  }
  // Kahn's algorithm; ties keep the original order so sorting a sorted graph changes nothing.
  std::set<std::size_t> ready;
  for (std::size_t i = 0; i < n; ++i) {
    if (pending[i] == 0) ready.insert(i);
  }
  std::vector<std::size_t> order;
  while (!ready.empty()) {
    std::size_t i = *ready.begin();
    ready.erase(ready.begin());
    order.push_back(i);
    for (auto u : users[i]) {
      if (--pending[u] == 0) ready.insert(u);
    }
  }
  if (order.size() != n) {
    std::vector<std::string> stuck;
    for (std::size_t i = 0; i < n; ++i) {
      if (pending[i] > 0) stuck.push_back("'" + graph.layers[i].name + "'");
    }
    return InvalidArgument("the graph has a cycle through layers " + Join(stuck, ", "));
  }
  std::vector<Layer> sorted;
  sorted.reserve(n);
  for (auto i : order) sorted.push_back(std::move(graph.layers[i]));
  graph.layers = std::move(sorted);
  return Status::Ok();
}

void RenameTensor(Graph& graph, const std::string& from, const std::string& to) {
  for (auto& l : graph.layers) {
    for (auto& t : l.inputs) {
      if (t == from) t = to;
    }
    for (auto& t : l.outputs) {
      if (t == from) t = to;
    }
  }
  for (auto& t : graph.inputs) {
    if (t.name == from) t.name = to;
  }
  for (auto& t : graph.outputs) {
    if (t.name == from) t.name = to;
  }
}

namespace {

bool IsGraphOutput(const Graph& g, const std::string& t) {
  return std::any_of(g.outputs.begin(), g.outputs.end(),
                     [&](const TensorSpec& s) { return s.name == t; });
}

// A tensor that only `consumer` reads and that is not a graph output can be fused away.
bool PrivateEdge(const Graph& g, const std::string& tensor, int consumer) {
  auto users = g.ConsumersOf(tensor);
  return users.size() == 1 && users[0] == consumer && !IsGraphOutput(g, tensor);
}

// Tries one fold around Scale layer `si`; returns true if the graph changed.
bool FoldOne(Graph& g, int si) {
  Layer& s = g.layers[si];
  const auto& sp = s.scale();
  const std::size_t n = sp.scale.size();
  if (sp.shift.size() != n || s.inputs.size() != 1 || s.outputs.size() != 1) return false;

  // Dense -> Scale: scale rows and bias of the Dense.
  int pi = g.ProducerOf(s.inputs[0]);
  if (pi >= 0 && PrivateEdge(g, s.inputs[0], si)) {
    Layer& p = g.layers[pi];
    if (p.kind == LayerKind::kDense && static_cast<std::int64_t>(n) == p.dense().out_features) {
      auto& d = p.dense();
      for (std::int64_t o = 0; o < d.out_features; ++o) {
        for (std::int64_t i = 0; i < d.in_features; ++i) d.weights[o * d.in_features + i] *= sp.scale[o];
        d.bias[o] = d.bias[o] * sp.scale[o] + sp.shift[o];
      }
      p.outputs[0] = s.outputs[0];
      g.layers.erase(g.layers.begin() + si);
      return true;
    }
    if (p.kind == LayerKind::kScale && p.scale().scale.size() == n) {
      auto& q = p.scale();
      for (std::size_t k = 0; k < n; ++k) {
        q.shift[k] = q.shift[k] * sp.scale[k] + sp.shift[k];
        q.scale[k] *= sp.scale[k];
      }
      p.outputs[0] = s.outputs[0];
      g.layers.erase(g.layers.begin() + si);
      return true;
    }
  }
  // Scale -> Dense: scale columns and shift the bias of the Dense.
  auto users = g.ConsumersOf(s.outputs[0]);
  if (users.size() == 1 && PrivateEdge(g, s.outputs[0], users[0])) {
    Layer& c = g.layers[users[0]];
    if (c.kind == LayerKind::kDense && static_cast<std::int64_t>(n) == c.dense().in_features) {
      auto& d = c.dense();
      for (std::int64_t o = 0; o < d.out_features; ++o) {
        double extra = 0;
        for (std::int64_t i = 0; i < d.in_features; ++i) {
          double& w = d.weights[o * d.in_features + i];
          extra += w * sp.shift[i];
          w *= sp.scale[i];
        }
        d.bias[o] += extra;
      }
      c.inputs[0] = s.inputs[0];
      g.layers.erase(g.layers.begin() + si);
      return true;
    }
  }
  return false;
}

// Scalar scale/shift (one value) broadcast to the feature count of the incoming tensor.
Status ExpandScalarScales(Graph& g) {
  std::map<std::string, Shape> known;
  for (const auto& in : g.inputs) known[in.name] = in.shape;
  for (auto& l : g.layers) {
    if (l.kind == LayerKind::kScale && l.inputs.size() == 1) {
      auto it = known.find(l.inputs[0]);
      if (it != known.end()) {
        auto n = static_cast<std::size_t>(std::max<std::int64_t>(ElementCount(it->second), 0));
        auto& s = l.scale();
        if (s.scale.size() == 1 && n > 1) s.scale.assign(n, s.scale[0]);
        if (s.shift.size() == 1 && n > 1) s.shift.assign(n, s.shift[0]);
      }
    }
    if (l.inputs.size() != 1 || l.outputs.size() != 1) continue;
    auto it = known.find(l.inputs[0]);
    if (it == known.end()) continue;
    if (l.kind == LayerKind::kDense) {
      known[l.outputs[0]] = {l.dense().out_features};
    } else {
      known[l.outputs[0]] = it->second;
    }
  }
  return Status::Ok();
}

}  // namespace

Status FoldAffineLayers(Graph& graph) {
  bool changed = true;
  while (changed) {
    changed = false;
    for (std::size_t i = 0; i < graph.layers.size(); ++i) {
      if (graph.layers[i].kind == LayerKind::kScale && FoldOne(graph, static_cast<int>(i))) {
        changed = true;
        break;
      }
    }
  }
  return Status::Ok();
}

Result<std::map<std::string, Shape>> InferShapes(Graph& graph) {
  RETURN_IF_ERROR(ExpandScalarScales(graph));
  ASSIGN_OR_RETURN(auto shapes, ComputeShapes(graph));
  for (auto& out : graph.outputs) {
    auto it = shapes.find(out.name);
    if (it == shapes.end()) {
      return InvalidArgument("graph output '" + out.name + "' is not produced by any layer");
    }
    out.shape = it->second;
  }
  return shapes;
}

Status Finalize(Graph& graph) {
  if (graph.layers.empty()) return InvalidArgument("empty graph: the model has no layers");
  for (const auto& l : graph.layers) {
    if (!l.ParamsMatchKind()) {
      return Internal(DescribeLayer(l) + ": its parameters do not belong to a " +
                      LayerKindName(l.kind) + " layer");
    }
  }
  RETURN_IF_ERROR(SortTopologically(graph));
  RETURN_IF_ERROR(ExpandScalarScales(graph));
  RETURN_IF_ERROR(FoldAffineLayers(graph));
  ASSIGN_OR_RETURN(auto shapes, InferShapes(graph));
  (void)shapes;
  return Verify(graph);
}

}  // namespace fpgaserve::model
