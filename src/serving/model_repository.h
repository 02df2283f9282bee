// The predictor's models: firmware bundles loaded onto board drivers, each behind a dynamic
// batcher, with the protocol-neutral inference request/response that the REST and gRPC front
// ends translate to and from.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/status.h"
#include "firmware/bundle.h"
#include "numeric/number_format.h"
#include "runtime/board_driver.h"
#include "serving/metrics.h"
#include "serving/tensor_types.h"

namespace fpgaserve::serving {

struct ServingLimits {
  std::size_t max_body_bytes = 64u << 20;      // HTTP request body
  std::size_t max_batch_size = 64;             // rows coalesced into one device batch
  std::size_t max_request_rows = 65536;        // rows in one request (its batch dimension)
  std::size_t max_tensor_elements = 1u << 22;  // elements in one input tensor
  std::chrono::microseconds max_queue_delay{0};
};

struct InputTensor {
  std::string name;
  DType datatype = DType::kFp32;
  std::vector<std::int64_t> shape;
  std::vector<double> values;  // row-major, already decoded from JSON, contents or raw bytes
};

struct RequestedOutput {
  std::string name;
  bool binary = false;  // REST binary extension: return it as raw bytes
};

struct InferRequest {
  std::string model_name;
  std::string model_version;
  std::string id;
  std::vector<InputTensor> inputs;
  std::vector<RequestedOutput> outputs;  // empty: all outputs
  bool binary_output = false;            // request-level binary_data_output
};

struct OutputTensor {
  std::string name;
  DType datatype = DType::kFp32;
  std::vector<std::int64_t> shape;
  std::vector<float> fp32;           // FP32 outputs
  std::vector<std::int64_t> int64;   // INT64 outputs (the class index)
  bool binary = false;
};

struct InferTimings {
  std::uint64_t device_cycles = 0;  // the whole device batch this request rode in
  double device_seconds = 0;        // device_cycles at the firmware's clock
  double queue_seconds = 0;         // waiting in the batcher
  double driver_seconds = 0;        // the driver call (board or simulator) for the batch
  std::size_t batch_rows = 0;       // rows in that device batch (>= this request's rows)
  std::uint64_t input_overflows = 0;
  // A board behind a board server (--board-server): its server's time for the batch (the wait
  // for the board and the board's driver call included) and the rest of driver_seconds, the
  // network's. Zero for a local board.
  bool remote = false;
  double board_server_seconds = 0;
  double network_seconds = 0;
};

struct InferResponse {
  std::string model_name;
  std::string model_version;
  std::string id;
  std::vector<OutputTensor> outputs;
  InferTimings timings;
};

using InferCallback = std::function<void(Result<InferResponse>)>;

enum class ModelState { kUnavailable, kLoading, kReady, kFailed };

// Opens the board driver of a model whose bundle is in `dir` (the default opens the repository's
// --driver kind in process; `serve --board-server` leases a board of a board server instead).
using DriverOpener = std::function<Result<std::unique_ptr<runtime::BoardDriver>>(const std::string& name,
                                                                                const std::string& dir)>;
const char* ModelStateName(ModelState s);  // "UNAVAILABLE", "LOADING", "READY", "FAILED"

// One model: a bundle, its driver and its batcher thread. Infer() may be called from any thread;
// the driver is used by one thread at a time (the holder of busy_).
class ServedModel {
 public:
  ServedModel(std::string name, std::string dir, std::string driver_kind, ServingLimits limits,
              MetricsRegistry* metrics, DriverOpener opener = {});
  ~ServedModel();
  ServedModel(const ServedModel&) = delete;
  ServedModel& operator=(const ServedModel&) = delete;

  // Reads the bundle, opens the driver, runs one warm-up inference; only then READY.
  Status Load();
  // Stops accepting work, fails queued requests with UNAVAILABLE, closes the driver.
  void Unload();

  const std::string& name() const { return name_; }
  const std::string& dir() const { return dir_; }
  // READY only while the board can take work: a remote board being re-acquired reads LOADING.
  ModelState state() const;
  std::string reason() const;
  // Before Load(): shown while the firmware is being built or fetched (LOADING) or when that
  // failed (FAILED), with the reason.
  void SetPending(ModelState state, std::string reason);
  // Valid once Load() has read the bundle (also while not ready).
  const firmware::BundleMetadata& metadata() const { return meta_; }
  bool is_classifier() const { return classifier_; }
  std::string output_name() const;
  static constexpr const char* kClassOutput = "class_index";

  // Validates, converts and queues; `done` runs on whichever thread ran the batch (the caller's
  // own, another caller's, or the batcher thread), or inline on a validation error.
  void Infer(InferRequest request, InferCallback done);

  // The model's metric series, looked up once (the registry owns them; the pointers stay valid
  // after the model is unloaded). Null members when the model has no registry.
  struct Instruments {
    Histogram* batch_rows = nullptr;
    Histogram* driver_seconds = nullptr;
    Histogram* device_cycles = nullptr;
    Histogram* device_seconds = nullptr;
    Histogram* queue_seconds = nullptr;
    Histogram* board_server_seconds = nullptr;
    Histogram* network_seconds = nullptr;
    Histogram* predict_seconds = nullptr;
    Histogram* preprocess_seconds = nullptr;
    Histogram* postprocess_seconds = nullptr;
    Histogram* request_v1 = nullptr;
    Histogram* request_v2 = nullptr;
    Histogram* request_grpc = nullptr;
    Counter* success = nullptr;
    Counter* failure = nullptr;
  };
  const Instruments& instruments() const { return inst_; }

  struct Stats {
    std::uint64_t success = 0, failure = 0, inferences = 0, batches = 0;
    double queue_seconds = 0, compute_seconds = 0;
  };
  Stats stats() const;

 private:
  struct Pending {
    InferRequest request;
    numeric::RawBatch raw;
    std::uint64_t overflows = 0;
    InferCallback done;
    std::chrono::steady_clock::time_point enqueued;
  };
  // The batcher thread: with a queue delay it forms every batch; without one it only takes over
  // a queue that a caller's thread left after kCallerRounds batches.
  void Run();
  std::vector<Pending> TakeBatchLocked();
  // The calling thread holds the device (it set busy_): runs up to max_rounds batches from the
  // queue, then releases the device (and unlocks).
  void DrainLocked(std::unique_lock<std::mutex>& lock, std::size_t max_rounds);
  void RunBatch(std::vector<Pending>& batch);
  static constexpr std::size_t kCallerRounds = 16;
  void Finish(std::vector<Pending>& batch, const Result<runtime::BatchResult>& result,
              std::chrono::steady_clock::time_point started, double driver_seconds);
  Status Validate(const InferRequest& r, numeric::RawBatch* raw, std::uint64_t* overflows) const;

  const std::string name_, dir_, driver_kind_;
  const ServingLimits limits_;
  const DriverOpener opener_;
  MetricsRegistry* metrics_;
  Instruments inst_;
  firmware::BundleMetadata meta_;
  numeric::NumberFormat in_format_, out_format_;
  bool classifier_ = false;
  std::atomic<ModelState> state_{ModelState::kUnavailable};
  mutable std::mutex mu_;
  std::condition_variable work_cv_;  // the batcher thread: work to do, or stopping
  std::condition_variable idle_cv_;  // Unload(): the device was released
  std::deque<Pending> queue_;
  std::size_t queued_rows_ = 0;  // rows in queue_
  bool stopping_ = false;
  bool busy_ = false;  // the driver is in use (by the batcher thread or a caller's fast path)
  std::string reason_;
  std::unique_ptr<runtime::BoardDriver> driver_;
  std::thread worker_;
  Stats stats_;
};

struct ModelIndexEntry {
  std::string name;
  std::string version;
  std::string state;
  std::string reason;
};

// The models under a --model_dir: the directory itself when it is a bundle (named
// `single_name`), otherwise one bundle per subdirectory (named after the subdirectory).
class ModelRepository {
 public:
  struct Options {
    std::string root;
    std::string single_name;
    std::string driver = "sim";  // the driver kind (a metrics label and what messages name)
    ServingLimits limits;
    DriverOpener open_driver;  // empty: runtime::OpenBoardDriver(driver, dir)
  };
  ModelRepository(Options options, MetricsRegistry* metrics);
  ~ModelRepository();

  // Loads every model found under the root; failures are kept per model (FAILED + reason) and
  // summarized in the returned status.
  Status LoadAll();
  Status Load(const std::string& name);
  // Loads the bundle in `dir` as model `name` (the on-demand path: a bundle fetched from a build,
  // outside the root); later Load(name) calls reload from the same directory.
  Status LoadBundle(const std::string& name, const std::string& dir);
  // Lists `name` as LOADING or FAILED with a reason before its bundle exists (a build running).
  void SetPending(const std::string& name, ModelState state, const std::string& reason);
  Status Unload(const std::string& name);
  std::vector<ModelIndexEntry> Index() const;
  std::shared_ptr<ServedModel> Find(const std::string& name) const;
  std::vector<std::string> ReadyModels() const;
  bool AllReady() const;
  const Options& options() const { return options_; }

 private:
  Result<std::string> DirOf(const std::string& name) const;
  Options options_;
  MetricsRegistry* metrics_;
  mutable std::shared_mutex mu_;
  std::map<std::string, std::shared_ptr<ServedModel>> models_;
  std::map<std::string, std::string> explicit_dirs_;  // LoadBundle's directories (guarded by mu_)
  std::mutex load_mu_;  // one load/unload at a time
};

// Model names are path components under the repository and label values in metrics.
bool ValidModelName(const std::string& name);

}  // namespace fpgaserve::serving
