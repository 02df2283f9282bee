// The board server in process (BoardServer::Start on 127.0.0.1:0) and its client-side driver
// (OpenRemoteBoard): board specs, sharing one loaded board between leases, RESOURCE_EXHAUSTED when
// every board is leased, concurrent clients against a board being reprogrammed next door, lease
// expiry, bad requests, builds from a store, bearer tokens, WatchBoards, and a predictor's remote
// board surviving a server restart. Every answer is checked against the emu driver run locally on
// the same bundle. Boards are `emu` (hand-built adder bundles, no Verilator) except one `sim`
// board running the banknote example compiled with the project's compiler.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <limits>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <thread>

#include "board_service.grpc.pb.h"
#include "core/file_io.h"
#include "core/sha256.h"
#include "firmware/bundle.h"
#include "firmware/compiler.h"
#include "importers/import.h"
#include "numeric/number_format.h"
#include "runtime/adder_bundle.h"
#include "runtime/board_driver.h"
#include "services/board/board_server.h"
#include "services/board/remote_driver.h"

namespace fpgaserve::boardsrv {
namespace {

namespace fs = std::filesystem;
namespace pb = ::fpgaserve::v1;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

const std::string kBanknote = std::string(FPGASERVE_SOURCE_DIR) + "/examples/banknote/banknote.onnx";

// ---------------------------------------------------------------------------------------------
// Fixtures: temp dirs, bundles, the local emu reference.

struct TempDir {
  fs::path path;
  TempDir() {
    static std::atomic<int> counter{0};
    path = fs::temp_directory_path() /
           ("fpgaserve_board_server_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

struct Firmware {
  std::string dir;  // the bundle directory
  std::string uri;  // file://<dir>
  std::string id;   // sha256 of metadata.json: the server's firmware id
  firmware::BundleMetadata meta;
};

Firmware Describe(const std::string& dir) {
  Firmware fw;
  fw.dir = dir;
  fw.uri = "file://" + dir;
  auto text = ReadFile(dir + "/" + firmware::kMetadataFile);
  EXPECT_TRUE(text.ok()) << text.status().ToString();
  if (text.ok()) fw.id = Sha256Hex(*text);
  auto meta = firmware::ReadBundleMetadata(dir);
  EXPECT_TRUE(meta.ok()) << meta.status().ToString();
  if (meta.ok()) fw.meta = *meta;
  return fw;
}

// A bundle only the emu driver can run: the adder model and its precision, no simulator library.
// `tag` makes the design id (and so the firmware id) differ between bundles of one shape.
Firmware MakeEmuFirmware(const std::string& dir, int n_in, int n_out, const std::string& tag) {
  EXPECT_TRUE(runtime::testing::WriteAdderModel(dir, n_in, n_out).ok());
  firmware::BundleMetadata m = runtime::testing::AdderMetadata("board server test " + tag, "sim", n_in, n_out);
  m.bitstream = {"needs-vendor-tools", "", "verilator"};
  m.clock_mhz = 100;
  auto files = firmware::ListBundleFiles(dir);
  EXPECT_TRUE(files.ok()) << files.status().ToString();
  if (files.ok()) m.files = *files;
  EXPECT_TRUE(WriteFileAtomic(dir + "/" + firmware::kMetadataFile, firmware::MetadataToJson(m)).ok());
  return Describe(dir);
}

// The banknote example compiled for the sim board (Verilator; the build cache makes reruns fast).
Firmware MakeSimFirmware(const std::string& dir) {
  auto graph = importers::ImportModel(kBanknote);
  EXPECT_TRUE(graph.ok()) << graph.status().ToString();
  if (!graph.ok()) return {};
  firmware::CompileOptions o;
  o.board = "sim";
  o.precision.spec = "fixed<16,6>";
  o.reuse = 1;
  o.testbench_vectors = 0;
  auto compiled = firmware::CompileFirmware(*graph, dir, o);
  EXPECT_TRUE(compiled.ok()) << compiled.status().ToString();
  if (!compiled.ok()) return {};
  return Describe(dir);
}

// The emu driver on the source bundle: what every board must answer.
class Reference {
 public:
  explicit Reference(const Firmware& fw) : fw_(fw) {
    auto d = runtime::OpenBoardDriver("emu", fw.dir);
    EXPECT_TRUE(d.ok()) << d.status().ToString();
    if (d.ok()) emu_ = std::move(d).value();
  }
  runtime::BatchResult Run(const numeric::RawBatch& raw) {
    std::lock_guard lock(mu_);
    auto r = emu_->Infer(raw);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : runtime::BatchResult{};
  }
  const Firmware& fw() const { return fw_; }

 private:
  const Firmware& fw_;
  std::mutex mu_;
  std::unique_ptr<runtime::BoardDriver> emu_;
};

// One request's input: the tensor sent and the raw batch the server must run for it.
struct Batch {
  pb::BoardTensor tensor;
  numeric::RawBatch raw;
  std::uint64_t overflows = 0;
};

// `rows` random rows as `dtype` (RAW, FP32 or FP64). FP values are values of the input format
// (exact in float for the 16-bit formats used here), so that their quantization is exact whatever
// the rounding; rounding and saturation have their own test.
Batch RandomBatch(const Firmware& fw, std::size_t rows, const std::string& dtype, std::mt19937& rng) {
  const auto n = static_cast<std::size_t>(fw.meta.n_inputs);
  const auto& fmt = fw.meta.input_format;
  Batch b;
  b.raw = {rows, n, {}};
  b.tensor.set_datatype(dtype);
  b.tensor.add_shape(static_cast<std::int64_t>(rows));
  b.tensor.add_shape(static_cast<std::int64_t>(n));
  std::uniform_int_distribution<std::int64_t> raw_dist(fmt.min_raw(), fmt.max_raw());
  for (std::size_t k = 0; k < rows * n; ++k) {
    const auto v = raw_dist(rng);
    if (dtype == "RAW") {
      b.tensor.add_int64_contents(v);
      b.raw.values.push_back(v);
    } else {
      double x = numeric::ToDouble(v, fmt);
      if (dtype == "FP32") {
        const float f = static_cast<float>(x);
        b.tensor.add_fp32_contents(f);
        x = f;
      } else {
        b.tensor.add_fp64_contents(x);
      }
      const auto q = numeric::FromDouble(x, fmt);
      b.raw.values.push_back(q.raw);
      b.overflows += q.overflowed ? 1 : 0;
    }
  }
  return b;
}

// Empty when the response is what the emu driver computes for the batch.
std::string CheckAnswer(const pb::BoardInferResponse& resp, const Batch& b, Reference& ref) {
  const runtime::BatchResult want = ref.Run(b.raw);
  const auto& o = resp.output();
  const auto& fmt = ref.fw().meta.output_format;
  if (o.datatype() != "RAW") return "output datatype " + o.datatype();
  if (o.shape_size() != 2 || o.shape(0) != static_cast<std::int64_t>(want.outputs.rows) ||
      o.shape(1) != static_cast<std::int64_t>(want.outputs.features)) {
    return "output shape differs";
  }
  const std::vector<std::int64_t> got(o.int64_contents().begin(), o.int64_contents().end());
  if (got != want.outputs.values) return "raw outputs differ from the emu driver's";
  if (o.fp32_contents_size() != o.int64_contents_size()) return "fp32_contents size differs";
  for (int k = 0; k < o.fp32_contents_size(); ++k) {
    const float f = static_cast<float>(numeric::ToDouble(want.outputs.values[static_cast<std::size_t>(k)], fmt));
    if (o.fp32_contents(k) != f) return "fp32 output " + std::to_string(k) + " differs";
  }
  if (resp.latency_cycles_size() != static_cast<int>(b.raw.rows)) return "latency_cycles has the wrong length";
  if (resp.input_overflows() != b.overflows) {
    return "input_overflows " + std::to_string(resp.input_overflows()) + ", expected " + std::to_string(b.overflows);
  }
  return "";
}

// ---------------------------------------------------------------------------------------------
// A gRPC client of the board server.

class Client {
 public:
  explicit Client(int port, std::string token = "")
      : stub_(pb::BoardService::NewStub(
            grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()))),
        token_(std::move(token)) {}

  std::unique_ptr<grpc::ClientContext> Ctx(std::chrono::milliseconds timeout = 30s) const {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(std::chrono::system_clock::now() + timeout);
    if (!token_.empty()) ctx->AddMetadata("authorization", "Bearer " + token_);
    return ctx;
  }
  grpc::Status Acquire(const pb::AcquireRequest& req, pb::Lease* lease) {
    auto ctx = Ctx();
    return stub_->Acquire(ctx.get(), req, lease);
  }
  grpc::Status Infer(const std::string& lease, const pb::BoardTensor& t, pb::BoardInferResponse* resp) {
    pb::BoardInferRequest req;
    req.set_lease_id(lease);
    *req.mutable_input() = t;
    auto ctx = Ctx();
    return stub_->Infer(ctx.get(), req, resp);
  }
  grpc::Status KeepAlive(const std::string& lease, pb::Lease* out = nullptr) {
    pb::KeepAliveRequest req;
    req.set_lease_id(lease);
    pb::Lease tmp;
    auto ctx = Ctx();
    return stub_->KeepAlive(ctx.get(), req, out ? out : &tmp);
  }
  grpc::Status Release(const std::string& lease) {
    pb::ReleaseRequest req;
    req.set_lease_id(lease);
    pb::ReleaseResponse resp;
    auto ctx = Ctx();
    return stub_->Release(ctx.get(), req, &resp);
  }
  grpc::Status List(pb::ListBoardsResponse* out) {
    auto ctx = Ctx();
    return stub_->ListBoards(ctx.get(), pb::ListBoardsRequest{}, out);
  }
  pb::ListBoardsResponse List() {
    pb::ListBoardsResponse r;
    auto st = List(&r);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return r;
  }
  pb::Board Board(const std::string& id) {
    const pb::ListBoardsResponse list = List();
    for (const auto& b : list.boards()) {
      if (b.id() == id) return b;
    }
    ADD_FAILURE() << "no board " << id;
    return {};
  }
  pb::BoardService::Stub& stub() { return *stub_; }

 private:
  std::unique_ptr<pb::BoardService::Stub> stub_;
  std::string token_;
};

pb::AcquireRequest ByUri(const std::string& uri, const std::string& client = "", std::int64_t ttl_ms = 0,
                         const std::string& kind = "", const std::string& board_id = "") {
  pb::AcquireRequest r;
  r.set_firmware_uri(uri);
  r.set_client(client);
  r.set_ttl_ms(ttl_ms);
  r.set_board_kind(kind);
  r.set_board_id(board_id);
  return r;
}

std::string CodeName(const grpc::Status& st) {
  switch (st.error_code()) {
    case grpc::StatusCode::OK: return "OK";
    case grpc::StatusCode::CANCELLED: return "CANCELLED";
    case grpc::StatusCode::INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND: return "NOT_FOUND";
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION: return "FAILED_PRECONDITION";
    case grpc::StatusCode::UNAVAILABLE: return "UNAVAILABLE";
    case grpc::StatusCode::UNAUTHENTICATED: return "UNAUTHENTICATED";
    case grpc::StatusCode::INTERNAL: return "INTERNAL";
    default: return "code " + std::to_string(static_cast<int>(st.error_code()));
  }
}

#define EXPECT_CODE(status_expr, code)                                                       \
  do {                                                                                       \
    const grpc::Status st_ = (status_expr);                                                  \
    EXPECT_EQ(st_.error_code(), grpc::StatusCode::code)                                      \
        << "got " << CodeName(st_) << ": " << st_.error_message();                           \
  } while (0)

template <class Pred>
bool WaitFor(Pred pred, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return pred();
}

BoardServerOptions Options(const std::string& boards, const std::string& cache_dir) {
  BoardServerOptions o;
  o.listen = "127.0.0.1:0";
  auto specs = ParseBoardSpecs(boards);
  EXPECT_TRUE(specs.ok()) << specs.status().ToString();
  if (specs.ok()) o.boards = *specs;
  o.cache_dir = cache_dir;
  return o;
}

std::unique_ptr<BoardServer> StartServer(BoardServerOptions o) {
  auto s = BoardServer::Start(std::move(o));
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  if (!s.ok()) return nullptr;
  EXPECT_GT((*s)->port(), 0);
  return std::move(s).value();
}

// ---------------------------------------------------------------------------------------------
// A driver wrapper recording when each driver the server opens lives and when its inferences
// run, so tests can check that no board is reprogrammed under a running inference. It opens the
// emu driver for every board kind.

class DriverLog {
 public:
  struct Instance {
    std::string firmware_id;  // the cache directory's name
    Clock::time_point opened, closed;
    bool open = true;
    int inflight = 0;
    std::vector<std::pair<Clock::time_point, Clock::time_point>> infers;
  };

  DriverOpener Opener() {
    return [this](const std::string& kind, const std::string& dir) -> Result<std::unique_ptr<runtime::BoardDriver>> {
      (void)kind;
      std::chrono::milliseconds delay;
      bool fail;
      const std::string fw = fs::path(dir).filename().string();
      {
        std::lock_guard lock(mu);
        delay = open_delay;
        fail = fail_firmware.count(fw) > 0;
        ++opens;
      }
      std::this_thread::sleep_for(delay);
      if (fail) return Internal("programming failed (injected by the test)");
      auto inner = runtime::OpenBoardDriver("emu", dir);
      if (!inner.ok()) return inner.status();
      std::lock_guard lock(mu);
      Instance in;
      in.firmware_id = fw;
      in.opened = Clock::now();
      instances.push_back(in);
      if (++live > max_live) max_live = live;
      return std::unique_ptr<runtime::BoardDriver>(new Recording(this, instances.size() - 1, std::move(inner).value()));
    };
  }

  // Problems on the board that ran these firmwares: drivers alive at the same time, inferences
  // outside their driver's life.
  std::vector<std::string> CheckBoard(const std::set<std::string>& firmware_ids) {
    std::lock_guard lock(mu);
    std::vector<Instance> mine;
    for (const auto& in : instances) {
      if (firmware_ids.count(in.firmware_id)) mine.push_back(in);
    }
    std::sort(mine.begin(), mine.end(), [](const Instance& a, const Instance& b) { return a.opened < b.opened; });
    std::vector<std::string> problems = violations;
    for (std::size_t i = 0; i < mine.size(); ++i) {
      const auto end = mine[i].open ? Clock::time_point::max() : mine[i].closed;
      for (const auto& [s, e] : mine[i].infers) {
        if (s < mine[i].opened || e > end) problems.push_back("an inference ran outside its driver's life");
      }
      if (i + 1 < mine.size() && (mine[i].open || mine[i].closed > mine[i + 1].opened)) {
        problems.push_back("driver " + std::to_string(i + 1) + " opened before driver " + std::to_string(i) + " closed");
      }
    }
    return problems;
  }

  std::size_t Count(const std::set<std::string>& firmware_ids) {
    std::lock_guard lock(mu);
    return static_cast<std::size_t>(std::count_if(instances.begin(), instances.end(), [&](const Instance& in) {
      return firmware_ids.count(in.firmware_id) > 0;
    }));
  }

  bool Running(const std::string& firmware_id) {
    std::lock_guard lock(mu);
    for (const auto& in : instances) {
      if (in.open && in.firmware_id == firmware_id && in.inflight > 0) return true;
    }
    return false;
  }

  std::mutex mu;
  std::vector<Instance> instances;
  std::vector<std::string> violations;
  std::map<std::string, std::chrono::milliseconds> infer_delay;  // by firmware id
  std::set<std::string> fail_firmware;
  std::chrono::milliseconds open_delay{0};
  int opens = 0, live = 0, max_live = 0;

 private:
  class Recording final : public runtime::BoardDriver {
   public:
    Recording(DriverLog* log, std::size_t index, std::unique_ptr<runtime::BoardDriver> inner)
        : log_(log), index_(index), inner_(std::move(inner)) {}
    ~Recording() override {
      std::lock_guard lock(log_->mu);
      Instance& in = log_->instances[index_];
      if (in.inflight > 0) {
        log_->violations.push_back("driver of " + in.firmware_id.substr(0, 12) + " closed while " +
                                   std::to_string(in.inflight) + " inference(s) ran");
      }
      in.open = false;
      in.closed = Clock::now();
      --log_->live;
    }
    std::string kind() const override { return inner_->kind(); }
    Result<runtime::BatchResult> Infer(const numeric::RawBatch& inputs) override {
      std::chrono::milliseconds delay{0};
      const auto start = Clock::now();
      {
        std::lock_guard lock(log_->mu);
        Instance& in = log_->instances[index_];
        if (!in.open) log_->violations.push_back("inference on a closed driver");
        if (++in.inflight > 1) log_->violations.push_back("two inferences at once on one board");
        if (auto it = log_->infer_delay.find(in.firmware_id); it != log_->infer_delay.end()) delay = it->second;
      }
      std::this_thread::sleep_for(delay);
      auto r = inner_->Infer(inputs);
      std::lock_guard lock(log_->mu);
      Instance& in = log_->instances[index_];
      --in.inflight;
      in.infers.push_back({start, Clock::now()});
      return r;
    }

   private:
    DriverLog* log_;
    std::size_t index_;
    std::unique_ptr<runtime::BoardDriver> inner_;
  };
};

// ---------------------------------------------------------------------------------------------
// 1. Board specs and which kinds run which firmware.

TEST(BoardSpecsTest, ParsesKindsAndCounts) {
  auto specs = ParseBoardSpecs("sim:2,emu:1");
  ASSERT_TRUE(specs.ok()) << specs.status().ToString();
  ASSERT_EQ(specs->size(), 2u);
  EXPECT_EQ((*specs)[0].kind, "sim");
  EXPECT_EQ((*specs)[0].count, 2);
  EXPECT_EQ((*specs)[1].kind, "emu");
  EXPECT_EQ((*specs)[1].count, 1);

  auto one = ParseBoardSpecs("sim");
  ASSERT_TRUE(one.ok()) << one.status().ToString();
  ASSERT_EQ(one->size(), 1u);
  EXPECT_EQ((*one)[0].kind, "sim");
  EXPECT_EQ((*one)[0].count, 1);

  auto spaced = ParseBoardSpecs(" emu:64 , ice40 ,sim:3");
  ASSERT_TRUE(spaced.ok()) << spaced.status().ToString();
  ASSERT_EQ(spaced->size(), 3u);
  EXPECT_EQ((*spaced)[0].kind, "emu");
  EXPECT_EQ((*spaced)[0].count, 64);
  EXPECT_EQ((*spaced)[1].kind, "ice40");
  EXPECT_EQ((*spaced)[1].count, 1);
  EXPECT_EQ((*spaced)[2].count, 3);
}

TEST(BoardSpecsTest, RejectsBadItemsNamingThem) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"", "empty"},           {"foo:1", "foo"},        {"sim:0", "sim:0"},  {"sim:65", "sim:65"},
      {"sim:x", "sim:x"},      {"sim:1,sim:2", "sim"},  {"sim:1,,", "empty"}, {"sim:", "sim:"},
      {"sim:-1", "sim:-1"},    {"emu:1,", "empty"},
  };
  for (const auto& [text, named] : bad) {
    auto r = ParseBoardSpecs(text);
    ASSERT_FALSE(r.ok()) << "accepted '" << text << "'";
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << text;
    EXPECT_NE(r.status().message().find(named), std::string::npos)
        << "'" << text << "': " << r.status().message() << " does not name " << named;
  }
  auto dup = ParseBoardSpecs("sim:1,sim:2");
  EXPECT_NE(dup.status().message().find("twice"), std::string::npos) << dup.status().message();
  // A hardware kind addresses one device: one board of it per server.
  for (const std::string item : {"ice40:2", "zynq:2", "xrt:3"}) {
    auto r = ParseBoardSpecs("emu:1," + item);
    ASSERT_FALSE(r.ok()) << item;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << item;
    EXPECT_NE(r.status().message().find(item), std::string::npos) << r.status().message();
  }
}

TEST(BoardSpecsTest, KindRunsBoard) {
  for (const std::string family : {"sim", "ice40", "zynq7000", "virtex-ultrascale+", ""}) {
    EXPECT_TRUE(KindRunsBoard("sim", family)) << family;
    EXPECT_TRUE(KindRunsBoard("emu", family)) << family;
  }
  EXPECT_TRUE(KindRunsBoard("ice40", "ice40"));
  EXPECT_FALSE(KindRunsBoard("ice40", "sim"));
  EXPECT_FALSE(KindRunsBoard("ice40", "zynq7000"));
  EXPECT_TRUE(KindRunsBoard("zynq", "zynq7000"));
  EXPECT_FALSE(KindRunsBoard("zynq", "ice40"));
  EXPECT_FALSE(KindRunsBoard("zynq", "sim"));
  EXPECT_TRUE(KindRunsBoard("xrt", "virtex-ultrascale+"));
  EXPECT_FALSE(KindRunsBoard("xrt", "zynq7000"));
  EXPECT_FALSE(KindRunsBoard("xrt", "sim"));
  EXPECT_FALSE(KindRunsBoard("foo", "sim"));
}

TEST(BoardServerStartTest, RejectsBadOptionsAndWritesTheReadyFile) {
  TempDir t;
  {
    BoardServerOptions o = Options("emu:1", t / "cache");
    o.boards.clear();
    auto s = BoardServer::Start(o);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
  }
  {
    BoardServerOptions o = Options("emu:1", "");
    auto s = BoardServer::Start(o);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
  }
  {
    BoardServerOptions o = Options("emu:1", t / "cache");
    o.default_ttl = 50ms;
    auto s = BoardServer::Start(o);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
  }
  BoardServerOptions o = Options("emu:2,ice40:1", t / "cache");
  o.ready_file = t / "ready.json";
  auto s = StartServer(o);
  ASSERT_TRUE(s);
  auto ready = ReadFile(t / "ready.json");
  ASSERT_TRUE(ready.ok()) << ready.status().ToString();
  EXPECT_EQ(nlohmann::json::parse(*ready)["port"].get<int>(), s->port());
  Client c(s->port());
  auto list = c.List();
  ASSERT_EQ(list.boards_size(), 3);
  EXPECT_FALSE(list.version().empty());
  EXPECT_EQ(list.boards(0).id(), "emu-0");
  EXPECT_EQ(list.boards(1).id(), "emu-1");
  EXPECT_EQ(list.boards(2).id(), "ice40-0");  // listed without hardware
  EXPECT_EQ(list.boards(2).kind(), "ice40");
  for (const auto& b : list.boards()) {
    EXPECT_EQ(b.state(), pb::BOARD_FREE) << b.id();
    EXPECT_TRUE(b.firmware_id().empty()) << b.id();
    EXPECT_EQ(b.lease_count(), 0) << b.id();
    EXPECT_EQ(b.loads(), 0u) << b.id();
  }
  s->Shutdown();
  s->Shutdown();  // idempotent
}

TEST(BoardServerStartTest, APortInUseIsUnavailable) {
  TempDir t;
  auto a = StartServer(Options("emu:1", t / "cache_a"));
  ASSERT_TRUE(a);
  BoardServerOptions o = Options("emu:1", t / "cache_b");
  o.listen = "127.0.0.1:" + std::to_string(a->port());
  auto b = BoardServer::Start(o);
  EXPECT_FALSE(b.ok()) << "a second board server started on port " << a->port() << ", already in use";
  if (!b.ok()) {
    EXPECT_EQ(b.status().code(), StatusCode::kUnavailable) << b.status().ToString();
  }
}

// ---------------------------------------------------------------------------------------------
// 2. Two predictors for one model share one sim board: one load, lease count 2.

TEST(BoardServerSimTest, TwoPredictorsShareOneSimBoard) {
  TempDir t;
  const Firmware fw = MakeSimFirmware(t / "banknote");
  ASSERT_FALSE(fw.id.empty());
  ASSERT_TRUE(fs::exists(fw.dir + "/" + firmware::kSimLibraryFile));
  auto server = StartServer(Options("sim:1", t / "cache"));
  ASSERT_TRUE(server);
  const std::string address = "127.0.0.1:" + std::to_string(server->port());

  RemoteBoardOptions ro;
  ro.address = address;
  ro.firmware_uri = fw.uri;
  ro.client = "predictor-a";
  ro.ttl = 5s;
  auto a = OpenRemoteBoard(ro);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  ro.client = "predictor-b";
  auto b = OpenRemoteBoard(ro);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ((*a)->kind(), "remote");
  EXPECT_TRUE((*a)->Available(nullptr));
  EXPECT_TRUE((*b)->Available(nullptr));

  Client c(server->port());
  pb::Board board = c.Board("sim-0");
  EXPECT_EQ(board.kind(), "sim");
  EXPECT_EQ(board.lease_count(), 2);
  EXPECT_EQ(board.loads(), 1u);
  EXPECT_EQ(board.state(), pb::BOARD_READY);
  EXPECT_EQ(board.firmware_id(), fw.id);
  EXPECT_EQ(board.design_id(), fw.meta.id);
  EXPECT_EQ(board.firmware_uri(), fw.uri);
  std::multiset<std::string> clients(board.clients().begin(), board.clients().end());
  EXPECT_EQ(clients, (std::multiset<std::string>{"predictor-a", "predictor-b"}));
  // The cache holds the bundle under its firmware id, and nothing half-fetched.
  EXPECT_TRUE(fs::exists(t / ("cache/" + fw.id + "/" + firmware::kSimLibraryFile)));
  for (const auto& e : fs::directory_iterator(t / "cache")) EXPECT_EQ(e.path().filename().string(), fw.id);

  // A third lease by hand: shared, no load.
  pb::Lease lease;
  ASSERT_TRUE(c.Acquire(ByUri(fw.uri, "by-hand"), &lease).ok());
  EXPECT_TRUE(lease.shared());
  EXPECT_EQ(lease.board().id(), "sim-0");
  EXPECT_EQ(lease.board().lease_count(), 3);
  EXPECT_EQ(lease.board().loads(), 1u);
  auto meta = firmware::ParseBundleMetadata(lease.metadata_json(), "lease");
  ASSERT_TRUE(meta.ok()) << meta.status().ToString();
  EXPECT_EQ(meta->id, fw.meta.id);
  ASSERT_TRUE(c.Release(lease.lease_id()).ok());

  // Both predictors' answers are the emulator's, bit for bit.
  Reference ref(fw);
  std::mt19937 rng(7);
  for (auto* d : {a->get(), b->get()}) {
    Batch batch = RandomBatch(fw, 16, "FP64", rng);
    auto got = d->Infer(batch.raw);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    const auto want = ref.Run(batch.raw);
    EXPECT_EQ(got->outputs.values, want.outputs.values);
    EXPECT_EQ(got->outputs.rows, 16u);
    EXPECT_TRUE(got->remote);
    ASSERT_EQ(got->latency_cycles.size(), 16u);
    EXPECT_GT(got->latency_cycles[0], 0u);
  }
  // Over the wire too, with the sim board's measured cycles.
  ASSERT_TRUE(c.Acquire(ByUri(fw.uri, "by-hand"), &lease).ok());
  Batch batch = RandomBatch(fw, 8, "FP32", rng);
  pb::BoardInferResponse resp;
  ASSERT_TRUE(c.Infer(lease.lease_id(), batch.tensor, &resp).ok());
  EXPECT_EQ(CheckAnswer(resp, batch, ref), "");
  EXPECT_EQ(resp.board_id(), "sim-0");
  EXPECT_GT(resp.device_cycles(), 0u);
  ASSERT_TRUE(c.Release(lease.lease_id()).ok());
  EXPECT_EQ(c.Board("sim-0").inferences(), 16u + 16u + 8u);

  // Closing the predictors releases their leases; the firmware stays loaded.
  a->reset();
  b->reset();
  board = c.Board("sim-0");
  EXPECT_EQ(board.lease_count(), 0);
  EXPECT_EQ(board.state(), pb::BOARD_FREE);
  EXPECT_EQ(board.firmware_id(), fw.id);
  EXPECT_EQ(board.loads(), 1u);
}

// ---------------------------------------------------------------------------------------------
// 3. Every compatible board leased: RESOURCE_EXHAUSTED naming who holds what.

TEST(BoardServerTest, AnotherFirmwareWaitsUntilTheBoardIsReleased) {
  TempDir t;
  const Firmware a = MakeEmuFirmware(t / "a", 4, 3, "a");
  const Firmware b = MakeEmuFirmware(t / "b", 4, 2, "b");
  ASSERT_NE(a.id, b.id);
  auto server = StartServer(Options("emu:1", t / "cache"));
  ASSERT_TRUE(server);
  Client c(server->port());

  pb::Lease l1, l2, l3;
  ASSERT_TRUE(c.Acquire(ByUri(a.uri, "predictor-a"), &l1).ok());
  EXPECT_FALSE(l1.shared());
  EXPECT_EQ(l1.board().id(), "emu-0");
  EXPECT_EQ(l1.board().firmware_id(), a.id);
  ASSERT_TRUE(c.Acquire(ByUri(a.uri, "predictor-b"), &l2).ok());
  EXPECT_TRUE(l2.shared());
  EXPECT_EQ(l2.board().id(), "emu-0");
  EXPECT_NE(l1.lease_id(), l2.lease_id());

  grpc::Status st = c.Acquire(ByUri(b.uri, "predictor-c"), &l3);
  ASSERT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << CodeName(st) << ": " << st.error_message();
  const std::string& m = st.error_message();
  for (const std::string& want : {std::string("emu-0"), a.id.substr(0, 12), a.uri, std::string("predictor-a"),
                                  std::string("predictor-b"), std::string("2 leases"), b.id.substr(0, 12)}) {
    EXPECT_NE(m.find(want), std::string::npos) << "'" << m << "' does not name " << want;
  }
  // The remote driver reports the same first error.
  RemoteBoardOptions ro;
  ro.address = "127.0.0.1:" + std::to_string(server->port());
  ro.firmware_uri = b.uri;
  auto remote = OpenRemoteBoard(ro);
  ASSERT_FALSE(remote.ok());
  EXPECT_EQ(remote.status().code(), StatusCode::kResourceExhausted) << remote.status().ToString();

  pb::Board board = c.Board("emu-0");
  EXPECT_EQ(board.lease_count(), 2);
  EXPECT_EQ(board.loads(), 1u);

  ASSERT_TRUE(c.Release(l1.lease_id()).ok());
  EXPECT_CODE(c.Acquire(ByUri(b.uri, "predictor-c"), &l3), RESOURCE_EXHAUSTED);  // one lease left
  ASSERT_TRUE(c.Release(l2.lease_id()).ok());
  EXPECT_CODE(c.Release(l2.lease_id()), NOT_FOUND);  // twice

  ASSERT_TRUE(c.Acquire(ByUri(b.uri, "predictor-c"), &l3).ok());
  EXPECT_FALSE(l3.shared());
  EXPECT_EQ(l3.board().id(), "emu-0");
  EXPECT_EQ(l3.board().firmware_id(), b.id);
  EXPECT_EQ(l3.board().loads(), 2u);  // reprogrammed
  EXPECT_EQ(l3.board().lease_count(), 1);
  ASSERT_EQ(l3.board().clients_size(), 1);
  EXPECT_EQ(l3.board().clients(0), "predictor-c");
  // It runs b now.
  Reference ref(b);
  std::mt19937 rng(3);
  Batch batch = RandomBatch(b, 5, "RAW", rng);
  pb::BoardInferResponse resp;
  ASSERT_TRUE(c.Infer(l3.lease_id(), batch.tensor, &resp).ok());
  EXPECT_EQ(CheckAnswer(resp, batch, ref), "");
  // The old lease ids are gone for good.
  EXPECT_CODE(c.Infer(l1.lease_id(), batch.tensor, &resp), NOT_FOUND);
}

// Concurrent first acquires of one firmware program one board once and share it.
TEST(BoardServerTest, ConcurrentAcquiresOfOneFirmwareLoadItOnce) {
  TempDir t;
  const Firmware a = MakeEmuFirmware(t / "a", 4, 3, "a");
  DriverLog log;
  log.open_delay = 200ms;  // a slow board: later acquires arrive while it is programmed
  BoardServerOptions o = Options("emu:3", t / "cache");
  o.open_driver = log.Opener();
  auto server = StartServer(o);
  ASSERT_TRUE(server);
  constexpr int kClients = 6;
  std::vector<pb::Lease> leases(kClients);
  std::vector<grpc::Status> status(kClients);
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      Client c(server->port());
      status[i] = c.Acquire(ByUri(a.uri, "c" + std::to_string(i)), &leases[i]);
    });
  }
  for (auto& th : threads) th.join();
  int shared = 0;
  std::set<std::string> boards;
  for (int i = 0; i < kClients; ++i) {
    ASSERT_TRUE(status[i].ok()) << status[i].error_message();
    shared += leases[i].shared() ? 1 : 0;
    boards.insert(leases[i].board().id());
  }
  EXPECT_EQ(shared, kClients - 1);
  EXPECT_EQ(boards.size(), 1u);
  EXPECT_EQ(log.opens, 1);
  Client c(server->port());
  std::uint64_t loads = 0;
  const pb::ListBoardsResponse list = c.List();
  for (const auto& b : list.boards()) {
    loads += b.loads();
    if (b.id() == *boards.begin()) {
      EXPECT_EQ(b.lease_count(), kClients);
    }
  }
  EXPECT_EQ(loads, 1u);
}

// A load that fails leaves the board in ERROR with the reason; the next acquire reuses the board.
TEST(BoardServerTest, AFailedLoadIsShownAndTheBoardIsReused) {
  TempDir t;
  const Firmware bad = MakeEmuFirmware(t / "bad", 4, 3, "bad");
  const Firmware good = MakeEmuFirmware(t / "good", 4, 2, "good");
  DriverLog log;
  log.fail_firmware.insert(bad.id);
  BoardServerOptions o = Options("emu:1", t / "cache");
  o.open_driver = log.Opener();
  auto server = StartServer(o);
  ASSERT_TRUE(server);
  Client c(server->port());
  pb::Lease lease;
  grpc::Status st = c.Acquire(ByUri(bad.uri, "x"), &lease);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error_message().find("programming failed"), std::string::npos) << st.error_message();
  pb::Board board = c.Board("emu-0");
  EXPECT_EQ(board.state(), pb::BOARD_ERROR);
  EXPECT_NE(board.error().find("programming failed"), std::string::npos) << board.error();
  EXPECT_TRUE(board.firmware_id().empty());
  EXPECT_EQ(board.lease_count(), 0);
  EXPECT_EQ(board.loads(), 1u);

  ASSERT_TRUE(c.Acquire(ByUri(good.uri, "y"), &lease).ok());
  board = c.Board("emu-0");
  EXPECT_EQ(board.state(), pb::BOARD_READY);
  EXPECT_TRUE(board.error().empty()) << board.error();
  EXPECT_EQ(board.firmware_id(), good.id);
  EXPECT_EQ(board.loads(), 2u);
}

// ---------------------------------------------------------------------------------------------
// 4. Eight clients hammer one emu board while another client churns firmware on the other one.

TEST(BoardServerTest, ConcurrentClientsMatchTheEmulatorWhileAnotherBoardIsReprogrammed) {
  TempDir t;
  const Firmware a = MakeEmuFirmware(t / "a", 4, 3, "a");
  const Firmware b = MakeEmuFirmware(t / "b", 4, 2, "b");
  const Firmware c3 = MakeEmuFirmware(t / "c", 3, 2, "c");
  DriverLog log;
  BoardServerOptions o = Options("emu:2", t / "cache");
  o.open_driver = log.Opener();
  auto server = StartServer(o);
  ASSERT_TRUE(server);
  const int port = server->port();

  constexpr int kClients = 8;
  constexpr int kCalls = 120;
  constexpr int kChurns = 24;
  std::vector<pb::Lease> leases(kClients);
  {
    Client c(port);
    for (int i = 0; i < kClients; ++i) {
      ASSERT_TRUE(c.Acquire(ByUri(a.uri, "client-" + std::to_string(i)), &leases[i]).ok());
      EXPECT_EQ(leases[i].shared(), i > 0);
      EXPECT_EQ(leases[i].board().id(), leases[0].board().id());
    }
  }
  const std::string board_a = leases[0].board().id();

  std::mutex err_mu;
  std::vector<std::string> errors;
  auto fail = [&](const std::string& e) {
    std::lock_guard lock(err_mu);
    if (errors.size() < 20) errors.push_back(e);
  };
  std::atomic<std::uint64_t> rows_sent{0};
  std::atomic<int> exhausted{0}, blocked_by_inference{0};
  std::set<std::string> churn_boards;

  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      Client c(port);
      Reference ref(a);
      std::mt19937 rng(1000 + static_cast<unsigned>(i));
      const char* types[] = {"RAW", "FP32", "FP64"};
      for (int k = 0; k < kCalls; ++k) {
        const std::size_t rows = 1 + rng() % 16;
        Batch batch = RandomBatch(a, rows, types[k % 3], rng);
        pb::BoardInferResponse resp;
        grpc::Status st = c.Infer(leases[i].lease_id(), batch.tensor, &resp);
        if (!st.ok()) {
          fail("client " + std::to_string(i) + ": " + CodeName(st) + ": " + st.error_message());
          return;
        }
        if (std::string e = CheckAnswer(resp, batch, ref); !e.empty()) fail("client " + std::to_string(i) + ": " + e);
        if (resp.board_id() != board_a) fail("client " + std::to_string(i) + " ran on " + resp.board_id());
        rows_sent += rows;
      }
    });
  }
  threads.emplace_back([&] {
    Client c(port);
    Reference ref_b(b), ref_c(c3);
    std::mt19937 rng(99);
    for (int it = 0; it < kChurns; ++it) {
      const Firmware& fw = it % 2 ? c3 : b;
      const Firmware& next = it % 2 ? b : c3;
      Reference& ref = it % 2 ? ref_c : ref_b;
      pb::Lease lease;
      const auto deadline = Clock::now() + 10s;
      for (;;) {
        grpc::Status st = c.Acquire(ByUri(fw.uri, "churner"), &lease);
        if (st.ok()) break;
        if (st.error_code() != grpc::StatusCode::RESOURCE_EXHAUSTED || Clock::now() > deadline) {
          fail("churner Acquire: " + CodeName(st) + ": " + st.error_message());
          return;
        }
        ++exhausted;
        std::this_thread::sleep_for(2ms);
      }
      churn_boards.insert(lease.board().id());
      if (lease.shared()) fail("churner's lease " + std::to_string(it) + " was shared: the board was not reprogrammed");
      Batch batch = RandomBatch(fw, 3, "RAW", rng);
      pb::BoardInferResponse resp;
      grpc::Status st = c.Infer(lease.lease_id(), batch.tensor, &resp);
      if (!st.ok()) {
        fail("churner Infer: " + CodeName(st) + ": " + st.error_message());
        return;
      }
      if (std::string e = CheckAnswer(resp, batch, ref); !e.empty()) fail("churner: " + e);
      if (it % 3 != 0) {
        if (!c.Release(lease.lease_id()).ok()) fail("churner Release failed");
        continue;
      }
      // Release while an inference runs: the board must not be reprogrammed under it.
      {
        std::lock_guard lock(log.mu);
        log.infer_delay[fw.id] = 150ms;
      }
      std::thread slow([&, lease] {
        Client c2(port);
        std::mt19937 rng2(7 + static_cast<unsigned>(it));
        Batch slow_batch = RandomBatch(fw, 2, "FP32", rng2);
        pb::BoardInferResponse slow_resp;
        grpc::Status s2 = c2.Infer(lease.lease_id(), slow_batch.tensor, &slow_resp);
        if (!s2.ok()) {
          fail("slow Infer: " + CodeName(s2) + ": " + s2.error_message());
          return;
        }
        if (std::string e = CheckAnswer(slow_resp, slow_batch, ref); !e.empty()) fail("slow Infer: " + e);
      });
      if (!WaitFor([&] { return log.Running(fw.id); }, 5s)) fail("the slow inference never started");
      if (!c.Release(lease.lease_id()).ok()) fail("churner Release (in flight) failed");
      pb::Lease other;
      grpc::Status busy = c.Acquire(ByUri(next.uri, "churner"), &other);
      if (busy.ok()) {
        fail("acquired " + next.id.substr(0, 12) + " on " + other.board().id() + " while an inference ran on it");
        c.Release(other.lease_id());
      } else if (busy.error_code() != grpc::StatusCode::RESOURCE_EXHAUSTED) {
        fail("churner Acquire (busy): " + CodeName(busy) + ": " + busy.error_message());
      } else {
        ++blocked_by_inference;
        if (busy.error_message().find("inference(s) running") == std::string::npos) {
          fail("RESOURCE_EXHAUSTED does not mention the running inference: " + busy.error_message());
        }
      }
      slow.join();
      std::lock_guard lock(log.mu);
      log.infer_delay.clear();
    }
  });
  for (auto& th : threads) th.join();

  for (const auto& e : errors) ADD_FAILURE() << e;
  EXPECT_EQ(blocked_by_inference.load(), (kChurns + 2) / 3);
  ASSERT_EQ(churn_boards.size(), 1u);
  const std::string board_churn = *churn_boards.begin();
  EXPECT_NE(board_churn, board_a);

  // No board reprogrammed under an inference, and each board's drivers one after the other.
  for (const auto& p : log.CheckBoard({a.id})) ADD_FAILURE() << board_a << ": " << p;
  for (const auto& p : log.CheckBoard({b.id, c3.id})) ADD_FAILURE() << board_churn << ": " << p;
  EXPECT_LE(log.max_live, 2);

  Client c(port);
  const pb::Board ba = c.Board(board_a);
  EXPECT_EQ(ba.loads(), 1u);
  EXPECT_EQ(ba.firmware_id(), a.id);
  EXPECT_EQ(ba.lease_count(), kClients);
  EXPECT_EQ(ba.inferences(), rows_sent.load());
  const pb::Board bc = c.Board(board_churn);
  EXPECT_EQ(bc.loads(), static_cast<std::uint64_t>(kChurns));
  EXPECT_EQ(log.Count({b.id, c3.id}), static_cast<std::size_t>(kChurns));
  EXPECT_EQ(bc.lease_count(), 0);
  for (const auto& l : leases) EXPECT_TRUE(c.Release(l.lease_id()).ok());
  EXPECT_EQ(c.Board(board_a).lease_count(), 0);
}

// ---------------------------------------------------------------------------------------------
// 5. Leases expire when not renewed.

TEST(BoardServerTest, LeasesExpireWithoutRenewal) {
  TempDir t;
  const Firmware a = MakeEmuFirmware(t / "a", 4, 3, "a");
  BoardServerOptions o = Options("emu:1", t / "cache");
  o.default_ttl = 1500ms;
  o.max_ttl = 2000ms;
  auto server = StartServer(o);
  ASSERT_TRUE(server);
  Client c(server->port());

  // ttl 0 is the server's default; longer than the maximum is capped.
  pb::Lease def, capped;
  ASSERT_TRUE(c.Acquire(ByUri(a.uri, "default"), &def).ok());
  EXPECT_EQ(def.ttl_ms(), 1500);
  ASSERT_TRUE(c.Acquire(ByUri(a.uri, "capped", 60000), &capped).ok());
  EXPECT_EQ(capped.ttl_ms(), 2000);
  ASSERT_TRUE(c.Release(def.lease_id()).ok());
  ASSERT_TRUE(c.Release(capped.lease_id()).ok());
  EXPECT_CODE(c.Acquire(ByUri(a.uri, "negative", -5), &def), INVALID_ARGUMENT);

  pb::Lease lease;
  ASSERT_TRUE(c.Acquire(ByUri(a.uri, "forgetful", 200), &lease).ok());
  EXPECT_EQ(lease.ttl_ms(), 200);
  EXPECT_EQ(c.Board("emu-0").lease_count(), 1);
  std::this_thread::sleep_for(600ms);
  EXPECT_CODE(c.KeepAlive(lease.lease_id()), NOT_FOUND);
  std::mt19937 rng(5);
  Batch batch = RandomBatch(a, 1, "RAW", rng);
  pb::BoardInferResponse resp;
  EXPECT_CODE(c.Infer(lease.lease_id(), batch.tensor, &resp), NOT_FOUND);
  EXPECT_CODE(c.Release(lease.lease_id()), NOT_FOUND);
  pb::Board board = c.Board("emu-0");
  EXPECT_EQ(board.lease_count(), 0);
  EXPECT_EQ(board.clients_size(), 0);
  EXPECT_EQ(board.state(), pb::BOARD_FREE);
  EXPECT_EQ(board.firmware_id(), a.id);  // still loaded: the next acquire shares it
  pb::Lease again;
  ASSERT_TRUE(c.Acquire(ByUri(a.uri, "again", 200), &again).ok());
  EXPECT_TRUE(again.shared());
  EXPECT_EQ(again.board().loads(), 1u);

  // Renewed every 50 ms by KeepAlive, the lease outlives its ttl five times over.
  const auto until = Clock::now() + 1s;
  while (Clock::now() < until) {
    pb::Lease renewed;
    grpc::Status st = c.KeepAlive(again.lease_id(), &renewed);
    ASSERT_TRUE(st.ok()) << CodeName(st) << ": " << st.error_message();
    EXPECT_EQ(renewed.lease_id(), again.lease_id());
    EXPECT_EQ(renewed.ttl_ms(), 200);
    EXPECT_EQ(renewed.board().id(), "emu-0");
    std::this_thread::sleep_for(50ms);
  }
  // Renewed by Infer alone.
  const auto until2 = Clock::now() + 600ms;
  while (Clock::now() < until2) {
    grpc::Status st = c.Infer(again.lease_id(), batch.tensor, &resp);
    ASSERT_TRUE(st.ok()) << CodeName(st) << ": " << st.error_message();
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(c.Board("emu-0").lease_count(), 1);
  EXPECT_TRUE(c.Release(again.lease_id()).ok());
}

// ---------------------------------------------------------------------------------------------
// 6. Bad requests.

TEST(BoardServerTest, BadRequestsFailWithTheRightCodes) {
  TempDir t;
  const Firmware a = MakeEmuFirmware(t / "a", 4, 3, "a");
  fs::create_directories(t / "not_a_bundle");
  BoardServerOptions o = Options("emu:1,ice40:1", t / "cache");
  o.max_batch_rows = 8;
  auto server = StartServer(o);
  ASSERT_TRUE(server);
  Client c(server->port());
  std::mt19937 rng(11);
  Batch batch = RandomBatch(a, 1, "RAW", rng);
  pb::BoardInferResponse resp;
  pb::Lease lease;

  EXPECT_CODE(c.Release("no-such-lease"), NOT_FOUND);
  EXPECT_CODE(c.KeepAlive("no-such-lease"), NOT_FOUND);
  EXPECT_CODE(c.Infer("no-such-lease", batch.tensor, &resp), NOT_FOUND);
  EXPECT_CODE(c.Infer("", batch.tensor, &resp), NOT_FOUND);

  EXPECT_CODE(c.Acquire(pb::AcquireRequest{}, &lease), INVALID_ARGUMENT);
  EXPECT_CODE(c.Acquire(ByUri(""), &lease), INVALID_ARGUMENT);
  {
    pb::AcquireRequest r;
    r.set_build_id("xyz");
    EXPECT_CODE(c.Acquire(r, &lease), INVALID_ARGUMENT);
    r.set_build_id(std::string(64, 'A'));  // not lowercase
    EXPECT_CODE(c.Acquire(r, &lease), INVALID_ARGUMENT);
    r.set_build_id(Sha256Hex("some build"));
    grpc::Status st = c.Acquire(r, &lease);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << CodeName(st) << ": " << st.error_message();
    EXPECT_NE(st.error_message().find("--store"), std::string::npos) << st.error_message();
  }
  EXPECT_CODE(c.Acquire(ByUri("file://" + (t / "not_a_bundle")), &lease), NOT_FOUND);
  EXPECT_CODE(c.Acquire(ByUri(a.uri, "", 0, "fpga9000"), &lease), INVALID_ARGUMENT);
  {
    // The ice40 board is listed, but a sim bundle cannot run on it.
    grpc::Status st = c.Acquire(ByUri(a.uri, "", 0, "ice40"), &lease);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << CodeName(st) << ": " << st.error_message();
    EXPECT_NE(st.error_message().find("ice40"), std::string::npos) << st.error_message();
    EXPECT_CODE(c.Acquire(ByUri(a.uri, "", 0, "", "ice40-0"), &lease), FAILED_PRECONDITION);
    EXPECT_CODE(c.Acquire(ByUri(a.uri, "", 0, "", "emu-7"), &lease), FAILED_PRECONDITION);
  }
  {
    pb::AcquireRequest r = ByUri(a.uri, std::string(300, 'n'));
    EXPECT_CODE(c.Acquire(r, &lease), INVALID_ARGUMENT);
  }
  EXPECT_EQ(c.Board("ice40-0").loads(), 0u);
  EXPECT_EQ(c.Board("emu-0").loads(), 0u);  // nothing above got as far as a board

  // Bad tensors on a good lease.
  ASSERT_TRUE(c.Acquire(ByUri(a.uri, "tester", 0, "emu", "emu-0"), &lease).ok());
  const std::string id = lease.lease_id();
  auto tensor = [](const std::string& dtype, std::vector<std::int64_t> shape) {
    pb::BoardTensor tt;
    tt.set_datatype(dtype);
    for (auto s : shape) tt.add_shape(s);
    return tt;
  };
  {
    pb::BoardTensor tt = tensor("RAW", {1, 5});  // 4 inputs
    for (int k = 0; k < 5; ++k) tt.add_int64_contents(k);
    EXPECT_CODE(c.Infer(id, tt, &resp), INVALID_ARGUMENT);
    tt = tensor("RAW", {0, 4});
    EXPECT_CODE(c.Infer(id, tt, &resp), INVALID_ARGUMENT);
    tt = tensor("RAW", {1, 2, 4});
    for (int k = 0; k < 8; ++k) tt.add_int64_contents(k);
    EXPECT_CODE(c.Infer(id, tt, &resp), INVALID_ARGUMENT);
    tt = tensor("RAW", {});
    EXPECT_CODE(c.Infer(id, tt, &resp), INVALID_ARGUMENT);
  }
  {
    pb::BoardTensor tt = tensor("RAW", {2, 4});
    for (int k = 0; k < 7; ++k) tt.add_int64_contents(k);  // 8 needed
    EXPECT_CODE(c.Infer(id, tt, &resp), INVALID_ARGUMENT);
    tt = tensor("FP32", {2, 4});
    for (int k = 0; k < 8; ++k) tt.add_fp64_contents(k);  // the wrong field
    EXPECT_CODE(c.Infer(id, tt, &resp), INVALID_ARGUMENT);
  }
  {
    pb::BoardTensor tt = tensor("INT8", {1, 4});
    for (int k = 0; k < 4; ++k) tt.add_int64_contents(k);
    grpc::Status st = c.Infer(id, tt, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << CodeName(st);
    EXPECT_NE(st.error_message().find("INT8"), std::string::npos) << st.error_message();
  }
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                    -std::numeric_limits<float>::infinity()}) {
    pb::BoardTensor tt = tensor("FP32", {4});
    for (int k = 0; k < 4; ++k) tt.add_fp32_contents(k == 2 ? bad : 0.5f);
    EXPECT_CODE(c.Infer(id, tt, &resp), INVALID_ARGUMENT);
  }
  {
    // A raw value outside the input format is the driver's INVALID_ARGUMENT.
    pb::BoardTensor tt = tensor("RAW", {1, 4});
    for (int k = 0; k < 4; ++k) tt.add_int64_contents(k == 0 ? 1 << 20 : 0);
    EXPECT_CODE(c.Infer(id, tt, &resp), INVALID_ARGUMENT);
  }
  {
    // More rows than the server's maximum batch.
    Batch big = RandomBatch(a, 9, "RAW", rng);
    EXPECT_CODE(c.Infer(id, big.tensor, &resp), RESOURCE_EXHAUSTED);
  }
  {
    // A one-dimensional tensor is one row.
    Reference ref(a);
    Batch one;
    one.tensor = tensor("FP64", {4});
    one.raw = {1, 4, {}};
    for (std::int64_t r : {std::int64_t{5}, std::int64_t{-700}, std::int64_t{0}, std::int64_t{32000}}) {
      one.tensor.add_fp64_contents(numeric::ToDouble(r, a.meta.input_format));
      one.raw.values.push_back(r);
    }
    grpc::Status st = c.Infer(id, one.tensor, &resp);
    ASSERT_TRUE(st.ok()) << st.error_message();
    EXPECT_EQ(CheckAnswer(resp, one, ref), "");
  }
  // None of the bad calls ran on the board; the lease is still fine.
  EXPECT_EQ(c.Board("emu-0").inferences(), 1u);
  EXPECT_TRUE(c.KeepAlive(id).ok());

  // A bundle whose file no longer matches its metadata: refused, and nothing left in the cache.
  const Firmware tampered = MakeEmuFirmware(t / "tampered", 4, 3, "tampered");
  {
    auto text = ReadFile(tampered.dir + "/" + firmware::kModelFile);
    ASSERT_TRUE(text.ok());
    ASSERT_TRUE(WriteFileAtomic(tampered.dir + "/" + firmware::kModelFile, *text + " ").ok());
  }
  pb::Lease l2;
  grpc::Status st = c.Acquire(ByUri(tampered.uri, "x", 0, "", "emu-0"), &l2);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error_message().find("sha256"), std::string::npos) << st.error_message();
  EXPECT_NE(st.error_message().find(firmware::kModelFile), std::string::npos) << st.error_message();
  EXPECT_FALSE(fs::exists(t / ("cache/" + tampered.id)));
  for (const auto& e : fs::directory_iterator(t / "cache")) {
    EXPECT_EQ(e.path().filename().string(), a.id) << "left in the cache: " << e.path();
  }
  EXPECT_EQ(c.Board("emu-0").firmware_id(), a.id);
}

// FP inputs as board_service.proto documents them: "quantized by the server, rounding to nearest
// and saturating", with saturated elements counted in input_overflows.
// FP inputs are quantized exactly as the predictor and the emulator quantize them: into the
// input format with its own rounding and overflow modes; values outside its range are counted.
TEST(BoardServerTest, FpInputsAreQuantizedWithTheInputFormatsModes) {
  TempDir t;
  const Firmware a = MakeEmuFirmware(t / "a", 4, 3, "a");
  auto server = StartServer(Options("emu:1", t / "cache"));
  ASSERT_TRUE(server);
  Client c(server->port());
  pb::Lease lease;
  ASSERT_TRUE(c.Acquire(ByUri(a.uri, "fp"), &lease).ok());
  const auto& fmt = a.meta.input_format;
  const double lsb = numeric::ToDouble(1, fmt);
  Reference ref(a);
  for (const std::string dtype : {"FP32", "FP64"}) {
    SCOPED_TRACE(dtype);
    // 1e9 and -1e9 are far outside the format; 100.75 and -99.25 lsb lie between two steps.
    const std::vector<double> xs = {1e9, -1e9, 100.75 * lsb, -99.25 * lsb};
    Batch b;
    b.tensor.set_datatype(dtype);
    b.tensor.add_shape(1);
    b.tensor.add_shape(4);
    b.raw = {1, 4, {}};
    std::uint64_t overflows = 0;
    for (double x : xs) {
      const double sent = dtype == "FP32" ? static_cast<double>(static_cast<float>(x)) : x;
      if (dtype == "FP32") b.tensor.add_fp32_contents(static_cast<float>(x));
      else b.tensor.add_fp64_contents(x);
      const auto q = numeric::FromDouble(sent, fmt);
      b.raw.values.push_back(q.raw);
      overflows += q.overflowed ? 1 : 0;
    }
    b.overflows = overflows;
    EXPECT_EQ(overflows, 2u);
    pb::BoardInferResponse resp;
    grpc::Status st = c.Infer(lease.lease_id(), b.tensor, &resp);
    ASSERT_TRUE(st.ok()) << st.error_message();
    EXPECT_EQ(resp.input_overflows(), 2u);
    EXPECT_EQ(CheckAnswer(resp, b, ref), "") << "the server did not quantize like numeric::FromDouble";
  }
}

// ---------------------------------------------------------------------------------------------
// 7. Builds from the build server's store.

TEST(BoardServerTest, AcquiresABuildFromTheStore) {
  TempDir t;
  const Firmware a = MakeEmuFirmware(t / "a", 4, 3, "a");
  const std::string build_id = Sha256Hex("build of a");
  const fs::path in_store = t.path / "store" / build_id;
  fs::create_directories(in_store);
  fs::copy(a.dir, in_store, fs::copy_options::recursive);
  ASSERT_TRUE(fs::exists(in_store / firmware::kMetadataFile));

  BoardServerOptions o = Options("emu:1", t / "cache");
  o.store_uri = "file://" + (t / "store");
  auto server = StartServer(o);
  ASSERT_TRUE(server);
  Client c(server->port());

  pb::AcquireRequest r;
  r.set_build_id(build_id);
  r.set_client("from-store");
  pb::Lease lease;
  grpc::Status st = c.Acquire(r, &lease);
  ASSERT_TRUE(st.ok()) << CodeName(st) << ": " << st.error_message();
  EXPECT_FALSE(lease.shared());
  EXPECT_EQ(lease.board().firmware_id(), a.id);
  EXPECT_EQ(lease.board().design_id(), a.meta.id);
  EXPECT_NE(lease.board().firmware_uri().find(build_id), std::string::npos) << lease.board().firmware_uri();
  EXPECT_TRUE(fs::exists(t / ("cache/" + a.id + "/" + firmware::kModelFile)));

  Reference ref(a);
  std::mt19937 rng(21);
  Batch batch = RandomBatch(a, 6, "FP32", rng);
  pb::BoardInferResponse resp;
  ASSERT_TRUE(c.Infer(lease.lease_id(), batch.tensor, &resp).ok());
  EXPECT_EQ(CheckAnswer(resp, batch, ref), "");

  // The same bundle by URI is the same firmware: shared.
  pb::Lease by_uri;
  ASSERT_TRUE(c.Acquire(ByUri(a.uri, "by-uri"), &by_uri).ok());
  EXPECT_TRUE(by_uri.shared());
  EXPECT_EQ(by_uri.board().loads(), 1u);

  // A build the store does not have.
  r.set_build_id(Sha256Hex("never built"));
  EXPECT_CODE(c.Acquire(r, &lease), NOT_FOUND);

  // The remote driver by build id.
  RemoteBoardOptions ro;
  ro.address = "127.0.0.1:" + std::to_string(server->port());
  ro.build_id = build_id;
  ro.client = "remote-build";
  auto d = OpenRemoteBoard(ro);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  auto got = (*d)->Infer(batch.raw);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->outputs.values, ref.Run(batch.raw).outputs.values);
  ro.firmware_uri = a.uri;  // both
  EXPECT_EQ(OpenRemoteBoard(ro).status().code(), StatusCode::kInvalidArgument);
}

// ---------------------------------------------------------------------------------------------
// 8. Bearer tokens.

TEST(BoardServerTest, BearerTokenIsRequired) {
  TempDir t;
  const Firmware a = MakeEmuFirmware(t / "a", 4, 3, "a");
  BoardServerOptions o = Options("emu:1", t / "cache");
  o.token = "s3cret-token";
  auto server = StartServer(o);
  ASSERT_TRUE(server);
  Client none(server->port()), wrong(server->port(), "s3cret-tokeN"), right(server->port(), "s3cret-token");
  pb::ListBoardsResponse list;
  pb::Lease lease;
  pb::BoardInferResponse resp;
  std::mt19937 rng(1);
  Batch batch = RandomBatch(a, 1, "RAW", rng);
  for (Client* c : {&none, &wrong}) {
    EXPECT_CODE(c->List(&list), UNAUTHENTICATED);
    EXPECT_CODE(c->Acquire(ByUri(a.uri), &lease), UNAUTHENTICATED);
    EXPECT_CODE(c->KeepAlive("x"), UNAUTHENTICATED);
    EXPECT_CODE(c->Release("x"), UNAUTHENTICATED);
    EXPECT_CODE(c->Infer("x", batch.tensor, &resp), UNAUTHENTICATED);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 5s);
    auto reader = c->stub().WatchBoards(&ctx, pb::WatchBoardsRequest{});
    pb::ListBoardsResponse r;
    EXPECT_FALSE(reader->Read(&r));
    EXPECT_CODE(reader->Finish(), UNAUTHENTICATED);
  }
  EXPECT_TRUE(right.List(&list).ok());
  EXPECT_EQ(right.Board("emu-0").loads(), 0u);  // the refused Acquire did nothing
  ASSERT_TRUE(right.Acquire(ByUri(a.uri, "ok"), &lease).ok());
  // Someone else's lease id does not help without the token.
  EXPECT_CODE(wrong.Infer(lease.lease_id(), batch.tensor, &resp), UNAUTHENTICATED);
  EXPECT_CODE(wrong.Release(lease.lease_id()), UNAUTHENTICATED);
  EXPECT_TRUE(right.Infer(lease.lease_id(), batch.tensor, &resp).ok());
  EXPECT_TRUE(right.Release(lease.lease_id()).ok());

  RemoteBoardOptions ro;
  ro.address = "127.0.0.1:" + std::to_string(server->port());
  ro.firmware_uri = a.uri;
  ro.token = "nope";
  EXPECT_EQ(OpenRemoteBoard(ro).status().code(), StatusCode::kUnauthenticated);
  ro.token = "s3cret-token";
  auto d = OpenRemoteBoard(ro);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_TRUE((*d)->Infer(batch.raw).ok());
}

// ---------------------------------------------------------------------------------------------
// 9. WatchBoards.

TEST(BoardServerTest, WatchBoardsShowsLoadingThenReady) {
  TempDir t;
  const Firmware a = MakeEmuFirmware(t / "a", 4, 3, "a");
  DriverLog log;
  log.open_delay = 300ms;  // programming takes a while: LOADING is observable
  BoardServerOptions o = Options("emu:1", t / "cache");
  o.open_driver = log.Opener();
  auto server = StartServer(o);
  ASSERT_TRUE(server);
  Client c(server->port());

  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + 20s);
  auto reader = c.stub().WatchBoards(&ctx, pb::WatchBoardsRequest{});
  pb::ListBoardsResponse r;
  ASSERT_TRUE(reader->Read(&r));
  ASSERT_EQ(r.boards_size(), 1);
  EXPECT_EQ(r.boards(0).state(), pb::BOARD_FREE);
  EXPECT_FALSE(r.version().empty());

  pb::Lease lease;
  grpc::Status acquired;
  std::thread acquirer([&] { acquired = Client(server->port()).Acquire(ByUri(a.uri, "watched"), &lease); });
  std::vector<pb::BoardState> states{pb::BOARD_FREE};
  pb::Board last;
  while (reader->Read(&r)) {
    ASSERT_EQ(r.boards_size(), 1);
    last = r.boards(0);
    if (states.back() != last.state()) states.push_back(last.state());
    if (last.state() == pb::BOARD_READY) break;
  }
  acquirer.join();
  ASSERT_TRUE(acquired.ok()) << acquired.error_message();
  EXPECT_EQ(states, (std::vector<pb::BoardState>{pb::BOARD_FREE, pb::BOARD_LOADING, pb::BOARD_READY}));
  EXPECT_EQ(last.firmware_id(), a.id);
  EXPECT_EQ(last.lease_count(), 1);
  ASSERT_EQ(last.clients_size(), 1);
  EXPECT_EQ(last.clients(0), "watched");

  // The release shows up too.
  ASSERT_TRUE(c.Release(lease.lease_id()).ok());
  bool freed = false;
  while (!freed && reader->Read(&r)) freed = r.boards(0).state() == pb::BOARD_FREE && r.boards(0).lease_count() == 0;
  EXPECT_TRUE(freed);

  // Cancelling ends the stream promptly.
  const auto cancelled = Clock::now();
  ctx.TryCancel();
  while (reader->Read(&r)) {
  }
  EXPECT_CODE(reader->Finish(), CANCELLED);
  EXPECT_LT(Clock::now() - cancelled, 2s);

  // A stream open at shutdown ends, and the shutdown does not wait for it.
  grpc::ClientContext ctx2;
  ctx2.set_deadline(std::chrono::system_clock::now() + 20s);
  auto reader2 = c.stub().WatchBoards(&ctx2, pb::WatchBoardsRequest{});
  ASSERT_TRUE(reader2->Read(&r));
  const auto stopping = Clock::now();
  server->Shutdown();
  EXPECT_LT(Clock::now() - stopping, 1500ms);
  while (reader2->Read(&r)) {
  }
  grpc::Status end = reader2->Finish();
  EXPECT_FALSE(end.ok());
  EXPECT_NE(end.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << end.error_message();
}

// ---------------------------------------------------------------------------------------------
// 10. The remote driver loses its board when the server goes away and gets one back when it
// returns on the same port.

TEST(RemoteBoardTest, RecoversAfterTheServerRestarts) {
  TempDir t;
  const Firmware a = MakeEmuFirmware(t / "a", 4, 3, "a");
  auto server_a = StartServer(Options("emu:1", t / "cache"));
  ASSERT_TRUE(server_a);
  const int port = server_a->port();

  std::mutex log_mu;
  std::vector<std::string> events;
  RemoteBoardOptions ro;
  ro.address = "127.0.0.1:" + std::to_string(port);
  ro.firmware_uri = a.uri;
  ro.client = "predictor";
  ro.ttl = 300ms;
  ro.rpc_timeout = 2s;
  ro.acquire_timeout = 5s;
  ro.log = [&](const std::string& line) {
    std::lock_guard lock(log_mu);
    events.push_back(line);
  };
  auto opened = OpenRemoteBoard(ro);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  auto& d = *opened;
  Reference ref(a);
  std::mt19937 rng(31);
  Batch batch = RandomBatch(a, 4, "RAW", rng);
  {
    auto got = d->Infer(batch.raw);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(got->outputs.values, ref.Run(batch.raw).outputs.values);
    EXPECT_TRUE(got->remote);
  }
  // A bad batch is this call's error; the board stays available.
  {
    numeric::RawBatch bad{1, 3, {0, 0, 0}};
    auto got = d->Infer(bad);
    ASSERT_FALSE(got.ok());
    EXPECT_EQ(got.status().code(), StatusCode::kInvalidArgument) << got.status().ToString();
    EXPECT_TRUE(d->Available(nullptr));
  }
  // The lease is renewed in the background well past its ttl.
  std::this_thread::sleep_for(900ms);
  EXPECT_TRUE(d->Available(nullptr));
  {
    Client c(port);
    EXPECT_EQ(c.Board("emu-0").lease_count(), 1);
  }

  server_a->Shutdown();
  const auto down = Clock::now();
  ASSERT_TRUE(WaitFor([&] { return !d->Available(nullptr); }, 1500ms));
  EXPECT_LT(Clock::now() - down, 1200ms);
  std::string reason;
  EXPECT_FALSE(d->Available(&reason));
  EXPECT_NE(reason.find(ro.address), std::string::npos) << reason;
  {
    auto got = d->Infer(batch.raw);
    ASSERT_FALSE(got.ok());
    EXPECT_EQ(got.status().code(), StatusCode::kUnavailable) << got.status().ToString();
  }
  std::this_thread::sleep_for(500ms);  // the driver keeps trying while the server is down
  EXPECT_FALSE(d->Available(nullptr));

  // Server B on the same port with the same cache.
  BoardServerOptions ob = Options("emu:1", t / "cache");
  ob.listen = "127.0.0.1:" + std::to_string(port);
  std::unique_ptr<BoardServer> server_b;
  const auto retry_until = Clock::now() + 2s;
  for (;;) {
    auto s = BoardServer::Start(ob);
    if (s.ok()) {
      server_b = std::move(s).value();
      break;
    }
    ASSERT_LT(Clock::now(), retry_until) << s.status().ToString();
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(server_b->port(), port);
  const auto up = Clock::now();
  ASSERT_TRUE(WaitFor([&] { return d->Available(nullptr); }, 8s)) << "no lease 8 s after the server came back";
  EXPECT_LT(Clock::now() - up, 5s);
  {
    auto got = d->Infer(batch.raw);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(got->outputs.values, ref.Run(batch.raw).outputs.values);
  }
  Client c(port);
  pb::Board board = c.Board("emu-0");
  EXPECT_EQ(board.lease_count(), 1);
  ASSERT_EQ(board.clients_size(), 1);
  EXPECT_EQ(board.clients(0), "predictor");
  EXPECT_EQ(board.firmware_id(), a.id);
  {
    std::lock_guard lock(log_mu);
    EXPECT_GE(events.size(), 3u);  // leased, lost, leased again
  }
  // Closing the driver releases the lease on server B.
  d.reset();
  EXPECT_EQ(c.Board("emu-0").lease_count(), 0);
  server_b->Shutdown();

  // With no server at all, opening fails with UNAVAILABLE.
  ro.acquire_timeout = 2s;
  auto none = OpenRemoteBoard(ro);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), StatusCode::kUnavailable) << none.status().ToString();
}

}  // namespace
}  // namespace fpgaserve::boardsrv
