// The one way fpgaserve runs other programs: an argv vector (never a shell string), a timeout,
// captured stdout/stderr, and the exit status checked by the caller.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "core/status.h"

namespace fpgaserve {

struct SubprocessOptions {
  std::chrono::milliseconds timeout{std::chrono::minutes(10)};
  std::string working_dir;                    // empty: inherit
  std::map<std::string, std::string> env_set;  // added to (or overriding) the inherited environment
  std::string stdin_data;                      // written to the child's stdin, then closed
  std::size_t max_output_bytes = 64 << 20;     // per stream; the rest is dropped and flagged
  // When set and it becomes true, the child's process group is killed (SIGKILL) within ~100 ms
  // and the result says `cancelled`.
  const std::atomic<bool>* cancel = nullptr;
};

struct SubprocessResult {
  int exit_code = -1;    // valid when !signaled
  bool signaled = false;
  int signal = 0;
  bool timed_out = false;  // the child was killed (SIGKILL to its process group) at the timeout
  bool cancelled = false;  // the child was killed because options.cancel became true
  bool output_truncated = false;
  std::string stdout_text;
  std::string stderr_text;

  bool success() const { return !signaled && !timed_out && !cancelled && exit_code == 0; }
  // "exit 2", "killed by signal 9", "timed out after 10 s"
  std::string Describe() const;
};

// Whether `program` is an executable file in one of PATH's directories.
bool IsOnPath(const std::string& program);

// Runs argv[0] (searched on PATH when it has no '/'). Fails only when the program could not be
// started (NOT_FOUND) or on argument errors; a non-zero exit is reported in the result.
Result<SubprocessResult> RunSubprocess(const std::vector<std::string>& argv,
                                       const SubprocessOptions& options = {});

}  // namespace fpgaserve
