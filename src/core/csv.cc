#include "core/csv.h"

#include <cmath>

#include "core/file_io.h"
#include "core/text.h"

namespace fpgaserve {

namespace {

// Splits one CSV line into cells; handles double-quoted cells with "" escapes.
Result<std::vector<std::string>> SplitCsvLine(std::string_view line, const std::string& where) {
  std::vector<std::string> cells;
  std::string cell;
  bool quoted = false;
  bool was_quoted = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (quoted) {
      if (c == '"') {
        if (i + 1 < line.size() && line[i + 1] == '"') {
          cell += '"';
          ++i;
        } else {
          quoted = false;
        }
      } else {
        cell += c;
      }
    } else if (c == '"' && std::string(Trim(cell)).empty() && !was_quoted) {
      quoted = true;
      was_quoted = true;
      cell.clear();
    } else if (c == ',') {
      cells.push_back(was_quoted ? cell : std::string(Trim(cell)));
      cell.clear();
      was_quoted = false;
    } else {
      cell += c;
    }
  }
  if (quoted) return InvalidArgument(where + ": unterminated quoted cell");
  cells.push_back(was_quoted ? cell : std::string(Trim(cell)));
  return cells;
}

}  // namespace

Result<NumericTable> ParseNumericCsv(std::string_view text, const std::string& origin,
                                     std::size_t max_rows) {
  NumericTable table;
  std::size_t pos = 0;
  std::size_t line_no = 0;
  bool have_header = false;
  while (pos <= text.size()) {
    std::size_t nl = text.find('\n', pos);
    std::string_view line =
        text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = (nl == std::string_view::npos) ? text.size() + 1 : nl + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (Trim(line).empty()) continue;
    const std::string where = origin + ":" + std::to_string(line_no);
    ASSIGN_OR_RETURN(auto cells, SplitCsvLine(line, where));
    if (!have_header) {
      for (std::size_t c = 0; c < cells.size(); ++c) {
        if (cells[c].empty()) {
          return InvalidArgument(where + ": header column " + std::to_string(c + 1) +
                                 " has no name; expected a header row of column names");
        }
        if (ParseDouble(cells[c]).has_value()) {
          return InvalidArgument(where + ": header cell " + Quote(cells[c]) +
                                 " is a number; expected a header row of column names");
        }
        for (std::size_t d = 0; d < c; ++d) {
          if (cells[d] == cells[c]) {
            return InvalidArgument(where + ": duplicate column name " + Quote(cells[c]));
          }
        }
      }
      table.columns = std::move(cells);
      have_header = true;
      continue;
    }
    if (cells.size() != table.columns.size()) {
      return InvalidArgument(where + ": row has " + std::to_string(cells.size()) +
                             " cells; expected " + std::to_string(table.columns.size()) +
                             " (one per header column)");
    }
    if (table.rows >= max_rows) {
      return ResourceExhausted(where + ": more than " + std::to_string(max_rows) + " data rows");
    }
    for (std::size_t c = 0; c < cells.size(); ++c) {
      auto v = ParseDouble(cells[c]);
      if (!v || !std::isfinite(*v)) {
        return InvalidArgument(where + ": column '" + table.columns[c] + "': " + Quote(cells[c]) +
                               " is not a finite number");
      }
      table.values.push_back(*v);
    }
    ++table.rows;
  }
  if (!have_header) {
    return InvalidArgument(origin + ": empty file; expected a header row and at least one data row");
  }
  if (table.rows == 0) {
    return InvalidArgument(origin + ": header only, no data rows; expected at least one data row");
  }
  return table;
}

Result<NumericTable> ReadNumericCsv(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  return ParseNumericCsv(text, path);
}

Result<LabeledData> SplitLabelColumn(const NumericTable& table, const std::string& label_column,
                                     const std::string& origin) {
  LabeledData out;
  std::size_t label_index = table.columns.size();
  if (!label_column.empty()) {
    for (std::size_t c = 0; c < table.columns.size(); ++c) {
      if (table.columns[c] == label_column) label_index = c;
    }
    if (label_index == table.columns.size()) {
      return InvalidArgument(origin + ": no column named " + Quote(label_column) +
                             "; columns are " + Join(table.columns, ", "));
    }
  }
  for (std::size_t c = 0; c < table.columns.size(); ++c) {
    if (c != label_index) out.feature_names.push_back(table.columns[c]);
  }
  out.rows = table.rows;
  out.features.reserve(table.rows * out.feature_names.size());
  for (std::size_t r = 0; r < table.rows; ++r) {
    for (std::size_t c = 0; c < table.columns.size(); ++c) {
      if (c == label_index) {
        double v = table.at(r, c);
        if (v < 0 || v != std::floor(v) || v > 1e9) {
          return InvalidArgument(origin + ": data row " + std::to_string(r + 1) + ": label column '" +
                                 label_column + "' is " + FormatDouble(v) +
                                 "; expected a non-negative integer class index");
        }
        out.labels.push_back(static_cast<std::int64_t>(v));
      } else {
        out.features.push_back(table.at(r, c));
      }
    }
  }
  return out;
}

}  // namespace fpgaserve
