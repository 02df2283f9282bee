#include "numeric/precision.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "model/passes.h"

namespace fpgaserve::numeric {
namespace {

model::Graph SmallMlp() {
  model::Graph g;
  g.name = "mlp";
  g.inputs.push_back({"x", {2}});
  g.layers.push_back(model::MakeDense("fc1", "x", "h", {2, 3, {1.5, -0.5, 0.25, 3.0, -7.0, 0.125}, {0.5, 0, -1}}));
  g.layers.push_back(model::MakeActivation("relu", "h", "hr", model::ActivationKind::kReLU));
  g.layers.push_back(model::MakeDense("fc2", "hr", "l", {3, 2, {1, 1, 0, 0, 0, 1}, {0, 0}}));
  g.layers.push_back(model::MakeActivation("sm", "l", "p", model::ActivationKind::kSoftmax));
  g.outputs.push_back({"p", {}});
  EXPECT_TRUE(model::Finalize(g).ok());
  return g;
}

std::string WriteTemp(const std::string& name, const std::string& text) {
  auto p = std::filesystem::temp_directory_path() / ("fpgaserve_precision_" + name);
  std::ofstream(p) << text;
  return p.string();
}

TEST(PrecisionTest, IntegerBitsAndAccumulator) {
  EXPECT_EQ(SignedIntegerBitsFor(0.9), 1);
  EXPECT_EQ(SignedIntegerBitsFor(1.0), 2);
  EXPECT_EQ(SignedIntegerBitsFor(7.0), 4);
  EXPECT_EQ(SignedIntegerBitsFor(8.0), 5);
  FixedFormat x{16, 6}, w{16, 6}, b{16, 6};
  FixedFormat acc = NonOverflowingAccum(x, w, b, 4);
  EXPECT_EQ(acc.fraction_bits(), 20);
  // products < 2^10, 4 products + bias < 5·2^10 < 2^13 -> 13 magnitude bits + sign
  EXPECT_EQ(acc.integer_bits, 14);
  EXPECT_EQ(acc.width, 34);
}

TEST(PrecisionTest, UniformFixedSpec) {
  auto g = SmallMlp();
  auto cfg = ResolvePrecision(g, {"fixed<16,6>", ""}, nullptr);
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  EXPECT_EQ(cfg->input.ToString(), "fixed<16,6>");
  const auto& fc1 = cfg->layers.at("fc1");
  EXPECT_EQ(fc1.weight.ToString(), "fixed<16,6>");
  EXPECT_EQ(fc1.result.ToString(), "fixed<16,6>");
  EXPECT_EQ(fc1.accum.fixed().fraction_bits(), 20);
  EXPECT_EQ(cfg->layers.size(), 4u);
}

TEST(PrecisionTest, UniformFloatSpec) {
  auto g = SmallMlp();
  auto cfg = ResolvePrecision(g, {"float16", ""}, nullptr);
  ASSERT_TRUE(cfg.ok());
  EXPECT_EQ(cfg->layers.at("fc2").accum.ToString(), "float16");
  EXPECT_EQ(cfg->input.ToString(), "float16");
}

TEST(PrecisionTest, AutoNeedsCalibrationAndUsesRanges) {
  auto g = SmallMlp();
  EXPECT_FALSE(ResolvePrecision(g, {"auto", ""}, nullptr).ok());
  model::SampleBatch data{3, 2, {1, 2, -3, 0.5, 10, -10}};
  auto ranges = Calibrate(g, data);
  ASSERT_TRUE(ranges.ok());
  EXPECT_EQ(ranges->input_max_abs, 10);
  auto cfg = ResolvePrecision(g, {"auto", ""}, &*ranges);
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  EXPECT_EQ(cfg->input.fixed().integer_bits, 5);  // |x| <= 10
  EXPECT_EQ(cfg->layers.at("fc1").weight.fixed().integer_bits, 4);  // |w| <= 7
  EXPECT_EQ(cfg->layers.at("sm").result.fixed().integer_bits, 2);    // probabilities
  EXPECT_EQ(cfg->layers.at("fc1").result.fixed().overflow, Overflow::kSat);
  model::SampleBatch nan_data{1, 2, {1, std::nan("")}};
  EXPECT_FALSE(Calibrate(g, nan_data).ok());
}

TEST(PrecisionTest, ConfigFileOverrides) {
  auto g = SmallMlp();
  auto path = WriteTemp("ok.yaml",
                        "precision: fixed<18,8>\n"
                        "input: fixed<12,5,RND,SAT>\n"
                        "softmax: argmax\n"
                        "layers:\n"
                        "  fc1:\n"
                        "    weight: fixed<8,4>\n"
                        "    result: fixed<10,5>\n"
                        "  sm:\n"
                        "    table_size: 256\n");
  auto cfg = ResolvePrecision(g, {"", path}, nullptr);
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  EXPECT_EQ(cfg->input.ToString(), "fixed<12,5,RND,SAT>");
  EXPECT_EQ(cfg->softmax, SoftmaxMode::kArgmax);
  EXPECT_EQ(cfg->layers.at("fc1").weight.ToString(), "fixed<8,4>");
  EXPECT_EQ(cfg->layers.at("fc1").bias.ToString(), "fixed<18,8>");
  EXPECT_EQ(cfg->layers.at("fc1").accum.fixed().fraction_bits(), 7 + 4);
  EXPECT_EQ(cfg->layers.at("sm").table_size, 256);
  // JSON is read by the same parser.
  auto json = WriteTemp("ok.json", R"({"precision": "float32", "layers": {"fc2": {"precision": "bfloat16"}}})");
  auto cj = ResolvePrecision(g, {"", json}, nullptr);
  ASSERT_TRUE(cj.ok()) << cj.status().ToString();
  EXPECT_EQ(cj->layers.at("fc2").accum.ToString(), "bfloat16");
  EXPECT_EQ(cj->layers.at("fc1").accum.ToString(), "float32");
}

TEST(PrecisionTest, BadSpecsAndFiles) {
  auto g = SmallMlp();
  for (const char* bad : {"fixed<0,3>", "fixed<70,3>", "float<1,0>", "fixed<16,6,FOO>", "int8", "auto<99>"}) {
    auto r = ResolvePrecision(g, {bad, ""}, nullptr);
    EXPECT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.status().message().find(bad), std::string::npos) << r.status().message();
  }
  auto unknown = ResolvePrecision(g, {"", WriteTemp("bad1.yaml", "layers:\n  fc9:\n    weight: fixed<8,3>\n")}, nullptr);
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("no layer named 'fc9'"), std::string::npos);
  EXPECT_NE(unknown.status().message().find("'fc1'"), std::string::npos);
  auto mixed = ResolvePrecision(g, {"", WriteTemp("bad2.yaml", "layers:\n  fc1:\n    weight: float16\n")}, nullptr);
  ASSERT_FALSE(mixed.ok());
  EXPECT_NE(mixed.status().message().find("mix fixed and float"), std::string::npos);
  auto table = ResolvePrecision(g, {"", WriteTemp("bad3.yaml", "table_size: 1000\n")}, nullptr);
  ASSERT_FALSE(table.ok());
  EXPECT_NE(table.status().message().find("power of two"), std::string::npos);
  auto key = ResolvePrecision(g, {"", WriteTemp("bad4.yaml", "precison: fixed<8,3>\n")}, nullptr);
  ASSERT_FALSE(key.ok());
  EXPECT_NE(key.status().message().find("unknown setting"), std::string::npos);
  auto syntax = ResolvePrecision(g, {"", WriteTemp("bad5.yaml", "layers: [unclosed\n")}, nullptr);
  EXPECT_FALSE(syntax.ok());
  EXPECT_FALSE(ResolvePrecision(g, {"fixed<8,3>", "also.yaml"}, nullptr).ok());
}

}  // namespace
}  // namespace fpgaserve::numeric
