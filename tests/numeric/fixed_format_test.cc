// Tests of fixed<W,I> formats: parsing and printing, named edge cases, and every conversion checked
// against oracles written differently from the library (integer floor division; a bit-level
// bignum).
#include "numeric/fixed_format.h"

#include <gtest/gtest.h>

#include <array>
#include <bit>
#include <cfenv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace fpgaserve::numeric {
namespace {

using UWide = unsigned __int128;
using Q = Quantization;
using O = Overflow;

constexpr Q kQuantizations[] = {Q::kTrn, Q::kRnd, Q::kRndConv};
constexpr O kOverflows[] = {O::kWrap, O::kSat};
constexpr std::uint64_t kSeed = 20240611;
constexpr int kMaxReportedFailures = 20;

FixedFormat Fmt(int w, int i, bool is_signed = true, Q q = Q::kTrn, O o = O::kWrap) {
  return FixedFormat{w, i, is_signed, q, o};
}

FixedFormat WithModes(FixedFormat f, Q q, O o) {
  f.quantization = q;
  f.overflow = o;
  return f;
}

bool Same(const FixedValue& a, const FixedValue& b) {
  return a.raw == b.raw && a.overflowed == b.overflowed;
}

std::string Show(const FixedValue& v) {
  return std::to_string(v.raw) + (v.overflowed ? " (overflowed)" : "");
}

std::string ShowWide(Wide v) {
  if (v == 0) return "0";
  UWide m = v < 0 ? -static_cast<UWide>(v) : static_cast<UWide>(v);
  std::string s;
  for (; m != 0; m /= 10) s.insert(s.begin(), static_cast<char>('0' + static_cast<int>(m % 10)));
  return (v < 0 ? "-" : "") + s;
}

// ---- Oracle 1: small formats, exact values as n / den with int64 floor division. ----

std::int64_t FloorDiv(std::int64_t n, std::int64_t den) {
  std::int64_t q = n / den;  // C++ division truncates toward zero
  if (n % den != 0 && n < 0) --q;
  return q;
}

std::int64_t SmallRound(std::int64_t n, std::int64_t den, Q q) {
  const std::int64_t lo = FloorDiv(n, den);
  const std::int64_t twice_rem = 2 * (n - lo * den);
  switch (q) {
    case Q::kTrn:
      return lo;
    case Q::kRnd:
      return FloorDiv(2 * n + den, 2 * den);  // floor(n/den + 1/2)
    case Q::kRndConv:
      if (twice_rem != den) return twice_rem > den ? lo + 1 : lo;
      return FloorDiv(lo, 2) * 2 == lo ? lo : lo + 1;
  }
  return lo;
}

FixedValue SmallFit(std::int64_t r, const FixedFormat& f) {
  const std::int64_t span = std::int64_t{1} << f.width;
  const std::int64_t lo = f.is_signed ? -span / 2 : 0;
  const std::int64_t hi = lo + span - 1;
  if (r >= lo && r <= hi) return {r, false};
  if (f.overflow == O::kSat) return {r < lo ? lo : hi, true};
  return {((r - lo) % span + span) % span + lo, true};
}

// The value n * 2^-k (k >= the target's fraction bits) put into `to`.
FixedValue SmallOracle(std::int64_t n, int k, const FixedFormat& to) {
  return SmallFit(SmallRound(n, std::int64_t{1} << (k - to.fraction_bits()), to.quantization), to);
}

std::vector<std::int64_t> AllRaws(const FixedFormat& f) {
  std::vector<std::int64_t> v;
  for (std::int64_t r = f.min_raw(); r <= f.max_raw(); ++r) v.push_back(r);
  return v;
}

// ---- Oracle 2: any format, exact values as a two's complement bignum, rounded bit by bit. ----

class BigInt {
 public:
  static constexpr int kLimbs = 80;
  static constexpr int kBits = kLimbs * 32;  // covers a 128-bit value shifted by ~2400 bits

  explicit BigInt(Wide v) {
    const auto u = static_cast<UWide>(v);
    for (int i = 0; i < 4; ++i) limb_[i] = static_cast<std::uint32_t>(u >> (32 * i));
    for (int i = 4; i < kLimbs; ++i) limb_[i] = v < 0 ? 0xffffffffu : 0;
  }
  bool negative() const { return (limb_[kLimbs - 1] >> 31) != 0; }
  bool Bit(std::int64_t i) const {
    if (i >= kBits) return negative();
    return ((limb_[i / 32] >> (i % 32)) & 1) != 0;
  }
  bool AnyBitBelow(std::int64_t n) const {
    if (n > kBits) return negative() || AnyBitBelow(kBits);
    for (std::int64_t i = 0; i < n / 32; ++i) {
      if (limb_[i] != 0) return true;
    }
    const int rest = static_cast<int>(n % 32);
    return rest != 0 && (limb_[n / 32] & ((1u << rest) - 1)) != 0;
  }
  BigInt ShiftedLeft(std::int64_t k) const {
    EXPECT_LT(k + 200, kBits) << "oracle too narrow; test generator bug";
    const std::int64_t q = k / 32;
    const int r = static_cast<int>(k % 32);
    BigInt out(0);
    for (std::int64_t i = q; i < kLimbs; ++i) {
      out.limb_[i] = limb_[i - q] << r;
      if (r != 0 && i - q - 1 >= 0) out.limb_[i] |= limb_[i - q - 1] >> (32 - r);
    }
    return out;
  }
  BigInt ShiftedRightFloor(std::int64_t s) const {
    const std::uint32_t fill = negative() ? 0xffffffffu : 0;
    if (s >= kBits) return BigInt(negative() ? -1 : 0);
    const std::int64_t q = s / 32;
    const int r = static_cast<int>(s % 32);
    auto limb = [&](std::int64_t j) { return j < kLimbs ? limb_[j] : fill; };
    BigInt out(0);
    for (std::int64_t i = 0; i < kLimbs; ++i) {
      out.limb_[i] = limb(i + q) >> r;
      if (r != 0) out.limb_[i] |= limb(i + q + 1) << (32 - r);
    }
    return out;
  }
  BigInt operator+(const BigInt& o) const {
    BigInt r(0);
    std::uint64_t carry = 0;
    for (int i = 0; i < kLimbs; ++i) {
      const std::uint64_t t = std::uint64_t{limb_[i]} + o.limb_[i] + carry;
      r.limb_[i] = static_cast<std::uint32_t>(t);
      carry = t >> 32;
    }
    return r;
  }
  std::optional<Wide> ToWide() const {
    const std::uint32_t fill = Bit(127) ? 0xffffffffu : 0;
    for (int i = 4; i < kLimbs; ++i) {
      if (limb_[i] != fill) return std::nullopt;
    }
    UWide u = 0;
    for (int i = 3; i >= 0; --i) u = (u << 32) | limb_[i];
    return static_cast<Wide>(u);
  }
  std::uint64_t Low64() const { return (std::uint64_t{limb_[1]} << 32) | limb_[0]; }

 private:
  std::array<std::uint32_t, kLimbs> limb_{};
};

// n * 2^-s put into `to`: round with the bits below position s, then overflow.
FixedValue BigOracle(const BigInt& n, std::int64_t s, const FixedFormat& to) {
  std::optional<BigInt> r;
  if (s <= 0) {
    r = n.ShiftedLeft(-s);
  } else {
    const BigInt floor = n.ShiftedRightFloor(s);
    const bool half = n.Bit(s - 1);
    const bool below_half = n.AnyBitBelow(s - 1);
    bool up = false;
    if (to.quantization == Q::kRnd) up = half;
    if (to.quantization == Q::kRndConv) up = half && (below_half || floor.Bit(0));
    r = up ? floor + BigInt(1) : floor;
  }
  const Wide span = Wide{1} << to.width;
  const Wide lo = to.is_signed ? -span / 2 : 0;
  const Wide hi = lo + span - 1;
  const std::optional<Wide> w = r->ToWide();
  if (w && *w >= lo && *w <= hi) return {static_cast<std::int64_t>(*w), false};
  if (to.overflow == O::kSat) return {static_cast<std::int64_t>(r->negative() ? lo : hi), true};
  Wide m = static_cast<Wide>(r->Low64()) % span;
  if (m > hi) m -= span;
  return {static_cast<std::int64_t>(m), true};
}

FixedValue WideOracle(Wide v, int from_frac, const FixedFormat& to) {
  return BigOracle(BigInt(v), std::int64_t{from_frac} - to.fraction_bits(), to);
}

// The double's value read from its bit fields (not frexp): mantissa * 2^-frac.
FixedValue DoubleOracle(double x, const FixedFormat& to) {
  const auto bits = std::bit_cast<std::uint64_t>(x);
  const int field = static_cast<int>((bits >> 52) & 0x7ff);
  std::int64_t mantissa = static_cast<std::int64_t>(bits & ((std::uint64_t{1} << 52) - 1));
  if (field != 0) mantissa += std::int64_t{1} << 52;
  if (bits >> 63) mantissa = -mantissa;
  const int frac = 1074 - (field == 0 ? 0 : field - 1);
  return WideOracle(mantissa, frac, to);
}

FixedValue AddOracle(std::int64_t a, const FixedFormat& fa, std::int64_t b, const FixedFormat& fb,
                     const FixedFormat& to) {
  const int k = std::max(fa.fraction_bits(), fb.fraction_bits());
  const BigInt sum =
      BigInt(a).ShiftedLeft(k - fa.fraction_bits()) + BigInt(b).ShiftedLeft(k - fb.fraction_bits());
  return BigOracle(sum, k - to.fraction_bits(), to);
}

// ---- Random inputs: wide ranges, but biased toward the interesting neighbourhoods. ----

class Gen {
 public:
  explicit Gen(std::uint64_t seed) : rng_(seed) {}
  std::int64_t Uniform(std::int64_t lo, std::int64_t hi) {
    return std::uniform_int_distribution<std::int64_t>(lo, hi)(rng_);
  }
  bool Chance(int percent) { return Uniform(0, 99) < percent; }
  Wide WideWithBits(int max_bits) {  // random magnitude length, so small values are common
    const int n = static_cast<int>(Uniform(0, max_bits));
    UWide u = (static_cast<UWide>(rng_()) << 64) | rng_();
    u = n == 0 ? 0 : (u >> (128 - n));
    Wide v = static_cast<Wide>(u >> 1);
    return Chance(50) ? -v - (Chance(10) ? 1 : 0) : v;
  }
  FixedFormat Format() {
    FixedFormat f;
    f.is_signed = Chance(70);
    f.width = static_cast<int>(Uniform(1, f.is_signed ? 64 : 63));
    f.integer_bits = static_cast<int>(Chance(25) ? Uniform(-1000, 1000) : Uniform(-80, 140));
    f.quantization = kQuantizations[Uniform(0, 2)];
    f.overflow = kOverflows[Uniform(0, 1)];
    return f;
  }
  FixedFormat FormatWithFraction(std::int64_t frac) {  // as close to `frac` as the limits allow
    FixedFormat f = Format();
    f.integer_bits = static_cast<int>(std::clamp<std::int64_t>(f.width - frac, -1000, 1000));
    return f;
  }
  std::int64_t Raw(const FixedFormat& f) {
    if (Chance(5)) return Chance(50) ? f.min_raw() : f.max_raw();
    const Wide v = WideWithBits(64);
    return static_cast<std::int64_t>(std::clamp<Wide>(v, f.min_raw(), f.max_raw()));
  }

 private:
  std::mt19937_64 rng_;
};

// Runs `n` random cases; `one` returns false on a mismatch after reporting it.
template <typename F>
void RandomCases(int n, F one) {
  ::testing::Test::RecordProperty("seed", std::to_string(kSeed));
  SCOPED_TRACE("seed " + std::to_string(kSeed));
  Gen gen(kSeed);
  int failures = 0;
  for (int i = 0; i < n && failures < kMaxReportedFailures; ++i) {
    if (!one(gen)) ++failures;
  }
}

// ---- Parsing and printing ----

TEST(FixedFormatTest, ToStringIsCanonical) {
  EXPECT_EQ(Fmt(16, 6).ToString(), "fixed<16,6>");
  EXPECT_EQ(Fmt(8, 0, false).ToString(), "ufixed<8,0>");
  EXPECT_EQ(Fmt(16, 6, true, Q::kRndConv, O::kSat).ToString(), "fixed<16,6,RND_CONV,SAT>");
  EXPECT_EQ(Fmt(16, 6, true, Q::kRnd).ToString(), "fixed<16,6,RND,WRAP>");
  EXPECT_EQ(Fmt(4, -7, true, Q::kTrn, O::kSat).ToString(), "fixed<4,-7,TRN,SAT>");
}

TEST(FixedFormatTest, ParsesEverySpelling) {
  struct Case {
    const char* spec;
    FixedFormat want;
  };
  const Case cases[] = {
      {"fixed<16,6>", Fmt(16, 6)},
      {"ufixed<8,0>", Fmt(8, 0, false)},
      {"fixed<16, 6, RND_CONV, SAT>", Fmt(16, 6, true, Q::kRndConv, O::kSat)},
      {"  fixed< 18 ,8 ,AP_RND,AP_WRAP >  ", Fmt(18, 8, true, Q::kRnd, O::kWrap)},
      {"ufixed<1,-3,rnd>", Fmt(1, -3, false, Q::kRnd)},
      {"fixed<64,+1000,TRN,sat>", Fmt(64, 1000, true, Q::kTrn, O::kSat)},
      {"fixed<1,-1000,ap_trn>", Fmt(1, -1000)},
      {"ufixed<63,70>", Fmt(63, 70, false)},
  };
  for (const Case& c : cases) {
    auto f = ParseFixedFormat(c.spec);
    ASSERT_TRUE(f.ok()) << c.spec << ": " << f.status().ToString();
    EXPECT_EQ(*f, c.want) << c.spec << " parsed as " << f->ToString();
  }
}

TEST(FixedFormatTest, RejectsBadSpecsWithOneClearMessage) {
  struct Case {
    const char* spec;
    const char* message;
  };
  const Case cases[] = {
      {"fixed<0,3>", "fixed<0,3>: width 0 out of range; expected 1..64"},
      {"fixed<70,3>", "fixed<70,3>: width 70 out of range; expected 1..64"},
      {"ufixed<64,3>",
       "ufixed<64,3>: width 64 out of range; expected 1..63 for ufixed (raw values are int64)"},
      {"fixed<16,1001>", "fixed<16,1001>: integer bits 1001 out of range; expected -1000..1000"},
      {"fixed<16,-99999999999999999999>",
       "fixed<16,-99999999999999999999>: integer bits -99999999999999999999 out of range; "
       "expected -1000..1000"},
      {"fixed<16,6,FOO>",
       "fixed<16,6,FOO>: quantization mode 'FOO' unknown; expected TRN, RND or RND_CONV"},
      {"fixed<16,6,AP_RND_ZERO>",
       "fixed<16,6,AP_RND_ZERO>: quantization mode 'AP_RND_ZERO' unknown; expected TRN, RND or "
       "RND_CONV"},
      {"fixed<16,6,TRN,SAT_SYM>",
       "fixed<16,6,TRN,SAT_SYM>: overflow mode 'SAT_SYM' unknown; expected WRAP or SAT"},
      {"fixed<16>", "fixed<16>: expected fixed<W,I[,Q[,O]]>"},
      {"ufixed<16,6,TRN,SAT,3>", "ufixed<16,6,TRN,SAT,3>: expected ufixed<W,I[,Q[,O]]>"},
      {"fixed<16,6", "fixed<16,6: expected fixed<W,I[,Q[,O]]>"},
      {"fixed16,6>", "fixed16,6>: expected fixed<W,I[,Q[,O]]>"},
      {"fixed<16.0,6>", "fixed<16.0,6>: width '16.0' is not an integer; expected 1..64"},
      {"fixed<16,6e0>",
       "fixed<16,6e0>: integer bits '6e0' is not an integer; expected -1000..1000"},
      {"fixed<16,>", "fixed<16,>: integer bits '' is not an integer; expected -1000..1000"},
      {"fixed<16,6>x", "fixed<16,6>x: unexpected text 'x' after '>'"},
      {"fixed<16,6> >", "fixed<16,6> >: unexpected text ' >' after '>'"},
      {"float<5,10>", "float<5,10>: expected fixed<W,I[,Q[,O]]> or ufixed<W,I[,Q[,O]]>"},
      {"  ", "'': expected fixed<W,I[,Q[,O]]> or ufixed<W,I[,Q[,O]]>"},
  };
  for (const Case& c : cases) {
    auto f = ParseFixedFormat(c.spec);
    ASSERT_FALSE(f.ok()) << c.spec << " parsed as " << f->ToString();
    EXPECT_EQ(f.status().code(), StatusCode::kInvalidArgument) << c.spec;
    EXPECT_EQ(f.status().message(), c.message);
  }
}

TEST(FixedFormatTest, ParseInvertsToStringForEveryFormat) {
  for (bool is_signed : {true, false}) {
    for (int w = 1; w <= (is_signed ? 64 : 63); ++w) {
      for (int i : {-1000, -65, -1, 0, 1, 2, w - 1, w, w + 1, 200, 1000}) {
        for (Q q : kQuantizations) {
          for (O o : kOverflows) {
            const FixedFormat f = Fmt(w, i, is_signed, q, o);
            auto back = ParseFixedFormat(f.ToString());
            ASSERT_TRUE(back.ok()) << f.ToString() << ": " << back.status().ToString();
            ASSERT_EQ(*back, f) << f.ToString();
            EXPECT_TRUE(ValidateFixedFormat(f).ok()) << f.ToString();
          }
        }
      }
    }
  }
}

TEST(FixedFormatTest, ValidateNamesTheBuiltFormat) {
  EXPECT_EQ(ValidateFixedFormat(Fmt(65, 3)).message(),
            "fixed<65,3>: width 65 out of range; expected 1..64");
  EXPECT_EQ(ValidateFixedFormat(Fmt(8, -1001, false)).message(),
            "ufixed<8,-1001>: integer bits -1001 out of range; expected -1000..1000");
  EXPECT_EQ(ValidateFixedFormat(Fmt(8, 2)).code(), StatusCode::kOk);
}

TEST(FixedFormatTest, RangesAndLsb) {
  EXPECT_EQ(Fmt(8, 3).min_raw(), -128);
  EXPECT_EQ(Fmt(8, 3).max_raw(), 127);
  EXPECT_EQ(Fmt(8, 3).lsb(), 1.0 / 32);
  EXPECT_EQ(Fmt(8, 3).min_value(), -4.0);
  EXPECT_EQ(Fmt(8, 3).max_value(), 127.0 / 32);
  EXPECT_EQ(Fmt(6, 2, false).max_value(), 63.0 / 16);
  EXPECT_EQ(Fmt(6, 2, false).min_value(), 0.0);
  EXPECT_EQ(Fmt(5, -1).lsb(), 1.0 / 64);  // I <= 0: every bit fractional
  EXPECT_EQ(Fmt(5, -1).max_value(), 15.0 / 64);
  EXPECT_EQ(Fmt(4, 6).lsb(), 4.0);  // I >= W: lsb weight above 1
  EXPECT_EQ(Fmt(4, 6).min_value(), -32.0);
  EXPECT_EQ(Fmt(1, 1).min_raw(), -1);
  EXPECT_EQ(Fmt(1, 1).max_raw(), 0);
  EXPECT_EQ(Fmt(1, 0, false).max_raw(), 1);
  EXPECT_EQ(Fmt(64, 64).min_raw(), std::numeric_limits<std::int64_t>::min());
  EXPECT_EQ(Fmt(64, 64).max_raw(), std::numeric_limits<std::int64_t>::max());
  EXPECT_EQ(Fmt(63, 63, false).max_raw(), std::numeric_limits<std::int64_t>::max());
  EXPECT_EQ(Fmt(64, 1).max_value(), 1.0);  // (2^63 - 1) * 2^-63 rounds to 1 in double
  EXPECT_EQ(Fmt(64, -1000).lsb(), std::ldexp(1.0, -1064));
  EXPECT_GT(Fmt(64, -1000).lsb(), 0.0);
  EXPECT_EQ(Fmt(1, 1000, false).max_value(), std::ldexp(1.0, 999));
}

// ---- Named edge cases ----

TEST(FixedFormatEdgeTest, RoundingTiesAtHalfAnLsb) {
  // Source fixed<8,3> (5 fraction bits) into 4 fraction bits: odd raws are exact half-lsb ties.
  const FixedFormat from = Fmt(8, 3);
  struct Case {
    std::int64_t raw;
    std::int64_t trn, rnd, conv;
  };
  const Case cases[] = {
      {1, 0, 1, 0}, {3, 1, 2, 2}, {5, 2, 3, 2}, {-1, -1, 0, 0}, {-3, -2, -1, -2}, {-5, -3, -2, -2},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE("raw " + std::to_string(c.raw));
    EXPECT_EQ(FixedConvert(c.raw, from, Fmt(8, 4, true, Q::kTrn)).raw, c.trn);
    EXPECT_EQ(FixedConvert(c.raw, from, Fmt(8, 4, true, Q::kRnd)).raw, c.rnd);
    EXPECT_EQ(FixedConvert(c.raw, from, Fmt(8, 4, true, Q::kRndConv)).raw, c.conv);
    const double x = std::ldexp(static_cast<double>(c.raw), -5);
    EXPECT_EQ(FixedFromDouble(x, Fmt(8, 4, true, Q::kRndConv)).raw, c.conv);
  }
  // Just off the tie, every nearest mode agrees.
  EXPECT_EQ(FixedFromDouble(0.5 + 1e-9, Fmt(8, 8, true, Q::kRndConv)).raw, 1);
  EXPECT_EQ(FixedFromDouble(-0.5 - 1e-9, Fmt(8, 8, true, Q::kRnd)).raw, -1);
  EXPECT_EQ(FixedFromDouble(-0.5 + 1e-9, Fmt(8, 8, true, Q::kTrn)).raw, -1);
}

TEST(FixedFormatEdgeTest, SaturatesAtMinAndMax) {
  const FixedFormat s = Fmt(8, 3, true, Q::kTrn, O::kSat);
  EXPECT_TRUE(Same(FixedFromDouble(100.0, s), {127, true}));
  EXPECT_TRUE(Same(FixedFromDouble(-100.0, s), {-128, true}));
  EXPECT_TRUE(Same(FixedFromDouble(-4.0, s), {-128, false}));
  EXPECT_TRUE(Same(FixedFromDouble(127.0 / 32, s), {127, false}));
  const FixedFormat u = Fmt(8, 3, false, Q::kTrn, O::kSat);
  EXPECT_TRUE(Same(FixedFromDouble(1000.0, u), {255, true}));
  EXPECT_TRUE(Same(FixedFromDouble(255.0 / 32, u), {255, false}));
  // Rounding up past the maximum is an overflow.
  EXPECT_TRUE(Same(FixedFromDouble(7.5, Fmt(4, 4, true, Q::kRnd, O::kSat)), {7, true}));
  EXPECT_TRUE(Same(FixedFromDouble(7.5, Fmt(4, 4, true, Q::kRnd, O::kWrap)), {-8, true}));
  EXPECT_TRUE(Same(FixedFromDouble(7.5, Fmt(4, 4, true, Q::kTrn, O::kSat)), {7, false}));
}

TEST(FixedFormatEdgeTest, WrapsAround) {
  const FixedFormat s = Fmt(8, 8);
  EXPECT_TRUE(Same(FixedFromWide(128, 0, s), {-128, true}));
  EXPECT_TRUE(Same(FixedFromWide(255, 0, s), {-1, true}));
  EXPECT_TRUE(Same(FixedFromWide(256, 0, s), {0, true}));
  EXPECT_TRUE(Same(FixedFromWide(-129, 0, s), {127, true}));
  const FixedFormat u = Fmt(8, 8, false);
  EXPECT_TRUE(Same(FixedFromWide(256 + 7, 0, u), {7, true}));
  EXPECT_TRUE(Same(FixedAdd(200, u, 100, u, u), {44, true}));
  EXPECT_TRUE(Same(FixedMul(-128, s, -1, s, s), {-128, true}));
}

TEST(FixedFormatEdgeTest, NegativeValuesIntoUnsigned) {
  const FixedFormat w = Fmt(8, 8, false);
  const FixedFormat s = Fmt(8, 8, false, Q::kTrn, O::kSat);
  EXPECT_TRUE(Same(FixedFromDouble(-1.0, w), {255, true}));
  EXPECT_TRUE(Same(FixedFromDouble(-1.0, s), {0, true}));
  EXPECT_TRUE(Same(FixedFromDouble(-0.25, s), {0, true}));  // floors to -1 first
  EXPECT_TRUE(Same(FixedFromDouble(-0.25, Fmt(8, 8, false, Q::kRnd, O::kSat)), {0, false}));
  EXPECT_TRUE(Same(FixedConvert(-3, Fmt(4, 4), w), {253, true}));
}

TEST(FixedFormatEdgeTest, WidthOneAndSixtyFour) {
  const FixedFormat one = Fmt(1, 1);  // values -1 and 0
  EXPECT_TRUE(Same(FixedFromDouble(-1.0, one), {-1, false}));
  EXPECT_TRUE(Same(FixedFromDouble(1.0, one), {-1, true}));
  EXPECT_TRUE(Same(FixedFromDouble(1.0, WithModes(one, Q::kTrn, O::kSat)), {0, true}));
  const FixedFormat uone = Fmt(1, 0, false);  // values 0 and 1/2
  EXPECT_TRUE(Same(FixedFromDouble(0.5, uone), {1, false}));
  EXPECT_TRUE(Same(FixedFromDouble(1.0, uone), {0, true}));

  const FixedFormat big = Fmt(64, 64);
  const std::int64_t kMin = std::numeric_limits<std::int64_t>::min();
  const std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
  EXPECT_TRUE(Same(FixedFromDouble(-std::ldexp(1.0, 63), big), {kMin, false}));
  EXPECT_TRUE(Same(FixedFromDouble(std::ldexp(1.0, 63), big), {kMin, true}));
  EXPECT_TRUE(
      Same(FixedFromDouble(std::ldexp(1.0, 63), WithModes(big, Q::kTrn, O::kSat)), {kMax, true}));
  EXPECT_TRUE(Same(FixedAdd(kMax, big, 1, big, big), {kMin, true}));
  EXPECT_TRUE(Same(FixedMul(kMin, big, kMin, big, WithModes(big, Q::kTrn, O::kSat)), {kMax, true}));
  EXPECT_TRUE(Same(FixedMul(kMin, Fmt(64, 1), kMin, Fmt(64, 1), Fmt(64, 2)),
                   {std::int64_t{1} << 62, false}));  // (-1) * (-1) = 1 in fixed<64,2>
  EXPECT_EQ(FixedToDouble(kMax, Fmt(64, 0)), 0.5);    // rounds to nearest double
  EXPECT_EQ(FixedToDouble(kMin, Fmt(64, 0)), -0.5);
}

TEST(FixedFormatEdgeTest, NanAndInfinity) {
  const double inf = std::numeric_limits<double>::infinity();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (const FixedFormat& f : {Fmt(16, 6), Fmt(8, 0, false), Fmt(64, 10)}) {
    const FixedFormat sat = WithModes(f, Q::kRnd, O::kSat);
    EXPECT_TRUE(Same(FixedFromDouble(nan, f), {0, true}));
    EXPECT_TRUE(Same(FixedFromDouble(nan, sat), {0, true}));
    EXPECT_TRUE(Same(FixedFromDouble(inf, f), {0, true}));
    EXPECT_TRUE(Same(FixedFromDouble(-inf, f), {0, true}));
    EXPECT_TRUE(Same(FixedFromDouble(inf, sat), {f.max_raw(), true}));
    EXPECT_TRUE(Same(FixedFromDouble(-inf, sat), {f.min_raw(), true}));
  }
}

TEST(FixedFormatEdgeTest, HugeAndTinyDoubles) {
  const double max = std::numeric_limits<double>::max();
  const double tiny = std::numeric_limits<double>::denorm_min();
  EXPECT_TRUE(Same(FixedFromDouble(max, Fmt(16, 6)), {0, true}));  // low bits all zero
  EXPECT_TRUE(Same(FixedFromDouble(max, Fmt(16, 6, true, Q::kTrn, O::kSat)), {32767, true}));
  EXPECT_TRUE(Same(FixedFromDouble(-max, Fmt(16, 6, true, Q::kTrn, O::kSat)), {-32768, true}));
  EXPECT_TRUE(Same(FixedFromDouble(tiny, Fmt(16, 6)), {0, false}));
  EXPECT_TRUE(Same(FixedFromDouble(-tiny, Fmt(16, 6)), {-1, false}));  // floor
  EXPECT_TRUE(Same(FixedFromDouble(-tiny, Fmt(16, 6, true, Q::kRnd)), {0, false}));
  EXPECT_TRUE(Same(FixedFromDouble(-0.0, Fmt(16, 6)), {0, false}));
  EXPECT_TRUE(Same(FixedFromDouble(std::ldexp(1.0, -1064), Fmt(64, -1000)), {1, false}));
  EXPECT_TRUE(Same(FixedFromDouble(std::ldexp(3.0, 997), Fmt(4, 1000)), {6, false}));
  EXPECT_EQ(FixedToDouble(1, Fmt(64, -1000)), std::ldexp(1.0, -1064));
  EXPECT_EQ(FixedToDouble(-7, Fmt(3, 1000)), -7 * std::ldexp(1.0, 997));
}

TEST(FixedFormatEdgeTest, ShiftsBeyondWide) {
  const FixedFormat f = Fmt(16, 6);
  EXPECT_TRUE(Same(FixedFromWide(1, -200, f), {0, true}));  // 2^200: low 16 bits zero
  EXPECT_TRUE(Same(FixedFromWide(-1, -200, WithModes(f, Q::kTrn, O::kSat)), {-32768, true}));
  EXPECT_TRUE(Same(FixedFromWide(3, 10 - 62, f), {0, true}));
  EXPECT_TRUE(Same(FixedFromWide(3, 10 - 14, f), {-16384, true}));  // 3 << 14 wraps
  EXPECT_TRUE(Same(FixedFromWide(-1, 300, f), {-1, false}));
  EXPECT_TRUE(Same(FixedFromWide(-1, 300, WithModes(f, Q::kRnd, O::kWrap)), {0, false}));
  const Wide kWideMin = static_cast<Wide>(UWide{1} << 127);
  const Wide kWideMax = ~kWideMin;
  // kWideMin * 2^-128 is exactly -1/2 lsb; kWideMax * 2^-128 is just below +1/2 lsb.
  EXPECT_EQ(FixedFromWide(kWideMin, 10 + 128, f).raw, -1);
  EXPECT_EQ(FixedFromWide(kWideMin, 10 + 128, WithModes(f, Q::kRnd, O::kWrap)).raw, 0);
  EXPECT_EQ(FixedFromWide(kWideMin, 10 + 128, WithModes(f, Q::kRndConv, O::kWrap)).raw, 0);
  EXPECT_EQ(FixedFromWide(kWideMax, 10 + 128, WithModes(f, Q::kRnd, O::kWrap)).raw, 0);
  EXPECT_EQ(FixedFromWide(kWideMax, 10 + 127, WithModes(f, Q::kRnd, O::kWrap)).raw, 1);
  EXPECT_EQ(FixedFromWide(Wide{1} << 126, 10 + 127, WithModes(f, Q::kRndConv, O::kWrap)).raw, 0);
  EXPECT_EQ(FixedFromWide(Wide{3} << 125, 10 + 126, WithModes(f, Q::kRndConv, O::kWrap)).raw, 2);
}

TEST(FixedFormatEdgeTest, AddsFormatsFarApart) {
  const FixedFormat coarse = Fmt(64, 60);  // 4 fraction bits
  const FixedFormat fine = Fmt(64, -900);  // 964 fraction bits
  // 1/16 - 2^-964: just below one lsb of `coarse`.
  EXPECT_EQ(FixedAdd(1, coarse, -1, fine, Fmt(16, 12)).raw, 0);
  EXPECT_EQ(FixedAdd(1, coarse, -1, fine, Fmt(16, 12, true, Q::kRnd)).raw, 1);
  EXPECT_EQ(FixedAdd(-1, fine, 1, coarse, Fmt(16, 12, true, Q::kRnd)).raw, 1);
  // 1/32 + tiny: above the tie, so both nearest modes round up.
  EXPECT_EQ(FixedAdd(1, Fmt(64, 59), 1, fine, Fmt(16, 12, true, Q::kRndConv)).raw, 1);
  EXPECT_EQ(FixedAdd(1, Fmt(64, 59), -1, fine, Fmt(16, 12, true, Q::kRnd)).raw, 0);
  // Target finer than the coarse operand: the coarse part is a whole number of target lsbs.
  EXPECT_TRUE(Same(FixedAdd(1, coarse, -1, fine, Fmt(64, -10, true, Q::kTrn, O::kSat)),
                   {std::numeric_limits<std::int64_t>::max(), true}));
  // 1 - 2^-164 into fixed<64,1>: truncation gives the maximum, rounding gives 1, which wraps.
  EXPECT_TRUE(Same(FixedAdd(1, Fmt(8, 8), -1, Fmt(64, -100), Fmt(64, 1)),
                   {std::numeric_limits<std::int64_t>::max(), false}));
  EXPECT_TRUE(Same(FixedAdd(1, Fmt(8, 8), -1, Fmt(64, -100), Fmt(64, 1, true, Q::kRnd)),
                   {std::numeric_limits<std::int64_t>::min(), true}));
  EXPECT_TRUE(Same(FixedAdd(1, Fmt(8, 8), -1, Fmt(64, -100), Fmt(64, 2)),
                   {(std::int64_t{1} << 62) - 1, false}));
}

// ---- Exhaustive small formats against oracle 1 ----

const FixedFormat kSmallSources[] = {Fmt(8, 3), Fmt(6, 2, false), Fmt(5, -1),
                                     Fmt(4, 6), Fmt(1, 1),        Fmt(1, -2, false)};
const FixedFormat kSmallTargets[] = {Fmt(6, 2), Fmt(5, 3, false), Fmt(4, -2), Fmt(10, 8),
                                     Fmt(3, 5), Fmt(12, 4),       Fmt(1, 0),  Fmt(8, 0, false)};
constexpr int kSmallScale = 16;  // >= every fraction count above, so n * 2^-16 is exact

template <typename Op, typename Exact>
void ExhaustivePairs(Op op, Exact exact_scaled, int scale) {
  int failures = 0;
  for (const FixedFormat& fa : kSmallSources) {
    for (const FixedFormat& fb : kSmallSources) {
      const std::vector<std::int64_t> raws_a = AllRaws(fa);
      const std::vector<std::int64_t> raws_b = AllRaws(fb);
      for (const FixedFormat& target : kSmallTargets) {
        for (Q q : kQuantizations) {
          for (O o : kOverflows) {
            const FixedFormat to = WithModes(target, q, o);
            for (std::int64_t a : raws_a) {
              for (std::int64_t b : raws_b) {
                const FixedValue got = op(a, fa, b, fb, to);
                const FixedValue want = SmallOracle(exact_scaled(a, fa, b, fb), scale, to);
                if (Same(got, want)) continue;
                ADD_FAILURE() << a << " (" << fa.ToString() << "), " << b << " (" << fb.ToString()
                              << ") -> " << to.ToString() << ": got " << Show(got) << ", want "
                              << Show(want);
                if (++failures >= kMaxReportedFailures) return;
              }
            }
          }
        }
      }
    }
  }
}

TEST(FixedFormatExhaustiveTest, ConvertEveryRaw) {
  int failures = 0;
  for (const FixedFormat& from : kSmallSources) {
    for (const FixedFormat& target : kSmallTargets) {
      for (Q q : kQuantizations) {
        for (O o : kOverflows) {
          const FixedFormat to = WithModes(target, q, o);
          for (std::int64_t r : AllRaws(from)) {
            const FixedValue got = FixedConvert(r, from, to);
            const FixedValue want = SmallOracle(
                r * (std::int64_t{1} << (kSmallScale - from.fraction_bits())), kSmallScale, to);
            if (Same(got, want)) continue;
            ADD_FAILURE() << r << " " << from.ToString() << " -> " << to.ToString() << ": got "
                          << Show(got) << ", want " << Show(want);
            if (++failures >= kMaxReportedFailures) return;
          }
        }
      }
    }
  }
}

TEST(FixedFormatExhaustiveTest, AddEveryPair) {
  ExhaustivePairs(
      FixedAdd,
      [](std::int64_t a, const FixedFormat& fa, std::int64_t b, const FixedFormat& fb) {
        return a * (std::int64_t{1} << (kSmallScale - fa.fraction_bits())) +
               b * (std::int64_t{1} << (kSmallScale - fb.fraction_bits()));
      },
      kSmallScale);
}

TEST(FixedFormatExhaustiveTest, MulEveryPair) {
  ExhaustivePairs(
      FixedMul,
      [](std::int64_t a, const FixedFormat& fa, std::int64_t b, const FixedFormat& fb) {
        return a * b *
               (std::int64_t{1} << (2 * kSmallScale - fa.fraction_bits() - fb.fraction_bits()));
      },
      2 * kSmallScale);
}

// ---- Randomized wide formats against oracle 2 (fixed seed, printed) ----

TEST(FixedFormatRandomTest, FromWide) {
  RandomCases(1'000'000, [](Gen& g) {
    const FixedFormat to = g.Format();
    const Wide v = g.WideWithBits(128);
    const int from_frac = static_cast<int>(g.Chance(80) ? to.fraction_bits() + g.Uniform(-140, 140)
                                                        : g.Uniform(-1100, 1100));
    const FixedValue got = FixedFromWide(v, from_frac, to);
    const FixedValue want = WideOracle(v, from_frac, to);
    if (Same(got, want)) return true;
    ADD_FAILURE() << ShowWide(v) << " * 2^-" << from_frac << " -> " << to.ToString() << ": got "
                  << Show(got) << ", want " << Show(want);
    return false;
  });
}

TEST(FixedFormatRandomTest, FromDouble) {
  RandomCases(1'000'000, [](Gen& g) {
    const FixedFormat to = g.Format();
    double x;
    if (g.Chance(20)) {
      x = std::bit_cast<double>(static_cast<std::uint64_t>(g.Uniform(
          std::numeric_limits<std::int64_t>::min(), std::numeric_limits<std::int64_t>::max())));
    } else {  // near the format's lsb .. range, where rounding and overflow both happen
      const auto m =
          static_cast<double>(g.Uniform(-(std::int64_t{1} << 53), std::int64_t{1} << 53));
      x = std::ldexp(m, static_cast<int>(-to.fraction_bits() - 53 + g.Uniform(-5, to.width + 60)));
    }
    const FixedValue got = FixedFromDouble(x, to);
    FixedValue want{0, true};
    if (std::isinf(x) && to.overflow == O::kSat) want.raw = x < 0 ? to.min_raw() : to.max_raw();
    if (std::isfinite(x)) want = DoubleOracle(x, to);
    if (Same(got, want)) return true;
    ADD_FAILURE() << std::hexfloat << x << " -> " << to.ToString() << ": got " << Show(got)
                  << ", want " << Show(want);
    return false;
  });
}

// A third, floating-point oracle where it is exact: scaled values below 2^62 in long double.
TEST(FixedFormatRandomTest, FromDoubleMatchesLongDoubleRounding) {
  if (std::numeric_limits<long double>::digits < 64) GTEST_SKIP() << "needs 64-bit long double";
  ASSERT_EQ(std::fegetround(), FE_TONEAREST);
  RandomCases(200'000, [](Gen& g) {
    const FixedFormat to = g.Format();
    const auto m = static_cast<double>(g.Uniform(-(std::int64_t{1} << 53), std::int64_t{1} << 53));
    const double x = std::ldexp(m, static_cast<int>(-to.fraction_bits() - 53 + g.Uniform(-3, 62)));
    if (!std::isfinite(x)) return true;  // I near 1000: the scaled range passes DBL_MAX
    const long double y = std::ldexp(static_cast<long double>(x), to.fraction_bits());
    long double r = std::floor(y);
    if (to.quantization == Q::kRnd) r = std::floor(y + 0.5L);
    if (to.quantization == Q::kRndConv) r = std::nearbyint(y);
    if (to.width > 62) return true;  // SmallFit's int64 span arithmetic stops at 62 bits
    const FixedValue want = SmallFit(static_cast<std::int64_t>(r), to);
    const FixedValue got = FixedFromDouble(x, to);
    if (Same(got, want)) return true;
    ADD_FAILURE() << std::hexfloat << x << " -> " << to.ToString() << ": got " << Show(got)
                  << ", want " << Show(want);
    return false;
  });
}

TEST(FixedFormatRandomTest, AddAcrossWideFormats) {
  RandomCases(300'000, [](Gen& g) {
    const FixedFormat fa = g.Format();
    const FixedFormat fb =
        g.Chance(30) ? g.FormatWithFraction(fa.fraction_bits() + g.Uniform(-70, 70)) : g.Format();
    const int pick = static_cast<int>(g.Uniform(0, 2));
    const FixedFormat to =
        pick == 2
            ? g.Format()
            : g.FormatWithFraction((pick == 0 ? fa : fb).fraction_bits() + g.Uniform(-70, 70));
    const std::int64_t a = g.Raw(fa);
    const std::int64_t b = g.Raw(fb);
    const FixedValue got = FixedAdd(a, fa, b, fb, to);
    const FixedValue want = AddOracle(a, fa, b, fb, to);
    if (Same(got, want)) return true;
    ADD_FAILURE() << a << " (" << fa.ToString() << ") + " << b << " (" << fb.ToString() << ") -> "
                  << to.ToString() << ": got " << Show(got) << ", want " << Show(want);
    return false;
  });
}

TEST(FixedFormatRandomTest, MulAndConvertAcrossWideFormats) {
  RandomCases(200'000, [](Gen& g) {
    const FixedFormat fa = g.FormatWithFraction(g.Uniform(-300, 300));
    const FixedFormat fb = g.FormatWithFraction(g.Uniform(-300, 300));
    const FixedFormat to =
        g.FormatWithFraction(fa.fraction_bits() + fb.fraction_bits() + g.Uniform(-130, 70));
    const std::int64_t a = g.Raw(fa);
    const std::int64_t b = g.Raw(fb);
    const int product_frac = fa.fraction_bits() + fb.fraction_bits();
    const FixedValue mul = FixedMul(a, fa, b, fb, to);
    const FixedValue mul_want = WideOracle(static_cast<Wide>(a) * b, product_frac, to);
    const FixedValue conv = FixedConvert(a, fa, to);
    const FixedValue conv_want = WideOracle(a, fa.fraction_bits(), to);
    if (Same(mul, mul_want) && Same(conv, conv_want)) return true;
    ADD_FAILURE() << a << " (" << fa.ToString() << "), " << b << " (" << fb.ToString() << ") -> "
                  << to.ToString() << ": mul got " << Show(mul) << ", want " << Show(mul_want)
                  << "; convert got " << Show(conv) << ", want " << Show(conv_want);
    return false;
  });
}

TEST(FixedFormatRandomTest, ToDoubleRoundTripsWhereExact) {
  RandomCases(200'000, [](Gen& g) {
    FixedFormat f = g.Format();
    f.width = std::min(f.width, 53);
    const std::int64_t raw = g.Raw(f);
    const double x = FixedToDouble(raw, f);
    const FixedValue back = FixedFromDouble(x, f);
    if (back.raw == raw && !back.overflowed) return true;
    ADD_FAILURE() << raw << " in " << f.ToString() << " -> " << std::hexfloat << x << " -> "
                  << Show(back);
    return false;
  });
}

}  // namespace
}  // namespace fpgaserve::numeric
