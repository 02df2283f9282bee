#include "services/board/remote_driver.h"

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "board_service.grpc.pb.h"
#include "services/grpc_status.h"

namespace fpgaserve::boardsrv {
namespace {

namespace pb = ::fpgaserve::v1;
using Clock = std::chrono::steady_clock;

class RemoteBoard final : public runtime::BoardDriver {
 public:
  explicit RemoteBoard(RemoteBoardOptions o) : opt_(std::move(o)) {
    std::shared_ptr<grpc::ChannelCredentials> creds = grpc::InsecureChannelCredentials();
    if (!opt_.tls_ca_pem.empty()) {
      grpc::SslCredentialsOptions ssl;
      ssl.pem_root_certs = opt_.tls_ca_pem;
      creds = grpc::SslCredentials(ssl);
    }
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(64 << 20);
    args.SetMaxSendMessageSize(64 << 20);
    // Reconnect quickly after the server comes back (the default backoff grows to 2 minutes).
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
    stub_ = pb::BoardService::NewStub(grpc::CreateCustomChannel(opt_.address, creds, args));
  }

  ~RemoteBoard() override {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
      if (acquiring_) acquiring_->TryCancel();  // an Acquire may wait minutes for a load
    }
    cv_.notify_all();
    if (keeper_.joinable()) keeper_.join();
    std::string lease = CurrentLease();
    if (!lease.empty()) {
      pb::ReleaseRequest req;
      req.set_lease_id(lease);
      pb::ReleaseResponse resp;
      auto ctx = Context(std::chrono::seconds(2));
      stub_->Release(ctx.get(), req, &resp);  // best effort: an unreleased lease expires
    }
  }

  std::string kind() const override { return "remote"; }

  Status AcquireNow() {
    pb::AcquireRequest req;
    if (!opt_.build_id.empty()) req.set_build_id(opt_.build_id);
    else req.set_firmware_uri(opt_.firmware_uri);
    req.set_board_kind(opt_.board_kind);
    req.set_board_id(opt_.board_id);
    req.set_client(opt_.client);
    req.set_ttl_ms(opt_.ttl.count());
    pb::Lease lease;
    auto ctx = Context(opt_.acquire_timeout);
    {
      std::lock_guard lock(mu_);
      if (stopping_) return Cancelled("the remote board is closing");
      acquiring_ = ctx.get();
    }
    auto st = stub_->Acquire(ctx.get(), req, &lease);
    {
      std::lock_guard lock(mu_);
      acquiring_ = nullptr;
    }
    if (!st.ok()) return FromGrpcStatus(st, "board server " + opt_.address);
    {
      std::lock_guard lock(mu_);
      lease_ = lease.lease_id();
      board_ = lease.board().id();
      ttl_ = std::chrono::milliseconds(std::max<std::int64_t>(lease.ttl_ms(), 100));
      lost_reason_.clear();
      available_ = true;
    }
    Log("lease " + lease.lease_id().substr(0, 8) + " on " + lease.board().id() + " (" + lease.board().kind() + ", " +
        (lease.shared() ? "shared, already loaded" : "programmed") + " in " + std::to_string(lease.load_seconds()) + " s)");
    return Status::Ok();
  }

  void StartKeeper() {
    keeper_ = std::thread([this] { KeepLoop(); });
  }

  Result<runtime::BatchResult> Infer(const numeric::RawBatch& inputs) override {
    std::string lease;
    {
      std::lock_guard lock(mu_);
      if (!available_) return Unavailable("board server " + opt_.address + ": " + lost_reason_);
      lease = lease_;
    }
    pb::BoardInferRequest req;
    req.set_lease_id(lease);
    auto* t = req.mutable_input();
    t->set_datatype("RAW");
    t->add_shape(static_cast<std::int64_t>(inputs.rows));
    t->add_shape(static_cast<std::int64_t>(inputs.features));
    t->mutable_int64_contents()->Add(inputs.values.begin(), inputs.values.end());
    pb::BoardInferResponse resp;
    auto ctx = Context(opt_.rpc_timeout);
    auto st = stub_->Infer(ctx.get(), req, &resp);
    if (!st.ok()) {
      Status s = FromGrpcStatus(st, "board server " + opt_.address);
      // The lease is gone (server restarted) or the server is unreachable: not ready until a
      // lease is back. Other errors (bad input) belong to this call only.
      if (st.error_code() == grpc::StatusCode::NOT_FOUND || st.error_code() == grpc::StatusCode::UNAVAILABLE) {
        Lose(lease, s.message());
        return Unavailable(s.message());
      }
      return s;
    }
    runtime::BatchResult out;
    const auto& o = resp.output();
    if (o.shape_size() != 2 || o.shape(0) != static_cast<std::int64_t>(inputs.rows) || o.shape(1) < 1 ||
        static_cast<std::int64_t>(o.int64_contents_size()) != o.shape(0) * o.shape(1) ||
        static_cast<std::size_t>(resp.latency_cycles_size()) != inputs.rows) {
      return Internal("board server " + opt_.address + " answered " + std::to_string(inputs.rows) +
                      " rows with a malformed output tensor");
    }
    out.outputs.rows = static_cast<std::size_t>(o.shape(0));
    out.outputs.features = static_cast<std::size_t>(o.shape(1));
    out.outputs.values.assign(o.int64_contents().begin(), o.int64_contents().end());
    out.latency_cycles.assign(resp.latency_cycles().begin(), resp.latency_cycles().end());
    out.total_cycles = resp.device_cycles();
    out.remote = true;
    out.server_seconds = resp.timings().server_seconds();
    out.board_queue_seconds = resp.timings().queue_seconds();
    out.board_driver_seconds = resp.timings().driver_seconds();
    return out;
  }

  bool Available(std::string* reason) const override {
    std::lock_guard lock(mu_);
    if (!available_ && reason) *reason = "board server " + opt_.address + ": " + lost_reason_;
    return available_;
  }

 private:
  std::unique_ptr<grpc::ClientContext> Context(std::chrono::milliseconds timeout) const {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(std::chrono::system_clock::now() + timeout);
    if (!opt_.token.empty()) ctx->AddMetadata("authorization", "Bearer " + opt_.token);
    return ctx;
  }

  std::string CurrentLease() const {
    std::lock_guard lock(mu_);
    return lease_;
  }

  void Log(const std::string& line) const {
    if (opt_.log) opt_.log(line);
  }

  // Marks the lease lost (once per lease) and wakes the keeper to acquire another.
  void Lose(const std::string& lease, const std::string& why) {
    {
      std::lock_guard lock(mu_);
      if (lease != lease_ || !available_) return;
      available_ = false;
      lease_.clear();
      lost_reason_ = why;
    }
    Log("lost the board: " + why);
    cv_.notify_all();
  }

  void KeepLoop() {
    auto backoff = std::chrono::milliseconds(100);
    for (;;) {
      std::string lease;
      {
        std::unique_lock lock(mu_);
        const auto wait = available_ ? ttl_ / 3 : backoff;
        cv_.wait_for(lock, wait, [&] { return stopping_; });
        if (stopping_) return;
        lease = lease_;
      }
      if (lease.empty()) {
        Status st = AcquireNow();
        if (st.ok()) {
          backoff = std::chrono::milliseconds(100);
        } else {
          {
            std::lock_guard lock(mu_);
            lost_reason_ = st.message();
          }
          backoff = std::min(backoff * 2, std::chrono::milliseconds(2000));
        }
        continue;
      }
      pb::KeepAliveRequest req;
      req.set_lease_id(lease);
      pb::Lease resp;
      auto ctx = Context(std::min(opt_.rpc_timeout, std::chrono::milliseconds(5000)));
      auto st = stub_->KeepAlive(ctx.get(), req, &resp);
      if (st.ok()) continue;
      if (st.error_code() == grpc::StatusCode::NOT_FOUND) {
        Lose(lease, "lease expired or the board server restarted: " + st.error_message());
      } else if (st.error_code() == grpc::StatusCode::UNAVAILABLE || st.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
        // Unreachable: not ready. Keep the lease id; if the same server answers again in time the
        // lease is still ours (KeepAlive says so), otherwise NOT_FOUND leads to a new Acquire.
        bool was = false;
        {
          std::lock_guard lock(mu_);
          was = available_;
          available_ = false;
          lost_reason_ = "unreachable: " + st.error_message();
        }
        if (was) Log("board server unreachable: " + st.error_message());
        std::unique_lock lock(mu_);
        cv_.wait_for(lock, backoff, [&] { return stopping_; });
        if (stopping_) return;
        // Probe again right away; on success the lease is usable again.
        lock.unlock();
        pb::Lease again;
        auto ctx2 = Context(std::chrono::milliseconds(2000));
        if (stub_->KeepAlive(ctx2.get(), req, &again).ok()) {
          std::lock_guard relock(mu_);
          if (lease_ == lease) {
            available_ = true;
            lost_reason_.clear();
          }
        } else {
          std::lock_guard relock(mu_);
          lease_.clear();  // acquire again on the next round (NOT_FOUND or still unreachable)
        }
      }
    }
  }

  const RemoteBoardOptions opt_;
  std::unique_ptr<pb::BoardService::Stub> stub_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::string lease_, board_, lost_reason_;
  std::chrono::milliseconds ttl_{1000};
  bool available_ = false;
  bool stopping_ = false;
  grpc::ClientContext* acquiring_ = nullptr;  // the Acquire in flight, for the destructor to cancel
  std::thread keeper_;
};

}  // namespace

Result<std::unique_ptr<runtime::BoardDriver>> OpenRemoteBoard(const RemoteBoardOptions& options) {
  if (options.address.empty()) return InvalidArgument("no board server address");
  if (options.firmware_uri.empty() == options.build_id.empty()) {
    return InvalidArgument("a remote board needs exactly one of a firmware URI and a build id");
  }
  auto board = std::make_unique<RemoteBoard>(options);
  RETURN_IF_ERROR(board->AcquireNow());
  board->StartKeeper();
  return std::unique_ptr<runtime::BoardDriver>(std::move(board));
}

}  // namespace fpgaserve::boardsrv
