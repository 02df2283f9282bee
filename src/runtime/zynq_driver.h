// The `zynq` board: a Zynq-7000 (PYNQ-Z2, ZedBoard, EBAZ4205) running Linux. The driver programs
// the fabric through the Linux FPGA Manager, then reaches the core from user space through UIO:
// the `axilite` register map of fpgaserve_axilite, or for `axis` an AXI DMA in direct register
// mode feeding fpgaserve_axis, with a u-dma-buf buffer the DMA reads and writes (docs/hardware.md
// "`axis`", "`axilite`" and "AMD boards"). Every output and cycle count comes from the fabric.
//
// What the board needs:
// - a kernel with the FPGA Manager and its Zynq driver (CONFIG_FPGA_MGR, CONFIG_FPGA_MGR_ZYNQ_FPGA)
//   and the manager's `firmware` sysfs attribute (Xilinx's linux-xlnx: PYNQ, PetaLinux images);
// - a UIO device (generic-uio, uio_pdrv_genirq) for the core's AXI-Lite window or for the AXI
//   DMA's registers; its name is the device-tree node's name (`fpgaserve@43c00000` is named
//   "fpgaserve", `axi-dma@40400000` "axi-dma");
// - for `axis`, a u-dma-buf buffer (/dev/udmabuf0) in the low 4 GiB; it is mapped with O_SYNC, so
//   the CPU's view is uncached and needs no cache maintenance around the DMA.
//
// The bitstream: the Zynq FPGA Manager of linux-xlnx and mainline kernels takes the raw .bin
// form (no .bit header, every 32-bit word byte-swapped, as `bootgen -arch zynq -process_bitstream
// bin` writes), and the AMD flow writes fpgaserve.bit with Vivado's write_bitstream. The driver
// reads the bundle's bitstream file, checks its sha256 against metadata.json, and converts a .bit
// (a file named *.bit or starting with the .bit header) to .bin itself (ZynqBitToBin); any other
// file (a .bin) is passed through unchanged. The image is written into the firmware directory as
// fpgaserve-<first 16 hex digits of the bundle id>.bin (a temp file renamed into place) and its
// name handed to the manager.
//
// Transfers: `axilite` runs one row at a time (inputs, start, poll done, outputs, cycles). `axis`
// sends one DMA transfer per row each way: the core ends every output frame with TLAST, and the
// AXI DMA's S2MM channel in direct register mode ends a transfer at TLAST, so one S2MM transfer
// holds exactly one frame (n_out elements and the cycle word). Rows never overlap, so a batch's
// total_cycles is the sum of its rows' cycle counts.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/status.h"
#include "firmware/bundle.h"
#include "runtime/board_driver.h"

namespace fpgaserve::runtime {

inline constexpr const char* kZynqAxiLiteUioName = "fpgaserve";  // UIO of the core's registers
inline constexpr const char* kZynqAxisUioName = "axi-dma";       // UIO of the AXI DMA's registers

struct ZynqOptions {
  std::string sysfs_root = "/sys";             // class/fpga_manager, class/uio, class/u-dma-buf
  std::string dev_root = "/dev";               // uioN and the DMA buffer's device
  std::string firmware_dir = "/lib/firmware";  // where the FPGA Manager looks up images
  std::string manager = "fpga0";               // <sysfs_root>/class/fpga_manager/<manager>
  bool program = true;  // false: the fabric already holds the bundle's design (not reprogrammed)
  // Written to the manager's `flags` attribute (in hex) before programming when the attribute
  // exists: 0 is a full reconfiguration.
  bool write_flags = true;
  std::uint32_t flags = 0;
  // How long the manager may take to reach "operating" after the firmware name is written.
  std::chrono::milliseconds program_timeout{std::chrono::seconds(10)};
  // The UIO device's name (<sysfs_root>/class/uio/uioN/name). Empty: kZynqAxiLiteUioName for
  // axilite bundles, kZynqAxisUioName for axis bundles.
  std::string uio_name;
  // axis: the u-dma-buf buffer: <dev_root>/<dma_buffer> and <sysfs_root>/class/u-dma-buf/<it>.
  std::string dma_buffer = "udmabuf0";
  // axis: the largest transfer the DMA takes; vivado/build.tcl builds it with c_sg_length_width 23.
  std::uint32_t dma_max_transfer_bytes = (1u << 23) - 1;
  // How long one row may take (axilite: done; axis: both DMA channels complete), and how long the
  // DMA may take to leave reset.
  std::chrono::milliseconds infer_timeout{std::chrono::seconds(1)};
};

// Converts a Xilinx .bit file to the .bin the Zynq-7000 FPGA Manager loads: the header (the
// 00 09 0f f0 0f f0 0f f0 0f f0 00 field, 00 01, the 'a' design, 'b' part, 'c' date and 'd' time
// fields with 16-bit lengths, in that order) is dropped, and the configuration data of the 'e'
// field (a 32-bit length N, a multiple of 4, then N bytes to the end of the file) is returned with
// every 32-bit word's bytes reversed. The data must hold the sync word AA995566 at a word boundary
// (the kernel looks for it, swapped, before it programs). Errors: FAILED_PRECONDITION naming
// `origin` (the bundle file) and what was expected: a wrong header, a truncated or unexpected
// field, no 'e' field, N not a multiple of 4 or not the rest of the file, no sync word.
Result<std::string> ZynqBitToBin(std::string_view bit, const std::string& origin);

// Checks the bundle (a zynq7000 board, interface axilite or axis, element formats of at most 32
// bits, a built bitstream whose sha256 matches), programs the fabric through the FPGA Manager
// (unless !program: then the manager's state, when there is one, must be "operating", because
// touching an unprogrammed fabric's registers hangs the bus), finds and maps the UIO device and,
// for axis, the DMA buffer. axilite: registers 0x04/0x08 must hold the bundle's n_in/n_out and
// 0x14 a valid output window; axis: the DMA is reset and started in direct register mode.
// Errors: FAILED_PRECONDITION (not a Zynq bundle, a stream bundle, no built bitstream, a malformed
// .bit (see ZynqBitToBin), the fabric holds other firmware or is not programmed, a DMA built with
// scatter-gather, a map or buffer too small), UNAVAILABLE (no FPGA Manager, firmware directory, UIO
// device or DMA buffer), PERMISSION_DENIED (firmware directory, sysfs attributes or devices not
// writable: run as root), INTERNAL (the manager reports an error state), DEADLINE_EXCEEDED
// (programming or the DMA reset does not finish). Infer: INVALID_ARGUMENT (batch shape or values),
// DEADLINE_EXCEEDED (the core or the DMA does not finish a row, naming the device and the
// register), INTERNAL (DMA error bits, short frames, malformed output words).
Result<std::unique_ptr<BoardDriver>> OpenZynqDriver(const std::string& bundle_dir,
                                                    const firmware::BundleMetadata& metadata,
                                                    const ZynqOptions& options = {});

}  // namespace fpgaserve::runtime
