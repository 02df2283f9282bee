#include "hw/testbench.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "core/subprocess.h"
#include "importers/test_files.h"
#include "model/passes.h"
#include "numeric/precision.h"

namespace fpgaserve::hw {
namespace {

using numeric::FixedFormat;
using numeric::RawValue;

// A hand-written core obeying the port contract (the generator is tested elsewhere): a 2-stage
// elastic pipeline computing out[j] = low out-width bits of (in[j % n_in] extended + (j+1 if
// add_index)). `stuck` keeps out_valid low, for the timeout test.
std::string HandCore(int n_in, const FixedFormat& fi, int n_out, const FixedFormat& fo,
                     bool add_index, bool stuck = false) {
  const int wi = fi.width, wo = fo.width, ib = n_in * wi, ob = n_out * wo;
  auto s = [](std::int64_t v) { return std::to_string(v); };
  std::string v =
      "module fpgaserve_core (\n  input clk, input rst,\n  input in_valid, output in_ready, input "
      "[" +
      s(ib - 1) + ":0] in_data,\n  output out_valid, input out_ready, output [" + s(ob - 1) +
      ":0] out_data,\n  output [63:0] out_cycles, output [63:0] cycle_count\n);\n";
  v += "  reg [63:0] counter;\n  always @(posedge clk) begin\n    if (rst) counter <= 64'd0;\n"
       "    else counter <= counter + 64'd1;\n  end\n  assign cycle_count = counter;\n";
  v += "  reg v1, v2;\n  reg [" + s(ib - 1) + ":0] d1;\n  reg [" + s(ob - 1) +
       ":0] d2;\n  reg [63:0] t1, t2;\n";
  v += "  wire [" + s(ob - 1) + ":0] f;\n  wire unused_d1 = &{1'b0, d1, 1'b0};\n";
  for (int j = 0; j < n_out; ++j) {
    const int lo = (j % n_in) * wi;
    std::string x;
    if (wo <= wi) {
      x = "d1[" + s(lo + wo - 1) + ":" + s(lo) + "]";
    } else {
      const std::string fill = fi.is_signed ? "d1[" + s(lo + wi - 1) + "]" : "1'b0";
      x = "{{" + s(wo - wi) + "{" + fill + "}}, d1[" + s(lo + wi - 1) + ":" + s(lo) + "]}";
    }
    const std::uint64_t add =
        add_index ? static_cast<std::uint64_t>(j + 1) & ((std::uint64_t{1} << wo) - 1) : 0;
    v += "  assign f[" + s(std::int64_t{j} * wo + wo - 1) + ":" + s(std::int64_t{j} * wo) +
         "] = " + x + " + " + s(wo) + "'d" + s(static_cast<std::int64_t>(add)) + ";\n";
  }
  v += "  wire en2 = !v2 || out_ready;\n  wire en1 = !v1 || en2;\n  assign in_ready = en1;\n";
  v += "  always @(posedge clk) begin\n    if (rst) begin\n      v1 <= 1'b0;\n      v2 <= 1'b0;\n"
       "    end else begin\n      if (en1) v1 <= in_valid;\n      if (en2) v2 <= v1;\n    end\n  "
       "end\n";
  v += "  always @(posedge clk) begin\n    if (en1) begin\n      d1 <= in_data;\n      t1 <= "
       "counter;\n    end\n"
       "    if (en2) begin\n      d2 <= f;\n      t2 <= t1;\n    end\n  end\n";
  v += std::string("  assign out_valid = ") + (stuck ? "v2 & 1'b0" : "v2") + ";\n";
  v += "  assign out_data = d2;\n  assign out_cycles = counter - t2;\nendmodule\n";
  return v;
}

// What HandCore computes, as raw values of `fo`.
std::vector<RawValue> HandOutputs(const std::vector<RawValue>& in, const FixedFormat& fo, int n_out,
                                  bool add_index) {
  std::vector<RawValue> out;
  const std::uint64_t mask =
      fo.width == 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << fo.width) - 1;
  for (int j = 0; j < n_out; ++j) {
    std::uint64_t u =
        (static_cast<std::uint64_t>(in[j % in.size()]) + (add_index ? j + 1 : 0)) & mask;
    if (fo.is_signed && fo.width < 64 && ((u >> (fo.width - 1)) & 1)) u |= ~mask;
    out.push_back(static_cast<RawValue>(u));
  }
  return out;
}

HwDesign HandDesign(int n_in, const FixedFormat& fi, int n_out, const FixedFormat& fo,
                    bool add_index, bool stuck = false) {
  HwDesign d;
  d.files.push_back({"fpgaserve_core.v", HandCore(n_in, fi, n_out, fo, add_index, stuck)});
  d.n_in = n_in;
  d.n_out = n_out;
  d.in_format = fi;
  d.out_format = fo;
  d.latency_cycles = 2;
  d.initiation_interval = 1;
  return d;
}

TestVectors HandVectors(const HwDesign& d, int random, unsigned seed, bool add_index) {
  TestVectors tv;
  tv.inputs = MakeInputVectors(d, random, seed);
  for (const auto& r : tv.inputs)
    tv.outputs.push_back(HandOutputs(r, d.out_format.fixed(), d.n_out, add_index));
  return tv;
}

Result<SubprocessResult> RunTool(const std::vector<std::string>& argv, const std::string& dir) {
  SubprocessOptions o;
  o.working_dir = dir;
  o.timeout = std::chrono::seconds(120);
  return RunSubprocess(argv, o);
}

// Runs a tool in `dir`; skips the test when the tool is not installed.
#define RUN_TOOL(result, dir, ...)                                       \
  auto result = RunTool(std::vector<std::string>{__VA_ARGS__}, (dir));   \
  if (!result.ok() && result.status().code() == StatusCode::kNotFound) { \
    GTEST_SKIP() << "tool not installed: " << result.status().message(); \
  }                                                                      \
  ASSERT_TRUE(result.ok()) << result.status().ToString()

void WriteAll(const testing::TempDir& dir, const HwDesign& d,
              const std::vector<VerilogFile>& bench) {
  for (const auto& f : d.files) dir.Write(f.name, f.text);
  for (const auto& f : bench) dir.Write(f.name, f.text);
}

TEST(TestbenchTest, HandCorePassesUnderIcarusAndLintsClean) {
  const unsigned seed = 11;
  SCOPED_TRACE("seed " + std::to_string(seed));
  const HwDesign d = HandDesign(3, {8, 3}, 3, {8, 3}, true);
  auto bench = GenerateTestbench(d, HandVectors(d, 200, seed, true), seed);
  ASSERT_TRUE(bench.ok()) << bench.status().ToString();
  ASSERT_EQ(bench->size(), 3u);
  EXPECT_EQ((*bench)[0].name, "tb_fpgaserve_core.v");
  testing::TempDir dir;
  WriteAll(dir, d, *bench);
  RUN_TOOL(compile, dir.path(), "iverilog", "-g2005", "-o", "tb.vvp", "tb_fpgaserve_core.v",
           "fpgaserve_core.v");
  ASSERT_TRUE(compile->success()) << compile->stderr_text;
  RUN_TOOL(sim, dir.path(), "vvp", "-n", "tb.vvp");
  ASSERT_TRUE(sim->success()) << sim->stderr_text;
  EXPECT_NE(sim->stdout_text.find("PASS 203 vectors"), std::string::npos) << sim->stdout_text;
  EXPECT_EQ(sim->stdout_text.find("FAIL"), std::string::npos) << sim->stdout_text;
  EXPECT_NE(sim->stdout_text.find("out_cycles min 2 "), std::string::npos) << sim->stdout_text;
  RUN_TOOL(lint, dir.path(), "verilator", "--lint-only", "-Wall", "--timing", "tb_fpgaserve_core.v",
           "fpgaserve_core.v");
  EXPECT_TRUE(lint->success()) << lint->stderr_text;
}

TEST(TestbenchTest, WrongExpectedOutputPrintsFail) {
  const unsigned seed = 12;
  const HwDesign d = HandDesign(3, {8, 3}, 3, {8, 3}, true);
  TestVectors tv = HandVectors(d, 60, seed, true);
  tv.outputs[40][1] ^= 1;  // vector 40, element 1 (bits 15:8)
  auto bench = GenerateTestbench(d, tv, seed);
  ASSERT_TRUE(bench.ok()) << bench.status().ToString();
  testing::TempDir dir;
  WriteAll(dir, d, *bench);
  RUN_TOOL(compile, dir.path(), "iverilog", "-g2005", "-o", "tb.vvp", "tb_fpgaserve_core.v",
           "fpgaserve_core.v");
  ASSERT_TRUE(compile->success()) << compile->stderr_text;
  RUN_TOOL(sim, dir.path(), "vvp", "-n", "tb.vvp");
  const auto good = HandOutputs(tv.inputs[40], d.out_format.fixed(), 3, true);
  auto hex = [](const std::vector<RawValue>& v) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%02x%02x%02x", static_cast<unsigned>(v[2] & 0xff),
                  static_cast<unsigned>(v[1] & 0xff), static_cast<unsigned>(v[0] & 0xff));
    return std::string(buf);
  };
  const std::string want = "FAIL vector 40: expected " + hex(tv.outputs[40]) + " got " + hex(good);
  EXPECT_NE(sim->stdout_text.find(want), std::string::npos) << "want: " << want << "\n"
                                                            << sim->stdout_text;
  EXPECT_EQ(sim->stdout_text.find("PASS"), std::string::npos) << sim->stdout_text;
}

TEST(TestbenchTest, WideUnsignedPortsAndShapeChange) {
  const unsigned seed = 13;
  SCOPED_TRACE("seed " + std::to_string(seed));
  // 5 x ufixed<13,4> in (65 bits), 7 x fixed<20,6> out (140 bits): wide $readmemh lines.
  const FixedFormat fi{13, 4, false}, fo{20, 6, true};
  const HwDesign d = HandDesign(5, fi, 7, fo, true);
  auto bench = GenerateTestbench(d, HandVectors(d, 50, seed, true), seed);
  ASSERT_TRUE(bench.ok()) << bench.status().ToString();
  EXPECT_EQ((*bench)[1].text.substr(0, 18),
            "00000000000000000\n");  // all-min first: 65 bits, 17 digits
  testing::TempDir dir;
  WriteAll(dir, d, *bench);
  RUN_TOOL(compile, dir.path(), "iverilog", "-g2005", "-o", "tb.vvp", "tb_fpgaserve_core.v",
           "fpgaserve_core.v");
  ASSERT_TRUE(compile->success()) << compile->stderr_text;
  RUN_TOOL(sim, dir.path(), "vvp", "-n", "tb.vvp");
  // ufixed: all-min is zero, so the edge vectors are min and max only.
  EXPECT_NE(sim->stdout_text.find("PASS 52 vectors"), std::string::npos) << sim->stdout_text;
  RUN_TOOL(lint, dir.path(), "verilator", "--lint-only", "-Wall", "--timing", "tb_fpgaserve_core.v",
           "fpgaserve_core.v");
  EXPECT_TRUE(lint->success()) << lint->stderr_text;
}

TEST(TestbenchTest, StuckCoreTimesOut) {
  const HwDesign d = HandDesign(2, {6, 2}, 2, {6, 2}, true, /*stuck=*/true);
  auto bench = GenerateTestbench(d, HandVectors(d, 5, 1, true), 1);
  ASSERT_TRUE(bench.ok()) << bench.status().ToString();
  testing::TempDir dir;
  WriteAll(dir, d, *bench);
  RUN_TOOL(compile, dir.path(), "iverilog", "-g2005", "-o", "tb.vvp", "tb_fpgaserve_core.v",
           "fpgaserve_core.v");
  ASSERT_TRUE(compile->success()) << compile->stderr_text;
  RUN_TOOL(sim, dir.path(), "vvp", "-n", "tb.vvp");
  EXPECT_NE(sim->stdout_text.find("FAIL timeout after"), std::string::npos) << sim->stdout_text;
}

TEST(TestbenchTest, CoreFasterThanItsDeclaredLatencyFails) {
  HwDesign d = HandDesign(2, {6, 2}, 2, {6, 2}, true);
  d.latency_cycles = 3;  // the hand core answers in 2 cycles
  auto bench = GenerateTestbench(d, HandVectors(d, 5, 1, true), 1);
  ASSERT_TRUE(bench.ok()) << bench.status().ToString();
  testing::TempDir dir;
  WriteAll(dir, d, *bench);
  RUN_TOOL(compile, dir.path(), "iverilog", "-g2005", "-o", "tb.vvp", "tb_fpgaserve_core.v",
           "fpgaserve_core.v");
  ASSERT_TRUE(compile->success()) << compile->stderr_text;
  RUN_TOOL(sim, dir.path(), "vvp", "-n", "tb.vvp");
  EXPECT_NE(sim->stdout_text.find("FAIL vector 0: out_cycles 2 < latency 3"), std::string::npos)
      << sim->stdout_text;
}

// The model overload: expected outputs come from QuantizedModel::RunRaw. A Linear activation in
// the input format is the identity, which a hand core without the index increment computes.
TEST(TestbenchTest, ExpectedOutputsFromTheEmulator) {
  model::Graph g;
  g.inputs.push_back({"x", {4}});
  g.layers.push_back(model::MakeActivation("id", "x", "y", model::ActivationKind::kLinear));
  g.outputs.push_back({"y", {}});
  ASSERT_TRUE(model::Finalize(g).ok());
  auto cfg = numeric::ResolvePrecision(g, {"fixed<10,4>", ""}, nullptr);
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  auto qm = numeric::QuantizedModel::Build(g, *cfg);
  ASSERT_TRUE(qm.ok()) << qm.status().ToString();
  const FixedFormat f{10, 4};
  const HwDesign d = HandDesign(4, f, 4, f, /*add_index=*/false);

  auto tv = MakeTestVectors(d, *qm, 30, 5);
  ASSERT_TRUE(tv.ok()) << tv.status().ToString();
  ASSERT_EQ(tv->inputs.size(), 33u);
  EXPECT_EQ(tv->outputs, tv->inputs);  // the identity, bit for bit

  auto bench = GenerateTestbench(d, *qm, 30, 5);
  ASSERT_TRUE(bench.ok()) << bench.status().ToString();
  testing::TempDir dir;
  WriteAll(dir, d, *bench);
  RUN_TOOL(compile, dir.path(), "iverilog", "-g2005", "-o", "tb.vvp", "tb_fpgaserve_core.v",
           "fpgaserve_core.v");
  ASSERT_TRUE(compile->success()) << compile->stderr_text;
  RUN_TOOL(sim, dir.path(), "vvp", "-n", "tb.vvp");
  EXPECT_NE(sim->stdout_text.find("PASS 33 vectors"), std::string::npos) << sim->stdout_text;

  // A design whose formats differ from the model's is refused.
  HwDesign other = d;
  other.in_format = FixedFormat{12, 4};
  auto bad = MakeTestVectors(other, *qm, 3, 5);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("fixed<12,4>"), std::string::npos)
      << bad.status().message();
}

TEST(TestbenchTest, InputVectorsAreEdgesThenSeededUniform) {
  const HwDesign d = HandDesign(6, {5, 1}, 1, {5, 1}, true);
  const auto a = MakeInputVectors(d, 400, 99);
  const auto b = MakeInputVectors(d, 400, 99);
  const auto c = MakeInputVectors(d, 400, 100);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  ASSERT_EQ(a.size(), 403u);
  EXPECT_EQ(a[0], std::vector<RawValue>(6, -16));
  EXPECT_EQ(a[1], std::vector<RawValue>(6, 15));
  EXPECT_EQ(a[2], std::vector<RawValue>(6, 0));
  bool saw_min = false, saw_max = false;
  for (std::size_t r = 3; r < a.size(); ++r) {
    for (RawValue v : a[r]) {
      ASSERT_GE(v, -16);
      ASSERT_LE(v, 15);
      saw_min |= v == -16;
      saw_max |= v == 15;
    }
  }
  EXPECT_TRUE(saw_min && saw_max);  // 2400 draws over 32 values reach both ends
}

TEST(TestbenchTest, HexFilesPackElementZeroLowest) {
  const HwDesign d = HandDesign(2, {6, 2}, 1, {4, 2, false}, true);
  TestVectors tv;
  tv.inputs = {{-1, 1},
               {5, -32}};  // 6-bit fields: 0x3f | 0x01 << 6 = 0x07f; 0x05 | 0x20 << 6 = 0x805
  tv.outputs = {{15}, {0}};
  auto bench = GenerateTestbench(d, tv, 3);
  ASSERT_TRUE(bench.ok()) << bench.status().ToString();
  EXPECT_EQ((*bench)[1].name, "vectors_in.hex");
  EXPECT_EQ((*bench)[1].text, "07f\n805\n");
  EXPECT_EQ((*bench)[2].name, "vectors_out.hex");
  EXPECT_EQ((*bench)[2].text, "f\n0\n");
}

TEST(TestbenchTest, BadVectorsAreRefused) {
  const HwDesign d = HandDesign(2, {6, 2}, 1, {4, 2, false}, true);
  TestVectors empty;
  EXPECT_EQ(GenerateTestbench(d, empty, 1).status().code(), StatusCode::kInvalidArgument);
  TestVectors out_of_range{{{0, 0}}, {{16}}};
  auto r = GenerateTestbench(d, out_of_range, 1);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("raw value 16 is outside ufixed<4,2>"), std::string::npos)
      << r.status().message();
  TestVectors short_row{{{0}}, {{1}}};
  r = GenerateTestbench(d, short_row, 1);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("input vector 0 has 1 elements; expected 2"),
            std::string::npos)
      << r.status().message();
  TestVectors mismatched{{{0, 0}, {1, 1}}, {{1}}};
  EXPECT_EQ(GenerateTestbench(d, mismatched, 1).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace fpgaserve::hw
