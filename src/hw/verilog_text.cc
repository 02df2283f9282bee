#include "hw/verilog_text.h"

#include <algorithm>
#include <cctype>

namespace fpgaserve::hw {

namespace {

std::string WideToDecimal(numeric::Wide v) {
  if (v == 0) return "0";
  bool neg = v < 0;
  unsigned __int128 u = neg ? static_cast<unsigned __int128>(-(v + 1)) + 1 : static_cast<unsigned __int128>(v);
  std::string s;
  while (u > 0) {
    s.push_back(static_cast<char>('0' + static_cast<int>(u % 10)));
    u /= 10;
  }
  std::reverse(s.begin(), s.end());
  return s;
}

}  // namespace

std::string SignedLiteral(numeric::Wide value, int width) {
  const std::string w = std::to_string(width);
  if (value < 0) return "-(" + w + "'sd" + WideToDecimal(-value) + ")";
  return w + "'sd" + WideToDecimal(value);
}

int SignedBitsFor(numeric::Wide value) {
  int bits = 1;
  while (bits < 127) {
    const numeric::Wide lo = -(static_cast<numeric::Wide>(1) << (bits - 1));
    const numeric::Wide hi = (static_cast<numeric::Wide>(1) << (bits - 1)) - 1;
    if (value >= lo && value <= hi) break;
    ++bits;
  }
  return bits;
}

std::string Identifier(const std::string& text) {
  std::string out;
  for (char c : text) out.push_back(std::isalnum(static_cast<unsigned char>(c)) ? c : '_');
  if (out.empty() || std::isdigit(static_cast<unsigned char>(out[0]))) out = "n_" + out;
  return out.substr(0, 48);
}

std::string SignedElement(const std::string& bus, int index, const numeric::FixedFormat& f,
                          int* signed_width) {
  const std::string slice = bus + "[" + std::to_string(index * f.width) + " +: " + std::to_string(f.width) + "]";
  *signed_width = SignedWidth(f);
  if (f.is_signed) return "$signed(" + slice + ")";
  return "$signed({1'b0, " + slice + "})";
}

std::string RequantizeFunction(const std::string& name, int in_width, int in_frac,
                               const numeric::FixedFormat& out) {
  const int shift = in_frac - out.fraction_bits();
  // Working width: the input sign-extended so that the shift and a rounding increment fit.
  const int e = std::max(in_width, shift + 1) + 1 + std::max(0, -shift);
  const int cw = std::max(e, out.width + 2);  // comparison width
  std::string s;
  s += "  function automatic [" + std::to_string(out.width - 1) + ":0] " + name + "(input signed [" +
       std::to_string(in_width - 1) + ":0] v);\n";
  s += "    reg signed [" + std::to_string(e - 1) + ":0] q;\n";
  // Only the low bits of the widened working value leave the function, by design.
  s += "    /* verilator lint_off UNUSEDSIGNAL */\n";
  s += "    reg signed [" + std::to_string(cw - 1) + ":0] c;\n";
  s += "    /* verilator lint_on UNUSEDSIGNAL */\n";
  s += "    begin\n";
  s += "      q = {{" + std::to_string(e - in_width) + "{v[" + std::to_string(in_width - 1) + "]}}, v};\n";
  if (shift > 0) {
    const std::string S = std::to_string(shift);
    // Decide the rounding increment from the dropped bits before shifting them out.
    std::string inc;
    switch (out.quantization) {
      case numeric::Quantization::kTrn: break;
      case numeric::Quantization::kRnd: inc = "q[" + std::to_string(shift - 1) + "]"; break;
      case numeric::Quantization::kRndConv: {
        const std::string below =
            shift >= 2 ? "(|q[" + std::to_string(shift - 2) + ":0])" : "1'b0";
        inc = "q[" + std::to_string(shift - 1) + "] & (" + below + " | q[" + S + "])";
        break;
      }
    }
    if (inc.empty()) {
      s += "      q = q >>> " + S + ";\n";
    } else {
      s += "      q = (q >>> " + S + ") + $signed({{" + std::to_string(e - 1) + "{1'b0}}, " + inc + "});\n";
    }
  } else if (shift < 0) {
    s += "      q = q <<< " + std::to_string(-shift) + ";\n";
  }
  if (cw == e) {
    s += "      c = q;\n";
  } else {
    s += "      c = {{" + std::to_string(cw - e) + "{q[" + std::to_string(e - 1) + "]}}, q};\n";
  }
  if (out.overflow == numeric::Overflow::kSat) {
    const numeric::Wide lo = out.min_raw(), hi = out.max_raw();
    s += "      if (c > " + SignedLiteral(hi, cw) + ") c = " + SignedLiteral(hi, cw) + ";\n";
    s += "      else if (c < " + SignedLiteral(lo, cw) + ") c = " + SignedLiteral(lo, cw) + ";\n";
  }
  s += "      " + name + " = c[" + std::to_string(out.width - 1) + ":0];\n";
  s += "    end\n  endfunction\n";
  return s;
}

}  // namespace fpgaserve::hw
