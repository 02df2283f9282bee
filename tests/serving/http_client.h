// A minimal HTTP/1.1 client for the integration tests (Boost.Beast): one request per
// connection to a loopback port.
#pragma once

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

namespace fpgaserve {

struct HttpResult {
  int status = 0;
  std::string body;
  std::map<std::string, std::string> headers;
  nlohmann::json Json() const { return nlohmann::json::parse(body, nullptr, false); }
};

// One request on a fresh connection (keep-alive is exercised by wrk in bench/serve).
inline HttpResult Http(int port, const std::string& method, const std::string& target, const std::string& body = "",
                const std::map<std::string, std::string>& headers = {}) {
  namespace beast = boost::beast;
  namespace http = beast::http;
  boost::asio::io_context io;
  boost::asio::ip::tcp::socket sock(io);
  sock.connect({boost::asio::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)});
  http::request<http::string_body> req(http::string_to_verb(method), target, 11);
  req.set(http::field::host, "127.0.0.1");
  for (const auto& [k, v] : headers) req.set(k, v);
  req.body() = body;
  req.prepare_payload();
  beast::error_code wec;
  http::write(sock, req, wec);  // an oversized body may be cut short by the server's 413
  beast::flat_buffer buf;
  http::response_parser<http::string_body> parser;
  parser.body_limit(1 << 26);
  beast::error_code ec;
  http::read(sock, buf, parser, ec);
  HttpResult r;
  if (ec) return r;
  auto res = parser.release();
  r.status = static_cast<int>(res.result_int());
  r.body = res.body();
  for (const auto& f : res) r.headers[std::string(f.name_string())] = std::string(f.value());
  return r;
}

}  // namespace fpgaserve
