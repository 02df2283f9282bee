// KServe V1 and V2 (Open Inference Protocol) REST endpoints, the binary tensor extension, the
// model repository extension and /metrics, independent of the HTTP server that carries them.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "serving/metrics.h"
#include "serving/model_repository.h"

namespace fpgaserve::serving {

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // path and query
  std::string body;
  std::string inference_header_length;  // Inference-Header-Content-Length, if sent
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

using Respond = std::function<void(HttpResponse)>;

// An error as the protocols want it: status code from the Status and {"error": message}.
HttpResponse ErrorResponse(const Status& st);
int HttpStatusOf(StatusCode code);

struct ServerInfo {
  std::string name = "fpgaserve";
  std::string version;
};

class RestApi {
 public:
  RestApi(ModelRepository* repo, MetricsRegistry* metrics, ServerInfo info);
  // Calls `respond` exactly once, possibly later from the model's batcher thread.
  void Handle(HttpRequest request, Respond respond);

 private:
  void Infer(const std::string& model, const HttpRequest& req, Respond respond, bool v1);
  HttpResponse ModelMetadata(const ServedModel& m) const;
  HttpResponse ModelConfig(const ServedModel& m) const;
  HttpResponse ModelStats(const ServedModel& m) const;
  ModelRepository* repo_;
  MetricsRegistry* metrics_;
  ServerInfo info_;
};

}  // namespace fpgaserve::serving
