// Co-simulation of the generated float exp unit against the soft-float reference
// (numeric::FloatExp), bit for bit: special values (the unit grid, the +/-1100 thresholds, the
// overflow and underflow edges, ln 2 multiples and the half-way points between them, tiny inputs
// whose x*2^G rounds to +/-1/2), every bit pattern of formats up to 16 bits, and random inputs
// (fixed seed) per format and pipeline depth.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <random>
#include <set>

#include "hw/float_units.h"
#include "hw/float_unit_testing.h"
#include "numeric/float_format.h"
#include "numeric/float_functions.h"

namespace fpgaserve::hw {
namespace {

namespace fs = std::filesystem;
using numeric::FloatFormat;

struct ExpCase {
  FloatFormat format;
  int stages;  // -1: the unit's maximum
  int random_inputs;
};

std::string ExpCaseName(const ::testing::TestParamInfo<ExpCase>& info) {
  const auto& c = info.param;
  std::string f = c.format.ToString();
  for (char& ch : f) {
    if (ch == '<' || ch == '>' || ch == ',') ch = '_';
  }
  return "exp_" + f + "_stages" + (c.stages < 0 ? std::string("max") : std::to_string(c.stages));
}

std::uint64_t SignMask(const FloatFormat& f) { return 1ULL << (f.width() - 1); }
std::uint64_t MaxFiniteMagnitude(const FloatFormat& f) { return numeric::LargestFinite(f, false); }

// v and the d encodings either side of it (same sign; magnitudes kept within 0..max finite).
void AddNeighbours(std::uint64_t v, int d, const FloatFormat& f, std::vector<std::uint64_t>* out) {
  const std::uint64_t sign = v & SignMask(f), mag = v & ~SignMask(f);
  if (mag > MaxFiniteMagnitude(f)) return;  // Inf / NaN: in the grid already
  for (int i = -d; i <= d; ++i) {
    const auto m = static_cast<std::int64_t>(mag) + i;
    if (m < 0 || static_cast<std::uint64_t>(m) > MaxFiniteMagnitude(f)) continue;
    out->push_back(sign | static_cast<std::uint64_t>(m));
  }
}

// The inputs where exp's datapath changes regime.
std::vector<std::uint64_t> ExpSpecialInputs(const FloatFormat& f) {
  using numeric::FloatFromDouble;
  std::vector<std::uint64_t> v = testing::SpecialValues(f);
  auto near = [&](double x, int d) { AddNeighbours(FloatFromDouble(x, f), d, f, &v); };
  // The +/-1100 cut-offs (x > 1100 -> Inf, x < -1100 -> 0).
  near(1100.0, 3);
  near(-1100.0, 3);
  // Where the result overflows, leaves the normal range, and rounds to zero.
  const int m = f.mantissa_bits, bias = f.bias();
  const double ln2 = std::log(2.0);
  const double max_log = (std::log2(2.0 - std::ldexp(1.0, -m)) + bias) * ln2;
  for (double x : {max_log, (1.0 - bias) * ln2, (1.0 - bias - m) * ln2, (-bias - m) * ln2,
                   (0.5 - bias - m) * ln2}) {
    near(x, 4);
  }
  // Multiples of ln 2 (r near 0) and the half-way points (k's rounding tie, r = +/-1/2).
  const int kmax = std::min(1100.0 / ln2, (bias + 1.0) * 1.2 + m) + 2;
  for (int k = -kmax - m; k <= kmax; ++k) {
    near(k * ln2, 1);
    near((k + 0.5) * ln2, 1);
  }
  // Tiny inputs: x*2^G near +/-1/2 (xq's half-away-from-zero rounding), and below.
  const int g = numeric::ExpInternalFractionBits(f);
  for (int j = -3; j <= 3; ++j) {
    near(std::ldexp(1.0, -g - 1 + j), 2);
    near(-std::ldexp(1.0, -g - 1 + j), 2);
    near(std::ldexp(1.5, -g - 1 + j), 1);
    near(-std::ldexp(1.5, -g - 1 + j), 1);
  }
  // Every bit pattern of a small format.
  if (f.width() <= 16) {
    for (std::uint64_t b = 0; b < (1ULL << f.width()); ++b) v.push_back(b);
  }
  return v;
}

// Random inputs: mostly values where exp is neither Inf nor zero (and a margin), then values
// across the whole +/-1200 range, tiny magnitudes (log-uniform), and random bit patterns.
std::uint64_t RandomExpInput(const FloatFormat& f, std::mt19937_64& rng) {
  using numeric::FloatFromDouble;
  const double ln2 = std::log(2.0);
  const int g = numeric::ExpInternalFractionBits(f);
  const double hi = std::min(1100.0, std::pow(2.0, f.exponent_bits - 1) * ln2 + 2.0);
  const double lo = std::max(-1100.0, (1.0 - f.bias() - f.mantissa_bits) * ln2 - 2.0);
  const int kind = static_cast<int>(rng() % 20);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  if (kind < 11) return FloatFromDouble(lo + (hi - lo) * unit(rng), f);
  if (kind < 13) return FloatFromDouble(-1200.0 + 2400.0 * unit(rng), f);
  if (kind < 16) {
    const double mag = std::exp2(-(g + 8.0) + (g + 19.0) * unit(rng));
    return FloatFromDouble(rng() % 2 ? -mag : mag, f);
  }
  // (RandomOperand can leave bits above the format's width when the bias is below 4.)
  const std::uint64_t mask = f.width() >= 64 ? ~0ULL : (1ULL << f.width()) - 1;
  return testing::RandomOperand(f, rng) & mask;
}

class FloatExpTest : public testing::FloatUnitTest<ExpCase> {};

TEST_P(FloatExpTest, EqualsTheSoftFloatReferenceBitForBit) {
  const ExpCase& c = GetParam();
  const FloatFormat& f = c.format;
  const int stages = c.stages >= 0 ? c.stages : FloatExpMaxStages(f);
  auto unit = EmitFloatExp("fp_exp", f, stages);
  ASSERT_TRUE(unit.ok()) << unit.status().ToString();
  EXPECT_EQ(unit->latency, stages);
  EXPECT_EQ(unit->operands, 1);
  EXPECT_EQ(unit->max_stages, FloatExpMaxStages(f));
  EXPECT_EQ(unit->in_width, f.width());
  EXPECT_EQ(unit->out_width, f.width());
  testing::FloatUnitSim sim(*unit, dir_.string());
  ASSERT_TRUE(sim.ok()) << sim.error();

  std::vector<std::uint64_t> xs = ExpSpecialInputs(f);
  const std::size_t special = xs.size();
  std::mt19937_64 rng(20261209 + static_cast<unsigned>(f.exponent_bits * 64 + f.mantissa_bits));
  for (int i = 0; i < c.random_inputs; ++i) xs.push_back(RandomExpInput(f, rng));
  const auto got = sim.Run(xs);
  ASSERT_EQ(got.size(), xs.size()) << "the simulation stalled";
  int mismatches = 0, special_mismatches = 0;
  std::set<std::uint64_t> results;  // distinct results: the inputs reach many outputs
  for (std::size_t i = 0; i < got.size(); ++i) {
    const std::uint64_t want = numeric::FloatExp(xs[i], f);
    if (got[i] != want) {
      if (i < special) ++special_mismatches;
      if (++mismatches <= 8) {
        ADD_FAILURE() << "exp(" << testing::Hex(xs[i]) << " = " << numeric::FloatToDouble(xs[i], f) << "): RTL "
                      << testing::Hex(got[i]) << ", reference " << testing::Hex(want);
      }
    }
    if (results.size() < 100000) results.insert(want);
  }
  EXPECT_EQ(mismatches, 0) << "of " << got.size() << " (" << special_mismatches << " of " << special
                           << " special inputs)";
  // Sanity of the inputs: the results include Inf, +0, 1, NaN and subnormals.
  const std::uint64_t one = static_cast<std::uint64_t>(f.bias()) << f.mantissa_bits;
  EXPECT_TRUE(results.count(numeric::Infinity(f, false)));
  EXPECT_TRUE(results.count(0));
  EXPECT_TRUE(results.count(one));
  EXPECT_TRUE(results.count(numeric::CanonicalNaN(f)));
  EXPECT_TRUE(std::any_of(results.begin(), results.end(),
                          [&](std::uint64_t r) { return r != 0 && r < (1ULL << f.mantissa_bits); }));
}

constexpr int kMillion = 1'000'000;

INSTANTIATE_TEST_SUITE_P(
    Formats, FloatExpTest,
    ::testing::Values(
        // The formats and the extremes of the supported range, fully pipelined.
        ExpCase{numeric::kFloat32, -1, kMillion}, ExpCase{numeric::kFloat16, -1, kMillion},
        ExpCase{numeric::kBFloat16, -1, kMillion}, ExpCase{FloatFormat{6, 9}, -1, kMillion},
        ExpCase{FloatFormat{4, 3}, -1, kMillion}, ExpCase{FloatFormat{11, 52}, -1, kMillion},
        // E = 11 below float64's width: the reference rounds subnormal results twice.
        ExpCase{FloatFormat{11, 20}, -1, 100'000}, ExpCase{FloatFormat{11, 51}, -1, 100'000},
        // The smallest format.
        ExpCase{FloatFormat{2, 1}, -1, 10'000},
        // Other pipeline depths give the same bits.
        ExpCase{numeric::kFloat16, 0, 100'000}, ExpCase{numeric::kFloat16, 5, 100'000}),
    ExpCaseName);

TEST(FloatExpUnitTest, RejectsUnsupportedFormatsAndStages) {
  auto bad_format = EmitFloatExp("u", FloatFormat{12, 5}, 1);
  ASSERT_FALSE(bad_format.ok());
  EXPECT_NE(bad_format.status().message().find("float<12,5>"), std::string::npos) << bad_format.status().message();
  auto bad_stages = EmitFloatExp("u", numeric::kFloat32, FloatExpMaxStages(numeric::kFloat32) + 1);
  ASSERT_FALSE(bad_stages.ok());
  EXPECT_NE(bad_stages.status().message().find("expected 0.."), std::string::npos) << bad_stages.status().message();
  EXPECT_FALSE(EmitFloatExp("u", numeric::kFloat32, -1).ok());
}

TEST(FloatExpUnitTest, StagesGrowWithTheInternalPrecision) {
  // One cut point after each of the 3 reduction steps, each Horner step and the normalize step.
  EXPECT_EQ(FloatExpMaxStages(numeric::kFloat16), 13);  // G = 22: 9 Horner steps
  EXPECT_EQ(FloatExpMaxStages(numeric::kFloat32), 16);  // G = 35: 12
  EXPECT_EQ(FloatExpMaxStages(numeric::kFloat64), 19);  // G = 50: 15
  for (int s = 0; s <= FloatExpMaxStages(numeric::kBFloat16); ++s) {
    auto u = EmitFloatExp("u", numeric::kBFloat16, s);
    ASSERT_TRUE(u.ok()) << u.status().ToString();
    EXPECT_EQ(u->latency, s);
    EXPECT_EQ(u->operands, 1);
    EXPECT_EQ(u->text.find(" b,"), std::string::npos);  // no b port
  }
}

}  // namespace
}  // namespace fpgaserve::hw
