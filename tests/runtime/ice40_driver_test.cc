// The ice40 driver against a fake openFPGALoader on PATH and a fake icebreaker on a
// pseudo-terminal: the board thread decodes request frames with the uart codec and answers with
// the emulator's results, so the driver's outputs must equal the emu driver's bit for bit.
#include "runtime/ice40_driver.h"

#include <fcntl.h>
#include <poll.h>
#include <termios.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "core/file_io.h"
#include "core/sha256.h"
#include "firmware/bundle.h"
#include "importers/import.h"
#include "model/passes.h"
#include "numeric/precision.h"
#include "runtime/adder_bundle.h"
#include "runtime/emu_driver.h"
#include "runtime/uart_frames.h"
#include "toolchain/fake_tools.h"

namespace fpgaserve::runtime {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr int kIn = 4;
constexpr int kOut = 3;

// A hand-built icebreaker bundle: model, precision and a stand-in bitstream (no yosys/nextpnr).
Result<firmware::BundleMetadata> WriteIce40Bundle(const std::string& dir, const std::string& board,
                                                  const std::string& bitstream_status) {
  RETURN_IF_ERROR(testing::WriteAdderModel(dir, kIn, kOut));
  std::string bits;
  std::mt19937 rng(3);
  for (int i = 0; i < 4096; ++i) bits.push_back(static_cast<char>(rng() & 0xff));
  RETURN_IF_ERROR(WriteFileAtomic(dir + "/fpgaserve.bin", bits));
  firmware::BundleMetadata m = testing::AdderMetadata("ice40 adder bundle " + board, board, kIn, kOut);
  if (bitstream_status == "built") {
    m.bitstream = {"built", "fpgaserve.bin", "icepack"};
  } else {
    m.bitstream = {bitstream_status, "", "yosys; nextpnr-ice40; icepack"};
  }
  m.clock_mhz = 12;
  ASSIGN_OR_RETURN(m.files, firmware::ListBundleFiles(dir));
  RETURN_IF_ERROR(
      WriteFileAtomic(dir + "/" + firmware::kMetadataFile, firmware::MetadataToJson(m)));
  return firmware::ReadBundleMetadata(dir);  // parsed back: formats and derived fields set
}

// The icebreaker's side of the UART link on a pty master.
class FakeBoard {
 public:
  enum class Mode { kNormal, kOtherShape, kSilent, kCorruptInfer, kErrorFrame };

  FakeBoard(Mode mode, const firmware::BundleMetadata& m, BoardDriver* emu)
      : mode_(mode), m_(m), emu_(emu) {
    master_ = posix_openpt(O_RDWR | O_NOCTTY);
    EXPECT_GE(master_, 0);
    EXPECT_EQ(grantpt(master_), 0);
    EXPECT_EQ(unlockpt(master_), 0);
    slave_path_ = ptsname(master_);
    termios t{};
    EXPECT_EQ(tcgetattr(master_, &t), 0);
    cfmakeraw(&t);
    EXPECT_EQ(tcsetattr(master_, TCSANOW, &t), 0);
    fcntl(master_, F_SETFL, fcntl(master_, F_GETFL) | O_NONBLOCK);
    thread_ = std::thread([this] { Run(); });
  }
  ~FakeBoard() {
    stop_ = true;
    thread_.join();
    close(master_);
  }

  const std::string& path() const { return slave_path_; }
  int infer_requests() const { return infer_requests_; }
  int info_requests() const { return info_requests_; }

 private:
  void Send(const uart::Bytes& b) {
    std::size_t done = 0;
    while (done < b.size() && !stop_) {
      const ssize_t n = write(master_, b.data() + done, b.size() - done);
      if (n > 0) {
        done += static_cast<std::size_t>(n);
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    }
  }

  void Run() {
    const int in_width = m_.input_format.width();
    const std::size_t infer_size = uart::InferRequestSize(kIn, in_width);
    uart::Bytes buf;
    std::uint64_t row = 0;
    while (!stop_) {
      pollfd p{master_, POLLIN, 0};
      if (poll(&p, 1, 20) <= 0 || (p.revents & POLLIN) == 0) {
        if (p.revents & POLLHUP) std::this_thread::sleep_for(std::chrono::milliseconds(5));
        continue;
      }
      std::uint8_t tmp[256];
      const ssize_t n = read(master_, tmp, sizeof tmp);
      if (n <= 0) continue;
      buf.insert(buf.end(), tmp, tmp + n);
      while (true) {
        while (!buf.empty() && buf[0] != uart::kRequestSync) buf.erase(buf.begin());
        if (buf.size() < 2) break;
        const std::size_t size = buf[1] == uart::kInfo ? 3 : infer_size;
        if (buf.size() < size) break;
        uart::Bytes frame(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(size));
        buf.erase(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(size));
        Answer(frame, in_width, row);
      }
    }
  }

  void Answer(const uart::Bytes& f, int in_width, std::uint64_t& row) {
    std::uint8_t x = 0;
    for (std::size_t i = 0; i + 1 < f.size(); ++i) x ^= f[i];
    if (x != f.back()) return Send(uart::EncodeErrorResponse(uart::kErrorChecksum));
    if (mode_ == Mode::kSilent) return;
    if (f[1] == uart::kInfo) {
      ++info_requests_;
      uart::LinkInfo info;
      info.n_in = kIn;
      info.n_out = mode_ == Mode::kOtherShape ? kOut + 2 : kOut;
      info.in_width = in_width;
      info.out_width = m_.output_format.width();
      info.design_id = static_cast<std::uint32_t>(std::stoul(m_.id.substr(0, 8), nullptr, 16));
      info.latency_cycles = m_.latency_cycles;
      info.initiation_interval = m_.initiation_interval;
      return Send(uart::EncodeInfoResponse(info));
    }
    ++infer_requests_;
    if (mode_ == Mode::kErrorFrame) return Send(uart::EncodeErrorResponse(uart::kErrorChecksum));
    // Decode the elements (little endian, sign-extended from in_width).
    const int eb = uart::ElementBytes(in_width);
    numeric::RawBatch in{1, static_cast<std::size_t>(kIn), {}};
    for (int i = 0; i < kIn; ++i) {
      std::uint64_t v = 0;
      for (int k = 0; k < eb; ++k) v |= static_cast<std::uint64_t>(f[2 + i * eb + k]) << (8 * k);
      if (in_width < 64 && m_.input_format.raw_is_signed() && (v >> (in_width - 1)) & 1) {
        v |= ~((std::uint64_t{1} << in_width) - 1);
      }
      in.values.push_back(static_cast<std::int64_t>(v));
    }
    auto out = emu_->Infer(in);
    if (!out.ok()) return Send(uart::EncodeErrorResponse(uart::kErrorCommand));
    uart::Bytes resp = uart::EncodeInferResponse(out->outputs.values, m_.output_format.width(),
                                                 m_.latency_cycles + (row++ % 5));
    if (mode_ == Mode::kCorruptInfer) resp.back() ^= 0x40;
    Send(resp);
  }

  Mode mode_;
  firmware::BundleMetadata m_;
  BoardDriver* emu_;
  int master_ = -1;
  std::string slave_path_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<int> infer_requests_{0};
  std::atomic<int> info_requests_{0};
};

class Ice40DriverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("fpgaserve_ice40_test_" + std::to_string(getpid()) + "_" +
            std::to_string(std::random_device{}()));
    bin_ = dir_ / "bin";
    fs::create_directories(bin_);
    bundle_ = (dir_ / "bundle").string();
    auto m = WriteIce40Bundle(bundle_, "icebreaker", "built");
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    m_ = *m;
    auto emu = OpenEmuDriver(bundle_, m_);
    ASSERT_TRUE(emu.ok()) << emu.status().ToString();
    emu_ = std::move(*emu);
    log_ = (dir_ / "loader.log").string();
    // The fake openFPGALoader: checks the board option and the bitstream, records its argv.
    fpgaserve::testing::WriteScript(bin_ / "openFPGALoader",
                                    "[ \"$1\" = -b ] && [ \"$2\" = ice40_generic ] || "
                                    "{ echo \"bad args: $*\" >&2; exit 2; }\n"
                                    "[ -s \"$3\" ] || { echo \"no bitstream $3\" >&2; exit 3; }\n"
                                    "echo \"$*\" >> '" + log_ + "'\n"
                                    "echo 'Jtag frequency : requested 6.00MHz'\n"
                                    "echo 'Done'\n");
  }
  void TearDown() override { fs::remove_all(dir_); }

  Ice40Options Options(const std::string& device) const {
    Ice40Options o;
    o.serial_device = device;
    o.frame_timeout = std::chrono::milliseconds(1000);
    o.settle_time = std::chrono::milliseconds(0);
    return o;
  }

  std::string LoaderLog() const {
    std::ifstream in(log_);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

  static numeric::RawBatch RandomInputs(std::size_t rows, unsigned seed) {
    std::mt19937 rng(seed);
    std::uniform_int_distribution<std::int64_t> dist(-32768, 32767);
    numeric::RawBatch b{rows, static_cast<std::size_t>(kIn), {}};
    for (std::size_t i = 0; i < rows * kIn; ++i) b.values.push_back(dist(rng));
    return b;
  }

  fs::path dir_, bin_;
  std::string bundle_, log_;
  firmware::BundleMetadata m_;
  std::unique_ptr<BoardDriver> emu_;
};

TEST_F(Ice40DriverTest, ProgramsThenMatchesEmuBitForBit) {
  fpgaserve::testing::PathGuard path(bin_.string(), true);
  FakeBoard board(FakeBoard::Mode::kNormal, m_, emu_.get());
  auto d = OpenIce40Driver(bundle_, m_, Options(board.path()));
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ((*d)->kind(), "ice40");
  EXPECT_EQ(LoaderLog(), "-b ice40_generic " + bundle_ + "/fpgaserve.bin\n");
  EXPECT_EQ(board.info_requests(), 1);
  for (unsigned seed : {11u, 12u}) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    const numeric::RawBatch in = RandomInputs(300, seed);
    auto got = (*d)->Infer(in);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    auto want = emu_->Infer(in);
    ASSERT_TRUE(want.ok()) << want.status().ToString();
    EXPECT_EQ(got->outputs.rows, 300u);
    EXPECT_EQ(got->outputs.features, static_cast<std::size_t>(kOut));
    EXPECT_EQ(got->outputs.values, want->outputs.values);
    ASSERT_EQ(got->latency_cycles.size(), 300u);
    std::uint64_t total = 0;
    for (auto c : got->latency_cycles) {
      EXPECT_GE(c, 2u);
      EXPECT_LE(c, 6u);
      total += c;
    }
    EXPECT_EQ(got->total_cycles, total);
  }
  EXPECT_EQ(board.infer_requests(), 600);
  // Batches the bundle cannot take never reach the board.
  auto bad = (*d)->Infer(numeric::RawBatch{1, 2, {1, 2}});
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(board.infer_requests(), 600);
}

TEST_F(Ice40DriverTest, SerialFromEnvironmentWithoutProgramming) {
  FakeBoard board(FakeBoard::Mode::kNormal, m_, emu_.get());
  const char* old = std::getenv(kIce40SerialEnv);
  const std::string saved = old ? old : "";
  setenv(kIce40SerialEnv, board.path().c_str(), 1);
  Ice40Options o = Options("");
  o.program = false;
  o.loader = (dir_ / "no-such-loader").string();  // never run
  auto d = OpenIce40Driver(bundle_, m_, o);
  if (old) setenv(kIce40SerialEnv, saved.c_str(), 1); else unsetenv(kIce40SerialEnv);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  const numeric::RawBatch in = RandomInputs(50, 21);
  auto got = (*d)->Infer(in);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->outputs.values, emu_->Infer(in)->outputs.values);
  EXPECT_EQ(LoaderLog(), "");
}

TEST_F(Ice40DriverTest, LoaderMissingNamesThePackage) {
  fs::path empty = dir_ / "empty";
  fs::create_directories(empty);
  fpgaserve::testing::PathGuard path(empty.string(), false);
  FakeBoard board(FakeBoard::Mode::kNormal, m_, emu_.get());
  auto d = OpenIce40Driver(bundle_, m_, Options(board.path()));
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kFailedPrecondition) << d.status().ToString();
  EXPECT_NE(d.status().message().find("openFPGALoader"), std::string::npos);
  EXPECT_NE(d.status().message().find("openfpgaloader"), std::string::npos);
  EXPECT_EQ(board.info_requests(), 0);
}

TEST_F(Ice40DriverTest, LoaderFailureIsInternalWithItsOutput) {
  fpgaserve::testing::WriteScript(bin_ / "openFPGALoader",
                                  "echo 'Jtag probe'\necho 'unable to open ftdi device: -3 "
                                  "(device not found)' >&2\nexit 1\n");
  fpgaserve::testing::PathGuard path(bin_.string(), true);
  FakeBoard board(FakeBoard::Mode::kNormal, m_, emu_.get());
  auto d = OpenIce40Driver(bundle_, m_, Options(board.path()));
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kInternal) << d.status().ToString();
  EXPECT_NE(d.status().message().find("device not found"), std::string::npos)
      << d.status().message();
  EXPECT_NE(d.status().message().find("exit 1"), std::string::npos) << d.status().message();
  EXPECT_EQ(board.info_requests(), 0);
}

TEST_F(Ice40DriverTest, SerialDeviceMissingIsUnavailable) {
  fpgaserve::testing::PathGuard path(bin_.string(), true);
  const std::string dev = (dir_ / "ttyUSB9").string();
  auto d = OpenIce40Driver(bundle_, m_, Options(dev));
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kUnavailable) << d.status().ToString();
  EXPECT_NE(d.status().message().find(dev), std::string::npos);
  EXPECT_EQ(LoaderLog(), "");  // checked before programming
}

TEST_F(Ice40DriverTest, OtherFirmwareOnTheBoard) {
  fpgaserve::testing::PathGuard path(bin_.string(), true);
  FakeBoard board(FakeBoard::Mode::kOtherShape, m_, emu_.get());
  auto d = OpenIce40Driver(bundle_, m_, Options(board.path()));
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kFailedPrecondition) << d.status().ToString();
  EXPECT_NE(d.status().message().find("other firmware"), std::string::npos);
  EXPECT_NE(d.status().message().find("n_out 5"), std::string::npos) << d.status().message();
}

TEST_F(Ice40DriverTest, SilentBoardTimesOutFast) {
  fpgaserve::testing::PathGuard path(bin_.string(), true);
  FakeBoard board(FakeBoard::Mode::kSilent, m_, emu_.get());
  Ice40Options o = Options(board.path());
  o.frame_timeout = std::chrono::milliseconds(300);
  const auto t0 = Clock::now();
  auto d = OpenIce40Driver(bundle_, m_, o);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kDeadlineExceeded) << d.status().ToString();
  EXPECT_NE(d.status().message().find(board.path()), std::string::npos);
  EXPECT_GE(ms, 500);   // two INFO attempts of 300 ms
  EXPECT_LT(ms, 3000);
}

TEST_F(Ice40DriverTest, CorruptChecksumFromTheBoardIsInternal) {
  fpgaserve::testing::PathGuard path(bin_.string(), true);
  FakeBoard board(FakeBoard::Mode::kCorruptInfer, m_, emu_.get());
  auto d = OpenIce40Driver(bundle_, m_, Options(board.path()));
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  auto got = (*d)->Infer(RandomInputs(3, 5));
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), StatusCode::kInternal) << got.status().ToString();
  EXPECT_NE(got.status().message().find("checksum"), std::string::npos);
  EXPECT_EQ(board.infer_requests(), 1);  // stops at the first bad frame
}

TEST_F(Ice40DriverTest, ErrorFrameFromTheBoardIsInternal) {
  fpgaserve::testing::PathGuard path(bin_.string(), true);
  FakeBoard board(FakeBoard::Mode::kErrorFrame, m_, emu_.get());
  auto d = OpenIce40Driver(bundle_, m_, Options(board.path()));
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  auto got = (*d)->Infer(RandomInputs(2, 6));
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), StatusCode::kInternal) << got.status().ToString();
  EXPECT_NE(got.status().message().find("bad checksum"), std::string::npos)
      << got.status().message();
}

TEST_F(Ice40DriverTest, TamperedBitstreamFailsBeforeProgramming) {
  fpgaserve::testing::PathGuard path(bin_.string(), true);
  {
    std::ofstream f(bundle_ + "/fpgaserve.bin", std::ios::binary | std::ios::app);
    f << "x";
  }
  FakeBoard board(FakeBoard::Mode::kNormal, m_, emu_.get());
  auto d = OpenIce40Driver(bundle_, m_, Options(board.path()));
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("fpgaserve.bin"), std::string::npos)
      << d.status().ToString();
  EXPECT_EQ(LoaderLog(), "");
  EXPECT_EQ(board.info_requests(), 0);
}

TEST_F(Ice40DriverTest, RejectsBundlesForOtherBoardsOrWithoutBitstream) {
  auto sim = WriteIce40Bundle((dir_ / "sim").string(), "sim", "built");
  ASSERT_TRUE(sim.ok()) << sim.status().ToString();
  auto d = OpenIce40Driver((dir_ / "sim").string(), *sim, Options("/dev/null"));
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kFailedPrecondition) << d.status().ToString();
  EXPECT_NE(d.status().message().find("icebreaker"), std::string::npos);

  auto nobit = WriteIce40Bundle((dir_ / "nobit").string(), "icebreaker", "needs-vendor-tools");
  ASSERT_TRUE(nobit.ok()) << nobit.status().ToString();
  d = OpenIce40Driver((dir_ / "nobit").string(), *nobit, Options("/dev/null"));
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kFailedPrecondition) << d.status().ToString();
  EXPECT_NE(d.status().message().find("bitstream"), std::string::npos);
}

}  // namespace
}  // namespace fpgaserve::runtime
