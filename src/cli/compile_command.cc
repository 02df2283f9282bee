// `fpgaserve compile MODEL --board sim -o DIR [--precision SPEC|--precision-config F] [--reuse N]
// [--interface stream|axis|axilite] [--data CSV] [--json]`: write a firmware bundle.
#include <charconv>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/app.h"
#include "cli/commands.h"
#include "cli/model_loading.h"
#include "core/csv.h"
#include "core/text.h"
#include "boards/board.h"
#include "firmware/compiler.h"

namespace fpgaserve::cli {

namespace {

struct CompileFlags {
  ModelFlags model;
  std::string board;
  std::string output;
  std::string precision;
  std::string precision_config;
  std::string reuse = "auto";
  std::string interface;
  std::string data;
  std::string label_column;
  bool json = false;
};

// "auto" is 0: the compile driver sizes the design to the board.
Result<int> ParseReuse(const std::string& text) {
  if (text == "auto") return 0;
  int v = 0;
  const char* end = text.data() + text.size();
  auto [p, ec] = std::from_chars(text.data(), end, v);
  if (ec != std::errc() || p != end || text.empty()) {
    return InvalidArgument("--reuse " + Quote(text) +
                           ": expected a positive integer (1 = fully parallel) or auto");
  }
  if (v < 1) {
    return InvalidArgument("reuse factor " + text +
                           "; expected an integer >= 1 (1 = fully parallel) or auto");
  }
  return v;
}

// "1,234 LUT4 (23% of 5,280)"
std::string Usage(std::int64_t used, std::int64_t available, const std::string& unit) {
  if (used < 0) return "? " + unit;
  std::string s = std::to_string(used) + " " + unit;
  if (available > 0) {
    s += " (" + std::to_string(static_cast<int>(std::lround(100.0 * used / available))) + "% of " +
         std::to_string(available) + ")";
  }
  return s;
}

Result<model::SampleBatch> ReadCalibration(const CompileFlags& f, const model::Graph& graph) {
  ASSIGN_OR_RETURN(NumericTable table, ReadNumericCsv(f.data));
  ASSIGN_OR_RETURN(LabeledData data, SplitLabelColumn(table, f.label_column, f.data));
  const auto want = static_cast<std::size_t>(model::ElementCount(graph.inputs[0].shape));
  if (data.feature_names.size() != want) {
    return InvalidArgument(f.data + ": " + std::to_string(data.feature_names.size()) +
                           " feature columns (" + Join(data.feature_names, ", ") + "); model '" +
                           f.model.path + "' expects " + std::to_string(want) + " inputs" +
                           (f.label_column.empty() ? " (name the label with --label-column)" : ""));
  }
  return model::SampleBatch{data.rows, want, std::move(data.features)};
}

Result<firmware::CompileResult> Compile(const CompileFlags& f) {
  firmware::CompileOptions options;
  options.board = f.board;
  options.interface = f.interface;
  ASSIGN_OR_RETURN(options.reuse, ParseReuse(f.reuse));
  options.precision = {f.precision, f.precision_config};
  RETURN_IF_ERROR(firmware::ValidateCompileOptions(options));
  ASSIGN_OR_RETURN(model::Graph graph, LoadModel(f.model));
  if (graph.inputs.size() != 1) {
    return InvalidArgument(f.model.path + ": the hardware needs a model with one input; it has " +
                           std::to_string(graph.inputs.size()));
  }
  model::SampleBatch calibration;
  if (!f.data.empty()) {
    ASSIGN_OR_RETURN(calibration, ReadCalibration(f, graph));
    options.calibration = &calibration;
  }
  return firmware::CompileFirmware(graph, f.output, options);
}

void Print(const CompileFlags& f, const firmware::CompileResult& r) {
  const auto& m = r.metadata;
  const std::string dir = std::filesystem::absolute(f.output).string();
  if (f.json) {
    auto j = nlohmann::ordered_json::parse(firmware::MetadataToJson(m));
    j["dir"] = dir;
    std::cout << j.dump(2) << "\n";
    return;
  }
  std::cout << "compiled " << f.model.path << " for board " << m.board << " into " << dir << "\n"
            << "  id: " << m.id << "\n"
            << "  precision: " << m.precision << " (input " << m.inputs[0].format << ", output "
            << m.outputs[0].format << ")\n"
            << "  reuse " << m.reuse << ", interface " << m.interface << " (" << m.flavor << ")\n"
            << "  latency " << m.latency_cycles << " cycles, initiation interval "
            << m.initiation_interval << "\n";
  for (const auto& l : m.layers) {
    std::cout << "    " << l.name << " " << l.op << ": reuse " << l.reuse << ", latency "
              << l.latency << ", II " << l.initiation_interval << ", multipliers " << l.multipliers
              << "\n";
  }
  const auto board = boards::FindBoard(m.board);
  const boards::Resources avail = board.ok() ? board->resources : boards::Resources{};
  std::cout << "  resources (" << m.resources.source << "): "
            << Usage(m.resources.lut, avail.lut, m.resources.lut_kind) << ", "
            << Usage(m.resources.ff, avail.ff, "FF") << ", " << Usage(m.resources.dsp, avail.dsp, "DSP")
            << ", " << Usage(m.resources.bram, avail.bram, "BRAM") << "\n";
  std::cout << "  clock " << FormatDouble(m.clock_mhz) << " MHz";
  if (m.fmax_mhz > 0) std::cout << ", Fmax " << FormatDouble(std::round(m.fmax_mhz * 100) / 100) << " MHz";
  std::cout << "; " << std::llround(m.clock_mhz * 1e6 / m.initiation_interval)
            << " inferences/s at II " << m.initiation_interval << "\n";
  std::cout << "  bitstream: " << m.bitstream.status;
  if (!m.bitstream.path.empty()) std::cout << " (" << m.bitstream.path << ")";
  if (m.bitstream.status != "built") std::cout << "; run in the bundle: " << m.bitstream.command;
  std::cout << "\n  build stages:";
  for (const auto& t : m.stages) {
    std::cout << " " << t.stage << " " << FormatDouble(std::round(t.seconds * 100) / 100) << " s;";
  }
  std::cout << "\n  sim library: " << (r.sim_cache_hit ? "from the Verilator cache" : "built")
            << "\n";
}

}  // namespace

void RegisterCompile(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("compile", "Compile a model into a firmware bundle for a board");
  auto f = std::make_shared<CompileFlags>();
  AddModelFlags(*cmd, f->model);
  cmd->add_option("--board", f->board, "Target board: an id from `fpgaserve boards` (sim = Verilator)")
      ->required();
  cmd->add_option("-o,--output", f->output, "Bundle directory (created; an old bundle is replaced)")
      ->required();
  auto* spec = cmd->add_option("--precision", f->precision,
                               "Number format: fixed<W,I[,Q[,O]]>, auto or auto<W> "
                               "(default fixed<16,6>)");
  cmd->add_option("--precision-config", f->precision_config,
                  "JSON/YAML file with per-layer precision (docs/numerics.md)")
      ->excludes(spec);
  cmd->add_option(
      "--reuse", f->reuse,
      "Reuse factor: multipliers are shared by N weights (1 = fully parallel), or auto "
      "(default: the lowest-latency per-layer factors that fit the board)");
  cmd->add_option("--interface", f->interface,
                  "Core interface: stream, axis or axilite (default: the board's)");
  cmd->add_option("--data", f->data, "CSV calibration data for auto precision");
  cmd->add_option("--label-column", f->label_column, "Column of --data that is not a feature");
  cmd->add_flag("--json", f->json, "Print the bundle metadata as JSON");
  cmd->callback([f, exit_code] {
    auto r = Compile(*f);
    if (!r.ok()) {
      *exit_code = ReportError(r.status(), std::cerr);
      return;
    }
    Print(*f, *r);
  });
}

}  // namespace fpgaserve::cli
