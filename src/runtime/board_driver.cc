#include "runtime/board_driver.h"

#include <algorithm>

#include "core/text.h"
#include "firmware/bundle.h"
#include "runtime/batch_validation.h"
#include "runtime/emu_driver.h"
#include "runtime/ice40_driver.h"
#include "runtime/sim_driver.h"
#include "runtime/xrt_driver.h"
#include "runtime/zynq_driver.h"

namespace fpgaserve::runtime {

Status ValidateInputBatch(const numeric::RawBatch& inputs, const firmware::BundleMetadata& m) {
  if (inputs.features != static_cast<std::size_t>(m.n_inputs) ||
      inputs.values.size() != inputs.rows * inputs.features) {
    return InvalidArgument("input batch has " + std::to_string(inputs.features) +
                           " elements per row (" + std::to_string(inputs.values.size()) +
                           " values for " + std::to_string(inputs.rows) +
                           " rows); the firmware expects " + std::to_string(m.n_inputs));
  }
  if (inputs.rows > kMaxBatchRows) {
    return ResourceExhausted("input batch has " + std::to_string(inputs.rows) +
                             " rows; the limit is " + std::to_string(kMaxBatchRows));
  }
  const std::int64_t lo = m.input_format.min_raw(), hi = m.input_format.max_raw();
  for (std::size_t i = 0; i < inputs.values.size(); ++i) {
    const auto v = inputs.values[i];
    if (v < lo || v > hi) {
      return InvalidArgument("input row " + std::to_string(i / inputs.features) + " element " +
                             std::to_string(i % inputs.features) + ": raw value " +
                             std::to_string(v) + " outside " + m.input_format.ToString() +
                             " (expected " + std::to_string(lo) + ".." + std::to_string(hi) + ")");
    }
  }
  return Status::Ok();
}

const std::vector<std::string>& BoardDriverKinds() {
  static const std::vector<std::string> kinds = {"sim", "emu", "ice40", "zynq", "xrt"};
  return kinds;
}

bool IsBoardDriverKind(const std::string& kind) {
  const auto& k = BoardDriverKinds();
  return std::find(k.begin(), k.end(), kind) != k.end();
}

Result<std::unique_ptr<BoardDriver>> OpenBoardDriver(const std::string& kind,
                                                     const std::string& bundle_dir) {
  if (!IsBoardDriverKind(kind)) {
    return InvalidArgument("unknown driver " + Quote(kind) + "; expected " + Join(BoardDriverKinds(), ", "));
  }
  ASSIGN_OR_RETURN(firmware::BundleMetadata metadata, firmware::ReadBundleMetadata(bundle_dir));
  // Every bundle carries the Verilator build of its core (sim/), whatever its board: the sim
  // driver runs the same RTL cycle-accurately, before (or instead of) a real board.
  if (kind == "emu") return OpenEmuDriver(bundle_dir, metadata);
  // A real icebreaker: programmed with openFPGALoader, driven over its UART (ice40_driver.h;
  // the serial device from FPGASERVE_ICE40_SERIAL, default /dev/ttyUSB1).
  if (kind == "ice40") return OpenIce40Driver(bundle_dir, metadata, Ice40Options{});
  // A Zynq-7000 running Linux: FPGA Manager, UIO and a u-dma-buf buffer (zynq_driver.h).
  if (kind == "zynq") return OpenZynqDriver(bundle_dir, metadata, ZynqOptions{});
  // An Alveo card through XRT (xrt_driver.h; UNIMPLEMENTED when built without libxrt-dev).
  if (kind == "xrt") return OpenXrtDriver(bundle_dir, metadata, XrtOptions{});
  return OpenSimDriver(bundle_dir, metadata);
}

}  // namespace fpgaserve::runtime
