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

}  // namespace fpgaserve::numeric
