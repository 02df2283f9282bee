// The zynq driver against fakes at its boundary, with no root and no board: a temp sysfs tree
// (fpga_manager, uio, u-dma-buf), a temp firmware directory and regular files standing in for
// /dev/uioN and /dev/udmabuf0 (MAP_SHARED of a regular file shares its pages like a device map).
// A fake FPGA Manager thread answers the firmware name with a state; a fake fabric thread maps the
// same files and behaves like fpgaserve_axilite, or like an AXI DMA feeding fpgaserve_axis,
// computing with the emulator, so the driver's outputs must equal the emu driver's bit for bit.
// The bundles' bitstreams are synthetic Xilinx .bit files (header fields, then configuration data
// with dummy, bus-width and sync words): the driver must hand the manager the .bin (header gone,
// every 32-bit word byte-swapped) and pass a .bin bundle through unchanged; ZynqBitToBin is also
// checked on its own, byte for byte and on malformed .bit files.
#include "runtime/zynq_driver.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <thread>
#include <vector>

#include "core/file_io.h"
#include "firmware/bundle.h"
#include "runtime/adder_bundle.h"
#include "runtime/emu_driver.h"

namespace fpgaserve::runtime {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr int kIn = 4;
constexpr int kOut = 3;
constexpr std::uint32_t kRegsBytes = 0x1000;     // the core's AXI-Lite window / the DMA's
constexpr std::uint64_t kPhys = 0x3e000000;      // the fake DMA buffer's physical address
constexpr std::uint32_t kBufferBytes = 0x10000;  // and its size
constexpr const char* kZynqCommand =
    "vivado -mode batch -nojournal -nolog -source vivado/build.tcl";

std::string Slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void Put(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary | std::ios::trunc) << text;
}

// Replaces a file's content in one step (a reader never sees it empty).
void PutAtomic(const fs::path& p, const std::string& text) {
  Put(p.string() + ".new", text);
  fs::rename(p.string() + ".new", p);
}

// A bundle for `board` with the adder model and a stand-in bitstream (no Vivado) in `bit_file`.
Result<firmware::BundleMetadata> WriteZynqBundle(const std::string& dir, const std::string& board,
                                                 const std::string& interface,
                                                 const std::string& bitstream_status,
                                                 const std::string& bits,
                                                 const std::string& bit_file = "fpgaserve.bit") {
  RETURN_IF_ERROR(testing::WriteAdderModel(dir, kIn, kOut));
  firmware::BundleMetadata m =
      testing::AdderMetadata("zynq adder bundle " + board + " " + interface, board, kIn, kOut);
  m.interface = interface;
  m.flavor = firmware::FlavorOf(interface);
  if (bitstream_status == "built") {
    RETURN_IF_ERROR(WriteFileAtomic(dir + "/" + bit_file, bits));
    m.bitstream = {"built", bit_file, kZynqCommand};
  } else {
    m.bitstream = {bitstream_status, "", kZynqCommand};
  }
  m.clock_mhz = 100;
  ASSIGN_OR_RETURN(m.files, firmware::ListBundleFiles(dir));
  RETURN_IF_ERROR(
      WriteFileAtomic(dir + "/" + firmware::kMetadataFile, firmware::MetadataToJson(m)));
  return firmware::ReadBundleMetadata(dir);  // parsed back: formats and derived fields set
}

// ---------------------------------------------------------------------------------------------
// Synthetic Xilinx .bit files.

std::string Be16(std::size_t v) {
  return {static_cast<char>((v >> 8) & 0xff), static_cast<char>(v & 0xff)};
}

std::string Be32(std::uint64_t v) {
  return {static_cast<char>((v >> 24) & 0xff), static_cast<char>((v >> 16) & 0xff),
          static_cast<char>((v >> 8) & 0xff), static_cast<char>(v & 0xff)};
}

// Words as a .bit holds them (big-endian) and as the Zynq FPGA Manager's .bin (each reversed).
std::string BigEndianWords(const std::vector<std::uint32_t>& words) {
  std::string s;
  for (auto w : words) s += Be32(w);
  return s;
}
std::string SwappedWords(const std::vector<std::uint32_t>& words) {
  std::string s;
  for (auto w : words) {
    for (int i = 0; i < 4; ++i) s.push_back(static_cast<char>((w >> (8 * i)) & 0xff));
  }
  return s;
}

// The .bit header up to field 'e': the magic field, 00 01 and the 'a'..'d' string fields.
const std::string kBitMagic("\x00\x09\x0f\xf0\x0f\xf0\x0f\xf0\x0f\xf0\x00", 11);

std::string BitField(char key, const std::string& text) {
  return std::string(1, key) + Be16(text.size() + 1) + text + std::string(1, '\0');
}

const std::string kDesign = "fpgaserve_top;UserID=0XFFFFFFFF;Version=2023.2";

std::string BitHeader() {
  return kBitMagic + std::string("\x00\x01", 2) + BitField('a', kDesign) +
         BitField('b', "7z020clg400") + BitField('c', "2024/05/01") + BitField('d', "12:34:56");
}

// Configuration data: dummy words, the bus-width detection words, the sync word, then `payload`.
std::vector<std::uint32_t> ConfigWords(const std::vector<std::uint32_t>& payload) {
  std::vector<std::uint32_t> w(8, 0xffffffff);
  for (std::uint32_t x : {0x000000bbu, 0x11220044u, 0xffffffffu, 0xffffffffu, 0xaa995566u}) {
    w.push_back(x);
  }
  w.insert(w.end(), payload.begin(), payload.end());
  return w;
}

// A .bit: the header, then field 'e' with `data` (its length as given, or data.size()).
std::string BitFile(const std::string& data, std::optional<std::uint64_t> length = std::nullopt) {
  return BitHeader() + "e" + Be32(length.value_or(data.size())) + data;
}

std::vector<std::uint32_t> RandomWords(unsigned seed, std::size_t n) {
  std::mt19937 rng(seed);
  std::vector<std::uint32_t> words;
  for (std::size_t i = 0; i < n; ++i) words.push_back(static_cast<std::uint32_t>(rng()));
  return words;
}

// The Linux FPGA Manager: waits for a firmware name in its `firmware` attribute, records the
// named file's content from the firmware directory, then sets `state` to `final_state`.
class FakeManager {
 public:
  FakeManager(fs::path mgr, fs::path firmware_dir, std::string final_state)
      : mgr_(std::move(mgr)),
        firmware_dir_(std::move(firmware_dir)),
        final_state_(std::move(final_state)) {
    thread_ = std::thread([this] { Run(); });
  }
  ~FakeManager() {
    stop_ = true;
    thread_.join();
  }

  std::string name() const {
    std::lock_guard<std::mutex> l(mu_);
    return name_;
  }
  std::string image() const {
    std::lock_guard<std::mutex> l(mu_);
    return image_;
  }
  std::string flags_at_load() const {
    std::lock_guard<std::mutex> l(mu_);
    return flags_;
  }

 private:
  void Run() {
    while (!stop_) {
      const std::string name = Slurp(mgr_ / "firmware");
      // The driver installs the image before it writes the name (a partly written name names
      // no file yet).
      if (!name.empty() && fs::exists(firmware_dir_ / name)) {
        {
          std::lock_guard<std::mutex> l(mu_);
          name_ = name;
          image_ = Slurp(firmware_dir_ / name);
          flags_ = Slurp(mgr_ / "flags");
        }
        PutAtomic(mgr_ / "state", final_state_ + "\n");
        return;
      }
      std::this_thread::sleep_for(milliseconds(1));
    }
  }

  fs::path mgr_, firmware_dir_;
  std::string final_state_;
  mutable std::mutex mu_;
  std::string name_, image_, flags_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// A shared mapping of a fake device file, accessed as 32-bit atomics.
class SharedWords {
 public:
  SharedWords(const fs::path& file, std::size_t bytes) : bytes_(bytes) {
    fd_ = open(file.c_str(), O_RDWR);
    EXPECT_GE(fd_, 0) << file;
    base_ = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
    EXPECT_NE(base_, MAP_FAILED) << file;
  }
  ~SharedWords() {
    munmap(base_, bytes_);
    close(fd_);
  }
  std::atomic_ref<std::uint32_t> operator[](std::uint64_t byte) {
    return std::atomic_ref<std::uint32_t>(static_cast<std::uint32_t*>(base_)[byte / 4]);
  }
  std::size_t bytes() const { return bytes_; }

 private:
  int fd_ = -1;
  void* base_ = nullptr;
  std::size_t bytes_;
};

// The fabric behind the UIO device: fpgaserve_axilite's registers, or an AXI DMA (direct register
// mode) moving one frame per transfer between the buffer file and fpgaserve_axis.
class FakeFabric {
 public:
  // kUnextended: axilite output registers hold the low 16 bits only (not sign-extended).
  enum class Mode { kNormal, kNeverDone, kDmaError, kScatterGather, kShortFrame, kUnextended };

  FakeFabric(bool axis, Mode mode, const firmware::BundleMetadata& m, BoardDriver* emu,
             const fs::path& regs, const fs::path& buffer, std::uint32_t reported_n_in = kIn)
      : axis_(axis), mode_(mode), m_(m), emu_(emu), regs_(regs, kRegsBytes) {
    if (axis) {
      buf_ = std::make_unique<SharedWords>(buffer, kBufferBytes);
      // Out of reset the DMA is halted.
      regs_[0x04].store(1);
      regs_[0x34].store(1);
    } else {
      regs_[0x04].store(reported_n_in);
      regs_[0x08].store(kOut);
      regs_[0x14].store(0x200);
    }
    thread_ = std::thread([this] { axis_ ? RunDma() : RunAxiLite(); });
  }
  ~FakeFabric() {
    stop_ = true;
    thread_.join();
  }

  void set_mode(Mode mode) { mode_ = mode; }
  int rows() const { return rows_; }
  int resets() const { return resets_; }
  std::vector<std::uint64_t> cycles() const {
    std::lock_guard<std::mutex> l(mu_);
    return cycles_;
  }

 private:
  // The element in the low `width` bits of a word, as the wrappers store it.
  std::int64_t Element(std::uint32_t w) const {
    const int width = m_.input_format.width();
    std::int64_t v = w & ((std::uint64_t{1} << width) - 1);
    if (m_.input_format.raw_is_signed() && ((w >> (width - 1)) & 1u)) v -= std::int64_t{1} << width;
    return v;
  }

  // One inference: the emulator's outputs sign-extended to 32 bits, and its cycle count.
  std::vector<std::uint32_t> Compute(const std::vector<std::int64_t>& in, std::uint64_t* cycles) {
    auto out = emu_->Infer(numeric::RawBatch{1, static_cast<std::size_t>(kIn), in});
    EXPECT_TRUE(out.ok()) << out.status().ToString();
    std::vector<std::uint32_t> words;
    if (out.ok()) {
      for (auto v : out->outputs.values) words.push_back(static_cast<std::uint32_t>(v));
    }
    const int row = rows_++;
    *cycles = static_cast<std::uint64_t>(m_.latency_cycles + row % 5);
    if (!axis_ && row % 7 == 3) *cycles += std::uint64_t{1} << 32;  // exercises the high word
    std::lock_guard<std::mutex> l(mu_);
    cycles_.push_back(*cycles);
    return words;
  }

  void RunAxiLite() {
    while (!stop_) {
      const std::uint32_t ctrl = regs_[0x00].load(std::memory_order_acquire);
      if ((ctrl & 1u) == 0) {
        std::this_thread::sleep_for(std::chrono::microseconds(20));  // idle
        continue;
      }
      if (mode_ == Mode::kNeverDone) {
        regs_[0x00].store(4, std::memory_order_release);  // busy forever
        continue;
      }
      std::vector<std::int64_t> in;
      for (int i = 0; i < kIn; ++i) in.push_back(Element(regs_[0x100 + 4 * i].load()));
      std::uint64_t cycles = 0;
      const auto out = Compute(in, &cycles);
      for (std::size_t j = 0; j < out.size(); ++j) {
        regs_[0x200 + 4 * j].store(mode_ == Mode::kUnextended ? out[j] & 0xffff : out[j]);
      }
      regs_[0x0C].store(static_cast<std::uint32_t>(cycles));
      regs_[0x10].store(static_cast<std::uint32_t>(cycles >> 32));
      regs_[0x00].store(2, std::memory_order_release);  // done
    }
  }

  void RunDma() {
    const std::uint32_t sg = mode_ == Mode::kScatterGather ? 8 : 0;
    while (!stop_) {
      if (regs_[0x00].load(std::memory_order_acquire) & 4u) {  // reset: both channels halt
        ++resets_;
        regs_[0x30].store(0);
        regs_[0x04].store(1 | sg);
        regs_[0x34].store(1 | sg);
        regs_[0x00].store(0, std::memory_order_release);
        continue;
      }
      for (std::uint32_t ch : {0x00u, 0x30u}) {  // run: the channel leaves halted
        if ((regs_[ch].load() & 1u) && (regs_[ch + 4].load() & 1u)) regs_[ch + 4].store(sg);
      }
      // MM2S_LENGTH is the driver's last write of a transfer: the fake's doorbell.
      const std::uint32_t len = regs_[0x28].exchange(0, std::memory_order_acq_rel);
      if (len == 0) {
        std::this_thread::sleep_for(std::chrono::microseconds(20));  // idle
        continue;
      }
      Transfer(len);
    }
  }

  void Transfer(std::uint32_t len) {
    const std::uint64_t sa = regs_[0x18].load(), da = regs_[0x48].load();
    const std::uint32_t cap = regs_[0x58].load();
    const std::uint32_t frame = 4 * (kOut + 1);
    auto fail = [&](std::uint32_t bits) {  // S2MM halts (run cleared) with the error bits
      regs_[0x30].store(0);
      regs_[0x04].store(0x1002, std::memory_order_release);
      regs_[0x34].store(0x4001 | bits, std::memory_order_release);
    };
    if (mode_ == Mode::kDmaError) return fail(0x10);  // DMAIntErr
    if (sa < kPhys || sa + len > kPhys + kBufferBytes || da < kPhys ||
        da + frame > kPhys + kBufferBytes) {
      return fail(0x40);  // DMADecErr: outside the buffer
    }
    if (len != 4 * kIn || cap < frame) return fail(0x10);
    std::vector<std::int64_t> in;
    for (int i = 0; i < kIn; ++i) in.push_back(Element((*buf_)[sa - kPhys + 4 * i].load()));
    std::uint64_t cycles = 0;
    std::vector<std::uint32_t> out = Compute(in, &cycles);
    out.push_back(static_cast<std::uint32_t>(cycles));
    if (mode_ == Mode::kShortFrame) out.resize(2);  // TLAST early
    for (std::size_t j = 0; j < out.size(); ++j) (*buf_)[da - kPhys + 4 * j].store(out[j]);
    regs_[0x58].store(static_cast<std::uint32_t>(4 * out.size()));  // bytes received
    regs_[0x04].store(0x1002, std::memory_order_release);           // Idle | IOC
    regs_[0x34].store(0x1002, std::memory_order_release);
  }

  bool axis_;
  std::atomic<Mode> mode_;
  firmware::BundleMetadata m_;
  BoardDriver* emu_;
  SharedWords regs_;
  std::unique_ptr<SharedWords> buf_;
  std::atomic<int> rows_{0}, resets_{0};
  mutable std::mutex mu_;
  std::vector<std::uint64_t> cycles_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

class ZynqDriverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("fpgaserve_zynq_test_" + std::to_string(getpid()) + "_" +
                                        std::to_string(std::random_device{}()));
    sys_ = dir_ / "sys";
    dev_ = dir_ / "dev";
    fw_ = dir_ / "firmware";
    mgr_ = sys_ / "class" / "fpga_manager" / "fpga0";
    fs::create_directories(dev_);
    fs::create_directories(fw_);
    Put(mgr_ / "name", "Xilinx Zynq FPGA Manager\n");
    Put(mgr_ / "state", "unknown\n");
    Put(mgr_ / "flags", "");
    Put(mgr_ / "firmware", "");
    AddUio(0, "fpgaserve", kRegsBytes);
    AddUio(1, "axi-dma", kRegsBytes);
    AddUio(2, "gpio", kRegsBytes);  // another device, never touched
    Put(sys_ / "class" / "u-dma-buf" / "udmabuf0" / "phys_addr", "0x000000003e000000\n");
    Put(sys_ / "class" / "u-dma-buf" / "udmabuf0" / "size", std::to_string(kBufferBytes) + "\n");
    DeviceFile(dev_ / "udmabuf0", kBufferBytes);
    const auto words = ConfigWords(RandomWords(7, 1024));
    bits_ = BitFile(BigEndianWords(words));
    bin_ = SwappedWords(words);
  }
  void TearDown() override {
    std::error_code ec;
    fs::permissions(fw_, fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(dir_, ec);
  }

  void AddUio(int n, const std::string& name, std::uint32_t size) {
    const fs::path d = sys_ / "class" / "uio" / ("uio" + std::to_string(n));
    Put(d / "name", name + "\n");
    char hex[16];
    std::snprintf(hex, sizeof hex, "0x%08x", size);
    Put(d / "maps" / "map0" / "size", std::string(hex) + "\n");
    Put(d / "maps" / "map0" / "addr", "0x43c00000\n");
    DeviceFile(dev_ / ("uio" + std::to_string(n)), size);
  }

  static void DeviceFile(const fs::path& p, std::uint32_t size) {
    Put(p, "");
    fs::resize_file(p, size);
  }

  // Writes the bundle and opens the emulator on it.
  firmware::BundleMetadata Bundle(const std::string& interface,
                                  const std::string& board = "pynq-z2",
                                  const std::string& status = "built") {
    const std::string dir = (dir_ / ("bundle-" + board + "-" + interface + "-" + status)).string();
    auto m = WriteZynqBundle(dir, board, interface, status, bits_, bit_file_);
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    bundle_ = dir;
    if (!m.ok()) return {};
    if (status == "built") {
      auto emu = OpenEmuDriver(dir, *m);
      EXPECT_TRUE(emu.ok()) << emu.status().ToString();
      if (emu.ok()) emu_ = std::move(*emu);
    }
    return *m;
  }

  ZynqOptions Options() const {
    ZynqOptions o;
    o.sysfs_root = sys_.string();
    o.dev_root = dev_.string();
    o.firmware_dir = fw_.string();
    o.program_timeout = milliseconds(2000);
    o.infer_timeout = milliseconds(2000);
    return o;
  }

  static numeric::RawBatch RandomInputs(std::size_t rows, unsigned seed) {
    std::mt19937 rng(seed);
    std::uniform_int_distribution<std::int64_t> dist(-32768, 32767);
    numeric::RawBatch b{rows, static_cast<std::size_t>(kIn), {}};
    for (std::size_t i = 0; i < rows * kIn; ++i) b.values.push_back(dist(rng));
    return b;
  }

  // Runs batches of random rows and compares every output with the emulator's, and every cycle
  // count with the fabric's.
  void ExpectMatchesEmu(BoardDriver& d, const FakeFabric& fabric) {
    std::size_t rows_before = fabric.cycles().size();
    for (unsigned seed : {11u, 12u}) {
      SCOPED_TRACE("seed " + std::to_string(seed));
      const numeric::RawBatch in = RandomInputs(300, seed);
      auto got = d.Infer(in);
      ASSERT_TRUE(got.ok()) << got.status().ToString();
      auto want = emu_->Infer(in);
      ASSERT_TRUE(want.ok()) << want.status().ToString();
      EXPECT_EQ(got->outputs.rows, 300u);
      EXPECT_EQ(got->outputs.features, static_cast<std::size_t>(kOut));
      EXPECT_EQ(got->outputs.values, want->outputs.values);
      const auto all = fabric.cycles();
      ASSERT_EQ(all.size(), rows_before + 300);
      const std::vector<std::uint64_t> cycles(
          all.begin() + static_cast<std::ptrdiff_t>(rows_before), all.end());
      EXPECT_EQ(got->latency_cycles, cycles);
      std::uint64_t total = 0;
      for (auto c : cycles) total += c;
      EXPECT_EQ(got->total_cycles, total);
      rows_before = all.size();
    }
  }

  fs::path dir_, sys_, dev_, fw_, mgr_;
  std::string bundle_;
  std::string bit_file_ = "fpgaserve.bit";  // the bundle's bitstream file
  std::string bits_;                        // its content (a .bit by default)
  std::string bin_;                         // the .bin the manager must get for the default .bit
  std::unique_ptr<BoardDriver> emu_;
};

TEST_F(ZynqDriverTest, AxiLiteProgramsThenMatchesEmuBitForBit) {
  const auto m = Bundle("axilite");
  FakeManager manager(mgr_, fw_, "operating");
  FakeFabric fabric(false, FakeFabric::Mode::kNormal, m, emu_.get(), dev_ / "uio0", "");
  auto d = OpenZynqDriver(bundle_, m, Options());
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ((*d)->kind(), "zynq");
  // The FPGA Manager got the bundle's .bit converted to .bin (header gone, words byte-swapped)
  // under a name unique to the design, and no temp file is left behind.
  const std::string name = "fpgaserve-" + m.id.substr(0, 16) + ".bin";
  EXPECT_EQ(manager.name(), name);
  EXPECT_EQ(manager.image(), bin_);
  EXPECT_EQ(manager.flags_at_load(), "0");
  EXPECT_EQ(Slurp(fw_ / name), bin_);
  EXPECT_EQ(std::distance(fs::directory_iterator(fw_), fs::directory_iterator()), 1);
  ExpectMatchesEmu(**d, fabric);
  EXPECT_EQ(fabric.rows(), 600);
  // Batches the bundle cannot take never reach the fabric.
  auto bad = (*d)->Infer(numeric::RawBatch{1, 2, {1, 2}});
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument) << bad.status().ToString();
  bad = (*d)->Infer(numeric::RawBatch{1, kIn, {0, 0, 40000, 0}});
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument) << bad.status().ToString();
  auto empty = (*d)->Infer(numeric::RawBatch{0, kIn, {}});
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  EXPECT_TRUE(empty->outputs.values.empty());
  EXPECT_EQ(fabric.rows(), 600);
}

TEST_F(ZynqDriverTest, AxisThroughDmaMatchesEmuBitForBit) {
  const auto m = Bundle("axis", "zedboard");
  FakeManager manager(mgr_, fw_, "operating");
  FakeFabric fabric(true, FakeFabric::Mode::kNormal, m, emu_.get(), dev_ / "uio1",
                    dev_ / "udmabuf0");
  auto d = OpenZynqDriver(bundle_, m, Options());
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ((*d)->kind(), "zynq");
  EXPECT_EQ(manager.image(), bin_);
  EXPECT_EQ(Slurp(fw_ / ("fpgaserve-" + m.id.substr(0, 16) + ".bin")), bin_);
  EXPECT_EQ(fabric.resets(), 1);
  ExpectMatchesEmu(**d, fabric);
  EXPECT_EQ(fabric.rows(), 600);
  auto bad = (*d)->Infer(numeric::RawBatch{2, kIn + 1, std::vector<std::int64_t>(10, 0)});
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument) << bad.status().ToString();
  EXPECT_EQ(fabric.rows(), 600);
}

TEST_F(ZynqDriverTest, WithoutProgrammingTheFabricMustBeOperating) {
  const auto m = Bundle("axilite", "ebaz4205");
  FakeFabric fabric(false, FakeFabric::Mode::kNormal, m, emu_.get(), dev_ / "uio0", "");
  ZynqOptions o = Options();
  o.program = false;
  auto d = OpenZynqDriver(bundle_, m, o);  // state "unknown": registers are not touched
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kFailedPrecondition) << d.status().ToString();
  EXPECT_NE(d.status().message().find("not programmed"), std::string::npos);

  Put(mgr_ / "state", "operating\n");
  d = OpenZynqDriver(bundle_, m, o);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  const numeric::RawBatch in = RandomInputs(50, 21);
  auto got = (*d)->Infer(in);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->outputs.values, emu_->Infer(in)->outputs.values);
  EXPECT_TRUE(fs::is_empty(fw_));  // nothing installed
  EXPECT_EQ(Slurp(mgr_ / "firmware"), "");
}

TEST_F(ZynqDriverTest, ManagerErrorStateIsInternal) {
  const auto m = Bundle("axilite");
  FakeManager manager(mgr_, fw_, "write error");
  auto d = OpenZynqDriver(bundle_, m, Options());
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kInternal) << d.status().ToString();
  EXPECT_NE(d.status().message().find("'write error'"), std::string::npos) << d.status().message();
  // The converted .bit holds the sync word in the manager's byte order: no hint about the image.
  EXPECT_EQ(d.status().message().find("66 55 99 aa"), std::string::npos) << d.status().message();
  EXPECT_EQ(manager.image(), bin_);
}

TEST_F(ZynqDriverTest, BinBundleIsPassedThroughUnchanged) {
  // Already the manager's .bin (bootgen -arch zynq -process_bitstream bin): written as is.
  bit_file_ = "fpgaserve.bin";
  bits_ = bin_;
  const auto m = Bundle("axis");
  FakeManager manager(mgr_, fw_, "operating");
  FakeFabric fabric(true, FakeFabric::Mode::kNormal, m, emu_.get(), dev_ / "uio1",
                    dev_ / "udmabuf0");
  auto d = OpenZynqDriver(bundle_, m, Options());
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  const std::string name = "fpgaserve-" + m.id.substr(0, 16) + ".bin";
  EXPECT_EQ(manager.name(), name);
  EXPECT_EQ(manager.image(), bin_);
  EXPECT_EQ(Slurp(fw_ / name), bin_);
}

TEST_F(ZynqDriverTest, BitContentUnderAnotherNameIsConverted) {
  // A .bit by its header, whatever the bundle calls it: the manager still gets the .bin.
  bit_file_ = "fpgaserve.bin";
  const auto m = Bundle("axilite");
  FakeManager manager(mgr_, fw_, "operating");
  FakeFabric fabric(false, FakeFabric::Mode::kNormal, m, emu_.get(), dev_ / "uio0", "");
  auto d = OpenZynqDriver(bundle_, m, Options());
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(manager.image(), bin_);
}

TEST_F(ZynqDriverTest, MalformedBitFailsBeforeAnythingIsInstalled) {
  // Configuration data without the sync word: nothing the Zynq could load.
  bits_ = BitFile(BigEndianWords({0xffffffff, 0xffffffff, 0x000000bb, 0x11220044, 0x20000000}));
  const auto m = Bundle("axilite");
  FakeManager manager(mgr_, fw_, "operating");
  auto d = OpenZynqDriver(bundle_, m, Options());
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kFailedPrecondition) << d.status().ToString();
  EXPECT_NE(d.status().message().find(bundle_ + "/fpgaserve.bit"), std::string::npos)
      << d.status().message();
  EXPECT_NE(d.status().message().find("sync word"), std::string::npos) << d.status().message();
  EXPECT_TRUE(fs::is_empty(fw_));
  EXPECT_EQ(Slurp(mgr_ / "firmware"), "");
  EXPECT_EQ(manager.name(), "");
}

TEST_F(ZynqDriverTest, RefusedBinWithoutSwappedSyncWordSaysSo) {
  // A .bin in the .bit's byte order (not swapped): passed through, and when the kernel refuses it
  // the error names the byte order the Zynq FPGA Manager expects.
  bit_file_ = "fpgaserve.bin";
  bits_ = BigEndianWords(ConfigWords(RandomWords(8, 64)));
  const auto m = Bundle("axis");
  FakeManager manager(mgr_, fw_, "write init error");
  auto d = OpenZynqDriver(bundle_, m, Options());
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kInternal) << d.status().ToString();
  EXPECT_NE(d.status().message().find("'write init error'"), std::string::npos);
  EXPECT_NE(d.status().message().find("66 55 99 aa"), std::string::npos) << d.status().message();
  EXPECT_EQ(manager.image(), bits_);  // written as is
}

TEST_F(ZynqDriverTest, ManagerThatNeverFinishesTimesOut) {
  const auto m = Bundle("axilite");
  FakeManager manager(mgr_, fw_, "write");
  ZynqOptions o = Options();
  o.program_timeout = milliseconds(200);
  const auto t0 = Clock::now();
  auto d = OpenZynqDriver(bundle_, m, o);
  const auto ms = std::chrono::duration_cast<milliseconds>(Clock::now() - t0).count();
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kDeadlineExceeded) << d.status().ToString();
  EXPECT_NE(d.status().message().find("'write'"), std::string::npos) << d.status().message();
  EXPECT_GE(ms, 200);
  EXPECT_LT(ms, 3000);
}

TEST_F(ZynqDriverTest, MissingManagerIsUnavailable) {
  const auto m = Bundle("axilite");
  fs::remove_all(sys_ / "class" / "fpga_manager");
  auto d = OpenZynqDriver(bundle_, m, Options());
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kUnavailable) << d.status().ToString();
  EXPECT_NE(d.status().message().find("CONFIG_FPGA_MGR"), std::string::npos);
  EXPECT_NE(d.status().message().find(mgr_.string()), std::string::npos) << d.status().message();
  EXPECT_TRUE(fs::is_empty(fw_));
}

TEST_F(ZynqDriverTest, ReadOnlyFirmwareDirIsPermissionDenied) {
  if (geteuid() == 0) GTEST_SKIP() << "root writes into read-only directories";
  const auto m = Bundle("axilite");
  fs::permissions(fw_, fs::perms::owner_read | fs::perms::owner_exec);
  auto d = OpenZynqDriver(bundle_, m, Options());
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kPermissionDenied) << d.status().ToString();
  EXPECT_NE(d.status().message().find(fw_.string()), std::string::npos);
  EXPECT_NE(d.status().message().find("root"), std::string::npos);
  EXPECT_EQ(Slurp(mgr_ / "firmware"), "");
}

TEST_F(ZynqDriverTest, OtherFirmwareOnTheFabric) {
  const auto m = Bundle("axilite");
  FakeManager manager(mgr_, fw_, "operating");
  FakeFabric fabric(false, FakeFabric::Mode::kNormal, m, emu_.get(), dev_ / "uio0", "", kIn + 1);
  auto d = OpenZynqDriver(bundle_, m, Options());
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kFailedPrecondition) << d.status().ToString();
  EXPECT_NE(d.status().message().find("other firmware"), std::string::npos);
  EXPECT_NE(d.status().message().find("n_in 5"), std::string::npos) << d.status().message();
  EXPECT_EQ(fabric.rows(), 0);
}

TEST_F(ZynqDriverTest, CoreThatNeverFinishesTimesOutFast) {
  const auto m = Bundle("axilite");
  Put(mgr_ / "state", "operating\n");
  FakeFabric fabric(false, FakeFabric::Mode::kNeverDone, m, emu_.get(), dev_ / "uio0", "");
  ZynqOptions o = Options();
  o.program = false;
  o.infer_timeout = milliseconds(100);
  auto d = OpenZynqDriver(bundle_, m, o);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  const auto t0 = Clock::now();
  auto got = (*d)->Infer(RandomInputs(3, 5));
  const auto ms = std::chrono::duration_cast<milliseconds>(Clock::now() - t0).count();
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), StatusCode::kDeadlineExceeded) << got.status().ToString();
  EXPECT_NE(got.status().message().find((dev_ / "uio0").string()), std::string::npos);
  EXPECT_NE(got.status().message().find("register 0x00"), std::string::npos)
      << got.status().message();
  EXPECT_NE(got.status().message().find("row 0 of 3"), std::string::npos);
  EXPECT_GE(ms, 100);
  EXPECT_LT(ms, 2000);
}

TEST_F(ZynqDriverTest, OutputWordsThatAreNotExtendedAreInternal) {
  const auto m = Bundle("axilite");
  Put(mgr_ / "state", "operating\n");
  FakeFabric fabric(false, FakeFabric::Mode::kUnextended, m, emu_.get(), dev_ / "uio0", "");
  ZynqOptions o = Options();
  o.program = false;
  auto d = OpenZynqDriver(bundle_, m, o);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  // Sums of -1s: every output is negative, so its upper 16 bits must be ones.
  auto got = (*d)->Infer(numeric::RawBatch{1, kIn, std::vector<std::int64_t>(kIn, -1)});
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), StatusCode::kInternal) << got.status().ToString();
  EXPECT_NE(got.status().message().find("0x0000fffc"), std::string::npos) << got.status().message();
  EXPECT_NE(got.status().message().find("sign-extended"), std::string::npos);
}

TEST_F(ZynqDriverTest, DmaErrorBitsAreInternalAndTheNextBatchResets) {
  const auto m = Bundle("axis");
  Put(mgr_ / "state", "operating\n");
  FakeFabric fabric(true, FakeFabric::Mode::kDmaError, m, emu_.get(), dev_ / "uio1",
                    dev_ / "udmabuf0");
  ZynqOptions o = Options();
  o.program = false;
  auto d = OpenZynqDriver(bundle_, m, o);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  auto got = (*d)->Infer(RandomInputs(4, 9));
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), StatusCode::kInternal) << got.status().ToString();
  EXPECT_NE(got.status().message().find("DMAIntErr"), std::string::npos) << got.status().message();
  EXPECT_NE(got.status().message().find("row 0 of 4"), std::string::npos);
  EXPECT_EQ(fabric.resets(), 1);
  // The DMA halted on the error: the next batch resets it and runs.
  fabric.set_mode(FakeFabric::Mode::kNormal);
  const numeric::RawBatch in = RandomInputs(20, 10);
  got = (*d)->Infer(in);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->outputs.values, emu_->Infer(in)->outputs.values);
  EXPECT_EQ(fabric.resets(), 2);
}

TEST_F(ZynqDriverTest, ShortDmaFrameIsInternal) {
  const auto m = Bundle("axis");
  Put(mgr_ / "state", "operating\n");
  FakeFabric fabric(true, FakeFabric::Mode::kShortFrame, m, emu_.get(), dev_ / "uio1",
                    dev_ / "udmabuf0");
  ZynqOptions o = Options();
  o.program = false;
  auto d = OpenZynqDriver(bundle_, m, o);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  auto got = (*d)->Infer(RandomInputs(2, 3));
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), StatusCode::kInternal) << got.status().ToString();
  EXPECT_NE(got.status().message().find("received a frame of 8 bytes"), std::string::npos)
      << got.status().message();
}

TEST_F(ZynqDriverTest, ScatterGatherDmaIsRejected) {
  const auto m = Bundle("axis");
  Put(mgr_ / "state", "operating\n");
  FakeFabric fabric(true, FakeFabric::Mode::kScatterGather, m, emu_.get(), dev_ / "uio1",
                    dev_ / "udmabuf0");
  ZynqOptions o = Options();
  o.program = false;
  auto d = OpenZynqDriver(bundle_, m, o);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kFailedPrecondition) << d.status().ToString();
  EXPECT_NE(d.status().message().find("scatter-gather"), std::string::npos);
}

TEST_F(ZynqDriverTest, TamperedBitstreamFailsBeforeProgramming) {
  const auto m = Bundle("axilite");
  {
    std::ofstream f(bundle_ + "/fpgaserve.bit", std::ios::binary | std::ios::app);
    f << "x";
  }
  auto d = OpenZynqDriver(bundle_, m, Options());
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("fpgaserve.bit"), std::string::npos) << d.status().ToString();
  EXPECT_NE(d.status().message().find("sha256"), std::string::npos);
  EXPECT_TRUE(fs::is_empty(fw_));
  EXPECT_EQ(Slurp(mgr_ / "firmware"), "");
}

TEST_F(ZynqDriverTest, RejectsBundlesThatAreNotForAZynq) {
  auto m = Bundle("axilite", "icebreaker");
  auto d = OpenZynqDriver(bundle_, m, Options());
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kFailedPrecondition) << d.status().ToString();
  EXPECT_NE(d.status().message().find("'icebreaker'"), std::string::npos);
  EXPECT_NE(d.status().message().find("pynq-z2"), std::string::npos) << d.status().message();

  m = Bundle("stream");
  d = OpenZynqDriver(bundle_, m, Options());
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kFailedPrecondition) << d.status().ToString();
  EXPECT_NE(d.status().message().find("--interface axis"), std::string::npos);

  m = Bundle("axis", "pynq-z2", "needs-vendor-tools");
  d = OpenZynqDriver(bundle_, m, Options());
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kFailedPrecondition) << d.status().ToString();
  EXPECT_NE(d.status().message().find("Vivado must build it"), std::string::npos);
  EXPECT_NE(d.status().message().find(kZynqCommand), std::string::npos) << d.status().message();
  EXPECT_TRUE(fs::is_empty(fw_));
}

TEST_F(ZynqDriverTest, MissingDevicesAreUnavailable) {
  const auto m = Bundle("axilite");
  Put(mgr_ / "state", "operating\n");
  ZynqOptions o = Options();
  o.program = false;
  o.uio_name = "fpgaserve-core";
  auto d = OpenZynqDriver(bundle_, m, o);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kUnavailable) << d.status().ToString();
  EXPECT_NE(d.status().message().find("'fpgaserve-core'"), std::string::npos);
  EXPECT_NE(d.status().message().find("uio1 'axi-dma'"), std::string::npos) << d.status().message();

  // The sysfs entry is there but not its device node.
  o.uio_name.clear();
  fs::remove(dev_ / "uio0");
  d = OpenZynqDriver(bundle_, m, o);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kUnavailable) << d.status().ToString();
  EXPECT_NE(d.status().message().find((dev_ / "uio0").string()), std::string::npos);

  const auto axis = Bundle("axis");
  fs::remove_all(sys_ / "class" / "u-dma-buf");
  d = OpenZynqDriver(bundle_, axis, o);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kUnavailable) << d.status().ToString();
  EXPECT_NE(d.status().message().find("u-dma-buf"), std::string::npos) << d.status().message();
}

TEST_F(ZynqDriverTest, MapsTooSmallForTheBundleAreRejected) {
  const auto m = Bundle("axilite");
  Put(mgr_ / "state", "operating\n");
  AddUio(0, "fpgaserve", 0x100);  // no room for the inputs at 0x100
  ZynqOptions o = Options();
  o.program = false;
  auto d = OpenZynqDriver(bundle_, m, o);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kFailedPrecondition) << d.status().ToString();
  EXPECT_NE(d.status().message().find("0x00000110"), std::string::npos) << d.status().message();

  const auto axis = Bundle("axis");
  Put(sys_ / "class" / "u-dma-buf" / "udmabuf0" / "size", "16\n");
  d = OpenZynqDriver(bundle_, axis, o);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kFailedPrecondition) << d.status().ToString();
  EXPECT_NE(d.status().message().find("udmabuf0"), std::string::npos) << d.status().message();
}

// ---------------------------------------------------------------------------------------------
// ZynqBitToBin on its own.

TEST(ZynqBitToBinTest, DropsTheHeaderAndSwapsEveryWord) {
  const std::vector<std::uint32_t> payload = {0x30008001, 0x00000007, 0x01020304, 0xdeadbeef};
  const std::string bit = BitFile(BigEndianWords(ConfigWords(payload)));
  auto bin = ZynqBitToBin(bit, "b/fpgaserve.bit");
  ASSERT_TRUE(bin.ok()) << bin.status().ToString();
  // Spelled out byte by byte: 8 dummy words, the bus-width words, 2 dummy words, the sync word as
  // 66 55 99 aa, then the payload words reversed.
  const std::string want = std::string(32, '\xff') +
                           std::string("\xbb\x00\x00\x00\x44\x00\x22\x11", 8) +
                           std::string(8, '\xff') + std::string("\x66\x55\x99\xaa", 4) +
                           std::string("\x01\x80\x00\x30\x07\x00\x00\x00", 8) +
                           std::string("\x04\x03\x02\x01\xef\xbe\xad\xde", 8);
  EXPECT_EQ(*bin, want);
  EXPECT_EQ(bin->size(), 4 * (13 + payload.size()));

  // A large one against the independent little-endian serialization.
  const auto words = ConfigWords(RandomWords(3, 100000));
  bin = ZynqBitToBin(BitFile(BigEndianWords(words)), "b/fpgaserve.bit");
  ASSERT_TRUE(bin.ok()) << bin.status().ToString();
  EXPECT_EQ(*bin, SwappedWords(words));
}

TEST(ZynqBitToBinTest, MalformedBitFilesAreOneClearError) {
  const std::string data = BigEndianWords(ConfigWords({0x30008001, 0x00000007}));
  const std::string header = BitHeader();
  std::string bad_magic = BitFile(data);
  bad_magic[3] = '\x00';
  std::string bad_version = BitFile(data);
  bad_version[12] = '\x02';
  const std::size_t field_b = kBitMagic.size() + 2 + BitField('a', kDesign).size();
  std::string unterminated = BitFile(data);
  unterminated[field_b - 1] = 'x';  // field 'a''s NUL
  const std::string misaligned_sync = BigEndianWords({0xffffffff, 0x000000bb, 0x11220044}) +
                                      std::string("\xff\xff\xaa\x99\x55\x66\xff\xff", 8);
  const std::string no_order =
      kBitMagic + std::string("\x00\x01", 2) + BitField('b', "7z020clg400") + BitField('a', "top") +
      BitField('c', "x") + BitField('d', "y") + "e" + Be32(data.size()) + data;
  struct Case {
    std::string name, bit, want;
  } cases[] = {
      {"empty", "", "expected the .bit header 00 09 0f f0"},
      {"a .bin", data, "it starts with ff ff ff ff"},
      {"wrong magic", bad_magic, "expected the .bit header 00 09 0f f0 0f f0 0f f0 0f f0 00"},
      {"magic only", kBitMagic, "expected 00 01"},
      {"wrong 00 01", bad_version, "followed by 00 02; expected 00 01"},
      {"no fields", kBitMagic + std::string("\x00\x01", 2), "expected field 'a'"},
      {"fields out of order", no_order, "expected the key of field 'a'"},
      {"truncated length", header.substr(0, field_b + 2), "within its 2-byte length"},
      {"truncated string", header.substr(0, field_b + 6), "field 'b' (the part)"},
      {"not NUL-terminated", unterminated, "NUL-terminated"},
      {"no 'e'", header, "no field 'e'"},
      {"another key for 'e'", header + "f" + Be32(data.size()) + data, "expected key 'e'"},
      {"truncated 'e' length", header + "e" + Be32(data.size()).substr(0, 2),
       "within its 4-byte length"},
      {"N not a multiple of 4", BitFile(data + "\xff\xff"), "expected a multiple of 4"},
      {"N beyond the file", BitFile(data, data.size() + 8), "only " + std::to_string(data.size())},
      {"N short of the file", BitFile(data, data.size() - 4), "expected the data to end the file"},
      {"no sync word",
       BitFile(BigEndianWords({0xffffffff, 0xffffffff, 0x000000bb, 0x11220044, 0x20000000})),
       "no sync word aa995566"},
      {"misaligned sync word", BitFile(misaligned_sync), "no sync word aa995566"},
      {"empty data", BitFile(""), "no sync word"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    auto bin = ZynqBitToBin(c.bit, "/bundles/x/fpgaserve.bit");
    ASSERT_FALSE(bin.ok());
    EXPECT_EQ(bin.status().code(), StatusCode::kFailedPrecondition) << bin.status().ToString();
    EXPECT_NE(bin.status().message().find("/bundles/x/fpgaserve.bit"), std::string::npos)
        << bin.status().message();
    EXPECT_NE(bin.status().message().find(c.want), std::string::npos) << bin.status().message();
  }
}

TEST(ZynqBitToBinTest, EveryTruncationOrCorruptionIsAnErrorNotACrash) {
  const std::string bit = BitFile(BigEndianWords(ConfigWords(RandomWords(4, 16))));
  ASSERT_TRUE(ZynqBitToBin(bit, "f.bit").ok());
  for (std::size_t n = 0; n < bit.size(); ++n) {
    auto bin = ZynqBitToBin(std::string_view(bit).substr(0, n), "f.bit");
    ASSERT_FALSE(bin.ok()) << "prefix of " << n << " bytes";
    EXPECT_EQ(bin.status().code(), StatusCode::kFailedPrecondition);
  }
  // Every header byte set to 0xff (or, where it is 0xff, to 0x00): an error or, where the byte
  // is a string field's content, the same .bin.
  const std::size_t header = bit.size() - 4 * (13 + 16);
  const auto want = ZynqBitToBin(bit, "f.bit");
  for (std::size_t i = 0; i < header; ++i) {
    std::string mutated = bit;
    mutated[i] = mutated[i] == '\xff' ? '\x00' : '\xff';
    auto bin = ZynqBitToBin(mutated, "f.bit");
    if (bin.ok()) {
      EXPECT_EQ(*bin, *want) << "byte " << i;
    } else {
      EXPECT_EQ(bin.status().code(), StatusCode::kFailedPrecondition) << "byte " << i;
    }
  }
}

}  // namespace
}  // namespace fpgaserve::runtime
