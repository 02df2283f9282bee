// The fpgaserve_axilite register protocol as a BoardDriver, shared by every driver that reaches
// the core through its AXI4-Lite registers (xrt: an Alveo card's xrt::ip; zynq: a UIO mapping).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "core/status.h"
#include "firmware/bundle.h"
#include "runtime/board_driver.h"

namespace fpgaserve::runtime {

// The fpgaserve_axilite register protocol (docs/hardware.md, "`axilite`") over any 32-bit
// register port: the xrt driver's xrt::ip, the zynq driver's UIO mapping, or a model of the
// core in tests.
namespace axilite {

class RegisterPort {
 public:
  virtual ~RegisterPort() = default;
  // Byte offsets into the core's register window; errors name the access (callers add Name()).
  virtual Result<std::uint32_t> Read(std::uint32_t offset) = 0;
  virtual Status Write(std::uint32_t offset, std::uint32_t value) = 0;
  // For messages: "Alveo device 0 (xilinx_u50_..., 0000:3b:00.1), IP fpgaserve:fpgaserve_1".
  virtual std::string Name() const = 0;
};

struct Timing {
  std::chrono::milliseconds row_timeout{std::chrono::seconds(1)};  // start until done
  int spin_polls = 256;                      // control reads before sleeping between reads
  std::chrono::microseconds poll_sleep{20};  // the sleep after spin_polls
};

// Bytes of register window the core of a bundle with n_in inputs and n_out outputs needs
// (through its last output register).
std::uint64_t RegisterWindowBytes(std::int64_t n_in, std::int64_t n_out);

// Shape and element formats the AXI4-Lite core supports (1..32-bit elements); `who` prefixes
// the FAILED_PRECONDITION.
Status CheckRegisterShape(const std::string& who, const firmware::BundleMetadata& m);

// The raw value of a 32-bit output word (an AXI4-Lite output register, or a beat of the axis
// wrapper): the sign extension (fixed) or zero extension (ufixed, float bit patterns) of its low
// width() bits. False when the word is not that extension (not from this design).
bool DecodeOutputWord(std::uint32_t word, const numeric::NumberFormat& f, numeric::RawValue* out);

// Checks the bundle's shape and formats (elements of 1..32 bits), reads n_in, n_out and OUT_BASE
// from the port (other values: FAILED_PRECONDITION "holds other firmware"), waits until the core
// is not busy, and returns a BoardDriver of `kind` that runs each row as docs/hardware.md says:
// write the inputs, write 1 to control, poll control until done (DEADLINE_EXCEEDED after
// row_timeout), read the outputs and the 64-bit cycle count. A control word that is neither busy
// nor done after a start, or an output that is not the extension of its format, is INTERNAL.
Result<std::unique_ptr<BoardDriver>> OpenRegisterDriver(const std::string& kind,
                                                        const firmware::BundleMetadata& metadata,
                                                        std::unique_ptr<RegisterPort> port,
                                                        const Timing& timing = {});

}  // namespace axilite

}  // namespace fpgaserve::runtime
