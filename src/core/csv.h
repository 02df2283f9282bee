// Numeric CSV tables (a header row, then numbers): calibration and evaluation data sets.
// Every cell is validated; errors name the file, the line and the column.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace fpgaserve {

struct NumericTable {
  std::vector<std::string> columns;
  std::size_t rows = 0;
  std::vector<double> values;  // row-major, rows * columns.size()

  double at(std::size_t row, std::size_t col) const { return values[row * columns.size() + col]; }
};

// Parses CSV text; `origin` (a path) prefixes every error. Quoted header cells are accepted.
// Limits: at most max_rows data rows.
Result<NumericTable> ParseNumericCsv(std::string_view text, const std::string& origin,
                                     std::size_t max_rows = 100'000'000);

Result<NumericTable> ReadNumericCsv(const std::string& path);

// Features and integer class labels taken from a table.
struct LabeledData {
  std::vector<std::string> feature_names;
  std::size_t rows = 0;
  std::vector<double> features;       // row-major, rows * feature_names.size()
  std::vector<std::int64_t> labels;   // empty when no label column was named
};

// Every column except `label_column` (which may be empty: no labels) is a feature, in order.
// Labels must be non-negative integers.
Result<LabeledData> SplitLabelColumn(const NumericTable& table, const std::string& label_column,
                                     const std::string& origin);

}  // namespace fpgaserve
