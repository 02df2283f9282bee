#include "serving/rest_api.h"

#include <chrono>
#include <cmath>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>

namespace fpgaserve::serving {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

HttpResponse JsonResponse(int status, const json& j) {
  HttpResponse r;
  r.status = status;
  r.body = j.dump();
  return r;
}

// Splits "/v2/models/m/versions/1/infer?x" into its non-empty path segments.
std::vector<std::string> Segments(const std::string& target) {
  std::string path = target.substr(0, target.find('?'));
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < path.size()) {
    std::size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    if (j > i) out.push_back(path.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

// Flattens nested JSON arrays of numbers (or booleans) into `out`, row-major.
Status Flatten(const json& v, const std::string& what, int depth, std::size_t limit,
               std::vector<double>* out) {
  if (depth > 32) return InvalidArgument(what + ": data is nested more than 32 levels deep");
  if (v.is_array()) {
    for (const auto& e : v) RETURN_IF_ERROR(Flatten(e, what, depth + 1, limit, out));
    return Status::Ok();
  }
  if (out->size() >= limit) {
    return ResourceExhausted(what + ": more than " + std::to_string(limit) +
                             " data elements; the server's limit is " + std::to_string(limit));
  }
  if (v.is_number()) {
    out->push_back(v.get<double>());
  } else if (v.is_boolean()) {
    out->push_back(v.get<bool>() ? 1 : 0);
  } else {
    return InvalidArgument(what + ": data element " + std::to_string(out->size()) + " is " +
                           std::string(v.type_name()) + "; expected a number");
  }
  return Status::Ok();
}

Result<std::vector<std::int64_t>> ParseShape(const json& j, const std::string& what,
                                             std::size_t max_elements, std::size_t* count) {
  if (!j.is_array()) return InvalidArgument(what + ": 'shape' must be an array of integers");
  std::vector<std::int64_t> shape;
  std::size_t n = 1;
  for (const auto& d : j) {
    if (!d.is_number_integer() || d.get<std::int64_t>() < 0) {
      return InvalidArgument(what + ": 'shape' must hold non-negative integers; got " + d.dump());
    }
    const auto v = d.get<std::int64_t>();
    shape.push_back(v);
    if (v != 0 && n > max_elements / static_cast<std::size_t>(v)) {
      return ResourceExhausted(what + ": shape " + j.dump() + " has more than " +
                               std::to_string(max_elements) + " elements (the server's limit)");
    }
    n *= static_cast<std::size_t>(v);
  }
  if (shape.size() > 8) return InvalidArgument(what + ": shape " + j.dump() + " has more than 8 dimensions");
  *count = n;
  return shape;
}

const json* Field(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

bool BinaryRequested(const json& params) {
  if (!params.is_object()) return false;
  auto it = params.find("binary_data");
  return it != params.end() && it->is_boolean() && it->get<bool>();
}

// A V2 infer request body (JSON, optionally followed by binary tensors) into an InferRequest.
Status ParseV2(const HttpRequest& req, const ServingLimits& limits, InferRequest* out) {
  std::string_view header = req.body, binary;
  if (!req.inference_header_length.empty()) {
    std::size_t n = 0;
    try {
      std::size_t pos = 0;
      n = std::stoul(req.inference_header_length, &pos);
      if (pos != req.inference_header_length.size()) throw std::invalid_argument("");
    } catch (...) {
      return InvalidArgument("Inference-Header-Content-Length '" + req.inference_header_length +
                             "': expected a byte count");
    }
    if (n > req.body.size()) {
      return InvalidArgument("Inference-Header-Content-Length " + std::to_string(n) +
                             " is larger than the body (" + std::to_string(req.body.size()) + " bytes)");
    }
    header = std::string_view(req.body).substr(0, n);
    binary = std::string_view(req.body).substr(n);
  }
  json j = json::parse(header, nullptr, false);
  if (j.is_discarded()) return InvalidArgument("request body: malformed JSON");
  if (!j.is_object()) return InvalidArgument("request body: expected a JSON object");
  if (const json* id = Field(j, "id")) {
    if (!id->is_string()) return InvalidArgument("'id' must be a string");
    out->id = id->get<std::string>();
  }
  if (const json* p = Field(j, "parameters")) {
    if (!p->is_object()) return InvalidArgument("'parameters' must be an object");
    auto it = p->find("binary_data_output");
    if (it != p->end() && it->is_boolean()) out->binary_output = it->get<bool>();
  }
  const json* inputs = Field(j, "inputs");
  if (!inputs || !inputs->is_array()) return InvalidArgument("request body: 'inputs' must be an array");
  std::size_t offset = 0;
  for (std::size_t k = 0; k < inputs->size(); ++k) {
    const json& in = (*inputs)[k];
    std::string what = "inputs[" + std::to_string(k) + "]";
    if (!in.is_object()) return InvalidArgument(what + ": expected an object");
    const json* name = Field(in, "name");
    if (!name || !name->is_string()) return InvalidArgument(what + ": 'name' must be a string");
    InputTensor t;
    t.name = name->get<std::string>();
    what = "input '" + t.name + "'";
    const json* dt = Field(in, "datatype");
    if (!dt || !dt->is_string()) return InvalidArgument(what + ": 'datatype' must be a string");
    auto type = ParseDType(dt->get<std::string>());
    if (!type) {
      return InvalidArgument(what + ": unknown datatype '" + dt->get<std::string>() +
                             "'; expected BOOL, UINT8..64, INT8..64, FP16, FP32, FP64, BF16 or BYTES");
    }
    t.datatype = *type;
    const json* shape = Field(in, "shape");
    if (!shape) return InvalidArgument(what + ": 'shape' is missing");
    std::size_t count = 0;
    ASSIGN_OR_RETURN(t.shape, ParseShape(*shape, what, limits.max_tensor_elements, &count));
    const json* params = Field(in, "parameters");
    const json* bsize = params && params->is_object() ? Field(*params, "binary_data_size") : nullptr;
    if (bsize) {
      if (!bsize->is_number_unsigned()) return InvalidArgument(what + ": 'binary_data_size' must be a byte count");
      const auto n = bsize->get<std::size_t>();
      if (offset + n > binary.size()) {
        return InvalidArgument(what + ": binary_data_size " + std::to_string(n) + " runs past the " +
                               std::to_string(binary.size()) + " bytes of binary data after the JSON header");
      }
      RETURN_IF_ERROR(DecodeRaw(t.datatype, binary.substr(offset, n), count, what, &t.values));
      offset += n;
    } else {
      const json* data = Field(in, "data");
      if (!data) return InvalidArgument(what + ": 'data' is missing (and no binary_data_size)");
      t.values.reserve(count);
      RETURN_IF_ERROR(Flatten(*data, what, 0, limits.max_tensor_elements, &t.values));
      if (t.values.size() != count) {
        return InvalidArgument(what + ": " + std::to_string(t.values.size()) + " data elements for shape " +
                               shape->dump() + " (expected " + std::to_string(count) + ")");
      }
    }
    out->inputs.push_back(std::move(t));
  }
  if (offset != binary.size()) {
    return InvalidArgument(std::to_string(binary.size() - offset) +
                           " bytes of binary data after the JSON header belong to no input");
  }
  if (const json* outs = Field(j, "outputs")) {
    if (!outs->is_array()) return InvalidArgument("'outputs' must be an array");
    for (const auto& o : *outs) {
      if (!o.is_object() || !Field(o, "name") || !o["name"].is_string()) {
        return InvalidArgument("'outputs' entries must be objects with a string 'name'");
      }
      RequestedOutput r{o["name"].get<std::string>(), false};
      if (const json* p = Field(o, "parameters")) r.binary = BinaryRequested(*p);
      out->outputs.push_back(std::move(r));
    }
  }
  return Status::Ok();
}

// A V1 body {"instances": [[...], ...]} (or {"inputs": [[...]]}) into a V2-style request.
Status ParseV1(const HttpRequest& req, const ServedModel& m, const ServingLimits& limits,
               InferRequest* out) {
  json j = json::parse(req.body, nullptr, false);
  if (j.is_discarded()) return InvalidArgument("request body: malformed JSON");
  if (!j.is_object()) return InvalidArgument("request body: expected a JSON object");
  const json* inst = Field(j, "instances");
  if (!inst) inst = Field(j, "inputs");
  if (!inst || !inst->is_array()) {
    return InvalidArgument("request body: expected 'instances' (an array of feature arrays)");
  }
  InputTensor t;
  t.name = m.metadata().inputs.empty() ? "input_0" : m.metadata().inputs[0].name;
  t.datatype = DType::kFp64;
  const auto n_in = static_cast<std::size_t>(m.metadata().n_inputs);
  for (std::size_t r = 0; r < inst->size(); ++r) {
    const json& row = (*inst)[r];
    const std::size_t before = t.values.size();
    RETURN_IF_ERROR(Flatten(row, "instances[" + std::to_string(r) + "]", 0, limits.max_tensor_elements, &t.values));
    if (t.values.size() - before != n_in) {
      return InvalidArgument("instances[" + std::to_string(r) + "]: " + std::to_string(t.values.size() - before) +
                             " features; model '" + m.name() + "' expects " + std::to_string(n_in));
    }
  }
  t.shape = {static_cast<std::int64_t>(inst->size()), static_cast<std::int64_t>(n_in)};
  out->inputs.push_back(std::move(t));
  return Status::Ok();
}

json TimingParameters(const InferTimings& t) {
  json j{{"device_cycles", t.device_cycles},      {"device_seconds", t.device_seconds},
              {"queue_seconds", t.queue_seconds},      {"driver_seconds", t.driver_seconds},
              {"batch_rows", t.batch_rows},            {"input_overflows", t.input_overflows}};
  if (t.remote) {
    j["board_server_seconds"] = t.board_server_seconds;
    j["network_seconds"] = t.network_seconds;
  }
  return j;
}

HttpResponse V2Response(const InferResponse& r) {
  json j;
  j["model_name"] = r.model_name;
  j["model_version"] = r.model_version.empty() ? "1" : r.model_version;
  if (!r.id.empty()) j["id"] = r.id;
  j["parameters"] = TimingParameters(r.timings);
  std::string binary;
  json outs = json::array();
  for (const auto& o : r.outputs) {
    json t{{"name", o.name}, {"datatype", DTypeName(o.datatype)}, {"shape", o.shape}};
    if (o.binary) {
      const std::size_t before = binary.size();
      if (o.datatype == DType::kInt64) EncodeInt64(o.int64, &binary);
      else EncodeFp32(o.fp32, &binary);
      t["parameters"] = {{"binary_data_size", binary.size() - before}};
    } else if (o.datatype == DType::kInt64) {
      t["data"] = o.int64;
    } else {
      t["data"] = o.fp32;
    }
    outs.push_back(std::move(t));
  }
  j["outputs"] = std::move(outs);
  HttpResponse resp;
  resp.body = j.dump();
  if (!binary.empty()) {
    resp.headers.emplace_back("Inference-Header-Content-Length", std::to_string(resp.body.size()));
    resp.content_type = "application/octet-stream";
    resp.body += binary;
  }
  return resp;
}

HttpResponse V1Response(const InferResponse& r) {
  json preds = json::array();
  const OutputTensor* probs = nullptr;
  const OutputTensor* cls = nullptr;
  for (const auto& o : r.outputs) (o.datatype == DType::kInt64 ? cls : probs) = &o;
  if (probs) {
    const std::size_t rows = static_cast<std::size_t>(probs->shape[0]);
    const std::size_t n = rows ? probs->fp32.size() / rows : 0;
    for (std::size_t i = 0; i < rows; ++i) {
      preds.push_back(std::vector<float>(probs->fp32.begin() + i * n, probs->fp32.begin() + (i + 1) * n));
    }
  }
  json j{{"predictions", std::move(preds)}};
  if (cls) j[ServedModel::kClassOutput] = cls->int64;
  j["parameters"] = TimingParameters(r.timings);
  return JsonResponse(200, j);
}

json TensorMeta(const std::string& name, const std::string& datatype, const std::vector<std::int64_t>& shape) {
  return json{{"name", name}, {"datatype", datatype}, {"shape", shape}};
}

}  // namespace

int HttpStatusOf(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return 200;
    case StatusCode::kInvalidArgument: return 400;
    case StatusCode::kNotFound: return 404;
    case StatusCode::kResourceExhausted: return 413;
    case StatusCode::kUnavailable: return 503;
    case StatusCode::kUnimplemented: return 501;
    case StatusCode::kFailedPrecondition: return 400;
    case StatusCode::kInternal: return 500;
    case StatusCode::kAlreadyExists: return 409;
    case StatusCode::kPermissionDenied: return 403;
    case StatusCode::kUnauthenticated: return 401;
    case StatusCode::kCancelled: return 499;
    case StatusCode::kDeadlineExceeded: return 504;
  }
  return 500;
}

HttpResponse ErrorResponse(const Status& st) {
  return JsonResponse(HttpStatusOf(st.code()), json{{"error", st.message()}});
}

RestApi::RestApi(ModelRepository* repo, MetricsRegistry* metrics, ServerInfo info)
    : repo_(repo), metrics_(metrics), info_(std::move(info)) {}

void RestApi::Handle(HttpRequest req, Respond respond) {
  const auto seg = Segments(req.target);
  const bool get = req.method == "GET" || req.method == "HEAD";
  const bool post = req.method == "POST";
  auto method_not_allowed = [&](const char* allowed) {
    HttpResponse r = JsonResponse(405, json{{"error", "method " + req.method + " not allowed on " +
                                                          req.target.substr(0, req.target.find('?')) +
                                                          "; use " + allowed}});
    r.headers.emplace_back("Allow", allowed);
    respond(std::move(r));
  };
  auto find_model = [&](const std::string& name) -> std::shared_ptr<ServedModel> {
    auto m = repo_->Find(name);
    if (!m) respond(ErrorResponse(NotFound("unknown model '" + name + "'")));
    return m;
  };

  if (seg.size() == 1 && seg[0] == "metrics") {
    if (!get) return method_not_allowed("GET");
    HttpResponse r;
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = metrics_->Render();
    return respond(std::move(r));
  }
  if (!seg.empty() && seg[0] == "v2") {
    if (seg.size() == 1) {
      if (!get) return method_not_allowed("GET");
      return respond(JsonResponse(200, json{{"name", info_.name},
                                            {"version", info_.version},
                                            {"extensions", {"binary_tensor_data", "model_repository", "statistics"}}}));
    }
    if (seg.size() == 3 && seg[1] == "health" && (seg[2] == "live" || seg[2] == "ready")) {
      if (!get) return method_not_allowed("GET");
      if (seg[2] == "live") return respond(JsonResponse(200, json{{"live", true}}));
      const bool ready = repo_->AllReady();
      return respond(JsonResponse(ready ? 200 : 503, json{{"ready", ready}}));
    }
    if (seg.size() >= 2 && seg[1] == "repository") {
      if (!post) return method_not_allowed("POST");
      if (seg.size() == 3 && seg[2] == "index") {
        json arr = json::array();
        for (const auto& e : repo_->Index()) {
          json m{{"name", e.name}, {"version", e.version}, {"state", e.state}};
          if (!e.reason.empty()) m["reason"] = e.reason;
          arr.push_back(std::move(m));
        }
        return respond(JsonResponse(200, arr));
      }
      if (seg.size() == 5 && seg[2] == "models" && (seg[4] == "load" || seg[4] == "unload")) {
        Status st = seg[4] == "load" ? repo_->Load(seg[3]) : repo_->Unload(seg[3]);
        if (!st.ok()) return respond(ErrorResponse(st));
        return respond(JsonResponse(200, json::object()));
      }
      return respond(ErrorResponse(NotFound("no repository endpoint " + req.target)));
    }
    if (seg.size() >= 3 && seg[1] == "models") {
      const std::string& name = seg[2];
      std::size_t rest = 3;
      if (seg.size() >= 5 && seg[3] == "versions") {
        if (seg[4] != "1") {
          return respond(ErrorResponse(NotFound("model '" + name + "' has no version '" + seg[4] + "'; it has version 1")));
        }
        rest = 5;
      }
      auto m = find_model(name);
      if (!m) return;
      if (seg.size() == rest) {
        if (!get) return method_not_allowed("GET");
        if (m->state() == ModelState::kFailed || m->metadata().n_inputs == 0) {
          return respond(ErrorResponse(Unavailable("model '" + name + "' is not loaded: " + m->reason())));
        }
        return respond(ModelMetadata(*m));
      }
      if (seg.size() == rest + 1) {
        const std::string& what = seg[rest];
        if (what == "ready") {
          if (!get) return method_not_allowed("GET");
          const bool ready = m->state() == ModelState::kReady;
          return respond(JsonResponse(ready ? 200 : 503, json{{"name", name}, {"ready", ready}}));
        }
        if (what == "infer") {
          if (!post) return method_not_allowed("POST");
          return Infer(name, req, std::move(respond), false);
        }
        if (what == "config" || what == "stats") {
          if (!get) return method_not_allowed("GET");
          if (m->metadata().n_inputs == 0) {
            return respond(ErrorResponse(Unavailable("model '" + name + "' is not loaded: " + m->reason())));
          }
          return respond(what == "config" ? ModelConfig(*m) : ModelStats(*m));
        }
      }
    }
    return respond(ErrorResponse(NotFound("no V2 endpoint " + req.method + " " + req.target)));
  }
  if (!seg.empty() && seg[0] == "v1" && seg.size() >= 2 && seg[1] == "models") {
    if (seg.size() == 2) {
      if (!get) return method_not_allowed("GET");
      return respond(JsonResponse(200, json{{"models", repo_->ReadyModels()}}));
    }
    if (seg.size() == 3) {
      const std::string& s = seg[2];
      const auto colon = s.rfind(':');
      if (colon != std::string::npos) {
        const std::string verb = s.substr(colon + 1), name = s.substr(0, colon);
        if (verb != "predict") {
          return respond(ErrorResponse(NotFound("V1 verb ':" + verb + "' is not supported; use :predict")));
        }
        if (!post) return method_not_allowed("POST");
        if (!find_model(name)) return;
        return Infer(name, req, std::move(respond), true);
      }
      if (!get) return method_not_allowed("GET");
      auto m = find_model(s);
      if (!m) return;
      const bool ready = m->state() == ModelState::kReady;
      if (!ready) {
        return respond(ErrorResponse(Unavailable("model '" + s + "' is not ready (" + ModelStateName(m->state()) + ")")));
      }
      return respond(JsonResponse(200, json{{"name", s}, {"ready", true}}));
    }
  }
  respond(ErrorResponse(NotFound("no endpoint " + req.method + " " + req.target)));
}

void RestApi::Infer(const std::string& model, const HttpRequest& req, Respond respond, bool v1) {
  const auto start = Clock::now();
  auto m = repo_->Find(model);
  if (!m) return respond(ErrorResponse(NotFound("unknown model '" + model + "'")));
  if (m->state() != ModelState::kReady) {
    return respond(ErrorResponse(Unavailable("model '" + model + "' is not ready (" +
                                             ModelStateName(m->state()) + ")")));
  }
  InferRequest ir;
  ir.model_name = model;
  Status st = v1 ? ParseV1(req, *m, repo_->options().limits, &ir)
                 : ParseV2(req, repo_->options().limits, &ir);
  const ServedModel::Instruments& inst = m->instruments();
  Histogram* total = v1 ? inst.request_v1 : inst.request_v2;
  if (!st.ok()) {
    if (inst.failure) inst.failure->Inc();
    if (total) total->Observe(Since(start));
    return respond(ErrorResponse(st));
  }
  if (inst.preprocess_seconds) inst.preprocess_seconds->Observe(Since(start));
  Histogram* post_hist = inst.postprocess_seconds;
  m->Infer(std::move(ir), [respond = std::move(respond), v1, start, total, post_hist](Result<InferResponse> r) {
    if (!r.ok()) {
      if (total) total->Observe(Since(start));
      return respond(ErrorResponse(r.status()));
    }
    const auto post = Clock::now();
    HttpResponse resp = v1 ? V1Response(*r) : V2Response(*r);
    if (post_hist) post_hist->Observe(Since(post));
    if (total) total->Observe(Since(start));
    respond(std::move(resp));
  });
}

HttpResponse RestApi::ModelMetadata(const ServedModel& m) const {
  const auto& md = m.metadata();
  json inputs = json::array(), outputs = json::array();
  for (const auto& t : md.inputs) inputs.push_back(TensorMeta(t.name, "FP32", {-1, md.n_inputs}));
  outputs.push_back(TensorMeta(m.output_name(), "FP32", {-1, md.n_outputs}));
  if (m.is_classifier()) outputs.push_back(TensorMeta(ServedModel::kClassOutput, "INT64", {-1}));
  json j{{"name", m.name()},
         {"versions", {"1"}},
         {"platform", "fpgaserve"},
         {"inputs", inputs},
         {"outputs", outputs},
         {"parameters",
          {{"board", md.board},
           {"firmware_id", md.id},
           {"precision", md.precision},
           {"input_format", md.inputs.empty() ? "" : md.inputs[0].format},
           {"latency_cycles", md.latency_cycles},
           {"initiation_interval", md.initiation_interval},
           {"clock_mhz", md.clock_mhz}}}};
  return JsonResponse(200, j);
}

HttpResponse RestApi::ModelConfig(const ServedModel& m) const {
  const auto& md = m.metadata();
  const auto& lim = repo_->options().limits;
  json j{{"name", m.name()},
         {"platform", "fpgaserve"},
         {"backend", "fpgaserve"},
         {"max_batch_size", lim.max_request_rows},
         {"input", {{{"name", md.inputs.empty() ? "input_0" : md.inputs[0].name}, {"data_type", "TYPE_FP32"}, {"dims", {md.n_inputs}}}}},
         {"output", {{{"name", m.output_name()}, {"data_type", "TYPE_FP32"}, {"dims", {md.n_outputs}}}}},
         {"dynamic_batching",
          {{"max_queue_delay_microseconds", lim.max_queue_delay.count()},
           {"preferred_batch_size", {lim.max_batch_size}}}},
         {"parameters", {{"board", md.board}, {"driver", repo_->options().driver}, {"firmware_id", md.id}}}};
  if (m.is_classifier()) {
    j["output"].push_back({{"name", ServedModel::kClassOutput}, {"data_type", "TYPE_INT64"}, {"dims", json::array()}});
  }
  return JsonResponse(200, j);
}

HttpResponse RestApi::ModelStats(const ServedModel& m) const {
  const auto s = m.stats();
  auto ns = [](double seconds) { return static_cast<std::uint64_t>(seconds * 1e9); };
  json stat{{"name", m.name()},
            {"version", "1"},
            {"inference_count", s.inferences},
            {"execution_count", s.batches},
            {"inference_stats",
             {{"success", {{"count", s.success}, {"ns", ns(s.queue_seconds + s.compute_seconds)}}},
              {"fail", {{"count", s.failure}, {"ns", 0}}},
              {"queue", {{"count", s.success}, {"ns", ns(s.queue_seconds)}}},
              {"compute_infer", {{"count", s.success}, {"ns", ns(s.compute_seconds)}}}}}};
  return JsonResponse(200, json{{"model_stats", {stat}}});
}

}  // namespace fpgaserve::serving
