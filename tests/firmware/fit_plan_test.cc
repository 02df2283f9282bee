#include "firmware/fit_plan.h"

#include <gtest/gtest.h>

#include "importers/import.h"

namespace fpgaserve::firmware {
namespace {

constexpr const char* kBanknote = FPGASERVE_SOURCE_DIR "/examples/banknote/banknote.onnx";
constexpr const char* kJet = FPGASERVE_SOURCE_DIR "/examples/jet_tagger/jet_tagger.onnx";

struct Model {
  model::Graph graph;
  numeric::PrecisionConfig precision;
};

Model Load(const char* path) {
  Model m;
  auto g = importers::ImportModel(path);
  EXPECT_TRUE(g.ok()) << g.status().ToString();
  m.graph = *g;
  auto p = numeric::ResolvePrecision(m.graph, {"fixed<16,6>", ""}, nullptr);
  EXPECT_TRUE(p.ok());
  m.precision = *p;
  return m;
}

TEST(FitPlanTest, SimBoardIsUnlimitedSoAutoIsFullyParallel) {
  Model m = Load(kBanknote);
  auto plan = PlanFit(m.graph, m.precision, *boards::FindBoard("sim"), 0);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(plan->design.initiation_interval, 1);
  EXPECT_EQ(plan->design.latency_cycles, 6);
}

TEST(FitPlanTest, BanknoteOnIcebreakerNeedsReuseAndAutoFindsIt) {
  Model m = Load(kBanknote);
  const auto ice = *boards::FindBoard("icebreaker");
  auto full = PlanFit(m.graph, m.precision, ice, 1);
  ASSERT_FALSE(full.ok());
  EXPECT_EQ(full.status().code(), StatusCode::kFailedPrecondition);
  const std::string msg = full.status().message();
  EXPECT_NE(msg.find("does not fit icebreaker at --reuse 1: needs"), std::string::npos) << msg;
  EXPECT_NE(msg.find("DSP (has 8)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("try --reuse"), std::string::npos) << msg;
  auto plan = PlanFit(m.graph, m.precision, ice, 0);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_LE(plan->estimate.dsp, 8);
  EXPECT_LE(plan->estimate.lut, 5280 * kLutBudget);
  EXPECT_EQ(Overuse(plan->estimate, ice), "");
  // Auto is per layer: not every layer had to go to the same factor.
  EXPECT_GT(plan->design.initiation_interval, 1);
}

TEST(FitPlanTest, JetTaggerDoesNotFitIcebreakerAndSaysWhatItNeeds) {
  Model m = Load(kJet);
  const auto ice = *boards::FindBoard("icebreaker");
  auto full = PlanFit(m.graph, m.precision, ice, 1);
  ASSERT_FALSE(full.ok());
  EXPECT_NE(full.status().message().find("does not fit icebreaker at --reuse 1"), std::string::npos);
  auto best = PlanFit(m.graph, m.precision, ice, 0);
  ASSERT_FALSE(best.ok());
  EXPECT_NE(best.status().message().find("the smallest design"), std::string::npos)
      << best.status().message();
  // A large AMD part takes it fully parallel.
  auto u50 = PlanFit(m.graph, m.precision, *boards::FindBoard("alveo-u50"), 0);
  ASSERT_TRUE(u50.ok()) << u50.status().ToString();
  EXPECT_EQ(u50->design.initiation_interval, 1);
}

TEST(FitPlanTest, EstimateTracksTheReuseFactor) {
  Model m = Load(kBanknote);
  const auto z = *boards::FindBoard("zedboard");
  auto r1 = PlanFit(m.graph, m.precision, z, 1);
  auto r16 = PlanFit(m.graph, m.precision, z, 16);
  ASSERT_TRUE(r1.ok() && r16.ok());
  EXPECT_GT(r1->estimate.dsp, r16->estimate.dsp);
  EXPECT_EQ(r16->estimate.dsp, 4 + 2 + 2);  // 4 + 2 multipliers, 2 softmax products (DSP48)
  EXPECT_EQ(r1->estimate.layers.size(), m.graph.layers.size());
}

}  // namespace
}  // namespace fpgaserve::firmware
