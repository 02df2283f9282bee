#!/usr/bin/env bash
# F4 benchmarks, printed as markdown for docs/benchmarks.md:
#  1. compile time per build stage for banknote on every board of the catalog;
#  2. xc7 resources (yosys synth_xilinx) for banknote and the 16-64-32-32-5 jet tagger at
#     fixed<16,6>, reuse 1, 4 and 16, next to our pre-synthesis estimate.
# Usage: bench/f4_bench.sh [build-dir] [all|stages|resources]
set -euo pipefail
build=${1:-build}
part=${2:-all}
bin="$build/fpgaserve"
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
banknote="$root/examples/banknote/banknote.onnx"
jet="$root/examples/jet_tagger/jet_tagger.onnx"

if [[ $part != resources ]]; then
echo "### Compile time per stage: banknote, fixed<16,6>, default (auto) reuse"
echo
echo "| board | reuse | bitstream | stages (seconds) | total s |"
echo "|---|---|---|---|---|"
for board in $("$bin" boards --json | /usr/bin/python3 -c 'import json,sys; print(" ".join(b["id"] for b in json.load(sys.stdin)))'); do
  start=$(date +%s.%N)
  if ! "$bin" compile "$banknote" --board "$board" -o "$work/$board" --json >"$work/$board.json" 2>"$work/$board.err"; then
    echo "| $board | - | failed: $(tail -1 "$work/$board.err") | | |"
    continue
  fi
  end=$(date +%s.%N)
  /usr/bin/python3 - "$board" "$work/$board.json" "$start" "$end" <<'PY'
import json, sys
board, path, start, end = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
m = json.load(open(path))
stages = ", ".join(f"{s['stage']} {s['seconds']:.1f}" for s in m["build_stages"])
print(f"| {board} | {m['reuse']} | {m['bitstream']['status']} | {stages} | {end - start:.1f} |")
PY
done

fi
[[ $part == stages ]] && exit 0
echo
echo "### xc7 resources (yosys 0.23 synth_xilinx -family xc7), fixed<16,6>"
echo
echo "| model | reuse | latency (cycles) | II | LUT | FF | DSP48E1 | BRAM | estimate LUT/FF/DSP | synth s |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for model in banknote jet_tagger; do
  onnx=$banknote; [[ $model == jet_tagger ]] && onnx=$jet
  for r in 1 4 16; do
    d="$work/$model-r$r"
    "$bin" compile "$onnx" --board sim --precision 'fixed<16,6>' --reuse "$r" -o "$d" --json >"$d.json"
    start=$(date +%s.%N)
    yosys -q -p "read_verilog $d/rtl/*.v; synth_xilinx -flatten -family xc7 -top fpgaserve_core; tee -o $d.stat stat" >/dev/null
    end=$(date +%s.%N)
    /usr/bin/python3 - "$model" "$r" "$d.json" "$d.stat" "$start" "$end" <<'PY'
import json, re, sys
model, r, meta, stat, start, end = sys.argv[1:7]
m = json.load(open(meta)); e = m["resources"]  # the sim board records our pre-synthesis estimate
cells = {k: int(v) for k, v in re.findall(r"^\s+(\S+)\s+(\d+)\s*$", open(stat).read(), re.M)}
lut = sum(v for k, v in cells.items() if re.fullmatch(r"LUT[1-6]", k))
ff = sum(v for k, v in cells.items() if k.startswith("FD"))
dsp = cells.get("DSP48E1", 0)
bram = cells.get("RAMB36E1", 0) + cells.get("RAMB18E1", 0) / 2
est_txt = f"{e['lut']}/{e['ff']}/{e['dsp']}"
print(f"| {model} | {r} | {m['latency_cycles']} | {m['initiation_interval']} | {lut} | {ff} | {dsp} | "
      f"{bram:g} | {est_txt} | {float(end) - float(start):.0f} |")
PY
  done
done
