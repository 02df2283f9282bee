// Co-simulation of the generated number-format conversion unit against the soft references,
// bit for bit: numeric::FloatConvert (float -> float), FloatFromFixed (fixed -> float) and
// FixedFromFloat(...).raw (float -> fixed). Each case streams the special values of the source
// (zeros, subnormals, min/max, Inf, NaN), the boundaries of the target (overflow, underflow,
// rounding ties, the ends of a fixed range and beyond), every pattern of a source of at most 16
// bits, and random inputs (fixed seed).
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <ostream>
#include <random>
#include <set>

#include "hw/float_unit_testing.h"
#include "hw/float_units.h"
#include "numeric/float_format.h"
#include "numeric/number_format.h"

namespace fpgaserve::hw {
namespace {

namespace fs = std::filesystem;
using numeric::FixedFormat;
using numeric::FloatFormat;
using numeric::NumberFormat;

struct Case {
  const char* from;
  const char* to;
  int stages;  // -1: the unit's maximum
  int random_inputs;
};

void PrintTo(const Case& c, std::ostream* os) {
  *os << c.from << " -> " << c.to << ", stages " << c.stages << ", " << c.random_inputs << " random inputs";
}

NumberFormat Parse(const char* spec) {
  auto f = numeric::ParseNumberFormat(spec);
  EXPECT_TRUE(f.ok()) << spec;
  return f.ok() ? *f : NumberFormat{};
}

std::string Sanitize(std::string s) {
  for (char& ch : s) {
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  }
  return s;
}

std::string CaseName(const ::testing::TestParamInfo<Case>& info) {
  const auto& c = info.param;
  return Sanitize(std::string(c.from) + "_to_" + c.to + "_stages" +
                  (c.stages < 0 ? std::string("max") : std::to_string(c.stages)));
}

std::uint64_t Mask(int width) { return width >= 64 ? ~0ULL : (1ULL << width) - 1; }

// The reference result as the unit's output bits (a fixed raw in two's complement, 64 bits wide,
// as the harness sign-extends signed outputs).
std::uint64_t Reference(std::uint64_t x, const NumberFormat& from, const NumberFormat& to) {
  if (from.is_float() && to.is_float()) return numeric::FloatConvert(x, from.floating(), to.floating());
  if (from.is_fixed()) {
    const FixedFormat& f = from.fixed();
    std::uint64_t raw = x & Mask(f.width);
    if (f.is_signed && f.width < 64 && ((raw >> (f.width - 1)) & 1) != 0) raw |= ~Mask(f.width);
    return numeric::FloatFromFixed(static_cast<std::int64_t>(raw), f, to.floating());
  }
  return static_cast<std::uint64_t>(numeric::FixedFromFloat(x, from.floating(), to.fixed()).raw);
}

// Float source: the value d rounded into f (NaN-free doubles only), and its negation.
void AddDouble(double d, const FloatFormat& f, std::vector<std::uint64_t>* out) {
  const std::uint64_t x = numeric::FloatFromDouble(d, f);
  out->push_back(x);
  out->push_back(numeric::Negate(x, f));
}

// A float with biased exponent field e (clamped to the finite range) and the given mantissa.
std::uint64_t FloatWithExponent(const FloatFormat& f, bool negative, long long e, std::uint64_t mantissa) {
  e = std::clamp<long long>(e, 0, (1LL << f.exponent_bits) - 2);
  return (negative ? 1ULL << (f.width() - 1) : 0) | (static_cast<std::uint64_t>(e) << f.mantissa_bits) |
         (mantissa & Mask(f.mantissa_bits));
}

// Inputs near what matters to the target when the source is a float.
std::vector<std::uint64_t> FloatSourceEdges(const FloatFormat& f, const NumberFormat& to) {
  std::vector<std::uint64_t> v = testing::SpecialValues(f);
  if (to.is_float()) {
    const FloatFormat& t = to.floating();
    const double min_sub = std::ldexp(1.0, 1 - t.bias() - t.mantissa_bits);
    const double min_norm = std::ldexp(1.0, 1 - t.bias());
    const double max_fin = numeric::FloatToDouble(numeric::LargestFinite(t, false), t);
    const double ulp_max = std::ldexp(1.0, (1 << t.exponent_bits) - 2 - t.bias() - t.mantissa_bits);
    for (double d : {min_sub, min_sub / 2, min_sub * 0.75, min_sub * 0.25, min_sub * 1.5, min_sub * 2.5,
                     min_sub * 3, min_sub / 2 * (1 + 1e-9), min_sub / 2 * (1 - 1e-9), min_norm,
                     min_norm - min_sub / 2, min_norm - min_sub, min_norm - min_sub * 1.5, min_norm * 1.5,
                     max_fin, max_fin + ulp_max / 2, max_fin + ulp_max / 4, max_fin + ulp_max * 0.75,
                     max_fin + ulp_max, max_fin * 2, 1.0 + std::ldexp(1.0, -t.mantissa_bits - 1),
                     1.0 + std::ldexp(3.0, -t.mantissa_bits - 1), 1.0 + std::ldexp(1.0, -t.mantissa_bits - 2)}) {
      if (std::isfinite(d)) AddDouble(d, f, &v);
    }
  } else {
    const FixedFormat& t = to.fixed();
    const double lsb = t.lsb();
    for (double base : {0.0, 1.0, -1.0, 2.0, -2.0, 3.0, static_cast<double>(t.max_raw()),
                        static_cast<double>(t.min_raw()), static_cast<double>(t.max_raw()) + 1,
                        static_cast<double>(t.min_raw()) - 1}) {
      for (double delta : {-2.0, -1.5, -1.0, -0.75, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0}) {
        AddDouble((base + delta) * lsb, f, &v);
      }
    }
    for (int k = -8; k <= 8; ++k) AddDouble((k + 0.5) * lsb, f, &v);  // ties
    // Powers of two from far below the lsb to far above the range, and just around them.
    for (int j = t.integer_bits - t.width - 70; j <= t.integer_bits + 70; ++j) {
      const double p = std::ldexp(1.0, j);
      AddDouble(p, f, &v);
      AddDouble(p * 1.5, f, &v);
      AddDouble(p * (1 + 1.0 / 1024), f, &v);
      AddDouble(p * (1 - 1.0 / 2048), f, &v);
    }
  }
  return v;
}

// Random float inputs: anything (RandomOperand), or exponents in the window where the target
// rounds, underflows or overflows, with full or short (tie-making) mantissas.
std::uint64_t RandomFloatInput(const FloatFormat& f, const NumberFormat& to, std::mt19937_64& rng) {
  if (rng() % 2 == 0) return testing::RandomOperand(f, rng);
  long long e = 0;  // unbiased exponent of the value
  if (to.is_float()) {
    const FloatFormat& t = to.floating();
    const long long emin = 1 - t.bias(), emax = (1LL << t.exponent_bits) - 2 - t.bias();
    e = rng() % 2 == 0 ? emin - t.mantissa_bits - 3 + static_cast<long long>(rng() % (t.mantissa_bits + 6))
                       : emax - 3 + static_cast<long long>(rng() % 6);
  } else {
    const FixedFormat& t = to.fixed();
    const long long lo = -t.fraction_bits() - 4, hi = t.integer_bits + 3;
    e = lo + static_cast<long long>(rng() % static_cast<std::uint64_t>(hi - lo + 1));
  }
  std::uint64_t mantissa = rng();
  if (rng() % 3 == 0) {  // few mantissa bits: exact values and ties
    const int keep = static_cast<int>(rng() % 6);
    mantissa &= ~Mask(std::max(0, f.mantissa_bits - keep));
  }
  return FloatWithExponent(f, rng() % 2 == 0, e + f.bias(), mantissa);
}

// Fixed source: zero, +/-1, the ends of the range, powers of two and their neighbours.
std::vector<std::uint64_t> FixedSourceEdges(const FixedFormat& f) {
  std::set<std::int64_t> raws = {0, 1, f.max_raw(), f.max_raw() - 1, f.min_raw(), f.min_raw() + 1};
  if (f.is_signed) raws.insert(-1);
  for (int k = 0; k < f.width - (f.is_signed ? 1 : 0); ++k) {
    const std::int64_t p = static_cast<std::int64_t>(1ULL << k);
    for (std::int64_t r : {p, p - 1, p + 1, p | (p >> 1), p | (p >> 1) | 1}) {
      if (r >= f.min_raw() && r <= f.max_raw()) raws.insert(r);
      if (f.is_signed && -r >= f.min_raw() && -r <= f.max_raw()) raws.insert(-r);
    }
  }
  std::vector<std::uint64_t> v;
  for (auto r : raws) v.push_back(static_cast<std::uint64_t>(r) & Mask(f.width));
  return v;
}

// Random fixed raws: uniform, of a random bit length, or a short pattern (ties when rounded to
// the target's M + 1 bits) at a random position.
std::uint64_t RandomFixedInput(const FixedFormat& f, const NumberFormat& to, std::mt19937_64& rng) {
  const int w = f.width;
  std::uint64_t mag = 0;
  switch (rng() % 3) {
    case 0: return rng() & Mask(w);
    case 1: mag = rng() & Mask(1 + static_cast<int>(rng() % static_cast<unsigned>(w))); break;
    default: {
      const int bits = std::min(w, to.floating().mantissa_bits + 2 + static_cast<int>(rng() % 2));
      const std::uint64_t pattern = (rng() & Mask(bits)) | (1ULL << (bits - 1));
      const int room = w - bits - (f.is_signed ? 1 : 0);
      mag = room > 0 ? pattern << (rng() % static_cast<unsigned>(room + 1)) : pattern;
      break;
    }
  }
  mag &= Mask(f.is_signed ? w - 1 : w);
  const bool negative = f.is_signed && rng() % 2 == 0;
  return (negative ? ~mag + 1 : mag) & Mask(w);
}

class NumberConvertTest : public testing::FloatUnitTest<Case> {};

TEST_P(NumberConvertTest, EqualsTheReferenceBitForBit) {
  const Case& c = GetParam();
  const NumberFormat from = Parse(c.from), to = Parse(c.to);
  const int max_stages = NumberConvertMaxStages(from, to);
  const int stages = c.stages >= 0 ? c.stages : max_stages;
  auto unit = EmitNumberConvert("nc_unit", from, to, stages);
  ASSERT_TRUE(unit.ok()) << unit.status().ToString();
  EXPECT_EQ(unit->latency, stages);
  EXPECT_EQ(unit->max_stages, max_stages);
  EXPECT_EQ(unit->operands, 1);
  EXPECT_EQ(unit->in_width, from.width());
  EXPECT_EQ(unit->out_width, to.width());
  EXPECT_EQ(unit->out_signed, to.is_fixed() && to.fixed().is_signed);
  testing::FloatUnitSim sim(*unit, dir_.string());
  ASSERT_TRUE(sim.ok()) << sim.error();

  std::vector<std::uint64_t> in;
  std::uint64_t seed = 20261215;  // fixed per case
  for (const char* ch = c.from; *ch; ++ch) seed = seed * 31 + static_cast<unsigned char>(*ch);
  for (const char* ch = c.to; *ch; ++ch) seed = seed * 31 + static_cast<unsigned char>(*ch);
  std::mt19937_64 rng(seed);
  if (from.is_float()) {
    in = FloatSourceEdges(from.floating(), to);
  } else {
    in = FixedSourceEdges(from.fixed());
  }
  const std::size_t edges = in.size();
  if (from.width() <= 16) {  // every pattern
    for (std::uint64_t x = 0; x <= Mask(from.width()); ++x) in.push_back(x);
  }
  for (int i = 0; i < c.random_inputs; ++i) {
    in.push_back(from.is_float() ? RandomFloatInput(from.floating(), to, rng) : RandomFixedInput(from.fixed(), to, rng));
  }
  const auto got = sim.Run(in);
  ASSERT_EQ(got.size(), in.size()) << "the simulation stalled";
  const bool host = from.is_float() && to.is_float() &&
                    ((from.floating() == numeric::kFloat64 && to.floating() == numeric::kFloat32) ||
                     (from.floating() == numeric::kFloat32 && to.floating() == numeric::kFloat64));
  int mismatches = 0, host_mismatches = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const std::uint64_t want = Reference(in[i], from, to);
    if (got[i] != want && ++mismatches <= 8) {
      ADD_FAILURE() << from.ToString() << " -> " << to.ToString() << " of " << testing::Hex(in[i])
                    << (i < edges ? " (edge value)" : "") << ": RTL " << testing::Hex(got[i]) << ", reference "
                    << testing::Hex(want);
    }
    if (host) {  // the host's IEEE conversions between float and double
      std::uint64_t h = 0;
      bool nan = false;
      if (from.floating() == numeric::kFloat64) {
        double d;
        std::memcpy(&d, &in[i], 8);
        const volatile float r = static_cast<float>(d);
        const float rr = r;
        std::uint32_t b;
        std::memcpy(&b, &rr, 4);
        h = b;
        nan = std::isnan(rr);
      } else {
        const auto b32 = static_cast<std::uint32_t>(in[i]);
        float fl;
        std::memcpy(&fl, &b32, 4);
        const volatile double r = static_cast<double>(fl);
        const double rr = r;
        std::memcpy(&h, &rr, 8);
        nan = std::isnan(rr);
      }
      const bool same = nan ? numeric::IsNaN(got[i], to.floating()) : h == got[i];
      if (!same && ++host_mismatches <= 8) {
        ADD_FAILURE() << "convert(" << testing::Hex(in[i]) << "): RTL " << testing::Hex(got[i]) << ", host "
                      << testing::Hex(h);
      }
    }
  }
  EXPECT_EQ(mismatches, 0) << "of " << got.size();
  EXPECT_EQ(host_mismatches, 0) << "of " << got.size();
}

constexpr int kMillion = 1'000'000;
constexpr int kSome = 100'000;

INSTANTIATE_TEST_SUITE_P(
    Formats, NumberConvertTest,
    ::testing::Values(
        // float <-> float, fully pipelined, 1M random inputs each.
        Case{"float32", "float16", -1, kMillion}, Case{"float16", "float32", -1, kMillion},
        Case{"float32", "bfloat16", -1, kMillion}, Case{"bfloat16", "float32", -1, kMillion},
        Case{"float32", "float<6,9>", -1, kMillion}, Case{"float<11,52>", "float32", -1, kMillion},
        Case{"float32", "float<11,52>", -1, kMillion},
        // fixed -> float.
        Case{"fixed<16,6>", "float32", -1, kMillion}, Case{"fixed<16,6>", "float16", -1, kMillion},
        Case{"ufixed<8,0>", "bfloat16", -1, kSome}, Case{"fixed<32,12>", "float16", -1, kMillion},
        // float -> fixed, every quantization and overflow mode.
        Case{"float32", "fixed<16,6>", -1, kMillion}, Case{"float32", "fixed<16,6,RND,SAT>", -1, kMillion},
        Case{"float16", "fixed<8,3,RND_CONV,SAT>", -1, kMillion},
        Case{"float32", "ufixed<12,4,RND,SAT>", -1, kMillion},
        // Odd formats (integer bits < 0 or > width, 64-bit and tiny formats) at other depths.
        Case{"fixed<8,-3>", "float16", 0, kSome}, Case{"ufixed<10,14>", "float<4,3>", 2, kSome},
        Case{"fixed<64,40>", "float<11,52>", 3, kSome}, Case{"float<11,52>", "float<2,1>", 1, kSome},
        Case{"float16", "fixed<8,-2,RND,SAT>", 1, kSome}, Case{"float16", "fixed<6,10,TRN,WRAP>", 0, kSome},
        Case{"float<11,52>", "fixed<64,20,RND_CONV,SAT>", 2, kSome},
        Case{"float<4,3>", "ufixed<5,2,RND,WRAP>", 2, kSome}, Case{"fixed<1,1>", "float16", 1, kSome},
        Case{"float<2,1>", "fixed<1,0,RND,SAT>", 3, kSome}),
    CaseName);

TEST(NumberConvertUnitTest, RejectsFixedToFixedBadFormatsAndStages) {
  const NumberFormat fx = FixedFormat{16, 6}, f32 = numeric::kFloat32;
  auto fixed_fixed = EmitNumberConvert("u", fx, FixedFormat{8, 3}, 0);
  ASSERT_FALSE(fixed_fixed.ok());
  EXPECT_EQ(fixed_fixed.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(fixed_fixed.status().message().find("fixed<16,6> -> fixed<8,3>"), std::string::npos)
      << fixed_fixed.status().message();

  auto bad_float = EmitNumberConvert("u", FloatFormat{1, 5}, fx, 0);
  ASSERT_FALSE(bad_float.ok());
  EXPECT_EQ(bad_float.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad_float.status().message().find("float<1,5>"), std::string::npos) << bad_float.status().message();

  auto bad_fixed = EmitNumberConvert("u", f32, FixedFormat{70, 3}, 0);
  ASSERT_FALSE(bad_fixed.ok());
  EXPECT_EQ(bad_fixed.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad_fixed.status().message().find("width 70"), std::string::npos) << bad_fixed.status().message();

  for (const auto& [from, to] : {std::pair{f32, NumberFormat(numeric::kFloat16)}, std::pair{fx, f32}, std::pair{f32, fx}}) {
    const int max = NumberConvertMaxStages(from, to);
    EXPECT_GT(max, 0);
    EXPECT_TRUE(EmitNumberConvert("u", from, to, max).ok());
    auto too_many = EmitNumberConvert("u", from, to, max + 1);
    ASSERT_FALSE(too_many.ok());
    EXPECT_NE(too_many.status().message().find("expected 0.."), std::string::npos) << too_many.status().message();
    EXPECT_FALSE(EmitNumberConvert("u", from, to, -1).ok());
  }
}

// Keywords of SystemVerilog that plain Verilog-2005 tools take as identifiers (or reject).
const std::set<std::string> kSystemVerilogOnly = {
    "logic", "bit", "byte", "int", "shortint", "longint", "packed", "always_ff", "always_comb", "always_latch",
    "unique", "priority", "struct", "enum", "typedef", "interface", "final", "type", "string", "void", "break",
    "continue", "return", "do", "foreach", "assert", "property", "sequence", "class", "program", "bind"};

// The identifiers of Verilog text outside comments.
std::vector<std::string> CodeWords(const std::string& text) {
  std::vector<std::string> words;
  std::string word;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text.compare(i, 2, "//") == 0) {
      i = text.find('\n', i);
      if (i == std::string::npos) break;
    } else if (text.compare(i, 2, "/*") == 0) {
      i = text.find("*/", i);
      if (i == std::string::npos) break;
      ++i;
    } else if (std::isalnum(static_cast<unsigned char>(text[i])) || text[i] == '_') {
      word.push_back(text[i]);
      continue;
    }
    if (!word.empty()) words.push_back(word);
    word.clear();
  }
  if (!word.empty()) words.push_back(word);
  return words;
}

TEST(NumberConvertUnitTest, UsesNoSystemVerilogOrZeroWidthReplication) {
  for (const char* spec : {"fixed<1,1>", "ufixed<1,-5>", "fixed<64,64>", "ufixed<63,0,RND_CONV,SAT>", "float<2,1>",
                           "float<11,52>", "float16"}) {
    for (const char* other : {"float<2,1>", "float32", "float<11,52>", "fixed<1,0,RND,SAT>", "ufixed<63,70>"}) {
      const NumberFormat a = Parse(spec), b = Parse(other);
      for (const auto& [from, to] : {std::pair{a, b}, std::pair{b, a}}) {
        if (from.is_fixed() && to.is_fixed()) continue;
        auto u = EmitNumberConvert("u", from, to, NumberConvertMaxStages(from, to));
        ASSERT_TRUE(u.ok()) << from.ToString() << " -> " << to.ToString() << ": " << u.status().ToString();
        EXPECT_EQ(u->text.find("{0{"), std::string::npos) << u->text;
        for (const std::string& word : CodeWords(u->text)) {
          EXPECT_EQ(kSystemVerilogOnly.count(word), 0u) << word << " in " << u->text;
        }
      }
    }
  }
}

}  // namespace
}  // namespace fpgaserve::hw
