#include "firmware/compiler.h"

#include <algorithm>
#include <chrono>
#include <future>
#include <filesystem>

#include "core/file_io.h"
#include "core/sha256.h"
#include "core/subprocess.h"
#include "core/version.h"
#include "core/text.h"
#include "boards/board.h"
#include "firmware/fit_plan.h"
#include "hw/design.h"
#include "toolchain/amd_flow.h"
#include "toolchain/icestorm_flow.h"
#include "hw/testbench.h"
#include "hw/wrappers.h"
#include "importers/import.h"
#include "numeric/emulator.h"

namespace fpgaserve::firmware {

namespace fs = std::filesystem;

namespace {

const std::vector<std::string> kInterfaces = {"stream", "axis", "axilite"};
// What a previous compile wrote into a bundle directory; removed before writing a new bundle.
const std::vector<std::string> kBundleEntries = {
    kMetadataFile, kModelFile, kPrecisionFile, "rtl",     "tb",     "sim",           "scripts",
    "reports",     "logs",     "vivado",       "vitis",   "build",  "bitstream.bin", "fpgaserve.bit",
    "fpgaserve.hwh", "fpgaserve.xclbin"};

}  // namespace

Status ValidateCompileOptions(const CompileOptions& o) {
  auto one_of = [](const std::string& v, const std::vector<std::string>& allowed) {
    return std::find(allowed.begin(), allowed.end(), v) != allowed.end();
  };
  RETURN_IF_ERROR(boards::FindBoard(o.board).status());
  if (!o.interface.empty() && !one_of(o.interface, kInterfaces)) {
    return InvalidArgument("unknown interface " + Quote(o.interface) +
                           "; expected one of: " + Join(kInterfaces, ", "));
  }
  if (o.reuse < 0) {
    return InvalidArgument("reuse factor " + std::to_string(o.reuse) +
                           "; expected an integer >= 1 (1 = fully parallel) or auto");
  }
  if (o.testbench_vectors < 0) {
    return InvalidArgument("testbench vectors " + std::to_string(o.testbench_vectors) +
                           "; expected >= 0");
  }
  return Status::Ok();
}

namespace {

// Written first into every bundle directory, so a compile that failed halfway (no metadata.json
// yet) leaves a directory the next compile recognizes as its own and may replace.
constexpr const char* kBundleMarker = ".fpgaserve-bundle";

bool IsBundle(const fs::path& dir) {
  std::error_code ec;
  if (fs::exists(dir / kBundleMarker, ec)) return true;
  auto text = ReadFile((dir / kMetadataFile).string(), 16 << 20);
  return text.ok() && ParseBundleMetadata(*text, kMetadataFile).ok();
}

// Creates the directory, or clears a previous bundle from it; anything else is refused so a
// typo in -o never deletes a user's files.
Status PrepareOutputDir(const fs::path& dir) {
  std::error_code ec;
  if (fs::exists(dir, ec)) {
    if (!fs::is_directory(dir, ec)) {
      return InvalidArgument(dir.string() + ": exists and is not a directory");
    }
    const bool empty = fs::is_empty(dir, ec);
    if (!empty && !IsBundle(dir)) {
      return InvalidArgument(dir.string() +
                             ": exists, is not empty and is not a firmware bundle; refusing to "
                             "write into it (choose a new or empty directory)");
    }
    // metadata.json first: from here on the directory no longer claims to be a bundle.
    for (const auto& entry : kBundleEntries) {
      fs::remove_all(dir / entry, ec);
      if (ec) return InvalidArgument((dir / entry).string() + ": cannot remove: " + ec.message());
    }
  }
  fs::create_directories(dir, ec);
  if (ec) return InvalidArgument(dir.string() + ": cannot create: " + ec.message());
  return WriteFileAtomic((dir / kBundleMarker).string(),
                         "a firmware bundle written by fpgaserve compile\n");
}

std::vector<std::int64_t> BatchShape(const model::Shape& shape) {
  std::vector<std::int64_t> s{-1};
  s.insert(s.end(), shape.begin(), shape.end());
  return s;
}

// The content address: what the firmware computes and how it talks, not where it was built.
std::string ContentId(const std::string& model_json, const std::string& precision_json,
                      const std::vector<hw::VerilogFile>& rtl, const CompileOptions& o,
                      const std::string& reuse_text, const std::string& interface) {
  Sha256 h;
  auto part = [&h](const std::string& name, const std::string& content) {
    h.Update(name + '\0' + std::to_string(content.size()) + '\0');
    h.Update(content);
  };
  part("fpgaserve-bundle", "v2");
  part("generator", kVersion);
  part("board", o.board);
  part(kModelFile, model_json);
  part(kPrecisionFile, precision_json);
  std::vector<const hw::VerilogFile*> sorted;
  sorted.reserve(rtl.size());
  for (const auto& f : rtl) sorted.push_back(&f);
  std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->name < b->name; });
  for (const auto* f : sorted) part("rtl/" + f->name, f->text);
  part("reuse", reuse_text);
  part("interface", interface);
  return h.FinishHex();
}

// "5.006 2023-01-22" from `verilator --version`; "unknown" when it does not answer.
std::string VerilatorVersion() {
  SubprocessOptions o;
  o.timeout = std::chrono::seconds(10);
  auto r = RunSubprocess({"verilator", "--version"}, o);
  if (!r.ok() || !r->success()) return "unknown";
  std::string v(Trim(r->stdout_text));
  if (v.rfind("Verilator ", 0) == 0) v = v.substr(10);
  return v.substr(0, v.find(" rev"));
}

double SecondsSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

bool SamePrecision(const numeric::PrecisionConfig& a, const numeric::PrecisionConfig& b) {
  if (!(a.input == b.input) || a.softmax != b.softmax || a.layers.size() != b.layers.size()) {
    return false;
  }
  for (const auto& [name, p] : a.layers) {
    auto it = b.layers.find(name);
    if (it == b.layers.end()) return false;
    const auto& q = it->second;
    if (!(p.weight == q.weight && p.bias == q.bias && p.accum == q.accum && p.result == q.result &&
          p.table_size == q.table_size)) {
      return false;
    }
  }
  return true;
}

Status CheckDesignMatchesModel(const hw::HwDesign& d, const model::Graph& g,
                               const numeric::PrecisionConfig& p) {
  if (g.inputs.size() != 1 || g.outputs.size() != 1) {
    return Unimplemented("the hardware supports one input and one output tensor; the model has " +
                         std::to_string(g.inputs.size()) + " and " +
                         std::to_string(g.outputs.size()));
  }
  const auto n_in = model::ElementCount(g.inputs[0].shape);
  const auto n_out = model::ElementCount(g.outputs[0].shape);
  if (d.n_in != n_in || d.n_out != n_out || !(p.input == d.in_format)) {
    return Internal("generated design ports (" + std::to_string(d.n_in) + " x " +
                    d.in_format.ToString() + " -> " + std::to_string(d.n_out) + " x " +
                    d.out_format.ToString() + ") do not match the model (" + std::to_string(n_in) +
                    " x " + p.input.ToString() + " -> " + std::to_string(n_out) + ")");
  }
  return Status::Ok();
}

}  // namespace

Result<CompileResult> CompileFirmware(const model::Graph& graph, const std::string& out_dir,
                                      const CompileOptions& options) {
  RETURN_IF_ERROR(ValidateCompileOptions(options));
  if (options.on_stage) options.on_stage("generate");
  std::vector<StageTime> stages;
  auto t0 = std::chrono::steady_clock::now();
  numeric::PrecisionRequest request = options.precision;
  if (request.spec.empty() && request.config_file.empty()) request.spec = kDefaultPrecision;
  numeric::CalibrationRanges ranges;
  if (options.calibration != nullptr) {
    ASSIGN_OR_RETURN(ranges, numeric::Calibrate(graph, *options.calibration));
  }
  ASSIGN_OR_RETURN(
      numeric::PrecisionConfig precision,
      numeric::ResolvePrecision(graph, request, options.calibration ? &ranges : nullptr));
  // Building the emulator first rejects what F2 cannot quantize with its own clear message.
  ASSIGN_OR_RETURN(numeric::QuantizedModel quantized,
                   numeric::QuantizedModel::Build(graph, precision));
  ASSIGN_OR_RETURN(boards::Board board, boards::FindBoard(options.board));
  const std::string interface =
      options.interface.empty() ? board.default_interface : options.interface;
  // Sized to the board before anything is built: a design that cannot fit fails here.
  ASSIGN_OR_RETURN(FitPlan plan, PlanFit(graph, precision, board, options.reuse));
  hw::HwDesign& design = plan.design;
  std::string reuse_text = std::to_string(options.reuse);
  if (options.reuse == 0) {
    reuse_text = "auto:";
    for (const auto& l : design.layers) reuse_text += l.name + "=" + std::to_string(l.reuse) + ";";
  }
  RETURN_IF_ERROR(CheckDesignMatchesModel(design, graph, precision));

  // The remaining pure steps come before any file is touched, so their errors leave no trace.
  std::vector<hw::VerilogFile> rtl = design.files;
  if (interface != "stream") {
    ASSIGN_OR_RETURN(hw::VerilogFile wrapper, hw::GenerateInterfaceWrapper(design, interface));
    rtl.push_back(std::move(wrapper));
  }
  std::vector<hw::VerilogFile> testbench;
  if (options.testbench_vectors > 0) {
    ASSIGN_OR_RETURN(testbench, hw::GenerateTestbench(design, quantized, options.testbench_vectors,
                                                      options.testbench_seed));
  }

  stages.push_back({"generate", SecondsSince(t0)});
  const fs::path dir = fs::absolute(out_dir);
  RETURN_IF_ERROR(PrepareOutputDir(dir));
  const std::string model_json = importers::ExportNative(graph);
  const std::string precision_json = PrecisionConfigJson(precision);
  RETURN_IF_ERROR(WriteFileAtomic((dir / kModelFile).string(), model_json));
  RETURN_IF_ERROR(WriteFileAtomic((dir / kPrecisionFile).string(), precision_json));

  // The emu board reads the bundle back; prove here that it gets exactly this configuration.
  ASSIGN_OR_RETURN(model::Graph reread, importers::ImportModel((dir / kModelFile).string()));
  ASSIGN_OR_RETURN(
      numeric::PrecisionConfig reread_precision,
      numeric::ResolvePrecision(reread, {"", (dir / kPrecisionFile).string()}, nullptr));
  if (!SamePrecision(precision, reread_precision)) {
    return Internal((dir / kPrecisionFile).string() +
                    ": reads back as a different precision configuration");
  }

  toolchain::SimCoreSpec sim;
  for (const auto& f : design.files) sim.verilog.push_back({f.name, f.text});
  sim.n_in = design.n_in;
  sim.n_out = design.n_out;
  sim.in_width = design.in_width();
  sim.out_width = design.out_width();
  sim.out_signed = design.out_format.raw_is_signed();
  sim.latency_cycles = design.latency_cycles;
  sim.initiation_interval = design.initiation_interval;
  {
    std::error_code ec;
    fs::create_directories(dir / "rtl", ec);
    if (ec) return InvalidArgument((dir / "rtl").string() + ": cannot create: " + ec.message());
  }
  for (const auto& f : rtl)
    RETURN_IF_ERROR(WriteFileAtomic((dir / "rtl" / f.name).string(), f.text));
  // The sim library (Verilator + g++) and a board's synthesis flow are independent and mostly
  // single-threaded, so on a board with a toolchain they run side by side.
  t0 = std::chrono::steady_clock::now();
  double sim_seconds = 0;
  if (options.on_stage) options.on_stage("verilator");
  toolchain::SimBuildOptions sim_options = options.sim;
  if (options.cancel != nullptr) sim_options.cancel = options.cancel;
  auto sim_build = std::async(std::launch::async, [&sim, &dir, &sim_options, &sim_seconds, t0] {
    auto r = toolchain::BuildSimLibrary(sim, dir.string(), sim_options);
    sim_seconds = SecondsSince(t0);
    return r;
  });

  if (!testbench.empty()) {
    std::error_code ec;
    fs::create_directories(dir / "tb", ec);
    if (ec) return InvalidArgument((dir / "tb").string() + ": cannot create: " + ec.message());
    for (const auto& f : testbench) {
      RETURN_IF_ERROR(WriteFileAtomic((dir / "tb" / f.name).string(), f.text));
    }
  }

  CompileResult result;
  BundleMetadata& m = result.metadata;
  m.generator_version = kVersion;
  m.id = ContentId(model_json, precision_json, rtl, options, reuse_text, interface);
  m.board = options.board;
  m.precision = precision.spec;
  m.reuse = 1;
  for (const auto& l : design.layers) m.reuse = std::max(m.reuse, l.reuse);
  m.interface = interface;
  m.clock_mhz = board.clock_mhz;
  m.resources = {plan.estimate.lut, plan.estimate.ff, plan.estimate.dsp, plan.estimate.bram,
                 board.lut_kind.empty() ? "LUT6" : board.lut_kind, "estimate"};
  m.bitstream = {"built", kSimLibraryFile, "verilator (the sim board's library)"};
  std::vector<toolchain::StageTiming> flow_stages;
  if (board.toolchain != "verilator") {
    toolchain::FlowRequest request;
    request.design = &design;
    request.board = board;
    request.bundle_dir = dir.string();
    request.interface = interface;
    request.design_id = static_cast<std::uint32_t>(std::stoul(m.id.substr(0, 8), nullptr, 16));
    request.stage_timeout = options.stage_timeout;
    request.cancel = options.cancel;
    request.on_stage = options.on_stage;
    Result<toolchain::FlowResult> flow = Unimplemented("board toolchain " + board.toolchain);
    if (board.toolchain == "icestorm") flow = toolchain::RunIce40Flow(request);
    if (board.toolchain == "vivado" || board.toolchain == "vitis") {
      flow = toolchain::RunAmdFlow(request);
    }
    if (!flow.ok()) {
      sim_build.wait();
      return flow.status();
    }
    const auto& u = flow->utilization;
    m.resources = {u.lut, u.ff, u.dsp, u.bram, board.lut_kind, u.source};
    if (flow->fmax_mhz > 0) m.fmax_mhz = flow->fmax_mhz;
    m.bitstream = {flow->bitstream_status, flow->bitstream_path, flow->bitstream_command};
    flow_stages = flow->stages;
    for (const auto& [tool, version] : flow->tool_versions) m.toolchain[tool] = version;
  }
  ASSIGN_OR_RETURN(toolchain::SimBuildResult built, sim_build.get());
  result.sim_cache_hit = built.cache_hit;
  stages.push_back({built.cache_hit ? "verilator (cached)" : "verilator", sim_seconds});
  for (const auto& t : flow_stages) stages.push_back({t.stage, t.seconds});
  m.latency_cycles = design.latency_cycles;
  m.initiation_interval = design.initiation_interval;
  const auto& in = graph.inputs[0];
  const auto& out = graph.outputs[0];
  m.inputs = {
      {in.name, BatchShape(in.shape), model::DataTypeName(in.dtype), design.in_format.ToString()}};
  m.outputs = {{out.name, BatchShape(out.shape), model::DataTypeName(out.dtype),
                design.out_format.ToString()}};
  m.layers = design.layers;
  m.n_inputs = design.n_in;
  m.n_outputs = design.n_out;
  m.flavor = FlavorOf(interface);
  m.input_format = design.in_format;
  m.output_format = design.out_format;
  m.toolchain["verilator"] = VerilatorVersion();
  m.stages = std::move(stages);
  ASSIGN_OR_RETURN(m.files, ListBundleFiles(dir.string()));
  // Written last: a directory with metadata.json is a complete bundle.
  RETURN_IF_ERROR(WriteFileAtomic((dir / kMetadataFile).string(), MetadataToJson(m)));
  return result;
}

}  // namespace fpgaserve::firmware
