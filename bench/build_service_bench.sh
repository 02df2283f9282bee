#!/usr/bin/env bash
# F6 acceptance bench: banknote for icebreaker through the build service, then the same submit
# again — the cache hit's latency, end to end through the client (`fpgaserve build submit`, a
# process per call: start, Health, the upload check, SubmitBuild) and per RPC
# (bench/build_submit_latency, 200 calls on one channel). File store, and S3 (s3rver on
# loopback) when scripts/install-s3rver.sh has installed it. Prints markdown for docs/benchmarks.md.
# Usage: bench/build_service_bench.sh [build-dir]
set -euo pipefail
build=${1:-build}
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$build/fpgaserve"
lat="$build/bench/build_submit_latency"
for f in "$bin" "$lat"; do [[ -x $f ]] || { echo "build_service_bench: $f not found (make build)" >&2; exit 1; }; done
model="$root/examples/banknote/banknote.onnx"
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

run_store() {  # $1 label, $2 store URI
  local label=$1 store=$2 dir="$work/$1"
  mkdir -p "$dir"
  "$bin" build-server --listen 127.0.0.1:0 --store "$store" --db "$dir/jobs.db" --ready-file "$dir/ready" 2>"$dir/log" &
  pids+=($!)
  for _ in $(seq 100); do [[ -s $dir/ready ]] && break; sleep 0.1; done
  local port
  port=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["port"])' "$dir/ready")
  local t0 first_ms
  t0=$(date +%s%N)
  "$bin" build submit "$model" --board icebreaker --server "127.0.0.1:$port" --wait --json >"$dir/first.json"
  first_ms=$(ms_since "$t0")
  local id uri
  id=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["build_id"])' "$dir/first.json")
  "$bin" build get "$id" -o "$dir/bundle" --server "127.0.0.1:$port" --json >"$dir/get.json"
  uri=$("$bin" build status "$id" --server "127.0.0.1:$port" --json |
        /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["model_uri"])')
  local cli=()
  for _ in $(seq 10); do
    t0=$(date +%s%N)
    "$bin" build submit "$model" --board icebreaker --server "127.0.0.1:$port" --json >"$dir/again.json"
    cli+=("$(ms_since "$t0")")
  done
  local same
  same=$(/usr/bin/python3 -c 'import json,sys; a=json.load(open(sys.argv[1])); print(a["build_id"]==sys.argv[2] and a["cache_hit"])' "$dir/again.json" "$id")
  local rpc
  rpc=$("$lat" --server "127.0.0.1:$port" --model-uri "$uri" --board icebreaker --calls 200)
  /usr/bin/python3 - "$label" "$first_ms" "$same" "$rpc" "${cli[@]}" <<'PY'
import json, statistics, sys
label, first_ms, same, rpc = sys.argv[1:5]
cli = sorted(int(x) for x in sys.argv[5:])
r = json.loads(rpc)
print(f"| {label} | {int(first_ms)/1000:.1f} s | {same} | {statistics.median(cli)} ms (max {cli[-1]}) | "
      f"{r['p50_ms']:.2f} ms | {r['p99_ms']:.2f} ms | {r['max_ms']:.2f} ms | {r['cache_hits']}/{r['calls']} |")
PY
}

echo "| store | first build (icebreaker, --wait) | same id + cache_hit | CLI re-submit (median of 10) | RPC p50 | RPC p99 | RPC max | cache hits |"
echo "|---|---|---|---|---|---|---|---|"
run_store file "file://$work/file-store"
s3rver="$root/build/npm/node_modules/.bin/s3rver"
if [[ -x $s3rver ]]; then
  NODE_OPTIONS=--openssl-legacy-provider "$s3rver" -d "$work/s3data" -a 127.0.0.1 -p 0 --configure-bucket firmware >"$work/s3rver.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do grep -q "listening on" "$work/s3rver.log" 2>/dev/null && break; sleep 0.1; done
  s3port=$(grep -oE "listening on [0-9.]+:[0-9]+" "$work/s3rver.log" | grep -oE "[0-9]+$")
  export AWS_ACCESS_KEY_ID=S3RVER AWS_SECRET_ACCESS_KEY=S3RVER AWS_DEFAULT_REGION=us-east-1
  export AWS_ENDPOINT_URL="http://127.0.0.1:$s3port" S3_USE_HTTPS=0
  run_store "s3 (s3rver)" "s3://firmware/builds"
else
  echo "build_service_bench: s3rver not installed (scripts/install-s3rver.sh); S3 row skipped" >&2
fi
