// The external build engines: exporters to BondMachine's and hls4ml's input formats, and the
// adapters that run those tools (argv vectors through RunSubprocess, never a shell).
//
// What is written and run (paths are absolute; WORK = request.work_dir, OUT = request.out_dir):
//   bondmachine: WORK/model.json (neuralbond JSON), then
//                  bondmachine -neuralbond-json WORK/model.json -board <board id> -o
//                  WORK/bondmachine
//                in WORK. Upstream BondMachine spells its network step `neuralbond -net-file` and
//                builds through its own helper scripts; this adapter expects a `bondmachine`
//                program (or wrapper) that takes the command line above. Precision, reuse and
//                interface are not passed: BondMachine picks its own register format.
//   hls4ml:      WORK/model.json (a Keras Sequential architecture, model.to_json() style),
//                WORK/model_weights.h5 (Keras 2 save_weights HDF5 layout, written with the HDF5 C
//                API), WORK/config.yml (ExportHls4mlConfig, OutputDir WORK/hls4ml_prj), then
//                  hls4ml convert -c WORK/config.yml
//                  hls4ml build -p WORK/hls4ml_prj -a
//                in WORK. `hls4ml build` runs Vivado HLS through os.system and exits 0 even when
//                Vivado fails, so a build that leaves no synthesis report (*.rpt) is an error too.
// Artifacts in OUT: the engine's inputs (model.json, config.yml, model_weights.h5), the tool's
// combined output (<engine>.log), hls4ml's report files under reports/ (paths as in OutputDir),
// BondMachine's whole output directory under bondmachine/, and every *.bit found, at the top.
//
// The tools' output is captured by RunSubprocess and passed to request.log line by line when each
// step ends (stdout lines, then stderr lines); it is not streamed while the tool runs.
#include "services/build/engines.h"

#include <hdf5.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string_view>
#include <utility>

#include "core/file_io.h"
#include "core/subprocess.h"
#include "core/text.h"
#include "importers/import.h"
#include "numeric/number_format.h"

namespace fpgaserve::build {

namespace fs = std::filesystem;
using model::ActivationKind;
using model::Graph;
using model::Layer;
using model::LayerKind;

namespace {

constexpr const char* kHls4mlProject = "fpgaserve";  // hls4ml ProjectName (the C++ top function)
constexpr std::size_t kTailLines = 20;               // output lines quoted in INTERNAL errors

// --- helpers shared by both engines ---

std::vector<std::string> SplitLines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(std::move(line));
  }
  return lines;
}

std::string LastLines(const std::vector<std::string>& lines, std::size_t n) {
  const std::size_t first = lines.size() > n ? lines.size() - n : 0;
  std::vector<std::string> tail(lines.begin() + static_cast<std::ptrdiff_t>(first), lines.end());
  return Join(tail, "\n");
}

std::string ShellWords(const std::vector<std::string>& argv) {  // for logs and messages only
  return Join(argv, " ");
}

// Runs the engine's tools one after the other under one deadline and one cancel flag, logging
// each command and its output lines and keeping the combined output for <engine>.log.
class ToolRunner {
 public:
  ToolRunner(std::string engine, const EngineRequest& request)
      : engine_(std::move(engine)),
        request_(request),
        deadline_(std::chrono::steady_clock::now() + request.timeout) {}

  void Log(const std::string& line) {
    transcript_ += line + "\n";
    if (request_.log) request_.log(line);
  }

  Status Run(const std::vector<std::string>& argv) {
    const std::string what = "engine '" + engine_ + "': `" + ShellWords(argv) + "`";
    if (request_.cancel != nullptr && request_.cancel->load()) {
      return Cancelled(what + " not started: the build was cancelled");
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline_ - std::chrono::steady_clock::now());
    if (left.count() <= 0) return DeadlineExceeded(what + " not started: " + TimeoutText());
    SubprocessOptions options;
    options.timeout = left;
    options.working_dir = request_.work_dir;
    options.cancel = request_.cancel;
    Log("$ " + ShellWords(argv));
    auto run = RunSubprocess(argv, options);
    if (!run.ok()) {
      if (run.status().code() == StatusCode::kNotFound) {
        return FailedPrecondition(what + ": " + run.status().message());
      }
      return run.status();
    }
    std::vector<std::string> lines = SplitLines(run->stdout_text);
    for (auto& l : SplitLines(run->stderr_text)) lines.push_back(std::move(l));
    for (const auto& l : lines) Log(l);
    if (run->output_truncated) Log("(output truncated)");
    if (run->cancelled) return Cancelled(what + " was stopped: the build was cancelled");
    if (run->timed_out) return DeadlineExceeded(what + " was stopped: " + TimeoutText());
    if (!run->success()) {
      return Internal(what + " failed (" + run->Describe() + "); its last output lines:\n" +
                      LastLines(lines, kTailLines));
    }
    last_lines_ = std::move(lines);
    return Status::Ok();
  }

  // For errors found after a successful exit (a tool that wrote nothing).
  std::string LastOutput() const { return LastLines(last_lines_, kTailLines); }
  const std::string& transcript() const { return transcript_; }

 private:
  std::string TimeoutText() const {
    return "the build timeout of " + std::to_string(request_.timeout.count()) + " s ran out";
  }

  std::string engine_;
  const EngineRequest& request_;
  std::chrono::steady_clock::time_point deadline_;
  std::string transcript_;
  std::vector<std::string> last_lines_;
};

Status MissingTool(const std::string& engine, const std::string& program,
                   const std::string& provider) {
  return FailedPrecondition("engine '" + engine + "' needs the `" + program +
                            "` program on PATH (" + provider + "); it was not found");
}

Status MakeDirs(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Internal("cannot create directory " + dir + ": " + ec.message());
  return Status::Ok();
}

Status CopyFile(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  fs::create_directories(to.parent_path(), ec);
  if (!ec) fs::copy_file(from, to, fs::copy_options::overwrite_existing, ec);
  if (ec)
    return Internal("cannot copy " + from.string() + " to " + to.string() + ": " + ec.message());
  return Status::Ok();
}

// Regular files under `dir` (recursive) whose names end with `suffix`, sorted.
std::vector<fs::path> FilesEndingWith(const fs::path& dir, const std::string& suffix) {
  std::vector<fs::path> found;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return found;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (it->is_regular_file(ec) && name.size() >= suffix.size() &&
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
      found.push_back(it->path());
    }
  }
  std::sort(found.begin(), found.end());
  return found;
}

// Copies every *.bit under `dir` to the top of out_dir (the first of equal names wins).
Status CollectBitstreams(const fs::path& dir, const fs::path& out_dir, ToolRunner& runner) {
  for (const auto& bit : FilesEndingWith(dir, ".bit")) {
    const fs::path to = out_dir / bit.filename();
    std::error_code ec;
    if (fs::exists(to, ec)) {
      runner.Log("bitstream " + bit.string() + " not collected: " + to.filename().string() +
                 " is already there");
      continue;
    }
    RETURN_IF_ERROR(CopyFile(bit, to));
  }
  return Status::Ok();
}

std::vector<std::string> ListArtifacts(const fs::path& out_dir) {
  std::vector<std::string> artifacts;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(out_dir, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (it->is_regular_file(ec)) {
      artifacts.push_back(it->path().lexically_relative(out_dir).generic_string());
    }
  }
  std::sort(artifacts.begin(), artifacts.end());
  return artifacts;
}

Status CheckDirs(const std::string& engine, const EngineRequest& request) {
  if (request.graph == nullptr) {
    return InvalidArgument("engine '" + engine + "': the request has no model graph");
  }
  if (request.work_dir.empty() || request.out_dir.empty()) {
    return InvalidArgument("engine '" + engine + "': work_dir and out_dir must both be set");
  }
  return Status::Ok();
}

std::string Absolute(const std::string& path) {
  std::error_code ec;
  fs::path p = fs::absolute(path, ec);
  return ec ? path : p.lexically_normal().string();
}

// A YAML double-quoted scalar: JSON string escapes are valid YAML escapes.
std::string YamlString(const std::string& s) { return nlohmann::json(s).dump(); }

// --- the Keras export for hls4ml ---

// The graph as a single chain from its input to its output, or UNIMPLEMENTED naming the first
// layer that breaks the chain. `engine_format` names the target in messages.
Status CheckChain(const Graph& graph, const std::string& engine_format) {
  if (graph.inputs.size() != 1 || graph.outputs.size() != 1) {
    return Unimplemented(engine_format +
                         " needs a model with exactly one input and one output; "
                         "this one has " +
                         std::to_string(graph.inputs.size()) + " and " +
                         std::to_string(graph.outputs.size()));
  }
  if (graph.layers.empty()) return InvalidArgument("the model has no layers");
  std::string current = graph.inputs[0].name;
  for (const auto& l : graph.layers) {
    if (l.inputs.size() != 1 || l.outputs.size() != 1 || l.inputs[0] != current) {
      return Unimplemented("layer '" + l.name + "' (" + l.OpName() + "): " + engine_format +
                           " takes a single chain of layers, each reading the previous one");
    }
    current = l.outputs[0];
  }
  if (current != graph.outputs[0].name) {
    return Unimplemented(engine_format + ": the model's output '" + graph.outputs[0].name +
                         "' is not the last layer's output '" + current + "'");
  }
  return Status::Ok();
}

struct KerasArray {
  std::string name;  // "kernel:0"
  std::vector<hsize_t> dims;
  std::vector<double> values;  // row-major
};

struct KerasLayerWeights {
  std::string layer;  // Keras layer name; also the HDF5 group
  std::vector<KerasArray> arrays;
};

struct KerasModel {
  std::string architecture_json;
  std::vector<KerasLayerWeights> weights;  // layers with weights, in model order
};

// BatchNormalization stands in for Scale layers: with moving_mean 0, moving_variance 1 - eps and
// eps = 2^-10, var + eps is exactly 1 and gamma / sqrt(1) = scale, beta - 0 = shift, bit for bit.
constexpr double kBatchNormEpsilon = 1.0 / 1024.0;

Result<KerasModel> ExportKeras(const Graph& graph) {
  RETURN_IF_ERROR(CheckChain(graph, "hls4ml's Keras input"));
  if (graph.inputs[0].shape.size() != 1 || graph.inputs[0].shape[0] <= 0) {
    return Unimplemented("input '" + graph.inputs[0].name + "' has shape " +
                         model::ShapeToString(graph.inputs[0].shape) +
                         "; the hls4ml export takes flat feature vectors ([F])");
  }
  using J = nlohmann::ordered_json;
  KerasModel out;
  J layers = J::array();
  const std::int64_t width = graph.inputs[0].shape[0];
  layers.push_back(J{{"class_name", "InputLayer"},
                     {"config",
                      {{"batch_input_shape", J::array({nullptr, width})},
                       {"dtype", "float32"},
                       {"sparse", false},
                       {"name", "input_1"}}}});
  int index = 1;
  for (const auto& l : graph.layers) {
    ++index;
    if (!l.ParamsMatchKind())
      return Internal("layer '" + l.name + "': parameters do not match its kind");
    if (l.kind == LayerKind::kDense) {
      const auto& d = l.dense();
      const std::string name = "dense_" + std::to_string(index);
      layers.push_back(J{{"class_name", "Dense"},
                         {"config",
                          {{"name", name},
                           {"trainable", true},
                           {"dtype", "float32"},
                           {"units", d.out_features},
                           {"activation", "linear"},
                           {"use_bias", true}}}});
      KerasArray kernel{"kernel:0",
                        {static_cast<hsize_t>(d.in_features), static_cast<hsize_t>(d.out_features)},
                        {}};
      kernel.values.resize(static_cast<std::size_t>(d.in_features * d.out_features));
      for (std::int64_t o = 0; o < d.out_features; ++o) {  // IR [out][in] -> Keras [in][out]
        for (std::int64_t i = 0; i < d.in_features; ++i) {
          kernel.values[static_cast<std::size_t>(i * d.out_features + o)] = d.w(o, i);
        }
      }
      KerasArray bias{"bias:0", {static_cast<hsize_t>(d.out_features)}, d.bias};
      out.weights.push_back({name, {std::move(kernel), std::move(bias)}});
    } else if (l.kind == LayerKind::kScale) {
      const auto& s = l.scale();
      const std::string name = "batch_normalization_" + std::to_string(index);
      layers.push_back(J{{"class_name", "BatchNormalization"},
                         {"config",
                          {{"name", name},
                           {"trainable", true},
                           {"dtype", "float32"},
                           {"axis", -1},
                           {"momentum", 0.99},
                           {"epsilon", kBatchNormEpsilon},
                           {"center", true},
                           {"scale", true}}}});
      const auto n = static_cast<hsize_t>(s.scale.size());
      out.weights.push_back(
          {name,
           {{"gamma:0", {n}, s.scale},
            {"beta:0", {n}, s.shift},
            {"moving_mean:0", {n}, std::vector<double>(n, 0.0)},
            {"moving_variance:0", {n}, std::vector<double>(n, 1.0 - kBatchNormEpsilon)}}});
    } else {
      const auto& a = l.activation();
      if (a.kind == ActivationKind::kLinear) continue;  // the identity
      if (a.kind == ActivationKind::kLeakyReLU) {
        layers.push_back(J{{"class_name", "LeakyReLU"},
                           {"config",
                            {{"name", "leaky_re_lu_" + std::to_string(index)},
                             {"trainable", true},
                             {"dtype", "float32"},
                             {"alpha", a.alpha}}}});
        continue;
      }
      std::string keras_name;
      switch (a.kind) {
        case ActivationKind::kReLU:
          keras_name = "relu";
          break;
        case ActivationKind::kSigmoid:
          keras_name = "sigmoid";
          break;
        case ActivationKind::kTanh:
          keras_name = "tanh";
          break;
        case ActivationKind::kSoftmax:
          keras_name = "softmax";
          break;
        default:
          return Unimplemented("layer '" + l.name + "' (" + l.OpName() +
                               "): no Keras activation for it");
      }
      layers.push_back(J{{"class_name", "Activation"},
                         {"config",
                          {{"name", keras_name + "_" + std::to_string(index)},
                           {"trainable", true},
                           {"dtype", "float32"},
                           {"activation", keras_name}}}});
    }
  }
  // keras_version names the Keras 2 layout this file follows (model.to_json()); Keras did not
  // write it.
  J doc{{"class_name", "Sequential"},
        {"config", {{"name", "fpgaserve_model"}, {"layers", std::move(layers)}}},
        {"keras_version", "2.13.1"},
        {"backend", "tensorflow"}};
  out.architecture_json = doc.dump(1) + "\n";
  return out;
}

// RAII for HDF5 identifiers.
class H5Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  H5Handle(hid_t id, Closer close) : id_(id), close_(close) {}
  H5Handle(const H5Handle&) = delete;
  H5Handle& operator=(const H5Handle&) = delete;
  ~H5Handle() {
    if (id_ >= 0) close_(id_);
  }
  hid_t get() const { return id_; }
  bool ok() const { return id_ >= 0; }

 private:
  hid_t id_;
  Closer close_;
};

// A fixed-length, NUL-padded string attribute (numpy 'S' dtype, as Keras 2 writes them): a scalar
// when `scalar`, otherwise a 1-D list.
Status WriteStringAttribute(hid_t object, const std::string& name,
                            const std::vector<std::string>& values, bool scalar,
                            const std::string& where) {
  std::size_t size = 1;
  for (const auto& v : values) size = std::max(size, v.size());
  std::string buffer(size * values.size(), '\0');
  for (std::size_t i = 0; i < values.size(); ++i)
    buffer.replace(i * size, values[i].size(), values[i]);
  H5Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
  if (!type.ok() || H5Tset_size(type.get(), size) < 0 ||
      H5Tset_strpad(type.get(), H5T_STR_NULLPAD) < 0) {
    return Internal(where + ": cannot make an HDF5 string type");
  }
  const hsize_t n = values.size();
  H5Handle space(scalar ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &n, nullptr), H5Sclose);
  H5Handle attr(H5Acreate2(object, name.c_str(), type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT),
                H5Aclose);
  if (!space.ok() || !attr.ok() || H5Awrite(attr.get(), type.get(), buffer.data()) < 0) {
    return Internal(where + ": cannot write attribute '" + name + "'");
  }
  return Status::Ok();
}

// Keras 2 save_weights layout: root attributes layer_names, backend, keras_version; one group per
// layer with attribute weight_names ("<layer>/kernel:0", ...) and the datasets at
// <layer>/<layer>/<var>:0. Values are stored as float64, so nothing is rounded.
Status WriteKerasWeights(const std::string& path, const KerasModel& model) {
  Status status = Status::Ok();
  H5E_BEGIN_TRY {
    H5Handle file(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
    if (!file.ok()) {
      status = Internal("cannot create HDF5 file " + path);
    } else {
      std::vector<std::string> names;
      for (const auto& l : model.weights) names.push_back(l.layer);
      status = WriteStringAttribute(file.get(), "layer_names", names, false, path);
      if (status.ok())
        status = WriteStringAttribute(file.get(), "backend", {"tensorflow"}, true, path);
      if (status.ok())
        status = WriteStringAttribute(file.get(), "keras_version", {"2.13.1"}, true, path);
      for (const auto& l : model.weights) {
        if (!status.ok()) break;
        const std::string where = path + ": /" + l.layer;
        H5Handle group(
            H5Gcreate2(file.get(), l.layer.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
            H5Gclose);
        H5Handle inner(group.ok() ? H5Gcreate2(group.get(), l.layer.c_str(), H5P_DEFAULT,
                                               H5P_DEFAULT, H5P_DEFAULT)
                                  : -1,
                       H5Gclose);
        if (!inner.ok()) {
          status = Internal(where + ": cannot create the layer's groups");
          break;
        }
        std::vector<std::string> weight_names;
        for (const auto& a : l.arrays) weight_names.push_back(l.layer + "/" + a.name);
        status = WriteStringAttribute(group.get(), "weight_names", weight_names, false, where);
        for (const auto& a : l.arrays) {
          if (!status.ok()) break;
          H5Handle space(H5Screate_simple(static_cast<int>(a.dims.size()), a.dims.data(), nullptr),
                         H5Sclose);
          H5Handle set(space.ok() ? H5Dcreate2(inner.get(), a.name.c_str(), H5T_IEEE_F64LE,
                                               space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)
                                  : -1,
                       H5Dclose);
          if (!set.ok() || H5Dwrite(set.get(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                                    a.values.data()) < 0) {
            status = Internal(where + ": cannot write dataset " + a.name);
          }
        }
      }
      if (status.ok() && H5Fflush(file.get(), H5F_SCOPE_GLOBAL) < 0) {
        status = Internal("cannot flush HDF5 file " + path);
      }
    }
  }
  H5E_END_TRY;
  return status;
}

// hls4ml's precision string for our spec: fixed<W,I[,Q,O]> -> ap_fixed<W,I[,AP_Q,AP_O]>,
// ufixed -> ap_ufixed, float32 -> float.
Result<std::string> Hls4mlPrecision(const std::string& spec_in) {
  const std::string spec = spec_in.empty() ? "fixed<16,6>" : spec_in;
  const auto unsupported = [&spec]() {
    return Unimplemented("precision " + Quote(spec) +
                         ": the hls4ml engine maps fixed<W,I> / ufixed<W,I> (with any rounding "
                         "and overflow modes) to ap_fixed / ap_ufixed and float32 to float; "
                         "other formats and per-layer or auto precision are not supported");
  };
  if (spec.rfind("auto", 0) == 0) return unsupported();
  ASSIGN_OR_RETURN(numeric::NumberFormat format, numeric::ParseNumberFormat(spec));
  if (format.is_float()) {
    const auto& f = format.floating();
    if (f.ToString() == "float32") return std::string("float");
    return unsupported();
  }
  const auto& f = format.fixed();
  std::string out = std::string(f.is_signed ? "ap_fixed<" : "ap_ufixed<") +
                    std::to_string(f.width) + "," + std::to_string(f.integer_bits);
  const bool modes =
      f.quantization != numeric::Quantization::kTrn || f.overflow != numeric::Overflow::kWrap;
  if (modes) {
    switch (f.quantization) {
      case numeric::Quantization::kTrn:
        out += ",AP_TRN";
        break;
      case numeric::Quantization::kRnd:
        out += ",AP_RND";
        break;
      case numeric::Quantization::kRndConv:
        out += ",AP_RND_CONV";
        break;
    }
    out += f.overflow == numeric::Overflow::kSat ? ",AP_SAT" : ",AP_WRAP";
  }
  return out + ">";
}

Status CheckHls4mlBoard(const boards::Board& board) {
  const bool amd =
      board.vendor == "AMD" && (board.toolchain == "vivado" || board.toolchain == "vitis");
  if (amd && !board.part.empty()) return Status::Ok();
  return FailedPrecondition("engine 'hls4ml' cannot build for board '" + board.id + "' (" +
                            board.vendor + " " + board.part +
                            "): hls4ml targets AMD/Xilinx parts (its Vivado backend); choose an "
                            "AMD board or the 'native' engine");
}

// --- the two adapters ---

Result<EngineResult> RunBondMachine(const EngineRequest& request) {
  const std::string engine = "bondmachine";
  RETURN_IF_ERROR(CheckDirs(engine, request));
  ASSIGN_OR_RETURN(std::string model_json, ExportNeuralbondJson(*request.graph));
  RETURN_IF_ERROR(CheckEngineAvailable(engine));
  const std::string work = Absolute(request.work_dir);
  const fs::path out = Absolute(request.out_dir);
  RETURN_IF_ERROR(MakeDirs(work));
  RETURN_IF_ERROR(MakeDirs(out.string()));
  const std::string model_path = (fs::path(work) / "model.json").string();
  const std::string tool_out = (fs::path(work) / "bondmachine").string();
  RETURN_IF_ERROR(WriteFileAtomic(model_path, model_json));

  ToolRunner runner(engine, request);
  if (!request.precision.empty() || request.reuse != 1) {
    runner.Log("note: precision and reuse are not passed to bondmachine; it picks its own format");
  }
  Status run = runner.Run(
      {"bondmachine", "-neuralbond-json", model_path, "-board", request.board.id, "-o", tool_out});
  (void)WriteFileAtomic((out / "bondmachine.log").string(), runner.transcript());
  RETURN_IF_ERROR(run);

  std::error_code ec;
  if (!fs::is_directory(tool_out, ec) || fs::is_empty(tool_out, ec)) {
    return Internal("engine 'bondmachine': `bondmachine` exited 0 but wrote nothing into " +
                    tool_out + "; its last output lines:\n" + runner.LastOutput());
  }
  RETURN_IF_ERROR(CopyFile(model_path, out / "model.json"));
  fs::copy(tool_out, out / "bondmachine",
           fs::copy_options::recursive | fs::copy_options::overwrite_existing, ec);
  if (ec)
    return Internal("cannot copy " + tool_out + " to " + (out / "bondmachine").string() + ": " +
                    ec.message());
  RETURN_IF_ERROR(CollectBitstreams(tool_out, out, runner));
  (void)WriteFileAtomic((out / "bondmachine.log").string(), runner.transcript());
  return EngineResult{ListArtifacts(out)};
}

Result<EngineResult> RunHls4ml(const EngineRequest& request) {
  const std::string engine = "hls4ml";
  RETURN_IF_ERROR(CheckDirs(engine, request));
  const std::string work = Absolute(request.work_dir);
  const fs::path out = Absolute(request.out_dir);
  const std::string json_path = (fs::path(work) / "model.json").string();
  const std::string h5_path = (fs::path(work) / "model_weights.h5").string();
  const std::string config_path = (fs::path(work) / "config.yml").string();
  const std::string project_dir = (fs::path(work) / "hls4ml_prj").string();
  // Everything that can be checked without the tool comes first.
  ASSIGN_OR_RETURN(std::string config,
                   ExportHls4mlConfig(request, json_path, h5_path, project_dir));
  ASSIGN_OR_RETURN(KerasModel keras, ExportKeras(*request.graph));
  RETURN_IF_ERROR(CheckEngineAvailable(engine));
  RETURN_IF_ERROR(MakeDirs(work));
  RETURN_IF_ERROR(MakeDirs(out.string()));
  RETURN_IF_ERROR(WriteFileAtomic(json_path, keras.architecture_json));
  RETURN_IF_ERROR(WriteKerasWeights(h5_path, keras));
  RETURN_IF_ERROR(WriteFileAtomic(config_path, config));
  for (const auto& p : {json_path, h5_path, config_path}) {
    RETURN_IF_ERROR(CopyFile(p, out / fs::path(p).filename()));
  }

  ToolRunner runner(engine, request);
  const auto save_log = [&]() {
    (void)WriteFileAtomic((out / "hls4ml.log").string(), runner.transcript());
  };
  Status run = runner.Run({"hls4ml", "convert", "-c", config_path});
  std::error_code ec;
  if (run.ok() && !fs::is_directory(project_dir, ec)) {
    run = Internal("engine 'hls4ml': `hls4ml convert` exited 0 but wrote no project " +
                   project_dir + "; its last output lines:\n" + runner.LastOutput());
  }
  if (run.ok()) run = runner.Run({"hls4ml", "build", "-p", project_dir, "-a"});
  save_log();
  RETURN_IF_ERROR(run);

  const auto reports = FilesEndingWith(project_dir, ".rpt");
  if (reports.empty()) {
    return Internal("engine 'hls4ml': `hls4ml build` left no synthesis report (*.rpt) in " +
                    project_dir +
                    " (hls4ml exits 0 even when Vivado HLS fails); its last output "
                    "lines:\n" +
                    runner.LastOutput());
  }
  for (const auto& r : reports) {
    RETURN_IF_ERROR(CopyFile(r, out / "reports" / r.lexically_relative(project_dir)));
  }
  RETURN_IF_ERROR(CollectBitstreams(project_dir, out, runner));
  save_log();
  return EngineResult{ListArtifacts(out)};
}

}  // namespace

std::vector<std::string> ExternalEngines() { return {"bondmachine", "hls4ml"}; }

Status CheckEngineAvailable(const std::string& name) {
  if (name == "bondmachine" && !IsOnPath("bondmachine")) {
    return MissingTool(name, "bondmachine", "BondMachine, https://github.com/BondMachineHQ/BondMachine");
  }
  if (name == "hls4ml" && !IsOnPath("hls4ml")) {
    return MissingTool(name, "hls4ml", "pip install hls4ml, and Vivado HLS for the build");
  }
  if (name != "bondmachine" && name != "hls4ml") {
    return InvalidArgument("unknown build engine " + Quote(name) + "; expected native, " + Join(ExternalEngines(), ", "));
  }
  return Status::Ok();
}

Result<EngineResult> RunExternalEngine(const std::string& name, const EngineRequest& request) {
  if (name == "bondmachine") return RunBondMachine(request);
  if (name == "hls4ml") return RunHls4ml(request);
  return InvalidArgument("unknown build engine " + Quote(name) + "; expected native, " +
                         Join(ExternalEngines(), ", "));
}

// BondMachine's node types (PROTOCOLS.md) are input, linear/summation, relu, softmax and output,
// so the graphs it can express are chains of Dense layers, each followed by ReLU or nothing
// (Linear activations are the identity), with Softmax layers. The JSON itself is written by the
// importers' ExportNeuralbond, the inverse of the neuralbond importer.
Result<std::string> ExportNeuralbondJson(const Graph& graph) {
  RETURN_IF_ERROR(CheckChain(graph, "BondMachine's neuralbond format"));
  const auto unsupported = [](const Layer& l, const std::string& why) {
    return Unimplemented("layer '" + l.name + "' (" + l.OpName() + "): " + why +
                         "; BondMachine's neuralbond format holds chains of Dense layers with ReLU "
                         "or no activation, and Softmax");
  };
  for (std::size_t i = 0; i < graph.layers.size(); ++i) {
    const Layer& l = graph.layers[i];
    if (l.kind == LayerKind::kDense) continue;
    if (l.kind != LayerKind::kActivation) return unsupported(l, "no neuralbond node type for it");
    const auto k = l.activation().kind;
    if (k == ActivationKind::kLinear || k == ActivationKind::kSoftmax) continue;
    if (k != ActivationKind::kReLU) return unsupported(l, "no neuralbond node type for it");
    if (i == 0 || graph.layers[i - 1].kind != LayerKind::kDense) {
      return unsupported(l, "a ReLU must directly follow a Dense layer (neuralbond 'relu' nodes)");
    }
  }
  return importers::ExportNeuralbond(graph);
}

Result<std::string> ExportHls4mlConfig(const EngineRequest& request,
                                       const std::string& model_json_path,
                                       const std::string& weights_path,
                                       const std::string& output_dir) {
  const boards::Board& board = request.board;
  RETURN_IF_ERROR(CheckHls4mlBoard(board));
  if (!(board.clock_mhz > 0)) {
    return InvalidArgument("board '" + board.id + "': clock " + FormatDouble(board.clock_mhz) +
                           " MHz; expected a positive clock");
  }
  if (request.reuse < 1) {
    return InvalidArgument("reuse factor " + std::to_string(request.reuse) + "; expected >= 1");
  }
  ASSIGN_OR_RETURN(std::string precision, Hls4mlPrecision(request.precision));
  const std::string interface =
      request.interface.empty() ? board.default_interface : request.interface;
  if (interface != "stream" && interface != "axis" && interface != "axilite") {
    return InvalidArgument("interface " + Quote(interface) + "; expected stream, axis or axilite");
  }
  // hls4ml's io_stream gives hls::stream ports (AXI-Stream in the exported IP); io_parallel gives
  // the whole vector at once, which suits the AXI-Lite and our own stream wrapper's parallel load.
  const std::string io_type = interface == "axis" ? "io_stream" : "io_parallel";
  std::ostringstream y;
  y << "# hls4ml project configuration written by fpgaserve for board " << board.id << " ("
    << board.part << ", " << FormatDouble(board.clock_mhz) << " MHz, interface "
    << interface << ")\n";
  y << "Backend: Vivado\n";
  y << "KerasJson: " << YamlString(model_json_path) << "\n";
  y << "KerasH5: " << YamlString(weights_path) << "\n";
  y << "OutputDir: " << YamlString(output_dir) << "\n";
  y << "ProjectName: " << kHls4mlProject << "\n";
  y << "Part: " << YamlString(board.part) << "\n";
  y << "ClockPeriod: " << FormatDouble(1000.0 / board.clock_mhz) << "\n";
  y << "IOType: " << io_type << "\n";
  y << "HLSConfig:\n";
  y << "  Model:\n";
  y << "    Precision: " << YamlString(precision) << "\n";
  y << "    ReuseFactor: " << request.reuse << "\n";
  return y.str();
}

}  // namespace fpgaserve::build
