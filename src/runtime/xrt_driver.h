// The `xrt` board: an AMD Alveo card (alveo-u50) running the bundle's fpgaserve.xclbin, driven
// through XRT's native C++ API (Debian's libxrt-dev, XRT 2.13). The kernel is fpgaserve_axilite
// packaged as a user-managed RTL kernel (docs/hardware.md, "AMD boards"), so the host drives its
// AXI4-Lite register map ("`axilite`") with xrt::ip read_register / write_register.
//
// fpgaserve builds the XRT part only when libxrt-dev is installed (CMake defines
// FPGASERVE_HAVE_XRT); otherwise OpenXrtDriver says so after checking the bundle. The register
// protocol itself (namespace axilite below) works over any RegisterPort, so it is tested
// against an in-memory model of the core without a card.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "core/status.h"
#include "firmware/bundle.h"
#include "runtime/axilite_driver.h"
#include "runtime/board_driver.h"

namespace fpgaserve::runtime {

inline constexpr const char* kXrtDeviceEnv = "FPGASERVE_XRT_DEVICE";
// The kernel name our Vitis packaging gives the core (package_xo -kernel_name, amd_flow.cc).
inline constexpr const char* kXrtDefaultKernel = "fpgaserve";
inline constexpr int kXrtMaxDeviceIndex = 1023;

struct XrtOptions {
  // The card, as XRT numbers them (the order of `xbutil examine`). < 0: $FPGASERVE_XRT_DEVICE
  // when set, else 0.
  int device_index = -1;
  // The kernel ("fpgaserve", which must then have one compute unit) or one compute unit of it
  // ("fpgaserve:{fpgaserve_1}" or "fpgaserve:fpgaserve_1"). Empty: kXrtDefaultKernel.
  std::string kernel;
  // false: the card already holds the bundle's xclbin (its uuid is checked, nothing is loaded).
  bool load_xclbin = true;
  // How long one inference may take from start until the core reports done.
  std::chrono::milliseconds row_timeout{std::chrono::seconds(1)};
};

// Whether this build has the XRT part (libxrt-dev was found at configure time).
bool XrtDriverAvailable();

// The cards XRT sees (0 without the xocl driver or a card). UNIMPLEMENTED without XRT.
Result<unsigned> CountXrtDevices();

// Checks the bundle (a board of the catalog reached through XRT, interface axilite, a built
// .xclbin whose sha256 matches; a "needs-vendor-tools" bundle is FAILED_PRECONDITION quoting its
// build command), validates the device index (INVALID_ARGUMENT for a bad $FPGASERVE_XRT_DEVICE),
// checks the xclbin (INVALID_ARGUMENT when it is not one; FAILED_PRECONDITION when it lacks the
// kernel or gives it too small a register window), opens the card (UNAVAILABLE when XRT finds
// none, NOT_FOUND for an index past the last card), loads the xclbin (or checks it is loaded),
// opens the kernel's IP and checks its n_in / n_out / OUT_BASE registers against the bundle
// (FAILED_PRECONDITION "the card holds other firmware"). UNIMPLEMENTED when built without XRT.
Result<std::unique_ptr<BoardDriver>> OpenXrtDriver(const std::string& bundle_dir,
                                                   const firmware::BundleMetadata& metadata,
                                                   const XrtOptions& options = {});


}  // namespace fpgaserve::runtime
