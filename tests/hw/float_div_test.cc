// Co-simulation of the generated float divider against the soft-float reference
// (numeric::FloatDiv), bit for bit: the special-value grid (every pair), every operand pair of the
// formats up to 8 bits wide, and random operand pairs (fixed seed) per format and pipeline depth;
// float32 results are also compared with the host's IEEE float division.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cctype>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <random>

#include "hw/float_unit_testing.h"
#include "hw/float_units.h"
#include "numeric/float_format.h"

namespace fpgaserve::hw {
namespace {

namespace fs = std::filesystem;
using numeric::FloatFormat;

struct DivCase {
  FloatFormat format;
  int stages;  // -1: the unit's maximum
  int random_pairs;
};

std::string DivCaseName(const ::testing::TestParamInfo<DivCase>& info) {
  const auto& c = info.param;
  std::string f = c.format.ToString();
  for (char& ch : f) {
    if (ch == '<' || ch == '>' || ch == ',') ch = '_';
  }
  return "div_" + f + "_stages" + (c.stages < 0 ? std::string("max") : std::to_string(c.stages));
}

float HostDiv(float a, float b) {
  volatile float x = a, y = b;  // no constant folding
  return x / y;
}

// Random operand pairs that reach every part of the divider: uniformly random patterns, nearby
// exponents (quotients near 1, where the quotient's leading bit moves), powers of two as divisors
// (exact quotients, and rounding ties when the quotient is subnormal), and dividends that are
// rounded products of the divisor (quotients that are exact or just off exact).
std::pair<std::uint64_t, std::uint64_t> RandomDivPair(const FloatFormat& f, int i, std::mt19937_64& rng) {
  const int m = f.mantissa_bits;
  const std::uint64_t exp_mask = ((1ULL << f.exponent_bits) - 1) << m;
  std::uint64_t a = testing::RandomOperand(f, rng);
  std::uint64_t b = testing::RandomOperand(f, rng);
  switch (i % 4) {
    case 0:
      break;
    case 1: {
      const std::int64_t delta = static_cast<std::int64_t>(rng() % 5) - 2;
      const std::int64_t ea = static_cast<std::int64_t>((a & exp_mask) >> m);
      const std::int64_t eb = std::clamp<std::int64_t>(ea + delta, 0, (1LL << f.exponent_bits) - 2);
      b = (b & ~exp_mask) | (static_cast<std::uint64_t>(eb) << m);
      break;
    }
    case 2:
      b &= ~((1ULL << m) - 1);  // mantissa 0: a power of two (or zero, or Inf)
      break;
    default:
      a = numeric::FloatMul(b, a, f);
      if (rng() % 2 == 0) a ^= 1;  // one ulp off: a remainder that is almost the divisor
      break;
  }
  return {a, b};
}

// What in generated text is not plain Verilog-2005 this generator could produce by mistake: a
// zero-width replication or literal, or a template key left unfilled ($ and a capital letter).
std::string PlainVerilogProblem(const std::string& text) {
  for (std::size_t i = 0; i < text.size(); ++i) {
    const bool starts_number = i == 0 || !std::isalnum(static_cast<unsigned char>(text[i - 1]));
    if (text.compare(i, 3, "{0{") == 0) return "zero-width replication at " + std::to_string(i);
    if (starts_number && text.compare(i, 3, "0'd") == 0) return "zero-width literal at " + std::to_string(i);
    if (text[i] == '$' && i + 1 < text.size() && std::isupper(static_cast<unsigned char>(text[i + 1]))) {
      return "unfilled key at " + std::to_string(i) + ": " + text.substr(i, 12);
    }
  }
  return "";
}

class FloatDivTest : public testing::FloatUnitTest<DivCase> {};

TEST_P(FloatDivTest, EqualsTheSoftFloatReferenceBitForBit) {
  const DivCase& c = GetParam();
  const FloatFormat& f = c.format;
  const int stages = c.stages >= 0 ? c.stages : FloatDivMaxStages(f);
  auto unit = EmitFloatDiv("fp_div", f, stages);
  ASSERT_TRUE(unit.ok()) << unit.status().ToString();
  EXPECT_EQ(unit->latency, stages);
  EXPECT_EQ(unit->max_stages, FloatDivMaxStages(f));
  testing::FloatUnitSim sim(*unit, dir_.string());
  ASSERT_TRUE(sim.ok()) << sim.error();

  std::vector<std::uint64_t> ops;
  const auto grid = testing::SpecialValues(f);
  for (auto a : grid) {
    for (auto b : grid) {
      ops.push_back(a);
      ops.push_back(b);
    }
  }
  if (f.width() <= 8) {  // small formats: every pair
    for (std::uint64_t a = 0; a < (1ULL << f.width()); ++a) {
      for (std::uint64_t b = 0; b < (1ULL << f.width()); ++b) {
        ops.push_back(a);
        ops.push_back(b);
      }
    }
  }
  std::mt19937_64 rng(20261202 + static_cast<unsigned>(f.exponent_bits * 64 + f.mantissa_bits));
  for (int i = 0; i < c.random_pairs; ++i) {
    const auto [a, b] = RandomDivPair(f, i, rng);
    ops.push_back(a);
    ops.push_back(b);
  }
  const auto got = sim.Run(ops);
  ASSERT_EQ(got.size(), ops.size() / 2) << "the simulation stalled";
  int mismatches = 0, host_mismatches = 0;
  const bool host = f == numeric::kFloat32;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const std::uint64_t a = ops[2 * i], b = ops[2 * i + 1];
    const std::uint64_t want = numeric::FloatDiv(a, b, f);
    if (got[i] != want && ++mismatches <= 8) {
      ADD_FAILURE() << "div(" << testing::Hex(a) << ", " << testing::Hex(b) << "): RTL " << testing::Hex(got[i])
                    << ", reference " << testing::Hex(want);
    }
    if (host) {
      float fa, fb;
      const auto a32 = static_cast<std::uint32_t>(a), b32 = static_cast<std::uint32_t>(b);
      std::memcpy(&fa, &a32, 4);
      std::memcpy(&fb, &b32, 4);
      const float r = HostDiv(fa, fb);
      std::uint32_t rb;
      std::memcpy(&rb, &r, 4);
      const bool same = std::isnan(r) ? numeric::IsNaN(got[i], f) : rb == got[i];
      if (!same && ++host_mismatches <= 8) {
        ADD_FAILURE() << "div(" << testing::Hex(a) << ", " << testing::Hex(b) << "): RTL " << testing::Hex(got[i])
                      << ", host float " << testing::Hex(rb);
      }
    }
  }
  EXPECT_EQ(mismatches, 0) << "of " << got.size();
  EXPECT_EQ(host_mismatches, 0) << "of " << got.size();
}

constexpr int kMillion = 1'000'000;

INSTANTIATE_TEST_SUITE_P(
    Formats, FloatDivTest,
    ::testing::Values(
        // The formats at full pipelining, 1M random pairs each.
        DivCase{numeric::kFloat32, -1, kMillion}, DivCase{numeric::kFloat16, -1, kMillion},
        DivCase{numeric::kBFloat16, -1, kMillion}, DivCase{FloatFormat{6, 9}, -1, kMillion},
        // The extremes of the range (float<4,3> also every pair), and of the supported one.
        DivCase{FloatFormat{4, 3}, -1, kMillion}, DivCase{FloatFormat{11, 52}, -1, kMillion},
        DivCase{FloatFormat{2, 1}, -1, 100'000}, DivCase{FloatFormat{2, 52}, -1, 100'000},
        DivCase{FloatFormat{11, 1}, -1, 100'000},
        // Every pipeline depth gives the same bits.
        DivCase{numeric::kFloat16, 0, 100'000}, DivCase{numeric::kFloat16, 1, 100'000},
        DivCase{numeric::kFloat16, 4, 100'000}),
    DivCaseName);

TEST(FloatDivUnitTest, RejectsUnsupportedFormatsAndStages) {
  auto bad_format = EmitFloatDiv("u", FloatFormat{12, 5}, 1);
  ASSERT_FALSE(bad_format.ok());
  EXPECT_NE(bad_format.status().message().find("float<12,5>"), std::string::npos) << bad_format.status().message();
  auto bad_stages = EmitFloatDiv("u", numeric::kFloat32, FloatDivMaxStages(numeric::kFloat32) + 1);
  ASSERT_FALSE(bad_stages.ok());
  EXPECT_NE(bad_stages.status().message().find("expected 0.."), std::string::npos) << bad_stages.status().message();
  EXPECT_FALSE(EmitFloatDiv("u", numeric::kFloat16, -1).ok());
}

TEST(FloatDivUnitTest, EveryFormatAndDepthGeneratesPlainVerilog) {
  // The cut points: after unpacking, after every two quotient bits (M+3 of them), after
  // normalizing; more mantissa bits, more stages.
  EXPECT_EQ(FloatDivMaxStages(FloatFormat{4, 3}), 5);
  EXPECT_EQ(FloatDivMaxStages(numeric::kFloat16), 9);
  EXPECT_EQ(FloatDivMaxStages(numeric::kFloat32), 15);
  EXPECT_EQ(FloatDivMaxStages(FloatFormat{11, 52}), 30);
  for (int e = 2; e <= 11; ++e) {
    for (int m = 1; m <= 52; ++m) {
      const FloatFormat f{e, m};
      const int max = FloatDivMaxStages(f);
      for (int stages : {0, max / 2, max}) {
        auto unit = EmitFloatDiv("u", f, stages);
        ASSERT_TRUE(unit.ok()) << f.ToString() << " stages " << stages << ": " << unit.status().ToString();
        EXPECT_EQ(unit->latency, stages) << f.ToString();
        EXPECT_EQ(PlainVerilogProblem(unit->text), "") << f.ToString() << " stages " << stages;
      }
    }
  }
}

}  // namespace
}  // namespace fpgaserve::hw
