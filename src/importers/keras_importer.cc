// Keras Sequential models -> IR: a model.to_json() architecture with HDF5 weights, or a full-model
// HDF5 file (model.save("x.h5")). Weights come in the Keras 2 layout (layer_names/weight_names) or
// the Keras 3 .weights.h5 layout (layers/<name>/vars/<i>); both are matched to layers by name.
#include <cmath>
#include <exception>
#include <filesystem>
#include <new>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/file_io.h"
#include "core/text.h"
#include "importers/hdf5_file.h"
#include "importers/import.h"

namespace fpgaserve::importers {
namespace {

using json = nlohmann::json;

constexpr std::string_view kHdf5Signature{"\x89HDF\r\n\x1a\n", 8};
constexpr const char* kSupportedLayers =
    "InputLayer, Dense, Activation, ReLU, LeakyReLU, Dropout, Flatten, Reshape, BatchNormalization";
constexpr const char* kSupportedActivations = "linear, relu, sigmoid, tanh, softmax, leaky_relu";

// Never throws: missing keys and non-objects both yield nullptr.
const json* Member(const json& object, const char* key) {
  if (!object.is_object()) return nullptr;
  auto it = object.find(key);
  return it == object.end() ? nullptr : &*it;
}

struct KerasLayer {
  std::string name;
  std::string class_name;
  const json* config = nullptr;
  const json* entry = nullptr;  // the whole layer object; Keras 3 puts build_config here
};

struct NamedArray {
  std::string name;
  Hdf5Array array;
};

// Reads a Keras 2 string-list attribute, which Keras splits into name0, name1, ... above 64 KiB.
Result<std::vector<std::string>> ReadKerasStrings(const Hdf5File& file, const std::string& object,
                                                  const std::string& name) {
  if (file.HasAttribute(object, name)) return file.ReadStringAttribute(object, name);
  std::vector<std::string> all;
  for (int chunk = 0; file.HasAttribute(object, name + std::to_string(chunk)); ++chunk) {
    ASSIGN_OR_RETURN(auto part, file.ReadStringAttribute(object, name + std::to_string(chunk)));
    all.insert(all.end(), part.begin(), part.end());
  }
  return all;
}

// Where each layer's weights live in one HDF5 file, in whichever layout Keras wrote.
class WeightStore {
 public:
  static Result<WeightStore> Locate(const Hdf5File& file) {
    WeightStore store(file);
    for (const char* root : {"", "model_weights/"}) {
      if (!file.HasAttribute(root, "layer_names") && !file.HasAttribute(root, "layer_names0")) {
        continue;
      }
      store.root_ = root;
      ASSIGN_OR_RETURN(store.layer_names_, ReadKerasStrings(file, root, "layer_names"));
      return store;
    }
    for (const char* root : {"layers", "_layer_checkpoint_dependencies"}) {
      if (!file.IsGroup(root)) continue;
      store.keras3_ = true;
      store.root_ = std::string(root) + "/";
      ASSIGN_OR_RETURN(store.layer_names_, file.ListMembers(root));
      return store;
    }
    return InvalidArgument(file.path() +
                           ": no Keras weights found: expected a 'layer_names' attribute (Keras 2 "
                           "save_weights), a 'model_weights' group (Keras 2 model.save) or a "
                           "'layers' group (Keras 3 .weights.h5)");
  }

  // The layer's arrays in Keras variable order; NOT_FOUND when the file has nothing for it.
  Result<std::vector<NamedArray>> Load(const std::string& layer, std::int64_t max_elements) const {
    std::vector<NamedArray> out;
    const std::string group = root_ + layer;
    bool listed = false;
    for (const auto& n : layer_names_) listed = listed || n == layer;
    if (keras3_) {
      const std::string vars = group + "/vars";
      if (!file_->IsGroup(vars)) return NotFound(file_->path() + ": no group /" + vars);
      ASSIGN_OR_RETURN(auto members, file_->ListMembers(vars));
      for (std::size_t i = 0; i < members.size(); ++i) {
        const std::string key = vars + "/" + std::to_string(i);
        ASSIGN_OR_RETURN(auto array, file_->ReadDataset(key, max_elements));
        out.push_back({key, std::move(array)});
      }
      return out;
    }
    if (!listed || !file_->IsGroup(group)) {
      return NotFound(file_->path() + ": layer not in layer_names or no group /" + group);
    }
    ASSIGN_OR_RETURN(auto weight_names, ReadKerasStrings(*file_, group, "weight_names"));
    for (const auto& w : weight_names) {
      ASSIGN_OR_RETURN(auto array, file_->ReadDataset(group + "/" + w, max_elements));
      out.push_back({w, std::move(array)});
    }
    return out;
  }

  const std::vector<std::string>& layer_names() const { return layer_names_; }

 private:
  explicit WeightStore(const Hdf5File& file) : file_(&file) {}
  const Hdf5File* file_;
  std::string root_;
  bool keras3_ = false;
  std::vector<std::string> layer_names_;
};

struct Activation {
  model::ActivationKind kind = model::ActivationKind::kLinear;
  double alpha = 0.0;
};

// Keras serializes activations as a name, or (Keras 3, custom wrappers) an object whose "config" is
// the name. "leaky_relu" is keras.activations.leaky_relu, whose negative_slope defaults to 0.2.
std::optional<Activation> ParseActivationName(const json* value) {
  using K = model::ActivationKind;
  if (value == nullptr || value->is_null()) return Activation{};
  const json* name = value;
  if (value->is_object()) name = Member(*value, "config");
  if (name == nullptr || !name->is_string()) return std::nullopt;
  static const std::pair<const char*, Activation> kNames[] = {
      {"linear", {K::kLinear, 0.0}},   {"relu", {K::kReLU, 0.0}},
      {"sigmoid", {K::kSigmoid, 0.0}}, {"tanh", {K::kTanh, 0.0}},
      {"softmax", {K::kSoftmax, 0.0}}, {"leaky_relu", {K::kLeakyReLU, 0.2}}};
  for (const auto& [n, a] : kNames) {
    if (*name == n) return a;
  }
  return std::nullopt;
}

// Builds the IR chain layer by layer, tracking the tensor and feature width flowing through.
class GraphBuilder {
 public:
  GraphBuilder(std::string origin, const WeightStore& weights, std::string weights_path,
               const ImportOptions& options)
      : origin_(std::move(origin)),
        weights_(weights),
        weights_path_(std::move(weights_path)),
        options_(options) {}

  Status Error(const KerasLayer& l, const std::string& message) const {
    return InvalidArgument(origin_ + ": layer '" + l.name + "' (class " + l.class_name +
                           "): " + message);
  }

  // config[key] as a number or bool, `fallback` when absent or null; wrong JSON types are errors.
  Result<double> Number(const KerasLayer& l, const char* key, double fallback) const {
    const json* v = Member(*l.config, key);
    if (v == nullptr || v->is_null()) return fallback;
    if (!v->is_number())
      return Error(l, std::string(key) + " " + v->dump() + ": expected a number");
    return v->get<double>();
  }
  Result<bool> Bool(const KerasLayer& l, const char* key, bool fallback) const {
    const json* v = Member(*l.config, key);
    if (v == nullptr || v->is_null()) return fallback;
    if (!v->is_boolean()) return Error(l, std::string(key) + " " + v->dump() + ": expected a bool");
    return v->get<bool>();
  }

  // Reads [null, F] (a batch shape) from config[key] when present.
  Status ReadInputShape(const KerasLayer& l, const json& holder, const char* key) {
    const json* shape = Member(holder, key);
    if (shape == nullptr || shape->is_null() || width_) return Status::Ok();
    if (!shape->is_array() || shape->empty()) return Error(l, std::string(key) + " is not a list");
    std::vector<std::int64_t> dims;
    for (std::size_t i = 1; i < shape->size(); ++i) {
      const json& d = (*shape)[i];
      dims.push_back(d.is_number_integer() ? d.get<std::int64_t>() : -1);
    }
    if (dims.size() != 1 || dims[0] <= 0) {
      return Error(l, std::string(key) + " " + shape->dump() +
                          ": only flat feature vectors ([null, F] with F > 0) are supported");
    }
    width_ = input_width_ = dims[0];
    return Status::Ok();
  }

  Status SetInput(const KerasLayer& l) {
    input_name_ = l.name;
    if (const json* dtype = Member(*l.config, "dtype"); dtype != nullptr && dtype->is_string()) {
      if (*dtype == "float64") input_dtype_ = model::DataType::kFP64;
      if (*dtype == "float16") input_dtype_ = model::DataType::kFP16;
    }
    RETURN_IF_ERROR(ReadInputShape(l, *l.config, "batch_shape"));
    return ReadInputShape(l, *l.config, "batch_input_shape");
  }

  Status Add(const KerasLayer& l) {
    last_name_ = l.name;
    const std::string& c = l.class_name;
    if (c == "Dense") return AddDense(l);
    if (c == "BatchNormalization") return AddBatchNorm(l);
    if (c == "Activation") {
      auto act = ParseActivationName(Member(*l.config, "activation"));
      if (!act) return BadActivation(l);
      return AddActivation(l.name, l.name, *act);
    }
    if (c == "LeakyReLU") {
      ASSIGN_OR_RETURN(double alpha, Number(l, "alpha", 0.3));             // Keras 2
      ASSIGN_OR_RETURN(double slope, Number(l, "negative_slope", alpha));  // Keras 3
      return AddActivation(l.name, l.name, {model::ActivationKind::kLeakyReLU, slope});
    }
    if (c == "ReLU") return AddRelu(l);
    if (c == "Reshape") {
      const json* target = Member(*l.config, "target_shape");
      bool flat = target != nullptr && target->is_array() && target->size() == 1 &&
                  (*target)[0].is_number_integer() &&
                  ((*target)[0] == -1 || !width_ || (*target)[0] == *width_);
      if (!flat) {
        return Error(l, "target_shape " + (target ? target->dump() : std::string("(missing)")) +
                            ": only a reshape to the same flat width is supported");
      }
      return Status::Ok();
    }
    return Status::Ok();  // Dropout and Flatten: the identity on flat vectors at inference
  }

  Result<model::Graph> Finish(std::string name) {
    if (graph_.layers.empty()) {
      return InvalidArgument(origin_ +
                             ": the model has no Dense, BatchNormalization or "
                             "activation layer, so it computes nothing");
    }
    if (!input_width_) return InvalidArgument(origin_ + ": cannot determine the input width");
    // A trailing no-op layer (Dropout, Flatten) still names the model's output.
    graph_.layers.back().outputs[0] = last_name_;
    graph_.name = std::move(name);
    graph_.source_format = "keras";
    graph_.inputs.push_back({input_name_, {*input_width_}, input_dtype_});
    graph_.outputs.push_back({last_name_, {}, model::DataType::kFP32});
    for (auto& l : graph_.layers) {
      if (l.inputs[0].empty()) l.inputs[0] = input_name_;
    }
    return std::move(graph_);
  }

 private:
  Status BadActivation(const KerasLayer& l) const {
    const json* a = Member(*l.config, "activation");
    return Error(l, "activation " + (a ? a->dump() : std::string("(missing)")) +
                        ": unsupported; supported: " + kSupportedActivations);
  }

  // Emits one IR layer reading the current tensor ("" stands for the graph input until Finish).
  void Emit(model::Layer layer) {
    current_ = layer.outputs[0];
    graph_.layers.push_back(std::move(layer));
  }

  Status AddActivation(const std::string& layer_name, const std::string& output, Activation a) {
    if (a.kind == model::ActivationKind::kLinear) return Status::Ok();
    if (!std::isfinite(a.alpha)) {
      return InvalidArgument(origin_ + ": layer '" + layer_name + "': negative slope not finite");
    }
    Emit(model::MakeActivation(layer_name, current_, output, a.kind, a.alpha));
    return Status::Ok();
  }

  Status AddRelu(const KerasLayer& l) {  // keras.layers.ReLU
    const json* max_value = Member(*l.config, "max_value");
    ASSIGN_OR_RETURN(double slope, Number(l, "negative_slope", 0.0));
    ASSIGN_OR_RETURN(double threshold, Number(l, "threshold", 0.0));
    if ((max_value != nullptr && !max_value->is_null()) || threshold != 0.0) {
      return Error(
          l, "unsupported: max_value " + (max_value ? max_value->dump() : "null") + ", threshold " +
                 FormatDouble(threshold) +
                 "; expected max_value null and threshold 0 (e.g. ReLU6 is not supported)");
    }
    // With threshold 0 and no cap, a ReLU with a negative slope is exactly LeakyReLU.
    using K = model::ActivationKind;
    return AddActivation(l.name, l.name, {slope != 0.0 ? K::kLeakyReLU : K::kReLU, slope});
  }

  Result<std::vector<NamedArray>> LoadWeights(const KerasLayer& l, const std::string& expected) {
    auto arrays = weights_.Load(l.name, options_.max_parameters);
    if (arrays.ok()) return arrays;
    if (arrays.status().code() != StatusCode::kNotFound) {
      return Error(l, arrays.status().message());
    }
    std::vector<std::string> have = weights_.layer_names();
    if (have.size() > 12) have.resize(12);
    return Error(l, "no weights in " + weights_path_ + " (expected " + expected +
                        "); the file has weights for: " + Join(have, ", "));
  }

  Status CheckVector(const KerasLayer& l, const NamedArray& a, const std::string& role,
                     std::int64_t n) const {
    if (a.array.dims.size() == 1 && a.array.dims[0] == n) return Status::Ok();
    return Error(l, role + " '" + a.name + "' in " + weights_path_ + " has shape " +
                        model::ShapeToString(a.array.dims) + ", expected [" + std::to_string(n) +
                        "]");
  }

  Status AddDense(const KerasLayer& l) {
    const json* units_json = Member(*l.config, "units");
    if (units_json == nullptr || !units_json->is_number_integer() || *units_json <= 0 ||
        *units_json > (std::int64_t{1} << 31)) {
      return Error(l, "units must be a positive integer, got " +
                          (units_json ? units_json->dump() : std::string("(missing)")));
    }
    const auto units = units_json->get<std::int64_t>();
    ASSIGN_OR_RETURN(const bool use_bias, Bool(l, "use_bias", true));
    auto act = ParseActivationName(Member(*l.config, "activation"));
    if (!act) return BadActivation(l);

    const std::string expected = use_bias ? "kernel and bias" : "kernel";
    ASSIGN_OR_RETURN(auto arrays, LoadWeights(l, expected));
    if (arrays.size() != (use_bias ? 2u : 1u)) {
      std::vector<std::string> names;
      for (const auto& a : arrays) names.push_back(a.name);
      return Error(l, "has " + std::to_string(arrays.size()) + " weight arrays in " +
                          weights_path_ + " [" + Join(names, ", ") + "], expected " + expected);
    }
    const Hdf5Array& kernel = arrays[0].array;
    const std::int64_t in = kernel.dims.size() == 2 ? kernel.dims[0] : -1;
    if (in <= 0 || kernel.dims[1] != units || (width_ && in != *width_)) {
      std::string want = "[" + (width_ ? std::to_string(*width_) : std::string("in")) + "," +
                         std::to_string(units) + "]";
      return Error(l, "kernel '" + arrays[0].name + "' in " + weights_path_ + " has shape " +
                          model::ShapeToString(kernel.dims) + ", expected " + want +
                          " ([inputs from the previous layer, units])");
    }
    if (use_bias) RETURN_IF_ERROR(CheckVector(l, arrays[1], "bias", units));
    if (!width_) width_ = input_width_ = in;

    model::DenseParams p;
    p.in_features = in;
    p.out_features = units;
    p.weights.resize(static_cast<std::size_t>(in * units));
    for (std::int64_t i = 0; i < in; ++i) {  // Keras [in][out] -> IR [out][in]
      for (std::int64_t o = 0; o < units; ++o) p.weights[o * in + i] = kernel.values[i * units + o];
    }
    p.bias = use_bias ? arrays[1].array.values : std::vector<double>(units, 0.0);
    width_ = units;
    const bool linear = act->kind == model::ActivationKind::kLinear;
    Emit(model::MakeDense(l.name, current_, linear ? l.name : l.name + "/linear", std::move(p)));
    return AddActivation(l.name + "/" + model::ActivationName(act->kind), l.name, *act);
  }

  Status AddBatchNorm(const KerasLayer& l) {
    const json* axis = Member(*l.config, "axis");
    if (axis != nullptr && axis->is_array() && axis->size() == 1) axis = &(*axis)[0];
    if (axis != nullptr && !(axis->is_number_integer() && (*axis == -1 || *axis == 1))) {
      return Error(l, "axis " + axis->dump() + ": only the feature axis (-1 or 1) is supported");
    }
    ASSIGN_OR_RETURN(const bool center, Bool(l, "center", true));
    ASSIGN_OR_RETURN(const bool scale, Bool(l, "scale", true));
    ASSIGN_OR_RETURN(const double epsilon, Number(l, "epsilon", 1e-3));

    std::vector<std::string> roles;
    if (scale) roles.push_back("gamma");
    if (center) roles.push_back("beta");
    roles.push_back("moving_mean");
    roles.push_back("moving_variance");
    ASSIGN_OR_RETURN(auto arrays, LoadWeights(l, Join(roles, ", ")));
    if (arrays.size() != roles.size()) {
      return Error(l, "has " + std::to_string(arrays.size()) + " weight arrays in " +
                          weights_path_ + ", expected " + std::to_string(roles.size()) + " (" +
                          Join(roles, ", ") + ")");
    }
    if (!width_ && arrays[0].array.dims.size() == 1)
      width_ = input_width_ = arrays[0].array.dims[0];
    if (!width_) {
      return Error(l, roles[0] + " '" + arrays[0].name + "' in " + weights_path_ + " has shape " +
                          model::ShapeToString(arrays[0].array.dims) + ", expected a 1-D vector");
    }
    const std::int64_t n = *width_;
    for (std::size_t r = 0; r < roles.size(); ++r) {
      RETURN_IF_ERROR(CheckVector(l, arrays[r], roles[r], n));
    }
    const auto& mean = arrays[roles.size() - 2].array.values;
    const auto& var = arrays[roles.size() - 1].array.values;
    model::ScaleParams p;
    for (std::int64_t i = 0; i < n; ++i) {
      const double gamma = scale ? arrays[0].array.values[i] : 1.0;
      const double beta = center ? arrays[scale ? 1 : 0].array.values[i] : 0.0;
      if (!(var[i] + epsilon > 0.0)) {
        return Error(l, "moving_variance[" + std::to_string(i) + "] + epsilon = " +
                            FormatDouble(var[i] + epsilon) + ", expected a positive value");
      }
      const double s = gamma / std::sqrt(var[i] + epsilon);  // inference-mode BN is affine
      p.scale.push_back(s);
      p.shift.push_back(beta - mean[i] * s);
    }
    Emit(model::MakeScale(l.name, current_, l.name, std::move(p)));
    return Status::Ok();
  }

  std::string origin_;
  const WeightStore& weights_;
  std::string weights_path_;
  const ImportOptions& options_;
  model::Graph graph_;
  std::string current_;  // "" = the graph input, named in Finish
  std::string input_name_ = "input";
  std::string last_name_;
  model::DataType input_dtype_ = model::DataType::kFP32;
  std::optional<std::int64_t> width_;
  std::optional<std::int64_t> input_width_;
};

struct Architecture {
  std::string name;
  std::vector<KerasLayer> layers;
  const json* build_input_shape_holder = nullptr;  // Sequential config with build_input_shape
};

Result<Architecture> ParseArchitecture(const json& root, const std::string& origin,
                                       const ImportOptions& options) {
  const json* class_name = Member(root, "class_name");
  if (class_name == nullptr || !class_name->is_string()) {
    return InvalidArgument(origin +
                           ": not a Keras model: expected a JSON object with "
                           "\"class_name\" (the output of model.to_json())");
  }
  if (*class_name != "Sequential") {
    return Unimplemented(origin + ": model class '" + class_name->get<std::string>() +
                         "': unsupported; only Sequential models can be imported");
  }
  Architecture arch;
  const json* config = Member(root, "config");
  const json* layers = config;
  if (config != nullptr && config->is_object()) {
    layers = Member(*config, "layers");
    if (const json* n = Member(*config, "name"); n != nullptr && n->is_string()) {
      arch.name = n->get<std::string>();
    }
    arch.build_input_shape_holder = config;
  }
  if (layers == nullptr || !layers->is_array()) {
    return InvalidArgument(origin + ": Sequential config has no \"layers\" list");
  }
  if (static_cast<std::int64_t>(layers->size()) > options.max_layers) {
    return ResourceExhausted(origin + ": " + std::to_string(layers->size()) +
                             " layers, more than the limit " + std::to_string(options.max_layers));
  }
  std::set<std::string> names;
  for (std::size_t i = 0; i < layers->size(); ++i) {
    const json& entry = (*layers)[i];
    const json* cls = Member(entry, "class_name");
    const json* cfg = Member(entry, "config");
    const json* name = cfg != nullptr ? Member(*cfg, "name") : nullptr;
    if (name == nullptr) name = Member(entry, "name");
    if (cls == nullptr || !cls->is_string() || cfg == nullptr || !cfg->is_object() ||
        name == nullptr || !name->is_string()) {
      return InvalidArgument(origin + ": layers[" + std::to_string(i) +
                             "]: expected an object with string \"class_name\", object "
                             "\"config\" and string config.name");
    }
    KerasLayer l{name->get<std::string>(), cls->get<std::string>(), cfg, &entry};
    if (l.class_name == "BatchNormalizationV1" || l.class_name == "BatchNormalizationV2") {
      l.class_name = "BatchNormalization";  // tf.keras internal aliases of the same layer
    }
    static const std::set<std::string> kSupported = {
        "InputLayer", "Dense",   "Activation",        "ReLU", "LeakyReLU", "Dropout",
        "Flatten",    "Reshape", "BatchNormalization"};
    if (!kSupported.count(l.class_name)) {
      return Unimplemented(origin + ": layer '" + l.name + "' (class " + l.class_name +
                           "): unsupported; supported: " + kSupportedLayers);
    }
    if (l.class_name == "InputLayer" && i != 0) {
      return InvalidArgument(origin + ": layer '" + l.name +
                             "' (class InputLayer): expected "
                             "only as the first layer");
    }
    if (!names.insert(l.name).second) {
      return InvalidArgument(origin + ": layer name '" + l.name + "' is used twice");
    }
    arch.layers.push_back(std::move(l));
  }
  return arch;
}

// nlohmann's non-throwing parse says only "discarded"; its exception text has the position.
std::string JsonErrorDetail(const std::string& text) {
  try {
    [[maybe_unused]] json again = json::parse(text);
  } catch (const json::exception& e) {
    return e.what();
  }
  return "invalid JSON";
}

// `what_failed` starts the error message, e.g. "<path>: attribute 'model_config' is not valid
// JSON".
Result<json> ParseJson(const std::string& text, const std::string& what_failed) {
  json parsed = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return InvalidArgument(what_failed + ": " + JsonErrorDetail(text));
  return parsed;
}

Result<model::Graph> ImportKerasImpl(const std::string& path, const std::string& weights_path,
                                     const ImportOptions& options) {
  ASSIGN_OR_RETURN(std::string prefix, ReadFilePrefix(path, kHdf5Signature.size()));
  json root;
  std::optional<Hdf5File> model_file;
  if (prefix == kHdf5Signature) {
    ASSIGN_OR_RETURN(Hdf5File file, Hdf5File::Open(path));
    if (!file.HasAttribute("", "model_config")) {
      return InvalidArgument(path +
                             ": HDF5 file has no 'model_config' attribute, so it holds "
                             "only weights (save_weights); import the architecture JSON "
                             "(model.to_json()) and pass this file with --weights");
    }
    ASSIGN_OR_RETURN(std::string text, file.ReadScalarStringAttribute("", "model_config"));
    ASSIGN_OR_RETURN(root, ParseJson(text, path + ": attribute 'model_config' is not valid JSON"));
    model_file.emplace(std::move(file));
  } else {
    ASSIGN_OR_RETURN(std::string text, ReadFile(path, options.max_file_bytes));
    ASSIGN_OR_RETURN(
        root, ParseJson(text, path + ": neither an HDF5 file nor a valid Keras JSON architecture"));
  }
  ASSIGN_OR_RETURN(Architecture arch, ParseArchitecture(root, path, options));

  std::optional<Hdf5File> separate_weights;
  std::string weights_file = weights_path;
  if (weights_path.empty() && !model_file) {
    std::string stem = path;
    if (stem.size() > 5 && stem.compare(stem.size() - 5, 5, ".json") == 0)
      stem.resize(stem.size() - 5);
    std::vector<std::string> tried = {stem + ".h5", stem + ".weights.h5"};
    std::error_code ec;
    for (const auto& candidate : tried) {
      if (std::filesystem::is_regular_file(candidate, ec)) {
        weights_file = candidate;
        break;
      }
    }
    if (weights_file.empty()) {
      return NotFound(path + ": no weights file found beside the architecture (tried " +
                      Join(tried, ", ") + "); pass the HDF5 weights file with --weights");
    }
  }
  if (!weights_file.empty()) {
    ASSIGN_OR_RETURN(Hdf5File file, Hdf5File::Open(weights_file));
    separate_weights.emplace(std::move(file));
  } else {
    weights_file = path;
  }
  const Hdf5File& weights_h5 = separate_weights ? *separate_weights : *model_file;
  ASSIGN_OR_RETURN(WeightStore store, WeightStore::Locate(weights_h5));

  GraphBuilder builder(path, store, weights_file, options);
  std::size_t first = 0;
  if (!arch.layers.empty() && arch.layers[0].class_name == "InputLayer") {
    RETURN_IF_ERROR(builder.SetInput(arch.layers[0]));
    first = 1;
  }
  if (first < arch.layers.size()) {
    const KerasLayer& l = arch.layers[first];
    RETURN_IF_ERROR(builder.ReadInputShape(l, *l.config, "batch_input_shape"));
    RETURN_IF_ERROR(builder.ReadInputShape(l, *l.config, "batch_shape"));
    if (arch.build_input_shape_holder != nullptr) {
      RETURN_IF_ERROR(
          builder.ReadInputShape(l, *arch.build_input_shape_holder, "build_input_shape"));
    }
    if (const json* build_config = Member(*l.entry, "build_config"); build_config != nullptr) {
      RETURN_IF_ERROR(builder.ReadInputShape(l, *build_config, "input_shape"));
    }
  }
  for (std::size_t i = first; i < arch.layers.size(); ++i) {
    RETURN_IF_ERROR(builder.Add(arch.layers[i]));
  }
  std::string name = arch.name;
  if (name.empty()) name = std::filesystem::path(path).stem().string();
  return builder.Finish(std::move(name));
}

}  // namespace

Result<model::Graph> ImportKeras(const std::string& path, const std::string& weights_path,
                                 const ImportOptions& options) {
  // The JSON library and the allocator are the only sources of exceptions; none may escape.
  try {
    return ImportKerasImpl(path, weights_path, options);
  } catch (const std::bad_alloc&) {
    return ResourceExhausted(path + ": out of memory while importing the Keras model");
  } catch (const std::exception& e) {
    return Internal(path + ": unexpected error while importing the Keras model: " + e.what());
  }
}

}  // namespace fpgaserve::importers
