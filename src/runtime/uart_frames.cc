#include "runtime/uart_frames.h"

#include <cstdio>

namespace fpgaserve::runtime::uart {

namespace {

std::uint8_t Checksum(const Bytes& b, std::size_t n) {
  std::uint8_t x = 0;
  for (std::size_t i = 0; i < n; ++i) x ^= b[i];
  return x;
}

void PutLe(Bytes& out, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}

std::uint64_t GetLe(const Bytes& in, std::size_t at, int bytes) {
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= static_cast<std::uint64_t>(in[at + i]) << (8 * i);
  return v;
}

Bytes Seal(Bytes frame) {
  frame.push_back(Checksum(frame, frame.size()));
  return frame;
}

// Checks sync, checksum and that the command is `want` (or the error frame).
Status CheckFrame(const Bytes& f, std::uint8_t want, std::size_t size) {
  if (f.size() >= 4 && f[0] == kResponseSync && f[1] == kError) {
    if (f.size() != 4 || Checksum(f, 3) != f[3]) {
      return Unavailable("UART link: damaged error frame " + Hex(f));
    }
    const std::string what = f[2] == kErrorChecksum  ? "bad checksum"
                             : f[2] == kErrorCommand ? "unknown command"
                                                     : "code " + std::to_string(f[2]);
    return FailedPrecondition("UART link: the board rejected the request (" + what + ")");
  }
  if (f.size() != size) {
    return Unavailable("UART link: response of " + std::to_string(f.size()) + " bytes; expected " +
                    std::to_string(size));
  }
  if (f[0] != kResponseSync || f[1] != want) {
    return Unavailable("UART link: response starts " + Hex(Bytes(f.begin(), f.begin() + 2)) +
                    "; expected 5a " + Hex(Bytes{want}));
  }
  if (Checksum(f, f.size() - 1) != f.back()) {
    return Unavailable("UART link: response checksum mismatch in " + Hex(f));
  }
  return Status::Ok();
}

}  // namespace

std::size_t InferRequestSize(int n_in, int in_width) {
  return 3 + static_cast<std::size_t>(n_in) * ElementBytes(in_width);
}

std::size_t InferResponseSize(int n_out, int out_width) {
  return 3 + static_cast<std::size_t>(n_out) * ElementBytes(out_width) + 8;
}

Bytes EncodeInfoRequest() { return Seal({kRequestSync, kInfo}); }

Result<Bytes> EncodeInferRequest(const std::vector<std::int64_t>& raw, int in_width) {
  if (in_width < 1 || in_width > 64) {
    return InvalidArgument("UART link: input width " + std::to_string(in_width) + "; expected 1..64");
  }
  Bytes f{kRequestSync, kInfer};
  for (std::size_t i = 0; i < raw.size(); ++i) {
    const std::int64_t v = raw[i];
    if (in_width < 64) {
      const std::int64_t lo = -(std::int64_t{1} << (in_width - 1));
      const std::int64_t hi = (std::int64_t{1} << in_width) - 1;  // unsigned formats reach this
      if (v < lo || v > hi) {
        return InvalidArgument("UART link: input element " + std::to_string(i) + " = " +
                               std::to_string(v) + " does not fit " + std::to_string(in_width) +
                               " bits");
      }
    }
    PutLe(f, static_cast<std::uint64_t>(v), ElementBytes(in_width));
  }
  return Seal(std::move(f));
}

Bytes EncodeInfoResponse(const LinkInfo& i) {
  Bytes f{kResponseSync, kInfo};
  PutLe(f, static_cast<std::uint64_t>(i.n_in), 2);
  PutLe(f, static_cast<std::uint64_t>(i.n_out), 2);
  PutLe(f, static_cast<std::uint64_t>(i.in_width), 1);
  PutLe(f, static_cast<std::uint64_t>(i.out_width), 1);
  PutLe(f, i.design_id, 4);
  PutLe(f, static_cast<std::uint64_t>(i.latency_cycles), 2);
  PutLe(f, static_cast<std::uint64_t>(i.initiation_interval), 2);
  return Seal(std::move(f));
}

Bytes EncodeInferResponse(const std::vector<std::int64_t>& raw, int out_width,
                          std::uint64_t cycles) {
  Bytes f{kResponseSync, kInfer};
  const int b = ElementBytes(out_width);
  for (std::int64_t v : raw) PutLe(f, static_cast<std::uint64_t>(v), b);
  PutLe(f, cycles, 8);
  return Seal(std::move(f));
}

Bytes EncodeErrorResponse(std::uint8_t code) { return Seal({kResponseSync, kError, code}); }

Result<LinkInfo> DecodeInfoResponse(const Bytes& f) {
  RETURN_IF_ERROR(CheckFrame(f, kInfo, 3 + kInfoPayloadBytes));
  LinkInfo i;
  i.n_in = static_cast<int>(GetLe(f, 2, 2));
  i.n_out = static_cast<int>(GetLe(f, 4, 2));
  i.in_width = static_cast<int>(f[6]);
  i.out_width = static_cast<int>(f[7]);
  i.design_id = static_cast<std::uint32_t>(GetLe(f, 8, 4));
  i.latency_cycles = static_cast<int>(GetLe(f, 12, 2));
  i.initiation_interval = static_cast<int>(GetLe(f, 14, 2));
  return i;
}

Result<InferResult> DecodeInferResponse(const Bytes& f, int n_out, int out_width,
                                        bool out_signed) {
  RETURN_IF_ERROR(CheckFrame(f, kInfer, InferResponseSize(n_out, out_width)));
  InferResult r;
  const int b = ElementBytes(out_width);
  for (int j = 0; j < n_out; ++j) {
    std::uint64_t v = GetLe(f, 2 + static_cast<std::size_t>(j) * b, b);
    if (out_width < 64) {
      v &= (std::uint64_t{1} << out_width) - 1;
      if (out_signed && (v >> (out_width - 1)) != 0) v |= ~((std::uint64_t{1} << out_width) - 1);
    }
    r.outputs.push_back(static_cast<std::int64_t>(v));
  }
  r.cycles = GetLe(f, 2 + static_cast<std::size_t>(n_out) * b, 8);
  return r;
}

std::string Hex(const Bytes& bytes) {
  std::string s;
  char buf[4];
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    std::snprintf(buf, sizeof buf, "%02x", bytes[i]);
    s += (i ? " " : "") + std::string(buf);
  }
  return s;
}

}  // namespace fpgaserve::runtime::uart
