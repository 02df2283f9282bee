// The `sim` board: the bundle's Verilator-built library (sim/libfpgaserve_sim.so), a
// cycle-accurate model of the generated core, driven through its C ABI.
#pragma once

#include <memory>
#include <string>

#include "core/status.h"
#include "firmware/bundle.h"
#include "runtime/board_driver.h"

namespace fpgaserve::runtime {

// Loads the library privately (RTLD_LOCAL: several boards may share a process), checks its port
// layout against the metadata and opens one simulated core.
Result<std::unique_ptr<BoardDriver>> OpenSimDriver(const std::string& bundle_dir,
                                                   const firmware::BundleMetadata& metadata);

}  // namespace fpgaserve::runtime
