#include "importers/hdf5_file.h"

#include <hdf5.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <limits>
#include <mutex>
#include <type_traits>
#include <utility>

#include "core/text.h"

namespace fpgaserve::importers {
namespace {

static_assert(std::is_same_v<hid_t, std::int64_t>, "Hdf5File stores hid_t as std::int64_t");

// Largest string attribute we read; Keras splits attributes at 64 KiB, model_config can be larger.
constexpr std::size_t kMaxAttributeBytes = std::size_t{256} << 20;

#ifndef H5_HAVE_THREADSAFE
// A library built without thread safety must never be entered from two threads at once.
std::mutex& LibraryMutex() {
  static std::mutex m;
  return m;
}
#endif

// Entered by every public method: serializes calls on non-thread-safe builds and turns off HDF5's
// default error printing to stderr, which is per-thread state in thread-safe builds.
class LibraryScope {
 public:
  LibraryScope() {
#ifndef H5_HAVE_THREADSAFE
    lock_ = std::unique_lock<std::mutex>(LibraryMutex());
#endif
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  }

 private:
#ifndef H5_HAVE_THREADSAFE
  std::unique_lock<std::mutex> lock_;
#endif
};

// Owns one HDF5 identifier and its matching close function.
class Handle {
 public:
  Handle(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  ~Handle() {
    if (id_ >= 0) close_(id_);
  }
  bool valid() const { return id_ >= 0; }
  hid_t get() const { return id_; }

 private:
  hid_t id_;
  herr_t (*close_)(hid_t);
};

// HDF5's own description of the most specific error on this thread's stack, e.g. "truncated file:
// eof = 1024, ..." or "file signature not found"; empty when there is none.
std::string LastHdf5Error() {
  std::string detail;
  H5Ewalk2(
      H5E_DEFAULT, H5E_WALK_UPWARD,
      [](unsigned n, const H5E_error2_t* err, void* out) -> herr_t {
        if (n == 0 && err != nullptr && err->desc != nullptr) {
          *static_cast<std::string*>(out) = err->desc;
        }
        return 0;
      },
      &detail);
  return detail;
}

std::string NormalizePath(const std::string& object_path) {
  if (object_path.empty()) return "/";
  return object_path;
}

std::string DisplayPath(const std::string& object_path) {
  if (object_path.empty() || object_path[0] != '/') return "/" + object_path;
  return object_path;
}

// An error about the whole file (`object_path` null) or one object in it, with HDF5's reason.
Status Fail(const std::string& file, const std::string* object_path, const std::string& what) {
  std::string message = file + ": ";
  if (object_path != nullptr) message += DisplayPath(*object_path) + ": ";
  message += what;
  std::string detail = LastHdf5Error();
  if (!detail.empty()) message += " (HDF5: " + detail + ")";
  return InvalidArgument(std::move(message));
}
Status Fail(const std::string& file, const std::string& object_path, const std::string& what) {
  return Fail(file, &object_path, what);
}

// Checks each link along the path; H5Lexists alone fails (rather than returning false) when an
// intermediate group is missing.
bool PathExists(hid_t file, const std::string& object_path) {
  std::string prefix;
  std::size_t start = 0;
  while (start <= object_path.size()) {
    std::size_t slash = object_path.find('/', start);
    if (slash == std::string::npos) slash = object_path.size();
    std::string part = object_path.substr(start, slash - start);
    start = slash + 1;
    if (part.empty() || part == ".") continue;
    prefix += "/" + part;
    if (H5Lexists(file, prefix.c_str(), H5P_DEFAULT) <= 0) return false;
    if (H5Oexists_by_name(file, prefix.c_str(), H5P_DEFAULT) <= 0) return false;
  }
  return true;
}

// Removes the padding of a fixed-length string element: everything from the first NUL, plus
// trailing spaces for space-padded types.
std::string TrimFixed(const char* data, std::size_t size, H5T_str_t pad) {
  std::size_t len = 0;
  while (len < size && data[len] != '\0') ++len;
  if (pad == H5T_STR_SPACEPAD) {
    while (len > 0 && data[len - 1] == ' ') --len;
  }
  return std::string(data, len);
}

}  // namespace

Result<Hdf5File> Hdf5File::Open(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return NotFound(path + ": no such file");
  if (std::filesystem::is_directory(path, ec)) {
    return InvalidArgument(path + ": is a directory, expected an HDF5 file");
  }
  LibraryScope scope;
  htri_t is_hdf5 = H5Fis_hdf5(path.c_str());
  if (is_hdf5 == 0) {
    return InvalidArgument(path + ": not an HDF5 file (no HDF5 signature found)");
  }
  if (is_hdf5 < 0) return Fail(path, nullptr, "cannot read the file as HDF5");
  // CLOSE_STRONG so that closing the file also releases any object a failed read left open.
  Handle fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  if (!fapl.valid() || H5Pset_fclose_degree(fapl.get(), H5F_CLOSE_STRONG) < 0) {
    return Fail(path, nullptr, "cannot create a file access property list");
  }
  hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl.get());
  if (file < 0) return Fail(path, nullptr, "cannot open the HDF5 file (damaged or truncated?)");
  return Hdf5File(path, file);
}

Hdf5File::Hdf5File(Hdf5File&& other) noexcept
    : path_(std::move(other.path_)), file_id_(std::exchange(other.file_id_, -1)) {}

Hdf5File& Hdf5File::operator=(Hdf5File&& other) noexcept {
  if (this != &other) {
    Close();
    path_ = std::move(other.path_);
    file_id_ = std::exchange(other.file_id_, -1);
  }
  return *this;
}

Hdf5File::~Hdf5File() { Close(); }

void Hdf5File::Close() {
  if (file_id_ >= 0) {
    LibraryScope scope;
    H5Fclose(file_id_);
    file_id_ = -1;
  }
}

bool Hdf5File::Exists(const std::string& object_path) const {
  LibraryScope scope;
  return PathExists(file_id_, object_path);
}

bool Hdf5File::IsGroup(const std::string& object_path) const {
  LibraryScope scope;
  if (!PathExists(file_id_, object_path)) return false;
  Handle object(H5Oopen(file_id_, NormalizePath(object_path).c_str(), H5P_DEFAULT), H5Oclose);
  return object.valid() && H5Iget_type(object.get()) == H5I_GROUP;
}

bool Hdf5File::HasAttribute(const std::string& object_path, const std::string& name) const {
  LibraryScope scope;
  if (!PathExists(file_id_, object_path)) return false;
  return H5Aexists_by_name(file_id_, NormalizePath(object_path).c_str(), name.c_str(),
                           H5P_DEFAULT) > 0;
}

Result<std::vector<std::string>> Hdf5File::ListMembers(const std::string& group_path) const {
  LibraryScope scope;
  if (!PathExists(file_id_, group_path)) return Fail(path_, group_path, "no such group");
  Handle group(H5Gopen2(file_id_, NormalizePath(group_path).c_str(), H5P_DEFAULT), H5Gclose);
  if (!group.valid()) return Fail(path_, group_path, "cannot open as a group");
  H5G_info_t info;
  if (H5Gget_info(group.get(), &info) < 0) return Fail(path_, group_path, "cannot read group info");
  std::vector<std::string> names;
  // A damaged header can claim billions of links; reading names fails long before that.
  names.reserve(static_cast<std::size_t>(std::min<hsize_t>(info.nlinks, 4096)));
  for (hsize_t i = 0; i < info.nlinks; ++i) {
    ssize_t len = H5Lget_name_by_idx(group.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0,
                                     H5P_DEFAULT);
    if (len < 0) return Fail(path_, group_path, "cannot read member name " + std::to_string(i));
    std::string name(static_cast<std::size_t>(len) + 1, '\0');
    if (H5Lget_name_by_idx(group.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i, name.data(),
                           name.size(), H5P_DEFAULT) < 0) {
      return Fail(path_, group_path, "cannot read member name " + std::to_string(i));
    }
    name.resize(static_cast<std::size_t>(len));
    names.push_back(std::move(name));
  }
  return names;
}

Result<std::vector<std::string>> Hdf5File::ReadStringAttribute(const std::string& object_path,
                                                               const std::string& name) const {
  LibraryScope scope;
  const std::string where = "attribute '" + name + "'";
  if (!PathExists(file_id_, object_path)) return Fail(path_, object_path, "no such object");
  Handle attr(H5Aopen_by_name(file_id_, NormalizePath(object_path).c_str(), name.c_str(),
                              H5P_DEFAULT, H5P_DEFAULT),
              H5Aclose);
  if (!attr.valid()) return Fail(path_, object_path, "no " + where);
  Handle type(H5Aget_type(attr.get()), H5Tclose);
  Handle space(H5Aget_space(attr.get()), H5Sclose);
  if (!type.valid() || !space.valid()) return Fail(path_, object_path, "cannot read " + where);
  int rank = H5Sget_simple_extent_ndims(space.get());
  hssize_t count = H5Sget_simple_extent_npoints(space.get());
  if (rank < 0 || count < 0) return Fail(path_, object_path, "cannot read the shape of " + where);
  if (rank > 1) {
    return Fail(path_, object_path,
                where + " has rank " + std::to_string(rank) + ", expected a scalar or 1-D array");
  }
  std::vector<std::string> out;
  if (count == 0) return out;
  if (H5Tget_class(type.get()) != H5T_STRING) {
    return Fail(path_, object_path, where + " is not a string (expected strings)");
  }
  const auto n = static_cast<std::size_t>(count);
  if (n > kMaxAttributeBytes / sizeof(char*)) {
    return Fail(path_, object_path, where + " has " + std::to_string(n) + " strings, too many");
  }
  out.reserve(n);
  htri_t is_variable = H5Tis_variable_str(type.get());
  if (is_variable < 0) return Fail(path_, object_path, "cannot read the string type of " + where);
  if (is_variable > 0) {
    Handle mem_type(H5Tcopy(H5T_C_S1), H5Tclose);
    if (!mem_type.valid() || H5Tset_size(mem_type.get(), H5T_VARIABLE) < 0 ||
        H5Tset_cset(mem_type.get(), H5Tget_cset(type.get())) < 0) {
      return Fail(path_, object_path, "cannot build a string type for " + where);
    }
    std::vector<char*> buffer(n, nullptr);
    if (H5Aread(attr.get(), mem_type.get(), buffer.data()) < 0) {
      return Fail(path_, object_path, "cannot read " + where);
    }
    for (char* s : buffer) out.emplace_back(s != nullptr ? s : "");
    H5Dvlen_reclaim(mem_type.get(), space.get(), H5P_DEFAULT, buffer.data());
    return out;
  }
  std::size_t size = H5Tget_size(type.get());
  if (size == 0 || n > kMaxAttributeBytes / size) {
    return Fail(path_, object_path, where + " is too large or has an invalid string size");
  }
  H5T_str_t pad = H5Tget_strpad(type.get());
  // Reading with the file's own string type avoids any padding conversion; we trim ourselves.
  Handle mem_type(H5Tcopy(type.get()), H5Tclose);
  std::vector<char> buffer(n * size);
  if (!mem_type.valid() || H5Aread(attr.get(), mem_type.get(), buffer.data()) < 0) {
    return Fail(path_, object_path, "cannot read " + where);
  }
  for (std::size_t i = 0; i < n; ++i) out.push_back(TrimFixed(buffer.data() + i * size, size, pad));
  return out;
}

Result<std::string> Hdf5File::ReadScalarStringAttribute(const std::string& object_path,
                                                        const std::string& name) const {
  ASSIGN_OR_RETURN(auto values, ReadStringAttribute(object_path, name));
  if (values.size() != 1) {
    return InvalidArgument(path_ + ": " + DisplayPath(object_path) + ": attribute '" + name +
                           "' holds " + std::to_string(values.size()) +
                           " strings, expected exactly one");
  }
  return std::move(values[0]);
}

// Uncompressed datasets must store at least as many bytes as their shape claims, and no more
// than the file holds; checking first keeps a damaged shape from causing a huge allocation.
Status Hdf5File::CheckStoredSize(std::int64_t dataset, std::int64_t type, std::int64_t count,
                                 const std::string& dataset_path) const {
  Handle dcpl(H5Dget_create_plist(dataset), H5Pclose);
  if (!dcpl.valid()) return Fail(path_, dataset_path, "cannot read its creation properties");
  H5D_layout_t layout = H5Pget_layout(dcpl.get());
  if (layout != H5D_CONTIGUOUS && layout != H5D_COMPACT) return Status::Ok();  // maybe compressed
  const auto element = static_cast<std::uint64_t>(H5Tget_size(type));
  const auto stored = static_cast<std::uint64_t>(H5Dget_storage_size(dataset));
  hsize_t file_size = 0;
  if (element == 0 || H5Fget_filesize(file_id_, &file_size) < 0) {
    return Fail(path_, dataset_path, "cannot read its element size");
  }
  const auto needed = static_cast<std::uint64_t>(count);
  if (needed > stored / element || needed > file_size / element) {
    return Fail(path_, dataset_path,
                "shape claims " + std::to_string(count) + " elements but the file stores " +
                    std::to_string(stored) + " bytes for it (damaged file?)");
  }
  return Status::Ok();
}

Result<Hdf5Array> Hdf5File::ReadDataset(const std::string& dataset_path,
                                        std::int64_t max_elements) const {
  LibraryScope scope;
  if (!PathExists(file_id_, dataset_path)) return Fail(path_, dataset_path, "no such dataset");
  Handle dataset(H5Dopen2(file_id_, NormalizePath(dataset_path).c_str(), H5P_DEFAULT), H5Dclose);
  if (!dataset.valid()) return Fail(path_, dataset_path, "cannot open as a dataset");
  Handle type(H5Dget_type(dataset.get()), H5Tclose);
  Handle space(H5Dget_space(dataset.get()), H5Sclose);
  if (!type.valid() || !space.valid()) return Fail(path_, dataset_path, "cannot read its type");
  if (H5Tget_class(type.get()) != H5T_FLOAT) {
    return Fail(path_, dataset_path, "element type is not floating point (expected float32/64)");
  }
  int rank = H5Sget_simple_extent_ndims(space.get());
  if (rank < 0 || rank > 32) return Fail(path_, dataset_path, "cannot read its shape");
  std::vector<hsize_t> dims(static_cast<std::size_t>(rank));
  if (rank > 0 && H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr) < 0) {
    return Fail(path_, dataset_path, "cannot read its shape");
  }
  Hdf5Array array;
  std::int64_t count = 1;
  for (hsize_t d : dims) {
    if (d > static_cast<hsize_t>(std::numeric_limits<std::int64_t>::max())) {
      return Fail(path_, dataset_path, "dimension too large");
    }
    auto dim = static_cast<std::int64_t>(d);
    array.dims.push_back(dim);
    if (dim != 0 && count > max_elements / dim) {
      return ResourceExhausted(path_ + ": " + DisplayPath(dataset_path) +
                               ": dataset has more than " + std::to_string(max_elements) +
                               " elements (the configured limit)");
    }
    count *= dim;
  }
  if (count > max_elements) {
    return ResourceExhausted(path_ + ": " + DisplayPath(dataset_path) + ": dataset has " +
                             std::to_string(count) + " elements, more than the limit " +
                             std::to_string(max_elements));
  }
  RETURN_IF_ERROR(CheckStoredSize(dataset.get(), type.get(), count, dataset_path));
  array.values.resize(static_cast<std::size_t>(count));
  if (count > 0 && H5Dread(dataset.get(), H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                           array.values.data()) < 0) {
    return Fail(path_, dataset_path, "cannot read the data (damaged or truncated file?)");
  }
  return array;
}

}  // namespace fpgaserve::importers
