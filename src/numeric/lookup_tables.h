// Fixed-point nonlinear functions as hardware computes them: lookup tables indexed by the top
// bits of the input (sigmoid, tanh, exp for softmax) and a normalized reciprocal table.
#pragma once

#include <cstdint>
#include <vector>

#include "numeric/fixed_format.h"

namespace fpgaserve::numeric {

// Table sizes are powers of two in [kMinTableSize, kMaxTableSize].
inline constexpr int kMinTableSize = 16;
inline constexpr int kMaxTableSize = 1 << 16;
// Softmax internals: exp values and reciprocals are ufixed<18,1> (17 fraction bits).
inline constexpr int kSoftmaxFractionBits = 17;
inline constexpr FixedFormat kSoftmaxInternal{18, 1, false, Quantization::kRnd, Overflow::kSat};

enum class TableFunction { kSigmoid, kTanh };

// Input ranges (powers of two): sigmoid and the softmax exp tables cover 8 units, tanh 4.
double TableRange(TableFunction fn);
inline constexpr double kSoftmaxExpRange = 8.0;

// A function table: entry i holds f(-R + (i + 1/2)·2R/N) rounded (RND, SAT) into `out`.
struct FunctionTable {
  FixedFormat out;
  int size = 0;
  double range = 0;
  std::vector<std::int64_t> entries;
};

FunctionTable MakeFunctionTable(TableFunction fn, int size, const FixedFormat& out);

// floor(x·N / (2R)) + N/2 clamped to [0, N-1], computed exactly on the raw input bits.
int TableIndex(std::int64_t x_raw, const FixedFormat& in, int size, double range);

// Softmax exp table over d in [-R, 0]: entry j = exp(-R + (j + 1/2)·R/N) in kSoftmaxInternal.
std::vector<std::int64_t> MakeSoftmaxExpTable(int size);
// floor(d·N/R) + N clamped to [0, N-1] for d = d_raw·2^-frac <= 0 (d_raw may be wide).
int SoftmaxExpIndex(Wide d_raw, int frac, int size);

// Reciprocal table over the mantissa m in [1, 2): entry j = 1 / (1 + (j + 1/2)/N) in
// kSoftmaxInternal.
std::vector<std::int64_t> MakeReciprocalTable(int size);

// TableIndex / SoftmaxExpIndex with the shift resolved once (the emulator's fast paths): for
// every int64 input, Index(x) equals the function it was made for. The shift is clamped to
// [-63, 40], which changes no index (an int64 shifted right by 63 or more is -1 or 0; a nonzero
// value shifted left by 40 or more is beyond every table).
struct TableIndexer {
  int shift = 0;   // floor(x · 2^shift) + offset, clamped to [0, size - 1]
  int size = 0;
  int offset = 0;  // N/2 (sigmoid, tanh) or N (softmax exp)

  int Index(std::int64_t x) const {
    std::int64_t v;
    if (shift >= 0) {
      // |x| > 2N is past either end whatever the shift (offset <= N); otherwise x · 2^40 fits.
      if (x > 2 * static_cast<std::int64_t>(size)) return size - 1;
      if (x < -2 * static_cast<std::int64_t>(size)) return 0;
      v = x * (std::int64_t{1} << shift);
    } else {
      v = x >> -shift;  // arithmetic shift: floor
    }
    v += offset;
    if (v < 0) return 0;
    if (v > size - 1) return size - 1;
    return static_cast<int>(v);
  }
};

// The indexer of TableIndex(x, in, size, range).
TableIndexer MakeTableIndexer(const FixedFormat& in, int size, double range);
// The indexer of SoftmaxExpIndex(d, frac, size).
TableIndexer MakeSoftmaxExpIndexer(int frac, int size);

}  // namespace fpgaserve::numeric
