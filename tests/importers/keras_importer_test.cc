// Tests of the Keras importer and the HDF5 reader it uses, on fixtures written by
// tests/fixtures/keras/make_fixtures.py in the exact layouts Keras 2 and Keras 3 produce.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "importers/hdf5_file.h"
#include "importers/import.h"
#include "model/graph.h"
#include "model/reference_evaluator.h"

namespace fpgaserve::importers {
namespace {

using json = nlohmann::json;

::testing::AssertionResult Contains(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "'" << text << "' does not contain '" << part << "'";
}

std::string Fixture(const std::string& name) {
  return std::string(FPGASERVE_SOURCE_DIR) + "/tests/fixtures/keras/" + name;
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

// A fresh directory per test, so sibling-weights discovery sees only what the test puts there.
std::string MakeTempDir() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::filesystem::path dir =
      std::filesystem::path(::testing::TempDir()) / (std::string("keras_") + info->name());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir.string();
}

json FixtureJson(const std::string& name) { return json::parse(ReadText(Fixture(name))); }

// Writes `model` to a temporary architecture file and imports it with the mlp.h5 weights.
Result<model::Graph> ImportEditedMlp(const json& model, const std::string& file = "edited.json") {
  const std::string path = MakeTempDir() + "/" + file;
  WriteText(path, model.dump());
  ImportOptions options;
  options.weights_path = Fixture("mlp.h5");
  return ImportModel(path, options);
}

// Evaluates `graph` on the inputs stored in <name>.expected.json and compares with numpy's outputs.
void ExpectMatchesNumpy(const model::Graph& graph, const std::string& name) {
  const json expected = FixtureJson(name + ".expected.json");
  model::SampleBatch in;
  in.rows = expected["inputs"].size();
  in.features = expected["inputs"][0].size();
  for (const auto& row : expected["inputs"]) {
    for (const auto& v : row) in.values.push_back(v.get<double>());
  }
  auto out = model::EvaluateReference(graph, in);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  ASSERT_EQ(out->rows, in.rows);
  ASSERT_EQ(out->features, expected["outputs"][0].size());
  for (std::size_t r = 0; r < out->rows; ++r) {
    for (std::size_t f = 0; f < out->features; ++f) {
      EXPECT_NEAR(out->at(r, f), expected["outputs"][r][f].get<double>(), 1e-6)
          << name << " row " << r << " output " << f;
    }
  }
}

int CountKind(const model::Graph& g, model::LayerKind kind) {
  int n = 0;
  for (const auto& l : g.layers) n += l.kind == kind;
  return n;
}

const model::Layer* FindLayer(const model::Graph& g, const std::string& name) {
  for (const auto& l : g.layers) {
    if (l.name == name) return &l;
  }
  return nullptr;
}

// ---- Hdf5File ---------------------------------------------------------------------------------

TEST(Hdf5FileTest, ReadsFixedAndVariableLengthStrings) {
  auto file = Hdf5File::Open(Fixture("hdf5_kinds.h5"));
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  using V = std::vector<std::string>;
  EXPECT_EQ(file->ReadStringAttribute("", "fixed_scalar").value(), V{"hello"});
  EXPECT_EQ(file->ReadStringAttribute("/", "fixed_array").value(), (V{"dense", "dense_1"}));
  EXPECT_EQ(file->ReadStringAttribute("", "vlen_scalar").value(), V{"caf\xc3\xa9"});
  EXPECT_EQ(file->ReadStringAttribute("", "vlen_array").value(), (V{"a", "bc", "def"}));
  EXPECT_EQ(file->ReadStringAttribute("", "space_padded").value(), V{"pad"});
  EXPECT_EQ(file->ReadStringAttribute("", "empty_list").value(), V{});
  EXPECT_EQ(file->ReadScalarStringAttribute("", "vlen_scalar").value(), "caf\xc3\xa9");
}

TEST(Hdf5FileTest, RejectsAttributesThatAreNotStringLists) {
  auto file = Hdf5File::Open(Fixture("hdf5_kinds.h5"));
  ASSERT_TRUE(file.ok());
  auto number = file->ReadStringAttribute("", "number");
  ASSERT_FALSE(number.ok());
  EXPECT_TRUE(Contains(number.status().message(), "hdf5_kinds.h5"));
  EXPECT_TRUE(Contains(number.status().message(), "'number'"));
  EXPECT_TRUE(Contains(number.status().message(), "expected strings"));
  auto matrix = file->ReadStringAttribute("", "matrix");
  ASSERT_FALSE(matrix.ok());
  EXPECT_TRUE(Contains(matrix.status().message(), "rank 2"));
  auto several = file->ReadScalarStringAttribute("", "vlen_array");
  ASSERT_FALSE(several.ok());
  EXPECT_TRUE(Contains(several.status().message(), "expected exactly one"));
  auto missing = file->ReadStringAttribute("group", "nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(Contains(missing.status().message(), "/group"));
  EXPECT_TRUE(Contains(missing.status().message(), "'nope'"));
}

TEST(Hdf5FileTest, ReadsFloatDatasetsAsDouble) {
  auto file = Hdf5File::Open(Fixture("hdf5_kinds.h5"));
  ASSERT_TRUE(file.ok());
  auto f64 = file->ReadDataset("group/f64");
  ASSERT_TRUE(f64.ok()) << f64.status().ToString();
  EXPECT_EQ(f64->dims, (std::vector<std::int64_t>{2, 3}));
  EXPECT_EQ(f64->values, (std::vector<double>{0, 0.25, 0.5, 0.75, 1.0, 1.25}));
  auto f32 = file->ReadDataset("/group/f32");
  ASSERT_TRUE(f32.ok());
  EXPECT_EQ(f32->dims, (std::vector<std::int64_t>{4}));
  EXPECT_EQ(f32->values, (std::vector<double>{0.5, -1.25, 3.0, static_cast<double>(1e-3f)}));
  auto scalar = file->ReadDataset("group/scalar");
  ASSERT_TRUE(scalar.ok());
  EXPECT_TRUE(scalar->dims.empty());
  EXPECT_EQ(scalar->values, std::vector<double>{2.5});
  auto empty = file->ReadDataset("group/nested/x");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->dims, (std::vector<std::int64_t>{0, 3}));
  EXPECT_TRUE(empty->values.empty());
}

TEST(Hdf5FileTest, RejectsIntegerMissingAndOversizedDatasets) {
  auto file = Hdf5File::Open(Fixture("hdf5_kinds.h5"));
  ASSERT_TRUE(file.ok());
  auto ints = file->ReadDataset("group/ints");
  ASSERT_FALSE(ints.ok());
  EXPECT_TRUE(Contains(ints.status().message(), "/group/ints"));
  EXPECT_TRUE(Contains(ints.status().message(), "floating point"));
  auto missing = file->ReadDataset("group/missing/deeper");
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(Contains(missing.status().message(), "hdf5_kinds.h5: /group/missing/deeper"));
  auto group = file->ReadDataset("group");
  EXPECT_FALSE(group.ok());
  auto big = file->ReadDataset("group/f64", 5);
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.status().code(), StatusCode::kResourceExhausted);
}

TEST(Hdf5FileTest, ListsMembersAndChecksPaths) {
  auto file = Hdf5File::Open(Fixture("hdf5_kinds.h5"));
  ASSERT_TRUE(file.ok());
  auto members = file->ListMembers("group/order");
  ASSERT_TRUE(members.ok());
  EXPECT_EQ(*members, (std::vector<std::string>{"1", "10", "2"}));
  EXPECT_TRUE(file->Exists("group/f64"));
  EXPECT_FALSE(file->Exists("group/missing/deeper"));
  EXPECT_TRUE(file->IsGroup("group"));
  EXPECT_FALSE(file->IsGroup("group/f64"));
  EXPECT_TRUE(file->HasAttribute("", "fixed_scalar"));
  EXPECT_FALSE(file->HasAttribute("", "absent"));
  EXPECT_FALSE(file->HasAttribute("no/such/group", "fixed_scalar"));
  EXPECT_FALSE(file->ListMembers("group/f64").ok());
  Hdf5File moved = std::move(file.value());
  EXPECT_TRUE(moved.ReadDataset("group/f32").ok());
}

TEST(Hdf5FileTest, OpenRejectsMissingTruncatedAndTextFiles) {
  auto missing = Hdf5File::Open(Fixture("does_not_exist.h5"));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  auto text = Hdf5File::Open(Fixture("not_hdf5.h5"));
  ASSERT_FALSE(text.ok());
  EXPECT_TRUE(Contains(text.status().message(), "not_hdf5.h5: not an HDF5 file"));
  auto truncated = Hdf5File::Open(Fixture("truncated.h5"));
  ASSERT_FALSE(truncated.ok());
  EXPECT_TRUE(Contains(truncated.status().message(), "truncated.h5"));
}

// ---- good models ------------------------------------------------------------------------------

TEST(KerasImporterTest, Keras2JsonFindsSiblingWeights) {
  auto graph = ImportModel(Fixture("mlp.json"));
  ASSERT_TRUE(graph.ok()) << graph.status().ToString();
  EXPECT_EQ(graph->source_format, "keras");
  EXPECT_EQ(graph->name, "sequential");
  ASSERT_EQ(graph->inputs.size(), 1u);
  EXPECT_EQ(graph->inputs[0].name, "input_1");
  EXPECT_EQ(graph->inputs[0].shape, (model::Shape{4}));
  ASSERT_EQ(graph->outputs.size(), 1u);
  EXPECT_EQ(graph->outputs[0].name, "dense_1");
  EXPECT_EQ(CountKind(*graph, model::LayerKind::kDense), 2);  // Dropout leaves no trace
  EXPECT_EQ(graph->ParameterCount(), 4 * 8 + 8 + 8 * 3 + 3);
  ExpectMatchesNumpy(*graph, "mlp");
}

TEST(KerasImporterTest, ExplicitWeightsPathAndMissingWeightsFile) {
  const std::string dir = MakeTempDir();
  const std::string json_path = dir + "/model.json";
  WriteText(json_path, ReadText(Fixture("mlp.json")));

  auto without = ImportKeras(json_path, "", ImportOptions{});
  ASSERT_FALSE(without.ok());
  EXPECT_EQ(without.status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(Contains(without.status().message(), dir + "/model.h5"));
  EXPECT_TRUE(Contains(without.status().message(), dir + "/model.weights.h5"));
  EXPECT_TRUE(Contains(without.status().message(), "--weights"));

  ImportOptions options;
  options.weights_path = Fixture("mlp.h5");
  auto graph = ImportModel(json_path, options);
  ASSERT_TRUE(graph.ok()) << graph.status().ToString();
  ExpectMatchesNumpy(*graph, "mlp");
}

TEST(KerasImporterTest, FullModelHdf5WithBatchNormLeakyReluAndTanh) {
  auto graph = ImportModel(Fixture("mlp_full.h5"));
  ASSERT_TRUE(graph.ok()) << graph.status().ToString();
  EXPECT_EQ(graph->name, "sequential_1");
  EXPECT_EQ(graph->inputs[0].name, "input_2");
  EXPECT_EQ(graph->inputs[0].shape, (model::Shape{5}));
  EXPECT_EQ(graph->outputs[0].name, "dense_4");
  EXPECT_EQ(CountKind(*graph, model::LayerKind::kScale), 0);  // folded into dense_2
  const model::Layer* leaky = FindLayer(*graph, "leaky_re_lu");
  ASSERT_NE(leaky, nullptr);
  EXPECT_EQ(leaky->activation().kind, model::ActivationKind::kLeakyReLU);
  EXPECT_DOUBLE_EQ(leaky->activation().alpha, 0.1);
  ExpectMatchesNumpy(*graph, "mlp_full");
}

TEST(KerasImporterTest, UnfinalizedGraphHoldsTransposedKernelsAndBatchNormScale) {
  auto graph = ImportKeras(Fixture("mlp_full.h5"), "", ImportOptions{});
  ASSERT_TRUE(graph.ok()) << graph.status().ToString();
  const model::Layer* bn = FindLayer(*graph, "batch_normalization");
  ASSERT_NE(bn, nullptr);
  EXPECT_EQ(bn->kind, model::LayerKind::kScale);
  EXPECT_EQ(bn->scale().scale.size(), 6u);
  const model::Layer* dense = FindLayer(*graph, "dense_2");
  ASSERT_NE(dense, nullptr);
  ASSERT_EQ(dense->kind, model::LayerKind::kDense);
  EXPECT_EQ(dense->dense().in_features, 5);
  EXPECT_EQ(dense->dense().out_features, 6);
  auto h5 = Hdf5File::Open(Fixture("mlp_full.h5"));
  ASSERT_TRUE(h5.ok());
  auto kernel = h5->ReadDataset("model_weights/dense_2/dense_2/kernel:0");
  ASSERT_TRUE(kernel.ok());
  ASSERT_EQ(kernel->dims, (std::vector<std::int64_t>{5, 6}));
  for (int i = 0; i < 5; ++i) {
    for (int o = 0; o < 6; ++o) EXPECT_EQ(dense->dense().w(o, i), kernel->values[i * 6 + o]);
  }
}

TEST(KerasImporterTest, Keras3JsonFindsDotWeightsH5) {
  auto graph = ImportModel(Fixture("k3.json"));  // k3.h5 does not exist; k3.weights.h5 does
  ASSERT_TRUE(graph.ok()) << graph.status().ToString();
  EXPECT_EQ(graph->inputs[0].name, "input_layer");
  EXPECT_EQ(graph->inputs[0].shape, (model::Shape{3}));
  EXPECT_EQ(graph->outputs[0].name, "dense_1");
  ExpectMatchesNumpy(*graph, "k3");
}

TEST(KerasImporterTest, OldKerasBareLayerListWithChunkedLayerNames) {
  auto graph = ImportModel(Fixture("legacy.json"));
  ASSERT_TRUE(graph.ok()) << graph.status().ToString();
  EXPECT_EQ(graph->inputs[0].name, "input");
  EXPECT_EQ(graph->inputs[0].shape, (model::Shape{2}));
  EXPECT_EQ(graph->outputs[0].name, "flatten_1");  // a trailing no-op still names the output
  ExpectMatchesNumpy(*graph, "legacy");
}

TEST(KerasImporterTest, LeakyReluActivationStringUsesKerasDefaultSlope) {
  json model = FixtureJson("mlp.json");
  model["config"]["layers"][1]["config"]["activation"] = "leaky_relu";
  auto graph = ImportEditedMlp(model);
  ASSERT_TRUE(graph.ok()) << graph.status().ToString();
  int leaky = 0;
  for (const auto& l : graph->layers) {
    if (l.kind == model::LayerKind::kActivation &&
        l.activation().kind == model::ActivationKind::kLeakyReLU) {
      ++leaky;
      EXPECT_DOUBLE_EQ(l.activation().alpha, 0.2);
    }
  }
  EXPECT_EQ(leaky, 1);
}

// ---- bad models -------------------------------------------------------------------------------

TEST(KerasImporterTest, UnsupportedLayerNamesLayerClassAndSupportedList) {
  auto graph = ImportModel(Fixture("unsupported_conv.json"));
  ASSERT_FALSE(graph.ok());
  const std::string& m = graph.status().message();
  EXPECT_TRUE(Contains(m, "unsupported_conv.json"));
  EXPECT_TRUE(Contains(m, "layer 'conv2d' (class Conv2D): unsupported"));
  EXPECT_TRUE(Contains(m,
                       "supported: InputLayer, Dense, Activation, ReLU, LeakyReLU, Dropout, "
                       "Flatten, Reshape, BatchNormalization"));
}

TEST(KerasImporterTest, MissingLayerWeightsNameLayerAndWeightsFile) {
  auto graph = ImportModel(Fixture("missing_weights.json"));
  ASSERT_FALSE(graph.ok());
  const std::string& m = graph.status().message();
  EXPECT_TRUE(Contains(m, "missing_weights.json"));
  EXPECT_TRUE(Contains(m, "layer 'dense_1' (class Dense)"));
  EXPECT_TRUE(Contains(m, "missing_weights.h5"));
  EXPECT_TRUE(Contains(m, "expected kernel and bias"));
}

TEST(KerasImporterTest, KernelShapeMismatchNamesShapes) {
  auto graph = ImportModel(Fixture("kernel_mismatch.json"));
  ASSERT_FALSE(graph.ok());
  const std::string& m = graph.status().message();
  EXPECT_TRUE(Contains(m, "kernel_mismatch.json"));
  EXPECT_TRUE(Contains(m, "layer 'dense_1' (class Dense)"));
  EXPECT_TRUE(Contains(m, "has shape [8,2], expected [8,3]"));
}

TEST(KerasImporterTest, InputWidthMustMatchFirstKernel) {
  json model = FixtureJson("mlp.json");
  model["config"]["layers"][0]["config"]["batch_input_shape"] = {nullptr, 5};
  auto graph = ImportEditedMlp(model);
  ASSERT_FALSE(graph.ok());
  EXPECT_TRUE(Contains(graph.status().message(), "layer 'dense' (class Dense)"));
  EXPECT_TRUE(Contains(graph.status().message(), "has shape [4,8], expected [5,8]"));
}

TEST(KerasImporterTest, TruncatedAndNonHdf5FilesFailCleanly) {
  for (const char* name : {"truncated.h5", "not_hdf5.h5"}) {
    auto as_model = ImportKeras(Fixture(name), "", ImportOptions{});
    ASSERT_FALSE(as_model.ok()) << name;
    EXPECT_TRUE(Contains(as_model.status().message(), name));
    auto as_weights = ImportKeras(Fixture("mlp.json"), Fixture(name), ImportOptions{});
    ASSERT_FALSE(as_weights.ok()) << name;
    EXPECT_TRUE(Contains(as_weights.status().message(), name));
  }
  auto text = ImportKeras(Fixture("mlp.json"), Fixture("not_hdf5.h5"), ImportOptions{});
  EXPECT_TRUE(Contains(text.status().message(), "not an HDF5 file"));
}

TEST(KerasImporterTest, WeightsOnlyFileAsModelPointsToWeightsFlag) {
  auto graph = ImportKeras(Fixture("mlp.h5"), "", ImportOptions{});
  ASSERT_FALSE(graph.ok());
  EXPECT_TRUE(Contains(graph.status().message(), "mlp.h5"));
  EXPECT_TRUE(Contains(graph.status().message(), "model_config"));
  EXPECT_TRUE(Contains(graph.status().message(), "--weights"));
}

TEST(KerasImporterTest, UnknownActivationIsRejected) {
  json model = FixtureJson("mlp.json");
  model["config"]["layers"][3]["config"]["activation"] = "swish";
  auto graph = ImportEditedMlp(model);
  ASSERT_FALSE(graph.ok());
  EXPECT_TRUE(Contains(graph.status().message(), "edited.json"));
  EXPECT_TRUE(Contains(graph.status().message(), "layer 'dense_1' (class Dense)"));
  EXPECT_TRUE(Contains(graph.status().message(), "\"swish\""));
  EXPECT_TRUE(Contains(graph.status().message(), "supported: linear, relu"));
}

TEST(KerasImporterTest, ReluWithCapIsRejected) {
  json model = FixtureJson("mlp.json");
  auto& layers = model["config"]["layers"];
  layers.insert(layers.begin() + 2,
                json{{"class_name", "ReLU"},
                     {"config", {{"name", "re_lu"}, {"max_value", 6.0}, {"threshold", 0.0}}}});
  auto graph = ImportEditedMlp(model);
  ASSERT_FALSE(graph.ok());
  EXPECT_TRUE(Contains(graph.status().message(), "layer 're_lu' (class ReLU)"));
  EXPECT_TRUE(Contains(graph.status().message(), "max_value"));
}

TEST(KerasImporterTest, WrongJsonTypesAreReportedNotThrown) {
  json model = FixtureJson("mlp.json");
  model["config"]["layers"][1]["config"]["units"] = "8";
  auto units = ImportEditedMlp(model);
  ASSERT_FALSE(units.ok());
  EXPECT_TRUE(Contains(units.status().message(), "layer 'dense' (class Dense): units"));

  model = FixtureJson("mlp.json");
  model["config"]["layers"][1]["config"]["use_bias"] = 1;
  auto bias = ImportEditedMlp(model);
  ASSERT_FALSE(bias.ok());
  EXPECT_TRUE(Contains(bias.status().message(), "use_bias"));

  model = FixtureJson("mlp.json");
  model["config"]["layers"][2] = json::array({1, 2});
  auto layer = ImportEditedMlp(model);
  ASSERT_FALSE(layer.ok());
  EXPECT_TRUE(Contains(layer.status().message(), "layers[2]"));
}

TEST(KerasImporterTest, MalformedJsonAndFunctionalModelsAreRejected) {
  const std::string dir = MakeTempDir();
  WriteText(dir + "/broken.json", R"({"class_name": "Sequential", "config": {"layers": [)");
  auto broken = ImportKeras(dir + "/broken.json", Fixture("mlp.h5"), ImportOptions{});
  ASSERT_FALSE(broken.ok());
  EXPECT_TRUE(Contains(broken.status().message(), "broken.json"));
  EXPECT_TRUE(Contains(broken.status().message(), "JSON"));

  WriteText(dir + "/functional.json",
            R"({"class_name": "Functional", "config": {"name": "model", "layers": []}})");
  auto functional = ImportKeras(dir + "/functional.json", Fixture("mlp.h5"), ImportOptions{});
  ASSERT_FALSE(functional.ok());
  EXPECT_EQ(functional.status().code(), StatusCode::kUnimplemented);
  EXPECT_TRUE(Contains(functional.status().message(), "'Functional'"));
  EXPECT_TRUE(Contains(functional.status().message(), "Sequential"));
}

TEST(KerasImporterTest, MultiDimensionalInputIsRejected) {
  json model = FixtureJson("mlp.json");
  model["config"]["layers"][0]["config"]["batch_input_shape"] = {nullptr, 2, 2};
  auto graph = ImportEditedMlp(model);
  ASSERT_FALSE(graph.ok());
  EXPECT_TRUE(Contains(graph.status().message(), "layer 'input_1' (class InputLayer)"));
  EXPECT_TRUE(Contains(graph.status().message(), "flat feature vectors"));
}

TEST(KerasImporterTest, LayerCountLimitIsEnforced) {
  ImportOptions options;
  options.max_layers = 2;
  auto graph = ImportKeras(Fixture("mlp.json"), "", options);
  ASSERT_FALSE(graph.ok());
  EXPECT_EQ(graph.status().code(), StatusCode::kResourceExhausted);
}

}  // namespace
}  // namespace fpgaserve::importers
