#include "toolchain/verilator_build.h"

#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>

#include "core/file_io.h"
#include "core/sha256.h"
#include "core/subprocess.h"
#include "core/text.h"

namespace fpgaserve::toolchain {

namespace fs = std::filesystem;

namespace {

// Flags that shape the built library; part of the cache key. -Wno-fatal: warnings are the
// business of LintVerilog, not of the build. --no-timing: the cores are plain synchronous RTL,
// and the C++ coroutine support --timing needs would only slow the compile.
const std::vector<std::string> kVerilateFlags = {
    "--cc",  "--exe",    "-O3",     "--no-timing",  "-Wno-fatal",    "-CFLAGS",
    "-fPIC", "-LDFLAGS", "-shared", "--top-module", "fpgaserve_core"};

// Above this much evaluation code (bytes of generated C++), g++ -O2 takes minutes where -O1
// takes seconds and simulates nearly as fast; small designs get -O2.
constexpr std::uintmax_t kLargeModelBytes = 2 << 20;

// Optimization levels for make: the per-cycle evaluation code (OPT_FAST), Verilator's runtime
// (OPT_GLOBAL) and the run-once construction/initialization code (OPT_SLOW), which for large
// designs is megabytes of constant tables that gain nothing from optimization.
// Part of the cache key: a change of this policy must not reuse libraries built under the old one.
constexpr const char* kOptPolicy = "OPT_FAST -O2, -O1 above 2 MiB; OPT_GLOBAL -O2; OPT_SLOW -O0";

std::vector<std::string> MakeOptFlags(std::uintmax_t fast_bytes) {
  return {fast_bytes > kLargeModelBytes ? "OPT_FAST=-O1" : "OPT_FAST=-O2", "OPT_GLOBAL=-O2",
          "OPT_SLOW=-O0"};
}

// Only the C ABI leaves the library: every Verilator symbol stays local, so several simulated
// boards (each with its own copy of libverilated) can live in one process.
constexpr const char* kExportMap =
    "{ global: fs_open; fs_reset; fs_info; fs_infer; fs_cycles; fs_close; local: *; };\n";

constexpr int kMaxErrorLines = 8;

Status ValidateSpec(const SimCoreSpec& spec) {
  if (spec.verilog.empty()) return InvalidArgument("sim core: no Verilog sources");
  for (const auto& f : spec.verilog) {
    if (f.name.empty() || f.name.find('/') != std::string::npos || f.name[0] == '.' ||
        !(f.name.ends_with(".v") || f.name.ends_with(".sv"))) {
      return InvalidArgument("sim core: source name " + Quote(f.name) +
                             "; expected a plain file name ending in .v or .sv");
    }
  }
  auto check = [](int v, int lo, int hi, const char* what) -> Status {
    if (v < lo || v > hi) {
      return InvalidArgument(std::string("sim core: ") + what + " " + std::to_string(v) +
                             "; expected " + std::to_string(lo) + ".." + std::to_string(hi));
    }
    return Status::Ok();
  };
  RETURN_IF_ERROR(check(spec.n_in, 1, 1 << 20, "n_in"));
  RETURN_IF_ERROR(check(spec.n_out, 1, 1 << 20, "n_out"));
  RETURN_IF_ERROR(check(spec.in_width, 1, 64, "in_width"));
  RETURN_IF_ERROR(check(spec.out_width, 1, 64, "out_width"));
  RETURN_IF_ERROR(check(spec.latency_cycles, 0, 1 << 24, "latency_cycles"));
  RETURN_IF_ERROR(check(spec.initiation_interval, 1, 1 << 24, "initiation_interval"));
  return Status::Ok();
}

Status MissingVerilator() {
  return FailedPrecondition("verilator not found on PATH; install it (scripts/install-deps.sh)");
}

// `verilator --version`, asked once per process: it is part of every cache key.
Result<std::string> VerilatorVersion() {
  static std::mutex mu;
  static std::optional<std::string> version;
  std::lock_guard<std::mutex> lock(mu);
  if (version) return *version;
  SubprocessOptions o;
  o.timeout = std::chrono::seconds(60);
  auto r = RunSubprocess({"verilator", "--version"}, o);
  if (!r.ok()) return r.status().code() == StatusCode::kNotFound ? MissingVerilator() : r.status();
  if (!r->success()) {
    return FailedPrecondition("verilator --version failed (" + r->Describe() +
                              "): " + r->stderr_text);
  }
  version = std::string(Trim(r->stdout_text));
  return *version;
}

std::string CacheKey(const SimCoreSpec& spec, const std::string& harness,
                     const std::string& version) {
  Sha256 h;
  h.Update("fpgaserve-sim-library-v1\n");
  h.Update(version + "\n" + Join(kVerilateFlags, " ") + "\n" + kOptPolicy + "\n" + kExportMap);
  for (const auto& f : spec.verilog) {
    h.Update(f.name + '\0' + std::to_string(f.text.size()) + '\0');
    h.Update(f.text);
  }
  h.Update(harness);
  return h.FinishHex();
}

std::string UniqueSuffix() {
  static std::mutex mu;
  static std::mt19937_64 rng(std::random_device{}());
  std::lock_guard<std::mutex> lock(mu);
  return std::to_string(::getpid()) + "." + std::to_string(rng() % 1000000007ULL);
}

// Copies by temp file + rename, so a reader (or a process that has the old library mapped)
// never sees a half-written file.
Status CopyAtomic(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  const fs::path tmp = to.string() + ".tmp." + UniqueSuffix();
  fs::copy_file(from, tmp, fs::copy_options::overwrite_existing, ec);
  if (ec)
    return InvalidArgument("cannot copy " + from.string() + " to " + to.string() + ": " +
                           ec.message());
  fs::rename(tmp, to, ec);
  if (ec) {
    fs::remove(tmp, ec);
    return InvalidArgument("cannot rename " + tmp.string() + " to " + to.string() + ": " +
                           ec.message());
  }
  return Status::Ok();
}

Result<fs::path> MakeWorkDir() {
  std::string tmpl = (fs::temp_directory_path() / "fpgaserve-verilator-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) {
    return Internal("cannot create a build directory from " + tmpl);
  }
  return fs::path(tmpl);
}

// The lines of a failed build a user needs first: Verilator's %Error lines and compiler errors.
std::string FirstErrorLines(const std::string& log) {
  std::vector<std::string> errors, all;
  std::istringstream in(log);
  for (std::string line; std::getline(in, line);) {
    all.push_back(line);
    const bool error = line.find("%Error") != std::string::npos ||
                       line.find("error:") != std::string::npos ||
                       line.find("undefined reference") != std::string::npos;
    if (error && line.find("%Error: Command Failed") == std::string::npos &&
        static_cast<int>(errors.size()) < kMaxErrorLines) {
      errors.push_back(line);
    }
  }
  if (errors.empty()) {
    const std::size_t from = all.size() > kMaxErrorLines ? all.size() - kMaxErrorLines : 0;
    errors.assign(all.begin() + static_cast<std::ptrdiff_t>(from), all.end());
  }
  return Join(errors, "\n");
}

void ReplaceAll(std::string& s, const std::string& from, const std::string& to) {
  if (from.empty()) return;
  for (std::size_t pos = s.find(from); pos != std::string::npos;
       pos = s.find(from, pos + to.size())) {
    s.replace(pos, from.size(), to);
  }
}

// Bytes of generated C++ that runs every cycle (everything but the __Slow construction code).
std::uintmax_t FastCodeBytes(const fs::path& obj) {
  std::uintmax_t n = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(obj, ec)) {
    const std::string name = e.path().filename().string();
    if (name.ends_with(".cpp") && name.find("__Slow") == std::string::npos) {
      n += e.file_size(ec);
    }
  }
  return n;
}

// Builds in a private directory: GNU make cannot build in paths with spaces, and the bundle
// should not carry Verilator's objects. Two steps (verilate, then make) so the C++ optimization
// level can follow the size of the generated model. Returns the build log.
Result<std::string> RunVerilatorBuild(const SimCoreSpec& spec, const std::string& harness,
                                      const fs::path& work, const fs::path& out_dir,
                                      const SimBuildOptions& options, bool* ok) {
  *ok = false;
  std::error_code ec;
  fs::create_directories(work / "rtl", ec);
  fs::create_directories(work / "obj", ec);
  if (ec) return Internal("cannot create " + (work / "obj").string() + ": " + ec.message());
  std::vector<std::string> argv = {"verilator"};
  argv.insert(argv.end(), kVerilateFlags.begin(), kVerilateFlags.end());
  RETURN_IF_ERROR(WriteFileAtomic((work / "exports.map").string(), kExportMap));
  argv.insert(argv.end(),
              {"-LDFLAGS", "-Wl,--version-script=" + (work / "exports.map").string(), "--Mdir",
               (work / "obj").string(), "-o", (work / kSimLibraryName).string()});
  for (const auto& f : spec.verilog) {
    RETURN_IF_ERROR(WriteFileAtomic((work / "rtl" / f.name).string(), f.text));
    argv.push_back((work / "rtl" / f.name).string());
  }
  RETURN_IF_ERROR(WriteFileAtomic((work / "harness.cpp").string(), harness));
  argv.push_back((work / "harness.cpp").string());

  const auto deadline = std::chrono::steady_clock::now() + options.timeout;
  std::string log;
  auto run = [&](const std::vector<std::string>& cmd) -> Result<bool> {
    SubprocessOptions o;
    o.timeout = std::max(std::chrono::milliseconds(1000),
                         std::chrono::duration_cast<std::chrono::milliseconds>(
                             deadline - std::chrono::steady_clock::now()));
    o.cancel = options.cancel;
    auto r = RunSubprocess(cmd, o);
    if (r.ok() && r->cancelled) return Cancelled(cmd[0] + " stopped: the build was cancelled");
    if (!r.ok() && r.status().code() == StatusCode::kNotFound) {
      return FailedPrecondition(cmd[0] +
                                " not found on PATH; install it (scripts/install-deps.sh)");
    }
    if (!r.ok()) return r.status();
    log += "$ " + Join(cmd, " ") + "\n" + r->stdout_text + r->stderr_text;
    if (!r->success()) log += "\nbuild failed: " + r->Describe() + "\n";
    return r->success();
  };
  ASSIGN_OR_RETURN(bool verilated, run(argv));
  if (verilated) {
    std::vector<std::string> make = {
        "make", "-C", (work / "obj").string(), "-f", "Vfpgaserve_core.mk", "-j", "1"};
    for (auto& flag : MakeOptFlags(FastCodeBytes(work / "obj"))) make.push_back(flag);
    ASSIGN_OR_RETURN(bool made, run(make));
    *ok = made && fs::exists(work / kSimLibraryName);
  }
  // Point messages at the bundle's copies of the sources, which outlive the build directory.
  ReplaceAll(log, (work / "rtl").string() + "/", (out_dir / "rtl").string() + "/");
  return log;
}

}  // namespace

std::string DefaultVerilatorCacheDir() {
  if (const char* e = std::getenv("FPGASERVE_VERILATOR_CACHE"); e && *e) return e;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) {
    return (fs::path(x) / "fpgaserve" / "verilator").string();
  }
  if (const char* home = std::getenv("HOME"); home && *home) {
    return (fs::path(home) / ".cache" / "fpgaserve" / "verilator").string();
  }
  return (fs::temp_directory_path() / "fpgaserve-cache" / "verilator").string();
}

Result<SimBuildResult> BuildSimLibrary(const SimCoreSpec& spec, const std::string& out_dir,
                                       const SimBuildOptions& options) {
  RETURN_IF_ERROR(ValidateSpec(spec));
  const fs::path out = fs::absolute(out_dir);
  const fs::path sim = out / "sim";
  std::error_code ec;
  fs::create_directories(out / "rtl", ec);
  fs::create_directories(sim, ec);
  if (ec) return InvalidArgument(sim.string() + ": cannot create: " + ec.message());
  for (const auto& f : spec.verilog) {
    RETURN_IF_ERROR(WriteFileAtomic((out / "rtl" / f.name).string(), f.text));
  }
  const std::string harness = GenerateSimHarness(spec);
  RETURN_IF_ERROR(WriteFileAtomic((sim / "harness.cpp").string(), harness));
  ASSIGN_OR_RETURN(std::string version, VerilatorVersion());

  SimBuildResult result;
  result.library_path = (sim / kSimLibraryName).string();
  result.log_path = (sim / "build.log").string();
  result.cache_key = CacheKey(spec, harness, version);
  const fs::path cache_dir =
      options.cache_dir.empty() ? DefaultVerilatorCacheDir() : options.cache_dir;
  const fs::path cached = cache_dir / result.cache_key / kSimLibraryName;

  if (options.use_cache && fs::exists(cached, ec) && CopyAtomic(cached, result.library_path).ok()) {
    result.cache_hit = true;
    RETURN_IF_ERROR(WriteFileAtomic(result.log_path, version + "\ncache hit: " + cached.string() +
                                                         " (key " + result.cache_key + ")\n"));
    return result;
  }

  ASSIGN_OR_RETURN(fs::path work, MakeWorkDir());
  bool ok = false;
  auto log = RunVerilatorBuild(spec, harness, work, out, options, &ok);
  Status status = log.ok() ? Status::Ok() : log.status();
  std::string log_text = log.ok() ? *log : "";
  if (status.ok() && ok) status = CopyAtomic(work / kSimLibraryName, result.library_path);
  if (status.ok() && ok && options.use_cache) {
    // A cache that cannot be written (read-only home, full disk) only costs speed.
    fs::create_directories(cached.parent_path(), ec);
    Status cs = ec ? Internal(ec.message()) : CopyAtomic(work / kSimLibraryName, cached);
    log_text +=
        cs.ok() ? "cached as " + cached.string() + "\n" : "not cached: " + cs.message() + "\n";
  }
  if (options.keep_objects) {
    log_text += "objects kept in " + work.string() + "\n";
  } else {
    fs::remove_all(work, ec);
  }
  if (!log_text.empty()) RETURN_IF_ERROR(WriteFileAtomic(result.log_path, log_text));
  RETURN_IF_ERROR(status);
  if (!ok) {
    return Internal("verilator build failed:\n" + FirstErrorLines(log_text) +
                    "\nfull log: " + result.log_path);
  }
  return result;
}

Status LintVerilog(const std::vector<std::string>& files, const std::string& top) {
  if (files.empty()) return InvalidArgument("lint: no Verilog files");
  std::vector<std::string> argv = {"verilator",   "--lint-only",  "-Wall",
                                   "--no-timing", "--top-module", top};
  argv.insert(argv.end(), files.begin(), files.end());
  SubprocessOptions o;
  o.timeout = std::chrono::minutes(5);
  auto r = RunSubprocess(argv, o);
  if (!r.ok()) return r.status().code() == StatusCode::kNotFound ? MissingVerilator() : r.status();
  const std::string out = r->stdout_text + r->stderr_text;
  if (r->success() && out.find("%Warning") == std::string::npos &&
      out.find("%Error") == std::string::npos) {
    return Status::Ok();
  }
  std::vector<std::string> lines;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("%Warning", 0) == 0 || line.rfind("%Error", 0) == 0) lines.push_back(line);
  }
  if (lines.empty()) lines.push_back(std::string(Trim(out)));
  return FailedPrecondition("verilator --lint-only -Wall (" + r->Describe() + "): " +
                            std::to_string(lines.size()) + " message(s):\n" + Join(lines, "\n"));
}

}  // namespace fpgaserve::toolchain
