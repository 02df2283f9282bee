// Fake command-line tools for tests of code that runs external programs (vendor flows, build
// engines): shell scripts written into a bin directory, and that directory put on PATH.
#pragma once

#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace fpgaserve::testing {

// Puts a directory of fake tools first on PATH (or alone on it: keep_system false) for one test;
// the destructor restores PATH.
class PathGuard {
 public:
  PathGuard(const std::string& bin, bool keep_system) : old_(std::getenv("PATH")) {
    const std::string path = bin + (keep_system ? ":" + old_ : "");
    setenv("PATH", path.c_str(), 1);
  }
  ~PathGuard() { setenv("PATH", old_.c_str(), 1); }

 private:
  std::string old_;
};

// Writes an executable /bin/sh script with the given body.
inline void WriteScript(const std::filesystem::path& path, const std::string& body) {
  std::ofstream(path) << "#!/bin/sh\n" << body;
  chmod(path.c_str(), 0755);
}

}  // namespace fpgaserve::testing
