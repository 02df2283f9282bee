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

std::string Hex(std::uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

}  // namespace

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
  return axilite::CheckRegisterShape("xrt", m);
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
