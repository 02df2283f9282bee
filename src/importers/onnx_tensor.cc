#include "importers/onnx_tensor.h"

#include <bit>
#include <cmath>
#include <cstring>

namespace fpgaserve::importers::onnx_detail {

using onnx::TensorProto;

namespace {
}  // namespace


std::string Cut(const std::string& s) { return s.size() > 60 ? s.substr(0, 60) + "..." : s; }

std::string DataTypeText(std::int32_t t) {
  return TensorProto::DataType_IsValid(t)
             ? TensorProto::DataType_Name(static_cast<TensorProto::DataType>(t))
             : "data type " + Str(t);
}

// The element count of `dims`, or an error for negative dims and absurd sizes.
double HalfToDouble(std::uint16_t h) {
  const int exponent = (h >> 10) & 0x1f;
  const int mantissa = h & 0x3ff;
  double v;
  if (exponent == 0) {
    v = std::ldexp(mantissa, -24);  // subnormal
  } else if (exponent == 31) {
    v = mantissa ? std::nan("") : INFINITY;
  } else {
    v = std::ldexp(mantissa + 1024, exponent - 25);
  }
  return (h & 0x8000) ? -v : v;
}

// Decodes one little-endian element; raw_data is little-endian whatever the host is.
double DecodeRaw(const unsigned char* p, std::int32_t type) {
  auto load = [p](int n) {
    std::uint64_t v = 0;
    for (int i = 0; i < n; ++i) v |= std::uint64_t{p[i]} << (8 * i);
    return v;
  };
  switch (type) {
    case TensorProto::FLOAT:
      return std::bit_cast<float>(static_cast<std::uint32_t>(load(4)));
    case TensorProto::DOUBLE:
      return std::bit_cast<double>(load(8));
    case TensorProto::FLOAT16:
      return HalfToDouble(static_cast<std::uint16_t>(load(2)));
    case TensorProto::INT64:
      return static_cast<double>(static_cast<std::int64_t>(load(8)));
    default:
      return static_cast<double>(static_cast<std::int32_t>(load(4)));  // INT32
  }
}

Result<ConstTensor> DecodeTensor(const TensorProto& t, const std::string& what) {
  if (t.data_location() == TensorProto::EXTERNAL) {
    return Unimplemented(what + ": external data is not supported; save the model with its " +
                         "tensors inside the .onnx file");
  }
  if (t.has_segment()) return Unimplemented(what + ": segmented tensors are not supported");
  int elem_size = 0;
  switch (t.data_type()) {
    case TensorProto::FLOAT:
    case TensorProto::INT32:
      elem_size = 4;
      break;
    case TensorProto::DOUBLE:
    case TensorProto::INT64:
      elem_size = 8;
      break;
    case TensorProto::FLOAT16:
      elem_size = 2;
      break;
    default:
      return Unimplemented(what + ": " + DataTypeText(t.data_type()) +
                           " is not supported; expected FLOAT, DOUBLE, FLOAT16, INT64 or INT32");
  }
  ConstTensor c;
  c.dims.assign(t.dims().begin(), t.dims().end());
  ASSIGN_OR_RETURN(const std::int64_t count, CountElements(c.dims, what));
  const std::string need = " but its dims " + model::ShapeToString(c.dims) + " need " + Str(count);
  if (t.has_raw_data()) {
    const std::string& raw = t.raw_data();
    if (static_cast<std::int64_t>(raw.size()) != count * elem_size) {
      return InvalidArgument(what + ": raw_data holds " +
                             Str(static_cast<std::int64_t>(raw.size())) + " bytes" + need + " " +
                             DataTypeText(t.data_type()) + " values (" + Str(count * elem_size) +
                             " bytes)");
    }
    c.values.resize(static_cast<std::size_t>(count));
    const auto* p = reinterpret_cast<const unsigned char*>(raw.data());
    for (std::int64_t i = 0; i < count; ++i)
      c.values[i] = DecodeRaw(p + i * elem_size, t.data_type());
    return c;
  }
  switch (t.data_type()) {
    case TensorProto::FLOAT:
      c.values.assign(t.float_data().begin(), t.float_data().end());
      break;
    case TensorProto::DOUBLE:
      c.values.assign(t.double_data().begin(), t.double_data().end());
      break;
    case TensorProto::INT64:
      c.values.assign(t.int64_data().begin(), t.int64_data().end());
      break;
    case TensorProto::INT32:
      c.values.assign(t.int32_data().begin(), t.int32_data().end());
      break;
    default:  // FLOAT16 keeps its bit patterns in int32_data
      for (std::int32_t bits : t.int32_data()) c.values.push_back(HalfToDouble(bits & 0xffff));
  }
  if (static_cast<std::int64_t>(c.values.size()) != count) {
    return InvalidArgument(what + ": holds " + Str(static_cast<std::int64_t>(c.values.size())) +
                           " values" + need);
  }
  return c;
}

Result<model::DataType> FloatType(std::int32_t elem_type, const std::string& what) {
  switch (elem_type) {
    case TensorProto::FLOAT:
      return model::DataType::kFP32;
    case TensorProto::DOUBLE:
      return model::DataType::kFP64;
    case TensorProto::FLOAT16:
      return model::DataType::kFP16;
    default:
      return Unimplemented(what + " has element type " + DataTypeText(elem_type) +
                           "; expected FLOAT, DOUBLE or FLOAT16");
  }
}

// Broadcasts a constant over one sample of a [batch, shape...] tensor, numpy-style, returning
// one value per sample element; empty when the constant would broadcast over the batch or grow
// the tensor, which no per-feature Scale can express.
std::vector<double> BroadcastOverSample(const ConstTensor& c, const model::Shape& shape) {
  const std::size_t rank = c.dims.size(), k = shape.size();
  if (rank > k + 1) return {};
  std::vector<std::int64_t> stride(k, 0);  // the constant's stride per sample axis; 0 = broadcast
  std::int64_t step = 1;
  for (std::size_t j = 0; j < rank; ++j) {  // j-th axis from the right
    const std::int64_t d = c.dims[rank - 1 - j];
    if (j == k) {
      if (d != 1) return {};  // lines up with the batch axis
    } else {
      if (d != 1 && d != shape[k - 1 - j]) return {};
      if (d != 1) stride[k - 1 - j] = step;
    }
    step *= d;
  }
  std::vector<double> out(static_cast<std::size_t>(model::ElementCount(shape)));
  for (std::size_t e = 0; e < out.size(); ++e) {
    std::int64_t rem = static_cast<std::int64_t>(e), index = 0;
    for (std::size_t a = k; a-- > 0;) {
      index += (rem % shape[a]) * stride[a];
      rem /= shape[a];
    }
    out[e] = c.values[static_cast<std::size_t>(index)];
  }
  return out;
}

}  // namespace fpgaserve::importers::onnx_detail
