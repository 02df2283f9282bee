// `fpgaserve eval MODEL --data CSV [--label-column NAME] [--json]`: float64 reference accuracy.
#include <cmath>
#include <iostream>
#include <map>
#include <optional>

#include <nlohmann/json.hpp>

#include "cli/app.h"
#include "cli/commands.h"
#include "cli/model_loading.h"
#include "core/csv.h"
#include "core/text.h"
#include "model/reference_evaluator.h"
#include "numeric/emulator.h"
#include "numeric/precision.h"

namespace fpgaserve::cli {

namespace {

struct EvalFlags {
  ModelFlags model;
  std::string data;
  std::string label_column;
  std::string precision;
  std::string precision_config;
  bool json = false;
};

struct QuantizedReport {
  numeric::PrecisionConfig precision;
  bool has_accuracy = false;
  double accuracy = 0;
  double argmax_agreement = 0;
  double max_abs_error = 0;
  std::map<std::string, std::int64_t> overflows;
};

struct EvalReport {
  std::size_t samples = 0;
  bool has_accuracy = false;
  double accuracy = 0;
  std::optional<QuantizedReport> quantized;
};

double Accuracy(const std::vector<std::int64_t>& predicted, const std::vector<std::int64_t>& labels) {
  std::size_t correct = 0;
  for (std::size_t r = 0; r < labels.size(); ++r) correct += predicted[r] == labels[r] ? 1 : 0;
  return static_cast<double>(correct) / static_cast<double>(labels.size());
}

Result<QuantizedReport> EvaluateQuantized(const EvalFlags& f, const model::Graph& graph,
                                          const model::SampleBatch& batch,
                                          const model::SampleBatch& float_out,
                                          const std::vector<std::int64_t>& labels) {
  QuantizedReport q;
  numeric::PrecisionRequest request{f.precision, f.precision_config};
  ASSIGN_OR_RETURN(numeric::CalibrationRanges ranges, numeric::Calibrate(graph, batch));
  ASSIGN_OR_RETURN(q.precision, numeric::ResolvePrecision(graph, request, &ranges));
  ASSIGN_OR_RETURN(numeric::QuantizedModel qm, numeric::QuantizedModel::Build(graph, q.precision));
  ASSIGN_OR_RETURN(numeric::EmulationResult emu, qm.Run(batch));
  const model::SampleBatch& out = emu.outputs[0];
  for (std::size_t i = 0; i < out.values.size(); ++i) {
    q.max_abs_error = std::max(q.max_abs_error, std::fabs(out.values[i] - float_out.values[i]));
  }
  const auto qclasses = model::PredictClasses(out);
  q.argmax_agreement = Accuracy(qclasses, model::PredictClasses(float_out));
  if (!labels.empty()) {
    q.has_accuracy = true;
    q.accuracy = Accuracy(qclasses, labels);
  }
  q.overflows = std::move(emu.overflows);
  return q;
}

Result<EvalReport> Evaluate(const EvalFlags& f) {
  ASSIGN_OR_RETURN(model::Graph graph, LoadModel(f.model));
  if (graph.inputs.size() != 1 || graph.outputs.size() != 1) {
    return InvalidArgument(f.model.path + ": eval needs a model with one input and one output; it has " +
                           std::to_string(graph.inputs.size()) + " and " +
                           std::to_string(graph.outputs.size()));
  }
  ASSIGN_OR_RETURN(NumericTable table, ReadNumericCsv(f.data));
  ASSIGN_OR_RETURN(LabeledData data, SplitLabelColumn(table, f.label_column, f.data));
  const auto want = static_cast<std::size_t>(model::ElementCount(graph.inputs[0].shape));
  if (data.feature_names.size() != want) {
    return InvalidArgument(f.data + ": " + std::to_string(data.feature_names.size()) +
                           " feature columns (" + Join(data.feature_names, ", ") + "); model '" +
                           f.model.path + "' expects " + std::to_string(want) + " inputs" +
                           (f.label_column.empty() ? " (name the label with --label-column)" : ""));
  }
  model::SampleBatch batch{data.rows, want, data.features};
  ASSIGN_OR_RETURN(model::SampleBatch out, model::EvaluateReference(graph, batch));
  EvalReport report;
  report.samples = data.rows;
  if (!data.labels.empty()) {
    const auto classes = model::PredictClasses(out);
    const std::int64_t n_classes = out.features == 1 ? 2 : static_cast<std::int64_t>(out.features);
    std::size_t correct = 0;
    for (std::size_t r = 0; r < data.rows; ++r) {
      if (data.labels[r] >= n_classes) {
        return InvalidArgument(f.data + ": data row " + std::to_string(r + 1) + ": label " +
                               std::to_string(data.labels[r]) + " but the model has " +
                               std::to_string(n_classes) + " classes; expected 0.." +
                               std::to_string(n_classes - 1));
      }
      if (classes[r] == data.labels[r]) ++correct;
    }
    report.has_accuracy = true;
    report.accuracy = static_cast<double>(correct) / static_cast<double>(data.rows);
  }
  if (!f.precision.empty() || !f.precision_config.empty()) {
    ASSIGN_OR_RETURN(QuantizedReport q, EvaluateQuantized(f, graph, batch, out, data.labels));
    report.quantized = std::move(q);
  }
  return report;
}

nlohmann::ordered_json PrecisionJson(const numeric::PrecisionConfig& p) {
  nlohmann::ordered_json layers = nlohmann::ordered_json::object();
  for (const auto& [name, lp] : p.layers) {
    layers[name] = {{"weight", lp.weight.ToString()}, {"bias", lp.bias.ToString()},
                    {"accum", lp.accum.ToString()}, {"result", lp.result.ToString()}};
  }
  return {{"spec", p.spec}, {"input", p.input.ToString()},
          {"softmax", p.softmax == numeric::SoftmaxMode::kArgmax ? "argmax" : "table"},
          {"layers", layers}};
}

void PrintReport(const EvalReport& report, bool json) {
  if (json) {
    nlohmann::ordered_json j{{"samples", report.samples}};
    j["float"] = nlohmann::ordered_json::object();
    if (report.has_accuracy) j["float"]["accuracy"] = report.accuracy;
    if (report.quantized) {
      const auto& q = *report.quantized;
      nlohmann::ordered_json qj{{"precision", PrecisionJson(q.precision)}};
      if (q.has_accuracy) qj["accuracy"] = q.accuracy;
      qj["argmax_agreement"] = q.argmax_agreement;
      qj["max_abs_error"] = q.max_abs_error;
      qj["overflows"] = q.overflows;
      j["quantized"] = std::move(qj);
    }
    std::cout << j.dump(2) << "\n";
    return;
  }
  std::cout << "samples: " << report.samples << "\n";
  if (report.has_accuracy) std::cout << "float64 accuracy: " << FormatDouble(report.accuracy) << "\n";
  if (report.quantized) {
    const auto& q = *report.quantized;
    std::cout << "precision " << q.precision.spec << " (input " << q.precision.input.ToString() << ")\n";
    for (const auto& [name, lp] : q.precision.layers) {
      std::cout << "  " << name << ": weight " << lp.weight.ToString() << ", bias "
                << lp.bias.ToString() << ", accum " << lp.accum.ToString() << ", result "
                << lp.result.ToString() << "\n";
    }
    if (q.has_accuracy) std::cout << "quantized accuracy: " << FormatDouble(q.accuracy) << "\n";
    std::cout << "argmax agreement with float64: " << FormatDouble(q.argmax_agreement) << "\n";
    std::cout << "max abs error vs float64: " << FormatDouble(q.max_abs_error) << "\n";
    for (const auto& [name, n] : q.overflows) std::cout << "overflows in " << name << ": " << n << "\n";
  }
}

}  // namespace

void RegisterEval(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("eval", "Evaluate a model on a CSV data set (float64 reference)");
  auto f = std::make_shared<EvalFlags>();
  AddModelFlags(*cmd, f->model);
  cmd->add_option("--data", f->data, "CSV with a header row; every non-label column is a feature")
      ->required();
  cmd->add_option("--label-column", f->label_column, "Column holding the integer class label");
  auto* spec = cmd->add_option("--precision", f->precision,
                               "Also emulate the hardware in this number format: fixed<W,I[,Q[,O]]>, "
                               "float32, float16, bfloat16, float<E,M>, auto or auto<W>");
  cmd->add_option("--precision-config", f->precision_config,
                  "JSON/YAML file with per-layer precision (docs/numerics.md)")
      ->excludes(spec);
  cmd->add_flag("--json", f->json, "Print JSON");
  cmd->callback([f, exit_code] {
    auto report = Evaluate(*f);
    if (!report.ok()) {
      *exit_code = ReportError(report.status(), std::cerr);
      return;
    }
    PrintReport(*report, f->json);
  });
}

}  // namespace fpgaserve::cli
