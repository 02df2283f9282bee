#include "numeric/float_functions.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace fpgaserve::numeric {

namespace {

// round(v * 2^g) for a positive constant, as the fixed-point hardware stores it.
Wide FixedConstant(long double v, int g) { return static_cast<Wide>(std::llround(std::ldexp(v, g))); }

// (a * b) >> g with round-half-up: the fixed-point multiplier of the exp datapath.
Wide MulShiftRound(Wide a, Wide b, int g) {
  Wide p = a * b;
  return (p + (static_cast<Wide>(1) << (g - 1))) >> g;
}

}  // namespace

// Taylor coefficients of tanh (odd powers 1, 3, 5, ...) from (n+1) a_{n+1} = -sum a_i a_j.
std::vector<double> TanhSeriesCoefficients(int count) {
  const int n_max = 2 * count;
  std::vector<long double> a(static_cast<std::size_t>(n_max + 1), 0.0L);
  a[1] = 1.0L;
  for (int m = 1; m + 1 <= n_max; ++m) {
    long double s = 0;
    for (int i = 0; i <= m; ++i) s += a[i] * a[m - i];
    a[m + 1] = -s / (m + 1);
  }
  std::vector<double> odd;
  for (int n = 1; n <= n_max && static_cast<int>(odd.size()) < count; n += 2) {
    odd.push_back(static_cast<double>(a[n]));
  }
  return odd;
}

int TanhSeriesTerms(const FloatFormat& f) { return std::max(2, (f.mantissa_bits + 4) * 3 / 10 + 2); }

const ExpConstants& ExpFixedConstants(int g) {
  thread_local std::vector<ExpConstants> cache(64);
  ExpConstants& c = cache[static_cast<std::size_t>(g)];
  if (c.coefficients.empty()) {
    c.log2e = FixedConstant(1.44269504088896340736L, g);
    c.ln2 = FixedConstant(0.693147180559945309417L, g);
    int terms = 1;
    for (long double bound = 1; bound >= std::ldexp(1.0L, -(g + 4)); ++terms) bound *= 0.347L / terms;
    long double fact = 1;
    for (int n = 0; n <= terms; ++n) {
      if (n > 0) fact *= n;
      c.coefficients.push_back(FixedConstant(1.0L / fact, g));
    }
  }
  return c;
}

int ExpInternalFractionBits(const FloatFormat& f) { return std::min(f.mantissa_bits + 12, 50); }

FloatBits FloatExp(FloatBits x, const FloatFormat& f) {
  if (IsNaN(x, f)) return CanonicalNaN(f);
  if (IsInf(x, f)) return SignBit(x, f) ? FloatFromDouble(0.0, f) : Infinity(f, false);
  const double xd = FloatToDouble(x, f);
  // Beyond +/-1100 every supported format over- or underflows (E <= 11: 2^1024, 2^-1074).
  if (xd > 1100.0) return Infinity(f, false);
  if (xd < -1100.0) return FloatFromDouble(0.0, f);
  const int g = ExpInternalFractionBits(f);
  const Wide one = static_cast<Wide>(1) << g;
  // x in fixed point (exact for |x| >= 2^-g; smaller |x| give exp(x) = 1 after rounding anyway).
  const auto xq = static_cast<Wide>(std::llround(std::ldexp(xd, g)));
  const ExpConstants& constants = ExpFixedConstants(g);
  const Wide t = MulShiftRound(xq, constants.log2e, g);                      // x·log2(e)
  const Wide k = (t + (one >> 1)) >> g;                                        // nearest integer
  const Wide r = t - (k << g);                                                 // [-1/2, 1/2)
  const Wide y = MulShiftRound(r, constants.ln2, g);                          // r·ln2
  const std::vector<Wide>& c = constants.coefficients;
  const int terms = static_cast<int>(c.size()) - 1;
  Wide p = c[terms];
  for (int n = terms - 1; n >= 0; --n) p = MulShiftRound(p, y, g) + c[n];
  // p < 1.42·2^g <= 2^51, so the double is exact and ldexp adds k exactly (no double underflow
  // for formats with E <= 8; float64 subnormal results round twice, see docs/numerics.md).
  const double v = std::ldexp(static_cast<double>(p), static_cast<int>(k) - g);
  return FloatFromDouble(v, f);
}

FloatBits FloatSigmoid(FloatBits x, const FloatFormat& f) {
  if (IsNaN(x, f)) return CanonicalNaN(f);
  const FloatBits one = FloatFromDouble(1.0, f);
  const FloatBits e = FloatExp(Negate(x, f), f);
  return FloatDiv(one, FloatAdd(one, e, f), f);
}

FloatBits FloatTanh(FloatBits x, const FloatFormat& f) {
  if (IsNaN(x, f)) return CanonicalNaN(f);
  const bool negative = SignBit(x, f);
  const FloatBits ax = negative ? Negate(x, f) : x;
  const FloatBits one = FloatFromDouble(1.0, f);
  if (FloatCompare(ax, FloatFromDouble(0.5, f), f) < 0) {
    // Enough odd terms that the first dropped one, at |x| = 1/2, is below 2^-(M+4).
    const int count = TanhSeriesTerms(f);
    static thread_local std::vector<double> coeffs;
    if (static_cast<int>(coeffs.size()) < count) coeffs = TanhSeriesCoefficients(count + 8);
    const FloatBits z = FloatMul(x, x, f);
    FloatBits p = FloatFromDouble(coeffs[count - 1], f);
    for (int i = count - 2; i >= 0; --i) p = FloatAdd(FloatMul(p, z, f), FloatFromDouble(coeffs[i], f), f);
    return FloatMul(x, p, f);
  }
  const FloatBits two = FloatFromDouble(2.0, f);
  const FloatBits e = FloatExp(FloatScaleB(ax, 1, f), f);
  const FloatBits t = FloatSub(one, FloatDiv(two, FloatAdd(e, one, f), f), f);
  return negative ? Negate(t, f) : t;
}

}  // namespace fpgaserve::numeric
