// The paper's two use cases end to end (F7), every part a real process on ephemeral loopback
// ports: s3rver (the object store), `fpgaserve build-server`, `fpgaserve board-server` and
// `fpgaserve serve` predictors. On demand: a predictor given only the banknote ONNX model submits
// its build, follows it, leases a board and answers V2 infer from raw banknote features. Pre-built:
// a second predictor given the build's store URI shares the same sim board. Then the board server
// is killed (-9) and restarted: the predictors become unready and recover. A model whose build
// fails makes its predictor report the build's error.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "core/file_io.h"
#include "core/subprocess.h"
#include "firmware/bundle.h"
#include "numeric/number_format.h"
#include "runtime/board_driver.h"
#include "serving/http_client.h"
#include "store/test_servers.h"

namespace fpgaserve {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

const std::string kBanknote = FPGASERVE_SOURCE_DIR "/examples/banknote/banknote.onnx";
const std::string kData = FPGASERVE_SHARED_DIR "/data/banknote_authentication.csv";

// A fpgaserve server as a child in its own process group (testing::SpawnGroup); `ready` is the
// JSON file it writes once listening. Stopped with SIGTERM (then SIGKILL) when destroyed.
class Child {
 public:
  Child(std::vector<std::string> args, const fs::path& ready, const fs::path& log,
        std::vector<std::string> env = testing::CurrentEnvironment())
      : args_(std::move(args)), ready_(ready), log_(log), env_(std::move(env)) {
    Start();
  }
  ~Child() { Stop(); }

  void Start() {
    fs::remove(ready_);
    std::vector<std::string> argv{FPGASERVE_BINARY};
    argv.insert(argv.end(), args_.begin(), args_.end());
    pid_ = testing::SpawnGroup(argv, log_.string(), env_);
    for (int i = 0; i < 600 && !fs::exists(ready_); ++i) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = 0;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    auto text = ReadFile(ready_.string(), 1 << 16);
    ASSERT_TRUE(text.ok()) << "did not start: " << args_[0] << "\n" << Log();
    info = json::parse(*text);
  }

  void Stop() {
    if (pid_ <= 0) return;
    ::kill(-pid_, SIGTERM);
    for (int i = 0; i < 100; ++i) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = 0;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    testing::KillGroup(pid_);
  }

  void KillNine() { testing::KillGroup(pid_); }

  std::string Log() const {
    auto t = ReadFile(log_.string(), 1 << 22);
    return t.ok() ? *t : "";
  }
  json info;

 private:
  std::vector<std::string> args_;
  fs::path ready_, log_;
  std::vector<std::string> env_;
  pid_t pid_ = 0;
};

std::vector<std::string> WithS3Env(const std::string& endpoint) {
  auto env = testing::CurrentEnvironment();
  for (const char* kv : {"AWS_ACCESS_KEY_ID=S3RVER", "AWS_SECRET_ACCESS_KEY=S3RVER", "AWS_DEFAULT_REGION=us-east-1",
                         "S3_USE_HTTPS=0"}) {
    env.emplace_back(kv);
  }
  env.push_back("AWS_ENDPOINT_URL=" + endpoint);
  return env;
}

// The first `n` rows of the banknote data set: features and labels.
void BanknoteRows(std::size_t n, std::vector<std::vector<double>>* x, std::vector<int>* y) {
  std::ifstream in(kData);
  std::string line;
  std::getline(in, line);  // header
  while (x->size() < n && std::getline(in, line)) {
    std::stringstream ss(line);
    std::string cell;
    std::vector<double> row;
    while (std::getline(ss, cell, ',')) row.push_back(std::stod(cell));
    ASSERT_EQ(row.size(), 5u) << line;
    y->push_back(static_cast<int>(row[4]));
    row.pop_back();
    x->push_back(row);
  }
}

std::string V2Body(const std::vector<std::vector<double>>& rows) {
  json data = json::array();
  for (const auto& r : rows) {
    for (double v : r) data.push_back(v);
  }
  return json{{"inputs", {{{"name", "input"}, {"datatype", "FP32"}, {"shape", {rows.size(), 4}}, {"data", data}}}}}
      .dump();
}

// Polls until GET `target` answers `status` (or the limit passes); returns the last status.
int WaitForStatus(int port, const std::string& target, int status, std::chrono::seconds limit) {
  const auto end = Clock::now() + limit;
  int got = 0;
  while (Clock::now() < end) {
    got = Http(port, "GET", target).status;
    if (got == status) return got;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return got;
}

json BoardList(const std::string& address) {
  SubprocessOptions o;
  o.timeout = std::chrono::seconds(30);
  auto r = RunSubprocess({FPGASERVE_BINARY, "board", "list", "--server", address, "--json"}, o);
  if (!r.ok() || !r->success()) return json();
  return json::parse(r->stdout_text, nullptr, false);
}

json BoardById(const json& list, const std::string& id) {
  if (!list.is_object()) return json();
  for (const auto& b : list["boards"]) {
    if (b["id"] == id) return b;
  }
  return json();
}

// What the emulator computes for the rows on the bundle in `dir`: the predictor's quantization
// of the FP32 inputs, then the bit-exact emulator.
std::vector<float> EmulatorOutputs(const std::string& dir, const std::vector<std::vector<double>>& rows) {
  auto meta = firmware::ReadBundleMetadata(dir);
  EXPECT_TRUE(meta.ok()) << meta.status().ToString();
  if (!meta.ok()) return {};
  auto emu = runtime::OpenBoardDriver("emu", dir);
  EXPECT_TRUE(emu.ok()) << emu.status().ToString();
  if (!emu.ok()) return {};
  numeric::RawBatch raw{rows.size(), 4, {}};
  for (const auto& r : rows) {
    for (double v : r) raw.values.push_back(numeric::FromDouble(static_cast<float>(v), meta->input_format).raw);
  }
  auto out = (*emu)->Infer(raw);
  EXPECT_TRUE(out.ok()) << out.status().ToString();
  std::vector<float> f;
  if (!out.ok()) return f;
  for (auto v : out->outputs.values) f.push_back(static_cast<float>(numeric::ToDouble(v, meta->output_format)));
  return f;
}

TEST(DistributedTest, OnDemandThenPrebuiltShareABoardSurviveABoardServerRestartAndReportAFailedBuild) {
  if (!fs::exists(testing::S3rverPath())) GTEST_SKIP() << "s3rver not installed (scripts/install-s3rver.sh)";
  testing::TempDir tmp;
  const fs::path d = tmp.path();
  testing::S3rver s3({"firmware"});
  ASSERT_NE(s3.port(), 0) << s3.Log();
  const auto env = WithS3Env(s3.endpoint());
  const std::string store = "s3://firmware/builds";

  Child build({"build-server", "--listen", "127.0.0.1:0", "--store", store, "--db", (d / "jobs.db").string(),
               "--ready-file", (d / "build.json").string()},
              d / "build.json", d / "build.log", env);
  const std::string build_addr = "127.0.0.1:" + std::to_string(build.info["port"].get<int>());
  const std::vector<std::string> board_args{"board-server", "--boards", "sim:1,emu:1", "--store", store,
                                            "--cache", (d / "board-cache").string(), "--ready-file",
                                            (d / "board.json").string(), "--lease-ttl-ms", "1500"};
  auto board_argv = board_args;
  board_argv.insert(board_argv.begin() + 1, {"--listen", "127.0.0.1:0"});
  auto board = std::make_unique<Child>(board_argv, d / "board.json", d / "board.log", env);
  const int board_port = board->info["port"].get<int>();
  const std::string board_addr = "127.0.0.1:" + std::to_string(board_port);

  // 1. On demand: the predictor gets the model file, a board id and the two servers.
  Child a({"serve", "--model_name", "banknote", "--model_uri", kBanknote, "--board", "sim", "--build-server",
           build_addr, "--board-server", board_addr, "--cache_dir", (d / "predictor-cache").string(),
           "--lease_ttl_ms", "1500", "--http_port", "0", "--grpc_port", "0", "--ready_file", (d / "a.json").string()},
          d / "a.json", d / "a.log", env);
  const int a_http = a.info["http_port"].get<int>();
  EXPECT_EQ(a.info["ready"], false);
  EXPECT_EQ(Http(a_http, "GET", "/v2/health/live").status, 200);
  EXPECT_EQ(Http(a_http, "GET", "/v2/health/ready").status, 503);  // the build takes seconds
  ASSERT_EQ(WaitForStatus(a_http, "/v2/health/ready", 200, std::chrono::seconds(300)), 200)
      << a.Log() << "\n--- build server\n" << build.Log() << "\n--- board server\n" << board->Log();
  const std::string alog = a.Log();
  EXPECT_NE(alog.find("SUCCEEDED"), std::string::npos) << alog;  // the build's progress in the log
  EXPECT_NE(alog.find("COMPILING"), std::string::npos) << alog;
  EXPECT_NE(alog.find("lease "), std::string::npos) << alog;

  std::vector<std::vector<double>> x;
  std::vector<int> y;
  BanknoteRows(64, &x, &y);
  auto r = Http(a_http, "POST", "/v2/models/banknote/infer", V2Body(x));
  ASSERT_EQ(r.status, 200) << r.body;
  const json out = r.Json();
  // The firmware the predictor fetched (one directory in its cache): the emulator's answer on it.
  std::string bundle;
  for (const auto& e : fs::directory_iterator(d / "predictor-cache")) {
    if (e.path().filename().string()[0] != '.') bundle = e.path().string();
  }
  ASSERT_FALSE(bundle.empty());
  const auto expected = EmulatorOutputs(bundle, x);
  ASSERT_EQ(out["outputs"][0]["data"].size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) EXPECT_EQ(out["outputs"][0]["data"][i].get<float>(), expected[i]) << i;
  std::size_t correct = 0;
  for (std::size_t i = 0; i < y.size(); ++i) correct += out["outputs"][1]["data"][i].get<int>() == y[i];
  EXPECT_GE(correct, 62u);  // the model is ~99% accurate
  // Timing through every layer: device cycles, the board server, the network.
  const json& p = out["parameters"];
  EXPECT_GT(p["device_cycles"].get<std::uint64_t>(), 0u);
  EXPECT_GT(p["board_server_seconds"].get<double>(), 0.0);
  EXPECT_GE(p["network_seconds"].get<double>(), 0.0);
  EXPECT_GE(p["driver_seconds"].get<double>(), p["board_server_seconds"].get<double>());
  auto metrics = Http(a_http, "GET", "/metrics");
  EXPECT_NE(metrics.body.find("fpgaserve_board_server_seconds_count{model_name=\"banknote\"}"), std::string::npos);
  EXPECT_NE(metrics.body.find("fpgaserve_network_seconds_count{model_name=\"banknote\"}"), std::string::npos);

  json sim = BoardById(BoardList(board_addr), "sim-0");
  ASSERT_TRUE(sim.is_object());
  EXPECT_EQ(sim["lease_count"], 1);
  EXPECT_EQ(sim["loads"], 1);
  EXPECT_EQ(sim["state"], "ready");
  ASSERT_EQ(sim["clients"].size(), 1u);
  EXPECT_NE(sim["clients"][0].get<std::string>().find("predictor banknote"), std::string::npos);

  // 2. Pre-built: a second predictor given the build's URI in the store shares the board.
  SubprocessOptions so;
  so.timeout = std::chrono::seconds(30);
  auto list = RunSubprocess({FPGASERVE_BINARY, "build", "list", "--server", build_addr, "--json"}, so);
  ASSERT_TRUE(list.ok() && list->success());
  const json builds = json::parse(list->stdout_text);
  ASSERT_EQ(builds["builds"].size(), 1u) << builds.dump();
  const std::string id = builds["builds"][0]["build_id"];
  Child b({"serve", "--model_name", "banknote", "--storage_uri", store + "/" + id, "--board-server", board_addr,
           "--cache_dir", (d / "b-cache").string(), "--lease_ttl_ms", "1500", "--http_port", "0", "--grpc_port", "0",
           "--ready_file", (d / "b.json").string()},
          d / "b.json", d / "b.log", env);
  const int b_http = b.info["http_port"].get<int>();
  EXPECT_EQ(b.info["ready"], true) << b.Log();
  auto rb = Http(b_http, "POST", "/v2/models/banknote/infer", V2Body(x));
  ASSERT_EQ(rb.status, 200) << rb.body;
  EXPECT_EQ(rb.Json()["outputs"], out["outputs"]);
  sim = BoardById(BoardList(board_addr), "sim-0");
  EXPECT_EQ(sim["lease_count"], 2) << sim.dump();
  EXPECT_EQ(sim["loads"], 1) << sim.dump();  // one load, two leases

  // 3. The board server dies: both predictors become unready, then recover when it is back.
  board->KillNine();
  EXPECT_EQ(WaitForStatus(a_http, "/v2/health/ready", 503, std::chrono::seconds(10)), 503) << a.Log();
  EXPECT_EQ(WaitForStatus(b_http, "/v2/health/ready", 503, std::chrono::seconds(10)), 503) << b.Log();
  auto during = Http(a_http, "POST", "/v2/models/banknote/infer", V2Body({x[0]}));
  EXPECT_EQ(during.status, 503) << during.body;
  auto restart_argv = board_args;
  restart_argv.insert(restart_argv.begin() + 1, {"--listen", board_addr});
  board = std::make_unique<Child>(restart_argv, d / "board.json", d / "board2.log", env);
  EXPECT_EQ(WaitForStatus(a_http, "/v2/health/ready", 200, std::chrono::seconds(30)), 200) << a.Log();
  EXPECT_EQ(WaitForStatus(b_http, "/v2/health/ready", 200, std::chrono::seconds(30)), 200) << b.Log();
  auto after = Http(a_http, "POST", "/v2/models/banknote/infer", V2Body(x));
  ASSERT_EQ(after.status, 200) << after.body;
  EXPECT_EQ(after.Json()["outputs"], out["outputs"]);
  sim = BoardById(BoardList(board_addr), "sim-0");
  EXPECT_EQ(sim["lease_count"], 2) << sim.dump();
  EXPECT_EQ(sim["loads"], 1) << sim.dump();

  // 4. A model whose build fails: the predictor stays live, unready, and reports the build's error.
  ASSERT_TRUE(WriteFileAtomic((d / "broken.onnx").string(), "this is not an ONNX model").ok());
  Child c({"serve", "--model_name", "broken", "--model_uri", (d / "broken.onnx").string(), "--board", "sim",
           "--build-server", build_addr, "--board-server", board_addr, "--cache_dir", (d / "c-cache").string(),
           "--http_port", "0", "--grpc_port", "0", "--ready_file", (d / "c.json").string()},
          d / "c.json", d / "c.log", env);
  const int c_http = c.info["http_port"].get<int>();
  std::string reason;
  for (int i = 0; i < 300 && reason.find("broken.onnx") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    reason = Http(c_http, "GET", "/v2/models/broken").body;
  }
  EXPECT_EQ(Http(c_http, "GET", "/v2/health/ready").status, 503);
  EXPECT_EQ(Http(c_http, "GET", "/v2/models/broken/ready").status, 503);
  EXPECT_NE(reason.find("not loaded"), std::string::npos) << reason;
  EXPECT_NE(c.Log().find("FAILED"), std::string::npos) << c.Log();
  EXPECT_NE(reason.find("broken.onnx"), std::string::npos) << reason << "\n" << c.Log();

  // 5. A third firmware (another precision) for a sim board while sim-0 is leased by A and B:
  // RESOURCE_EXHAUSTED naming sim-0's holders; the predictor waits, unready, and gets the board
  // (reprogrammed) once A and B are gone.
  Child e({"serve", "--model_name", "wide", "--model_uri", kBanknote, "--board", "sim", "--precision", "fixed<18,8>",
           "--build-server", build_addr, "--board-server", board_addr, "--board_kind", "sim", "--cache_dir",
           (d / "e-cache").string(), "--http_port", "0", "--grpc_port", "0", "--ready_file", (d / "e.json").string()},
          d / "e.json", d / "e.log", env);
  const int e_http = e.info["http_port"].get<int>();
  std::string elog;
  for (int i = 0; i < 3000 && elog.find("waiting for a board") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    elog = e.Log();
  }
  EXPECT_NE(elog.find("RESOURCE_EXHAUSTED"), std::string::npos) << elog;
  EXPECT_NE(elog.find("sim-0 (ready, firmware"), std::string::npos) << elog;
  EXPECT_NE(elog.find("predictor banknote"), std::string::npos) << elog;
  EXPECT_EQ(Http(e_http, "GET", "/v2/health/ready").status, 503);
  b.Stop();
  a.Stop();
  ASSERT_EQ(WaitForStatus(e_http, "/v2/health/ready", 200, std::chrono::seconds(30)), 200) << e.Log();
  auto re = Http(e_http, "POST", "/v2/models/wide/infer", V2Body(x));
  ASSERT_EQ(re.status, 200) << re.body;
  std::string wide_bundle;
  for (const auto& entry : fs::directory_iterator(d / "e-cache")) {
    if (entry.path().filename().string()[0] != '.') wide_bundle = entry.path().string();
  }
  const auto wide_expected = EmulatorOutputs(wide_bundle, x);
  ASSERT_EQ(re.Json()["outputs"][0]["data"].size(), wide_expected.size());
  for (std::size_t i = 0; i < wide_expected.size(); ++i) {
    EXPECT_EQ(re.Json()["outputs"][0]["data"][i].get<float>(), wide_expected[i]) << i;
  }
  sim = BoardById(BoardList(board_addr), "sim-0");
  EXPECT_EQ(sim["lease_count"], 1) << sim.dump();
  EXPECT_EQ(sim["loads"], 2) << sim.dump();  // reprogrammed only after A's and B's leases ended
}

}  // namespace
}  // namespace fpgaserve
