// Loopback servers for the store and build service tests: s3rver (npm, installed into build/npm by
// scripts/install-s3rver.sh) as a real S3 endpoint on an ephemeral port, a one-thread in-test HTTP
// server for scripted answers, and the process-group plumbing for servers run as children.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <regex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/file_io.h"
#include "importers/test_files.h"

extern char** environ;

namespace fpgaserve::testing {

inline std::string S3rverPath() {
  if (const char* p = std::getenv("FPGASERVE_S3RVER"); p != nullptr && *p) return p;
  return FPGASERVE_SOURCE_DIR "/build/npm/node_modules/.bin/s3rver";
}

// 127.0.0.1:port (0: any port).
inline sockaddr_in LoopbackAddress(int port = 0) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  return a;
}

// A port that nothing listens on (bound, then closed): free for a server to start on, or a
// connection that is refused.
inline int ClosedPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a = LoopbackAddress();
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// Whether something accepts connections on the loopback port.
inline bool Accepting(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a = LoopbackAddress(port);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

// This process's environment, as "NAME=value" strings.
inline std::vector<std::string> CurrentEnvironment() {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) env.emplace_back(*e);
  return env;
}

// Starts argv (argv[0] a path) with `env` as a child in its own process group, its stdout and
// stderr to `log`; the kernel kills it if this test process dies (PR_SET_PDEATHSIG). Returns its
// pid, for KillGroup.
inline pid_t SpawnGroup(std::vector<std::string> argv, const std::string& log,
                        std::vector<std::string> env = CurrentEnvironment()) {
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  std::vector<char*> cenv;
  for (auto& e : env) cenv.push_back(e.data());
  cenv.push_back(nullptr);
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid == 0) {
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    ::execve(cargv[0], cargv.data(), cenv.data());
    ::_exit(127);
  }
  ::setpgid(pid, pid);
  return pid;
}

// Kills the whole process group that SpawnGroup started and reaps its leader; pid becomes 0.
inline void KillGroup(pid_t& pid) {
  if (pid <= 0) return;
  ::kill(-pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  pid = 0;
}

// s3rver as a child in its own process group (SpawnGroup), killed by Stop() and the destructor.
class S3rver {
 public:
  explicit S3rver(const std::vector<std::string>& buckets) {
    log_ = dir_.path() + "/s3rver.log";
    std::vector<std::string> argv{S3rverPath(), "-d", dir_.path() + "/data", "-a", "127.0.0.1", "-p", "0",
                                  "--silent", "--service-endpoint", "localhost"};
    for (const auto& b : buckets) {
      argv.push_back("--configure-bucket");
      argv.push_back(b);
    }
    // s3rver's continuation tokens use DES, which Node's OpenSSL 3 only has in its legacy provider.
    std::vector<std::string> env{"NODE_OPTIONS=--openssl-legacy-provider"};
    for (auto& e : CurrentEnvironment()) {
      if (std::string_view(e).substr(0, 13) != "NODE_OPTIONS=") env.push_back(std::move(e));
    }
    pid_ = SpawnGroup(std::move(argv), log_, std::move(env));
    static const std::regex kListening("listening on [0-9.]+:([0-9]+)");
    for (int i = 0; i < 300 && port_ == 0; ++i) {  // up to 15 s
      auto text = ReadFile(log_, 1 << 20);
      std::smatch m;
      if (text.ok() && std::regex_search(*text, m, kListening)) {
        port_ = std::stoi(m[1]);
        break;
      }
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = 0;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  ~S3rver() { Stop(); }
  void Stop() { KillGroup(pid_); }
  int port() const { return port_; }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string data_dir() const { return dir_.path() + "/data"; }
  std::string Log() const {
    auto t = ReadFile(log_, 1 << 20);
    return t.ok() ? *t : "";
  }

 private:
  TempDir dir_;
  std::string log_;
  pid_t pid_ = 0;
  int port_ = 0;
};

// A one-thread HTTP server on loopback: each connection gets one request and one response from
// `handler` (raw bytes in, raw bytes out; index counts the requests from 0). Records every
// request. Stops in the destructor.
class TinyServer {
 public:
  using Handler = std::function<std::string(const std::string& request, int index)>;
  explicit TinyServer(Handler h) : handler_(std::move(h)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a = LoopbackAddress();
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(fd_, 16);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { Run(); });
  }
  ~TinyServer() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  int port() const { return port_; }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<std::string> requests() {
    std::lock_guard<std::mutex> l(mu_);
    return requests_;
  }

 private:
  void Run() {
    for (int handled = 0; !stop_;) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) continue;
      timeval tv{5, 0};
      ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      std::string req;
      char buf[65536];
      std::size_t need = std::string::npos;
      while (need == std::string::npos || req.size() < need) {
        ssize_t n = ::recv(c, buf, sizeof buf, 0);
        if (n <= 0) break;
        req.append(buf, static_cast<std::size_t>(n));
        auto end = req.find("\r\n\r\n");
        if (need == std::string::npos && end != std::string::npos) {
          std::size_t body = 0;
          std::smatch m;
          std::string head = req.substr(0, end);
          if (std::regex_search(head, m, std::regex("[Cc]ontent-[Ll]ength: *([0-9]+)"))) body = std::stoul(m[1]);
          need = end + 4 + body;
        }
      }
      {
        std::lock_guard<std::mutex> l(mu_);
        requests_.push_back(req);
      }
      std::string resp = handler_(req, handled++);
      ::send(c, resp.data(), resp.size(), MSG_NOSIGNAL);
      ::shutdown(c, SHUT_WR);
      ::close(c);
    }
  }

  Handler handler_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::string> requests_;
};

// The request target of a raw request: "/a?b" for "GET /a?b HTTP/1.1\r\n...".
inline std::string RequestTarget(const std::string& request) {
  auto sp1 = request.find(' ');
  auto sp2 = request.find(' ', sp1 + 1);
  return sp1 == std::string::npos ? "" : request.substr(sp1 + 1, sp2 - sp1 - 1);
}

// A complete HTTP/1.1 answer that closes the connection; extra_headers end in "\r\n".
inline std::string HttpResponse(int status, const std::string& reason, const std::string& body,
                                const std::string& extra_headers = "") {
  return "HTTP/1.1 " + std::to_string(status) + " " + reason + "\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\nConnection: close\r\n" + extra_headers + "\r\n" + body;
}

}  // namespace fpgaserve::testing
