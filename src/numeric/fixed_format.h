// Fixed-point number formats fixed<W,I> / ufixed<W,I> and their exact arithmetic (hls4ml's
// ap_fixed semantics): the bit-level contract that the emulator and the generated RTL both obey.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"

namespace fpgaserve::numeric {

using Wide = __int128;  // intermediate results (exact products, aligned sums)

// How a value with more fraction bits than the format is rounded.
enum class Quantization {
  kTrn,      // truncate toward -infinity (drop bits; the default, like ap_fixed's AP_TRN)
  kRnd,      // round to nearest, ties toward +infinity ("round half up", AP_RND)
  kRndConv,  // round to nearest, ties to even (AP_RND_CONV)
};

// What happens to a value outside the representable range.
enum class Overflow {
  kWrap,  // keep the low W bits (two's complement wrap; the default, like AP_WRAP)
  kSat,   // clamp to the minimum / maximum representable value (AP_SAT)
};

// fixed<W,I>: W total bits, I integer bits including the sign bit for signed formats.
// The value of raw integer r is r * 2^-(W-I). I may be <= 0 (all bits fractional, small values)
// or >= W (LSB weight > 1). Signed raw range: [-2^(W-1), 2^(W-1)-1]; unsigned: [0, 2^W-1].
// Valid formats (ParseFixedFormat accepts only these; ValidateFixedFormat checks built ones):
//   W in 1..64 for fixed, 1..63 for ufixed (raw values are int64, so 2^64-1 has no raw);
//   I in -1000..1000, which keeps lsb(), min_value() and max_value() finite, nonzero doubles.
// Every function below is exact for all valid formats, whatever the fraction-bit distance
// between operands (FixedAdd does not need the aligned sum to fit in Wide). Invalid formats give
// unspecified raw values.
struct FixedFormat {
  int width = 16;
  int integer_bits = 6;
  bool is_signed = true;
  Quantization quantization = Quantization::kTrn;
  Overflow overflow = Overflow::kWrap;

  int fraction_bits() const { return width - integer_bits; }
  std::int64_t min_raw() const;
  std::int64_t max_raw() const;
  double lsb() const;        // 2^-(W-I)
  double min_value() const;  // min_raw() * lsb()
  double max_value() const;

  // Canonical text: "fixed<16,6>", "ufixed<8,0>", "fixed<16,6,RND_CONV,SAT>" (modes printed only
  // when not both default; both printed when either is not default).
  std::string ToString() const;
  bool operator==(const FixedFormat&) const = default;
};

// Parses "fixed<W,I>", "fixed<W,I,Q>", "fixed<W,I,Q,O>", same with "ufixed"; W and I decimal
// integers; Q in TRN|RND|RND_CONV, O in WRAP|SAT (hls4ml's AP_TRN, AP_SAT, ... spellings and any
// letter case accepted); spaces allowed around every field. Errors name the spec and what was
// expected ("fixed<70,3>: width 70 out of range; expected 1..64"); ParseFixedFormat(f.ToString())
// == f for every valid f.
Result<FixedFormat> ParseFixedFormat(std::string_view spec);

// OK when `f` is within the limits above; otherwise an InvalidArgument naming f and the limit.
Status ValidateFixedFormat(const FixedFormat& f);

// Result of putting a value into a format: the raw integer and whether it overflowed (was
// wrapped or saturated). Rounding never counts as overflow, but rounding up into the next
// value past the maximum does.
struct FixedValue {
  std::int64_t raw = 0;
  bool overflowed = false;
};

// Converts a wide integer `value` with `from_frac` fraction bits (its real value is
// value * 2^-from_frac; from_frac may be negative) into format `to`: first rounding to
// to.fraction_bits() by to.quantization (exactly, on the integer; any shift amount is allowed),
// then applying to.overflow. This one function defines every fixed-point conversion.
FixedValue FixedFromWide(Wide value, int from_frac, const FixedFormat& to);

// Exact conversion of a double: the double's exact binary value is rounded and overflowed as in
// FixedFromWide. NaN converts to 0 with overflowed=true; +/-Inf to max/min (SAT) or 0 (WRAP), with
// overflowed=true.
FixedValue FixedFromDouble(double x, const FixedFormat& to);

// Exact value of a raw integer in format f (exact whenever |raw| < 2^53, which W <= 53 ensures;
// wider formats round to nearest double).
double FixedToDouble(std::int64_t raw, const FixedFormat& f);

// raw of format `from` into format `to` (FixedFromWide with from.fraction_bits()).
FixedValue FixedConvert(std::int64_t raw, const FixedFormat& from, const FixedFormat& to);

// Exact product: (a * b) with fraction bits fa.fraction_bits() + fb.fraction_bits().
inline Wide FixedMulExact(std::int64_t a, std::int64_t b) { return static_cast<Wide>(a) * b; }

// a (format fa) + b (format fb) rounded/overflowed into `to`: both are aligned exactly to the
// larger fraction count, added exactly, then converted with FixedFromWide.
FixedValue FixedAdd(std::int64_t a, const FixedFormat& fa, std::int64_t b, const FixedFormat& fb,
                    const FixedFormat& to);

// a * b (exact) converted into `to`.
FixedValue FixedMul(std::int64_t a, const FixedFormat& fa, std::int64_t b, const FixedFormat& fb,
                    const FixedFormat& to);

}  // namespace fpgaserve::numeric
