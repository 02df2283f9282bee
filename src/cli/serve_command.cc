// `fpgaserve serve`: the KServe predictor. Serves a firmware bundle (or a directory of bundles)
// over KServe V1/V2 REST and V2 gRPC, with dynamic batching and Prometheus metrics.
#include <signal.h>

#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/app.h"
#include "cli/commands.h"
#include "core/file_io.h"
#include "core/version.h"
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
};

Status Validate(const ServeFlags& f) {
  if (f.model_dir.empty()) return InvalidArgument("--model_dir is required (a firmware bundle or a directory of bundles)");
  if (!serving::ValidModelName(f.model_name)) {
    return InvalidArgument("--model_name '" + f.model_name + "': expected 1-128 letters, digits, '-', '_' or '.'");
  }
  if (f.http_port < 0 || f.http_port > 65535) return InvalidArgument("--http_port " + std::to_string(f.http_port) + ": expected 0..65535");
  if (f.grpc_port < -1 || f.grpc_port > 65535) return InvalidArgument("--grpc_port " + std::to_string(f.grpc_port) + ": expected 0..65535, or -1 for no gRPC");
  if (f.driver != "sim" && f.driver != "emu") return InvalidArgument("--driver '" + f.driver + "': expected sim or emu");
  if (f.max_batch_size < 1 || f.max_batch_size > (1u << 20)) return InvalidArgument("--max_batch_size: expected 1..1048576");
  if (f.max_queue_delay_us < 0 || f.max_queue_delay_us > 10'000'000) return InvalidArgument("--max_queue_delay_us: expected 0..10000000");
  if (f.http_threads < 1 || f.http_threads > 256) return InvalidArgument("--http_threads: expected 1..256");
  if (f.grpc_threads < 1 || f.grpc_threads > 256) return InvalidArgument("--grpc_threads: expected 1..256");
  if (f.max_body_bytes < 1024) return InvalidArgument("--max_body_bytes: expected at least 1024");
  return Status::Ok();
}

int Serve(const ServeFlags& f, const std::vector<std::string>& extras) {
  for (const auto& e : extras) std::cerr << "fpgaserve serve: warning: ignoring unknown argument '" << e << "'\n";
  if (Status st = Validate(f); !st.ok()) return ReportError(st, std::cerr);

  // Signals are taken synchronously by this thread; every server thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  serving::MetricsRegistry metrics;
  serving::ModelRepository::Options ro;
  ro.root = f.model_dir;
  ro.single_name = f.model_name;
  ro.driver = f.driver;
  ro.limits.max_batch_size = f.max_batch_size;
  ro.limits.max_queue_delay = std::chrono::microseconds(f.max_queue_delay_us);
  ro.limits.max_body_bytes = f.max_body_bytes;
  ro.limits.max_request_rows = f.max_request_rows;
  ro.limits.max_tensor_elements = f.max_tensor_elements;
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
  std::cerr << "; loading " << f.model_dir << " with the " << f.driver << " driver" << std::endl;

  // Live now, ready once every model is loaded and has passed its warm-up inference.
  Status loaded = repo->LoadAll();
  if (loaded.code() == StatusCode::kNotFound) {
    // Nothing to serve at all (no such directory, or no bundle in it): fail fast, as a pod should.
    http->Stop();
    if (grpc) grpc->Stop();
    return ReportError(loaded, std::cerr);
  }
  if (!loaded.ok()) std::cerr << "fpgaserve serve: " << loaded.ToString() << std::endl;
  for (const auto& e : repo->Index()) {
    std::cerr << "fpgaserve serve: model " << e.name << " " << e.state << (e.reason.empty() ? "" : ": " + e.reason)
              << std::endl;
  }
  if (!f.ready_file.empty()) {
    nlohmann::json j{{"http_port", http->port()}, {"grpc_port", grpc ? grpc->port() : 0},
                     {"ready", repo->AllReady()}};
    if (Status st = WriteFileAtomic(f.ready_file, j.dump() + "\n"); !st.ok()) return ReportError(st, std::cerr);
  }

  int sig = 0;
  sigwait(&signals, &sig);
  std::cerr << "fpgaserve serve: signal " << sig << ", shutting down" << std::endl;
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
  cmd->add_option("--address", f->address, "Address to listen on (0.0.0.0 inside a pod)")->capture_default_str();
  cmd->add_option("--http_port", f->http_port, "HTTP port (0: any free port)")->capture_default_str();
  cmd->add_option("--grpc_port", f->grpc_port, "gRPC port (0: any free port, -1: no gRPC)")->capture_default_str();
  cmd->add_option("--driver", f->driver, "Board driver: sim (Verilator core) or emu (bit-exact emulator)")->capture_default_str();
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
