// The host side of the iCE40 UART link (docs/hardware.md, "Board top-level: iCE40 UART link"):
// request encoding and response decoding, the one definition the board top's RTL is tested
// against. Frames: sync, command, payload, XOR checksum of every preceding byte.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace fpgaserve::runtime::uart {

inline constexpr std::uint8_t kRequestSync = 0xA5;
inline constexpr std::uint8_t kResponseSync = 0x5A;
inline constexpr std::uint8_t kInfo = 0x01;
inline constexpr std::uint8_t kInfer = 0x02;
inline constexpr std::uint8_t kError = 0xEE;
inline constexpr std::uint8_t kErrorChecksum = 0x01;
inline constexpr std::uint8_t kErrorCommand = 0x02;
inline constexpr int kInfoPayloadBytes = 14;

using Bytes = std::vector<std::uint8_t>;

// What the board reports about the design it holds (the INFO response).
struct LinkInfo {
  int n_in = 0;
  int n_out = 0;
  int in_width = 0;
  int out_width = 0;
  std::uint32_t design_id = 0;  // the first 8 hex digits of the bundle id
  int latency_cycles = 0;
  int initiation_interval = 1;
};

struct InferResult {
  std::vector<std::int64_t> outputs;  // raw element values, sign-extended when out_signed
  std::uint64_t cycles = 0;           // the core's out_cycles stamp for this inference
};

inline int ElementBytes(int width) { return (width + 7) / 8; }

// Bytes the frames take: a request with `n_in` elements, a response with `n_out` elements.
std::size_t InferRequestSize(int n_in, int in_width);
std::size_t InferResponseSize(int n_out, int out_width);

Bytes EncodeInfoRequest();
// Elements little-endian, ceil(width/8) bytes each; raw values must fit `in_width` bits
// (signed or unsigned) or the call fails naming the element.
Result<Bytes> EncodeInferRequest(const std::vector<std::int64_t>& raw, int in_width);

// Responses as the board sends them (the RTL test uses these for expected bytes).
Bytes EncodeInfoResponse(const LinkInfo& info);
Bytes EncodeInferResponse(const std::vector<std::int64_t>& raw, int out_width, std::uint64_t cycles);
Bytes EncodeErrorResponse(std::uint8_t code);

// Validate sync, command, length and checksum; an error frame becomes FAILED_PRECONDITION
// naming the board's error code.
Result<LinkInfo> DecodeInfoResponse(const Bytes& frame);
Result<InferResult> DecodeInferResponse(const Bytes& frame, int n_out, int out_width,
                                        bool out_signed);

// "a5 01 a4"
std::string Hex(const Bytes& bytes);

}  // namespace fpgaserve::runtime::uart
