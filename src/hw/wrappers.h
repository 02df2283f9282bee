// Interface wrappers around `fpgaserve_core`: AXI4-Stream (`fpgaserve_axis`, for DMA) and an
// AXI4-Lite register map (`fpgaserve_axilite`, for memory-mapped CPUs). Layouts: docs/hardware.md.
#pragma once

#include <cstdint>
#include <string>

#include "core/status.h"
#include "hw/design.h"

namespace fpgaserve::hw {

inline constexpr const char* kAxisModule = "fpgaserve_axis";
inline constexpr const char* kAxiLiteModule = "fpgaserve_axilite";

// AXI4-Lite register map (byte addresses, 32-bit registers).
inline constexpr std::uint32_t kRegControl = 0x00;  // bit0 start (write 1), bit1 done, bit2 busy
inline constexpr std::uint32_t kRegInputs = 0x04;   // n_in
inline constexpr std::uint32_t kRegOutputs = 0x08;  // n_out
inline constexpr std::uint32_t kRegCyclesLow = 0x0C;
inline constexpr std::uint32_t kRegCyclesHigh = 0x10;
inline constexpr std::uint32_t kRegOutputBase = 0x14;  // AxiLiteOutputBase(n_in)
inline constexpr std::uint32_t kInputBase = 0x100;     // input i at kInputBase + 4*i

// Byte address of output 0: 0x200 while the inputs fit below it (n_in <= 64), otherwise the
// smallest power of two above the input window, so that the windows never overlap.
std::uint32_t AxiLiteOutputBase(int n_in);

// Byte address width of the AXI4-Lite slave's address ports (at least 12).
int AxiLiteAddressBits(int n_in, int n_out);

// The wrapper module for `interface` ("axis" or "axilite"), in a file named after the module; it
// instantiates fpgaserve_core, so compile it together with design.files.
// Errors: "stream" (the core is already the stream interface) and unknown names are
// INVALID_ARGUMENT; element formats wider than 32 bits are UNIMPLEMENTED.
Result<VerilogFile> GenerateInterfaceWrapper(const HwDesign& design, const std::string& interface);

}  // namespace fpgaserve::hw
