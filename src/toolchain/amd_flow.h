// AMD boards: a yosys synth_xilinx resource estimate (always), and the vendor flows — Vivado
// non-project Tcl with a Zynq block design (PS7 + AXI DMA + our AXI4-Stream core, or PS7 + our
// AXI4-Lite core), and for Alveo a Vitis RTL kernel packaged with package_xo and linked by v++.
// The vendor tools run when they are on PATH; otherwise the bundle says how to run them.
#pragma once

#include "toolchain/flow.h"

namespace fpgaserve::toolchain {

inline constexpr const char* kZynqBitstream = "fpgaserve.bit";
inline constexpr const char* kZynqHwh = "fpgaserve.hwh";
inline constexpr const char* kAlveoXclbin = "fpgaserve.xclbin";
inline constexpr const char* kDefaultAlveoPlatform = "xilinx_u50_gen3x16_xdma_5_202210_1";

Result<FlowResult> RunAmdFlow(const FlowRequest& request);

// yosys `stat` of a synth_xilinx netlist: LUT = LUT1..LUT6, FF = FD*, DSP = DSP48E1/E2,
// BRAM = RAMB36 + RAMB18 / 2 (rounded up).
UtilizationReport ParseYosysXilinxStat(const std::string& stat_text);

// The generated scripts (exposed for tests).
std::string ZynqTcl(const FlowRequest& request, const std::vector<std::string>& rtl_files);
std::string AlveoPackageTcl(const FlowRequest& request, const std::vector<std::string>& rtl_files);
std::string AlveoKernelXml(int address_bits);

}  // namespace fpgaserve::toolchain
