#include "serving/http_server.h"

#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <optional>
#include <thread>
#include <vector>

namespace fpgaserve::serving {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

// Each I/O thread runs its own io_context and owns the connections accepted onto it, so a
// connection's handlers never need a strand, and the scheduler never locks across threads.
using Executor = asio::io_context::executor_type;
using Stream = beast::basic_stream<tcp, Executor, beast::unlimited_rate_policy>;
using Socket = tcp::socket::rebind_executor<Executor>::other;

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(Socket&& socket, RestApi* api, const HttpServer::Options& options)
      : stream_(std::move(socket)), api_(api), options_(options) {}

  void Start() {
    asio::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->Read(); });
  }

 private:
  void Read() {
    parser_.emplace();
    parser_->body_limit(options_.max_body_bytes);
    parser_->header_limit(static_cast<std::uint32_t>(options_.max_header_bytes));
    stream_.expires_after(std::chrono::seconds(120));  // idle keep-alive connections close
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, std::size_t) { self->OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == asio::error::connection_reset ||
        ec == beast::error::timeout || ec == asio::error::operation_aborted) {
      return Close();
    }
    if (ec) {
      HttpResponse r;
      if (ec == http::error::body_limit) {
        r = ErrorResponse(ResourceExhausted("request body is larger than this server's limit of " +
                                            std::to_string(options_.max_body_bytes) + " bytes"));
      } else if (ec == http::error::header_limit) {
        r = ErrorResponse(ResourceExhausted("request headers are larger than " +
                                            std::to_string(options_.max_header_bytes) + " bytes"));
      } else {
        r = ErrorResponse(InvalidArgument("malformed HTTP request: " + ec.message()));
      }
      keep_alive_ = false;
      return Write(std::move(r), 11);
    }
    http::request<http::string_body> req = parser_->release();
    keep_alive_ = req.keep_alive();
    const unsigned version = req.version();
    head_ = req.method() == http::verb::head;
    HttpRequest hr;
    hr.method = std::string(req.method_string());
    hr.target = std::string(req.target());
    auto it = req.find("Inference-Header-Content-Length");
    if (it != req.end()) hr.inference_header_length = std::string(it->value());
    hr.body = std::move(req.body());
    auto self = shared_from_this();
    api_->Handle(std::move(hr), [self, version](HttpResponse r) {
      // Usually runs right here (the device was idle); else on the thread that ran the batch,
      // and then the write hops back onto this connection's thread.
      if (self->stream_.get_executor().running_in_this_thread()) return self->Write(std::move(r), version);
      asio::post(self->stream_.get_executor(),
                 [self, version, r = std::move(r)]() mutable { self->Write(std::move(r), version); });
    });
  }

  void Write(HttpResponse r, unsigned version) {
    auto res = std::make_shared<http::response<http::string_body>>(static_cast<http::status>(r.status), version);
    res->set(http::field::server, "fpgaserve");
    res->set(http::field::content_type, r.content_type);
    for (const auto& [k, v] : r.headers) res->set(k, v);
    res->keep_alive(keep_alive_);
    const std::size_t length = r.body.size();
    if (!head_) res->body() = std::move(r.body);
    res->content_length(length);
    stream_.expires_after(std::chrono::seconds(60));
    http::async_write(stream_, *res, [self = shared_from_this(), res](beast::error_code ec, std::size_t) {
      if (ec || !self->keep_alive_) return self->Close();
      self->Read();
    });
  }

  // Lingering close: stop sending, then read and discard what the client still sends (the rest
  // of an oversized body) so that closing does not reset the connection before it has read
  // our response.
  void Close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.expires_after(std::chrono::seconds(5));
    Drain();
  }

  void Drain() {
    stream_.async_read_some(asio::buffer(scratch_), [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (!ec) self->Drain();
    });
  }

  Stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  RestApi* api_;
  const HttpServer::Options& options_;
  bool keep_alive_ = true;
  std::array<char, 16384> scratch_{};
  bool head_ = false;
};

}  // namespace

struct HttpServer::Impl {
  Options options;
  RestApi* api;
  // One io_context per I/O thread (concurrency hint 1: no internal locking); the acceptor lives
  // on the first and deals connections round-robin.
  std::vector<std::unique_ptr<asio::io_context>> contexts;
  std::vector<asio::executor_work_guard<Executor>> guards;
  std::unique_ptr<tcp::acceptor> acceptor;
  std::size_t next = 0;
  std::vector<std::thread> threads;
  std::atomic<bool> stopped{false};

  void Accept() {
    auto& ctx = *contexts[next++ % contexts.size()];
    acceptor->async_accept(ctx.get_executor(), [this](beast::error_code ec, Socket socket) {
      if (ec) {
        if (!stopped && acceptor->is_open()) Accept();
        return;
      }
      socket.set_option(tcp::no_delay(true), ec);
      std::make_shared<Session>(std::move(socket), api, options)->Start();
      Accept();
    });
  }
};

HttpServer::HttpServer(Options options, RestApi* api) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  impl_->api = api;
}

HttpServer::~HttpServer() { Stop(); }

Status HttpServer::Start() {
  auto& o = impl_->options;
  beast::error_code ec;
  const auto addr = asio::ip::make_address(o.address, ec);
  if (ec) return InvalidArgument("HTTP address '" + o.address + "': " + ec.message());
  tcp::endpoint ep(addr, o.port);
  const int n = std::max(1, o.threads);
  for (int i = 0; i < n; ++i) {
    impl_->contexts.push_back(std::make_unique<asio::io_context>(1));
    impl_->guards.push_back(asio::make_work_guard(impl_->contexts.back()->get_executor()));
  }
  impl_->acceptor = std::make_unique<tcp::acceptor>(*impl_->contexts[0]);
  auto& a = *impl_->acceptor;
  a.open(ep.protocol(), ec);
  if (!ec) a.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) a.bind(ep, ec);
  if (!ec) a.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Unavailable("cannot listen for HTTP on " + o.address + ":" + std::to_string(o.port) + ": " +
                       ec.message());
  }
  impl_->Accept();
  for (auto& ctx : impl_->contexts) impl_->threads.emplace_back([c = ctx.get()] { c->run(); });
  return Status::Ok();
}

std::uint16_t HttpServer::port() const {
  beast::error_code ec;
  if (!impl_->acceptor) return 0;
  auto ep = impl_->acceptor->local_endpoint(ec);
  return ec ? 0 : ep.port();
}

void HttpServer::Stop() {
  if (impl_->stopped.exchange(true)) return;
  if (impl_->contexts.empty()) return;
  asio::post(*impl_->contexts[0], [this] {
    beast::error_code ec;
    impl_->acceptor->close(ec);
  });
  for (auto& ctx : impl_->contexts) ctx->stop();
  for (auto& t : impl_->threads) {
    if (t.joinable()) t.join();
  }
  impl_->guards.clear();
}

}  // namespace fpgaserve::serving
