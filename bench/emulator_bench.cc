// Throughput of the quantized emulator on the banknote network, against the float64 reference
// evaluator measured in the same run (the baseline). `make bench` writes docs/benchmarks.md rows.
#include <benchmark/benchmark.h>

#include <random>

#include "importers/import.h"
#include "model/reference_evaluator.h"
#include "numeric/emulator.h"
#include "numeric/precision.h"

namespace {

using namespace fpgaserve;

constexpr std::size_t kBatch = 4096;

const model::Graph& Banknote() {
  static const model::Graph g = [] {
    auto r = importers::ImportModel(std::string(FPGASERVE_SOURCE_DIR) + "/examples/banknote/banknote.onnx");
    if (!r.ok()) {
      fprintf(stderr, "%s\n", r.status().ToString().c_str());
      std::abort();
    }
    return *r;
  }();
  return g;
}

model::SampleBatch Inputs() {
  std::mt19937 rng(42);
  std::uniform_real_distribution<double> u(-10, 10);
  model::SampleBatch b{kBatch, 4, {}};
  for (std::size_t i = 0; i < kBatch * 4; ++i) b.values.push_back(u(rng));
  return b;
}

void BM_Float64Reference(benchmark::State& state) {
  const auto in = Inputs();
  for (auto _ : state) {
    auto out = model::EvaluateReference(Banknote(), in);
    benchmark::DoNotOptimize(out);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kBatch));
}

void BM_Emulator(benchmark::State& state, const char* spec) {
  auto cfg = numeric::ResolvePrecision(Banknote(), {spec, ""}, nullptr);
  auto qm = numeric::QuantizedModel::Build(Banknote(), *cfg);
  const auto in = Inputs();
  for (auto _ : state) {
    auto out = qm->Run(in);
    benchmark::DoNotOptimize(out);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kBatch));
}

// The general datapath alone (allow_fast_paths = false): what the fast paths are checked against.
void BM_EmulatorGeneral(benchmark::State& state, const char* spec) {
  auto cfg = numeric::ResolvePrecision(Banknote(), {spec, ""}, nullptr);
  auto qm = numeric::QuantizedModel::Build(Banknote(), *cfg, false);
  const auto in = Inputs();
  for (auto _ : state) {
    auto out = qm->Run(in);
    benchmark::DoNotOptimize(out);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kBatch));
}

// Inputs already in the input format, as hardware receives them (RunRaw).
void BM_EmulatorRaw(benchmark::State& state, const char* spec) {
  auto cfg = numeric::ResolvePrecision(Banknote(), {spec, ""}, nullptr);
  auto qm = numeric::QuantizedModel::Build(Banknote(), *cfg);
  const auto in = Inputs();
  numeric::RawBatch raw{in.rows, in.features, {}};
  for (double v : in.values) raw.values.push_back(numeric::FromDouble(v, cfg->input).raw);
  const std::vector<numeric::RawBatch> inputs{raw};
  for (auto _ : state) {
    auto out = qm->RunRaw(inputs);
    benchmark::DoNotOptimize(out);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kBatch));
}

BENCHMARK(BM_Float64Reference)->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Emulator, fixed_16_6, "fixed<16,6>")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Emulator, fixed_16_6_rnd_sat, "fixed<16,6,RND,SAT>")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_EmulatorRaw, fixed_16_6, "fixed<16,6>")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_EmulatorGeneral, fixed_16_6, "fixed<16,6>")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Emulator, float32, "float32")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Emulator, float16, "float16")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Emulator, bfloat16, "bfloat16")->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
