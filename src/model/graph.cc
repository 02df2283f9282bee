#include "model/graph.h"

#include <limits>
#include <variant>

namespace fpgaserve::model {

std::int64_t ElementCount(const Shape& shape) {
  std::int64_t n = 1;
  for (auto d : shape) {
    if (d <= 0) return 0;
    if (n > std::numeric_limits<std::int64_t>::max() / d) return -1;  // overflow marker
    n *= d;
  }
  return n;
}

std::string ShapeToString(const Shape& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ",";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

const char* DataTypeName(DataType t) {
  switch (t) {
    case DataType::kFP32: return "FP32";
    case DataType::kFP64: return "FP64";
    case DataType::kFP16: return "FP16";
  }
  return "FP32";
}

const char* ActivationName(ActivationKind k) {
  switch (k) {
    case ActivationKind::kLinear: return "Linear";
    case ActivationKind::kReLU: return "ReLU";
    case ActivationKind::kLeakyReLU: return "LeakyReLU";
    case ActivationKind::kSigmoid: return "Sigmoid";
    case ActivationKind::kTanh: return "Tanh";
    case ActivationKind::kSoftmax: return "Softmax";
  }
  return "Linear";
}

const char* LayerKindName(LayerKind k) {
  switch (k) {
    case LayerKind::kDense: return "Dense";
    case LayerKind::kScale: return "Scale";
    case LayerKind::kActivation: return "Activation";
  }
  return "?";
}

bool Layer::ParamsMatchKind() const {
  switch (kind) {
    case LayerKind::kDense: return std::holds_alternative<DenseParams>(params);
    case LayerKind::kScale: return std::holds_alternative<ScaleParams>(params);
    case LayerKind::kActivation: return std::holds_alternative<ActivationParams>(params);
  }
  return false;
}

std::string Layer::OpName() const {
  if (!ParamsMatchKind()) return LayerKindName(kind);
  if (kind == LayerKind::kActivation) return ActivationName(activation().kind);
  return LayerKindName(kind);
}

std::int64_t Layer::ParameterCount() const {
  if (!ParamsMatchKind()) return 0;
  switch (kind) {
    case LayerKind::kDense:
      return static_cast<std::int64_t>(dense().weights.size() + dense().bias.size());
    case LayerKind::kScale:
      return static_cast<std::int64_t>(scale().scale.size() + scale().shift.size());
    case LayerKind::kActivation: return 0;
  }
  return 0;
}

Layer MakeDense(std::string name, std::string input, std::string output, DenseParams p) {
  Layer l;
  l.name = std::move(name);
  l.kind = LayerKind::kDense;
  l.inputs = {std::move(input)};
  l.outputs = {std::move(output)};
  l.params = std::move(p);
  return l;
}

Layer MakeScale(std::string name, std::string input, std::string output, ScaleParams p) {
  Layer l;
  l.name = std::move(name);
  l.kind = LayerKind::kScale;
  l.inputs = {std::move(input)};
  l.outputs = {std::move(output)};
  l.params = std::move(p);
  return l;
}

Layer MakeActivation(std::string name, std::string input, std::string output, ActivationKind kind,
                     double alpha) {
  Layer l;
  l.name = std::move(name);
  l.kind = LayerKind::kActivation;
  l.inputs = {std::move(input)};
  l.outputs = {std::move(output)};
  l.params = ActivationParams{kind, alpha};
  return l;
}

std::int64_t Graph::ParameterCount() const {
  std::int64_t n = 0;
  for (const auto& l : layers) n += l.ParameterCount();
  return n;
}

int Graph::ProducerOf(const std::string& tensor) const {
  for (std::size_t i = 0; i < layers.size(); ++i) {
    for (const auto& o : layers[i].outputs) {
      if (o == tensor) return static_cast<int>(i);
    }
  }
  return -1;
}

std::vector<int> Graph::ConsumersOf(const std::string& tensor) const {
  std::vector<int> out;
  for (std::size_t i = 0; i < layers.size(); ++i) {
    for (const auto& in : layers[i].inputs) {
      if (in == tensor) {
        out.push_back(static_cast<int>(i));
        break;
      }
    }
  }
  return out;
}

}  // namespace fpgaserve::model
