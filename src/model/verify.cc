#include "model/verify.h"

#include <cmath>
#include <set>

#include "core/text.h"
#include "model/shapes.h"

namespace fpgaserve::model {

namespace {

Status CheckFinite(const Layer& layer, const char* what, const std::vector<double>& values) {
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (!std::isfinite(values[i])) {
      return InvalidArgument(DescribeLayer(layer) + ": " + what + "[" + std::to_string(i) + "] is " +
                             FormatDouble(values[i]) + "; expected a finite number");
    }
  }
  return Status::Ok();
}

Status CheckParameters(const Layer& layer) {
  const std::string who = DescribeLayer(layer);
  if (!layer.ParamsMatchKind()) {
    return Internal(who + ": its parameters do not belong to a " + LayerKindName(layer.kind) +
                    " layer");
  }
  switch (layer.kind) {
    case LayerKind::kDense: {
      const auto& d = layer.dense();
      const auto expect_w = static_cast<std::size_t>(d.in_features * d.out_features);
      if (d.weights.size() != expect_w) {
        return InvalidArgument(who + ": has " + std::to_string(d.weights.size()) +
                               " weights; expected " + std::to_string(expect_w) + " (" +
                               std::to_string(d.out_features) + " units x " +
                               std::to_string(d.in_features) + " inputs)");
      }
      if (d.bias.size() != static_cast<std::size_t>(d.out_features)) {
        return InvalidArgument(who + ": has " + std::to_string(d.bias.size()) +
                               " biases; expected " + std::to_string(d.out_features));
      }
      RETURN_IF_ERROR(CheckFinite(layer, "weight", d.weights));
      return CheckFinite(layer, "bias", d.bias);
    }
    case LayerKind::kScale:
      RETURN_IF_ERROR(CheckFinite(layer, "scale", layer.scale().scale));
      return CheckFinite(layer, "shift", layer.scale().shift);
    case LayerKind::kActivation: {
      const auto& a = layer.activation();
      if (a.kind == ActivationKind::kLeakyReLU && !std::isfinite(a.alpha)) {
        return InvalidArgument(who + ": alpha is " + FormatDouble(a.alpha) +
                               "; expected a finite number");
      }
      return Status::Ok();
    }
  }
  return Unimplemented(who + ": unsupported op; supported: Dense, Scale, Activation");
}

}  // namespace

Status Verify(const Graph& graph) {
  if (graph.inputs.empty()) return InvalidArgument("empty graph: no inputs");
  if (graph.outputs.empty()) return InvalidArgument("empty graph: no outputs");
  if (graph.layers.empty()) return InvalidArgument("empty graph: the model has no layers");
  std::set<std::string> names;
  for (const auto& layer : graph.layers) {
    if (layer.name.empty()) return InvalidArgument("a layer has an empty name");
    if (!names.insert(layer.name).second) {
      return InvalidArgument("two layers are named '" + layer.name + "'; names must be unique");
    }
    RETURN_IF_ERROR(CheckParameters(layer));
  }
  ASSIGN_OR_RETURN(auto shapes, ComputeShapes(graph));
  std::set<std::string> seen_outputs;
  for (const auto& out : graph.outputs) {
    auto it = shapes.find(out.name);
    if (it == shapes.end()) {
      return InvalidArgument("graph output '" + out.name + "' is not produced by any layer");
    }
    if (!seen_outputs.insert(out.name).second) {
      return InvalidArgument("graph output '" + out.name + "' is listed twice");
    }
    if (it->second != out.shape) {
      return InvalidArgument("graph output '" + out.name + "' is declared with shape " +
                             ShapeToString(out.shape) + " but computed as " +
                             ShapeToString(it->second));
    }
  }
  return Status::Ok();
}

}  // namespace fpgaserve::model
