// The board files compiled into the binary (generated from boards/*.json at build time).
#pragma once

#include <string_view>
#include <vector>

namespace fpgaserve::boards {

struct EmbeddedBoardFile {
  std::string_view origin;  // "boards/icebreaker.json"
  std::string_view text;
};

const std::vector<EmbeddedBoardFile>& EmbeddedBoardFiles();

}  // namespace fpgaserve::boards
