#include "model/reference_evaluator.h"

#include <gtest/gtest.h>

#include <cmath>

#include "model/passes.h"
#include "test_graphs.h"

namespace fpgaserve::model {
namespace {

TEST(ReferenceEvaluatorTest, TwoLayerMlpByHand) {
  Graph g = testing::TwoLayerMlp();
  ASSERT_TRUE(Finalize(g).ok());
  SampleBatch in{2, 2, {1.0, 2.0, -1.0, 0.5}};
  auto out = EvaluateReference(g, in);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  // row 0: h = [1, 2, 1-2+0.5=-0.5] -> relu [1,2,0] -> logits [3, 0]
  double e = std::exp(3.0);
  EXPECT_NEAR(out->at(0, 0), e / (e + 1), 1e-15);
  EXPECT_NEAR(out->at(0, 1), 1 / (e + 1), 1e-15);
  // row 1: h = [-1, 0.5, -1-0.5+0.5=-1] -> relu [0,0.5,0] -> logits [0.5, 0]
  double f = std::exp(0.5);
  EXPECT_NEAR(out->at(1, 0), f / (f + 1), 1e-15);
  EXPECT_EQ(ArgmaxRows(*out), (std::vector<std::int64_t>{0, 0}));
}

TEST(ReferenceEvaluatorTest, Activations) {
  Graph g;
  g.inputs.push_back({"x", {3}});
  g.layers.push_back(MakeActivation("l", "x", "y", ActivationKind::kLeakyReLU, 0.1));
  g.layers.push_back(MakeActivation("s", "y", "z", ActivationKind::kSigmoid));
  g.layers.push_back(MakeActivation("t", "z", "w", ActivationKind::kTanh));
  g.outputs.push_back({"w", {}});
  ASSERT_TRUE(Finalize(g).ok());
  auto out = EvaluateReference(g, SampleBatch{1, 3, {-2.0, 0.0, 3.0}});
  ASSERT_TRUE(out.ok());
  auto expect = [](double x) {
    double l = x >= 0 ? x : 0.1 * x;
    return std::tanh(1 / (1 + std::exp(-l)));
  };
  const double xs[3] = {-2.0, 0.0, 3.0};
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(out->values[i], expect(xs[i]), 1e-15);
}

TEST(ReferenceEvaluatorTest, SoftmaxIsStableForLargeLogits) {
  Graph g;
  g.inputs.push_back({"x", {2}});
  g.layers.push_back(MakeActivation("sm", "x", "y", ActivationKind::kSoftmax));
  g.outputs.push_back({"y", {}});
  ASSERT_TRUE(Finalize(g).ok());
  auto out = EvaluateReference(g, SampleBatch{1, 2, {1000.0, 1000.0}});
  ASSERT_TRUE(out.ok());
  EXPECT_DOUBLE_EQ(out->values[0], 0.5);
}

TEST(ReferenceEvaluatorTest, RejectsWrongInputWidth) {
  Graph g = testing::TwoLayerMlp();
  ASSERT_TRUE(Finalize(g).ok());
  auto out = EvaluateReference(g, SampleBatch{1, 3, {1, 2, 3}});
  ASSERT_FALSE(out.ok());
  EXPECT_NE(out.status().message().find("has 3 features per sample; expected 2"), std::string::npos);
}

}  // namespace
}  // namespace fpgaserve::model
