// What the CLI's gRPC servers (build-server, board-server) and clients (build, board, serve)
// share: secrets read from files, TLS credentials, and waiting for SIGINT/SIGTERM.
#pragma once

#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "core/status.h"

namespace fpgaserve::cli {

// Secrets are read from files (never flags or logs); trailing whitespace is dropped. An empty
// path gives an empty secret.
Result<std::string> ReadSecret(const std::string& path, const std::string& what);

struct ServerSecrets {
  std::string token;                      // empty: no bearer token required
  std::string tls_cert_pem, tls_key_pem;  // empty: no TLS
};
// --token-file, --tls-cert and --tls-key (errors name the flag).
Result<ServerSecrets> ReadServerSecrets(const std::string& token_file, const std::string& tls_cert,
                                        const std::string& tls_key);

// --token-file, --tls-cert, --tls-key and --ready-file of a server command.
struct ServerFileFlags {
  std::string token_file, tls_cert, tls_key, ready_file;
};
void AddServerFileFlags(CLI::App& cmd, ServerFileFlags& f);

// Insecure, or TLS trusting the CA certificate in `tls_ca_file` (--tls-ca).
Result<std::shared_ptr<grpc::ChannelCredentials>> ClientCredentials(const std::string& tls_ca_file);

// Blocks SIGINT and SIGTERM in the calling thread, before it starts any other thread (which
// inherit the mask), so that WaitForStopSignal takes them synchronously.
sigset_t BlockStopSignals();
// Waits for one of them; returns its number.
int WaitForStopSignal(const sigset_t& signals);

}  // namespace fpgaserve::cli
