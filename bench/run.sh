#!/usr/bin/env bash
# Runs the benchmarks and prints a markdown table of throughput and ratios against the float64
# reference evaluator measured in the same run (this 2-core machine is noisy: compare ratios).
set -euo pipefail
build=${1:-build}
json=$(mktemp)
trap 'rm -f "$json"' EXIT
"$build/bench/emulator_bench" --benchmark_format=json --benchmark_repetitions=3 \
    --benchmark_report_aggregates_only=true >"$json"
/usr/bin/python3 - "$json" <<'PY'
import json, sys
rows = [b for b in json.load(open(sys.argv[1]))["benchmarks"] if b.get("aggregate_name") == "median"]
base = next(b for b in rows if b["run_name"].startswith("BM_Float64Reference"))["items_per_second"]
print("| benchmark (banknote 4-16-2, batch 4096) | inferences/s (median of 3) | vs float64 reference |")
print("|---|---|---|")
for b in rows:
    name = b["run_name"].replace("BM_", "")
    ips = b["items_per_second"]
    print(f"| {name} | {ips/1e6:.2f} M | {ips/base:.2f}x |")
PY
