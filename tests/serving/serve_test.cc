// Integration tests of `fpgaserve serve`: the real binary on ephemeral loopback ports, called over
// HTTP (a Beast client) and gRPC (generated C++ stubs, and Python grpcio stubs from Debian's
// grpc_tools), with results checked against the bit-exact emulator.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "core/file_io.h"
#include "serving/http_client.h"
#include "core/subprocess.h"
#include "grpc_service.grpc.pb.h"
#include "numeric/number_format.h"
#include "runtime/board_driver.h"
#include "firmware/bundle.h"

extern char** environ;

namespace fpgaserve {
namespace {

namespace fs = std::filesystem;
namespace beast = boost::beast;
namespace http = beast::http;
using json = nlohmann::json;

// A `fpgaserve serve` child process on ephemeral ports.
class Server {
 public:
  Server(const std::vector<std::string>& args, bool wait_ready = true) {
    ready_file_ = (fs::temp_directory_path() / ("fpgaserve_ready_" + std::to_string(::getpid()) + "_" +
                                                std::to_string(counter_++) + ".json")).string();
    fs::remove(ready_file_);
    std::vector<std::string> argv{FPGASERVE_BINARY, "serve", "--http_port", "0", "--grpc_port", "0",
                                  "--ready_file", ready_file_};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<char*> cargv;
    for (auto& a : argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    log_ = ready_file_ + ".log";
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 2, log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    EXPECT_EQ(posix_spawn(&pid_, cargv[0], &fa, nullptr, cargv.data(), environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    if (!wait_ready) return;
    for (int i = 0; i < 1200 && !fs::exists(ready_file_); ++i) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = 0;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    auto text = ReadFile(ready_file_, 1 << 16);
    EXPECT_TRUE(text.ok()) << "server did not start; log:\n" << Log();
    if (text.ok()) {
      auto j = json::parse(*text);
      http_port = j["http_port"].get<int>();
      grpc_port = j["grpc_port"].get<int>();
    }
  }
  ~Server() { Stop(); fs::remove(ready_file_); fs::remove(log_); }
  int Stop() {
    if (pid_ <= 0) return exit_code_;
    ::kill(pid_, SIGTERM);
    int status = 0;
    for (int i = 0; i < 200; ++i) {
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = 0;
        exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        return exit_code_;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &status, 0);
    pid_ = 0;
    exit_code_ = -9;
    return exit_code_;
  }
  int Wait() {
    int status = 0;
    if (pid_ > 0) ::waitpid(pid_, &status, 0);
    pid_ = 0;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  std::string Log() const {
    auto t = ReadFile(log_, 1 << 20);
    return t.ok() ? *t : "";
  }
  int http_port = 0, grpc_port = 0;

 private:
  static inline int counter_ = 0;
  pid_t pid_ = 0;
  int exit_code_ = 0;
  std::string ready_file_, log_;
};

const std::vector<std::vector<double>> kRows = {
    {3.6216, 8.6661, -2.8073, -0.44699}, {-1.3971, 3.3191, -1.3927, -1.9948},
    {4.5459, 8.1674, -2.4586, -1.4621},  {-2.5419, -0.65804, 2.6842, 1.1952},
    {0.3292, -4.4552, 4.5718, -0.9888},  {-0.40804, 0.54214, -0.52725, 0.6586}};

// The rows as an FP32 client sends them.
std::vector<std::vector<double>> AsFloat32(const std::vector<std::vector<double>>& rows) {
  std::vector<std::vector<double>> out;
  for (const auto& row : rows) {
    out.push_back({});
    for (double x : row) out.back().push_back(static_cast<float>(x));
  }
  return out;
}

class ServeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = fs::temp_directory_path() / ("fpgaserve_serve_test_" + std::to_string(::getpid()));
    fs::create_directories(root_ / "repo");
    bundle_ = (root_ / "repo" / "banknote").string();
    auto r = RunSubprocess({FPGASERVE_BINARY, "compile", std::string(FPGASERVE_SOURCE_DIR) + "/examples/banknote/banknote.onnx",
                            "--board", "sim", "-o", bundle_});
    ASSERT_TRUE(r.ok() && r->exit_code == 0) << (r.ok() ? r->stderr_text : r.status().ToString());
    server_ = new Server({"--model_name", "banknote", "--model_dir", bundle_, "--max_batch_size", "16",
                          "--max_queue_delay_us", "2000", "--max_body_bytes", "1048576"});
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
    std::error_code ec;
    fs::remove_all(root_, ec);
  }
  // What the emulator says for these rows: probabilities as the server converts them.
  static std::vector<float> Expected(const std::vector<std::vector<double>>& rows) {
    auto meta = firmware::ReadBundleMetadata(bundle_);
    auto emu = runtime::OpenBoardDriver("emu", bundle_);
    EXPECT_TRUE(meta.ok() && emu.ok());
    numeric::RawBatch raw{rows.size(), 4, {}};
    for (const auto& r : rows) {
      for (double x : r) raw.values.push_back(numeric::FromDouble(x, numeric::NumberFormat(meta->input_format)).raw);
    }
    auto out = (*emu)->Infer(raw);
    EXPECT_TRUE(out.ok());
    std::vector<float> p;
    for (auto v : out->outputs.values) p.push_back(static_cast<float>(numeric::ToDouble(v, numeric::NumberFormat(meta->output_format))));
    return p;
  }
  static std::string V2Body(const std::vector<std::vector<double>>& rows, const std::string& dtype = "FP32") {
    json data = json::array();
    for (const auto& r : rows) data.push_back(r);
    return json{{"inputs", {{{"name", "input"}, {"shape", {rows.size(), 4}}, {"datatype", dtype}, {"data", data}}}}}.dump();
  }
  static std::vector<float> Probabilities(const json& resp) {
    for (const auto& o : resp["outputs"]) {
      if (o["name"] == "probabilities") return o["data"].get<std::vector<float>>();
    }
    return {};
  }
  int port() const { return server_->http_port; }

  static inline fs::path root_;
  static inline std::string bundle_;
  static inline Server* server_ = nullptr;
};

TEST_F(ServeTest, HealthMetadataAndV1Endpoints) {
  EXPECT_EQ(Http(port(), "GET", "/v2/health/live").Json(), (json{{"live", true}}));
  EXPECT_EQ(Http(port(), "GET", "/v2/health/ready").Json(), (json{{"ready", true}}));
  auto server = Http(port(), "GET", "/v2").Json();
  EXPECT_EQ(server["name"], "fpgaserve");
  EXPECT_NE(std::find(server["extensions"].begin(), server["extensions"].end(), "binary_tensor_data"),
            server["extensions"].end());
  for (const std::string path : {"/v2/models/banknote", "/v2/models/banknote/versions/1"}) {
    auto md = Http(port(), "GET", path);
    ASSERT_EQ(md.status, 200) << md.body;
    auto j = md.Json();
    EXPECT_EQ(j["inputs"][0], (json{{"name", "input"}, {"datatype", "FP32"}, {"shape", {-1, 4}}}));
    EXPECT_EQ(j["outputs"][0]["shape"], (json{-1, 2}));
    EXPECT_EQ(j["outputs"][1]["name"], "class_index");
  }
  EXPECT_EQ(Http(port(), "GET", "/v2/models/banknote/ready").status, 200);
  EXPECT_EQ(Http(port(), "GET", "/v2/models/banknote/config").Json()["input"][0]["dims"], (json{4}));
  EXPECT_EQ(Http(port(), "GET", "/v1/models").Json(), (json{{"models", {"banknote"}}}));
  EXPECT_EQ(Http(port(), "GET", "/v1/models/banknote").Json(), (json{{"name", "banknote"}, {"ready", true}}));
  auto idx = Http(port(), "POST", "/v2/repository/index");
  EXPECT_EQ(idx.Json(), (json{{{"name", "banknote"}, {"version", "1"}, {"state", "READY"}}}));
}

TEST_F(ServeTest, V2AndV1InferMatchTheEmulator) {
  const auto expected = Expected(kRows);
  auto r = Http(port(), "POST", "/v2/models/banknote/infer", V2Body(kRows));
  ASSERT_EQ(r.status, 200) << r.body;
  auto j = r.Json();
  EXPECT_EQ(j["model_name"], "banknote");
  EXPECT_EQ(Probabilities(j), expected);
  EXPECT_GE(j["parameters"]["device_cycles"].get<int>(), 6 + 5);  // latency + one per extra row
  const auto& cls = j["outputs"][1];
  ASSERT_EQ(cls["name"], "class_index");
  for (std::size_t i = 0; i < kRows.size(); ++i) {
    EXPECT_EQ(cls["data"][i].get<int>(), expected[2 * i + 1] > expected[2 * i] ? 1 : 0);
  }
  json inst = kRows;
  auto v1 = Http(port(), "POST", "/v1/models/banknote:predict", json{{"instances", inst}}.dump());
  ASSERT_EQ(v1.status, 200) << v1.body;
  auto pj = v1.Json();
  ASSERT_EQ(pj["predictions"].size(), kRows.size());
  EXPECT_EQ(pj["predictions"][3].get<std::vector<float>>(), (std::vector<float>{expected[6], expected[7]}));
  // Other datatypes convert to the same input: FP64 and INT32 (integers) via JSON.
  EXPECT_EQ(Probabilities(Http(port(), "POST", "/v2/models/banknote/infer", V2Body(kRows, "FP64")).Json()), expected);
  const std::vector<std::vector<double>> ints{{1, 2, -3, 0}, {-4, 5, 6, -7}};
  EXPECT_EQ(Probabilities(Http(port(), "POST", "/v2/models/banknote/infer", V2Body(ints, "INT32")).Json()),
            Expected(ints));
  // Requested outputs: only the class index.
  json body = json::parse(V2Body(kRows));
  body["outputs"] = {{{"name", "class_index"}}};
  auto only = Http(port(), "POST", "/v2/models/banknote/infer", body.dump()).Json();
  ASSERT_EQ(only["outputs"].size(), 1u);
  EXPECT_EQ(only["outputs"][0]["name"], "class_index");
}

TEST_F(ServeTest, BinaryTensorExtension) {
  std::string raw;
  for (const auto& r : kRows) {
    for (double x : r) {
      const float f = static_cast<float>(x);
      raw.append(reinterpret_cast<const char*>(&f), 4);
    }
  }
  json header{{"inputs", {{{"name", "input"}, {"shape", {kRows.size(), 4}}, {"datatype", "FP32"},
                           {"parameters", {{"binary_data_size", raw.size()}}}}}},
              {"outputs", {{{"name", "probabilities"}, {"parameters", {{"binary_data", true}}}}}}};
  const std::string h = header.dump();
  auto r = Http(port(), "POST", "/v2/models/banknote/infer", h + raw,
                {{"Inference-Header-Content-Length", std::to_string(h.size())}});
  ASSERT_EQ(r.status, 200) << r.body;
  const auto n = std::stoul(r.headers.at("Inference-Header-Content-Length"));
  auto j = json::parse(r.body.substr(0, n));
  ASSERT_EQ(j["outputs"][0]["parameters"]["binary_data_size"].get<std::size_t>(), kRows.size() * 2 * 4);
  std::vector<float> got(kRows.size() * 2);
  ASSERT_EQ(r.body.size() - n, got.size() * 4);
  std::memcpy(got.data(), r.body.data() + n, got.size() * 4);
  EXPECT_EQ(got, Expected(AsFloat32(kRows)));
}

TEST_F(ServeTest, ConcurrentCallersGetTheirOwnResultsAndRequestsAreBatched) {
  std::mt19937 rng(2026);
  std::uniform_real_distribution<double> d(-6, 6);
  constexpr int kThreads = 8, kPerThread = 30;
  std::vector<std::vector<std::vector<double>>> inputs(kThreads * kPerThread);
  for (auto& in : inputs) {
    in.resize(1 + rng() % 3);
    for (auto& row : in) row = {d(rng), d(rng), d(rng), d(rng)};
  }
  std::atomic<int> wrong{0}, failed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int k = 0; k < kPerThread; ++k) {
        const auto& in = inputs[t * kPerThread + k];
        auto r = Http(port(), "POST", "/v2/models/banknote/infer", V2Body(in));
        if (r.status != 200) { ++failed; continue; }
        if (Probabilities(r.Json()) != Expected(in)) ++wrong;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failed, 0);
  EXPECT_EQ(wrong, 0);
  // With a 2 ms queue delay, eight concurrent callers share device batches.
  const std::string metrics = Http(port(), "GET", "/metrics").body;
  auto value = [&](const std::string& key) {
    auto at = metrics.find(key);
    EXPECT_NE(at, std::string::npos) << key;
    return at == std::string::npos ? 0.0 : std::stod(metrics.substr(at + key.size()));
  };
  const double batches = value("fpgaserve_batch_rows_count{model_name=\"banknote\"} ");
  const double rows = value("fpgaserve_batch_rows_sum{model_name=\"banknote\"} ");
  EXPECT_GT(rows / batches, 1.5) << "requests were not coalesced: " << rows << " rows in " << batches << " batches";
}

// Without a queue delay an idle model runs a request on the caller's thread; requests arriving
// meanwhile queue for the batcher. Both paths must give every caller its own rows' results.
TEST_F(ServeTest, DefaultNoDelayServerIsCorrectUnderConcurrency) {
  Server s({"--model_name", "banknote", "--model_dir", bundle_, "--driver", "emu"});
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> d(-6, 6);
  std::vector<std::vector<std::vector<double>>> inputs(6 * 40);
  for (auto& in : inputs) {
    in.resize(1 + rng() % 4);
    for (auto& row : in) row = {d(rng), d(rng), d(rng), d(rng)};
  }
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      for (int k = 0; k < 40; ++k) {
        const auto& in = inputs[t * 40 + k];
        auto r = Http(s.http_port, "POST", "/v2/models/banknote/infer", V2Body(in));
        if (r.status != 200 || Probabilities(r.Json()) != Expected(in)) ++wrong;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong, 0);
  EXPECT_EQ(s.Stop(), 0) << s.Log();
}

TEST_F(ServeTest, MetricsPassPromtool) {
  Http(port(), "POST", "/v2/models/banknote/infer", V2Body(kRows));
  auto m = Http(port(), "GET", "/metrics");
  ASSERT_EQ(m.status, 200);
  EXPECT_NE(m.headers["Content-Type"].find("text/plain"), std::string::npos);
  for (const char* name : {"request_predict_seconds_bucket{model_name=\"banknote\"", "request_preprocess_seconds",
                           "request_postprocess_seconds", "fpgaserve_device_cycles_bucket", "fpgaserve_device_seconds",
                           "fpgaserve_queue_seconds", "fpgaserve_driver_seconds", "fpgaserve_request_seconds",
                           "fpgaserve_inference_requests_total{model_name=\"banknote\",outcome=\"success\"}"}) {
    EXPECT_NE(m.body.find(name), std::string::npos) << name;
  }
  SubprocessOptions o;
  o.stdin_data = m.body;
  auto r = RunSubprocess({"promtool", "check", "metrics"}, o);
  ASSERT_TRUE(r.ok()) << r.status().ToString() << " (promtool comes with Debian's prometheus package)";
  EXPECT_EQ(r->exit_code, 0) << r->stdout_text << r->stderr_text;
}

struct BadCase {
  const char* what;
  const char* method;
  std::string target;
  std::string body;
  int status;
  std::map<std::string, std::string> headers = {};
};

TEST_F(ServeTest, BadInputTable) {
  const std::string infer = "/v2/models/banknote/infer";
  const std::string ok_input = R"({"name":"input","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]})";
  const std::string binary_header =
      R"({"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","parameters":{"binary_data_size":16}}]})";
  const std::vector<BadCase> cases = {
      {"malformed JSON", "POST", infer, "{\"inputs\":[", 400},
      {"not an object", "POST", infer, "[1,2]", 400},
      {"empty body", "POST", infer, "", 400},
      {"no inputs", "POST", infer, "{}", 400},
      {"inputs not an array", "POST", infer, R"({"inputs":{}})", 400},
      {"input not an object", "POST", infer, R"({"inputs":[5]})", 400},
      {"missing name", "POST", infer, R"({"inputs":[{"shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]})", 400},
      {"unknown input name", "POST", infer, R"({"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]})", 400},
      {"two inputs", "POST", infer, "{\"inputs\":[" + ok_input + "," + ok_input + "]}", 400},
      {"unknown datatype", "POST", infer, R"({"inputs":[{"name":"input","shape":[1,4],"datatype":"FP128","data":[1,2,3,4]}]})", 400},
      {"BYTES datatype", "POST", infer, R"({"inputs":[{"name":"input","shape":[1,4],"datatype":"BYTES","data":[1,2,3,4]}]})", 400},
      {"wrong feature count", "POST", infer, R"({"inputs":[{"name":"input","shape":[1,3],"datatype":"FP32","data":[1,2,3]}]})", 400},
      {"data/shape mismatch", "POST", infer, R"({"inputs":[{"name":"input","shape":[2,4],"datatype":"FP32","data":[1,2,3,4]}]})", 400},
      {"negative dim", "POST", infer, R"({"inputs":[{"name":"input","shape":[-1,4],"datatype":"FP32","data":[1,2,3,4]}]})", 400},
      {"shape not array", "POST", infer, R"({"inputs":[{"name":"input","shape":4,"datatype":"FP32","data":[1,2,3,4]}]})", 400},
      {"missing shape", "POST", infer, R"({"inputs":[{"name":"input","datatype":"FP32","data":[1,2,3,4]}]})", 400},
      {"missing data", "POST", infer, R"({"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32"}]})", 400},
      {"string in data", "POST", infer, R"({"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[1,"a",3,4]}]})", 400},
      {"null in data", "POST", infer, R"({"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[1,null,3,4]}]})", 400},
      {"empty batch", "POST", infer, R"({"inputs":[{"name":"input","shape":[0,4],"datatype":"FP32","data":[]}]})", 400},
      {"huge shape", "POST", infer, R"({"inputs":[{"name":"input","shape":[100000000000,4],"datatype":"FP32","data":[1]}]})", 413},
      {"too many rows", "POST", infer, R"({"inputs":[{"name":"input","shape":[70000,4],"datatype":"FP32","data":[1]}]})", 400},
      {"unknown requested output", "POST", infer, "{\"inputs\":[" + ok_input + "],\"outputs\":[{\"name\":\"nope\"}]}", 400},
      {"id not a string", "POST", infer, "{\"id\":5,\"inputs\":[" + ok_input + "]}", 400},
      {"binary size past the end", "POST", infer, binary_header + std::string(8, '\0'), 400,
       {{"Inference-Header-Content-Length", std::to_string(binary_header.size())}}},
      {"header length not a number", "POST", infer, "{}", 400, {{"Inference-Header-Content-Length", "x"}}},
      {"header length past the body", "POST", infer, "{}", 400, {{"Inference-Header-Content-Length", "999"}}},
      {"unknown model", "POST", "/v2/models/nope/infer", "{\"inputs\":[" + ok_input + "]}", 404},
      {"unknown version", "POST", "/v2/models/banknote/versions/7/infer", "{\"inputs\":[" + ok_input + "]}", 404},
      {"GET on infer", "GET", infer, "", 405},
      {"POST on metadata", "POST", "/v2/models/banknote", "", 405},
      {"unknown path", "GET", "/v3/anything", "", 404},
      {"unknown V2 path", "GET", "/v2/models/banknote/explain", "", 404},
      {"V1 unknown model", "GET", "/v1/models/nope", "", 404},
      {"V1 bad verb", "POST", "/v1/models/banknote:explain", "{}", 404},
      {"V1 no instances", "POST", "/v1/models/banknote:predict", "{}", 400},
      {"V1 wrong width", "POST", "/v1/models/banknote:predict", R"({"instances":[[1,2,3]]})", 400},
      {"V1 malformed", "POST", "/v1/models/banknote:predict", "{", 400},
      {"load unknown model", "POST", "/v2/repository/models/nope/load", "", 404},
      {"load bad name", "POST", "/v2/repository/models/..%2F/load", "", 400},
      {"body over the limit", "POST", infer, std::string(2u << 20, ' '), 413},
  };
  ASSERT_GE(cases.size(), 30u);
  for (const auto& c : cases) {
    auto r = Http(port(), c.method, c.target, c.body, c.headers);
    EXPECT_EQ(r.status, c.status) << c.what << ": " << r.body;
    if (c.status != 200 && r.status == c.status) {
      auto j = r.Json();
      EXPECT_TRUE(j.is_object() && j.contains("error") && j["error"].is_string()) << c.what << ": " << r.body;
    }
  }
  // The server is still up and correct after all of it.
  EXPECT_EQ(Probabilities(Http(port(), "POST", infer, V2Body(kRows)).Json()), Expected(kRows));
}

std::unique_ptr<inference::GRPCInferenceService::Stub> Stub(int port) {
  return inference::GRPCInferenceService::NewStub(
      grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()));
}

TEST_F(ServeTest, GrpcEndpointsAndErrors) {
  auto stub = Stub(server_->grpc_port);
  {
    grpc::ClientContext ctx;
    inference::ServerLiveResponse r;
    ASSERT_TRUE(stub->ServerLive(&ctx, {}, &r).ok());
    EXPECT_TRUE(r.live());
  }
  {
    grpc::ClientContext ctx;
    inference::ModelMetadataRequest q;
    q.set_name("banknote");
    inference::ModelMetadataResponse r;
    ASSERT_TRUE(stub->ModelMetadata(&ctx, q, &r).ok());
    EXPECT_EQ(r.inputs(0).name(), "input");
    EXPECT_EQ(r.outputs(0).shape(1), 2);
  }
  const auto expected = Expected(kRows);
  for (bool raw : {false, true}) {
    grpc::ClientContext ctx;
    inference::ModelInferRequest q;
    q.set_model_name("banknote");
    auto* in = q.add_inputs();
    in->set_name("input");
    in->set_datatype(raw ? "FP64" : "FP32");
    in->add_shape(static_cast<std::int64_t>(kRows.size()));
    in->add_shape(4);
    std::string bytes;
    for (const auto& row : kRows) {
      for (double x : row) {
        if (raw) bytes.append(reinterpret_cast<const char*>(&x), 8);
        else in->mutable_contents()->add_fp32_contents(static_cast<float>(x));
      }
    }
    if (raw) q.add_raw_input_contents(bytes);
    inference::ModelInferResponse r;
    auto st = stub->ModelInfer(&ctx, q, &r);
    ASSERT_TRUE(st.ok()) << st.error_message();
    ASSERT_EQ(r.outputs_size(), 2);
    std::vector<float> got;
    if (raw) {
      ASSERT_EQ(r.raw_output_contents_size(), 2);
      got.resize(r.raw_output_contents(0).size() / 4);
      std::memcpy(got.data(), r.raw_output_contents(0).data(), got.size() * 4);
      EXPECT_EQ(got, expected);
    } else {
      got.assign(r.outputs(0).contents().fp32_contents().begin(), r.outputs(0).contents().fp32_contents().end());
      EXPECT_EQ(got, Expected(AsFloat32(kRows)));
    }
    EXPECT_GT(r.parameters().at("device_cycles").uint64_param(), 0u);
  }
  auto call = [&](const inference::ModelInferRequest& q) {
    grpc::ClientContext ctx;
    inference::ModelInferResponse r;
    return stub->ModelInfer(&ctx, q, &r).error_code();
  };
  inference::ModelInferRequest unknown;
  unknown.set_model_name("nope");
  EXPECT_EQ(call(unknown), grpc::StatusCode::NOT_FOUND);
  inference::ModelInferRequest bad;
  bad.set_model_name("banknote");
  auto* in = bad.add_inputs();
  in->set_name("input");
  in->set_datatype("FP32");
  in->add_shape(1);
  in->add_shape(4);
  in->mutable_contents()->add_fp32_contents(1);
  EXPECT_EQ(call(bad), grpc::StatusCode::INVALID_ARGUMENT);
  in->set_datatype("FP16");
  EXPECT_EQ(call(bad), grpc::StatusCode::INVALID_ARGUMENT);
  bad.add_raw_input_contents("xx");
  EXPECT_EQ(call(bad), grpc::StatusCode::INVALID_ARGUMENT);
  {
    grpc::ClientContext ctx;
    inference::RepositoryIndexResponse r;
    ASSERT_TRUE(stub->RepositoryIndex(&ctx, {}, &r).ok());
    ASSERT_EQ(r.models_size(), 1);
    EXPECT_EQ(r.models(0).state(), "READY");
  }
}

// The same through gRPC, REST callers mixed in: the no-delay server coalesces whatever queues
// while one caller's thread holds the device, and every gRPC call gets its own rows back. Then
// the server is stopped while calls are still arriving: it exits cleanly (no call is left on a
// completion queue that is gone).
TEST_F(ServeTest, NoDelayGrpcCallersGetTheirOwnResultsAndStopUnderLoadIsClean) {
  Server s({"--model_name", "banknote", "--model_dir", bundle_, "--driver", "emu"});
  std::mt19937 rng(11);
  std::uniform_real_distribution<double> d(-6, 6);
  constexpr int kThreads = 6, kPerThread = 40;
  std::vector<std::vector<std::vector<double>>> inputs(kThreads * kPerThread);
  for (auto& in : inputs) {
    in.resize(1 + rng() % 4);
    for (auto& row : in) row = {d(rng), d(rng), d(rng), d(rng)};
  }
  auto request = [](const std::vector<std::vector<double>>& rows) {
    inference::ModelInferRequest q;
    q.set_model_name("banknote");
    auto* in = q.add_inputs();
    in->set_name("input");
    in->set_datatype("FP64");
    in->add_shape(static_cast<std::int64_t>(rows.size()));
    in->add_shape(4);
    for (const auto& row : rows) {
      for (double x : row) in->mutable_contents()->add_fp64_contents(x);
    }
    return q;
  };
  std::atomic<int> wrong{0}, failed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto stub = Stub(s.grpc_port);
      for (int k = 0; k < kPerThread; ++k) {
        const auto& in = inputs[t * kPerThread + k];
        if (t % 3 == 2) {  // every third caller uses REST
          auto r = Http(s.http_port, "POST", "/v2/models/banknote/infer", V2Body(in, "FP64"));
          if (r.status != 200) ++failed;
          else if (Probabilities(r.Json()) != Expected(in)) ++wrong;
          continue;
        }
        grpc::ClientContext ctx;
        inference::ModelInferResponse r;
        if (!stub->ModelInfer(&ctx, request(in), &r).ok() || r.outputs_size() < 1) {
          ++failed;
          continue;
        }
        const auto& c = r.outputs(0).contents().fp32_contents();
        if (std::vector<float>(c.begin(), c.end()) != Expected(in)) ++wrong;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failed, 0);
  EXPECT_EQ(wrong, 0);

  // Stop while four clients keep calling; their calls may fail (the server goes away) but the
  // server must exit with 0.
  std::atomic<bool> stop{false};
  std::atomic<int> answered{0};
  threads.clear();
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      auto stub = Stub(s.grpc_port);
      while (!stop) {
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
        inference::ModelInferResponse r;
        if (stub->ModelInfer(&ctx, request(inputs[t]), &r).ok()) ++answered;
      }
    });
  }
  for (int i = 0; i < 2000 && answered < 50; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_GE(answered, 50);
  EXPECT_EQ(s.Stop(), 0) << s.Log();
  stop = true;
  for (auto& th : threads) th.join();
}

TEST_F(ServeTest, PythonGrpcioClient) {
  const fs::path out = root_ / "py";
  fs::create_directories(out);
  auto gen = RunSubprocess({"/usr/bin/python3", "-m", "grpc_tools.protoc", "-I",
                            std::string(FPGASERVE_SOURCE_DIR) + "/proto", "--python_out=" + out.string(),
                            "--grpc_python_out=" + out.string(),
                            std::string(FPGASERVE_SOURCE_DIR) + "/proto/grpc_service.proto"});
  ASSERT_TRUE(gen.ok() && gen->exit_code == 0)
      << (gen.ok() ? gen->stderr_text : gen.status().ToString()) << " (Debian package python3-grpc-tools)";
  SubprocessOptions o;
  o.env_set["PYTHONPATH"] = out.string();
  auto r = RunSubprocess({"/usr/bin/python3", std::string(FPGASERVE_SOURCE_DIR) + "/examples/grpc_client.py",
                          "--target", "127.0.0.1:" + std::to_string(server_->grpc_port), "--json"}, o);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->exit_code, 0) << r->stdout_text << r->stderr_text;
  auto j = json::parse(r->stdout_text);
  const auto expected = Expected({{3.6216f, 8.6661f, -2.8073f, -0.44699f}});
  EXPECT_EQ(j["probabilities"][0].get<std::vector<float>>(), expected);
  EXPECT_EQ(j["class_index"][0], expected[1] > expected[0] ? 1 : 0);
}

TEST(ServeLifecycleTest, ReadinessFollowsLoadUnloadAndFailedBundles) {
  const fs::path root = fs::temp_directory_path() / ("fpgaserve_serve_life_" + std::to_string(::getpid()));
  fs::remove_all(root);
  fs::create_directories(root / "repo");
  auto r = RunSubprocess({FPGASERVE_BINARY, "compile", std::string(FPGASERVE_SOURCE_DIR) + "/examples/banknote/banknote.onnx",
                          "--board", "sim", "-o", (root / "good").string()});
  ASSERT_TRUE(r.ok() && r->exit_code == 0);
  fs::copy(root / "good", root / "repo" / "a", fs::copy_options::recursive);
  fs::copy(root / "good", root / "repo" / "b", fs::copy_options::recursive);
  // b's simulator library is damaged: it must load as FAILED, and the server must not be ready.
  ASSERT_TRUE(WriteFileAtomic((root / "repo" / "b" / "sim" / "libfpgaserve_sim.so").string(), "not a library").ok());
  {
    Server s({"--model_dir", (root / "repo").string()});
    EXPECT_EQ(Http(s.http_port, "GET", "/v2/health/live").status, 200);
    EXPECT_EQ(Http(s.http_port, "GET", "/v2/health/ready").status, 503);
    EXPECT_EQ(Http(s.http_port, "GET", "/v2/models/a/ready").status, 200);
    auto b = Http(s.http_port, "GET", "/v2/models/b/ready");
    EXPECT_EQ(b.status, 503);
    auto idx = Http(s.http_port, "POST", "/v2/repository/index").Json();
    ASSERT_EQ(idx.size(), 2u);
    EXPECT_EQ(idx[1]["state"], "FAILED");
    EXPECT_FALSE(idx[1]["reason"].get<std::string>().empty());
    EXPECT_EQ(Http(s.http_port, "POST", "/v2/models/b/infer", "{}").status, 503);
    // Repair b and load it again: now everything is ready.
    fs::remove_all(root / "repo" / "b");
    fs::copy(root / "good", root / "repo" / "b", fs::copy_options::recursive);
    EXPECT_EQ(Http(s.http_port, "POST", "/v2/repository/models/b/load").status, 200);
    EXPECT_EQ(Http(s.http_port, "GET", "/v2/health/ready").status, 200);
    EXPECT_EQ(Http(s.http_port, "GET", "/v2/models/b/ready").status, 200);
    // Unload: the model is no longer ready and infer answers 503.
    EXPECT_EQ(Http(s.http_port, "POST", "/v2/repository/models/a/unload").status, 200);
    EXPECT_EQ(Http(s.http_port, "GET", "/v2/models/a/ready").status, 503);
    EXPECT_EQ(Http(s.http_port, "POST", "/v2/models/a/infer", "{}").status, 503);
    EXPECT_EQ(Http(s.http_port, "GET", "/v1/models").Json(), (json{{"models", {"b"}}}));
    EXPECT_EQ(s.Stop(), 0) << s.Log();
  }
  fs::remove_all(root);
}

TEST(ServeLifecycleTest, BadFlagsAndMissingModelDirExit2WithOneMessage) {
  {
    Server s({"--model_dir", "/nonexistent/fpgaserve", "--some_kserve_flag=1"}, false);
    EXPECT_EQ(s.Wait(), 2);
    const std::string log = s.Log();
    EXPECT_NE(log.find("warning: ignoring unknown argument '--some_kserve_flag=1'"), std::string::npos) << log;
    EXPECT_NE(log.find("/nonexistent/fpgaserve"), std::string::npos) << log;
  }
  {
    Server s({"--model_dir", "/tmp", "--driver", "fpga9000"}, false);
    EXPECT_EQ(s.Wait(), 2);
    EXPECT_NE(s.Log().find("--driver 'fpga9000'"), std::string::npos) << s.Log();
  }
  // The firmware sources of F7 and their companions: each mistake is one message and exit 2.
  struct Case {
    std::vector<std::string> args;
    std::string want;
  };
  const std::vector<Case> cases = {
      {{"--model_dir", "/tmp", "--storage_uri", "file:///tmp/x"}, "give exactly one of --model_dir"},
      {{}, "give exactly one of --model_dir"},
      {{"--model_uri", "/tmp/m.onnx", "--board", "sim"}, "--model_uri needs --build-server"},
      {{"--model_uri", "/tmp/m.onnx", "--build-server", "127.0.0.1:1"}, "--model_uri needs --board"},
      {{"--model_uri", "/nonexistent/m.onnx", "--board", "sim", "--build-server", "127.0.0.1:1"},
       "/nonexistent/m.onnx"},
      {{"--model_dir", "/tmp", "--build-server", "127.0.0.1:1"}, "are for building --model_uri on demand"},
      {{"--model_dir", "/tmp", "--board_kind", "sim"}, "select a board of --board-server"},
      {{"--model_dir", "/tmp", "--board-server", "127.0.0.1:1", "--lease_ttl_ms", "5"}, "--lease_ttl_ms"},
      {{"--storage_uri", "file:///nonexistent/bundle"}, "--storage_uri"},
      {{"--storage_uri", "ftp://host/bundle"}, "--storage_uri"},
  };
  for (const auto& c : cases) {
    Server s(c.args, false);
    EXPECT_EQ(s.Wait(), 2) << ::testing::PrintToString(c.args) << "\n" << s.Log();
    const std::string log = s.Log();
    EXPECT_NE(log.find(c.want), std::string::npos) << log;
    // One error line (a progress line such as "fetching …" may come before it).
    const auto err = log.find("fpgaserve: error: ");
    ASSERT_NE(err, std::string::npos) << log;
    EXPECT_EQ(log.find('\n', err), log.size() - 1) << log;
    EXPECT_EQ(log.find("fpgaserve: error: ", err + 1), std::string::npos) << log;
  }
}

}  // namespace
}  // namespace fpgaserve
