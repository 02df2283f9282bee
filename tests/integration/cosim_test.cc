// Co-simulation: generated RTL (Verilator, the `sim` board) against the F2 emulator (the `emu`
// board), bit for bit, for the banknote model and a suite of random networks covering every
// activation, several fixed formats and rounding/overflow modes, and reuse factors 1, 2, 4 and odd.
// Designs compile two at a time; the Verilator cache makes reruns fast.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <future>
#include <iostream>
#include <optional>
#include <random>
#include <set>

#include "core/csv.h"
#include "core/subprocess.h"
#include "firmware/compiler.h"
#include "hw/wrappers.h"
#include "importers/import.h"
#include "model/passes.h"
#include "model/reference_evaluator.h"
#include "numeric/number_format.h"
#include "runtime/board_driver.h"
#include "toolchain/verilator_build.h"

namespace fpgaserve {
namespace {

namespace fs = std::filesystem;
using model::ActivationKind;

const std::string kBanknote =
    std::string(FPGASERVE_SOURCE_DIR) + "/examples/banknote/banknote.onnx";
const std::string kBanknoteCsv =
    std::string(FPGASERVE_SHARED_DIR) + "/data/banknote_authentication.csv";
constexpr std::size_t kRows = 1000;
constexpr int kRandomNetworks = 24;
constexpr int kParallelCompiles = 2;

struct CosimCase {
  std::string name;
  model::Graph graph;
  firmware::CompileOptions options;
  unsigned seed = 0;
};

struct TempRoot {
  fs::path path =
      fs::temp_directory_path() / ("fpgaserve_cosim_" + std::to_string(std::random_device{}()));
  bool keep = false;
  TempRoot() { fs::create_directories(path); }
  ~TempRoot() {
    if (keep) {
      std::cerr << "cosim: bundles kept for inspection in " << path << "\n";
    } else {
      fs::remove_all(path);
    }
  }
};

// Widths skew small (the cost of a Verilator build grows with the design) but reach 64.
int RandomWidth(std::mt19937& rng) {
  const int bucket = std::uniform_int_distribution<int>(0, 9)(rng);
  if (bucket < 5) return std::uniform_int_distribution<int>(1, 8)(rng);
  if (bucket < 8) return std::uniform_int_distribution<int>(9, 24)(rng);
  return std::uniform_int_distribution<int>(25, 64)(rng);
}

// depth Dense layers, each followed by an activation; `first_act` rotates through all six kinds
// across the suite so every kind appears at every depth position.
model::Graph RandomNetwork(unsigned seed, int depth, int first_act, int min_input_width) {
  static const ActivationKind kKinds[] = {ActivationKind::kReLU,    ActivationKind::kLeakyReLU,
                                          ActivationKind::kSigmoid, ActivationKind::kTanh,
                                          ActivationKind::kSoftmax, ActivationKind::kLinear};
  std::mt19937 rng(seed);
  model::Graph g;
  g.name = "random" + std::to_string(seed);
  int width = std::max(min_input_width, RandomWidth(rng));
  g.inputs.push_back({"x", {width}});
  std::string tensor = "x";
  for (int l = 0; l < depth; ++l) {
    const int out = RandomWidth(rng);
    model::DenseParams d;
    d.in_features = width;
    d.out_features = out;
    const double scale = 2.0 / std::sqrt(static_cast<double>(width));
    std::uniform_real_distribution<double> w(-scale, scale), b(-0.5, 0.5);
    for (int i = 0; i < width * out; ++i) d.weights.push_back(w(rng));
    for (int i = 0; i < out; ++i) d.bias.push_back(b(rng));
    const std::string dense = "fc" + std::to_string(l + 1);
    g.layers.push_back(model::MakeDense(dense, tensor, dense + "_out", d));
    const ActivationKind kind = kKinds[(first_act + l) % 6];
    const double alpha = std::uniform_int_distribution<int>(1, 3)(rng) / 10.0;
    const std::string act = "act" + std::to_string(l + 1);
    g.layers.push_back(model::MakeActivation(act, dense + "_out", act + "_out", kind, alpha));
    tensor = act + "_out";
    width = out;
  }
  g.outputs.push_back({tensor, {}});
  return g;
}

std::vector<CosimCase> RandomCases() {
  const std::vector<std::string> formats = {"fixed<16,6>",
                                            "fixed<12,4,RND,SAT>",
                                            "fixed<10,3,RND_CONV,SAT>",
                                            "fixed<18,8,RND,WRAP>",
                                            "fixed<8,3>",
                                            "fixed<14,5,RND_CONV,WRAP>",
                                            "fixed<16,7,TRN,SAT>",
                                            "fixed<20,10,RND_CONV,SAT>"};
  const std::vector<int> reuse = {1, 2, 4, 3, 1, 5, 2, 7};
  const std::vector<std::string> interfaces = {"stream", "stream", "axis", "stream", "axilite"};
  std::vector<CosimCase> cases;
  for (int i = 0; i < kRandomNetworks; ++i) {
    CosimCase c;
    c.seed = 1000 + static_cast<unsigned>(i);
    const int depth = 1 + i % 4;
    const int r = reuse[static_cast<std::size_t>(i) % reuse.size()];
    c.graph = RandomNetwork(c.seed, depth, i % 6, r);
    c.options.precision.spec = formats[static_cast<std::size_t>(i) % formats.size()];
    c.options.reuse = r;
    c.options.interface = interfaces[static_cast<std::size_t>(i) % interfaces.size()];
    c.options.testbench_vectors = 0;
    c.name = "random" + std::to_string(i) + "_seed" + std::to_string(c.seed) + "_depth" +
             std::to_string(depth) + "_R" + std::to_string(r) + "_" + c.options.interface;
    cases.push_back(std::move(c));
  }
  return cases;
}

// Compiles every case into <root>/<name>, kParallelCompiles at a time.
std::vector<Result<firmware::CompileResult>> CompileAll(std::vector<CosimCase>& cases,
                                                        const fs::path& root) {
  std::vector<std::optional<Result<firmware::CompileResult>>> slots(cases.size());
  std::atomic<std::size_t> next{0};
  auto worker = [&] {
    for (std::size_t i = next++; i < cases.size(); i = next++) {
      auto g = cases[i].graph;
      Status st = model::Finalize(g);
      slots[i] =
          st.ok() ? firmware::CompileFirmware(g, (root / cases[i].name).string(), cases[i].options)
                  : Result<firmware::CompileResult>(st);
    }
  };
  std::vector<std::future<void>> workers;
  workers.reserve(kParallelCompiles);
  for (int w = 0; w < kParallelCompiles; ++w)
    workers.push_back(std::async(std::launch::async, worker));
  for (auto& f : workers) f.get();
  std::vector<Result<firmware::CompileResult>> results;
  results.reserve(slots.size());
  for (auto& s : slots) results.push_back(std::move(*s));
  return results;
}

// Raw inputs: half uniform over the whole input format (overflow and saturation corners), half
// rounded from N(0, 1) (the range where activations bend).
numeric::RawBatch RandomInputs(const numeric::NumberFormat& f, std::size_t n_in, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<std::int64_t> full(f.min_raw(), f.max_raw());
  std::normal_distribution<double> normal(0.0, 1.0);
  numeric::RawBatch b{kRows, n_in, {}};
  for (std::size_t r = 0; r < kRows; ++r) {
    for (std::size_t i = 0; i < n_in; ++i) {
      b.values.push_back(r % 2 == 0 ? full(rng) : numeric::FromDouble(normal(rng), f).raw);
    }
  }
  return b;
}

std::string Row(const std::vector<numeric::RawValue>& v, std::size_t row, std::size_t n) {
  std::string s;
  for (std::size_t i = 0; i < n; ++i) s += (i ? " " : "") + std::to_string(v[row * n + i]);
  return s;
}

// Runs the batch on both boards and requires identical raw outputs, the design's latency for
// every inference and latency + (rows-1)*II cycles for the batch.
void ExpectBoardsAgree(const std::string& dir, const numeric::RawBatch& inputs) {
  auto emu = runtime::OpenBoardDriver("emu", dir);
  ASSERT_TRUE(emu.ok()) << emu.status().ToString();
  auto sim = runtime::OpenBoardDriver("sim", dir);
  ASSERT_TRUE(sim.ok()) << sim.status().ToString();
  auto e = (*emu)->Infer(inputs);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  auto s = (*sim)->Infer(inputs);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  ASSERT_EQ(s->outputs.values.size(), e->outputs.values.size());
  const std::size_t n_out = e->outputs.features;
  for (std::size_t r = 0; r < inputs.rows; ++r) {
    for (std::size_t j = 0; j < n_out; ++j) {
      ASSERT_EQ(s->outputs.values[r * n_out + j], e->outputs.values[r * n_out + j])
          << "row " << r << " output " << j
          << "\n  input: " << Row(inputs.values, r, inputs.features)
          << "\n  sim:   " << Row(s->outputs.values, r, n_out)
          << "\n  emu:   " << Row(e->outputs.values, r, n_out);
    }
  }
  EXPECT_EQ(s->latency_cycles, e->latency_cycles) << "measured latency differs from the design's";
  EXPECT_EQ(s->total_cycles, e->total_cycles) << "batch cycles differ from latency + (rows-1) * II";
}

Status Lint(const fs::path& dir, const std::string& interface) {
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(dir / "rtl")) files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  const std::string top = interface == "axis"      ? hw::kAxisModule
                          : interface == "axilite" ? hw::kAxiLiteModule
                                                   : hw::kCoreModule;
  return toolchain::LintVerilog(files, top);
}

// One random case: compiled, lint clean, and both boards agree.
void CheckCase(const CosimCase& c, const Result<firmware::CompileResult>& compiled,
               const fs::path& root) {
  SCOPED_TRACE(c.name + " (precision " + c.options.precision.spec + ", seed " +
               std::to_string(c.seed) + ")");
  ASSERT_TRUE(compiled.ok()) << compiled.status().ToString();
  const auto& m = compiled->metadata;
  const std::string dir = (root / c.name).string();
  Status lint = Lint(dir, c.options.interface);
  EXPECT_TRUE(lint.ok()) << lint.ToString();
  ExpectBoardsAgree(dir,
                    RandomInputs(m.input_format, static_cast<std::size_t>(m.n_inputs), c.seed));
}

// The banknote data set's feature rows, rounded into the input format.
Result<numeric::RawBatch> BanknoteRows(const numeric::NumberFormat& f) {
  ASSIGN_OR_RETURN(auto table, ReadNumericCsv(kBanknoteCsv));
  ASSIGN_OR_RETURN(auto data, SplitLabelColumn(table, "class", kBanknoteCsv));
  numeric::RawBatch b{data.rows, 4, {}};
  for (double x : data.features) b.values.push_back(numeric::FromDouble(x, f).raw);
  return b;
}

// The bundle's self-checking testbench (random bubbles and back-pressure after a full-rate
// burst) under Icarus, a second, independent simulator that starts registers at X.
void ExpectIcarusTestbenchPasses(const std::string& dir) {
  auto iv = RunSubprocess({"iverilog", "-V"});
  if (!iv.ok()) {
    std::cerr << "iverilog not found: skipping the Icarus testbench run\n";
    return;
  }
  std::vector<std::string> argv = {"iverilog", "-g2005", "-o", "tb.vvp", "tb_fpgaserve_core.v"};
  for (const auto& e : fs::directory_iterator(fs::path(dir) / "rtl")) argv.push_back(e.path().string());
  SubprocessOptions so;
  so.working_dir = (fs::path(dir) / "tb").string();
  so.timeout = std::chrono::minutes(5);
  auto built = RunSubprocess(argv, so);
  ASSERT_TRUE(built.ok() && built->success()) << (built.ok() ? built->stderr_text : "");
  auto ran = RunSubprocess({"vvp", "-n", "tb.vvp"}, so);
  ASSERT_TRUE(ran.ok());
  EXPECT_NE(ran->stdout_text.find("PASS"), std::string::npos) << ran->stdout_text;
  EXPECT_EQ(ran->stdout_text.find("FAIL"), std::string::npos) << ran->stdout_text;
}

// Every activation kind appears in the suite; each case compiles, lints clean and both boards agree.
void RunSuite(std::vector<CosimCase>& cases, TempRoot& root) {
  std::set<ActivationKind> kinds;
  for (const auto& c : cases) {
    for (const auto& l : c.graph.layers) {
      if (l.kind == model::LayerKind::kActivation) kinds.insert(l.activation().kind);
    }
  }
  EXPECT_EQ(kinds.size(), 6u) << "the suite must cover every activation";
  auto results = CompileAll(cases, root.path);
  for (std::size_t i = 0; i < cases.size(); ++i) CheckCase(cases[i], results[i], root.path);
  root.keep = ::testing::Test::HasFailure();
}

TEST(CosimTest, BanknoteFixed16Reuse1) {
  TempRoot root;
  auto graph = importers::ImportModel(kBanknote);
  ASSERT_TRUE(graph.ok()) << graph.status().ToString();
  firmware::CompileOptions o;
  o.precision.spec = "fixed<16,6>";
  o.reuse = 1;
  const std::string dir = (root.path / "banknote").string();
  auto compiled = firmware::CompileFirmware(*graph, dir, o);
  ASSERT_TRUE(compiled.ok()) << compiled.status().ToString();
  const auto& m = compiled->metadata;
  EXPECT_LE(m.latency_cycles, 8);
  EXPECT_EQ(m.initiation_interval, 1);
  EXPECT_TRUE(Lint(dir, "stream").ok()) << Lint(dir, "stream").ToString();
  {
    SCOPED_TRACE("random inputs, seed 42");
    ExpectBoardsAgree(dir, RandomInputs(m.input_format, 4, 42));
  }
  if (fs::exists(kBanknoteCsv)) {
    SCOPED_TRACE(kBanknoteCsv);
    auto b = BanknoteRows(m.input_format);
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    ExpectBoardsAgree(dir, *b);
  }
  ExpectIcarusTestbenchPasses(dir);
  root.keep = HasFailure();
}

TEST(CosimTest, RandomNetworks) {
  TempRoot root;
  std::vector<CosimCase> cases = RandomCases();
  // The banknote net at the other reuse factors of the acceptance table.
  auto banknote = importers::ImportModel(kBanknote);
  ASSERT_TRUE(banknote.ok()) << banknote.status().ToString();
  for (int r : {2, 4, 3, 16, 64}) {
    CosimCase c;
    c.name = "banknote_R" + std::to_string(r);
    c.graph = *banknote;
    c.options.precision.spec = "fixed<16,6>";
    c.options.reuse = r;
    c.options.testbench_vectors = 0;
    c.seed = 77 + static_cast<unsigned>(r);
    cases.push_back(std::move(c));
  }
  RunSuite(cases, root);
}

// Float datapaths (F8): banknote in float32 over the whole data set — the RTL equals the
// emulator bit for bit and its probabilities are within 1e-6 of the float64 reference — then
// random networks in float32, float16, bfloat16 and float<6,9> covering every activation.
// The banknote model compiled in float32 at `reuse` into `dir`.
Result<firmware::CompileResult> CompileBanknoteFloat32(const std::string& dir, int reuse) {
  ASSIGN_OR_RETURN(model::Graph graph, importers::ImportModel(kBanknote));
  firmware::CompileOptions o;
  o.precision.spec = "float32";
  o.reuse = reuse;
  return firmware::CompileFirmware(graph, dir, o);
}

TEST(CosimTest, BanknoteFloat32MatchesTheEmulatorAndFloat64) {
  if (!fs::exists(kBanknoteCsv)) GTEST_SKIP() << kBanknoteCsv << " not found";
  TempRoot root;
  auto graph = importers::ImportModel(kBanknote);
  ASSERT_TRUE(graph.ok()) << graph.status().ToString();
  const std::string dir = (root.path / "banknote_float32").string();
  auto compiled = CompileBanknoteFloat32(dir, 1);
  ASSERT_TRUE(compiled.ok()) << compiled.status().ToString();
  const auto& m = compiled->metadata;
  EXPECT_TRUE(Lint(dir, "stream").ok()) << Lint(dir, "stream").ToString();
  auto rows = BanknoteRows(m.input_format);
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  const numeric::RawBatch& b = *rows;
  ExpectBoardsAgree(dir, b);
  // Against float64 on the same (float32-rounded) inputs.
  auto sim = runtime::OpenBoardDriver("sim", dir);
  ASSERT_TRUE(sim.ok()) << sim.status().ToString();
  auto out = (*sim)->Infer(b);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  auto g = *graph;
  ASSERT_TRUE(model::Finalize(g).ok());
  model::SampleBatch in{b.rows, 4, {}};
  for (auto v : b.values) in.values.push_back(numeric::ToDouble(v, m.input_format));
  auto ref = model::EvaluateReference(g, in);
  ASSERT_TRUE(ref.ok()) << ref.status().ToString();
  double worst = 0;
  for (std::size_t i = 0; i < ref->values.size(); ++i) {
    worst = std::max(worst, std::fabs(numeric::ToDouble(out->outputs.values[i], m.output_format) - ref->values[i]));
  }
  EXPECT_LT(worst, 1e-6) << "largest difference from float64";
  root.keep = HasFailure();
}

// Reuse 3 in float32: Dense neurons split over chained units (3 terms each), a new inference
// every 3 cycles, and the softmax (II 2 on its own) rebuilt for the core's period 3. Both boards
// agree over the data set, and the Icarus testbench passes under bubbles and back-pressure.
TEST(CosimTest, BanknoteFloat32Reuse3UnderBackPressure) {
  if (!fs::exists(kBanknoteCsv)) GTEST_SKIP() << kBanknoteCsv << " not found";
  TempRoot root;
  const std::string dir = (root.path / "banknote_float32_r3").string();
  auto compiled = CompileBanknoteFloat32(dir, 3);
  ASSERT_TRUE(compiled.ok()) << compiled.status().ToString();
  EXPECT_EQ(compiled->metadata.initiation_interval, 3);
  auto rows = BanknoteRows(compiled->metadata.input_format);
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  ExpectBoardsAgree(dir, *rows);
  ExpectIcarusTestbenchPasses(dir);
  root.keep = HasFailure();
}

TEST(CosimTest, RandomFloatNetworks) {
  TempRoot root;
  const std::vector<std::string> formats = {"float32", "float16", "bfloat16", "float<6,9>"};
  const std::vector<int> reuse = {1, 4, 16, 2, 8, 3};
  const std::vector<std::string> interfaces = {"stream", "axis", "stream", "axilite"};
  std::vector<CosimCase> cases;
  for (int i = 0; i < 12; ++i) {
    CosimCase c;
    c.seed = 2000 + static_cast<unsigned>(i);
    const int depth = 1 + i % 3;
    const int r = reuse[static_cast<std::size_t>(i) % reuse.size()];
    c.graph = RandomNetwork(c.seed, depth, i % 6, r);
    c.options.precision.spec = formats[static_cast<std::size_t>(i) % formats.size()];
    c.options.reuse = r;
    c.options.interface = interfaces[static_cast<std::size_t>(i) % interfaces.size()];
    c.options.testbench_vectors = 0;
    c.name = "float" + std::to_string(i) + "_seed" + std::to_string(c.seed) + "_depth" + std::to_string(depth) +
             "_R" + std::to_string(r) + "_" + c.options.interface;
    cases.push_back(std::move(c));
  }
  RunSuite(cases, root);
}

}  // namespace
}  // namespace fpgaserve
