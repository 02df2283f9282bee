#include "runtime/sim_driver.h"

#include <dlfcn.h>

#include <filesystem>
#include <mutex>

#include "runtime/batch_validation.h"

namespace fpgaserve::runtime {

namespace {

// The C ABI of sim/libfpgaserve_sim.so (src/toolchain/sim_harness.cc generates it).
struct SimAbi {
  void* (*open)() = nullptr;
  void (*reset)(void*) = nullptr;
  int (*info)(void*, int*, int*, int*, int*) = nullptr;
  long long (*infer)(void*, const long long*, long long, long long*, unsigned long long*) = nullptr;
  unsigned long long (*cycles)(void*) = nullptr;
  void (*close)(void*) = nullptr;
};

static_assert(sizeof(long long) == sizeof(numeric::RawValue));
static_assert(sizeof(unsigned long long) == sizeof(std::uint64_t));

class SimDriver : public BoardDriver {
 public:
  SimDriver(firmware::BundleMetadata metadata, void* library, SimAbi abi, void* core)
      : metadata_(std::move(metadata)), library_(library), abi_(abi), core_(core) {}
  ~SimDriver() override {
    abi_.close(core_);
    dlclose(library_);
  }
  SimDriver(const SimDriver&) = delete;
  SimDriver& operator=(const SimDriver&) = delete;

  std::string kind() const override { return "sim"; }

  Result<BatchResult> Infer(const numeric::RawBatch& inputs) override {
    RETURN_IF_ERROR(ValidateInputBatch(inputs, metadata_));
    BatchResult r;
    r.outputs.rows = inputs.rows;
    r.outputs.features = static_cast<std::size_t>(metadata_.n_outputs);
    r.outputs.values.assign(r.outputs.rows * r.outputs.features, 0);
    r.latency_cycles.assign(inputs.rows, 0);
    long long cycles = 0;
    {
      // One simulated core: batches take turns, as they would on a board.
      std::lock_guard<std::mutex> lock(mu_);
      cycles = abi_.infer(core_, reinterpret_cast<const long long*>(inputs.values.data()),
                          static_cast<long long>(inputs.rows),
                          reinterpret_cast<long long*>(r.outputs.values.data()),
                          reinterpret_cast<unsigned long long*>(r.latency_cycles.data()));
      if (cycles < 0) abi_.reset(core_);  // a stuck pipeline must not poison the next batch
    }
    if (cycles < 0) {
      return Internal(
          "sim: the core stopped producing outputs (no output for " +
          std::to_string(metadata_.latency_cycles + metadata_.initiation_interval + 1000) +
          " cycles); the core was reset");
    }
    r.total_cycles = static_cast<std::uint64_t>(cycles);
    return r;
  }

 private:
  firmware::BundleMetadata metadata_;
  void* library_;
  SimAbi abi_;
  void* core_;
  std::mutex mu_;
};

template <typename F>
Status Resolve(void* library, const char* name, const std::string& path, F* fn) {
  *fn = reinterpret_cast<F>(dlsym(library, name));
  if (*fn == nullptr) {
    return InvalidArgument(path + ": not a simulated-board library (no symbol " + name + ")");
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<BoardDriver>> OpenSimDriver(const std::string& bundle_dir,
                                                   const firmware::BundleMetadata& metadata) {
  RETURN_IF_ERROR(firmware::VerifyBundleFile(bundle_dir, metadata, firmware::kSimLibraryFile));
  const std::string path =
      std::filesystem::absolute(std::filesystem::path(bundle_dir) / firmware::kSimLibraryFile)
          .string();
  void* library = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (library == nullptr) {
    const char* err = dlerror();
    return InvalidArgument(path + ": cannot load: " + (err ? err : "unknown error"));
  }
  SimAbi abi;
  Status s = Resolve(library, "fs_open", path, &abi.open);
  if (s.ok()) s = Resolve(library, "fs_reset", path, &abi.reset);
  if (s.ok()) s = Resolve(library, "fs_info", path, &abi.info);
  if (s.ok()) s = Resolve(library, "fs_infer", path, &abi.infer);
  if (s.ok()) s = Resolve(library, "fs_cycles", path, &abi.cycles);
  if (s.ok()) s = Resolve(library, "fs_close", path, &abi.close);
  void* core = s.ok() ? abi.open() : nullptr;
  if (s.ok() && core == nullptr) s = Internal(path + ": fs_open failed");
  if (s.ok()) {
    int n_in = 0, n_out = 0, in_width = 0, out_width = 0;
    if (abi.info(core, &n_in, &n_out, &in_width, &out_width) != 0 || n_in != metadata.n_inputs ||
        n_out != metadata.n_outputs || in_width != metadata.input_format.width() ||
        out_width != metadata.output_format.width()) {
      s = InvalidArgument(path + ": core has " + std::to_string(n_in) + " x " +
                          std::to_string(in_width) + "-bit inputs and " + std::to_string(n_out) +
                          " x " + std::to_string(out_width) + "-bit outputs; metadata says " +
                          std::to_string(metadata.n_inputs) + " x " +
                          std::to_string(metadata.input_format.width()) + " and " +
                          std::to_string(metadata.n_outputs) + " x " +
                          std::to_string(metadata.output_format.width()));
    }
  }
  if (!s.ok()) {
    if (core != nullptr) abi.close(core);
    dlclose(library);
    return s;
  }
  return std::unique_ptr<BoardDriver>(new SimDriver(metadata, library, abi, core));
}

}  // namespace fpgaserve::runtime
