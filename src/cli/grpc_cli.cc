#include "cli/grpc_cli.h"

#include "core/file_io.h"

namespace fpgaserve::cli {

Result<std::string> ReadSecret(const std::string& path, const std::string& what) {
  if (path.empty()) return std::string();
  auto text = ReadFile(path, 1 << 20);
  if (!text.ok()) return text.status().WithContext(what);
  std::string s = *text;
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ' || s.back() == '\t')) s.pop_back();
  if (s.empty()) return InvalidArgument(what + " " + path + " is empty");
  return s;
}

Result<ServerSecrets> ReadServerSecrets(const std::string& token_file, const std::string& tls_cert,
                                        const std::string& tls_key) {
  ServerSecrets s;
  ASSIGN_OR_RETURN(s.token, ReadSecret(token_file, "--token-file"));
  if (!tls_cert.empty() || !tls_key.empty()) {
    auto cert = ReadFile(tls_cert, 1 << 20);
    if (!cert.ok()) return cert.status().WithContext("--tls-cert");
    auto key = ReadFile(tls_key, 1 << 20);
    if (!key.ok()) return key.status().WithContext("--tls-key");
    s.tls_cert_pem = *cert;
    s.tls_key_pem = *key;
  }
  return s;
}

void AddServerFileFlags(CLI::App& cmd, ServerFileFlags& f) {
  cmd.add_option("--token-file", f.token_file, "File holding the bearer token every RPC must carry");
  cmd.add_option("--tls-cert", f.tls_cert, "Serve TLS with this certificate chain (PEM)");
  cmd.add_option("--tls-key", f.tls_key, "Private key of --tls-cert (PEM)");
  cmd.add_option("--ready-file", f.ready_file, "Write {\"port\": N} here once listening");
}

Result<std::shared_ptr<grpc::ChannelCredentials>> ClientCredentials(const std::string& tls_ca_file) {
  if (tls_ca_file.empty()) return grpc::InsecureChannelCredentials();
  auto ca = ReadFile(tls_ca_file, 1 << 20);
  if (!ca.ok()) return ca.status().WithContext("--tls-ca");
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = *ca;
  return grpc::SslCredentials(ssl);
}

sigset_t BlockStopSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  return signals;
}

int WaitForStopSignal(const sigset_t& signals) {
  int sig = 0;
  sigwait(&signals, &sig);
  return sig;
}

}  // namespace fpgaserve::cli
