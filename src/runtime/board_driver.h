// Board drivers behind one interface: `emu` (the F2 emulator), `sim` (the Verilator-built
// cycle-accurate core), `ice40` (an icebreaker over its UART, ice40_driver.h), `zynq` (a
// Zynq-7000 under Linux, zynq_driver.h), `xrt` (an Alveo card, xrt_driver.h), and `remote` (a
// board leased from a board server, services/board/remote_driver.h).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "numeric/emulator.h"

namespace fpgaserve::runtime {

struct BatchResult {
  numeric::RawBatch outputs;  // raw output elements, in the bundle's output format
  std::vector<std::uint64_t> latency_cycles;  // per inference (sim: measured; emu: the design's)
  std::uint64_t total_cycles = 0;             // device cycles for the whole batch
  // Set by drivers that reach the board through a board server (services/board/remote_driver.h):
  // the server's own time for the call (so the caller's time minus it is the network's), and of
  // that, the wait for the board and the board's driver call.
  bool remote = false;
  double server_seconds = 0;
  double board_queue_seconds = 0;
  double board_driver_seconds = 0;
};

class BoardDriver {
 public:
  virtual ~BoardDriver() = default;
  virtual std::string kind() const = 0;  // "emu", "sim", "ice40", "zynq", "xrt", "remote"
  // Runs a batch of raw inputs (rows x n_in elements in the bundle's input format).
  virtual Result<BatchResult> Infer(const numeric::RawBatch& inputs) = 0;
  // False while the board cannot take work (a remote board whose lease was lost, being
  // re-acquired); `reason` (may be null) says why. Thread-safe. Local boards are always available.
  virtual bool Available(std::string* reason) const {
    (void)reason;
    return true;
  }
};

// The kinds OpenBoardDriver opens: "sim", "emu", "ice40", "zynq", "xrt".
const std::vector<std::string>& BoardDriverKinds();
bool IsBoardDriverKind(const std::string& kind);

// Opens a driver of `kind` for the firmware bundle in directory `bundle_dir` (written by
// `fpgaserve compile`). Unknown kinds and incomplete bundles fail with a clear error.
Result<std::unique_ptr<BoardDriver>> OpenBoardDriver(const std::string& kind,
                                                     const std::string& bundle_dir);

}  // namespace fpgaserve::runtime
