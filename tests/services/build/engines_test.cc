#include "services/build/engines.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "boards/board.h"
#include "importers/import.h"
#include "importers/test_files.h"
#include "model/passes.h"
#include "model/reference_evaluator.h"
#include "toolchain/fake_tools.h"

namespace fpgaserve::build {
namespace {

namespace fs = std::filesystem;
using fpgaserve::testing::PathGuard;
using fpgaserve::testing::WriteScript;
using model::ActivationKind;
using model::Graph;

const std::string kBanknote =
    std::string(FPGASERVE_SOURCE_DIR) + "/examples/banknote/banknote.onnx";

std::string ReadText(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

Graph Banknote() {
  auto g = importers::ImportModel(kBanknote);
  EXPECT_TRUE(g.ok()) << g.status().ToString();
  return g.ok() ? *g : Graph{};
}

model::DenseParams RandomDense(std::int64_t in, std::int64_t out, std::mt19937& rng) {
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  model::DenseParams d;
  d.in_features = in;
  d.out_features = out;
  for (std::int64_t i = 0; i < in * out; ++i) d.weights.push_back(u(rng));
  for (std::int64_t i = 0; i < out; ++i) d.bias.push_back(u(rng));
  return d;
}

// 5 -> Dense 7 + ReLU -> Dense 3 -> Dense 4 -> Softmax: what neuralbond can express.
Graph RandomNeuralbondChain() {
  std::mt19937 rng(7);
  Graph g;
  g.name = "chain";
  g.source_format = "native";
  g.inputs.push_back({"x", {5}});
  g.layers.push_back(model::MakeDense("d1", "x", "h1", RandomDense(5, 7, rng)));
  g.layers.push_back(model::MakeActivation("r1", "h1", "a1", ActivationKind::kReLU));
  g.layers.push_back(model::MakeDense("d2", "a1", "h2", RandomDense(7, 3, rng)));
  g.layers.push_back(model::MakeDense("d3", "h2", "h3", RandomDense(3, 4, rng)));
  g.layers.push_back(model::MakeActivation("sm", "h3", "y", ActivationKind::kSoftmax));
  g.outputs.push_back({"y", {}});
  EXPECT_TRUE(model::Finalize(g).ok());
  return g;
}

// Every layer kind the Keras export writes: Scale (kept apart from the Dense by a LeakyReLU so
// that Finalize does not fold it), LeakyReLU, Sigmoid, Tanh, Linear, ReLU, Softmax.
Graph RandomKerasChain() {
  std::mt19937 rng(11);
  std::uniform_real_distribution<double> u(-2.0, 2.0);
  Graph g;
  g.name = "keras_chain";
  g.source_format = "native";
  g.inputs.push_back({"x", {3}});
  g.layers.push_back(model::MakeDense("d1", "x", "h1", RandomDense(3, 6, rng)));
  g.layers.push_back(model::MakeActivation("lr", "h1", "a1", ActivationKind::kLeakyReLU, 0.125));
  model::ScaleParams s;
  for (int i = 0; i < 6; ++i) {
    s.scale.push_back(u(rng));
    s.shift.push_back(u(rng));
  }
  g.layers.push_back(model::MakeScale("bn", "a1", "s1", s));
  g.layers.push_back(model::MakeActivation("sg", "s1", "a2", ActivationKind::kSigmoid));
  g.layers.push_back(model::MakeDense("d2", "a2", "h2", RandomDense(6, 5, rng)));
  g.layers.push_back(model::MakeActivation("th", "h2", "a3", ActivationKind::kTanh));
  g.layers.push_back(model::MakeActivation("li", "a3", "a4", ActivationKind::kLinear));
  g.layers.push_back(model::MakeDense("d3", "a4", "h3", RandomDense(5, 4, rng)));
  g.layers.push_back(model::MakeActivation("re", "h3", "a5", ActivationKind::kReLU));
  g.layers.push_back(model::MakeDense("d4", "a5", "h4", RandomDense(4, 2, rng)));
  g.layers.push_back(model::MakeActivation("sm", "h4", "y", ActivationKind::kSoftmax));
  g.outputs.push_back({"y", {}});
  auto st = model::Finalize(g);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return g;
}

// Both graphs agree on fixed-seed random inputs up to 1e-12.
void ExpectSameFunction(const Graph& a, const Graph& b) {
  ASSERT_EQ(a.inputs.size(), 1u);
  ASSERT_EQ(b.inputs.size(), 1u);
  const auto n = static_cast<std::size_t>(model::ElementCount(a.inputs[0].shape));
  ASSERT_EQ(n, static_cast<std::size_t>(model::ElementCount(b.inputs[0].shape)));
  std::mt19937 rng(1234);
  std::uniform_real_distribution<double> u(-4.0, 4.0);
  model::SampleBatch in{64, n, {}};
  for (std::size_t i = 0; i < in.rows * n; ++i) in.values.push_back(u(rng));
  auto ya = model::EvaluateReference(a, in);
  auto yb = model::EvaluateReference(b, in);
  ASSERT_TRUE(ya.ok()) << ya.status().ToString();
  ASSERT_TRUE(yb.ok()) << yb.status().ToString();
  ASSERT_EQ(ya->features, yb->features);
  ASSERT_EQ(ya->values.size(), yb->values.size());
  for (std::size_t i = 0; i < ya->values.size(); ++i) {
    EXPECT_NEAR(ya->values[i], yb->values[i], 1e-12) << "value " << i;
  }
}

Result<Graph> ImportNeuralbondText(const std::string& text) {
  ASSIGN_OR_RETURN(Graph g, importers::ImportNeuralbond(text, "exported.json"));
  RETURN_IF_ERROR(model::Finalize(g));
  return g;
}

// --- ExportNeuralbondJson ---

TEST(NeuralbondExportTest, BanknoteRoundTripsThroughTheImporter) {
  Graph g = Banknote();
  auto text = ExportNeuralbondJson(g);
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  auto back = ImportNeuralbondText(*text);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ExpectSameFunction(g, *back);
}

TEST(NeuralbondExportTest, DenseReluSoftmaxChainRoundTrips) {
  Graph g = RandomNeuralbondChain();
  auto text = ExportNeuralbondJson(g);
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  EXPECT_NE(text->find("\"relu\""), std::string::npos);
  EXPECT_NE(text->find("\"softmax\""), std::string::npos);
  auto back = ImportNeuralbondText(*text);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ExpectSameFunction(g, *back);
}

TEST(NeuralbondExportTest, OtherActivationsAndLayerKindsAreUnimplementedNamingTheLayer) {
  Graph g = RandomKerasChain();  // starts with Dense + LeakyReLU
  auto r = ExportNeuralbondJson(g);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(r.status().message().find("'lr'"), std::string::npos) << r.status().message();

  Graph sig = RandomNeuralbondChain();
  sig.layers[1].activation().kind = ActivationKind::kSigmoid;
  r = ExportNeuralbondJson(sig);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(r.status().message().find("'r1' (Sigmoid)"), std::string::npos) << r.status().message();

  Graph scale;
  scale.inputs.push_back({"x", {2}});
  scale.layers.push_back(model::MakeScale("norm", "x", "y", {{2.0, 3.0}, {0.5, -1.0}}));
  scale.outputs.push_back({"y", {2}});
  r = ExportNeuralbondJson(scale);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(r.status().message().find("'norm' (Scale)"), std::string::npos) << r.status().message();
}

// --- ExportHls4mlConfig ---

EngineRequest RequestFor(const std::string& board_id, const Graph* graph) {
  EngineRequest r;
  r.graph = graph;
  auto b = boards::FindBoard(board_id);
  EXPECT_TRUE(b.ok()) << b.status().ToString();
  if (b.ok()) r.board = *b;
  return r;
}

TEST(Hls4mlConfigTest, PynqZ2Fixed16_6) {
  EngineRequest req = RequestFor("pynq-z2", nullptr);
  req.precision = "fixed<16,6>";
  req.reuse = 4;
  auto text = ExportHls4mlConfig(req, "/w/model.json", "/w/model_weights.h5", "/w/prj");
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  YAML::Node y = YAML::Load(*text);
  EXPECT_EQ(y["Backend"].as<std::string>(), "Vivado");
  EXPECT_EQ(y["KerasJson"].as<std::string>(), "/w/model.json");
  EXPECT_EQ(y["KerasH5"].as<std::string>(), "/w/model_weights.h5");
  EXPECT_EQ(y["OutputDir"].as<std::string>(), "/w/prj");
  EXPECT_EQ(y["ProjectName"].as<std::string>(), "fpgaserve");
  EXPECT_EQ(y["Part"].as<std::string>(), "xc7z020clg400-1");
  EXPECT_EQ(y["ClockPeriod"].as<double>(), 10.0);
  EXPECT_EQ(y["IOType"].as<std::string>(), "io_stream");  // pynq-z2's default interface is axis
  EXPECT_EQ(y["HLSConfig"]["Model"]["Precision"].as<std::string>(), "ap_fixed<16,6>");
  EXPECT_EQ(y["HLSConfig"]["Model"]["ReuseFactor"].as<int>(), 4);
}

TEST(Hls4mlConfigTest, PrecisionInterfaceAndClockMapping) {
  EngineRequest req = RequestFor("pynq-z2", nullptr);
  req.interface = "axilite";
  req.precision = "float32";
  req.board.clock_mhz = 200;
  auto text = ExportHls4mlConfig(req, "m.json", "w.h5", "prj");
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  YAML::Node y = YAML::Load(*text);
  EXPECT_EQ(y["IOType"].as<std::string>(), "io_parallel");
  EXPECT_EQ(y["ClockPeriod"].as<double>(), 5.0);
  EXPECT_EQ(y["HLSConfig"]["Model"]["Precision"].as<std::string>(), "float");

  req.precision = "ufixed<8,2,RND_CONV,SAT>";
  text = ExportHls4mlConfig(req, "m.json", "w.h5", "prj");
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  EXPECT_EQ(YAML::Load(*text)["HLSConfig"]["Model"]["Precision"].as<std::string>(),
            "ap_ufixed<8,2,AP_RND_CONV,AP_SAT>");

  req.precision = "";  // the default
  text = ExportHls4mlConfig(req, "m.json", "w.h5", "prj");
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  EXPECT_EQ(YAML::Load(*text)["HLSConfig"]["Model"]["Precision"].as<std::string>(),
            "ap_fixed<16,6>");

  for (const char* spec : {"float16", "bfloat16", "auto"}) {
    req.precision = spec;
    auto r = ExportHls4mlConfig(req, "m.json", "w.h5", "prj");
    ASSERT_FALSE(r.ok()) << spec;
    EXPECT_EQ(r.status().code(), StatusCode::kUnimplemented) << r.status().ToString();
  }
  req.precision = "fixed<16,6>";
  req.reuse = 0;
  EXPECT_EQ(ExportHls4mlConfig(req, "m.json", "w.h5", "prj").status().code(),
            StatusCode::kInvalidArgument);
}

TEST(Hls4mlConfigTest, NonAmdBoardsAreAFailedPrecondition) {
  for (const char* board : {"icebreaker", "sim"}) {
    EngineRequest req = RequestFor(board, nullptr);
    auto r = ExportHls4mlConfig(req, "m.json", "w.h5", "prj");
    ASSERT_FALSE(r.ok()) << board;
    EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
    EXPECT_NE(r.status().message().find("AMD/Xilinx"), std::string::npos) << r.status().message();
  }
}

// --- RunExternalEngine with fake tools ---

struct EngineFixture {
  testing::TempDir tmp;
  fs::path bin;
  Graph graph = Banknote();
  EngineRequest request;
  std::vector<std::string> log;

  explicit EngineFixture(const std::string& board) {
    bin = fs::path(tmp.path()) / "bin";
    fs::create_directories(bin);
    request = RequestFor(board, &graph);
    request.precision = "fixed<16,6>";
    request.reuse = 2;
    request.work_dir = (fs::path(tmp.path()) / "work").string();
    request.out_dir = (fs::path(tmp.path()) / "out").string();
    request.timeout = std::chrono::seconds(60);
    fs::create_directories(request.work_dir);
    request.log = [this](const std::string& line) { log.push_back(line); };
  }
  std::string work() const { return request.work_dir; }
  fs::path out() const { return request.out_dir; }
  bool Logged(const std::string& text) const {
    for (const auto& l : log) {
      if (l.find(text) != std::string::npos) return true;
    }
    return false;
  }
};

// A fake hls4ml that checks its argv and the files it is pointed at, then writes a project with
// reports and a bitstream the way hls4ml + Vivado would.
std::string FakeHls4ml(const std::string& work) {
  const std::string cfg = work + "/config.yml";
  const std::string prj = work + "/hls4ml_prj";
  return "fail() { echo \"fake hls4ml: $*\" >&2; exit 2; }\n"
         "if [ \"$1\" = convert ]; then\n"
         "  [ $# -eq 3 ] && [ \"$2\" = -c ] && [ \"$3\" = '" +
         cfg +
         "' ] || fail \"bad argv: $*\"\n"
         "  [ -f \"$3\" ] || fail 'no config'\n"
         "  grep -q '^Part: \"xc7z020clg400-1\"$' \"$3\" || fail 'no Part'\n"
         "  grep -q '^    ReuseFactor: 2$' \"$3\" || fail 'no ReuseFactor'\n"
         "  grep -q '^    Precision: \"ap_fixed<16,6>\"$' \"$3\" || fail 'no Precision'\n"
         "  grep -q '^ClockPeriod: 10$' \"$3\" || fail 'no ClockPeriod'\n"
         "  grep -q '^IOType: io_stream$' \"$3\" || fail 'no IOType'\n"
         "  grep -q '^KerasJson: \"" +
         work +
         "/model.json\"$' \"$3\" || fail 'no KerasJson'\n"
         "  grep -q '\"class_name\": \"Sequential\"' '" +
         work +
         "/model.json' || fail 'bad json'\n"
         "  head -c 4 '" +
         work +
         "/model_weights.h5' | grep -q HDF || fail 'weights not HDF5'\n"
         "  grep -q '^OutputDir: \"" +
         prj +
         "\"$' \"$3\" || fail 'no OutputDir'\n"
         "  mkdir -p '" +
         prj + "/firmware' && cp \"$3\" '" + prj +
         "/hls4ml_config.yml'\n"
         "  echo 'Writing HLS project'\n"
         "  exit 0\n"
         "fi\n"
         "if [ \"$1\" = build ]; then\n"
         "  [ $# -eq 4 ] && [ \"$2\" = -p ] && [ \"$3\" = '" +
         prj +
         "' ] && [ \"$4\" = -a ] || "
         "fail \"bad argv: $*\"\n"
         "  [ -f \"$3/hls4ml_config.yml\" ] || fail 'not a converted project'\n"
         "  mkdir -p \"$3/fpgaserve_prj/solution1/syn/report\" "
         "\"$3/fpgaserve_prj/solution1/impl\"\n"
         "  echo 'Latency 12 cycles' > "
         "\"$3/fpgaserve_prj/solution1/syn/report/fpgaserve_csynth.rpt\"\n"
         "  echo 'LUT 1234' > \"$3/vivado_synth.rpt\"\n"
         "  echo 'fake bitstream' > \"$3/fpgaserve_prj/solution1/impl/fpgaserve.bit\"\n"
         "  echo 'Synthesis report: latency 12'\n"
         "  exit 0\n"
         "fi\n"
         "fail \"unknown command $1\"\n";
}

TEST(RunExternalEngineTest, ListsTheEngines) {
  EXPECT_EQ(ExternalEngines(), (std::vector<std::string>{"bondmachine", "hls4ml"}));
}

TEST(RunExternalEngineTest, Hls4mlConvertsBuildsAndCollectsArtifacts) {
  EngineFixture f("pynq-z2");
  WriteScript(f.bin / "hls4ml", FakeHls4ml(f.work()));
  PathGuard path(f.bin.string(), true);
  auto r = RunExternalEngine("hls4ml", f.request);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const std::vector<std::string> expected = {
      "config.yml",
      "fpgaserve.bit",
      "hls4ml.log",
      "model.json",
      "model_weights.h5",
      "reports/fpgaserve_prj/solution1/syn/report/fpgaserve_csynth.rpt",
      "reports/vivado_synth.rpt",
  };
  EXPECT_EQ(r->artifacts, expected);
  for (const auto& a : r->artifacts) EXPECT_TRUE(fs::is_regular_file(f.out() / a)) << a;
  EXPECT_EQ(ReadText(f.out() / "fpgaserve.bit"), "fake bitstream\n");
  EXPECT_TRUE(f.Logged("$ hls4ml convert -c " + f.work() + "/config.yml"));
  EXPECT_TRUE(f.Logged("$ hls4ml build -p " + f.work() + "/hls4ml_prj -a"));
  EXPECT_TRUE(f.Logged("Synthesis report: latency 12"));
  EXPECT_NE(ReadText(f.out() / "hls4ml.log").find("Writing HLS project"), std::string::npos);

  // The Keras files hls4ml was given describe the same network (imported by our Keras importer).
  importers::ImportOptions options;
  options.weights_path = (f.out() / "model_weights.h5").string();
  auto keras = importers::ImportModel((f.out() / "model.json").string(), options);
  ASSERT_TRUE(keras.ok()) << keras.status().ToString();
  ExpectSameFunction(f.graph, *keras);
}

TEST(RunExternalEngineTest, Hls4mlKerasExportCoversScaleAndEveryActivation) {
  EngineFixture f("pynq-z2");
  f.graph = RandomKerasChain();
  ASSERT_EQ(f.graph.layers[2].kind, model::LayerKind::kScale);  // not folded away
  WriteScript(f.bin / "hls4ml", FakeHls4ml(f.work()));
  PathGuard path(f.bin.string(), true);
  auto r = RunExternalEngine("hls4ml", f.request);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  importers::ImportOptions options;
  options.weights_path = (f.out() / "model_weights.h5").string();
  auto keras = importers::ImportModel((f.out() / "model.json").string(), options);
  ASSERT_TRUE(keras.ok()) << keras.status().ToString();
  ExpectSameFunction(f.graph, *keras);
}

TEST(RunExternalEngineTest, Hls4mlWithoutReportsIsAnError) {
  EngineFixture f("pynq-z2");
  WriteScript(f.bin / "hls4ml",
              "if [ \"$1\" = convert ]; then mkdir -p \"$(dirname \"$3\")/hls4ml_prj\"; fi\n"
              "echo 'Vivado HLS installation not found'\n");
  PathGuard path(f.bin.string(), true);
  auto r = RunExternalEngine("hls4ml", f.request);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInternal);
  EXPECT_NE(r.status().message().find("Vivado HLS installation not found"), std::string::npos)
      << r.status().message();
}

TEST(RunExternalEngineTest, BondMachineRunsWithTheModelAndBoard) {
  EngineFixture f("zedboard");
  const std::string model = f.work() + "/model.json";
  const std::string tool_out = f.work() + "/bondmachine";
  WriteScript(
      f.bin / "bondmachine",
      "fail() { echo \"fake bondmachine: $*\" >&2; exit 2; }\n"
      "[ $# -eq 6 ] && [ \"$1\" = -neuralbond-json ] && [ \"$2\" = '" +
          model +
          "' ] && [ \"$3\" = -board ] && [ \"$4\" = zedboard ] && [ \"$5\" = -o ] && "
          "[ \"$6\" = '" +
          tool_out +
          "' ] || fail \"bad argv: $*\"\n"
          "grep -q '\"Nodes\"' \"$2\" && grep -q '\"Weights\"' \"$2\" || fail 'not neuralbond'\n"
          "grep -q '\"softmax\"' \"$2\" || fail 'no softmax layer'\n"
          "mkdir -p \"$6/firmware\"\n"
          "echo 'module bondmachine_main; endmodule' > \"$6/firmware/bondmachine.v\"\n"
          "echo 'fake bit' > \"$6/firmware/bondmachine.bit\"\n"
          "echo 'BondMachine built'\n");
  PathGuard path(f.bin.string(), true);
  auto r = RunExternalEngine("bondmachine", f.request);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const std::vector<std::string> expected = {
      "bondmachine.bit",
      "bondmachine.log",
      "bondmachine/firmware/bondmachine.bit",
      "bondmachine/firmware/bondmachine.v",
      "model.json",
  };
  EXPECT_EQ(r->artifacts, expected);
  EXPECT_TRUE(f.Logged("BondMachine built"));
  auto back = ImportNeuralbondText(ReadText(f.out() / "model.json"));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ExpectSameFunction(f.graph, *back);
}

TEST(RunExternalEngineTest, FailingToolIsInternalWithItsOutput) {
  EngineFixture f("pynq-z2");
  WriteScript(f.bin / "bondmachine", "echo 'starting'\necho 'ERROR: no such board' >&2\nexit 1\n");
  PathGuard path(f.bin.string(), true);
  auto r = RunExternalEngine("bondmachine", f.request);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInternal);
  EXPECT_NE(r.status().message().find("ERROR: no such board"), std::string::npos)
      << r.status().message();
  EXPECT_NE(r.status().message().find("exit 1"), std::string::npos) << r.status().message();
  EXPECT_TRUE(f.Logged("ERROR: no such board"));
  EXPECT_NE(ReadText(f.out() / "bondmachine.log").find("ERROR: no such board"), std::string::npos);
}

TEST(RunExternalEngineTest, TimeoutIsDeadlineExceeded) {
  EngineFixture f("pynq-z2");
  WriteScript(f.bin / "hls4ml", "sleep 30\n");
  PathGuard path(f.bin.string(), true);
  f.request.timeout = std::chrono::seconds(1);
  const auto start = std::chrono::steady_clock::now();
  auto r = RunExternalEngine("hls4ml", f.request);
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDeadlineExceeded) << r.status().ToString();
  EXPECT_LT(took, std::chrono::seconds(10));
}

TEST(RunExternalEngineTest, CancelStopsTheToolQuickly) {
  EngineFixture f("pynq-z2");
  WriteScript(f.bin / "bondmachine", "sleep 30\n");
  PathGuard path(f.bin.string(), true);
  std::atomic<bool> cancel{false};
  f.request.cancel = &cancel;
  const auto start = std::chrono::steady_clock::now();
  std::thread canceller([&cancel] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    cancel = true;
  });
  auto r = RunExternalEngine("bondmachine", f.request);
  const auto took = std::chrono::steady_clock::now() - start;
  canceller.join();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kCancelled) << r.status().ToString();
  EXPECT_LT(took, std::chrono::seconds(3));
}

TEST(RunExternalEngineTest, MissingToolIsAFailedPreconditionNamingIt) {
  EngineFixture f("pynq-z2");
  PathGuard path(f.bin.string(), false);  // an empty bin directory alone on PATH
  for (const char* engine : {"hls4ml", "bondmachine"}) {
    auto r = RunExternalEngine(engine, f.request);
    ASSERT_FALSE(r.ok()) << engine;
    EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition) << r.status().ToString();
    EXPECT_NE(r.status().message().find("`" + std::string(engine) + "` program on PATH"),
              std::string::npos)
        << r.status().message();
  }
}

TEST(RunExternalEngineTest, UnknownEngineIsInvalidArgument) {
  EngineFixture f("pynq-z2");
  auto r = RunExternalEngine("vitis-ai", f.request);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("vitis-ai"), std::string::npos);
}

TEST(RunExternalEngineTest, Hls4mlForIcebreakerIsAFailedPrecondition) {
  EngineFixture f("icebreaker");
  WriteScript(f.bin / "hls4ml", "echo 'must not run' >&2\nexit 1\n");
  PathGuard path(f.bin.string(), true);
  auto r = RunExternalEngine("hls4ml", f.request);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("AMD/Xilinx"), std::string::npos) << r.status().message();
  EXPECT_FALSE(f.Logged("must not run"));
}

TEST(RunExternalEngineTest, BondMachineRejectsGraphsItCannotExpressBeforeRunning) {
  EngineFixture f("pynq-z2");
  f.graph = RandomKerasChain();
  WriteScript(f.bin / "bondmachine", "echo 'must not run'\n");
  PathGuard path(f.bin.string(), true);
  auto r = RunExternalEngine("bondmachine", f.request);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnimplemented);
  EXPECT_FALSE(f.Logged("must not run"));
}

}  // namespace
}  // namespace fpgaserve::build
