// Turning the model flags of a subcommand into an imported, verified graph.
// Shared by every subcommand that reads a model so flags and errors behave the same everywhere.
#pragma once

#include "cli/commands.h"
#include "core/status.h"
#include "model/graph.h"

namespace fpgaserve::cli {

Result<model::Graph> LoadModel(const ModelFlags& flags);

}  // namespace fpgaserve::cli
