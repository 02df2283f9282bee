// What a board's synthesis flow (iCE40 open flow, Xilinx/Vivado, Vitis) returns to the compile
// driver, and what it is given. Each flow writes under the bundle directory: reports/*.json,
// logs/<stage>.log, and its bitstream (or the scripts a user runs with the vendor tools).
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "boards/board.h"
#include "core/status.h"
#include "hw/design.h"

namespace fpgaserve::toolchain {

struct FlowRequest {
  const hw::HwDesign* design = nullptr;  // the core (`fpgaserve_core` and its modules)
  boards::Board board;
  std::string bundle_dir;  // absolute; rtl/ already holds the core and the chosen wrapper
  std::string interface;   // the core wrapper in rtl/: "stream" | "axis" | "axilite"
  std::uint32_t design_id = 0;  // the first 8 hex digits of the bundle id (board tops report it)
  std::chrono::seconds stage_timeout{std::chrono::minutes(20)};
  // When set and it becomes true, the running tool is killed and the flow fails with CANCELLED.
  const std::atomic<bool>* cancel = nullptr;
  // Called as each stage starts, with its name ("synth", "place_route", "pack", "vivado", ...).
  std::function<void(const std::string& stage)> on_stage;
};

struct StageTiming {
  std::string stage;  // "synth", "place_route", "pack", "vivado", "package_xo", "v++"
  double seconds = 0;
};

struct UtilizationReport {
  // Family units as in boards::Resources; -1 when the tool did not report the resource.
  std::int64_t lut = -1;
  std::int64_t ff = -1;
  std::int64_t dsp = -1;
  std::int64_t bram = -1;
  std::map<std::string, std::int64_t> cells;  // raw cell counts ("SB_LUT4": 812, "DSP48E1": 4)
  std::string source;                         // "yosys synth_ice40", "nextpnr-ice40", ...
};

struct FlowResult {
  UtilizationReport utilization;  // the best report the flow has (place & route over synthesis)
  double clock_mhz = 0;           // the clock the design was built for
  double fmax_mhz = 0;            // from static timing; 0 when the flow did not time the design
  // "built" (path relative to the bundle dir exists) or "needs-vendor-tools" (command says how)
  std::string bitstream_status;
  std::string bitstream_path;
  std::string bitstream_command;
  std::vector<StageTiming> stages;
  std::map<std::string, std::string> tool_versions;  // "yosys": "0.23", "nextpnr-ice40": "..."
};

// Helpers the flows share (flow_common.cc).

// FAILED_PRECONDITION naming the tool and the Debian package that provides it, unless `tool` is
// on PATH.
Status RequireTool(const std::string& tool, const std::string& debian_package);

// Runs one stage: argv in `cwd`, stdout+stderr to <bundle>/logs/<stage>.log, the request's
// timeout; records the wall time. A failure is INTERNAL (UNAVAILABLE on timeout) with the
// tool's last lines and the log path.
Status RunStage(const FlowRequest& request, const std::string& stage,
                const std::vector<std::string>& argv, const std::string& cwd, FlowResult* result);

// The first line a tool prints for `--version`/`-V`, or "unknown".
std::string ToolVersion(const std::vector<std::string>& argv);

// Writes reports/utilization.json and reports/timing.json from `result`.
Status WriteReports(const FlowRequest& request, const FlowResult& result);

}  // namespace fpgaserve::toolchain
