#include "cli/build_client.h"

#include "cli/grpc_cli.h"

#include <algorithm>
#include <cctype>
#include <filesystem>

#include "core/file_io.h"
#include "core/sha256.h"
#include "firmware/bundle.h"
#include "importers/format.h"
#include "services/grpc_status.h"
#include "store/object_store.h"

namespace fpgaserve::cli {

namespace fs = std::filesystem;
namespace pb = ::fpgaserve::v1;

std::unique_ptr<grpc::ClientContext> BuildClient::Context(std::chrono::seconds timeout) const {
  auto ctx = std::make_unique<grpc::ClientContext>();
  if (timeout.count() > 0) ctx->set_deadline(std::chrono::system_clock::now() + timeout);
  if (!token.empty()) ctx->AddMetadata("authorization", "Bearer " + token);
  return ctx;
}

Status BuildClient::FromGrpc(const grpc::Status& st) const { return FromGrpcStatus(st, "build server " + server); }

Result<BuildClient> ConnectBuildServer(const std::string& server, const std::string& token_file,
                                       const std::string& tls_ca_file) {
  BuildClient c;
  c.server = server;
  ASSIGN_OR_RETURN(c.token, ReadSecret(token_file, "--token-file"));
  ASSIGN_OR_RETURN(auto creds, ClientCredentials(tls_ca_file));
  c.stub = pb::FirmwareBuilder::NewStub(grpc::CreateChannel(server, creds));
  return c;
}

const char* BuildStateName(pb::BuildState s) {
  return s == pb::BUILD_STATE_UNSPECIFIED ? "UNSPECIFIED" : pb::BuildState_Name(s).c_str();
}

bool IsTerminalBuildState(pb::BuildState s) { return s == pb::SUCCEEDED || s == pb::FAILED || s == pb::CANCELLED; }

Result<std::string> UploadModel(const std::string& path, const std::string& store_uri) {
  ASSIGN_OR_RETURN(importers::ModelFormat format, importers::DetectModelFormat(path));
  ASSIGN_OR_RETURN(std::string sha, Sha256File(path));
  std::string ext = fs::path(path).extension().string();
  if (ext.empty() || ext.size() > 8 || !std::all_of(ext.begin() + 1, ext.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)); })) {
    ext = format == importers::ModelFormat::kOnnx ? ".onnx" : format == importers::ModelFormat::kKeras ? ".h5" : ".json";
  }
  ASSIGN_OR_RETURN(auto store, store::OpenStore(store_uri));
  const std::string key = "models/" + sha + ext;
  ASSIGN_OR_RETURN(auto existing, store->Stat(key));
  if (!existing || existing->sha256 != sha) {
    ASSIGN_OR_RETURN(auto put, store->Put(key, path));
    if (put.sha256 != sha) return Internal("uploaded " + key + " but the store holds sha256 " + put.sha256);
  }
  std::string root = store->Uri();
  while (!root.empty() && root.back() == '/') root.pop_back();
  return root + "/" + key;
}

bool IsModelUri(const std::string& model) {
  return model.rfind("s3://", 0) == 0 || model.rfind("http://", 0) == 0 || model.rfind("https://", 0) == 0 ||
         model.rfind("file://", 0) == 0;
}

Result<pb::SubmitBuildResponse> SubmitBuild(const BuildClient& c, pb::SubmitBuildRequest req,
                                            const std::string& local_model) {
  if (!local_model.empty()) {
    // A local file goes to the server's store first.
    pb::HealthResponse h;
    auto hctx = c.Context();
    auto st = c.stub->Health(hctx.get(), pb::HealthRequest(), &h);
    if (!st.ok()) return c.FromGrpc(st);
    auto up = UploadModel(local_model, h.store_uri());
    if (!up.ok()) return up.status().WithContext("uploading " + local_model);
    req.set_model_uri(*up);
  }
  pb::SubmitBuildResponse resp;
  auto ctx = c.Context(std::chrono::seconds(120));
  auto st = c.stub->SubmitBuild(ctx.get(), req, &resp);
  if (!st.ok()) return c.FromGrpc(st);
  return resp;
}

Result<pb::BuildState> WatchBuild(const BuildClient& c, const std::string& id,
                                  const std::function<void(const pb::BuildEvent&)>& on_event, WatchCancel* cancel) {
  pb::WatchBuildRequest req;
  req.set_build_id(id);
  auto ctx = c.Context(std::chrono::seconds(0));
  if (cancel) {
    std::lock_guard lock(cancel->mu);
    if (cancel->cancelled) return Cancelled("watching build " + id + " was cancelled");
    cancel->ctx = ctx.get();
  }
  struct Clear {
    WatchCancel* c;
    ~Clear() {
      if (!c) return;
      std::lock_guard lock(c->mu);
      c->ctx = nullptr;
    }
  } clear{cancel};
  auto reader = c.stub->WatchBuild(ctx.get(), req);
  pb::BuildEvent e;
  pb::BuildState last = pb::BUILD_STATE_UNSPECIFIED;
  while (reader->Read(&e)) {
    last = e.state();
    if (on_event) on_event(e);
    if (IsTerminalBuildState(e.state())) {
      ctx->TryCancel();
      break;
    }
  }
  grpc::Status st = reader->Finish();
  if (!st.ok() && !IsTerminalBuildState(last)) return c.FromGrpc(st);
  return last;
}

Result<pb::Build> GetBuild(const BuildClient& c, const std::string& id) {
  pb::GetBuildRequest req;
  req.set_build_id(id);
  pb::Build b;
  auto ctx = c.Context();
  auto st = c.stub->GetBuild(ctx.get(), req, &b);
  if (!st.ok()) return c.FromGrpc(st);
  return b;
}

Status DownloadBuild(const pb::Build& b, const std::string& dir) {
  if (b.state() != pb::SUCCEEDED) {
    return FailedPrecondition("build " + b.build_id() + " is " + BuildStateName(b.state()) +
                              "; only a SUCCEEDED build has firmware");
  }
  ASSIGN_OR_RETURN(auto store, store::OpenStore(b.store_uri()));
  std::error_code ec;
  if (fs::exists(dir) && !fs::is_empty(dir, ec)) {
    return InvalidArgument("-o " + dir + " exists and is not empty; expected a new or empty directory");
  }
  const std::string prefix = b.build_id() + "/";
  for (const auto& a : b.artifacts()) {
    if (a.key().rfind(prefix, 0) != 0) return Internal("artifact " + a.key() + " is outside " + prefix);
    const std::string rel = a.key().substr(prefix.size());
    RETURN_IF_ERROR(store::ValidateKey(rel));
    const fs::path local = fs::path(dir) / rel;
    fs::create_directories(local.parent_path(), ec);
    ASSIGN_OR_RETURN(auto got, store->Get(a.key(), local.string()));
    if (got.sha256 != a.sha256()) {
      return Internal(a.key() + ": downloaded sha256 " + got.sha256 + ", the build recorded " + a.sha256());
    }
  }
  if (fs::exists(fs::path(dir) / firmware::kMetadataFile)) {
    ASSIGN_OR_RETURN(auto m, firmware::ReadBundleMetadata(dir));
    for (const auto& f : m.files) RETURN_IF_ERROR(firmware::VerifyBundleFile(dir, m, f.path));
  }
  return Status::Ok();
}

}  // namespace fpgaserve::cli
