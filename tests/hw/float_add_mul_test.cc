// Co-simulation of the generated float adder, subtractor and multiplier against the soft-float
// reference (numeric::FloatAdd/FloatSub/FloatMul), bit for bit: the special-value grid (every
// pair) and 1,000,000 random operand pairs (fixed seed) per format and operator; float32 results
// are also compared with the host's IEEE float arithmetic.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <random>

#include "hw/float_units.h"
#include "hw/float_unit_testing.h"
#include "numeric/float_format.h"

namespace fpgaserve::hw {
namespace {

namespace fs = std::filesystem;
using numeric::FloatFormat;

enum class Op { kAdd, kSub, kMul };

struct Case {
  FloatFormat format;
  Op op;
  int stages;  // -1: the unit's maximum
  int random_pairs;
};

std::string OpName(Op op) { return op == Op::kAdd ? "add" : op == Op::kSub ? "sub" : "mul"; }

std::string CaseName(const ::testing::TestParamInfo<Case>& info) {
  const auto& c = info.param;
  std::string f = c.format.ToString();
  for (char& ch : f) {
    if (ch == '<' || ch == '>' || ch == ',') ch = '_';
  }
  return OpName(c.op) + "_" + f + "_stages" + (c.stages < 0 ? std::string("max") : std::to_string(c.stages));
}

std::uint64_t Reference(Op op, std::uint64_t a, std::uint64_t b, const FloatFormat& f) {
  switch (op) {
    case Op::kAdd: return numeric::FloatAdd(a, b, f);
    case Op::kSub: return numeric::FloatSub(a, b, f);
    case Op::kMul: return numeric::FloatMul(a, b, f);
  }
  return 0;
}

float HostOp(Op op, float a, float b) {
  volatile float x = a, y = b;  // no contraction, no constant folding
  switch (op) {
    case Op::kAdd: return x + y;
    case Op::kSub: return x - y;
    case Op::kMul: return x * y;
  }
  return 0;
}

class FloatAddMulTest : public testing::FloatUnitTest<Case> {};

TEST_P(FloatAddMulTest, EqualsTheSoftFloatReferenceBitForBit) {
  const Case& c = GetParam();
  const FloatFormat& f = c.format;
  const int stages = c.stages >= 0 ? c.stages : (c.op == Op::kMul ? FloatMulMaxStages() : FloatAddMaxStages());
  auto unit = c.op == Op::kMul ? EmitFloatMul("fp_unit", f, stages) : EmitFloatAdd("fp_unit", f, stages, c.op == Op::kSub);
  ASSERT_TRUE(unit.ok()) << unit.status().ToString();
  EXPECT_EQ(unit->latency, stages);
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
  std::mt19937_64 rng(20261201 + static_cast<unsigned>(f.exponent_bits * 64 + f.mantissa_bits));
  for (int i = 0; i < c.random_pairs; ++i) {
    const std::uint64_t a = testing::RandomOperand(f, rng);
    // Half of the pairs share the first operand's exponent region: cancellation and ties.
    std::uint64_t b = testing::RandomOperand(f, rng);
    if (i % 2 == 1) {
      const std::uint64_t exp_mask = ((1ULL << f.exponent_bits) - 1) << f.mantissa_bits;
      const std::int64_t delta = static_cast<std::int64_t>(rng() % 5) - 2;
      const std::int64_t ea = static_cast<std::int64_t>((a & exp_mask) >> f.mantissa_bits);
      const std::int64_t eb = std::clamp<std::int64_t>(ea + delta, 0, (1LL << f.exponent_bits) - 2);
      b = (b & ~exp_mask) | (static_cast<std::uint64_t>(eb) << f.mantissa_bits);
    }
    ops.push_back(a);
    ops.push_back(b);
  }
  const auto got = sim.Run(ops);
  ASSERT_EQ(got.size(), ops.size() / 2) << "the simulation stalled";
  int mismatches = 0, host_mismatches = 0;
  const bool host = f == numeric::kFloat32;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const std::uint64_t a = ops[2 * i], b = ops[2 * i + 1];
    const std::uint64_t want = Reference(c.op, a, b, f);
    if (got[i] != want && ++mismatches <= 8) {
      ADD_FAILURE() << OpName(c.op) << "(" << testing::Hex(a) << ", " << testing::Hex(b) << "): RTL "
                    << testing::Hex(got[i]) << ", reference " << testing::Hex(want);
    }
    if (host) {
      float fa, fb;
      const auto a32 = static_cast<std::uint32_t>(a), b32 = static_cast<std::uint32_t>(b);
      std::memcpy(&fa, &a32, 4);
      std::memcpy(&fb, &b32, 4);
      const float r = HostOp(c.op, fa, fb);
      std::uint32_t rb;
      std::memcpy(&rb, &r, 4);
      const bool same = std::isnan(r) ? numeric::IsNaN(got[i], f) : rb == got[i];
      if (!same && ++host_mismatches <= 8) {
        ADD_FAILURE() << OpName(c.op) << "(" << testing::Hex(a) << ", " << testing::Hex(b) << "): RTL "
                      << testing::Hex(got[i]) << ", host float " << testing::Hex(rb);
      }
    }
  }
  EXPECT_EQ(mismatches, 0) << "of " << got.size();
  EXPECT_EQ(host_mismatches, 0) << "of " << got.size();
}

constexpr int kMillion = 1'000'000;

INSTANTIATE_TEST_SUITE_P(
    Formats, FloatAddMulTest,
    ::testing::Values(
        // The formats, every operator at full pipelining, 1M random pairs each.
        Case{numeric::kFloat32, Op::kAdd, -1, kMillion}, Case{numeric::kFloat32, Op::kSub, -1, kMillion},
        Case{numeric::kFloat32, Op::kMul, -1, kMillion}, Case{numeric::kFloat16, Op::kAdd, -1, kMillion},
        Case{numeric::kFloat16, Op::kSub, -1, kMillion}, Case{numeric::kFloat16, Op::kMul, -1, kMillion},
        Case{numeric::kBFloat16, Op::kAdd, -1, kMillion}, Case{numeric::kBFloat16, Op::kMul, -1, kMillion},
        Case{FloatFormat{6, 9}, Op::kAdd, -1, kMillion}, Case{FloatFormat{6, 9}, Op::kMul, -1, kMillion},
        // The extremes of the supported range.
        Case{FloatFormat{4, 3}, Op::kAdd, -1, kMillion}, Case{FloatFormat{4, 3}, Op::kMul, -1, kMillion},
        Case{FloatFormat{11, 52}, Op::kAdd, -1, kMillion}, Case{FloatFormat{11, 52}, Op::kMul, -1, kMillion},
        // Every pipeline depth gives the same bits.
        Case{numeric::kFloat16, Op::kAdd, 0, 100'000}, Case{numeric::kFloat16, Op::kAdd, 1, 100'000},
        Case{numeric::kFloat16, Op::kAdd, 2, 100'000}, Case{numeric::kFloat16, Op::kMul, 0, 100'000},
        Case{numeric::kFloat16, Op::kMul, 1, 100'000}),
    CaseName);

TEST(FloatUnitsTest, RejectsUnsupportedFormatsAndStages) {
  auto bad_format = EmitFloatAdd("u", FloatFormat{1, 5}, 1);
  ASSERT_FALSE(bad_format.ok());
  EXPECT_NE(bad_format.status().message().find("float<1,5>"), std::string::npos) << bad_format.status().message();
  auto bad_stages = EmitFloatMul("u", numeric::kFloat32, FloatMulMaxStages() + 1);
  ASSERT_FALSE(bad_stages.ok());
  EXPECT_NE(bad_stages.status().message().find("expected 0.."), std::string::npos) << bad_stages.status().message();
}

}  // namespace
}  // namespace fpgaserve::hw
