// The board server (`fpgaserve board-server`, docs/board-server.md): gRPC fpgaserve.v1.BoardService
// over the boards of one host. Clients acquire a lease on a board holding their firmware (fetched
// into a local cache with its sha256 checked, programmed on a free compatible board, or shared
// with the leases of a board that already holds it), run batches on it and release it. Leases
// expire when their holder stops renewing them. A board is reprogrammed only when it has no
// lease and no inference in flight, under the same lock the inferences take.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "runtime/board_driver.h"

namespace fpgaserve::boardsrv {

struct BoardSpec {
  std::string kind;  // sim, emu, ice40, zynq, xrt
  int count = 1;
};

// "sim:2,emu:1" (a kind without a count is one board). INVALID_ARGUMENT names the bad item.
Result<std::vector<BoardSpec>> ParseBoardSpecs(const std::string& text);

// The board kinds a bundle built for `board` (an id of the catalog) can run on.
bool KindRunsBoard(const std::string& kind, const std::string& board_family);

using DriverOpener =
    std::function<Result<std::unique_ptr<runtime::BoardDriver>>(const std::string& kind, const std::string& dir)>;

struct BoardServerOptions {
  std::string listen = "127.0.0.1:50061";  // host:port; port 0 picks a free one
  std::vector<BoardSpec> boards;
  std::string store_uri;   // where Acquire{build_id} finds builds (the build server's --store)
  std::string cache_dir;   // required: fetched bundles, one directory per firmware id
  std::string token;       // non-empty: every RPC needs "authorization: Bearer <token>"
  std::string tls_cert_pem, tls_key_pem;
  std::chrono::milliseconds default_ttl{std::chrono::seconds(30)};
  std::chrono::milliseconds max_ttl{std::chrono::minutes(10)};
  std::size_t max_batch_rows = 65536;
  std::size_t max_message_bytes = 64u << 20;
  std::string ready_file;  // written with {"port": N} once listening
  DriverOpener open_driver;  // empty: runtime::OpenBoardDriver
};

class BoardServer {
 public:
  // Checks the options, opens the cache and the store, starts the gRPC server and the lease
  // reaper. A port in use is UNAVAILABLE.
  static Result<std::unique_ptr<BoardServer>> Start(BoardServerOptions options);
  ~BoardServer();

  int port() const;
  void Wait();
  // Stops serving (open WatchBoards streams end), drops every lease, closes the drivers.
  void Shutdown();

  struct Impl;

 private:
  explicit BoardServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace fpgaserve::boardsrv
