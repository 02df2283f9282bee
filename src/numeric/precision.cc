#include "numeric/precision.h"

#include <algorithm>
#include <cmath>

#include <yaml-cpp/yaml.h>

#include "core/file_io.h"
#include "core/text.h"

namespace fpgaserve::numeric {

namespace {

using model::ActivationKind;
using model::Graph;
using model::Layer;
using model::LayerKind;

constexpr int kDefaultAutoWidth = 16;

// What a spec string asks for: a concrete format, or auto with a total width.
struct FormatChoice {
  std::optional<NumberFormat> format;
  int auto_width = 0;  // > 0: auto
};

Result<FormatChoice> ParseChoice(std::string_view spec, const std::string& where) {
  std::string_view s = Trim(spec);
  if (s == "auto") return FormatChoice{std::nullopt, kDefaultAutoWidth};
  if (s.rfind("auto<", 0) == 0 && s.size() > 6 && s.back() == '>') {
    auto w = ParseDouble(s.substr(5, s.size() - 6));
    if (!w || *w != std::floor(*w) || *w < 2 || *w > 32) {
      return InvalidArgument(where + ": " + Quote(spec) + ": expected auto or auto<W> with W in 2..32");
    }
    return FormatChoice{std::nullopt, static_cast<int>(*w)};
  }
  auto f = ParseNumberFormat(s);
  if (!f.ok()) return f.status().WithContext(where);
  return FormatChoice{*f, 0};
}

// Overrides read from a config file for one scope (the whole model or one layer).
struct Overrides {
  std::optional<FormatChoice> precision, weight, bias, accum, result;
  std::optional<int> table_size;
};

Status CheckTableSize(std::int64_t n, const std::string& where) {
  if (n < 16 || n > 65536 || (n & (n - 1)) != 0) {
    return InvalidArgument(where + ": table_size " + std::to_string(n) +
                           "; expected a power of two in 16..65536");
  }
  return Status::Ok();
}

Result<std::string> ScalarText(const YAML::Node& n, const std::string& where) {
  if (!n.IsScalar()) return InvalidArgument(where + ": expected a text value such as fixed<16,6>");
  return n.Scalar();
}

Result<Overrides> ParseOverrides(const YAML::Node& node, const std::string& where,
                                 bool model_level) {
  Overrides o;
  if (!node.IsMap()) return InvalidArgument(where + ": expected a mapping of settings");
  for (const auto& kv : node) {
    const std::string key = kv.first.as<std::string>();
    const std::string at = where + "." + key;
    if (key == "precision" || key == "weight" || key == "bias" || key == "accum" || key == "result") {
      ASSIGN_OR_RETURN(std::string text, ScalarText(kv.second, at));
      ASSIGN_OR_RETURN(FormatChoice c, ParseChoice(text, at));
      if (key == "precision") o.precision = c;
      if (key == "weight") o.weight = c;
      if (key == "bias") o.bias = c;
      if (key == "accum") o.accum = c;
      if (key == "result") o.result = c;
    } else if (key == "table_size") {
      ASSIGN_OR_RETURN(std::string text, ScalarText(kv.second, at));
      auto v = ParseDouble(text);
      if (!v || *v != std::floor(*v)) return InvalidArgument(at + ": expected an integer");
      RETURN_IF_ERROR(CheckTableSize(static_cast<std::int64_t>(*v), at));
      o.table_size = static_cast<int>(*v);
    } else if (!(model_level && (key == "input" || key == "softmax" || key == "layers"))) {
      return InvalidArgument(at + ": unknown setting; expected precision, weight, bias, accum, " +
                             "result, table_size" +
                             std::string(model_level ? ", input, softmax or layers" : ""));
    }
  }
  return o;
}

double MaxAbs(const std::vector<double>& v) {
  double m = 0;
  for (double x : v) m = std::max(m, std::fabs(x));
  return m;
}

FixedFormat AutoFixed(int width, double max_abs, bool saturate) {
  FixedFormat f;
  f.width = width;
  f.integer_bits = SignedIntegerBitsFor(max_abs);
  f.overflow = saturate ? Overflow::kSat : Overflow::kWrap;
  return f;
}

// The format a variable gets: explicit choice, else the layer's, else the model's; auto picks
// integer bits from `max_abs`.
NumberFormat Choose(const std::optional<FormatChoice>& var, const std::optional<FormatChoice>& layer,
                    const FormatChoice& model_choice, double max_abs, bool saturate) {
  const FormatChoice& c = var ? *var : (layer ? *layer : model_choice);
  if (c.format) return *c.format;
  return AutoFixed(c.auto_width, max_abs, saturate);
}

bool UsesAuto(const Overrides& o) {
  for (const auto* c : {&o.precision, &o.weight, &o.bias, &o.accum, &o.result}) {
    if (*c && !(*c)->format) return true;
  }
  return false;
}

// Largest |result| an activation can produce when it is bounded, else the calibrated range.
double ActivationRange(const Layer& l, double calibrated) {
  switch (l.activation().kind) {
    case ActivationKind::kSigmoid:
    case ActivationKind::kSoftmax:
    case ActivationKind::kTanh: return 1.0;
    default: return calibrated;
  }
}

}  // namespace

int SignedIntegerBitsFor(double max_abs) {
  if (!(max_abs > 0)) return 1;
  return static_cast<int>(std::floor(std::log2(max_abs))) + 2;
}

FixedFormat NonOverflowingAccum(const FixedFormat& x, const FixedFormat& w, const FixedFormat& b,
                                std::int64_t n_terms) {
  const int frac = std::max(x.fraction_bits() + w.fraction_bits(), b.fraction_bits());
  // |product| < 2^(Ix-1) * 2^(Iw-1) for signed operands; unsigned operands count one bit more.
  const int prod_int = (x.integer_bits - (x.is_signed ? 1 : 0)) + (w.integer_bits - (w.is_signed ? 1 : 0));
  const int bias_int = b.integer_bits - (b.is_signed ? 1 : 0);
  int growth = 0;
  while ((std::int64_t{1} << growth) < n_terms + 1) ++growth;
  int int_bits = std::max(prod_int, bias_int) + growth + 1;  // + sign bit
  FixedFormat acc;
  acc.integer_bits = int_bits;
  acc.width = std::min(64, std::max(1, int_bits + frac));
  return acc;
}

Result<CalibrationRanges> Calibrate(const Graph& graph, const model::SampleBatch& data) {
  for (double v : data.values) {
    if (!std::isfinite(v)) {
      return InvalidArgument("calibration data contains " + FormatDouble(v) +
                             "; expected finite numbers");
    }
  }
  CalibrationRanges r;
  r.input_max_abs = MaxAbs(data.values);
  // Evaluate layer by layer on a copy whose outputs are every layer's output tensor.
  Graph probe = graph;
  probe.outputs.clear();
  for (const auto& l : graph.layers) probe.outputs.push_back({l.outputs[0], {}});
  ASSIGN_OR_RETURN(auto outs, model::EvaluateReference(probe, std::vector<model::SampleBatch>{data}));
  for (std::size_t i = 0; i < graph.layers.size(); ++i) {
    const Layer& l = graph.layers[i];
    r.result_max_abs[l.name] = MaxAbs(outs[i].values);
    r.accum_max_abs[l.name] = r.result_max_abs[l.name];
  }
  return r;
}

Result<PrecisionConfig> ResolvePrecision(const Graph& graph, const PrecisionRequest& request,
                                         const CalibrationRanges* calibration) {
  if (request.spec.empty() == request.config_file.empty()) {
    return InvalidArgument("give exactly one of --precision SPEC and --precision-config FILE");
  }
  PrecisionConfig cfg;
  Overrides model_level;
  std::map<std::string, Overrides> per_layer;
  std::optional<FormatChoice> input_choice;
  if (!request.spec.empty()) {
    cfg.spec = request.spec;
    ASSIGN_OR_RETURN(FormatChoice c, ParseChoice(request.spec, "--precision"));
    model_level.precision = c;
  } else {
    const std::string& path = request.config_file;
    cfg.spec = path;
    ASSIGN_OR_RETURN(std::string text, ReadFile(path, 16 << 20));
    YAML::Node root;
    try {
      root = YAML::Load(text);
    } catch (const YAML::Exception& e) {
      return InvalidArgument(path + ": not valid JSON/YAML: " + e.what());
    }
    try {
      ASSIGN_OR_RETURN(model_level, ParseOverrides(root, path, true));
      if (root["input"]) {
        ASSIGN_OR_RETURN(std::string t, ScalarText(root["input"], path + ".input"));
        ASSIGN_OR_RETURN(FormatChoice c, ParseChoice(t, path + ".input"));
        input_choice = c;
      }
      if (root["softmax"]) {
        ASSIGN_OR_RETURN(std::string t, ScalarText(root["softmax"], path + ".softmax"));
        if (t == "argmax") {
          cfg.softmax = SoftmaxMode::kArgmax;
        } else if (t != "table") {
          return InvalidArgument(path + ".softmax: " + Quote(t) + "; expected table or argmax");
        }
      }
      if (root["layers"]) {
        if (!root["layers"].IsMap()) {
          return InvalidArgument(path + ".layers: expected a mapping from layer name to settings");
        }
        for (const auto& kv : root["layers"]) {
          const std::string name = kv.first.as<std::string>();
          const std::string where = path + ".layers." + name;
          bool known = std::any_of(graph.layers.begin(), graph.layers.end(),
                                   [&](const Layer& l) { return l.name == name; });
          if (!known) {
            std::vector<std::string> names;
            for (const auto& l : graph.layers) names.push_back("'" + l.name + "'");
            return InvalidArgument(where + ": the model has no layer named '" + name +
                                   "'; its layers are " + Join(names, ", "));
          }
          ASSIGN_OR_RETURN(per_layer[name], ParseOverrides(kv.second, where, false));
        }
      }
    } catch (const YAML::Exception& e) {
      return InvalidArgument(path + ": " + e.what());
    }
    if (!model_level.precision) model_level.precision = FormatChoice{FixedFormat{}, 0};
  }

  bool needs_calibration = UsesAuto(model_level) || (input_choice && !input_choice->format);
  for (const auto& [name, o] : per_layer) needs_calibration |= UsesAuto(o);
  if (needs_calibration && calibration == nullptr) {
    return InvalidArgument("precision 'auto' needs calibration data (--data CSV)");
  }
  static const CalibrationRanges kNone;
  const CalibrationRanges& cal = calibration ? *calibration : kNone;
  auto calibrated = [&](const std::map<std::string, double>& m, const std::string& name) {
    auto it = m.find(name);
    return it == m.end() ? 1.0 : it->second;
  };
  const FormatChoice& base = *model_level.precision;
  cfg.input = Choose(input_choice, std::nullopt, base, cal.input_max_abs, true);
  std::map<std::string, NumberFormat> tensor_format;
  for (const auto& in : graph.inputs) tensor_format[in.name] = cfg.input;

  for (const Layer& l : graph.layers) {
    static const Overrides kEmpty;
    auto it = per_layer.find(l.name);
    const Overrides& o = it == per_layer.end() ? kEmpty : it->second;
    const std::optional<FormatChoice>& lp = o.precision;
    LayerPrecision p;
    p.table_size = o.table_size.value_or(model_level.table_size.value_or(1024));
    double w_abs = 1, b_abs = 1;
    std::int64_t n_terms = 1;
    if (l.kind == LayerKind::kDense) {
      w_abs = MaxAbs(l.dense().weights);
      b_abs = MaxAbs(l.dense().bias);
      n_terms = l.dense().in_features;
    } else if (l.kind == LayerKind::kScale) {
      w_abs = MaxAbs(l.scale().scale);
      b_abs = MaxAbs(l.scale().shift);
    } else if (l.activation().kind == ActivationKind::kLeakyReLU) {
      w_abs = std::fabs(l.activation().alpha);
    }
    double r_abs = calibrated(cal.result_max_abs, l.name);
    if (l.kind == LayerKind::kActivation) r_abs = ActivationRange(l, r_abs);
    p.weight = Choose(o.weight, lp, base, w_abs, false);
    p.bias = Choose(o.bias, lp, base, b_abs, false);
    p.result = Choose(o.result, lp, base, r_abs, true);
    const NumberFormat& in = tensor_format.at(l.inputs[0]);
    const std::optional<FormatChoice>& acc_choice = o.accum ? o.accum : lp;
    if (acc_choice && acc_choice->format) {
      p.accum = *acc_choice->format;
    } else if (!o.accum && !lp && base.format && base.format->is_float()) {
      p.accum = *base.format;
    } else if (p.weight.is_fixed() && p.bias.is_fixed() && in.is_fixed()) {
      p.accum = NonOverflowingAccum(in.fixed(), p.weight.fixed(), p.bias.fixed(), n_terms);
    } else {
      p.accum = p.result;
    }
    const bool fixed = p.weight.is_fixed();
    if (p.bias.is_fixed() != fixed || p.accum.is_fixed() != fixed || p.result.is_fixed() != fixed) {
      return InvalidArgument("layer '" + l.name + "': weight " + p.weight.ToString() + ", bias " +
                             p.bias.ToString() + ", accum " + p.accum.ToString() + ", result " +
                             p.result.ToString() +
                             " mix fixed and float; expected one family within a layer");
    }
    tensor_format[l.outputs[0]] = p.result;
    cfg.layers[l.name] = p;
  }
  return cfg;
}

}  // namespace fpgaserve::numeric
