// Reading whole files with an explicit size limit, and probing their first bytes.
// Every external file enters fpgaserve through here so limits and error messages are uniform.
#pragma once

#include <cstdint>
#include <string>

#include "core/status.h"

namespace fpgaserve {

inline constexpr std::uint64_t kDefaultMaxFileBytes = 1ULL << 30;  // 1 GiB

// Reads the whole file; fails with NOT_FOUND, INVALID_ARGUMENT (a directory, unreadable) or
// RESOURCE_EXHAUSTED when it is larger than max_bytes.
Result<std::string> ReadFile(const std::string& path, std::uint64_t max_bytes = kDefaultMaxFileBytes);

// Reads at most n bytes from the start of the file (for content sniffing).
Result<std::string> ReadFilePrefix(const std::string& path, std::size_t n);

// Writes the file atomically (temp file + rename) so a failure never leaves half a file.
Status WriteFileAtomic(const std::string& path, const std::string& contents);

}  // namespace fpgaserve
