// The xrt driver without an Alveo card. Three parts:
//  - bundle and option checks of OpenXrtDriver, which run before XRT is touched (both builds);
//  - the XRT part on hand-made xclbins (XRT's own parser reads them): damaged files, a missing
//    kernel, a register window XRT would refuse, and a card-less open (UNAVAILABLE);
//  - the AXI4-Lite register protocol against FakeAxiLite, a model of fpgaserve_axilite's
//    register map (docs/hardware.md) that computes each inference with the emulator, so the
//    driver's outputs must equal the emu driver's bit for bit, and that records every protocol
//    violation (inputs written or outputs read while busy, a start while busy, accesses outside
//    the register window).
#include "runtime/xrt_driver.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <tuple>

#include "core/file_io.h"
#include "firmware/bundle.h"
#include "hw/wrappers.h"
#include "importers/import.h"
#include "model/passes.h"
#include "numeric/number_format.h"
#include "numeric/precision.h"
#include "runtime/adder_bundle.h"
#include "runtime/emu_driver.h"

namespace fpgaserve::runtime {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr int kIn = 4;
constexpr int kOut = 3;
constexpr const char* kXclbin = "fpgaserve.xclbin";
constexpr const char* kVitisCommand =
    "vivado -mode batch -nojournal -nolog -source vitis/package_kernel.tcl && v++ --link "
    "--target hw --platform xilinx_u50_gen3x16_xdma_5_202210_1 -o fpgaserve.xclbin "
    "vitis/fpgaserve.xo";

bool Contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// Sets (or unsets, value nullopt) an environment variable for one scope.
class EnvGuard {
 public:
  EnvGuard(const char* name, std::optional<std::string> value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) {
      setenv(name, value->c_str(), 1);
    } else {
      unsetenv(name);
    }
  }
  ~EnvGuard() {
    if (old_) {
      setenv(name_, old_->c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

// --- Hand-made xclbins -------------------------------------------------------------------------
// The axlf container as XRT's xclbin.h lays it out (little endian): a 496-byte top with one
// 40-byte section header, further section headers after it, then the section bodies.

void Put(std::string& b, std::size_t at, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) b[at + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

struct XclbinSpec {
  std::vector<std::string> ips = {"fpgaserve:fpgaserve_1"};
  std::uint64_t range = 0x1000;  // the kernel port's range in the XML metadata
  bool with_arg = true;          // XRT 2.13 sets an IP's window only for kernels with arguments
  int uuid_seed = 1;
};

std::string KernelXml(const XclbinSpec& s) {
  const std::string kernel = s.ips.empty() ? "fpgaserve" : s.ips[0].substr(0, s.ips[0].find(':'));
  char range[32];
  std::snprintf(range, sizeof range, "0x%llx", static_cast<unsigned long long>(s.range));
  std::string x =
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<project name=\"fpgaserve\"><platform>"
      "<device name=\"fpga0\"><core name=\"OCL_REGION_0\" target=\"bitstream\">"
      "<kernel name=\"" +
      kernel + "\" language=\"ip_c\" vlnv=\"fpgaserve.org:kernel:" + kernel +
      ":1.0\" preferredWorkGroupSizeMultiple=\"0\" workGroupSize=\"1\" interrupt=\"false\" "
      "hwControlProtocol=\"user_managed\">"
      "<port name=\"s_axi\" mode=\"slave\" range=\"" +
      std::string(range) + "\" dataWidth=\"32\" portType=\"addressable\" base=\"0x0\"/>";
  if (s.with_arg) {
    x += "<arg name=\"control\" addressQualifier=\"0\" id=\"0\" port=\"s_axi\" size=\"0x4\" "
         "offset=\"0x0\" hostOffset=\"0x0\" hostSize=\"0x4\" type=\"uint\"/>";
  }
  for (std::size_t i = 0; i < s.ips.size(); ++i) {
    x += "<instance name=\"" + s.ips[i].substr(s.ips[i].find(':') + 1) + "\"><addrRemap base=\"" +
         std::to_string(0x1800000 + 0x10000 * i) + "\" range=\"" + range +
         "\" port=\"s_axi\"/></instance>";
  }
  return x + "</kernel></core></device></platform></project>\n";
}

std::string MakeXclbin(const XclbinSpec& s) {
  constexpr std::size_t kTop = 456, kSection = 40;  // offsetof(axlf, m_sections), its size
  std::string ip_layout(8 + 80 * s.ips.size(), '\0');
  Put(ip_layout, 0, s.ips.size(), 4);
  for (std::size_t i = 0; i < s.ips.size(); ++i) {
    const std::size_t at = 8 + 80 * i;
    Put(ip_layout, at, 1, 4);                            // IP_KERNEL
    Put(ip_layout, at + 4, 2u << 8, 4);                  // AP_CTRL_NONE: user managed
    Put(ip_layout, at + 8, 0x1800000 + 0x10000 * i, 8);  // base address
    std::memcpy(&ip_layout[at + 16], s.ips[i].data(), std::min<std::size_t>(63, s.ips[i].size()));
  }
  const std::string xml = KernelXml(s);
  std::string b(kTop + 2 * kSection, '\0');
  std::memcpy(&b[0], "xclbin2", 8);
  Put(b, 8, 0xffffffffu, 4);      // no signature
  std::memset(&b[12], 0xff, 28);  // reserved
  Put(b, 304 + 26, 2, 1);         // version 2.x
  Put(b, 448, 2, 4);              // two sections
  for (int i = 0; i < 16; ++i) b[416 + i] = static_cast<char>(s.uuid_seed * 16 + i);  // uuid
  const auto section = [&](int index, std::uint32_t kind, const std::string& name,
                           const std::string& body) {
    const std::size_t h = kTop + kSection * index;
    Put(b, h, kind, 4);
    std::memcpy(&b[h + 4], name.data(), std::min<std::size_t>(15, name.size()));
    Put(b, h + 24, b.size(), 8);
    Put(b, h + 32, body.size(), 8);
    b += body;
  };
  section(0, 8, "ip_layout", ip_layout);    // IP_LAYOUT
  section(1, 2, "embedded_metadata", xml);  // EMBEDDED_METADATA
  Put(b, 304, b.size(), 8);                 // m_header.m_length
  return b;
}

// --- Bundles --------------------------------------------------------------------------------

struct BundleSpec {
  std::string board = "alveo-u50";
  std::string status = "built";
  std::string interface = "axilite";
  std::string precision = "fixed<16,6>";
  int n_in = kIn;
  int n_out = kOut;
  std::string xclbin = MakeXclbin({});
};

// The adder model under `precision` (every variable in that format): model.json, precision.json.
Status WriteModel(const std::string& dir, int n_in, int n_out, const std::string& precision) {
  model::Graph g = testing::AdderGraph(n_in, n_out);
  RETURN_IF_ERROR(model::Finalize(g));
  ASSIGN_OR_RETURN(numeric::PrecisionConfig p,
                   numeric::ResolvePrecision(g, {precision, ""}, nullptr));
  fs::create_directories(dir);
  RETURN_IF_ERROR(WriteFileAtomic(dir + "/" + firmware::kModelFile, importers::ExportNative(g)));
  return WriteFileAtomic(dir + "/" + firmware::kPrecisionFile, firmware::PrecisionConfigJson(p));
}

// A hand-built Alveo bundle: the model, its precision and a stand-in .xclbin (no Vitis here).
Result<firmware::BundleMetadata> WriteXrtBundle(const std::string& dir, const BundleSpec& s) {
  RETURN_IF_ERROR(WriteModel(dir, s.n_in, s.n_out, s.precision));
  firmware::BundleMetadata m =
      testing::AdderMetadata("xrt adder bundle " + dir, s.board, s.n_in, s.n_out);
  m.precision = s.precision;
  m.inputs[0].format = s.precision;
  m.outputs[0].format = s.precision;
  m.interface = s.interface;
  m.flavor = firmware::FlavorOf(s.interface);
  m.clock_mhz = 300;
  if (s.status == "built") {
    RETURN_IF_ERROR(WriteFileAtomic(dir + "/" + kXclbin, s.xclbin));
    m.bitstream = {"built", kXclbin, kVitisCommand};
  } else {
    m.bitstream = {s.status, "", kVitisCommand};
  }
  ASSIGN_OR_RETURN(m.files, firmware::ListBundleFiles(dir));
  RETURN_IF_ERROR(
      WriteFileAtomic(dir + "/" + firmware::kMetadataFile, firmware::MetadataToJson(m)));
  return firmware::ReadBundleMetadata(dir);  // parsed back: formats and derived fields set
}

class XrtDriverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("fpgaserve_xrt_test_" + std::to_string(getpid()) + "_" +
                                        std::to_string(std::random_device{}()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Writes bundle `name` under the test directory.
  std::pair<std::string, firmware::BundleMetadata> Bundle(const std::string& name,
                                                          const BundleSpec& s = {}) {
    const std::string dir = (dir_ / name).string();
    auto m = WriteXrtBundle(dir, s);
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    return {dir, m.ok() ? *m : firmware::BundleMetadata{}};
  }

  // What an open that got past the bundle and option checks gives without XRT compiled in.
  static void ExpectNoXrt(const Result<std::unique_ptr<BoardDriver>>& d) {
    ASSERT_FALSE(d.ok());
    EXPECT_EQ(d.status().code(), StatusCode::kUnimplemented) << d.status().ToString();
    EXPECT_TRUE(Contains(d.status().message(), "libxrt-dev")) << d.status().message();
    EXPECT_TRUE(Contains(d.status().message(), "rebuild")) << d.status().message();
  }

  fs::path dir_;
};

// --- Bundle and option checks (any build) --------------------------------------------------

TEST_F(XrtDriverTest, RejectsBundlesForOtherBoards) {
  for (const char* board : {"icebreaker", "sim", "pynq-z2"}) {
    SCOPED_TRACE(board);
    BundleSpec s;
    s.board = board;
    auto [dir, m] = Bundle(std::string("board_") + board, s);
    auto d = OpenXrtDriver(dir, m);
    ASSERT_FALSE(d.ok());
    EXPECT_EQ(d.status().code(), StatusCode::kFailedPrecondition) << d.status().ToString();
    EXPECT_TRUE(Contains(d.status().message(), board)) << d.status().message();
    EXPECT_TRUE(Contains(d.status().message(), "alveo-u50")) << d.status().message();
  }
  auto [dir, m] = Bundle("unknown_board");
  m.board = "no-such-card";
  auto d = OpenXrtDriver(dir, m);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kFailedPrecondition) << d.status().ToString();
  EXPECT_TRUE(Contains(d.status().message(), "not in the board catalog")) << d.status().message();
}

TEST_F(XrtDriverTest, NeedsVendorToolsQuotesTheBuildCommand) {
  BundleSpec s;
  s.status = "needs-vendor-tools";
  auto [dir, m] = Bundle("needs_tools", s);
  auto d = OpenXrtDriver(dir, m);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kFailedPrecondition) << d.status().ToString();
  EXPECT_TRUE(Contains(d.status().message(), kVitisCommand)) << d.status().message();
  EXPECT_TRUE(Contains(d.status().message(), "needs-vendor-tools")) << d.status().message();
  EXPECT_TRUE(Contains(d.status().message(), dir)) << d.status().message();
}

TEST_F(XrtDriverTest, RejectsOtherInterfacesAndBitstreams) {
  BundleSpec axis;
  axis.interface = "axis";
  auto [adir, am] = Bundle("axis", axis);
  auto d = OpenXrtDriver(adir, am);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kFailedPrecondition) << d.status().ToString();
  EXPECT_TRUE(Contains(d.status().message(), "--interface axilite")) << d.status().message();

  auto [dir, m] = Bundle("bit");
  auto bit = m;
  bit.bitstream.path = "fpgaserve.bit";
  d = OpenXrtDriver(dir, bit);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kFailedPrecondition) << d.status().ToString();
  EXPECT_TRUE(Contains(d.status().message(), "not an .xclbin")) << d.status().message();

  // Elements wider than the 32-bit registers.
  auto wide = m;
  wide.output_format = *numeric::ParseNumberFormat("fixed<40,10>");
  d = OpenXrtDriver(dir, wide);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kFailedPrecondition) << d.status().ToString();
  EXPECT_TRUE(Contains(d.status().message(), "fixed<40,10>")) << d.status().message();
}

TEST_F(XrtDriverTest, TamperedOrMissingXclbinFailsTheSha256Check) {
  auto [dir, m] = Bundle("tampered");
  {
    std::ofstream f(dir + "/" + kXclbin, std::ios::binary | std::ios::app);
    f << "x";
  }
  auto d = OpenXrtDriver(dir, m);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kInvalidArgument) << d.status().ToString();
  EXPECT_TRUE(Contains(d.status().message(), "sha256")) << d.status().message();
  EXPECT_TRUE(Contains(d.status().message(), kXclbin)) << d.status().message();

  fs::remove(dir + "/" + kXclbin);
  d = OpenXrtDriver(dir, m);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kInvalidArgument) << d.status().ToString();
  EXPECT_TRUE(Contains(d.status().message(), kXclbin)) << d.status().message();
}

TEST_F(XrtDriverTest, BadDeviceEnvironmentIsInvalidArgument) {
  auto [dir, m] = Bundle("env");
  for (const char* bad : {"abc", "-1", "1x", " 1", "0x1", "99999", "1024"}) {
    SCOPED_TRACE(bad);
    EnvGuard env(kXrtDeviceEnv, std::string(bad));
    auto d = OpenXrtDriver(dir, m);
    ASSERT_FALSE(d.ok());
    EXPECT_EQ(d.status().code(), StatusCode::kInvalidArgument) << d.status().ToString();
    EXPECT_TRUE(Contains(d.status().message(), kXrtDeviceEnv)) << d.status().message();
    EXPECT_TRUE(Contains(d.status().message(), bad)) << d.status().message();
    EXPECT_TRUE(Contains(d.status().message(), "0..1023")) << d.status().message();
  }
  // An explicit index wins over the environment, but must be in range itself.
  EnvGuard env(kXrtDeviceEnv, std::string("abc"));
  XrtOptions o;
  o.device_index = 5000;
  auto d = OpenXrtDriver(dir, m, o);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kInvalidArgument) << d.status().ToString();
  EXPECT_TRUE(Contains(d.status().message(), "5000")) << d.status().message();
}

TEST_F(XrtDriverTest, BadKernelNameOrTimeoutIsInvalidArgument) {
  auto [dir, m] = Bundle("options");
  EnvGuard env(kXrtDeviceEnv, std::nullopt);
  for (const char* bad : {"fpga serve", "fpgaserve:{a,b}", "fpgaserve:{a", "fpga}serve", ":x"}) {
    SCOPED_TRACE(bad);
    XrtOptions o;
    o.kernel = bad;
    auto d = OpenXrtDriver(dir, m, o);
    ASSERT_FALSE(d.ok());
    EXPECT_EQ(d.status().code(), StatusCode::kInvalidArgument) << d.status().ToString();
    EXPECT_TRUE(Contains(d.status().message(), "kernel")) << d.status().message();
  }
  XrtOptions o;
  o.row_timeout = std::chrono::milliseconds(0);
  auto d = OpenXrtDriver(dir, m, o);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kInvalidArgument) << d.status().ToString();
  EXPECT_TRUE(Contains(d.status().message(), "timeout")) << d.status().message();
}

// --- The XRT part, without a card ------------------------------------------------------------

TEST_F(XrtDriverTest, CountsDevicesOrSaysXrtIsMissing) {
  auto n = CountXrtDevices();
  if (!XrtDriverAvailable()) {
    ASSERT_FALSE(n.ok());
    EXPECT_EQ(n.status().code(), StatusCode::kUnimplemented);
    EXPECT_TRUE(Contains(n.status().message(), "libxrt-dev")) << n.status().message();
    return;
  }
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_LT(*n, 64u);
}

TEST_F(XrtDriverTest, NoCardIsUnavailable) {
  EnvGuard env(kXrtDeviceEnv, std::string("0"));  // a valid index from the environment
  auto [dir, m] = Bundle("no_card");
  if (XrtDriverAvailable()) {
    auto n = CountXrtDevices();
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    if (*n > 0) GTEST_SKIP() << "an Alveo card is present: not loading a fake xclbin onto it";
  }
  auto d = OpenXrtDriver(dir, m);
  if (!XrtDriverAvailable()) return ExpectNoXrt(d);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kUnavailable) << d.status().ToString();
  EXPECT_TRUE(Contains(d.status().message(), "no Alveo card")) << d.status().message();
  EXPECT_TRUE(Contains(d.status().message(), "0 devices")) << d.status().message();

  // One compute unit chosen by name among two gets just as far.
  BundleSpec two;
  two.xclbin = MakeXclbin({{"fpgaserve:fpgaserve_1", "fpgaserve:fpgaserve_2"}, 0x1000, true, 2});
  auto [tdir, tm] = Bundle("two_cus", two);
  for (const char* cu : {"fpgaserve:{fpgaserve_2}", "fpgaserve:fpgaserve_1"}) {
    SCOPED_TRACE(cu);
    XrtOptions o;
    o.kernel = cu;
    d = OpenXrtDriver(tdir, tm, o);
    ASSERT_FALSE(d.ok());
    EXPECT_EQ(d.status().code(), StatusCode::kUnavailable) << d.status().ToString();
  }
}

TEST_F(XrtDriverTest, DamagedXclbinsNeverReachXrt) {
  std::mt19937 rng(5);
  std::string random(4096, '\0');
  for (auto& c : random) c = static_cast<char>(rng() & 0xff);
  const std::string good = MakeXclbin({});
  std::string lying_sections = good;
  Put(lying_sections, 448, 100000, 4);  // 100000 section headers in a file of ~1 kB
  std::string lying_length = good;
  Put(lying_length, 304, good.size() + 1, 8);
  std::string lying_count = good;
  Put(lying_count, 456 + 40 * 2, 1000000, 4);  // IP_LAYOUT claims a million IPs
  std::string outside = good;
  Put(outside, 456 + 40 + 24, 1u << 30, 8);  // a section beyond the end of the file
  std::string unterminated = good;
  std::memset(&unterminated[456 + 80 + 8 + 16], 'a', 64);  // an IP name without its NUL
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"random bytes", random},
      {"too short", good.substr(0, 300)},
      {"too many sections", lying_sections},
      {"length past the end", lying_length},
      {"ip count", lying_count},
      {"section outside", outside},
      {"unterminated name", unterminated},
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(cases[i].first);
    BundleSpec s;
    s.xclbin = cases[i].second;
    auto [dir, m] = Bundle("damaged_" + std::to_string(i), s);
    auto d = OpenXrtDriver(dir, m);
    if (!XrtDriverAvailable()) {
      ExpectNoXrt(d);
      continue;
    }
    ASSERT_FALSE(d.ok());
    EXPECT_EQ(d.status().code(), StatusCode::kInvalidArgument) << d.status().ToString();
    EXPECT_TRUE(Contains(d.status().message(), "not a valid xclbin")) << d.status().message();
    EXPECT_TRUE(Contains(d.status().message(), kXclbin)) << d.status().message();
  }
}

TEST_F(XrtDriverTest, XclbinWithoutTheKernelOrItsRegisterWindow) {
  struct Case {
    const char* name;
    XclbinSpec xclbin;
    std::vector<std::string> want;
  };
  const std::vector<Case> cases = {
      {"other kernel", {{"vadd:vadd_1"}, 0x1000, true, 3}, {"no IP 'fpgaserve'", "vadd:vadd_1"}},
      {"two compute units",
       {{"fpgaserve:fpgaserve_1", "fpgaserve:fpgaserve_2"}, 0x1000, true, 4},
       {"2 compute units", "fpgaserve:fpgaserve_2", "kernel:{cu}"}},
      // What XRT 2.13 makes of a kernel.xml without arguments: a window of 0 bytes.
      {"no arguments",
       {{"fpgaserve:fpgaserve_1"}, 0x1000, false, 5},
       {"register window of 0x0 bytes", "needs 0x20c", "no arguments"}},
      {"small window",
       {{"fpgaserve:fpgaserve_1"}, 0x100, true, 6},
       {"register window of 0x100 bytes", "needs 0x20c", "through output 2"}},
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    SCOPED_TRACE(c.name);
    BundleSpec s;
    s.xclbin = MakeXclbin(c.xclbin);
    auto [dir, m] = Bundle("kernel_" + std::to_string(i), s);
    auto d = OpenXrtDriver(dir, m);
    if (!XrtDriverAvailable()) {
      ExpectNoXrt(d);
      continue;
    }
    ASSERT_FALSE(d.ok());
    EXPECT_EQ(d.status().code(), StatusCode::kFailedPrecondition) << d.status().ToString();
    for (const auto& w : c.want) {
      EXPECT_TRUE(Contains(d.status().message(), w)) << w << " in " << d.status().message();
    }
  }
}

// --- The register protocol against a model of fpgaserve_axilite --------------------------------

struct FakeState {
  // The core.
  int n_in = kIn, n_out = kOut;
  numeric::NumberFormat in_f, out_f;
  BoardDriver* emu = nullptr;
  std::uint32_t reported_n_out = 0, reported_out_base = 0;
  std::uint32_t out_base = 0;
  std::uint64_t window = 0;
  // Behaviour.
  int done_delay_max = 3;     // control reads while busy before done: 0..this, pseudo-random
  bool stuck = false;         // busy forever
  bool ignore_start = false;  // start leaves the core idle
  int corrupt_output = -1;    // this output register reads with a wrong extension
  long fail_after = -1;       // accesses before the port fails (UNAVAILABLE)
  // Registers.
  std::vector<std::uint64_t> in_bits;
  std::vector<numeric::RawValue> outputs;
  std::vector<numeric::RawValue> pending;
  std::uint64_t cycles = 0, pending_cycles = 0;
  bool busy = false, done = false;
  int polls_left = 0;
  // What happened.
  long reads = 0, writes = 0, starts = 0, accesses = 0;
  std::vector<std::string> violations;
  std::vector<std::uint64_t> cycle_log;
  std::mt19937 rng{7};
  std::mutex mu;
};

std::uint64_t Mask(int width) {
  return width >= 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << width) - 1;
}

numeric::RawValue FromBits(std::uint64_t bits, const numeric::NumberFormat& f) {
  const int w = f.width();
  if (f.raw_is_signed() && ((bits >> (w - 1)) & 1u))
    return static_cast<std::int64_t>(bits | ~Mask(w));
  return static_cast<std::int64_t>(bits);
}

std::uint32_t Word(numeric::RawValue v) {  // sign- or zero-extended to 32 bits
  return static_cast<std::uint32_t>(static_cast<std::uint64_t>(v));
}

class FakeAxiLite : public axilite::RegisterPort {
 public:
  explicit FakeAxiLite(std::shared_ptr<FakeState> s) : s_(std::move(s)) {}

  Result<std::uint32_t> Read(std::uint32_t offset) override {
    std::lock_guard<std::mutex> lock(s_->mu);
    RETURN_IF_ERROR(Access(offset, "read"));
    ++s_->reads;
    FakeState& s = *s_;
    if (offset == hw::kRegControl) {
      if (s.busy && !s.stuck) {
        if (s.polls_left == 0) {
          s.busy = false;
          if (s.starts > 0) {  // (busy at open finishes nothing)
            s.done = true;
            s.outputs = s.pending;
            s.cycles = s.pending_cycles;
          }
        } else {
          --s.polls_left;
        }
      }
      return (s.busy ? 4u : 0u) | (s.done ? 2u : 0u);
    }
    if (offset == hw::kRegInputs) return static_cast<std::uint32_t>(s.n_in);
    if (offset == hw::kRegOutputs) return s.reported_n_out;
    if (offset == hw::kRegCyclesLow) return static_cast<std::uint32_t>(s.cycles);
    if (offset == hw::kRegCyclesHigh) return static_cast<std::uint32_t>(s.cycles >> 32);
    if (offset == hw::kRegOutputBase) return s.reported_out_base;
    if (offset >= hw::kInputBase && offset < hw::kInputBase + 4u * s.n_in) {
      return Word(FromBits(s.in_bits[(offset - hw::kInputBase) / 4], s.in_f));
    }
    if (offset >= s.out_base && offset < s.out_base + 4u * s.n_out) {
      const std::size_t j = (offset - s.out_base) / 4;
      if (s.busy) s.violations.push_back("output " + std::to_string(j) + " read while busy");
      const numeric::RawValue v = j < s.outputs.size() ? s.outputs[j] : 0;
      return Word(v) ^ (static_cast<int>(j) == s.corrupt_output ? 0x80000000u : 0u);
    }
    return 0u;  // unmapped
  }

  Status Write(std::uint32_t offset, std::uint32_t value) override {
    std::lock_guard<std::mutex> lock(s_->mu);
    RETURN_IF_ERROR(Access(offset, "write"));
    ++s_->writes;
    FakeState& s = *s_;
    if (offset == hw::kRegControl && (value & 1u)) {
      if (s.busy) {
        s.violations.push_back("start while busy");
        return Status::Ok();
      }
      if (s.ignore_start) return Status::Ok();
      ++s.starts;
      s.busy = true;
      s.done = false;
      numeric::RawBatch in{1, static_cast<std::size_t>(s.n_in), {}};
      for (auto bits : s.in_bits) in.values.push_back(FromBits(bits, s.in_f));
      auto out = s.emu->Infer(in);
      if (!out.ok()) {
        s.violations.push_back("the emulator refused the latched inputs: " +
                               out.status().ToString());
        s.pending.assign(s.n_out, 0);
      } else {
        s.pending = out->outputs.values;
      }
      // Cycle counts that need both halves of the register pair now and then.
      const auto k = static_cast<std::uint64_t>(s.starts);
      s.pending_cycles = 2 + k % 5 + (k % 7 == 3 ? k << 32 : 0);
      s.cycle_log.push_back(s.pending_cycles);
      s.polls_left = static_cast<int>(s.rng() % (s.done_delay_max + 1));
      return Status::Ok();
    }
    if (offset >= hw::kInputBase && offset < hw::kInputBase + 4u * s.n_in) {
      if (s.busy) s.violations.push_back("input written while busy");
      s.in_bits[(offset - hw::kInputBase) / 4] = value & Mask(s.in_f.width());
    }
    return Status::Ok();  // read-only and unmapped writes are ignored
  }

  std::string Name() const override { return "fake axilite"; }

 private:
  Status Access(std::uint32_t offset, const char* what) {
    ++s_->accesses;
    if (s_->fail_after >= 0 && s_->accesses > s_->fail_after) {
      return Unavailable("the card went away");
    }
    if (offset % 4 != 0 || offset + 4ull > s_->window) {
      s_->violations.push_back(std::string(what) + " outside the window at " +
                               std::to_string(offset));
      return Internal("fake axilite: offset outside the register window");
    }
    return Status::Ok();
  }

  std::shared_ptr<FakeState> s_;
};

class RegisterProtocolTest : public XrtDriverTest {
 protected:
  // A bundle of `precision` and shape, its emu driver, and a fake core for it.
  void Make(const std::string& precision = "fixed<16,6>", int n_in = kIn, int n_out = kOut) {
    BundleSpec s;
    s.precision = precision;
    s.n_in = n_in;
    s.n_out = n_out;
    std::tie(bundle_, m_) = Bundle("protocol", s);
    auto emu = OpenEmuDriver(bundle_, m_);
    ASSERT_TRUE(emu.ok()) << emu.status().ToString();
    emu_ = std::move(*emu);
    state_ = std::make_shared<FakeState>();
    state_->n_in = n_in;
    state_->n_out = n_out;
    state_->in_f = m_.input_format;
    state_->out_f = m_.output_format;
    state_->emu = emu_.get();
    state_->out_base = hw::AxiLiteOutputBase(n_in);
    state_->reported_n_out = static_cast<std::uint32_t>(n_out);
    state_->reported_out_base = state_->out_base;
    state_->window = axilite::RegisterWindowBytes(n_in, n_out);
    state_->in_bits.assign(n_in, 0);
  }

  Result<std::unique_ptr<BoardDriver>> Open(
      std::chrono::milliseconds timeout = std::chrono::milliseconds(1000)) {
    axilite::Timing t;
    t.row_timeout = timeout;
    t.spin_polls = 16;
    t.poll_sleep = std::chrono::microseconds(50);
    return axilite::OpenRegisterDriver("xrt", m_, std::make_unique<FakeAxiLite>(state_), t);
  }

  // Rows of random raw inputs over the whole input format, after three edge rows.
  numeric::RawBatch RandomInputs(std::size_t rows, unsigned seed) const {
    const auto lo = m_.input_format.min_raw(), hi = m_.input_format.max_raw();
    std::mt19937_64 rng(seed);
    std::uniform_int_distribution<std::int64_t> dist(lo, hi);
    numeric::RawBatch b{rows, static_cast<std::size_t>(m_.n_inputs), {}};
    for (std::size_t r = 0; r < rows; ++r) {
      for (std::int64_t k = 0; k < m_.n_inputs; ++k) {
        b.values.push_back(r == 0   ? lo
                           : r == 1 ? hi
                           : r == 2 ? std::clamp<std::int64_t>(0, lo, hi)
                                    : dist(rng));
      }
    }
    return b;
  }

  void ExpectMatchesEmu(BoardDriver& d, std::size_t rows, unsigned seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    const numeric::RawBatch in = RandomInputs(rows, seed);
    const std::size_t logged = state_->cycle_log.size();
    auto got = d.Infer(in);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    auto want = emu_->Infer(in);
    ASSERT_TRUE(want.ok()) << want.status().ToString();
    EXPECT_EQ(got->outputs.rows, rows);
    EXPECT_EQ(got->outputs.features, static_cast<std::size_t>(m_.n_outputs));
    EXPECT_EQ(got->outputs.values, want->outputs.values);
    const std::vector<std::uint64_t> cycles(state_->cycle_log.begin() + logged,
                                            state_->cycle_log.end());
    EXPECT_EQ(got->latency_cycles, cycles);
    std::uint64_t total = 0;
    for (auto c : cycles) total += c;
    EXPECT_EQ(got->total_cycles, total);
    EXPECT_TRUE(state_->violations.empty()) << state_->violations.front();
  }

  std::string bundle_;
  firmware::BundleMetadata m_;
  std::unique_ptr<BoardDriver> emu_;
  std::shared_ptr<FakeState> state_;
};

TEST_F(RegisterProtocolTest, MatchesEmuBitForBit) {
  Make();
  auto d = Open();
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ((*d)->kind(), "xrt");
  for (unsigned seed : {11u, 12u}) ExpectMatchesEmu(**d, 300, seed);
  EXPECT_EQ(state_->starts, 600);
  // Per row: n_in input writes and one start; reads of control, outputs and cycles.
  EXPECT_EQ(state_->writes, 600 * (kIn + 1));
  // The cycle pattern reached the high word (k % 7 == 3).
  EXPECT_GT(*std::max_element(state_->cycle_log.begin(), state_->cycle_log.end()),
            std::uint64_t{1} << 32);
}

TEST_F(RegisterProtocolTest, OtherFormatsAndAMovedOutputWindow) {
  struct Case {
    const char* precision;
    int n_in, n_out;
  };
  // 32-bit elements, unsigned ones (zero-extended), narrow ones, and n_in > 64 (OUT_BASE 0x400).
  for (const Case& c : {Case{"fixed<32,16>", 4, 3}, Case{"ufixed<12,4>", 5, 2},
                        Case{"fixed<5,2>", 3, 4}, Case{"fixed<16,6>", 100, 3}}) {
    SCOPED_TRACE(c.precision + std::string(" ") + std::to_string(c.n_in));
    fs::remove_all(dir_ / "protocol");
    Make(c.precision, c.n_in, c.n_out);
    auto d = Open();
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    ExpectMatchesEmu(**d, 200, 21);
  }
  EXPECT_EQ(state_->out_base, 0x400u);
}

TEST_F(RegisterProtocolTest, RegisterWindowFollowsTheMap) {
  EXPECT_EQ(axilite::RegisterWindowBytes(4, 3), 0x20cu);
  EXPECT_EQ(axilite::RegisterWindowBytes(64, 1), 0x204u);
  EXPECT_EQ(axilite::RegisterWindowBytes(65, 2), 0x408u);
  EXPECT_EQ(axilite::RegisterWindowBytes(784, 10), 0x1028u);
  EXPECT_EQ(axilite::RegisterWindowBytes(4, 1000), 0x200u + 4000u);
}

TEST_F(RegisterProtocolTest, OtherFirmwareOnTheCard) {
  Make();
  state_->reported_n_out = kOut + 1;
  auto d = Open();
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kFailedPrecondition) << d.status().ToString();
  EXPECT_TRUE(Contains(d.status().message(), "holds other firmware")) << d.status().message();
  EXPECT_TRUE(Contains(d.status().message(), "n_out 4")) << d.status().message();
  EXPECT_TRUE(Contains(d.status().message(), "fake axilite")) << d.status().message();

  state_->reported_n_out = kOut;
  state_->reported_out_base = 0x400;
  d = Open();
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kFailedPrecondition) << d.status().ToString();
  EXPECT_TRUE(Contains(d.status().message(), "OUT_BASE 0x400")) << d.status().message();
  EXPECT_EQ(state_->starts, 0);
}

TEST_F(RegisterProtocolTest, StuckCoreTimesOutThenRecovers) {
  Make();
  auto d = Open(std::chrono::milliseconds(150));
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  state_->stuck = true;
  auto t0 = Clock::now();
  auto r = (*d)->Infer(RandomInputs(5, 3));
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDeadlineExceeded) << r.status().ToString();
  EXPECT_TRUE(Contains(r.status().message(), "row 0 of 5")) << r.status().message();
  EXPECT_TRUE(Contains(r.status().message(), "150 ms")) << r.status().message();
  EXPECT_GE(ms, 150);
  EXPECT_LT(ms, 3000);
  EXPECT_EQ(state_->starts, 1);

  // Still busy: the next batch does not write inputs under the running core.
  r = (*d)->Infer(RandomInputs(2, 4));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDeadlineExceeded) << r.status().ToString();
  EXPECT_TRUE(Contains(r.status().message(), "stays busy for 150 ms before the batch"))
      << r.status().message();
  EXPECT_EQ(state_->starts, 1);
  EXPECT_TRUE(state_->violations.empty()) << state_->violations.front();

  // Once the core finishes, the driver goes on.
  state_->stuck = false;
  ExpectMatchesEmu(**d, 20, 5);
}

TEST_F(RegisterProtocolTest, WaitsForABusyCoreAtOpen) {
  Make();
  state_->busy = true;  // for 40 control reads
  state_->polls_left = 40;
  auto d = Open();
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  ExpectMatchesEmu(**d, 10, 6);

  state_->busy = true;
  state_->done = false;  // start clears done
  state_->stuck = true;
  auto t0 = Clock::now();
  d = Open(std::chrono::milliseconds(100));
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kDeadlineExceeded) << d.status().ToString();
  EXPECT_TRUE(Contains(d.status().message(), "stays busy for 100 ms when the driver opens"))
      << d.status().message();
  EXPECT_TRUE(Contains(d.status().message(), "control 0x4: busy")) << d.status().message();
  EXPECT_LT(Clock::now() - t0, std::chrono::seconds(3));
}

TEST_F(RegisterProtocolTest, IgnoredStartIsInternal) {
  Make();
  auto d = Open();
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  ExpectMatchesEmu(**d, 3, 7);  // done is set from these rows
  state_->ignore_start = true;
  state_->done = false;  // as after a reset of the card
  auto r = (*d)->Infer(RandomInputs(2, 8));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInternal) << r.status().ToString();
  EXPECT_TRUE(Contains(r.status().message(), "start was not taken")) << r.status().message();
  EXPECT_TRUE(Contains(r.status().message(), "neither busy nor done")) << r.status().message();
}

TEST_F(RegisterProtocolTest, BadlyExtendedOutputIsInternal) {
  Make();
  state_->corrupt_output = 1;
  auto d = Open();
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  auto r = (*d)->Infer(RandomInputs(3, 9));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInternal) << r.status().ToString();
  EXPECT_TRUE(Contains(r.status().message(), "output 1 (register 0x204)")) << r.status().message();
  EXPECT_TRUE(Contains(r.status().message(), "sign-extended fixed<16,6>")) << r.status().message();
  EXPECT_TRUE(Contains(r.status().message(), "row 0 of 3")) << r.status().message();
}

TEST_F(RegisterProtocolTest, PortFailureNamesTheRow) {
  Make();
  auto d = Open();
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  state_->fail_after = state_->accesses + 3 * (kIn + 1 + 1 + kOut + 2) + 2;  // during row 3
  state_->done_delay_max = 0;
  auto r = (*d)->Infer(RandomInputs(10, 10));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << r.status().ToString();
  EXPECT_TRUE(Contains(r.status().message(), "row 3 of 10")) << r.status().message();
  EXPECT_TRUE(Contains(r.status().message(), "the card went away")) << r.status().message();
  EXPECT_TRUE(Contains(r.status().message(), "xrt on fake axilite")) << r.status().message();

  // A port failing while the driver opens names the registers it was reading.
  state_->fail_after = state_->accesses;
  auto d2 = Open();
  ASSERT_FALSE(d2.ok());
  EXPECT_EQ(d2.status().code(), StatusCode::kUnavailable) << d2.status().ToString();
  EXPECT_TRUE(Contains(d2.status().message(), "identity registers")) << d2.status().message();
}

TEST_F(RegisterProtocolTest, BadBatchesNeverReachTheRegisters) {
  Make();
  auto d = Open();
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  const long writes = state_->writes;
  auto r = (*d)->Infer(numeric::RawBatch{1, 2, {1, 2}});
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().ToString();
  r = (*d)->Infer(numeric::RawBatch{1, kIn, {0, 0, 40000, 0}});  // beyond fixed<16,6>
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().ToString();
  EXPECT_EQ(state_->writes, writes);
  auto empty = (*d)->Infer(numeric::RawBatch{0, kIn, {}});
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  EXPECT_EQ(empty->outputs.rows, 0u);
  EXPECT_EQ(empty->total_cycles, 0u);
}

TEST_F(RegisterProtocolTest, RejectsBadShapesAndTiming) {
  Make();
  auto wide = m_;
  wide.input_format = *numeric::ParseNumberFormat("fixed<33,10>");
  auto d = axilite::OpenRegisterDriver("xrt", wide, std::make_unique<FakeAxiLite>(state_));
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kFailedPrecondition) << d.status().ToString();
  EXPECT_TRUE(Contains(d.status().message(), "33 bits")) << d.status().message();

  axilite::Timing t;
  t.row_timeout = std::chrono::milliseconds(-1);
  d = axilite::OpenRegisterDriver("xrt", m_, std::make_unique<FakeAxiLite>(state_), t);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kInvalidArgument) << d.status().ToString();

  d = axilite::OpenRegisterDriver("xrt", m_, nullptr);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kInvalidArgument) << d.status().ToString();
  EXPECT_EQ(state_->accesses, 0);
}

TEST_F(RegisterProtocolTest, ConcurrentBatchesTakeTurns) {
  Make();
  auto d = Open();
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  BoardDriver* driver = d->get();
  std::vector<numeric::RawBatch> inputs;
  std::vector<Result<BatchResult>> results;
  for (unsigned t = 0; t < 4; ++t) {
    inputs.push_back(RandomInputs(50, 30 + t));
    results.emplace_back(Internal("not run"));
  }
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < inputs.size(); ++t) {
    threads.emplace_back([&, t] { results[t] = driver->Infer(inputs[t]); });
  }
  for (auto& th : threads) th.join();
  for (std::size_t t = 0; t < inputs.size(); ++t) {
    ASSERT_TRUE(results[t].ok()) << results[t].status().ToString();
    EXPECT_EQ(results[t]->outputs.values, emu_->Infer(inputs[t])->outputs.values);
  }
  EXPECT_EQ(state_->starts, 200);
  EXPECT_TRUE(state_->violations.empty()) << state_->violations.front();
}

}  // namespace
}  // namespace fpgaserve::runtime
