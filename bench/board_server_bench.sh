#!/usr/bin/env bash
# Board server benchmark (F7), printed as markdown for docs/benchmarks.md: V2 REST infer
# throughput of `fpgaserve serve` with the board in process (--driver sim|emu) against the same
# predictor whose board is leased from a `fpgaserve board-server` on loopback (--board-server),
# measured in one run on this machine. wrk -t2 -c16 POSTs the banknote V2 body (1 row, and 32
# rows per request); the in-process run of each case is the baseline of its ratio.
# Usage: bench/board_server_bench.sh [build-dir]
#   env: DURATION=8 (seconds per measurement), KEEP_WORK=1 (keep the temp dir)
set -euo pipefail

die() { echo "board_server_bench: $*" >&2; exit 1; }

build=${1:-build}
[[ -d $build ]] || die "build directory '$build' not found (cmake -S . -B $build && cmake --build $build -j2)"
build=$(cd "$build" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
duration=${DURATION:-8}
conns=16
bin="$build/fpgaserve"
py=/usr/bin/python3
[[ -x $bin ]] || die "$bin not found: cmake --build $build -j2 --target fpgaserve"
command -v wrk >/dev/null || die "wrk not found (scripts/install-deps.sh installs it: apt-get install wrk)"
command -v curl >/dev/null || die "curl not found (apt-get install curl)"

work=$(mktemp -d)
pids=()
cleanup() {
  set +e
  local pid
  for pid in "${pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  if [[ -n ${KEEP_WORK:-} ]]; then echo "board_server_bench: kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

json_field() { "$py" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }
wait_file() {  # wait_file PATH PID: until the server wrote its ready file
  for _ in $(seq 600); do
    [[ -s $1 ]] && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}

"$bin" compile "$root/examples/banknote/banknote.onnx" --board sim -o "$work/bundle" >"$work/compile.log" 2>&1 ||
  die "compile failed: $(tail -n 3 "$work/compile.log")"

"$bin" board-server --listen 127.0.0.1:0 --boards sim:1,emu:1 --cache "$work/cache" \
  --ready-file "$work/board.json" 2>"$work/board.log" &
pids+=($!)
wait_file "$work/board.json" "${pids[-1]}" || die "board server did not start: $(tail -n 3 "$work/board.log")"
board="127.0.0.1:$(json_field "$work/board.json" port)"

# start_serve NAME ARGS...: a predictor on ephemeral ports; sets $port
start_serve() {
  local name=$1; shift
  "$bin" serve --model_dir "$work/bundle" --model_name banknote --http_port 0 --grpc_port -1 \
    --http_threads 2 --ready_file "$work/$name.json" "$@" 2>"$work/$name.log" &
  pids+=($!)
  wait_file "$work/$name.json" "${pids[-1]}" || die "$name did not start: $(tail -n 3 "$work/$name.log")"
  [[ $(json_field "$work/$name.json" ready) == True ]] || die "$name is not ready: $(tail -n 3 "$work/$name.log")"
  port=$(json_field "$work/$name.json" http_port)
}

row='3.6216,8.6661,-2.8073,-0.44699'
body1="{\"inputs\":[{\"name\":\"input\",\"shape\":[1,4],\"datatype\":\"FP32\",\"data\":[$row]}]}"
rows32=$(printf "$row,%.0s" $(seq 31))$row
body32="{\"inputs\":[{\"name\":\"input\",\"shape\":[32,4],\"datatype\":\"FP32\",\"data\":[$rows32]}]}"
for n in 1 32; do
  body_var="body$n"
  cat >"$work/post$n.lua" <<EOF
wrk.method = "POST"
wrk.body = '${!body_var}'
wrk.headers["Content-Type"] = "application/json"
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests":%d,"seconds":%.6f,"p50_ms":%.4f,"p99_ms":%.4f,"errors":%d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1e3, latency:percentile(99) / 1e3,
    e.connect + e.read + e.write + e.timeout + e.status))
end
EOF
done

results="$work/results.jsonl"
: >"$results"
# run CASE DRIVER WHERE PORT: one wrk run per body size
run() {
  local case=$1 driver=$2 where=$3 p=$4 n out
  for n in 1 32; do
    out="$work/$case-$n.out"
    curl -sf -X POST -H 'Content-Type: application/json' -d "$(eval echo "\$body$n")" \
      "http://127.0.0.1:$p/v2/models/banknote/infer" >/dev/null || die "$case: infer failed"
    wrk -t2 -c"$conns" -d"${duration}s" --latency -s "$work/post$n.lua" \
      "http://127.0.0.1:$p/v2/models/banknote/infer" >"$out" 2>&1 || die "wrk failed: $(tail -n 3 "$out")"
    "$py" - "$case" "$driver" "$where" "$n" "$out" >>"$results" <<'PY'
import json, sys
case, driver, where, rows, out = sys.argv[1:6]
line = [l for l in open(out) if l.startswith("{")][-1]
r = json.loads(line)
r.update(case=case, driver=driver, where=where, rows=int(rows), rps=r["requests"] / r["seconds"])
print(json.dumps(r))
PY
  done
}

for driver in sim emu; do
  start_serve "local-$driver" --driver "$driver"
  run "local-$driver" "$driver" "in process" "$port"
  kill -TERM "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true; unset 'pids[-1]'
  start_serve "remote-$driver" --board-server "$board" --board_kind "$driver"
  run "remote-$driver" "$driver" "board server (loopback gRPC)" "$port"
  kill -TERM "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true; unset 'pids[-1]'
done

"$py" - "$results" "$duration" "$conns" "$(nproc)" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
duration, conns, cores = sys.argv[2:5]
print(f"V2 REST infer, banknote, wrk -t2 -c{conns} for {duration} s per row, predictor + board server + wrk "
      f"on {cores} cores:\n")
print("| board | where the board runs | rows/request | requests/s | rows/s | p50 ms | p99 ms | errors | vs in process |")
print("|---|---|---|---|---|---|---|---|---|")
base = {(r["driver"], r["rows"]): r["rps"] for r in rows if r["where"] == "in process"}
for r in rows:
    ratio = r["rps"] / base[(r["driver"], r["rows"])]
    print(f'| {r["driver"]} | {r["where"]} | {r["rows"]} | {r["rps"]:,.0f} | {r["rps"] * r["rows"]:,.0f} | '
          f'{r["p50_ms"]:.2f} | {r["p99_ms"]:.2f} | {r["errors"]} | {ratio:.2f}x |')
PY
