// exp, sigmoid and tanh on float<E,M> values, defined by an exact, hardware-implementable
// algorithm (docs/numerics.md); results are within a few ulp of the true function.
#pragma once

#include "numeric/float_format.h"

namespace fpgaserve::numeric {

// Internal fixed-point fraction bits of exp's range reduction and polynomial: min(M + 12, 50).
int ExpInternalFractionBits(const FloatFormat& f);

// exp(x): x·log2(e) in fixed point (G fraction bits) split as k + r, 2^r by a Taylor polynomial
// in fixed point, then p·2^k rounded once (RNE) into f. NaN -> NaN, +Inf -> +Inf, -Inf -> +0.
FloatBits FloatExp(FloatBits x, const FloatFormat& f);

// 1 / (1 + exp(-x)), each step (exp, add, divide) rounded in f.
FloatBits FloatSigmoid(FloatBits x, const FloatFormat& f);

// |x| < 1/2: x·P(x²), the odd Taylor polynomial evaluated by Horner in f;
// otherwise sign(x)·(1 - 2 / (exp(2|x|) + 1)), each step rounded in f.
FloatBits FloatTanh(FloatBits x, const FloatFormat& f);

}  // namespace fpgaserve::numeric
