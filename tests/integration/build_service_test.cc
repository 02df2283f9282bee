// Firmware-as-a-Service end to end (F6): a real `fpgaserve build-server` process on an ephemeral
// loopback port, driven by the real `fpgaserve build` client. Builds of the banknote model for
// the sim board and the iCE40 icebreaker (yosys, nextpnr, icepack), the cache, concurrent
// identical submits, cancel, kill -9 mid-build and restart, and the error paths.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <thread>

#include "core/file_io.h"
#include "core/sha256.h"
#include "core/subprocess.h"
#include "store/test_servers.h"

extern char** environ;

namespace fpgaserve {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

const std::string kBanknote = FPGASERVE_SOURCE_DIR "/examples/banknote/banknote.onnx";

struct Dir {
  fs::path path = fs::temp_directory_path() / ("fpgaserve_build_" + std::to_string(::getpid()) + "_" +
                                               std::to_string(std::random_device{}()));
  Dir() { fs::create_directories(path); }
  ~Dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

// `fpgaserve build-server` as a child process; stopped (SIGTERM, then SIGKILL) when destroyed.
class BuildServerProcess {
 public:
  // `store` empty: file://<root>/store.
  BuildServerProcess(const fs::path& root, std::vector<std::string> extra = {}, std::string store = "")
      : root_(root), store_(store.empty() ? "file://" + (root / "store").string() : store) {
    Start(extra);
  }
  ~BuildServerProcess() { Stop(); }

  void Start(const std::vector<std::string>& extra) {
    fs::create_directories(root_);
    const fs::path ready = root_ / "ready.json";
    fs::remove(ready);
    std::vector<std::string> argv{FPGASERVE_BINARY, "build-server", "--listen", "127.0.0.1:0",
                                  "--store",        store_,
                                  "--db",           (root_ / "jobs.db").string(),
                                  "--ready-file",   ready.string()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    std::vector<char*> cargv;
    for (auto& a : argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    log_ = (root_ / "server.log").string();
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 2, log_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);  // its own group: kill the toolchain with it
    posix_spawnattr_setpgroup(&attr, 0);
    EXPECT_EQ(posix_spawn(&pid_, cargv[0], &fa, &attr, cargv.data(), environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    for (int i = 0; i < 600 && !fs::exists(ready); ++i) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = 0;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    auto text = ReadFile(ready.string(), 1 << 16);
    ASSERT_TRUE(text.ok()) << "build server did not start; log:\n" << Log();
    port = json::parse(*text)["port"].get<int>();
  }

  void Stop() {
    if (pid_ <= 0) return;
    const pid_t group = pid_;
    ::kill(pid_, SIGTERM);
    int status = 0;
    for (int i = 0; i < 200; ++i) {
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = 0;
        ::kill(-group, SIGKILL);  // anything of its group still alive
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    KillNine();
  }

  // SIGKILL to the server and every tool it started (as a crash or an OOM kill would).
  void KillNine() {
    if (pid_ <= 0) return;
    const pid_t group = pid_;
    ::kill(-group, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = 0;
  }

  std::string Address() const { return "127.0.0.1:" + std::to_string(port); }
  std::string Log() const {
    auto t = ReadFile(log_, 1 << 20);
    return t.ok() ? *t : "";
  }
  int port = 0;

 private:
  fs::path root_;
  std::string store_;
  std::string log_;
  pid_t pid_ = 0;
};

// Sets environment variables for this process (and so the servers and clients it starts) and
// restores them when destroyed.
class EnvGuard {
 public:
  explicit EnvGuard(const std::map<std::string, std::string>& vars) {
    for (const auto& [k, v] : vars) {
      const char* old = std::getenv(k.c_str());
      saved_.emplace_back(k, old ? std::optional<std::string>(old) : std::nullopt);
      ::setenv(k.c_str(), v.c_str(), 1);
    }
  }
  ~EnvGuard() {
    for (const auto& [k, v] : saved_) {
      if (v) ::setenv(k.c_str(), v->c_str(), 1);
      else ::unsetenv(k.c_str());
    }
  }

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

struct Cli {
  int exit_code = -1;
  std::string out, err;
  json j;  // stdout parsed when it is JSON
};

Cli RunCli(const std::vector<std::string>& args, std::chrono::seconds timeout = std::chrono::seconds(280)) {
  std::vector<std::string> argv{FPGASERVE_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  SubprocessOptions o;
  o.timeout = timeout;
  auto r = RunSubprocess(argv, o);
  Cli c;
  if (!r.ok()) {
    c.err = r.status().ToString();
    return c;
  }
  c.exit_code = r->timed_out ? -2 : r->exit_code;
  c.out = r->stdout_text;
  c.err = r->stderr_text;
  c.j = json::parse(c.out, nullptr, false);
  return c;
}

std::vector<std::string> Client(const BuildServerProcess& s, std::vector<std::string> args) {
  args.push_back("--server");
  args.push_back(s.Address());
  args.push_back("--json");
  return args;
}

// Polls `build status` until the state is one of `states` (or the build ended); returns it.
std::string WaitForState(const BuildServerProcess& s, const std::string& id, const std::set<std::string>& states,
                         std::chrono::seconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  std::string state;
  while (std::chrono::steady_clock::now() < end) {
    auto st = RunCli(Client(s, {"build", "status", id}));
    if (st.exit_code == 0 && st.j.is_object()) {
      state = st.j["state"].get<std::string>();
      if (states.count(state) || state == "SUCCEEDED" || state == "FAILED" || state == "CANCELLED") return state;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return state;
}

// Every bundle file in `dir` matches metadata.json.
void ExpectBundleVerified(const fs::path& dir) {
  auto meta = ReadFile((dir / "metadata.json").string(), 1 << 24);
  ASSERT_TRUE(meta.ok()) << meta.status().ToString();
  const json m = json::parse(*meta);
  ASSERT_FALSE(m["files"].empty());
  for (const auto& f : m["files"]) {
    auto sha = Sha256File((dir / f["path"].get<std::string>()).string());
    ASSERT_TRUE(sha.ok()) << f["path"];
    EXPECT_EQ(*sha, f["sha256"].get<std::string>()) << f["path"];
  }
}

TEST(BuildServiceTest, SimBuildThenCacheHitThenGetVerifiesTheBundle) {
  Dir d;
  BuildServerProcess server(d.path);
  auto first = RunCli(Client(server, {"build", "submit", kBanknote, "--board", "sim", "--wait", "--name", "banknote",
                                      "--label", "team=lab"}));
  ASSERT_EQ(first.exit_code, 0) << first.err << "\nserver log:\n" << server.Log();
  ASSERT_TRUE(first.j.is_object()) << first.out;
  const std::string id = first.j["build_id"];
  EXPECT_EQ(id.size(), 64u);
  EXPECT_EQ(first.j["state"], "SUCCEEDED");
  EXPECT_EQ(first.j["cache_hit"], false);

  // The same model bytes and options: the same id, answered from the table.
  auto again = RunCli(Client(server, {"build", "submit", kBanknote, "--board", "sim"}));
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(again.j["build_id"], id);
  EXPECT_EQ(again.j["cache_hit"], true);
  EXPECT_EQ(again.j["state"], "SUCCEEDED");
  // Another option is another build.
  auto other = RunCli(Client(server, {"build", "submit", kBanknote, "--board", "sim", "--reuse", "4"}));
  ASSERT_EQ(other.exit_code, 0) << other.err;
  EXPECT_NE(other.j["build_id"], id);

  auto status = RunCli(Client(server, {"build", "status", id}));
  ASSERT_EQ(status.exit_code, 0) << status.err;
  EXPECT_EQ(status.j["board"], "sim");
  EXPECT_EQ(status.j["name"], "banknote");
  EXPECT_EQ(status.j["labels"]["team"], "lab");
  EXPECT_EQ(status.j["attempts"], 1);
  bool has_log = false, has_meta = false, has_rtl = false;
  for (const auto& a : status.j["artifacts"]) {
    has_log |= a["key"] == id + "/logs/build.log";
    has_meta |= a["key"] == id + "/metadata.json";
    has_rtl |= a["key"] == id + "/rtl.tar.gz";
  }
  EXPECT_TRUE(has_log && has_meta && has_rtl) << status.out;

  const fs::path out = d.path / "got";
  auto get = RunCli(Client(server, {"build", "get", id, "-o", out.string()}));
  ASSERT_EQ(get.exit_code, 0) << get.err;
  EXPECT_EQ(get.j["verified"], true);
  ExpectBundleVerified(out);
  EXPECT_TRUE(fs::exists(out / "sim" / "libfpgaserve_sim.so"));
  // The downloaded bundle runs: predict on the sim board.
  auto predict = RunCli({"predict", out.string(), "--data", FPGASERVE_SHARED_DIR "/data/banknote_authentication.csv",
                         "--label-column", "class", "--driver", "sim", "--json"});
  EXPECT_EQ(predict.exit_code, 0) << predict.err;

  auto list = RunCli(Client(server, {"build", "list", "--label", "team=lab"}));
  ASSERT_EQ(list.exit_code, 0) << list.err;
  ASSERT_EQ(list.j["builds"].size(), 1u);
  EXPECT_EQ(list.j["builds"][0]["build_id"], id);

  // A tampered download is caught.
  const fs::path out2 = d.path / "got2";
  {
    auto meta = ReadFile((d.path / "store" / id / "rtl.tar.gz").string());
    ASSERT_TRUE(meta.ok());
    ASSERT_TRUE(WriteFileAtomic((d.path / "store" / id / "rtl.tar.gz").string(), *meta + "x").ok());
  }
  auto bad = RunCli(Client(server, {"build", "get", id, "-o", out2.string()}));
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("sha256"), std::string::npos) << bad.err;
}

TEST(BuildServiceTest, BadRequestsGetClearErrors) {
  Dir d;
  ASSERT_TRUE(WriteFileAtomic((d.path / "token").string(), "s3cret-token\n").ok());
  ASSERT_TRUE(WriteFileAtomic((d.path / "wrong").string(), "not-the-token\n").ok());
  ASSERT_TRUE(WriteFileAtomic((d.path / "corrupt.onnx").string(), std::string("\x08\x07garbage-bytes", 15)).ok());
  BuildServerProcess server(d.path, {"--token-file", (d.path / "token").string()});
  const std::string token = (d.path / "token").string();

  auto none = RunCli(Client(server, {"build", "submit", kBanknote, "--board", "sim"}));
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_NE(none.err.find("authorization"), std::string::npos) << none.err;
  auto wrong = RunCli(Client(server, {"build", "list", "--token-file", (d.path / "wrong").string()}));
  EXPECT_EQ(wrong.exit_code, 2);
  EXPECT_NE(wrong.err.find("invalid bearer token"), std::string::npos) << wrong.err;
  EXPECT_EQ(wrong.err.find("s3cret"), std::string::npos) << "a token leaked into a message: " << wrong.err;

  auto board = RunCli(Client(server, {"build", "submit", kBanknote, "--board", "nosuchboard", "--token-file", token}));
  EXPECT_EQ(board.exit_code, 2);
  EXPECT_NE(board.err.find("nosuchboard"), std::string::npos) << board.err;

  auto corrupt = RunCli(Client(server, {"build", "submit", (d.path / "corrupt.onnx").string(), "--board", "sim",
                                        "--token-file", token}));
  EXPECT_EQ(corrupt.exit_code, 2);
  EXPECT_NE(corrupt.err.find("corrupt.onnx"), std::string::npos) << corrupt.err;

  auto missing = RunCli(Client(server, {"build", "submit", "file://" + (d.path / "store/models/none.onnx").string(),
                                        "--board", "sim", "--token-file", token}));
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find("none.onnx"), std::string::npos) << missing.err;

  auto bad_id = RunCli(Client(server, {"build", "status", "../../etc/passwd", "--token-file", token}));
  EXPECT_EQ(bad_id.exit_code, 2);
  EXPECT_NE(bad_id.err.find("64 lowercase hex"), std::string::npos) << bad_id.err;
  auto unknown = RunCli(Client(server, {"build", "status", std::string(64, 'a'), "--token-file", token}));
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_NE(unknown.err.find("no build"), std::string::npos) << unknown.err;

  auto engine = RunCli(Client(server, {"build", "submit", kBanknote, "--board", "sim", "--engine", "vivado-hls",
                                       "--token-file", token}));
  EXPECT_EQ(engine.exit_code, 2);
  EXPECT_NE(engine.err.find("engine 'vivado-hls'"), std::string::npos) << engine.err;

  // No server there at all.
  auto down = RunCli({"build", "list", "--server", "127.0.0.1:1", "--json"});
  EXPECT_NE(down.exit_code, 0);
  EXPECT_NE(down.err.find("127.0.0.1:1"), std::string::npos) << down.err;
}

TEST(BuildServiceTest, ConcurrentIdenticalSubmitsMakeOneBuild) {
  Dir d;
  BuildServerProcess server(d.path, {"--workers", "2"});
  Cli a, b;
  std::thread t1([&] { a = RunCli(Client(server, {"build", "submit", kBanknote, "--board", "sim", "--reuse", "2", "--wait"})); });
  std::thread t2([&] { b = RunCli(Client(server, {"build", "submit", kBanknote, "--board", "sim", "--reuse", "2", "--wait"})); });
  t1.join();
  t2.join();
  ASSERT_EQ(a.exit_code, 0) << a.err << server.Log();
  ASSERT_EQ(b.exit_code, 0) << b.err;
  EXPECT_EQ(a.j["build_id"], b.j["build_id"]);
  EXPECT_EQ(a.j["state"], "SUCCEEDED");
  EXPECT_EQ(b.j["state"], "SUCCEEDED");
  EXPECT_NE(a.j["cache_hit"], b.j["cache_hit"]) << "exactly one submit created the build";
  auto list = RunCli(Client(server, {"build", "list"}));
  ASSERT_EQ(list.exit_code, 0) << list.err;
  ASSERT_EQ(list.j["builds"].size(), 1u);
  EXPECT_EQ(list.j["builds"][0]["attempts"], 1);
}

TEST(BuildServiceTest, CancelStopsARunningIcebreakerBuild) {
  Dir d;
  BuildServerProcess server(d.path);
  auto sub = RunCli(Client(server, {"build", "submit", kBanknote, "--board", "icebreaker"}));
  ASSERT_EQ(sub.exit_code, 0) << sub.err;
  const std::string id = sub.j["build_id"];
  const std::string state = WaitForState(server, id, {"SYNTHESIZING", "PLACING"}, std::chrono::seconds(120));
  ASSERT_TRUE(state == "SYNTHESIZING" || state == "PLACING") << state << "\n" << server.Log();
  const auto t0 = std::chrono::steady_clock::now();
  auto cancel = RunCli(Client(server, {"build", "cancel", id}));
  ASSERT_EQ(cancel.exit_code, 0) << cancel.err;
  EXPECT_EQ(WaitForState(server, id, {}, std::chrono::seconds(30)), "CANCELLED");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10)) << "the toolchain was not stopped promptly";
  auto status = RunCli(Client(server, {"build", "status", id}));
  EXPECT_NE(status.j["message"].get<std::string>().find("cancelled"), std::string::npos) << status.out;
  EXPECT_TRUE(status.j["artifacts"].empty());
  // A cancelled build can be submitted again (it is queued afresh).
  auto retry = RunCli(Client(server, {"build", "submit", kBanknote, "--board", "icebreaker"}));
  EXPECT_EQ(retry.j["build_id"], id);
  EXPECT_EQ(retry.j["cache_hit"], false);
  RunCli(Client(server, {"build", "cancel", id}));
}

// The acceptance: kill -9 the server mid-build, start it again on the same table and store, and
// the build finishes with complete artifacts.
TEST(BuildServiceTest, KillNineMidBuildThenRestartFinishesTheBuild) {
  Dir d;
  std::string id;
  {
    BuildServerProcess server(d.path);
    auto sub = RunCli(Client(server, {"build", "submit", kBanknote, "--board", "icebreaker"}));
    ASSERT_EQ(sub.exit_code, 0) << sub.err;
    id = sub.j["build_id"];
    const std::string state = WaitForState(server, id, {"SYNTHESIZING", "PLACING"}, std::chrono::seconds(120));
    ASSERT_TRUE(state == "SYNTHESIZING" || state == "PLACING") << state << "\n" << server.Log();
    server.KillNine();
  }
  BuildServerProcess restarted(d.path);
  auto wait = RunCli(Client(restarted, {"build", "submit", kBanknote, "--board", "icebreaker", "--wait"}));
  ASSERT_EQ(wait.exit_code, 0) << wait.err << "\n" << restarted.Log();
  EXPECT_EQ(wait.j["build_id"], id);
  EXPECT_EQ(wait.j["state"], "SUCCEEDED");
  auto status = RunCli(Client(restarted, {"build", "status", id}));
  EXPECT_EQ(status.j["attempts"], 2) << "rebuilt once after the restart";
  const fs::path out = d.path / "bundle";
  auto get = RunCli(Client(restarted, {"build", "get", id, "-o", out.string()}));
  ASSERT_EQ(get.exit_code, 0) << get.err;
  ExpectBundleVerified(out);
  auto meta = json::parse(*ReadFile((out / "metadata.json").string()));
  EXPECT_EQ(meta["board"], "icebreaker");
  EXPECT_EQ(meta["bitstream"]["status"], "built");
  EXPECT_TRUE(fs::exists(out / meta["bitstream"]["path"].get<std::string>()));
}

// An external engine through the server: without its program the submit is refused with
// FAILED_PRECONDITION naming it; with a (fake) `bondmachine` on PATH that checks its arguments,
// the build succeeds and the tool's outputs are the artifacts.
TEST(BuildServiceTest, ExternalEngineNeedsItsProgramThenBuildsWithIt) {
  Dir d;
  const fs::path bin = d.path / "bin";
  fs::create_directories(bin);
  {
    BuildServerProcess server(d.path / "no-tool");
    auto missing = RunCli(Client(server, {"build", "submit", kBanknote, "--board", "zedboard", "--engine", "bondmachine"}));
    EXPECT_EQ(missing.exit_code, 2);
    EXPECT_NE(missing.err.find("`bondmachine` program on PATH"), std::string::npos) << missing.err;
  }
  ASSERT_TRUE(WriteFileAtomic((bin / "bondmachine").string(),
                              "#!/bin/sh\n"
                              "[ \"$1\" = -neuralbond-json ] && [ -s \"$2\" ] && [ \"$3\" = -board ] && [ \"$4\" = zedboard ] "
                              "&& [ \"$5\" = -o ] || { echo \"bad arguments: $*\" >&2; exit 2; }\n"
                              "grep -q '\"Nodes\"' \"$2\" || { echo 'not neuralbond JSON' >&2; exit 2; }\n"
                              "mkdir -p \"$6\" && echo 'fake bitstream' > \"$6/bondmachine.bit\"\n")
                  .ok());
  fs::permissions(bin / "bondmachine", fs::perms::owner_all);
  const char* path = std::getenv("PATH");
  EnvGuard env({{"PATH", bin.string() + ":" + (path ? path : "/usr/bin:/bin")}});
  BuildServerProcess server(d.path / "tool");
  auto built = RunCli(Client(server, {"build", "submit", kBanknote, "--board", "zedboard", "--engine", "bondmachine",
                                      "--wait"}));
  ASSERT_EQ(built.exit_code, 0) << built.err << "\n" << server.Log();
  const std::string id = built.j["build_id"];
  auto status = RunCli(Client(server, {"build", "status", id}));
  EXPECT_EQ(status.j["engine"], "bondmachine");
  bool bit = false;
  for (const auto& a : status.j["artifacts"]) bit |= a["key"] == id + "/bondmachine.bit";
  EXPECT_TRUE(bit) << status.out;
}

// Limits: a model above --max-model-bytes is refused at submit; a build that runs past
// --build-timeout has its toolchain stopped and ends FAILED with DEADLINE_EXCEEDED.
TEST(BuildServiceTest, ModelSizeAndBuildTimeLimits) {
  Dir d;
  BuildServerProcess server(d.path, {"--max-model-bytes", "1000", "--build-timeout", "3"});
  auto big = RunCli(Client(server, {"build", "submit", kBanknote, "--board", "sim"}));
  EXPECT_EQ(big.exit_code, 2);
  EXPECT_NE(big.err.find("1000"), std::string::npos) << big.err;
  BuildServerProcess roomy(d.path / "roomy", {"--build-timeout", "3"});
  const auto t0 = std::chrono::steady_clock::now();
  auto slow = RunCli(Client(roomy, {"build", "submit", kBanknote, "--board", "icebreaker", "--wait"}));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(30));
  EXPECT_NE(slow.exit_code, 0);
  EXPECT_EQ(slow.j["state"], "FAILED") << slow.out << slow.err;
  auto status = RunCli(Client(roomy, {"build", "status", slow.j.value("build_id", std::string())}));
  EXPECT_EQ(status.j["error_code"], "DEADLINE_EXCEEDED") << status.out;
  EXPECT_NE(status.j["message"].get<std::string>().find("--build-timeout"), std::string::npos) << status.out;
}

// TLS: with --tls-cert/--tls-key the server speaks only TLS; a client trusting the certificate
// (--tls-ca) works, a plaintext client does not.
TEST(BuildServiceTest, TlsServerNeedsATlsClient) {
  Dir d;
  SubprocessOptions o;
  o.working_dir = d.path.string();
  auto gen = RunSubprocess({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                            "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout",
                            "key.pem", "-out", "cert.pem"},
                           o);
  if (!gen.ok()) GTEST_SKIP() << "openssl not found: " << gen.status().ToString();
  ASSERT_TRUE(gen->success()) << gen->stderr_text;
  BuildServerProcess server(d.path, {"--tls-cert", (d.path / "cert.pem").string(), "--tls-key",
                                     (d.path / "key.pem").string()});
  auto tls = RunCli(Client(server, {"build", "list", "--tls-ca", (d.path / "cert.pem").string()}));
  EXPECT_EQ(tls.exit_code, 0) << tls.err;
  EXPECT_TRUE(tls.j["builds"].empty());
  auto plain = RunCli(Client(server, {"build", "list"}), std::chrono::seconds(60));
  EXPECT_NE(plain.exit_code, 0);
}

std::map<std::string, std::string> S3Env(const std::string& endpoint, const std::string& key = "S3RVER") {
  return {{"AWS_ACCESS_KEY_ID", key},
          {"AWS_SECRET_ACCESS_KEY", "S3RVER"},
          {"AWS_DEFAULT_REGION", "us-east-1"},
          {"AWS_ENDPOINT_URL", endpoint},
          {"S3_USE_HTTPS", "0"}};
}

// The store is S3 (s3rver on loopback): a local model is uploaded there by the client, the
// server builds banknote for sim and icebreaker and uploads the artifacts, Debian's awscli reads
// them back, and `build get` verifies them.
TEST(BuildServiceTest, S3StoreBuildsForSimAndIcebreakerAndAwsCliReadsThem) {
  if (!fs::exists(testing::S3rverPath())) GTEST_SKIP() << "s3rver not installed (scripts/install-s3rver.sh)";
  testing::S3rver s3({"firmware"});
  ASSERT_NE(s3.port(), 0) << s3.Log();
  EnvGuard env(S3Env(s3.endpoint()));
  Dir d;
  BuildServerProcess server(d.path, {}, "s3://firmware/builds");
  for (const std::string board : {"sim", "icebreaker"}) {
    SCOPED_TRACE(board);
    auto sub = RunCli(Client(server, {"build", "submit", kBanknote, "--board", board, "--wait"}));
    ASSERT_EQ(sub.exit_code, 0) << sub.err << "\n" << server.Log();
    EXPECT_EQ(sub.j["state"], "SUCCEEDED");
    const std::string id = sub.j["build_id"];
    auto again = RunCli(Client(server, {"build", "submit", kBanknote, "--board", board}));
    EXPECT_EQ(again.j["build_id"], id);
    EXPECT_EQ(again.j["cache_hit"], true);
    const fs::path out = d.path / ("got-" + board);
    auto get = RunCli(Client(server, {"build", "get", id, "-o", out.string()}));
    ASSERT_EQ(get.exit_code, 0) << get.err;
    ExpectBundleVerified(out);
    // awscli sees the same bytes under <prefix>/<id>/.
    SubprocessOptions o;
    o.timeout = std::chrono::seconds(60);
    auto cat = RunSubprocess({"/usr/bin/aws", "--endpoint-url", s3.endpoint(), "s3", "cp",
                              "s3://firmware/builds/" + id + "/metadata.json", "-"}, o);
    ASSERT_TRUE(cat.ok() && cat->success()) << (cat.ok() ? cat->stderr_text : cat.status().ToString());
    EXPECT_EQ(cat->stdout_text, *ReadFile((out / "metadata.json").string()));
    auto ls = RunSubprocess({"/usr/bin/aws", "--endpoint-url", s3.endpoint(), "s3", "ls", "--recursive",
                             "s3://firmware/builds/" + id + "/"}, o);
    ASSERT_TRUE(ls.ok() && ls->success());
    EXPECT_NE(ls->stdout_text.find(id + "/logs/build.log"), std::string::npos) << ls->stdout_text;
    EXPECT_NE(ls->stdout_text.find(id + "/rtl.tar.gz"), std::string::npos) << ls->stdout_text;
  }
}

// S3 failures reach the client as clear statuses: a missing bucket, refused credentials (403),
// an endpoint nobody listens on.
TEST(BuildServiceTest, S3FailuresGetClearErrors) {
  if (!fs::exists(testing::S3rverPath())) GTEST_SKIP() << "s3rver not installed (scripts/install-s3rver.sh)";
  testing::S3rver s3({"firmware", "models"});
  ASSERT_NE(s3.port(), 0) << s3.Log();
  Dir d;
  {
    EnvGuard env(S3Env(s3.endpoint()));
    SubprocessOptions o;
    auto up = RunSubprocess({"/usr/bin/aws", "--endpoint-url", s3.endpoint(), "s3", "cp", kBanknote,
                             "s3://models/banknote.onnx"}, o);
    ASSERT_TRUE(up.ok() && up->success()) << (up.ok() ? up->stderr_text : "");
    BuildServerProcess server(d.path / "a", {}, "s3://firmware/builds");
    // A model awscli uploaded builds from its s3:// URI.
    auto ok = RunCli(Client(server, {"build", "submit", "s3://models/banknote.onnx", "--board", "sim", "--wait"}));
    EXPECT_EQ(ok.exit_code, 0) << ok.err;
    auto bucket = RunCli(Client(server, {"build", "submit", "s3://nosuchbucket/banknote.onnx", "--board", "sim"}));
    EXPECT_EQ(bucket.exit_code, 2);
    EXPECT_NE(bucket.err.find("nosuchbucket"), std::string::npos) << bucket.err;
    auto key = RunCli(Client(server, {"build", "submit", "s3://models/missing.onnx", "--board", "sim"}));
    EXPECT_EQ(key.exit_code, 2);
    EXPECT_NE(key.err.find("missing.onnx"), std::string::npos) << key.err;
  }
  {
    EnvGuard env(S3Env(s3.endpoint(), "WRONGKEY"));
    BuildServerProcess server(d.path / "b", {}, "s3://firmware/builds");
    auto denied = RunCli(Client(server, {"build", "submit", "s3://models/banknote.onnx", "--board", "sim"}));
    EXPECT_EQ(denied.exit_code, 2);
    EXPECT_NE(denied.err.find("403"), std::string::npos) << denied.err;
    EXPECT_EQ(denied.err.find("S3RVER"), std::string::npos) << "a secret leaked: " << denied.err;
  }
  {
    const std::string dead_port = std::to_string(testing::ClosedPort());
    const std::string dead = "http://127.0.0.1:" + dead_port;
    EnvGuard env(S3Env(dead));
    BuildServerProcess server(d.path / "c", {}, "s3://firmware/builds");
    auto down = RunCli(Client(server, {"build", "submit", "s3://models/banknote.onnx", "--board", "sim"}));
    EXPECT_NE(down.exit_code, 0);
    EXPECT_NE(down.err.find("127.0.0.1:" + dead_port), std::string::npos) << down.err;
  }
}

}  // namespace
}  // namespace fpgaserve
