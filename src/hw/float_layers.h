// Layer modules for floating-point precisions (internal to src/hw): Dense/Scale on pipelined
// float multipliers and adders, and the activations, built from the units of float_units.h.
// They speak the same ports as the fixed-point layers (layer_emitters.h) and compute exactly what
// the emulator computes (docs/numerics.md): per output, acc = bias; acc = acc + x[i]*w[i] for
// i = 0, 1, ... with the product and the sum each rounded in the accumulator format.
#pragma once

#include <string>

#include "core/status.h"
#include "hw/layer_emitters.h"
#include "model/graph.h"
#include "numeric/number_format.h"
#include "numeric/precision.h"

namespace fpgaserve::hw {

// `ctx.precision` is all float; `ctx.in` may be fixed (converted in front) or float.
Result<EmittedLayer> EmitFloatAffineLayer(const LayerContext& ctx);
Result<EmittedLayer> EmitFloatActivationLayer(const LayerContext& ctx);

}  // namespace fpgaserve::hw
