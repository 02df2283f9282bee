// Tests of the ONNX importer against the fixtures make_fixtures.py writes: every valid model must
// evaluate to numpy's float64 outputs, and every broken one must fail naming what broke.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "core/file_io.h"
#include "importers/import.h"
#include "model/passes.h"
#include "model/reference_evaluator.h"

namespace fpgaserve::importers {
namespace {

std::string FixturePath(const std::string& name) {
  return std::string(FPGASERVE_SOURCE_DIR) + "/tests/fixtures/onnx/" + name;
}

std::string FixtureBytes(const std::string& name) {
  auto bytes = ReadFile(FixturePath(name));
  EXPECT_TRUE(bytes.ok()) << bytes.status().ToString();
  return bytes.ok() ? *bytes : std::string();
}

bool StartsWith(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

int CountKind(const model::Graph& g, model::LayerKind kind) {
  int n = 0;
  for (const auto& l : g.layers) n += l.kind == kind;
  return n;
}

// Imports <name>.onnx through the public entry point (which finalizes) and checks its outputs
// against <name>.json, computed by numpy in float64.
model::Graph ImportAndCompare(const std::string& name) {
  auto g = ImportModel(FixturePath(name + ".onnx"));
  EXPECT_TRUE(g.ok()) << g.status().ToString();
  if (!g.ok()) return {};
  std::ifstream in(FixturePath(name + ".json"));
  const auto doc = nlohmann::json::parse(in);
  EXPECT_EQ(g->inputs.at(0).name, doc["input"].get<std::string>());
  EXPECT_EQ(g->outputs.at(0).name, doc["output"].get<std::string>());
  model::SampleBatch batch;
  for (const auto& row : doc["inputs"]) {
    for (double v : row) batch.values.push_back(v);
    batch.features = row.size();
    ++batch.rows;
  }
  auto out = model::EvaluateReference(*g, batch);
  EXPECT_TRUE(out.ok()) << out.status().ToString();
  if (!out.ok()) return *g;
  const auto& expected = doc["expected"];
  EXPECT_EQ(out->rows, expected.size());
  for (std::size_t r = 0; r < expected.size() && r < out->rows; ++r) {
    EXPECT_EQ(out->features, expected[r].size());
    for (std::size_t f = 0; f < expected[r].size() && f < out->features; ++f) {
      const double want = expected[r][f].get<double>();
      EXPECT_NEAR(out->at(r, f), want, 1e-6 * std::max(1.0, std::fabs(want)))
          << name << " row " << r << " feature " << f;
    }
  }
  return *g;
}

// Imports a fixture that must fail and returns its message after checking it names the file.
std::string ImportError(const std::string& name, StatusCode code) {
  const std::string path = FixturePath(name + ".onnx");
  auto g = ImportModel(path);
  EXPECT_FALSE(g.ok()) << name << " imported but should have failed";
  if (g.ok()) return "";
  EXPECT_EQ(g.status().code(), code) << g.status().ToString();
  EXPECT_TRUE(StartsWith(g.status().message(), path)) << g.status().message();
  return g.status().message();
}

TEST(OnnxImporterTest, GemmReluSoftmax) {
  model::Graph g = ImportAndCompare("gemm_relu_softmax");
  EXPECT_EQ(g.source_format, "onnx");
  EXPECT_EQ(g.name, "gemm_relu_softmax");
  ASSERT_EQ(g.inputs.size(), 1u);
  EXPECT_EQ(g.inputs[0].shape, model::Shape({4}));
  EXPECT_EQ(g.inputs[0].dtype, model::DataType::kFP32);
  ASSERT_EQ(g.outputs.size(), 1u);
  EXPECT_EQ(g.outputs[0].shape, model::Shape({3}));
  ASSERT_EQ(g.layers.size(), 4u);
  EXPECT_EQ(g.layers[0].name, "fc1");
  EXPECT_EQ(g.layers[0].dense().in_features, 4);
  EXPECT_EQ(g.layers[0].dense().out_features, 8);
  EXPECT_EQ(g.layers[3].OpName(), "Softmax");
}

TEST(OnnxImporterTest, TypedFieldsAndInitializersListedAsInputs) {
  model::Graph g = ImportAndCompare("gemm_typed_fields");
  ASSERT_EQ(g.inputs.size(), 1u);  // w1, c1, w2, c2 are initializers, not model inputs
  EXPECT_EQ(g.inputs[0].shape, model::Shape({4}));
  EXPECT_EQ(CountKind(g, model::LayerKind::kDense), 2);
}

TEST(OnnxImporterTest, MatMulAddBecomesDense) {
  model::Graph g = ImportAndCompare("matmul_add_sigmoid_tanh");
  EXPECT_EQ(g.inputs.at(0).dtype, model::DataType::kFP64);
  EXPECT_EQ(CountKind(g, model::LayerKind::kDense), 2);
  EXPECT_EQ(CountKind(g, model::LayerKind::kScale), 0);  // the bias Adds folded into the Dense
}

TEST(OnnxImporterTest, ShapeNoOpsEmitNoLayers) {
  model::Graph g = ImportAndCompare("leakyrelu_flatten_reshape_identity_dropout");
  EXPECT_EQ(g.inputs.at(0).shape, model::Shape({2, 3}));
  ASSERT_EQ(g.layers.size(), 4u);  // Dense, LeakyReLU, LeakyReLU, Dense
  EXPECT_EQ(g.layers[1].activation().kind, model::ActivationKind::kLeakyReLU);
  EXPECT_DOUBLE_EQ(g.layers[1].activation().alpha, static_cast<double>(0.2f));
  EXPECT_DOUBLE_EQ(g.layers[2].activation().alpha, 0.01);
  // The graph output keeps its ONNX name although an Identity produced it.
  ASSERT_EQ(g.outputs.size(), 1u);
  EXPECT_EQ(g.outputs[0].name, "out");
  EXPECT_EQ(g.layers[3].outputs.at(0), "out");
}

TEST(OnnxImporterTest, BatchNormalizationFoldsIntoDense) {
  model::Graph g = ImportAndCompare("batchnorm");
  EXPECT_EQ(CountKind(g, model::LayerKind::kScale), 0);
  EXPECT_EQ(g.layers.size(), 3u);
}

TEST(OnnxImporterTest, StandardizationFoldsIntoDense) {
  model::Graph g = ImportAndCompare("standardize");
  EXPECT_EQ(CountKind(g, model::LayerKind::kScale), 0);
  EXPECT_EQ(g.layers.size(), 2u);  // Dense, Softmax
}

TEST(OnnxImporterTest, Float16WeightsAndInput) {
  model::Graph g = ImportAndCompare("float16_gemm");
  EXPECT_EQ(g.inputs.at(0).dtype, model::DataType::kFP16);
  EXPECT_EQ(g.outputs.at(0).dtype, model::DataType::kFP16);
}

TEST(OnnxImporterTest, OutputAliasOfGraphInputGetsLinearLayer) {
  model::Graph g = ImportAndCompare("dropout_identity_only");
  ASSERT_EQ(g.layers.size(), 1u);
  EXPECT_EQ(g.layers[0].activation().kind, model::ActivationKind::kLinear);
  EXPECT_EQ(g.layers[0].inputs.at(0), "x");
  EXPECT_EQ(g.layers[0].outputs.at(0), "y");
}

TEST(OnnxImporterTest, UnsupportedOpNamesNodeOpAndSupportedList) {
  const std::string m = ImportError("unsupported_conv", StatusCode::kUnimplemented);
  EXPECT_NE(m.find("node 'conv0' (op Conv): unsupported op; supported: Gemm, MatMul, Add, Sub, "
                   "Mul, Div, Relu, LeakyRelu, Sigmoid, Tanh, Softmax, Flatten, Reshape, Identity, "
                   "Dropout, BatchNormalization, Constant"),
            std::string::npos)
      << m;
}

TEST(OnnxImporterTest, UnnamedNodeIsNamedByIndex) {
  const std::string m = ImportError("unnamed_unsupported", StatusCode::kUnimplemented);
  EXPECT_NE(m.find("node '#1' (op Exp): unsupported op"), std::string::npos) << m;
}

TEST(OnnxImporterTest, NanWeightsFail) {
  const std::string m = ImportError("nan_weights", StatusCode::kInvalidArgument);
  EXPECT_NE(m.find("node 'fc' (op Gemm)"), std::string::npos) << m;
  EXPECT_NE(m.find("'w'"), std::string::npos) << m;
  EXPECT_NE(m.find("NaN"), std::string::npos) << m;
}

TEST(OnnxImporterTest, WeightShapeMismatchNamesBothShapes) {
  const std::string m = ImportError("shape_mismatch", StatusCode::kInvalidArgument);
  EXPECT_NE(m.find("node 'fc' (op Gemm)"), std::string::npos) << m;
  EXPECT_NE(m.find("[3,5]"), std::string::npos) << m;
  EXPECT_NE(m.find("'x' has 4 features"), std::string::npos) << m;
}

TEST(OnnxImporterTest, OpsetOutsideRangeFails) {
  for (const auto& [name, opset] :
       {std::pair{"opset_out_of_range", "opset 18"}, std::pair{"opset_too_old", "opset 8"}}) {
    const std::string m = ImportError(name, StatusCode::kUnimplemented);
    EXPECT_NE(m.find(opset), std::string::npos) << m;
    EXPECT_NE(m.find("9..17"), std::string::npos) << m;
  }
}

TEST(OnnxImporterTest, UnsupportedConstructsNameTheReason) {
  const std::vector<std::pair<std::string, std::vector<std::string>>> cases = {
      {"gemm_transA", {"node 'fc' (op Gemm)", "transA=1"}},
      {"dynamic_weights", {"node 'fc' (op Gemm)", "'w'", "constant"}},
      {"softmax_axis0", {"node 'sm' (op Softmax)", "axis=0"}},
      {"custom_domain", {"node 'gelu' (op FancyGelu)", "com.example"}},
      {"dropout_mask_used", {"node 'drop' (op Dropout)", "'mask'"}},
  };
  for (const auto& [name, facts] : cases) {
    const std::string m = ImportError(name, StatusCode::kUnimplemented);
    for (const auto& fact : facts) EXPECT_NE(m.find(fact), std::string::npos) << name << ": " << m;
  }
}

TEST(OnnxImporterTest, DivisionByConstantZeroFails) {
  const std::string m = ImportError("div_by_zero", StatusCode::kInvalidArgument);
  EXPECT_NE(m.find("node 'div_s' (op Div): division by zero"), std::string::npos) << m;
  EXPECT_NE(m.find("'s'"), std::string::npos) << m;
  EXPECT_NE(m.find("element 2"), std::string::npos) << m;
}

TEST(OnnxImporterTest, MalformedInitializersFail) {
  std::string m = ImportError("initializer_count_mismatch", StatusCode::kInvalidArgument);
  EXPECT_NE(m.find("initializer 'w'"), std::string::npos) << m;
  EXPECT_NE(m.find("44 bytes"), std::string::npos) << m;
  EXPECT_NE(m.find("[3,4]"), std::string::npos) << m;
  m = ImportError("negative_dims", StatusCode::kInvalidArgument);
  EXPECT_NE(m.find("initializer 'w': negative dimension -3"), std::string::npos) << m;
}

TEST(OnnxImporterTest, EmptyBytesFail) {
  auto g = ImportOnnx("", "empty.onnx");
  ASSERT_FALSE(g.ok());
  EXPECT_TRUE(StartsWith(g.status().message(), "empty.onnx: ")) << g.status().message();
}

TEST(OnnxImporterTest, NotAModelProtoFails) {
  auto g = ImportOnnx("{\"format\": \"json, not protobuf\"}", "m.onnx");
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().message(),
            "m.onnx: not a valid ONNX model (protobuf parse failed); expected an ONNX ModelProto");
}

TEST(OnnxImporterTest, EveryTruncationFails) {
  const std::string bytes = FixtureBytes("gemm_relu_softmax.onnx");
  ASSERT_FALSE(bytes.empty());
  auto half = ImportOnnx(std::string_view(bytes).substr(0, bytes.size() / 2), "half.onnx");
  ASSERT_FALSE(half.ok());
  EXPECT_TRUE(StartsWith(half.status().message(), "half.onnx: not a valid ONNX model"))
      << half.status().message();
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    auto g = ImportOnnx(std::string_view(bytes).substr(0, n), "cut.onnx");
    EXPECT_FALSE(g.ok()) << "prefix of " << n << " bytes imported";
    if (!g.ok()) {
      EXPECT_TRUE(StartsWith(g.status().message(), "cut.onnx: "));
    }
  }
}

TEST(OnnxImporterTest, RandomBytesFail) {
  constexpr unsigned kSeed = 20240611;
  SCOPED_TRACE("seed " + std::to_string(kSeed));
  std::mt19937 rng(kSeed);
  for (int trial = 0; trial < 2000; ++trial) {
    std::string bytes(1 + rng() % 512, '\0');
    for (char& c : bytes) c = static_cast<char>(rng());
    auto g = ImportOnnx(bytes, "garbage.onnx");
    EXPECT_FALSE(g.ok()) << "trial " << trial;
    if (!g.ok()) {
      EXPECT_TRUE(StartsWith(g.status().message(), "garbage.onnx: "));
    }
  }
}

// Flipped bytes inside a real model reach the deeper checks (dims, counts, attributes, names);
// the importer and Finalize must either succeed or fail cleanly, never crash.
TEST(OnnxImporterTest, MutatedModelsNeverCrash) {
  constexpr unsigned kSeed = 7;
  SCOPED_TRACE("seed " + std::to_string(kSeed));
  std::mt19937 rng(kSeed);
  for (const char* name :
       {"gemm_relu_softmax.onnx", "leakyrelu_flatten_reshape_identity_dropout.onnx",
        "standardize.onnx", "batchnorm.onnx"}) {
    const std::string original = FixtureBytes(name);
    ASSERT_FALSE(original.empty());
    for (int trial = 0; trial < 1500; ++trial) {
      std::string bytes = original;
      const int flips = 1 + static_cast<int>(rng() % 4);
      for (int f = 0; f < flips; ++f) bytes[rng() % bytes.size()] = static_cast<char>(rng());
      auto g = ImportOnnx(bytes, "mutated.onnx");
      if (!g.ok()) {
        EXPECT_TRUE(StartsWith(g.status().message(), "mutated.onnx: ")) << g.status().message();
        continue;
      }
      model::Graph graph = std::move(g).value();
      (void)model::Finalize(graph);
    }
  }
}

}  // namespace
}  // namespace fpgaserve::importers
