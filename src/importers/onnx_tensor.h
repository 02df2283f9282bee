// Decoding ONNX TensorProto constants (initializers, Constant nodes) into doubles, with every
// dims/size check a hostile file needs; shared helpers of the ONNX importer.
#pragma once

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "model/graph.h"

namespace fpgaserve::importers::onnx_detail {

// Far above anything that fits an FPGA; it bounds dims products (no overflow) and, because Scale
// layers are expanded per element, the memory a tiny hostile file can make us allocate.
inline constexpr std::int64_t kMaxTensorElements = std::int64_t{1} << 32;

// An initializer or Constant-node output, widened to double.
struct ConstTensor {
  std::vector<std::int64_t> dims;
  std::vector<double> values;
};

inline std::string Str(std::int64_t v) { return std::to_string(v); }

// Op types and domains come from the file; keep a hostile megabyte-long one out of messages.
std::string Cut(const std::string& s);
std::string DataTypeText(std::int32_t t);

// Product of dims, failing on negative dims or more than kMaxTensorElements elements.
template <typename Dims>
Result<std::int64_t> CountElements(const Dims& dims, const std::string& what) {
  std::int64_t count = 1;
  for (std::int64_t d : dims) {
    if (d < 0) return InvalidArgument(what + ": negative dimension " + Str(d));
    if (d != 0 && count > kMaxTensorElements / d) {
      return ResourceExhausted(what + ": more than " + Str(kMaxTensorElements) + " elements");
    }
    count *= d;
  }
  return count;
}

// Decodes raw_data (little-endian) or the typed fields of FLOAT, DOUBLE, FLOAT16, INT32, INT64.
Result<ConstTensor> DecodeTensor(const onnx::TensorProto& t, const std::string& what);
Result<model::DataType> FloatType(std::int32_t elem_type, const std::string& what);
// Broadcasts a constant over one sample of a [batch, shape...] tensor, numpy-style; empty when
// the constant would broadcast over the batch or grow the tensor.
std::vector<double> BroadcastOverSample(const ConstTensor& c, const model::Shape& shape);

}  // namespace fpgaserve::importers::onnx_detail
