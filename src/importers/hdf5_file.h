// Read-only access to HDF5 files (Keras models and weights) through the HDF5 C API, with RAII
// handles. Every failure, including a truncated or non-HDF5 file, becomes a Status naming the file
// and object.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"

namespace fpgaserve::importers {

// A numeric dataset converted to float64; dims are the dataset's dimensions (empty for a scalar)
// and values are in row-major (C) order.
struct Hdf5Array {
  std::vector<std::int64_t> dims;
  std::vector<double> values;
};

// Object paths are relative to the file root ("model_weights/dense/dense/kernel:0"); "" and "/"
// both mean the root group. Methods are const and independent, so one open file can be read by
// several importer steps; the HDF5 library serializes concurrent calls itself (thread-safe build)
// or this wrapper does (otherwise).
class Hdf5File {
 public:
  // Opens read-only. NOT_FOUND when the file does not exist; INVALID_ARGUMENT when it is not an
  // HDF5 file or is damaged (e.g. truncated), with HDF5's own reason appended.
  static Result<Hdf5File> Open(const std::string& path);

  Hdf5File(Hdf5File&&) noexcept;
  Hdf5File& operator=(Hdf5File&&) noexcept;
  Hdf5File(const Hdf5File&) = delete;
  Hdf5File& operator=(const Hdf5File&) = delete;
  ~Hdf5File();

  const std::string& path() const { return path_; }

  // True when every link along `object_path` exists and resolves to an object.
  bool Exists(const std::string& object_path) const;
  bool IsGroup(const std::string& object_path) const;
  bool HasAttribute(const std::string& object_path, const std::string& name) const;

  // Names of the links in a group, in HDF5 name order (so "10" sorts before "2").
  Result<std::vector<std::string>> ListMembers(const std::string& group_path) const;

  // Reads a string attribute: fixed- or variable-length strings, scalar (one element) or 1-D.
  // Trailing NUL padding (and space padding, for space-padded types) is removed. An empty 1-D
  // attribute of any type yields an empty list, because Keras writes `[]` as an empty float array.
  Result<std::vector<std::string>> ReadStringAttribute(const std::string& object_path,
                                                       const std::string& name) const;
  // As above, but requires exactly one string.
  Result<std::string> ReadScalarStringAttribute(const std::string& object_path,
                                                const std::string& name) const;

  // Reads a floating-point dataset (float16/32/64 on disk) as float64. Fails on other element
  // types and with RESOURCE_EXHAUSTED when it has more than max_elements values.
  Result<Hdf5Array> ReadDataset(const std::string& dataset_path,
                                std::int64_t max_elements = std::int64_t{1} << 31) const;

 private:
  Hdf5File(std::string path, std::int64_t file_id) : path_(std::move(path)), file_id_(file_id) {}
  void Close();
  Status CheckStoredSize(std::int64_t dataset, std::int64_t type, std::int64_t count,
                         const std::string& dataset_path) const;

  std::string path_;
  std::int64_t file_id_ = -1;  // hid_t, kept as int64 so this header does not need hdf5.h
};

}  // namespace fpgaserve::importers
