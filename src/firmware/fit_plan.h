// Sizing a design to a board before synthesis: the resource estimate against the board's
// resources, and `--reuse auto` (per-layer reuse factors). docs/boards.md explains the model.
#pragma once

#include "boards/board.h"
#include "core/status.h"
#include "hw/design.h"
#include "hw/resource_model.h"
#include "model/graph.h"
#include "numeric/precision.h"

namespace fpgaserve::firmware {

// Share of the board's LUTs a design may take and still place and route reliably.
inline constexpr double kLutBudget = 0.85;

struct FitPlan {
  hw::HwOptions options;  // what GenerateDesign was (and is to be) called with
  hw::HwDesign design;
  hw::ResourceEstimate estimate;
};

// reuse >= 1: that uniform factor, which must fit; reuse == 0: auto — the lowest-latency
// per-layer factors that fit (greedy: the layer costing the most doubles its factor until the
// estimate fits). A design that cannot fit is FAILED_PRECONDITION with the numbers, e.g.
// "does not fit icebreaker: needs 7,210 LUT4 (has 5,280), 99 DSP (has 8); try --reuse 64".
Result<FitPlan> PlanFit(const model::Graph& graph, const numeric::PrecisionConfig& precision,
                        const boards::Board& board, int reuse);

// "" when the estimate fits the board, else "7,210 LUT4 (has 5,280), 99 DSP (has 8)".
std::string Overuse(const hw::ResourceEstimate& e, const boards::Board& board);

}  // namespace fpgaserve::firmware
