// Verilator as the simulated board's "synthesis": builds a core into a shared library with the
// sim C ABI (sim_core.h), caches builds by content, and lints Verilog with -Wall.
#pragma once

#include <atomic>
#include <chrono>
#include <string>
#include <vector>

#include "core/status.h"
#include "toolchain/sim_core.h"

namespace fpgaserve::toolchain {

inline constexpr const char* kSimLibraryName = "libfpgaserve_sim.so";

struct SimBuildOptions {
  std::chrono::seconds timeout{std::chrono::minutes(15)};
  // Where built libraries are cached by content. Empty: DefaultVerilatorCacheDir().
  std::string cache_dir;
  bool use_cache = true;
  // Keep <out_dir>/obj (the Verilator output) after a successful build, for debugging.
  bool keep_objects = false;
  // When set and it becomes true, the running tool is killed and the build fails with CANCELLED.
  const std::atomic<bool>* cancel = nullptr;
};

struct SimBuildResult {
  std::string library_path;  // <out_dir>/sim/libfpgaserve_sim.so
  std::string log_path;      // <out_dir>/sim/build.log
  std::string cache_key;     // sha256 of everything the library depends on
  bool cache_hit = false;
};

// $FPGASERVE_VERILATOR_CACHE, else $XDG_CACHE_HOME/fpgaserve/verilator, else
// ~/.cache/fpgaserve/verilator.
std::string DefaultVerilatorCacheDir();

// Writes the sources to <out_dir>/rtl/, the harness to <out_dir>/sim/harness.cpp, and builds
// <out_dir>/sim/libfpgaserve_sim.so (objects in <out_dir>/obj). Tool output goes to
// <out_dir>/sim/build.log; a failing build returns INTERNAL with the tool's first error lines
// and the log path. A cache hit copies the library instead of rebuilding it.
Result<SimBuildResult> BuildSimLibrary(const SimCoreSpec& spec, const std::string& out_dir,
                                       const SimBuildOptions& options = {});

// `verilator --lint-only -Wall` on the files with `top` as the top module. Any warning or error
// fails with FAILED_PRECONDITION listing them.
Status LintVerilog(const std::vector<std::string>& files,
                   const std::string& top = "fpgaserve_core");

}  // namespace fpgaserve::toolchain
