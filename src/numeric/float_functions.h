// exp, sigmoid and tanh on float<E,M> values, defined by an exact, hardware-implementable
// algorithm (docs/numerics.md); results are within a few ulp of the true function.
#pragma once

#include <vector>

#include "numeric/fixed_format.h"
#include "numeric/float_format.h"

namespace fpgaserve::numeric {

// Internal fixed-point fraction bits of exp's range reduction and polynomial: min(M + 12, 50).
int ExpInternalFractionBits(const FloatFormat& f);

// exp's fixed-point constants for g fraction bits: round(log2 e · 2^g), round(ln 2 · 2^g) and the
// Taylor coefficients round(2^g / n!), n = 0..terms (enough terms that |y|^n/n! < 2^-(g+4) for
// |y| <= 0.347). FloatExp and the generated exp unit (src/hw/float_exp.cc) both use these.
struct ExpConstants {
  Wide log2e = 0;
  Wide ln2 = 0;
  std::vector<Wide> coefficients;
};
const ExpConstants& ExpFixedConstants(int g);

// exp(x): x·log2(e) in fixed point (G fraction bits) split as k + r, 2^r by a Taylor polynomial
// in fixed point, then p·2^k rounded once (RNE) into f. NaN -> NaN, +Inf -> +Inf, -Inf -> +0.
FloatBits FloatExp(FloatBits x, const FloatFormat& f);

// 1 / (1 + exp(-x)), each step (exp, add, divide) rounded in f.
FloatBits FloatSigmoid(FloatBits x, const FloatFormat& f);

// |x| < 1/2: x·P(x²), the odd Taylor polynomial evaluated by Horner in f;
// otherwise sign(x)·(1 - 2 / (exp(2|x|) + 1)), each step rounded in f.
FloatBits FloatTanh(FloatBits x, const FloatFormat& f);

// tanh's small-|x| series: the first `count` odd Taylor coefficients (a_1, a_3, ...), and how many
// of them FloatTanh uses for f (the first dropped term at |x| = 1/2 is below 2^-(M+4)).
std::vector<double> TanhSeriesCoefficients(int count);
int TanhSeriesTerms(const FloatFormat& f);

}  // namespace fpgaserve::numeric
