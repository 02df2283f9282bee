// The Open Inference Protocol's tensor datatypes and their little-endian wire encodings, shared
// by the REST (JSON and binary extension) and gRPC front ends.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace fpgaserve::serving {

enum class DType { kBool, kUint8, kUint16, kUint32, kUint64, kInt8, kInt16, kInt32, kInt64,
                   kFp16, kFp32, kFp64, kBf16, kBytes };

std::optional<DType> ParseDType(std::string_view name);
const char* DTypeName(DType t);
// Bytes per element on the wire; 0 for BYTES (length-prefixed, variable).
int DTypeSize(DType t);
// The numeric types a model input accepts (everything except BOOL and BYTES).
bool IsNumeric(DType t);

float HalfToFloat(std::uint16_t h);
float BFloat16ToFloat(std::uint16_t h);

// Decodes `count` little-endian elements of type `t` from `bytes` (which must hold exactly
// count * DTypeSize(t) bytes) into doubles. `what` names the tensor in errors.
Status DecodeRaw(DType t, std::string_view bytes, std::size_t count, const std::string& what,
                 std::vector<double>* out);

// Appends the little-endian encoding of `values` to `out`.
void EncodeFp32(const std::vector<float>& values, std::string* out);
void EncodeInt64(const std::vector<std::int64_t>& values, std::string* out);

}  // namespace fpgaserve::serving
