// grpc_load: a small ghz-like load generator for the KServe V2 gRPC ModelInfer.
//
// Keeps `--concurrency` requests in flight with the async API: `--threads` threads each drive
// their share of the in-flight "slots" through their own CompletionQueue (like wrk's event loops,
// so the generator needs little CPU). Each slot sends one 4-feature FP32 sample (banknote) again
// and again for `--duration` seconds; every response must be OK and carry output data.
// With --rate R each slot follows a fixed schedule of R/C requests/s, staggered across slots
// (open-loop-ish: a late slot sends at once to catch up, but a slot never has two requests in
// flight). Latency runs from the send to the response and is kept for every OK request, so the
// percentiles come from the full record.
//
//   grpc_load --target 127.0.0.1:8081 --model banknote --duration 10 --concurrency 16 [--rate 2000]
//             [--raw] [--threads 2] [--connections 1] [--json]
#include <grpcpp/alarm.h>
#include <grpcpp/grpcpp.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "grpc_service.grpc.pb.h"
#include "load_report.h"

namespace {

namespace pb = inference;
using Clock = std::chrono::steady_clock;

struct Options {
  std::string target;
  std::string model = "banknote";
  std::string input = "input";
  double duration_s = 10;
  int concurrency = 1;
  int threads = 2;
  int connections = 1;
  double rate = 0;  // requests/s over all slots; 0 = as fast as possible
  bool raw = false;
  bool json = false;
  double timeout_s = 10;
};

std::string CodeName(grpc::StatusCode c) {
  switch (c) {
    case grpc::StatusCode::CANCELLED: return "CANCELLED";
    case grpc::StatusCode::UNKNOWN: return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND: return "NOT_FOUND";
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION: return "FAILED_PRECONDITION";
    case grpc::StatusCode::UNIMPLEMENTED: return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL: return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE: return "UNAVAILABLE";
    default: return "CODE_" + std::to_string(static_cast<int>(c));
  }
}

// Empty when the call succeeded and the response has output data; else the error, with its
// short kind in *kind.
std::string CheckResponse(const grpc::Status& st, const pb::ModelInferResponse& resp, bool raw, std::string* kind) {
  if (!st.ok()) {
    *kind = CodeName(st.error_code());
    return *kind + ": " + st.error_message();
  }
  bool has_data = resp.outputs_size() > 0;
  if (has_data && raw) {
    has_data = resp.raw_output_contents_size() == resp.outputs_size() && !resp.raw_output_contents(0).empty();
  } else if (has_data) {
    const auto& c = resp.outputs(0).contents();
    has_data = c.fp32_contents_size() > 0 || c.int64_contents_size() > 0;
  }
  if (!has_data) {
    *kind = "no outputs";
    return "response has no output data";
  }
  return "";
}

std::chrono::system_clock::time_point Deadline(double seconds) {
  return std::chrono::system_clock::now() + std::chrono::microseconds(static_cast<std::int64_t>(seconds * 1e6));
}

// One in-flight request position. Its address is the CompletionQueue tag; `in_flight` tells a
// finished call from a fired pacing alarm.
struct Slot {
  std::unique_ptr<grpc::ClientContext> ctx;  // a context serves one call only
  std::unique_ptr<grpc::ClientAsyncResponseReader<pb::ModelInferResponse>> reader;
  pb::ModelInferResponse resp;
  grpc::Status status;
  grpc::Alarm alarm;
  Clock::time_point sent;
  Clock::time_point next;  // paced: when the next request is due
  bool in_flight = false;
};

// Drives the slots index, index + threads, ... until the end of the run.
void RunThread(int index, const Options& o, std::shared_ptr<grpc::Channel> channel, const pb::ModelInferRequest& req,
               Clock::time_point start, Clock::time_point end, loadgen::Record* out) {
  auto stub = pb::GRPCInferenceService::NewStub(channel);
  grpc::CompletionQueue cq;
  const bool paced = o.rate > 0;
  const auto period = paced ? std::chrono::nanoseconds(static_cast<std::int64_t>(o.concurrency * 1e9 / o.rate))
                            : std::chrono::nanoseconds(0);
  std::vector<std::unique_ptr<Slot>> slots;
  for (int k = index; k < o.concurrency; k += o.threads) {
    slots.push_back(std::make_unique<Slot>());
    slots.back()->next = start + period * k / o.concurrency;  // stagger the slots inside one period
  }
  out->latency_ns.reserve(paced ? static_cast<std::size_t>(o.rate * o.duration_s / o.threads * 1.1) + 16 : 1 << 16);

  auto send = [&](Slot& s) {
    s.ctx = std::make_unique<grpc::ClientContext>();
    s.ctx->set_deadline(Deadline(o.timeout_s));
    s.resp.Clear();
    s.in_flight = true;
    s.sent = Clock::now();
    s.reader = stub->AsyncModelInfer(s.ctx.get(), req, &cq);
    s.reader->Finish(&s.resp, &s.status, &s);
  };
  // Starts the slot's next request now or at its due time; false once the run is over for it.
  auto schedule = [&](Slot& s) {
    const auto now = Clock::now();
    if (!paced) {
      if (now >= end) return false;
      send(s);
      return true;
    }
    if (s.next >= end) return false;
    const auto due = s.next;
    s.next += period;  // behind schedule: the next one is due at once
    if (due <= now) {
      send(s);
    } else {
      s.in_flight = false;
      s.alarm.Set(&cq, std::chrono::system_clock::now() + (due - now), &s);
    }
    return true;
  };

  std::this_thread::sleep_until(start);
  int active = 0;
  for (auto& s : slots) active += schedule(*s) ? 1 : 0;
  while (active > 0) {
    void* tag = nullptr;
    bool ok = false;
    if (!cq.Next(&tag, &ok)) break;
    Slot& s = *static_cast<Slot*>(tag);
    if (!s.in_flight) {  // pacing alarm: send the due request
      send(s);
      continue;
    }
    const auto latency = Clock::now() - s.sent;
    std::string kind;
    if (std::string err = CheckResponse(s.status, s.resp, o.raw, &kind); err.empty()) {
      out->Ok(std::chrono::duration_cast<std::chrono::nanoseconds>(latency).count());
    } else {
      out->Error(kind, err);
    }
    if (!schedule(s)) --active;
  }
  cq.Shutdown();
  void* tag = nullptr;
  bool ok = false;
  while (cq.Next(&tag, &ok)) {
  }
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"grpc_load: load generator for the KServe V2 gRPC ModelInfer (one banknote sample)"};
  app.add_option("--target", o.target, "host:port of the gRPC server")->required();
  app.add_option("--model", o.model, "Model name")->capture_default_str();
  app.add_option("--input", o.input, "Input tensor name")->capture_default_str();
  app.add_option("--duration", o.duration_s, "Seconds of load")->capture_default_str()->check(CLI::Range(0.1, 3600.0));
  app.add_option("--concurrency", o.concurrency, "Requests in flight")->capture_default_str()->check(CLI::Range(1, 4096));
  app.add_option("--threads", o.threads, "Client threads (each with its own completion queue)")->capture_default_str()->check(CLI::Range(1, 256));
  app.add_option("--connections", o.connections, "HTTP/2 connections, one per thread at most")->capture_default_str()->check(CLI::Range(1, 256));
  app.add_option("--rate", o.rate, "Total requests/s, paced per slot; 0 = as fast as possible")->capture_default_str()->check(CLI::Range(0.0, 1e7));
  app.add_option("--timeout", o.timeout_s, "Per-request deadline in seconds")->capture_default_str()->check(CLI::Range(0.001, 3600.0));
  app.add_flag("--raw", o.raw, "Send raw_input_contents instead of fp32_contents");
  app.add_flag("--json", o.json, "Print one JSON object instead of text");
  CLI11_PARSE(app, argc, argv);
  o.threads = std::min(o.threads, o.concurrency);
  o.connections = std::min(o.connections, o.threads);

  // Separate subchannel pools so that each channel really is its own TCP connection.
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 0; i < o.connections; ++i) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    auto ch = grpc::CreateCustomChannel(o.target, grpc::InsecureChannelCredentials(), args);
    if (!ch->WaitForConnected(Deadline(5))) {
      std::cerr << "grpc_load: cannot connect to " << o.target << " within 5 s\n";
      return 2;
    }
    channels.push_back(std::move(ch));
  }

  // One blocking request before the clock starts: fail fast, with the server's message.
  const pb::ModelInferRequest req = loadgen::BanknoteRequest(o.model, o.input, o.raw);
  {
    auto stub = pb::GRPCInferenceService::NewStub(channels[0]);
    grpc::ClientContext ctx;
    ctx.set_deadline(Deadline(o.timeout_s));
    pb::ModelInferResponse resp;
    grpc::Status st = stub->ModelInfer(&ctx, req, &resp);
    std::string kind;
    if (std::string err = CheckResponse(st, resp, o.raw, &kind); !err.empty()) {
      std::cerr << "grpc_load: the first ModelInfer failed: " << err << "\n";
      return 2;
    }
  }

  std::vector<loadgen::Record> results(static_cast<std::size_t>(o.threads));
  std::vector<std::thread> threads;
  const auto start = Clock::now() + std::chrono::milliseconds(5);  // every thread starts together
  const auto end = start + std::chrono::microseconds(static_cast<std::int64_t>(o.duration_s * 1e6));
  for (int i = 0; i < o.threads; ++i) {
    threads.emplace_back(RunThread, i, std::cref(o), channels[static_cast<std::size_t>(i % o.connections)],
                         std::cref(req), start, end, &results[static_cast<std::size_t>(i)]);
  }
  for (auto& t : threads) t.join();
  // Requests in flight at the end finish and count, so the run lasts until the last one.
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();

  loadgen::Record all;
  for (auto& r : results) all.Merge(r);
  const std::string rate = o.rate > 0 ? std::to_string(static_cast<long>(o.rate)) + "/s" : "max";
  char header[256];
  std::snprintf(header, sizeof header, "grpc_load: %s model %s, %d in flight, %d thread(s), %d connection(s), %.1f s, rate %s, %s",
                o.target.c_str(), o.model.c_str(), o.concurrency, o.threads, o.connections, elapsed, rate.c_str(),
                o.raw ? "raw_input_contents" : "fp32_contents");
  const nlohmann::json settings{{"target", o.target}, {"model", o.model}, {"concurrency", o.concurrency},
                                {"threads", o.threads}, {"connections", o.connections}, {"rate_target", o.rate},
                                {"raw", o.raw}};
  return loadgen::Report(std::move(all), elapsed, o.json, settings, header);
}
