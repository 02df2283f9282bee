// IEEE-754-style binary floating-point formats float<E,M> (float32 = float<8,23>,
// float16 = float<5,10>, bfloat16 = float<8,7>) with exact, correctly rounded soft arithmetic.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"
#include "numeric/fixed_format.h"

namespace fpgaserve::numeric {

// float<E,M>: 1 sign bit, E exponent bits (bias 2^(E-1)-1), M stored mantissa bits; encoding and
// special values exactly as IEEE 754 binary interchange formats: exponent field 0 = zero or
// subnormal, all ones = Inf (mantissa 0) or NaN. Supported: E in 2..11, M in 1..52.
struct FloatFormat {
  int exponent_bits = 8;
  int mantissa_bits = 23;

  int width() const { return 1 + exponent_bits + mantissa_bits; }
  int bias() const { return (1 << (exponent_bits - 1)) - 1; }
  // Canonical text: "float32", "float16", "bfloat16", or "float<E,M>".
  std::string ToString() const;
  bool operator==(const FloatFormat&) const = default;
};

inline constexpr FloatFormat kFloat32{8, 23};
inline constexpr FloatFormat kFloat16{5, 10};
inline constexpr FloatFormat kBFloat16{8, 7};
inline constexpr FloatFormat kFloat64{11, 52};

// Parses "float32", "float16", "bfloat16", "float64", "float<E,M>". Errors name the spec and the
// accepted ranges ("float<1,0>: exponent bits 1 out of range; expected 2..11").
Result<FloatFormat> ParseFloatFormat(std::string_view spec);

// A value is its bit pattern in the low width() bits of a uint64 (sign at bit width()-1).
using FloatBits = std::uint64_t;

// NaN results are always the canonical quiet NaN: sign 0, exponent all ones, mantissa MSB set,
// other mantissa bits 0. (Host comparisons treat any NaN as equal to any NaN.)
FloatBits CanonicalNaN(const FloatFormat& f);
FloatBits Infinity(const FloatFormat& f, bool negative);
bool IsNaN(FloatBits x, const FloatFormat& f);
bool IsInf(FloatBits x, const FloatFormat& f);
bool IsZero(FloatBits x, const FloatFormat& f);
bool SignBit(FloatBits x, const FloatFormat& f);
FloatBits Negate(FloatBits x, const FloatFormat& f);  // flips the sign bit (NaN too)
FloatBits LargestFinite(const FloatFormat& f, bool negative);

// Exact value (every float<E<=11,M<=52> value is a double).
double FloatToDouble(FloatBits x, const FloatFormat& f);

// Correct rounding (round to nearest, ties to even) of the exact double; overflow gives +/-Inf,
// tiny values give subnormals or signed zero; NaN gives the canonical NaN.
FloatBits FloatFromDouble(double x, const FloatFormat& f);

// Correctly rounded (RNE) IEEE operations on operands of format f, result in f. IEEE special
// cases: Inf - Inf, 0 * Inf, 0/0, Inf/Inf, any NaN operand -> canonical NaN; x / 0 -> signed Inf;
// exact zero sums are +0 except (-0) + (-0) = -0 (round-to-nearest rules).
FloatBits FloatAdd(FloatBits a, FloatBits b, const FloatFormat& f);
FloatBits FloatSub(FloatBits a, FloatBits b, const FloatFormat& f);
FloatBits FloatMul(FloatBits a, FloatBits b, const FloatFormat& f);
FloatBits FloatDiv(FloatBits a, FloatBits b, const FloatFormat& f);
// a * b + c with a single rounding (fused multiply-add).
FloatBits FloatFma(FloatBits a, FloatBits b, FloatBits c, const FloatFormat& f);

// Comparison on values: -1, 0, +1 (NaN compares as unordered: returns 2). -0 == +0.
int FloatCompare(FloatBits a, FloatBits b, const FloatFormat& f);

// Correctly rounded conversion between any two float formats.
FloatBits FloatConvert(FloatBits x, const FloatFormat& from, const FloatFormat& to);

// Fixed -> float: the exact fixed value correctly rounded (RNE) into `to`.
FloatBits FloatFromFixed(std::int64_t raw, const FixedFormat& from, const FloatFormat& to);

// Float -> fixed: the exact float value rounded by to.quantization and overflowed by to.overflow
// (as FixedFromWide); NaN -> 0 and +/-Inf -> max/min (SAT) or 0 (WRAP), both flagged overflowed.
FixedValue FixedFromFloat(FloatBits x, const FloatFormat& from, const FixedFormat& to);

// Rounds a float to an integer-valued float, ties to even (used by range reduction in exp).
FloatBits FloatRoundToIntegral(FloatBits x, const FloatFormat& f);
// Multiplies by 2^k exactly when representable, else correctly rounded (overflow -> Inf,
// underflow -> subnormal/zero with RNE).
FloatBits FloatScaleB(FloatBits x, int k, const FloatFormat& f);
// Integer value of an integer-valued float with |x| < 2^62 (e.g. after FloatRoundToIntegral).
std::int64_t FloatToInt64(FloatBits x, const FloatFormat& f);

}  // namespace fpgaserve::numeric
