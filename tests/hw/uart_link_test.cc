// The iCE40 board top under Icarus: requests from the host codec (runtime/uart_frames.h) are
// driven bit-serially on uart_rx; every byte on uart_tx must equal the codec's encoding of the
// emulator's answer. Lint with Verilator -Wall and a yosys synth_ice40 parse are checked too.
#include "hw/uart_link.h"

#include <gtest/gtest.h>

#include <chrono>

#include "core/subprocess.h"
#include "hw/testbench.h"
#include "importers/import.h"
#include "importers/test_files.h"
#include "numeric/emulator.h"
#include "runtime/uart_frames.h"

namespace fpgaserve::hw {
namespace {

namespace uart = runtime::uart;

constexpr const char* kBanknote = FPGASERVE_SOURCE_DIR "/examples/banknote/banknote.onnx";
constexpr int kCpb = 4;  // clocks per bit in simulation

struct Banknote {
  model::Graph graph;
  numeric::PrecisionConfig precision;
  HwDesign design;
};

Banknote Build(int reuse) {
  Banknote b;
  auto g = importers::ImportModel(kBanknote);
  EXPECT_TRUE(g.ok()) << g.status().ToString();
  b.graph = *g;
  auto p = numeric::ResolvePrecision(b.graph, {"fixed<16,6>", ""}, nullptr);
  EXPECT_TRUE(p.ok());
  b.precision = *p;
  auto d = GenerateDesign(b.graph, b.precision, {reuse});
  EXPECT_TRUE(d.ok()) << d.status().ToString();
  b.design = *d;
  return b;
}

std::string HexBytes(const uart::Bytes& bytes) {
  std::string s;
  for (auto b : bytes) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "%02x\n", b);
    s += buf;
  }
  return s;
}

// A bench that sends every byte of tx.hex on uart_rx (8N1 at kCpb clocks per bit) and compares
// each byte the top sends with rx.hex, in order. After tx byte i it waits until wait.hex[i]
// response bytes have arrived: a host sends its next request after the answer.
std::string Bench(std::size_t n_tx, std::size_t n_rx) {
  const std::string N = std::to_string(n_tx), M = std::to_string(n_rx);
  std::string v = "`timescale 1ns/1ps\nmodule tb;\n  reg clk = 0;\n  always #5 clk = ~clk;\n";
  v += "  reg rx = 1'b1;\n  wire tx;\n  wire lr, lg;\n";
  v += "  fpgaserve_uart_top #(.CLKS_PER_BIT(" + std::to_string(kCpb) +
       ")) dut (.clk(clk), .uart_rx(rx), .uart_tx(tx), .led_red(lr), .led_green(lg));\n";
  v += "  reg [7:0] txm [0:" + N + "-1];\n  reg [7:0] rxm [0:" + M + "-1];\n";
  v += "  reg [15:0] waitm [0:" + N + "-1];\n";
  v += "  integer i, k, j, got, errors;\n  reg [7:0] b;\n";
  v += "  task send(input [7:0] d); begin\n    rx = 1'b0; repeat (" + std::to_string(kCpb) +
       ") @(posedge clk);\n    for (k = 0; k < 8; k = k + 1) begin rx = d[k]; repeat (" +
       std::to_string(kCpb) + ") @(posedge clk); end\n    rx = 1'b1; repeat (" +
       std::to_string(kCpb) + ") @(posedge clk);\n  end endtask\n";
  v += "  initial begin\n    $readmemh(\"tx.hex\", txm);\n    $readmemh(\"rx.hex\", rxm);\n"
       "    $readmemh(\"wait.hex\", waitm);\n"
       "    repeat (40) @(posedge clk);\n    for (i = 0; i < " + N +
       "; i = i + 1) begin\n      send(txm[i]);\n"
       "      while (got < waitm[i]) @(posedge clk);  // the link is half duplex\n    end\n  end\n";
  // Receiver: sample in the middle of each bit.
  v += "  initial begin\n    got = 0; errors = 0;\n    while (got < " + M +
       ") begin\n      @(negedge tx);\n      repeat (" + std::to_string(kCpb / 2) +
       ") @(posedge clk);\n      for (j = 0; j < 8; j = j + 1) begin repeat (" +
       std::to_string(kCpb) + ") @(posedge clk); b[j] = tx; end\n      repeat (" +
       std::to_string(kCpb) + ") @(posedge clk);\n      if (b !== rxm[got]) begin\n"
       "        $display(\"FAIL byte %0d: expected %h got %h\", got, rxm[got], b);\n"
       "        errors = errors + 1;\n      end\n      got = got + 1;\n    end\n"
       "    if (errors == 0) $display(\"PASS %0d bytes\", got);\n    $finish;\n  end\n";
  v += "  initial begin\n    #2000000;\n    $display(\"FAIL timeout after %0d bytes\", got);\n"
       "    $finish;\n  end\nendmodule\n";
  return v;
}

Result<SubprocessResult> RunIn(const std::vector<std::string>& argv, const std::string& dir) {
  SubprocessOptions o;
  o.working_dir = dir;
  o.timeout = std::chrono::seconds(240);
  return RunSubprocess(argv, o);
}

TEST(UartLinkTest, ClocksPerBit) {
  auto c = UartClocksPerBit(12, 115200);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(*c, 104);  // 104.17: 0.16 % error
  EXPECT_FALSE(UartClocksPerBit(0.1, 115200).ok());  // < 4 clocks per bit
  EXPECT_FALSE(UartClocksPerBit(12, 0).ok());
  auto bad = UartClocksPerBit(1, 230400);  // 4.34 -> 4: 7.8 % off
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("within 2 %"), std::string::npos);
}

TEST(UartLinkTest, InfoInferAndBadFramesUnderIcarus) {
  for (int reuse : {1, 16}) {
    SCOPED_TRACE(reuse);
    Banknote b = Build(reuse);
    UartLinkOptions o;
    o.design_id = 0xc0ffee42;
    auto top = GenerateUartTop(b.design, o);
    ASSERT_TRUE(top.ok()) << top.status().ToString();

    auto model = numeric::QuantizedModel::Build(b.graph, b.precision);
    ASSERT_TRUE(model.ok());
    const auto inputs = MakeInputVectors(b.design, 3, 5);
    uart::Bytes tx, rx;
    std::vector<std::size_t> waits;  // per tx byte
    auto append = [&](uart::Bytes& to, const uart::Bytes& from) {
      to.insert(to.end(), from.begin(), from.end());
      if (&to == &tx) waits.resize(tx.size(), 0);
      if (&to == &rx) waits.back() = rx.size();  // the request just appended waits for this
    };
    append(tx, uart::EncodeInfoRequest());
    append(rx, uart::EncodeInfoResponse({4, 2, 16, 16, o.design_id, b.design.latency_cycles,
                                         b.design.initiation_interval}));
    for (const auto& in : inputs) {
      numeric::RawBatch batch{1, in.size(), in};
      auto out = model->RunRaw({batch});
      ASSERT_TRUE(out.ok());
      auto req = uart::EncodeInferRequest(in, 16);
      ASSERT_TRUE(req.ok());
      append(tx, *req);
      // Idle core, nothing waits: the stamp is the design latency.
      append(rx, uart::EncodeInferResponse(out->raw_outputs[0].values, 16,
                                           static_cast<std::uint64_t>(b.design.latency_cycles)));
    }
    uart::Bytes bad = uart::EncodeInfoRequest();
    bad.back() ^= 0x40;  // checksum
    append(tx, bad);
    append(rx, uart::EncodeErrorResponse(uart::kErrorChecksum));
    append(tx, {0xA5, 0x07, 0xA2});  // unknown command
    append(rx, uart::EncodeErrorResponse(uart::kErrorCommand));
    append(tx, {0x00, 0x13});  // noise before a sync byte is skipped
    append(tx, uart::EncodeInfoRequest());
    append(rx, uart::EncodeInfoResponse({4, 2, 16, 16, o.design_id, b.design.latency_cycles,
                                         b.design.initiation_interval}));

    testing::TempDir dir;
    std::vector<std::string> files;
    for (const auto& f : b.design.files) files.push_back(dir.Write(f.name, f.text));
    files.push_back(dir.Write(top->name, top->text));
    dir.Write("tb.v", Bench(tx.size(), rx.size()));
    dir.Write("tx.hex", HexBytes(tx));
    dir.Write("rx.hex", HexBytes(rx));
    std::string wait_hex;
    for (std::size_t w : waits) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "%04zx\n", w);
      wait_hex += buf;
    }
    dir.Write("wait.hex", wait_hex);

    auto lint = RunIn({"verilator", "--lint-only", "-Wall", "--top-module", kUartTopModule}, dir.path());
    if (!lint.ok() && lint.status().code() == StatusCode::kNotFound) GTEST_SKIP() << "no verilator";
    std::vector<std::string> lint_argv{"verilator", "--lint-only", "-Wall", "--top-module",
                                       kUartTopModule};
    lint_argv.insert(lint_argv.end(), files.begin(), files.end());
    auto l = RunIn(lint_argv, dir.path());
    ASSERT_TRUE(l.ok());
    EXPECT_TRUE(l->success()) << l->stderr_text;

    std::vector<std::string> argv{"iverilog", "-g2005", "-s", "tb", "-o", "tb.vvp", "tb.v"};
    argv.insert(argv.end(), files.begin(), files.end());
    auto c = RunIn(argv, dir.path());
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    ASSERT_TRUE(c->success()) << c->stderr_text;
    auto sim = RunIn({"vvp", "-n", "tb.vvp"}, dir.path());
    ASSERT_TRUE(sim.ok());
    EXPECT_NE(sim->stdout_text.find("PASS " + std::to_string(rx.size()) + " bytes"),
              std::string::npos)
        << sim->stdout_text;
  }
}

}  // namespace
}  // namespace fpgaserve::hw
