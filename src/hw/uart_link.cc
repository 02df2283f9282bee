#include "hw/uart_link.h"

#include <algorithm>
#include <cmath>

namespace fpgaserve::hw {

namespace {

std::string Str(std::int64_t v) { return std::to_string(v); }
int Bytes(int width) { return (width + 7) / 8; }

// Element i of a packed bus, sign- or zero-extended to a whole number of bytes.
std::string ExtendedElement(const std::string& bus, int i, int width, bool is_signed) {
  const int pad = Bytes(width) * 8 - width;
  const std::string e = bus + "[" + Str(std::int64_t{i} * width) + " +: " + Str(width) + "]";
  if (pad == 0) return e;
  const std::string fill =
      is_signed ? "{" + Str(pad) + "{" + bus + "[" + Str(std::int64_t{i} * width + width - 1) + "]}}"
                : Str(pad) + "'d0";
  return "{" + fill + ", " + e + "}";
}

}  // namespace

Result<int> UartClocksPerBit(double clock_mhz, int baud) {
  if (!(clock_mhz > 0) || baud <= 0) {
    return InvalidArgument("UART link: clock " + std::to_string(clock_mhz) + " MHz, baud " +
                           std::to_string(baud) + "; expected positive values");
  }
  const double exact = clock_mhz * 1e6 / baud;
  const long cpb = std::lround(exact);
  if (cpb < 4 || cpb > 65535 || std::fabs(cpb - exact) / exact > 0.02) {
    return InvalidArgument("UART link: " + std::to_string(baud) + " baud at " +
                           std::to_string(clock_mhz) + " MHz needs " + std::to_string(exact) +
                           " clocks per bit; expected 4..65535 within 2 %");
  }
  return static_cast<int>(cpb);
}

Result<VerilogFile> GenerateUartTop(const HwDesign& d, const UartLinkOptions& o) {
  ASSIGN_OR_RETURN(int cpb, UartClocksPerBit(o.clock_mhz, o.baud));
  if (d.n_in < 1 || d.n_out < 1 || d.n_in > 65535 || d.n_out > 65535) {
    return InvalidArgument("UART link: " + Str(d.n_in) + " inputs, " + Str(d.n_out) +
                           " outputs; expected 1..65535 each");
  }
  const int in_bytes = d.n_in * Bytes(d.in_width());
  const int resp_payload = d.n_out * Bytes(d.out_width()) + 8;
  const int max_payload = std::max(resp_payload, 14);
  const int txw = 8 * (2 + max_payload);  // sync, command, payload
  const int ibw = 8 * in_bytes;
  const std::string IW = Str(std::int64_t{d.n_in} * d.in_width());
  const std::string OW = Str(std::int64_t{d.n_out} * d.out_width());

  std::string s;
  s += "// iCE40 board top-level: power-on reset, UART 8N1 host link, fpgaserve_core.\n";
  s += "// Frames (docs/hardware.md): request a5 <cmd> <payload> <xor>; response 5a <cmd> <payload> <xor>.\n";
  s += "// " + Str(d.n_in) + " inputs x " + Str(Bytes(d.in_width())) + " bytes, " + Str(d.n_out) +
       " outputs x " + Str(Bytes(d.out_width())) + " bytes + 8-byte cycle stamp.\n";
  s += "module " + std::string(kUartTopModule) + " #(\n  parameter CLKS_PER_BIT = " + Str(cpb) +
       "\n) (\n  input clk,\n  input uart_rx,\n  output uart_tx,\n  output led_red,\n  output led_green\n);\n";
  s += "  localparam [15:0] CPB = CLKS_PER_BIT;\n";
  s += "  localparam [23:0] TIMEOUT = {CPB, 8'd0};  // 256 bit times of silence inside a frame\n";
  s += "  localparam [2:0] S_SYNC = 3'd0, S_CMD = 3'd1, S_DATA = 3'd2, S_SUM = 3'd3, S_RUN = 3'd4,\n"
       "                   S_WAIT = 3'd5, S_TX = 3'd6;\n";
  // Power-on reset: iCE40 registers start at their initial values.
  s += "  reg [3:0] por = 4'd0;\n  wire rst = !por[3];\n";
  s += "  always @(posedge clk) if (!por[3]) por <= por + 4'd1;\n";
  // Receiver.
  s += "  reg rx_s1 = 1'b1, rx_s2 = 1'b1;\n  always @(posedge clk) begin\n"
       "    rx_s1 <= uart_rx;\n    rx_s2 <= rx_s1;\n  end\n";
  s += "  reg [16:0] rx_cnt;\n  reg [3:0] rx_bit;\n  reg rx_busy, rx_done;\n  reg [7:0] rx_shift, rx_byte;\n";
  s += "  always @(posedge clk) begin\n    rx_done <= 1'b0;\n"
       "    if (rst) rx_busy <= 1'b0;\n"
       "    else if (!rx_busy) begin\n"
       "      if (!rx_s2) begin\n        rx_busy <= 1'b1;\n        rx_bit <= 4'd0;\n"
       "        // the middle of data bit 0, less the 2-flop synchronizer and this cycle\n"
       "        rx_cnt <= {1'b0, CPB} + {2'b0, CPB[15:1]} - 17'd3;\n"
       "      end\n"
       "    end else if (rx_cnt != 17'd0) rx_cnt <= rx_cnt - 17'd1;\n"
       "    else if (rx_bit == 4'd8) begin\n        rx_busy <= 1'b0;\n"
       "      if (rx_s2) begin\n        rx_done <= 1'b1;  // a valid stop bit\n        rx_byte <= rx_shift;\n      end\n"
       "    end else begin\n      rx_shift <= {rx_s2, rx_shift[7:1]};\n      rx_bit <= rx_bit + 4'd1;\n"
       "      rx_cnt <= {1'b0, CPB} - 17'd1;\n    end\n  end\n";
  // Transmitter.
  s += "  reg tx_line = 1'b1;\n  assign uart_tx = tx_line;\n";
  s += "  reg [15:0] tx_cnt;\n  reg [3:0] tx_bit;\n  reg tx_busy, tx_go;\n  reg [8:0] tx_shift;\n  reg [7:0] tx_data;\n";
  s += "  always @(posedge clk) begin\n"
       "    if (rst) begin\n      tx_busy <= 1'b0;\n      tx_line <= 1'b1;\n    end\n"
       "    else if (!tx_busy) begin\n"
       "      if (tx_go) begin\n        tx_busy <= 1'b1;\n        tx_line <= 1'b0;\n"
       "        tx_shift <= {1'b1, tx_data};\n        tx_bit <= 4'd0;\n        tx_cnt <= CPB - 16'd1;\n      end\n"
       "    end else if (tx_cnt != 16'd0) tx_cnt <= tx_cnt - 16'd1;\n"
       "    else if (tx_bit == 4'd9) tx_busy <= 1'b0;\n"
       "    else begin\n      tx_line <= tx_shift[0];\n      tx_shift <= {1'b1, tx_shift[8:1]};\n"
       "      tx_bit <= tx_bit + 4'd1;\n      tx_cnt <= CPB - 16'd1;\n    end\n  end\n";
  // The core.
  s += "  wire in_ready, out_valid;\n  wire [" + IW + "-1:0] in_data;\n  wire [" + OW +
       "-1:0] out_data;\n  wire [63:0] out_cycles;\n";
  s += "  /* verilator lint_off UNUSEDSIGNAL */\n  wire [63:0] cycle_count;\n  /* verilator lint_on UNUSEDSIGNAL */\n";
  s += "  reg [2:0] st;\n  reg [" + Str(ibw - 1) + ":0] inbuf;\n";
  s += "  fpgaserve_core core (\n    .clk(clk), .rst(rst),\n"
       "    .in_valid(st == S_RUN), .in_ready(in_ready), .in_data(in_data),\n"
       "    .out_valid(out_valid), .out_ready(st == S_WAIT), .out_data(out_data),\n"
       "    .out_cycles(out_cycles), .cycle_count(cycle_count)\n  );\n";
  const int ib = Bytes(d.in_width());
  s += "  assign in_data = {";
  for (int i = d.n_in - 1; i >= 0; --i) {
    s += "inbuf[" + Str(std::int64_t{i} * ib * 8) + " +: " + Str(d.in_width()) + "]" + (i ? ", " : "");
  }
  s += "};\n";
  if (ib * 8 > d.in_width()) {
    s += "  /* verilator lint_off UNUSEDSIGNAL */\n  wire unused_pad = ^inbuf;\n  /* verilator lint_on UNUSEDSIGNAL */\n";
  }
  // Frame sequencer.
  s += "  reg [7:0] cmd, sum, tsum;\n  reg [15:0] nbytes, txn;\n  reg sum_sent;\n  reg [23:0] idle;\n";
  s += "  reg [" + Str(txw - 1) + ":0] txbuf;\n";
  s += "  wire [" + Str(8 * 14 - 1) + ":0] info = {16'd" + Str(d.initiation_interval) + ", 16'd" +
       Str(d.latency_cycles) + ", 32'h" + [&] {
         char b[9];
         std::snprintf(b, sizeof b, "%08x", o.design_id);
         return std::string(b);
       }() + ", 8'd" + Str(d.out_width()) + ", 8'd" + Str(d.in_width()) + ", 16'd" + Str(d.n_out) +
       ", 16'd" + Str(d.n_in) + "};\n";
  s += "  wire [" + Str(8 * resp_payload - 1) + ":0] result = {out_cycles";
  for (int j = d.n_out - 1; j >= 0; --j) {
    s += ", " + ExtendedElement("out_data", j, d.out_width(), d.out_format.raw_is_signed());
  }
  s += "};\n";
  auto load = [&](const std::string& payload, int bytes, const std::string& command) {
    const int pad = txw - 8 * (2 + bytes);
    return "txbuf <= {" + (pad > 0 ? Str(pad) + "'d0, " : std::string()) + payload + ", " + command +
           ", 8'h5a}; txn <= 16'd" + Str(2 + bytes) + "; tsum <= 8'd0; sum_sent <= 1'b0; st <= S_TX;";
  };
  s += "  always @(posedge clk) begin\n    tx_go <= 1'b0;\n"
       "    if (rst) begin\n      st <= S_SYNC;\n      idle <= 24'd0;\n    end else begin\n"
       "      if ((st == S_CMD || st == S_DATA || st == S_SUM) && !rx_done) begin\n"
       "        idle <= idle + 24'd1;\n        if (idle == TIMEOUT) st <= S_SYNC;  // a host that stopped mid-frame\n"
       "      end else idle <= 24'd0;\n"
       "      case (st)\n"
       "        S_SYNC: if (rx_done && rx_byte == 8'ha5) begin\n          sum <= 8'ha5;\n          st <= S_CMD;\n        end\n"
       "        S_CMD: if (rx_done) begin\n          cmd <= rx_byte;\n          sum <= sum ^ rx_byte;\n          nbytes <= 16'd0;\n"
       "          if (rx_byte == 8'h01) st <= S_SUM;\n          else if (rx_byte == 8'h02) st <= S_DATA;\n"
       "          else begin " + load("8'h02", 1, "8'hee") + " end\n        end\n"
       "        S_DATA: if (rx_done) begin\n          inbuf <= {rx_byte, inbuf[" + Str(ibw - 1) + ":8]};\n"
       "          sum <= sum ^ rx_byte;\n          nbytes <= nbytes + 16'd1;\n"
       "          if (nbytes == 16'd" + Str(in_bytes - 1) + ") st <= S_SUM;\n        end\n"
       "        S_SUM: if (rx_done) begin\n"
       "          if (rx_byte != sum) begin " + load("8'h01", 1, "8'hee") + " end\n"
       "          else if (cmd == 8'h01) begin " + load("info", 14, "8'h01") + " end\n"
       "          else st <= S_RUN;\n        end\n"
       "        S_RUN: if (in_ready) st <= S_WAIT;\n"
       "        S_WAIT: if (out_valid) begin " + load("result", resp_payload, "8'h02") + " end\n"
       "        S_TX: if (!tx_busy && !tx_go) begin\n"
       "          if (txn != 16'd0) begin\n            tx_data <= txbuf[7:0];\n            tsum <= tsum ^ txbuf[7:0];\n"
       "            txbuf <= {8'd0, txbuf[" + Str(txw - 1) + ":8]};\n            txn <= txn - 16'd1;\n            tx_go <= 1'b1;\n"
       "          end else if (!sum_sent) begin\n            tx_data <= tsum;\n            sum_sent <= 1'b1;\n            tx_go <= 1'b1;\n"
       "          end else st <= S_SYNC;\n        end\n"
       "        default: st <= S_SYNC;\n      endcase\n    end\n  end\n";
  s += "  reg [23:0] beat;\n  always @(posedge clk) beat <= beat + 24'd1;\n";
  s += "  assign led_green = !beat[23];          // active low: blinks while the clock runs\n";
  s += "  assign led_red = !(st != S_SYNC);      // on while a frame is in progress\n";
  s += "endmodule\n";
  return VerilogFile{std::string(kUartTopModule) + ".v", s};
}

}  // namespace fpgaserve::hw
