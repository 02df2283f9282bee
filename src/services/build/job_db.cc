#include "services/build/job_db.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <unordered_map>
#include <utility>

#include <nlohmann/json.hpp>

namespace fpgaserve::build {
namespace {

using nlohmann::json;

// Bump when the schema changes, and teach OpenSchema to migrate from the older versions. A file
// with a newer version was written by a newer fpgaserve; we refuse it rather than guess.
constexpr int kSchemaVersion = 1;

// How long a statement waits for another connection's write lock (an operator's sqlite3 shell,
// a backup) before failing with UNAVAILABLE. Our own threads never wait here: they share one
// connection behind the mutex.
constexpr int kBusyTimeoutMs = 5000;

constexpr const char* kSchema = R"sql(
CREATE TABLE schema_version (version INTEGER NOT NULL);
CREATE TABLE builds (
  id               TEXT PRIMARY KEY NOT NULL,
  model_uri        TEXT NOT NULL,
  model_sha256     TEXT NOT NULL,
  model_format     TEXT NOT NULL,
  board            TEXT NOT NULL,
  engine           TEXT NOT NULL,
  precision        TEXT NOT NULL,
  reuse            INTEGER NOT NULL,
  interface        TEXT NOT NULL,
  name             TEXT NOT NULL,
  labels           TEXT NOT NULL,   -- JSON object {"key": "value"}
  state            TEXT NOT NULL,   -- BuildStateName()
  stage            TEXT NOT NULL,
  percent          INTEGER NOT NULL,
  message          TEXT NOT NULL,
  error_code       TEXT NOT NULL,
  attempts         INTEGER NOT NULL,
  created_ms       INTEGER NOT NULL,
  updated_ms       INTEGER NOT NULL,
  started_ms       INTEGER NOT NULL,
  finished_ms      INTEGER NOT NULL,
  cancel_requested INTEGER NOT NULL,
  artifacts        TEXT NOT NULL    -- JSON array [{"key", "size", "sha256"}]
);
-- ClaimNext: the oldest queued build.
CREATE INDEX builds_by_state ON builds (state, created_ms, id);
-- List: newest first, keyset pagination on (created_ms, id).
CREATE INDEX builds_by_created ON builds (created_ms DESC, id);
)sql";

// Every read selects these columns in this order (see ReadRow).
constexpr const char* kColumns =
    "id, model_uri, model_sha256, model_format, board, engine, precision, reuse, interface, name, "
    "labels, state, stage, percent, message, error_code, attempts, created_ms, updated_ms, "
    "started_ms, finished_ms, cancel_requested, artifacts";

// The running states as an SQL list. A constant, not a value: nothing from a caller goes in here.
constexpr const char* kRunningStatesSql =
    "('FETCHING', 'COMPILING', 'SYNTHESIZING', 'PLACING', 'PACKING', 'UPLOADING')";

constexpr BuildState kAllStates[] = {
    BuildState::kQueued,  BuildState::kFetching,  BuildState::kCompiling, BuildState::kSynthesizing,
    BuildState::kPlacing, BuildState::kPacking,   BuildState::kUploading, BuildState::kSucceeded,
    BuildState::kFailed,  BuildState::kCancelled,
};

std::int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Maps an SQLite result code to the Status code a caller can act on.
StatusCode CodeFor(int rc) {
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_IOERR: return StatusCode::kUnavailable;
    case SQLITE_FULL: return StatusCode::kResourceExhausted;
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH: return StatusCode::kPermissionDenied;
    case SQLITE_CANTOPEN: return StatusCode::kNotFound;
    case SQLITE_NOTADB: return StatusCode::kInvalidArgument;
    case SQLITE_CORRUPT: return StatusCode::kFailedPrecondition;
    default: return StatusCode::kInternal;
  }
}

std::string ToHex(const std::string& bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 0xf]);
  }
  return out;
}

std::optional<std::string> FromHex(const std::string& hex) {
  if (hex.size() % 2 != 0) return std::nullopt;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  std::string out;
  out.reserve(hex.size() / 2);
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    int hi = nibble(hex[i]), lo = nibble(hex[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi << 4 | lo));
  }
  return out;
}

// A page token is the hex of "v1|<created_ms>|<id>" of the last build on the previous page. It is
// opaque to clients; the version prefix lets a later release change the format and still reject
// old tokens with a clear error instead of misreading them.
std::string EncodePageToken(std::int64_t created_ms, const std::string& id) {
  return ToHex("v1|" + std::to_string(created_ms) + "|" + id);
}

Status BadPageToken(const std::string& token) {
  return InvalidArgument("invalid page_token '" + token.substr(0, 64) +
                         "': expected the next_page_token of a previous List response");
}

Result<std::pair<std::int64_t, std::string>> DecodePageToken(const std::string& token) {
  auto raw = FromHex(token);
  if (!raw || raw->rfind("v1|", 0) != 0) return BadPageToken(token);
  const auto bar = raw->find('|', 3);
  if (bar == std::string::npos || bar == 3 || bar + 1 >= raw->size()) return BadPageToken(token);
  const std::string ms = raw->substr(3, bar - 3);
  std::int64_t created_ms = 0;
  for (char c : ms) {
    if (c < '0' || c > '9' || created_ms > (INT64_MAX - 9) / 10) return BadPageToken(token);
    created_ms = created_ms * 10 + (c - '0');
  }
  return std::make_pair(created_ms, raw->substr(bar + 1));
}

std::string LabelsToJson(const std::map<std::string, std::string>& labels) {
  json j = json::object();
  for (const auto& [k, v] : labels) j[k] = v;
  // Replace invalid UTF-8 rather than throw: labels come from clients.
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string ArtifactsToJson(const std::vector<Artifact>& artifacts) {
  json j = json::array();
  for (const auto& a : artifacts) j.push_back({{"key", a.key}, {"size", a.size}, {"sha256", a.sha256}});
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

// A prepared statement borrowed from the connection's cache. Resetting on release (rather than
// before use) means a statement never holds a read transaction open between calls.
class Stmt {
 public:
  Stmt(sqlite3_stmt* s, const std::string* path) : s_(s), path_(path) {}
  ~Stmt() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Stmt& Bind(int i, const std::string& v) {
    Note(sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
    return *this;
  }
  Stmt& Bind(int i, std::int64_t v) {
    Note(sqlite3_bind_int64(s_, i, v));
    return *this;
  }
  Stmt& Bind(int i, int v) { return Bind(i, static_cast<std::int64_t>(v)); }
  Stmt& Bind(int i, const char* v) { return Bind(i, std::string(v)); }

  // Steps once: true with a row, false when done.
  Result<bool> Step() {
    if (bind_rc_ != SQLITE_OK) return Error(bind_rc_, "binding a parameter");
    const int rc = sqlite3_step(s_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return Error(rc, "running a statement");
  }
  // Runs a statement that returns no rows.
  Status Run() {
    auto r = Step();
    return r.ok() ? Status::Ok() : r.status();
  }

  std::string Text(int col) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s_, col));
    return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(s_, col))) : std::string();
  }
  std::int64_t Int(int col) const { return sqlite3_column_int64(s_, col); }

 private:
  void Note(int rc) {
    if (bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  }
  Status Error(int rc, const char* what) const {
    return Status(CodeFor(rc), *path_ + ": " + what + " failed: " +
                                   sqlite3_errmsg(sqlite3_db_handle(s_)) + " (" + sqlite3_errstr(rc) +
                                   "; SQL: " + sqlite3_sql(s_) + ")");
  }

  sqlite3_stmt* s_;
  const std::string* path_;
  int bind_rc_ = SQLITE_OK;
};

// Reads the kColumns of the current row.
Result<BuildRecord> ReadRow(const Stmt& st, const std::string& path) {
  BuildRecord r;
  r.id = st.Text(0);
  r.spec.model_uri = st.Text(1);
  r.spec.model_sha256 = st.Text(2);
  r.spec.model_format = st.Text(3);
  r.spec.board = st.Text(4);
  r.spec.engine = st.Text(5);
  r.spec.precision = st.Text(6);
  r.spec.reuse = static_cast<int>(st.Int(7));
  r.spec.interface = st.Text(8);
  r.spec.name = st.Text(9);
  auto corrupt = [&](const std::string& what) {
    return FailedPrecondition(path + ": build " + r.id + " has " + what +
                              " (the database was modified outside fpgaserve?)");
  };
  {
    json labels = json::parse(st.Text(10), nullptr, /*allow_exceptions=*/false);
    if (!labels.is_object()) return corrupt("a labels column that is not a JSON object");
    for (const auto& [k, v] : labels.items()) {
      if (!v.is_string()) return corrupt("a non-string label '" + k + "'");
      r.spec.labels[k] = v.get<std::string>();
    }
  }
  auto state = ParseBuildState(st.Text(11));
  if (!state.ok()) return corrupt("an unknown state: " + state.status().message());
  r.state = *state;
  r.stage = st.Text(12);
  r.percent = static_cast<int>(st.Int(13));
  r.message = st.Text(14);
  r.error_code = st.Text(15);
  r.attempts = static_cast<int>(st.Int(16));
  r.created_ms = st.Int(17);
  r.updated_ms = st.Int(18);
  r.started_ms = st.Int(19);
  r.finished_ms = st.Int(20);
  r.cancel_requested = st.Int(21) != 0;
  {
    json artifacts = json::parse(st.Text(22), nullptr, /*allow_exceptions=*/false);
    if (!artifacts.is_array()) return corrupt("an artifacts column that is not a JSON array");
    for (const auto& a : artifacts) {
      if (!a.is_object() || !a.contains("key") || !a["key"].is_string() || !a.contains("size") ||
          !a["size"].is_number_unsigned() || !a.contains("sha256") || !a["sha256"].is_string()) {
        return corrupt("an artifact that is not {key: string, size: unsigned, sha256: string}");
      }
      r.artifacts.push_back({a["key"].get<std::string>(), a["size"].get<std::uint64_t>(),
                             a["sha256"].get<std::string>()});
    }
  }
  return r;
}

}  // namespace

const char* BuildStateName(BuildState s) {
  switch (s) {
    case BuildState::kQueued: return "QUEUED";
    case BuildState::kFetching: return "FETCHING";
    case BuildState::kCompiling: return "COMPILING";
    case BuildState::kSynthesizing: return "SYNTHESIZING";
    case BuildState::kPlacing: return "PLACING";
    case BuildState::kPacking: return "PACKING";
    case BuildState::kUploading: return "UPLOADING";
    case BuildState::kSucceeded: return "SUCCEEDED";
    case BuildState::kFailed: return "FAILED";
    case BuildState::kCancelled: return "CANCELLED";
  }
  return "UNKNOWN";
}

Result<BuildState> ParseBuildState(const std::string& name) {
  std::string accepted;
  for (BuildState s : kAllStates) {
    if (name == BuildStateName(s)) return s;
    accepted += accepted.empty() ? "" : ", ";
    accepted += BuildStateName(s);
  }
  return InvalidArgument("unknown build state '" + name + "', expected one of " + accepted);
}

bool IsTerminal(BuildState s) {
  return s == BuildState::kSucceeded || s == BuildState::kFailed || s == BuildState::kCancelled;
}

bool IsRunning(BuildState s) { return !IsTerminal(s) && s != BuildState::kQueued; }

struct JobDb::Impl {
  std::string path;
  int lock_fd = -1;
  sqlite3* db = nullptr;
  // One connection shared by all threads; SQLite connections must not be used concurrently, and
  // serialising here also makes every read-modify-write below atomic within the process (the
  // BEGIN IMMEDIATE transactions make them atomic against other connections too).
  std::mutex mu;
  std::unordered_map<std::string, sqlite3_stmt*> statements;

  ~Impl() {
    for (auto& [sql, s] : statements) sqlite3_finalize(s);
    // Closing the last connection checkpoints the WAL into the main file. The lock is released
    // only after that, so a new owner never sees our half-closed files.
    if (db) sqlite3_close(db);
    if (lock_fd >= 0) ::close(lock_fd);  // releases the flock
  }

  Status Error(int rc, const std::string& what) const {
    return Status(CodeFor(rc), path + ": " + what + " failed: " +
                                   (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc)));
  }

  // Returns the cached prepared statement for `sql`, preparing it on first use.
  Result<std::unique_ptr<Stmt>> Prepare(const std::string& sql) {
    auto it = statements.find(sql);
    if (it == statements.end()) {
      sqlite3_stmt* s = nullptr;
      const int rc = sqlite3_prepare_v3(db, sql.c_str(), static_cast<int>(sql.size()) + 1,
                                        SQLITE_PREPARE_PERSISTENT, &s, nullptr);
      if (rc != SQLITE_OK) {
        sqlite3_finalize(s);
        return Error(rc, "preparing \"" + sql + "\"");
      }
      it = statements.emplace(sql, s).first;
    }
    return std::make_unique<Stmt>(it->second, &path);
  }

  // Runs statements without parameters (schema, pragmas, BEGIN/COMMIT).
  Status Exec(const char* sql) {
    char* err = nullptr;
    const int rc = sqlite3_exec(db, sql, nullptr, nullptr, &err);
    if (rc == SQLITE_OK) return Status::Ok();
    std::string msg = err ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    return Status(CodeFor(rc), path + ": \"" + sql + "\" failed: " + msg);
  }

  Result<std::optional<BuildRecord>> Load(const std::string& id) {
    ASSIGN_OR_RETURN(auto st, Prepare(std::string("SELECT ") + kColumns + " FROM builds WHERE id = ?1"));
    st->Bind(1, id);
    ASSIGN_OR_RETURN(bool row, st->Step());
    if (!row) return std::optional<BuildRecord>();
    ASSIGN_OR_RETURN(auto rec, ReadRow(*st, path));
    return std::optional<BuildRecord>(std::move(rec));
  }

  Result<BuildRecord> LoadExisting(const std::string& id) {
    ASSIGN_OR_RETURN(auto rec, Load(id));
    if (!rec) return NotFound(path + ": no build with id '" + id + "'");
    return std::move(*rec);
  }

  // Runs `body` inside BEGIN IMMEDIATE .. COMMIT: the write lock is taken up front, so a
  // read-then-write never fails half way with SQLITE_BUSY and nobody else writes in between.
  // Any error rolls the whole transaction back.
  template <typename F>
  auto InTransaction(F&& body) -> decltype(body()) {
    RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
    auto result = body();
    if (!result.ok()) {
      // Some errors (SQLITE_FULL, SQLITE_IOERR) already rolled back; only roll back what is open.
      if (!sqlite3_get_autocommit(db)) (void)Exec("ROLLBACK");
      return result;
    }
    Status commit = Exec("COMMIT");
    if (!commit.ok()) {
      // A failed COMMIT may leave the transaction open (e.g. SQLITE_BUSY); never leave it so.
      if (!sqlite3_get_autocommit(db)) (void)Exec("ROLLBACK");
      return commit;
    }
    return result;
  }

  Status OpenSchema();
};

Status JobDb::Impl::OpenSchema() {
  // The first read is what detects a file that is not a database at all (SQLite opens lazily).
  const std::string not_a_db = path + ": not a SQLite database, expected a build job database " +
                               "(schema version " + std::to_string(kSchemaVersion) +
                               ") or a path where one can be created";
  bool has_version_table = false;
  std::vector<std::string> other_tables;
  {
    auto st = Prepare("SELECT name FROM sqlite_master WHERE type = 'table'");
    if (!st.ok()) {
      return st.status().code() == StatusCode::kInvalidArgument ? InvalidArgument(not_a_db) : st.status();
    }
    while (true) {
      auto row = (*st)->Step();
      if (!row.ok()) {
        return row.status().code() == StatusCode::kInvalidArgument ? InvalidArgument(not_a_db)
                                                                   : row.status();
      }
      if (!*row) break;
      const std::string name = (*st)->Text(0);
      if (name == "schema_version") {
        has_version_table = true;
      } else if (name.rfind("sqlite_", 0) != 0) {
        other_tables.push_back(name);
      }
    }
  }

  // WAL: readers never block the writer and a commit is one append. synchronous=FULL: the WAL is
  // fsynced at every commit, so a committed build survives power loss, not just a process crash.
  {
    ASSIGN_OR_RETURN(auto st, Prepare("PRAGMA journal_mode = WAL"));
    ASSIGN_OR_RETURN(bool row, st->Step());
    const std::string mode = row ? st->Text(0) : "";
    if (mode != "wal") {
      return FailedPrecondition(path + ": cannot switch to WAL journal mode (got '" + mode +
                                "'); expected a local file system that supports shared memory");
    }
  }
  RETURN_IF_ERROR(Exec("PRAGMA synchronous = FULL"));

  if (!has_version_table) {
    if (!other_tables.empty()) {
      return FailedPrecondition(path + ": a SQLite database without a schema_version table (it has '" +
                                other_tables.front() +
                                "'), expected a build job database or an empty file");
    }
    return InTransaction([&]() -> Status {
      RETURN_IF_ERROR(Exec(kSchema));
      ASSIGN_OR_RETURN(auto st, Prepare("INSERT INTO schema_version (version) VALUES (?1)"));
      st->Bind(1, kSchemaVersion);
      return st->Run();
    });
  }

  ASSIGN_OR_RETURN(auto st, Prepare("SELECT max(version), count(*) FROM schema_version"));
  ASSIGN_OR_RETURN(bool row, st->Step());
  if (!row || st->Int(1) == 0) {
    return FailedPrecondition(path + ": schema_version table is empty, expected one row with " +
                              std::to_string(kSchemaVersion));
  }
  const std::int64_t version = st->Int(0);
  if (version > kSchemaVersion) {
    return FailedPrecondition(path + ": build job database has schema version " +
                              std::to_string(version) + ", newer than this fpgaserve supports (" +
                              std::to_string(kSchemaVersion) + "); use a newer fpgaserve");
  }
  if (version < kSchemaVersion) {
    // Only version 1 exists so far; this is where migrations will go.
    return FailedPrecondition(path + ": build job database has schema version " +
                              std::to_string(version) + ", expected " +
                              std::to_string(kSchemaVersion));
  }
  return Status::Ok();
}

Result<std::unique_ptr<JobDb>> JobDb::Open(const std::string& path) {
  if (path.empty()) return InvalidArgument("job database path is empty, expected a file path");
  auto impl = std::make_unique<Impl>();
  impl->path = path;

  // The lock comes first: a second server must fail before it touches the database at all.
  // flock (not SQLite's own locking) because it is held for our whole lifetime, is released by
  // the kernel when the process dies however it dies, and conflicts between two opens in one
  // process as well as between processes. O_CLOEXEC: build tools we spawn must not inherit it.
  const std::string lock_path = path + ".lock";
  impl->lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (impl->lock_fd < 0) {
    const int err = errno;
    Status st(err == ENOENT ? StatusCode::kNotFound
              : err == EACCES || err == EROFS ? StatusCode::kPermissionDenied
                                              : StatusCode::kUnavailable,
              path + ": cannot create lock file " + lock_path + ": " + std::strerror(err) +
                  " (expected a writable directory)");
    return st;
  }
  while (::flock(impl->lock_fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EINTR) continue;
    if (errno == EWOULDBLOCK) {
      return FailedPrecondition(path + ": in use by another build server (" + lock_path +
                                " is locked); expected one server per database");
    }
    return Unavailable(path + ": cannot lock " + lock_path + ": " + std::strerror(errno));
  }

  const int rc = sqlite3_open_v2(path.c_str(), &impl->db,
                                 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    return Status(CodeFor(rc), path + ": cannot open database: " +
                                   (impl->db ? sqlite3_errmsg(impl->db) : sqlite3_errstr(rc)));
  }
  sqlite3_extended_result_codes(impl->db, 1);
  sqlite3_busy_timeout(impl->db, kBusyTimeoutMs);
  RETURN_IF_ERROR(impl->OpenSchema());

  std::unique_ptr<JobDb> db(new JobDb());
  db->impl_ = std::move(impl);
  return db;
}

JobDb::~JobDb() = default;

Result<std::pair<BuildRecord, bool>> JobDb::Submit(const BuildRecord& record) {
  if (record.id.empty()) return InvalidArgument("Submit: build id is empty, expected the build's id");
  std::lock_guard<std::mutex> lock(impl_->mu);
  Impl& d = *impl_;
  return d.InTransaction([&]() -> Result<std::pair<BuildRecord, bool>> {
    ASSIGN_OR_RETURN(auto existing, d.Load(record.id));
    const std::int64_t now = NowMs();
    if (existing) {
      if (existing->state != BuildState::kFailed && existing->state != BuildState::kCancelled) {
        return std::make_pair(std::move(*existing), false);
      }
      // A retry: the spec (and so the id) is the same. created_ms is kept so the build keeps its
      // place in history; everything from the failed attempt is cleared. attempts is kept: it
      // counts worker starts over the build's whole life.
      ASSIGN_OR_RETURN(auto st, d.Prepare(
          "UPDATE builds SET state = 'QUEUED', stage = '', percent = 0, message = '', "
          "error_code = '', artifacts = '[]', cancel_requested = 0, started_ms = 0, "
          "finished_ms = 0, updated_ms = ?2 WHERE id = ?1"));
      st->Bind(1, record.id).Bind(2, now);
      RETURN_IF_ERROR(st->Run());
    } else {
      const BuildSpec& s = record.spec;
      ASSIGN_OR_RETURN(auto st, d.Prepare(
          "INSERT INTO builds (id, model_uri, model_sha256, model_format, board, engine, precision, "
          "reuse, interface, name, labels, state, stage, percent, message, error_code, attempts, "
          "created_ms, updated_ms, started_ms, finished_ms, cancel_requested, artifacts) "
          "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 'QUEUED', '', 0, '', '', 0, "
          "?12, ?12, 0, 0, 0, '[]')"));
      st->Bind(1, record.id).Bind(2, s.model_uri).Bind(3, s.model_sha256).Bind(4, s.model_format);
      st->Bind(5, s.board).Bind(6, s.engine).Bind(7, s.precision).Bind(8, s.reuse);
      st->Bind(9, s.interface).Bind(10, s.name).Bind(11, LabelsToJson(s.labels)).Bind(12, now);
      RETURN_IF_ERROR(st->Run());
    }
    ASSIGN_OR_RETURN(auto stored, d.LoadExisting(record.id));
    return std::make_pair(std::move(stored), true);
  });
}

Result<std::optional<BuildRecord>> JobDb::Get(const std::string& id) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->Load(id);
}

Result<ListPage> JobDb::List(const ListFilter& filter) {
  if (filter.page_size < 1 || filter.page_size > 1000) {
    return InvalidArgument("List: page_size " + std::to_string(filter.page_size) +
                           " out of range, expected 1..1000");
  }
  std::optional<std::pair<std::int64_t, std::string>> after;
  if (!filter.page_token.empty()) {
    ASSIGN_OR_RETURN(auto t, DecodePageToken(filter.page_token));
    after = std::move(t);
  }

  // The SQL text varies only by which filters are present (at most 16 shapes, each cached);
  // every value goes in through a bound parameter.
  std::string sql = std::string("SELECT ") + kColumns + " FROM builds b WHERE 1";
  if (filter.state) sql += " AND state = ?1";
  if (!filter.board.empty()) sql += " AND board = ?2";
  if (!filter.labels.empty()) {
    // Every wanted label (a JSON object in ?3) must be present with the same value.
    sql += " AND NOT EXISTS (SELECT 1 FROM json_each(?3) w WHERE NOT EXISTS ("
           "SELECT 1 FROM json_each(b.labels) l WHERE l.key = w.key AND l.value = w.value))";
  }
  if (after) sql += " AND (created_ms < ?4 OR (created_ms = ?4 AND id > ?5))";
  sql += " ORDER BY created_ms DESC, id ASC LIMIT ?6";

  std::lock_guard<std::mutex> lock(impl_->mu);
  ASSIGN_OR_RETURN(auto st, impl_->Prepare(sql));
  if (filter.state) st->Bind(1, BuildStateName(*filter.state));
  if (!filter.board.empty()) st->Bind(2, filter.board);
  if (!filter.labels.empty()) st->Bind(3, LabelsToJson(filter.labels));
  if (after) st->Bind(4, after->first).Bind(5, after->second);
  // One more than a page tells whether another page exists without a second query.
  st->Bind(6, filter.page_size + 1);

  ListPage page;
  bool more = false;
  while (true) {
    ASSIGN_OR_RETURN(bool row, st->Step());
    if (!row) break;
    if (static_cast<int>(page.builds.size()) == filter.page_size) {
      more = true;
      break;
    }
    ASSIGN_OR_RETURN(auto rec, ReadRow(*st, impl_->path));
    page.builds.push_back(std::move(rec));
  }
  if (more) {
    const BuildRecord& last = page.builds.back();
    page.next_page_token = EncodePageToken(last.created_ms, last.id);
  }
  return page;
}

Result<std::optional<BuildRecord>> JobDb::ClaimNext() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  Impl& d = *impl_;
  return d.InTransaction([&]() -> Result<std::optional<BuildRecord>> {
    std::string id;
    {
      ASSIGN_OR_RETURN(auto st, d.Prepare(
          "SELECT id FROM builds WHERE state = 'QUEUED' AND cancel_requested = 0 "
          "ORDER BY created_ms, id LIMIT 1"));
      ASSIGN_OR_RETURN(bool row, st->Step());
      if (!row) return std::optional<BuildRecord>();
      id = st->Text(0);
    }
    const std::int64_t now = NowMs();
    ASSIGN_OR_RETURN(auto st, d.Prepare(
        "UPDATE builds SET state = 'FETCHING', attempts = attempts + 1, started_ms = ?2, "
        "updated_ms = ?2, stage = '', percent = 0, message = '' WHERE id = ?1 AND state = 'QUEUED'"));
    st->Bind(1, id).Bind(2, now);
    RETURN_IF_ERROR(st->Run());
    if (sqlite3_changes(d.db) != 1) {
      return Internal(d.path + ": claiming build " + id + " changed " +
                      std::to_string(sqlite3_changes(d.db)) + " rows, expected 1");
    }
    ASSIGN_OR_RETURN(auto rec, d.LoadExisting(id));
    return std::optional<BuildRecord>(std::move(rec));
  });
}

Status JobDb::UpdateProgress(const std::string& id, BuildState state, const std::string& stage,
                             int percent, const std::string& message) {
  if (!IsRunning(state)) {
    return InvalidArgument(std::string("UpdateProgress(") + id + "): state " + BuildStateName(state) +
                           " is not a running state, expected FETCHING..UPLOADING");
  }
  if (percent < 0 || percent > 100) {
    return InvalidArgument("UpdateProgress(" + id + "): percent " + std::to_string(percent) +
                           " out of range, expected 0..100");
  }
  std::lock_guard<std::mutex> lock(impl_->mu);
  Impl& d = *impl_;
  return d.InTransaction([&]() -> Status {
    ASSIGN_OR_RETURN(auto rec, d.LoadExisting(id));
    if (!IsRunning(rec.state)) {
      return FailedPrecondition(d.path + ": build " + id + " is " + BuildStateName(rec.state) +
                                ", expected a running build (claimed and not finished)");
    }
    ASSIGN_OR_RETURN(auto st, d.Prepare(
        "UPDATE builds SET state = ?2, stage = ?3, percent = ?4, message = ?5, updated_ms = ?6 "
        "WHERE id = ?1"));
    st->Bind(1, id).Bind(2, BuildStateName(state)).Bind(3, stage).Bind(4, percent);
    st->Bind(5, message).Bind(6, NowMs());
    return st->Run();
  });
}

Status JobDb::Finish(const std::string& id, BuildState state, const std::string& error_code,
                     const std::string& message, const std::vector<Artifact>& artifacts) {
  if (!IsTerminal(state)) {
    return InvalidArgument(std::string("Finish(") + id + "): state " + BuildStateName(state) +
                           " is not a final state, expected SUCCEEDED, FAILED or CANCELLED");
  }
  if (state == BuildState::kFailed && error_code.empty()) {
    return InvalidArgument("Finish(" + id + "): FAILED without an error_code, expected a StatusCode name");
  }
  std::lock_guard<std::mutex> lock(impl_->mu);
  Impl& d = *impl_;
  return d.InTransaction([&]() -> Status {
    ASSIGN_OR_RETURN(auto rec, d.LoadExisting(id));
    // Finished builds are never touched again: a late Finish from a worker that lost a race with
    // a cancel must not overwrite the outcome.
    if (IsTerminal(rec.state)) {
      return FailedPrecondition(d.path + ": build " + id + " is already " + BuildStateName(rec.state) +
                                ", expected a queued or running build");
    }
    const std::int64_t now = NowMs();
    ASSIGN_OR_RETURN(auto st, d.Prepare(
        "UPDATE builds SET state = ?2, error_code = ?3, message = ?4, artifacts = ?5, "
        "percent = CASE WHEN ?2 = 'SUCCEEDED' THEN 100 ELSE percent END, "
        "finished_ms = ?6, updated_ms = ?6 WHERE id = ?1"));
    st->Bind(1, id).Bind(2, BuildStateName(state));
    st->Bind(3, state == BuildState::kFailed ? error_code : std::string());
    st->Bind(4, message).Bind(5, ArtifactsToJson(artifacts)).Bind(6, now);
    return st->Run();
  });
}

Result<BuildRecord> JobDb::RequestCancel(const std::string& id) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  Impl& d = *impl_;
  return d.InTransaction([&]() -> Result<BuildRecord> {
    ASSIGN_OR_RETURN(auto rec, d.LoadExisting(id));
    if (IsTerminal(rec.state)) return rec;
    const std::int64_t now = NowMs();
    if (rec.state == BuildState::kQueued) {
      // No worker has it, so nobody else would ever finish it: cancel now.
      ASSIGN_OR_RETURN(auto st, d.Prepare(
          "UPDATE builds SET state = 'CANCELLED', cancel_requested = 1, "
          "message = 'cancelled before it started', finished_ms = ?2, updated_ms = ?2 WHERE id = ?1"));
      st->Bind(1, id).Bind(2, now);
      RETURN_IF_ERROR(st->Run());
    } else {
      ASSIGN_OR_RETURN(auto st, d.Prepare(
          "UPDATE builds SET cancel_requested = 1, updated_ms = ?2 WHERE id = ?1"));
      st->Bind(1, id).Bind(2, now);
      RETURN_IF_ERROR(st->Run());
    }
    return d.LoadExisting(id);
  });
}

Result<int> JobDb::RequeueInterrupted() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  Impl& d = *impl_;
  return d.InTransaction([&]() -> Result<int> {
    const std::int64_t now = NowMs();
    // A build whose cancel was requested before the restart is not rebuilt: the user asked for it
    // to stop, and it has stopped.
    {
      ASSIGN_OR_RETURN(auto st, d.Prepare(
          std::string("UPDATE builds SET state = 'CANCELLED', "
                      "message = 'cancelled (the build server restarted before the build stopped)', "
                      "finished_ms = ?1, updated_ms = ?1 WHERE cancel_requested = 1 AND state IN ") +
          kRunningStatesSql));
      st->Bind(1, now);
      RETURN_IF_ERROR(st->Run());
    }
    // attempts is kept; the next ClaimNext counts the restart as another attempt.
    ASSIGN_OR_RETURN(auto st, d.Prepare(
        std::string("UPDATE builds SET state = 'QUEUED', stage = '', percent = 0, "
                    "message = 'requeued after a build server restart', started_ms = 0, "
                    "updated_ms = ?1 WHERE state IN ") +
        kRunningStatesSql));
    st->Bind(1, now);
    RETURN_IF_ERROR(st->Run());
    return sqlite3_changes(d.db);
  });
}

}  // namespace fpgaserve::build
