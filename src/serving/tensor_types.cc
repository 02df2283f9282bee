#include "serving/tensor_types.h"

#include <array>
#include <cmath>
#include <cstring>

namespace fpgaserve::serving {
namespace {

struct DTypeInfo {
  DType type;
  const char* name;
  int size;
};

constexpr std::array<DTypeInfo, 14> kTypes{{
    {DType::kBool, "BOOL", 1},     {DType::kUint8, "UINT8", 1},   {DType::kUint16, "UINT16", 2},
    {DType::kUint32, "UINT32", 4}, {DType::kUint64, "UINT64", 8}, {DType::kInt8, "INT8", 1},
    {DType::kInt16, "INT16", 2},   {DType::kInt32, "INT32", 4},   {DType::kInt64, "INT64", 8},
    {DType::kFp16, "FP16", 2},     {DType::kFp32, "FP32", 4},     {DType::kFp64, "FP64", 8},
    {DType::kBf16, "BF16", 2},     {DType::kBytes, "BYTES", 0},
}};

template <typename T>
T Load(const char* p) {
  T v;
  std::memcpy(&v, p, sizeof v);  // the host is little-endian (x86-64, aarch64), as is the wire
  return v;
}

}  // namespace

std::optional<DType> ParseDType(std::string_view name) {
  for (const auto& t : kTypes) {
    if (name == t.name) return t.type;
  }
  return std::nullopt;
}

const char* DTypeName(DType t) { return kTypes[static_cast<int>(t)].name; }
int DTypeSize(DType t) { return kTypes[static_cast<int>(t)].size; }
bool IsNumeric(DType t) { return t != DType::kBool && t != DType::kBytes; }

float HalfToFloat(std::uint16_t h) {
  const int sign = (h >> 15) & 1, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  float v;
  if (exp == 0) {
    v = std::ldexp(static_cast<float>(mant), -24);  // zero and subnormals
  } else if (exp == 31) {
    v = mant ? std::nanf("") : INFINITY;
  } else {
    v = std::ldexp(static_cast<float>(mant | 0x400), exp - 25);
  }
  return sign ? -v : v;
}

float BFloat16ToFloat(std::uint16_t h) {
  const std::uint32_t bits = static_cast<std::uint32_t>(h) << 16;
  float v;
  std::memcpy(&v, &bits, sizeof v);
  return v;
}

Status DecodeRaw(DType t, std::string_view bytes, std::size_t count, const std::string& what,
                 std::vector<double>* out) {
  const int size = DTypeSize(t);
  if (size == 0) return InvalidArgument(what + ": BYTES tensors have no fixed-size raw encoding");
  if (bytes.size() != count * static_cast<std::size_t>(size)) {
    return InvalidArgument(what + ": " + std::to_string(bytes.size()) + " bytes of raw data; its shape and " +
                           DTypeName(t) + " need " + std::to_string(count) + " x " +
                           std::to_string(size) + " = " + std::to_string(count * size) + " bytes");
  }
  out->resize(count);
  const char* p = bytes.data();
  for (std::size_t i = 0; i < count; ++i, p += size) {
    double v = 0;
    switch (t) {
      case DType::kBool: v = Load<std::uint8_t>(p) ? 1 : 0; break;
      case DType::kUint8: v = Load<std::uint8_t>(p); break;
      case DType::kUint16: v = Load<std::uint16_t>(p); break;
      case DType::kUint32: v = Load<std::uint32_t>(p); break;
      case DType::kUint64: v = static_cast<double>(Load<std::uint64_t>(p)); break;
      case DType::kInt8: v = Load<std::int8_t>(p); break;
      case DType::kInt16: v = Load<std::int16_t>(p); break;
      case DType::kInt32: v = Load<std::int32_t>(p); break;
      case DType::kInt64: v = static_cast<double>(Load<std::int64_t>(p)); break;
      case DType::kFp16: v = HalfToFloat(Load<std::uint16_t>(p)); break;
      case DType::kFp32: v = Load<float>(p); break;
      case DType::kFp64: v = Load<double>(p); break;
      case DType::kBf16: v = BFloat16ToFloat(Load<std::uint16_t>(p)); break;
      case DType::kBytes: break;
    }
    (*out)[i] = v;
  }
  return Status::Ok();
}

void EncodeFp32(const std::vector<float>& values, std::string* out) {
  const std::size_t at = out->size();
  out->resize(at + values.size() * sizeof(float));
  if (!values.empty()) std::memcpy(out->data() + at, values.data(), values.size() * sizeof(float));
}

void EncodeInt64(const std::vector<std::int64_t>& values, std::string* out) {
  const std::size_t at = out->size();
  out->resize(at + values.size() * sizeof(std::int64_t));
  if (!values.empty()) {
    std::memcpy(out->data() + at, values.data(), values.size() * sizeof(std::int64_t));
  }
}

}  // namespace fpgaserve::serving
