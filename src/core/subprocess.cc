#include "core/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

extern char** environ;

namespace fpgaserve {

std::string SubprocessResult::Describe() const {
  if (cancelled) return "cancelled";
  if (timed_out) return "timed out";
  if (signaled) return "killed by signal " + std::to_string(signal);
  return "exit " + std::to_string(exit_code);
}

namespace {

struct Pipe {
  int fd[2] = {-1, -1};
  ~Pipe() {
    for (int f : fd) {
      if (f >= 0) ::close(f);
    }
  }
  void Close(int i) {
    if (fd[i] >= 0) ::close(fd[i]);
    fd[i] = -1;
  }
};

// Child side after fork: only async-signal-safe calls until exec.
[[noreturn]] void ExecChild(const std::vector<char*>& argv, const std::vector<char*>& envp,
                            const char* cwd, int in_fd, int out_fd, int err_fd, int report_fd, pid_t parent) {
  ::setpgid(0, 0);  // own process group, so a timeout kills the whole tree
  // If fpgaserve dies (a crash, kill -9), the tool dies with it instead of running on orphaned
  // (a restarted build server rebuilds from scratch and must not race a stale yosys).
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(127);
  ::dup2(in_fd, STDIN_FILENO);
  ::dup2(out_fd, STDOUT_FILENO);
  ::dup2(err_fd, STDERR_FILENO);
  if (cwd && ::chdir(cwd) != 0) {
    int e = errno;
    (void)!::write(report_fd, &e, sizeof e);
    ::_exit(127);
  }
  ::execvpe(argv[0], argv.data(), envp.data());
  int e = errno;
  (void)!::write(report_fd, &e, sizeof e);
  ::_exit(127);
}

}  // namespace

bool IsOnPath(const std::string& program) {
  const char* path = std::getenv("PATH");
  if (path == nullptr) return false;
  std::string rest = path;
  while (!rest.empty()) {
    const auto colon = rest.find(':');
    const std::string dir = rest.substr(0, colon);
    rest = colon == std::string::npos ? "" : rest.substr(colon + 1);
    if (dir.empty()) continue;
    const std::string p = dir + "/" + program;
    struct stat st {};
    if (::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(p.c_str(), X_OK) == 0) return true;
  }
  return false;
}

Result<SubprocessResult> RunSubprocess(const std::vector<std::string>& argv,
                                       const SubprocessOptions& options) {
  if (argv.empty() || argv[0].empty()) return InvalidArgument("RunSubprocess: empty argv");
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e) {
    std::string kv(*e);
    auto key = kv.substr(0, kv.find('='));
    if (!options.env_set.count(key)) env_strings.push_back(std::move(kv));
  }
  for (const auto& [k, v] : options.env_set) env_strings.push_back(k + "=" + v);
  std::vector<char*> cargv, cenv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  for (const auto& e : env_strings) cenv.push_back(const_cast<char*>(e.c_str()));
  cenv.push_back(nullptr);

  Pipe in, out, err, report;
  if (::pipe2(in.fd, O_CLOEXEC) || ::pipe2(out.fd, O_CLOEXEC) || ::pipe2(err.fd, O_CLOEXEC) ||
      ::pipe2(report.fd, O_CLOEXEC)) {
    return Internal(std::string("pipe: ") + std::strerror(errno));
  }
  const pid_t self = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) return Internal(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    ExecChild(cargv, cenv, options.working_dir.empty() ? nullptr : options.working_dir.c_str(),
              in.fd[0], out.fd[1], err.fd[1], report.fd[1], self);
  }
  ::setpgid(pid, pid);
  in.Close(0);
  out.Close(1);
  err.Close(1);
  report.Close(1);

  int exec_errno = 0;
  if (::read(report.fd[0], &exec_errno, sizeof exec_errno) == sizeof exec_errno) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    return NotFound("cannot run '" + argv[0] + "': " + std::strerror(exec_errno));
  }

  SubprocessResult result;
  ::signal(SIGPIPE, SIG_IGN);  // a child that exits without reading stdin must not kill us
  std::size_t written = 0;
  if (options.stdin_data.empty()) in.Close(1);
  const auto deadline = std::chrono::steady_clock::now() + options.timeout;
  char buf[65536];
  while (out.fd[0] >= 0 || err.fd[0] >= 0) {
    std::vector<pollfd> fds;
    if (out.fd[0] >= 0) fds.push_back({out.fd[0], POLLIN, 0});
    if (err.fd[0] >= 0) fds.push_back({err.fd[0], POLLIN, 0});
    if (in.fd[1] >= 0) fds.push_back({in.fd[1], POLLOUT, 0});
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      result.timed_out = true;
      ::kill(-pid, SIGKILL);
      break;
    }
    if (options.cancel != nullptr && options.cancel->load()) {
      result.cancelled = true;
      ::kill(-pid, SIGKILL);
      break;
    }
    const long tick = options.cancel != nullptr ? 100 : 1000;
    int n = ::poll(fds.data(), fds.size(), static_cast<int>(std::min<long>(left.count(), tick)));
    if (n < 0 && errno != EINTR) break;
    for (const auto& p : fds) {
      if (!p.revents) continue;
      if (p.fd == in.fd[1]) {
        ssize_t w = ::write(p.fd, options.stdin_data.data() + written,
                            options.stdin_data.size() - written);
        if (w > 0) written += static_cast<std::size_t>(w);
        if (w < 0 || written == options.stdin_data.size()) in.Close(1);
        continue;
      }
      ssize_t r = ::read(p.fd, buf, sizeof buf);
      std::string& sink = (p.fd == out.fd[0]) ? result.stdout_text : result.stderr_text;
      if (r <= 0) {
        (p.fd == out.fd[0]) ? out.Close(0) : err.Close(0);
        continue;
      }
      std::size_t room = options.max_output_bytes - std::min(options.max_output_bytes, sink.size());
      if (static_cast<std::size_t>(r) > room) result.output_truncated = true;
      sink.append(buf, std::min<std::size_t>(room, static_cast<std::size_t>(r)));
    }
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFSIGNALED(status)) {
    result.signaled = true;
    result.signal = WTERMSIG(status);
  } else if (WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
  }
  return result;
}

}  // namespace fpgaserve
