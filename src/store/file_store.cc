// file:///abs/dir: objects are files under the root directory. Writes go to a temp file beside
// the target and are renamed into place, so a reader never sees half an object. Digests are not
// stored: the file's bytes are the record, and the sha256 is computed whenever it is read.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/sha256.h"
#include "core/text.h"
#include "store/object_store.h"

namespace fpgaserve::store {
namespace internal {

namespace fs = std::filesystem;

namespace {

constexpr std::size_t kChunk = 1 << 20;

std::string Errno() { return std::strerror(errno); }

// A temp file beside `target` that is removed unless Commit() renamed it into place. Its name has
// a '~', which keys cannot contain, so List never shows it.
class TempFile {
 public:
  static Result<TempFile> Create(const std::string& target) {
    static std::atomic<unsigned> counter{0};
    std::error_code ec;
    fs::path parent = fs::path(target).parent_path();
    if (!parent.empty()) fs::create_directories(parent, ec);
    if (ec) return InvalidArgument("cannot create directory " + parent.string() + ": " + ec.message());
    TempFile t;
    t.path_ = target + "~tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
    t.fd_ = ::open(t.path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (t.fd_ < 0) return InvalidArgument("cannot create " + t.path_ + ": " + Errno());
    return t;
  }
  TempFile() = default;
  TempFile(TempFile&& o) noexcept : path_(std::move(o.path_)), fd_(o.fd_) { o.fd_ = -1; o.path_.clear(); }
  TempFile& operator=(TempFile&&) = delete;
  ~TempFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!path_.empty()) ::unlink(path_.c_str());
  }

  Status Write(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::write(fd_, data.data(), data.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return InvalidArgument("cannot write " + path_ + ": " + Errno());
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return Status::Ok();
  }
  Status Commit(const std::string& target) {
    if (::fsync(fd_) != 0) return InvalidArgument("cannot flush " + path_ + ": " + Errno());
    int rc = ::close(fd_);
    fd_ = -1;
    if (rc != 0) return InvalidArgument("cannot close " + path_ + ": " + Errno());
    if (::rename(path_.c_str(), target.c_str()) != 0) {
      return InvalidArgument("cannot rename " + path_ + " to " + target + ": " + Errno());
    }
    path_.clear();
    return Status::Ok();
  }

 private:
  std::string path_;
  int fd_ = -1;
};

// Copies `src` to `dst` through a temp file, hashing the bytes; fails with RESOURCE_EXHAUSTED
// (before writing anything) when src is larger than max_bytes.
Result<ObjectInfo> CopyFile(const std::string& src, const std::string& dst, std::uint64_t max_bytes,
                            const std::string& what) {
  int in = ::open(src.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) {
    if (errno == ENOENT) return NotFound(what + ": no such file " + src);
    return InvalidArgument(what + ": cannot open " + src + ": " + Errno());
  }
  struct CloseIn {
    int fd;
    ~CloseIn() { ::close(fd); }
  } close_in{in};
  struct stat st {};
  if (::fstat(in, &st) != 0) return InvalidArgument(what + ": cannot stat " + src + ": " + Errno());
  if (!S_ISREG(st.st_mode)) return InvalidArgument(what + ": " + src + " is not a regular file");
  auto size = static_cast<std::uint64_t>(st.st_size);
  if (size > max_bytes) {
    return ResourceExhausted(what + ": " + src + " is " + std::to_string(size) + " bytes, above the limit of " +
                             std::to_string(max_bytes) + " bytes (max_object_bytes)");
  }
  ASSIGN_OR_RETURN(TempFile tmp, TempFile::Create(dst));
  Sha256 sha;
  std::string buf(kChunk, '\0');
  std::uint64_t total = 0;
  while (true) {
    ssize_t n = ::read(in, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return InvalidArgument(what + ": cannot read " + src + ": " + Errno());
    if (n == 0) break;
    total += static_cast<std::uint64_t>(n);
    if (total > max_bytes) {
      return ResourceExhausted(what + ": " + src + " grew above the limit of " + std::to_string(max_bytes) +
                               " bytes (max_object_bytes) while being copied");
    }
    std::string_view chunk(buf.data(), static_cast<std::size_t>(n));
    sha.Update(chunk);
    RETURN_IF_ERROR(tmp.Write(chunk));
  }
  RETURN_IF_ERROR(tmp.Commit(dst));
  ObjectInfo info;
  info.size = total;
  info.sha256 = sha.FinishHex();
  return info;
}

class FileStore : public ObjectStore {
 public:
  FileStore(std::string uri, std::string root, std::uint64_t max_bytes)
      : uri_(std::move(uri)), root_(std::move(root)), max_bytes_(max_bytes) {}

  std::string Uri() const override { return uri_; }

  Result<ObjectInfo> Put(const std::string& key, const std::string& local_path) override {
    RETURN_IF_ERROR(ValidateKey(key));
    ASSIGN_OR_RETURN(std::string target, Target(key, "put"));
    ASSIGN_OR_RETURN(ObjectInfo info, CopyFile(local_path, target, max_bytes_, "put " + Describe(key)));
    info.key = key;
    return info;
  }

  Result<ObjectInfo> PutBytes(const std::string& key, std::string_view data) override {
    RETURN_IF_ERROR(ValidateKey(key));
    if (data.size() > max_bytes_) return TooLarge(key, data.size());
    ASSIGN_OR_RETURN(std::string target, Target(key, "put"));
    ASSIGN_OR_RETURN(TempFile tmp, TempFile::Create(target));
    RETURN_IF_ERROR(tmp.Write(data));
    RETURN_IF_ERROR(tmp.Commit(target));
    return ObjectInfo{key, data.size(), Sha256Hex(data)};
  }

  Result<ObjectInfo> Get(const std::string& key, const std::string& local_path) override {
    RETURN_IF_ERROR(ValidateKey(key));
    std::string src = Path(key);
    std::error_code ec;
    if (!fs::is_regular_file(src, ec)) return NotFound("get " + Describe(key) + ": no such object");
    ASSIGN_OR_RETURN(ObjectInfo info, CopyFile(src, local_path, max_bytes_, "get " + Describe(key)));
    info.key = key;
    return info;
  }

  Result<std::string> GetBytes(const std::string& key) override {
    RETURN_IF_ERROR(ValidateKey(key));
    std::string src = Path(key);
    std::error_code ec;
    if (!fs::is_regular_file(src, ec)) return NotFound("get " + Describe(key) + ": no such object");
    auto size = fs::file_size(src, ec);
    if (ec) return InvalidArgument("get " + Describe(key) + ": " + ec.message());
    if (size > max_bytes_) return TooLarge(key, size);
    std::ifstream in(src, std::ios::binary);
    std::string data(static_cast<std::size_t>(size), '\0');
    if (!in.read(data.data(), static_cast<std::streamsize>(size))) {
      return InvalidArgument("get " + Describe(key) + ": cannot read " + src);
    }
    return data;
  }

  Result<std::optional<ObjectInfo>> Stat(const std::string& key) override {
    RETURN_IF_ERROR(ValidateKey(key));
    std::string src = Path(key);
    std::error_code ec;
    if (!fs::is_regular_file(src, ec)) return std::optional<ObjectInfo>();
    ASSIGN_OR_RETURN(std::string digest, Sha256File(src));
    auto size = fs::file_size(src, ec);
    if (ec) return InvalidArgument("stat " + Describe(key) + ": " + ec.message());
    return std::optional<ObjectInfo>(ObjectInfo{key, size, digest});
  }

  // Objects under the root (recursively), sorted. Digests are left empty: computing them would
  // read every file; Stat or Get give them.
  Result<std::vector<ObjectInfo>> List(const std::string& prefix) override {
    std::vector<ObjectInfo> out;
    std::error_code ec;
    if (!fs::exists(root_, ec)) return out;
    if (!fs::is_directory(root_, ec)) {
      return InvalidArgument("list " + uri_ + ": the root " + root_ + " is not a directory");
    }
    // Only walk the directory that can hold matching keys.
    fs::path start = root_;
    auto slash = prefix.rfind('/');
    if (slash != std::string::npos) {
      std::string dir = prefix.substr(0, slash);
      if (!ValidateKey(dir).ok()) return out;  // no valid key can match
      start = fs::path(root_) / dir;
      if (!fs::is_directory(start, ec)) return out;
    }
    fs::recursive_directory_iterator it(start, fs::directory_options::skip_permission_denied, ec), end;
    if (ec) return InvalidArgument("list " + uri_ + ": cannot read " + start.string() + ": " + ec.message());
    for (; it != end; it.increment(ec)) {
      if (ec) return InvalidArgument("list " + uri_ + ": " + ec.message());
      if (!it->is_regular_file(ec)) continue;
      std::string rel = it->path().lexically_relative(root_).generic_string();
      if (rel.compare(0, prefix.size(), prefix) != 0) continue;
      if (!ValidateKey(rel).ok()) continue;  // temp files ('~') and foreign names
      auto size = it->file_size(ec);
      if (ec) continue;  // removed meanwhile
      out.push_back(ObjectInfo{rel, size, ""});
    }
    std::sort(out.begin(), out.end(), [](const ObjectInfo& a, const ObjectInfo& b) { return a.key < b.key; });
    return out;
  }

  Status Delete(const std::string& key) override {
    RETURN_IF_ERROR(ValidateKey(key));
    std::string path = Path(key);
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      return InvalidArgument("delete " + Describe(key) + ": cannot remove " + path + ": " + Errno());
    }
    // Prune directories the object leaves empty (never the root itself).
    fs::path dir = fs::path(path).parent_path();
    while (dir.string().size() > root_.size() && ::rmdir(dir.c_str()) == 0) dir = dir.parent_path();
    return Status::Ok();
  }

 private:
  std::string Path(const std::string& key) const { return root_ == "/" ? "/" + key : root_ + "/" + key; }
  std::string Describe(const std::string& key) const {
    return (uri_.back() == '/' ? uri_ : uri_ + "/") + key;
  }
  Status TooLarge(const std::string& key, std::uint64_t size) const {
    return ResourceExhausted(Describe(key) + " is " + std::to_string(size) + " bytes, above the limit of " +
                             std::to_string(max_bytes_) + " bytes (max_object_bytes)");
  }
  // The target path, refusing when a directory sits where the file should be, or a file where a
  // parent directory should be.
  Result<std::string> Target(const std::string& key, const char* op) const {
    std::string path = Path(key);
    std::error_code ec;
    if (fs::is_directory(path, ec)) {
      return AlreadyExists(std::string(op) + " " + Describe(key) + ": a directory " + path +
                           " is in the way (it holds other objects)");
    }
    for (fs::path p = fs::path(path).parent_path(); p.string().size() > root_.size(); p = p.parent_path()) {
      if (fs::exists(p, ec) && !fs::is_directory(p, ec)) {
        return AlreadyExists(std::string(op) + " " + Describe(key) + ": " + p.string() +
                             " is an object, so it cannot also be a directory");
      }
    }
    return path;
  }

  std::string uri_;
  std::string root_;
  std::uint64_t max_bytes_;
};

}  // namespace

Result<std::unique_ptr<ObjectStore>> OpenFileStore(const std::string& uri, const std::string& root,
                                                   const StoreOptions& options) {
  std::error_code ec;
  if (fs::exists(root, ec) && !fs::is_directory(root, ec)) {
    return InvalidArgument("store URI " + Quote(uri, 200) + ": " + root + " exists and is not a directory");
  }
  return std::unique_ptr<ObjectStore>(std::make_unique<FileStore>(uri, root, options.max_object_bytes));
}

}  // namespace internal
}  // namespace fpgaserve::store
