#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/file_io.h"
#include "core/subprocess.h"
#include "core/text.h"
#include "toolchain/flow.h"

namespace fpgaserve::toolchain {

namespace fs = std::filesystem;

namespace {

nlohmann::ordered_json OrNull(std::int64_t v) {
  return v < 0 ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(v);
}

}  // namespace

Status RequireTool(const std::string& tool, const std::string& debian_package) {
  if (IsOnPath(tool)) return Status::Ok();
  return FailedPrecondition(tool + " not found on PATH; it comes with the Debian package " +
                            debian_package + " (scripts/install-deps.sh installs it)");
}

Status RunStage(const FlowRequest& request, const std::string& stage,
                const std::vector<std::string>& argv, const std::string& cwd, FlowResult* result) {
  const fs::path logs = fs::path(request.bundle_dir) / "logs";
  std::error_code ec;
  fs::create_directories(logs, ec);
  const std::string log_path = (logs / (stage + ".log")).string();
  SubprocessOptions o;
  o.timeout = request.stage_timeout;
  o.working_dir = cwd;
  o.cancel = request.cancel;
  if (request.on_stage) request.on_stage(stage);
  const auto t0 = std::chrono::steady_clock::now();
  auto r = RunSubprocess(argv, o);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!r.ok()) return r.status().WithContext(stage);
  result->stages.push_back({stage, seconds});
  std::string log = "$ " + Join(argv, " ") + "\n" + r->stdout_text;
  if (!r->stderr_text.empty()) log += "\n--- stderr ---\n" + r->stderr_text;
  RETURN_IF_ERROR(WriteFileAtomic(log_path, log));
  if (r->success()) return Status::Ok();
  const std::string tail = LastLines(r->stdout_text + "\n" + r->stderr_text, 20);
  const std::string what = argv[0] + " (" + stage + ") " + r->Describe() + "; log: " + log_path +
                           "\n" + tail;
  if (r->cancelled) return Cancelled(argv[0] + " (" + stage + ") stopped: the build was cancelled");
  if (r->timed_out) return DeadlineExceeded(what);
  return Internal(what);
}

std::string ToolVersion(const std::vector<std::string>& argv) {
  SubprocessOptions o;
  o.timeout = std::chrono::seconds(10);
  auto r = RunSubprocess(argv, o);
  if (!r.ok()) return "unknown";
  std::string text = r->stdout_text.empty() ? r->stderr_text : r->stdout_text;
  std::string line(Trim(text.substr(0, text.find('\n'))));
  return line.empty() ? "unknown" : line;
}

Status WriteReports(const FlowRequest& request, const FlowResult& r) {
  const fs::path reports = fs::path(request.bundle_dir) / "reports";
  std::error_code ec;
  fs::create_directories(reports, ec);
  nlohmann::ordered_json cells = nlohmann::ordered_json::object();
  for (const auto& [cell, n] : r.utilization.cells) cells[cell] = n;
  const auto& b = request.board.resources;
  nlohmann::ordered_json util{
      {"board", request.board.id},
      {"part", request.board.part},
      {"source", r.utilization.source},
      {"lut_kind", request.board.lut_kind},
      {"used",
       {{"lut", OrNull(r.utilization.lut)},
        {"ff", OrNull(r.utilization.ff)},
        {"dsp", OrNull(r.utilization.dsp)},
        {"bram", OrNull(r.utilization.bram)}}},
      {"available",
       {{"lut", OrNull(b.lut)}, {"ff", OrNull(b.ff)}, {"dsp", OrNull(b.dsp)}, {"bram", OrNull(b.bram)}}},
      {"cells", cells}};
  RETURN_IF_ERROR(WriteFileAtomic((reports / "utilization.json").string(), util.dump(2) + "\n"));
  nlohmann::ordered_json timing{
      {"clock_mhz", r.clock_mhz},
      {"fmax_mhz", r.fmax_mhz > 0 ? nlohmann::ordered_json(r.fmax_mhz) : nlohmann::ordered_json(nullptr)},
      {"met", r.fmax_mhz > 0 ? nlohmann::ordered_json(r.fmax_mhz >= r.clock_mhz)
                             : nlohmann::ordered_json(nullptr)}};
  return WriteFileAtomic((reports / "timing.json").string(), timing.dump(2) + "\n");
}

}  // namespace fpgaserve::toolchain
