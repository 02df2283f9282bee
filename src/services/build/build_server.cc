#include "services/build/build_server.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <ctime>
#include <deque>
#include <filesystem>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>
#include <vector>

#include "boards/board.h"
#include "build_service.grpc.pb.h"
#include "core/file_io.h"
#include "core/sha256.h"
#include "core/subprocess.h"
#include "core/version.h"
#include "firmware/bundle.h"
#include "firmware/compiler.h"
#include "importers/format.h"
#include "importers/import.h"
#include "services/build/engines.h"
#include "services/grpc_auth.h"
#include "services/grpc_status.h"
#include "services/build/job_db.h"
#include "store/object_store.h"

namespace fpgaserve::build {
namespace {

namespace fs = std::filesystem;
namespace pb = ::fpgaserve::v1;
using json = nlohmann::json;

grpc::Status ToGrpc(const Status& st) { return ToGrpcStatus(st); }

pb::BuildState ToProto(BuildState s) { return static_cast<pb::BuildState>(static_cast<int>(s) + 1); }

std::int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}


Status CheckBuildId(const std::string& id) {
  const bool ok = id.size() == 64 && std::all_of(id.begin(), id.end(), [](char c) {
                    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
                  });
  if (!ok) return InvalidArgument("build_id '" + id.substr(0, 80) + "': expected 64 lowercase hex digits");
  return Status::Ok();
}

void FillBuild(const BuildRecord& r, const std::string& store_uri, pb::Build* b) {
  b->set_build_id(r.id);
  b->set_state(ToProto(r.state));
  b->set_stage(r.stage);
  b->set_percent(r.percent);
  b->set_message(r.message);
  b->set_error_code(r.error_code);
  b->set_model_uri(r.spec.model_uri);
  b->set_model_sha256(r.spec.model_sha256);
  b->set_board(r.spec.board);
  b->set_engine(r.spec.engine);
  b->set_precision(r.spec.precision);
  b->set_reuse(r.spec.reuse);
  b->set_interface(r.spec.interface);
  b->set_name(r.spec.name);
  for (const auto& [k, v] : r.spec.labels) (*b->mutable_labels())[k] = v;
  b->set_attempts(r.attempts);
  b->set_created_ms(r.created_ms);
  b->set_started_ms(r.started_ms);
  b->set_finished_ms(r.finished_ms);
  b->set_store_uri(store_uri);
  for (const auto& a : r.artifacts) {
    auto* x = b->add_artifacts();
    x->set_key(a.key);
    x->set_size(a.size);
    x->set_sha256(a.sha256);
  }
}

// Progress events of one build, kept in memory for watchers (bounded; the job table holds the
// durable state).
struct Channel {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<pb::BuildEvent> events;
  std::size_t dropped = 0;  // events before events.front()
  static constexpr std::size_t kKeep = 5000;
};

std::string Extension(importers::ModelFormat f) {
  switch (f) {
    case importers::ModelFormat::kOnnx: return ".onnx";
    case importers::ModelFormat::kKeras: return ".h5";
    case importers::ModelFormat::kNeuralbond:
    case importers::ModelFormat::kNative: return ".json";
  }
  return ".bin";
}

// The build state a compile stage belongs to, and a rough percentage.
std::pair<BuildState, int> StageState(const std::string& stage) {
  if (stage == "generate") return {BuildState::kCompiling, 15};
  if (stage == "verilator") return {BuildState::kCompiling, 25};
  if (stage == "synth" || stage == "synth_estimate" || stage == "vivado") return {BuildState::kSynthesizing, 45};
  if (stage == "place_route") return {BuildState::kPlacing, 65};
  return {BuildState::kPacking, 80};  // pack, package_xo, v++
}

}  // namespace

std::string BuildId(const std::string& model_sha256, const std::string& engine, const std::string& board,
                    const std::string& precision, int reuse, const std::string& interface) {
  const json j = {{"build", 1},        {"model_sha256", model_sha256}, {"engine", engine}, {"board", board},
                  {"precision", precision}, {"reuse", reuse},          {"interface", interface}};
  return Sha256Hex(j.dump());
}

struct BuildServer::Impl final : public pb::FirmwareBuilder::Service {
  BuildServerOptions opt;
  std::unique_ptr<JobDb> db;
  std::unique_ptr<store::ObjectStore> out;
  fs::path work;
  std::unique_ptr<grpc::Server> server;
  int port = 0;

  std::mutex mu;  // guards running, channels, stopping
  std::condition_variable wake;
  bool stopping = false;
  struct Running {
    std::shared_ptr<std::atomic<bool>> cancel;
    std::chrono::steady_clock::time_point deadline;
    bool timed_out = false;
  };
  std::map<std::string, Running> running;
  std::map<std::string, std::shared_ptr<Channel>> channels;
  std::vector<std::thread> workers;
  std::thread watchdog;

  std::shared_ptr<Channel> ChannelOf(const std::string& id) {
    std::lock_guard<std::mutex> lock(mu);
    auto& c = channels[id];
    if (!c) c = std::make_shared<Channel>();
    return c;
  }

  void Publish(const std::string& id, BuildState state, const std::string& stage, int percent,
               const std::string& message) {
    auto c = ChannelOf(id);
    pb::BuildEvent e;
    e.set_state(ToProto(state));
    e.set_stage(stage);
    e.set_percent(percent);
    e.set_message(message);
    char stamp[32];
    std::time_t t = std::time(nullptr);
    std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
    e.set_log_line(std::string(stamp) + " " + BuildStateName(state) + (stage.empty() ? "" : " [" + stage + "]") +
                   (message.empty() ? "" : " " + message));
    {
      std::lock_guard<std::mutex> lock(c->mu);
      c->events.push_back(std::move(e));
      if (c->events.size() > Channel::kKeep) {
        c->events.pop_front();
        ++c->dropped;
      }
    }
    c->cv.notify_all();
  }

  Status Authorize(grpc::ServerContext* ctx) const { return CheckBearerToken(ctx, opt.token); }

  // ---- SubmitBuild ----

  Result<pb::SubmitBuildResponse> Submit(const pb::SubmitBuildRequest& req) {
    if (req.model_uri().empty()) return InvalidArgument("model_uri is empty; expected s3://, file:// or http(s)://");
    ASSIGN_OR_RETURN(boards::Board board, boards::FindBoard(req.board()));
    BuildSpec spec;
    spec.model_uri = req.model_uri();
    spec.board = board.id;
    spec.engine = req.engine().empty() ? "native" : req.engine();
    const auto ext = ExternalEngines();
    if (spec.engine != "native" && std::find(ext.begin(), ext.end(), spec.engine) == ext.end()) {
      return InvalidArgument("engine '" + spec.engine + "': expected native, bondmachine or hls4ml");
    }
    if (spec.engine != "native") RETURN_IF_ERROR(CheckEngineAvailable(spec.engine));
    spec.precision = req.precision().empty() ? firmware::kDefaultPrecision : req.precision();
    if (req.reuse() < 0) {
      return InvalidArgument("reuse " + std::to_string(req.reuse()) + ": expected >= 1, or 0 for auto");
    }
    spec.reuse = req.reuse();  // 0: auto, sized to the board by the compiler
    spec.interface = req.interface().empty() ? board.default_interface : req.interface();
    firmware::CompileOptions check;
    check.board = spec.board;
    check.reuse = spec.reuse;
    check.interface = spec.interface;
    RETURN_IF_ERROR(firmware::ValidateCompileOptions(check));
    if (req.name().size() > 256) return InvalidArgument("name is longer than 256 bytes");
    if (req.labels().size() > 64) return InvalidArgument("more than 64 labels");
    for (const auto& [k, v] : req.labels()) {
      if (k.empty() || k.size() > 128 || v.size() > 256) {
        return InvalidArgument("label '" + k.substr(0, 128) + "': expected a 1..128 byte key and a value of at most 256 bytes");
      }
    }
    spec.name = req.name();
    spec.labels = {req.labels().begin(), req.labels().end()};

    // The model's bytes decide the id: fetch them now (bounded), and keep them for the worker.
    store::StoreOptions so;
    so.max_object_bytes = opt.max_model_bytes;
    auto ref = store::OpenObject(spec.model_uri, so);
    if (!ref.ok()) return ref.status().WithContext("model_uri " + spec.model_uri);
    auto bytes = ref->store->GetBytes(ref->key);
    if (!bytes.ok() && bytes.status().code() == StatusCode::kResourceExhausted) {
      return ResourceExhausted("model_uri " + spec.model_uri + " is larger than this server accepts (--max-model-bytes " +
                               std::to_string(opt.max_model_bytes) + ")");
    }
    if (!bytes.ok()) return bytes.status().WithContext("model_uri " + spec.model_uri);
    spec.model_sha256 = Sha256Hex(*bytes);
    const std::string id =
        BuildId(spec.model_sha256, spec.engine, spec.board, spec.precision, spec.reuse, spec.interface);
    ASSIGN_OR_RETURN(auto existing, db->Get(id));
    if (!existing || existing->state == BuildState::kFailed || existing->state == BuildState::kCancelled) {
      // A model we have not built (or a retry): it must import before it is queued.
      ASSIGN_OR_RETURN(spec.model_format, CacheModel(*bytes, spec.model_sha256, spec.model_uri));
    } else {
      spec.model_format = existing->spec.model_format;
    }
    BuildRecord r;
    r.id = id;
    r.spec = spec;
    ASSIGN_OR_RETURN(auto submitted, db->Submit(r));
    pb::SubmitBuildResponse resp;
    resp.set_build_id(id);
    resp.set_state(ToProto(submitted.first.state));
    resp.set_cache_hit(!submitted.second);
    if (submitted.second) {
      Publish(id, BuildState::kQueued, "", 0, "queued: " + spec.engine + " build of " + spec.model_uri + " for " + spec.board);
      wake.notify_one();
    }
    return resp;
  }

  // Writes the model under work/models/<sha256><ext> after checking that it imports; returns
  // its format name.
  Result<std::string> CacheModel(const std::string& bytes, const std::string& sha, const std::string& uri) {
    const fs::path dir = work / "models";
    std::error_code ec;
    fs::create_directories(dir, ec);
    const fs::path tmp = dir / ("incoming-" + sha);
    RETURN_IF_ERROR(WriteFileAtomic(tmp.string(), bytes));
    auto format = importers::DetectModelFormat(tmp.string());
    if (!format.ok()) {
      fs::remove(tmp, ec);
      return InvalidArgument("model_uri " + uri + ": " + format.status().message());
    }
    const fs::path final_path = dir / (sha + Extension(*format));
    fs::rename(tmp, final_path, ec);
    if (ec) return Internal(final_path.string() + ": cannot store the model: " + ec.message());
    importers::ImportOptions io;
    io.format = *format;
    auto graph = importers::ImportModel(final_path.string(), io);
    if (!graph.ok()) {
      fs::remove(final_path, ec);
      // The importer names the cached copy; the user knows the model by its URI.
      std::string why = graph.status().message();
      const std::string cached = final_path.string() + ": ";
      if (why.rfind(cached, 0) == 0) why = why.substr(cached.size());
      return InvalidArgument("model_uri " + uri + " is not a model fpgaserve can build: " + why);
    }
    return std::string(importers::ModelFormatName(*format));
  }

  // ---- workers ----

  void WorkerLoop() {
    while (true) {
      {
        std::unique_lock<std::mutex> lock(mu);
        if (stopping) return;
      }
      auto claimed = db->ClaimNext();
      if (!claimed.ok() || !*claimed) {
        std::unique_lock<std::mutex> lock(mu);
        wake.wait_for(lock, std::chrono::seconds(1), [&] { return stopping; });
        continue;
      }
      RunBuild(**claimed);
    }
  }

  void WatchdogLoop() {
    std::unique_lock<std::mutex> lock(mu);
    while (!stopping) {
      wake.wait_for(lock, std::chrono::milliseconds(200));
      const auto now = std::chrono::steady_clock::now();
      for (auto& [id, r] : running) {
        if (now >= r.deadline && !r.timed_out) {
          r.timed_out = true;
          r.cancel->store(true);
        }
      }
    }
  }

  Result<fs::path> ModelFile(const BuildSpec& spec) {
    ASSIGN_OR_RETURN(importers::ModelFormat format, importers::ParseModelFormat(spec.model_format));
    const fs::path path = work / "models" / (spec.model_sha256 + Extension(format));
    if (fs::exists(path)) {
      ASSIGN_OR_RETURN(std::string sha, Sha256File(path.string()));
      if (sha == spec.model_sha256) return path;
    }
    // Not cached here (another machine's work dir, or damaged): fetch again and check the digest.
    store::StoreOptions so;
    so.max_object_bytes = opt.max_model_bytes;
    ASSIGN_OR_RETURN(auto ref, store::OpenObject(spec.model_uri, so));
    ASSIGN_OR_RETURN(std::string bytes, ref.store->GetBytes(ref.key));
    if (Sha256Hex(bytes) != spec.model_sha256) {
      return FailedPrecondition("model_uri " + spec.model_uri + " changed since the build was submitted (sha256 " +
                                Sha256Hex(bytes) + ", expected " + spec.model_sha256 + ")");
    }
    std::error_code ec;
    fs::create_directories(path.parent_path(), ec);
    RETURN_IF_ERROR(WriteFileAtomic(path.string(), bytes));
    return path;
  }

  void Progress(const std::string& id, BuildState state, const std::string& stage, int percent,
                const std::string& message) {
    (void)db->UpdateProgress(id, state, stage, percent, message);
    Publish(id, state, stage, percent, message);
  }

  void RunBuild(const BuildRecord& rec) {
    const std::string id = rec.id;
    auto cancel = std::make_shared<std::atomic<bool>>(false);
    {
      std::lock_guard<std::mutex> lock(mu);
      running[id] = {cancel, std::chrono::steady_clock::now() + opt.build_timeout, false};
    }
    std::vector<std::string> log;
    Result<std::vector<Artifact>> result = Execute(rec, cancel.get(), &log);
    bool timed_out = false, stopping_now = false;
    {
      std::lock_guard<std::mutex> lock(mu);
      // The watchdog's flag, or a tool's own stage timeout that fired just before it.
      timed_out = running[id].timed_out || std::chrono::steady_clock::now() >= running[id].deadline;
      stopping_now = stopping;
      running.erase(id);
    }
    if (stopping_now && !result.ok()) return;  // left running in the table: re-queued on the next start
    Status end = result.ok() ? Status::Ok() : result.status();
    if (!result.ok() && timed_out) {
      end = DeadlineExceeded("the build ran longer than its limit of " + std::to_string(opt.build_timeout.count()) +
                             " s (--build-timeout)");
    }
    if (end.ok()) {
      (void)db->Finish(id, BuildState::kSucceeded, "", "artifacts in " + out->Uri() + "/" + id + "/", *result);
      Publish(id, BuildState::kSucceeded, "", 100, "done");
    } else if (end.code() == StatusCode::kCancelled) {
      (void)db->Finish(id, BuildState::kCancelled, "CANCELLED", end.message(), {});
      Publish(id, BuildState::kCancelled, "", 100, end.message());
    } else {
      (void)db->Finish(id, BuildState::kFailed, StatusCodeName(end.code()), end.message(), {});
      Publish(id, BuildState::kFailed, "", 100, end.message());
    }
  }

  Result<std::vector<Artifact>> Execute(const BuildRecord& rec, const std::atomic<bool>* cancel,
                                        std::vector<std::string>* log) {
    const std::string& id = rec.id;
    const BuildSpec& spec = rec.spec;
    Progress(id, BuildState::kFetching, "fetch", 5, "model " + spec.model_uri);
    ASSIGN_OR_RETURN(fs::path model_path, ModelFile(spec));
    importers::ImportOptions io;
    ASSIGN_OR_RETURN(io.format, importers::ParseModelFormat(spec.model_format));
    ASSIGN_OR_RETURN(model::Graph graph, importers::ImportModel(model_path.string(), io));
    const fs::path dir = work / "builds" / id;
    std::error_code ec;
    fs::remove_all(dir, ec);
    fs::create_directories(dir, ec);
    if (ec) return Internal(dir.string() + ": cannot create the build directory: " + ec.message());
    const fs::path bundle = dir / "bundle";
    if (cancel->load()) return Cancelled("cancelled before compiling");
    Progress(id, BuildState::kCompiling, "generate", 10, spec.engine + " engine, board " + spec.board);
    std::vector<std::pair<std::string, fs::path>> uploads;  // key suffix -> local file
    if (spec.engine == "native") {
      firmware::CompileOptions o;
      o.board = spec.board;
      o.precision.spec = spec.precision;
      o.reuse = spec.reuse;
      o.interface = spec.interface;
      o.cancel = cancel;
      o.stage_timeout = opt.build_timeout;
      o.on_stage = [&](const std::string& stage) {
        auto [state, percent] = StageState(stage);
        Progress(id, state, stage, percent, "stage " + stage);
      };
      auto compiled = firmware::CompileFirmware(graph, bundle.string(), o);
      if (!compiled.ok()) {
        if (cancel->load()) return Cancelled("cancelled while compiling: " + compiled.status().message());
        return compiled.status();
      }
      ASSIGN_OR_RETURN(auto files, firmware::ListBundleFiles(bundle.string()));
      for (const auto& f : files) uploads.emplace_back(f.path, bundle / f.path);
      // rtl/ again as one archive, for people who want the sources without the bundle.
      if (fs::exists(bundle / "rtl")) {
        SubprocessOptions so;
        so.cancel = cancel;
        so.timeout = std::chrono::minutes(5);
        auto tar = RunSubprocess({"tar", "-C", bundle.string(), "-czf", (dir / "rtl.tar.gz").string(), "rtl"}, so);
        if (!tar.ok()) return tar.status().WithContext("tar rtl.tar.gz");
        if (!tar->success()) return Internal("tar rtl.tar.gz: " + tar->Describe() + ": " + tar->stderr_text);
        uploads.emplace_back("rtl.tar.gz", dir / "rtl.tar.gz");
      }
      uploads.emplace_back(firmware::kMetadataFile, bundle / firmware::kMetadataFile);  // last: marks completeness
    } else {
      EngineRequest er;
      er.graph = &graph;
      ASSIGN_OR_RETURN(er.board, boards::FindBoard(spec.board));
      er.precision = spec.precision;
      er.reuse = std::max(1, spec.reuse);
      er.interface = spec.interface;
      er.work_dir = (dir / "work").string();
      er.out_dir = bundle.string();
      er.timeout = opt.build_timeout;
      er.cancel = cancel;
      er.log = [&](const std::string& line) { Publish(id, BuildState::kSynthesizing, spec.engine, 50, line); };
      fs::create_directories(er.work_dir, ec);
      Progress(id, BuildState::kSynthesizing, spec.engine, 40, "running " + spec.engine);
      auto ran = RunExternalEngine(spec.engine, er);
      if (!ran.ok()) return ran.status();
      for (const auto& a : ran->artifacts) uploads.emplace_back(a, bundle / a);
    }
    if (cancel->load()) return Cancelled("cancelled before uploading");
    Progress(id, BuildState::kUploading, "upload", 90, "to " + out->Uri() + "/" + id + "/");
    // The build log (this build's progress) goes up too.
    {
      auto c = ChannelOf(id);
      std::string text;
      std::lock_guard<std::mutex> lock(c->mu);
      for (const auto& e : c->events) text += e.log_line() + "\n";
      RETURN_IF_ERROR(WriteFileAtomic((dir / "build.log").string(), text));
    }
    uploads.insert(uploads.end() - (spec.engine == "native" ? 1 : 0), {"logs/build.log", dir / "build.log"});
    std::vector<Artifact> artifacts;
    for (const auto& [suffix, path] : uploads) {
      if (cancel->load()) return Cancelled("cancelled while uploading");
      const std::string key = id + "/" + suffix;
      auto put = out->Put(key, path.string());
      if (!put.ok()) return put.status().WithContext("uploading " + key + " to " + out->Uri());
      artifacts.push_back({key, put->size, put->sha256});
    }
    fs::remove_all(dir, ec);
    return artifacts;
  }

  // ---- RPCs ----

  grpc::Status SubmitBuild(grpc::ServerContext* ctx, const pb::SubmitBuildRequest* req,
                           pb::SubmitBuildResponse* resp) override {
    if (auto st = Authorize(ctx); !st.ok()) return ToGrpc(st);
    auto r = Submit(*req);
    if (!r.ok()) return ToGrpc(r.status());
    *resp = *r;
    return grpc::Status::OK;
  }

  grpc::Status GetBuild(grpc::ServerContext* ctx, const pb::GetBuildRequest* req, pb::Build* resp) override {
    if (auto st = Authorize(ctx); !st.ok()) return ToGrpc(st);
    if (auto st = CheckBuildId(req->build_id()); !st.ok()) return ToGrpc(st);
    auto r = db->Get(req->build_id());
    if (!r.ok()) return ToGrpc(r.status());
    if (!*r) return ToGrpc(NotFound("no build " + req->build_id()));
    FillBuild(**r, out->Uri(), resp);
    return grpc::Status::OK;
  }

  grpc::Status ListBuilds(grpc::ServerContext* ctx, const pb::ListBuildsRequest* req,
                          pb::ListBuildsResponse* resp) override {
    if (auto st = Authorize(ctx); !st.ok()) return ToGrpc(st);
    ListFilter f;
    if (req->state() != pb::BUILD_STATE_UNSPECIFIED) {
      if (req->state() < pb::QUEUED || req->state() > pb::CANCELLED) {
        return ToGrpc(InvalidArgument("state " + std::to_string(req->state()) + ": expected a BuildState"));
      }
      f.state = static_cast<BuildState>(req->state() - 1);
    }
    f.board = req->board();
    f.labels = {req->labels().begin(), req->labels().end()};
    f.page_token = req->page_token();
    f.page_size = req->page_size() == 0 ? 50 : req->page_size();
    auto page = db->List(f);
    if (!page.ok()) return ToGrpc(page.status());
    for (const auto& r : page->builds) FillBuild(r, out->Uri(), resp->add_builds());
    resp->set_next_page_token(page->next_page_token);
    return grpc::Status::OK;
  }

  grpc::Status CancelBuild(grpc::ServerContext* ctx, const pb::CancelBuildRequest* req, pb::Build* resp) override {
    if (auto st = Authorize(ctx); !st.ok()) return ToGrpc(st);
    if (auto st = CheckBuildId(req->build_id()); !st.ok()) return ToGrpc(st);
    auto r = db->RequestCancel(req->build_id());
    if (!r.ok()) return ToGrpc(r.status());
    {
      std::lock_guard<std::mutex> lock(mu);
      auto it = running.find(req->build_id());
      if (it != running.end()) it->second.cancel->store(true);
    }
    if (r->state == BuildState::kCancelled) Publish(r->id, BuildState::kCancelled, "", 100, "cancelled while queued");
    FillBuild(*r, out->Uri(), resp);
    return grpc::Status::OK;
  }

  grpc::Status WatchBuild(grpc::ServerContext* ctx, const pb::WatchBuildRequest* req,
                          grpc::ServerWriter<pb::BuildEvent>* writer) override {
    if (auto st = Authorize(ctx); !st.ok()) return ToGrpc(st);
    if (auto st = CheckBuildId(req->build_id()); !st.ok()) return ToGrpc(st);
    const std::string id = req->build_id();
    auto rec = db->Get(id);
    if (!rec.ok()) return ToGrpc(rec.status());
    if (!*rec) return ToGrpc(NotFound("no build " + id));
    auto current = [&](const BuildRecord& r) {
      pb::BuildEvent e;
      e.set_state(ToProto(r.state));
      e.set_stage(r.stage);
      e.set_percent(r.percent);
      e.set_message(r.message);
      return e;
    };
    if (!writer->Write(current(**rec))) return grpc::Status::OK;
    if (IsTerminal((*rec)->state)) return grpc::Status::OK;
    auto c = ChannelOf(id);
    std::size_t next;  // absolute index of the next event to send
    {
      std::lock_guard<std::mutex> lock(c->mu);
      next = c->dropped + c->events.size();
    }
    while (!ctx->IsCancelled()) {
      std::vector<pb::BuildEvent> batch;
      {
        std::unique_lock<std::mutex> lock(c->mu);
        c->cv.wait_for(lock, std::chrono::milliseconds(500),
                       [&] { return c->dropped + c->events.size() > next; });
        next = std::max(next, c->dropped);
        for (; next < c->dropped + c->events.size(); ++next) batch.push_back(c->events[next - c->dropped]);
      }
      for (const auto& e : batch) {
        if (!writer->Write(e)) return grpc::Status::OK;
        if (e.state() == pb::SUCCEEDED || e.state() == pb::FAILED || e.state() == pb::CANCELLED) {
          return grpc::Status::OK;
        }
      }
      if (batch.empty()) {
        // Ended without an event here (e.g. another process finished it): the table decides.
        auto now = db->Get(id);
        if (now.ok() && *now && IsTerminal((*now)->state)) {
          writer->Write(current(**now));
          return grpc::Status::OK;
        }
      }
    }
    return grpc::Status::OK;
  }

  grpc::Status Health(grpc::ServerContext* ctx, const pb::HealthRequest*, pb::HealthResponse* resp) override {
    if (auto st = Authorize(ctx); !st.ok()) return ToGrpc(st);
    resp->set_status("SERVING");
    resp->set_version(kVersion);
    resp->set_store_uri(out->Uri());
    resp->set_workers(opt.workers);
    ListFilter f;
    f.state = BuildState::kQueued;
    f.page_size = 1000;
    auto q = db->List(f);
    resp->set_queued(q.ok() ? static_cast<int>(q->builds.size()) : -1);
    std::lock_guard<std::mutex> lock(mu);
    resp->set_running(static_cast<int>(running.size()));
    return grpc::Status::OK;
  }
};

BuildServer::BuildServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

BuildServer::~BuildServer() { Shutdown(); }

int BuildServer::port() const { return impl_->port; }

void BuildServer::Wait() {
  if (impl_->server) impl_->server->Wait();
}

void BuildServer::Shutdown() {
  Impl& s = *impl_;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    if (s.stopping && s.workers.empty()) return;
    s.stopping = true;
    for (auto& [id, r] : s.running) r.cancel->store(true);
  }
  s.wake.notify_all();
  if (s.server) s.server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  for (auto& t : s.workers) t.join();
  s.workers.clear();
  if (s.watchdog.joinable()) s.watchdog.join();
}

Result<std::unique_ptr<BuildServer>> BuildServer::Start(const BuildServerOptions& options) {
  if (options.store_uri.empty()) return InvalidArgument("--store is required (file:///dir, s3://bucket/prefix)");
  if (options.db_path.empty()) return InvalidArgument("--db is required (the SQLite job table)");
  if (options.workers < 1 || options.workers > 64) {
    return InvalidArgument("--workers " + std::to_string(options.workers) + ": expected 1..64");
  }
  if (options.build_timeout.count() < 1) return InvalidArgument("--build-timeout: expected at least 1 second");
  if (options.tls_cert_pem.empty() != options.tls_key_pem.empty()) {
    return InvalidArgument("TLS needs both --tls-cert and --tls-key");
  }
  auto impl = std::make_unique<Impl>();
  impl->opt = options;
  impl->work = options.work_dir.empty() ? fs::path(options.db_path + ".work") : fs::path(options.work_dir);
  std::error_code ec;
  fs::create_directories(impl->work, ec);
  if (ec) return InvalidArgument("work directory " + impl->work.string() + ": " + ec.message());
  ASSIGN_OR_RETURN(impl->db, JobDb::Open(options.db_path));
  ASSIGN_OR_RETURN(impl->out, store::OpenStore(options.store_uri));
  if (impl->out->ReadOnly()) return InvalidArgument("--store " + options.store_uri + " is read-only");
  ASSIGN_OR_RETURN(int requeued, impl->db->RequeueInterrupted());
  (void)requeued;

  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.listen, ServerCredentials(options.tls_cert_pem, options.tls_key_pem), &impl->port);
  builder.RegisterService(impl.get());
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);  // a port in use is an error, not shared
  builder.SetMaxReceiveMessageSize(4 << 20);
  impl->server = builder.BuildAndStart();
  if (!impl->server || impl->port == 0) {
    return Unavailable("cannot listen on " + options.listen + " (address in use or invalid)");
  }
  Impl* raw = impl.get();
  for (int i = 0; i < options.workers; ++i) impl->workers.emplace_back([raw] { raw->WorkerLoop(); });
  impl->watchdog = std::thread([raw] { raw->WatchdogLoop(); });
  std::unique_ptr<BuildServer> server(new BuildServer(std::move(impl)));  // stops everything on failure below
  if (!options.ready_file.empty()) {
    RETURN_IF_ERROR(WriteFileAtomic(options.ready_file, json{{"port", server->port()}}.dump() + "\n"));
  }
  return server;
}

}  // namespace fpgaserve::build
