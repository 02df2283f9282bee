// fpgaserve's entry point: everything lives in the libraries; this only forwards argv.
#include <exception>
#include <iostream>

#include "cli/app.h"

int main(int argc, char** argv) {
  try {
    return fpgaserve::cli::RunApp(argc, argv);
  } catch (const std::exception& e) {
    // Libraries do not throw; reaching this is a bug, reported as one instead of a crash.
    std::cerr << "fpgaserve: internal error: " << e.what() << "\n";
    return fpgaserve::cli::kExitInternal;
  }
}
