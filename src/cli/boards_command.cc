// `fpgaserve boards [--json]`: the board catalog (boards/*.json, plus $FPGASERVE_BOARDS_DIR).
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>

#include "boards/board.h"
#include "cli/app.h"
#include "cli/commands.h"
#include "core/text.h"

namespace fpgaserve::cli {

namespace {

nlohmann::ordered_json Count(std::int64_t v) {
  return v < 0 ? nlohmann::ordered_json(nullptr) : nlohmann::ordered_json(v);
}

std::string CountText(std::int64_t v) { return v < 0 ? "-" : std::to_string(v); }

void Print(const std::vector<boards::Board>& all, bool json) {
  if (json) {
    auto arr = nlohmann::ordered_json::array();
    for (const auto& b : all) {
      arr.push_back({{"id", b.id},
                     {"name", b.name},
                     {"vendor", b.vendor},
                     {"family", b.family},
                     {"part", b.part},
                     {"package", b.package},
                     {"device", b.device},
                     {"lut_kind", b.lut_kind},
                     {"resources",
                      {{"lut", Count(b.resources.lut)},
                       {"ff", Count(b.resources.ff)},
                       {"dsp", Count(b.resources.dsp)},
                       {"bram", Count(b.resources.bram)}}},
                     {"clock_mhz", b.clock_mhz},
                     {"toolchain", b.toolchain},
                     {"host_interface", b.host_interface},
                     {"default_interface", b.default_interface},
                     {"pins", b.pins},
                     {"source", b.source}});
    }
    std::cout << arr.dump(2) << "\n";
    return;
  }
  std::cout << std::left << std::setw(12) << "id" << std::setw(10) << "vendor" << std::setw(20)
            << "part" << std::right << std::setw(9) << "LUT" << std::setw(9) << "FF"
            << std::setw(6) << "DSP" << std::setw(6) << "BRAM" << std::setw(7) << "MHz" << "  "
            << std::left << std::setw(10) << "toolchain" << "host\n";
  for (const auto& b : all) {
    std::cout << std::left << std::setw(12) << b.id << std::setw(10) << b.vendor << std::setw(20)
              << b.part << std::right << std::setw(9) << CountText(b.resources.lut)
              << std::setw(9) << CountText(b.resources.ff) << std::setw(6)
              << CountText(b.resources.dsp) << std::setw(6) << CountText(b.resources.bram)
              << std::setw(7) << FormatDouble(b.clock_mhz) << "  " << std::left << std::setw(10)
              << b.toolchain << b.host_interface << "\n";
  }
}

}  // namespace

void RegisterBoards(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("boards", "List the boards firmware can be compiled for");
  auto json = std::make_shared<bool>(false);
  cmd->add_flag("--json", *json, "Print every field as a JSON array");
  cmd->callback([json, exit_code] {
    auto all = boards::AllBoards();
    if (!all.ok()) {
      *exit_code = ReportError(all.status(), std::cerr);
      return;
    }
    Print(*all, *json);
  });
}

}  // namespace fpgaserve::cli
