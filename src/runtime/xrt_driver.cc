#include "runtime/xrt_driver.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

#include "boards/board.h"
#include "core/text.h"
#include "hw/wrappers.h"
#include "runtime/batch_validation.h"

#ifdef FPGASERVE_HAVE_XRT
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <system_error>

#include "core/file_io.h"
#include "experimental/xrt_ip.h"
#include "experimental/xrt_xclbin.h"
#include "xclbin.h"
#include "xclhal2.h"
#include "xrt/xrt_device.h"
#include "xrt/xrt_uuid.h"
#endif

namespace fpgaserve::runtime {

namespace {

using Clock = std::chrono::steady_clock;

// Far beyond any model that fits a card's AXI4-Lite window; keeps register arithmetic in range.
constexpr std::int64_t kMaxElements = 1 << 20;

std::string Hex(std::uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string ControlText(std::uint32_t c) {
  std::string s = Hex(c);
  std::vector<std::string> bits;
  if (c & 2u) bits.push_back("done");
  if (c & 4u) bits.push_back("busy");
  return s + (bits.empty() ? ": neither busy nor done" : ": " + Join(bits, ", "));
}

// Shape and element formats the AXI4-Lite core supports (fpgaserve_axilite: 1..32-bit elements).
Status CheckRegisterShape(const std::string& who, const firmware::BundleMetadata& m) {
  if (m.n_inputs < 1 || m.n_outputs < 1 || m.n_inputs > kMaxElements ||
      m.n_outputs > kMaxElements) {
    return FailedPrecondition(who + ": the bundle's n_inputs " + std::to_string(m.n_inputs) +
                              " / n_outputs " + std::to_string(m.n_outputs) +
                              " do not fit the AXI4-Lite register map (1.." +
                              std::to_string(kMaxElements) + " each)");
  }
  for (const auto* f : {&m.input_format, &m.output_format}) {
    if (f->width() < 1 || f->width() > 32) {
      return FailedPrecondition(who + ": the bundle's " +
                                (f == &m.input_format ? "input" : "output") + " format " +
                                f->ToString() + " is " + std::to_string(f->width()) +
                                " bits wide; the AXI4-Lite registers hold 1..32-bit elements");
    }
  }
  return Status::Ok();
}

}  // namespace

// --- The register protocol -----------------------------------------------------------------

namespace axilite {

std::uint64_t RegisterWindowBytes(std::int64_t n_in, std::int64_t n_out) {
  const std::int64_t in = std::clamp<std::int64_t>(n_in, 1, kMaxElements);
  const std::int64_t out = std::clamp<std::int64_t>(n_out, 1, kMaxElements);
  const std::uint64_t inputs_end = hw::kInputBase + 4 * static_cast<std::uint64_t>(in);
  const std::uint64_t outputs_end =
      hw::AxiLiteOutputBase(static_cast<int>(in)) + 4 * static_cast<std::uint64_t>(out);
  return std::max(inputs_end, outputs_end);
}

namespace {

// The raw value of an output register: the word must be the sign extension (fixed) or zero
// extension (ufixed, float bit patterns) of its low `width` bits.
bool DecodeOutputWord(std::uint32_t word, const numeric::NumberFormat& f, numeric::RawValue* out) {
  const int w = f.width();
  const std::uint64_t mask = w >= 32 ? 0xffffffffULL : (std::uint64_t{1} << w) - 1;
  const std::uint64_t low = word & mask;
  std::int64_t v = static_cast<std::int64_t>(low);
  if (f.raw_is_signed() && ((low >> (w - 1)) & 1u) != 0) v -= static_cast<std::int64_t>(mask) + 1;
  *out = v;
  return static_cast<std::uint32_t>(static_cast<std::uint64_t>(v)) == word;
}

class RegisterDriver : public BoardDriver {
 public:
  RegisterDriver(std::string kind, firmware::BundleMetadata m, std::unique_ptr<RegisterPort> port,
                 const Timing& timing, std::uint32_t out_base)
      : kind_(std::move(kind)),
        m_(std::move(m)),
        port_(std::move(port)),
        timing_(timing),
        out_base_(out_base),
        where_(kind_ + " on " + port_->Name()) {}

  std::string kind() const override { return kind_; }

  Result<BatchResult> Infer(const numeric::RawBatch& inputs) override {
    RETURN_IF_ERROR(ValidateInputBatch(inputs, m_));
    std::lock_guard<std::mutex> lock(mu_);  // one register window, one inference at a time
    if (!idle_) RETURN_IF_ERROR(WaitIdle("before the batch"));
    BatchResult r;
    r.outputs.rows = inputs.rows;
    r.outputs.features = static_cast<std::size_t>(m_.n_outputs);
    // Grows past this as rows arrive: a batch's size is bounded by its inputs, not its outputs.
    r.outputs.values.reserve(std::min<std::size_t>(inputs.rows * r.outputs.features, 1 << 22));
    r.latency_cycles.reserve(inputs.rows);
    for (std::size_t i = 0; i < inputs.rows; ++i) {
      Status st = RunRow(inputs, i, r);
      if (!st.ok()) {
        idle_ = false;  // the core may still be running this row
        return Status(st.code(), where_ + ": row " + std::to_string(i) + " of " +
                                     std::to_string(inputs.rows) + ": " + st.message());
      }
    }
    return r;
  }

  // Waits until control shows the core is not busy (start is ignored while busy).
  Status WaitIdle(const std::string& when) {
    const auto deadline = Clock::now() + timing_.row_timeout;
    std::uint32_t control = 0;
    for (long polls = 0;; ++polls) {
      auto read = port_->Read(hw::kRegControl);
      if (!read.ok()) {
        return Status(read.status().code(), where_ + ": " + when + ": " + read.status().message());
      }
      control = *read;
      if ((control & 4u) == 0) {
        idle_ = true;
        return Status::Ok();
      }
      if (Clock::now() >= deadline) {
        return DeadlineExceeded(where_ + ": the core stays busy for " +
                                std::to_string(timing_.row_timeout.count()) + " ms " + when +
                                " (control " + ControlText(control) + ")");
      }
      Pause(polls);
    }
  }

 private:
  void Pause(long polls) const {
    if (polls >= timing_.spin_polls && timing_.poll_sleep.count() > 0) {
      std::this_thread::sleep_for(timing_.poll_sleep);
    }
  }

  Status RunRow(const numeric::RawBatch& inputs, std::size_t row, BatchResult& r) {
    const std::size_t n_in = inputs.features;
    for (std::size_t k = 0; k < n_in; ++k) {
      const numeric::RawValue v = inputs.values[row * n_in + k];
      // Two's complement low 32 bits: the core keeps the low in_width bits.
      RETURN_IF_ERROR(port_->Write(hw::kInputBase + 4 * static_cast<std::uint32_t>(k),
                                   static_cast<std::uint32_t>(static_cast<std::uint64_t>(v))));
    }
    RETURN_IF_ERROR(port_->Write(hw::kRegControl, 1u));
    const auto deadline = Clock::now() + timing_.row_timeout;
    std::uint32_t control = 0;
    for (long polls = 0;; ++polls) {
      ASSIGN_OR_RETURN(control, port_->Read(hw::kRegControl));
      if (control & 2u) break;
      if ((control & 4u) == 0) {
        // A taken start sets busy until done: the core ignored it or was reset.
        return Internal("after start the control register reads " + ControlText(control) +
                        " (the start was not taken: was the card reset?)");
      }
      if (Clock::now() >= deadline) {
        return DeadlineExceeded("the core did not finish within " +
                                std::to_string(timing_.row_timeout.count()) + " ms (control " +
                                ControlText(control) + ")");
      }
      Pause(polls);
    }
    const std::size_t n_out = static_cast<std::size_t>(m_.n_outputs);
    for (std::size_t j = 0; j < n_out; ++j) {
      const std::uint32_t offset = out_base_ + 4 * static_cast<std::uint32_t>(j);
      ASSIGN_OR_RETURN(std::uint32_t word, port_->Read(offset));
      numeric::RawValue v = 0;
      if (!DecodeOutputWord(word, m_.output_format, &v)) {
        return Internal("output " + std::to_string(j) + " (register " + Hex(offset) + ") reads " +
                        Hex(word) + ", which is not a " +
                        (m_.output_format.raw_is_signed() ? "sign" : "zero") + "-extended " +
                        m_.output_format.ToString() + " value");
      }
      r.outputs.values.push_back(v);
    }
    ASSIGN_OR_RETURN(std::uint32_t lo, port_->Read(hw::kRegCyclesLow));
    ASSIGN_OR_RETURN(std::uint32_t hi, port_->Read(hw::kRegCyclesHigh));
    const std::uint64_t cycles = (static_cast<std::uint64_t>(hi) << 32) | lo;
    r.latency_cycles.push_back(cycles);
    r.total_cycles += cycles;  // rows run one after another through the registers
    return Status::Ok();
  }

  std::string kind_;
  firmware::BundleMetadata m_;
  std::unique_ptr<RegisterPort> port_;
  Timing timing_;
  std::uint32_t out_base_;
  std::string where_;
  bool idle_ = false;
  std::mutex mu_;
};

}  // namespace

Result<std::unique_ptr<BoardDriver>> OpenRegisterDriver(const std::string& kind,
                                                        const firmware::BundleMetadata& m,
                                                        std::unique_ptr<RegisterPort> port,
                                                        const Timing& timing) {
  if (port == nullptr) return InvalidArgument(kind + ": no register port");
  if (timing.row_timeout.count() <= 0 || timing.spin_polls < 0 || timing.poll_sleep.count() < 0) {
    return InvalidArgument(kind + ": row timeout " + std::to_string(timing.row_timeout.count()) +
                           " ms, spin polls " + std::to_string(timing.spin_polls) +
                           ", poll sleep " + std::to_string(timing.poll_sleep.count()) +
                           " us; expected a positive timeout and non-negative polling");
  }
  RETURN_IF_ERROR(CheckRegisterShape(kind, m));
  const std::string where = kind + " on " + port->Name();
  std::uint32_t id[3] = {0, 0, 0};  // n_in, n_out, OUT_BASE
  const std::uint32_t id_regs[3] = {hw::kRegInputs, hw::kRegOutputs, hw::kRegOutputBase};
  for (int i = 0; i < 3; ++i) {
    auto read = port->Read(id_regs[i]);
    if (!read.ok()) {
      return Status(read.status().code(),
                    where + ": reading the core's identity registers: " + read.status().message());
    }
    id[i] = *read;
  }
  const std::uint32_t n_in = id[0], n_out = id[1], out_base = id[2];
  const std::uint32_t want_base = hw::AxiLiteOutputBase(static_cast<int>(m.n_inputs));
  if (n_in != static_cast<std::uint64_t>(m.n_inputs) ||
      n_out != static_cast<std::uint64_t>(m.n_outputs) || out_base != want_base) {
    return FailedPrecondition(
        where + ": the card holds other firmware: its registers report n_in " +
        std::to_string(n_in) + ", n_out " + std::to_string(n_out) + ", OUT_BASE " + Hex(out_base) +
        "; the bundle has n_in " + std::to_string(m.n_inputs) + ", n_out " +
        std::to_string(m.n_outputs) + ", OUT_BASE " + Hex(want_base));
  }
  auto driver = std::make_unique<RegisterDriver>(kind, m, std::move(port), timing, out_base);
  RETURN_IF_ERROR(driver->WaitIdle("when the driver opens"));
  return std::unique_ptr<BoardDriver>(std::move(driver));
}

}  // namespace axilite

// --- The xrt driver ----------------------------------------------------------------------

namespace {

const char* const kNoXrt =
    "xrt: fpgaserve was built without XRT (libxrt-dev was not found when it was configured); "
    "install it (Debian/Ubuntu: apt install libxrt-dev, or scripts/install-deps.sh) and rebuild "
    "fpgaserve";

std::string XrtBoardIds() {
  std::vector<std::string> ids;
  for (const auto& b : boards::Catalog()) {
    if (b.host_interface == "xrt") ids.push_back(b.id);
  }
  return ids.empty() ? "an Alveo board" : Join(ids, ", ");
}

Status CheckXrtBundle(const std::string& dir, const firmware::BundleMetadata& m) {
  auto board = boards::FindBoard(m.board);
  if (!board.ok()) {
    return FailedPrecondition("xrt: the bundle is for board " + Quote(m.board) +
                              ", not in the board catalog; compile it with --board " +
                              XrtBoardIds());
  }
  if (board->host_interface != "xrt") {
    return FailedPrecondition("xrt: the bundle is for board " + Quote(m.board) + " (family " +
                              board->family + ", reached over " + board->host_interface +
                              "); the xrt driver runs bundles compiled for an Alveo card: "
                              "--board " +
                              XrtBoardIds());
  }
  if (m.interface != "axilite") {
    return FailedPrecondition("xrt: the bundle's interface is " + Quote(m.interface) +
                              "; the Alveo kernel drives the core through its AXI4-Lite "
                              "registers: compile with --interface axilite");
  }
  if (m.bitstream.status == "needs-vendor-tools") {
    return FailedPrecondition(
        "xrt: the bundle " + dir +
        " has no .xclbin: Vivado and v++ were not on PATH when it was compiled (bitstream "
        "status \"needs-vendor-tools\"); recompile it with `fpgaserve compile --board " +
        m.board + "` where Vitis is installed, which runs: " + m.bitstream.command);
  }
  if (m.bitstream.status != "built") {
    return FailedPrecondition("xrt: the bundle's bitstream status is " + Quote(m.bitstream.status) +
                              "; expected \"built\"");
  }
  const std::string& p = m.bitstream.path;
  if (p.size() < 7 || p.compare(p.size() - 7, 7, ".xclbin") != 0) {
    return FailedPrecondition("xrt: the bundle's bitstream " + Quote(p) +
                              " is not an .xclbin (the Alveo flow links fpgaserve.xclbin)");
  }
  return CheckRegisterShape("xrt", m);
}

Result<int> ResolveDeviceIndex(const XrtOptions& o) {
  if (o.device_index > kXrtMaxDeviceIndex) {
    return InvalidArgument("xrt: device index " + std::to_string(o.device_index) +
                           " out of range; expected 0.." + std::to_string(kXrtMaxDeviceIndex));
  }
  if (o.device_index >= 0) return o.device_index;
  const char* env = std::getenv(kXrtDeviceEnv);
  if (env == nullptr || *env == '\0') return 0;
  const std::string s = env;
  const bool digits = s.size() <= 4 && std::all_of(s.begin(), s.end(), [](unsigned char c) {
                        return std::isdigit(c) != 0;
                      });
  const int v = digits ? std::atoi(s.c_str()) : -1;
  if (!digits || v > kXrtMaxDeviceIndex) {
    return InvalidArgument("xrt: $" + std::string(kXrtDeviceEnv) + " is " + Quote(s) +
                           "; expected a card index 0.." + std::to_string(kXrtMaxDeviceIndex) +
                           " (the order in which `xbutil examine` lists the cards)");
  }
  return v;
}

Result<std::string> ResolveKernelName(const XrtOptions& o) {
  std::string k = o.kernel.empty() ? kXrtDefaultKernel : o.kernel;
  const bool ok = k.size() <= 128 && std::all_of(k.begin(), k.end(), [](unsigned char c) {
                    return std::isalnum(c) != 0 || c == '_' || c == ':' || c == '{' || c == '}' ||
                           c == '.' || c == '-';
                  });
  if (!ok || k.front() == ':') {
    return InvalidArgument("xrt: kernel " + Quote(k) +
                           "; expected a kernel name such as fpgaserve, or one compute unit of "
                           "it as fpgaserve:{fpgaserve_1}");
  }
  // "kernel:{cu}" names the same IP_LAYOUT entry as "kernel:cu".
  const auto brace = k.find(":{");
  if (brace != std::string::npos) {
    if (k.back() != '}' || k.find_first_of("{}", brace + 2) != k.size() - 1) {
      return InvalidArgument("xrt: kernel " + Quote(k) +
                             " names several compute units or is malformed; expected one, "
                             "as kernel:{cu}");
    }
    k = k.substr(0, brace + 1) + k.substr(brace + 2, k.size() - brace - 3);
  } else if (k.find_first_of("{}") != std::string::npos) {
    return InvalidArgument("xrt: kernel " + Quote(k) + " is malformed; expected kernel:{cu}");
  }
  return k;
}

#ifdef FPGASERVE_HAVE_XRT

std::string UuidText(const xrt::uuid& u) {
  const auto& b = u.get();
  std::string s;
  char hex[3];
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) s += '-';
    std::snprintf(hex, sizeof hex, "%02x", static_cast<unsigned>(b[i]));
    s += hex;
  }
  return s;
}

// XRT reports failures as exceptions; std::system_error carries an errno (sometimes negated).
Status FromException(std::exception_ptr e, StatusCode fallback, const std::string& what) {
  try {
    std::rethrow_exception(e);
  } catch (const std::system_error& ex) {
    const int err = std::abs(ex.code().value());
    const std::string msg = what + ": " + ex.what();
    if (err == EACCES || err == EPERM) {
      return PermissionDenied(msg +
                              " (is your user allowed to use the card's /dev/dri "
                              "render node? see `xbutil examine`)");
    }
    if (err == EBUSY) return Unavailable(msg + " (another process is using the card or kernel)");
    if (err == ENODEV || err == ENOENT) return Unavailable(msg);
    return Status(fallback, msg);
  } catch (const std::exception& ex) {
    return Status(fallback, what + ": " + ex.what());
  } catch (...) {
    return Status(fallback, what + ": an unknown exception from XRT");
  }
}

// Checks the axlf container before XRT parses it: XRT trusts the section table and the counts
// inside the sections it reads, so a damaged file must not reach it.
Status CheckAxlf(const std::string& bytes, const std::string& path) {
  const std::string where = "xrt: " + path + " is not a valid xclbin: ";
  if (bytes.size() < sizeof(axlf)) {
    return InvalidArgument(where + std::to_string(bytes.size()) +
                           " bytes; an xclbin has at least " + std::to_string(sizeof(axlf)));
  }
  axlf top;
  std::memcpy(&top, bytes.data(), sizeof top);
  if (std::memcmp(top.m_magic, "xclbin2", 8) != 0) {
    return InvalidArgument(where + "no \"xclbin2\" magic at its start");
  }
  const std::uint64_t length = top.m_header.m_length;
  if (length < sizeof(axlf) || length > bytes.size()) {
    return InvalidArgument(where + "its header gives a length of " + std::to_string(length) +
                           " bytes; the file has " + std::to_string(bytes.size()));
  }
  const std::uint64_t n = top.m_header.m_numSections;
  const std::uint64_t table = offsetof(axlf, m_sections);
  if (n < 1 || n > XCLBIN_MAX_NUM_SECTION || table + n * sizeof(axlf_section_header) > length) {
    return InvalidArgument(where + "its header lists " + std::to_string(n) +
                           " sections, which do not fit its " + std::to_string(length) + " bytes");
  }
  bool have_ip_layout = false;
  for (std::uint64_t i = 0; i < n; ++i) {
    axlf_section_header s;
    std::memcpy(&s, bytes.data() + table + i * sizeof s, sizeof s);
    if (s.m_sectionOffset > length || s.m_sectionSize > length - s.m_sectionOffset) {
      return InvalidArgument(where + "section " + std::to_string(i) + " (kind " +
                             std::to_string(s.m_sectionKind) + ") at " +
                             std::to_string(s.m_sectionOffset) + " + " +
                             std::to_string(s.m_sectionSize) + " bytes lies outside the file");
    }
    // Sections holding an int32 count of fixed-size entries that XRT walks.
    std::uint64_t head = 0, entry = 0;
    const char* name = nullptr;
    switch (s.m_sectionKind) {
      case IP_LAYOUT:
        head = offsetof(ip_layout, m_ip_data), entry = sizeof(ip_data), name = "IP_LAYOUT";
        have_ip_layout = true;
        break;
      case MEM_TOPOLOGY:
      case ASK_GROUP_TOPOLOGY:
        head = offsetof(mem_topology, m_mem_data), entry = sizeof(mem_data), name = "MEM_TOPOLOGY";
        break;
      case CONNECTIVITY:
      case ASK_GROUP_CONNECTIVITY:
        head = offsetof(connectivity, m_connection), entry = sizeof(connection),
        name = "CONNECTIVITY";
        break;
      default:
        continue;
    }
    std::int32_t count = -1;
    if (s.m_sectionSize >= sizeof count) {
      std::memcpy(&count, bytes.data() + s.m_sectionOffset, sizeof count);
    }
    if (count < 0 ||
        (count > 0 && head + static_cast<std::uint64_t>(count) * entry > s.m_sectionSize)) {
      return InvalidArgument(where + "its " + name + " section of " +
                             std::to_string(s.m_sectionSize) + " bytes cannot hold " +
                             std::to_string(count) + " entries");
    }
    if (s.m_sectionKind == IP_LAYOUT) {
      for (std::int32_t k = 0; k < count; ++k) {
        ip_data d;
        std::memcpy(&d, bytes.data() + s.m_sectionOffset + head + k * entry, sizeof d);
        if (std::memchr(d.m_name, '\0', sizeof d.m_name) == nullptr) {
          return InvalidArgument(where + "IP_LAYOUT entry " + std::to_string(k) +
                                 " has an unterminated name");
        }
      }
    }
  }
  if (!have_ip_layout) {
    return InvalidArgument(where + "it has no IP_LAYOUT section, so no kernel");
  }
  return Status::Ok();
}

// The IP_LAYOUT entry of the kernel (or compute unit) `kernel`.
Result<xrt::xclbin::ip> FindKernelIp(const xrt::xclbin& xb, const std::string& kernel,
                                     const std::string& path) {
  std::vector<xrt::xclbin::ip> matches;
  std::vector<std::string> names;
  const bool exact = kernel.find(':') != std::string::npos;
  for (const auto& ip : xb.get_ips()) {
    const std::string name = ip.get_name();
    names.push_back(name);
    if (name == kernel || (!exact && name.rfind(kernel + ":", 0) == 0)) matches.push_back(ip);
  }
  if (matches.empty()) {
    return FailedPrecondition("xrt: " + path + " has no IP " + Quote(kernel, 80) + "; it has " +
                              (names.empty() ? std::string("none") : Join(names, ", ")) +
                              " (was it linked from vitis/fpgaserve.xo?)");
  }
  if (matches.size() > 1) {
    std::vector<std::string> cus;
    for (const auto& ip : matches) cus.push_back(ip.get_name());
    return FailedPrecondition("xrt: kernel " + Quote(kernel, 80) + " has " +
                              std::to_string(matches.size()) + " compute units in " + path + " (" +
                              Join(cus, ", ") +
                              "); choose one with the kernel option, as kernel:{cu}");
  }
  return matches.front();
}

// xrt::ip's register access through one compute unit of the loaded xclbin.
class XrtRegisterPort : public axilite::RegisterPort {
 public:
  XrtRegisterPort(xrt::device device, xrt::ip ip, std::string name)
      : device_(std::move(device)), ip_(std::move(ip)), name_(std::move(name)) {}

  Result<std::uint32_t> Read(std::uint32_t offset) override {
    try {
      return ip_.read_register(offset);
    } catch (...) {
      return Access(std::current_exception(), "reading", offset);
    }
  }

  Status Write(std::uint32_t offset, std::uint32_t value) override {
    try {
      ip_.write_register(offset, value);
      return Status::Ok();
    } catch (...) {
      return Access(std::current_exception(), "writing " + Hex(value) + " to", offset);
    }
  }

  std::string Name() const override { return name_; }

 private:
  Status Access(std::exception_ptr e, const std::string& what, std::uint32_t offset) const {
    try {
      std::rethrow_exception(e);
    } catch (const std::out_of_range& ex) {
      // The window was checked against the register map when the driver opened.
      return Internal(what + " register " + Hex(offset) + ": " + ex.what());
    } catch (...) {
      return FromException(std::current_exception(), StatusCode::kUnavailable,
                           what + " register " + Hex(offset));
    }
  }

  xrt::device device_;  // declared first: outlives the IP
  xrt::ip ip_;
  std::string name_;
};

std::string DeviceText(const xrt::device& d, int index) {
  std::string name, bdf;
  try {
    name = d.get_info<xrt::info::device::name>();
  } catch (...) {
  }
  try {
    bdf = d.get_info<xrt::info::device::bdf>();
  } catch (...) {
  }
  std::string s = "Alveo device " + std::to_string(index);
  if (!name.empty() || !bdf.empty()) {
    s += " (" + name + (name.empty() || bdf.empty() ? "" : ", ") + bdf + ")";
  }
  return s;
}

Result<std::unique_ptr<BoardDriver>> OpenWithXrt(const std::string& bundle_dir,
                                                 const firmware::BundleMetadata& m,
                                                 const XrtOptions& o, int index,
                                                 const std::string& kernel) {
  const std::string path = (std::filesystem::path(bundle_dir) / m.bitstream.path).string();
  // 1. The xclbin, checked before any card sees it.
  ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
  RETURN_IF_ERROR(CheckAxlf(bytes, path));
  xrt::xclbin xb;
  xrt::xclbin::ip ip_info;
  try {
    xb = xrt::xclbin(std::vector<char>(bytes.begin(), bytes.end()));
  } catch (...) {
    return FromException(std::current_exception(), StatusCode::kInvalidArgument,
                         "xrt: " + path + " is not a valid xclbin");
  }
  bytes.clear();
  bytes.shrink_to_fit();
  std::uint64_t window = 0;
  std::string ip_name;
  try {
    ASSIGN_OR_RETURN(ip_info, FindKernelIp(xb, kernel, path));
    window = ip_info.get_size();
    ip_name = ip_info.get_name();
  } catch (...) {
    return FromException(std::current_exception(), StatusCode::kInvalidArgument,
                         "xrt: reading the kernels of " + path);
  }
  const std::uint64_t need = axilite::RegisterWindowBytes(m.n_inputs, m.n_outputs);
  if (window < need) {
    return FailedPrecondition(
        "xrt: " + path + ": IP " + Quote(ip_name, 80) + " has a register window of " + Hex(window) +
        " bytes; the core's register map needs " + Hex(need) + " (through output " +
        std::to_string(m.n_outputs - 1) + "), and XRT refuses accesses outside the window. XRT " +
        "takes the window from the range of the kernel's port in the xclbin metadata "
        "(vitis/kernel.xml), and leaves it 0 for a kernel that declares no arguments");
  }

  // 2. The card.
  const unsigned count = xclProbe();
  if (count == 0) {
    return Unavailable(
        "xrt: no Alveo card: XRT found 0 devices (is the xocl/xclmgmt driver "
        "loaded? `xbutil examine` lists the cards XRT sees)");
  }
  if (static_cast<unsigned>(index) >= count) {
    return NotFound("xrt: no Alveo device " + std::to_string(index) + ": XRT found " +
                    std::to_string(count) + " device(s), 0.." + std::to_string(count - 1) +
                    " (set the device index or $" + std::string(kXrtDeviceEnv) + ")");
  }
  xrt::device device;
  try {
    device = xrt::device(static_cast<unsigned>(index));
  } catch (...) {
    return FromException(std::current_exception(), StatusCode::kUnavailable,
                         "xrt: cannot open Alveo device " + std::to_string(index));
  }
  const std::string dev = DeviceText(device, index);

  // 3. The firmware.
  xrt::uuid uuid;
  try {
    if (o.load_xclbin) {
      uuid = device.load_xclbin(xb);
    } else {
      uuid = device.get_xclbin_uuid();
      const xrt::uuid want = xb.get_uuid();
      if (UuidText(uuid) != UuidText(want)) {
        return FailedPrecondition("xrt: " + dev + " holds other firmware: xclbin " +
                                  UuidText(uuid) + " is loaded, the bundle's " + path + " is " +
                                  UuidText(want) + " (open with load_xclbin to load it)");
      }
    }
  } catch (...) {
    const std::exception_ptr e = std::current_exception();
    std::string platform;
    try {
      platform = xb.get_xsa_name();
    } catch (...) {
    }
    return FromException(
        e, StatusCode::kFailedPrecondition,
        "xrt: " + std::string(o.load_xclbin ? "loading " : "querying ") + path + " on " + dev +
            (platform.empty() ? "" : " (the xclbin targets platform " + platform + ")"));
  }
  xrt::ip ip;
  try {
    ip = xrt::ip(device, uuid, ip_name);
  } catch (...) {
    return FromException(std::current_exception(), StatusCode::kUnavailable,
                         "xrt: opening IP " + Quote(ip_name, 80) + " on " + dev);
  }
  axilite::Timing timing;
  timing.row_timeout = o.row_timeout;
  auto port =
      std::make_unique<XrtRegisterPort>(std::move(device), std::move(ip), dev + ", IP " + ip_name);
  return axilite::OpenRegisterDriver("xrt", m, std::move(port), timing);
}

#endif  // FPGASERVE_HAVE_XRT

}  // namespace

bool XrtDriverAvailable() {
#ifdef FPGASERVE_HAVE_XRT
  return true;
#else
  return false;
#endif
}

Result<unsigned> CountXrtDevices() {
#ifdef FPGASERVE_HAVE_XRT
  try {
    return xclProbe();
  } catch (...) {
    return FromException(std::current_exception(), StatusCode::kUnavailable,
                         "xrt: counting the Alveo cards");
  }
#else
  return Unimplemented(kNoXrt);
#endif
}

Result<std::unique_ptr<BoardDriver>> OpenXrtDriver(const std::string& bundle_dir,
                                                   const firmware::BundleMetadata& m,
                                                   const XrtOptions& o) {
  RETURN_IF_ERROR(CheckXrtBundle(bundle_dir, m));
  // The sha256 check comes before XRT or the card sees anything from the bundle.
  RETURN_IF_ERROR(firmware::VerifyBundleFile(bundle_dir, m, m.bitstream.path));
  ASSIGN_OR_RETURN(int index, ResolveDeviceIndex(o));
  ASSIGN_OR_RETURN(std::string kernel, ResolveKernelName(o));
  if (o.row_timeout.count() <= 0) {
    return InvalidArgument("xrt: row timeout " + std::to_string(o.row_timeout.count()) +
                           " ms; expected a positive time");
  }
#ifdef FPGASERVE_HAVE_XRT
  try {
    return OpenWithXrt(bundle_dir, m, o, index, kernel);
  } catch (...) {  // anything XRT throws outside the guarded calls
    return FromException(std::current_exception(), StatusCode::kUnavailable,
                         "xrt: opening the Alveo card");
  }
#else
  (void)index;
  (void)kernel;
  return Unimplemented(kNoXrt);
#endif
}

}  // namespace fpgaserve::runtime
