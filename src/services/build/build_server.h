// The build server (`fpgaserve build-server`, docs/build-service.md): the gRPC service
// fpgaserve.v1.FirmwareBuilder over a durable job table (job_db.h), a bounded pool of workers
// that fetch the model, compile it (our compiler, or an external engine), and upload the
// artifacts to an object store (store/object_store.h) under <store>/<build_id>/.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "core/status.h"

namespace fpgaserve::build {

struct BuildServerOptions {
  std::string listen = "127.0.0.1:50051";  // host:port; port 0 picks a free one
  std::string store_uri;                   // required: where artifacts go
  std::string db_path;                     // required: the SQLite job table
  std::string work_dir;                    // model cache and build directories; empty: <db>.work
  int workers = 1;                         // concurrent builds, 1..64
  std::string token;                       // non-empty: every RPC needs "authorization: Bearer <token>"
  std::string tls_cert_pem, tls_key_pem;   // both set: TLS
  std::chrono::seconds build_timeout{std::chrono::hours(2)};
  std::uint64_t max_model_bytes = 256ULL << 20;
  std::string ready_file;  // written with {"port": N} once listening
};

// The SHA-256 content address of a build: the model's digest and every option that changes
// what is built (engine, board, precision, reuse, interface), not its name or labels.
std::string BuildId(const std::string& model_sha256, const std::string& engine, const std::string& board,
                    const std::string& precision, int reuse, const std::string& interface);

class BuildServer {
 public:
  // Opens the database (re-queueing builds a previous process left running), opens the store,
  // starts the workers and the gRPC server. Bad options are INVALID_ARGUMENT; a database in use
  // by another server FAILED_PRECONDITION; a port in use UNAVAILABLE.
  static Result<std::unique_ptr<BuildServer>> Start(const BuildServerOptions& options);
  ~BuildServer();

  int port() const;
  // Blocks until Shutdown (from another thread or a signal handler's thread).
  void Wait();
  // Stops accepting RPCs, cancels running builds' tools (they are re-queued on the next start),
  // joins the workers.
  void Shutdown();

  struct Impl;

 private:
  explicit BuildServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace fpgaserve::build
