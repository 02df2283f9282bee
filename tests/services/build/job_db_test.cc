#include "services/build/job_db.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <set>
#include <thread>

#include "importers/test_files.h"

namespace fpgaserve::build {
namespace {

using fpgaserve::testing::TempDir;

BuildRecord MakeRecord(const std::string& id, const std::string& board = "ice40-up5k",
                       std::map<std::string, std::string> labels = {}) {
  BuildRecord r;
  r.id = id;
  r.spec.model_uri = "s3://models/" + id + ".onnx";
  r.spec.model_sha256 = std::string(64, 'a');
  r.spec.model_format = "onnx";
  r.spec.board = board;
  r.spec.engine = "native";
  r.spec.precision = "ap_fixed<16,6>";
  r.spec.reuse = 4;
  r.spec.interface = "uart";
  r.spec.name = "model " + id;
  r.spec.labels = std::move(labels);
  return r;
}

std::unique_ptr<JobDb> OpenOrDie(const std::string& path) {
  auto db = JobDb::Open(path);
  EXPECT_TRUE(db.ok()) << db.status().ToString();
  return db.ok() ? std::move(db).value() : nullptr;
}

// Runs `child` in a forked process and returns its wait status. The child never returns into
// gtest: it _exits with child()'s value (or dies in it).
int RunInChild(const std::function<int()>& child) {
  const pid_t pid = ::fork();
  if (pid == 0) ::_exit(child());
  int status = 0;
  EXPECT_EQ(::waitpid(pid, &status, 0), pid);
  return status;
}

TEST(JobDbTest, StateNamesRoundTrip) {
  const BuildState all[] = {BuildState::kQueued,     BuildState::kFetching,  BuildState::kCompiling,
                            BuildState::kSynthesizing, BuildState::kPlacing, BuildState::kPacking,
                            BuildState::kUploading,  BuildState::kSucceeded, BuildState::kFailed,
                            BuildState::kCancelled};
  std::set<std::string> names;
  for (BuildState s : all) {
    auto parsed = ParseBuildState(BuildStateName(s));
    ASSERT_TRUE(parsed.ok()) << BuildStateName(s);
    EXPECT_EQ(*parsed, s);
    names.insert(BuildStateName(s));
    EXPECT_FALSE(IsTerminal(s) && IsRunning(s));
  }
  EXPECT_EQ(names.size(), 10u);
  EXPECT_STREQ(BuildStateName(BuildState::kQueued), "QUEUED");
  EXPECT_TRUE(IsRunning(BuildState::kFetching));
  EXPECT_TRUE(IsRunning(BuildState::kUploading));
  EXPECT_FALSE(IsRunning(BuildState::kQueued));
  EXPECT_TRUE(IsTerminal(BuildState::kCancelled));
  auto bad = ParseBuildState("queued");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("QUEUED"), std::string::npos);
}

TEST(JobDbTest, SubmitGetAndDuplicateSubmit) {
  TempDir dir;
  const std::string path = dir.path() + "/jobs.db";
  auto db = OpenOrDie(path);
  ASSERT_TRUE(db);
  auto rec = MakeRecord("b1", "ice40-up5k", {{"team", "vision"}, {"ci", "yes"}});
  rec.state = BuildState::kSucceeded;  // ignored: a submitted build is always QUEUED
  rec.percent = 50;
  auto sub = db->Submit(rec);
  ASSERT_TRUE(sub.ok()) << sub.status().ToString();
  EXPECT_TRUE(sub->second);
  EXPECT_EQ(sub->first.state, BuildState::kQueued);
  EXPECT_EQ(sub->first.percent, 0);
  EXPECT_GT(sub->first.created_ms, 1600000000000);  // Unix ms, not seconds
  EXPECT_EQ(sub->first.updated_ms, sub->first.created_ms);
  EXPECT_TRUE(std::filesystem::exists(path + "-wal"));  // WAL journal mode is on
  EXPECT_TRUE(std::filesystem::exists(path + ".lock"));

  auto got = db->Get("b1");
  ASSERT_TRUE(got.ok());
  ASSERT_TRUE(got->has_value());
  const BuildRecord& g = **got;
  EXPECT_EQ(g.spec.model_uri, rec.spec.model_uri);
  EXPECT_EQ(g.spec.model_sha256, rec.spec.model_sha256);
  EXPECT_EQ(g.spec.model_format, "onnx");
  EXPECT_EQ(g.spec.board, "ice40-up5k");
  EXPECT_EQ(g.spec.engine, "native");
  EXPECT_EQ(g.spec.precision, "ap_fixed<16,6>");
  EXPECT_EQ(g.spec.reuse, 4);
  EXPECT_EQ(g.spec.interface, "uart");
  EXPECT_EQ(g.spec.name, "model b1");
  EXPECT_EQ(g.spec.labels, rec.spec.labels);
  EXPECT_EQ(g.attempts, 0);
  EXPECT_EQ(g.started_ms, 0);
  EXPECT_FALSE(g.cancel_requested);

  auto dup = db->Submit(MakeRecord("b1", "other-board"));
  ASSERT_TRUE(dup.ok());
  EXPECT_FALSE(dup->second);
  EXPECT_EQ(dup->first.spec.board, "ice40-up5k");  // the stored one, untouched
  EXPECT_EQ(dup->first.created_ms, g.created_ms);

  auto missing = db->Get("nope");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());

  auto empty = db->Submit(MakeRecord(""));
  EXPECT_EQ(empty.status().code(), StatusCode::kInvalidArgument);
}

TEST(JobDbTest, ValuesWithQuotesAreStoredVerbatim) {
  // Bound parameters: nothing a client sends can change the SQL.
  TempDir dir;
  auto db = OpenOrDie(dir.path() + "/jobs.db");
  ASSERT_TRUE(db);
  const std::string evil = "x'); DROP TABLE builds; --";
  auto rec = MakeRecord(evil, evil, {{evil, "\"quoted\" 'label'"}});
  ASSERT_TRUE(db->Submit(rec).ok());
  auto got = db->Get(evil);
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->spec.board, evil);
  EXPECT_EQ((*got)->spec.labels, rec.spec.labels);
  ListFilter f;
  f.labels = rec.spec.labels;
  auto page = db->List(f);
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  ASSERT_EQ(page->builds.size(), 1u);
}

TEST(JobDbTest, ResubmitOfFailedOrCancelledRequeues) {
  TempDir dir;
  auto db = OpenOrDie(dir.path() + "/jobs.db");
  ASSERT_TRUE(db);
  ASSERT_TRUE(db->Submit(MakeRecord("f")).ok());
  auto claimed = db->ClaimNext();
  ASSERT_TRUE(claimed.ok() && claimed->has_value());
  ASSERT_TRUE(db->UpdateProgress("f", BuildState::kSynthesizing, "yosys", 40, "synth").ok());
  ASSERT_TRUE(db->Finish("f", BuildState::kFailed, "DEADLINE_EXCEEDED", "yosys timed out",
                         {{"f/log.txt", 12, "abc"}})
                  .ok());
  auto failed = *db->Get("f");
  ASSERT_EQ(failed->state, BuildState::kFailed);
  EXPECT_EQ(failed->error_code, "DEADLINE_EXCEEDED");
  EXPECT_EQ(failed->artifacts.size(), 1u);

  auto again = db->Submit(MakeRecord("f"));
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->second);
  const BuildRecord& r = again->first;
  EXPECT_EQ(r.state, BuildState::kQueued);
  EXPECT_EQ(r.created_ms, failed->created_ms);  // keeps its place in history
  EXPECT_EQ(r.error_code, "");
  EXPECT_EQ(r.message, "");
  EXPECT_EQ(r.stage, "");
  EXPECT_EQ(r.percent, 0);
  EXPECT_TRUE(r.artifacts.empty());
  EXPECT_EQ(r.finished_ms, 0);
  EXPECT_EQ(r.attempts, 1);
  auto second = db->ClaimNext();
  ASSERT_TRUE(second.ok() && second->has_value());
  EXPECT_EQ((*second)->attempts, 2);

  // Cancelled: resubmit clears cancel_requested too.
  ASSERT_TRUE(db->Submit(MakeRecord("c")).ok());
  ASSERT_EQ(db->RequestCancel("c")->state, BuildState::kCancelled);
  auto c = db->Submit(MakeRecord("c"));
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->second);
  EXPECT_EQ(c->first.state, BuildState::kQueued);
  EXPECT_FALSE(c->first.cancel_requested);

  // Succeeded and running builds are returned as they are.
  ASSERT_TRUE(db->Finish("f", BuildState::kSucceeded, "", "ok", {}).ok());
  auto s = db->Submit(MakeRecord("f"));
  ASSERT_TRUE(s.ok());
  EXPECT_FALSE(s->second);
  EXPECT_EQ(s->first.state, BuildState::kSucceeded);
  auto running = db->ClaimNext();  // "c"
  ASSERT_TRUE(running.ok() && running->has_value());
  auto rs = db->Submit(MakeRecord("c"));
  ASSERT_TRUE(rs.ok());
  EXPECT_FALSE(rs->second);
  EXPECT_EQ(rs->first.state, BuildState::kFetching);
}

TEST(JobDbTest, ClaimNextTakesOldestFirst) {
  TempDir dir;
  auto db = OpenOrDie(dir.path() + "/jobs.db");
  ASSERT_TRUE(db);
  // Distinct created_ms: z is oldest although its id sorts last.
  for (const char* id : {"z", "m", "a"}) {
    ASSERT_TRUE(db->Submit(MakeRecord(id)).ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(3));
  }
  ASSERT_EQ(db->RequestCancel("m")->state, BuildState::kCancelled);  // skipped
  auto first = db->ClaimNext();
  ASSERT_TRUE(first.ok() && first->has_value());
  EXPECT_EQ((*first)->id, "z");
  EXPECT_EQ((*first)->state, BuildState::kFetching);
  EXPECT_EQ((*first)->attempts, 1);
  EXPECT_GE((*first)->started_ms, (*first)->created_ms);
  auto second = db->ClaimNext();
  ASSERT_TRUE(second.ok() && second->has_value());
  EXPECT_EQ((*second)->id, "a");
  auto none = db->ClaimNext();
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
}

TEST(JobDbTest, ConcurrentClaimsNeverShareABuild) {
  TempDir dir;
  auto db = OpenOrDie(dir.path() + "/jobs.db");
  ASSERT_TRUE(db);
  constexpr int kBuilds = 200, kThreads = 8;
  for (int i = 0; i < kBuilds; ++i) ASSERT_TRUE(db->Submit(MakeRecord("b" + std::to_string(i))).ok());

  std::vector<std::vector<std::string>> claimed(kThreads);
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      while (true) {
        auto r = db->ClaimNext();
        if (!r.ok()) {
          ++errors;
          return;
        }
        if (!r->has_value()) return;
        claimed[t].push_back((*r)->id);
        // Interleave other writers with the claimers.
        if (!db->UpdateProgress((*r)->id, BuildState::kCompiling, "cc", 10, "").ok()) ++errors;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(errors.load(), 0);
  std::multiset<std::string> all;
  for (const auto& v : claimed) all.insert(v.begin(), v.end());
  EXPECT_EQ(all.size(), static_cast<std::size_t>(kBuilds));
  for (int i = 0; i < kBuilds; ++i) EXPECT_EQ(all.count("b" + std::to_string(i)), 1u) << i;
  for (int i = 0; i < kBuilds; ++i) {
    auto r = *db->Get("b" + std::to_string(i));
    EXPECT_EQ(r->attempts, 1);
    EXPECT_EQ(r->state, BuildState::kCompiling);
  }
}

TEST(JobDbTest, ProgressAndFinishRoundTrip) {
  TempDir dir;
  auto db = OpenOrDie(dir.path() + "/jobs.db");
  ASSERT_TRUE(db);
  ASSERT_TRUE(db->Submit(MakeRecord("p")).ok());

  // Not claimed yet.
  EXPECT_EQ(db->UpdateProgress("p", BuildState::kCompiling, "cc", 1, "").code(),
            StatusCode::kFailedPrecondition);
  ASSERT_TRUE(db->ClaimNext().ok());
  ASSERT_TRUE(db->UpdateProgress("p", BuildState::kPlacing, "nextpnr-ice40", 70, "placing 1234 cells").ok());
  auto r = *db->Get("p");
  EXPECT_EQ(r->state, BuildState::kPlacing);
  EXPECT_EQ(r->stage, "nextpnr-ice40");
  EXPECT_EQ(r->percent, 70);
  EXPECT_EQ(r->message, "placing 1234 cells");
  EXPECT_GE(r->updated_ms, r->started_ms);

  EXPECT_EQ(db->UpdateProgress("p", BuildState::kSucceeded, "", 1, "").code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(db->UpdateProgress("p", BuildState::kPlacing, "", 101, "").code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(db->UpdateProgress("unknown", BuildState::kPlacing, "", 1, "").code(), StatusCode::kNotFound);
  EXPECT_EQ(db->Finish("p", BuildState::kPacking, "", "", {}).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(db->Finish("unknown", BuildState::kSucceeded, "", "", {}).code(), StatusCode::kNotFound);

  const std::vector<Artifact> artifacts = {
      {"p/metadata.json", 512, std::string(64, '1')},
      {"p/bitstream.bin", 104090ull * 1024 * 1024 * 1024, std::string(64, '2')},  // > 2^32
  };
  ASSERT_TRUE(db->Finish("p", BuildState::kSucceeded, "", "done", artifacts).ok());
  r = *db->Get("p");
  EXPECT_EQ(r->state, BuildState::kSucceeded);
  EXPECT_EQ(r->percent, 100);
  EXPECT_EQ(r->message, "done");
  EXPECT_GT(r->finished_ms, 0);
  ASSERT_EQ(r->artifacts.size(), 2u);
  for (std::size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(r->artifacts[i].key, artifacts[i].key);
    EXPECT_EQ(r->artifacts[i].size, artifacts[i].size);
    EXPECT_EQ(r->artifacts[i].sha256, artifacts[i].sha256);
  }

  // A finished build is never touched again.
  EXPECT_EQ(db->UpdateProgress("p", BuildState::kPlacing, "", 1, "").code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(db->Finish("p", BuildState::kFailed, "INTERNAL", "late", {}).code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ((*db->Get("p"))->state, BuildState::kSucceeded);

  // FAILED needs an error code.
  ASSERT_TRUE(db->Submit(MakeRecord("q")).ok());
  ASSERT_TRUE(db->ClaimNext().ok());
  EXPECT_EQ(db->Finish("q", BuildState::kFailed, "", "x", {}).code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(db->Finish("q", BuildState::kFailed, "INVALID_ARGUMENT", "unsupported op Foo", {}).ok());
  r = *db->Get("q");
  EXPECT_EQ(r->error_code, "INVALID_ARGUMENT");
  EXPECT_EQ(r->message, "unsupported op Foo");
}

TEST(JobDbTest, CancelPaths) {
  TempDir dir;
  auto db = OpenOrDie(dir.path() + "/jobs.db");
  ASSERT_TRUE(db);
  EXPECT_EQ(db->RequestCancel("unknown").status().code(), StatusCode::kNotFound);

  // Queued: cancelled at once, and never claimed.
  ASSERT_TRUE(db->Submit(MakeRecord("queued")).ok());
  auto q = db->RequestCancel("queued");
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->state, BuildState::kCancelled);
  EXPECT_TRUE(q->cancel_requested);
  EXPECT_GT(q->finished_ms, 0);
  auto none = db->ClaimNext();
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());

  // Running: flagged; the worker sees the flag and finishes it as CANCELLED.
  ASSERT_TRUE(db->Submit(MakeRecord("running")).ok());
  ASSERT_TRUE(db->ClaimNext().ok());
  auto r = db->RequestCancel("running");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->state, BuildState::kFetching);
  EXPECT_TRUE(r->cancel_requested);
  EXPECT_EQ(r->finished_ms, 0);
  EXPECT_TRUE((*db->Get("running"))->cancel_requested);
  ASSERT_TRUE(db->Finish("running", BuildState::kCancelled, "", "stopped on request", {}).ok());
  EXPECT_EQ((*db->Get("running"))->state, BuildState::kCancelled);

  // Terminal: unchanged.
  ASSERT_TRUE(db->Submit(MakeRecord("done")).ok());
  ASSERT_TRUE(db->ClaimNext().ok());
  ASSERT_TRUE(db->Finish("done", BuildState::kSucceeded, "", "", {}).ok());
  auto before = *db->Get("done");
  auto d = db->RequestCancel("done");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->state, BuildState::kSucceeded);
  EXPECT_FALSE(d->cancel_requested);
  EXPECT_EQ(d->updated_ms, before->updated_ms);
}

TEST(JobDbTest, ReopenRequeuesInterruptedBuilds) {
  TempDir dir;
  const std::string path = dir.path() + "/jobs.db";
  std::int64_t finished_ms = 0;
  {
    auto db = OpenOrDie(path);
    ASSERT_TRUE(db);
    ASSERT_TRUE(db->Submit(MakeRecord("done")).ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    ASSERT_TRUE(db->Submit(MakeRecord("interrupted")).ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    ASSERT_TRUE(db->Submit(MakeRecord("waiting")).ok());
    ASSERT_EQ((*db->ClaimNext())->id, "done");
    ASSERT_TRUE(db->Finish("done", BuildState::kSucceeded, "", "ok", {{"done/a", 1, "s"}}).ok());
    finished_ms = (*db->Get("done"))->finished_ms;
    ASSERT_EQ((*db->ClaimNext())->id, "interrupted");
    ASSERT_TRUE(db->UpdateProgress("interrupted", BuildState::kPacking, "icepack", 90, "").ok());
  }  // the server stops mid-build
  auto db = OpenOrDie(path);
  ASSERT_TRUE(db);
  auto n = db->RequeueInterrupted();
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, 1);
  auto r = *db->Get("interrupted");
  EXPECT_EQ(r->state, BuildState::kQueued);
  EXPECT_EQ(r->percent, 0);
  EXPECT_EQ(r->attempts, 1);
  auto done = *db->Get("done");
  EXPECT_EQ(done->state, BuildState::kSucceeded);
  EXPECT_EQ(done->finished_ms, finished_ms);
  EXPECT_EQ(done->artifacts.size(), 1u);
  EXPECT_EQ((*db->Get("waiting"))->state, BuildState::kQueued);
  EXPECT_EQ(*db->RequeueInterrupted(), 0);
  // The requeued build keeps its place: it is older than "waiting". The restart counts as an attempt.
  auto next = db->ClaimNext();
  ASSERT_TRUE(next.ok() && next->has_value());
  EXPECT_EQ((*next)->id, "interrupted");
  EXPECT_EQ((*next)->attempts, 2);
}

TEST(JobDbTest, RequeueCancelsBuildsWhoseCancelWasRequested) {
  TempDir dir;
  auto db = OpenOrDie(dir.path() + "/jobs.db");
  ASSERT_TRUE(db);
  ASSERT_TRUE(db->Submit(MakeRecord("a")).ok());
  ASSERT_TRUE(db->Submit(MakeRecord("b")).ok());
  ASSERT_TRUE(db->ClaimNext().ok());
  ASSERT_TRUE(db->ClaimNext().ok());
  ASSERT_TRUE(db->RequestCancel("a").ok());
  auto n = db->RequeueInterrupted();
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 1);
  auto a = *db->Get("a");
  EXPECT_EQ(a->state, BuildState::kCancelled);
  EXPECT_GT(a->finished_ms, 0);
  EXPECT_EQ((*db->Get("b"))->state, BuildState::kQueued);
}

// The child commits a build and dies without any cleanup; what it committed must be there.
void ExpectCommittedAfterChildDies(bool sigkill) {
  TempDir dir;
  const std::string path = dir.path() + "/jobs.db";
  const int status = RunInChild([&]() -> int {
    auto db = JobDb::Open(path);
    if (!db.ok()) return 10;
    if (!(*db)->Submit(MakeRecord("crash")).ok()) return 11;
    if (!(*db)->Submit(MakeRecord("left-running")).ok()) return 12;
    if (!(*db)->ClaimNext().ok()) return 13;  // "crash"
    if (!(*db)->Finish("crash", BuildState::kSucceeded, "", "ok", {{"crash/bit.bin", 99, "h"}}).ok()) {
      return 14;
    }
    if (!(*db)->ClaimNext().ok()) return 15;  // "left-running"
    if (sigkill) ::kill(::getpid(), SIGKILL);
    ::_exit(0);  // no destructors: the JobDb is never closed
  });
  if (sigkill) {
    ASSERT_TRUE(WIFSIGNALED(status)) << "child exited with " << WEXITSTATUS(status);
    EXPECT_EQ(WTERMSIG(status), SIGKILL);
  } else {
    ASSERT_TRUE(WIFEXITED(status));
    ASSERT_EQ(WEXITSTATUS(status), 0);
  }
  auto db = OpenOrDie(path);  // the dead child's lock is gone
  ASSERT_TRUE(db);
  auto r = db->Get("crash");
  ASSERT_TRUE(r.ok() && r->has_value()) << r.status().ToString();
  EXPECT_EQ((*r)->state, BuildState::kSucceeded);
  ASSERT_EQ((*r)->artifacts.size(), 1u);
  EXPECT_EQ((*r)->artifacts[0].size, 99u);
  EXPECT_EQ(*db->RequeueInterrupted(), 1);
  EXPECT_EQ((*db->Get("left-running"))->state, BuildState::kQueued);
}

TEST(JobDbTest, CommittedStateSurvivesExitWithoutClose) { ExpectCommittedAfterChildDies(false); }
TEST(JobDbTest, CommittedStateSurvivesSigkill) { ExpectCommittedAfterChildDies(true); }

TEST(JobDbTest, SecondOwnerIsRefused) {
  TempDir dir;
  const std::string path = dir.path() + "/jobs.db";
  auto db = OpenOrDie(path);
  ASSERT_TRUE(db);
  ASSERT_TRUE(db->Submit(MakeRecord("x")).ok());

  // Another process: exit code 0 means Open failed the expected way.
  const int status = RunInChild([&]() -> int {
    auto other = JobDb::Open(path);
    if (other.ok()) return 1;
    if (other.status().code() != StatusCode::kFailedPrecondition) return 2;
    if (other.status().message().find("in use by another build server") == std::string::npos) return 3;
    if (other.status().message().find(path) == std::string::npos) return 4;
    return 0;
  });
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);

  // The same process opening it twice is refused too.
  auto again = JobDb::Open(path);
  EXPECT_EQ(again.status().code(), StatusCode::kFailedPrecondition);

  // The failed opens did not disturb the owner; once it closes, the database can be opened.
  EXPECT_TRUE((*db->Get("x")).has_value());
  db.reset();
  auto reopened = JobDb::Open(path);
  ASSERT_TRUE(reopened.ok()) << reopened.status().ToString();
  EXPECT_TRUE((*(*reopened)->Get("x")).has_value());
}

TEST(JobDbTest, RandomBytesAreNotADatabase) {
  TempDir dir;
  std::mt19937 rng(1234);
  std::string junk(8192, '\0');
  for (char& c : junk) c = static_cast<char>(rng() & 0xff);
  const std::string path = dir.Write("junk.db", junk);
  auto db = JobDb::Open(path);
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(db.status().message().find(path), std::string::npos) << db.status().message();
  EXPECT_NE(db.status().message().find("not a SQLite database"), std::string::npos);
  // The file was left alone, and the failed open released its lock.
  std::ifstream in(path, std::ios::binary);
  std::string after((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(after, junk);
  EXPECT_EQ(JobDb::Open(path).status().code(), StatusCode::kInvalidArgument);

  // A short file too.
  const std::string tiny = dir.Write("tiny.db", "garbage!");
  EXPECT_EQ(JobDb::Open(tiny).status().code(), StatusCode::kInvalidArgument);
}

void RunSql(const std::string& path, const char* sql) {
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &raw), SQLITE_OK);
  char* err = nullptr;
  EXPECT_EQ(sqlite3_exec(raw, sql, nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
  sqlite3_free(err);
  sqlite3_close(raw);
}

TEST(JobDbTest, RefusesNewerSchemaAndForeignDatabases) {
  TempDir dir;
  const std::string path = dir.path() + "/jobs.db";
  {
    auto db = OpenOrDie(path);
    ASSERT_TRUE(db);
    ASSERT_TRUE(db->Submit(MakeRecord("x")).ok());
  }
  RunSql(path, "UPDATE schema_version SET version = 99");
  auto newer = JobDb::Open(path);
  ASSERT_FALSE(newer.ok());
  EXPECT_EQ(newer.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(newer.status().message().find(path), std::string::npos);
  EXPECT_NE(newer.status().message().find("99"), std::string::npos) << newer.status().message();

  const std::string foreign = dir.path() + "/other.db";
  RunSql(foreign, "CREATE TABLE users (name TEXT)");
  auto f = JobDb::Open(foreign);
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(f.status().message().find("users"), std::string::npos) << f.status().message();

  // An empty file is a fresh database.
  const std::string empty = dir.Write("empty.db", "");
  auto e = JobDb::Open(empty);
  ASSERT_TRUE(e.ok()) << e.status().ToString();

  auto missing_dir = JobDb::Open(dir.path() + "/no/such/dir/jobs.db");
  ASSERT_FALSE(missing_dir.ok());
  EXPECT_NE(missing_dir.status().message().find("no/such/dir"), std::string::npos);
}

TEST(JobDbTest, ListPaginatesNewestFirst) {
  TempDir dir;
  auto db = OpenOrDie(dir.path() + "/jobs.db");
  ASSERT_TRUE(db);
  // Fixed-seed shuffled ids so id order and submit order differ; many share a millisecond,
  // which exercises the id tie-break across page boundaries.
  std::vector<std::string> ids;
  for (int i = 0; i < 120; ++i) ids.push_back("id" + std::to_string(1000 + i));
  std::shuffle(ids.begin(), ids.end(), std::mt19937(42));
  for (std::size_t i = 0; i < ids.size(); ++i) {
    ASSERT_TRUE(db->Submit(MakeRecord(ids[i])).ok());
    if (i % 10 == 9) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  std::vector<std::pair<std::int64_t, std::string>> expected;
  for (const auto& id : ids) expected.emplace_back((*db->Get(id))->created_ms, id);
  std::sort(expected.begin(), expected.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });

  ListFilter f;
  f.page_size = 50;
  std::vector<std::string> seen;
  std::vector<std::size_t> page_sizes;
  for (int guard = 0; guard < 10; ++guard) {
    auto page = db->List(f);
    ASSERT_TRUE(page.ok()) << page.status().ToString();
    page_sizes.push_back(page->builds.size());
    for (const auto& b : page->builds) seen.push_back(b.id);
    if (page->next_page_token.empty()) break;
    f.page_token = page->next_page_token;
  }
  EXPECT_EQ(page_sizes, (std::vector<std::size_t>{50, 50, 20}));
  ASSERT_EQ(seen.size(), expected.size());
  for (std::size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i], expected[i].second) << i;
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()).size(), 120u);

  // Exactly one page: no token.
  ListFilter exact;
  exact.page_size = 120;
  auto all = db->List(exact);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->builds.size(), 120u);
  EXPECT_TRUE(all->next_page_token.empty());
}

TEST(JobDbTest, ListFilters) {
  TempDir dir;
  auto db = OpenOrDie(dir.path() + "/jobs.db");
  ASSERT_TRUE(db);
  ASSERT_TRUE(db->Submit(MakeRecord("a", "ice40", {{"team", "vision"}, {"ci", "yes"}})).ok());
  ASSERT_TRUE(db->Submit(MakeRecord("b", "ice40", {{"team", "vision"}})).ok());
  ASSERT_TRUE(db->Submit(MakeRecord("c", "ecp5", {{"team", "audio"}, {"ci", "yes"}})).ok());
  ASSERT_TRUE(db->Submit(MakeRecord("d", "ecp5")).ok());
  ASSERT_TRUE(db->RequestCancel("d").ok());

  auto ids = [&](ListFilter f) {
    std::set<std::string> out;
    auto page = db->List(f);
    EXPECT_TRUE(page.ok()) << page.status().ToString();
    if (page.ok()) {
      for (const auto& b : page->builds) out.insert(b.id);
    }
    return out;
  };
  using Ids = std::set<std::string>;
  ListFilter f;
  EXPECT_EQ(ids(f), (Ids{"a", "b", "c", "d"}));
  f.state = BuildState::kCancelled;
  EXPECT_EQ(ids(f), (Ids{"d"}));
  f.state = BuildState::kQueued;
  EXPECT_EQ(ids(f), (Ids{"a", "b", "c"}));
  f.board = "ecp5";
  EXPECT_EQ(ids(f), (Ids{"c"}));
  f = {};
  f.board = "ice40";
  EXPECT_EQ(ids(f), (Ids{"a", "b"}));
  f = {};
  f.labels = {{"team", "vision"}};
  EXPECT_EQ(ids(f), (Ids{"a", "b"}));
  f.labels = {{"team", "vision"}, {"ci", "yes"}};  // all must match
  EXPECT_EQ(ids(f), (Ids{"a"}));
  f.labels = {{"ci", "yes"}};
  EXPECT_EQ(ids(f), (Ids{"a", "c"}));
  f.labels = {{"ci", "no"}};
  EXPECT_EQ(ids(f), Ids{});
  f.board = "ecp5";
  f.labels = {{"ci", "yes"}};
  EXPECT_EQ(ids(f), (Ids{"c"}));

  // Filters and pagination together.
  ListFilter paged;
  paged.board = "ice40";
  paged.page_size = 1;
  auto p1 = db->List(paged);
  ASSERT_TRUE(p1.ok());
  ASSERT_EQ(p1->builds.size(), 1u);
  ASSERT_FALSE(p1->next_page_token.empty());
  paged.page_token = p1->next_page_token;
  auto p2 = db->List(paged);
  ASSERT_TRUE(p2.ok());
  ASSERT_EQ(p2->builds.size(), 1u);
  EXPECT_NE(p2->builds[0].id, p1->builds[0].id);
  EXPECT_TRUE(p2->next_page_token.empty());
}

TEST(JobDbTest, ListRejectsBadTokensAndPageSizes) {
  TempDir dir;
  auto db = OpenOrDie(dir.path() + "/jobs.db");
  ASSERT_TRUE(db);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(db->Submit(MakeRecord("b" + std::to_string(i))).ok());
  for (const char* token : {"not-a-token", "abc", "zz", "00", "76317c", "76317c787c61"}) {
    ListFilter f;
    f.page_token = token;
    auto page = db->List(f);
    ASSERT_FALSE(page.ok()) << token;
    EXPECT_EQ(page.status().code(), StatusCode::kInvalidArgument) << token;
    EXPECT_NE(page.status().message().find("page_token"), std::string::npos);
  }
  for (int size : {0, -1, 1001}) {
    ListFilter f;
    f.page_size = size;
    EXPECT_EQ(db->List(f).status().code(), StatusCode::kInvalidArgument) << size;
  }
  ListFilter max;
  max.page_size = 1000;
  EXPECT_TRUE(db->List(max).ok());
}

}  // namespace
}  // namespace fpgaserve::build
