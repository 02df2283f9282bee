#include "serving/model_repository.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>

#include "model/reference_evaluator.h"
#include "runtime/batch_validation.h"

namespace fpgaserve::serving {
namespace fs = std::filesystem;
namespace {

double Since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

std::string ShapeText(const std::vector<std::int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
  return s + "]";
}

}  // namespace

const char* ModelStateName(ModelState s) {
  switch (s) {
    case ModelState::kUnavailable: return "UNAVAILABLE";
    case ModelState::kLoading: return "LOADING";
    case ModelState::kReady: return "READY";
    case ModelState::kFailed: return "FAILED";
  }
  return "UNAVAILABLE";
}

bool ValidModelName(const std::string& name) {
  if (name.empty() || name.size() > 128 || name == "." || name == "..") return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.';
  });
}

ServedModel::ServedModel(std::string name, std::string dir, std::string driver_kind,
                         ServingLimits limits, MetricsRegistry* metrics, DriverOpener opener)
    : name_(std::move(name)),
      dir_(std::move(dir)),
      driver_kind_(std::move(driver_kind)),
      limits_(limits),
      opener_(std::move(opener)),
      metrics_(metrics) {
  if (!metrics_) return;
  const Labels l{{"model_name", name_}};
  const auto sec = DefaultSecondsBuckets();
  const auto cyc = CycleBuckets();
  auto& m = *metrics_;
  inst_.batch_rows = &m.GetHistogram("fpgaserve_batch_rows", "Rows per device batch.", l, cyc);
  inst_.driver_seconds = &m.GetHistogram("fpgaserve_driver_seconds", "Driver (board or simulator) time per device batch.",
                                         {{"model_name", name_}, {"driver", driver_kind_}}, sec);
  inst_.device_cycles = &m.GetHistogram("fpgaserve_device_cycles", "Device clock cycles per device batch.", l, cyc);
  inst_.device_seconds = &m.GetHistogram("fpgaserve_device_seconds", "Device time per device batch at the firmware clock.", l, sec);
  inst_.queue_seconds = &m.GetHistogram("fpgaserve_queue_seconds", "Time a request waited in the batcher.", l, sec);
  inst_.board_server_seconds = &m.GetHistogram(
      "fpgaserve_board_server_seconds", "Board server time per device batch (remote boards: its queue and driver call).", l, sec);
  inst_.network_seconds = &m.GetHistogram(
      "fpgaserve_network_seconds", "Driver time outside the board server per device batch (remote boards: the network).", l, sec);
  inst_.predict_seconds = &m.GetHistogram("request_predict_seconds", "KServe: predict time (queue + device batch).", l, sec);
  inst_.preprocess_seconds = &m.GetHistogram("request_preprocess_seconds", "KServe: request decoding time.", l, sec);
  inst_.postprocess_seconds = &m.GetHistogram("request_postprocess_seconds", "KServe: response encoding time.", l, sec);
  const char* help = "Server time per inference request (parse to response).";
  inst_.request_v1 = &m.GetHistogram("fpgaserve_request_seconds", help, {{"model_name", name_}, {"protocol", "v1-rest"}}, sec);
  inst_.request_v2 = &m.GetHistogram("fpgaserve_request_seconds", help, {{"model_name", name_}, {"protocol", "v2-rest"}}, sec);
  inst_.request_grpc = &m.GetHistogram("fpgaserve_request_seconds", help, {{"model_name", name_}, {"protocol", "grpc"}}, sec);
  inst_.success = &m.GetCounter("fpgaserve_inference_requests_total", "Inference requests by outcome.",
                                {{"model_name", name_}, {"outcome", "success"}});
  inst_.failure = &m.GetCounter("fpgaserve_inference_requests_total", "Inference requests by outcome.",
                                {{"model_name", name_}, {"outcome", "failure"}});
}

ServedModel::~ServedModel() { Unload(); }

ModelState ServedModel::state() const {
  const ModelState s = state_.load();
  if (s != ModelState::kReady) return s;
  std::lock_guard lock(mu_);
  if (driver_ && !driver_->Available(nullptr)) return ModelState::kLoading;
  return s;
}

std::string ServedModel::reason() const {
  std::lock_guard lock(mu_);
  std::string why;
  if (state_.load() == ModelState::kReady && driver_ && !driver_->Available(&why)) return "re-acquiring its board: " + why;
  return reason_;
}

void ServedModel::SetPending(ModelState state, std::string reason) {
  std::lock_guard lock(mu_);
  reason_ = std::move(reason);
  state_ = state;
}

std::string ServedModel::output_name() const {
  if (!meta_.outputs.empty() && !meta_.outputs[0].name.empty()) return meta_.outputs[0].name;
  return "output_0";
}

ServedModel::Stats ServedModel::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

Status ServedModel::Load() {
  Unload();
  state_ = ModelState::kLoading;
  auto fail = [&](const Status& st) {
    std::lock_guard lock(mu_);
    reason_ = st.message();
    state_ = ModelState::kFailed;
    return st;
  };
  auto meta = firmware::ReadBundleMetadata(dir_);
  if (!meta.ok()) return fail(meta.status());
  meta_ = std::move(meta).value();
  in_format_ = numeric::NumberFormat(meta_.input_format);
  out_format_ = numeric::NumberFormat(meta_.output_format);
  classifier_ = !meta_.layers.empty() &&
                (meta_.layers.back().op == "Softmax" || meta_.layers.back().op == "Sigmoid");
  auto driver = opener_ ? opener_(name_, dir_) : runtime::OpenBoardDriver(driver_kind_, dir_);
  if (!driver.ok()) return fail(driver.status());
  // Warm-up: one all-zero row must come back with the bundle's output count.
  numeric::RawBatch zero{1, static_cast<std::size_t>(meta_.n_inputs),
                         std::vector<numeric::RawValue>(static_cast<std::size_t>(meta_.n_inputs), 0)};
  auto warm = (*driver)->Infer(zero);
  if (!warm.ok()) return fail(warm.status().WithContext("warm-up inference on " + driver_kind_));
  if (warm->outputs.rows != 1 || warm->outputs.features != static_cast<std::size_t>(meta_.n_outputs)) {
    return fail(Internal("warm-up inference on " + driver_kind_ + " returned " +
                         std::to_string(warm->outputs.rows) + " x " +
                         std::to_string(warm->outputs.features) + " outputs; expected 1 x " +
                         std::to_string(meta_.n_outputs)));
  }
  {
    std::lock_guard lock(mu_);
    driver_ = std::move(driver).value();
    stopping_ = false;
    reason_.clear();
  }
  worker_ = std::thread([this] { Run(); });
  state_ = ModelState::kReady;
  return Status::Ok();
}

void ServedModel::Unload() {
  std::deque<Pending> orphans;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    orphans.swap(queue_);
    queued_rows_ = 0;
    if (state_ == ModelState::kReady || state_ == ModelState::kLoading) {
      state_ = ModelState::kUnavailable;
      reason_ = "unloaded";
    }
  }
  work_cv_.notify_all();
  if (worker_.joinable()) worker_.join();
  for (auto& p : orphans) p.done(Unavailable("model '" + name_ + "' was unloaded"));
  std::unique_lock lock(mu_);
  idle_cv_.wait(lock, [&] { return !busy_; });  // a batch running on a caller's thread
  driver_.reset();
}

Status ServedModel::Validate(const InferRequest& r, numeric::RawBatch* raw,
                             std::uint64_t* overflows) const {
  const std::string expected = meta_.inputs.empty() ? "input_0" : meta_.inputs[0].name;
  const auto n_in = static_cast<std::size_t>(meta_.n_inputs);
  if (r.inputs.size() != 1) {
    return InvalidArgument("model '" + name_ + "' takes 1 input ('" + expected + "'); the request has " +
                           std::to_string(r.inputs.size()));
  }
  const InputTensor& t = r.inputs[0];
  if (t.name != expected) {
    return InvalidArgument("unknown input '" + t.name + "'; model '" + name_ + "' expects '" + expected + "'");
  }
  if (!IsNumeric(t.datatype)) {
    return InvalidArgument("input '" + t.name + "': datatype " + DTypeName(t.datatype) +
                           " is not supported; expected FP32, FP64, FP16, BF16, INT8..64 or UINT8..64");
  }
  std::size_t rows = 0;
  const bool ok_shape = (t.shape.size() == 2 && t.shape[0] >= 0 && t.shape[1] == static_cast<std::int64_t>(n_in)) ||
                        (t.shape.size() == 1 && t.shape[0] == static_cast<std::int64_t>(n_in));
  if (!ok_shape) {
    return InvalidArgument("input '" + t.name + "': shape " + ShapeText(t.shape) + "; expected [N," +
                           std::to_string(n_in) + "] or [" + std::to_string(n_in) + "]");
  }
  rows = t.shape.size() == 2 ? static_cast<std::size_t>(t.shape[0]) : 1;
  if (rows == 0) return InvalidArgument("input '" + t.name + "': the batch is empty (shape " + ShapeText(t.shape) + ")");
  if (rows > limits_.max_request_rows) {
    return ResourceExhausted("input '" + t.name + "': " + std::to_string(rows) +
                             " rows; this server accepts at most " +
                             std::to_string(limits_.max_request_rows) + " per request");
  }
  if (t.values.size() != rows * n_in) {
    return InvalidArgument("input '" + t.name + "': " + std::to_string(t.values.size()) +
                           " values for shape " + ShapeText(t.shape) + " (expected " +
                           std::to_string(rows * n_in) + ")");
  }
  for (const auto& o : r.outputs) {
    if (o.name != output_name() && !(classifier_ && o.name == kClassOutput)) {
      return InvalidArgument("unknown requested output '" + o.name + "'; model '" + name_ +
                             "' has '" + output_name() + "'" +
                             (classifier_ ? std::string(" and '") + kClassOutput + "'" : std::string()));
    }
  }
  raw->rows = rows;
  raw->features = n_in;
  raw->values.resize(t.values.size());
  for (std::size_t i = 0; i < t.values.size(); ++i) {
    const double x = t.values[i];
    if (!std::isfinite(x)) {
      return InvalidArgument("input '" + t.name + "': element " + std::to_string(i) +
                             " is not a finite number");
    }
    const numeric::Quantized q = numeric::FromDouble(x, in_format_);
    raw->values[i] = q.raw;
    *overflows += q.overflowed ? 1 : 0;
  }
  return Status::Ok();
}

void ServedModel::Infer(InferRequest request, InferCallback done) {
  if (state_ != ModelState::kReady) {
    done(Unavailable("model '" + name_ + "' is not ready (" + ModelStateName(state_) + ")"));
    return;
  }
  Pending p;
  Status st = Validate(request, &p.raw, &p.overflows);
  if (!st.ok()) {
    {
      std::lock_guard lock(mu_);
      ++stats_.failure;
    }
    if (inst_.failure) inst_.failure->Inc();
    done(st);
    return;
  }
  p.request = std::move(request);
  p.done = std::move(done);
  p.enqueued = std::chrono::steady_clock::now();
  std::unique_lock lock(mu_);
  if (stopping_) {
    lock.unlock();
    p.done(Unavailable("model '" + name_ + "' is being unloaded"));
    return;
  }
  const bool was_empty = queue_.empty();
  queued_rows_ += p.raw.rows;
  queue_.push_back(std::move(p));
  if (limits_.max_queue_delay.count() == 0) {
    // No queue delay: whoever finds the device idle runs the queue on its own thread (its own
    // request and whatever arrived meanwhile, coalesced into batches); a request that finds the
    // device busy is left for the thread that holds it. No thread is woken per request.
    if (!busy_) {
      busy_ = true;
      DrainLocked(lock, kCallerRounds);
    }
    return;
  }
  // With a delay the batcher thread alone runs batches; it needs waking for the first request of
  // a batch and when a batch fills up.
  const bool wake = was_empty || queued_rows_ >= limits_.max_batch_size;
  lock.unlock();
  if (wake) work_cv_.notify_one();
}

std::vector<ServedModel::Pending> ServedModel::TakeBatchLocked() {
  const std::size_t max_rows = std::max<std::size_t>(1, limits_.max_batch_size);
  std::vector<Pending> batch;
  std::size_t rows = 0;
  while (!queue_.empty() && (batch.empty() || rows + queue_.front().raw.rows <= max_rows)) {
    rows += queue_.front().raw.rows;
    batch.push_back(std::move(queue_.front()));
    queue_.pop_front();
    queued_rows_ -= batch.back().raw.rows;
  }
  return batch;
}

void ServedModel::DrainLocked(std::unique_lock<std::mutex>& lock, std::size_t max_rounds) {
  for (std::size_t round = 0; round < max_rounds && !stopping_ && !queue_.empty(); ++round) {
    std::vector<Pending> batch = TakeBatchLocked();
    lock.unlock();
    RunBatch(batch);
    lock.lock();
  }
  busy_ = false;
  const bool handoff = !stopping_ && !queue_.empty();
  const bool stopping = stopping_;
  lock.unlock();
  if (handoff) work_cv_.notify_one();  // a caller ran its share; the batcher thread takes the rest
  if (stopping) idle_cv_.notify_all();
}

void ServedModel::RunBatch(std::vector<Pending>& batch) {
  numeric::RawBatch merged;
  numeric::RawBatch* all = &batch[0].raw;
  if (batch.size() > 1) {
    merged.features = batch[0].raw.features;
    for (auto& p : batch) {
      merged.rows += p.raw.rows;
      merged.values.insert(merged.values.end(), p.raw.values.begin(), p.raw.values.end());
    }
    all = &merged;
  }
  const auto started = std::chrono::steady_clock::now();
  Result<runtime::BatchResult> result = driver_->Infer(*all);
  Finish(batch, result, started, Since(started));
}

void ServedModel::Run() {
  for (;;) {
    std::unique_lock lock(mu_);
    work_cv_.wait(lock, [&] { return stopping_ || (!queue_.empty() && !busy_); });
    if (stopping_) return;
    // Wait for more work while the oldest request is younger than the queue delay and the
    // batch is not full.
    if (limits_.max_queue_delay.count() > 0) {
      const auto deadline = queue_.front().enqueued + limits_.max_queue_delay;
      const std::size_t max_rows = std::max<std::size_t>(1, limits_.max_batch_size);
      work_cv_.wait_until(lock, deadline, [&] { return stopping_ || queued_rows_ >= max_rows; });
      if (stopping_ || busy_ || queue_.empty()) continue;
      busy_ = true;
      DrainLocked(lock, 1);
      continue;
    }
    busy_ = true;
    DrainLocked(lock, std::numeric_limits<std::size_t>::max());
  }
}

void ServedModel::Finish(std::vector<Pending>& batch, const Result<runtime::BatchResult>& result,
                         std::chrono::steady_clock::time_point started, double driver_seconds) {
  std::size_t total_rows = 0;
  for (const auto& p : batch) total_rows += p.raw.rows;
  const double clock_hz = meta_.clock_mhz > 0 ? meta_.clock_mhz * 1e6 : 0;
  if (metrics_) {
    inst_.batch_rows->Observe(static_cast<double>(total_rows));
    inst_.driver_seconds->Observe(driver_seconds);
    if (result.ok()) {
      inst_.device_cycles->Observe(static_cast<double>(result->total_cycles));
      if (clock_hz > 0) inst_.device_seconds->Observe(static_cast<double>(result->total_cycles) / clock_hz);
      if (result->remote) {
        inst_.board_server_seconds->Observe(result->server_seconds);
        inst_.network_seconds->Observe(std::max(0.0, driver_seconds - result->server_seconds));
      }
    }
  }
  std::size_t row0 = 0;
  for (auto& p : batch) {
    const double queue_s = std::chrono::duration<double>(started - p.enqueued).count();
    if (!result.ok()) {
      {
        std::lock_guard lock(mu_);
        ++stats_.failure;
      }
      if (inst_.failure) inst_.failure->Inc();
      p.done(result.status().WithContext("model '" + name_ + "' on " + driver_kind_));
      continue;
    }
    const auto& out = result->outputs;
    const std::size_t n_out = out.features, rows = p.raw.rows;
    InferResponse resp;
    resp.model_name = name_;
    resp.id = p.request.id;
    resp.model_version = p.request.model_version;
    // Probabilities as doubles first: the class index is decided on them, then sent as FP32.
    model::SampleBatch values{rows, n_out, std::vector<double>(rows * n_out)};
    for (std::size_t i = 0; i < rows * n_out; ++i) {
      values.values[i] = numeric::ToDouble(out.values[row0 * n_out + i], out_format_);
    }
    OutputTensor probs{output_name(), DType::kFp32, {static_cast<std::int64_t>(rows), static_cast<std::int64_t>(n_out)}, {}, {}, false};
    probs.fp32.assign(values.values.begin(), values.values.end());
    std::vector<OutputTensor> outs;
    outs.push_back(std::move(probs));
    if (classifier_) {
      outs.push_back({kClassOutput, DType::kInt64, {static_cast<std::int64_t>(rows)}, {}, model::PredictClasses(values), false});
    }
    if (p.request.outputs.empty()) {
      for (auto& o : outs) o.binary = p.request.binary_output;
      resp.outputs = std::move(outs);
    } else {
      for (const auto& want : p.request.outputs) {
        for (const auto& o : outs) {
          if (o.name == want.name) {
            resp.outputs.push_back(o);
            resp.outputs.back().binary = want.binary || p.request.binary_output;
          }
        }
      }
    }
    resp.timings.device_cycles = result->total_cycles;
    resp.timings.device_seconds = clock_hz > 0 ? static_cast<double>(result->total_cycles) / clock_hz : 0;
    resp.timings.queue_seconds = queue_s;
    resp.timings.driver_seconds = driver_seconds;
    resp.timings.batch_rows = total_rows;
    resp.timings.input_overflows = p.overflows;
    if (result->remote) {
      resp.timings.remote = true;
      resp.timings.board_server_seconds = result->server_seconds;
      resp.timings.network_seconds = std::max(0.0, driver_seconds - result->server_seconds);
    }
    row0 += rows;
    {
      std::lock_guard lock(mu_);
      ++stats_.success;
      stats_.inferences += rows;
      stats_.queue_seconds += queue_s;
      stats_.compute_seconds += driver_seconds;
    }
    if (metrics_) {
      inst_.queue_seconds->Observe(queue_s);
      inst_.predict_seconds->Observe(queue_s + driver_seconds);
      inst_.success->Inc();
    }
    p.done(std::move(resp));
  }
  std::lock_guard lock(mu_);
  ++stats_.batches;
}

ModelRepository::ModelRepository(Options options, MetricsRegistry* metrics)
    : options_(std::move(options)), metrics_(metrics) {}

ModelRepository::~ModelRepository() {
  std::unique_lock lock(mu_);
  for (auto& [name, m] : models_) m->Unload();
}

Result<std::string> ModelRepository::DirOf(const std::string& name) const {
  if (!ValidModelName(name)) {
    return InvalidArgument("model name '" + name + "': expected 1-128 letters, digits, '-', '_' or '.'");
  }
  {
    std::shared_lock lock(mu_);
    if (auto it = explicit_dirs_.find(name); it != explicit_dirs_.end()) return it->second;
  }
  if (options_.root.empty()) return NotFound("unknown model '" + name + "'");
  const fs::path root(options_.root);
  std::error_code ec;
  if (fs::exists(root / firmware::kMetadataFile, ec)) {
    if (name != options_.single_name) {
      return NotFound("unknown model '" + name + "'; this server holds '" + options_.single_name + "'");
    }
    return root.string();
  }
  const fs::path dir = root / name;
  if (!fs::is_directory(dir, ec)) {
    return NotFound("unknown model '" + name + "': no directory " + dir.string());
  }
  return dir.string();
}

Status ModelRepository::LoadAll() {
  const fs::path root(options_.root);
  std::error_code ec;
  if (!fs::is_directory(root, ec)) {
    return NotFound("--model_dir " + options_.root + ": not a directory");
  }
  std::vector<std::string> names;
  if (fs::exists(root / firmware::kMetadataFile, ec)) {
    names.push_back(options_.single_name);
  } else {
    for (const auto& e : fs::directory_iterator(root, ec)) {
      if (e.is_directory() && fs::exists(e.path() / firmware::kMetadataFile)) {
        names.push_back(e.path().filename().string());
      }
    }
    std::sort(names.begin(), names.end());
    if (names.empty()) {
      return NotFound("--model_dir " + options_.root +
                      ": neither a firmware bundle (metadata.json) nor a directory of bundles");
    }
  }
  std::vector<std::string> failed;
  for (const auto& n : names) {
    Status st = Load(n);
    if (!st.ok()) failed.push_back(n + ": " + st.message());
  }
  if (!failed.empty()) {
    std::string msg = "models that failed to load: ";
    for (std::size_t i = 0; i < failed.size(); ++i) msg += (i ? "; " : "") + failed[i];
    return FailedPrecondition(msg);
  }
  return Status::Ok();
}

Status ModelRepository::LoadBundle(const std::string& name, const std::string& dir) {
  if (!ValidModelName(name)) {
    return InvalidArgument("model name '" + name + "': expected 1-128 letters, digits, '-', '_' or '.'");
  }
  {
    std::unique_lock lock(mu_);
    explicit_dirs_[name] = dir;
  }
  return Load(name);
}

void ModelRepository::SetPending(const std::string& name, ModelState state, const std::string& reason) {
  std::unique_lock lock(mu_);
  auto& m = models_[name];
  if (!m) m = std::make_shared<ServedModel>(name, "", options_.driver, options_.limits, metrics_, options_.open_driver);
  m->SetPending(state, reason);
}

Status ModelRepository::Load(const std::string& name) {
  std::lock_guard serial(load_mu_);
  ASSIGN_OR_RETURN(std::string dir, DirOf(name));
  auto model = std::make_shared<ServedModel>(name, dir, options_.driver, options_.limits, metrics_, options_.open_driver);
  std::shared_ptr<ServedModel> old;
  {
    std::unique_lock lock(mu_);
    auto it = models_.find(name);
    if (it != models_.end()) old = it->second;
    models_[name] = model;  // visible as LOADING while it loads
  }
  if (old) old->Unload();
  return model->Load();
}

Status ModelRepository::Unload(const std::string& name) {
  std::lock_guard serial(load_mu_);
  if (!ValidModelName(name)) return InvalidArgument("model name '" + name + "' is not valid");
  std::shared_ptr<ServedModel> m;
  {
    std::shared_lock lock(mu_);
    auto it = models_.find(name);
    if (it == models_.end()) return NotFound("unknown model '" + name + "'");
    m = it->second;
  }
  m->Unload();
  return Status::Ok();
}

std::vector<ModelIndexEntry> ModelRepository::Index() const {
  std::vector<ModelIndexEntry> out;
  std::map<std::string, ModelIndexEntry> all;
  // Bundles present on disk but never loaded are listed as UNAVAILABLE.
  std::error_code ec;
  const fs::path root(options_.root);
  if (!options_.root.empty() && !fs::exists(root / firmware::kMetadataFile, ec)) {
    for (const auto& e : fs::directory_iterator(root, ec)) {
      const std::string n = e.path().filename().string();
      if (e.is_directory() && ValidModelName(n) && fs::exists(e.path() / firmware::kMetadataFile)) {
        all[n] = {n, "1", "UNAVAILABLE", "not loaded"};
      }
    }
  }
  std::shared_lock lock(mu_);
  for (const auto& [n, m] : models_) all[n] = {n, "1", ModelStateName(m->state()), m->reason()};
  for (auto& [n, e] : all) out.push_back(std::move(e));
  return out;
}

std::shared_ptr<ServedModel> ModelRepository::Find(const std::string& name) const {
  std::shared_lock lock(mu_);
  auto it = models_.find(name);
  return it == models_.end() ? nullptr : it->second;
}

std::vector<std::string> ModelRepository::ReadyModels() const {
  std::vector<std::string> out;
  std::shared_lock lock(mu_);
  for (const auto& [n, m] : models_) {
    if (m->state() == ModelState::kReady) out.push_back(n);
  }
  return out;
}

bool ModelRepository::AllReady() const {
  std::shared_lock lock(mu_);
  if (models_.empty()) return false;
  return std::all_of(models_.begin(), models_.end(), [](const auto& kv) {
    return kv.second->state() == ModelState::kReady || kv.second->state() == ModelState::kUnavailable;
  });
}

}  // namespace fpgaserve::serving
