#include "numeric/float_functions.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

namespace fpgaserve::numeric {
namespace {

// Distance in units in the last place of `f` between a result and the true value.
double UlpError(FloatBits got, double want, const FloatFormat& f) {
  const double g = FloatToDouble(got, f);
  int e = 0;
  std::frexp(want, &e);
  const int min_exp = 2 - f.bias();  // smallest normal exponent
  const double ulp = std::ldexp(1.0, std::max(e - 1, min_exp - 1) - f.mantissa_bits);
  return std::fabs(g - want) / ulp;
}

TEST(FloatFunctionsTest, ExpSigmoidTanhFloat32WithinAFewUlp) {
  std::mt19937 rng(2024);
  std::uniform_real_distribution<double> u(-30, 30);
  double worst_exp = 0, worst_sig = 0, worst_tanh = 0;
  for (int i = 0; i < 200000; ++i) {
    const double xd = (i % 4 == 0) ? u(rng) / 64 : u(rng);
    const FloatBits x = FloatFromDouble(xd, kFloat32);
    const double xv = FloatToDouble(x, kFloat32);
    worst_exp = std::max(worst_exp, UlpError(FloatExp(x, kFloat32), std::exp(xv), kFloat32));
    worst_sig = std::max(worst_sig, UlpError(FloatSigmoid(x, kFloat32), 1 / (1 + std::exp(-xv)), kFloat32));
    worst_tanh = std::max(worst_tanh, UlpError(FloatTanh(x, kFloat32), std::tanh(xv), kFloat32));
  }
  EXPECT_LE(worst_exp, 1.0);
  EXPECT_LE(worst_sig, 3.0);
  EXPECT_LE(worst_tanh, 4.0);
}

TEST(FloatFunctionsTest, OtherFormats) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> u(-10, 10);
  for (FloatFormat f : {kFloat16, kBFloat16, FloatFormat{6, 9}, kFloat64}) {
    double worst = 0;
    for (int i = 0; i < 20000; ++i) {
      const FloatBits x = FloatFromDouble(u(rng), f);
      const double xv = FloatToDouble(x, f);
      worst = std::max(worst, UlpError(FloatExp(x, f), std::exp(xv), f));
      worst = std::max(worst, UlpError(FloatSigmoid(x, f), 1 / (1 + std::exp(-xv)), f));
      worst = std::max(worst, UlpError(FloatTanh(x, f), std::tanh(xv), f));
    }
    // float64 keeps only 50 internal fraction bits (docs/numerics.md): tens of ulp.
    EXPECT_LE(worst, f == kFloat64 ? 64.0 : 4.0) << f.ToString();
  }
}

TEST(FloatFunctionsTest, SpecialValues) {
  const FloatFormat f = kFloat32;
  EXPECT_TRUE(IsNaN(FloatExp(CanonicalNaN(f), f), f));
  EXPECT_EQ(FloatExp(Infinity(f, false), f), Infinity(f, false));
  EXPECT_EQ(FloatToDouble(FloatExp(Infinity(f, true), f), f), 0.0);
  EXPECT_EQ(FloatExp(FloatFromDouble(0.0, f), f), FloatFromDouble(1.0, f));
  EXPECT_EQ(FloatExp(FloatFromDouble(100.0, f), f), Infinity(f, false));
  EXPECT_EQ(FloatToDouble(FloatExp(FloatFromDouble(-200.0, f), f), f), 0.0);
  EXPECT_EQ(FloatToDouble(FloatSigmoid(FloatFromDouble(-200.0, f), f), f), 0.0);
  EXPECT_EQ(FloatToDouble(FloatSigmoid(FloatFromDouble(200.0, f), f), f), 1.0);
  EXPECT_EQ(FloatToDouble(FloatTanh(FloatFromDouble(-50.0, f), f), f), -1.0);
  EXPECT_EQ(FloatTanh(FloatFromDouble(0.0, f), f), FloatFromDouble(0.0, f));
  EXPECT_TRUE(IsNaN(FloatTanh(CanonicalNaN(f), f), f));
}

}  // namespace
}  // namespace fpgaserve::numeric
