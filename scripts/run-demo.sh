#!/usr/bin/env bash
# `make run`: the main job on the embedded defaults. Today: import the paper's banknote network
# and evaluate it on the banknote data set with the float64 reference evaluator.
set -euo pipefail
bin=${1:?usage: run-demo.sh FPGASERVE_BINARY CSV}
csv=${2:?usage: run-demo.sh FPGASERVE_BINARY CSV}
root=$(cd "$(dirname "$0")/.." && pwd)
model="$root/examples/banknote/banknote.onnx"

if [[ ! -f "$csv" ]]; then
  echo "run-demo: data set not found: $csv (expected ../shared/data/banknote_authentication.csv beside the project)" >&2
  exit 2
fi

echo "== fpgaserve inspect $model"
"$bin" inspect "$model"
echo
echo "== fpgaserve eval (float64 reference) on $csv"
"$bin" eval "$model" --data "$csv" --label-column class --json
