#include "core/file_io.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace fpgaserve {
namespace fs = std::filesystem;

namespace {

Status CheckRegularFile(const std::string& path, std::uintmax_t* size) {
  std::error_code ec;
  auto st = fs::status(path, ec);
  if (ec || !fs::exists(st)) return NotFound(path + ": no such file");
  if (fs::is_directory(st)) return InvalidArgument(path + ": is a directory, expected a file");
  *size = fs::file_size(path, ec);
  if (ec) return InvalidArgument(path + ": cannot read size: " + ec.message());
  return Status::Ok();
}

}  // namespace

Result<std::string> ReadFile(const std::string& path, std::uint64_t max_bytes) {
  std::uintmax_t size = 0;
  RETURN_IF_ERROR(CheckRegularFile(path, &size));
  if (size > max_bytes) {
    return ResourceExhausted(path + ": file is " + std::to_string(size) +
                             " bytes, larger than the limit of " + std::to_string(max_bytes));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return InvalidArgument(path + ": cannot open: " + std::strerror(errno));
  std::string data(size, '\0');
  in.read(data.data(), static_cast<std::streamsize>(size));
  if (static_cast<std::uintmax_t>(in.gcount()) != size) {
    return InvalidArgument(path + ": short read");
  }
  return data;
}

Result<std::string> ReadFilePrefix(const std::string& path, std::size_t n) {
  std::uintmax_t size = 0;
  RETURN_IF_ERROR(CheckRegularFile(path, &size));
  std::ifstream in(path, std::ios::binary);
  if (!in) return InvalidArgument(path + ": cannot open: " + std::strerror(errno));
  std::string data(std::min<std::uintmax_t>(n, size), '\0');
  in.read(data.data(), static_cast<std::streamsize>(data.size()));
  data.resize(static_cast<std::size_t>(in.gcount()));
  return data;
}

Status WriteFileAtomic(const std::string& path, const std::string& contents) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return InvalidArgument(path + ": cannot write: " + std::strerror(errno));
    out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
    out.flush();
    if (!out) return InvalidArgument(path + ": write failed: " + std::strerror(errno));
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    return InvalidArgument(path + ": cannot rename temp file: " + ec.message());
  }
  return Status::Ok();
}

}  // namespace fpgaserve
