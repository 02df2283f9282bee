#!/usr/bin/env bash
# Serving benchmark (F5), printed as markdown for docs/benchmarks.md. One run on this machine:
#  - compiles banknote for the sim board, starts `fpgaserve serve` on ephemeral ports;
#  - starts a private nginx serving a static file the size of one real infer response (the
#    "how fast can an HTTP server answer at all on this box" baseline);
#  a. max throughput: wrk -t2 -c16 POSTing the V2 infer body to fpgaserve, and GETting nginx's file;
#  b. latency at ~50% of our max REST rate (the 16 wrk connections paced by a Lua delay());
#  c. gRPC ModelInfer with bench/grpc_h2load (our lean HTTP/2 gRPC client, the gRPC counterpart
#     of wrk) at max (16 in flight) and at ~50% of that rate; and with bench/grpc_load (the gRPC
#     C++ library's client, which costs as much CPU per call as the server) at max, for reference.
# Load generator and server share the machine's cores; a second table shows where the CPU went.
# Usage: bench/serve_bench.sh [build-dir]
#   env: DURATION=10 (seconds per measurement), SERVE_ARGS="--driver emu ..." (extra serve flags),
#        KEEP_WORK=1 (keep the temp dir with every tool's output)
set -euo pipefail

die() { echo "serve_bench: $*" >&2; exit 1; }

build=${1:-build}
[[ -d $build ]] || die "build directory '$build' not found (cmake -S . -B $build && cmake --build $build -j2)"
build=$(cd "$build" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
duration=${DURATION:-10}
conns=16
bin="$build/fpgaserve"
grpc_load="$build/bench/grpc_load"
grpc_h2load="$build/bench/grpc_h2load"
py=/usr/bin/python3

# --- tools -------------------------------------------------------------------------------------
[[ -x $bin ]] || die "$bin not found: cmake --build $build -j2 --target fpgaserve"
[[ -x $grpc_load ]] || die "$grpc_load not found: cmake --build $build -j2 --target grpc_load"
[[ -x $grpc_h2load ]] || die "$grpc_h2load not found: scripts/install-deps.sh (libnghttp2-dev), then cmake --build $build -j2 --target grpc_h2load"
[[ -x $py ]] || die "$py not found (apt-get install python3)"
command -v wrk >/dev/null || die "wrk not found (scripts/install-deps.sh installs it: apt-get install wrk)"
command -v curl >/dev/null || die "curl not found (apt-get install curl)"
nginx_bin=$(command -v nginx || true)
[[ -z $nginx_bin && -x /usr/sbin/nginx ]] && nginx_bin=/usr/sbin/nginx
[[ -n $nginx_bin ]] || die "nginx not found (scripts/install-deps.sh installs it: apt-get install nginx-light)"

# --- temp dir and cleanup ----------------------------------------------------------------------
work=$(mktemp -d)
chmod 755 "$work"  # nginx workers may run as another user and must reach the static file
server_pid=""
nginx_pid=""
loadgen_pid=""
cleanup() {
  # Stop what this script started (by pid), then remove the temp dir. No errexit in here: a
  # failed kill or wait must not skip the rest.
  set +e
  local pid
  for pid in "$loadgen_pid" "$server_pid" "$nginx_pid"; do
    [[ -n $pid ]] || continue
    kill -TERM "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  if [[ -n ${KEEP_WORK:-} ]]; then echo "serve_bench: kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
results="$work/results.jsonl"
: >"$results"

json_field() { "$py" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }

free_port() {
  "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# --- CPU accounting: the server process(es) (/proc/PID/stat) and the load generator (`times`) ---
# (Not /proc/stat: on this VM its tick-based idle time loses ticks when a core goes idle.)
tck=$(getconf CLK_TCK)
proc_ticks() {  # utime+stime of the given pids, in clock ticks
  local t=0 pid s f
  for pid in "$@"; do
    s=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
    s=${s##*) }  # drop "pid (comm) ": field 3 is now index 0
    read -r -a f <<<"$s"
    t=$((t + f[11] + f[12]))  # fields 14 and 15
  done
  echo "$t"
}
server_pids() {  # the server being measured: fpgaserve, or nginx's workers
  if [[ $1 == nginx ]]; then
    cat "/proc/$nginx_pid/task/$nginx_pid/children" 2>/dev/null || pgrep -P "$nginx_pid"
  else
    echo "$server_pid"
  fi
}

# measure NAME SERVER(fpgaserve|nginx) OUT -- COMMAND...: runs COMMAND (stdout to OUT) and appends
# the CPU it and the server used to $work/cpu.jsonl.
measure() {
  local name=$1 which=$2 out=$3; shift 4
  local pids s0 s1 t0 t1 rc=0
  pids=$(server_pids "$which")
  # `times` must run in this shell (not in $(...)): its second line is the reaped children's CPU.
  # shellcheck disable=SC2086  # $pids is a list
  s0=$(proc_ticks $pids)
  times >"$work/times0"; t0=$(date +%s.%N)
  "$@" >"$out" 2>"$out.err" &  # in the background so that a signal stops the script at once
  loadgen_pid=$!
  wait "$loadgen_pid" || rc=$?
  loadgen_pid=""
  t1=$(date +%s.%N); times >"$work/times1"
  # shellcheck disable=SC2086
  s1=$(proc_ticks $pids)
  "$py" - "$name" "$t0" "$t1" "$s0" "$s1" "$work/times0" "$work/times1" "$tck" >>"$work/cpu.jsonl" <<'PY'
import json, re, sys
name, t0, t1, s0, s1, g0, g1, tck = sys.argv[1:9]
def children(path):  # user+sys seconds of reaped children: the second line of `times`
    line = open(path).read().splitlines()[1]
    return sum(int(mm) * 60 + float(ss) for mm, ss in re.findall(r"(\d+)m([\d.]+)s", line))
wall = float(t1) - float(t0)
print(json.dumps({"run": name, "wall": wall,
                  "server": (int(s1) - int(s0)) / int(tck) / wall,
                  "loadgen": (children(g1) - children(g0)) / wall}))
PY
  return "$rc"
}

# --- 1. compile banknote for sim, start the server -----------------------------------------------
echo "serve_bench: compiling banknote for the sim board" >&2
"$bin" compile "$root/examples/banknote/banknote.onnx" --board sim -o "$work/bundle" >"$work/compile.log" 2>&1 ||
  die "compile failed: $(tail -n 3 "$work/compile.log")"

# shellcheck disable=SC2086  # SERVE_ARGS is a list of flags
"$bin" serve --model_name banknote --model_dir "$work/bundle" --http_port 0 --grpc_port 0 \
  --ready_file "$work/ready.json" ${SERVE_ARGS:-} 2>"$work/serve.log" &
server_pid=$!
for _ in $(seq 600); do
  [[ -s $work/ready.json ]] && break
  kill -0 "$server_pid" 2>/dev/null || die "fpgaserve serve exited: $(tail -n 3 "$work/serve.log")"
  sleep 0.1
done
[[ -s $work/ready.json ]] || die "fpgaserve serve was not ready within 60 s: $(tail -n 3 "$work/serve.log")"
[[ $(json_field "$work/ready.json" ready) == True ]] || die "the model did not load: $(tail -n 3 "$work/serve.log")"
http_port=$(json_field "$work/ready.json" http_port)
grpc_port=$(json_field "$work/ready.json" grpc_port)
infer_url="http://127.0.0.1:$http_port/v2/models/banknote/infer"
body='{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":[3.6216,8.6661,-2.8073,-0.44699]}]}'

# --- 2. nginx with a private config, serving a copy of one real infer response --------------------
mkdir -p "$work/nginx/html" "$work/nginx/tmp"
curl -sf -X POST -H 'Content-Type: application/json' -d "$body" "$infer_url" >"$work/nginx/html/infer.json" ||
  die "the infer request to $infer_url failed"
chmod 644 "$work/nginx/html/infer.json"
static_bytes=$(stat -c %s "$work/nginx/html/infer.json")
nginx_port=$(free_port)
user_line=""
[[ $(id -u) == 0 ]] && user_line="user $(id -un) $(id -gn);"  # else workers would run as nobody
cat >"$work/nginx/nginx.conf" <<EOF
# Private nginx for serve_bench.sh: foreground, two workers, no access log, everything in $work.
daemon off;
worker_processes 2;
$user_line
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  default_type application/json;
  keepalive_timeout 120s;
  keepalive_requests 100000000;  # like fpgaserve: never close a busy keep-alive connection
  client_body_temp_path $work/nginx/tmp/client_body;
  proxy_temp_path $work/nginx/tmp/proxy;
  fastcgi_temp_path $work/nginx/tmp/fastcgi;
  uwsgi_temp_path $work/nginx/tmp/uwsgi;
  scgi_temp_path $work/nginx/tmp/scgi;
  server {
    listen 127.0.0.1:$nginx_port;
    root $work/nginx/html;
  }
}
EOF
"$nginx_bin" -e "$work/nginx/error.log" -p "$work/nginx" -c "$work/nginx/nginx.conf" 2>"$work/nginx/stderr.log" &
nginx_pid=$!
static_url="http://127.0.0.1:$nginx_port/infer.json"
for _ in $(seq 50); do
  curl -sf -o /dev/null "$static_url" && break
  kill -0 "$nginx_pid" 2>/dev/null || die "nginx exited: $(tail -n 3 "$work/nginx/stderr.log" "$work/nginx/error.log" 2>/dev/null)"
  sleep 0.1
done
curl -sf -o /dev/null "$static_url" || die "nginx does not answer on $static_url"

# --- wrk scripts: the infer POST (optionally paced) and GET, each printing a JSON summary --------
cat >"$work/summary.lua" <<'EOF'
-- Prints wrk's own summary as one JSON line (latency in microseconds -> ms).
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"seconds":%.6f,"p50_ms":%.4f,"p99_ms":%.4f,"max_ms":%.4f,' ..
    '"socket_errors":%d,"status_errors":%d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1e3,
    latency:percentile(99) / 1e3, latency.max / 1e3,
    e.connect + e.read + e.write + e.timeout, e.status))
end
EOF
cp "$work/summary.lua" "$work/get.lua"
{
  echo "-- POSTs one banknote sample to the V2 infer endpoint."
  echo "wrk.method = \"POST\""
  echo "wrk.body = '$body'"
  echo "wrk.headers[\"Content-Type\"] = \"application/json\""
  cat <<'EOF'
-- WRK_RATE > 0 (requests/s over WRK_THREADS threads): pace the sends on a fixed schedule. Each
-- wrk thread hands out send slots every 1000 * threads / rate ms and delay() makes the connection
-- wait for its slot (wrk's latency clock starts at the send, after the delay). delay() is in whole
-- ms, but the schedule is absolute, so rounding does not drift the rate. Slots up to 5 ms late are
-- still used (timers fire late by up to a ms); a longer stall is not made up with a burst.
local rate = tonumber(os.getenv("WRK_RATE") or "0")
if rate > 0 then
  local ffi = require("ffi")
  ffi.cdef [[
    typedef struct { long tv_sec; long tv_nsec; } serve_bench_timespec;
    int clock_gettime(int clock_id, serve_bench_timespec *tp);
  ]]
  local ts = ffi.new("serve_bench_timespec")
  local function now_ms()
    ffi.C.clock_gettime(1, ts)  -- CLOCK_MONOTONIC
    return tonumber(ts.tv_sec) * 1e3 + tonumber(ts.tv_nsec) / 1e6
  end
  local interval = 1000 * tonumber(os.getenv("WRK_THREADS") or "1") / rate
  local next_slot = nil
  function delay()
    local now = now_ms()
    local slot = math.max(next_slot or now, now - 5)
    next_slot = slot + interval
    return math.floor(slot - now + 0.5)
  end
end
EOF
  cat "$work/summary.lua"
} >"$work/post.lua"

# record NAME TARGET PROTOCOL LOAD OUT: appends one result row (the JSON line in OUT) to results.
record() {
  local json
  json=$(grep '^{' "$5" | tail -1) || die "$1: no result; output: $(tail -n 5 "$5" "$5.err")"
  "$py" - "$1" "$2" "$3" "$4" "$json" >>"$results" <<'PY'
import json, sys
name, target, protocol, load, j = sys.argv[1:6]
r = json.loads(j)
if "rps" not in r:  # wrk summary
    r["rps"] = r["requests"] / r["seconds"]
    r["errors"] = r["socket_errors"] + r["status_errors"]
print(json.dumps({**r, "name": name, "target": target, "protocol": protocol, "load": load}))
PY
}
rate_of() { "$py" -c 'import json,sys; print([json.loads(l) for l in open(sys.argv[1]) if json.loads(l)["name"]==sys.argv[2]][0]["rps"])' "$results" "$1"; }

wrk_run() {  # wrk_run NAME SERVER OUT RATE(0 = max) SECONDS URL SCRIPT
  WRK_RATE=$4 WRK_THREADS=2 measure "$1" "$2" "$3" -- wrk -t2 -c"$conns" -d"$5"s --latency -s "$7" "$6"
}

echo "serve_bench: fpgaserve HTTP :$http_port gRPC :$grpc_port, nginx :$nginx_port ($static_bytes-byte file); ${duration}s per run" >&2

# --- a. max throughput: REST, then nginx -----------------------------------------------------------
wrk_run rest_max fpgaserve "$work/rest_max.out" 0 "$duration" "$infer_url" "$work/post.lua" ||
  die "wrk against fpgaserve failed: $(tail -n 3 "$work/rest_max.out.err")"
record rest_max fpgaserve "REST (HTTP/1.1, JSON)" "max: wrk -t2 -c$conns" "$work/rest_max.out"
wrk_run nginx_max nginx "$work/nginx_max.out" 0 "$duration" "$static_url" "$work/get.lua" ||
  die "wrk against nginx failed: $(tail -n 3 "$work/nginx_max.out.err")"
record nginx_max "nginx, static ${static_bytes} B file" "HTTP/1.1 GET" "max: wrk -t2 -c$conns" "$work/nginx_max.out"

# --- b. REST at ~50% of max: the same 16 connections, paced to half the max rate -----------------
target=$("$py" -c "print(round($(rate_of rest_max) / 2))")
wrk_run rest_half fpgaserve "$work/rest_half.out" "$target" "$duration" "$infer_url" "$work/post.lua" ||
  die "wrk paced run failed: $(tail -n 3 "$work/rest_half.out.err")"
record rest_half fpgaserve "REST (HTTP/1.1, JSON)" "~50%: wrk -t2 -c$conns paced to $target/s" "$work/rest_half.out"

# --- c. gRPC: grpc_h2load (lean HTTP/2 client, like wrk) at max with 16 calls in flight, then at
#        ~50% of that rate; and the gRPC C++ client (grpc_load) at max, for reference ------------
measure grpc_max fpgaserve "$work/grpc_max.out" -- "$grpc_h2load" --target "127.0.0.1:$grpc_port" --model banknote \
  --duration "$duration" --concurrency "$conns" --json || true
record grpc_max fpgaserve "gRPC (fp32_contents)" "max: grpc_h2load -c$conns, 1 conn" "$work/grpc_max.out"
grpc_target=$("$py" -c "print(round($(rate_of grpc_max) / 2))")
measure grpc_half fpgaserve "$work/grpc_half.out" -- "$grpc_h2load" --target "127.0.0.1:$grpc_port" --model banknote \
  --duration "$duration" --concurrency "$conns" --rate "$grpc_target" --json || true
record grpc_half fpgaserve "gRPC (fp32_contents)" "~50%: grpc_h2load -c$conns --rate $grpc_target" "$work/grpc_half.out"
measure grpcpp_max fpgaserve "$work/grpcpp_max.out" -- "$grpc_load" --target "127.0.0.1:$grpc_port" --model banknote \
  --duration "$duration" --concurrency "$conns" --threads 2 --json || true
record grpcpp_max fpgaserve "gRPC (fp32_contents)" "max: grpc_load (gRPC C++ client) -c$conns -t2" "$work/grpcpp_max.out"

# --- report ------------------------------------------------------------------------------------
"$py" - "$results" "$work/cpu.jsonl" "$(nproc)" <<'PY'
import json, sys
rows = {r["name"]: r for r in map(json.loads, open(sys.argv[1]))}
cpu = {r["run"]: r for r in map(json.loads, open(sys.argv[2]))}
nginx = rows["nginx_max"]["rps"]
order = ["rest_max", "nginx_max", "rest_half", "grpc_max", "grpc_half", "grpcpp_max"]
print("| target | protocol | load | requests/s | p50 ms | p99 ms | ratio vs nginx |")
print("|---|---|---|---|---|---|---|")
for n in order:
    r = rows[n]
    ratio = f"{r['rps'] / nginx:.2f}" if n.endswith("_max") else "-"
    print(f"| {r['target']} | {r['protocol']} | {r['load']} | {r['rps']:,.0f} | {r['p50_ms']:.3f} | {r['p99_ms']:.3f} | {ratio} |")
print()
cores = int(sys.argv[3])
print(f"CPU during each run, in % of one core (this machine has {cores} cores, {100 * cores}% in all; "
      "the load generator and the server share them):")
print()
print("| run | server | load generator | both | server CPU per request |")
print("|---|---|---|---|---|")
for n in order:
    c = cpu[n]
    who = "nginx workers" if n == "nginx_max" else "fpgaserve"
    server, loadgen = 100 * c["server"], 100 * c["loadgen"]
    per_request_us = c["server"] / rows[n]["rps"] * 1e6
    print(f"| {n} | {who} {server:.0f}% | {loadgen:.0f}% | {server + loadgen:.0f}% | {per_request_us:.0f} us |")
bad = [f"{n}: {rows[n]['errors']} errors" for n in order if rows[n].get("errors")]
if bad:
    print()
    print("Errors (non-2xx, socket or gRPC status): " + "; ".join(bad))
PY
