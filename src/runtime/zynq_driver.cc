#include "runtime/zynq_driver.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string_view>
#include <thread>
#include <vector>

#include "boards/board.h"
#include "core/file_io.h"
#include "core/sha256.h"
#include "core/text.h"
#include "hw/wrappers.h"
#include "runtime/axilite_driver.h"
#include "runtime/batch_validation.h"

namespace fpgaserve::runtime {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// Xilinx AXI DMA (PG021) in direct register mode: byte offsets and bits.
constexpr std::uint32_t kMm2sDmacr = 0x00;
constexpr std::uint32_t kMm2sDmasr = 0x04;
constexpr std::uint32_t kMm2sSa = 0x18;
constexpr std::uint32_t kMm2sLength = 0x28;
constexpr std::uint32_t kS2mmDmacr = 0x30;
constexpr std::uint32_t kS2mmDmasr = 0x34;
constexpr std::uint32_t kS2mmDa = 0x48;
constexpr std::uint32_t kS2mmLength = 0x58;
constexpr std::uint32_t kDmaRegisterBytes = kS2mmLength + 4;

constexpr std::uint32_t kDmacrRun = 1u << 0;
constexpr std::uint32_t kDmacrReset = 1u << 2;
constexpr std::uint32_t kDmasrHalted = 1u << 0;
constexpr std::uint32_t kDmasrIdle = 1u << 1;
constexpr std::uint32_t kDmasrSgIncluded = 1u << 3;
constexpr std::uint32_t kDmasrErrors = 0x70;  // DMAIntErr, DMASlvErr, DMADecErr
constexpr std::uint32_t kDmasrIoc = 1u << 12;
constexpr std::uint32_t kDmasrErrIrq = 1u << 14;

// Largest UIO map or DMA buffer the driver maps (the Zynq's AXI GP windows are 1 GiB).
constexpr std::uint64_t kMaxMapBytes = 1ull << 30;
// Largest sysfs attribute read (sysfs attributes are at most one page).
constexpr std::size_t kMaxAttributeBytes = 4096;

std::string Hex(std::uint64_t v, int digits = 8) {
  char b[24];
  std::snprintf(b, sizeof b, "0x%0*llx", digits, static_cast<unsigned long long>(v));
  return b;
}

std::uint64_t AlignUp(std::uint64_t v, std::uint64_t a) { return (v + a - 1) / a * a; }

// An OS error on `path`: no permission is PERMISSION_DENIED (the driver runs as root on a board),
// anything else UNAVAILABLE.
Status PathError(const std::string& action, const std::string& path, int err,
                 const std::string& hint = "") {
  const std::string what = "zynq: cannot " + action + " " + path + ": " + std::strerror(err);
  if (err == EACCES || err == EPERM || err == EROFS) {
    return PermissionDenied(what + "; the zynq driver needs root (or write access to " + path +
                            ")");
  }
  return Unavailable(what + hint);
}

// Reads a sysfs attribute (st_size of a sysfs file is a page, not its length: read to EOF).
Result<std::string> ReadAttribute(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return PathError("read", path, errno);
  std::string text;
  char buf[512];
  while (text.size() <= kMaxAttributeBytes) {
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      close(fd);
      return PathError("read", path, err);
    }
    if (n == 0) break;
    text.append(buf, static_cast<std::size_t>(n));
  }
  close(fd);
  if (text.size() > kMaxAttributeBytes) {
    return FailedPrecondition("zynq: " + path + " holds more than " +
                              std::to_string(kMaxAttributeBytes) + " bytes; expected a sysfs " +
                              "attribute");
  }
  return std::string(Trim(text));
}

// Writes a sysfs attribute in one write() (sysfs takes one store per write).
Status WriteAttribute(const std::string& path, const std::string& text) {
  const int fd = open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
  if (fd < 0) return PathError("write", path, errno);
  ssize_t n;
  do {
    n = write(fd, text.data(), text.size());
  } while (n < 0 && errno == EINTR);
  const int err = errno;
  close(fd);
  if (n < 0) return PathError("write " + Quote(text) + " to", path, err);
  if (static_cast<std::size_t>(n) != text.size()) {
    return Unavailable("zynq: short write of " + Quote(text) + " to " + path + " (" +
                       std::to_string(n) + " of " + std::to_string(text.size()) + " bytes)");
  }
  return Status::Ok();
}

// A number in a sysfs attribute: "0x..." hex, otherwise hex when `bare_hex` else decimal.
Result<std::uint64_t> ParseNumber(const std::string& path, const std::string& text, bool bare_hex) {
  std::string_view s = text;
  int base = bare_hex ? 16 : 10;
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    s.remove_prefix(2);
    base = 16;
  }
  std::uint64_t v = 0;
  bool ok = !s.empty();
  for (char c : s) {
    int d = -1;
    if (c >= '0' && c <= '9') d = c - '0';
    if (base == 16 && c >= 'a' && c <= 'f') d = c - 'a' + 10;
    if (base == 16 && c >= 'A' && c <= 'F') d = c - 'A' + 10;
    if (d < 0 || v > (UINT64_MAX - static_cast<std::uint64_t>(d)) / static_cast<unsigned>(base)) {
      ok = false;
      break;
    }
    v = v * static_cast<unsigned>(base) + static_cast<std::uint64_t>(d);
  }
  if (!ok) {
    return FailedPrecondition(
        "zynq: " + path + " holds " + Quote(text) + "; expected " +
        (base == 16 ? "a hex number such as 0x00010000" : "a decimal number"));
  }
  return v;
}

// Orders the CPU's earlier memory writes before a later device register write (and the device's
// writes before later reads): a full barrier that the fabric and the DMA observe too.
inline void DeviceBarrier() {
#if defined(__arm__) || defined(__aarch64__)
  asm volatile("dsb sy" ::: "memory");
#else
  std::atomic_thread_fence(std::memory_order_seq_cst);
#endif
}

// A shared mapping of a device (a UIO register window or a DMA buffer); 32-bit volatile accesses.
class Mapping {
 public:
  Mapping(int fd, void* base, std::size_t length, std::size_t offset, std::uint64_t size,
          std::string path)
      : fd_(fd),
        base_(base),
        length_(length),
        offset_(offset),
        size_(size),
        path_(std::move(path)) {}
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping() {
    munmap(base_, length_);
    close(fd_);
  }

  // Maps `size` bytes that start `offset` bytes into the device's first page. `sync`: O_SYNC, which
  // makes u-dma-buf map its buffer uncached.
  static Result<std::unique_ptr<Mapping>> Open(const std::string& path, std::uint64_t size,
                                               std::uint64_t offset, bool sync,
                                               const std::string& hint) {
    const int fd = open(path.c_str(), O_RDWR | O_CLOEXEC | (sync ? O_SYNC : 0));
    if (fd < 0) return PathError("open", path, errno, hint);
    const std::size_t length = static_cast<std::size_t>(offset + size);
    void* base = mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED) {
      const int err = errno;
      close(fd);
      return PathError("map " + std::to_string(length) + " bytes of", path, err, hint);
    }
    return std::make_unique<Mapping>(fd, base, length, static_cast<std::size_t>(offset), size,
                                     path);
  }

  std::uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }

  std::uint32_t Read(std::uint64_t at) const { return *Word(at); }
  void Write(std::uint64_t at, std::uint32_t v) { *Word(at) = v; }

 private:
  volatile std::uint32_t* Word(std::uint64_t at) const {
    return reinterpret_cast<volatile std::uint32_t*>(static_cast<char*>(base_) + offset_ + at);
  }

  int fd_;
  void* base_;
  std::size_t length_;
  std::size_t offset_;
  std::uint64_t size_;
  std::string path_;
};

// Calls `stop` until it returns true or `timeout` passes (then once more); spins for the first
// 200 us, then naps between calls so a stuck device does not hold a core.
template <typename F>
bool PollUntil(F&& stop, std::chrono::milliseconds timeout,
               std::chrono::microseconds nap = std::chrono::microseconds(50)) {
  const auto start = Clock::now();
  while (true) {
    if (stop()) return true;
    const auto waited = Clock::now() - start;
    if (waited >= timeout) return stop();
    if (waited > std::chrono::microseconds(200)) std::this_thread::sleep_for(nap);
  }
}

// A raw element as the 32-bit word the wrappers take: sign-extended (two's complement) or
// zero-extended; ValidateInputBatch has checked that it fits the format.
std::uint32_t ToWord(std::int64_t raw) { return static_cast<std::uint32_t>(raw); }

Status MalformedOutput(const std::string& where, std::uint32_t w, const numeric::NumberFormat& f) {
  return Internal("zynq: " + where + " holds " + Hex(w) + ", not a " + f.ToString() + " element " +
                  (f.raw_is_signed() ? "sign" : "zero") + "-extended to 32 bits (other firmware?)");
}

std::string UioHint() {
  return " (the device tree node needs compatible = \"generic-uio\" and the kernel "
         "uio_pdrv_genirq.of_id=generic-uio)";
}

struct UioDevice {
  std::string entry;  // "uio0"
  std::string name;
  std::uint64_t size = 0;
  std::uint64_t offset = 0;  // of the region within its first page
};

Result<UioDevice> FindUio(const ZynqOptions& o, const std::string& name) {
  const fs::path dir = fs::path(o.sysfs_root) / "class" / "uio";
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return Unavailable("zynq: no UIO devices: " + dir.string() +
                       " does not exist; the kernel needs CONFIG_UIO and CONFIG_UIO_PDRV_GENIRQ" +
                       UioHint());
  }
  std::vector<std::string> seen, matches;
  for (auto it = fs::directory_iterator(dir, ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    const std::string entry = it->path().filename().string();
    if (entry.size() < 4 || entry.rfind("uio", 0) != 0 ||
        entry.find_first_not_of("0123456789", 3) != std::string::npos) {
      continue;
    }
    auto n = ReadAttribute((it->path() / "name").string());
    if (!n.ok()) continue;  // a device going away while we look
    seen.push_back(entry + " " + Quote(*n));
    if (*n == name) matches.push_back(entry);
  }
  if (ec) return Unavailable("zynq: cannot list " + dir.string() + ": " + ec.message());
  std::sort(seen.begin(), seen.end());
  std::sort(matches.begin(), matches.end());
  if (matches.empty()) {
    return Unavailable("zynq: no UIO device named " + Quote(name) + " under " + dir.string() +
                       " (found: " + (seen.empty() ? "none" : Join(seen, ", ")) +
                       "); give the device tree node that name or set the UIO name option" +
                       UioHint());
  }
  if (matches.size() > 1) {
    return FailedPrecondition("zynq: " + std::to_string(matches.size()) +
                              " UIO devices are named " + Quote(name) + " (" + Join(matches, ", ") +
                              "); expected exactly one: rename the device tree nodes");
  }
  UioDevice d;
  d.entry = matches[0];
  d.name = name;
  const fs::path map0 = dir / d.entry / "maps" / "map0";
  ASSIGN_OR_RETURN(std::string size_text, ReadAttribute((map0 / "size").string()));
  ASSIGN_OR_RETURN(d.size, ParseNumber((map0 / "size").string(), size_text, true));
  if (fs::exists(map0 / "offset", ec)) {
    ASSIGN_OR_RETURN(std::string off_text, ReadAttribute((map0 / "offset").string()));
    ASSIGN_OR_RETURN(d.offset, ParseNumber((map0 / "offset").string(), off_text, true));
  }
  const auto page = static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
  if (d.size == 0 || d.size > kMaxMapBytes || d.offset >= page) {
    return FailedPrecondition("zynq: " + map0.string() + ": size " + Hex(d.size) + ", offset " +
                              Hex(d.offset) + "; expected a size of 1 byte to 1 GiB and an " +
                              "offset within one page");
  }
  return d;
}

// ---------------------------------------------------------------------------------------------
// The bundle and programming.

Status CheckZynqBundle(const firmware::BundleMetadata& m, const ZynqOptions& o) {
  std::vector<std::string> zynq_boards;
  for (const auto& b : boards::Catalog()) {
    if (b.family == "zynq7000") zynq_boards.push_back(b.id);
  }
  const std::string expected = "the zynq driver needs a bundle compiled for a Zynq-7000 board (" +
                               Join(zynq_boards, ", ") + ")";
  auto board = boards::FindBoard(m.board);
  if (!board.ok()) {
    return FailedPrecondition("zynq: the bundle is for board " + Quote(m.board) +
                              ", not in the board catalog; " + expected);
  }
  if (board->family != "zynq7000") {
    return FailedPrecondition("zynq: the bundle is for board " + Quote(m.board) + " (family " +
                              board->family + "); " + expected);
  }
  if (m.interface != "axilite" && m.interface != "axis") {
    return FailedPrecondition("zynq: the bundle's interface is " + Quote(m.interface) +
                              "; the zynq driver reaches the core through AXI: recompile with "
                              "--interface axis (AXI DMA) or --interface axilite");
  }
  if (m.bitstream.status == "needs-vendor-tools") {
    return FailedPrecondition(
        "zynq: the bundle's bitstream is not built (status 'needs-vendor-tools'): Vivado must "
        "build it first; in the bundle directory run: " +
        (m.bitstream.command.empty() ? std::string("vivado -mode batch -source vivado/build.tcl")
                                     : m.bitstream.command));
  }
  if (m.bitstream.status != "built" || m.bitstream.path.empty()) {
    return FailedPrecondition("zynq: the bundle has no built bitstream (status " +
                              Quote(m.bitstream.status) + ", path " + Quote(m.bitstream.path) +
                              "); expected status 'built' with the bitstream's path");
  }
  if (m.id.size() < 16 || m.id.find_first_not_of("0123456789abcdef") != std::string::npos) {
    return FailedPrecondition("zynq: the bundle id " + Quote(m.id) +
                              " is not a content address; expected 64 lowercase hex digits");
  }
  constexpr std::int64_t kMaxElements = 1 << 20;
  if (m.n_inputs < 1 || m.n_outputs < 1 || m.n_inputs > kMaxElements ||
      m.n_outputs > kMaxElements) {
    return FailedPrecondition("zynq: the bundle's n_inputs " + std::to_string(m.n_inputs) +
                              " / n_outputs " + std::to_string(m.n_outputs) + "; expected 1.." +
                              std::to_string(kMaxElements));
  }
  for (const auto* f : {&m.input_format, &m.output_format}) {
    if (f->width() < 1 || f->width() > 32) {
      return FailedPrecondition("zynq: the bundle's element format " + f->ToString() + " is " +
                                std::to_string(f->width()) +
                                " bits wide; the AXI wrappers carry elements of 1..32 bits");
    }
  }
  if (m.interface == "axis") {
    const std::uint64_t in_bytes = 4 * static_cast<std::uint64_t>(m.n_inputs);
    const std::uint64_t out_bytes = 4 * static_cast<std::uint64_t>(m.n_outputs + 1);
    if (in_bytes > o.dma_max_transfer_bytes || out_bytes > o.dma_max_transfer_bytes) {
      return FailedPrecondition("zynq: one row is " + std::to_string(in_bytes) + " bytes in and " +
                                std::to_string(out_bytes) + " bytes out; the DMA takes at most " +
                                std::to_string(o.dma_max_transfer_bytes) + " bytes per transfer");
    }
  }
  return Status::Ok();
}

// A Xilinx .bit file starts with this field: a 16-bit length (9) and 9 bytes of magic.
constexpr unsigned char kBitMagic[] = {0x00, 0x09, 0x0f, 0xf0, 0x0f, 0xf0,
                                       0x0f, 0xf0, 0x0f, 0xf0, 0x00};
// The sync word that starts configuration, as it appears in the .bit's configuration data.
constexpr std::uint32_t kSyncWord = 0xaa995566;

bool StartsWithBitMagic(std::string_view bits) {
  return bits.size() >= sizeof kBitMagic &&
         std::memcmp(bits.data(), kBitMagic, sizeof kBitMagic) == 0;
}

// The bundle's bitstream is a .bit to convert: named *.bit, or (whatever its name) starting with
// the .bit header, which a raw .bin (dummy words ffffffff first) never does.
bool IsBitFile(const std::string& path, std::string_view bits) {
  std::string ext = fs::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext == ".bit" || StartsWithBitMagic(bits);
}

// The 32-bit words of a .bin for the Zynq FPGA Manager: does the (byte-swapped) sync word appear
// at a word boundary, as the kernel checks before a full reconfiguration?
bool HasSwappedSyncWord(std::string_view bin) {
  for (std::size_t i = 0; i + 4 <= bin.size(); i += 4) {
    if (static_cast<unsigned char>(bin[i]) == (kSyncWord & 0xff) &&
        static_cast<unsigned char>(bin[i + 1]) == ((kSyncWord >> 8) & 0xff) &&
        static_cast<unsigned char>(bin[i + 2]) == ((kSyncWord >> 16) & 0xff) &&
        static_cast<unsigned char>(bin[i + 3]) == (kSyncWord >> 24)) {
      return true;
    }
  }
  return false;
}

std::string ManagerDir(const ZynqOptions& o) {
  return (fs::path(o.sysfs_root) / "class" / "fpga_manager" / o.manager).string();
}

// Copies the bitstream into the firmware directory as `name` (a temp file renamed into place, so
// the manager never reads half a file).
Status InstallFirmware(const std::string& bits, const ZynqOptions& o, const std::string& name) {
  std::error_code ec;
  if (!fs::is_directory(o.firmware_dir, ec)) {
    return Unavailable("zynq: the firmware directory " + o.firmware_dir +
                       " does not exist; the FPGA Manager loads images from there "
                       "(set the firmware directory option to the kernel's firmware path)");
  }
  const std::string path = (fs::path(o.firmware_dir) / name).string();
  const std::string tmp =
      (fs::path(o.firmware_dir) / ("." + name + "." + std::to_string(getpid()) + ".tmp")).string();
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    const int err = errno;
    if (err == EACCES || err == EPERM || err == EROFS) {
      return PermissionDenied(
          "zynq: cannot write the bitstream into " + o.firmware_dir + ": " + std::strerror(err) +
          "; programming the FPGA needs root (or write access to " + o.firmware_dir + ")");
    }
    return PathError("create", tmp, err);
  }
  std::size_t done = 0;
  int err = 0;
  while (done < bits.size()) {
    const ssize_t n = write(fd, bits.data() + done, bits.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      err = n < 0 ? errno : EIO;
      break;
    }
    done += static_cast<std::size_t>(n);
  }
  if (err == 0 && fsync(fd) != 0) err = errno;
  close(fd);
  if (err == 0 && rename(tmp.c_str(), path.c_str()) != 0) err = errno;
  if (err != 0) {
    unlink(tmp.c_str());
    return PathError("write the bitstream to", path, err);
  }
  return Status::Ok();
}

Status Program(const std::string& bundle_dir, const firmware::BundleMetadata& m,
               const ZynqOptions& o) {
  // The bytes that go to the fabric come from the bytes whose sha256 is checked.
  const std::string bit_path = (fs::path(bundle_dir) / m.bitstream.path).string();
  ASSIGN_OR_RETURN(std::string bits, ReadFile(bit_path, kMaxMapBytes));
  for (const auto& f : m.files) {
    if (f.path == m.bitstream.path && Sha256Hex(bits) != f.sha256) {
      return InvalidArgument(bit_path + ": changed while it was read (sha256 differs from " +
                             f.sha256 + " recorded in metadata.json)");
    }
  }
  // The Zynq FPGA Manager loads a .bin: a .bit from the flow is converted, a .bin passed as is.
  const bool converted = IsBitFile(m.bitstream.path, bits);
  if (converted) {
    ASSIGN_OR_RETURN(bits, ZynqBitToBin(bits, bit_path));
  }

  const std::string mgr = ManagerDir(o);
  std::error_code ec;
  if (!fs::is_directory(mgr, ec)) {
    return Unavailable("zynq: no FPGA Manager at " + mgr +
                       "; the kernel needs CONFIG_FPGA_MGR and the Zynq FPGA Manager "
                       "(CONFIG_FPGA_MGR_ZYNQ_FPGA), or set the manager option to the right "
                       "fpga_manager entry");
  }
  const std::string firmware_attr = mgr + "/firmware";
  if (!fs::exists(firmware_attr, ec)) {
    return Unavailable("zynq: " + firmware_attr +
                       " does not exist: this kernel's FPGA Manager cannot load an image from "
                       "sysfs (Xilinx's linux-xlnx kernel, as in PYNQ and PetaLinux, has it)");
  }
  const std::string name = "fpgaserve-" + m.id.substr(0, 16) + ".bin";
  RETURN_IF_ERROR(InstallFirmware(bits, o, name));

  const std::string flags_attr = mgr + "/flags";
  if (o.write_flags && fs::exists(flags_attr, ec)) {
    char flags[16];
    std::snprintf(flags, sizeof flags, "%x", o.flags);
    RETURN_IF_ERROR(WriteAttribute(flags_attr, flags));
  }
  const std::string state_attr = mgr + "/state";
  // A .bin passed through that the kernel would not take for a full reconfiguration.
  const std::string bin_hint =
      !converted && !HasSwappedSyncWord(bits)
          ? "; " + m.bitstream.path +
                " holds no sync word in the byte order the Zynq FPGA Manager expects (66 55 99 "
                "aa at a 32-bit boundary): expected a Vivado .bit, which the driver converts, "
                "or a .bin as bootgen -arch zynq -process_bitstream bin writes it"
          : "";
  // The kernel programs inside this write and fails it when programming fails.
  Status written = WriteAttribute(firmware_attr, name);
  if (!written.ok()) {
    if (written.code() == StatusCode::kPermissionDenied) return written;
    auto state = ReadAttribute(state_attr);
    return Internal("zynq: the FPGA Manager at " + mgr + " failed to load " + name + " (" +
                    written.message() + "); state " +
                    (state.ok() ? Quote(*state) : std::string("unreadable")) + bin_hint);
  }
  std::string state;
  Status read_error = Status::Ok();
  const bool settled = PollUntil(
      [&] {
        auto s = ReadAttribute(state_attr);
        if (!s.ok()) {
          read_error = s.status();
          return true;
        }
        state = *s;
        return state == "operating" || state.find("error") != std::string::npos;
      },
      o.program_timeout, std::chrono::milliseconds(1));
  RETURN_IF_ERROR(read_error);
  if (state == "operating") return Status::Ok();
  if (!settled) {
    return DeadlineExceeded("zynq: the FPGA Manager at " + mgr + " did not reach 'operating' " +
                            "within " + std::to_string(o.program_timeout.count()) +
                            " ms after loading " + name + "; state " + Quote(state));
  }
  return Internal("zynq: the FPGA Manager at " + mgr + " failed to load " + name + ": state " +
                  Quote(state) + bin_hint);
}

// Without programming: the manager, when there is one, must report a programmed fabric.
Status CheckProgrammed(const ZynqOptions& o) {
  const std::string state_attr = ManagerDir(o) + "/state";
  std::error_code ec;
  if (!fs::exists(state_attr, ec)) return Status::Ok();
  ASSIGN_OR_RETURN(std::string state, ReadAttribute(state_attr));
  if (state != "operating") {
    return FailedPrecondition("zynq: the FPGA is not programmed (" + state_attr + " reads " +
                              Quote(state) +
                              ", expected 'operating'); touching the fabric's "
                              "registers now would hang the bus: program it first");
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// axilite: fpgaserve_axilite's register map through UIO.

// The core's registers in the UIO mapping, for the shared AXI4-Lite protocol (axilite_driver.h).
// A barrier after every write orders it before the next access (the start after the inputs).
class UioRegisterPort : public axilite::RegisterPort {
 public:
  UioRegisterPort(std::unique_ptr<Mapping> regs, std::string uio) : regs_(std::move(regs)), uio_(std::move(uio)) {}
  Result<std::uint32_t> Read(std::uint32_t offset) override { return regs_->Read(offset); }
  Status Write(std::uint32_t offset, std::uint32_t value) override {
    regs_->Write(offset, value);
    DeviceBarrier();
    return Status::Ok();
  }
  std::string Name() const override { return regs_->path() + " (" + uio_ + ")"; }

 private:
  std::unique_ptr<Mapping> regs_;
  std::string uio_;
};

Result<std::unique_ptr<BoardDriver>> OpenAxiLite(const firmware::BundleMetadata& m,
                                                 std::unique_ptr<Mapping> regs,
                                                 const std::string& uio, const ZynqOptions& o) {
  const std::uint64_t inputs_end = hw::kInputBase + 4 * static_cast<std::uint64_t>(m.n_inputs);
  if (regs->size() < inputs_end) {
    return FailedPrecondition("zynq: " + regs->path() + " (" + uio + ") maps " + Hex(regs->size()) +
                              " bytes; the bundle's register map needs at " + "least " +
                              Hex(inputs_end) + " (inputs at 0x100.." + Hex(inputs_end - 1) + ")");
  }
  const std::uint64_t window = axilite::RegisterWindowBytes(m.n_inputs, m.n_outputs);
  if (regs->size() < window) {
    return FailedPrecondition("zynq: " + regs->path() + " (" + uio + ") maps " + Hex(regs->size()) +
                              " bytes; the bundle's register map needs " + Hex(window) +
                              " (through its last output register)");
  }
  axilite::Timing timing;
  timing.row_timeout = o.infer_timeout;
  auto driver = axilite::OpenRegisterDriver("zynq", m, std::make_unique<UioRegisterPort>(std::move(regs), uio), timing);
  if (!driver.ok() && driver.status().code() == StatusCode::kFailedPrecondition && !o.program) {
    return driver.status().WithContext("the fabric was not programmed by this driver (program = false)");
  }
  return driver;
}

// ---------------------------------------------------------------------------------------------
// axis: an AXI DMA in direct register mode between a u-dma-buf buffer and fpgaserve_axis.

std::string DmasrBits(std::uint32_t sr) {
  std::vector<std::string> bits;
  if (sr & kDmasrHalted) bits.push_back("Halted");
  if (sr & kDmasrIdle) bits.push_back("Idle");
  if (sr & 0x10u) bits.push_back("DMAIntErr");
  if (sr & 0x20u) bits.push_back("DMASlvErr");
  if (sr & 0x40u) bits.push_back("DMADecErr");
  if (sr & kDmasrIoc) bits.push_back("IOC");
  return bits.empty() ? "none" : Join(bits, "|");
}

class ZynqAxisDriver : public BoardDriver {
 public:
  ZynqAxisDriver(firmware::BundleMetadata m, std::unique_ptr<Mapping> regs, std::string uio,
                 std::unique_ptr<Mapping> buffer, std::uint32_t phys,
                 std::chrono::milliseconds timeout)
      : m_(std::move(m)),
        regs_(std::move(regs)),
        uio_(std::move(uio)),
        buf_(std::move(buffer)),
        phys_(phys),
        out_offset_(
            static_cast<std::uint32_t>(AlignUp(4 * static_cast<std::uint64_t>(m_.n_inputs), 64))),
        timeout_(timeout) {}

  std::string kind() const override { return "zynq"; }

  // Resets the DMA (both channels) and starts them; the DMA must be in direct register mode.
  Status Reset() {
    regs_->Write(kMm2sDmacr, kDmacrReset);
    std::uint32_t mm2s = 0, s2mm = 0;
    if (!PollUntil(
            [&] {
              mm2s = regs_->Read(kMm2sDmacr);
              s2mm = regs_->Read(kS2mmDmacr);
              return ((mm2s | s2mm) & kDmacrReset) == 0;
            },
            timeout_)) {
      return DeadlineExceeded("zynq: the AXI DMA behind " + Device() + " did not leave reset " +
                              "within " + std::to_string(timeout_.count()) + " ms (MM2S_DMACR " +
                              Hex(mm2s) + ", S2MM_DMACR " + Hex(s2mm) +
                              "); is this UIO device the AXI DMA?");
    }
    regs_->Write(kS2mmDmacr, kDmacrRun);
    regs_->Write(kMm2sDmacr, kDmacrRun);
    if (!PollUntil(
            [&] {
              mm2s = regs_->Read(kMm2sDmasr);
              s2mm = regs_->Read(kS2mmDmasr);
              return ((mm2s | s2mm) & kDmasrHalted) == 0;
            },
            timeout_)) {
      return DeadlineExceeded("zynq: the AXI DMA behind " + Device() + " stays halted after " +
                              "setting run (MM2S_DMASR " + Hex(mm2s) + ", S2MM_DMASR " + Hex(s2mm) +
                              ")");
    }
    if (((mm2s | s2mm) & kDmasrSgIncluded) != 0) {
      return FailedPrecondition("zynq: the AXI DMA behind " + Device() +
                                " has scatter-gather (DMASR bit 3); the driver needs direct "
                                "register mode (c_include_sg 0, as vivado/build.tcl builds it)");
    }
    needs_reset_ = false;
    return Status::Ok();
  }

  Result<BatchResult> Infer(const numeric::RawBatch& inputs) override {
    RETURN_IF_ERROR(ValidateInputBatch(inputs, m_));
    std::lock_guard<std::mutex> lock(mu_);
    const std::size_t n_in = inputs.features;
    const auto n_out = static_cast<std::size_t>(m_.n_outputs);
    const auto in_bytes = static_cast<std::uint32_t>(4 * n_in);
    const auto frame_bytes = static_cast<std::uint32_t>(4 * (n_out + 1));
    BatchResult r;
    r.outputs.rows = inputs.rows;
    r.outputs.features = n_out;
    r.outputs.values.reserve(inputs.rows * n_out);
    r.latency_cycles.reserve(inputs.rows);
    if (inputs.rows == 0) return r;
    if (needs_reset_) RETURN_IF_ERROR(Reset());  // after an error or a timeout
    for (std::size_t row = 0; row < inputs.rows; ++row) {
      for (std::size_t i = 0; i < n_in; ++i) {
        buf_->Write(4 * i, ToWord(inputs.values[row * n_in + i]));
      }
      DeviceBarrier();
      // One transfer each way: S2MM first, so the core's output is never held up.
      regs_->Write(kS2mmDmasr, kDmasrIoc | kDmasrErrIrq);  // write-1-to-clear
      regs_->Write(kMm2sDmasr, kDmasrIoc | kDmasrErrIrq);
      regs_->Write(kS2mmDa, phys_ + out_offset_);
      regs_->Write(kS2mmLength, frame_bytes);
      regs_->Write(kMm2sSa, phys_);
      regs_->Write(kMm2sLength, in_bytes);
      std::uint32_t s2mm = 0, mm2s = 0;
      auto complete = [](std::uint32_t sr) {
        return (sr & (kDmasrIdle | kDmasrIoc)) == (kDmasrIdle | kDmasrIoc);
      };
      const bool finished = PollUntil(
          [&] {
            s2mm = regs_->Read(kS2mmDmasr);
            mm2s = regs_->Read(kMm2sDmasr);
            return ((s2mm | mm2s) & (kDmasrErrors | kDmasrHalted)) != 0 ||
                   (complete(s2mm) && complete(mm2s));
          },
          timeout_);
      const std::string at =
          " (row " + std::to_string(row) + " of " + std::to_string(inputs.rows) + ")";
      if (((s2mm | mm2s) & (kDmasrErrors | kDmasrHalted)) != 0) {
        needs_reset_ = true;
        return Internal("zynq: the AXI DMA behind " + Device() + " reports MM2S_DMASR " +
                        Hex(mm2s) + " (" + DmasrBits(mm2s) + "), S2MM_DMASR " + Hex(s2mm) + " (" +
                        DmasrBits(s2mm) + ")" + at);
      }
      if (!finished) {
        needs_reset_ = true;
        return DeadlineExceeded("zynq: the AXI DMA behind " + Device() + " did not complete " +
                                "within " + std::to_string(timeout_.count()) + " ms: MM2S_DMASR " +
                                "(0x04) reads " + Hex(mm2s) + ", S2MM_DMASR (0x34) " + Hex(s2mm) +
                                " (expected Idle and IOC, bits 1 and 12)" + at +
                                "; is the core in the fabric and the stream connected?");
      }
      DeviceBarrier();
      // In direct register mode S2MM_LENGTH reads back the bytes received up to TLAST.
      const std::uint32_t received = regs_->Read(kS2mmLength);
      if (received != frame_bytes) {
        needs_reset_ = true;
        return Internal("zynq: the AXI DMA behind " + Device() + " received a frame of " +
                        std::to_string(received) + " bytes (S2MM_LENGTH); the bundle's frame is " +
                        std::to_string(frame_bytes) + " (" + std::to_string(n_out) +
                        " outputs and the cycle word; other firmware?)" + at);
      }
      for (std::size_t j = 0; j < n_out; ++j) {
        const std::uint32_t w = buf_->Read(out_offset_ + 4 * j);
        numeric::RawValue v = 0;
        if (!axilite::DecodeOutputWord(w, m_.output_format, &v)) {
          return MalformedOutput("output word " + std::to_string(j) + " from " + Device() + at, w,
                                 m_.output_format);
        }
        r.outputs.values.push_back(v);
      }
      const std::uint64_t cycles = buf_->Read(out_offset_ + 4 * n_out);  // saturated to 32 bits
      r.latency_cycles.push_back(cycles);
      r.total_cycles += cycles;
    }
    return r;
  }

 private:
  std::string Device() const { return regs_->path() + " (" + uio_ + ")"; }

  firmware::BundleMetadata m_;
  std::unique_ptr<Mapping> regs_;
  std::string uio_;
  std::unique_ptr<Mapping> buf_;
  std::uint32_t phys_;
  std::uint32_t out_offset_;  // of the output frame in the buffer; the input frame is at 0
  std::chrono::milliseconds timeout_;
  bool needs_reset_ = true;
  std::mutex mu_;
};

Result<std::unique_ptr<BoardDriver>> OpenAxis(const firmware::BundleMetadata& m,
                                              std::unique_ptr<Mapping> regs, const std::string& uio,
                                              const ZynqOptions& o) {
  if (regs->size() < kDmaRegisterBytes) {
    return FailedPrecondition("zynq: " + regs->path() + " (" + uio + ") maps " + Hex(regs->size()) +
                              " bytes; the AXI DMA's registers need " + Hex(kDmaRegisterBytes));
  }
  const fs::path sys = fs::path(o.sysfs_root) / "class" / "u-dma-buf" / o.dma_buffer;
  const std::string hint =
      "; the axis interface needs a u-dma-buf DMA buffer (e.g. modprobe u-dma-buf "
      "udmabuf0=1048576) or set the DMA buffer option";
  std::error_code ec;
  if (!fs::is_directory(sys, ec)) {
    return Unavailable("zynq: no DMA buffer: " + sys.string() + " does not exist" + hint);
  }
  ASSIGN_OR_RETURN(std::string phys_text, ReadAttribute((sys / "phys_addr").string()));
  ASSIGN_OR_RETURN(std::uint64_t phys, ParseNumber((sys / "phys_addr").string(), phys_text, true));
  ASSIGN_OR_RETURN(std::string size_text, ReadAttribute((sys / "size").string()));
  ASSIGN_OR_RETURN(std::uint64_t size, ParseNumber((sys / "size").string(), size_text, false));
  const std::uint64_t need = AlignUp(4 * static_cast<std::uint64_t>(m.n_inputs), 64) +
                             4 * static_cast<std::uint64_t>(m.n_outputs + 1);
  if (size < need || size > kMaxMapBytes) {
    return FailedPrecondition("zynq: the DMA buffer " + o.dma_buffer + " holds " +
                              std::to_string(size) + " bytes; one row needs " +
                              std::to_string(need) + " (at most 1 GiB is mapped)");
  }
  if (phys % 64 != 0 || phys + size > (1ull << 32)) {
    return FailedPrecondition("zynq: the DMA buffer " + o.dma_buffer + " is at physical address " +
                              Hex(phys) + " (" + std::to_string(size) + " bytes); the AXI DMA " +
                              "needs a 64-byte aligned buffer in the low 4 GiB");
  }
  const std::string dev = (fs::path(o.dev_root) / o.dma_buffer).string();
  ASSIGN_OR_RETURN(std::unique_ptr<Mapping> buffer, Mapping::Open(dev, size, 0, true, hint));
  auto driver = std::make_unique<ZynqAxisDriver>(m, std::move(regs), uio, std::move(buffer),
                                                 static_cast<std::uint32_t>(phys), o.infer_timeout);
  RETURN_IF_ERROR(driver->Reset());
  return std::unique_ptr<BoardDriver>(std::move(driver));
}

// The first bytes of `bits` in hex ("00 09 0f ..."), for an error message.
std::string HexBytes(std::string_view bits, std::size_t max) {
  if (bits.empty()) return "nothing (the file is empty)";
  std::string out;
  for (std::size_t i = 0; i < bits.size() && i < max; ++i) {
    char b[4];
    std::snprintf(b, sizeof b, "%s%02x", i == 0 ? "" : " ", static_cast<unsigned char>(bits[i]));
    out += b;
  }
  if (bits.size() > max) out += " ...";
  return out;
}

}  // namespace

Result<std::string> ZynqBitToBin(std::string_view bit, const std::string& origin) {
  auto bad = [&](const std::string& why) {
    return FailedPrecondition(
        "zynq: cannot convert " + origin +
        " from a Xilinx .bit to the .bin the Zynq FPGA Manager loads: " + why);
  };
  const std::size_t size = bit.size();
  auto byte = [&](std::size_t at) { return static_cast<unsigned char>(bit[at]); };
  auto big_endian = [&](std::size_t at, int n) {
    std::uint32_t v = 0;
    for (int i = 0; i < n; ++i) v = (v << 8) | byte(at + static_cast<std::size_t>(i));
    return v;
  };
  auto key_at = [&](std::size_t at) {
    const unsigned char c = byte(at);
    return Hex(c, 2) + (c >= 0x20 && c < 0x7f ? " ('" + std::string(1, static_cast<char>(c)) + "')"
                                              : std::string());
  };
  if (!StartsWithBitMagic(bit)) {
    return bad("it starts with " + HexBytes(bit, sizeof kBitMagic) +
               "; expected the .bit header 00 09 0f f0 0f f0 0f f0 0f f0 00");
  }
  std::size_t at = sizeof kBitMagic;
  if (size < at + 2) {
    return bad("the file ends within the header (" + std::to_string(size) +
               " bytes); expected 00 01 after the magic");
  }
  if (big_endian(at, 2) != 1) {
    return bad("the header's magic is followed by " + HexBytes(bit.substr(at, 2), 2) +
               "; expected 00 01");
  }
  at += 2;

  // The header's string fields, each a key byte, a 16-bit length and a NUL-terminated string.
  static constexpr struct {
    char key;
    const char* what;
  } kFields[] = {{'a', "the design name"}, {'b', "the part"}, {'c', "the date"}, {'d', "the time"}};
  for (const auto& f : kFields) {
    const std::string field = "field '" + std::string(1, f.key) + "' (" + f.what + ")";
    if (at >= size) {
      return bad("the file ends after " + std::to_string(size) + " bytes; expected " + field);
    }
    if (byte(at) != static_cast<unsigned char>(f.key)) {
      return bad("byte " + std::to_string(at) + " is " + key_at(at) + "; expected the key of " +
                 field);
    }
    if (at + 3 > size) {
      return bad(field + " at byte " + std::to_string(at) + " is truncated: the file ends within " +
                 "its 2-byte length");
    }
    const std::size_t len = big_endian(at + 1, 2);
    if (at + 3 + len > size) {
      return bad(field + " at byte " + std::to_string(at) + " is truncated: its length is " +
                 std::to_string(len) + " bytes, but only " + std::to_string(size - at - 3) +
                 " follow");
    }
    if (len == 0 || bit[at + 3 + len - 1] != '\0') {
      return bad(field + " at byte " + std::to_string(at) + " (" + std::to_string(len) +
                 " bytes) does not end with a NUL; expected a NUL-terminated string");
    }
    at += 3 + len;
  }

  // The configuration data: key 'e', a 32-bit length N and N bytes, a whole number of words.
  if (at >= size) {
    return bad("the file ends after the header (" + std::to_string(size) +
               " bytes) with no field 'e'; expected field 'e' with the configuration data");
  }
  if (byte(at) != 'e') {
    return bad("byte " + std::to_string(at) + " is " + key_at(at) +
               " where field 'e' (the configuration data) should start; expected key 'e' after "
               "field 'd'");
  }
  if (at + 5 > size) {
    return bad("field 'e' at byte " + std::to_string(at) +
               " is truncated: the file ends within its 4-byte length");
  }
  const std::size_t n = big_endian(at + 1, 4);
  const std::size_t data = at + 5;
  if (n % 4 != 0) {
    return bad("field 'e' holds " + std::to_string(n) +
               " bytes of configuration data; expected a multiple of 4 (32-bit words)");
  }
  if (n > size - data) {
    return bad("field 'e' holds " + std::to_string(n) + " bytes of configuration data, but only " +
               std::to_string(size - data) + " follow (a truncated file?)");
  }
  if (n < size - data) {
    return bad("field 'e' holds " + std::to_string(n) + " bytes of configuration data, but " +
               std::to_string(size - data) + " follow; expected the data to end the file");
  }
  bool sync = false;
  for (std::size_t i = 0; i < n && !sync; i += 4) sync = big_endian(data + i, 4) == kSyncWord;
  if (!sync) {
    return bad("its " + std::to_string(n) + " bytes of configuration data hold no sync word " +
               "aa995566 at a 32-bit boundary; expected dummy words ffffffff, the bus-width " +
               "words 000000bb 11220044, then the sync word");
  }

  // Every 32-bit word byte-reversed: the order in which the Zynq's PCAP takes them.
  std::string bin(n, '\0');
  for (std::size_t i = 0; i < n; i += 4) {
    bin[i] = bit[data + i + 3];
    bin[i + 1] = bit[data + i + 2];
    bin[i + 2] = bit[data + i + 1];
    bin[i + 3] = bit[data + i];
  }
  return bin;
}

Result<std::unique_ptr<BoardDriver>> OpenZynqDriver(const std::string& bundle_dir,
                                                    const firmware::BundleMetadata& m,
                                                    const ZynqOptions& o) {
  RETURN_IF_ERROR(CheckZynqBundle(m, o));
  // The sha256 check comes before anything from the bundle reaches the board.
  RETURN_IF_ERROR(firmware::VerifyBundleFile(bundle_dir, m, m.bitstream.path));
  if (o.program) {
    RETURN_IF_ERROR(Program(bundle_dir, m, o));
  } else {
    RETURN_IF_ERROR(CheckProgrammed(o));
  }
  const bool axis = m.interface == "axis";
  const std::string name =
      !o.uio_name.empty() ? o.uio_name : (axis ? kZynqAxisUioName : kZynqAxiLiteUioName);
  ASSIGN_OR_RETURN(UioDevice uio, FindUio(o, name));
  const std::string dev = (fs::path(o.dev_root) / uio.entry).string();
  ASSIGN_OR_RETURN(
      std::unique_ptr<Mapping> regs,
      Mapping::Open(dev, uio.size, uio.offset, false,
                    " (the device node of " + uio.entry + "; set the device directory option)"));
  const std::string label = uio.entry + " " + Quote(uio.name);
  if (axis) return OpenAxis(m, std::move(regs), label, o);
  return OpenAxiLite(m, std::move(regs), label, o);
}

}  // namespace fpgaserve::runtime
