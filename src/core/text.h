// Small text helpers shared by parsers and printers: exact number formatting and parsing, joins.
// Numbers are printed shortest-round-trip so that a double survives text exactly.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fpgaserve {

// Shortest decimal text that parses back to exactly the same double.
std::string FormatDouble(double v);

// Parses the whole of `text` (surrounding spaces allowed) as a finite or infinite double.
std::optional<double> ParseDouble(std::string_view text);

std::string Join(const std::vector<std::string>& parts, std::string_view sep);

// The last `n` non-empty lines of a tool's output (CR stripped), joined by '\n': the tail that
// error messages quote.
std::string LastLines(std::string_view text, int n);

std::string_view Trim(std::string_view s);

// Quotes a string for an error message, cutting it when long: 'abc…'.
std::string Quote(std::string_view s, std::size_t max_len = 40);

}  // namespace fpgaserve
