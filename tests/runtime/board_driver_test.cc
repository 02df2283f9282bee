// The emu and sim drivers on a hand-built bundle (the adder core and its equivalent Dense model):
// bit-identical outputs, cycle accounting, validation of inputs and bundles, and several
// simulated boards in one process.
#include "runtime/board_driver.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "runtime/adder_bundle.h"

namespace fpgaserve::runtime {
namespace {

namespace fs = std::filesystem;
using testing::WriteAdderBundle;

class BoardDriverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("fpgaserve_driver_test_" + std::to_string(std::random_device{}()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Bundle(const std::string& name, int n_in, int n_out) {
    std::string d = (dir_ / name).string();
    auto m = WriteAdderBundle(d, n_in, n_out);
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    return d;
  }

  static numeric::RawBatch RandomInputs(std::size_t rows, std::size_t features, unsigned seed) {
    std::mt19937 rng(seed);
    std::uniform_int_distribution<std::int64_t> dist(-32768, 32767);
    numeric::RawBatch b{rows, features, {}};
    for (std::size_t i = 0; i < rows * features; ++i) b.values.push_back(dist(rng));
    return b;
  }

  fs::path dir_;
};

std::int64_t Wrap16(std::int64_t v) {
  return static_cast<std::int16_t>(static_cast<std::uint16_t>(v & 0xffff));
}

TEST_F(BoardDriverTest, EmuAndSimAgreeBitForBit) {
  const unsigned seed = 7;
  SCOPED_TRACE("seed " + std::to_string(seed));
  const std::string b = Bundle("adder", 4, 3);
  auto emu = OpenBoardDriver("emu", b);
  ASSERT_TRUE(emu.ok()) << emu.status().ToString();
  auto sim = OpenBoardDriver("sim", b);
  ASSERT_TRUE(sim.ok()) << sim.status().ToString();
  EXPECT_EQ((*emu)->kind(), "emu");
  EXPECT_EQ((*sim)->kind(), "sim");
  const numeric::RawBatch in = RandomInputs(1000, 4, seed);
  auto e = (*emu)->Infer(in);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  auto s = (*sim)->Infer(in);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  ASSERT_EQ(e->outputs.rows, 1000u);
  ASSERT_EQ(e->outputs.features, 3u);
  EXPECT_EQ(s->outputs.rows, e->outputs.rows);
  EXPECT_EQ(s->outputs.features, e->outputs.features);
  EXPECT_EQ(s->outputs.values, e->outputs.values);
  // And both equal the adder's arithmetic.
  for (std::size_t r = 0; r < 1000; ++r) {
    std::int64_t sum = 0;
    for (std::size_t i = 0; i < 4; ++i) sum += in.values[r * 4 + i];
    for (std::size_t j = 0; j < 3; ++j) {
      ASSERT_EQ(e->outputs.values[r * 3 + j], Wrap16(sum + static_cast<std::int64_t>(j)))
          << "row " << r;
    }
  }
  EXPECT_EQ(e->total_cycles, 2u + 999u);
  EXPECT_EQ(s->total_cycles, e->total_cycles);
  EXPECT_EQ(s->latency_cycles, e->latency_cycles);
  EXPECT_EQ(s->latency_cycles, std::vector<std::uint64_t>(1000, 2));

  auto empty_e = (*emu)->Infer(numeric::RawBatch{0, 4, {}});
  auto empty_s = (*sim)->Infer(numeric::RawBatch{0, 4, {}});
  ASSERT_TRUE(empty_e.ok() && empty_s.ok());
  EXPECT_EQ(empty_e->total_cycles, 0u);
  EXPECT_EQ(empty_s->total_cycles, 0u);
  EXPECT_TRUE(empty_s->outputs.values.empty());
}

TEST_F(BoardDriverTest, SeveralSimulatedBoardsInOneProcess) {
  const std::string a = Bundle("a", 3, 1);
  const std::string b = Bundle("b", 5, 2);
  auto sa = OpenBoardDriver("sim", a);
  auto sb = OpenBoardDriver("sim", b);
  auto sa2 = OpenBoardDriver("sim", a);  // the same library twice: independent cores
  ASSERT_TRUE(sa.ok() && sb.ok() && sa2.ok());
  auto ra = (*sa)->Infer(RandomInputs(50, 3, 1));
  auto rb = (*sb)->Infer(RandomInputs(50, 5, 2));
  auto ra2 = (*sa2)->Infer(RandomInputs(50, 3, 1));
  ASSERT_TRUE(ra.ok() && rb.ok() && ra2.ok());
  EXPECT_EQ(ra->outputs.values, ra2->outputs.values);
  EXPECT_EQ(rb->outputs.features, 2u);
  sa->reset();
  auto again = (*sa2)->Infer(RandomInputs(50, 3, 1));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->outputs.values, ra->outputs.values);
}

TEST_F(BoardDriverTest, RejectsBadInputBatches) {
  const std::string b = Bundle("adder", 2, 1);
  for (const char* kind : {"emu", "sim"}) {
    SCOPED_TRACE(kind);
    auto d = OpenBoardDriver(kind, b);
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    auto wrong_width = (*d)->Infer(numeric::RawBatch{1, 3, {1, 2, 3}});
    ASSERT_FALSE(wrong_width.ok());
    EXPECT_EQ(wrong_width.status().code(), StatusCode::kInvalidArgument);
    auto out_of_range = (*d)->Infer(numeric::RawBatch{1, 2, {1, 40000}});
    ASSERT_FALSE(out_of_range.ok());
    EXPECT_NE(out_of_range.status().message().find("outside fixed<16,6>"), std::string::npos)
        << out_of_range.status().message();
  }
}

TEST_F(BoardDriverTest, RejectsUnknownKindsAndIncompleteBundles) {
  auto unknown = OpenBoardDriver("zynq7", dir_.string());
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("unknown driver 'zynq7'"), std::string::npos);
  auto missing = OpenBoardDriver("emu", (dir_ / "nope").string());
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  auto not_bundle = OpenBoardDriver("emu", dir_.string());
  ASSERT_FALSE(not_bundle.ok());
  EXPECT_NE(not_bundle.status().message().find("not a firmware bundle"), std::string::npos);

  const std::string b = Bundle("adder", 2, 1);
  fs::remove(fs::path(b) / "sim" / "libfpgaserve_sim.so");
  auto no_lib = OpenBoardDriver("sim", b);
  ASSERT_FALSE(no_lib.ok());
  EXPECT_NE(no_lib.status().message().find("incomplete bundle"), std::string::npos)
      << no_lib.status().message();
  std::ofstream(fs::path(b) / "model.json", std::ios::app) << " ";
  auto tampered = OpenBoardDriver("emu", b);
  ASSERT_FALSE(tampered.ok());
  EXPECT_NE(tampered.status().message().find("the bundle was modified"), std::string::npos)
      << tampered.status().message();
}

}  // namespace
}  // namespace fpgaserve::runtime
