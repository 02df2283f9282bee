// BondMachine's neuralbond JSON: nodes by (Layer, Pos) with a Type, and weighted edges between
// consecutive layers. Imported into Dense + activation layers; exported back for BondMachine users.
#include <cmath>
#include <map>

#include <nlohmann/json.hpp>

#include "core/json_fields.h"
#include "core/text.h"
#include "importers/import.h"

namespace fpgaserve::importers {

namespace jf = json_fields;
using model::ActivationKind;
using model::Graph;
using model::LayerKind;

namespace {

constexpr const char* kSupportedTypes =
    "input, linear, summation, relu, sigmoid, tanh, softmax, output";

struct NbLayer {
  std::string type;
  std::vector<double> bias;           // by Pos
  std::vector<bool> seen;             // Pos present
  std::map<std::pair<std::int64_t, std::int64_t>, double> edges;  // (cur, prev) -> weight
};

bool IsDenseType(const std::string& t) {
  return t == "linear" || t == "summation" || t == "relu" || t == "sigmoid" || t == "tanh";
}

// Softmax and output layers are fixed wiring in neuralbond; any other weight or bias would be
// silently ignored by a naive reader, so they are rejected instead.
Status CheckFixedWiring(const NbLayer& cur, std::int64_t l, std::size_t prev_size, bool full,
                        const std::string& origin) {
  const std::string who = origin + ": layer " + std::to_string(l) + " (" + cur.type + ")";
  if (cur.bias.size() != prev_size) {
    return InvalidArgument(who + ": has " + std::to_string(cur.bias.size()) + " nodes; expected " +
                           std::to_string(prev_size) + " (one per node of layer " +
                           std::to_string(l - 1) + ")");
  }
  for (std::size_t i = 0; i < cur.bias.size(); ++i) {
    if (cur.bias[i] != 0.0) {
      return InvalidArgument(who + ": node " + std::to_string(i) + " has bias " +
                             FormatDouble(cur.bias[i]) + "; expected 0");
    }
  }
  for (const auto& [key, w] : cur.edges) {
    bool allowed = full || key.first == key.second;
    if (!allowed || w != 1.0) {
      return InvalidArgument(who + ": weight " + std::to_string(key.second) + "->" +
                             std::to_string(key.first) + " is " + FormatDouble(w) + "; expected " +
                             (full ? "1 (softmax edges have weight 1)"
                                   : "only 1:1 edges of weight 1 (output layers copy their input)"));
    }
  }
  return Status::Ok();
}

}  // namespace

Result<Graph> ImportNeuralbond(std::string_view json_text, const std::string& origin) {
  ASSIGN_OR_RETURN(jf::Json doc, jf::Parse(json_text, origin));
  ASSIGN_OR_RETURN(const jf::Json* nodes_j, jf::Member(doc, "Nodes", origin));
  ASSIGN_OR_RETURN(const jf::Json::array_t* nodes, jf::Array(*nodes_j, origin + ".Nodes"));
  ASSIGN_OR_RETURN(const jf::Json* weights_j, jf::Member(doc, "Weights", origin));
  ASSIGN_OR_RETURN(const jf::Json::array_t* weights, jf::Array(*weights_j, origin + ".Weights"));
  if (nodes->empty()) return InvalidArgument(origin + ": Nodes is empty; expected a network");

  constexpr std::int64_t kMaxIndex = 1'000'000;
  std::map<std::int64_t, NbLayer> layers;
  for (std::size_t i = 0; i < nodes->size(); ++i) {
    const std::string where = jf::Child(origin + ".Nodes", i);
    const jf::Json& n = (*nodes)[i];
    ASSIGN_OR_RETURN(const jf::Json* lj, jf::Member(n, "Layer", where));
    ASSIGN_OR_RETURN(std::int64_t l, jf::Integer(*lj, where + ".Layer"));
    ASSIGN_OR_RETURN(const jf::Json* pj, jf::Member(n, "Pos", where));
    ASSIGN_OR_RETURN(std::int64_t pos, jf::Integer(*pj, where + ".Pos"));
    ASSIGN_OR_RETURN(const jf::Json* tj, jf::Member(n, "Type", where));
    ASSIGN_OR_RETURN(std::string type, jf::String(*tj, where + ".Type"));
    double bias = 0;
    ASSIGN_OR_RETURN(const jf::Json* bj, jf::OptionalMember(n, "Bias", where));
    if (bj) {
      ASSIGN_OR_RETURN(bias, jf::Number(*bj, where + ".Bias"));
    }
    if (l < 0 || l > kMaxIndex || pos < 0 || pos > kMaxIndex) {
      return InvalidArgument(where + ": Layer " + std::to_string(l) + ", Pos " +
                             std::to_string(pos) + " out of range; expected 0.." +
                             std::to_string(kMaxIndex));
    }
    if (!IsDenseType(type) && type != "input" && type != "softmax" && type != "output") {
      return Unimplemented(where + ": node type " + Quote(type) + " is not supported; supported: " +
                           kSupportedTypes);
    }
    if ((l == 0) != (type == "input")) {
      return InvalidArgument(where + ": type " + Quote(type) + " in layer " + std::to_string(l) +
                             "; expected 'input' nodes in layer 0 and only there");
    }
    NbLayer& layer = layers[l];
    if (layer.type.empty()) layer.type = type;
    if (layer.type != type) {
      return InvalidArgument(where + ": type " + Quote(type) + " differs from " +
                             Quote(layer.type) + " of the other nodes of layer " +
                             std::to_string(l) + "; expected one type per layer");
    }
    auto p = static_cast<std::size_t>(pos);
    if (layer.bias.size() <= p) {
      layer.bias.resize(p + 1, 0.0);
      layer.seen.resize(p + 1, false);
    }
    if (layer.seen[p]) {
      return InvalidArgument(where + ": node (Layer " + std::to_string(l) + ", Pos " +
                             std::to_string(pos) + ") is listed twice");
    }
    layer.seen[p] = true;
    layer.bias[p] = bias;
  }
  const auto count = static_cast<std::int64_t>(layers.size());
  for (std::int64_t l = 0; l < count; ++l) {
    auto it = layers.find(l);
    if (it == layers.end()) {
      return InvalidArgument(origin + ": layer " + std::to_string(l) +
                             " has no nodes; expected consecutive layers from 0");
    }
    for (std::size_t p = 0; p < it->second.seen.size(); ++p) {
      if (!it->second.seen[p]) {
        return InvalidArgument(origin + ": layer " + std::to_string(l) + " has no node at Pos " +
                               std::to_string(p) + "; expected positions 0.." +
                               std::to_string(it->second.seen.size() - 1));
      }
    }
  }
  if (count < 2) return InvalidArgument(origin + ": only an input layer; expected at least 2 layers");

  for (std::size_t i = 0; i < weights->size(); ++i) {
    const std::string where = jf::Child(origin + ".Weights", i);
    const jf::Json& w = (*weights)[i];
    ASSIGN_OR_RETURN(const jf::Json* lj, jf::Member(w, "Layer", where));
    ASSIGN_OR_RETURN(std::int64_t l, jf::Integer(*lj, where + ".Layer"));
    ASSIGN_OR_RETURN(const jf::Json* cj, jf::Member(w, "PosCurrLayer", where));
    ASSIGN_OR_RETURN(std::int64_t cur, jf::Integer(*cj, where + ".PosCurrLayer"));
    ASSIGN_OR_RETURN(const jf::Json* pj, jf::Member(w, "PosPrevLayer", where));
    ASSIGN_OR_RETURN(std::int64_t prev, jf::Integer(*pj, where + ".PosPrevLayer"));
    ASSIGN_OR_RETURN(const jf::Json* vj, jf::Member(w, "Value", where));
    ASSIGN_OR_RETURN(double value, jf::Number(*vj, where + ".Value"));
    if (l < 1 || l >= count) {
      return InvalidArgument(where + ": Layer " + std::to_string(l) + "; expected 1.." +
                             std::to_string(count - 1));
    }
    const auto cur_n = static_cast<std::int64_t>(layers[l].bias.size());
    const auto prev_n = static_cast<std::int64_t>(layers[l - 1].bias.size());
    if (cur < 0 || cur >= cur_n || prev < 0 || prev >= prev_n) {
      return InvalidArgument(where + ": edge " + std::to_string(prev) + "->" + std::to_string(cur) +
                             " into layer " + std::to_string(l) + "; expected PosCurrLayer in 0.." +
                             std::to_string(cur_n - 1) + " and PosPrevLayer in 0.." +
                             std::to_string(prev_n - 1));
    }
    if (!layers[l].edges.emplace(std::make_pair(cur, prev), value).second) {
      return InvalidArgument(where + ": edge " + std::to_string(prev) + "->" + std::to_string(cur) +
                             " of layer " + std::to_string(l) + " is listed twice");
    }
  }

  Graph g;
  g.source_format = "neuralbond";
  g.name = "neuralbond";
  g.inputs.push_back({"input", {static_cast<std::int64_t>(layers[0].bias.size())}});
  std::string current = "input";
  for (std::int64_t l = 1; l < count; ++l) {
    const NbLayer& nb = layers[l];
    const std::size_t prev_n = layers[l - 1].bias.size();
    const std::string base = "layer" + std::to_string(l);
    if (IsDenseType(nb.type)) {
      model::DenseParams d;
      d.in_features = static_cast<std::int64_t>(prev_n);
      d.out_features = static_cast<std::int64_t>(nb.bias.size());
      d.weights.assign(static_cast<std::size_t>(d.in_features * d.out_features), 0.0);
      for (const auto& [key, w] : nb.edges) d.weights[key.first * d.in_features + key.second] = w;
      d.bias = nb.bias;
      g.layers.push_back(model::MakeDense(base + "_dense", current, base + "_sum", std::move(d)));
      current = base + "_sum";
      ActivationKind act = ActivationKind::kLinear;
      if (nb.type == "relu") act = ActivationKind::kReLU;
      if (nb.type == "sigmoid") act = ActivationKind::kSigmoid;
      if (nb.type == "tanh") act = ActivationKind::kTanh;
      if (act != ActivationKind::kLinear) {
        g.layers.push_back(model::MakeActivation(base + "_" + nb.type, current, base + "_act", act));
        current = base + "_act";
      }
    } else if (nb.type == "softmax") {
      RETURN_IF_ERROR(CheckFixedWiring(nb, l, prev_n, /*full=*/true, origin));
      g.layers.push_back(
          model::MakeActivation(base + "_softmax", current, base + "_softmax", ActivationKind::kSoftmax));
      current = base + "_softmax";
    } else if (nb.type == "output") {
      RETURN_IF_ERROR(CheckFixedWiring(nb, l, prev_n, /*full=*/false, origin));
      if (l != count - 1) {
        return InvalidArgument(origin + ": layer " + std::to_string(l) +
                               " has type 'output' but is not the last layer");
      }
    }
  }
  g.outputs.push_back({current, {}});
  return g;
}

Result<std::string> ExportNeuralbond(const Graph& graph) {
  if (graph.inputs.size() != 1 || graph.outputs.size() != 1) {
    return InvalidArgument("neuralbond export needs exactly one input and one output");
  }
  using J = nlohmann::ordered_json;
  J nodes = J::array();
  J weights = J::array();
  std::int64_t layer_no = 0;
  const auto n_in = model::ElementCount(graph.inputs[0].shape);
  for (std::int64_t p = 0; p < n_in; ++p) {
    nodes.push_back(J{{"Layer", 0}, {"Pos", p}, {"Type", "input"}, {"Bias", 0.0}});
  }
  std::int64_t width = n_in;
  std::string current = graph.inputs[0].name;
  auto unsupported = [](const model::Layer& l, const std::string& why) {
    return Unimplemented("layer '" + l.name + "' (" + l.OpName() + "): " + why +
                         "; neuralbond holds chains of Dense layers with ReLU, Sigmoid, Tanh or "
                         "no activation, and a final Softmax");
  };
  for (std::size_t i = 0; i < graph.layers.size(); ++i) {
    const auto& l = graph.layers[i];
    if (l.inputs.size() != 1 || l.inputs[0] != current) {
      return unsupported(l, "the graph is not a single chain");
    }
    current = l.outputs[0];
    if (l.kind == LayerKind::kDense) {
      const auto& d = l.dense();
      std::string type = "summation";
      if (i + 1 < graph.layers.size() && graph.layers[i + 1].kind == LayerKind::kActivation) {
        auto k = graph.layers[i + 1].activation().kind;
        if (k == ActivationKind::kReLU) type = "relu";
        if (k == ActivationKind::kSigmoid) type = "sigmoid";
        if (k == ActivationKind::kTanh) type = "tanh";
        if (type != "summation") {
          ++i;
          current = graph.layers[i].outputs[0];
        }
      }
      ++layer_no;
      for (std::int64_t o = 0; o < d.out_features; ++o) {
        nodes.push_back(J{{"Layer", layer_no}, {"Pos", o}, {"Type", type}, {"Bias", d.bias[o]}});
        for (std::int64_t k = 0; k < d.in_features; ++k) {
          weights.push_back(J{{"Layer", layer_no}, {"PosCurrLayer", o}, {"PosPrevLayer", k},
                              {"Value", d.w(o, k)}});
        }
      }
      width = d.out_features;
    } else if (l.kind == LayerKind::kActivation) {
      const auto k = l.activation().kind;
      if (k == ActivationKind::kLinear) continue;
      if (k != ActivationKind::kSoftmax) return unsupported(l, "activation without a Dense before it");
      ++layer_no;
      for (std::int64_t o = 0; o < width; ++o) {
        nodes.push_back(J{{"Layer", layer_no}, {"Pos", o}, {"Type", "softmax"}, {"Bias", 0.0}});
        for (std::int64_t p = 0; p < width; ++p) {
          weights.push_back(J{{"Layer", layer_no}, {"PosCurrLayer", o}, {"PosPrevLayer", p},
                              {"Value", 1.0}});
        }
      }
    } else {
      return unsupported(l, "this op has no neuralbond node type");
    }
  }
  ++layer_no;
  for (std::int64_t o = 0; o < width; ++o) {
    nodes.push_back(J{{"Layer", layer_no}, {"Pos", o}, {"Type", "output"}, {"Bias", 0.0}});
    weights.push_back(
        J{{"Layer", layer_no}, {"PosCurrLayer", o}, {"PosPrevLayer", o}, {"Value", 1.0}});
  }
  J doc{{"Nodes", std::move(nodes)}, {"Weights", std::move(weights)}};
  return doc.dump(1) + "\n";
}

}  // namespace fpgaserve::importers
