// The soft-float core behind float_format.h: every operation that can round (arithmetic,
// conversions into a float format, scaling) computes its result exactly, or exactly up to a
// sticky bit, in integers and then goes through the single RoundPack below. The generated hardware
// implements the same steps, so this file is the bit-level reference for it. Host float/double
// arithmetic is never used to compute a result: for wide formats it would round twice.
#include <algorithm>
#include <bit>
#include <cassert>
#include <cstdint>
#include <limits>

#include "numeric/float_format.h"

namespace fpgaserve::numeric {
namespace {

using U128 = unsigned __int128;

// A finite value (-1)^sign * sig * 2^exp. sig == 0 means a zero of that sign. sig is an integer
// significand whose LSB has weight 2^exp (not a normalized 1.xxx fraction), which makes exact
// products, alignments and quotients plain integer operations.
struct Unpacked {
  bool sign = false;
  std::int64_t exp = 0;
  U128 sig = 0;
};

enum class Kind { kFinite, kInf, kNaN };

std::uint64_t FieldMask(int bits) { return bits >= 64 ? ~0ULL : (1ULL << bits) - 1; }

int BitLength(U128 v) {
  const auto hi = static_cast<std::uint64_t>(v >> 64);
  if (hi != 0) return 128 - std::countl_zero(hi);
  return 64 - std::countl_zero(static_cast<std::uint64_t>(v));
}

Kind Classify(FloatBits x, const FloatFormat& f, Unpacked* u) {
  const int m = f.mantissa_bits;
  const std::uint64_t exp_field = (x >> m) & FieldMask(f.exponent_bits);
  const std::uint64_t mant = x & FieldMask(m);
  u->sign = ((x >> (f.width() - 1)) & 1) != 0;
  if (exp_field == FieldMask(f.exponent_bits)) return mant == 0 ? Kind::kInf : Kind::kNaN;
  const std::int64_t emin = 1 - f.bias();  // unbiased exponent of the smallest normal
  if (exp_field == 0) {
    // Subnormals share the smallest normal's exponent, without the hidden bit.
    u->sig = mant;
    u->exp = emin - m;
  } else {
    u->sig = mant | (1ULL << m);
    u->exp = static_cast<std::int64_t>(exp_field) - f.bias() - m;
  }
  return Kind::kFinite;
}

FloatBits SignedZero(bool negative, const FloatFormat& f) {
  return negative ? 1ULL << (f.width() - 1) : 0;
}

// sig * 2^-shift rounded to an integer, ties to even. `sticky` says the true value is strictly
// above sig (by less than one unit of sig's LSB), which only matters when exactly halfway.
U128 RoundShiftRightEven(U128 sig, std::int64_t shift, bool sticky) {
  if (shift <= 0) return sig << -shift;
  // With shift > bitlength the value is below 2^(shift-1), i.e. less than half of one unit.
  if (shift > BitLength(sig)) return 0;
  const U128 q = shift >= 128 ? 0 : sig >> shift;
  const U128 rem = shift >= 128 ? sig : sig & ((U128{1} << shift) - 1);
  const U128 half = U128{1} << (shift - 1);
  if (rem > half || (rem == half && (sticky || (q & 1) != 0))) return q + 1;
  return q;
}

// The one rounding step: (-1)^sign * (sig + sticky-epsilon) * 2^exp rounded to nearest, ties to
// even, into f, with gradual underflow and overflow to infinity. Precondition when sticky is set:
// sig has at least M+2 bits, so the rounding position lies above sig's LSB and the halfway bit is
// an explicit bit of sig, with the sticky bit below it. Callers provide M+3 (guard, round and
// sticky, as the hardware does).
FloatBits RoundPack(bool sign, U128 sig, std::int64_t exp, bool sticky, const FloatFormat& f) {
  const int m = f.mantissa_bits;
  assert(!sticky || BitLength(sig) >= m + 2);
  if (sig == 0) return SignedZero(sign, f);
  const std::int64_t emin = 1 - f.bias();
  const std::int64_t top = exp + BitLength(sig) - 1;  // exponent of the leading bit
  // Normal results keep M+1 significant bits; below emin the LSB weight is pinned at the
  // subnormal quantum 2^(emin-M) (gradual underflow).
  std::int64_t lsb = std::max(top - m, emin - m);
  U128 q = RoundShiftRightEven(sig, lsb - exp, sticky);
  if ((q >> (m + 1)) != 0) {  // rounding carried into a new leading bit: q == 2^(M+1)
    q >>= 1;
    ++lsb;
  }
  std::int64_t biased = 0;  // q < 2^M: subnormal (or zero), exponent field 0
  if ((q >> m) != 0) biased = lsb + m + f.bias();
  if (biased >= static_cast<std::int64_t>(FieldMask(f.exponent_bits))) return Infinity(f, sign);
  return SignedZero(sign, f) | (static_cast<FloatBits>(biased) << m) |
         (static_cast<FloatBits>(q) & FieldMask(m));
}

// x + y for finite x, y (significands up to 106 bits, e.g. an exact product), rounded once.
FloatBits AddExact(Unpacked x, Unpacked y, const FloatFormat& f) {
  if (x.sig == 0 && y.sig == 0) return SignedZero(x.sign && y.sign, f);  // RNE zero-sum rule
  if (x.sig == 0) return RoundPack(y.sign, y.sig, y.exp, false, f);
  if (y.sig == 0) return RoundPack(x.sign, x.sig, x.exp, false, f);
  if (y.exp + BitLength(y.sig) > x.exp + BitLength(x.sig)) std::swap(x, y);
  // Put x's leading bit at bit 125: two spare bits keep the sum below 2^127, and 126 bits below
  // the top hold every bit of a y that reaches within two binades of x, so y loses bits (sticky)
  // only when y < x/2; then x - y keeps >= 124 bits and RoundPack's sticky precondition holds.
  const int norm = 126 - BitLength(x.sig);
  const U128 big = x.sig << norm;
  const std::int64_t exp = x.exp - norm;
  const std::int64_t d = y.exp - exp;
  U128 small = 0;
  bool sticky = false;
  if (d >= 0) {
    small = y.sig << d;  // fits: y's top is at most x's top
  } else if (-d < 128) {
    small = y.sig >> -d;
    sticky = (y.sig & ((U128{1} << -d) - 1)) != 0;
  } else {
    sticky = true;
  }
  if (x.sign == y.sign) return RoundPack(x.sign, big + small, exp, sticky, f);
  if (big == small && !sticky) return SignedZero(false, f);  // exact cancellation: +0 under RNE
  if (big > small) {
    // The dropped bits of y make the true difference slightly smaller: borrow one unit and let
    // the sticky bit stand for (1 - dropped fraction).
    return RoundPack(x.sign, big - small - (sticky ? 1 : 0), exp, sticky, f);
  }
  return RoundPack(y.sign, small - big, exp, false, f);  // only when nothing was dropped
}

}  // namespace

FloatBits FloatAdd(FloatBits a, FloatBits b, const FloatFormat& f) {
  Unpacked ua, ub;
  const Kind ka = Classify(a, f, &ua);
  const Kind kb = Classify(b, f, &ub);
  if (ka == Kind::kNaN || kb == Kind::kNaN) return CanonicalNaN(f);
  if (ka == Kind::kInf && kb == Kind::kInf) {
    return ua.sign == ub.sign ? Infinity(f, ua.sign) : CanonicalNaN(f);
  }
  if (ka == Kind::kInf) return Infinity(f, ua.sign);
  if (kb == Kind::kInf) return Infinity(f, ub.sign);
  return AddExact(ua, ub, f);
}

FloatBits FloatSub(FloatBits a, FloatBits b, const FloatFormat& f) {
  return FloatAdd(a, Negate(b, f), f);
}

FloatBits FloatMul(FloatBits a, FloatBits b, const FloatFormat& f) {
  Unpacked ua, ub;
  const Kind ka = Classify(a, f, &ua);
  const Kind kb = Classify(b, f, &ub);
  if (ka == Kind::kNaN || kb == Kind::kNaN) return CanonicalNaN(f);
  const bool sign = ua.sign != ub.sign;
  if (ka == Kind::kInf || kb == Kind::kInf) {
    const bool other_zero = (ka == Kind::kInf ? kb == Kind::kFinite && ub.sig == 0
                                              : ka == Kind::kFinite && ua.sig == 0);
    return other_zero ? CanonicalNaN(f) : Infinity(f, sign);
  }
  // Up to 53 x 53 = 106 bits: exact, so the product rounds once.
  return RoundPack(sign, ua.sig * ub.sig, ua.exp + ub.exp, false, f);
}

FloatBits FloatDiv(FloatBits a, FloatBits b, const FloatFormat& f) {
  Unpacked ua, ub;
  const Kind ka = Classify(a, f, &ua);
  const Kind kb = Classify(b, f, &ub);
  if (ka == Kind::kNaN || kb == Kind::kNaN) return CanonicalNaN(f);
  const bool sign = ua.sign != ub.sign;
  if (ka == Kind::kInf) return kb == Kind::kInf ? CanonicalNaN(f) : Infinity(f, sign);
  if (kb == Kind::kInf) return SignedZero(sign, f);
  if (ub.sig == 0) return ua.sig == 0 ? CanonicalNaN(f) : Infinity(f, sign);
  if (ua.sig == 0) return SignedZero(sign, f);
  // Pre-shift the dividend so the integer quotient has at least M+3 bits; the remainder then
  // decides the sticky bit, which is all correct rounding needs. (The hardware computes the same
  // quotient and remainder by restoring long division, one bit per step.)
  const int m = f.mantissa_bits;
  const int k = std::max(0, BitLength(ub.sig) - BitLength(ua.sig) + m + 3);
  const U128 dividend = ua.sig << k;  // at most 53 + 55 = 108 bits
  const U128 quotient = dividend / ub.sig;
  const bool sticky = dividend % ub.sig != 0;
  return RoundPack(sign, quotient, ua.exp - ub.exp - k, sticky, f);
}

FloatBits FloatFma(FloatBits a, FloatBits b, FloatBits c, const FloatFormat& f) {
  Unpacked ua, ub, uc;
  const Kind ka = Classify(a, f, &ua);
  const Kind kb = Classify(b, f, &ub);
  const Kind kc = Classify(c, f, &uc);
  if (ka == Kind::kNaN || kb == Kind::kNaN || kc == Kind::kNaN) return CanonicalNaN(f);
  const bool psign = ua.sign != ub.sign;
  if (ka == Kind::kInf || kb == Kind::kInf) {
    const bool zero_factor =
        (ka == Kind::kFinite && ua.sig == 0) || (kb == Kind::kFinite && ub.sig == 0);
    if (zero_factor) return CanonicalNaN(f);
    if (kc == Kind::kInf && uc.sign != psign) return CanonicalNaN(f);
    return Infinity(f, psign);
  }
  if (kc == Kind::kInf) return Infinity(f, uc.sign);
  const Unpacked product{psign, ua.exp + ub.exp, ua.sig * ub.sig};  // exact, <= 106 bits
  return AddExact(product, uc, f);
}

FloatBits FloatConvert(FloatBits x, const FloatFormat& from, const FloatFormat& to) {
  Unpacked u;
  switch (Classify(x, from, &u)) {
    case Kind::kNaN:
      return CanonicalNaN(to);
    case Kind::kInf:
      return Infinity(to, u.sign);
    case Kind::kFinite:
      break;
  }
  return RoundPack(u.sign, u.sig, u.exp, false, to);
}

FloatBits FloatFromDouble(double x, const FloatFormat& f) {
  // The host double is float<11,52>; its bits are decoded exactly like any other format.
  return FloatConvert(std::bit_cast<std::uint64_t>(x), kFloat64, f);
}

FloatBits FloatFromFixed(std::int64_t raw, const FixedFormat& from, const FloatFormat& to) {
  const bool negative = raw < 0;
  // Unsigned negation also handles INT64_MIN.
  const std::uint64_t magnitude =
      negative ? ~static_cast<std::uint64_t>(raw) + 1 : static_cast<std::uint64_t>(raw);
  if (magnitude == 0) return SignedZero(false, to);
  return RoundPack(negative, magnitude, -static_cast<std::int64_t>(from.fraction_bits()), false,
                   to);
}

FloatBits FloatRoundToIntegral(FloatBits x, const FloatFormat& f) {
  Unpacked u;
  const Kind k = Classify(x, f, &u);
  if (k == Kind::kNaN) return CanonicalNaN(f);
  if (k == Kind::kInf || u.sig == 0 || u.exp >= 0) return x & FieldMask(f.width());
  const U128 n = RoundShiftRightEven(u.sig, -u.exp, false);
  // |x| < 0.5 rounds to a zero that keeps x's sign, as IEEE roundToIntegralTiesToEven does.
  return RoundPack(u.sign, n, 0, false, f);
}

FloatBits FloatScaleB(FloatBits x, int k, const FloatFormat& f) {
  Unpacked u;
  const Kind kind = Classify(x, f, &u);
  if (kind == Kind::kNaN) return CanonicalNaN(f);
  if (kind == Kind::kInf || u.sig == 0) return x & FieldMask(f.width());
  return RoundPack(u.sign, u.sig, u.exp + k, false, f);
}

// Outside the documented domain the result is still defined, so callers never hit undefined
// behaviour: fractions are truncated toward zero, NaN gives 0, and Inf or |x| >= 2^63 saturate.
std::int64_t FloatToInt64(FloatBits x, const FloatFormat& f) {
  Unpacked u;
  const Kind k = Classify(x, f, &u);
  constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
  constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();
  if (k == Kind::kNaN) return 0;
  if (k == Kind::kInf) return u.sign ? kMin : kMax;
  U128 mag = 0;
  if (u.exp >= 0) {
    if (u.exp + BitLength(u.sig) > 63) return u.sign ? kMin : kMax;
    mag = u.sig << u.exp;
  } else if (-u.exp < 128) {
    mag = u.sig >> -u.exp;
  }
  const auto v = static_cast<std::int64_t>(mag);
  return u.sign ? -v : v;
}

}  // namespace fpgaserve::numeric
