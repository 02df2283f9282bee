#include "model/passes.h"

#include <gtest/gtest.h>

#include <random>

#include "model/reference_evaluator.h"
#include "test_graphs.h"

namespace fpgaserve::model {
namespace {

TEST(PassesTest, SortRestoresTopologicalOrder) {
  Graph g = testing::TwoLayerMlp();
  std::swap(g.layers[0], g.layers[3]);
  std::swap(g.layers[1], g.layers[2]);
  ASSERT_TRUE(SortTopologically(g).ok());
  EXPECT_EQ(g.layers[0].name, "fc1");
  EXPECT_EQ(g.layers[3].name, "softmax");
}

TEST(PassesTest, SortReportsCycles) {
  Graph g = testing::TwoLayerMlp();
  g.layers[0].inputs[0] = "probs";  // fc1 now reads the softmax output
  Status st = SortTopologically(g);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("cycle"), std::string::npos);
  EXPECT_NE(st.message().find("'fc1'"), std::string::npos);
}

// Affine folding must not change what the network computes.
TEST(PassesTest, FoldingScaleBeforeAndAfterDensePreservesOutputs) {
  Graph g;
  g.inputs.push_back({"x", {2}});
  g.layers.push_back(MakeScale("standardize", "x", "xs", ScaleParams{{0.5, 2.0}, {-1.0, 3.0}}));
  g.layers.push_back(MakeDense("fc", "xs", "y", DenseParams{2, 2, {1, 2, 3, 4}, {0.1, 0.2}}));
  g.layers.push_back(MakeScale("bn", "y", "yb", ScaleParams{{3.0, -1.0}, {0.5, 0.25}}));
  g.layers.push_back(MakeActivation("act", "yb", "out", ActivationKind::kTanh));
  g.outputs.push_back({"out", {}});
  Graph unfolded = g;
  ASSERT_TRUE(InferShapes(unfolded).ok());

  ASSERT_TRUE(Finalize(g).ok());
  ASSERT_EQ(g.layers.size(), 2u);
  EXPECT_EQ(g.layers[0].kind, LayerKind::kDense);

  std::mt19937 rng(7);
  std::uniform_real_distribution<double> u(-5, 5);
  SampleBatch in{16, 2, {}};
  for (int i = 0; i < 32; ++i) in.values.push_back(u(rng));
  auto a = EvaluateReference(unfolded, in);
  auto b = EvaluateReference(g, in);
  ASSERT_TRUE(a.ok() && b.ok());
  for (std::size_t i = 0; i < a->values.size(); ++i) {
    EXPECT_NEAR(a->values[i], b->values[i], 1e-12);
  }
}

TEST(PassesTest, ScaleFeedingTwoLayersIsKept) {
  Graph g;
  g.inputs.push_back({"x", {2}});
  g.layers.push_back(MakeDense("fc", "x", "y", DenseParams{2, 2, {1, 0, 0, 1}, {0, 0}}));
  g.layers.push_back(MakeScale("s", "y", "ys", ScaleParams{{2, 2}, {0, 0}}));
  g.outputs.push_back({"y", {}});
  g.outputs.push_back({"ys", {}});
  ASSERT_TRUE(Finalize(g).ok());
  EXPECT_EQ(g.layers.size(), 2u);  // "y" is a graph output, so the Scale cannot be folded
}

TEST(PassesTest, ScalarScaleIsBroadcast) {
  Graph g;
  g.inputs.push_back({"x", {3}});
  g.layers.push_back(MakeScale("s", "x", "y", ScaleParams{{2}, {1}}));
  g.outputs.push_back({"y", {}});
  ASSERT_TRUE(Finalize(g).ok()) << Finalize(g).ToString();
  EXPECT_EQ(g.layers[0].scale().scale.size(), 3u);
  EXPECT_EQ(g.outputs[0].shape, (Shape{3}));
}

TEST(PassesTest, FinalizeRejectsEmptyGraph) {
  Graph g;
  g.inputs.push_back({"x", {3}});
  g.outputs.push_back({"x", {}});
  Status st = Finalize(g);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("empty graph"), std::string::npos);
}

}  // namespace
}  // namespace fpgaserve::model
