// What the gRPC load generators (grpc_load, grpc_h2load) send, record per thread and report: one
// banknote sample per ModelInfer; OK latencies, errors by kind; one JSON object or a few lines.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "grpc_service.pb.h"

namespace loadgen {

// One 4-feature FP32 banknote sample, in the typed field or (raw) in raw_input_contents.
inline inference::ModelInferRequest BanknoteRequest(const std::string& model, const std::string& input, bool raw) {
  static constexpr float kSample[4] = {3.6216f, 8.6661f, -2.8073f, -0.44699f};
  inference::ModelInferRequest req;
  req.set_model_name(model);
  auto* in = req.add_inputs();
  in->set_name(input);
  in->set_datatype("FP32");
  in->add_shape(1);
  in->add_shape(4);
  if (raw) {
    // The binary layout is little-endian FP32, which is this host's layout (x86-64, aarch64).
    std::string bytes(sizeof kSample, '\0');
    std::memcpy(bytes.data(), kSample, sizeof kSample);
    req.add_raw_input_contents(std::move(bytes));
  } else {
    for (float v : kSample) in->mutable_contents()->add_fp32_contents(v);
  }
  return req;
}

struct Record {
  std::vector<std::int64_t> latency_ns;  // OK calls only
  std::uint64_t errors = 0;
  std::map<std::string, std::uint64_t> error_kinds;  // kind -> count
  std::string first_error;

  void Ok(std::int64_t ns) { latency_ns.push_back(ns); }
  void Error(const std::string& kind, const std::string& message) {
    ++errors;
    ++error_kinds[kind];
    if (first_error.empty()) first_error = message;
  }
  void Merge(const Record& r) {
    latency_ns.insert(latency_ns.end(), r.latency_ns.begin(), r.latency_ns.end());
    errors += r.errors;
    for (const auto& [k, n] : r.error_kinds) error_kinds[k] += n;
    if (first_error.empty()) first_error = r.first_error;
  }
};

// Nearest-rank percentile of a sorted record, in milliseconds.
inline double PercentileMs(const std::vector<std::int64_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(sorted.size())));
  rank = std::clamp<std::size_t>(rank, 1, sorted.size());
  return static_cast<double>(sorted[rank - 1]) / 1e6;
}

// Prints the run's summary; `settings` are the generator's options (JSON fields, and the text
// header line). Returns the process exit code: 0 when every call was OK, else 1.
inline int Report(Record all, double elapsed_s, bool json, const nlohmann::json& settings, const std::string& header) {
  std::sort(all.latency_ns.begin(), all.latency_ns.end());
  const std::uint64_t ok = all.latency_ns.size();
  double sum_ns = 0;
  for (auto v : all.latency_ns) sum_ns += static_cast<double>(v);
  const double mean_ms = ok ? sum_ns / static_cast<double>(ok) / 1e6 : 0;
  const double rps = static_cast<double>(ok + all.errors) / elapsed_s;
  const double max_ms = ok ? static_cast<double>(all.latency_ns.back()) / 1e6 : 0;
  const double p50 = PercentileMs(all.latency_ns, 50), p90 = PercentileMs(all.latency_ns, 90),
               p99 = PercentileMs(all.latency_ns, 99);
  if (json) {
    nlohmann::json j = settings;
    j.update({{"seconds", elapsed_s}, {"requests", ok + all.errors}, {"ok", ok}, {"errors", all.errors},
              {"rps", rps}, {"ok_rps", static_cast<double>(ok) / elapsed_s}, {"mean_ms", mean_ms},
              {"p50_ms", p50}, {"p90_ms", p90}, {"p99_ms", p99}, {"max_ms", max_ms},
              {"error_kinds", all.error_kinds}, {"first_error", all.first_error}});
    std::cout << j.dump() << std::endl;
  } else {
    std::printf("%s\n", header.c_str());
    std::printf("requests:    %llu (%llu ok, %llu errors), %.1f requests/s\n",
                static_cast<unsigned long long>(ok + all.errors), static_cast<unsigned long long>(ok),
                static_cast<unsigned long long>(all.errors), rps);
    std::printf("latency ms:  p50 %.3f  p90 %.3f  p99 %.3f  max %.3f  mean %.3f\n", p50, p90, p99, max_ms, mean_ms);
    for (const auto& [k, n] : all.error_kinds) {
      std::printf("errors:      %s x %llu\n", k.c_str(), static_cast<unsigned long long>(n));
    }
    if (!all.first_error.empty()) std::printf("first error: %s\n", all.first_error.c_str());
  }
  return all.errors == 0 ? 0 : 1;
}

}  // namespace loadgen
