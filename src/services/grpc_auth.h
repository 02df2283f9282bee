// Bearer-token checks shared by fpgaserve's gRPC servers (build server, board server).
// Header-only, like grpc_status.h, for targets that already use gRPC.
#pragma once

#include <grpcpp/grpcpp.h>

#include <string>

#include "core/status.h"

namespace fpgaserve {

// Compares without an early exit, so the time taken does not reveal how much of a token matched.
inline bool ConstantTimeEquals(const std::string& a, const std::string& b) {
  const std::size_t n = std::max(a.size(), b.size());
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (std::size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

// OK when `token` is empty (no authentication) or the call carries "authorization: Bearer <token>".
inline Status CheckBearerToken(const grpc::ServerContext* ctx, const std::string& token) {
  if (token.empty()) return Status::Ok();
  const auto& md = ctx->client_metadata();
  auto it = md.find("authorization");
  if (it == md.end()) return Unauthenticated("missing authorization metadata (\"Bearer <token>\")");
  const std::string got(it->second.data(), it->second.size());
  if (!ConstantTimeEquals(got, "Bearer " + token)) return Unauthenticated("invalid bearer token");
  return Status::Ok();
}

// Server credentials: TLS when both PEMs are set, otherwise insecure (loopback, or behind a mesh).
inline std::shared_ptr<grpc::ServerCredentials> ServerCredentials(const std::string& cert_pem,
                                                                 const std::string& key_pem) {
  if (cert_pem.empty()) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions ssl;
  ssl.pem_key_cert_pairs.push_back({key_pem, cert_pem});
  return grpc::SslServerCredentials(ssl);
}

}  // namespace fpgaserve
