#include "core/text.h"

#include <gtest/gtest.h>

#include <random>

namespace fpgaserve {
namespace {

TEST(TextTest, FormatDoubleRoundTrips) {
  std::mt19937_64 rng(1234);
  std::uniform_real_distribution<double> d(-1e6, 1e6);
  for (int i = 0; i < 1000; ++i) {
    double v = d(rng);
    EXPECT_EQ(*ParseDouble(FormatDouble(v)), v);
  }
  EXPECT_EQ(FormatDouble(0.1), "0.1");
}

TEST(TextTest, ParseDoubleRejectsJunk) {
  EXPECT_FALSE(ParseDouble("").has_value());
  EXPECT_FALSE(ParseDouble("1.5x").has_value());
  EXPECT_FALSE(ParseDouble("abc").has_value());
  EXPECT_EQ(*ParseDouble(" +2.5 "), 2.5);
  EXPECT_EQ(*ParseDouble("-1e3"), -1000.0);
}

TEST(TextTest, JoinTrimQuote) {
  EXPECT_EQ(Join({"a", "b", "c"}, ", "), "a, b, c");
  EXPECT_EQ(Trim("  x \r\n"), "x");
  EXPECT_EQ(Quote("abcdef", 3), "'abc...'");
}

}  // namespace
}  // namespace fpgaserve
