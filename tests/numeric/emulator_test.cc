#include "numeric/emulator.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "model/passes.h"

namespace fpgaserve::numeric {
namespace {

using model::ActivationKind;

// A random Dense -> act -> Dense -> act network with a fixed seed.
model::Graph RandomMlp(std::mt19937& rng, int n_in, int n_hidden, int n_out, ActivationKind hidden_act,
                       ActivationKind out_act) {
  std::normal_distribution<double> d(0.0, 0.6);
  auto dense = [&](int in, int out) {
    model::DenseParams p{in, out, {}, {}};
    for (int i = 0; i < in * out; ++i) p.weights.push_back(d(rng));
    for (int i = 0; i < out; ++i) p.bias.push_back(d(rng));
    return p;
  };
  model::Graph g;
  g.inputs.push_back({"x", {n_in}});
  g.layers.push_back(model::MakeDense("fc1", "x", "h", dense(n_in, n_hidden)));
  g.layers.push_back(model::MakeActivation("a1", "h", "ha", hidden_act, 0.125));
  g.layers.push_back(model::MakeDense("fc2", "ha", "o", dense(n_hidden, n_out)));
  g.layers.push_back(model::MakeActivation("a2", "o", "y", out_act));
  g.outputs.push_back({"y", {}});
  EXPECT_TRUE(model::Finalize(g).ok());
  return g;
}

model::SampleBatch RandomInputs(std::mt19937& rng, std::size_t rows, std::size_t features, double scale) {
  std::uniform_real_distribution<double> u(-scale, scale);
  model::SampleBatch b{rows, features, {}};
  for (std::size_t i = 0; i < rows * features; ++i) b.values.push_back(u(rng));
  return b;
}

PrecisionConfig Uniform(const model::Graph& g, const std::string& spec) {
  auto cfg = ResolvePrecision(g, {spec, ""}, nullptr);
  EXPECT_TRUE(cfg.ok()) << cfg.status().ToString();
  return *cfg;
}

// An independent model of the fixed-point Dense semantics with doubles: with <= 24-bit formats
// every product and sum is exact in a double, so the only rounding is the final FixedFromDouble.
TEST(EmulatorTest, FixedDenseMatchesExactOracle) {
  const unsigned seed = 1234;
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  for (const char* spec : {"fixed<16,6>", "fixed<12,4,RND,SAT>", "fixed<10,3,RND_CONV,WRAP>"}) {
    auto g = RandomMlp(rng, 5, 7, 3, ActivationKind::kLinear, ActivationKind::kLinear);
    auto cfg = Uniform(g, spec);
    auto qm = QuantizedModel::Build(g, cfg);
    ASSERT_TRUE(qm.ok()) << qm.status().ToString();
    auto in = RandomInputs(rng, 50, 5, 6.0);
    auto emu = qm->Run(in);
    ASSERT_TRUE(emu.ok());
    const FixedFormat f = cfg.input.fixed();
    for (std::size_t r = 0; r < in.rows; ++r) {
      std::vector<double> x;
      for (std::size_t i = 0; i < 5; ++i) x.push_back(FixedToDouble(FixedFromDouble(in.at(r, i), f).raw, f));
      for (const auto& layer : g.layers) {
        const LayerPrecision& p = cfg.layers.at(layer.name);
        const FixedFormat rf = p.result.fixed();
        std::vector<double> y;
        if (layer.kind == model::LayerKind::kDense) {
          const auto& d = layer.dense();
          for (std::int64_t o = 0; o < d.out_features; ++o) {
            double acc = FixedToDouble(FixedFromDouble(d.bias[o], p.bias.fixed()).raw, p.bias.fixed());
            for (std::int64_t i = 0; i < d.in_features; ++i) {
              acc += x[i] * FixedToDouble(FixedFromDouble(d.w(o, i), p.weight.fixed()).raw, p.weight.fixed());
            }
            y.push_back(FixedToDouble(FixedFromDouble(acc, rf).raw, rf));
          }
        } else {
          for (double v : x) y.push_back(FixedToDouble(FixedFromDouble(v, rf).raw, rf));
        }
        x = y;
      }
      for (std::size_t o = 0; o < 3; ++o) ASSERT_EQ(emu->outputs[0].at(r, o), x[o]) << spec << " row " << r;
    }
  }
}

// A narrow accumulator takes the general (non-int64) path: products and every partial sum are
// rounded and overflowed in the accumulator format, in input order.
TEST(EmulatorTest, NarrowAccumulatorRoundsEachStep) {
  model::Graph g;
  g.inputs.push_back({"x", {3}});
  g.layers.push_back(model::MakeDense("fc", "x", "y", {3, 1, {0.75, 0.75, 0.75}, {0.0}}));
  g.outputs.push_back({"y", {}});
  ASSERT_TRUE(model::Finalize(g).ok());
  PrecisionConfig cfg;
  cfg.spec = "test";
  cfg.input = FixedFormat{8, 4};
  LayerPrecision p;
  p.weight = FixedFormat{8, 2};
  p.bias = FixedFormat{8, 2};
  p.accum = FixedFormat{6, 4, true, Quantization::kTrn, Overflow::kSat};  // lsb 0.25, max 7.75
  p.result = FixedFormat{8, 4};
  cfg.layers["fc"] = p;
  auto qm = QuantizedModel::Build(g, cfg);
  ASSERT_TRUE(qm.ok());
  auto emu = qm->Run(model::SampleBatch{2, 3, {0.5, 0.5, 0.5, 7.0, 7.0, 7.0}});
  ASSERT_TRUE(emu.ok());
  // 0.375 truncates to 0.25 three times.
  EXPECT_EQ(emu->outputs[0].values[0], 0.75);
  // 5.25 + 5.25 saturates at 7.75, and stays there.
  EXPECT_EQ(emu->outputs[0].values[1], 7.75);
  EXPECT_GT(emu->overflows.at("fc"), 0);
}

TEST(EmulatorTest, Float32MatchesHostFloat) {
  std::mt19937 rng(99);
  auto g = RandomMlp(rng, 4, 16, 2, ActivationKind::kReLU, ActivationKind::kLinear);
  auto qm = QuantizedModel::Build(g, Uniform(g, "float32"));
  ASSERT_TRUE(qm.ok());
  auto in = RandomInputs(rng, 100, 4, 10.0);
  auto emu = qm->Run(in);
  ASSERT_TRUE(emu.ok());
  for (std::size_t r = 0; r < in.rows; ++r) {
    std::vector<float> x;
    for (std::size_t i = 0; i < 4; ++i) x.push_back(static_cast<float>(in.at(r, i)));
    for (const auto& layer : g.layers) {
      std::vector<float> y;
      if (layer.kind == model::LayerKind::kDense) {
        const auto& d = layer.dense();
        for (std::int64_t o = 0; o < d.out_features; ++o) {
          volatile float acc = static_cast<float>(d.bias[o]);
          for (std::int64_t i = 0; i < d.in_features; ++i) {
            volatile float prod = x[i] * static_cast<float>(d.w(o, i));
            acc = acc + prod;
          }
          y.push_back(static_cast<float>(acc));
        }
      } else {
        for (float v : x) y.push_back(layer.activation().kind == ActivationKind::kReLU && v < 0 ? 0.0f : v);
      }
      x = y;
    }
    for (std::size_t o = 0; o < 2; ++o) ASSERT_EQ(emu->outputs[0].at(r, o), static_cast<double>(x[o]));
  }
}

// The int64 and host-float32 fast paths must give exactly the bits of the general datapath.
TEST(EmulatorTest, FastPathsEqualTheGeneralDatapath) {
  std::mt19937 rng(5);
  for (const char* spec : {"float32", "fixed<16,6>", "fixed<24,10,RND_CONV,SAT>"}) {
    auto g = RandomMlp(rng, 6, 8, 3, ActivationKind::kTanh, ActivationKind::kSigmoid);
    auto cfg = Uniform(g, spec);
    auto fast = QuantizedModel::Build(g, cfg, true);
    auto general = QuantizedModel::Build(g, cfg, false);
    ASSERT_TRUE(fast.ok() && general.ok());
    auto in = RandomInputs(rng, 200, 6, 8.0);
    auto a = fast->Run(in);
    auto b = general->Run(in);
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(a->raw_outputs[0].values, b->raw_outputs[0].values) << spec;
    EXPECT_EQ(a->overflows, b->overflows) << spec;
  }
}

TEST(EmulatorTest, Float32IsCloseToFloat64) {
  std::mt19937 rng(11);
  for (auto act : {ActivationKind::kSigmoid, ActivationKind::kTanh, ActivationKind::kSoftmax}) {
    auto g = RandomMlp(rng, 4, 16, 3, ActivationKind::kReLU, act);
    auto qm = QuantizedModel::Build(g, Uniform(g, "float32"));
    ASSERT_TRUE(qm.ok());
    auto in = RandomInputs(rng, 200, 4, 5.0);
    auto emu = qm->Run(in);
    auto ref = model::EvaluateReference(g, in);
    ASSERT_TRUE(emu.ok() && ref.ok());
    for (std::size_t i = 0; i < ref->values.size(); ++i) {
      EXPECT_NEAR(emu->outputs[0].values[i], ref->values[i], 2e-6) << model::ActivationName(act);
    }
  }
}

TEST(EmulatorTest, FixedSoftmaxSigmoidTanhApproximateFloat) {
  std::mt19937 rng(21);
  for (auto act : {ActivationKind::kSigmoid, ActivationKind::kTanh, ActivationKind::kSoftmax}) {
    auto g = RandomMlp(rng, 4, 8, 3, ActivationKind::kLeakyReLU, act);
    auto qm = QuantizedModel::Build(g, Uniform(g, "fixed<18,8>"));
    ASSERT_TRUE(qm.ok());
    auto in = RandomInputs(rng, 200, 4, 3.0);
    auto emu = qm->Run(in);
    auto ref = model::EvaluateReference(g, in);
    ASSERT_TRUE(emu.ok() && ref.ok());
    for (std::size_t i = 0; i < ref->values.size(); ++i) {
      EXPECT_NEAR(emu->outputs[0].values[i], ref->values[i], 0.02) << model::ActivationName(act);
    }
  }
}

TEST(EmulatorTest, ArgmaxSoftmaxIsOneHotOfTheLargestLogit) {
  std::mt19937 rng(3);
  auto g = RandomMlp(rng, 4, 8, 3, ActivationKind::kReLU, ActivationKind::kSoftmax);
  for (const char* spec : {"fixed<16,6>", "float16"}) {
    auto cfg = Uniform(g, spec);
    cfg.softmax = SoftmaxMode::kArgmax;
    auto qm = QuantizedModel::Build(g, cfg);
    ASSERT_TRUE(qm.ok());
    auto in = RandomInputs(rng, 100, 4, 3.0);
    auto emu = qm->Run(in);
    auto ref = model::EvaluateReference(g, in);
    ASSERT_TRUE(emu.ok() && ref.ok());
    auto want = model::ArgmaxRows(*ref);
    for (std::size_t r = 0; r < in.rows; ++r) {
      double sum = 0;
      for (std::size_t o = 0; o < 3; ++o) sum += emu->outputs[0].at(r, o);
      EXPECT_EQ(sum, 1.0);
    }
    auto got = model::ArgmaxRows(emu->outputs[0]);
    int agree = 0;
    for (std::size_t r = 0; r < in.rows; ++r) agree += got[r] == want[r];
    EXPECT_GE(agree, 95) << spec;
  }
}

TEST(EmulatorTest, OverflowsAreCountedPerLayer) {
  std::mt19937 rng(8);
  auto g = RandomMlp(rng, 4, 4, 2, ActivationKind::kLinear, ActivationKind::kLinear);
  auto qm = QuantizedModel::Build(g, Uniform(g, "fixed<6,2,TRN,SAT>"));
  ASSERT_TRUE(qm.ok());
  auto emu = qm->Run(RandomInputs(rng, 20, 4, 50.0));
  ASSERT_TRUE(emu.ok());
  EXPECT_GT(emu->overflows.at("input"), 0);
  EXPECT_EQ(emu->output_formats[0].ToString(), "fixed<6,2,TRN,SAT>");
}

TEST(EmulatorTest, RejectsWrongInputWidth) {
  std::mt19937 rng(1);
  auto g = RandomMlp(rng, 4, 4, 2, ActivationKind::kReLU, ActivationKind::kLinear);
  auto qm = QuantizedModel::Build(g, Uniform(g, "fixed<16,6>"));
  ASSERT_TRUE(qm.ok());
  EXPECT_FALSE(qm->Run(model::SampleBatch{1, 3, {1, 2, 3}}).ok());
}

}  // namespace
}  // namespace fpgaserve::numeric
