// The iCE40 board top-level: `fpgaserve_uart_top` wraps `fpgaserve_core` with a power-on reset and
// a UART host link (8N1) speaking the framed protocol of runtime/uart_frames.h. Documented in
// docs/hardware.md ("Board top-level: iCE40 UART link").
#pragma once

#include <cstdint>

#include "core/status.h"
#include "hw/design.h"

namespace fpgaserve::hw {

inline constexpr const char* kUartTopModule = "fpgaserve_uart_top";

struct UartLinkOptions {
  double clock_mhz = 12;
  int baud = 115200;
  std::uint32_t design_id = 0;  // the first 8 hex digits of the bundle id
};

// clock / baud rounded; INVALID_ARGUMENT when the baud error exceeds 2 % or the divider is
// outside 4..65535 (what the receiver can sample).
Result<int> UartClocksPerBit(double clock_mhz, int baud);

// The top module; its CLKS_PER_BIT parameter defaults to UartClocksPerBit (tests override it).
Result<VerilogFile> GenerateUartTop(const HwDesign& design, const UartLinkOptions& options);

}  // namespace fpgaserve::hw
