// Checks every driver applies to a batch before it reaches a board: element counts and that each
// raw value fits the bundle's input format (a board would silently drop the extra bits).
#pragma once

#include "core/status.h"
#include "firmware/bundle.h"
#include "numeric/emulator.h"

namespace fpgaserve::runtime {

// Limits the rows of one batch so a request cannot make a driver allocate without bound.
inline constexpr std::size_t kMaxBatchRows = 1 << 24;

Status ValidateInputBatch(const numeric::RawBatch& inputs, const firmware::BundleMetadata& m);

}  // namespace fpgaserve::runtime
