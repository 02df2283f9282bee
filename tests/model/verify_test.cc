#include "model/verify.h"

#include <gtest/gtest.h>

#include <cmath>

#include "model/passes.h"
#include "test_graphs.h"

namespace fpgaserve::model {
namespace {

std::string FinalizeError(Graph g) {
  Status st = Finalize(g);
  return st.ok() ? "" : st.message();
}

TEST(VerifyTest, AcceptsValidGraph) {
  Graph g = testing::TwoLayerMlp();
  ASSERT_TRUE(Finalize(g).ok());
  EXPECT_EQ(g.outputs[0].shape, (Shape{2}));
  EXPECT_TRUE(Verify(g).ok());
}

TEST(VerifyTest, ShapeMismatchNamesLayerAndWidths) {
  Graph g = testing::TwoLayerMlp();
  g.layers[2].dense() = DenseParams{4, 2, std::vector<double>(8, 1.0), {0, 0}};
  auto msg = FinalizeError(g);
  EXPECT_NE(msg.find("layer 'fc2' (Dense)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("has 3 features"), std::string::npos) << msg;
  EXPECT_NE(msg.find("expected 4"), std::string::npos) << msg;
}

TEST(VerifyTest, NanAndInfWeightsFail) {
  Graph g = testing::TwoLayerMlp();
  g.layers[0].dense().weights[3] = std::nan("");
  auto msg = FinalizeError(g);
  EXPECT_NE(msg.find("layer 'fc1' (Dense): weight[3] is nan"), std::string::npos) << msg;
  g = testing::TwoLayerMlp();
  g.layers[2].dense().bias[1] = INFINITY;
  msg = FinalizeError(g);
  EXPECT_NE(msg.find("bias[1] is inf"), std::string::npos) << msg;
}

TEST(VerifyTest, WrongWeightCount) {
  Graph g = testing::TwoLayerMlp();
  g.layers[0].dense().weights.pop_back();
  auto msg = FinalizeError(g);
  EXPECT_NE(msg.find("has 5 weights; expected 6"), std::string::npos) << msg;
}

TEST(VerifyTest, UndefinedTensorAndDuplicateOutputs) {
  Graph g = testing::TwoLayerMlp();
  g.layers[2].inputs[0] = "nowhere";
  auto msg = FinalizeError(g);
  EXPECT_NE(msg.find("'nowhere' is not defined"), std::string::npos) << msg;

  g = testing::TwoLayerMlp();
  g.layers[1].outputs[0] = "h";
  EXPECT_FALSE(FinalizeError(g).empty());

  g = testing::TwoLayerMlp();
  g.outputs[0].name = "missing";
  msg = FinalizeError(g);
  EXPECT_NE(msg.find("graph output 'missing'"), std::string::npos) << msg;
}

TEST(VerifyTest, EmptyGraphAndDuplicateLayerNames) {
  Graph g;
  EXPECT_FALSE(Verify(g).ok());
  g = testing::TwoLayerMlp();
  g.layers[1].name = "fc1";
  auto msg = FinalizeError(g);
  EXPECT_NE(msg.find("two layers are named 'fc1'"), std::string::npos) << msg;
}

TEST(VerifyTest, ParamsMustMatchKind) {
  Graph g = testing::TwoLayerMlp();
  g.layers[1].params = DenseParams{};  // an activation whose params say Dense
  EXPECT_FALSE(FinalizeError(g).empty());
}

}  // namespace
}  // namespace fpgaserve::model
