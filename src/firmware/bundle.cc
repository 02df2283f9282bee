#include "firmware/bundle.h"

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/file_io.h"
#include "core/json_fields.h"
#include "core/sha256.h"
#include "core/text.h"

namespace fpgaserve::firmware {

namespace jf = json_fields;
using OJson = nlohmann::ordered_json;

namespace {

constexpr std::uint64_t kMaxMetadataBytes = 16 << 20;

OJson TensorsJson(const std::vector<TensorMetadata>& ts) {
  OJson arr = OJson::array();
  for (const auto& t : ts) {
    arr.push_back(OJson{
        {"name", t.name}, {"shape", t.shape}, {"datatype", t.datatype}, {"format", t.format}});
  }
  return arr;
}

Result<int> IntIn(const jf::Json& obj, std::string_view key, const std::string& where,
                  std::int64_t lo, std::int64_t hi) {
  ASSIGN_OR_RETURN(const jf::Json* v, jf::Member(obj, key, where));
  const std::string at = jf::Child(where, key);
  ASSIGN_OR_RETURN(std::int64_t n, jf::Integer(*v, at));
  if (n < lo || n > hi) {
    return InvalidArgument(at + ": " + std::to_string(n) + "; expected " + std::to_string(lo) +
                           ".." + std::to_string(hi));
  }
  return static_cast<int>(n);
}

Result<std::string> Str(const jf::Json& obj, std::string_view key, const std::string& where) {
  ASSIGN_OR_RETURN(const jf::Json* v, jf::Member(obj, key, where));
  return jf::String(*v, jf::Child(where, key));
}

Result<std::vector<TensorMetadata>> ParseTensors(const jf::Json& obj, std::string_view key,
                                                 const std::string& where) {
  ASSIGN_OR_RETURN(const jf::Json* v, jf::Member(obj, key, where));
  const std::string at = jf::Child(where, key);
  ASSIGN_OR_RETURN(const jf::Json::array_t* arr, jf::Array(*v, at));
  if (arr->size() != 1) {
    return InvalidArgument(at + ": " + std::to_string(arr->size()) +
                           " tensors; expected exactly one (single-input, single-output cores)");
  }
  std::vector<TensorMetadata> out;
  for (std::size_t i = 0; i < arr->size(); ++i) {
    const std::string ti = jf::Child(at, i);
    TensorMetadata t;
    ASSIGN_OR_RETURN(t.name, Str((*arr)[i], "name", ti));
    ASSIGN_OR_RETURN(const jf::Json* shape, jf::Member((*arr)[i], "shape", ti));
    ASSIGN_OR_RETURN(t.shape, jf::IntegerArray(*shape, jf::Child(ti, "shape")));
    if (t.shape.empty() || t.shape[0] != -1) {
      return InvalidArgument(jf::Child(ti, "shape") + ": expected -1 (the batch) first");
    }
    for (std::size_t d = 1; d < t.shape.size(); ++d) {
      if (t.shape[d] < 1 || t.shape[d] > (1 << 24)) {
        return InvalidArgument(jf::Child(jf::Child(ti, "shape"), d) + ": " +
                               std::to_string(t.shape[d]) + "; expected 1..16777216");
      }
    }
    ASSIGN_OR_RETURN(t.datatype, Str((*arr)[i], "datatype", ti));
    ASSIGN_OR_RETURN(t.format, Str((*arr)[i], "format", ti));
    out.push_back(std::move(t));
  }
  return out;
}

std::int64_t Elements(const TensorMetadata& t) {
  std::int64_t n = 1;
  for (std::size_t d = 1; d < t.shape.size(); ++d) n *= t.shape[d];
  return n;
}

bool SafeRelativePath(const std::string& p) {
  if (p.empty() || p[0] == '/') return false;
  for (const auto& part : std::filesystem::path(p)) {
    if (part == ".." || part == ".") return false;
  }
  return true;
}

OJson OrNull(std::int64_t v) { return v < 0 ? OJson(nullptr) : OJson(v); }
OJson OrNull(double v) { return v <= 0 ? OJson(nullptr) : OJson(v); }

// An optional non-negative integer: null (or absent) means unknown (-1).
Result<std::int64_t> OptCount(const jf::Json& obj, std::string_view key, const std::string& w) {
  auto it = obj.find(std::string(key));
  if (it == obj.end() || it->is_null()) return std::int64_t{-1};
  const std::string at = jf::Child(w, key);
  ASSIGN_OR_RETURN(std::int64_t n, jf::Integer(*it, at));
  if (n < 0) return InvalidArgument(at + ": " + std::to_string(n) + "; expected >= 0 or null");
  return n;
}

Result<double> OptMhz(const jf::Json& obj, std::string_view key, const std::string& w) {
  auto it = obj.find(std::string(key));
  if (it == obj.end() || it->is_null()) return 0.0;
  const std::string at = jf::Child(w, key);
  if (!it->is_number()) return InvalidArgument(at + ": expected a number (MHz) or null");
  const double v = it->get<double>();
  if (!(v > 0 && v < 1e5)) return InvalidArgument(at + ": " + FormatDouble(v) + "; expected > 0");
  return v;
}

Status ParseBuildFacts(const jf::Json& doc, const std::string& w, BundleMetadata& m) {
  ASSIGN_OR_RETURN(const jf::Json* res, jf::Member(doc, "resources", w));
  const std::string rw = w + ".resources";
  if (!res->is_object()) return InvalidArgument(rw + ": expected an object");
  ASSIGN_OR_RETURN(m.resources.lut, OptCount(*res, "lut", rw));
  ASSIGN_OR_RETURN(m.resources.ff, OptCount(*res, "ff", rw));
  ASSIGN_OR_RETURN(m.resources.dsp, OptCount(*res, "dsp", rw));
  ASSIGN_OR_RETURN(m.resources.bram, OptCount(*res, "bram", rw));
  ASSIGN_OR_RETURN(m.resources.lut_kind, Str(*res, "lut_kind", rw));
  ASSIGN_OR_RETURN(m.resources.source, Str(*res, "source", rw));
  ASSIGN_OR_RETURN(const jf::Json* timing, jf::Member(doc, "timing", w));
  if (!timing->is_object()) return InvalidArgument(w + ".timing: expected an object");
  ASSIGN_OR_RETURN(m.clock_mhz, OptMhz(*timing, "clock_mhz", w + ".timing"));
  ASSIGN_OR_RETURN(m.fmax_mhz, OptMhz(*timing, "fmax_mhz", w + ".timing"));
  ASSIGN_OR_RETURN(const jf::Json* bit, jf::Member(doc, "bitstream", w));
  const std::string bw = w + ".bitstream";
  if (!bit->is_object()) return InvalidArgument(bw + ": expected an object");
  ASSIGN_OR_RETURN(m.bitstream.status, Str(*bit, "status", bw));
  if (m.bitstream.status != "built" && m.bitstream.status != "needs-vendor-tools") {
    return InvalidArgument(bw + ".status: " + Quote(m.bitstream.status) +
                           "; expected built or needs-vendor-tools");
  }
  ASSIGN_OR_RETURN(m.bitstream.path, Str(*bit, "path", bw));
  ASSIGN_OR_RETURN(m.bitstream.command, Str(*bit, "command", bw));
  if (m.bitstream.status == "built" && !SafeRelativePath(m.bitstream.path)) {
    return InvalidArgument(bw + ".path: " + Quote(m.bitstream.path) +
                           "; expected a relative path inside the bundle");
  }
  if (auto it = doc.find("toolchain"); it != doc.end()) {
    if (!it->is_object()) return InvalidArgument(w + ".toolchain: expected an object");
    for (const auto& [tool, version] : it->items()) {
      if (!version.is_string()) {
        return InvalidArgument(w + ".toolchain." + tool + ": expected a version string");
      }
      m.toolchain[tool] = version.get<std::string>();
    }
  }
  if (auto it = doc.find("build_stages"); it != doc.end()) {
    ASSIGN_OR_RETURN(const jf::Json::array_t* arr, jf::Array(*it, w + ".build_stages"));
    for (std::size_t i = 0; i < arr->size(); ++i) {
      const std::string at = jf::Child(w + ".build_stages", i);
      StageTime t;
      ASSIGN_OR_RETURN(t.stage, Str((*arr)[i], "stage", at));
      ASSIGN_OR_RETURN(const jf::Json* sec, jf::Member((*arr)[i], "seconds", at));
      if (!sec->is_number() || sec->get<double>() < 0) {
        return InvalidArgument(at + ".seconds: expected a number >= 0");
      }
      t.seconds = sec->get<double>();
      m.stages.push_back(std::move(t));
    }
  }
  return Status::Ok();
}

}  // namespace

std::string RoleOf(const std::string& path, const std::string& bitstream_path) {
  auto starts = [&path](std::string_view p) { return path.rfind(p, 0) == 0; };
  auto ends = [&path](std::string_view e) {
    return path.size() >= e.size() && path.compare(path.size() - e.size(), e.size(), e) == 0;
  };
  if (!bitstream_path.empty() && path == bitstream_path) return "bitstream";
  if (path == kSimLibraryFile) return "sim-library";
  if (path == kModelFile) return "model";
  if (path == kPrecisionFile) return "precision";
  if (ends(".hwh")) return "hwh";
  if (starts("rtl/")) return "rtl";
  if (starts("tb/")) return "testbench";
  if (starts("reports/")) return "report";
  if (starts("logs/")) return "log";
  if (starts("scripts/") || starts("vivado/") || starts("vitis/")) return "script";
  if (starts("sim/")) return "sim-library";
  return "other";
}

std::string FlavorOf(const std::string& interface) {
  if (interface == "axis") return "axist";
  if (interface == "axilite") return "aximm";
  return "stream";
}

std::string MetadataToJson(const BundleMetadata& m) {
  OJson layers = OJson::array();
  for (const auto& l : m.layers) {
    layers.push_back(OJson{{"name", l.name},
                           {"op", l.op},
                           {"reuse", l.reuse},
                           {"latency", l.latency},
                           {"initiation_interval", l.initiation_interval},
                           {"multipliers", l.multipliers}});
  }
  OJson files = OJson::array();
  for (const auto& f : m.files) {
    files.push_back(OJson{{"path", f.path},
                          {"sha256", f.sha256},
                          {"role", RoleOf(f.path, m.bitstream.path)}});
  }
  OJson stages = OJson::array();
  for (const auto& t : m.stages) stages.push_back(OJson{{"stage", t.stage}, {"seconds", t.seconds}});
  OJson toolchain = OJson::object();
  for (const auto& [tool, version] : m.toolchain) toolchain[tool] = version;
  OJson j{{"schema_version", m.schema_version},
          {"generator", "fpgaserve " + m.generator_version},
          {"id", m.id},
          {"board", m.board},
          {"precision", m.precision},
          {"reuse", m.reuse},
          {"interface", m.interface},
          {"latency_cycles", m.latency_cycles},
          {"initiation_interval", m.initiation_interval},
          {"inputs", TensorsJson(m.inputs)},
          {"outputs", TensorsJson(m.outputs)},
          {"layers", layers},
          {"resources",
           {{"lut", OrNull(m.resources.lut)},
            {"ff", OrNull(m.resources.ff)},
            {"dsp", OrNull(m.resources.dsp)},
            {"bram", OrNull(m.resources.bram)},
            {"lut_kind", m.resources.lut_kind},
            {"source", m.resources.source}}},
          {"timing", {{"clock_mhz", OrNull(m.clock_mhz)}, {"fmax_mhz", OrNull(m.fmax_mhz)}}},
          {"bitstream",
           {{"status", m.bitstream.status},
            {"path", m.bitstream.path},
            {"command", m.bitstream.command}}},
          {"toolchain", toolchain},
          {"build_stages", stages},
          {"files", files},
          {"n_inputs", m.n_inputs},
          {"n_outputs", m.n_outputs},
          {"predictor", "fpgaserve"},
          {"flavor", m.flavor},
          {"benchcore", true}};
  return j.dump(2) + "\n";
}

Result<BundleMetadata> ParseBundleMetadata(std::string_view text, const std::string& origin) {
  ASSIGN_OR_RETURN(jf::Json doc, jf::Parse(text, origin));
  const std::string& w = origin;
  if (!doc.is_object())
    return InvalidArgument(w + ": expected an object, found " + jf::TypeName(doc));
  BundleMetadata m;
  ASSIGN_OR_RETURN(m.schema_version, IntIn(doc, "schema_version", w, 1, 1 << 20));
  if (m.schema_version != kSchemaVersion) {
    return InvalidArgument(w + ".schema_version: " + std::to_string(m.schema_version) +
                           "; expected " + std::to_string(kSchemaVersion) +
                           " (recompile the bundle with this fpgaserve)");
  }
  ASSIGN_OR_RETURN(std::string generator, Str(doc, "generator", w));
  if (generator.rfind("fpgaserve ", 0) != 0) {
    return InvalidArgument(w + ".generator: " + Quote(generator) + "; expected 'fpgaserve <version>'");
  }
  m.generator_version = generator.substr(10);
  ASSIGN_OR_RETURN(std::string predictor, Str(doc, "predictor", w));
  if (predictor != "fpgaserve") {
    return InvalidArgument(w + ".predictor: " + Quote(predictor) + "; expected 'fpgaserve'");
  }
  ASSIGN_OR_RETURN(m.id, Str(doc, "id", w));
  if (m.id.size() != 64 || m.id.find_first_not_of("0123456789abcdef") != std::string::npos) {
    return InvalidArgument(w + ".id: " + Quote(m.id) + "; expected 64 lowercase hex digits");
  }
  ASSIGN_OR_RETURN(m.board, Str(doc, "board", w));
  ASSIGN_OR_RETURN(m.precision, Str(doc, "precision", w));
  ASSIGN_OR_RETURN(m.reuse, IntIn(doc, "reuse", w, 1, 1 << 24));
  ASSIGN_OR_RETURN(m.interface, Str(doc, "interface", w));
  if (m.interface != "stream" && m.interface != "axis" && m.interface != "axilite") {
    return InvalidArgument(w + ".interface: " + Quote(m.interface) +
                           "; expected stream, axis or axilite");
  }
  ASSIGN_OR_RETURN(m.latency_cycles, IntIn(doc, "latency_cycles", w, 0, 1 << 24));
  ASSIGN_OR_RETURN(m.initiation_interval, IntIn(doc, "initiation_interval", w, 1, 1 << 24));
  ASSIGN_OR_RETURN(m.inputs, ParseTensors(doc, "inputs", w));
  ASSIGN_OR_RETURN(m.outputs, ParseTensors(doc, "outputs", w));
  ASSIGN_OR_RETURN(m.n_inputs, IntIn(doc, "n_inputs", w, 1, 1 << 24));
  ASSIGN_OR_RETURN(m.n_outputs, IntIn(doc, "n_outputs", w, 1, 1 << 24));
  if (m.n_inputs != Elements(m.inputs[0]) || m.n_outputs != Elements(m.outputs[0])) {
    return InvalidArgument(w + ": n_inputs/n_outputs (" + std::to_string(m.n_inputs) + "/" +
                           std::to_string(m.n_outputs) + ") disagree with the tensor shapes");
  }
  ASSIGN_OR_RETURN(m.flavor, Str(doc, "flavor", w));
  RETURN_IF_ERROR(ParseBuildFacts(doc, w, m));
  auto format = [&](const std::string& spec, const std::string& at) -> Result<numeric::NumberFormat> {
    auto f = numeric::ParseNumberFormat(spec);
    if (!f.ok()) return f.status().WithContext(at);
    return *f;
  };
  ASSIGN_OR_RETURN(m.input_format, format(m.inputs[0].format, w + ".inputs[0].format"));
  ASSIGN_OR_RETURN(m.output_format, format(m.outputs[0].format, w + ".outputs[0].format"));

  ASSIGN_OR_RETURN(const jf::Json* layers, jf::Member(doc, "layers", w));
  ASSIGN_OR_RETURN(const jf::Json::array_t* larr, jf::Array(*layers, w + ".layers"));
  for (std::size_t i = 0; i < larr->size(); ++i) {
    const std::string at = jf::Child(w + ".layers", i);
    hw::LayerSchedule l;
    ASSIGN_OR_RETURN(l.name, Str((*larr)[i], "name", at));
    ASSIGN_OR_RETURN(l.op, Str((*larr)[i], "op", at));
    ASSIGN_OR_RETURN(l.reuse, IntIn((*larr)[i], "reuse", at, 1, 1 << 24));
    ASSIGN_OR_RETURN(l.latency, IntIn((*larr)[i], "latency", at, 0, 1 << 24));
    ASSIGN_OR_RETURN(l.initiation_interval,
                     IntIn((*larr)[i], "initiation_interval", at, 1, 1 << 24));
    ASSIGN_OR_RETURN(const jf::Json* mult, jf::Member((*larr)[i], "multipliers", at));
    ASSIGN_OR_RETURN(l.multipliers, jf::Integer(*mult, jf::Child(at, "multipliers")));
    m.layers.push_back(std::move(l));
  }
  ASSIGN_OR_RETURN(const jf::Json* files, jf::Member(doc, "files", w));
  ASSIGN_OR_RETURN(const jf::Json::array_t* farr, jf::Array(*files, w + ".files"));
  for (std::size_t i = 0; i < farr->size(); ++i) {
    const std::string at = jf::Child(w + ".files", i);
    BundleFile f;
    ASSIGN_OR_RETURN(f.path, Str((*farr)[i], "path", at));
    if (!SafeRelativePath(f.path)) {
      return InvalidArgument(at + ".path: " + Quote(f.path) +
                             "; expected a relative path inside the bundle");
    }
    ASSIGN_OR_RETURN(f.sha256, Str((*farr)[i], "sha256", at));
    f.role = RoleOf(f.path, m.bitstream.path);
    m.files.push_back(std::move(f));
  }
  if (m.bitstream.status == "built" &&
      std::none_of(m.files.begin(), m.files.end(),
                   [&m](const BundleFile& f) { return f.path == m.bitstream.path; })) {
    return InvalidArgument(w + ".bitstream.path: " + Quote(m.bitstream.path) +
                           " is not among the bundle's files");
  }
  return m;
}

Result<BundleMetadata> ReadBundleMetadata(const std::string& dir) {
  const std::string path = (std::filesystem::path(dir) / kMetadataFile).string();
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) {
    return NotFound(dir + ": no such bundle directory");
  }
  if (!std::filesystem::exists(path, ec)) {
    return NotFound(dir + ": not a firmware bundle (no " + kMetadataFile +
                    "; create one with fpgaserve compile)");
  }
  ASSIGN_OR_RETURN(std::string text, ReadFile(path, kMaxMetadataBytes));
  return ParseBundleMetadata(text, path);
}

Status VerifyBundleFile(const std::string& dir, const BundleMetadata& m, const std::string& path) {
  const BundleFile* entry = nullptr;
  for (const auto& f : m.files) {
    if (f.path == path) entry = &f;
  }
  if (entry == nullptr) {
    return InvalidArgument(dir + ": incomplete bundle: " + kMetadataFile + " lists no file " +
                           Quote(path));
  }
  const std::string full = (std::filesystem::path(dir) / path).string();
  auto digest = Sha256File(full);
  if (!digest.ok()) {
    return InvalidArgument(dir + ": incomplete bundle: " + digest.status().message());
  }
  if (*digest != entry->sha256) {
    return InvalidArgument(full + ": sha256 " + *digest + " differs from " + entry->sha256 +
                           " recorded in " + kMetadataFile + "; the bundle was modified");
  }
  return Status::Ok();
}

Result<std::vector<BundleFile>> ListBundleFiles(const std::string& dir) {
  namespace fs = std::filesystem;
  std::vector<BundleFile> files;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (!it->is_regular_file()) continue;
    const std::string rel = fs::relative(it->path(), dir).generic_string();
    if (rel == kMetadataFile || rel.front() == '.') continue;  // and the compile marker
    ASSIGN_OR_RETURN(std::string digest, Sha256File(it->path().string()));
    files.push_back({rel, digest, RoleOf(rel, "")});
  }
  if (ec) return InvalidArgument(dir + ": cannot list: " + ec.message());
  std::sort(files.begin(), files.end(),
            [](const BundleFile& a, const BundleFile& b) { return a.path < b.path; });
  return files;
}

std::string PrecisionConfigJson(const numeric::PrecisionConfig& p) {
  OJson layers = OJson::object();
  for (const auto& [name, lp] : p.layers) {
    layers[name] = {{"weight", lp.weight.ToString()},
                    {"bias", lp.bias.ToString()},
                    {"accum", lp.accum.ToString()},
                    {"result", lp.result.ToString()},
                    {"table_size", lp.table_size}};
  }
  // `precision` is only the default for variables not spelled out; every one is, so the input
  // format serves as a valid placeholder.
  OJson j{{"precision", p.input.ToString()},
          {"input", p.input.ToString()},
          {"softmax", p.softmax == numeric::SoftmaxMode::kArgmax ? "argmax" : "table"},
          {"layers", layers}};
  return j.dump(2) + "\n";
}

}  // namespace fpgaserve::firmware
