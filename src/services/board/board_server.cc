#include "services/board/board_server.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "board_service.grpc.pb.h"
#include "boards/board.h"
#include "core/file_io.h"
#include "core/text.h"
#include "core/version.h"
#include "numeric/number_format.h"
#include "services/bundle_fetch.h"
#include "services/grpc_auth.h"
#include "services/grpc_status.h"
#include "store/object_store.h"

namespace fpgaserve::boardsrv {
namespace {

namespace fs = std::filesystem;
namespace pb = ::fpgaserve::v1;
using Clock = std::chrono::steady_clock;


double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

std::string RandomHex(std::size_t bytes) {
  static thread_local std::random_device rd;
  static const char* kHex = "0123456789abcdef";
  std::string s;
  for (std::size_t i = 0; i < bytes; ++i) {
    const unsigned v = rd() & 0xFF;
    s += kHex[v >> 4];
    s += kHex[v & 0xF];
  }
  return s;
}

bool IsHex64(const std::string& s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

std::string PartOf(const std::string& kind) {
  if (kind == "sim") return "verilator";
  if (kind == "emu") return "emulator";
  if (kind == "ice40") return "iCE40UP5K";
  if (kind == "zynq") return "Zynq-7000";
  return "Alveo";
}

}  // namespace

Result<std::vector<BoardSpec>> ParseBoardSpecs(const std::string& text) {
  std::vector<BoardSpec> out;
  std::size_t total = 0;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t end = text.find(',', start);
    if (end == std::string::npos) end = text.size();
    std::string item = text.substr(start, end - start);
    start = end + 1;
    item.erase(0, item.find_first_not_of(" \t"));
    item.erase(item.find_last_not_of(" \t") + 1);
    if (item.empty()) return InvalidArgument("--boards " + Quote(text, 200) + ": empty item; expected kind[:count],...");
    BoardSpec spec;
    const auto colon = item.find(':');
    spec.kind = item.substr(0, colon);
    if (!runtime::IsBoardDriverKind(spec.kind)) {
      return InvalidArgument("--boards: unknown board kind " + Quote(spec.kind) + "; expected " +
                             Join(runtime::BoardDriverKinds(), ", "));
    }
    if (colon != std::string::npos) {
      const std::string n = item.substr(colon + 1);
      if (n.empty() || n.size() > 3 || !std::all_of(n.begin(), n.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }) ||
          std::stoi(n) < 1 || std::stoi(n) > 64) {
        return InvalidArgument("--boards: " + Quote(item) + ": the count must be 1..64");
      }
      spec.count = std::stoi(n);
    }
    if (spec.count > 1 && spec.kind != "sim" && spec.kind != "emu") {
      return InvalidArgument("--boards: " + Quote(item) + ": one " + spec.kind +
                             " board per board server (its driver addresses one device: the serial port, "
                             "FPGA Manager or card index of its options); run a server per board");
    }
    for (const auto& s : out) {
      if (s.kind == spec.kind) return InvalidArgument("--boards: kind " + Quote(spec.kind) + " given twice");
    }
    total += static_cast<std::size_t>(spec.count);
    out.push_back(spec);
    if (end == text.size()) break;
  }
  if (out.empty()) return InvalidArgument("--boards is empty; expected kind[:count],... such as sim:2,emu:1");
  if (total > 256) return InvalidArgument("--boards: " + std::to_string(total) + " boards; at most 256");
  return out;
}

bool KindRunsBoard(const std::string& kind, const std::string& board_family) {
  // Every bundle carries the Verilator build of its core and its model, whatever its board.
  if (kind == "sim" || kind == "emu") return true;
  if (kind == "ice40") return board_family == "ice40";
  if (kind == "zynq") return board_family == "zynq7000";
  if (kind == "xrt") return board_family == "virtex-ultrascale+";
  return false;
}

struct BoardServer::Impl final : public pb::BoardService::Service {
  struct Slot {
    std::string id, kind, part;
    pb::BoardState state = pb::BOARD_FREE;
    std::string firmware_id, design_id, firmware_uri, bundle_dir;
    std::string loading_id;  // the firmware being programmed (state LOADING)
    std::unique_ptr<runtime::BoardDriver> driver;
    firmware::BundleMetadata metadata;
    int leases = 0;
    int inflight = 0;
    std::uint64_t inferences = 0, loads = 0;
    std::string error;
    Clock::time_point last_used{};
    std::mutex run;  // held by every driver call and by programming
  };
  struct LeaseRec {
    std::size_t board = 0;
    std::string firmware_id;
    std::string client;
    std::chrono::milliseconds ttl{0};
    Clock::time_point expires;
  };

  BoardServerOptions opt;
  std::unique_ptr<store::ObjectStore> builds;  // --store, for build ids
  std::unique_ptr<grpc::Server> server;
  int port = 0;

  std::mutex mu;  // guards everything below and every Slot's fields except `run` and `driver`
  std::condition_variable changed;    // board or lease changes (Acquire waiting on a load, WatchBoards)
  std::condition_variable reaper_cv;  // only Shutdown wakes the reaper early
  std::uint64_t version = 0;  // bumped on every change WatchBoards shows
  bool stopping = false;
  std::vector<std::unique_ptr<Slot>> slots;
  std::map<std::string, LeaseRec> leases;
  std::thread reaper;

  Status Authorize(grpc::ServerContext* ctx) const { return CheckBearerToken(ctx, opt.token); }

  void NotifyLocked() {
    ++version;
    changed.notify_all();
  }

  static pb::BoardState Displayed(const Slot& s) {
    if (s.state == pb::BOARD_LOADING || s.state == pb::BOARD_ERROR) return s.state;
    if (s.inflight > 0) return pb::BOARD_BUSY;
    return s.leases > 0 ? pb::BOARD_READY : pb::BOARD_FREE;
  }

  void FillBoardLocked(std::size_t i, pb::Board* b) const {
    const Slot& s = *slots[i];
    b->set_id(s.id);
    b->set_kind(s.kind);
    b->set_part(s.part);
    b->set_state(Displayed(s));
    b->set_firmware_id(s.firmware_id);
    b->set_design_id(s.design_id);
    b->set_firmware_uri(s.firmware_uri);
    b->set_lease_count(s.leases);
    for (const auto& [id, l] : leases) {
      if (l.board == i) b->add_clients(l.client);
    }
    b->set_inferences(s.inferences);
    b->set_loads(s.loads);
    b->set_error(s.error);
  }

  void FillListLocked(pb::ListBoardsResponse* r) const {
    r->set_version(kVersion);
    for (std::size_t i = 0; i < slots.size(); ++i) FillBoardLocked(i, r->add_boards());
  }

  // What each board does, for RESOURCE_EXHAUSTED: "sim-0 (ready, firmware 1a2b3c4d5e6f from
  // s3://…, 2 leases: predictor-a, predictor-b)".
  std::string DescribeLocked(const std::vector<std::size_t>& which) const {
    std::vector<std::string> parts;
    for (auto i : which) {
      const Slot& s = *slots[i];
      std::vector<std::string> clients;
      for (const auto& [id, l] : leases) {
        if (l.board == i) clients.push_back(l.client.empty() ? "(unnamed)" : l.client);
      }
      std::string state = pb::BoardState_Name(Displayed(s));
      state = Lower(state.substr(6));
      std::string what = s.id + " (" + state;
      const std::string fw = s.state == pb::BOARD_LOADING ? s.loading_id : s.firmware_id;
      if (!fw.empty()) what += ", firmware " + fw.substr(0, 12) + (s.firmware_uri.empty() ? "" : " from " + s.firmware_uri);
      what += ", " + std::to_string(s.leases) + (s.leases == 1 ? " lease" : " leases");
      if (!clients.empty()) what += ": " + Join(clients, ", ");
      if (s.inflight > 0) what += ", " + std::to_string(s.inflight) + " inference(s) running";
      parts.push_back(what + ")");
    }
    return Join(parts, "; ");
  }

  static std::string Lower(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  }

  // ---- firmware ----

  Result<services::FetchedBundle> Fetch(const pb::AcquireRequest& req, std::string* uri) {
    if (req.firmware_case() == pb::AcquireRequest::kBuildId) {
      const std::string& id = req.build_id();
      if (!IsHex64(id)) return InvalidArgument("build_id " + Quote(id, 80) + ": expected 64 lowercase hex digits");
      if (!builds) {
        return FailedPrecondition("this board server has no --store, so it cannot fetch build " + id.substr(0, 12) +
                                  "; start it with the build server's --store, or acquire by firmware_uri");
      }
      *uri = builds->Uri() + "/" + id;
      return services::FetchBundle(*builds, id + "/", opt.cache_dir, "build " + id.substr(0, 12) + " in " + builds->Uri());
    }
    if (req.firmware_case() == pb::AcquireRequest::kFirmwareUri && !req.firmware_uri().empty()) {
      *uri = req.firmware_uri();
      return services::FetchBundleUri(req.firmware_uri(), opt.cache_dir);
    }
    return InvalidArgument("Acquire needs firmware_uri (a bundle directory URI) or build_id");
  }

  // ---- Acquire ----

  Result<pb::Lease> DoAcquire(const pb::AcquireRequest& req) {
    const auto started = Clock::now();
    if (!req.board_kind().empty() && !runtime::IsBoardDriverKind(req.board_kind())) {
      return InvalidArgument("board_kind " + Quote(req.board_kind()) + ": expected " +
                             Join(runtime::BoardDriverKinds(), ", ") + " or empty");
    }
    if (req.ttl_ms() < 0) return InvalidArgument("ttl_ms " + std::to_string(req.ttl_ms()) + ": expected >= 0");
    if (req.client().size() > 256) return InvalidArgument("client name longer than 256 bytes");
    // A requested TTL is kept within 100 ms (the reaper's resolution) and the server's maximum.
    const auto ttl = req.ttl_ms() == 0
                         ? opt.default_ttl
                         : std::clamp(std::chrono::milliseconds(req.ttl_ms()), std::chrono::milliseconds(100), opt.max_ttl);
    std::string uri;
    ASSIGN_OR_RETURN(services::FetchedBundle fw, Fetch(req, &uri));
    std::string family;
    if (auto b = boards::FindBoard(fw.metadata.board); b.ok()) family = b->family;
    else family = fw.metadata.board == "sim" ? "sim" : "";

    std::unique_lock lock(mu);
    for (;;) {
      if (stopping) return Unavailable("the board server is shutting down");
      std::vector<std::size_t> candidates;
      for (std::size_t i = 0; i < slots.size(); ++i) {
        const Slot& s = *slots[i];
        if (!req.board_kind().empty() && s.kind != req.board_kind()) continue;
        if (!req.board_id().empty() && s.id != req.board_id()) continue;
        if (!KindRunsBoard(s.kind, family)) continue;
        candidates.push_back(i);
      }
      if (candidates.empty()) {
        std::vector<std::string> have;
        for (const auto& s : slots) have.push_back(s->id);
        return FailedPrecondition("no board here can run firmware for board " + Quote(fw.metadata.board) +
                                  (req.board_kind().empty() ? "" : " of kind " + Quote(req.board_kind())) +
                                  (req.board_id().empty() ? "" : " with id " + Quote(req.board_id())) +
                                  "; this server has " + Join(have, ", "));
      }
      // 1. A board that holds this firmware: share it.
      for (auto i : candidates) {
        Slot& s = *slots[i];
        if (s.state != pb::BOARD_LOADING && s.state != pb::BOARD_ERROR && s.firmware_id == fw.firmware_id && s.driver) {
          return GrantLocked(i, fw, uri, req.client(), ttl, /*shared=*/true, started);
        }
      }
      // 2. Being programmed with it right now: wait for that load, then share.
      bool wait = false;
      for (auto i : candidates) {
        if (slots[i]->state == pb::BOARD_LOADING && slots[i]->loading_id == fw.firmware_id) wait = true;
      }
      if (wait) {
        changed.wait(lock);
        continue;
      }
      // 3. A free board (no lease, nothing running): empty ones first, then the least recently used.
      std::optional<std::size_t> pick;
      for (auto i : candidates) {
        const Slot& s = *slots[i];
        if (s.leases > 0 || s.inflight > 0 || s.state == pb::BOARD_LOADING) continue;
        if (!pick) {
          pick = i;
          continue;
        }
        const Slot& p = *slots[*pick];
        const bool s_empty = s.firmware_id.empty(), p_empty = p.firmware_id.empty();
        if ((s_empty && !p_empty) || (s_empty == p_empty && s.last_used < p.last_used)) pick = i;
      }
      if (!pick) {
        return ResourceExhausted("no free board for firmware " + fw.firmware_id.substr(0, 12) + " (" +
                                 fw.metadata.board + "); every compatible board is leased: " + DescribeLocked(candidates) +
                                 ". Retry after a lease is released or expires");
      }
      return LoadAndGrantLocked(lock, *pick, fw, uri, req.client(), ttl, started);
    }
  }

  Result<pb::Lease> LoadAndGrantLocked(std::unique_lock<std::mutex>& lock, std::size_t i,
                                       const services::FetchedBundle& fw, const std::string& uri,
                                       const std::string& client, std::chrono::milliseconds ttl,
                                       Clock::time_point started) {
    Slot& s = *slots[i];
    s.state = pb::BOARD_LOADING;
    s.loading_id = fw.firmware_id;
    s.error.clear();
    NotifyLocked();
    lock.unlock();
    Result<std::unique_ptr<runtime::BoardDriver>> driver = Internal("not opened");
    {
      // Nobody holds a lease and nothing runs (checked under mu); the run lock makes sure.
      std::lock_guard run(s.run);
      s.driver.reset();
      driver = opt.open_driver(s.kind, fw.dir);
      if (driver.ok()) {
        // One all-zero row proves the board answers with the bundle's shape.
        numeric::RawBatch zero{1, static_cast<std::size_t>(fw.metadata.n_inputs),
                               std::vector<numeric::RawValue>(static_cast<std::size_t>(fw.metadata.n_inputs), 0)};
        auto warm = (*driver)->Infer(zero);
        if (!warm.ok()) {
          driver = warm.status().WithContext("warm-up inference on " + s.id);
        } else if (warm->outputs.rows != 1 || warm->outputs.features != static_cast<std::size_t>(fw.metadata.n_outputs)) {
          driver = Internal("warm-up inference on " + s.id + " returned the wrong shape");
        }
      }
      if (driver.ok()) s.driver = std::move(driver).value();
    }
    lock.lock();
    s.loading_id.clear();
    ++s.loads;
    if (!s.driver) {
      s.state = pb::BOARD_ERROR;
      s.firmware_id.clear();
      s.design_id.clear();
      s.firmware_uri.clear();
      s.error = driver.status().message();
      NotifyLocked();
      return driver.status().WithContext("loading firmware " + fw.firmware_id.substr(0, 12) + " onto " + s.id);
    }
    s.state = pb::BOARD_FREE;
    s.firmware_id = fw.firmware_id;
    s.design_id = fw.metadata.id;
    s.firmware_uri = uri;
    s.bundle_dir = fw.dir;
    s.metadata = fw.metadata;
    return GrantLocked(i, fw, uri, client, ttl, /*shared=*/false, started);
  }

  Result<pb::Lease> GrantLocked(std::size_t i, const services::FetchedBundle& fw, const std::string& uri,
                                const std::string& client, std::chrono::milliseconds ttl, bool shared,
                                Clock::time_point started) {
    Slot& s = *slots[i];
    (void)uri;
    std::string id = RandomHex(16);
    LeaseRec rec{i, fw.firmware_id, client, ttl, Clock::now() + ttl};
    leases[id] = rec;
    ++s.leases;
    s.last_used = Clock::now();
    NotifyLocked();
    pb::Lease l;
    l.set_lease_id(id);
    FillBoardLocked(i, l.mutable_board());
    l.set_ttl_ms(ttl.count());
    l.set_shared(shared);
    l.set_load_seconds(Seconds(Clock::now() - started));
    l.set_metadata_json(firmware::MetadataToJson(fw.metadata));
    return l;
  }

  void DropLeaseLocked(std::map<std::string, LeaseRec>::iterator it) {
    Slot& s = *slots[it->second.board];
    --s.leases;
    leases.erase(it);
    NotifyLocked();
  }

  // ---- Infer ----

  Result<pb::BoardInferResponse> DoInfer(const pb::BoardInferRequest& req, Clock::time_point received) {
    std::size_t i = 0;
    firmware::BundleMetadata meta;
    {
      std::lock_guard lock(mu);
      auto it = leases.find(req.lease_id());
      if (it == leases.end()) {
        return NotFound("unknown lease " + Quote(req.lease_id(), 40) + " (expired, released, or the board server restarted); acquire again");
      }
      it->second.expires = Clock::now() + it->second.ttl;
      i = it->second.board;
      Slot& s = *slots[i];
      if (!s.driver || s.firmware_id != it->second.firmware_id) {
        return Internal("board " + s.id + " does not hold the lease's firmware");  // never: leased boards are not reloaded
      }
      meta = s.metadata;
      // Counted from here: a board with an inference in flight is never reprogrammed, even if the
      // lease is released or expires meanwhile.
      if (++s.inflight == 1) NotifyLocked();
    }
    Slot& s = *slots[i];
    struct Done {
      Impl* self;
      Slot& s;
      ~Done() {
        std::lock_guard lock(self->mu);
        if (--s.inflight == 0) self->NotifyLocked();
      }
    } done_guard{this, s};
    // Decode outside the lock.
    const auto& t = req.input();
    const auto n_in = static_cast<std::size_t>(meta.n_inputs);
    std::size_t rows = 0;
    if (t.shape_size() == 2 && t.shape(0) >= 1 && t.shape(1) == static_cast<std::int64_t>(n_in)) {
      rows = static_cast<std::size_t>(t.shape(0));
    } else if (t.shape_size() == 1 && t.shape(0) == static_cast<std::int64_t>(n_in)) {
      rows = 1;
    } else {
      std::string shape;
      for (int k = 0; k < t.shape_size(); ++k) shape += (k ? "," : "") + std::to_string(t.shape(k));
      return InvalidArgument("input shape [" + shape + "]; the firmware takes [N," + std::to_string(n_in) + "] or [" +
                             std::to_string(n_in) + "] with N >= 1");
    }
    if (rows > opt.max_batch_rows) {
      return ResourceExhausted("batch of " + std::to_string(rows) + " rows; this server takes at most " +
                               std::to_string(opt.max_batch_rows));
    }
    numeric::RawBatch raw{rows, n_in, {}};
    raw.values.resize(rows * n_in);
    std::uint64_t overflows = 0;
    auto count_error = [&](std::size_t got) {
      return InvalidArgument("input " + t.datatype() + " has " + std::to_string(got) + " values; shape needs " +
                             std::to_string(rows * n_in));
    };
    if (t.datatype() == "RAW") {
      if (static_cast<std::size_t>(t.int64_contents_size()) != raw.values.size()) return count_error(t.int64_contents_size());
      std::copy(t.int64_contents().begin(), t.int64_contents().end(), raw.values.begin());
    } else if (t.datatype() == "FP32" || t.datatype() == "FP64") {
      const bool f32 = t.datatype() == "FP32";
      const std::size_t got = f32 ? t.fp32_contents_size() : t.fp64_contents_size();
      if (got != raw.values.size()) return count_error(got);
      for (std::size_t k = 0; k < got; ++k) {
        const double x = f32 ? t.fp32_contents(static_cast<int>(k)) : t.fp64_contents(static_cast<int>(k));
        if (!std::isfinite(x)) return InvalidArgument("input element " + std::to_string(k) + " is not a finite number");
        const auto q = numeric::FromDouble(x, meta.input_format);
        raw.values[k] = q.raw;
        overflows += q.overflowed ? 1 : 0;
      }
    } else {
      return InvalidArgument("input datatype " + Quote(t.datatype()) + ": expected RAW, FP32 or FP64");
    }

    const auto queued = Clock::now();
    Result<runtime::BatchResult> result = Internal("not run");
    Clock::time_point ran;
    {
      std::lock_guard run(s.run);
      ran = Clock::now();
      result = s.driver->Infer(raw);
    }
    const auto done = Clock::now();
    {
      std::lock_guard lock(mu);
      if (result.ok()) s.inferences += rows;
      s.last_used = done;
    }
    if (!result.ok()) return result.status().WithContext("board " + s.id);
    pb::BoardInferResponse r;
    auto* out = r.mutable_output();
    out->set_datatype("RAW");
    out->add_shape(static_cast<std::int64_t>(result->outputs.rows));
    out->add_shape(static_cast<std::int64_t>(result->outputs.features));
    out->mutable_int64_contents()->Add(result->outputs.values.begin(), result->outputs.values.end());
    out->mutable_fp32_contents()->Reserve(static_cast<int>(result->outputs.values.size()));
    for (auto v : result->outputs.values) out->add_fp32_contents(static_cast<float>(numeric::ToDouble(v, meta.output_format)));
    r.mutable_latency_cycles()->Add(result->latency_cycles.begin(), result->latency_cycles.end());
    r.set_device_cycles(result->total_cycles);
    r.set_input_overflows(overflows);
    r.set_board_id(s.id);
    auto* tm = r.mutable_timings();
    tm->set_queue_seconds(Seconds(ran - queued));
    tm->set_driver_seconds(Seconds(done - ran));
    tm->set_device_seconds(meta.clock_mhz > 0 ? static_cast<double>(result->total_cycles) / (meta.clock_mhz * 1e6) : 0);
    tm->set_server_seconds(Seconds(Clock::now() - received));
    return r;
  }

  // ---- the reaper: leases whose holder stopped renewing ----

  void ReapLoop() {
    std::unique_lock lock(mu);
    while (!stopping) {
      reaper_cv.wait_for(lock, std::chrono::milliseconds(100), [&] { return stopping; });
      const auto now = Clock::now();
      for (auto it = leases.begin(); it != leases.end();) {
        auto next = std::next(it);
        if (it->second.expires <= now) DropLeaseLocked(it);
        it = next;
      }
    }
  }

  // ---- RPCs ----

  grpc::Status ListBoards(grpc::ServerContext* ctx, const pb::ListBoardsRequest*, pb::ListBoardsResponse* r) override {
    if (auto st = Authorize(ctx); !st.ok()) return ToGrpcStatus(st);
    std::lock_guard lock(mu);
    FillListLocked(r);
    return grpc::Status::OK;
  }

  grpc::Status Acquire(grpc::ServerContext* ctx, const pb::AcquireRequest* req, pb::Lease* r) override {
    if (auto st = Authorize(ctx); !st.ok()) return ToGrpcStatus(st);
    auto l = DoAcquire(*req);
    if (!l.ok()) return ToGrpcStatus(l.status());
    *r = std::move(l).value();
    return grpc::Status::OK;
  }

  grpc::Status Infer(grpc::ServerContext* ctx, const pb::BoardInferRequest* req, pb::BoardInferResponse* r) override {
    const auto received = Clock::now();
    if (auto st = Authorize(ctx); !st.ok()) return ToGrpcStatus(st);
    auto res = DoInfer(*req, received);
    if (!res.ok()) return ToGrpcStatus(res.status());
    *r = std::move(res).value();
    r->mutable_timings()->set_server_seconds(Seconds(Clock::now() - received));
    return grpc::Status::OK;
  }

  grpc::Status KeepAlive(grpc::ServerContext* ctx, const pb::KeepAliveRequest* req, pb::Lease* r) override {
    if (auto st = Authorize(ctx); !st.ok()) return ToGrpcStatus(st);
    std::lock_guard lock(mu);
    auto it = leases.find(req->lease_id());
    if (it == leases.end()) {
      return ToGrpcStatus(NotFound("unknown lease " + Quote(req->lease_id(), 40) +
                                   " (expired, released, or the board server restarted); acquire again"));
    }
    it->second.expires = Clock::now() + it->second.ttl;
    r->set_lease_id(it->first);
    r->set_ttl_ms(it->second.ttl.count());
    FillBoardLocked(it->second.board, r->mutable_board());
    return grpc::Status::OK;
  }

  grpc::Status Release(grpc::ServerContext* ctx, const pb::ReleaseRequest* req, pb::ReleaseResponse*) override {
    if (auto st = Authorize(ctx); !st.ok()) return ToGrpcStatus(st);
    std::lock_guard lock(mu);
    auto it = leases.find(req->lease_id());
    if (it == leases.end()) return ToGrpcStatus(NotFound("unknown lease " + Quote(req->lease_id(), 40)));
    DropLeaseLocked(it);
    return grpc::Status::OK;
  }

  grpc::Status WatchBoards(grpc::ServerContext* ctx, const pb::WatchBoardsRequest*,
                           grpc::ServerWriter<pb::ListBoardsResponse>* w) override {
    if (auto st = Authorize(ctx); !st.ok()) return ToGrpcStatus(st);
    std::uint64_t seen = 0;
    bool first = true;
    Clock::time_point last_sent{};
    for (;;) {
      // At most one update per 50 ms: under load boards flip between ready and busy on every
      // inference; a watcher gets the latest state, not every flip.
      const auto next = last_sent + std::chrono::milliseconds(50);
      if (!first && Clock::now() < next) std::this_thread::sleep_until(next);
      pb::ListBoardsResponse r;
      {
        std::unique_lock lock(mu);
        changed.wait_for(lock, std::chrono::milliseconds(500),
                         [&] { return stopping || first || version != seen || ctx->IsCancelled(); });
        if (stopping) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "the board server is shutting down");
        if (ctx->IsCancelled()) return grpc::Status::CANCELLED;
        if (!first && version == seen) continue;
        first = false;
        seen = version;
        FillListLocked(&r);
      }
      last_sent = Clock::now();
      if (!w->Write(r)) return grpc::Status::OK;  // the client went away
    }
  }
};

BoardServer::BoardServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

BoardServer::~BoardServer() { Shutdown(); }

int BoardServer::port() const { return impl_->port; }

void BoardServer::Wait() {
  if (impl_->server) impl_->server->Wait();
}

void BoardServer::Shutdown() {
  Impl& s = *impl_;
  {
    std::lock_guard lock(s.mu);
    if (s.stopping && !s.reaper.joinable()) return;
    s.stopping = true;
    s.changed.notify_all();
    s.reaper_cv.notify_all();
  }
  if (s.server) s.server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  if (s.reaper.joinable()) s.reaper.join();
  std::lock_guard lock(s.mu);
  s.leases.clear();
  for (auto& slot : s.slots) {
    std::lock_guard run(slot->run);
    slot->driver.reset();
  }
}

Result<std::unique_ptr<BoardServer>> BoardServer::Start(BoardServerOptions options) {
  if (options.boards.empty()) return InvalidArgument("--boards is required (e.g. sim:2,emu:1)");
  if (options.cache_dir.empty()) return InvalidArgument("--cache is required (a directory for fetched firmware)");
  if (options.tls_cert_pem.empty() != options.tls_key_pem.empty()) {
    return InvalidArgument("TLS needs both --tls-cert and --tls-key");
  }
  if (options.default_ttl.count() < 100 || options.default_ttl > options.max_ttl) {
    return InvalidArgument("--lease-ttl: expected 100 ms up to the maximum (" + std::to_string(options.max_ttl.count()) + " ms)");
  }
  std::error_code ec;
  fs::create_directories(options.cache_dir, ec);
  if (ec || !fs::is_directory(options.cache_dir)) {
    return InvalidArgument("--cache " + options.cache_dir + ": cannot create the directory" + (ec ? " (" + ec.message() + ")" : ""));
  }
  auto impl = std::make_unique<Impl>();
  if (!options.store_uri.empty()) {
    auto st = store::OpenStore(options.store_uri);
    if (!st.ok()) return st.status().WithContext("--store");
    impl->builds = std::move(st).value();
  }
  if (!options.open_driver) options.open_driver = runtime::OpenBoardDriver;
  impl->opt = std::move(options);
  for (const auto& spec : impl->opt.boards) {
    for (int k = 0; k < spec.count; ++k) {
      auto s = std::make_unique<Impl::Slot>();
      s->id = spec.kind + "-" + std::to_string(k);
      s->kind = spec.kind;
      s->part = PartOf(spec.kind);
      impl->slots.push_back(std::move(s));
    }
  }
  grpc::ServerBuilder builder;
  builder.AddListeningPort(impl->opt.listen, ServerCredentials(impl->opt.tls_cert_pem, impl->opt.tls_key_pem), &impl->port);
  builder.RegisterService(impl.get());
  // gRPC sets SO_REUSEPORT by default: a second server would start on a port in use and share its
  // connections (and program the same boards). Refuse instead.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.SetMaxReceiveMessageSize(static_cast<int>(impl->opt.max_message_bytes));
  builder.SetMaxSendMessageSize(static_cast<int>(impl->opt.max_message_bytes));
  impl->server = builder.BuildAndStart();
  if (!impl->server || impl->port == 0) {
    return Unavailable("cannot listen on " + impl->opt.listen + " (address in use or invalid)");
  }
  Impl* raw = impl.get();
  impl->reaper = std::thread([raw] { raw->ReapLoop(); });
  std::unique_ptr<BoardServer> server(new BoardServer(std::move(impl)));
  if (!server->impl_->opt.ready_file.empty()) {
    RETURN_IF_ERROR(WriteFileAtomic(server->impl_->opt.ready_file, nlohmann::json{{"port", server->port()}}.dump() + "\n"));
  }
  return server;
}

}  // namespace fpgaserve::boardsrv
