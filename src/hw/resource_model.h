// Resource estimate of a generated design before synthesis, in a board family's units, so a
// design that cannot fit fails in milliseconds instead of after minutes of yosys. The model and
// its measured accuracy against yosys are in docs/boards.md.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "hw/design.h"
#include "model/graph.h"
#include "numeric/precision.h"

namespace fpgaserve::hw {

struct LayerEstimate {
  std::string name;
  std::int64_t lut = 0, ff = 0, dsp = 0, bram = 0;
};

struct ResourceEstimate {
  std::int64_t lut = 0;   // LUT4 on ice40, LUT6 otherwise
  std::int64_t ff = 0;
  std::int64_t dsp = 0;   // SB_MAC16 (16x16) on ice40, DSP48 (25x18) otherwise
  std::int64_t bram = 0;  // 4-kbit EBR on ice40, 36-kbit RAMB36 otherwise
  std::vector<LayerEstimate> layers;
};

// `family`: "ice40" or an AMD family ("zynq7000", "virtex-ultrascale+"); "sim" uses the AMD
// model. The design must come from GenerateDesign(graph, precision, ...).
ResourceEstimate EstimateResources(const model::Graph& graph,
                                   const numeric::PrecisionConfig& precision,
                                   const HwDesign& design, const std::string& family);

}  // namespace fpgaserve::hw
