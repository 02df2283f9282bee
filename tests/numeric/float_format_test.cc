// Bit-exact tests of the soft float<E,M> arithmetic: against the host's IEEE float, double and
// _Float16 (which are correctly rounded), and exhaustively for tiny formats against an exact
// rational oracle with its own rounding routine.
#include "numeric/float_format.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <random>
#include <string>
#include <vector>

// The oracle computations below must each round once, exactly as written: no contraction of a
// multiply and an add into an FMA (the build also passes -ffp-contract=off).
#pragma GCC optimize("fp-contract=off")

namespace fpgaserve::numeric {
namespace {

using Rng = std::mt19937_64;

Rng SeededRng(std::uint64_t seed, const char* what) {
  std::printf("[ seed     ] %s: %llu\n", what, static_cast<unsigned long long>(seed));
  return Rng(seed);
}

std::uint32_t Bits(float x) { return std::bit_cast<std::uint32_t>(x); }
float F32(FloatBits b) { return std::bit_cast<float>(static_cast<std::uint32_t>(b)); }
std::uint64_t Bits(double x) { return std::bit_cast<std::uint64_t>(x); }
double F64(FloatBits b) { return std::bit_cast<double>(b); }
std::uint16_t Bits(_Float16 x) { return std::bit_cast<std::uint16_t>(x); }
_Float16 F16(FloatBits b) { return std::bit_cast<_Float16>(static_cast<std::uint16_t>(b)); }

// Counts mismatches; reports the first few in detail so a broken rounding rule does not flood the
// log with a million lines.
class Mismatches {
 public:
  void Check(FloatBits got, FloatBits want, bool want_nan, const FloatFormat& f,
             const std::string& what) {
    const bool ok = want_nan ? got == CanonicalNaN(f) : got == want;
    if (ok) return;
    if (++count_ <= 10) {
      ADD_FAILURE() << what << ": got 0x" << std::hex << got << " want 0x" << want
                    << (want_nan ? " (canonical NaN)" : "");
    }
  }
  int count() const { return count_; }

 private:
  int count_ = 0;
};

std::string Hex(FloatBits x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(x));
  return buf;
}

// ---- Random operands ----------------------------------------------------------------------------

// Operands from a mix of classes, so specials, subnormals, overflow, ties and cancellation all
// appear often, not just at their natural 1-in-2^k rate.
FloatBits RandomOperand(Rng& rng, const FloatFormat& f, const std::vector<FloatBits>& grid) {
  const int m = f.mantissa_bits;
  const std::uint64_t mant_mask = (1ULL << m) - 1;
  const std::int64_t max_field = (1LL << f.exponent_bits) - 1;
  const std::uint64_t sign = (rng() & 1) << (f.width() - 1);
  const auto field = [&](std::int64_t lo, std::int64_t hi) {
    lo = std::clamp<std::int64_t>(lo, 0, max_field - 1);
    hi = std::clamp<std::int64_t>(hi, lo, max_field - 1);
    return static_cast<std::uint64_t>(lo + static_cast<std::int64_t>(rng() % (hi - lo + 1))) << m;
  };
  const int r = static_cast<int>(rng() % 20);
  if (r < 5) return rng() & ((f.width() == 64) ? ~0ULL : (1ULL << f.width()) - 1);
  if (r < 12) return sign | field(f.bias() - 30, f.bias() + 30) | (rng() & mant_mask);
  if (r < 14) return sign | field(0, 2) | (rng() & mant_mask);
  if (r < 16) return sign | field(max_field - 4, max_field - 1) | (rng() & mant_mask);
  if (r < 19) {  // few significant bits: sums and products land on halfway points
    const int keep = std::min<int>(m, static_cast<int>(rng() % 5));
    const std::uint64_t mant = keep == 0 ? 0 : (rng() & ((1ULL << keep) - 1)) << (m - keep);
    return sign | field(f.bias() - 3 * m, f.bias() + 3 * m) | mant;
  }
  return grid[rng() % grid.size()];
}

// An operand close to -x or x (cancellation, near-ties), or just another random operand.
FloatBits RelatedOperand(Rng& rng, FloatBits x, const FloatFormat& f,
                         const std::vector<FloatBits>& grid) {
  if (rng() % 3 != 0) return RandomOperand(rng, f, grid);
  const std::uint64_t width_mask = f.width() == 64 ? ~0ULL : (1ULL << f.width()) - 1;
  const auto delta = static_cast<std::int64_t>(rng() % 9) - 4;
  FloatBits y = (x + static_cast<std::uint64_t>(delta)) & width_mask;
  if (rng() & 1) y ^= 1ULL << (f.width() - 1);
  if (rng() % 4 == 0)
    y = (y & ~((1ULL << f.mantissa_bits) - 1)) | (rng() & ((1ULL << f.mantissa_bits) - 1));
  return y;
}

// Zeros, extremes of each range, infinities, NaN and values whose sums or products tie.
std::vector<FloatBits> SpecialGrid(const FloatFormat& f) {
  const int m = f.mantissa_bits;
  const FloatBits one = static_cast<FloatBits>(f.bias()) << m;
  const FloatBits half_ulp_of_one = static_cast<FloatBits>(std::max(0, f.bias() - m - 1)) << m;
  std::vector<FloatBits> v = {
      0,                                                // +0
      1,                                                // min subnormal
      (1ULL << m) - 1,                                  // max subnormal
      1ULL << m,                                        // min normal
      LargestFinite(f, false),                          // max
      LargestFinite(f, false) - 1,                      //
      Infinity(f, false),                               //
      CanonicalNaN(f),                                  //
      CanonicalNaN(f) | 1,                              // NaN with another payload
      one,                                              // 1
      one + 1,                                          // 1 + ulp
      one - 1,                                          // 1 - ulp/2
      one | (1ULL << (m - 1)),                          // 1.5
      one + (1ULL << m),                                // 2
      half_ulp_of_one,                                  // 2^-(M+1): 1 + this is a tie
      half_ulp_of_one + 1,                              //
      (static_cast<FloatBits>(f.bias() + 1) << m) | 1,  // 2 + ulp(2)
      3ULL << (m - 1),                                  // 1.5 * min normal
  };
  const std::size_t n = v.size();
  for (std::size_t i = 0; i < n; ++i) v.push_back(Negate(v[i], f));
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

// ---- Host oracles, each a single IEEE operation ------------------------------------------------

template <typename T>
T HostAdd(T a, T b) {
  volatile T r = a + b;
  return r;
}
template <typename T>
T HostSub(T a, T b) {
  volatile T r = a - b;
  return r;
}
template <typename T>
T HostMul(T a, T b) {
  volatile T r = a * b;
  return r;
}
template <typename T>
T HostDiv(T a, T b) {
  volatile T r = a / b;
  return r;
}

// ---- Parsing, text and helpers ------------------------------------------------------------------

TEST(FloatFormatTest, ParsesNamesAndGenericSpecs) {
  EXPECT_EQ(ParseFloatFormat("float32").value(), kFloat32);
  EXPECT_EQ(ParseFloatFormat("float16").value(), kFloat16);
  EXPECT_EQ(ParseFloatFormat("bfloat16").value(), kBFloat16);
  EXPECT_EQ(ParseFloatFormat("float64").value(), kFloat64);
  EXPECT_EQ(ParseFloatFormat("  float<6,9>  ").value(), (FloatFormat{6, 9}));
  EXPECT_EQ(ParseFloatFormat("float< 4 , 3 >").value(), (FloatFormat{4, 3}));
  EXPECT_EQ(ParseFloatFormat("float<8,23>").value(), kFloat32);
  for (int e = 2; e <= 11; ++e) {
    for (int m = 1; m <= 52; ++m) {
      const FloatFormat f{e, m};
      auto parsed = ParseFloatFormat(f.ToString());
      ASSERT_TRUE(parsed.ok()) << f.ToString() << ": " << parsed.status().ToString();
      EXPECT_EQ(parsed.value(), f);
    }
  }
  EXPECT_EQ(kFloat32.ToString(), "float32");
  EXPECT_EQ(kFloat16.ToString(), "float16");
  EXPECT_EQ(kBFloat16.ToString(), "bfloat16");
  EXPECT_EQ(kFloat64.ToString(), "float64");
  EXPECT_EQ((FloatFormat{5, 2}).ToString(), "float<5,2>");
}

TEST(FloatFormatTest, ParseErrorsNameSpecAndRange) {
  auto r = ParseFloatFormat("float<1,0>");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "float<1,0>: exponent bits 1 out of range; expected 2..11");
  r = ParseFloatFormat("float<8,53>");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "float<8,53>: mantissa bits 53 out of range; expected 1..52");
  r = ParseFloatFormat("float<12,3>");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "float<12,3>: exponent bits 12 out of range; expected 2..11");
  r = ParseFloatFormat("float<99999999999999,3>");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("exponent bits 99999999999999 out of range"),
            std::string::npos);
  for (const char* bad : {"", "float", "float8", "float<8>", "float<8,23", "float<8,23>x",
                          "float<a,3>", "Float32", "double", "float<8;23>", "float<,>"}) {
    r = ParseFloatFormat(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(
        r.status().message().find("expected float<E,M>, float32, float16, bfloat16 or float64"),
        std::string::npos)
        << bad << " -> " << r.status().message();
  }
}

TEST(FloatFormatTest, HelpersMatchHostFloat32) {
  EXPECT_EQ(CanonicalNaN(kFloat32), 0x7fc00000u);
  EXPECT_EQ(CanonicalNaN(kFloat16), 0x7e00u);
  EXPECT_EQ(CanonicalNaN(kBFloat16), 0x7fc0u);
  EXPECT_EQ(CanonicalNaN(kFloat64), 0x7ff8000000000000ull);
  EXPECT_EQ(CanonicalNaN(FloatFormat{2, 1}), 0x7u);
  EXPECT_EQ(Infinity(kFloat32, false), Bits(std::numeric_limits<float>::infinity()));
  EXPECT_EQ(Infinity(kFloat32, true), Bits(-std::numeric_limits<float>::infinity()));
  EXPECT_EQ(LargestFinite(kFloat32, false), Bits(std::numeric_limits<float>::max()));
  EXPECT_EQ(LargestFinite(kFloat32, true), Bits(-std::numeric_limits<float>::max()));
  EXPECT_EQ(LargestFinite(kFloat64, false), Bits(std::numeric_limits<double>::max()));
  EXPECT_EQ(FloatToDouble(LargestFinite(kFloat16, false), kFloat16), 65504.0);
  EXPECT_TRUE(IsNaN(0x7fc00000, kFloat32));
  EXPECT_TRUE(IsNaN(0xff800001, kFloat32));
  EXPECT_FALSE(IsNaN(0x7f800000, kFloat32));
  EXPECT_TRUE(IsInf(0xff800000, kFloat32));
  EXPECT_FALSE(IsInf(0x7f7fffff, kFloat32));
  EXPECT_TRUE(IsZero(0x80000000, kFloat32));
  EXPECT_TRUE(IsZero(0, kFloat32));
  EXPECT_FALSE(IsZero(1, kFloat32));
  EXPECT_TRUE(SignBit(0x8000, kFloat16));
  EXPECT_FALSE(SignBit(0x7fff, kFloat16));
  EXPECT_EQ(Negate(0x3f800000, kFloat32), 0xbf800000u);
  EXPECT_EQ(Negate(0xbf800000, kFloat32), 0x3f800000u);
  EXPECT_EQ(Negate(0x7fc00000, kFloat32), 0xffc00000u);  // NaN's sign flips too
  EXPECT_EQ(Negate(0, kFloat16), 0x8000u);
}

TEST(FloatFormatTest, CompareOrdersValues) {
  Rng rng = SeededRng(11, "compare");
  const auto grid = SpecialGrid(kFloat32);
  for (int i = 0; i < 200000; ++i) {
    const FloatBits a = RandomOperand(rng, kFloat32, grid);
    const FloatBits b = RelatedOperand(rng, a, kFloat32, grid);
    const float x = F32(a), y = F32(b);
    const int want = (std::isnan(x) || std::isnan(y)) ? 2 : (x < y ? -1 : (x > y ? 1 : 0));
    ASSERT_EQ(FloatCompare(a, b, kFloat32), want) << Hex(a) << " vs " << Hex(b);
  }
  EXPECT_EQ(FloatCompare(0x8000, 0x0000, kFloat16), 0);  // -0 == +0
}

TEST(FloatFormatTest, ZeroSignAndSpecialRules) {
  const FloatFormat f = kFloat32;
  const FloatBits pz = 0, nz = 0x80000000, one = 0x3f800000, inf = 0x7f800000;
  EXPECT_EQ(FloatAdd(one, Negate(one, f), f), pz);  // x + (-x) = +0
  EXPECT_EQ(FloatSub(one, one, f), pz);
  EXPECT_EQ(FloatAdd(nz, nz, f), nz);  // (-0) + (-0) = -0
  EXPECT_EQ(FloatAdd(pz, nz, f), pz);
  EXPECT_EQ(FloatSub(nz, pz, f), nz);
  EXPECT_EQ(FloatMul(nz, one, f), nz);  // sign = xor
  EXPECT_EQ(FloatMul(nz, Negate(one, f), f), pz);
  EXPECT_EQ(FloatMul(pz, inf, f), CanonicalNaN(f));  // 0 * Inf
  EXPECT_EQ(FloatAdd(inf, Negate(inf, f), f), CanonicalNaN(f));
  EXPECT_EQ(FloatDiv(one, nz, f), Infinity(f, true));  // x / -0
  EXPECT_EQ(FloatDiv(pz, pz, f), CanonicalNaN(f));
  EXPECT_EQ(FloatDiv(inf, inf, f), CanonicalNaN(f));
  EXPECT_EQ(FloatFma(pz, inf, CanonicalNaN(f), f), CanonicalNaN(f));
  EXPECT_EQ(FloatFma(nz, one, nz, f), nz);                   // (-0) + (-0)
  EXPECT_EQ(FloatFma(one, one, Negate(one, f), f), pz);      // exact cancellation
  EXPECT_EQ(FloatAdd(0xffc00001, one, f), CanonicalNaN(f));  // NaN in: canonical NaN out
  // Underflow keeps the sign of the exact result.
  EXPECT_EQ(FloatMul(0x00000001, 0xbe800000, f), nz);  // min subnormal * -0.25
}

// ---- float32 against the host -------------------------------------------------------------------

void CheckFloat32Ops(FloatBits a, FloatBits b, FloatBits c, Mismatches& mm) {
  const FloatFormat f = kFloat32;
  const float x = F32(a), y = F32(b), z = F32(c);
  const auto check = [&](FloatBits got, float want, const char* op) {
    mm.Check(got, Bits(want), std::isnan(want), f,
             std::string(op) + "(" + Hex(a) + ", " + Hex(b) + ", " + Hex(c) + ")");
  };
  check(FloatAdd(a, b, f), HostAdd(x, y), "add");
  check(FloatSub(a, b, f), HostSub(x, y), "sub");
  check(FloatMul(a, b, f), HostMul(x, y), "mul");
  check(FloatDiv(a, b, f), HostDiv(x, y), "div");
  check(FloatFma(a, b, c, f), std::fma(x, y, z), "fma");
}

TEST(FloatFormatFloat32Test, RandomOperationsMatchHost) {
  Rng rng = SeededRng(20240601, "float32 ops");
  const auto grid = SpecialGrid(kFloat32);
  Mismatches mm;
  constexpr int kCases = 1'000'000;
  for (int i = 0; i < kCases; ++i) {
    const FloatBits a = RandomOperand(rng, kFloat32, grid);
    const FloatBits b = RelatedOperand(rng, a, kFloat32, grid);
    FloatBits c = RandomOperand(rng, kFloat32, grid);
    // Every fourth FMA cancels against the rounded product, leaving only its rounding error.
    if (i % 4 == 0) c = Bits(-HostMul(F32(a), F32(b))) ^ (rng() % 3 == 0 ? 1 : 0);
    CheckFloat32Ops(a, b, c, mm);
  }
  EXPECT_EQ(mm.count(), 0);
}

TEST(FloatFormatFloat32Test, SpecialGridMatchesHost) {
  const auto grid = SpecialGrid(kFloat32);
  Mismatches mm;
  for (FloatBits a : grid) {
    for (FloatBits b : grid) {
      for (FloatBits c : grid) CheckFloat32Ops(a, b, c, mm);
    }
  }
  EXPECT_EQ(mm.count(), 0);
}

// ---- float16 against GCC's _Float16 ------------------------------------------------------------

TEST(FloatFormatFloat16Test, EveryOperandAgainstRandomPartnersMatchesHost) {
  Rng rng = SeededRng(7, "float16 ops");
  const FloatFormat f = kFloat16;
  const auto grid = SpecialGrid(f);
  Mismatches mm;
  const auto check = [&](FloatBits got, _Float16 want, const char* op, FloatBits a, FloatBits b) {
    mm.Check(got, Bits(want), want != want, f,
             std::string(op) + "(" + Hex(a) + ", " + Hex(b) + ")");
  };
  for (FloatBits a = 0; a < 0x10000; ++a) {
    for (int j = 0; j < 64; ++j) {
      const FloatBits b = j < 8 ? grid[rng() % grid.size()] : RelatedOperand(rng, a, f, grid);
      const _Float16 x = F16(a), y = F16(b);
      check(FloatAdd(a, b, f), HostAdd(x, y), "add", a, b);
      check(FloatSub(a, b, f), HostSub(x, y), "sub", a, b);
      check(FloatMul(a, b, f), HostMul(x, y), "mul", a, b);
      check(FloatDiv(a, b, f), HostDiv(x, y), "div", a, b);
    }
  }
  EXPECT_EQ(mm.count(), 0);
}

// ---- float64 against the host -------------------------------------------------------------------

TEST(FloatFormatFloat64Test, RandomOperationsMatchHost) {
  Rng rng = SeededRng(64, "float64 ops");
  const FloatFormat f = kFloat64;
  const auto grid = SpecialGrid(f);
  Mismatches mm;
  for (int i = 0; i < 300'000; ++i) {
    const FloatBits a = RandomOperand(rng, f, grid);
    const FloatBits b = RelatedOperand(rng, a, f, grid);
    FloatBits c = RandomOperand(rng, f, grid);
    if (i % 4 == 0) c = Bits(-HostMul(F64(a), F64(b)));
    const double x = F64(a), y = F64(b), z = F64(c);
    const std::string ops = "(" + Hex(a) + ", " + Hex(b) + ", " + Hex(c) + ")";
    const auto check = [&](FloatBits got, double want, const char* op) {
      mm.Check(got, Bits(want), std::isnan(want), f, op + ops);
    };
    check(FloatAdd(a, b, f), HostAdd(x, y), "add");
    check(FloatSub(a, b, f), HostSub(x, y), "sub");
    check(FloatMul(a, b, f), HostMul(x, y), "mul");
    check(FloatDiv(a, b, f), HostDiv(x, y), "div");
    check(FloatFma(a, b, c, f), std::fma(x, y, z), "fma");
  }
  EXPECT_EQ(mm.count(), 0);
}

// ---- Tiny formats: exhaustive against an exact rational oracle --------------------------------

using Wide128 = __int128;

// Knows a tiny format only through the encoding rules: the magnitude of pattern i is
// I_i * 2^-t, listed for every non-negative pattern up to infinity's, where infinity stands in
// for 2^(emax+1) (the value at which overflow starts). Patterns are ordered like magnitudes, so
// rounding is a search in this list, and "even" is simply an even index.
class TinyOracle {
 public:
  explicit TinyOracle(FloatFormat f) : f_(f), t_(f.mantissa_bits + f.bias() - 1) {
    const std::uint64_t inf_index = ((1ULL << f.exponent_bits) - 1) << f.mantissa_bits;
    for (std::uint64_t i = 0; i <= inf_index; ++i) {
      const std::uint64_t e = i >> f.mantissa_bits, m = i & ((1ULL << f.mantissa_bits) - 1);
      ints_.push_back(e == 0 ? Wide128(m) : Wide128((1ULL << f.mantissa_bits) | m) << (e - 1));
    }
  }

  const FloatFormat& format() const { return f_; }
  int t() const { return t_; }
  std::uint64_t count() const { return 1ULL << f_.width(); }
  bool Finite(FloatBits x) const { return (x & Magnitude()) < ints_.size() - 1; }
  bool Negative(FloatBits x) const { return (x >> (f_.width() - 1)) & 1; }
  Wide128 Int(FloatBits x) const {
    return Negative(x) ? -ints_[x & Magnitude()] : ints_[x & Magnitude()];
  }
  double Value(FloatBits x) const {
    const std::uint64_t mag = x & Magnitude();
    double v = mag < ints_.size() - 1    ? std::ldexp(static_cast<double>(ints_[mag]), -t_)
               : mag == ints_.size() - 1 ? HUGE_VAL
                                         : NAN;
    return Negative(x) ? -v : v;
  }

  // Correctly rounds the exact value (negative ? -1 : 1) * a / (d * 2^s), a > 0, d > 0.
  FloatBits Round(bool negative, Wide128 a, Wide128 d, int s) const {
    // Compare a / (d 2^s) with I / 2^t by cross-multiplying onto a common power of two.
    const int up_a = std::max(0, t_ - s), up_i = std::max(0, s - t_);
    const Wide128 lhs = a << up_a;
    const auto rhs = [&](std::size_t i) { return (ints_[i] * d) << up_i; };
    // Largest i with I_i <= value.
    std::size_t lo = 0, hi = ints_.size();
    while (hi - lo > 1) {
      const std::size_t mid = (lo + hi) / 2;
      (rhs(mid) <= lhs ? lo : hi) = mid;
    }
    std::size_t r = lo;
    if (lo + 1 == ints_.size()) {
      r = lo;  // at or beyond 2^(emax+1): infinity
    } else if (rhs(lo) != lhs) {
      const Wide128 twice = lhs * 2, mid = rhs(lo) + rhs(lo + 1);
      if (twice > mid || (twice == mid && lo % 2 == 1)) r = lo + 1;
    }
    return (negative ? 1ULL << (f_.width() - 1) : 0) | r;
  }

  // Expected bits of an operation whose host-double result is `host` and exact value is
  // n / (d * 2^s): specials and exact zeros take the host's (IEEE) result, everything else the
  // independent rounding.
  FloatBits Expect(bool operands_finite, double host, Wide128 n, Wide128 d, int s,
                   bool* want_nan) const {
    *want_nan = std::isnan(host);
    const FloatBits sign = std::signbit(host) ? 1ULL << (f_.width() - 1) : 0;
    if (*want_nan) return 0;
    if (!operands_finite || std::isinf(host) || n == 0) {
      EXPECT_TRUE(std::isinf(host) || host == 0) << host;
      return sign | (std::isinf(host) ? (ints_.size() - 1) : 0);
    }
    return Round(n < 0, n < 0 ? -n : n, d, s);
  }

 private:
  std::uint64_t Magnitude() const { return (1ULL << (f_.width() - 1)) - 1; }
  FloatFormat f_;
  int t_;  // value = I * 2^-t; t = M - emin
  std::vector<Wide128> ints_;
};

void CheckTinyExhaustive(const FloatFormat& f, bool all_fma_addends) {
  const TinyOracle o(f);
  const int t = o.t();
  std::vector<FloatBits> addends;
  if (all_fma_addends) {
    for (FloatBits c = 0; c < o.count(); ++c) addends.push_back(c);
  } else {
    addends = SpecialGrid(f);
    Rng rng = SeededRng(3, "tiny fma addends");
    for (int i = 0; i < 8; ++i) addends.push_back(rng() % o.count());
  }
  Mismatches mm;
  bool want_nan = false;
  const auto check = [&](FloatBits got, FloatBits want, const char* op, FloatBits a, FloatBits b) {
    mm.Check(got, want, want_nan, f, f.ToString() + " " + op + "(" + Hex(a) + ", " + Hex(b) + ")");
  };
  for (FloatBits a = 0; a < o.count(); ++a) {
    for (FloatBits b = 0; b < o.count(); ++b) {
      const bool finite = o.Finite(a) && o.Finite(b);
      const double x = o.Value(a), y = o.Value(b);
      const Wide128 ia = finite ? o.Int(a) : 0, ib = finite ? o.Int(b) : 0;
      // Sums and products carry 2t fraction bits; the quotient ia/ib carries none.
      FloatBits want = o.Expect(finite, HostAdd(x, y), (ia + ib) << t, 1, 2 * t, &want_nan);
      check(FloatAdd(a, b, f), want, "add", a, b);
      want = o.Expect(finite, HostSub(x, y), (ia - ib) << t, 1, 2 * t, &want_nan);
      check(FloatSub(a, b, f), want, "sub", a, b);
      want = o.Expect(finite, HostMul(x, y), ia * ib, 1, 2 * t, &want_nan);
      check(FloatMul(a, b, f), want, "mul", a, b);
      const bool div_finite = finite && ib != 0;
      want =
          o.Expect(div_finite, HostDiv(x, y), ib < 0 ? -ia : ia, ib < 0 ? -ib : ib, 0, &want_nan);
      check(FloatDiv(a, b, f), want, "div", a, b);
      for (FloatBits c : addends) {
        const bool all_finite = finite && o.Finite(c);
        const Wide128 n = all_finite ? ia * ib + (o.Int(c) << t) : 0;
        want = o.Expect(all_finite, std::fma(x, y, o.Value(c)), n, 1, 2 * t, &want_nan);
        mm.Check(FloatFma(a, b, c, f), want, want_nan, f,
                 f.ToString() + " fma(" + Hex(a) + ", " + Hex(b) + ", " + Hex(c) + ")");
      }
    }
  }
  EXPECT_EQ(mm.count(), 0) << f.ToString();
}

TEST(FloatFormatTinyTest, Float21AllTriples) { CheckTinyExhaustive({2, 1}, true); }
TEST(FloatFormatTinyTest, Float32AllTriples) { CheckTinyExhaustive({3, 2}, true); }
TEST(FloatFormatTinyTest, Float43AllPairs) { CheckTinyExhaustive({4, 3}, false); }
TEST(FloatFormatTinyTest, Float52AllPairs) { CheckTinyExhaustive({5, 2}, false); }

TEST(FloatFormatTinyTest, ConversionsBetweenTinyFormats) {
  const std::vector<FloatFormat> formats = {{2, 1}, {3, 2}, {4, 3}, {5, 2}, {3, 4}, {6, 1}};
  for (const FloatFormat& from : formats) {
    const TinyOracle src(from);
    for (const FloatFormat& to : formats) {
      const TinyOracle dst(to);
      Mismatches mm;
      for (FloatBits x = 0; x < src.count(); ++x) {
        const double v = src.Value(x);
        bool want_nan = false;
        const Wide128 n = src.Finite(x) ? src.Int(x) : 0;
        const FloatBits want = dst.Expect(src.Finite(x), v, n, 1, src.t(), &want_nan);
        mm.Check(FloatConvert(x, from, to), want, want_nan, to,
                 from.ToString() + "->" + to.ToString() + " " + Hex(x));
        // The exact double of a tiny value rounds the same way.
        mm.Check(FloatFromDouble(v, to), want, want_nan, to, "from double " + Hex(x));
        EXPECT_TRUE(want_nan || FloatToDouble(x, from) == v || std::isnan(v)) << Hex(x);
      }
      EXPECT_EQ(mm.count(), 0);
    }
  }
}

TEST(FloatFormatTinyTest, FromDoubleRoundsLongSignificands) {
  Rng rng = SeededRng(99, "tiny from double");
  for (const FloatFormat f : {FloatFormat{4, 3}, FloatFormat{5, 2}, FloatFormat{2, 1}}) {
    const TinyOracle o(f);
    Mismatches mm;
    for (int i = 0; i < 200000; ++i) {
      // x = +/- k * 2^-72 with a 53-bit k: many bits below the format's precision.
      const std::int64_t k = static_cast<std::int64_t>(rng() >> (11 + rng() % 40)) | 1;
      const int shift = static_cast<int>(rng() % 20);
      const bool negative = rng() & 1;
      const double x = std::ldexp(static_cast<double>(k), shift - 72) * (negative ? -1 : 1);
      bool want_nan = false;
      const FloatBits want =
          o.Expect(true, x, negative ? -Wide128(k) : Wide128(k), 1, 72 - shift, &want_nan);
      mm.Check(FloatFromDouble(x, f), want, want_nan, f, "from double " + std::to_string(x));
    }
    EXPECT_EQ(mm.count(), 0) << f.ToString();
  }
}

// ---- Conversions against the host --------------------------------------------------------------

TEST(FloatFormatConversionTest, Float16ToFloat32AndDoubleAreExact) {
  for (FloatBits h = 0; h < 0x10000; ++h) {
    const float want = static_cast<float>(F16(h));
    const FloatBits got = FloatConvert(h, kFloat16, kFloat32);
    if (std::isnan(want)) {
      ASSERT_EQ(got, CanonicalNaN(kFloat32)) << Hex(h);
      ASSERT_TRUE(std::isnan(FloatToDouble(h, kFloat16)));
    } else {
      ASSERT_EQ(got, Bits(want)) << Hex(h);
      ASSERT_EQ(Bits(FloatToDouble(h, kFloat16)), Bits(static_cast<double>(want))) << Hex(h);
    }
  }
}

TEST(FloatFormatConversionTest, Float32ToFloat16MatchesHost) {
  // Every sign/exponent/top-10-mantissa combination with the dropped 13 bits at and around the
  // halfway point, plus random patterns.
  Rng rng = SeededRng(16, "float32 to float16");
  Mismatches mm;
  const auto check = [&](std::uint32_t u) {
    const _Float16 want = static_cast<_Float16>(F32(u));
    mm.Check(FloatConvert(u, kFloat32, kFloat16), Bits(want), want != want, kFloat16,
             "to float16 " + Hex(u));
  };
  for (std::uint32_t top = 0; top < (1u << 19); ++top) {
    for (std::uint32_t low : {0x0u, 0x1u, 0xfffu, 0x1000u, 0x1001u, 0x1fffu})
      check(top << 13 | low);
    check(top << 13 | static_cast<std::uint32_t>(rng() & 0x1fff));
  }
  for (int i = 0; i < 500000; ++i) check(static_cast<std::uint32_t>(rng()));
  EXPECT_EQ(mm.count(), 0);
}

TEST(FloatFormatConversionTest, BFloat16FromFloat32MatchesBitTwiddling) {
  Rng rng = SeededRng(17, "bfloat16");
  // The common reference: add 0x7fff plus the kept LSB, then drop the low half (RNE). Overflow
  // carries into infinity's pattern on its own.
  const auto reference = [](std::uint32_t u) -> FloatBits {
    if ((u & 0x7fffffff) > 0x7f800000) return 0x7fc0;
    return (u + 0x7fff + ((u >> 16) & 1)) >> 16;
  };
  Mismatches mm;
  const auto check = [&](std::uint32_t u) {
    mm.Check(FloatConvert(u, kFloat32, kBFloat16), reference(u), false, kBFloat16,
             "to bfloat16 " + Hex(u));
  };
  for (std::uint32_t top = 0; top < (1u << 16); ++top) {
    for (std::uint32_t low : {0x0u, 0x1u, 0x7fffu, 0x8000u, 0x8001u, 0xffffu})
      check(top << 16 | low);
  }
  for (int i = 0; i < 1000000; ++i) check(static_cast<std::uint32_t>(rng()));
  EXPECT_EQ(mm.count(), 0);
  // bfloat16 -> float32 is exact: just the high half.
  for (FloatBits b = 0; b < 0x10000; ++b) {
    if (IsNaN(b, kBFloat16)) continue;
    ASSERT_EQ(FloatConvert(b, kBFloat16, kFloat32), b << 16) << Hex(b);
  }
}

TEST(FloatFormatConversionTest, FromDoubleMatchesHostCasts) {
  Rng rng = SeededRng(32, "from double");
  Mismatches mm;
  const auto check = [&](double x) {
    const float want32 = static_cast<float>(x);
    mm.Check(FloatFromDouble(x, kFloat32), Bits(want32), std::isnan(want32), kFloat32,
             "to float32 " + Hex(Bits(x)));
    const _Float16 want16 = static_cast<_Float16>(x);
    mm.Check(FloatFromDouble(x, kFloat16), Bits(want16), want16 != want16, kFloat16,
             "to float16 " + Hex(Bits(x)));
    mm.Check(FloatFromDouble(x, kFloat64), Bits(x), std::isnan(x), kFloat64,
             "to float64 " + Hex(Bits(x)));
    if (!std::isnan(x)) {
      mm.Check(Bits(FloatToDouble(Bits(x), kFloat64)), Bits(x), false, kFloat64, "to double");
    }
  };
  for (int i = 0; i < 400000; ++i) {
    const std::uint64_t r = rng();
    check(F64(r));  // uniform bits: mostly far outside float range
    // Within and around float32/float16 range, with the bits below float precision set to
    // exactly half, just below or just above, or random.
    const std::uint64_t exp = 1023 - 160 + rng() % 300;
    std::uint64_t bits = (r & 0x8000000000000000ull) | (exp << 52) | (rng() & 0xfffffffffffffull);
    const std::uint64_t low29 = (1ull << 29) - 1, tie29 = 1ull << 28;
    switch (rng() % 4) {
      case 0:
        bits = (bits & ~low29) | tie29;
        break;
      case 1:
        bits = (bits & ~low29) | (tie29 - 1);
        break;
      case 2:
        bits = (bits & ~low29) | (tie29 + 1);
        break;
      default:
        break;
    }
    check(F64(bits));
  }
  for (double x : std::initializer_list<double>{
           0.0, -0.0, HUGE_VAL, -HUGE_VAL, NAN, 65520.0, 65519.99, 3.4028235677973366e38,
           3.4028235677973362e38, 0x1p-150, 0x1.0000000000001p-150, 0x1p-25, 0x1.8p-149, 0x1.4p-149,
           5e-324, 1e308}) {
    check(x);
  }
  EXPECT_EQ(mm.count(), 0);
}

// ---- Fixed <-> float ----------------------------------------------------------------------------

TEST(FloatFormatFixedTest, FromFixedMatchesReferences) {
  // Exactly representable fixed values through the (separately tested) double path.
  for (const FixedFormat fx :
       {FixedFormat{16, 6}, FixedFormat{12, 12}, FixedFormat{10, -4}, FixedFormat{8, 20, false}}) {
    for (std::int64_t raw = fx.min_raw(); raw <= fx.max_raw(); ++raw) {
      const double v = FixedToDouble(raw, fx);
      for (const FloatFormat f : {kFloat32, kFloat16, kBFloat16, FloatFormat{4, 3}}) {
        ASSERT_EQ(FloatFromFixed(raw, fx, f), FloatFromDouble(v, f))
            << fx.ToString() << " raw " << raw << " -> " << f.ToString();
      }
    }
  }
  // 64-bit raws: the host's int64 -> float conversion rounds once (RNE); the power-of-two
  // scaling afterwards is exact in this range.
  Rng rng = SeededRng(5, "fixed64 to float");
  const FixedFormat fx{64, 20};
  for (int i = 0; i < 200000; ++i) {
    auto raw = static_cast<std::int64_t>(rng() >> (rng() % 64));
    if (rng() & 1) raw = -raw;
    if (i == 0) raw = std::numeric_limits<std::int64_t>::min();
    const float want = std::ldexp(static_cast<float>(raw), -fx.fraction_bits());
    ASSERT_EQ(FloatFromFixed(raw, fx, kFloat32), Bits(want)) << raw;
  }
  EXPECT_EQ(FloatFromFixed(0, fx, kFloat32), 0u);  // +0, never -0
}

TEST(FloatFormatFixedTest, ToFixedMatchesExactDoublePath) {
  Rng rng = SeededRng(6, "float to fixed");
  const auto grid = SpecialGrid(kFloat32);
  std::vector<FixedFormat> formats;
  for (Quantization q : {Quantization::kTrn, Quantization::kRnd, Quantization::kRndConv}) {
    for (Overflow o : {Overflow::kWrap, Overflow::kSat}) {
      formats.push_back({16, 6, true, q, o});
      formats.push_back({12, -3, true, q, o});
      formats.push_back({8, 40, false, q, o});
      formats.push_back({64, 32, true, q, o});
    }
  }
  for (int i = 0; i < 100000; ++i) {
    const FloatBits x = RandomOperand(rng, kFloat32, grid);
    for (const FixedFormat& fx : formats) {
      const FixedValue got = FixedFromFloat(x, kFloat32, fx);
      const FixedValue want = FixedFromDouble(F32(x), fx);
      ASSERT_EQ(got.raw, want.raw) << Hex(x) << " -> " << fx.ToString();
      ASSERT_EQ(got.overflowed, want.overflowed) << Hex(x) << " -> " << fx.ToString();
    }
  }
}

TEST(FloatFormatFixedTest, RoundTripsAndSpecials) {
  const FixedFormat fx{16, 6};
  for (std::int64_t raw = fx.min_raw(); raw <= fx.max_raw(); ++raw) {
    const FixedValue back = FixedFromFloat(FloatFromFixed(raw, fx, kFloat32), kFloat32, fx);
    ASSERT_EQ(back.raw, raw);
    ASSERT_FALSE(back.overflowed);
  }
  FixedFormat sat = fx;
  sat.overflow = Overflow::kSat;
  const FloatBits nan = CanonicalNaN(kFloat32);
  for (const FixedFormat& f : {fx, sat}) {
    const FixedValue n = FixedFromFloat(nan, kFloat32, f);
    EXPECT_EQ(n.raw, 0);
    EXPECT_TRUE(n.overflowed);
  }
  FixedValue v = FixedFromFloat(Infinity(kFloat32, false), kFloat32, sat);
  EXPECT_EQ(v.raw, sat.max_raw());
  EXPECT_TRUE(v.overflowed);
  v = FixedFromFloat(Infinity(kFloat32, true), kFloat32, sat);
  EXPECT_EQ(v.raw, sat.min_raw());
  EXPECT_TRUE(v.overflowed);
  v = FixedFromFloat(Infinity(kFloat32, true), kFloat32, fx);
  EXPECT_EQ(v.raw, 0);
  EXPECT_TRUE(v.overflowed);
  // Largest float64 into a WRAP format: all low bits are zero; into SAT: the maximum.
  v = FixedFromFloat(LargestFinite(kFloat64, false), kFloat64, fx);
  EXPECT_EQ(v.raw, 0);
  EXPECT_TRUE(v.overflowed);
  v = FixedFromFloat(LargestFinite(kFloat64, false), kFloat64, sat);
  EXPECT_EQ(v.raw, sat.max_raw());
  // The smallest subnormal rounds to zero without overflow.
  v = FixedFromFloat(1, kFloat64, sat);
  EXPECT_EQ(v.raw, 0);
  EXPECT_FALSE(v.overflowed);
}

// ---- Integral rounding, scaling, integer conversion --------------------------------------------

TEST(FloatFormatIntegralTest, RoundToIntegralMatchesNearbyint) {
  Rng rng = SeededRng(8, "round to integral");
  const auto grid = SpecialGrid(kFloat32);
  Mismatches mm;
  for (int i = 0; i < 300000; ++i) {
    FloatBits x = RandomOperand(rng, kFloat32, grid);
    if (i % 2 == 0)
      x = Bits(std::ldexp(static_cast<float>(rng() % 4096), -static_cast<int>(rng() % 12)) *
               ((rng() & 1) ? -1.0f : 1.0f));
    const float want = std::nearbyint(F32(x));  // default mode: to nearest, ties to even
    mm.Check(FloatRoundToIntegral(x, kFloat32), Bits(want), std::isnan(want), kFloat32,
             "round " + Hex(x));
    if (!std::isnan(want) && !std::isinf(want) && std::fabs(want) < 0x1p62f) {
      ASSERT_EQ(FloatToInt64(Bits(want), kFloat32), static_cast<std::int64_t>(want)) << want;
    }
  }
  EXPECT_EQ(mm.count(), 0);
  EXPECT_EQ(FloatRoundToIntegral(0xbe99999a, kFloat32), 0x80000000u);  // -0.3 -> -0
  EXPECT_EQ(FloatToInt64(Bits(-0x1p62f), kFloat32), -(std::int64_t{1} << 62));
  EXPECT_EQ(FloatToInt64(CanonicalNaN(kFloat32), kFloat32), 0);
  EXPECT_EQ(FloatToInt64(Infinity(kFloat32, true), kFloat32),
            std::numeric_limits<std::int64_t>::min());
  EXPECT_EQ(FloatToInt64(Bits(2.75f), kFloat32), 2);  // outside the domain: truncates
}

TEST(FloatFormatIntegralTest, ScaleBMatchesLdexp) {
  Rng rng = SeededRng(9, "scaleb");
  const auto grid = SpecialGrid(kFloat32);
  Mismatches mm;
  for (int i = 0; i < 300000; ++i) {
    const FloatBits x = RandomOperand(rng, kFloat32, grid);
    const int k = static_cast<int>(rng() % 601) - 300;
    const float want = std::ldexp(F32(x), k);
    mm.Check(FloatScaleB(x, k, kFloat32), Bits(want), std::isnan(want), kFloat32,
             "scaleb " + Hex(x) + " " + std::to_string(k));
  }
  EXPECT_EQ(mm.count(), 0);
  EXPECT_EQ(FloatScaleB(0x3f800000, INT_MAX, kFloat32), Infinity(kFloat32, false));
  EXPECT_EQ(FloatScaleB(0xbf800000, INT_MIN, kFloat32), 0x80000000u);
  EXPECT_EQ(FloatScaleB(0x3fc00000, -150, kFloat32), 1u);  // 1.5 * 2^-150 rounds up to 2^-149
  EXPECT_EQ(FloatScaleB(0x3f800000, -150, kFloat32), 0u);  // tie at 2^-150 rounds to even zero
}

}  // namespace
}  // namespace fpgaserve::numeric
