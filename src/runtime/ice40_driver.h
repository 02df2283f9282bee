// The `ice40` board: an icebreaker (iCE40UP5K) programmed with openFPGALoader, then driven over
// the FTDI's second channel with the UART link of docs/hardware.md ("Board top-level: iCE40 UART
// link"; frames in runtime/uart_frames.h). Every output comes from the board's answer.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "firmware/bundle.h"
#include "runtime/board_driver.h"

namespace fpgaserve::runtime {

inline constexpr const char* kIce40SerialEnv = "FPGASERVE_ICE40_SERIAL";
inline constexpr const char* kIce40DefaultSerial = "/dev/ttyUSB1";  // the FT2232H's channel B

struct Ice40Options {
  // The board's UART. Empty: $FPGASERVE_ICE40_SERIAL, else /dev/ttyUSB1.
  std::string serial_device;
  int baud = 115200;  // the board top's rate (8N1)
  std::string loader = "openFPGALoader";
  // The icebreaker is openFPGALoader's generic iCE40 FTDI SPI board; the bitstream path follows.
  std::vector<std::string> loader_args = {"-b", "ice40_generic"};
  bool program = true;  // false: the board already holds the bundle's bitstream (INFO checks it)
  std::chrono::milliseconds program_timeout{std::chrono::minutes(2)};
  // How long one response frame may take, from the end of its request.
  std::chrono::milliseconds frame_timeout{std::chrono::seconds(2)};
  // After programming: time the FPGA needs to configure before the first INFO.
  std::chrono::milliseconds settle_time{std::chrono::milliseconds(300)};
  int info_attempts = 2;  // INFO requests before giving up (the first may race configuration)
  const std::atomic<bool>* cancel = nullptr;  // aborts programming
};

// Checks the bundle (an iCE40 board with a built bitstream whose sha256 matches), programs the
// board (unless !program), opens the serial device raw at `baud` and checks with INFO that the
// board holds this bundle's design. Errors: FAILED_PRECONDITION (not an iCE40 bundle, no
// bitstream, loader not installed, the board holds other firmware), INTERNAL (loader failed),
// UNAVAILABLE (serial device missing), DEADLINE_EXCEEDED (the board does not answer).
Result<std::unique_ptr<BoardDriver>> OpenIce40Driver(const std::string& bundle_dir,
                                                     const firmware::BundleMetadata& metadata,
                                                     const Ice40Options& options = {});

}  // namespace fpgaserve::runtime
