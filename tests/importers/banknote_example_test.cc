// The committed banknote example must import identically from every format and agree with the
// PyTorch outputs that train.py stored beside it.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "core/csv.h"
#include "importers/import.h"
#include "model/reference_evaluator.h"

namespace fpgaserve::importers {
namespace {

const std::string kExample = std::string(FPGASERVE_SOURCE_DIR) + "/examples/banknote/";

struct Reference {
  model::SampleBatch inputs;
  std::vector<double> torch32, torch64;
};

Reference LoadReference() {
  std::ifstream in(kExample + "reference_outputs.json");
  auto j = nlohmann::json::parse(in);
  Reference r;
  for (const auto& row : j["inputs"]) {
    for (double v : row) r.inputs.values.push_back(v);
    r.inputs.features = row.size();
    ++r.inputs.rows;
  }
  for (const auto& row : j["torch_float32"]) {
    for (double v : row) r.torch32.push_back(v);
  }
  for (const auto& row : j["torch_float64"]) {
    for (double v : row) r.torch64.push_back(v);
  }
  return r;
}

model::SampleBatch Evaluate(const std::string& file, const model::SampleBatch& in) {
  auto g = ImportModel(kExample + file);
  EXPECT_TRUE(g.ok()) << g.status().ToString();
  if (!g.ok()) return {};
  auto out = model::EvaluateReference(*g, in);
  EXPECT_TRUE(out.ok()) << out.status().ToString();
  return out.ok() ? *out : model::SampleBatch{};
}

TEST(BanknoteExampleTest, OnnxMatchesPyTorch) {
  Reference ref = LoadReference();
  ASSERT_EQ(ref.inputs.features, 4u);
  auto out = Evaluate("banknote.onnx", ref.inputs);
  ASSERT_EQ(out.values.size(), ref.torch64.size());
  for (std::size_t i = 0; i < out.values.size(); ++i) {
    EXPECT_NEAR(out.values[i], ref.torch64[i], 1e-5) << "element " << i;
    EXPECT_NEAR(out.values[i], ref.torch32[i], 1e-5) << "element " << i;
  }
}

TEST(BanknoteExampleTest, NeuralbondMatchesOnnx) {
  Reference ref = LoadReference();
  auto onnx = Evaluate("banknote.onnx", ref.inputs);
  auto nb = Evaluate("banknote.neuralbond.json", ref.inputs);
  ASSERT_EQ(onnx.values.size(), nb.values.size());
  ASSERT_FALSE(onnx.values.empty());
  for (std::size_t i = 0; i < onnx.values.size(); ++i) {
    EXPECT_NEAR(onnx.values[i], nb.values[i], 1e-6) << "element " << i;
  }
}

TEST(BanknoteExampleTest, AccuracyOnTheWholeDataSet) {
  const std::string csv = std::string(FPGASERVE_SHARED_DIR) + "/data/banknote_authentication.csv";
  if (!std::filesystem::exists(csv)) {
    GTEST_SKIP() << "data set not found: " << csv
                 << " (expected ../shared/data/banknote_authentication.csv beside the project)";
  }
  auto table = ReadNumericCsv(csv);
  ASSERT_TRUE(table.ok()) << table.status().ToString();
  auto data = SplitLabelColumn(*table, "class", csv);
  ASSERT_TRUE(data.ok());
  auto out = Evaluate("banknote.onnx", model::SampleBatch{data->rows, 4, data->features});
  auto pred = model::ArgmaxRows(out);
  std::size_t correct = 0;
  for (std::size_t r = 0; r < data->rows; ++r) correct += pred[r] == data->labels[r];
  EXPECT_GE(static_cast<double>(correct) / data->rows, 0.98);
}

}  // namespace
}  // namespace fpgaserve::importers
