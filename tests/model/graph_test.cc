#include "model/graph.h"

#include <gtest/gtest.h>

#include "test_graphs.h"

namespace fpgaserve::model {
namespace {

TEST(GraphTest, ShapesAndNames) {
  EXPECT_EQ(ElementCount({2, 3, 4}), 24);
  EXPECT_EQ(ElementCount({2, 0}), 0);
  EXPECT_EQ(ElementCount({1LL << 40, 1LL << 40}), -1);
  EXPECT_EQ(ShapeToString({1, 28, 28}), "[1,28,28]");
  EXPECT_STREQ(ActivationName(ActivationKind::kLeakyReLU), "LeakyReLU");
}

TEST(GraphTest, ProducersConsumersAndParameters) {
  Graph g = testing::TwoLayerMlp();
  EXPECT_EQ(g.ProducerOf("hr"), 1);
  EXPECT_EQ(g.ProducerOf("x"), -1);
  EXPECT_EQ(g.ConsumersOf("h"), std::vector<int>{1});
  EXPECT_EQ(g.ParameterCount(), 6 + 3 + 6 + 2);
  EXPECT_EQ(g.layers[1].OpName(), "ReLU");
  EXPECT_EQ(g.layers[0].OpName(), "Dense");
}

}  // namespace
}  // namespace fpgaserve::model
