#include "numeric/fixed_format.h"

#include <algorithm>
#include <bit>
#include <cctype>
#include <cmath>
#include <limits>
#include <optional>
#include <utility>
#include <vector>

#include "core/text.h"

namespace fpgaserve::numeric {

namespace {

using UWide = unsigned __int128;

constexpr int kMaxSignedWidth = 64;
constexpr int kMaxUnsignedWidth = 63;  // ufixed<64> would need raw 2^64-1, which int64 lacks
constexpr int kMinIntegerBits = -1000;
constexpr int kMaxIntegerBits = 1000;

// Masks below are computed from a clamped width so that an invalid format built in code gives a
// wrong raw value rather than an out-of-range shift.
int SafeWidth(const FixedFormat& f) { return std::clamp(f.width, 1, kMaxSignedWidth); }

// Fraction bits without int overflow, whatever the fields hold.
std::int64_t FractionBits(const FixedFormat& f) {
  return std::int64_t{f.width} - std::int64_t{f.integer_bits};
}

// Bits needed for v in two's complement without the sign: v in [-2^n, 2^n - 1].
int MagnitudeBits(Wide v) {
  const auto m = static_cast<UWide>(v < 0 ? ~v : v);
  const auto high = static_cast<std::uint64_t>(m >> 64);
  const auto low = static_cast<std::uint64_t>(m);
  return high != 0 ? 128 - std::countl_zero(high) : 64 - std::countl_zero(low);
}

// The low W bits of u read as a raw of `f`: two's complement for signed formats.
std::int64_t WrapLowBits(std::uint64_t u, const FixedFormat& f) {
  const int w = SafeWidth(f);
  if (w < 64) {
    u &= (std::uint64_t{1} << w) - 1;
    if (f.is_signed && ((u >> (w - 1)) & 1) != 0) u |= ~std::uint64_t{0} << w;
  }
  return static_cast<std::int64_t>(u);
}

// A rounded value known to lie outside `to`'s range: `negative` says on which side, `low_bits`
// holds its value modulo 2^64 (all that wrapping keeps).
FixedValue OutOfRange(bool negative, std::uint64_t low_bits, const FixedFormat& to) {
  if (to.overflow == Overflow::kSat) return {negative ? to.min_raw() : to.max_raw(), true};
  return {WrapLowBits(low_bits, to), true};
}

// Applies to.overflow to an already rounded value.
FixedValue FitRounded(Wide r, const FixedFormat& to) {
  if (r >= to.min_raw() && r <= to.max_raw()) return {static_cast<std::int64_t>(r), false};
  return OutOfRange(r < 0, static_cast<std::uint64_t>(r), to);
}

// v * 2^-s rounded to an integer by q, for s >= 1. Only the dropped bits decide the rounding,
// compared with the half-lsb pattern 100..0; no floating point is involved.
Wide RoundShiftRight(Wide v, std::int64_t s, Quantization q) {
  if (s >= 128) {
    // |v| <= 2^127 <= 2^(s-1): v * 2^-s lies in [-1/2, 1/2). Floor gives -1 for negatives; both
    // nearest modes give 0 (the only exact half, -1/2, ties up to 0 and 0 is even).
    return (q == Quantization::kTrn && v < 0) ? -1 : 0;
  }
  const Wide floor = v >> s;  // arithmetic shift (C++20)
  if (q == Quantization::kTrn) return floor;
  const UWide dropped = static_cast<UWide>(v) & ((UWide{1} << s) - 1);
  const UWide half = UWide{1} << (s - 1);
  if (dropped != half) return dropped > half ? floor + 1 : floor;
  if (q == Quantization::kRnd) return floor + 1;
  return (floor & 1) != 0 ? floor + 1 : floor;  // ties to even
}

// v * 2^k exactly, then overflow; k >= 0 may be far beyond Wide.
FixedValue ShiftLeftInto(Wide v, std::int64_t k, const FixedFormat& to) {
  if (v == 0) return {0, false};
  // With n magnitude bits, |v * 2^k| <= 2^(n+k): it fits when n + k <= 126, and otherwise it is
  // at least 2^126, far outside every format.
  if (k <= 126 && MagnitudeBits(v) + k <= 126) return FitRounded(v << k, to);
  const std::uint64_t low = k >= 64 ? 0 : static_cast<std::uint64_t>(v) << k;
  return OutOfRange(v < 0, low, to);
}

FixedValue FromWideWithFraction(Wide value, std::int64_t from_frac, const FixedFormat& to) {
  const std::int64_t shift = from_frac - FractionBits(to);
  if (shift > 0) return FitRounded(RoundShiftRight(value, shift, to.quantization), to);
  return ShiftLeftInto(value, -shift, to);
}

const char* QuantizationName(Quantization q) {
  switch (q) {
    case Quantization::kTrn:
      return "TRN";
    case Quantization::kRnd:
      return "RND";
    case Quantization::kRndConv:
      return "RND_CONV";
  }
  return "TRN";
}

const char* OverflowName(Overflow o) { return o == Overflow::kSat ? "SAT" : "WRAP"; }

// The spec as error messages show it: trimmed, and cut when someone passed a whole file.
std::string ShownSpec(std::string_view spec) {
  constexpr std::size_t kMaxShown = 60;
  std::string_view s = Trim(spec);
  if (s.empty()) return "''";
  if (s.size() <= kMaxShown) return std::string(s);
  return std::string(s.substr(0, kMaxShown)) + "...";
}

// Checks the limits for fields already read as integers; `shown` prefixes the message.
Status CheckLimits(const std::string& shown, bool is_signed, std::int64_t width,
                   std::int64_t integer_bits, std::string_view width_text,
                   std::string_view integer_text) {
  const int max_width = is_signed ? kMaxSignedWidth : kMaxUnsignedWidth;
  if (width < 1 || width > max_width) {
    std::string m = shown + ": width " + std::string(width_text) + " out of range; expected 1.." +
                    std::to_string(max_width);
    if (!is_signed) m += " for ufixed (raw values are int64)";
    return InvalidArgument(std::move(m));
  }
  if (integer_bits < kMinIntegerBits || integer_bits > kMaxIntegerBits) {
    return InvalidArgument(shown + ": integer bits " + std::string(integer_text) +
                           " out of range; expected " + std::to_string(kMinIntegerBits) + ".." +
                           std::to_string(kMaxIntegerBits));
  }
  return Status::Ok();
}

// A decimal integer with an optional sign. Values beyond +/-10^15 become +/-10^15: they are out of
// every range and the message quotes the text, not the number.
std::optional<std::int64_t> ParseInteger(std::string_view t) {
  bool negative = false;
  if (!t.empty() && (t.front() == '-' || t.front() == '+')) {
    negative = t.front() == '-';
    t.remove_prefix(1);
  }
  if (t.empty()) return std::nullopt;
  constexpr std::int64_t kCap = 1'000'000'000'000'000;
  std::int64_t v = 0;
  for (char c : t) {
    if (c < '0' || c > '9') return std::nullopt;
    v = std::min(kCap, v * 10 + (c - '0'));
  }
  return negative ? -v : v;
}

// The part after an optional "AP_" prefix, upper-cased, so that hls4ml's spellings match ours.
std::string ModeName(std::string_view t) {
  std::string u(t);
  for (char& c : u) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (u.rfind("AP_", 0) == 0) u.erase(0, 3);
  return u;
}

std::vector<std::string_view> SplitFields(std::string_view inner) {
  std::vector<std::string_view> fields;
  std::size_t start = 0;
  while (true) {
    const std::size_t comma = inner.find(',', start);
    fields.push_back(Trim(inner.substr(start, comma - start)));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return fields;
}

}  // namespace

std::int64_t FixedFormat::min_raw() const {
  if (!is_signed) return 0;
  return static_cast<std::int64_t>(~std::uint64_t{0} << (SafeWidth(*this) - 1));
}

std::int64_t FixedFormat::max_raw() const {
  const int w = std::min(SafeWidth(*this), is_signed ? kMaxSignedWidth : kMaxUnsignedWidth);
  return static_cast<std::int64_t>((std::uint64_t{1} << (is_signed ? w - 1 : w)) - 1);
}

double FixedFormat::lsb() const { return std::ldexp(1.0, -fraction_bits()); }
double FixedFormat::min_value() const { return FixedToDouble(min_raw(), *this); }
double FixedFormat::max_value() const { return FixedToDouble(max_raw(), *this); }

std::string FixedFormat::ToString() const {
  std::string s = is_signed ? "fixed<" : "ufixed<";
  s += std::to_string(width) + "," + std::to_string(integer_bits);
  if (quantization != Quantization::kTrn || overflow != Overflow::kWrap) {
    s += std::string(",") + QuantizationName(quantization) + "," + OverflowName(overflow);
  }
  return s + ">";
}

Result<FixedFormat> ParseFixedFormat(std::string_view spec) {
  const std::string shown = ShownSpec(spec);
  std::string_view s = Trim(spec);
  FixedFormat f;
  std::string_view name;
  if (s.rfind("ufixed", 0) == 0) {
    name = "ufixed";
    f.is_signed = false;
  } else if (s.rfind("fixed", 0) == 0) {
    name = "fixed";
  } else {
    return InvalidArgument(shown + ": expected fixed<W,I[,Q[,O]]> or ufixed<W,I[,Q[,O]]>");
  }
  const std::string expected = shown + ": expected " + std::string(name) + "<W,I[,Q[,O]]>";
  s = Trim(s.substr(name.size()));
  const std::size_t close = s.find('>');
  if (s.empty() || s.front() != '<' || close == std::string_view::npos) {
    return InvalidArgument(expected);
  }
  if (close + 1 != s.size()) {
    return InvalidArgument(shown + ": unexpected text '" + std::string(s.substr(close + 1)) +
                           "' after '>'");
  }
  const std::vector<std::string_view> fields = SplitFields(s.substr(1, close - 1));
  if (fields.size() < 2 || fields.size() > 4) return InvalidArgument(expected);

  const auto width = ParseInteger(fields[0]);
  if (!width) {
    return InvalidArgument(shown + ": width '" + std::string(fields[0]) +
                           "' is not an integer; expected 1.." +
                           std::to_string(f.is_signed ? kMaxSignedWidth : kMaxUnsignedWidth));
  }
  const auto integer_bits = ParseInteger(fields[1]);
  if (!integer_bits) {
    return InvalidArgument(shown + ": integer bits '" + std::string(fields[1]) +
                           "' is not an integer; expected " + std::to_string(kMinIntegerBits) +
                           ".." + std::to_string(kMaxIntegerBits));
  }
  RETURN_IF_ERROR(CheckLimits(shown, f.is_signed, *width, *integer_bits, fields[0], fields[1]));
  f.width = static_cast<int>(*width);
  f.integer_bits = static_cast<int>(*integer_bits);

  if (fields.size() >= 3) {
    const std::string q = ModeName(fields[2]);
    if (q == "TRN") {
      f.quantization = Quantization::kTrn;
    } else if (q == "RND") {
      f.quantization = Quantization::kRnd;
    } else if (q == "RND_CONV") {
      f.quantization = Quantization::kRndConv;
    } else {
      return InvalidArgument(shown + ": quantization mode '" + std::string(fields[2]) +
                             "' unknown; expected TRN, RND or RND_CONV");
    }
  }
  if (fields.size() == 4) {
    const std::string o = ModeName(fields[3]);
    if (o == "WRAP") {
      f.overflow = Overflow::kWrap;
    } else if (o == "SAT") {
      f.overflow = Overflow::kSat;
    } else {
      return InvalidArgument(shown + ": overflow mode '" + std::string(fields[3]) +
                             "' unknown; expected WRAP or SAT");
    }
  }
  return f;
}

Status ValidateFixedFormat(const FixedFormat& f) {
  return CheckLimits(f.ToString(), f.is_signed, f.width, f.integer_bits, std::to_string(f.width),
                     std::to_string(f.integer_bits));
}

FixedValue FixedFromWide(Wide value, int from_frac, const FixedFormat& to) {
  return FromWideWithFraction(value, from_frac, to);
}

FixedValue FixedFromDouble(double x, const FixedFormat& to) {
  if (std::isnan(x)) return {0, true};
  if (std::isinf(x)) {
    if (to.overflow == Overflow::kSat) return {x < 0 ? to.min_raw() : to.max_raw(), true};
    return {0, true};
  }
  if (x == 0) return {0, false};
  // x = m * 2^e with 0.5 <= |m| < 1; m has at most 53 significant bits (subnormals included), so
  // m * 2^53 is an exact integer and x = mantissa * 2^-(53 - e) exactly.
  int e = 0;
  const double m = std::frexp(x, &e);
  const auto mantissa = static_cast<std::int64_t>(std::ldexp(m, 53));
  return FromWideWithFraction(mantissa, std::int64_t{53} - e, to);
}

double FixedToDouble(std::int64_t raw, const FixedFormat& f) {
  const auto frac = static_cast<int>(std::clamp<std::int64_t>(FractionBits(f), -100000, 100000));
  constexpr std::int64_t kExactInDouble = std::int64_t{1} << 53;
  if constexpr (std::numeric_limits<long double>::digits >= 64) {
    // Beyond 53 bits, converting to double first and scaling second could round twice (when the
    // result is subnormal); long double holds every int64 and its scaling exactly, so the final
    // cast rounds once.
    if (raw <= -kExactInDouble || raw >= kExactInDouble) {
      return static_cast<double>(std::ldexp(static_cast<long double>(raw), -frac));
    }
  }
  return std::ldexp(static_cast<double>(raw), -frac);
}

FixedValue FixedConvert(std::int64_t raw, const FixedFormat& from, const FixedFormat& to) {
  return FromWideWithFraction(raw, FractionBits(from), to);
}

FixedValue FixedAdd(std::int64_t a, const FixedFormat& fa, std::int64_t b, const FixedFormat& fb,
                    const FixedFormat& to) {
  // Name the operand with fewer fraction bits (the coarser lsb) a.
  std::int64_t a_frac = FractionBits(fa);
  std::int64_t b_frac = FractionBits(fb);
  if (a_frac > b_frac) {
    std::swap(a, b);
    std::swap(a_frac, b_frac);
  }
  const std::int64_t d = b_frac - a_frac;
  // |a * 2^62| <= 2^125: the aligned sum is exact in Wide.
  if (d <= 62) return FromWideWithFraction((static_cast<Wide>(a) << d) + b, b_frac, to);
  if (a == 0) return FromWideWithFraction(b, b_frac, to);
  if (b == 0) return FromWideWithFraction(a, a_frac, to);

  // b is worth less than one lsb of a (|b| <= 2^63 < 2^d). Two exact routes remain.
  const std::int64_t to_frac = FractionBits(to);
  const std::int64_t a_exp = to_frac - a_frac;  // a's weight in lsbs of `to` is 2^a_exp
  if (a_exp <= 60) {
    // `to` keeps at most a_frac + 60 fraction bits. Rounding b to odd at a_frac + 62 bits (keep
    // floor, set the last bit if anything was dropped) leaves every rounding decision at 2 or more
    // bits coarser unchanged: an odd value never sits on a rounding boundary or a tie, and it stays
    // on the same side of each boundary as the exact value.
    const std::int64_t k = d - 62;
    Wide b_odd;
    if (k >= 64) {
      b_odd = b < 0 ? -1 : 1;
    } else {
      const bool dropped = (static_cast<std::uint64_t>(b) & ((std::uint64_t{1} << k) - 1)) != 0;
      b_odd = (b >> k) | (dropped ? 1 : 0);
    }
    return FromWideWithFraction((static_cast<Wide>(a) << 62) + b_odd, a_frac + 62, to);
  }
  // a is a whole number of lsbs of `to` (a * 2^a_exp, a_exp >= 61), and rounding commutes with
  // adding whole numbers: result = a * 2^a_exp + c * 2^g with c the rounded (or exact) b.
  const std::int64_t b_exp = to_frac - b_frac;
  Wide c = b;
  std::int64_t g = b_exp;
  if (b_exp < 0) {
    c = RoundShiftRight(b, -b_exp, to.quantization);
    g = 0;
  }
  const std::int64_t h = a_exp - g;  // >= 61
  if (MagnitudeBits(a) + h <= 100) {
    // (a * 2^h + c) * 2^g, with |a * 2^h| <= 2^100 and |c| <= 2^63: exact in Wide.
    return FromWideWithFraction((static_cast<Wide>(a) << h) + c, to_frac - g, to);
  }
  // |a * 2^h| >= 2^100 dwarfs |c|: far outside the range, on a's side.
  const std::uint64_t low = (a_exp < 64 ? static_cast<std::uint64_t>(a) << a_exp : 0) +
                            (g < 64 ? static_cast<std::uint64_t>(c) << g : 0);
  return OutOfRange(a < 0, low, to);
}

FixedValue FixedMul(std::int64_t a, const FixedFormat& fa, std::int64_t b, const FixedFormat& fb,
                    const FixedFormat& to) {
  return FromWideWithFraction(FixedMulExact(a, b), FractionBits(fa) + FractionBits(fb), to);
}

}  // namespace fpgaserve::numeric
