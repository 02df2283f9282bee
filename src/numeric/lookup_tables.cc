#include "numeric/lookup_tables.h"

#include <cmath>

namespace fpgaserve::numeric {

namespace {

// Exact log2 of a power of two (sizes and ranges are validated to be powers of two).
int Log2Exact(double v) { return std::ilogb(v); }
int Log2Exact(int v) { return __builtin_ctz(static_cast<unsigned>(v)); }

// floor(v · 2^sh) for a wide integer v and any shift; shifts of 40 or more leave every nonzero
// value far outside any table, so they return a large value of the same sign.
Wide ShiftFloor(Wide v, int sh) {
  if (sh >= 0) {
    if (sh >= 40) return v > 0 ? (static_cast<Wide>(1) << 100) : (v < 0 ? -(static_cast<Wide>(1) << 100) : 0);
    return v * (static_cast<Wide>(1) << sh);
  }
  if (-sh >= 127) return v < 0 ? -1 : 0;
  return v >> -sh;  // arithmetic shift: floor
}

int Clamp(Wide v, int lo, int hi) {
  if (v < lo) return lo;
  if (v > hi) return hi;
  return static_cast<int>(v);
}

}  // namespace

double TableRange(TableFunction fn) { return fn == TableFunction::kSigmoid ? 8.0 : 4.0; }

FunctionTable MakeFunctionTable(TableFunction fn, int size, const FixedFormat& out) {
  FunctionTable t;
  t.out = out;
  t.out.quantization = Quantization::kRnd;
  t.out.overflow = Overflow::kSat;
  t.size = size;
  t.range = TableRange(fn);
  t.entries.resize(static_cast<std::size_t>(size));
  for (int i = 0; i < size; ++i) {
    const double x = -t.range + (i + 0.5) * 2.0 * t.range / size;
    const double y = fn == TableFunction::kSigmoid ? 1.0 / (1.0 + std::exp(-x)) : std::tanh(x);
    t.entries[i] = FixedFromDouble(y, t.out).raw;
  }
  return t;
}

namespace {

TableIndexer MakeIndexer(int sh, int size, int offset) {
  TableIndexer t;
  t.shift = sh < -63 ? -63 : (sh > 40 ? 40 : sh);
  t.size = size;
  t.offset = offset;
  return t;
}

}  // namespace

TableIndexer MakeTableIndexer(const FixedFormat& in, int size, double range) {
  return MakeIndexer(Log2Exact(size) - Log2Exact(2 * range) - in.fraction_bits(), size, size / 2);
}

TableIndexer MakeSoftmaxExpIndexer(int frac, int size) {
  return MakeIndexer(Log2Exact(size) - Log2Exact(kSoftmaxExpRange) - frac, size, size);
}

int TableIndex(std::int64_t x_raw, const FixedFormat& in, int size, double range) {
  const int sh = Log2Exact(size) - Log2Exact(2 * range) - in.fraction_bits();
  return Clamp(ShiftFloor(x_raw, sh) + size / 2, 0, size - 1);
}

std::vector<std::int64_t> MakeSoftmaxExpTable(int size) {
  std::vector<std::int64_t> t(static_cast<std::size_t>(size));
  for (int j = 0; j < size; ++j) {
    const double d = -kSoftmaxExpRange + (j + 0.5) * kSoftmaxExpRange / size;
    t[j] = FixedFromDouble(std::exp(d), kSoftmaxInternal).raw;
  }
  return t;
}

int SoftmaxExpIndex(Wide d_raw, int frac, int size) {
  const int sh = Log2Exact(size) - Log2Exact(kSoftmaxExpRange) - frac;
  return Clamp(ShiftFloor(d_raw, sh) + size, 0, size - 1);
}

std::vector<std::int64_t> MakeReciprocalTable(int size) {
  std::vector<std::int64_t> t(static_cast<std::size_t>(size));
  for (int j = 0; j < size; ++j) {
    t[j] = FixedFromDouble(1.0 / (1.0 + (j + 0.5) / size), kSoftmaxInternal).raw;
  }
  return t;
}

}  // namespace fpgaserve::numeric
