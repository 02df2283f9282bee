// `fpgaserve eval MODEL --data CSV [--label-column NAME] [--json]`: float64 reference accuracy.
#include <iostream>

#include <nlohmann/json.hpp>

#include "cli/app.h"
#include "cli/commands.h"
#include "cli/model_loading.h"
#include "core/csv.h"
#include "core/text.h"
#include "model/reference_evaluator.h"

namespace fpgaserve::cli {

namespace {

struct EvalFlags {
  ModelFlags model;
  std::string data;
  std::string label_column;
  bool json = false;
};

struct EvalReport {
  std::size_t samples = 0;
  bool has_accuracy = false;
  double accuracy = 0;
};

// Class predicted for each row: argmax over the outputs, or a 0.5 threshold for a single output
// (a sigmoid binary classifier).
std::vector<std::int64_t> PredictClasses(const model::SampleBatch& out) {
  if (out.features != 1) return model::ArgmaxRows(out);
  std::vector<std::int64_t> classes(out.rows);
  for (std::size_t r = 0; r < out.rows; ++r) classes[r] = out.values[r] >= 0.5 ? 1 : 0;
  return classes;
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
  model::SampleBatch batch{data.rows, want, std::move(data.features)};
  ASSIGN_OR_RETURN(model::SampleBatch out, model::EvaluateReference(graph, batch));
  EvalReport report;
  report.samples = data.rows;
  if (!data.labels.empty()) {
    const auto classes = PredictClasses(out);
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
  return report;
}

}  // namespace

void RegisterEval(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("eval", "Evaluate a model on a CSV data set (float64 reference)");
  auto f = std::make_shared<EvalFlags>();
  AddModelFlags(*cmd, f->model);
  cmd->add_option("--data", f->data, "CSV with a header row; every non-label column is a feature")
      ->required();
  cmd->add_option("--label-column", f->label_column, "Column holding the integer class label");
  cmd->add_flag("--json", f->json, "Print JSON");
  cmd->callback([f, exit_code] {
    auto report = Evaluate(*f);
    if (!report.ok()) {
      *exit_code = ReportError(report.status(), std::cerr);
      return;
    }
    if (f->json) {
      nlohmann::ordered_json j{{"samples", report->samples}};
      j["float"] = nlohmann::ordered_json::object();
      if (report->has_accuracy) j["float"]["accuracy"] = report->accuracy;
      std::cout << j.dump(2) << "\n";
    } else {
      std::cout << "samples: " << report->samples << "\n";
      if (report->has_accuracy) {
        std::cout << "float64 accuracy: " << FormatDouble(report->accuracy) << "\n";
      }
    }
  });
}

}  // namespace fpgaserve::cli
