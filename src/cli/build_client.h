// The build server's client side, shared by `fpgaserve build ...` and the on-demand path of
// `fpgaserve serve` (which submits a build, follows it and fetches its bundle).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "build_service.grpc.pb.h"
#include "core/status.h"

namespace fpgaserve::cli {

struct BuildClient {
  std::unique_ptr<::fpgaserve::v1::FirmwareBuilder::Stub> stub;
  std::string token;
  std::string server;
  // timeout 0: no deadline (streams).
  std::unique_ptr<grpc::ClientContext> Context(std::chrono::seconds timeout = std::chrono::seconds(30)) const;
  // A failed call as our Status, naming the server.
  Status FromGrpc(const grpc::Status& st) const;
};

Result<BuildClient> ConnectBuildServer(const std::string& server, const std::string& token_file,
                                       const std::string& tls_ca_file);

const char* BuildStateName(::fpgaserve::v1::BuildState s);
bool IsTerminalBuildState(::fpgaserve::v1::BuildState s);

// Uploads a local model file to <store>/models/<sha256><ext>; returns the object's URI.
Result<std::string> UploadModel(const std::string& path, const std::string& store_uri);

// A model argument that is already a URI (s3://, http(s)://, file://) rather than a local path.
bool IsModelUri(const std::string& model);

// Submits a build; a local model file is first uploaded to the server's store.
Result<::fpgaserve::v1::SubmitBuildResponse> SubmitBuild(const BuildClient& c, ::fpgaserve::v1::SubmitBuildRequest req,
                                                         const std::string& local_model = "");

// Follows a build until it ends, calling on_event for every event; returns the last state.
// `cancel` (optional) lets another thread end the watch (the result is then CANCELLED).
struct WatchCancel {
  std::mutex mu;
  grpc::ClientContext* ctx = nullptr;
  bool cancelled = false;
  void Cancel() {
    std::lock_guard lock(mu);
    cancelled = true;
    if (ctx) ctx->TryCancel();
  }
};
Result<::fpgaserve::v1::BuildState> WatchBuild(const BuildClient& c, const std::string& id,
                                               const std::function<void(const ::fpgaserve::v1::BuildEvent&)>& on_event,
                                               WatchCancel* cancel = nullptr);

Result<::fpgaserve::v1::Build> GetBuild(const BuildClient& c, const std::string& id);

// Downloads a succeeded build's artifacts into `dir` and checks every bundle file against the
// sha256 in its metadata.json (and every artifact against the digest the server recorded).
Status DownloadBuild(const ::fpgaserve::v1::Build& b, const std::string& dir);

}  // namespace fpgaserve::cli
