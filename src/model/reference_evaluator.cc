#include "model/reference_evaluator.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "model/shapes.h"

namespace fpgaserve::model {

namespace {

void RunDense(const DenseParams& d, const SampleBatch& in, SampleBatch& out) {
  out.rows = in.rows;
  out.features = static_cast<std::size_t>(d.out_features);
  out.values.assign(out.rows * out.features, 0.0);
  const auto nin = static_cast<std::size_t>(d.in_features);
  for (std::size_t r = 0; r < in.rows; ++r) {
    const double* x = &in.values[r * nin];
    double* y = &out.values[r * out.features];
    for (std::size_t o = 0; o < out.features; ++o) {
      const double* w = &d.weights[o * nin];
      double acc = d.bias[o];
      for (std::size_t i = 0; i < nin; ++i) acc += w[i] * x[i];
      y[o] = acc;
    }
  }
}

void RunScale(const ScaleParams& s, const SampleBatch& in, SampleBatch& out) {
  out = in;
  for (std::size_t r = 0; r < in.rows; ++r) {
    for (std::size_t f = 0; f < in.features; ++f) {
      double& v = out.values[r * in.features + f];
      v = v * s.scale[f] + s.shift[f];
    }
  }
}

void RunActivation(const ActivationParams& a, const SampleBatch& in, SampleBatch& out) {
  out = in;
  auto& v = out.values;
  switch (a.kind) {
    case ActivationKind::kLinear: break;
    case ActivationKind::kReLU:
      for (auto& x : v) x = x > 0 ? x : 0.0;
      break;
    case ActivationKind::kLeakyReLU:
      for (auto& x : v) x = x >= 0 ? x : a.alpha * x;
      break;
    case ActivationKind::kSigmoid:
      for (auto& x : v) x = 1.0 / (1.0 + std::exp(-x));
      break;
    case ActivationKind::kTanh:
      for (auto& x : v) x = std::tanh(x);
      break;
    case ActivationKind::kSoftmax:
      // Subtracting the row maximum keeps exp() finite without changing the result.
      for (std::size_t r = 0; r < out.rows; ++r) {
        double* row = &v[r * out.features];
        double m = *std::max_element(row, row + out.features);
        double sum = 0;
        for (std::size_t f = 0; f < out.features; ++f) sum += (row[f] = std::exp(row[f] - m));
        for (std::size_t f = 0; f < out.features; ++f) row[f] /= sum;
      }
      break;
  }
}

}  // namespace

Result<std::vector<SampleBatch>> EvaluateReference(const Graph& graph,
                                                   const std::vector<SampleBatch>& inputs) {
  if (inputs.size() != graph.inputs.size()) {
    return InvalidArgument("model '" + graph.name + "' has " + std::to_string(graph.inputs.size()) +
                           " inputs; " + std::to_string(inputs.size()) + " were given");
  }
  ASSIGN_OR_RETURN(auto shapes, ComputeShapes(graph));
  std::map<std::string, SampleBatch> values;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const auto& spec = graph.inputs[i];
    const auto want = static_cast<std::size_t>(ElementCount(spec.shape));
    const auto& b = inputs[i];
    if (b.features != want || b.values.size() != b.rows * b.features) {
      return InvalidArgument("input '" + spec.name + "' has " + std::to_string(b.features) +
                             " features per sample; expected " + std::to_string(want));
    }
    if (i > 0 && b.rows != inputs[0].rows) {
      return InvalidArgument("input '" + spec.name + "' has " + std::to_string(b.rows) +
                             " rows; every input must have " + std::to_string(inputs[0].rows));
    }
    values[spec.name] = b;
  }
  for (const auto& layer : graph.layers) {
    const SampleBatch& in = values.at(layer.inputs[0]);
    SampleBatch out;
    switch (layer.kind) {
      case LayerKind::kDense: RunDense(layer.dense(), in, out); break;
      case LayerKind::kScale: RunScale(layer.scale(), in, out); break;
      case LayerKind::kActivation: RunActivation(layer.activation(), in, out); break;
    }
    values[layer.outputs[0]] = std::move(out);
  }
  std::vector<SampleBatch> outputs;
  for (const auto& o : graph.outputs) outputs.push_back(values.at(o.name));
  return outputs;
}

Result<SampleBatch> EvaluateReference(const Graph& graph, const SampleBatch& input) {
  if (graph.inputs.size() != 1 || graph.outputs.size() != 1) {
    return InvalidArgument("model '" + graph.name + "' has " + std::to_string(graph.inputs.size()) +
                           " inputs and " + std::to_string(graph.outputs.size()) +
                           " outputs; this call needs exactly one of each");
  }
  ASSIGN_OR_RETURN(auto outs, EvaluateReference(graph, std::vector<SampleBatch>{input}));
  return std::move(outs[0]);
}

std::vector<std::int64_t> ArgmaxRows(const SampleBatch& batch) {
  std::vector<std::int64_t> out(batch.rows, 0);
  for (std::size_t r = 0; r < batch.rows; ++r) {
    const double* row = &batch.values[r * batch.features];
    out[r] = std::max_element(row, row + batch.features) - row;
  }
  return out;
}

std::vector<std::int64_t> PredictClasses(const SampleBatch& out) {
  if (out.features != 1) return ArgmaxRows(out);
  std::vector<std::int64_t> classes(out.rows);
  for (std::size_t r = 0; r < out.rows; ++r) classes[r] = out.values[r] >= 0.5 ? 1 : 0;
  return classes;
}

}  // namespace fpgaserve::model
