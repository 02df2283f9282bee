#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <map>

#include "boards/board.h"
#include "boards/embedded.h"
#include "core/file_io.h"
#include "core/json_fields.h"
#include "core/text.h"

namespace fpgaserve::boards {

namespace jf = json_fields;

namespace {

const std::vector<std::string> kFamilies = {"sim", "ice40", "zynq7000", "virtex-ultrascale+"};
const std::vector<std::string> kToolchains = {"verilator", "icestorm", "vivado", "vitis"};
const std::vector<std::string> kHostInterfaces = {"none", "uart", "axi-dma", "axi-lite", "xrt"};
const std::vector<std::string> kInterfaces = {"stream", "axis", "axilite"};

bool OneOf(const std::string& v, const std::vector<std::string>& allowed) {
  return std::find(allowed.begin(), allowed.end(), v) != allowed.end();
}

Result<std::string> Str(const jf::Json& obj, std::string_view key, const std::string& w) {
  ASSIGN_OR_RETURN(const jf::Json* v, jf::Member(obj, key, w));
  return jf::String(*v, jf::Child(w, key));
}

Result<std::string> Enum(const jf::Json& obj, std::string_view key, const std::string& w,
                         const std::vector<std::string>& allowed) {
  ASSIGN_OR_RETURN(std::string v, Str(obj, key, w));
  if (!OneOf(v, allowed)) {
    return InvalidArgument(jf::Child(w, key) + ": " + Quote(v) + "; expected one of " +
                           Join(allowed, ", "));
  }
  return v;
}

// null = unlimited (-1); otherwise a positive count.
Result<std::int64_t> Count(const jf::Json& obj, std::string_view key, const std::string& w) {
  ASSIGN_OR_RETURN(const jf::Json* v, jf::Member(obj, key, w));
  if (v->is_null()) return std::int64_t{-1};
  const std::string at = jf::Child(w, key);
  ASSIGN_OR_RETURN(std::int64_t n, jf::Integer(*v, at));
  if (n < 0) return InvalidArgument(at + ": " + std::to_string(n) + "; expected >= 0 or null");
  return n;
}

Result<std::vector<Board>> LoadCatalog() {
  std::map<std::string, Board> boards;
  for (const auto& f : EmbeddedBoardFiles()) {
    ASSIGN_OR_RETURN(Board b, ParseBoard(f.text, std::string(f.origin)));
    boards[b.id] = std::move(b);
  }
  // A lab's own boards (or corrections) without rebuilding: every *.json of the directory.
  if (const char* dir = std::getenv("FPGASERVE_BOARDS_DIR"); dir != nullptr && *dir != '\0') {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) {
      return InvalidArgument(std::string("FPGASERVE_BOARDS_DIR=") + dir +
                             ": not a directory; expected a directory of board .json files");
    }
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      if (e.path().extension() == ".json") files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    for (const auto& p : files) {
      ASSIGN_OR_RETURN(std::string text, ReadFile(p.string(), 1 << 20));
      ASSIGN_OR_RETURN(Board b, ParseBoard(text, p.string()));
      boards[b.id] = std::move(b);
    }
  }
  std::vector<Board> out;
  for (auto& [id, b] : boards) out.push_back(std::move(b));
  return out;
}

const Result<std::vector<Board>>& CachedCatalog() {
  static const Result<std::vector<Board>> catalog = LoadCatalog();
  return catalog;
}

}  // namespace

Result<Board> ParseBoard(std::string_view json_text, const std::string& origin) {
  ASSIGN_OR_RETURN(jf::Json doc, jf::Parse(json_text, origin));
  const std::string& w = origin;
  if (!doc.is_object()) {
    return InvalidArgument(w + ": expected a board object, found " + jf::TypeName(doc));
  }
  Board b;
  b.source = origin;
  ASSIGN_OR_RETURN(b.id, Str(doc, "id", w));
  if (b.id.empty() || b.id.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-_") !=
                          std::string::npos) {
    return InvalidArgument(w + ".id: " + Quote(b.id) +
                           "; expected lowercase letters, digits, '-' and '_'");
  }
  ASSIGN_OR_RETURN(b.name, Str(doc, "name", w));
  ASSIGN_OR_RETURN(b.vendor, Str(doc, "vendor", w));
  ASSIGN_OR_RETURN(b.family, Enum(doc, "family", w, kFamilies));
  ASSIGN_OR_RETURN(b.part, Str(doc, "part", w));
  ASSIGN_OR_RETURN(b.package, Str(doc, "package", w));
  ASSIGN_OR_RETURN(b.device, Str(doc, "device", w));
  ASSIGN_OR_RETURN(b.lut_kind, Str(doc, "lut_kind", w));
  ASSIGN_OR_RETURN(const jf::Json* res, jf::Member(doc, "resources", w));
  const std::string rw = w + ".resources";
  if (!res->is_object()) return InvalidArgument(rw + ": expected an object");
  ASSIGN_OR_RETURN(b.resources.lut, Count(*res, "lut", rw));
  ASSIGN_OR_RETURN(b.resources.ff, Count(*res, "ff", rw));
  ASSIGN_OR_RETURN(b.resources.dsp, Count(*res, "dsp", rw));
  ASSIGN_OR_RETURN(b.resources.bram, Count(*res, "bram", rw));
  ASSIGN_OR_RETURN(const jf::Json* clock, jf::Member(doc, "clock_mhz", w));
  if (!clock->is_number() || !(clock->get<double>() > 0 && clock->get<double>() <= 2000)) {
    return InvalidArgument(w + ".clock_mhz: expected a number in (0, 2000] MHz");
  }
  b.clock_mhz = clock->get<double>();
  ASSIGN_OR_RETURN(b.toolchain, Enum(doc, "toolchain", w, kToolchains));
  ASSIGN_OR_RETURN(b.host_interface, Enum(doc, "host_interface", w, kHostInterfaces));
  ASSIGN_OR_RETURN(b.default_interface, Enum(doc, "default_interface", w, kInterfaces));
  ASSIGN_OR_RETURN(const jf::Json* pins, jf::Member(doc, "pins", w));
  ASSIGN_OR_RETURN(b.pins, jf::StringArray(*pins, w + ".pins"));
  for (std::size_t i = 0; i < b.pins.size(); ++i) {
    const auto colon = b.pins[i].find(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == b.pins[i].size()) {
      return InvalidArgument(jf::Child(w + ".pins", i) + ": " + Quote(b.pins[i]) +
                             "; expected 'signal:pin'");
    }
  }
  // What the flows rely on: a family implies its toolchain, LUT kind and device naming.
  const bool sim = b.family == "sim";
  if (sim != (b.toolchain == "verilator")) {
    return InvalidArgument(w + ".toolchain: " + Quote(b.toolchain) + " does not build family " +
                           Quote(b.family) + " (sim boards use verilator, and only they)");
  }
  if (b.family == "ice40" && (b.toolchain != "icestorm" || b.lut_kind != "LUT4" || b.device.empty())) {
    return InvalidArgument(w + ": an ice40 board needs toolchain icestorm, lut_kind LUT4 and a "
                               "nextpnr device (e.g. up5k)");
  }
  if ((b.family == "zynq7000" || b.family == "virtex-ultrascale+") &&
      (b.lut_kind != "LUT6" || b.toolchain == "icestorm")) {
    return InvalidArgument(w + ": an AMD board needs lut_kind LUT6 and toolchain vivado or vitis");
  }
  if (!sim && (b.resources.lut < 0 || b.resources.dsp < 0 || b.resources.ff < 0 ||
               b.resources.bram < 0)) {
    return InvalidArgument(rw + ": a real board needs lut, ff, dsp and bram counts (null is only "
                                "for the simulated board)");
  }
  return b;
}

Result<std::vector<Board>> AllBoards() { return CachedCatalog(); }

const std::vector<Board>& Catalog() {
  static const std::vector<Board> empty;
  const auto& c = CachedCatalog();
  return c.ok() ? *c : empty;
}

Result<Board> FindBoard(const std::string& id) {
  const auto& c = CachedCatalog();
  if (!c.ok()) return c.status();
  std::vector<std::string> ids;
  for (const auto& b : *c) {
    if (b.id == id) return b;
    ids.push_back(b.id);
  }
  return NotFound("unknown board " + Quote(id) + "; expected one of: " + Join(ids, ", "));
}

}  // namespace fpgaserve::boards
