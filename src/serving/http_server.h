// An asynchronous HTTP/1.1 server with keep-alive (Boost.Beast over Asio) that hands every
// request to a RestApi and writes its response whenever the API answers.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/status.h"
#include "serving/rest_api.h"

namespace fpgaserve::serving {

class HttpServer {
 public:
  struct Options {
    std::string address = "127.0.0.1";
    std::uint16_t port = 8080;  // 0: an ephemeral port (see port())
    int threads = 2;
    std::size_t max_body_bytes = 64u << 20;
    std::size_t max_header_bytes = 16u << 10;
  };
  HttpServer(Options options, RestApi* api);
  ~HttpServer();
  // Binds and starts the I/O threads; fails with a clear message if the address is in use.
  Status Start();
  std::uint16_t port() const;
  void Stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fpgaserve::serving
