// SHA-256 (FIPS 180-4) digests as lowercase hex: content addresses of firmware bundles, file
// checksums in bundle metadata, and cache keys of tool builds.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"

namespace fpgaserve {

// Incremental hashing, so large files and multi-part keys never need one contiguous buffer.
class Sha256 {
 public:
  Sha256();
  void Update(std::string_view data);
  // The 64-character lowercase hex digest; the object must not be updated afterwards.
  std::string FinishHex();

 private:
  void Compress(const unsigned char* block);

  std::uint32_t state_[8];
  unsigned char buffer_[64];
  std::size_t buffered_ = 0;
  std::uint64_t total_bytes_ = 0;
};

std::string Sha256Hex(std::string_view data);

// Digest of a file's bytes, read in chunks; NOT_FOUND / INVALID_ARGUMENT name the path.
Result<std::string> Sha256File(const std::string& path);

}  // namespace fpgaserve
