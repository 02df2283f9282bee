// A board on a board server (board_server.h) behind the BoardDriver interface: the predictor's
// driver for `serve --board-server ADDR`. Opening it acquires a lease on a board holding the
// firmware; a background thread renews the lease, and when the lease is lost (the server
// restarted, or it expired while the server was unreachable) marks the driver unavailable and
// acquires again until it succeeds. Closing it releases the lease.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "core/status.h"
#include "runtime/board_driver.h"

namespace fpgaserve::boardsrv {

struct RemoteBoardOptions {
  std::string address;      // host:port of the board server
  std::string token;        // bearer token; empty: none
  std::string tls_ca_pem;   // set: TLS, trusting this CA
  std::string firmware_uri; // the bundle directory URI, or
  std::string build_id;     // a build in the board server's --store
  std::string board_kind;   // empty: any compatible
  std::string board_id;     // empty: any
  std::string client;       // our name in the server's ListBoards
  std::chrono::milliseconds ttl{std::chrono::seconds(10)};
  std::chrono::milliseconds rpc_timeout{std::chrono::seconds(30)};
  // Acquire may program a board (minutes for a big FPGA): its own deadline.
  std::chrono::milliseconds acquire_timeout{std::chrono::minutes(10)};
  std::function<void(const std::string&)> log;  // lease events; empty: silent
};

// Acquires the lease (the error of the first Acquire is returned: RESOURCE_EXHAUSTED when every
// board is busy, UNAVAILABLE when the server is unreachable, ...).
Result<std::unique_ptr<runtime::BoardDriver>> OpenRemoteBoard(const RemoteBoardOptions& options);

}  // namespace fpgaserve::boardsrv
