#!/usr/bin/env bash
# Banknote firmware for reuse factors 1, 2, 4, 8 on the simulated board: latency and II from the
# generator, and inferences/s of the sim (Verilator) and emu drivers on the whole data set, run
# back to back in the same session. Prints a markdown table for docs/benchmarks.md.
set -euo pipefail
build=${1:-build}
csv=${2:-../shared/data/banknote_authentication.csv}
bin="$build/fpgaserve"
root=$(cd "$(dirname "$0")/.." && pwd)
[[ -f "$csv" ]] || { echo "hw_bench: data set not found: $csv" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# A bigger batch than the data set so that per-call overheads do not dominate.
big="$work/big.csv"
head -1 "$csv" >"$big"
for _ in $(seq 1 20); do tail -n +2 "$csv" >>"$big"; done

echo "| reuse R | latency (cycles) | II (cycles) | measured cycles/inference (min-max) | sim inferences/s | emu inferences/s | sim device cycles |"
echo "|---|---|---|---|---|---|---|"
for r in 1 2 4 8; do
  dir="$work/r$r"
  "$bin" compile "$root/examples/banknote/banknote.onnx" --board sim --precision 'fixed<16,6>' \
      --reuse "$r" -o "$dir" --json >"$work/compile.json"
  "$bin" predict "$dir" --data "$big" --label-column class --driver sim --json >"$work/sim.json"
  "$bin" predict "$dir" --data "$big" --label-column class --driver emu --json >"$work/emu.json"
  /usr/bin/python3 - "$r" "$work/sim.json" "$work/emu.json" <<'PY'
import json, sys
r = sys.argv[1]
sim = json.load(open(sys.argv[2])); emu = json.load(open(sys.argv[3]))
obs = sim.get('observed_cycles', {})
print(f"| {r} | {sim['latency_cycles']} | {sim['initiation_interval']} | "
      f"{obs.get('min', '')}-{obs.get('max', '')} | "
      f"{sim['inferences_per_second']/1e6:.2f} M | {emu['inferences_per_second']/1e6:.2f} M | "
      f"{sim.get('device_cycles', '')} |")
PY
done
echo
echo "Batch: $(($(wc -l <"$big") - 1)) rows (the data set 20 times)."
