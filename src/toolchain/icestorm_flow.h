// The vendor-free iCE40 flow: the UART board top around the core, yosys synth_ice40, nextpnr-ice40
// at the board clock, icepack -> <bundle>/bitstream.bin. Reports in <bundle>/reports/, logs in
// <bundle>/logs/, the scripts and constraints in <bundle>/scripts/.
#pragma once

#include "toolchain/flow.h"

namespace fpgaserve::toolchain {

inline constexpr const char* kIce40Bitstream = "bitstream.bin";

// FAILED_PRECONDITION when a tool is missing (naming its Debian package) or the placed design
// misses the board clock (naming Fmax, the clock and what to try); INTERNAL/UNAVAILABLE when a
// tool fails or times out (its last lines and log path).
Result<FlowResult> RunIce40Flow(const FlowRequest& request);

// Parsers of the tools' reports (exposed for tests).
// yosys `stat` text of the synthesized top: cell counts; lut = SB_LUT4, ff = SB_DFF*,
// dsp = SB_MAC16, bram = SB_RAM40_4K.
UtilizationReport ParseYosysIce40Stat(const std::string& stat_text);
// nextpnr-ice40 --report JSON: utilization (ICESTORM_LC/RAM/DSP) and the achieved Fmax of the
// clock (the smallest over clocks). INVALID_ARGUMENT when it is not such a report.
Result<FlowResult> ParseNextpnrReport(const std::string& json_text);

}  // namespace fpgaserve::toolchain
