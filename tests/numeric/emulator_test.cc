#include "numeric/emulator.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "model/passes.h"
#include "numeric/lookup_tables.h"

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

// Bitwise equality of two emulation results: raw outputs, formats, doubles and overflow counts.
void ExpectSameResult(const Result<EmulationResult>& a, const Result<EmulationResult>& b, const std::string& label) {
  ASSERT_EQ(a.ok(), b.ok()) << label;
  if (!a.ok()) return;
  ASSERT_EQ(a->raw_outputs.size(), b->raw_outputs.size()) << label;
  for (std::size_t k = 0; k < a->raw_outputs.size(); ++k) {
    EXPECT_EQ(a->raw_outputs[k].rows, b->raw_outputs[k].rows) << label;
    EXPECT_EQ(a->raw_outputs[k].features, b->raw_outputs[k].features) << label;
    EXPECT_EQ(a->raw_outputs[k].values, b->raw_outputs[k].values) << label << " output " << k;
    EXPECT_TRUE(a->output_formats[k] == b->output_formats[k]) << label;
    const auto& x = a->outputs[k].values;
    const auto& y = b->outputs[k].values;
    ASSERT_EQ(x.size(), y.size()) << label;
    for (std::size_t i = 0; i < x.size(); ++i) {
      ASSERT_EQ(std::bit_cast<std::uint64_t>(x[i]), std::bit_cast<std::uint64_t>(y[i]))
          << label << " output " << k << " value " << i << ": " << x[i] << " vs " << y[i];
    }
  }
  EXPECT_EQ(a->overflows, b->overflows) << label;
}

// Inputs with the awkward values mixed in: exact ties of the input format, zeros of both signs,
// huge, tiny, subnormal, infinite and NaN values.
model::SampleBatch AwkwardInputs(std::mt19937& rng, std::size_t rows, std::size_t features, double scale,
                                 const NumberFormat& input) {
  model::SampleBatch b = RandomInputs(rng, rows, features, scale);
  const double lsb = input.is_fixed() ? input.fixed().lsb() : 1.0 / 1024;
  const double specials[] = {0.0, -0.0, 0.5 * lsb, -0.5 * lsb, 1.5 * lsb, -2.5 * lsb, 1e300, -1e300, 1e-310,
                             -4.9e-324, std::numeric_limits<double>::infinity(),
                             -std::numeric_limits<double>::infinity(), std::numeric_limits<double>::quiet_NaN(),
                             3.4e38, -3.4e38, 65504.0, 70000.0};
  std::uniform_int_distribution<int> k(-2000, 2000);
  for (std::size_t i = 0; i < b.values.size(); i += 3) {
    if (i % 2 == 0) {
      b.values[i] = specials[(i / 3) % std::size(specials)];
    } else {
      b.values[i] = (k(rng) + 0.5) * lsb;  // a tie of the input format
    }
  }
  return b;
}

// A graph that keeps a Scale layer (activations on both sides) and exposes two outputs.
model::Graph ScaleGraph(std::mt19937& rng, ActivationKind act) {
  std::normal_distribution<double> d(0.0, 0.8);
  model::DenseParams p{3, 5, {}, {}};
  for (int i = 0; i < 15; ++i) p.weights.push_back(d(rng));
  for (int i = 0; i < 5; ++i) p.bias.push_back(d(rng));
  model::ScaleParams s;
  for (int i = 0; i < 5; ++i) {
    s.scale.push_back(d(rng));
    s.shift.push_back(d(rng));
  }
  model::Graph g;
  g.inputs.push_back({"x", {3}});
  g.layers.push_back(model::MakeDense("fc", "x", "h", p));
  g.layers.push_back(model::MakeActivation("a1", "h", "ha", ActivationKind::kReLU));
  g.layers.push_back(model::MakeScale("sc", "ha", "s", s));
  g.layers.push_back(model::MakeActivation("a2", "s", "y", act, 0.3));
  g.outputs.push_back({"y", {}});
  g.outputs.push_back({"h", {}});
  EXPECT_TRUE(model::Finalize(g).ok());
  return g;
}

// x -> activation -> Dense -> activation: the first activation sees the graph input directly.
model::Graph ActivationFirstGraph(std::mt19937& rng, ActivationKind first, ActivationKind last) {
  std::normal_distribution<double> d(0.0, 0.8);
  model::DenseParams p{4, 3, {}, {}};
  for (int i = 0; i < 12; ++i) p.weights.push_back(d(rng));
  for (int i = 0; i < 3; ++i) p.bias.push_back(d(rng));
  model::Graph g;
  g.inputs.push_back({"x", {4}});
  g.layers.push_back(model::MakeActivation("a0", "x", "xa", first, 0.2));
  g.layers.push_back(model::MakeDense("fc", "xa", "h", p));
  g.layers.push_back(model::MakeActivation("a1", "h", "y", last));
  g.outputs.push_back({"y", {}});
  EXPECT_TRUE(model::Finalize(g).ok());
  return g;
}

// Runs one configuration with and without fast paths on doubles and on raw inputs.
void CompareFastAndGeneral(const model::Graph& g, const PrecisionConfig& cfg, std::mt19937& rng,
                           const std::string& label) {
  auto fast = QuantizedModel::Build(g, cfg, true);
  auto general = QuantizedModel::Build(g, cfg, false);
  ASSERT_TRUE(fast.ok() && general.ok()) << label;
  const std::size_t features = static_cast<std::size_t>(model::ElementCount(g.inputs[0].shape));
  for (double scale : {4.0, 300.0}) {
    // 300 rows: more than one tile of rows.
    auto in = AwkwardInputs(rng, 300, features, scale, cfg.input);
    ExpectSameResult(fast->Run(in), general->Run(in), label + " doubles x" + std::to_string(scale));
  }
  if (cfg.input.is_fixed()) {
    const FixedFormat& f = cfg.input.fixed();
    std::uniform_int_distribution<std::int64_t> in_range(f.min_raw(), f.max_raw());
    std::uniform_int_distribution<std::int64_t> any(std::numeric_limits<std::int64_t>::min(),
                                                     std::numeric_limits<std::int64_t>::max());
    RawBatch raw{200, features, {}};
    for (std::size_t i = 0; i < 200 * features; ++i) raw.values.push_back(in_range(rng));
    ExpectSameResult(fast->RunRaw({raw}), general->RunRaw({raw}), label + " raw");
    raw.values[7] = any(rng) | (std::int64_t{1} << 62);  // out of the format: the general path runs
    ExpectSameResult(fast->RunRaw({raw}), general->RunRaw({raw}), label + " raw out of range");
  } else {
    // Any bit pattern of the format: NaNs of both signs and payloads, infinities, subnormals.
    const int width = cfg.input.width();
    std::uniform_int_distribution<std::uint64_t> bits(0, (std::uint64_t{1} << width) - 1);
    const std::uint64_t exp_ones = ((std::uint64_t{1} << cfg.input.floating().exponent_bits) - 1)
                                   << cfg.input.floating().mantissa_bits;
    RawBatch raw{200, features, {}};
    for (std::size_t i = 0; i < 200 * features; ++i) {
      std::uint64_t v = bits(rng);
      if (i % 4 == 0) v |= exp_ones;  // Inf or NaN
      raw.values.push_back(static_cast<RawValue>(v));
    }
    ExpectSameResult(fast->RunRaw({raw}), general->RunRaw({raw}), label + " raw");
  }
}

void ExpectFastPathsEqualGeneral() {
  std::mt19937 rng(77);
  const ActivationKind kinds[] = {ActivationKind::kLinear, ActivationKind::kReLU, ActivationKind::kLeakyReLU,
                                  ActivationKind::kSigmoid, ActivationKind::kTanh, ActivationKind::kSoftmax};
  const char* specs[] = {"fixed<16,6>", "fixed<24,10,RND_CONV,SAT>", "fixed<12,4,RND,SAT>",
                         "fixed<10,3,RND_CONV,WRAP>", "fixed<8,2,RND,WRAP>", "fixed<8,3,TRN,SAT>",
                         "ufixed<12,4,RND,SAT>", "fixed<40,16,RND,SAT>", "fixed<62,20,RND_CONV,WRAP>",
                         "float32", "float16", "bfloat16"};
  // Result formats swapped in for activations: conversions that shift right, shift left, round,
  // saturate and wrap.
  const char* results[] = {"fixed<10,4,RND_CONV,SAT>", "fixed<16,2,RND,WRAP>", "fixed<8,10,TRN,SAT>",
                           "fixed<20,6>", "ufixed<9,3,RND,SAT>", "fixed<12,1,RND_CONV,WRAP>",
                           "fixed<64,4,RND,SAT>", "fixed<40,-10,RND,WRAP>", "fixed<30,-40,TRN,SAT>"};
  int variant = 0;
  for (const char* spec : specs) {
    for (ActivationKind hidden : kinds) {
      if (hidden == ActivationKind::kSoftmax) continue;
      for (ActivationKind out : kinds) {
        auto g = RandomMlp(rng, 4, 6, 3, hidden, out);
        PrecisionConfig cfg = Uniform(g, spec);
        const std::string label = std::string(spec) + " " + model::ActivationName(hidden) + "/" +
                                  model::ActivationName(out);
        CompareFastAndGeneral(g, cfg, rng, label);
        if (out == ActivationKind::kSoftmax) {
          PrecisionConfig argmax = cfg;
          argmax.softmax = SoftmaxMode::kArgmax;
          CompareFastAndGeneral(g, argmax, rng, label + " argmax");
        }
        if (cfg.input.is_fixed()) {
          // Activations whose result format differs from their input's.
          PrecisionConfig mixed = cfg;
          for (const char* layer : {"a1", "a2"}) {
            mixed.layers[layer].result = *ParseNumberFormat(results[variant++ % std::size(results)]);
          }
          CompareFastAndGeneral(g, mixed, rng, label + " converted results");
        }
      }
    }
    auto sg = ScaleGraph(rng, ActivationKind::kLeakyReLU);
    CompareFastAndGeneral(sg, Uniform(sg, spec), rng, std::string(spec) + " scale graph");
    for (ActivationKind first : kinds) {
      auto ag = ActivationFirstGraph(rng, first, ActivationKind::kReLU);
      CompareFastAndGeneral(ag, Uniform(ag, spec), rng,
                            std::string(spec) + " input into " + model::ActivationName(first));
    }
  }
  // Layers changing family: fixed -> float16 -> fixed -> float32, with a narrow accumulator.
  auto g = RandomMlp(rng, 4, 6, 3, ActivationKind::kReLU, ActivationKind::kSoftmax);
  PrecisionConfig cfg = Uniform(g, "fixed<16,6,RND,SAT>");
  LayerPrecision f16{kFloat16, kFloat16, kFloat16, kFloat16, 256};
  LayerPrecision f32{kFloat32, kFloat32, kFloat32, kFloat32, 256};
  cfg.layers["fc1"] = f16;
  cfg.layers["fc2"] = f32;
  CompareFastAndGeneral(g, cfg, rng, "families");
  cfg.layers["a2"] = f32;
  CompareFastAndGeneral(g, cfg, rng, "families float softmax");
  cfg = Uniform(g, "fixed<16,6>");
  cfg.layers["fc1"].accum = FixedFormat{18, 6, true, Quantization::kRnd, Overflow::kSat};
  CompareFastAndGeneral(g, cfg, rng, "narrow accumulator");
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
  // Every fast kernel (Dense/Scale MACs, Linear/ReLU/LeakyReLU with and without a conversion,
  // sigmoid/tanh tables, table and argmax softmax, host float32, the input and output
  // conversions) against the general datapath, in every rounding and overflow mode.
  ExpectFastPathsEqualGeneral();
}

// The fast input conversion against FixedFromDouble on more than a million values: uniform
// values in and beyond the range, exact ties and their neighbours, values near 2^52 lsbs, and
// random bit patterns (NaN, Inf, subnormals, huge values), in every mode.
TEST(EmulatorTest, FixedFromDoubleConverterEqualsFixedFromDouble) {
  const unsigned seed = 2024;
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  const char* specs[] = {"fixed<16,6>", "fixed<16,6,RND,SAT>", "fixed<12,4,RND_CONV,WRAP>",
                         "fixed<12,4,RND_CONV,SAT>", "fixed<10,3,RND,WRAP>", "ufixed<8,0,RND,SAT>",
                         "ufixed<10,3,RND_CONV,WRAP>", "ufixed<16,6>", "fixed<64,10,RND_CONV,SAT>",
                         "fixed<53,0,RND,WRAP>", "fixed<60,58,RND_CONV,WRAP>", "fixed<8,12,RND,SAT>",
                         "fixed<6,-3,RND_CONV,SAT>", "fixed<24,-990,RND,WRAP>", "fixed<4,1000,RND_CONV,SAT>",
                         "fixed<40,-990,RND,SAT>", "fixed<1,1,RND,WRAP>", "fixed<64,10,RND,WRAP>",
                         "fixed<60,4,RND,SAT>", "fixed<8,900,TRN,WRAP>", "fixed<16,20,TRN,SAT>"};
  std::int64_t checked = 0;
  for (const char* spec : specs) {
    const FixedFormat f = *ParseFixedFormat(spec);
    const FixedFromDoubleConverter convert(f);
    const double lsb = f.lsb();
    const double span = std::max(std::fabs(f.min_value()), f.max_value());
    std::uniform_real_distribution<double> wide(-1.5 * span, 1.5 * span);
    std::uniform_int_distribution<std::int64_t> k(std::max<std::int64_t>(f.min_raw(), -(1LL << 60)) - 64,
                                                  std::min<std::int64_t>(f.max_raw(), 1LL << 60) + 64);
    std::uniform_int_distribution<std::int64_t> big(-(1LL << 53), 1LL << 53);
    std::uniform_int_distribution<int> pick(0, 6);
    std::uniform_real_distribution<double> mantissa(0.5, 1.0);
    std::uniform_int_distribution<int> tiny_exp(-1074, -900);
    int mismatches = 0;
    for (int n = 0; n < 70000; ++n) {
      double x = 0;
      switch (pick(rng)) {
        case 0: x = wide(rng); break;
        case 1: x = (static_cast<double>(k(rng)) + 0.5) * lsb; break;  // a tie (when exact)
        case 2: x = std::nextafter((static_cast<double>(k(rng)) + 0.5) * lsb, wide(rng)); break;
        case 3: x = static_cast<double>(k(rng)) * lsb; break;
        case 4: x = (static_cast<double>(big(rng)) + 0.5) * lsb; break;  // around 2^52 lsbs
        case 5: x = std::bit_cast<double>(static_cast<std::uint64_t>(rng())); break;
        case 6: x = std::ldexp(mantissa(rng), tiny_exp(rng)); break;  // subnormal and tiny values
      }
      for (double v : {x, -x}) {
        const FixedValue want = FixedFromDouble(v, f);
        const FixedValue got = convert(v);
        ++checked;
        if ((want.raw != got.raw || want.overflowed != got.overflowed) && ++mismatches <= 5) {
          ADD_FAILURE() << spec << " x=" << v << " (" << std::hexfloat << v << std::defaultfloat
                        << "): want " << want.raw << "/" << want.overflowed << ", got " << got.raw << "/"
                        << got.overflowed;
        }
      }
    }
    EXPECT_EQ(mismatches, 0) << spec;
  }
  EXPECT_GE(checked, 1000000);
}

// The resolved table indexers against TableIndex and SoftmaxExpIndex, over the whole int64 range
// and the values near the tables, for shifts that clamp on both sides.
TEST(EmulatorTest, TableIndexersEqualTheTableFunctions) {
  std::mt19937_64 rng(31);
  std::uniform_int_distribution<std::int64_t> any(std::numeric_limits<std::int64_t>::min(),
                                                  std::numeric_limits<std::int64_t>::max());
  std::uniform_int_distribution<std::int64_t> near(-300000, 300000);
  std::uniform_int_distribution<int> bits(0, 63);
  for (const char* spec : {"fixed<16,6>", "fixed<8,8>", "fixed<64,4>", "fixed<20,-30>", "fixed<8,60>",
                           "ufixed<12,1>", "fixed<4,200>", "fixed<64,-100>"}) {
    const FixedFormat f = *ParseFixedFormat(spec);
    for (int size : {16, 1024, 65536}) {
      for (TableFunction fn : {TableFunction::kSigmoid, TableFunction::kTanh}) {
        const TableIndexer ix = MakeTableIndexer(f, size, TableRange(fn));
        for (int n = 0; n < 20000; ++n) {
          std::int64_t x = n % 3 == 0 ? any(rng) : (n % 3 == 1 ? near(rng) : any(rng) >> bits(rng));
          ASSERT_EQ(ix.Index(x), TableIndex(x, f, size, TableRange(fn))) << spec << " size " << size << " x " << x;
        }
      }
      const TableIndexer ex = MakeSoftmaxExpIndexer(f.fraction_bits(), size);
      for (int n = 0; n < 20000; ++n) {
        std::int64_t d = n % 3 == 0 ? any(rng) : (n % 3 == 1 ? near(rng) : any(rng) >> bits(rng));
        ASSERT_EQ(ex.Index(d), SoftmaxExpIndex(d, f.fraction_bits(), size)) << spec << " size " << size << " d " << d;
      }
    }
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
