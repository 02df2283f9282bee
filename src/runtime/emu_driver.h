// The `emu` board: runs a bundle on the F2 quantized emulator, which computes exactly what the
// hardware computes; cycle counts come from the design's latency and initiation interval.
#pragma once

#include <memory>
#include <string>

#include "core/status.h"
#include "firmware/bundle.h"
#include "runtime/board_driver.h"

namespace fpgaserve::runtime {

// Loads <bundle_dir>/model.json and precision.json (both checked against their recorded sha256).
Result<std::unique_ptr<BoardDriver>> OpenEmuDriver(const std::string& bundle_dir,
                                                   const firmware::BundleMetadata& metadata);

}  // namespace fpgaserve::runtime
