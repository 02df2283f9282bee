// FloatFormat description, text form, classification and the exact (never rounding) conversions
// out of a float format. Everything that rounds lives in float_arith.cc.
#include "numeric/float_format.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "core/text.h"

namespace fpgaserve::numeric {
namespace {

constexpr int kMinExponentBits = 2;
constexpr int kMaxExponentBits = 11;  // every value then fits a double exactly
constexpr int kMinMantissaBits = 1;   // M = 0 would leave no room to tell Inf from NaN
constexpr int kMaxMantissaBits = 52;

std::uint64_t FieldMask(int bits) { return bits >= 64 ? ~0ULL : (1ULL << bits) - 1; }
std::uint64_t ExponentField(FloatBits x, const FloatFormat& f) {
  return (x >> f.mantissa_bits) & FieldMask(f.exponent_bits);
}
std::uint64_t MantissaField(FloatBits x, const FloatFormat& f) {
  return x & FieldMask(f.mantissa_bits);
}
bool ExponentAllOnes(FloatBits x, const FloatFormat& f) {
  return ExponentField(x, f) == FieldMask(f.exponent_bits);
}

// Exact value as (-1)^sign * sig * 2^exp for a finite x.
struct Decoded {
  bool sign;
  std::int64_t sig;
  int exp;
};
Decoded DecodeFinite(FloatBits x, const FloatFormat& f) {
  const int m = f.mantissa_bits;
  const std::uint64_t e = ExponentField(x, f);
  const std::uint64_t mant = MantissaField(x, f);
  const int emin = 1 - f.bias();
  if (e == 0) return {SignBit(x, f), static_cast<std::int64_t>(mant), emin - m};
  return {SignBit(x, f), static_cast<std::int64_t>(mant | (1ULL << m)),
          static_cast<int>(e) - f.bias() - m};
}

// A tiny cursor over the spec text; spaces are allowed between tokens.
struct SpecScanner {
  std::string_view s;
  void SkipSpaces() {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  }
  bool Take(char c) {
    SkipSpaces();
    if (s.empty() || s.front() != c) return false;
    s.remove_prefix(1);
    return true;
  }
  // An optionally negative decimal integer; its text is kept for error messages, and values too
  // large for an int are clamped (they are out of range either way).
  bool TakeInt(int* value, std::string_view* text) {
    SkipSpaces();
    std::size_t n = (!s.empty() && s.front() == '-') ? 1 : 0;
    const std::size_t digits_start = n;
    long long v = 0;
    while (n < s.size() && s[n] >= '0' && s[n] <= '9') {
      v = std::min<long long>(v * 10 + (s[n] - '0'), 1LL << 40);
      ++n;
    }
    if (n == digits_start) return false;
    *text = s.substr(0, n);
    *value = static_cast<int>(std::min<long long>(v, 1 << 30)) * (digits_start == 1 ? -1 : 1);
    s.remove_prefix(n);
    return true;
  }
};

}  // namespace

std::string FloatFormat::ToString() const {
  if (*this == kFloat32) return "float32";
  if (*this == kFloat16) return "float16";
  if (*this == kBFloat16) return "bfloat16";
  if (*this == kFloat64) return "float64";
  return "float<" + std::to_string(exponent_bits) + "," + std::to_string(mantissa_bits) + ">";
}

Result<FloatFormat> ParseFloatFormat(std::string_view spec) {
  const std::string_view s = Trim(spec);
  if (s == "float32") return kFloat32;
  if (s == "float16") return kFloat16;
  if (s == "bfloat16") return kBFloat16;
  if (s == "float64") return kFloat64;
  // The spec as messages show it (like fixed_format's): trimmed, cut when someone passed a file.
  constexpr std::size_t kMaxShown = 60;
  const std::string shown =
      s.size() <= kMaxShown ? std::string(s) : std::string(s.substr(0, kMaxShown)) + "...";
  const Status malformed =
      InvalidArgument(shown + ": expected float<E,M>, float32, float16, bfloat16 or float64");
  if (s.rfind("float", 0) != 0) return malformed;
  SpecScanner scan{s.substr(5)};
  FloatFormat f;
  std::string_view e_text, m_text;
  if (!scan.Take('<') || !scan.TakeInt(&f.exponent_bits, &e_text) || !scan.Take(',') ||
      !scan.TakeInt(&f.mantissa_bits, &m_text) || !scan.Take('>')) {
    return malformed;
  }
  scan.SkipSpaces();
  if (!scan.s.empty()) return malformed;
  if (f.exponent_bits < kMinExponentBits || f.exponent_bits > kMaxExponentBits) {
    return InvalidArgument(shown + ": exponent bits " + std::string(e_text) +
                           " out of range; expected " + std::to_string(kMinExponentBits) + ".." +
                           std::to_string(kMaxExponentBits));
  }
  if (f.mantissa_bits < kMinMantissaBits || f.mantissa_bits > kMaxMantissaBits) {
    return InvalidArgument(shown + ": mantissa bits " + std::string(m_text) +
                           " out of range; expected " + std::to_string(kMinMantissaBits) + ".." +
                           std::to_string(kMaxMantissaBits));
  }
  return f;
}

FloatBits CanonicalNaN(const FloatFormat& f) {
  return (FieldMask(f.exponent_bits) << f.mantissa_bits) | (1ULL << (f.mantissa_bits - 1));
}

FloatBits Infinity(const FloatFormat& f, bool negative) {
  const FloatBits sign = negative ? 1ULL << (f.width() - 1) : 0;
  return sign | (FieldMask(f.exponent_bits) << f.mantissa_bits);
}

bool IsNaN(FloatBits x, const FloatFormat& f) {
  return ExponentAllOnes(x, f) && MantissaField(x, f) != 0;
}

bool IsInf(FloatBits x, const FloatFormat& f) {
  return ExponentAllOnes(x, f) && MantissaField(x, f) == 0;
}

bool IsZero(FloatBits x, const FloatFormat& f) { return (x & FieldMask(f.width() - 1)) == 0; }

bool SignBit(FloatBits x, const FloatFormat& f) { return ((x >> (f.width() - 1)) & 1) != 0; }

FloatBits Negate(FloatBits x, const FloatFormat& f) {
  return (x ^ (1ULL << (f.width() - 1))) & FieldMask(f.width());
}

FloatBits LargestFinite(const FloatFormat& f, bool negative) {
  // One below infinity's pattern: exponent field all ones minus one, mantissa all ones.
  return Infinity(f, negative) - 1;
}

double FloatToDouble(FloatBits x, const FloatFormat& f) {
  if (IsNaN(x, f)) return std::numeric_limits<double>::quiet_NaN();
  if (IsInf(x, f)) {
    return SignBit(x, f) ? -std::numeric_limits<double>::infinity()
                         : std::numeric_limits<double>::infinity();
  }
  // sig < 2^53 and the value lies within double's range (E <= 11, M <= 52), so both the
  // conversion and the scaling are exact.
  const Decoded d = DecodeFinite(x, f);
  const double magnitude = std::ldexp(static_cast<double>(d.sig), d.exp);
  return d.sign ? -magnitude : magnitude;
}

int FloatCompare(FloatBits a, FloatBits b, const FloatFormat& f) {
  if (IsNaN(a, f) || IsNaN(b, f)) return 2;
  // Sign-magnitude encodings order like integers once the sign is applied; both zeros map to 0.
  const auto key = [&](FloatBits x) {
    const auto magnitude = static_cast<std::int64_t>(x & FieldMask(f.width() - 1));
    return SignBit(x, f) ? -magnitude : magnitude;
  };
  const std::int64_t ka = key(a), kb = key(b);
  return ka < kb ? -1 : (ka > kb ? 1 : 0);
}

FixedValue FixedFromFloat(FloatBits x, const FloatFormat& from, const FixedFormat& to) {
  if (IsNaN(x, from)) return {0, true};
  if (IsInf(x, from)) {
    if (to.overflow == Overflow::kWrap) return {0, true};
    return {SignBit(x, from) ? to.min_raw() : to.max_raw(), true};
  }
  // The exact value sig * 2^exp, handed to the one function that defines fixed rounding.
  const Decoded d = DecodeFinite(x, from);
  return FixedFromWide(d.sign ? -Wide{d.sig} : Wide{d.sig}, -d.exp, to);
}

}  // namespace fpgaserve::numeric
