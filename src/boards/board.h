// The board catalog: one JSON data file per board under boards/ (embedded into the binary at build
// time, so the catalog works from any directory), parsed and validated into Board records.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace fpgaserve::boards {

// Resources in the family's own units: `lut` counts LUT4 on iCE40 and LUT6 on 7-series and
// UltraScale+; `bram` counts the family's block RAM (iCE40 EBR of 4 kbit, Xilinx RAMB36).
// A value < 0 means unlimited (the simulated board).
struct Resources {
  std::int64_t lut = -1;
  std::int64_t ff = -1;
  std::int64_t dsp = -1;
  std::int64_t bram = -1;
};

struct Board {
  std::string id;              // "icebreaker"
  std::string name;            // "1BitSquared iCEBreaker"
  std::string vendor;          // "Lattice", "AMD", "fpgaserve"
  std::string family;          // "sim" | "ice40" | "zynq7000" | "virtex-ultrascale+"
  std::string part;            // "iCE40UP5K", "xc7z010clg400-1", "xcu50-fsvh2104-2-e"
  std::string package;         // "sg48", "clg400", "fsvh2104"
  std::string device;          // tool device name: nextpnr "up5k"; empty for Xilinx (part says it)
  std::string lut_kind;        // "LUT4" | "LUT6" | "" (sim)
  Resources resources;
  double clock_mhz = 100.0;    // default clock of the firmware on this board
  std::string toolchain;       // "verilator" | "icestorm" | "vivado" | "vitis"
  std::string host_interface;  // "none" (sim) | "uart" | "axi-dma" | "axi-lite" | "xrt"
  std::string default_interface;  // core wrapper the board top uses: "stream" | "axis" | "axilite"
  std::vector<std::string> pins;  // "clk:35", "uart_rx:6", ... (board top pin constraints), optional
  std::string source;          // where the record came from, for messages ("boards/icebreaker.json")
};

// Every board in the catalog, sorted by id: the embedded boards/*.json, then the *.json files of
// $FPGASERVE_BOARDS_DIR (a board with the same id replaces the embedded one). Read once.
Result<std::vector<Board>> AllBoards();

// AllBoards(), or empty when the catalog has an error (AllBoards/FindBoard report it).
const std::vector<Board>& Catalog();

// NOT_FOUND naming the id and the known ids.
Result<Board> FindBoard(const std::string& id);

// Validates one board file's text (every field: what, where, what was expected).
Result<Board> ParseBoard(std::string_view json_text, const std::string& origin);

}  // namespace fpgaserve::boards
