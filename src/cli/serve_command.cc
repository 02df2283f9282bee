// `fpgaserve serve`: the KServe predictor. Serves a firmware bundle (or a directory of bundles)
// over KServe V1/V2 REST and V2 gRPC, with dynamic batching and Prometheus metrics.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli/app.h"
#include "cli/build_client.h"
#include "cli/grpc_cli.h"
#include "cli/commands.h"
#include "core/file_io.h"
#include "core/text.h"
#include "core/version.h"
#include "services/board/remote_driver.h"
#include "services/bundle_fetch.h"
#include "store/object_store.h"
#include "serving/grpc_server.h"
#include "serving/http_server.h"
#include "serving/metrics.h"
#include "serving/model_repository.h"
#include "serving/rest_api.h"

namespace fpgaserve::cli {
namespace {

struct ServeFlags {
  std::string model_name = "model";
  std::string model_dir;
  std::string address = "127.0.0.1";
  int http_port = 8080;
  int grpc_port = 8081;
  std::string driver = "sim";
  std::size_t max_batch_size = 64;
  long max_queue_delay_us = 0;
  std::size_t max_body_bytes = 64u << 20;
  std::size_t max_request_rows = 65536;
  std::size_t max_tensor_elements = 1u << 22;
  int http_threads = 2;
  int grpc_threads = 1;
  std::string ready_file;
  // Pre-built firmware from a store, and boards of a board server.
  std::string storage_uri;
  std::string cache_dir = "/tmp/fpgaserve-cache";
  std::string board_server;
  std::string board_token_file;
  std::string board_kind;
  std::string board_id;
  long lease_ttl_ms = 10000;
  // On-demand: the model, built by a build server.
  std::string model_uri;
  std::string board;
  std::string engine = "native";
  std::string precision;
  int reuse = 0;
  std::string interface;
  std::string build_server;
  std::string build_token_file;
};


Status Validate(const ServeFlags& f) {
  const int sources = !f.model_dir.empty() + !f.storage_uri.empty() + !f.model_uri.empty();
  if (sources != 1) {
    return InvalidArgument("give exactly one of --model_dir (a bundle or a directory of bundles), --storage_uri (a bundle "
                           "in a store) and --model_uri (a model to build with --build-server)");
  }
  if (!f.model_uri.empty()) {
    if (f.build_server.empty()) return InvalidArgument("--model_uri needs --build-server (the build server that builds it)");
    if (f.board.empty()) return InvalidArgument("--model_uri needs --board (the board to build for; see `fpgaserve boards`)");
    std::error_code ec;
    if (!IsModelUri(f.model_uri) && !std::filesystem::is_regular_file(f.model_uri, ec)) {
      return InvalidArgument("--model_uri " + f.model_uri +
                             ": no such file; expected a model file or a URI (s3://, http(s)://, file://)");
    }
  } else if (!f.build_server.empty() || !f.board.empty()) {
    return InvalidArgument("--build-server and --board are for building --model_uri on demand");
  }
  if ((!f.board_kind.empty() || !f.board_id.empty()) && f.board_server.empty()) {
    return InvalidArgument("--board_kind and --board_id select a board of --board-server");
  }
  if (f.lease_ttl_ms < 100 || f.lease_ttl_ms > 600000) return InvalidArgument("--lease_ttl_ms: expected 100..600000");
  if (!serving::ValidModelName(f.model_name)) {
    return InvalidArgument("--model_name '" + f.model_name + "': expected 1-128 letters, digits, '-', '_' or '.'");
  }
  if (f.http_port < 0 || f.http_port > 65535) return InvalidArgument("--http_port " + std::to_string(f.http_port) + ": expected 0..65535");
  if (f.grpc_port < -1 || f.grpc_port > 65535) return InvalidArgument("--grpc_port " + std::to_string(f.grpc_port) + ": expected 0..65535, or -1 for no gRPC");
  if (!runtime::IsBoardDriverKind(f.driver)) {
    return InvalidArgument("--driver '" + f.driver + "': expected " + Join(runtime::BoardDriverKinds(), ", "));
  }
  if (f.max_batch_size < 1 || f.max_batch_size > (1u << 20)) return InvalidArgument("--max_batch_size: expected 1..1048576");
  if (f.max_queue_delay_us < 0 || f.max_queue_delay_us > 10'000'000) return InvalidArgument("--max_queue_delay_us: expected 0..10000000");
  if (f.http_threads < 1 || f.http_threads > 256) return InvalidArgument("--http_threads: expected 1..256");
  if (f.grpc_threads < 1 || f.grpc_threads > 256) return InvalidArgument("--grpc_threads: expected 1..256");
  if (f.max_body_bytes < 1024) return InvalidArgument("--max_body_bytes: expected at least 1024");
  return Status::Ok();
}

// A board server that is down, or whose boards are all leased for other firmware, is a wait,
// not a failure: loads that failed for those reasons are retried until they succeed.
bool WaitForBoard(const Status& st) {
  return st.code() == StatusCode::kUnavailable || st.code() == StatusCode::kResourceExhausted ||
         st.code() == StatusCode::kDeadlineExceeded;
}

// Runs `load` until it succeeds, fails for another reason, or `stop` is set; between attempts
// (0.5 s doubling to 5 s) the model shows LOADING with the reason.
Status LoadWaitingForBoard(serving::ModelRepository* repo, const std::string& name, const std::function<Status()>& load,
                           const std::atomic<bool>& stop) {
  auto delay = std::chrono::milliseconds(500);
  for (;;) {
    Status st = load();
    if (st.ok() || !WaitForBoard(st) || stop) return st;
    std::cerr << "fpgaserve serve: model " << name << ": waiting for a board (" << st.ToString() << "); retrying in "
              << delay.count() << " ms" << std::endl;
    repo->SetPending(name, serving::ModelState::kLoading, "waiting for a board: " + st.ToString());
    for (auto waited = std::chrono::milliseconds(0); waited < delay && !stop; waited += std::chrono::milliseconds(50)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (stop) return st;
    delay = std::min(delay * 2, std::chrono::milliseconds(5000));
  }
}

// The on-demand path's background work: submit the build, follow it (its progress in the log
// and in the model's reason), fetch the bundle, load it (leasing a board when --board-server).
class OnDemand {
 public:
  ~OnDemand() { Stop(); }

  void Start(const ServeFlags& f, BuildClient client, serving::ModelRepository* repo) {
    worker_ = std::thread([this, &f, c = std::move(client), repo] { Run(f, c, repo); });
  }

  void Stop() {
    stop_ = true;
    cancel_.Cancel();
    if (worker_.joinable()) worker_.join();
  }

  std::string BuildId() const {
    std::lock_guard lock(mu_);
    return build_id_;
  }

 private:
  void Run(const ServeFlags& f, const BuildClient& c, serving::ModelRepository* repo) {
    const std::string& name = f.model_name;
    auto log = [&](const std::string& line) { std::cerr << "fpgaserve serve: model " << name << ": " << line << std::endl; };
    auto fail = [&](const Status& st) {
      log("FAILED: " + st.ToString());
      repo->SetPending(name, serving::ModelState::kFailed, st.ToString());
    };
    ::fpgaserve::v1::SubmitBuildRequest req;
    req.set_board(f.board);
    req.set_engine(f.engine);
    req.set_precision(f.precision);
    req.set_reuse(f.reuse);
    req.set_interface(f.interface);
    req.set_name(name);
    const bool local = !IsModelUri(f.model_uri);
    if (!local) req.set_model_uri(f.model_uri);
    auto submitted = SubmitBuild(c, req, local ? f.model_uri : "");
    if (!submitted.ok()) return fail(submitted.status().WithContext("submitting the build of " + f.model_uri));
    const std::string id = submitted->build_id();
    {
      std::lock_guard lock(mu_);
      build_id_ = id;
    }
    log("build " + id + " " + BuildStateName(submitted->state()) + (submitted->cache_hit() ? " (cache hit)" : ""));
    ::fpgaserve::v1::BuildState state = submitted->state();
    if (!IsTerminalBuildState(state)) {
      auto watched = WatchBuild(
          c, id,
          [&](const ::fpgaserve::v1::BuildEvent& e) {
            const std::string what = std::string(BuildStateName(e.state())) + " " + std::to_string(e.percent()) + "%" +
                                     (e.stage().empty() ? "" : " [" + e.stage() + "]");
            log("build " + id.substr(0, 12) + " " + what + (e.message().empty() ? "" : ": " + e.message()));
            if (!IsTerminalBuildState(e.state())) {
              repo->SetPending(name, serving::ModelState::kLoading, "building firmware " + id.substr(0, 12) + ": " + what);
            }
          },
          &cancel_);
      if (stop_) return;
      if (!watched.ok()) return fail(watched.status().WithContext("following build " + id));
      state = *watched;
    }
    auto b = GetBuild(c, id);
    if (!b.ok()) return fail(b.status().WithContext("build " + id));
    if (b->state() != ::fpgaserve::v1::SUCCEEDED) {
      return fail(Internal("build " + id + " " + BuildStateName(b->state()) +
                           (b->error_code().empty() ? "" : " (" + b->error_code() + ")") + ": " + b->message()));
    }
    repo->SetPending(name, serving::ModelState::kLoading, "fetching firmware " + id.substr(0, 12));
    auto store = store::OpenStore(b->store_uri());
    if (!store.ok()) return fail(store.status().WithContext("the build's store"));
    auto fetched = services::FetchBundle(**store, id + "/", f.cache_dir, "build " + id.substr(0, 12));
    if (!fetched.ok()) return fail(fetched.status());
    if (stop_) return;
    repo->SetPending(name, serving::ModelState::kLoading,
                     f.board_server.empty() ? "loading firmware" : "acquiring a board of " + f.board_server);
    Status loaded = LoadWaitingForBoard(repo, name, [&] { return repo->LoadBundle(name, fetched->dir); }, stop_);
    if (!loaded.ok()) return log("FAILED: " + loaded.ToString());
    log("READY (firmware " + fetched->firmware_id.substr(0, 12) + ", design " + fetched->metadata.id.substr(0, 12) + ")");
  }

  std::atomic<bool> stop_{false};
  WatchCancel cancel_;
  mutable std::mutex mu_;
  std::string build_id_;
  std::thread worker_;
};

int Serve(const ServeFlags& f, const std::vector<std::string>& extras) {
  for (const auto& e : extras) std::cerr << "fpgaserve serve: warning: ignoring unknown argument '" << e << "'\n";
  if (Status st = Validate(f); !st.ok()) return ReportError(st, std::cerr);

  // Signals are taken synchronously by this thread; every server thread inherits the mask.
  const sigset_t signals = BlockStopSignals();

  // A bundle in a store is fetched first (as KServe's storage initializer would), sha256-checked.
  std::string root = f.model_dir;
  if (!f.storage_uri.empty()) {
    std::cerr << "fpgaserve serve: fetching " << f.storage_uri << " into " << f.cache_dir << std::endl;
    auto fetched = services::FetchBundleUri(f.storage_uri, f.cache_dir);
    if (!fetched.ok()) return ReportError(fetched.status().WithContext("--storage_uri"), std::cerr);
    root = fetched->dir;
  }
  std::string board_token;
  if (!f.board_server.empty()) {
    auto t = ReadSecret(f.board_token_file, "--board_token_file");
    if (!t.ok()) return ReportError(t.status(), std::cerr);
    board_token = *t;
  }
  OnDemand on_demand;

  serving::MetricsRegistry metrics;
  serving::ModelRepository::Options ro;
  ro.root = root;
  ro.single_name = f.model_name;
  ro.driver = f.driver;
  ro.limits.max_batch_size = f.max_batch_size;
  ro.limits.max_queue_delay = std::chrono::microseconds(f.max_queue_delay_us);
  ro.limits.max_body_bytes = f.max_body_bytes;
  ro.limits.max_request_rows = f.max_request_rows;
  ro.limits.max_tensor_elements = f.max_tensor_elements;
  if (!f.board_server.empty()) {
    // Every model runs on a board leased from the board server, which fetches the same firmware
    // itself: from the store URI, the build, or (same host) the bundle's directory.
    ro.driver = "remote";
    ro.open_driver = [&f, board_token, &on_demand](const std::string& name, const std::string& dir)
        -> Result<std::unique_ptr<runtime::BoardDriver>> {
      boardsrv::RemoteBoardOptions o;
      o.address = f.board_server;
      o.token = board_token;
      o.board_kind = f.board_kind;
      o.board_id = f.board_id;
      o.client = "predictor " + name + " pid " + std::to_string(::getpid());
      o.ttl = std::chrono::milliseconds(f.lease_ttl_ms);
      if (!f.model_uri.empty()) o.build_id = on_demand.BuildId();
      else if (!f.storage_uri.empty()) o.firmware_uri = f.storage_uri;
      else o.firmware_uri = "file://" + std::filesystem::absolute(dir).lexically_normal().string();
      o.log = [name](const std::string& line) { std::cerr << "fpgaserve serve: model " << name << ": " << line << std::endl; };
      return boardsrv::OpenRemoteBoard(o);
    };
  }
  auto repo = std::make_unique<serving::ModelRepository>(ro, &metrics);
  const serving::ServerInfo info{"fpgaserve", kVersion};
  serving::RestApi api(repo.get(), &metrics, info);
  serving::HttpServer::Options ho;
  ho.address = f.address;
  ho.port = static_cast<std::uint16_t>(f.http_port);
  ho.threads = f.http_threads;
  ho.max_body_bytes = f.max_body_bytes;
  auto http = std::make_unique<serving::HttpServer>(ho, &api);
  if (Status st = http->Start(); !st.ok()) return ReportError(st, std::cerr);
  std::unique_ptr<serving::GrpcServer> grpc;
  if (f.grpc_port >= 0) {
    serving::GrpcServer::Options go;
    go.address = f.address;
    go.port = static_cast<std::uint16_t>(f.grpc_port);
    go.max_message_bytes = f.max_body_bytes;
    go.infer_threads = f.grpc_threads;
    grpc = std::make_unique<serving::GrpcServer>(go, repo.get(), &metrics, info);
    if (Status st = grpc->Start(); !st.ok()) return ReportError(st, std::cerr);
  }
  std::cerr << "fpgaserve serve: HTTP on " << f.address << ":" << http->port();
  if (grpc) std::cerr << ", gRPC on " << f.address << ":" << grpc->port();
  const std::string where = f.board_server.empty() ? "the " + f.driver + " driver" : "board server " + f.board_server;
  if (!f.model_uri.empty()) {
    // On demand: live now, ready once the build succeeded and a board holds its firmware.
    std::cerr << "; building " << f.model_uri << " for " << f.board << " on " << f.build_server << ", then running on "
              << where << std::endl;
    auto build = ConnectBuildServer(f.build_server, f.build_token_file, "");
    if (!build.ok()) return ReportError(build.status(), std::cerr);
    repo->SetPending(f.model_name, serving::ModelState::kLoading, "submitting the build");
    on_demand.Start(f, std::move(build).value(), repo.get());
    if (!f.ready_file.empty()) {
      nlohmann::json j{{"http_port", http->port()}, {"grpc_port", grpc ? grpc->port() : 0}, {"ready", false}};
      if (Status st = WriteFileAtomic(f.ready_file, j.dump() + "\n"); !st.ok()) return ReportError(st, std::cerr);
    }
    const int sig = WaitForStopSignal(signals);
    std::cerr << "fpgaserve serve: signal " << sig << ", shutting down" << std::endl;
    on_demand.Stop();
    http->Stop();
    if (grpc) grpc->Stop();
    repo.reset();
    return kExitOk;
  }
  std::cerr << "; loading " << root << " on " << where << std::endl;

  // Live now, ready once every model is loaded and has passed its warm-up inference.
  Status loaded = repo->LoadAll();
  if (loaded.code() == StatusCode::kNotFound) {
    // Nothing to serve at all (no such directory, or no bundle in it): fail fast, as a pod should.
    http->Stop();
    if (grpc) grpc->Stop();
    return ReportError(loaded, std::cerr);
  }
  if (!loaded.ok()) std::cerr << "fpgaserve serve: " << loaded.ToString() << std::endl;
  // With a board server, models that found no board (server down, boards busy) keep trying.
  std::atomic<bool> stop_retrying{false};
  std::thread retry;
  if (!f.board_server.empty()) {
    std::vector<std::string> failed;
    for (const auto& e : repo->Index()) {
      if (e.state == "FAILED") failed.push_back(e.name);
    }
    if (!failed.empty()) {
      retry = std::thread([&repo, failed, &stop_retrying] {
        for (const auto& name : failed) {
          Status st = LoadWaitingForBoard(repo.get(), name, [&] { return repo->Load(name); }, stop_retrying);
          if (!st.ok() && !stop_retrying) std::cerr << "fpgaserve serve: model " << name << ": " << st.ToString() << std::endl;
        }
      });
    }
  }
  for (const auto& e : repo->Index()) {
    std::cerr << "fpgaserve serve: model " << e.name << " " << e.state << (e.reason.empty() ? "" : ": " + e.reason)
              << std::endl;
  }
  if (!f.ready_file.empty()) {
    nlohmann::json j{{"http_port", http->port()}, {"grpc_port", grpc ? grpc->port() : 0},
                     {"ready", repo->AllReady()}};
    if (Status st = WriteFileAtomic(f.ready_file, j.dump() + "\n"); !st.ok()) return ReportError(st, std::cerr);
  }

  const int sig = WaitForStopSignal(signals);
  std::cerr << "fpgaserve serve: signal " << sig << ", shutting down" << std::endl;
  stop_retrying = true;
  if (retry.joinable()) retry.join();
  // Front ends first (no new work), then the models (queued requests fail), then the rest.
  http->Stop();
  if (grpc) grpc->Stop();
  repo.reset();
  return kExitOk;
}

}  // namespace

void RegisterServe(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("serve", "Serve firmware bundles as a KServe predictor (V1/V2 REST, V2 gRPC)");
  auto f = std::make_shared<ServeFlags>();
  cmd->add_option("--model_name", f->model_name, "Model name when --model_dir is a single bundle")->capture_default_str();
  cmd->add_option("--model_dir", f->model_dir, "A firmware bundle, or a directory with one bundle per model");
  cmd->add_option("--storage_uri,--storage-uri", f->storage_uri, "A firmware bundle in a store (file://, s3://, http(s)://), fetched and checked");
  cmd->add_option("--cache_dir,--cache-dir", f->cache_dir, "Where fetched bundles are kept (one directory per firmware id)")->capture_default_str();
  cmd->add_option("--board-server,--board_server", f->board_server, "Run on a board leased from this board server (host:port)");
  cmd->add_option("--board_token_file", f->board_token_file, "File holding the board server's bearer token");
  cmd->add_option("--board_kind", f->board_kind, "Lease a board of this kind only (sim, emu, ice40, zynq, xrt)");
  cmd->add_option("--board_id", f->board_id, "Lease this board only (an id of `fpgaserve board list`)");
  cmd->add_option("--lease_ttl_ms", f->lease_ttl_ms, "Lease time-to-live asked for (renewed at a third of it)")->capture_default_str();
  cmd->add_option("--model_uri,--model-uri", f->model_uri, "On demand: a model (ONNX, Keras, JSON; a URI or local file) to build with --build-server");
  cmd->add_option("--board", f->board, "On demand: the board to build for (an id of `fpgaserve boards`)");
  cmd->add_option("--engine", f->engine, "On demand: native, bondmachine or hls4ml")->capture_default_str();
  cmd->add_option("--precision", f->precision, "On demand: the firmware precision (default: the compiler's)");
  cmd->add_option("--reuse", f->reuse, "On demand: the reuse factor (0: the smallest that fits)")->capture_default_str();
  cmd->add_option("--interface", f->interface, "On demand: stream, axis or axilite (default: the board's)");
  cmd->add_option("--build-server,--build_server", f->build_server, "On demand: the build server (host:port)");
  cmd->add_option("--build_token_file", f->build_token_file, "File holding the build server's bearer token");
  cmd->add_option("--address", f->address, "Address to listen on (0.0.0.0 inside a pod)")->capture_default_str();
  cmd->add_option("--http_port", f->http_port, "HTTP port (0: any free port)")->capture_default_str();
  cmd->add_option("--grpc_port", f->grpc_port, "gRPC port (0: any free port, -1: no gRPC)")->capture_default_str();
  cmd->add_option("--driver", f->driver, "In-process board driver: sim (Verilator core), emu (bit-exact emulator), ice40, zynq or xrt")->capture_default_str();
  cmd->add_option("--max_batch_size", f->max_batch_size, "Rows coalesced into one device batch")->capture_default_str();
  cmd->add_option("--max_queue_delay_us", f->max_queue_delay_us, "How long a request may wait for others to batch with")->capture_default_str();
  cmd->add_option("--max_body_bytes", f->max_body_bytes, "Largest request body / gRPC message")->capture_default_str();
  cmd->add_option("--max_request_rows", f->max_request_rows, "Largest batch dimension of one request")->capture_default_str();
  cmd->add_option("--max_tensor_elements", f->max_tensor_elements, "Largest input tensor")->capture_default_str();
  cmd->add_option("--http_threads", f->http_threads, "HTTP I/O threads")->capture_default_str();
  cmd->add_option("--grpc_threads", f->grpc_threads, "gRPC ModelInfer threads (one completion queue each)")->capture_default_str();
  cmd->add_option("--ready_file", f->ready_file, "Write {http_port, grpc_port, ready} here once listening and loaded");
  cmd->allow_extras();
  cmd->callback([cmd, f, exit_code] { *exit_code = Serve(*f, cmd->remaining()); });
}

}  // namespace fpgaserve::cli
