// fpgaserve's own model format: a JSON document that mirrors the IR one to one (docs/formats.md).
#include <nlohmann/json.hpp>

#include "core/json_fields.h"
#include "core/text.h"
#include "importers/import.h"

namespace fpgaserve::importers {

namespace jf = json_fields;
using model::ActivationKind;
using model::Graph;
using model::Layer;
using model::LayerKind;

namespace {

constexpr const char* kNativeFormat = "fpgaserve-model";
constexpr int kNativeVersion = 1;

Result<model::DataType> ParseDataType(const std::string& s, const std::string& where) {
  if (s == "FP32") return model::DataType::kFP32;
  if (s == "FP64") return model::DataType::kFP64;
  if (s == "FP16") return model::DataType::kFP16;
  return InvalidArgument(where + ": datatype " + Quote(s) + "; expected FP32, FP64 or FP16");
}

Result<model::TensorSpec> ParseTensor(const jf::Json& j, const std::string& where, bool need_shape) {
  model::TensorSpec t;
  ASSIGN_OR_RETURN(const jf::Json* name, jf::Member(j, "name", where));
  ASSIGN_OR_RETURN(t.name, jf::String(*name, jf::Child(where, "name")));
  ASSIGN_OR_RETURN(const jf::Json* shape, jf::OptionalMember(j, "shape", where));
  if (shape) {
    ASSIGN_OR_RETURN(t.shape, jf::IntegerArray(*shape, jf::Child(where, "shape")));
  } else if (need_shape) {
    return InvalidArgument(where + ": missing required field 'shape'");
  }
  ASSIGN_OR_RETURN(const jf::Json* dt, jf::OptionalMember(j, "datatype", where));
  if (dt) {
    ASSIGN_OR_RETURN(auto s, jf::String(*dt, jf::Child(where, "datatype")));
    ASSIGN_OR_RETURN(t.dtype, ParseDataType(s, jf::Child(where, "datatype")));
  }
  return t;
}

Result<ActivationKind> ParseActivation(const std::string& op) {
  for (auto k : {ActivationKind::kLinear, ActivationKind::kReLU, ActivationKind::kLeakyReLU,
                 ActivationKind::kSigmoid, ActivationKind::kTanh, ActivationKind::kSoftmax}) {
    if (op == model::ActivationName(k)) return k;
  }
  return Unimplemented("op " + Quote(op) +
                       " is not supported; supported: Dense, Scale, Linear, ReLU, LeakyReLU, "
                       "Sigmoid, Tanh, Softmax");
}

Result<Layer> ParseLayer(const jf::Json& j, const std::string& where) {
  Layer l;
  ASSIGN_OR_RETURN(const jf::Json* name, jf::Member(j, "name", where));
  ASSIGN_OR_RETURN(l.name, jf::String(*name, jf::Child(where, "name")));
  ASSIGN_OR_RETURN(const jf::Json* op_j, jf::Member(j, "op", where));
  ASSIGN_OR_RETURN(std::string op, jf::String(*op_j, jf::Child(where, "op")));
  ASSIGN_OR_RETURN(const jf::Json* ins, jf::Member(j, "inputs", where));
  ASSIGN_OR_RETURN(l.inputs, jf::StringArray(*ins, jf::Child(where, "inputs")));
  ASSIGN_OR_RETURN(const jf::Json* outs, jf::Member(j, "outputs", where));
  ASSIGN_OR_RETURN(l.outputs, jf::StringArray(*outs, jf::Child(where, "outputs")));
  const std::string who = where + " ('" + l.name + "')";
  if (op == "Dense") {
    l.kind = LayerKind::kDense;
    model::DenseParams d;
    ASSIGN_OR_RETURN(const jf::Json* w, jf::Member(j, "weights", who));
    ASSIGN_OR_RETURN(const jf::Json::array_t* rows, jf::Array(*w, jf::Child(who, "weights")));
    d.out_features = static_cast<std::int64_t>(rows->size());
    for (std::size_t r = 0; r < rows->size(); ++r) {
      const std::string rw = jf::Child(jf::Child(who, "weights"), r);
      ASSIGN_OR_RETURN(auto row, jf::NumberArray((*rows)[r], rw));
      if (r == 0) d.in_features = static_cast<std::int64_t>(row.size());
      if (static_cast<std::int64_t>(row.size()) != d.in_features) {
        return InvalidArgument(rw + ": has " + std::to_string(row.size()) + " values; expected " +
                               std::to_string(d.in_features) + " like row 0");
      }
      d.weights.insert(d.weights.end(), row.begin(), row.end());
    }
    ASSIGN_OR_RETURN(const jf::Json* b, jf::OptionalMember(j, "bias", who));
    if (b) {
      ASSIGN_OR_RETURN(d.bias, jf::NumberArray(*b, jf::Child(who, "bias")));
    } else {
      d.bias.assign(static_cast<std::size_t>(d.out_features), 0.0);
    }
    l.params = std::move(d);
  } else if (op == "Scale") {
    l.kind = LayerKind::kScale;
    model::ScaleParams s;
    ASSIGN_OR_RETURN(const jf::Json* sc, jf::Member(j, "scale", who));
    ASSIGN_OR_RETURN(s.scale, jf::NumberArray(*sc, jf::Child(who, "scale")));
    ASSIGN_OR_RETURN(const jf::Json* sh, jf::Member(j, "shift", who));
    ASSIGN_OR_RETURN(s.shift, jf::NumberArray(*sh, jf::Child(who, "shift")));
    l.params = std::move(s);
  } else {
    auto kind = ParseActivation(op);
    if (!kind.ok()) return kind.status().WithContext(who);
    l.kind = LayerKind::kActivation;
    model::ActivationParams a{*kind, 0.01};
    ASSIGN_OR_RETURN(const jf::Json* alpha, jf::OptionalMember(j, "alpha", who));
    if (alpha) {
      ASSIGN_OR_RETURN(a.alpha, jf::Number(*alpha, jf::Child(who, "alpha")));
    }
    l.params = a;
  }
  return l;
}

}  // namespace

Result<Graph> ImportNative(std::string_view json_text, const std::string& origin) {
  ASSIGN_OR_RETURN(jf::Json doc, jf::Parse(json_text, origin));
  const std::string root = origin;
  ASSIGN_OR_RETURN(const jf::Json* fmt, jf::Member(doc, "format", root));
  if (!fmt->is_string() || *fmt != kNativeFormat) {
    return InvalidArgument(root + ": field 'format' is " + fmt->dump() + "; expected \"" +
                           kNativeFormat + "\"");
  }
  ASSIGN_OR_RETURN(const jf::Json* ver, jf::Member(doc, "version", root));
  ASSIGN_OR_RETURN(std::int64_t version, jf::Integer(*ver, root + ".version"));
  if (version != kNativeVersion) {
    return InvalidArgument(root + ": version " + std::to_string(version) +
                           " is not supported; expected " + std::to_string(kNativeVersion));
  }
  Graph g;
  g.source_format = "native";
  ASSIGN_OR_RETURN(const jf::Json* name, jf::OptionalMember(doc, "name", root));
  if (name) {
    ASSIGN_OR_RETURN(g.name, jf::String(*name, root + ".name"));
  }
  ASSIGN_OR_RETURN(const jf::Json* ins, jf::Member(doc, "inputs", root));
  ASSIGN_OR_RETURN(const jf::Json::array_t* in_arr, jf::Array(*ins, root + ".inputs"));
  for (std::size_t i = 0; i < in_arr->size(); ++i) {
    ASSIGN_OR_RETURN(auto t, ParseTensor((*in_arr)[i], jf::Child(root + ".inputs", i), true));
    g.inputs.push_back(std::move(t));
  }
  ASSIGN_OR_RETURN(const jf::Json* outs, jf::Member(doc, "outputs", root));
  ASSIGN_OR_RETURN(const jf::Json::array_t* out_arr, jf::Array(*outs, root + ".outputs"));
  for (std::size_t i = 0; i < out_arr->size(); ++i) {
    ASSIGN_OR_RETURN(auto t, ParseTensor((*out_arr)[i], jf::Child(root + ".outputs", i), false));
    g.outputs.push_back(std::move(t));
  }
  ASSIGN_OR_RETURN(const jf::Json* layers, jf::Member(doc, "layers", root));
  ASSIGN_OR_RETURN(const jf::Json::array_t* arr, jf::Array(*layers, root + ".layers"));
  for (std::size_t i = 0; i < arr->size(); ++i) {
    ASSIGN_OR_RETURN(auto l, ParseLayer((*arr)[i], jf::Child(root + ".layers", i)));
    g.layers.push_back(std::move(l));
  }
  return g;
}

std::string ExportNative(const Graph& graph) {
  using J = nlohmann::ordered_json;
  J doc;
  doc["format"] = kNativeFormat;
  doc["version"] = kNativeVersion;
  doc["name"] = graph.name;
  auto tensors = [](const std::vector<model::TensorSpec>& ts) {
    J arr = J::array();
    for (const auto& t : ts) {
      arr.push_back(J{{"name", t.name}, {"shape", t.shape}, {"datatype", model::DataTypeName(t.dtype)}});
    }
    return arr;
  };
  doc["inputs"] = tensors(graph.inputs);
  doc["outputs"] = tensors(graph.outputs);
  J layers = J::array();
  for (const auto& l : graph.layers) {
    J j{{"name", l.name}, {"op", l.OpName()}, {"inputs", l.inputs}, {"outputs", l.outputs}};
    switch (l.kind) {
      case LayerKind::kDense: {
        const auto& d = l.dense();
        J rows = J::array();
        for (std::int64_t o = 0; o < d.out_features; ++o) {
          rows.push_back(std::vector<double>(d.weights.begin() + o * d.in_features,
                                             d.weights.begin() + (o + 1) * d.in_features));
        }
        j["weights"] = std::move(rows);
        j["bias"] = d.bias;
        break;
      }
      case LayerKind::kScale:
        j["scale"] = l.scale().scale;
        j["shift"] = l.scale().shift;
        break;
      case LayerKind::kActivation:
        if (l.activation().kind == ActivationKind::kLeakyReLU) j["alpha"] = l.activation().alpha;
        break;
    }
    layers.push_back(std::move(j));
  }
  doc["layers"] = std::move(layers);
  return doc.dump(1) + "\n";
}

}  // namespace fpgaserve::importers
