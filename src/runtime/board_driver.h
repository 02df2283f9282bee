// Board drivers behind one interface: `emu` (the F2 emulator), `sim` (the Verilator-built
// cycle-accurate core) and `ice40` (an icebreaker over its UART, ice40_driver.h); zynq and xrt
// come later behind the same interface.
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
};

class BoardDriver {
 public:
  virtual ~BoardDriver() = default;
  virtual std::string kind() const = 0;  // "emu", "sim", "ice40"
  // Runs a batch of raw inputs (rows x n_in elements in the bundle's input format).
  virtual Result<BatchResult> Infer(const numeric::RawBatch& inputs) = 0;
};

// Opens a driver of `kind` for the firmware bundle in directory `bundle_dir` (written by
// `fpgaserve compile`). Unknown kinds and incomplete bundles fail with a clear error.
Result<std::unique_ptr<BoardDriver>> OpenBoardDriver(const std::string& kind,
                                                     const std::string& bundle_dir);

}  // namespace fpgaserve::runtime
