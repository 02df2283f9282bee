// `fpgaserve board-server` (the BoardService on an FPGA host) and `fpgaserve board list` (its
// boards). docs/board-server.md.
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <iomanip>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "board_service.grpc.pb.h"
#include "cli/app.h"
#include "cli/grpc_cli.h"
#include "cli/commands.h"
#include "core/file_io.h"
#include "services/board/board_server.h"
#include "services/grpc_status.h"

namespace fpgaserve::cli {
namespace {

namespace pb = ::fpgaserve::v1;
using json = nlohmann::json;

struct BoardServerFlags {
  std::string listen = "127.0.0.1:50061";
  std::string boards = "sim:1";
  std::string store;
  std::string cache;
  long lease_ttl_ms = 30000;
  std::size_t max_batch_rows = 65536;
  ServerFileFlags files;
};

int RunBoardServer(const BoardServerFlags& f) {
  boardsrv::BoardServerOptions o;
  o.listen = f.listen;
  auto specs = boardsrv::ParseBoardSpecs(f.boards);
  if (!specs.ok()) return ReportError(specs.status(), std::cerr);
  o.boards = *specs;
  o.store_uri = f.store;
  o.cache_dir = f.cache;
  o.default_ttl = std::chrono::milliseconds(f.lease_ttl_ms);
  o.max_batch_rows = f.max_batch_rows;
  o.ready_file = f.files.ready_file;
  auto secrets = ReadServerSecrets(f.files.token_file, f.files.tls_cert, f.files.tls_key);
  if (!secrets.ok()) return ReportError(secrets.status(), std::cerr);
  o.token = secrets->token;
  o.tls_cert_pem = secrets->tls_cert_pem;
  o.tls_key_pem = secrets->tls_key_pem;
  const sigset_t signals = BlockStopSignals();
  auto server = boardsrv::BoardServer::Start(o);
  if (!server.ok()) return ReportError(server.status(), std::cerr);
  std::cerr << "fpgaserve board-server: listening on port " << (*server)->port() << ", boards " << f.boards
            << ", cache " << f.cache << (f.store.empty() ? "" : ", builds from " + f.store)
            << (o.token.empty() ? "" : ", bearer token required") << (o.tls_cert_pem.empty() ? "" : ", TLS") << std::endl;
  const int sig = WaitForStopSignal(signals);
  std::cerr << "fpgaserve board-server: signal " << sig << ", shutting down" << std::endl;
  (*server)->Shutdown();
  return kExitOk;
}

struct ListFlags {
  std::string server = "127.0.0.1:50061";
  std::string token_file;
  std::string tls_ca;
  bool json = false;
};

std::string StateText(pb::BoardState s) {
  switch (s) {
    case pb::BOARD_FREE: return "free";
    case pb::BOARD_LOADING: return "loading";
    case pb::BOARD_READY: return "ready";
    case pb::BOARD_BUSY: return "busy";
    case pb::BOARD_ERROR: return "error";
    default: return "unknown";
  }
}

int ListBoards(const ListFlags& f) {
  auto token = ReadSecret(f.token_file, "--token-file");
  if (!token.ok()) return ReportError(token.status(), std::cerr);
  auto creds = ClientCredentials(f.tls_ca);
  if (!creds.ok()) return ReportError(creds.status(), std::cerr);
  auto stub = pb::BoardService::NewStub(grpc::CreateChannel(f.server, *creds));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  if (!token->empty()) ctx.AddMetadata("authorization", "Bearer " + *token);
  pb::ListBoardsResponse r;
  auto st = stub->ListBoards(&ctx, pb::ListBoardsRequest(), &r);
  if (!st.ok()) return ReportError(FromGrpcStatus(st, "board server " + f.server), std::cerr);
  if (f.json) {
    json boards = json::array();
    for (const auto& b : r.boards()) {
      boards.push_back({{"id", b.id()},
                        {"kind", b.kind()},
                        {"part", b.part()},
                        {"state", StateText(b.state())},
                        {"firmware_id", b.firmware_id()},
                        {"design_id", b.design_id()},
                        {"firmware_uri", b.firmware_uri()},
                        {"lease_count", b.lease_count()},
                        {"clients", std::vector<std::string>(b.clients().begin(), b.clients().end())},
                        {"inferences", b.inferences()},
                        {"loads", b.loads()},
                        {"error", b.error()}});
    }
    std::cout << json{{"boards", boards}, {"version", r.version()}}.dump(2) << "\n";
    return kExitOk;
  }
  std::cout << std::left << std::setw(10) << "ID" << std::setw(7) << "KIND" << std::setw(11) << "PART" << std::setw(9)
            << "STATE" << std::setw(14) << "FIRMWARE" << std::setw(8) << "LEASES" << std::setw(12) << "INFERENCES"
            << "CLIENTS / ERROR\n";
  for (const auto& b : r.boards()) {
    std::string who;
    for (const auto& c : b.clients()) who += (who.empty() ? "" : ",") + (c.empty() ? std::string("-") : c);
    if (!b.error().empty()) who += (who.empty() ? "" : " ") + b.error();
    std::cout << std::setw(10) << b.id() << std::setw(7) << b.kind() << std::setw(11) << b.part() << std::setw(9)
              << StateText(b.state()) << std::setw(14) << (b.firmware_id().empty() ? "-" : b.firmware_id().substr(0, 12))
              << std::setw(8) << b.lease_count() << std::setw(12) << b.inferences() << who << "\n";
  }
  return kExitOk;
}

}  // namespace

void RegisterBoardServer(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("board-server", "Run the board server (gRPC fpgaserve.v1.BoardService) on an FPGA host");
  auto f = std::make_shared<BoardServerFlags>();
  cmd->add_option("--listen", f->listen, "Address to listen on (host:port; port 0 picks a free one)")->capture_default_str();
  cmd->add_option("--boards", f->boards, "The boards, kind[:count],...: sim, emu, ice40, zynq, xrt")->capture_default_str();
  cmd->add_option("--store", f->store, "The build server's store, for Acquire by build id (file://, s3://)");
  cmd->add_option("--cache", f->cache, "Directory for fetched firmware bundles")->required();
  cmd->add_option("--lease-ttl-ms", f->lease_ttl_ms, "Default lease time-to-live; holders renew within it")->capture_default_str();
  cmd->add_option("--max-batch-rows", f->max_batch_rows, "Largest batch one Infer may carry")->capture_default_str();
  AddServerFileFlags(*cmd, f->files);
  cmd->callback([f, exit_code] { *exit_code = RunBoardServer(*f); });
}

void RegisterBoard(CLI::App& app, int* exit_code) {
  auto* board = app.add_subcommand("board", "Query a board server");
  board->require_subcommand(1);
  auto* list = board->add_subcommand("list", "The server's boards: id, kind, part, state, firmware, leases");
  auto f = std::make_shared<ListFlags>();
  list->add_option("--server", f->server, "Board server address (host:port)")->capture_default_str();
  list->add_option("--token-file", f->token_file, "File holding the server's bearer token");
  list->add_option("--tls-ca", f->tls_ca, "Connect with TLS, trusting this CA certificate (PEM)");
  list->add_flag("--json", f->json, "Print JSON");
  list->callback([f, exit_code] { *exit_code = ListBoards(*f); });
}

}  // namespace fpgaserve::cli
