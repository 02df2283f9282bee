// grpc_h2load: a lean gRPC load generator for the KServe V2 ModelInfer, speaking gRPC's HTTP/2
// mapping itself (libnghttp2 for framing and HPACK) on one event-loop thread per connection —
// the gRPC counterpart of wrk. bench/grpc_load (the gRPC C++ client) needs 40-80 us of CPU per
// call on this 2-core machine, as much as the server, so on a shared box it measures the client
// as much as the server; this one needs a few us.
//
// Each call is a POST /inference.GRPCInferenceService/ModelInfer with the length-prefixed
// protobuf request (one 4-feature FP32 banknote sample). A call counts as OK only when the HTTP
// status is 200, the trailers carry grpc-status 0 and the body is one length-prefixed
// ModelInferResponse that parses and has output data; anything else is an error, counted by kind.
// Latency runs from handing the request to the socket layer to the end of the stream.
//
// With --rate R each of the --concurrency slots follows a fixed schedule of R/C calls/s,
// staggered across slots; a late slot sends at once but never has two calls in flight.
//
//   grpc_h2load --target 127.0.0.1:8081 --model banknote --duration 10 --concurrency 16
//               [--connections 1] [--rate 2000] [--raw] [--json]
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <poll.h>
#include <time.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "grpc_service.pb.h"
#include "load_report.h"

namespace {

namespace pb = inference;
using Clock = std::chrono::steady_clock;

struct Options {
  std::string target;
  std::string model = "banknote";
  std::string input = "input";
  double duration_s = 10;
  int concurrency = 1;
  int connections = 1;
  double rate = 0;
  bool raw = false;
  bool json = false;
};

// The gRPC message: 1 byte "not compressed", 4 bytes big-endian length, the protobuf.
std::string MakeBody(const Options& o) {
  const std::string msg = loadgen::BanknoteRequest(o.model, o.input, o.raw).SerializeAsString();
  std::string body(5, '\0');
  const auto n = static_cast<std::uint32_t>(msg.size());
  body[1] = static_cast<char>(n >> 24);
  body[2] = static_cast<char>(n >> 16);
  body[3] = static_cast<char>(n >> 8);
  body[4] = static_cast<char>(n);
  return body + msg;
}

// One HTTP/2 connection and the slots (request positions) it drives.
class Connection {
 public:
  Connection(const Options& o, const std::string& body, int first_slot, int n_slots, int slot_stride,
             Clock::time_point start, Clock::time_point end)
      : o_(o), body_(body), start_(start), end_(end) {
    const bool paced = o.rate > 0;
    period_ = paced ? std::chrono::nanoseconds(static_cast<std::int64_t>(o.concurrency * 1e9 / o.rate))
                    : std::chrono::nanoseconds(0);
    for (int k = 0; k < n_slots; ++k) {
      Slot s;
      s.next = start + period_ * (first_slot + k * slot_stride) / o.concurrency;
      slots_.push_back(s);
    }
    offsets_.assign(slots_.size(), 0);
    path_ = "/inference.GRPCInferenceService/ModelInfer";
    result_.latency_ns.reserve(paced ? static_cast<std::size_t>(o.rate * o.duration_s * n_slots / o.concurrency * 1.1) + 16
                                     : 1 << 18);
  }
  ~Connection() {
    if (session_) nghttp2_session_del(session_);
    if (fd_ >= 0) close(fd_);
  }

  void Run() {
    if (!Connect()) return;
    while (active_ > 0 || in_flight_ > 0) {
      const auto now = Clock::now();
      StartDue(now);
      if (!Flush()) return;
      if (active_ == 0 && in_flight_ == 0) break;
      // Sleep until the socket has data or the next paced slot is due (ppoll: ns resolution).
      std::int64_t wait_ns = 100'000'000;
      if (period_.count() > 0) {
        Clock::time_point due = Clock::time_point::max();
        for (const auto& s : slots_) {
          if (!s.in_flight && !s.done) due = std::min(due, s.next);
        }
        if (due != Clock::time_point::max()) {
          wait_ns = std::clamp<std::int64_t>((due - Clock::now()).count(), 0, wait_ns);
        }
      }
      const timespec timeout{static_cast<time_t>(wait_ns / 1'000'000'000), static_cast<long>(wait_ns % 1'000'000'000)};
      pollfd p{fd_, POLLIN, 0};
      if (nghttp2_session_want_write(session_)) p.events |= POLLOUT;
      const int r = ppoll(&p, 1, &timeout, nullptr);
      if (r < 0 && errno != EINTR) return Fail(std::string("poll: ") + std::strerror(errno));
      if (r > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR))) {
        if (!Read()) return;
      }
    }
  }

  loadgen::Record& result() { return result_; }
  const std::string& fatal() const { return fatal_; }

 private:
  struct Slot {
    Clock::time_point next;  // paced: when the next call is due
    Clock::time_point sent;
    std::int32_t stream = -1;
    bool in_flight = false;
    bool done = false;  // the run is over for this slot
    int http_status = 0;
    int grpc_status = -1;
    std::string grpc_message;
    std::string body;
  };

  bool Connect() {
    const auto colon = o_.target.rfind(':');
    if (colon == std::string::npos) return Fail("--target " + o_.target + ": expected host:port"), false;
    std::string host = o_.target.substr(0, colon);
    const std::string port = o_.target.substr(colon + 1);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* ai = nullptr;
    if (getaddrinfo(host.c_str(), port.c_str(), &hints, &ai) != 0 || !ai) {
      return Fail("cannot resolve " + o_.target), false;
    }
    fd_ = socket(ai->ai_family, SOCK_STREAM, 0);
    const int rc = fd_ < 0 ? -1 : connect(fd_, ai->ai_addr, ai->ai_addrlen);
    freeaddrinfo(ai);
    if (rc != 0) return Fail("cannot connect to " + o_.target + ": " + std::strerror(errno)), false;
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(fd_, F_SETFL, fcntl(fd_, F_GETFL) | O_NONBLOCK);

    nghttp2_session_callbacks* cb = nullptr;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_on_header_callback(cb, &Connection::OnHeader);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, &Connection::OnData);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, &Connection::OnClose);
    nghttp2_session_client_new(&session_, cb, this);
    nghttp2_session_callbacks_del(cb);
    // A large window so that flow control never paces the run.
    nghttp2_settings_entry settings[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 1024},
                                         {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 24}};
    nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, 2);
    nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, 1 << 30);
    for (auto& s : slots_) active_ += s.next < end_ ? 1 : 0;
    for (auto& s : slots_) s.done = !(s.next < end_);
    return true;
  }

  void Fail(const std::string& why) {
    if (fatal_.empty()) fatal_ = why;
    active_ = 0;
    in_flight_ = 0;
  }

  // Starts every slot that is due (unpaced: every idle slot) while the run lasts.
  void StartDue(Clock::time_point now) {
    for (std::size_t i = 0; i < slots_.size(); ++i) {
      Slot& s = slots_[i];
      if (s.in_flight || s.done) continue;
      if (period_.count() == 0) {
        if (now >= end_) {
          s.done = true;
          --active_;
          continue;
        }
      } else {
        if (s.next >= end_) {
          s.done = true;
          --active_;
          continue;
        }
        if (s.next > now) continue;
        s.next += period_;
      }
      Send(i);
    }
  }

  static ssize_t ReadBody(nghttp2_session*, std::int32_t, std::uint8_t* buf, std::size_t length,
                          std::uint32_t* flags, nghttp2_data_source* source, void* user) {
    auto* c = static_cast<Connection*>(user);
    auto* offset = static_cast<std::size_t*>(source->ptr);
    const std::size_t n = std::min(length, c->body_.size() - *offset);
    std::memcpy(buf, c->body_.data() + *offset, n);
    *offset += n;
    if (*offset == c->body_.size()) *flags |= NGHTTP2_DATA_FLAG_EOF;
    return static_cast<ssize_t>(n);
  }

  void Send(std::size_t i) {
    Slot& s = slots_[i];
    auto nv = [](const char* name, const std::string& value) {
      return nghttp2_nv{reinterpret_cast<std::uint8_t*>(const_cast<char*>(name)),
                        reinterpret_cast<std::uint8_t*>(const_cast<char*>(value.data())), std::strlen(name),
                        value.size(), NGHTTP2_NV_FLAG_NONE};
    };
    static const std::string kPost = "POST", kHttp = "http", kGrpc = "application/grpc", kTrailers = "trailers";
    const nghttp2_nv headers[] = {nv(":method", kPost),          nv(":scheme", kHttp),
                                  nv(":path", path_),            nv(":authority", o_.target),
                                  nv("content-type", kGrpc),     nv("te", kTrailers)};
    offsets_[i] = 0;
    nghttp2_data_provider data{};
    data.source.ptr = &offsets_[i];
    data.read_callback = &Connection::ReadBody;
    s.http_status = 0;
    s.grpc_status = -1;
    s.grpc_message.clear();
    s.body.clear();
    s.sent = Clock::now();
    s.stream = nghttp2_submit_request(session_, nullptr, headers, std::size(headers), &data, &slots_[i]);
    if (s.stream < 0) return Fail(std::string("nghttp2_submit_request: ") + nghttp2_strerror(s.stream));
    s.in_flight = true;
    ++in_flight_;
  }

  // Writes what nghttp2 has queued; false on a dead connection.
  bool Flush() {
    for (;;) {
      const std::uint8_t* data = nullptr;
      const ssize_t n = nghttp2_session_mem_send(session_, &data);
      if (n < 0) return Fail(std::string("nghttp2: ") + nghttp2_strerror(static_cast<int>(n))), false;
      if (n == 0) return true;
      ssize_t off = 0;
      while (off < n) {
        const ssize_t w = send(fd_, data + off, static_cast<std::size_t>(n - off), MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
          pollfd p{fd_, POLLOUT, 0};
          poll(&p, 1, 1000);
          continue;
        }
        if (w <= 0) return Fail(std::string("send: ") + std::strerror(errno)), false;
        off += w;
      }
    }
  }

  bool Read() {
    std::uint8_t buf[65536];
    for (;;) {
      const ssize_t n = recv(fd_, buf, sizeof buf, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;
      if (n == 0) return Fail("the server closed the connection"), false;
      if (n < 0) return Fail(std::string("recv: ") + std::strerror(errno)), false;
      const ssize_t used = nghttp2_session_mem_recv(session_, buf, static_cast<std::size_t>(n));
      if (used < 0) return Fail(std::string("nghttp2: ") + nghttp2_strerror(static_cast<int>(used))), false;
      if (static_cast<std::size_t>(n) < sizeof buf) return true;
    }
  }

  static Slot* SlotOf(nghttp2_session* session, std::int32_t stream) {
    return static_cast<Slot*>(nghttp2_session_get_stream_user_data(session, stream));
  }

  static int OnHeader(nghttp2_session* session, const nghttp2_frame* frame, const std::uint8_t* name,
                      std::size_t namelen, const std::uint8_t* value, std::size_t valuelen, std::uint8_t, void*) {
    Slot* s = SlotOf(session, frame->hd.stream_id);
    if (!s) return 0;
    const std::string_view n(reinterpret_cast<const char*>(name), namelen);
    const std::string_view v(reinterpret_cast<const char*>(value), valuelen);
    if (n == ":status") s->http_status = std::atoi(std::string(v).c_str());
    else if (n == "grpc-status") s->grpc_status = std::atoi(std::string(v).c_str());
    else if (n == "grpc-message") s->grpc_message = v;
    return 0;
  }

  static int OnData(nghttp2_session* session, std::uint8_t, std::int32_t stream, const std::uint8_t* data,
                    std::size_t len, void*) {
    if (Slot* s = SlotOf(session, stream)) s->body.append(reinterpret_cast<const char*>(data), len);
    return 0;
  }

  static int OnClose(nghttp2_session* session, std::int32_t stream, std::uint32_t error_code, void* user) {
    auto* c = static_cast<Connection*>(user);
    Slot* s = SlotOf(session, stream);
    if (!s || !s->in_flight) return 0;
    const auto latency = Clock::now() - s->sent;
    s->in_flight = false;
    --c->in_flight_;
    std::string kind, err;
    if (error_code != NGHTTP2_NO_ERROR) {
      kind = "RST_STREAM";
      err = std::string("stream reset: ") + nghttp2_http2_strerror(error_code);
    } else if (s->http_status != 200) {
      kind = "HTTP " + std::to_string(s->http_status);
      err = "HTTP status " + std::to_string(s->http_status);
    } else if (s->grpc_status != 0) {
      kind = "grpc-status " + std::to_string(s->grpc_status);
      err = kind + ": " + s->grpc_message;
    } else if (!c->CheckBody(s->body, &err)) {
      kind = "bad response";
    }
    if (kind.empty()) c->result_.Ok(std::chrono::duration_cast<std::chrono::nanoseconds>(latency).count());
    else c->result_.Error(kind, err);
    return 0;
  }

  // One uncompressed length-prefixed ModelInferResponse with output data.
  bool CheckBody(const std::string& body, std::string* err) {
    if (body.size() < 5 || body[0] != 0) return *err = "response is not one uncompressed gRPC message", false;
    const std::uint32_t n = (static_cast<std::uint32_t>(static_cast<std::uint8_t>(body[1])) << 24) |
                            (static_cast<std::uint32_t>(static_cast<std::uint8_t>(body[2])) << 16) |
                            (static_cast<std::uint32_t>(static_cast<std::uint8_t>(body[3])) << 8) |
                            static_cast<std::uint8_t>(body[4]);
    if (body.size() != 5 + static_cast<std::size_t>(n)) return *err = "response message length mismatch", false;
    if (!response_.ParseFromArray(body.data() + 5, static_cast<int>(n))) return *err = "response does not parse", false;
    bool has_data = response_.outputs_size() > 0;
    if (has_data && o_.raw) {
      has_data = response_.raw_output_contents_size() == response_.outputs_size();
    } else if (has_data) {
      const auto& c = response_.outputs(0).contents();
      has_data = c.fp32_contents_size() > 0 || c.int64_contents_size() > 0;
    }
    if (!has_data) return *err = "response has no output data", false;
    return true;
  }

  const Options& o_;
  const std::string& body_;
  const Clock::time_point start_, end_;
  std::chrono::nanoseconds period_{0};
  std::string path_;
  std::vector<Slot> slots_;
  std::vector<std::size_t> offsets_;  // per slot: bytes of the body handed to nghttp2
  int fd_ = -1;
  nghttp2_session* session_ = nullptr;
  int active_ = 0;
  int in_flight_ = 0;
  pb::ModelInferResponse response_;
  loadgen::Record result_;
  std::string fatal_;  // the connection failed: no more calls on it
};

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"grpc_h2load: lean HTTP/2 load generator for the KServe V2 gRPC ModelInfer (one banknote sample)"};
  app.add_option("--target", o.target, "host:port of the gRPC server")->required();
  app.add_option("--model", o.model, "Model name")->capture_default_str();
  app.add_option("--input", o.input, "Input tensor name")->capture_default_str();
  app.add_option("--duration", o.duration_s, "Seconds of load")->capture_default_str()->check(CLI::Range(0.1, 3600.0));
  app.add_option("--concurrency", o.concurrency, "Calls in flight")->capture_default_str()->check(CLI::Range(1, 1024));
  app.add_option("--connections", o.connections, "HTTP/2 connections, one thread each")->capture_default_str()->check(CLI::Range(1, 64));
  app.add_option("--rate", o.rate, "Total calls/s, paced per slot; 0 = as fast as possible")->capture_default_str()->check(CLI::Range(0.0, 1e7));
  app.add_flag("--raw", o.raw, "Send raw_input_contents instead of fp32_contents");
  app.add_flag("--json", o.json, "Print one JSON object instead of text");
  CLI11_PARSE(app, argc, argv);
  o.connections = std::min(o.connections, o.concurrency);

  const std::string body = MakeBody(o);
  const auto start = Clock::now() + std::chrono::milliseconds(20);
  const auto end = start + std::chrono::microseconds(static_cast<std::int64_t>(o.duration_s * 1e6));
  std::vector<std::unique_ptr<Connection>> conns;
  for (int i = 0; i < o.connections; ++i) {
    const int n_slots = (o.concurrency - i + o.connections - 1) / o.connections;
    conns.push_back(std::make_unique<Connection>(o, body, i, n_slots, o.connections, start, end));
  }
  std::vector<std::thread> threads;
  for (auto& c : conns) {
    threads.emplace_back([&c, start] {
      std::this_thread::sleep_until(start);
      c->Run();
    });
  }
  for (auto& t : threads) t.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();

  loadgen::Record all;
  for (auto& c : conns) {
    if (!c->fatal().empty()) {
      std::cerr << "grpc_h2load: " << c->fatal() << "\n";
      return 2;
    }
    all.Merge(c->result());
  }
  const std::string rate = o.rate > 0 ? std::to_string(static_cast<long>(o.rate)) + "/s" : "max";
  char header[256];
  std::snprintf(header, sizeof header, "grpc_h2load: %s model %s, %d in flight, %d connection(s), %.1f s, rate %s, %s",
                o.target.c_str(), o.model.c_str(), o.concurrency, o.connections, elapsed, rate.c_str(),
                o.raw ? "raw_input_contents" : "fp32_contents");
  const nlohmann::json settings{{"target", o.target}, {"model", o.model}, {"concurrency", o.concurrency},
                                {"connections", o.connections}, {"rate_target", o.rate}, {"raw", o.raw}};
  return loadgen::Report(std::move(all), elapsed, o.json, settings, header);
}
