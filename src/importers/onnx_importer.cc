// ONNX ModelProto -> IR Graph. The importer maps the dense-network subset of ONNX (Gemm/MatMul,
// affine elementwise ops with constants, activations, shape no-ops) onto Dense, Scale and
// Activation layers, and rejects everything else with an error naming the node and the reason.
#include <onnx/onnx_pb.h>

#include <bit>
#include <climits>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/text.h"
#include "importers/import.h"
#include "importers/onnx_tensor.h"

namespace fpgaserve::importers {
namespace {

using onnx_detail::BroadcastOverSample;
using onnx_detail::ConstTensor;
using onnx_detail::CountElements;
using onnx_detail::Cut;
using onnx_detail::DataTypeText;
using onnx_detail::DecodeTensor;
using onnx_detail::FloatType;
using onnx_detail::kMaxTensorElements;
using onnx_detail::Str;

constexpr std::int64_t kMinOpset = 9;
constexpr std::int64_t kMaxOpset = 17;
// Far above anything that fits an FPGA; it bounds dims products (no overflow) and, because Scale
// layers are expanded per element, the memory a tiny hostile file can make us allocate.
constexpr std::int64_t kMaxSampleElements = std::int64_t{1} << 24;
constexpr std::int64_t kMaxExpandedValues = std::int64_t{1} << 24;
constexpr const char* kSupportedOps =
    "Gemm, MatMul, Add, Sub, Mul, Div, Relu, LeakyRelu, Sigmoid, Tanh, Softmax, Flatten, Reshape, "
    "Identity, Dropout, BatchNormalization, Constant";

using onnx::AttributeProto;
using onnx::TensorProto;

// A tensor computed at run time: the IR tensor holding its data plus its ONNX per-sample shape,
// which shape no-ops (Flatten, Reshape) change without emitting a layer.
struct DynTensor {
  std::string tensor;
  model::Shape shape;
};

const AttributeProto* FindAttribute(const onnx::NodeProto& node, const std::string& name) {
  for (const AttributeProto& a : node.attribute()) {
    if (a.name() == name) return &a;
  }
  return nullptr;
}

// Builds the IR while walking the ONNX nodes in their (topological) file order.
class OnnxGraphBuilder {
 public:
  OnnxGraphBuilder(std::string origin, std::int64_t opset)
      : origin_(std::move(origin)), opset_(opset) {}

  Status Build(const onnx::GraphProto& g, model::Graph& out);

 private:
  // Per-node context: error prefixes and checked access to inputs and attributes.
  struct Node {
    const onnx::NodeProto& proto;
    std::string label;  // "node 'fc1' (op Gemm)"
    std::string layer;  // unique IR layer name
    std::string In(int i) const { return i < proto.input_size() ? proto.input(i) : std::string(); }
  };

  Status Fail(const Node& n, const std::string& m) const {
    return InvalidArgument(origin_ + ": " + n.label + ": " + m);
  }
  Status Unsupported(const Node& n, const std::string& m) const {
    return Unimplemented(origin_ + ": " + n.label + ": " + m);
  }

  Status AddInputs(const onnx::GraphProto& g);
  Status AddNode(const onnx::NodeProto& proto, int index);
  Status AddOutputs(const onnx::GraphProto& g);

  Status CheckAttributes(const Node& n, std::initializer_list<std::string_view> allowed) const;
  Result<double> FloatAttr(const Node& n, const std::string& name, double fallback) const;
  Result<std::int64_t> IntAttr(const Node& n, const std::string& name, std::int64_t fallback) const;
  Result<DynTensor> Dynamic(const Node& n, int i) const;
  Result<const ConstTensor*> Constant(const Node& n, int i) const;
  Status CheckUnused(const Node& n, int first_output) const;
  Status Define(const Node& n, const std::string& name, DynTensor t);
  Status Emit(const Node& n, model::Layer layer, model::Shape shape);
  Status Charge(const Node& n, std::int64_t values);

  Status Dense(const Node& n);
  Status Elementwise(const Node& n);
  Status Activation(const Node& n);
  Status Reshape(const Node& n);
  Status BatchNorm(const Node& n);
  Status ConstantNode(const Node& n);

  std::string origin_;
  std::int64_t opset_;
  std::map<std::string, ConstTensor> constants_;
  std::map<std::string, DynTensor> dynamics_;
  std::set<std::string> consumed_;  // every name a node reads or the graph outputs
  std::set<std::string> layer_names_;
  std::int64_t expanded_ = 0;
  model::Graph graph_;
};

Status OnnxGraphBuilder::Build(const onnx::GraphProto& g, model::Graph& out) {
  graph_.name = g.name().empty() ? "model" : g.name();
  graph_.source_format = "onnx";
  if (g.sparse_initializer_size() > 0) {
    return Unimplemented(origin_ + ": sparse initializers are not supported");
  }
  for (const TensorProto& t : g.initializer()) {
    const std::string what = origin_ + ": initializer " + Quote(t.name());
    if (t.name().empty()) return InvalidArgument(origin_ + ": an initializer has no name");
    ASSIGN_OR_RETURN(ConstTensor c, DecodeTensor(t, what));
    if (!constants_.emplace(t.name(), std::move(c)).second) {
      return InvalidArgument(what + " is defined twice");
    }
  }
  RETURN_IF_ERROR(AddInputs(g));
  for (const auto& node : g.node()) consumed_.insert(node.input().begin(), node.input().end());
  for (const auto& o : g.output()) consumed_.insert(o.name());
  for (int i = 0; i < g.node_size(); ++i) RETURN_IF_ERROR(AddNode(g.node(i), i));
  RETURN_IF_ERROR(AddOutputs(g));
  out = std::move(graph_);
  return Status::Ok();
}

Status OnnxGraphBuilder::AddInputs(const onnx::GraphProto& g) {
  for (const auto& in : g.input()) {
    if (constants_.count(in.name())) continue;  // IR < 4 lists initializers as inputs too
    const std::string what = origin_ + ": graph input " + Quote(in.name());
    if (in.name().empty() || dynamics_.count(in.name())) {
      return InvalidArgument(what + ": empty or duplicate input name");
    }
    if (!in.type().has_tensor_type() || !in.type().tensor_type().has_shape()) {
      return InvalidArgument(what + ": expected a tensor with a known shape");
    }
    const auto& tt = in.type().tensor_type();
    ASSIGN_OR_RETURN(model::DataType dtype, FloatType(tt.elem_type(), what));
    const int rank = tt.shape().dim_size();
    if (rank == 0) return InvalidArgument(what + ": is a scalar; expected [batch, features...]");
    model::Shape shape;
    for (int i = (rank == 1 ? 0 : 1); i < rank; ++i) {  // skip the batch unless rank is 1
      const auto& d = tt.shape().dim(i);
      if (!d.has_dim_value() || d.dim_value() <= 0) {
        return InvalidArgument(
            what + ": dimension " + Str(i) + " is " +
            (d.has_dim_param() ? Quote(d.dim_param()) : std::string("unknown")) +
            "; only the batch dimension (0) may be symbolic, others must be > 0");
      }
      shape.push_back(d.dim_value());
    }
    auto count = CountElements(shape, what);
    if (!count.ok() || *count > kMaxSampleElements) {
      return ResourceExhausted(what + ": more than " + Str(kMaxSampleElements) +
                               " elements per sample");
    }
    graph_.inputs.push_back({in.name(), shape, dtype});
    dynamics_[in.name()] = {in.name(), shape};
  }
  return Status::Ok();
}

Status OnnxGraphBuilder::AddNode(const onnx::NodeProto& proto, int index) {
  const std::string& op = proto.op_type();
  const std::string base = proto.name().empty() ? op + "_" + Str(index) : proto.name();
  std::string layer = base;
  for (int k = 1; layer_names_.count(layer); ++k) layer = base + "_" + Str(k);
  const std::string id = proto.name().empty() ? "#" + Str(index) : proto.name();
  Node n{proto, "node " + Quote(id, 80) + " (op " + Cut(op) + ")", layer};
  if (!proto.domain().empty() && proto.domain() != "ai.onnx") {
    return Unsupported(n, "domain " + Quote(proto.domain()) +
                              " is not supported; only the default ONNX domain is");
  }
  if (proto.output_size() < 1 || proto.output(0).empty()) return Fail(n, "has no output");
  if (op == "Gemm" || op == "MatMul") return Dense(n);
  if (op == "Add" || op == "Sub" || op == "Mul" || op == "Div") return Elementwise(n);
  if (op == "Relu" || op == "LeakyRelu" || op == "Sigmoid" || op == "Tanh" || op == "Softmax") {
    return Activation(n);
  }
  if (op == "Flatten" || op == "Reshape" || op == "Identity" || op == "Dropout") return Reshape(n);
  if (op == "BatchNormalization") return BatchNorm(n);
  if (op == "Constant") return ConstantNode(n);
  return Unsupported(n, std::string("unsupported op; supported: ") + kSupportedOps);
}

Status OnnxGraphBuilder::CheckAttributes(const Node& n,
                                         std::initializer_list<std::string_view> allowed) const {
  for (const AttributeProto& a : n.proto.attribute()) {
    bool known = false;
    for (std::string_view name : allowed) known = known || a.name() == name;
    if (!known) {
      std::vector<std::string> names(allowed.begin(), allowed.end());
      return Unsupported(n, "attribute " + Quote(a.name()) + " is not supported; accepted: " +
                                (names.empty() ? std::string("none") : Join(names, ", ")));
    }
  }
  return Status::Ok();
}

Result<double> OnnxGraphBuilder::FloatAttr(const Node& n, const std::string& name,
                                           double fallback) const {
  const AttributeProto* a = FindAttribute(n.proto, name);
  if (a == nullptr) return fallback;
  if (a->type() != AttributeProto::FLOAT || !std::isfinite(a->f())) {
    return Fail(n, "attribute " + Quote(name) + " must be a finite float");
  }
  return static_cast<double>(a->f());
}

Result<std::int64_t> OnnxGraphBuilder::IntAttr(const Node& n, const std::string& name,
                                               std::int64_t fallback) const {
  const AttributeProto* a = FindAttribute(n.proto, name);
  if (a == nullptr) return fallback;
  if (a->type() != AttributeProto::INT)
    return Fail(n, "attribute " + Quote(name) + " must be an int");
  return a->i();
}

Result<DynTensor> OnnxGraphBuilder::Dynamic(const Node& n, int i) const {
  const std::string name = n.In(i);
  if (name.empty()) return Fail(n, "input " + Str(i) + " is missing");
  if (auto it = dynamics_.find(name); it != dynamics_.end()) return it->second;
  if (constants_.count(name)) {
    return Unsupported(n, "input " + Quote(name) + " is a constant; expected a tensor computed " +
                              "from the graph inputs");
  }
  return Fail(n, "input " + Quote(name) + " is not a graph input, an initializer or an output " +
                     "of an earlier node (nodes must be in topological order)");
}

Result<const ConstTensor*> OnnxGraphBuilder::Constant(const Node& n, int i) const {
  const std::string name = n.In(i);
  if (name.empty()) return Fail(n, "input " + Str(i) + " is missing");
  if (auto it = constants_.find(name); it != constants_.end()) {
    const auto& v = it->second.values;
    for (std::size_t e = 0; e < v.size(); ++e) {
      if (!std::isfinite(v[e])) {
        return Fail(n, "constant " + Quote(name) + " holds " +
                           (std::isnan(v[e]) ? "NaN"
                            : v[e] > 0       ? "+Inf"
                                             : "-Inf") +
                           " at element " + Str(static_cast<std::int64_t>(e)) +
                           "; parameters must be finite");
      }
    }
    return &it->second;
  }
  if (dynamics_.count(name)) {
    return Unsupported(n, "input " + Quote(name) + " is computed at run time; it must be a " +
                              "constant (an initializer or a Constant node)");
  }
  return Fail(n, "input " + Quote(name) + " is not an initializer or a Constant node's output");
}

// Extra outputs (Dropout's mask, BatchNormalization's running statistics) have no IR
// counterpart, so they may only be declared, never read.
Status OnnxGraphBuilder::CheckUnused(const Node& n, int first_output) const {
  for (int k = first_output; k < n.proto.output_size(); ++k) {
    if (!n.proto.output(k).empty() && consumed_.count(n.proto.output(k))) {
      return Unsupported(n, "output " + Quote(n.proto.output(k)) + " is used, but only the " +
                                "first output of this op is supported");
    }
  }
  return Status::Ok();
}

Status OnnxGraphBuilder::Define(const Node& n, const std::string& name, DynTensor t) {
  if (constants_.count(name) || dynamics_.count(name)) {
    return Fail(n, "output " + Quote(name) + " is already defined");
  }
  dynamics_[name] = std::move(t);
  return Status::Ok();
}

Status OnnxGraphBuilder::Emit(const Node& n, model::Layer layer, model::Shape shape) {
  RETURN_IF_ERROR(CheckUnused(n, 1));
  RETURN_IF_ERROR(Define(n, layer.outputs[0], {layer.outputs[0], std::move(shape)}));
  layer_names_.insert(layer.name);
  graph_.layers.push_back(std::move(layer));
  return Status::Ok();
}

Status OnnxGraphBuilder::Charge(const Node& n, std::int64_t values) {
  expanded_ += values;
  if (expanded_ > kMaxExpandedValues) {
    return ResourceExhausted(origin_ + ": " + n.label + ": per-element parameters exceed the " +
                             "limit of " + Str(kMaxExpandedValues));
  }
  return Status::Ok();
}

// Gemm (y = alpha A B + beta C, B maybe transposed) and MatMul (y = x W; a following Add
// becomes a Scale that Finalize folds in) both become one Dense layer.
Status OnnxGraphBuilder::Dense(const Node& n) {
  const bool gemm = n.proto.op_type() == "Gemm";
  if (gemm) {
    RETURN_IF_ERROR(CheckAttributes(n, {"alpha", "beta", "transA", "transB"}));
  } else {
    RETURN_IF_ERROR(CheckAttributes(n, {}));
  }
  ASSIGN_OR_RETURN(const double alpha, FloatAttr(n, "alpha", 1.0));
  ASSIGN_OR_RETURN(const double beta, FloatAttr(n, "beta", 1.0));
  ASSIGN_OR_RETURN(const std::int64_t trans_a, IntAttr(n, "transA", 0));
  ASSIGN_OR_RETURN(const std::int64_t trans_b, IntAttr(n, "transB", 0));
  if (trans_a != 0) {
    return Unsupported(n, "transA=" + Str(trans_a) + " is not supported; input A must be " +
                              "[batch, features] (transA=0)");
  }
  if (trans_b != 0 && trans_b != 1) return Fail(n, "transB=" + Str(trans_b) + "; expected 0 or 1");
  if (n.proto.input_size() < 2 || n.proto.input_size() > (gemm ? 3 : 2)) {
    return Fail(n, "has " + Str(n.proto.input_size()) + " inputs; expected " +
                       (gemm ? "A, B and optional C" : "2"));
  }
  if (constants_.count(n.In(0)) && dynamics_.count(n.In(1))) {
    return Unsupported(n, "the constant is the first operand; only input x constant weight " +
                              std::string("is supported"));
  }
  ASSIGN_OR_RETURN(const DynTensor a, Dynamic(n, 0));
  ASSIGN_OR_RETURN(const ConstTensor* b, Constant(n, 1));
  const std::string b_text =
      "weight " + Quote(n.In(1)) + " has shape " + model::ShapeToString(b->dims);
  if (a.shape.size() != 1 || b->dims.size() != 2) {
    return Unsupported(n, "input " + Quote(n.In(0)) + " has per-sample shape " +
                              model::ShapeToString(a.shape) + " and " + b_text +
                              "; only [batch, K] inputs (add a Flatten) and 2-D weights work");
  }
  const std::int64_t k = b->dims[trans_b ? 1 : 0], m = b->dims[trans_b ? 0 : 1];
  if (k != a.shape[0] || m <= 0) {
    return Fail(n, b_text + " (transB=" + Str(trans_b) + "), so it expects " + Str(k) +
                       " input features and produces " + Str(m) + ", but input " + Quote(n.In(0)) +
                       " has " + Str(a.shape[0]) + " features");
  }
  model::DenseParams p;
  p.in_features = k;
  p.out_features = m;
  p.weights.resize(static_cast<std::size_t>(k * m));
  for (std::int64_t o = 0; o < m; ++o) {
    for (std::int64_t i = 0; i < k; ++i) {
      p.weights[o * k + i] = alpha * b->values[trans_b ? o * k + i : i * m + o];
    }
  }
  p.bias.assign(static_cast<std::size_t>(m), 0.0);
  if (!n.In(2).empty()) {
    ASSIGN_OR_RETURN(const ConstTensor* c, Constant(n, 2));
    const auto count = static_cast<std::int64_t>(c->values.size());
    const bool per_output =
        count == m && (c->dims.size() == 1 || (c->dims.size() == 2 && c->dims[0] == 1));
    if (count != 1 && !per_output) {
      return Unsupported(n, "bias C " + Quote(n.In(2)) + " has shape " +
                                model::ShapeToString(c->dims) + "; expected a scalar, [" + Str(m) +
                                "] or [1," + Str(m) + "]");
    }
    for (std::int64_t o = 0; o < m; ++o) p.bias[o] = beta * c->values[count == 1 ? 0 : o];
  }
  return Emit(n, model::MakeDense(n.layer, a.tensor, n.proto.output(0), std::move(p)), {m});
}

// x+c, x-c, c-x, x*c and x/c with a per-sample constant are all y = x*scale + shift.
Status OnnxGraphBuilder::Elementwise(const Node& n) {
  RETURN_IF_ERROR(CheckAttributes(n, {}));
  if (n.proto.input_size() != 2) return Fail(n, "expected 2 inputs");
  const bool const0 = constants_.count(n.In(0)) > 0, const1 = constants_.count(n.In(1)) > 0;
  if (const0 && const1) {
    return Unsupported(n, "both operands are constants; constant folding is not supported " +
                              std::string("(export with do_constant_folding=True)"));
  }
  if (!const0 && !const1) {
    RETURN_IF_ERROR(Dynamic(n, 0).status());
    RETURN_IF_ERROR(Dynamic(n, 1).status());
    return Unsupported(n, "both operands are computed tensors; one must be a constant");
  }
  const int ci = const0 ? 0 : 1;
  ASSIGN_OR_RETURN(const DynTensor x, Dynamic(n, 1 - ci));
  ASSIGN_OR_RETURN(const ConstTensor* c, Constant(n, ci));
  RETURN_IF_ERROR(Charge(n, 2 * model::ElementCount(x.shape)));
  const std::vector<double> v = BroadcastOverSample(*c, x.shape);
  if (v.empty()) {
    return Unsupported(n, "constant " + Quote(n.In(ci)) + " of shape " +
                              model::ShapeToString(c->dims) + " does not broadcast per sample " +
                              "over input " + Quote(n.In(1 - ci)) + " of per-sample shape " +
                              model::ShapeToString(x.shape) +
                              "; expected a scalar or a per-feature constant");
  }
  model::ScaleParams p{std::vector<double>(v.size(), 1.0), std::vector<double>(v.size(), 0.0)};
  const std::string& op = n.proto.op_type();
  for (std::size_t e = 0; e < v.size(); ++e) {
    if (op == "Add") {
      p.shift[e] = v[e];
    } else if (op == "Mul") {
      p.scale[e] = v[e];
    } else if (op == "Sub") {
      p.scale[e] = ci == 1 ? 1.0 : -1.0;
      p.shift[e] = ci == 1 ? -v[e] : v[e];
    } else if (ci == 0) {
      return Unsupported(n, "dividing a constant by a tensor is not affine; only tensor / " +
                                std::string("constant is supported"));
    } else {
      p.scale[e] = 1.0 / v[e];
      if (v[e] == 0.0 || !std::isfinite(p.scale[e])) {
        return Fail(n, "division by zero: constant " + Quote(n.In(1)) + " is " +
                           FormatDouble(v[e]) + " at element " + Str(static_cast<std::int64_t>(e)));
      }
    }
  }
  return Emit(n, model::MakeScale(n.layer, x.tensor, n.proto.output(0), std::move(p)), x.shape);
}

Status OnnxGraphBuilder::Activation(const Node& n) {
  const std::string& op = n.proto.op_type();
  if (op == "LeakyRelu") {
    RETURN_IF_ERROR(CheckAttributes(n, {"alpha"}));
  } else if (op == "Softmax") {
    RETURN_IF_ERROR(CheckAttributes(n, {"axis"}));
  } else {
    RETURN_IF_ERROR(CheckAttributes(n, {}));
  }
  if (n.proto.input_size() != 1) return Fail(n, "expected 1 input");
  ASSIGN_OR_RETURN(const DynTensor x, Dynamic(n, 0));
  ASSIGN_OR_RETURN(const double alpha, FloatAttr(n, "alpha", 0.01));
  model::ActivationKind kind = model::ActivationKind::kReLU;
  if (op == "LeakyRelu") kind = model::ActivationKind::kLeakyReLU;
  if (op == "Sigmoid") kind = model::ActivationKind::kSigmoid;
  if (op == "Tanh") kind = model::ActivationKind::kTanh;
  if (op == "Softmax") {
    kind = model::ActivationKind::kSoftmax;
    // Before opset 13 Softmax flattened [d0..dk] at `axis` to 2-D, so axis=1 meant "the whole
    // sample", exactly our Softmax; from 13 on it acts on one axis, which is the whole sample
    // only for a [batch, features] tensor.
    ASSIGN_OR_RETURN(const std::int64_t axis, IntAttr(n, "axis", opset_ < 13 ? 1 : -1));
    const auto rank = static_cast<std::int64_t>(x.shape.size()) + 1;
    const std::int64_t a = axis < 0 ? axis + rank : axis;
    if (opset_ < 13 ? a != 1 : (a != 1 || rank != 2)) {
      return Unsupported(n, "axis=" + Str(axis) + " on a rank-" + Str(rank) + " input " +
                                "(opset " + Str(opset_) + "); only the feature axis of a " +
                                "[batch, features] tensor is supported (axis 1 or -1)");
    }
  }
  return Emit(n, model::MakeActivation(n.layer, x.tensor, n.proto.output(0), kind, alpha), x.shape);
}

// Shape-only ops emit no layer: the output names the input's IR tensor with a new ONNX shape.
Status OnnxGraphBuilder::Reshape(const Node& n) {
  const std::string& op = n.proto.op_type();
  const int max_inputs = op == "Dropout" ? 3 : op == "Reshape" ? 2 : 1;
  if (n.proto.input_size() < 1 || n.proto.input_size() > max_inputs) {
    return Fail(
        n, "has " + Str(n.proto.input_size()) + " inputs; expected at most " + Str(max_inputs));
  }
  if (n.proto.output_size() > (op == "Dropout" ? 2 : 1)) return Fail(n, "has too many outputs");
  ASSIGN_OR_RETURN(const DynTensor x, Dynamic(n, 0));
  model::Shape shape = x.shape;
  const std::int64_t count = model::ElementCount(x.shape);
  if (op == "Identity") {
    RETURN_IF_ERROR(CheckAttributes(n, {}));
  } else if (op == "Dropout") {
    RETURN_IF_ERROR(CheckAttributes(n, {"ratio", "seed"}));
    if (!n.In(2).empty()) {
      ASSIGN_OR_RETURN(const ConstTensor* training, Constant(n, 2));
      for (double v : training->values) {
        if (v != 0.0) return Unsupported(n, "training_mode is true; only inference is supported");
      }
    }
    RETURN_IF_ERROR(CheckUnused(n, 1));
  } else if (op == "Flatten") {
    RETURN_IF_ERROR(CheckAttributes(n, {"axis"}));
    ASSIGN_OR_RETURN(const std::int64_t axis, IntAttr(n, "axis", 1));
    const auto rank = static_cast<std::int64_t>(x.shape.size()) + 1;
    if ((axis < 0 ? axis + rank : axis) != 1) {
      return Unsupported(n, "axis=" + Str(axis) + " on a rank-" + Str(rank) + " input mixes " +
                                "the batch dimension into the features; only axis=1 is supported");
    }
    shape = {count};
  } else {
    RETURN_IF_ERROR(CheckAttributes(n, {"allowzero"}));
    ASSIGN_OR_RETURN(const std::int64_t allow_zero, IntAttr(n, "allowzero", 0));
    ASSIGN_OR_RETURN(const ConstTensor* target, Constant(n, 1));
    model::Shape req;
    for (double v : target->values) {
      if (v != std::floor(v) || std::fabs(v) > 9.0e15) return Fail(n, "shape is not integral");
      req.push_back(static_cast<std::int64_t>(v));
    }
    const std::string what = "target shape " + model::ShapeToString(req) + " for input " +
                             Quote(n.In(0)) + " of per-sample shape " +
                             model::ShapeToString(x.shape);
    if (target->dims.size() != 1 || req.size() < 2 ||
        !(req[0] == -1 || (req[0] == 0 && !allow_zero))) {
      return Unsupported(n, what + ": only [0 or -1 (the batch), features...] is supported");
    }
    shape.clear();
    int infer = -1;
    std::int64_t known = 1;
    for (std::size_t i = 1; i < req.size(); ++i) {
      std::int64_t d = req[i];
      if (d == 0 && !allow_zero) {
        if (i - 1 >= x.shape.size()) return Fail(n, what + ": a 0 copies a missing dimension");
        d = x.shape[i - 1];
      } else if (d == -1) {
        if (infer >= 0 || req[0] == -1) return Fail(n, what + ": more than one -1");
        infer = static_cast<int>(shape.size());
        d = 1;
      } else if (d <= 0) {
        return Unsupported(n, what + ": dimension " + Str(d) + " is not supported");
      }
      if (known > kMaxTensorElements / d) return Fail(n, what + ": too many elements");
      known *= d;
      shape.push_back(d);
    }
    if (infer >= 0 && count % known == 0) {
      shape[infer] = count / known;
      known = count;
    }
    if (known != count) {
      return Fail(n, what + ": does not keep the " + Str(count) + " elements of each sample");
    }
  }
  return Define(n, n.proto.output(0), {x.tensor, shape});
}

// Inference-mode BatchNormalization is y = (x - mean) / sqrt(var + eps) * gamma + beta per channel.
Status OnnxGraphBuilder::BatchNorm(const Node& n) {
  RETURN_IF_ERROR(CheckAttributes(n, {"epsilon", "momentum", "training_mode", "spatial"}));
  ASSIGN_OR_RETURN(const double epsilon, FloatAttr(n, "epsilon", 1e-5));
  ASSIGN_OR_RETURN(const std::int64_t training, IntAttr(n, "training_mode", 0));
  ASSIGN_OR_RETURN(const std::int64_t spatial, IntAttr(n, "spatial", 1));
  if (training != 0) return Unsupported(n, "training_mode=1; only inference is supported");
  if (spatial != 1) return Unsupported(n, "spatial=0 is not supported");
  if (n.proto.input_size() != 5) return Fail(n, "expected 5 inputs (X, scale, B, mean, var)");
  ASSIGN_OR_RETURN(const DynTensor x, Dynamic(n, 0));
  const std::int64_t channels = x.shape[0];
  const ConstTensor* params[4];
  for (int i = 1; i <= 4; ++i) {
    ASSIGN_OR_RETURN(params[i - 1], Constant(n, i));
    if (static_cast<std::int64_t>(params[i - 1]->values.size()) != channels) {
      return Fail(n, "parameter " + Quote(n.In(i)) + " has " +
                         Str(static_cast<std::int64_t>(params[i - 1]->values.size())) +
                         " values; expected " + Str(channels) + " (one per channel of input " +
                         Quote(n.In(0)) + " of per-sample shape " + model::ShapeToString(x.shape) +
                         ")");
    }
  }
  RETURN_IF_ERROR(CheckUnused(n, 1));
  const std::int64_t count = model::ElementCount(x.shape), per_channel = count / channels;
  RETURN_IF_ERROR(Charge(n, 2 * count));
  model::ScaleParams p;
  for (std::int64_t ch = 0; ch < channels; ++ch) {
    const double gamma = params[0]->values[ch], beta = params[1]->values[ch];
    const double mean = params[2]->values[ch], denom = params[3]->values[ch] + epsilon;
    if (!(denom > 0.0)) {
      return Fail(n, "var + epsilon is " + FormatDouble(denom) + " for channel " + Str(ch) +
                         "; expected > 0");
    }
    const double s = gamma / std::sqrt(denom);
    p.scale.insert(p.scale.end(), per_channel, s);
    p.shift.insert(p.shift.end(), per_channel, beta - mean * s);
  }
  return Emit(n, model::MakeScale(n.layer, x.tensor, n.proto.output(0), std::move(p)), x.shape);
}

Status OnnxGraphBuilder::ConstantNode(const Node& n) {
  if (n.proto.input_size() != 0 || n.proto.output_size() != 1 || n.proto.attribute_size() != 1) {
    return Fail(n, "expected no inputs, one output and one value attribute");
  }
  const AttributeProto& a = n.proto.attribute(0);
  ConstTensor c;
  if (a.name() == "value" && a.type() == AttributeProto::TENSOR) {
    ASSIGN_OR_RETURN(c, DecodeTensor(a.t(), origin_ + ": " + n.label + ": value"));
  } else if (a.name() == "value_float" && a.type() == AttributeProto::FLOAT) {
    c.values = {a.f()};
  } else if (a.name() == "value_floats" && a.type() == AttributeProto::FLOATS) {
    c.values.assign(a.floats().begin(), a.floats().end());
    c.dims = {a.floats_size()};
  } else if (a.name() == "value_int" && a.type() == AttributeProto::INT) {
    c.values = {static_cast<double>(a.i())};
  } else if (a.name() == "value_ints" && a.type() == AttributeProto::INTS) {
    c.values.assign(a.ints().begin(), a.ints().end());
    c.dims = {a.ints_size()};
  } else {
    return Unsupported(n, "attribute " + Quote(a.name()) + " is not supported; expected a " +
                              "value (tensor), value_float(s) or value_int(s)");
  }
  const std::string& out = n.proto.output(0);
  if (constants_.count(out) || dynamics_.count(out)) {
    return Fail(n, "output " + Quote(out) + " is already defined");
  }
  constants_[out] = std::move(c);
  return Status::Ok();
}

Status OnnxGraphBuilder::AddOutputs(const onnx::GraphProto& g) {
  if (g.output_size() == 0) return InvalidArgument(origin_ + ": the graph has no outputs");
  std::set<std::string> exported, inputs;
  for (const auto& o : g.output()) exported.insert(o.name());
  for (const auto& in : graph_.inputs) inputs.insert(in.name);
  std::set<std::string> seen;
  for (const auto& o : g.output()) {
    const std::string what = origin_ + ": graph output " + Quote(o.name());
    if (!seen.insert(o.name()).second) return InvalidArgument(what + " is listed twice");
    if (constants_.count(o.name())) {
      return Unimplemented(what + " is a constant; there is nothing to compute");
    }
    auto it = dynamics_.find(o.name());
    if (it == dynamics_.end()) return InvalidArgument(what + " is not produced by any node");
    model::DataType dtype = graph_.inputs.empty() ? model::DataType::kFP32 : graph_.inputs[0].dtype;
    const std::int32_t elem = o.type().tensor_type().elem_type();
    if (elem != TensorProto::UNDEFINED) {
      ASSIGN_OR_RETURN(dtype, FloatType(elem, what));
    }
    const std::string from = it->second.tensor;
    if (from != o.name()) {
      // The output was reached through no-ops. Give the producing tensor the ONNX output name so
      // clients see the names they exported, unless that tensor is itself a graph input or an
      // exported output; then a Linear layer copies it.
      if (inputs.count(from) || exported.count(from)) {
        std::string layer = "output_" + o.name();
        for (int k = 1; layer_names_.count(layer); ++k) layer = "output_" + o.name() + "_" + Str(k);
        layer_names_.insert(layer);
        graph_.layers.push_back(
            model::MakeActivation(layer, from, o.name(), model::ActivationKind::kLinear));
      } else {
        // model::RenameTensor only promises to rename uses; the producer's output changes too.
        for (auto& layer : graph_.layers) {
          for (auto* names : {&layer.inputs, &layer.outputs}) {
            for (auto& t : *names) {
              if (t == from) t = o.name();
            }
          }
        }
        for (auto& [name, d] : dynamics_) {
          if (d.tensor == from) d.tensor = o.name();
        }
      }
    }
    graph_.outputs.push_back({o.name(), {}, dtype});
  }
  return Status::Ok();
}

}  // namespace

Result<model::Graph> ImportOnnx(std::string_view bytes, const std::string& origin) {
  if (bytes.empty()) return InvalidArgument(origin + ": empty file; expected an ONNX ModelProto");
  if (bytes.size() > static_cast<std::size_t>(INT_MAX)) {
    return ResourceExhausted(origin + ": " + Str(static_cast<std::int64_t>(bytes.size())) +
                             " bytes; protobuf cannot parse ONNX files of 2 GiB or more");
  }
  onnx::ModelProto proto;
  if (!proto.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return InvalidArgument(origin + ": not a valid ONNX model (protobuf parse failed); expected " +
                           "an ONNX ModelProto");
  }
  // Random bytes sometimes parse as a message of unknown fields; a real model has these.
  if (!proto.has_ir_version() || proto.ir_version() <= 0) {
    return InvalidArgument(origin +
                           ": not a valid ONNX model: ir_version is missing; expected an " +
                           "ONNX ModelProto");
  }
  if (!proto.has_graph() || proto.graph().node_size() == 0) {
    return InvalidArgument(origin + ": not a valid ONNX model: it has no graph or the graph has " +
                           "no nodes");
  }
  std::int64_t opset = -1;
  for (const auto& o : proto.opset_import()) {
    if ((o.domain().empty() || o.domain() == "ai.onnx") && opset < 0) opset = o.version();
  }
  if (opset < kMinOpset || opset > kMaxOpset) {
    return Unimplemented(
        origin + ": opset " + (opset < 0 ? "(missing)" : Str(opset)) +
        " of the default ONNX domain is not supported; supported: " + Str(kMinOpset) + ".." +
        Str(kMaxOpset) + " (re-export with e.g. opset_version=13)");
  }
  model::Graph graph;
  OnnxGraphBuilder builder(origin, opset);
  RETURN_IF_ERROR(builder.Build(proto.graph(), graph));
  return graph;
}

}  // namespace fpgaserve::importers
