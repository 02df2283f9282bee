// Runs the real `fpgaserve` binary: exit codes, JSON shapes and one-line errors for bad input.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>

#include <nlohmann/json.hpp>

#include "core/subprocess.h"

namespace fpgaserve {
namespace {

const std::string kBinary = FPGASERVE_BINARY;
const std::string kExample = std::string(FPGASERVE_SOURCE_DIR) + "/examples/banknote/";
const std::string kCsv = std::string(FPGASERVE_SHARED_DIR) + "/data/banknote_authentication.csv";

SubprocessResult RunCli(std::vector<std::string> args) {
  args.insert(args.begin(), kBinary);
  SubprocessOptions o;
  o.timeout = std::chrono::seconds(60);
  auto r = RunSubprocess(args, o);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : SubprocessResult{};
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("fpgaserve_cli_test_" + std::to_string(std::random_device{}()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Write(const std::string& name, const std::string& text) {
    auto p = dir_ / name;
    std::ofstream(p, std::ios::binary) << text;
    return p.string();
  }
  // A bad input must end with exit status 2 and exactly one "fpgaserve: error:" line naming `what`.
  void ExpectBadInput(const SubprocessResult& r, const std::string& what) {
    EXPECT_EQ(r.exit_code, 2) << r.stderr_text;
    EXPECT_EQ(r.stderr_text.rfind("fpgaserve: error: ", 0), 0u) << r.stderr_text;
    EXPECT_EQ(std::count(r.stderr_text.begin(), r.stderr_text.end(), '\n'), 1) << r.stderr_text;
    EXPECT_NE(r.stderr_text.find(what), std::string::npos) << r.stderr_text;
    EXPECT_TRUE(r.stdout_text.empty()) << r.stdout_text;
  }
  std::filesystem::path dir_;
};

TEST_F(CliTest, Version) {
  auto r = RunCli({"--version"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.stdout_text.find("fpgaserve 0."), std::string::npos) << r.stdout_text;
}

TEST_F(CliTest, InspectBanknoteJson) {
  auto r = RunCli({"inspect", kExample + "banknote.onnx", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  auto j = nlohmann::json::parse(r.stdout_text);
  EXPECT_EQ(j["format"], "onnx");
  EXPECT_EQ(j["n_inputs"], 4);
  EXPECT_EQ(j["n_outputs"], 2);
  EXPECT_EQ(j["inputs"][0]["shape"], nlohmann::json({-1, 4}));
  EXPECT_EQ(j["inputs"][0]["datatype"], "FP32");
  EXPECT_EQ(j["outputs"][0]["shape"], nlohmann::json({-1, 2}));
  EXPECT_EQ(j["parameters"], 4 * 16 + 16 + 16 * 2 + 2);
  ASSERT_EQ(j["layers"].size(), 4u);
  EXPECT_EQ(j["layers"][0]["op"], "Dense");
  EXPECT_EQ(j["layers"][1]["op"], "ReLU");
  EXPECT_EQ(j["layers"][3]["op"], "Softmax");
}

TEST_F(CliTest, EvalBanknoteAccuracy) {
  if (!std::filesystem::exists(kCsv)) GTEST_SKIP() << "data set not found: " << kCsv;
  auto r = RunCli({"eval", kExample + "banknote.onnx", "--data", kCsv, "--label-column", "class",
                "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  auto j = nlohmann::json::parse(r.stdout_text);
  EXPECT_EQ(j["samples"], 1372);
  EXPECT_GE(j["float"]["accuracy"].get<double>(), 0.98);
}

TEST_F(CliTest, ConvertToNeuralbondAndBack) {
  const std::string out = (dir_ / "nb.json").string();
  auto r = RunCli({"convert", kExample + "banknote.onnx", "--to", "neuralbond", "-o", out});
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  auto i = RunCli({"inspect", out, "--json"});
  ASSERT_EQ(i.exit_code, 0) << i.stderr_text;
  EXPECT_EQ(nlohmann::json::parse(i.stdout_text)["format"], "neuralbond");
}

TEST_F(CliTest, BadModelFiles) {
  ExpectBadInput(RunCli({"inspect", (dir_ / "missing.onnx").string()}), "missing.onnx: no such file");
  std::string garbage(4096, '\0');
  std::mt19937 rng(42);
  for (auto& c : garbage) c = static_cast<char>(rng());
  garbage[0] = 0x08;  // looks like a protobuf field key, so the ONNX importer gets to reject it
  ExpectBadInput(RunCli({"inspect", Write("garbage.onnx", garbage)}), "garbage.onnx");
  ExpectBadInput(RunCli({"inspect", Write("notes.txt", "hello")}), "unrecognized file content");
  ExpectBadInput(RunCli({"inspect", Write("nb.json", "{\"Nodes\": [")}), "not valid JSON");
  ExpectBadInput(RunCli({"inspect", kExample + "banknote.onnx", "--format", "tflite"}),
                 "expected one of onnx, keras, neuralbond, native");
  std::ifstream in(kExample + "banknote.onnx", std::ios::binary);
  std::string onnx((std::istreambuf_iterator<char>(in)), {});
  ExpectBadInput(RunCli({"inspect", Write("cut.onnx", onnx.substr(0, onnx.size() / 2))}), "cut.onnx");
}

TEST_F(CliTest, BadCsvFiles) {
  const std::string model = kExample + "banknote.onnx";
  auto eval = [&](const std::string& csv, const std::string& label = "class") {
    return RunCli({"eval", model, "--data", csv, "--label-column", label});
  };
  ExpectBadInput(eval(Write("empty.csv", "")), "empty.csv: empty file");
  ExpectBadInput(eval(Write("short.csv", "a,b,c,d,class\n1,2,3,4,0\n1,2,3,0\n")),
                 "short.csv:3: row has 4 cells; expected 5");
  ExpectBadInput(eval(Write("text.csv", "a,b,c,d,class\n1,2,x,4,0\n")),
                 "text.csv:2: column 'c': 'x' is not a finite number");
  ExpectBadInput(eval(Write("three.csv", "a,b,c,class\n1,2,3,0\n")),
                 "3 feature columns (a, b, c)");
  ExpectBadInput(eval(Write("ok.csv", "a,b,c,d,class\n1,2,3,4,0\n"), "label"),
                 "no column named 'label'");
  ExpectBadInput(eval(Write("labels.csv", "a,b,c,d,class\n1,2,3,4,7\n")),
                 "label 7 but the model has 2 classes");
}

TEST_F(CliTest, EvalQuantizedBanknote) {
  if (!std::filesystem::exists(kCsv)) GTEST_SKIP() << "data set not found: " << kCsv;
  auto eval = [&](std::vector<std::string> extra) {
    std::vector<std::string> args{"eval", kExample + "banknote.onnx", "--data", kCsv,
                                  "--label-column", "class", "--json"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto r = RunCli(args);
    EXPECT_EQ(r.exit_code, 0) << r.stderr_text;
    return nlohmann::json::parse(r.stdout_text.empty() ? "{}" : r.stdout_text);
  };
  const double float_acc = eval({})["float"]["accuracy"];
  for (const char* spec : {"fixed<16,6>", "float16", "auto"}) {
    auto j = eval({"--precision", spec});
    const auto& q = j["quantized"];
    EXPECT_NEAR(q["accuracy"].get<double>(), float_acc, 0.005) << spec;
    EXPECT_GE(q["argmax_agreement"].get<double>(), 0.99) << spec;
    EXPECT_EQ(q["precision"]["spec"], spec);
    EXPECT_EQ(q["precision"]["layers"].size(), 4u) << spec;
  }
  auto auto_j = eval({"--precision", "auto"});
  EXPECT_EQ(auto_j["quantized"]["precision"]["input"], "fixed<16,6,TRN,SAT>");
  auto f32 = eval({"--precision", "float32"});
  EXPECT_LE(f32["quantized"]["max_abs_error"].get<double>(), 1e-6);
  EXPECT_TRUE(f32["quantized"]["overflows"].empty());
  auto narrow = eval({"--precision", "fixed<6,2>"});
  EXPECT_GT(narrow["quantized"]["overflows"]["input"].get<int>(), 0);
}

TEST_F(CliTest, EvalBadPrecision) {
  const std::string csv = Write("d.csv", "a,b,c,d,class\n1,2,3,4,0\n");
  auto eval = [&](std::vector<std::string> extra) {
    std::vector<std::string> args{"eval", kExample + "banknote.onnx", "--data", csv, "--label-column", "class"};
    args.insert(args.end(), extra.begin(), extra.end());
    return RunCli(args);
  };
  ExpectBadInput(eval({"--precision", "fixed<0,3>"}), "fixed<0,3>: width 0 out of range");
  ExpectBadInput(eval({"--precision", "fixed<70,3>"}), "fixed<70,3>");
  ExpectBadInput(eval({"--precision", "float<1,0>"}), "float<1,0>");
  ExpectBadInput(eval({"--precision", "fixed<16,6,FOO>"}), "FOO");
  ExpectBadInput(eval({"--precision-config", Write("p.yaml", "layers:\n  nope:\n    weight: fixed<8,3>\n")}),
                 "no layer named 'nope'");
  ExpectBadInput(eval({"--precision-config", (dir_ / "missing.yaml").string()}), "missing.yaml");
  auto both = eval({"--precision", "float16", "--precision-config", Write("q.yaml", "precision: float16\n")});
  EXPECT_EQ(both.exit_code, 2);
}

TEST_F(CliTest, BoardServerAndBoardListBadInput) {
  const std::string cache = (dir_ / "cache").string();
  ExpectBadInput(RunCli({"board-server", "--boards", "sim:2,fpga:1", "--cache", cache}), "unknown board kind 'fpga'");
  ExpectBadInput(RunCli({"board-server", "--boards", "sim:0", "--cache", cache}), "the count must be 1..64");
  ExpectBadInput(RunCli({"board-server", "--boards", "ice40:2", "--cache", cache}), "one ice40 board per board server");
  ExpectBadInput(RunCli({"board-server", "--boards", "sim", "--cache", cache, "--token-file",
                         (dir_ / "missing-token").string()}),
                 "missing-token");
  ExpectBadInput(RunCli({"board-server", "--boards", "sim", "--cache", cache, "--listen", "127.0.0.1:1",
                         "--lease-ttl-ms", "5"}),
                 "--lease-ttl");
  // Nobody listens on port 1 of loopback: one error naming the server, not a hang.
  auto r = RunCli({"board", "list", "--server", "127.0.0.1:1"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(r.stderr_text.rfind("fpgaserve: error: ", 0), 0u) << r.stderr_text;
  EXPECT_NE(r.stderr_text.find("board server 127.0.0.1:1"), std::string::npos) << r.stderr_text;
  EXPECT_TRUE(r.stdout_text.empty()) << r.stdout_text;
}

TEST_F(CliTest, UsageErrors) {
  auto r = RunCli({"eval", kExample + "banknote.onnx"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.stderr_text.find("--data"), std::string::npos) << r.stderr_text;
  r = RunCli({});
  EXPECT_EQ(r.exit_code, 2);
}

}  // namespace
}  // namespace fpgaserve
