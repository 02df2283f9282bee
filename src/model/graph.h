// The model IR: a directed acyclic Graph of named Layers connected by named tensors.
// Every importer produces it; quantization, hardware generation and evaluators consume it.
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

namespace fpgaserve::model {

// Per-sample tensor shape; the batch dimension is implicit and never stored.
using Shape = std::vector<std::int64_t>;

std::int64_t ElementCount(const Shape& shape);
std::string ShapeToString(const Shape& shape);  // "[4]", "[1,28,28]"

// Element type of a graph input/output as seen by clients (KServe V2 datatype names).
enum class DataType { kFP32, kFP64, kFP16 };
const char* DataTypeName(DataType t);  // "FP32", ...

struct TensorSpec {
  std::string name;
  Shape shape;
  DataType dtype = DataType::kFP32;
};

enum class ActivationKind { kLinear, kReLU, kLeakyReLU, kSigmoid, kTanh, kSoftmax };
const char* ActivationName(ActivationKind k);  // "Linear", "ReLU", ...

// y = W x + b. weights are row-major [out_features][in_features] (PyTorch/ONNX-Gemm-transB order).
struct DenseParams {
  std::int64_t in_features = 0;
  std::int64_t out_features = 0;
  std::vector<double> weights;
  std::vector<double> bias;  // out_features values (zeros when the source had no bias)

  double w(std::int64_t out, std::int64_t in) const { return weights[out * in_features + in]; }
};

// Per-feature affine transform y[i] = x[i] * scale[i] + shift[i]: feature standardization,
// inference-mode BatchNormalization, constant Sub/Div/Mul/Add. FoldAffineLayers merges it into a
// neighbouring Dense whenever that is exact.
struct ScaleParams {
  std::vector<double> scale;
  std::vector<double> shift;
};

// Elementwise activation; Softmax acts over the whole per-sample feature vector.
struct ActivationParams {
  ActivationKind kind = ActivationKind::kLinear;
  double alpha = 0.01;  // LeakyReLU negative slope
};

// New layer kinds (Conv2D, Pool2D, ...) add an enumerator and a params struct; passes and
// evaluators switch on the kind and reject kinds they do not know with a clear error.
enum class LayerKind { kDense, kScale, kActivation };
const char* LayerKindName(LayerKind k);  // "Dense", "Scale", "Activation"

struct Layer {
  std::string name;
  LayerKind kind = LayerKind::kDense;
  std::vector<std::string> inputs;   // tensor names (graph inputs or other layers' outputs)
  std::vector<std::string> outputs;  // tensor names produced here, unique in the graph
  std::variant<DenseParams, ScaleParams, ActivationParams> params;

  const DenseParams& dense() const { return std::get<DenseParams>(params); }
  DenseParams& dense() { return std::get<DenseParams>(params); }
  const ScaleParams& scale() const { return std::get<ScaleParams>(params); }
  ScaleParams& scale() { return std::get<ScaleParams>(params); }
  const ActivationParams& activation() const { return std::get<ActivationParams>(params); }
  ActivationParams& activation() { return std::get<ActivationParams>(params); }

  // True when `params` holds the struct that `kind` calls for; passes check it before any access.
  bool ParamsMatchKind() const;
  // Op name shown to users: "Dense", "Scale", or the activation's name ("ReLU", "Softmax", ...).
  std::string OpName() const;
  // Number of trainable parameters (weights + biases, or scale + shift).
  std::int64_t ParameterCount() const;
};

Layer MakeDense(std::string name, std::string input, std::string output, DenseParams p);
Layer MakeScale(std::string name, std::string input, std::string output, ScaleParams p);
Layer MakeActivation(std::string name, std::string input, std::string output, ActivationKind kind,
                     double alpha = 0.01);

struct Graph {
  std::string name;
  std::string source_format;  // "onnx", "keras", "neuralbond", "native"
  std::vector<TensorSpec> inputs;
  std::vector<TensorSpec> outputs;  // shapes filled in by InferShapes/Finalize
  std::vector<Layer> layers;        // topologically ordered after Finalize

  std::int64_t ParameterCount() const;
  // Index of the layer producing `tensor`, or -1 when it is a graph input / unknown.
  int ProducerOf(const std::string& tensor) const;
  // Indices of layers that read `tensor`.
  std::vector<int> ConsumersOf(const std::string& tensor) const;
};

}  // namespace fpgaserve::model
