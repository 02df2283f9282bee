// `fpgaserve predict DIR --data CSV [--label-column NAME] [--driver sim|emu] [--out CSV] [--json]`:
// run a data set through a firmware bundle on a board driver.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/app.h"
#include "cli/commands.h"
#include "core/csv.h"
#include "core/file_io.h"
#include "core/text.h"
#include "firmware/bundle.h"
#include "model/reference_evaluator.h"
#include "numeric/number_format.h"
#include "runtime/board_driver.h"

namespace fpgaserve::cli {

namespace {

struct PredictFlags {
  std::string bundle;
  std::string data;
  std::string label_column;
  std::string driver = "sim";
  std::string out;
  bool json = false;
};

struct PredictReport {
  std::size_t samples = 0;
  bool has_accuracy = false;
  double accuracy = 0;
  std::uint64_t latency_cycles = 0;  // the design's latency (metadata)
  // Per-inference out_cycles stamps measured by the board (empty for boards without a counter):
  // the minimum equals latency_cycles; the maximum includes waiting behind earlier inputs.
  bool has_observed = false;
  std::uint64_t observed_min = 0;
  std::uint64_t observed_max = 0;
  int initiation_interval = 1;
  double inferences_per_second = 0;
  std::uint64_t device_cycles = 0;
  std::int64_t input_overflows = 0;
};

// The header names each output element "<output name>[i]"; values are exact (shortest
// round-trip text of the exact double), so two boards agree byte for byte exactly when they
// agree bit for bit.
std::string OutputCsv(const firmware::BundleMetadata& m, const model::SampleBatch& out) {
  std::string text;
  for (std::size_t i = 0; i < out.features; ++i) {
    text += (i ? "," : "") + m.outputs[0].name + "[" + std::to_string(i) + "]";
  }
  text += "\n";
  for (std::size_t r = 0; r < out.rows; ++r) {
    for (std::size_t i = 0; i < out.features; ++i) {
      text += (i ? "," : "") + FormatDouble(out.values[r * out.features + i]);
    }
    text += "\n";
  }
  return text;
}

Result<PredictReport> Predict(const PredictFlags& f) {
  ASSIGN_OR_RETURN(firmware::BundleMetadata m, firmware::ReadBundleMetadata(f.bundle));
  ASSIGN_OR_RETURN(NumericTable table, ReadNumericCsv(f.data));
  ASSIGN_OR_RETURN(LabeledData data, SplitLabelColumn(table, f.label_column, f.data));
  const auto want = static_cast<std::size_t>(m.n_inputs);
  if (data.feature_names.size() != want) {
    return InvalidArgument(f.data + ": " + std::to_string(data.feature_names.size()) +
                           " feature columns (" + Join(data.feature_names, ", ") + "); firmware '" +
                           f.bundle + "' expects " + std::to_string(want) + " inputs" +
                           (f.label_column.empty() ? " (name the label with --label-column)" : ""));
  }
  ASSIGN_OR_RETURN(auto driver, runtime::OpenBoardDriver(f.driver, f.bundle));

  PredictReport report;
  report.samples = data.rows;
  const numeric::NumberFormat in_format(m.input_format);
  const numeric::NumberFormat out_format(m.output_format);
  numeric::RawBatch raw{data.rows, want, {}};
  raw.values.reserve(data.features.size());
  for (double x : data.features) {
    const numeric::Quantized q = numeric::FromDouble(x, in_format);
    raw.values.push_back(q.raw);
    report.input_overflows += q.overflowed ? 1 : 0;
  }
  const auto start = std::chrono::steady_clock::now();
  ASSIGN_OR_RETURN(runtime::BatchResult result, driver->Infer(raw));
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  report.inferences_per_second = static_cast<double>(data.rows) / std::max(seconds, 1e-9);
  report.device_cycles = result.total_cycles;
  report.initiation_interval = m.initiation_interval;
  report.latency_cycles = static_cast<std::uint64_t>(m.latency_cycles);
  if (!result.latency_cycles.empty()) {
    const auto [lo, hi] =
        std::minmax_element(result.latency_cycles.begin(), result.latency_cycles.end());
    report.has_observed = true;
    report.observed_min = *lo;
    report.observed_max = *hi;
  }

  model::SampleBatch out{result.outputs.rows, result.outputs.features, {}};
  out.values.reserve(result.outputs.values.size());
  for (numeric::RawValue v : result.outputs.values)
    out.values.push_back(numeric::ToDouble(v, out_format));
  if (!data.labels.empty()) {
    const std::int64_t n_classes = out.features == 1 ? 2 : static_cast<std::int64_t>(out.features);
    const auto classes = model::PredictClasses(out);
    std::size_t correct = 0;
    for (std::size_t r = 0; r < data.rows; ++r) {
      if (data.labels[r] >= n_classes) {
        return InvalidArgument(f.data + ": data row " + std::to_string(r + 1) + ": label " +
                               std::to_string(data.labels[r]) + " but the model has " +
                               std::to_string(n_classes) + " classes; expected 0.." +
                               std::to_string(n_classes - 1));
      }
      correct += classes[r] == data.labels[r] ? 1 : 0;
    }
    report.has_accuracy = true;
    report.accuracy = data.rows ? static_cast<double>(correct) / static_cast<double>(data.rows) : 0;
  }
  if (!f.out.empty()) RETURN_IF_ERROR(WriteFileAtomic(f.out, OutputCsv(m, out)));
  return report;
}

void Print(const PredictFlags& f, const PredictReport& r) {
  if (f.json) {
    nlohmann::ordered_json j{{"samples", r.samples}};
    if (r.has_accuracy) j["accuracy"] = r.accuracy;
    j["latency_cycles"] = r.latency_cycles;
    j["initiation_interval"] = r.initiation_interval;
    if (r.has_observed) {
      j["observed_cycles"] = {{"min", r.observed_min}, {"max", r.observed_max}};
    }
    j["inferences_per_second"] = r.inferences_per_second;
    j["device_cycles"] = r.device_cycles;
    j["driver"] = f.driver;
    j["input_overflows"] = r.input_overflows;
    std::cout << j.dump(2) << "\n";
    return;
  }
  std::cout << "samples: " << r.samples << "\n";
  if (r.has_accuracy) std::cout << "accuracy: " << FormatDouble(r.accuracy) << "\n";
  std::cout << "latency: " << r.latency_cycles << " cycles, initiation interval "
            << r.initiation_interval << "\n";
  if (r.has_observed) {
    std::cout << "cycles per inference (measured): min " << r.observed_min << ", max "
              << r.observed_max << " (the max includes waiting behind earlier inputs)\n";
  }
  std::cout << "device cycles: " << r.device_cycles << "\n"
            << "inferences/s (" << f.driver
            << " driver, host wall clock): " << FormatDouble(std::round(r.inferences_per_second))
            << "\n";
  if (r.input_overflows > 0) {
    std::cout << "input values outside the input format: " << r.input_overflows << "\n";
  }
}

}  // namespace

void RegisterPredict(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("predict", "Run a CSV data set through a firmware bundle");
  auto f = std::make_shared<PredictFlags>();
  cmd->add_option("bundle", f->bundle, "Firmware bundle directory (written by fpgaserve compile)")
      ->required();
  cmd->add_option("--data", f->data, "CSV with a header row; every non-label column is a feature")
      ->required();
  cmd->add_option("--label-column", f->label_column, "Column holding the integer class label");
  cmd->add_option("--driver", f->driver, "Board driver: sim (cycle-accurate), emu (emulator), ice40 (an icebreaker on $FPGASERVE_ICE40_SERIAL), zynq (Linux FPGA Manager + UIO) or xrt (an Alveo card)");
  cmd->add_option("--out", f->out, "Write the exact output values to this CSV");
  cmd->add_flag("--json", f->json, "Print JSON");
  cmd->callback([f, exit_code] {
    auto r = Predict(*f);
    if (!r.ok()) {
      *exit_code = ReportError(r.status(), std::cerr);
      return;
    }
    Print(*f, *r);
  });
}

}  // namespace fpgaserve::cli
