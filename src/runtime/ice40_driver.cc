#include "runtime/ice40_driver.h"

#include <fcntl.h>
#include <poll.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <sstream>
#include <thread>

#include "boards/board.h"
#include "core/subprocess.h"
#include "core/text.h"
#include "runtime/batch_validation.h"
#include "runtime/uart_frames.h"

namespace fpgaserve::runtime {

namespace {

using Clock = std::chrono::steady_clock;

std::string Errno() { return std::strerror(errno); }


Result<speed_t> BaudConstant(int baud) {
  switch (baud) {
    case 9600: return B9600;
    case 19200: return B19200;
    case 38400: return B38400;
    case 57600: return B57600;
    case 115200: return B115200;
    case 230400: return B230400;
    case 460800: return B460800;
    case 921600: return B921600;
    case 1000000: return B1000000;
    case 2000000: return B2000000;
    case 3000000: return B3000000;
    default:
      return InvalidArgument("ice40: baud rate " + std::to_string(baud) +
                             " unsupported; expected a standard rate such as 115200");
  }
}

// A serial port in raw 8N1 mode; closed on destruction.
class SerialPort {
 public:
  SerialPort(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  SerialPort(const SerialPort&) = delete;
  SerialPort& operator=(const SerialPort&) = delete;
  ~SerialPort() {
    if (fd_ >= 0) close(fd_);
  }

  static Result<std::unique_ptr<SerialPort>> Open(const std::string& path, int baud) {
    ASSIGN_OR_RETURN(speed_t speed, BaudConstant(baud));
    const int fd = open(path.c_str(), O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
      const int err = errno;
      std::string hint = err == ENOENT ? " (is the icebreaker plugged in? set --serial or $" +
                                             std::string(kIce40SerialEnv) + ")"
                         : err == EACCES ? " (add yourself to the dialout group)"
                                         : "";
      return Unavailable("ice40: cannot open serial device " + path + ": " +
                         std::strerror(err) + hint);
    }
    auto port = std::make_unique<SerialPort>(fd, path);
    termios t{};
    if (tcgetattr(fd, &t) != 0) {
      return Unavailable("ice40: " + path + " is not a serial device: " + Errno());
    }
    cfmakeraw(&t);
    t.c_cflag |= CLOCAL | CREAD;
    t.c_cflag &= ~(CSTOPB | PARENB | CRTSCTS);
    t.c_cc[VMIN] = 0;
    t.c_cc[VTIME] = 0;
    if (cfsetispeed(&t, speed) != 0 || cfsetospeed(&t, speed) != 0 ||
        tcsetattr(fd, TCSANOW, &t) != 0) {
      return Unavailable("ice40: cannot configure " + path + " for " + std::to_string(baud) +
                         " baud 8N1: " + Errno());
    }
    port->Flush();
    return port;
  }

  const std::string& path() const { return path_; }

  // Drops whatever the board sent that nobody asked for.
  void Flush() { tcflush(fd_, TCIOFLUSH); }

  Status Write(const uart::Bytes& bytes, Clock::time_point deadline) {
    std::size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t n = write(fd_, bytes.data() + done, bytes.size() - done);
      if (n > 0) {
        done += static_cast<std::size_t>(n);
        continue;
      }
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        return Unavailable("ice40: writing to " + path_ + " failed: " + Errno());
      }
      RETURN_IF_ERROR(Wait(POLLOUT, deadline, "sending a request"));
    }
    return Status::Ok();
  }

  // Reads one response frame: skips bytes before the response sync, then reads the command and
  // the rest of a frame of `size` bytes (4 for an error frame).
  Result<uart::Bytes> ReadFrame(std::size_t size, Clock::time_point deadline) {
    uart::Bytes frame;
    while (true) {
      std::uint8_t b = 0;
      RETURN_IF_ERROR(ReadByte(b, deadline, frame.size(), size));
      if (frame.empty() && b != uart::kResponseSync) continue;
      frame.push_back(b);
      if (frame.size() == 2 && b == uart::kError) size = 4;
      if (frame.size() >= 2 && frame.size() == size) return frame;
    }
  }

 private:
  Status Wait(short events, Clock::time_point deadline, const std::string& what) {
    while (true) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) {
        return DeadlineExceeded("ice40: timed out " + what + " on " + path_);
      }
      pollfd p{fd_, events, 0};
      const int r = poll(&p, 1, static_cast<int>(left));
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return Unavailable("ice40: poll on " + path_ + " failed: " + Errno());
      if (r == 0) continue;  // re-check the deadline
      if ((p.revents & events) != 0) return Status::Ok();
      if ((p.revents & (POLLERR | POLLNVAL)) != 0) {
        return Unavailable("ice40: " + path_ + " reported an error (device unplugged?)");
      }
      // POLLHUP without data (a pty whose other side is closed): wait out the deadline slowly.
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }

  Status ReadByte(std::uint8_t& b, Clock::time_point deadline, std::size_t have,
                  std::size_t want) {
    while (true) {
      const ssize_t n = read(fd_, &b, 1);
      if (n == 1) return Status::Ok();
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != EIO) {
        return Unavailable("ice40: reading from " + path_ + " failed: " + Errno());
      }
      const std::string what =
          have == 0 ? "waiting for the board's answer (is the bitstream loaded and the baud "
                      "rate right?)"
                    : "after " + std::to_string(have) + " of " + std::to_string(want) +
                          " response bytes";
      RETURN_IF_ERROR(Wait(POLLIN, deadline, what));
    }
  }

  int fd_;
  std::string path_;
};

class Ice40Driver : public BoardDriver {
 public:
  Ice40Driver(firmware::BundleMetadata metadata, std::unique_ptr<SerialPort> port,
              uart::LinkInfo info, std::chrono::milliseconds frame_timeout)
      : metadata_(std::move(metadata)),
        port_(std::move(port)),
        info_(info),
        frame_timeout_(frame_timeout) {}

  std::string kind() const override { return "ice40"; }

  Result<BatchResult> Infer(const numeric::RawBatch& inputs) override {
    RETURN_IF_ERROR(ValidateInputBatch(inputs, metadata_));
    std::lock_guard<std::mutex> lock(mu_);  // the link is half duplex: one request at a time
    BatchResult r;
    r.outputs.rows = inputs.rows;
    r.outputs.features = static_cast<std::size_t>(info_.n_out);
    r.outputs.values.reserve(inputs.rows * r.outputs.features);
    r.latency_cycles.reserve(inputs.rows);
    const std::size_t response_size = uart::InferResponseSize(info_.n_out, info_.out_width);
    const bool out_signed = metadata_.output_format.raw_is_signed();
    std::vector<std::int64_t> row(inputs.features);
    for (std::size_t i = 0; i < inputs.rows; ++i) {
      std::copy_n(inputs.values.begin() + static_cast<std::ptrdiff_t>(i * inputs.features),
                  inputs.features, row.begin());
      ASSIGN_OR_RETURN(uart::Bytes request, uart::EncodeInferRequest(row, info_.in_width));
      const auto deadline = Clock::now() + frame_timeout_;
      Status st = port_->Write(request, deadline);
      Result<uart::Bytes> frame = st.ok()
                                      ? port_->ReadFrame(response_size, Clock::now() + frame_timeout_)
                                      : Result<uart::Bytes>(st);
      if (st.ok()) st = frame.status();
      if (!st.ok()) {
        port_->Flush();  // a late answer must not be taken for the next row's
        return Status(st.code(), st.message() + " (INFER, row " + std::to_string(i) + " of " +
                                     std::to_string(inputs.rows) + ")");
      }
      auto decoded = uart::DecodeInferResponse(*frame, info_.n_out, info_.out_width, out_signed);
      if (!decoded.ok()) {
        port_->Flush();
        return Internal("ice40 on " + port_->path() + ": INFER row " + std::to_string(i) + ": " +
                        decoded.status().message());
      }
      r.outputs.values.insert(r.outputs.values.end(), decoded->outputs.begin(),
                              decoded->outputs.end());
      r.latency_cycles.push_back(decoded->cycles);
      // Rows do not overlap on a half-duplex link: the board spends the sum of the stamps.
      r.total_cycles += decoded->cycles;
    }
    return r;
  }

 private:
  firmware::BundleMetadata metadata_;
  std::unique_ptr<SerialPort> port_;
  uart::LinkInfo info_;
  std::chrono::milliseconds frame_timeout_;
  std::mutex mu_;
};

Status CheckIce40Bundle(const firmware::BundleMetadata& m) {
  auto board = boards::FindBoard(m.board);
  if (!board.ok()) {
    return FailedPrecondition("ice40: the bundle is for board " + Quote(m.board) +
                              ", not in the board catalog; compile it with --board icebreaker");
  }
  if (board->family != "ice40") {
    return FailedPrecondition("ice40: the bundle is for board " + Quote(m.board) + " (family " +
                              board->family +
                              "); the ice40 driver needs a bundle compiled with --board "
                              "icebreaker");
  }
  if (m.bitstream.status != "built" || m.bitstream.path.empty()) {
    return FailedPrecondition(
        "ice40: the bundle has no built bitstream (status " + Quote(m.bitstream.status) +
        "); rebuild it with `fpgaserve compile --board " + m.board +
        "` on a machine with yosys, nextpnr-ice40 and icepack");
  }
  if (m.n_inputs < 1 || m.n_outputs < 1 || m.n_inputs > 0xffff || m.n_outputs > 0xffff) {
    return FailedPrecondition("ice40: the bundle's n_inputs " + std::to_string(m.n_inputs) +
                              " / n_outputs " + std::to_string(m.n_outputs) +
                              " do not fit the UART link (1..65535)");
  }
  return Status::Ok();
}

Status Program(const std::string& bitstream, const Ice40Options& o) {
  std::vector<std::string> argv{o.loader};
  argv.insert(argv.end(), o.loader_args.begin(), o.loader_args.end());
  argv.push_back(bitstream);
  SubprocessOptions so;
  so.timeout = o.program_timeout;
  so.cancel = o.cancel;
  auto run = RunSubprocess(argv, so);
  if (!run.ok()) {
    if (run.status().code() == StatusCode::kNotFound) {
      return FailedPrecondition("ice40: " + Quote(o.loader) +
                                " not found; programming the icebreaker needs openFPGALoader "
                                "(Debian/Ubuntu: apt install openfpgaloader): " +
                                run.status().message());
    }
    return run.status();
  }
  if (run->cancelled) return Cancelled("ice40: programming cancelled");
  if (!run->success()) {
    const std::string tail = LastLines(run->stderr_text + "\n" + run->stdout_text, 8);
    return Internal("ice40: " + o.loader + " failed (" + run->Describe() +
                    ") programming " + bitstream + (tail.empty() ? "" : ":\n" + tail));
  }
  return Status::Ok();
}

Result<uart::LinkInfo> QueryInfo(SerialPort& port, const Ice40Options& o) {
  Status last = Status::Ok();
  const int attempts = o.info_attempts < 1 ? 1 : o.info_attempts;
  for (int a = 0; a < attempts; ++a) {
    const auto deadline = Clock::now() + o.frame_timeout;
    RETURN_IF_ERROR(port.Write(uart::EncodeInfoRequest(), deadline));
    auto frame = port.ReadFrame(3 + uart::kInfoPayloadBytes, deadline);
    if (frame.ok()) {
      auto info = uart::DecodeInfoResponse(*frame);
      if (info.ok()) return info;
      last = Internal("ice40 on " + port.path() + ": INFO: " + info.status().message());
    } else {
      last = frame.status();
    }
    port.Flush();
  }
  if (last.code() == StatusCode::kDeadlineExceeded) {
    return DeadlineExceeded(last.message() + " (INFO, " + std::to_string(attempts) +
                            " attempt(s) of " + std::to_string(o.frame_timeout.count()) + " ms)");
  }
  return last;
}

std::uint32_t DesignIdOf(const std::string& bundle_id) {
  if (bundle_id.size() < 8) return 0;
  return static_cast<std::uint32_t>(std::strtoul(bundle_id.substr(0, 8).c_str(), nullptr, 16));
}

std::string Describe(const uart::LinkInfo& i) {
  char id[16];
  std::snprintf(id, sizeof id, "%08x", i.design_id);
  return "n_in " + std::to_string(i.n_in) + ", n_out " + std::to_string(i.n_out) +
         ", in_width " + std::to_string(i.in_width) + ", out_width " +
         std::to_string(i.out_width) + ", design " + id;
}

}  // namespace

Result<std::unique_ptr<BoardDriver>> OpenIce40Driver(const std::string& bundle_dir,
                                                     const firmware::BundleMetadata& m,
                                                     const Ice40Options& o) {
  RETURN_IF_ERROR(CheckIce40Bundle(m));
  // The sha256 check comes before the board sees anything from the bundle.
  RETURN_IF_ERROR(firmware::VerifyBundleFile(bundle_dir, m, m.bitstream.path));
  const std::string bitstream = (std::filesystem::path(bundle_dir) / m.bitstream.path).string();

  std::string device = o.serial_device;
  if (device.empty()) {
    const char* env = std::getenv(kIce40SerialEnv);
    device = env != nullptr && *env != '\0' ? env : kIce40DefaultSerial;
  }
  // Fail on a missing device before spending time programming.
  std::error_code ec;
  if (!std::filesystem::exists(device, ec)) {
    return Unavailable("ice40: serial device " + device +
                       " does not exist (is the icebreaker plugged in? set $" +
                       std::string(kIce40SerialEnv) + " or the serial device option)");
  }
  ASSIGN_OR_RETURN(speed_t speed, BaudConstant(o.baud));
  (void)speed;

  if (o.program) {
    RETURN_IF_ERROR(Program(bitstream, o));
    if (o.settle_time.count() > 0) std::this_thread::sleep_for(o.settle_time);
  }
  ASSIGN_OR_RETURN(std::unique_ptr<SerialPort> port, SerialPort::Open(device, o.baud));
  ASSIGN_OR_RETURN(uart::LinkInfo info, QueryInfo(*port, o));

  uart::LinkInfo want;
  want.n_in = static_cast<int>(m.n_inputs);
  want.n_out = static_cast<int>(m.n_outputs);
  want.in_width = m.input_format.width();
  want.out_width = m.output_format.width();
  want.design_id = DesignIdOf(m.id);
  if (info.n_in != want.n_in || info.n_out != want.n_out || info.in_width != want.in_width ||
      info.out_width != want.out_width || info.design_id != want.design_id) {
    return FailedPrecondition("ice40: the board on " + device +
                              " holds other firmware: it reports " + Describe(info) +
                              "; the bundle " + bundle_dir + " has " + Describe(want) +
                              (o.program ? "" : " (program the board, or drop no-program)"));
  }
  return std::unique_ptr<BoardDriver>(new Ice40Driver(m, std::move(port), info, o.frame_timeout));
}

}  // namespace fpgaserve::runtime
