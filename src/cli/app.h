// The `fpgaserve` command line: subcommands parse flags, call a library, print a result.
// Exit status: 0 success, 2 bad input (a model, data file or flag), 1 internal failure.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include "core/status.h"

namespace fpgaserve::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitInternal = 1;
inline constexpr int kExitBadInput = 2;

// Runs the command line (argv[0] included) and returns the process exit status.
int RunApp(int argc, char** argv);

// Prints "fpgaserve: error: <message>" on one line and maps the status to an exit code.
int ReportError(const Status& status, std::ostream& err);

}  // namespace fpgaserve::cli
