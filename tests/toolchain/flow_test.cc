// Flows against real report fixtures, fake vendor tools on PATH and failing/hanging tools.
#include <gtest/gtest.h>

#include <filesystem>

#include "boards/board.h"
#include "core/file_io.h"
#include "hw/design.h"
#include "hw/wrappers.h"
#include "importers/test_files.h"
#include "model/passes.h"
#include "numeric/precision.h"
#include "toolchain/amd_flow.h"
#include "toolchain/fake_tools.h"
#include "toolchain/icestorm_flow.h"

namespace fpgaserve::toolchain {
namespace {

namespace fs = std::filesystem;
using fpgaserve::testing::PathGuard;
using fpgaserve::testing::WriteScript;
constexpr const char* kFixtures = FPGASERVE_SOURCE_DIR "/tests/fixtures/toolchain/";

std::string Fixture(const std::string& name) {
  auto t = ReadFile(std::string(kFixtures) + name, 1 << 24);
  EXPECT_TRUE(t.ok()) << name;
  return t.ok() ? *t : "";
}

TEST(FlowParsersTest, Ice40YosysStat) {
  const auto u = ParseYosysIce40Stat(Fixture("ice40_yosys_stat.txt"));
  EXPECT_EQ(u.lut, 2348);
  EXPECT_EQ(u.dsp, 8);
  EXPECT_EQ(u.bram, 14);
  EXPECT_EQ(u.ff, 46 + 1517 + 520 + 43 + 95 + 1);
  EXPECT_EQ(u.cells.at("SB_CARRY"), 676);
}

TEST(FlowParsersTest, NextpnrReport) {
  auto r = ParseNextpnrReport(Fixture("nextpnr_report.json"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->utilization.lut, 3792);
  EXPECT_EQ(r->utilization.dsp, 8);
  EXPECT_EQ(r->utilization.bram, 14);
  EXPECT_NEAR(r->fmax_mhz, 23.43, 0.01);
  EXPECT_FALSE(ParseNextpnrReport("{\"fmax\": {}}").ok());
  EXPECT_FALSE(ParseNextpnrReport("not json").ok());
}

TEST(FlowParsersTest, XilinxYosysStat) {
  const auto u = ParseYosysXilinxStat(Fixture("xc7_yosys_stat.txt"));
  EXPECT_GT(u.lut, 1000);
  EXPECT_GT(u.ff, 1000);
  EXPECT_EQ(u.dsp, 68);
  EXPECT_EQ(u.bram, 2);
  EXPECT_EQ(ParseYosysXilinxStat("     LUT6   10\n     LUT2 5\n     FDRE 7\n     RAMB18E1 3\n").lut, 15);
  EXPECT_EQ(ParseYosysXilinxStat("     RAMB18E1 3\n     RAMB36E1 1\n").bram, 3);
}

// A tiny Dense 2 -> 2 design, so yosys runs in a second.
hw::HwDesign TinyDesign() {
  model::Graph g;
  g.inputs.push_back({"x", {2}});
  g.layers.push_back(model::MakeDense("fc", "x", "y", {2, 2, {0.5, -0.25, 1.0, 0.75}, {0.125, 0}}));
  g.outputs.push_back({"y", {}});
  EXPECT_TRUE(model::Finalize(g).ok());
  auto p = numeric::ResolvePrecision(g, {"fixed<8,3>", ""}, nullptr);
  EXPECT_TRUE(p.ok());
  auto d = hw::GenerateDesign(g, *p, {1});
  EXPECT_TRUE(d.ok()) << d.status().ToString();
  return *d;
}

struct FlowFixture {
  testing::TempDir tmp;
  hw::HwDesign design = TinyDesign();
  FlowRequest request;
  fs::path bin;
  explicit FlowFixture(const std::string& board, const std::string& interface) {
    request.design = &design;
    request.board = *boards::FindBoard(board);
    request.bundle_dir = (fs::path(tmp.path()) / "bundle").string();
    request.interface = interface;
    request.stage_timeout = std::chrono::seconds(120);
    fs::create_directories(fs::path(request.bundle_dir) / "rtl");
    for (const auto& f : design.files) tmp.Write("bundle/rtl/" + f.name, f.text);
    auto wrapper = hw::GenerateInterfaceWrapper(design, interface);
    EXPECT_TRUE(wrapper.ok());
    tmp.Write("bundle/rtl/" + wrapper->name, wrapper->text);
    bin = fs::path(tmp.path()) / "bin";
    fs::create_directories(bin);
  }
};

bool HaveYosys() { return RequireTool("yosys", "yosys").ok(); }

TEST(AmdFlowTest, WithoutVivadoTheBundleSaysHowToBuild) {
  if (!HaveYosys()) GTEST_SKIP() << "yosys not installed";
  FlowFixture f("ebaz4205", "axis");
  auto r = RunAmdFlow(f.request);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  if (RequireTool("vivado", "").ok()) GTEST_SKIP() << "a real vivado is installed";
  EXPECT_EQ(r->bitstream_status, "needs-vendor-tools");
  EXPECT_EQ(r->bitstream_command, "vivado -mode batch -nojournal -nolog -source vivado/build.tcl");
  EXPECT_GT(r->utilization.lut, 0);
  EXPECT_EQ(r->utilization.source, "yosys synth_xilinx -family xc7");
  const fs::path dir = f.request.bundle_dir;
  EXPECT_TRUE(fs::exists(dir / "reports" / "utilization.json"));
  auto tcl = ReadFile((dir / "vivado" / "build.tcl").string(), 1 << 20);
  ASSERT_TRUE(tcl.ok());
  for (const char* want : {"set part xc7z010clg400-1", "xilinx.com:ip:processing_system7",
                           "xilinx.com:ip:axi_dma", "-reference fpgaserve_axis",
                           "dma/M_AXIS_MM2S] [get_bd_intf_pins core/s_axis]", "write_bitstream",
                           "fpgaserve.hwh", "validate_bd_design"}) {
    EXPECT_NE(tcl->find(want), std::string::npos) << want;
  }
}

TEST(AmdFlowTest, FakeVivadoIsRunWithTheScriptAndItsOutputsChecked) {
  if (!HaveYosys()) GTEST_SKIP() << "yosys not installed";
  FlowFixture f("zedboard", "axilite");
  // The fake checks its arguments and the script, then writes what Vivado would.
  WriteScript(f.bin / "vivado",
              "[ \"$1\" = -version ] && { echo 'Vivado v2023.2 (fake)'; exit 0; }\n"
              "[ \"$1 $2 $3 $4 $5 $6\" = '-mode batch -nojournal -nolog -source vivado/build.tcl' ] || "
              "{ echo \"bad args: $*\"; exit 3; }\n"
              "grep -q 'set part xc7z020clg484-1' vivado/build.tcl || { echo 'wrong part'; exit 4; }\n"
              "grep -q -- '-reference fpgaserve_axilite' vivado/build.tcl || exit 5\n"
              "grep -q 'core/s_axi' vivado/build.tcl || exit 6\n"
              "echo 'fake bitstream for the test' > fpgaserve.bit\necho '<hwh/>' > fpgaserve.hwh\n");
  PathGuard path(f.bin.string(), true);
  auto r = RunAmdFlow(f.request);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->bitstream_status, "built");
  EXPECT_EQ(r->bitstream_path, "fpgaserve.bit");
  EXPECT_EQ(r->tool_versions.at("vivado"), "Vivado v2023.2 (fake)");
}

TEST(AmdFlowTest, FailingVivadoShowsItsLastLinesAndTheLog) {
  if (!HaveYosys()) GTEST_SKIP() << "yosys not installed";
  FlowFixture f("pynq-z2", "axis");
  WriteScript(f.bin / "vivado", "echo 'ERROR: [Synth 8-439] module not found'\nexit 1\n");
  PathGuard path(f.bin.string(), true);
  auto r = RunAmdFlow(f.request);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("module not found"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("logs/vivado.log"), std::string::npos);
}

TEST(AmdFlowTest, FakeVivadoThatWritesNothingIsNotSuccess) {
  if (!HaveYosys()) GTEST_SKIP() << "yosys not installed";
  FlowFixture f("zedboard", "axis");
  WriteScript(f.bin / "vivado", "exit 0\n");
  PathGuard path(f.bin.string(), true);
  auto r = RunAmdFlow(f.request);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("wrote no fpgaserve.bit"), std::string::npos);
}

TEST(AmdFlowTest, AlveoPackagesAKernelAndLinksWithVpp) {
  if (!HaveYosys()) GTEST_SKIP() << "yosys not installed";
  FlowFixture f("alveo-u50", "axilite");
  WriteScript(f.bin / "vivado",
              "grep -q package_xo vitis/package_kernel.tcl || exit 4\n"
              "grep -q 'user_managed' vitis/kernel.xml || exit 5\n"
              // XRT sizes the register window only for kernels with an argument, from the range.
              "grep -q '<arg name=\"input_0\".*offset=\"0x100\"' vitis/kernel.xml || exit 6\n"
              "grep -q 'range=\"0x1000\"' vitis/kernel.xml || exit 7\n"
              "echo xo > vitis/fpgaserve.xo\n");
  WriteScript(f.bin / "v++",
              "echo \"$*\" | grep -q -- '--link --target hw --platform xilinx_u50' || exit 3\n"
              "echo 'fake xclbin for the test' > fpgaserve.xclbin\n");
  PathGuard path(f.bin.string(), true);
  auto r = RunAmdFlow(f.request);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->bitstream_status, "built");
  EXPECT_EQ(r->bitstream_path, "fpgaserve.xclbin");
  EXPECT_EQ(r->utilization.source, "yosys synth_xilinx -family xcup");
}

TEST(FlowStagesTest, MissingToolNamesItsPackage) {
  FlowFixture f("icebreaker", "axis");
  PathGuard path(f.bin.string(), false);  // nothing on PATH
  auto r = RunIce40Flow(f.request);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("yosys not found on PATH"), std::string::npos);
  EXPECT_NE(r.status().message().find("Debian package yosys"), std::string::npos);
}

TEST(FlowStagesTest, FailingAndHangingToolsAreReported) {
  FlowFixture f("icebreaker", "axis");
  WriteScript(f.bin / "yosys", "echo 'ERROR: syntax error in rtl/x.v line 3'\nexit 1\n");
  WriteScript(f.bin / "nextpnr-ice40", "exit 0\n");
  WriteScript(f.bin / "icepack", "exit 0\n");
  {
    PathGuard path(f.bin.string(), true);
    auto r = RunIce40Flow(f.request);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.status().message().find("syntax error in rtl/x.v"), std::string::npos);
    EXPECT_NE(r.status().message().find("logs/synth.log"), std::string::npos);
  }
  WriteScript(f.bin / "yosys", "sleep 30\n");
  f.request.stage_timeout = std::chrono::seconds(1);
  PathGuard path(f.bin.string(), true);
  auto r = RunIce40Flow(f.request);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_NE(r.status().message().find("timed out"), std::string::npos) << r.status().message();
}

}  // namespace
}  // namespace fpgaserve::toolchain
