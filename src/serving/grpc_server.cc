#include "serving/grpc_server.h"

#include <absl/synchronization/mutex.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "grpc_service.grpc.pb.h"
#include "services/grpc_status.h"

namespace fpgaserve::serving {
namespace {

constexpr int kSlotsPerQueue = 16;  // ModelInfer requests each completion queue can accept at once

using Clock = std::chrono::steady_clock;
namespace pb = ::inference;

grpc::Status ToGrpc(const Status& st) { return ToGrpcStatus(st); }

template <typename Field>
void AppendAll(const Field& f, std::vector<double>* out) {
  out->reserve(out->size() + static_cast<std::size_t>(f.size()));
  for (const auto& v : f) out->push_back(static_cast<double>(v));
}

Status DecodeInputs(const pb::ModelInferRequest& req, const ServingLimits& limits, InferRequest* out) {
  const bool raw = req.raw_input_contents_size() > 0;
  if (raw && req.raw_input_contents_size() != req.inputs_size()) {
    return InvalidArgument(std::to_string(req.raw_input_contents_size()) + " raw_input_contents for " +
                           std::to_string(req.inputs_size()) + " inputs; expected one per input");
  }
  for (int k = 0; k < req.inputs_size(); ++k) {
    const auto& in = req.inputs(k);
    const std::string what = "input '" + in.name() + "'";
    InputTensor t;
    t.name = in.name();
    auto type = ParseDType(in.datatype());
    if (!type) {
      return InvalidArgument(what + ": unknown datatype '" + in.datatype() +
                             "'; expected BOOL, UINT8..64, INT8..64, FP16, FP32, FP64, BF16 or BYTES");
    }
    t.datatype = *type;
    std::size_t count = 1;
    for (auto d : in.shape()) {
      if (d < 0) return InvalidArgument(what + ": negative dimension " + std::to_string(d) + " in its shape");
      if (d != 0 && count > limits.max_tensor_elements / static_cast<std::size_t>(d)) {
        return ResourceExhausted(what + ": its shape has more than " + std::to_string(limits.max_tensor_elements) +
                                 " elements (the server's limit)");
      }
      count *= static_cast<std::size_t>(d);
      t.shape.push_back(d);
    }
    if (raw) {
      RETURN_IF_ERROR(DecodeRaw(t.datatype, req.raw_input_contents(k), count, what, &t.values));
    } else {
      const auto& c = in.contents();
      switch (t.datatype) {
        case DType::kFp32: AppendAll(c.fp32_contents(), &t.values); break;
        case DType::kFp64: AppendAll(c.fp64_contents(), &t.values); break;
        case DType::kInt8: case DType::kInt16: case DType::kInt32: AppendAll(c.int_contents(), &t.values); break;
        case DType::kInt64: AppendAll(c.int64_contents(), &t.values); break;
        case DType::kUint8: case DType::kUint16: case DType::kUint32: AppendAll(c.uint_contents(), &t.values); break;
        case DType::kUint64: AppendAll(c.uint64_contents(), &t.values); break;
        case DType::kBool: AppendAll(c.bool_contents(), &t.values); break;
        case DType::kFp16: case DType::kBf16: case DType::kBytes:
          return InvalidArgument(what + ": " + DTypeName(t.datatype) +
                                 " has no typed contents field; send it in raw_input_contents");
      }
      if (t.values.size() != count) {
        return InvalidArgument(what + ": " + std::to_string(t.values.size()) + " elements in contents for a shape of " +
                               std::to_string(count) + " elements");
      }
    }
    out->inputs.push_back(std::move(t));
  }
  for (const auto& o : req.outputs()) out->outputs.push_back({o.name(), false});
  return Status::Ok();
}

using ServiceBase = pb::GRPCInferenceService::WithAsyncMethod_ModelInfer<pb::GRPCInferenceService::Service>;

class Service final : public ServiceBase {
 public:
  Service(ModelRepository* repo, MetricsRegistry* metrics, ServerInfo info)
      : repo_(repo), metrics_(metrics), info_(std::move(info)) {}

  grpc::Status ServerLive(grpc::ServerContext*, const pb::ServerLiveRequest*, pb::ServerLiveResponse* r) override {
    r->set_live(true);
    return grpc::Status::OK;
  }
  grpc::Status ServerReady(grpc::ServerContext*, const pb::ServerReadyRequest*, pb::ServerReadyResponse* r) override {
    r->set_ready(repo_->AllReady());
    return grpc::Status::OK;
  }
  grpc::Status ModelReady(grpc::ServerContext*, const pb::ModelReadyRequest* q, pb::ModelReadyResponse* r) override {
    auto m = Find(q->name(), q->version());
    if (!m.ok()) return ToGrpc(m.status());
    r->set_ready((*m)->state() == ModelState::kReady);
    return grpc::Status::OK;
  }
  grpc::Status ServerMetadata(grpc::ServerContext*, const pb::ServerMetadataRequest*,
                              pb::ServerMetadataResponse* r) override {
    r->set_name(info_.name);
    r->set_version(info_.version);
    for (const char* e : {"binary_tensor_data", "model_repository", "statistics"}) r->add_extensions(e);
    return grpc::Status::OK;
  }
  grpc::Status ModelMetadata(grpc::ServerContext*, const pb::ModelMetadataRequest* q,
                             pb::ModelMetadataResponse* r) override {
    auto m = Find(q->name(), q->version());
    if (!m.ok()) return ToGrpc(m.status());
    const auto& md = (*m)->metadata();
    if (md.n_inputs == 0) return ToGrpc(Unavailable("model '" + q->name() + "' is not loaded: " + (*m)->reason()));
    r->set_name(q->name());
    r->add_versions("1");
    r->set_platform("fpgaserve");
    for (const auto& t : md.inputs) {
      auto* i = r->add_inputs();
      i->set_name(t.name);
      i->set_datatype("FP32");
      i->add_shape(-1);
      i->add_shape(md.n_inputs);
    }
    auto* o = r->add_outputs();
    o->set_name((*m)->output_name());
    o->set_datatype("FP32");
    o->add_shape(-1);
    o->add_shape(md.n_outputs);
    if ((*m)->is_classifier()) {
      auto* c = r->add_outputs();
      c->set_name(ServedModel::kClassOutput);
      c->set_datatype("INT64");
      c->add_shape(-1);
    }
    return grpc::Status::OK;
  }

  // ModelInfer is served through the async API (see InferCall below): decodes the request and
  // hands it to the model; `done` runs once with the status (at once on an error), after the
  // response was filled in.
  template <typename Done>  // void(grpc::Status); moved into the model's callback, not wrapped again
  void StartInfer(const pb::ModelInferRequest& q, pb::ModelInferResponse* r, Done done) {
    const auto start = Clock::now();
    auto m = Find(q.model_name(), q.model_version());
    if (!m.ok()) {
      done(ToGrpc(m.status()));
      return;
    }
    const ServedModel::Instruments& inst = (*m)->instruments();
    Histogram* total = inst.request_grpc;
    InferRequest ir;
    ir.model_name = q.model_name();
    ir.model_version = q.model_version();
    ir.id = q.id();
    Status st = DecodeInputs(q, repo_->options().limits, &ir);
    if (!st.ok()) {
      if (inst.failure) inst.failure->Inc();
      if (total) total->Observe(std::chrono::duration<double>(Clock::now() - start).count());
      done(ToGrpc(st));
      return;
    }
    const bool raw = q.raw_input_contents_size() > 0;
    (*m)->Infer(std::move(ir), [r, raw, total, start, done = std::move(done)](Result<InferResponse> res) {
      if (res.ok()) Fill(*res, raw, r);
      if (total) total->Observe(std::chrono::duration<double>(Clock::now() - start).count());
      done(res.ok() ? grpc::Status::OK : ToGrpc(res.status()));
    });
  }

  static void Fill(const InferResponse& res, bool raw, pb::ModelInferResponse* r) {
    r->set_model_name(res.model_name);
    r->set_model_version(res.model_version.empty() ? "1" : res.model_version);
    r->set_id(res.id);
    const auto& t = res.timings;
    auto& params = *r->mutable_parameters();
    params["device_cycles"].set_uint64_param(t.device_cycles);
    params["device_seconds"].set_double_param(t.device_seconds);
    params["queue_seconds"].set_double_param(t.queue_seconds);
    params["driver_seconds"].set_double_param(t.driver_seconds);
    params["batch_rows"].set_int64_param(static_cast<std::int64_t>(t.batch_rows));
    params["input_overflows"].set_uint64_param(t.input_overflows);
    if (t.remote) {
      params["board_server_seconds"].set_double_param(t.board_server_seconds);
      params["network_seconds"].set_double_param(t.network_seconds);
    }
    for (const auto& o : res.outputs) {
      auto* out = r->add_outputs();
      out->set_name(o.name);
      out->set_datatype(DTypeName(o.datatype));
      for (auto d : o.shape) out->add_shape(d);
      if (raw) {
        std::string bytes;
        if (o.datatype == DType::kInt64) EncodeInt64(o.int64, &bytes);
        else EncodeFp32(o.fp32, &bytes);
        r->add_raw_output_contents(std::move(bytes));
      } else if (o.datatype == DType::kInt64) {
        out->mutable_contents()->mutable_int64_contents()->Add(o.int64.begin(), o.int64.end());
      } else {
        out->mutable_contents()->mutable_fp32_contents()->Add(o.fp32.begin(), o.fp32.end());
      }
    }
  }

  // InferCall objects alive (open request slots and calls in progress): the completion queues
  // must outlive every one of them.
  std::atomic<int> live_calls{0};

  grpc::Status RepositoryIndex(grpc::ServerContext*, const pb::RepositoryIndexRequest* q,
                               pb::RepositoryIndexResponse* r) override {
    for (const auto& e : repo_->Index()) {
      if (q->ready() && e.state != "READY") continue;
      auto* m = r->add_models();
      m->set_name(e.name);
      m->set_version(e.version);
      m->set_state(e.state);
      m->set_reason(e.reason);
    }
    return grpc::Status::OK;
  }
  grpc::Status RepositoryModelLoad(grpc::ServerContext*, const pb::RepositoryModelLoadRequest* q,
                                   pb::RepositoryModelLoadResponse*) override {
    return ToGrpc(repo_->Load(q->model_name()));
  }
  grpc::Status RepositoryModelUnload(grpc::ServerContext*, const pb::RepositoryModelUnloadRequest* q,
                                     pb::RepositoryModelUnloadResponse*) override {
    return ToGrpc(repo_->Unload(q->model_name()));
  }

 private:
  Result<std::shared_ptr<ServedModel>> Find(const std::string& name, const std::string& version) {
    if (name.empty()) return InvalidArgument("the model name is empty");
    auto m = repo_->Find(name);
    if (!m) return NotFound("unknown model '" + name + "'");
    if (!version.empty() && version != "1") {
      return NotFound("model '" + name + "' has no version '" + version + "'; it has version 1");
    }
    return m;
  }

  ModelRepository* repo_;
  MetricsRegistry* metrics_;
  ServerInfo info_;
};

// One ModelInfer call on the async API. Its life: Listen (a request slot is open on the queue) ->
// the request arrived (a new slot is opened for the next one, the inference starts) -> the
// answer is sent (Finish) -> its completion comes back on the queue -> deleted. The inference
// runs on the thread that took the request off the queue, or on another caller's thread when the
// device was busy (see ServedModel::Infer), and Finish may be called from either.
class InferCall {
 public:
  InferCall(Service* service, grpc::ServerCompletionQueue* cq) : service_(service), cq_(cq), responder_(&ctx_) {
    service_->live_calls.fetch_add(1);
    service_->RequestModelInfer(&ctx_, &request_, &responder_, cq_, cq_, this);
  }
  ~InferCall() { service_->live_calls.fetch_sub(1); }
  InferCall(const InferCall&) = delete;
  InferCall& operator=(const InferCall&) = delete;
  // `ok` is the completion queue's verdict for this call's pending operation.
  void Proceed(bool ok) {
    if (finishing_ || !ok) {  // the answer was sent, or the server is shutting down
      delete this;
      return;
    }
    new InferCall(service_, cq_);
    finishing_ = true;
    service_->StartInfer(request_, &response_, [this](grpc::Status st) {
      if (st.ok()) responder_.Finish(response_, grpc::Status::OK, this);
      else responder_.FinishWithError(st, this);
    });
  }

 private:
  Service* service_;
  grpc::ServerCompletionQueue* cq_;
  grpc::ServerContext ctx_;
  pb::ModelInferRequest request_;
  pb::ModelInferResponse response_;
  grpc::ServerAsyncResponseWriter<pb::ModelInferResponse> responder_;
  bool finishing_ = false;
};

}  // namespace

struct GrpcServer::Impl {
  Options options;
  std::unique_ptr<Service> service;
  std::unique_ptr<grpc::Server> server;
  std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> cqs;
  std::vector<std::thread> threads;
  int bound_port = 0;
};

GrpcServer::GrpcServer(Options options, ModelRepository* repo, MetricsRegistry* metrics, ServerInfo info)
    : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  impl_->service = std::make_unique<Service>(repo, metrics, std::move(info));
}

GrpcServer::~GrpcServer() { Stop(); }

Status GrpcServer::Start() {
  const auto& o = impl_->options;
  // Debian builds Abseil without NDEBUG, which leaves absl::Mutex's deadlock detector on: every
  // lock inside gRPC then updates a global lock graph (about 5 % of the server's CPU under load).
  // gRPC's own locking order is not ours to debug here.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  grpc::ServerBuilder builder;
  const std::string addr = (o.address.find(':') != std::string::npos ? "[" + o.address + "]" : o.address) +
                           ":" + std::to_string(o.port);
  builder.AddListeningPort(addr, grpc::InsecureServerCredentials(), &impl_->bound_port);
  builder.SetMaxReceiveMessageSize(static_cast<int>(o.max_message_bytes));
  builder.SetMaxSendMessageSize(static_cast<int>(o.max_message_bytes));
  builder.RegisterService(impl_->service.get());
  // The sync server creates and retires polling threads as load changes; under steady load
  // that churn (hundreds of thread creations per second) dominated its CPU. Keep a fixed set
  // of pollers busy instead: one completion queue per core, two to four pollers each.
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::NUM_CQS, 1);
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MIN_POLLERS, 4);
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::MAX_POLLERS, 16);
  // ModelInfer: one completion queue per infer thread; each thread takes requests off its queue,
  // runs them and sends the answers, keeping a few request slots open.
  const int n_threads = std::max(1, o.infer_threads);
  for (int i = 0; i < n_threads; ++i) impl_->cqs.push_back(builder.AddCompletionQueue());
  impl_->server = builder.BuildAndStart();
  if (!impl_->server || impl_->bound_port == 0) {
    impl_->server.reset();
    impl_->cqs.clear();
    return Unavailable("cannot listen for gRPC on " + addr + " (address in use or not local?)");
  }
  for (auto& cq : impl_->cqs) {
    for (int k = 0; k < kSlotsPerQueue; ++k) new InferCall(impl_->service.get(), cq.get());
    impl_->threads.emplace_back([q = cq.get()] {
      void* tag = nullptr;
      bool ok = false;
      while (q->Next(&tag, &ok)) static_cast<InferCall*>(tag)->Proceed(ok);
    });
  }
  return Status::Ok();
}

std::uint16_t GrpcServer::port() const { return static_cast<std::uint16_t>(impl_->bound_port); }

void GrpcServer::Stop() {
  if (impl_->server) {
    impl_->server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
    impl_->server->Wait();
    // Shutdown() cancelled the open request slots; calls still running answer on their
    // completion queue. The infer threads delete every call as its last event arrives; once all
    // are gone nothing can touch the queues, which are then shut down and drained.
    while (impl_->service->live_calls.load() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    for (auto& cq : impl_->cqs) cq->Shutdown();
    for (auto& t : impl_->threads) t.join();
    impl_->threads.clear();
    impl_->cqs.clear();
    impl_->server.reset();
  }
}

}  // namespace fpgaserve::serving
