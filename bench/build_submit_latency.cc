// The build service's cache-hit latency: SubmitBuild of a model whose build already exists,
// timed call by call over one channel (what `fpgaserve build submit` does after its upload check).
// Usage: build_submit_latency --server HOST:PORT --model-uri URI --board B [--calls N] [--token-file F]
// Prints JSON: {"calls", "cache_hits", "p50_ms", "p99_ms", "max_ms", "mean_ms"}.
#include <grpcpp/grpcpp.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <vector>

#include "build_service.grpc.pb.h"

int main(int argc, char** argv) {
  CLI::App app{"SubmitBuild cache-hit latency"};
  std::string server, model_uri, board, token_file;
  int calls = 200;
  app.add_option("--server", server)->required();
  app.add_option("--model-uri", model_uri)->required();
  app.add_option("--board", board)->required();
  app.add_option("--calls", calls)->check(CLI::Range(1, 1000000));
  app.add_option("--token-file", token_file);
  CLI11_PARSE(app, argc, argv);
  std::string token;
  if (!token_file.empty()) {
    std::ifstream in(token_file);
    std::getline(in, token);
  }
  auto stub = fpgaserve::v1::FirmwareBuilder::NewStub(grpc::CreateChannel(server, grpc::InsecureChannelCredentials()));
  fpgaserve::v1::SubmitBuildRequest req;
  req.set_model_uri(model_uri);
  req.set_board(board);
  std::vector<double> ms;
  int hits = 0;
  for (int i = 0; i < calls; ++i) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    if (!token.empty()) ctx.AddMetadata("authorization", "Bearer " + token);
    fpgaserve::v1::SubmitBuildResponse resp;
    const auto t0 = std::chrono::steady_clock::now();
    grpc::Status st = stub->SubmitBuild(&ctx, req, &resp);
    const auto t1 = std::chrono::steady_clock::now();
    if (!st.ok()) {
      std::cerr << "build_submit_latency: SubmitBuild failed: " << st.error_message() << "\n";
      return 1;
    }
    hits += resp.cache_hit() ? 1 : 0;
    ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  std::vector<double> sorted = ms;
  std::sort(sorted.begin(), sorted.end());
  auto pct = [&](double p) { return sorted[std::min(sorted.size() - 1, static_cast<std::size_t>(p * sorted.size()))]; };
  nlohmann::json j = {{"calls", calls},
                      {"cache_hits", hits},
                      {"p50_ms", pct(0.50)},
                      {"p99_ms", pct(0.99)},
                      {"max_ms", sorted.back()},
                      {"mean_ms", std::accumulate(ms.begin(), ms.end(), 0.0) / static_cast<double>(ms.size())}};
  std::cout << j.dump() << "\n";
  return 0;
}
