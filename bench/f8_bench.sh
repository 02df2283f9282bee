#!/usr/bin/env bash
# Float datapaths (F8): banknote in float32, float16 and fixed<16,6> at reuse 1 and 4 — cycles per
# inference (the design's latency and II, and the sim board's measurement over the data set) and
# the xc7 resources yosys 0.23 synthesizes (synth_xilinx -family xc7), beside our estimate.
# Printed as a markdown table for docs/benchmarks.md.
# Then each float16 unit's Fmax on the iCE40 UP5K at every pipeline depth (nextpnr-ice40).
# Usage: bench/f8_bench.sh [build-dir] [all|designs|units]  (designs: the first table only; units:
# the second only)
set -euo pipefail
build=${1:-build}
part=${2:-all}
case $part in all | designs | units) ;; *) echo "f8_bench: part '$part': expected all, designs or units" >&2; exit 2 ;; esac
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$build/fpgaserve"
[[ -x $bin ]] || { echo "f8_bench: $bin not found (make build)" >&2; exit 1; }
command -v yosys >/dev/null || { echo "f8_bench: yosys not found (scripts/install-deps.sh)" >&2; exit 1; }
banknote="$root/examples/banknote/banknote.onnx"
data="$root/../shared/data/banknote_authentication.csv"
[[ -f $data ]] || { echo "f8_bench: $data not found" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [[ $part != units ]]; then
echo "| precision | reuse | latency (cycles) | II | measured cycles/inference (sim) | LUT | FF | DSP48E1 | CARRY4 | estimate LUT/FF/DSP | synth s |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
for precision in float32 float16 'fixed<16,6>'; do
  for r in 1 4; do
    d="$work/$(echo "$precision" | tr -c 'a-z0-9\n' '_')-r$r"
    "$bin" compile "$banknote" --board sim --precision "$precision" --reuse "$r" -o "$d" --json >"$d.json"
    "$bin" predict "$d" --data "$data" --label-column class --driver sim --json >"$d.predict.json"
    start=$(date +%s.%N)
    yosys -q -p "read_verilog $d/rtl/*.v; synth_xilinx -flatten -family xc7 -top fpgaserve_core; tee -o $d.stat stat" >/dev/null
    end=$(date +%s.%N)
    /usr/bin/python3 - "$precision" "$r" "$d.json" "$d.predict.json" "$d.stat" "$start" "$end" <<'PY'
import json, re, sys
precision, r, meta, pred, stat, start, end = sys.argv[1:8]
m = json.load(open(meta)); e = m["resources"]
p = json.load(open(pred))
cells = {k: int(v) for k, v in re.findall(r"^\s+(\S+)\s+(\d+)\s*$", open(stat).read(), re.M)}
lut = sum(v for k, v in cells.items() if re.fullmatch(r"LUT[1-6]", k))
ff = sum(v for k, v in cells.items() if k.startswith("FD"))
per = p["device_cycles"] / p["samples"]
print(f"| {precision} | {r} | {m['latency_cycles']} | {m['initiation_interval']} | {per:.1f} | {lut} | {ff} | "
      f"{cells.get('DSP48E1', 0)} | {cells.get('CARRY4', 0)} | {e['lut']}/{e['ff']}/{e['dsp']} | {float(end) - float(start):.0f} |")
PY
  done
done
fi
[[ $part == designs ]] && exit 0

# Pipeline depth against Fmax: each float16 unit between an operand register and a result
# register (operands shifted in serially, so the design fits the pins), placed and routed for the
# iCE40 UP5K by nextpnr-ice40; its reported Fmax at every `stages` value.
emit="$build/bench/float_unit_emit"
[[ -x $emit ]] || { echo "f8_bench: $emit not found (cmake --build $build --target float_unit_emit)" >&2; exit 1; }
command -v nextpnr-ice40 >/dev/null || { echo "f8_bench: nextpnr-ice40 not found (scripts/install-deps.sh)" >&2; exit 1; }
cat >"$work/top.v" <<'V'
module top(input clk, input sin, output sout);
  reg [31:0] sh;
  reg [15:0] a, b, yq;
  reg s;
  wire [15:0] y;
  always @(posedge clk) begin
    sh <= {sh[30:0], sin};
    a <= sh[15:0];
    b <= sh[31:16];
    yq <= y;
    s <= ^yq;
  end
  fp_unit u (.clk(clk), .en(1'b1), .a(a), .b(b), .y(y));
  assign sout = s;
endmodule
V
echo
echo "| unit (float16) | Fmax (MHz) at stages 0, 1, 2, ... (iCE40 UP5K, nextpnr-ice40) |"
echo "|---|---|"
for op in add mul div; do
  max=$("$emit" max "$op" float16)
  row=""
  for stages in $(seq 0 "$max"); do
    "$emit" "$op" float16 "$stages" >"$work/u.v"
    rm -f "$work/t.json"
    yosys -q -p "read_verilog $work/top.v $work/u.v; synth_ice40 -top top -json $work/t.json" >/dev/null
    f=$(nextpnr-ice40 --up5k --package sg48 --json "$work/t.json" --pcf-allow-unconstrained --timing-allow-fail \
          --asc "$work/t.asc" 2>&1 | grep "Max frequency" | tail -1 | sed -E 's/.*: ([0-9.]+) MHz.*/\1/')
    row+="${row:+, }$f"
  done
  echo "| $op | $row |"
done
