// `fpgaserve compile` and `fpgaserve predict` through the real binary: the banknote acceptance
// (sim and emu write byte-identical --out files, accuracy >= 0.98, latency <= 8, II = 1), bundle
// replacement, content ids, and exit status 2 with one error line for bad input.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "core/file_io.h"
#include "core/subprocess.h"

namespace fpgaserve {
namespace {

namespace fs = std::filesystem;

const std::string kBinary = FPGASERVE_BINARY;
const std::string kModel = std::string(FPGASERVE_SOURCE_DIR) + "/examples/banknote/banknote.onnx";
const std::string kCsv = std::string(FPGASERVE_SHARED_DIR) + "/data/banknote_authentication.csv";

SubprocessResult RunCli(std::vector<std::string> args) {
  args.insert(args.begin(), kBinary);
  SubprocessOptions o;
  o.timeout = std::chrono::minutes(10);
  auto r = RunSubprocess(args, o);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : SubprocessResult{};
}

class CompilePredictTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("fpgaserve_compile_test_" + std::to_string(std::random_device{}()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  void ExpectBadInput(const SubprocessResult& r, const std::string& what) {
    EXPECT_EQ(r.exit_code, 2) << r.stderr_text;
    EXPECT_EQ(r.stderr_text.rfind("fpgaserve: error: ", 0), 0u) << r.stderr_text;
    EXPECT_EQ(std::count(r.stderr_text.begin(), r.stderr_text.end(), '\n'), 1) << r.stderr_text;
    EXPECT_NE(r.stderr_text.find(what), std::string::npos) << r.stderr_text;
    EXPECT_TRUE(r.stdout_text.empty()) << r.stdout_text;
  }

  nlohmann::json Compile(const std::string& out, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"compile", kModel, "--board", "sim", "-o", out, "--json"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto r = RunCli(args);
    EXPECT_EQ(r.exit_code, 0) << r.stderr_text;
    if (r.exit_code != 0) return nullptr;
    return nlohmann::json::parse(r.stdout_text);
  }

  fs::path dir_;
};

TEST_F(CompilePredictTest, BanknoteCompileAndPredictOnBothBoards) {
  const std::string bundle = (dir_ / "banknote").string();
  auto j = Compile(bundle, {"--precision", "fixed<16,6>", "--reuse", "1"});
  ASSERT_FALSE(j.is_null());
  EXPECT_EQ(j["id"].get<std::string>().size(), 64u);
  EXPECT_EQ(j["board"], "sim");
  EXPECT_EQ(j["precision"], "fixed<16,6>");
  EXPECT_EQ(j["reuse"], 1);
  EXPECT_EQ(j["interface"], "stream");
  EXPECT_LE(j["latency_cycles"].get<int>(), 8);
  EXPECT_EQ(j["initiation_interval"], 1);
  EXPECT_EQ(j["n_inputs"], 4);
  EXPECT_EQ(j["n_outputs"], 2);
  EXPECT_EQ(j["predictor"], "fpgaserve");
  EXPECT_EQ(j["flavor"], "stream");
  EXPECT_EQ(j["benchcore"], true);
  EXPECT_EQ(j["inputs"][0]["shape"], nlohmann::json({-1, 4}));
  EXPECT_EQ(j["inputs"][0]["format"], "fixed<16,6>");
  std::set<std::string> paths;
  for (const auto& f : j["files"]) {
    paths.insert(f["path"].get<std::string>());
    auto digest = f["sha256"].get<std::string>();
    EXPECT_EQ(digest.size(), 64u);
  }
  for (const char* p : {"model.json", "precision.json", "rtl/fpgaserve_core.v",
                        "sim/libfpgaserve_sim.so", "sim/harness.cpp", "tb/tb_fpgaserve_core.v"}) {
    EXPECT_EQ(paths.count(p), 1u) << p;
  }
  EXPECT_TRUE(fs::exists(fs::path(bundle) / "metadata.json"));
  const std::string tiny = (dir_ / "tiny.csv").string();
  std::ofstream(tiny) << "a,b,c,d\n1,2,3,4\n";
  ExpectBadInput(RunCli({"predict", bundle, "--data", tiny, "--driver", "fpga9"}),
                 "unknown driver 'fpga9'");
  // A real-board driver on a bundle for another board: one clear error, before any hardware.
  ExpectBadInput(RunCli({"predict", bundle, "--data", tiny, "--driver", "zynq"}),
                 "the zynq driver needs a bundle compiled for a Zynq-7000 board");
  ExpectBadInput(RunCli({"predict", bundle, "--data", kModel}), kModel);

  if (!fs::exists(kCsv)) {
    GTEST_SKIP() << "data set not found: " << kCsv
                 << " (expected ../shared/data/banknote_authentication.csv beside the project)";
  }
  const std::string sim_out = (dir_ / "sim.csv").string();
  const std::string emu_out = (dir_ / "emu.csv").string();
  auto sim = RunCli({"predict", bundle, "--data", kCsv, "--label-column", "class", "--driver",
                     "sim", "--out", sim_out, "--json"});
  ASSERT_EQ(sim.exit_code, 0) << sim.stderr_text;
  auto emu = RunCli({"predict", bundle, "--data", kCsv, "--label-column", "class", "--driver",
                     "emu", "--out", emu_out, "--json"});
  ASSERT_EQ(emu.exit_code, 0) << emu.stderr_text;
  auto sj = nlohmann::json::parse(sim.stdout_text);
  auto ej = nlohmann::json::parse(emu.stdout_text);
  EXPECT_EQ(sj["samples"], 1372);
  EXPECT_GE(sj["accuracy"].get<double>(), 0.98);
  EXPECT_EQ(sj["accuracy"], ej["accuracy"]);
  EXPECT_EQ(sj["latency_cycles"], j["latency_cycles"]);
  // R = 1, II = 1: no inference ever waits, so every measured stamp is the design latency.
  EXPECT_EQ(sj["observed_cycles"]["min"], j["latency_cycles"]);
  EXPECT_EQ(sj["observed_cycles"]["max"], j["latency_cycles"]);
  EXPECT_EQ(sj["initiation_interval"], 1);
  EXPECT_GT(sj["inferences_per_second"].get<double>(), 0);
  EXPECT_EQ(sj["device_cycles"], j["latency_cycles"].get<int>() + 1371);
  EXPECT_EQ(sj["device_cycles"], ej["device_cycles"]);
  auto a = ReadFile(sim_out);
  auto b = ReadFile(emu_out);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(*a, *b) << "sim and emu --out files differ";
  EXPECT_EQ(a->substr(0, a->find('\n')), "probabilities[0],probabilities[1]");
  EXPECT_EQ(std::count(a->begin(), a->end(), '\n'), 1373);
}

TEST_F(CompilePredictTest, RecompileReplacesTheBundleWithTheSameId) {
  const std::string bundle = (dir_ / "b").string();
  auto first = Compile(bundle);
  ASSERT_FALSE(first.is_null());
  EXPECT_EQ(first["precision"], "fixed<16,6>");  // the default
  auto again = Compile(bundle);
  ASSERT_FALSE(again.is_null());
  EXPECT_EQ(again["id"], first["id"]);
  // A compile that died halfway leaves no metadata.json; the next compile may still replace it.
  fs::remove(fs::path(bundle) / "metadata.json");
  auto after_partial = Compile(bundle);
  ASSERT_FALSE(after_partial.is_null());
  EXPECT_EQ(after_partial["id"], first["id"]);
  // The written precision.json, given back as a config file, is the same firmware.
  auto from_file = Compile((dir_ / "c").string(),
                           {"--precision-config", (fs::path(bundle) / "precision.json").string()});
  ASSERT_FALSE(from_file.is_null());
  EXPECT_EQ(from_file["id"], first["id"]);
  auto r2 = Compile((dir_ / "d").string(), {"--reuse", "2"});
  ASSERT_FALSE(r2.is_null());
  EXPECT_NE(r2["id"], first["id"]);
  EXPECT_EQ(r2["reuse"], 2);
}

TEST_F(CompilePredictTest, BadInputExitsWithStatus2) {
  const std::string out = (dir_ / "out").string();
  ExpectBadInput(RunCli({"compile", kModel, "--board", "zynq", "-o", out}), "unknown board 'zynq'");
  ExpectBadInput(RunCli({"compile", kModel, "--board", "sim", "-o", out, "--reuse", "0"}),
                 "reuse factor 0");
  ExpectBadInput(RunCli({"compile", kModel, "--board", "sim", "-o", out, "--reuse", "two"}),
                 "--reuse 'two'");
  ExpectBadInput(RunCli({"compile", kModel, "--board", "sim", "-o", out, "--interface", "pcie"}),
                 "unknown interface 'pcie'");
  ExpectBadInput(RunCli({"compile", kModel, "--board", "sim", "-o", out, "--reuse", "1000"}),
                 "reuse");
  ExpectBadInput(
      RunCli({"compile", kModel, "--board", "sim", "-o", out, "--precision", "fixed<99,2>"}),
      "fixed<99,2>");
  ExpectBadInput(RunCli({"compile", (dir_ / "missing.onnx").string(), "--board", "sim", "-o", out}),
                 "missing.onnx");
  EXPECT_FALSE(fs::exists(out)) << "a failed compile must not create the bundle directory";
  const fs::path precious = dir_ / "precious";
  fs::create_directories(precious);
  std::ofstream(precious / "notes.txt") << "keep me";
  ExpectBadInput(RunCli({"compile", kModel, "--board", "sim", "-o", precious.string()}),
                 "not a firmware bundle");
  EXPECT_TRUE(fs::exists(precious / "notes.txt"));

  ExpectBadInput(RunCli({"predict", precious.string(), "--data", kModel}), "not a firmware bundle");
  const std::string csv = (dir_ / "d.csv").string();
  std::ofstream(csv) << "a,b,c,d\n1,2,3,4\n";
  ExpectBadInput(RunCli({"predict", (dir_ / "nope").string(), "--data", csv}), "nope");
}

}  // namespace
}  // namespace fpgaserve

namespace fpgaserve {
namespace {

// The F4 acceptance: the real open flow (yosys, nextpnr-ice40, icepack) on banknote.
TEST_F(CompilePredictTest, IcebreakerGetsARealBitstreamThatMeetsTheClock) {
  const std::string out = (dir_ / "ice").string();
  auto r = RunCli({"compile", kModel, "--board", "icebreaker", "-o", out, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  auto m = nlohmann::json::parse(r.stdout_text);
  EXPECT_EQ(m["bitstream"]["status"], "built");
  EXPECT_EQ(m["bitstream"]["path"], "bitstream.bin");
  EXPECT_EQ(fs::file_size(fs::path(out) / "bitstream.bin"), 104090u);  // an iCE40UP5K image
  EXPECT_GE(m["timing"]["fmax_mhz"].get<double>(), 12.0);
  EXPECT_EQ(m["resources"]["source"], "nextpnr-ice40");
  EXPECT_LE(m["resources"]["dsp"].get<int>(), 8);
  EXPECT_LE(m["resources"]["lut"].get<int>(), 5280);
  auto util = nlohmann::json::parse(*ReadFile(out + "/reports/utilization.json"));
  EXPECT_EQ(util["available"]["lut"], 5280);
  auto timing = nlohmann::json::parse(*ReadFile(out + "/reports/timing.json"));
  EXPECT_EQ(timing["met"], true);
  for (const char* log : {"synth", "place_route", "pack"}) {
    EXPECT_TRUE(fs::exists(fs::path(out) / "logs" / (std::string(log) + ".log"))) << log;
  }
  bool listed = false;
  for (const auto& f : m["files"]) listed |= f["path"] == "bitstream.bin" && f["role"] == "bitstream";
  EXPECT_TRUE(listed);
  // The bundle still runs on the simulated board, bit-exact with the emulator.
  auto sim = RunCli({"predict", out, "--data", kCsv, "--label-column", "class", "--driver", "sim",
                     "--json"});
  ASSERT_EQ(sim.exit_code, 0) << sim.stderr_text;
  EXPECT_GE(nlohmann::json::parse(sim.stdout_text)["accuracy"].get<double>(), 0.98);
}

TEST_F(CompilePredictTest, AmdBoardsGetEstimatesAndVendorScripts) {
  for (const std::string board : {"ebaz4205", "alveo-u50"}) {
    SCOPED_TRACE(board);
    const std::string out = (dir_ / board).string();
    auto r = RunCli({"compile", kModel, "--board", board, "-o", out, "--json"});
    ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
    auto m = nlohmann::json::parse(r.stdout_text);
    EXPECT_TRUE(fs::exists(fs::path(out) / "reports" / "utilization.json"));
    EXPECT_GT(m["resources"]["lut"].get<int>(), 0);
    if (m["bitstream"]["status"] == "built") continue;  // vendor tools on this machine
    EXPECT_EQ(m["bitstream"]["status"], "needs-vendor-tools");
    const std::string script = board == "ebaz4205" ? "vivado/build.tcl" : "vitis/package_kernel.tcl";
    EXPECT_TRUE(fs::exists(fs::path(out) / script));
    EXPECT_NE(m["bitstream"]["command"].get<std::string>().find(script), std::string::npos);
    EXPECT_EQ(m["flavor"], board == "ebaz4205" ? "axist" : "aximm");
  }
}

TEST_F(CompilePredictTest, DesignsThatCannotFitFailFastWithTheNumbers) {
  const std::string jet = std::string(FPGASERVE_SOURCE_DIR) + "/examples/jet_tagger/jet_tagger.onnx";
  const std::string out = (dir_ / "jet").string();
  ExpectBadInput(RunCli({"compile", jet, "--board", "icebreaker", "--reuse", "1", "-o", out}),
                 "does not fit icebreaker at --reuse 1: needs");
  ExpectBadInput(RunCli({"compile", jet, "--board", "icebreaker", "-o", out}),
                 "with --reuse auto: the smallest design");
  ExpectBadInput(RunCli({"compile", kModel, "--board", "icebreaker", "--reuse", "1", "-o", out}),
                 "try --reuse");
  EXPECT_FALSE(fs::exists(out));
}

TEST_F(CompilePredictTest, BoardsListsTheCatalog) {
  auto r = RunCli({"boards", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  auto all = nlohmann::json::parse(r.stdout_text);
  ASSERT_GE(all.size(), 6u);
  bool ice = false;
  for (const auto& b : all) {
    if (b["id"] == "icebreaker") {
      ice = true;
      EXPECT_EQ(b["resources"]["lut"], 5280);
      EXPECT_EQ(b["toolchain"], "icestorm");
    }
  }
  EXPECT_TRUE(ice);
  auto text = RunCli({"boards"});
  EXPECT_NE(text.stdout_text.find("xcu50-fsvh2104-2-e"), std::string::npos);
}

}  // namespace
}  // namespace fpgaserve
