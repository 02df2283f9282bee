// The build server's durable job table (SQLite, WAL mode, synchronous=FULL): every build, its
// state and progress, and its artifacts. A restart loses nothing that was committed: queued jobs
// stay queued, jobs that were running are put back in the queue (RequeueInterrupted), finished
// jobs are never touched again. One process owns a database file (an exclusive lock file beside
// it; a second server on the same --db fails with FAILED_PRECONDITION).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"

namespace fpgaserve::build {

// Values are stored as these names (the proto enum's names without the prefix).
enum class BuildState {
  kQueued,
  kFetching,
  kCompiling,
  kSynthesizing,
  kPlacing,
  kPacking,
  kUploading,
  kSucceeded,
  kFailed,
  kCancelled,
};
const char* BuildStateName(BuildState s);  // "QUEUED", ...
Result<BuildState> ParseBuildState(const std::string& name);  // INVALID_ARGUMENT naming the accepted names
bool IsTerminal(BuildState s);  // SUCCEEDED, FAILED, CANCELLED
bool IsRunning(BuildState s);   // FETCHING .. UPLOADING

// What was asked for; together with the model's bytes it determines the build id.
struct BuildSpec {
  std::string model_uri;
  std::string model_sha256;  // of the model bytes
  std::string model_format;  // onnx|keras|neuralbond|native (detected at submit)
  std::string board;
  std::string engine = "native";
  std::string precision;     // empty: the default
  int reuse = 1;
  std::string interface;     // empty: the board's default
  std::string name;          // free text (not part of the id)
  std::map<std::string, std::string> labels;  // not part of the id
};

struct Artifact {
  std::string key;  // store key, "<build_id>/metadata.json"
  std::uint64_t size = 0;
  std::string sha256;
};

struct BuildRecord {
  std::string id;
  BuildSpec spec;
  BuildState state = BuildState::kQueued;
  std::string stage;    // free-form current step ("verilator", "nextpnr-ice40", ...)
  int percent = 0;      // 0..100
  std::string message;  // last progress message, or the error for FAILED
  std::string error_code;  // for FAILED: a StatusCode name ("INVALID_ARGUMENT", "DEADLINE_EXCEEDED")
  int attempts = 0;     // times a worker started it (a restart mid-build adds one)
  std::int64_t created_ms = 0, updated_ms = 0, started_ms = 0, finished_ms = 0;  // Unix ms; 0: not yet
  bool cancel_requested = false;
  std::vector<Artifact> artifacts;
};

struct ListFilter {
  std::optional<BuildState> state;
  std::string board;                          // empty: any
  std::map<std::string, std::string> labels;  // all must match
  std::string page_token;                     // from a previous page; empty: the first
  int page_size = 50;                         // 1..1000
};
struct ListPage {
  std::vector<BuildRecord> builds;  // newest first (created_ms desc, then id)
  std::string next_page_token;      // empty: no more
};

class JobDb {
 public:
  // Opens (creating when missing) the database at `path`; creates the schema or checks its version.
  static Result<std::unique_ptr<JobDb>> Open(const std::string& path);
  ~JobDb();

  // Inserts `record` (state QUEUED) unless a build with its id exists. Returns the stored record
  // and whether it was inserted. A FAILED or CANCELLED build with the same id is reset to QUEUED
  // (a resubmit retries it; inserted = true); a queued, running or SUCCEEDED one is returned as is.
  Result<std::pair<BuildRecord, bool>> Submit(const BuildRecord& record);

  Result<std::optional<BuildRecord>> Get(const std::string& id);
  Result<ListPage> List(const ListFilter& filter);

  // Atomically takes the oldest QUEUED build (created_ms, then id) that is not cancel-requested,
  // sets it FETCHING, attempts + 1, started_ms; nullopt when none. No two callers get the same build.
  Result<std::optional<BuildRecord>> ClaimNext();

  // Progress of a running build (state must be a running state). FAILED_PRECONDITION when the
  // build is already terminal (e.g. cancelled meanwhile).
  Status UpdateProgress(const std::string& id, BuildState state, const std::string& stage, int percent,
                        const std::string& message);

  // Ends a build: SUCCEEDED with its artifacts, FAILED with error_code and message, CANCELLED.
  Status Finish(const std::string& id, BuildState state, const std::string& error_code,
                const std::string& message, const std::vector<Artifact>& artifacts);

  // Marks a cancel request. A QUEUED build becomes CANCELLED at once; a running one keeps its
  // state until its worker stops (the worker calls Finish(CANCELLED)). Returns the record;
  // NOT_FOUND for an unknown id; a terminal build is returned unchanged.
  Result<BuildRecord> RequestCancel(const std::string& id);

  // At startup: every build in a running state goes back to QUEUED (it is rebuilt from scratch).
  // Returns how many.
  Result<int> RequeueInterrupted();

 private:
  JobDb() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fpgaserve::build
