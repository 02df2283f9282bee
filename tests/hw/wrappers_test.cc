#include "hw/wrappers.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "core/subprocess.h"
#include "importers/test_files.h"

namespace fpgaserve::hw {
namespace {

using numeric::FixedFormat;
using numeric::RawValue;

std::string S(std::int64_t v) { return std::to_string(v); }

// A hand-written core obeying the port contract (the generator is tested elsewhere): a 2-stage
// elastic pipeline computing out[j] = low out-width bits of (in[j % n_in] extended + j + 1).
std::string HandCore(int n_in, const FixedFormat& fi, int n_out, const FixedFormat& fo) {
  const int wi = fi.width, wo = fo.width, ib = n_in * wi, ob = n_out * wo;
  std::string v =
      "module fpgaserve_core (\n  input clk, input rst,\n  input in_valid, output in_ready, input "
      "[" +
      S(ib - 1) + ":0] in_data,\n  output out_valid, input out_ready, output [" + S(ob - 1) +
      ":0] out_data,\n  output [63:0] out_cycles, output [63:0] cycle_count\n);\n";
  v += "  reg [63:0] counter;\n  always @(posedge clk) begin\n    if (rst) counter <= 64'd0;\n"
       "    else counter <= counter + 64'd1;\n  end\n  assign cycle_count = counter;\n";
  v += "  reg v1, v2;\n  reg [" + S(ib - 1) + ":0] d1;\n  reg [" + S(ob - 1) +
       ":0] d2;\n  reg [63:0] t1, t2;\n";
  v += "  wire [" + S(ob - 1) + ":0] f;\n  wire unused_d1 = &{1'b0, d1, 1'b0};\n";
  for (int j = 0; j < n_out; ++j) {
    const int lo = (j % n_in) * wi;
    std::string x = "d1[" + S(lo + std::min(wi, wo) - 1) + ":" + S(lo) + "]";
    if (wo > wi)
      x = "{{" + S(wo - wi) + "{" + (fi.is_signed ? "d1[" + S(lo + wi - 1) + "]" : "1'b0") +
          "}}, " + x + "}";
    const std::uint64_t add = static_cast<std::uint64_t>(j + 1) & ((std::uint64_t{1} << wo) - 1);
    v += "  assign f[" + S(std::int64_t{j} * wo + wo - 1) + ":" + S(std::int64_t{j} * wo) +
         "] = " + x + " + " + S(wo) + "'d" + S(static_cast<std::int64_t>(add)) + ";\n";
  }
  v += "  wire en2 = !v2 || out_ready;\n  wire en1 = !v1 || en2;\n  assign in_ready = en1;\n";
  v += "  always @(posedge clk) begin\n    if (rst) begin\n      v1 <= 1'b0;\n      v2 <= 1'b0;\n"
       "    end else begin\n      if (en1) v1 <= in_valid;\n      if (en2) v2 <= v1;\n    end\n  "
       "end\n";
  v += "  always @(posedge clk) begin\n    if (en1) begin\n      d1 <= in_data;\n      t1 <= "
       "counter;\n    end\n"
       "    if (en2) begin\n      d2 <= f;\n      t2 <= t1;\n    end\n  end\n";
  v += "  assign out_valid = v2;\n  assign out_data = d2;\n  assign out_cycles = counter - "
       "t2;\nendmodule\n";
  return v;
}

std::uint64_t Mask(int width) {
  return width >= 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << width) - 1;
}

RawValue FromBits(std::uint64_t u, const FixedFormat& f) {
  u &= Mask(f.width);
  if (f.is_signed && f.width < 64 && ((u >> (f.width - 1)) & 1)) u |= ~Mask(f.width);
  return static_cast<RawValue>(u);
}

std::vector<RawValue> HandOutputs(const std::vector<RawValue>& in, const FixedFormat& fo,
                                  int n_out) {
  std::vector<RawValue> out;
  for (int j = 0; j < n_out; ++j)
    out.push_back(FromBits(static_cast<std::uint64_t>(in[j % in.size()]) + j + 1, fo));
  return out;
}

// A raw value as the 32-bit bus word carrying it (sign-extended for signed formats).
std::string Word(RawValue v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "32'h%08x", static_cast<unsigned>(static_cast<std::uint32_t>(v)));
  return buf;
}

struct Shape {
  int n_in;
  FixedFormat fi;
  int n_out;
  FixedFormat fo;
};

HwDesign HandDesign(const Shape& s) {
  HwDesign d;
  d.files.push_back({"fpgaserve_core.v", HandCore(s.n_in, s.fi, s.n_out, s.fo)});
  d.n_in = s.n_in;
  d.n_out = s.n_out;
  d.in_format = s.fi;
  d.out_format = s.fo;
  d.latency_cycles = 2;
  return d;
}

const Shape kShapes[] = {
    {3, {8, 3}, 2, {12, 5}},          // widening, signed
    {1, {32, 8, false}, 1, {32, 8}},  // single elements, full 32-bit words
    {2, {5, 2}, 4, {7, 3, false}},    // two-beat frames, unsigned zero-extended outputs
    {70, {16, 6}, 3, {16, 6}},        // inputs beyond 0x1FC: the output window moves up
};

std::vector<std::vector<RawValue>> RandomInputs(const Shape& s, int count, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<std::int64_t> e(s.fi.min_raw(), s.fi.max_raw());
  std::vector<std::vector<RawValue>> rows(count, std::vector<RawValue>(s.n_in));
  for (auto& r : rows) {
    for (auto& v : r) v = e(rng);
  }
  rows[0].assign(s.n_in, s.fi.min_raw());  // the extremes exercise the sign extension
  if (count > 1) rows[1].assign(s.n_in, s.fi.max_raw());
  return rows;
}

Result<SubprocessResult> RunTool(const std::vector<std::string>& argv, const std::string& dir) {
  SubprocessOptions o;
  o.working_dir = dir;
  o.timeout = std::chrono::seconds(300);
  return RunSubprocess(argv, o);
}

// Runs a tool in `dir`; skips the test when the tool is not installed.
#define RUN_TOOL(result, dir, ...)                                       \
  auto result = RunTool(std::vector<std::string>{__VA_ARGS__}, (dir));   \
  if (!result.ok() && result.status().code() == StatusCode::kNotFound) { \
    GTEST_SKIP() << "tool not installed: " << result.status().message(); \
  }                                                                      \
  ASSERT_TRUE(result.ok()) << result.status().ToString()

std::string ShapeName(const Shape& s) {
  return S(s.n_in) + " x " + s.fi.ToString() + " -> " + S(s.n_out) + " x " + s.fo.ToString();
}

void PrintTo(const Shape& s, std::ostream* os) { *os << ShapeName(s); }

TEST(WrappersTest, InterfaceNamesAndWidthsAreChecked) {
  const HwDesign d = HandDesign(kShapes[0]);
  auto stream = GenerateInterfaceWrapper(d, "stream");
  ASSERT_FALSE(stream.ok());
  EXPECT_EQ(stream.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(stream.status().message().find("fpgaserve_core is itself"), std::string::npos);
  auto unknown = GenerateInterfaceWrapper(d, "pcie");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(unknown.status().message().find("'pcie'; expected axis, axilite or stream"),
            std::string::npos)
      << unknown.status().message();
  HwDesign wide = d;
  wide.out_format = FixedFormat{40, 10};
  for (const char* i : {"axis", "axilite"}) {
    auto r = GenerateInterfaceWrapper(wide, i);
    ASSERT_FALSE(r.ok()) << i;
    EXPECT_EQ(r.status().code(), StatusCode::kUnimplemented);
    EXPECT_NE(r.status().message().find("fixed<40,10> is 40 bits wide"), std::string::npos)
        << r.status().message();
  }
  auto axis = GenerateInterfaceWrapper(d, "axis");
  ASSERT_TRUE(axis.ok()) << axis.status().ToString();
  EXPECT_EQ(axis->name, "fpgaserve_axis.v");
  auto lite = GenerateInterfaceWrapper(d, "axilite");
  ASSERT_TRUE(lite.ok()) << lite.status().ToString();
  EXPECT_EQ(lite->name, "fpgaserve_axilite.v");
}

TEST(WrappersTest, AxiLiteOutputWindowNeverOverlapsInputs) {
  EXPECT_EQ(AxiLiteOutputBase(1), 0x200u);
  EXPECT_EQ(AxiLiteOutputBase(64), 0x200u);
  EXPECT_EQ(AxiLiteOutputBase(65), 0x400u);
  EXPECT_EQ(AxiLiteOutputBase(784), 0x1000u);
  EXPECT_EQ(AxiLiteAddressBits(4, 3), 12);
  EXPECT_EQ(AxiLiteAddressBits(784, 10), 13);
}

// One test per shape, so that CTest can run them in parallel.
class WrappersShapeTest : public ::testing::TestWithParam<Shape> {};

// Every wrapper of every shape: verilator -Wall clean, Icarus-compilable, synthesizable by yosys.
TEST_P(WrappersShapeTest, LintCleanAndSynthesizable) {
  const Shape& shape = GetParam();
  SCOPED_TRACE(ShapeName(shape));
  const HwDesign d = HandDesign(shape);
  testing::TempDir dir;
  dir.Write("fpgaserve_core.v", d.files[0].text);
  for (const char* interface : {"axis", "axilite"}) {
    SCOPED_TRACE(interface);
    auto w = GenerateInterfaceWrapper(d, interface);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    dir.Write(w->name, w->text);
    const std::string top = w->name.substr(0, w->name.size() - 2);
    RUN_TOOL(lint, dir.path(), "verilator", "--lint-only", "-Wall", "--top-module", top, w->name,
             "fpgaserve_core.v");
    EXPECT_TRUE(lint->success()) << lint->stderr_text;
    RUN_TOOL(iv, dir.path(), "iverilog", "-g2005", "-o", top + ".vvp", w->name, "fpgaserve_core.v");
    EXPECT_TRUE(iv->success()) << iv->stderr_text;
    RUN_TOOL(ys, dir.path(), "yosys", "-q", "-p",
             "read_verilog " + w->name + " fpgaserve_core.v; synth -top " + top);
    EXPECT_TRUE(ys->success()) << ys->stdout_text << ys->stderr_text;
  }
}

// An Icarus bench for fpgaserve_axis: a framing error first — a short frame (dropped) when
// n_in > 1, else a first frame without TLAST (still computed) — then `inputs.size()` frames with
// random source gaps and random m_axis_tready back-pressure; every output beat, TLAST, and the
// cycle word (exactly the latency for the first inference) checked.
std::string AxisBench(const Shape& s, const std::vector<std::vector<RawValue>>& inputs) {
  const bool short_frame = s.n_in > 1;
  std::vector<std::string> in_beats, out_beats;  // "data, last" / "data, last, is_cycles"
  if (short_frame) in_beats.push_back("32'h0000abcd, 1'b1");
  for (const auto& row : inputs) {
    for (int i = 0; i < s.n_in; ++i) {
      const bool last = i + 1 == s.n_in && (short_frame || !in_beats.empty());
      in_beats.push_back(Word(row[i]) + ", 1'b" + (last ? "1" : "0"));
    }
    for (RawValue v : HandOutputs(row, s.fo, s.n_out))
      out_beats.push_back(Word(v) + ", 1'b0, 1'b0");
    out_beats.push_back("32'd2, 1'b1, 1'b1");
  }
  std::string b =
      "`timescale 1ns / 1ps\nmodule tb;\n  reg aclk = 1'b0;\n  always #5 aclk = ~aclk;\n  reg "
      "aresetn = 1'b0;\n";
  b += "  reg [31:0] s_tdata = 32'd0;\n  reg s_tvalid = 1'b0, s_tlast = 1'b0, m_tready = 1'b0;\n";
  b += "  wire s_tready, m_tvalid, m_tlast, frame_error;\n  wire [31:0] m_tdata;\n";
  b += "  fpgaserve_axis dut (.aclk(aclk), .aresetn(aresetn), .s_axis_tdata(s_tdata), "
       ".s_axis_tvalid(s_tvalid),\n"
       "    .s_axis_tready(s_tready), .s_axis_tlast(s_tlast), .m_axis_tdata(m_tdata), "
       ".m_axis_tvalid(m_tvalid),\n"
       "    .m_axis_tready(m_tready), .m_axis_tlast(m_tlast), .frame_error(frame_error));\n";
  const std::string ni = S(static_cast<std::int64_t>(in_beats.size())),
                    no = S(static_cast<std::int64_t>(out_beats.size()));
  b += "  reg [31:0] in_data [0:" + ni + "-1];\n  reg in_last [0:" + ni + "-1];\n";
  b += "  reg [31:0] exp_data [0:" + no + "-1];\n  reg exp_last [0:" + no +
       "-1];\n  reg exp_cycles [0:" + no + "-1];\n";
  b += "  integer i, received = 0, errors = 0, seed = 7, first_cycles = 1;\n";
  b += "  initial begin\n";
  for (std::size_t k = 0; k < in_beats.size(); ++k) {
    b += "    {in_data[" + S(k) + "], in_last[" + S(k) + "]} = {" + in_beats[k] + "};\n";
  }
  for (std::size_t k = 0; k < out_beats.size(); ++k) {
    b += "    {exp_data[" + S(k) + "], exp_last[" + S(k) + "], exp_cycles[" + S(k) + "]} = {" +
         out_beats[k] + "};\n";
  }
  b += "    repeat (4) @(posedge aclk);\n    aresetn <= 1'b1;\n    @(posedge aclk);\n";
  b += "    for (i = 0; i < " + ni +
       "; i = i + 1) begin\n"
       "      s_tdata <= in_data[i];\n      s_tlast <= in_last[i];\n      s_tvalid <= 1'b1;\n"
       "      @(posedge aclk);\n      while (!s_tready) @(posedge aclk);\n      s_tvalid <= 1'b0;\n"
       "      if (($random(seed) & 3) == 0) @(posedge aclk);\n    end\n  end\n";
  b +=
      "  always @(posedge aclk) begin\n    m_tready <= aresetn && ($random(seed) & 3) != 0;\n"
      "    if (m_tvalid && m_tready) begin\n"
      "      if (received >= " +
      no +
      ") begin\n        $display(\"ERROR extra beat %h\", m_tdata);\n        errors = errors + 1;\n"
      "      end else begin\n"
      "        if (m_tlast !== exp_last[received]) begin\n          $display(\"ERROR beat %0d: "
      "tlast %b\", received, m_tlast);\n          errors = errors + 1;\n        end\n"
      "        if (exp_cycles[received]) begin\n"
      "          if (first_cycles ? m_tdata !== exp_data[received] : m_tdata < exp_data[received]) "
      "begin\n"
      "            $display(\"ERROR beat %0d: cycle word %0d\", received, m_tdata);\n            "
      "errors = errors + 1;\n          end\n"
      "          first_cycles = 0;\n"
      "        end else if (m_tdata !== exp_data[received]) begin\n"
      "          $display(\"ERROR beat %0d: expected %h got %h\", received, exp_data[received], "
      "m_tdata);\n          errors = errors + 1;\n        end\n"
      "      end\n      received = received + 1;\n    end\n  end\n";
  b += "  initial begin\n    wait (received == " + no + ");\n    repeat (20) @(posedge aclk);\n";
  b += "    if (frame_error !== 1'b1) begin\n      $display(\"ERROR frame_error %b\", "
       "frame_error);\n      errors = errors + 1;\n    end\n";
  b += "    if (errors == 0) $display(\"AXIS OK %0d beats\", received);\n    $finish;\n  end\n";
  b += "  initial begin\n    #2000000;\n    $display(\"ERROR timeout: %0d beats\", received);\n    "
       "$finish;\n  end\nendmodule\n";
  return b;
}

TEST_P(WrappersShapeTest, AxisStreamsInferencesUnderIcarus) {
  const unsigned seed = 21;
  SCOPED_TRACE("seed " + std::to_string(seed));
  const Shape& shape = GetParam();
  SCOPED_TRACE(ShapeName(shape));
  const HwDesign d = HandDesign(shape);
  auto w = GenerateInterfaceWrapper(d, "axis");
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  testing::TempDir dir;
  dir.Write("fpgaserve_core.v", d.files[0].text);
  dir.Write(w->name, w->text);
  dir.Write("tb.v", AxisBench(shape, RandomInputs(shape, 6, seed)));
  RUN_TOOL(iv, dir.path(), "iverilog", "-g2005", "-o", "tb.vvp", "tb.v", w->name,
           "fpgaserve_core.v");
  ASSERT_TRUE(iv->success()) << iv->stderr_text;
  RUN_TOOL(sim, dir.path(), "vvp", "-n", "tb.vvp");
  const std::string want = "AXIS OK " + S(6 * (std::int64_t{shape.n_out} + 1)) + " beats";
  EXPECT_NE(sim->stdout_text.find(want), std::string::npos) << sim->stdout_text;
  EXPECT_EQ(sim->stdout_text.find("ERROR"), std::string::npos) << sim->stdout_text;
}

// An Icarus bench for fpgaserve_axilite: reads the info registers, then per inference writes the
// inputs (and a one-byte strobe write to input 0), reads them back, starts, polls done, and reads
// the outputs and the cycle count; also an unmapped read returns 0.
std::string AxiLiteBench(const Shape& s, const std::vector<std::vector<RawValue>>& inputs) {
  const int aw = AxiLiteAddressBits(s.n_in, s.n_out);
  const std::uint32_t out_base = AxiLiteOutputBase(s.n_in);
  const std::string A = S(aw - 1);
  std::string b =
      "`timescale 1ns / 1ps\nmodule tb;\n  reg clk = 1'b0;\n  always #5 clk = ~clk;\n  reg aresetn "
      "= 1'b0;\n";
  b += "  reg [" + A +
       ":0] awaddr = 0, araddr = 0;\n  reg awvalid = 1'b0, wvalid = 1'b0, bready = 1'b0, arvalid = "
       "1'b0, rready = 1'b0;\n";
  b += "  reg [31:0] wdata = 32'd0;\n  reg [3:0] wstrb = 4'd0;\n";
  b += "  wire awready, wready, bvalid, arready, rvalid;\n  wire [1:0] bresp, rresp;\n  wire "
       "[31:0] rdata;\n";
  b +=
      "  fpgaserve_axilite dut (.s_axi_aclk(clk), .s_axi_aresetn(aresetn), .s_axi_awaddr(awaddr),\n"
      "    .s_axi_awvalid(awvalid), .s_axi_awready(awready), .s_axi_wdata(wdata), "
      ".s_axi_wstrb(wstrb),\n"
      "    .s_axi_wvalid(wvalid), .s_axi_wready(wready), .s_axi_bresp(bresp), "
      ".s_axi_bvalid(bvalid),\n"
      "    .s_axi_bready(bready), .s_axi_araddr(araddr), .s_axi_arvalid(arvalid), "
      ".s_axi_arready(arready),\n"
      "    .s_axi_rdata(rdata), .s_axi_rresp(rresp), .s_axi_rvalid(rvalid), "
      ".s_axi_rready(rready));\n";
  b += "  integer errors = 0, polls;\n  reg [31:0] r;\n";
  b += "  task wr(input [" + A +
       ":0] a, input [31:0] d, input [3:0] st);\n    begin\n"
       "      awaddr <= a;\n      wdata <= d;\n      wstrb <= st;\n      awvalid <= 1'b1;\n      "
       "wvalid <= 1'b1;\n"
       "      @(posedge clk);\n      while (!(awready && wready)) @(posedge clk);\n"
       "      awvalid <= 1'b0;\n      wvalid <= 1'b0;\n      bready <= 1'b1;\n"
       "      @(posedge clk);\n      while (!bvalid) @(posedge clk);\n      bready <= 1'b0;\n"
       "      if (bresp !== 2'b00) begin\n        $display(\"ERROR write %h: bresp %b\", a, "
       "bresp);\n        errors = errors + 1;\n      end\n"
       "    end\n  endtask\n";
  b += "  task rd(input [" + A +
       ":0] a, output [31:0] d);\n    begin\n"
       "      araddr <= a;\n      arvalid <= 1'b1;\n      @(posedge clk);\n      while (!arready) "
       "@(posedge clk);\n"
       "      arvalid <= 1'b0;\n      rready <= 1'b1;\n      @(posedge clk);\n      while "
       "(!rvalid) @(posedge clk);\n"
       "      d = rdata;\n      rready <= 1'b0;\n    end\n  endtask\n";
  b += "  task expect_rd(input [" + A +
       ":0] a, input [31:0] want);\n    begin\n      rd(a, r);\n"
       "      if (r !== want) begin\n        $display(\"ERROR read %h: expected %h got %h\", a, "
       "want, r);\n"
       "        errors = errors + 1;\n      end\n    end\n  endtask\n";
  auto addr = [&](std::uint32_t a) {
    return S(aw) + "'h" + [&] {
      char buf[16];
      std::snprintf(buf, sizeof buf, "%x", a);
      return std::string(buf);
    }();
  };
  b += "  initial begin\n    repeat (4) @(posedge clk);\n    aresetn <= 1'b1;\n    @(posedge "
       "clk);\n";
  b += "    expect_rd(" + addr(0x04) + ", 32'd" + S(s.n_in) + ");\n";
  b += "    expect_rd(" + addr(0x08) + ", 32'd" + S(s.n_out) + ");\n";
  b += "    expect_rd(" + addr(0x14) + ", 32'd" + S(out_base) + ");\n";
  b += "    expect_rd(" + addr(0x00) + ", 32'd0);\n";
  b += "    expect_rd(" + addr(0x18) + ", 32'd0);\n";
  for (auto row : inputs) {
    for (int i = 0; i < s.n_in; ++i)
      b += "    wr(" + addr(0x100 + 4 * i) + ", " + Word(row[i]) + ", 4'hf);\n";
    // A byte-strobe write replaces only byte 0 of input 0.
    row[0] = FromBits((static_cast<std::uint64_t>(row[0]) & ~std::uint64_t{0xff}) | 0xaa, s.fi);
    b += "    wr(" + addr(0x100) + ", 32'hffffffaa, 4'b0001);\n";
    for (int i = 0; i < s.n_in; ++i)
      b += "    expect_rd(" + addr(0x100 + 4 * i) + ", " + Word(row[i]) + ");\n";
    b += "    wr(" + addr(0x00) + ", 32'd1, 4'hf);\n";
    b += "    r = 32'd0;\n    polls = 0;\n    while (!r[1] && polls < 50) begin\n      rd(" +
         addr(0x00) + ", r);\n      polls = polls + 1;\n    end\n";
    b += "    if (r !== 32'd2) begin\n      $display(\"ERROR control %h after %0d polls\", r, "
         "polls);\n      errors = errors + 1;\n    end\n";
    const auto outs = HandOutputs(row, s.fo, s.n_out);
    for (int j = 0; j < s.n_out; ++j)
      b += "    expect_rd(" + addr(out_base + 4 * j) + ", " + Word(outs[j]) + ");\n";
    b += "    expect_rd(" + addr(0x0C) + ", 32'd2);\n    expect_rd(" + addr(0x10) + ", 32'd0);\n";
  }
  b += "    if (errors == 0) $display(\"AXILITE OK\");\n    $finish;\n  end\n";
  b += "  initial begin\n    #5000000;\n    $display(\"ERROR timeout\");\n    $finish;\n  "
       "end\nendmodule\n";
  return b;
}

TEST_P(WrappersShapeTest, AxiLiteRunsInferencesUnderIcarus) {
  const unsigned seed = 22;
  SCOPED_TRACE("seed " + std::to_string(seed));
  const Shape& shape = GetParam();
  SCOPED_TRACE(ShapeName(shape));
  const HwDesign d = HandDesign(shape);
  auto w = GenerateInterfaceWrapper(d, "axilite");
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  testing::TempDir dir;
  dir.Write("fpgaserve_core.v", d.files[0].text);
  dir.Write(w->name, w->text);
  dir.Write("tb.v", AxiLiteBench(shape, RandomInputs(shape, 3, seed)));
  RUN_TOOL(iv, dir.path(), "iverilog", "-g2005", "-o", "tb.vvp", "tb.v", w->name,
           "fpgaserve_core.v");
  ASSERT_TRUE(iv->success()) << iv->stderr_text;
  RUN_TOOL(sim, dir.path(), "vvp", "-n", "tb.vvp");
  EXPECT_NE(sim->stdout_text.find("AXILITE OK"), std::string::npos) << sim->stdout_text;
  EXPECT_EQ(sim->stdout_text.find("ERROR"), std::string::npos) << sim->stdout_text;
}

INSTANTIATE_TEST_SUITE_P(Shapes, WrappersShapeTest, ::testing::ValuesIn(kShapes),
                         [](const ::testing::TestParamInfo<Shape>& info) {
                           return "shape" + std::to_string(info.index);
                         });

}  // namespace
}  // namespace fpgaserve::hw
