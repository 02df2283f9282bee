// The V2 gRPC front end: inference.GRPCInferenceService (KServe/Triton wire-compatible) over the
// same model repository as the REST API.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/status.h"
#include "serving/metrics.h"
#include "serving/model_repository.h"
#include "serving/rest_api.h"

namespace fpgaserve::serving {

class GrpcServer {
 public:
  struct Options {
    std::string address = "127.0.0.1";
    std::uint16_t port = 8081;  // 0: ephemeral
    std::size_t max_message_bytes = 64u << 20;
    int infer_threads = 1;  // threads (each with its own completion queue) serving ModelInfer
  };
  GrpcServer(Options options, ModelRepository* repo, MetricsRegistry* metrics, ServerInfo info);
  ~GrpcServer();
  Status Start();
  std::uint16_t port() const;
  void Stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fpgaserve::serving
