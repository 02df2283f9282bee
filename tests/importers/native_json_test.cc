#include <gtest/gtest.h>

#include "importers/import.h"
#include "model/passes.h"
#include "model/reference_evaluator.h"
#include "test_files.h"

namespace fpgaserve::importers {
namespace {

constexpr const char* kModel = R"({
  "format": "fpgaserve-model", "version": 1, "name": "tiny",
  "inputs": [{"name": "x", "shape": [3], "datatype": "FP32"}],
  "outputs": [{"name": "y"}],
  "layers": [
    {"name": "norm", "op": "Scale", "inputs": ["x"], "outputs": ["xn"],
     "scale": [1, 0.5, 2], "shift": [0, 1, -1]},
    {"name": "fc", "op": "Dense", "inputs": ["xn"], "outputs": ["h"],
     "weights": [[1, 2, 3], [-1, 0, 1]], "bias": [0.5, -0.5]},
    {"name": "act", "op": "LeakyReLU", "alpha": 0.2, "inputs": ["h"], "outputs": ["y"]}
  ]})";

std::string ImportError(const std::string& text) {
  testing::TempDir dir;
  auto g = ImportModel(dir.Write("m.json", text));
  return g.ok() ? "" : g.status().message();
}

TEST(NativeJsonTest, ImportsFoldsAndEvaluates) {
  testing::TempDir dir;
  auto g = ImportModel(dir.Write("m.json", kModel));
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_EQ(g->source_format, "native");
  EXPECT_EQ(g->name, "tiny");
  ASSERT_EQ(g->layers.size(), 2u);  // Scale folded into the Dense
  auto out = model::EvaluateReference(*g, model::SampleBatch{1, 3, {1, 2, 3}});
  ASSERT_TRUE(out.ok());
  // xn = [1, 2, 5]; h = [1+4+15+0.5, -1+5-0.5] = [20.5, 3.5]
  EXPECT_NEAR(out->values[0], 20.5, 1e-12);
  EXPECT_NEAR(out->values[1], 3.5, 1e-12);
}

TEST(NativeJsonTest, ExportImportRoundTripIsExact) {
  testing::TempDir dir;
  auto g = ImportModel(dir.Write("m.json", kModel));
  ASSERT_TRUE(g.ok());
  auto again = ImportModel(dir.Write("again.json", ExportNative(*g)));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  ASSERT_EQ(again->layers.size(), g->layers.size());
  EXPECT_EQ(again->layers[0].dense().weights, g->layers[0].dense().weights);
  EXPECT_EQ(again->layers[0].dense().bias, g->layers[0].dense().bias);
  EXPECT_EQ(again->layers[1].activation().alpha, 0.2);
}

TEST(NativeJsonTest, ErrorsNameThePathAndExpectation) {
  std::string m = kModel;
  auto replaced = [&](const std::string& from, const std::string& to) {
    std::string s = m;
    s.replace(s.find(from), from.size(), to);
    return ImportError(s);
  };
  EXPECT_NE(replaced("\"version\": 1", "\"version\": 2").find("version 2 is not supported"),
            std::string::npos);
  std::string other = m;
  other.replace(other.find("fpgaserve-model"), 15, "other");
  auto direct = ImportNative(other, "m.json");
  ASSERT_FALSE(direct.ok());
  EXPECT_NE(direct.status().message().find("expected \"fpgaserve-model\""), std::string::npos);
  auto msg = replaced("\"LeakyReLU\"", "\"Conv2D\"");
  EXPECT_NE(msg.find("'Conv2D' is not supported; supported: Dense"), std::string::npos) << msg;
  EXPECT_NE(msg.find("layers[2]"), std::string::npos) << msg;
  msg = replaced("[-1, 0, 1]", "[-1, 0]");
  EXPECT_NE(msg.find("weights[1]: has 2 values; expected 3"), std::string::npos) << msg;
  msg = replaced("[-1, 0, 1]", "[-1, \"zero\", 1]");
  EXPECT_NE(msg.find("weights[1][1]: expected a number, found a string"), std::string::npos) << msg;
  msg = replaced("\"bias\": [0.5, -0.5]", "\"bias\": [0.5]");
  EXPECT_NE(msg.find("has 1 biases; expected 2"), std::string::npos) << msg;
  msg = replaced("\"shape\": [3]", "\"shape\": [4]");
  EXPECT_NE(msg.find("has 4 features (shape [4]); expected 3"), std::string::npos) << msg;
  EXPECT_FALSE(ImportError(m.substr(0, m.size() / 2)).empty());
}

}  // namespace
}  // namespace fpgaserve::importers
