#!/usr/bin/env bash
# `make run`: the main job on the embedded defaults: compile the paper's banknote network for the
# simulated FPGA (`sim` board, Verilator core) into a local bundle and serve it as a KServe
# predictor on 8080 (REST) and 8081 (gRPC) in the foreground. Ctrl-C stops it.
set -euo pipefail
bin=${1:?usage: run-demo.sh FPGASERVE_BINARY CSV}
csv=${2:?usage: run-demo.sh FPGASERVE_BINARY CSV}
root=$(cd "$(dirname "$0")/.." && pwd)
model="$root/examples/banknote/banknote.onnx"
bundle="$(dirname "$bin")/run/banknote"
http_port=${HTTP_PORT:-8080}
grpc_port=${GRPC_PORT:-8081}

if [[ ! -f "$csv" ]]; then
  echo "run-demo: data set not found: $csv (expected ../shared/data/banknote_authentication.csv beside the project)" >&2
  exit 2
fi

echo "== fpgaserve compile $model --board sim"
"$bin" compile "$model" --board sim -o "$bundle"
echo
echo "== fpgaserve predict (the bundle on the simulated board, against the labels of $csv)"
"$bin" predict "$bundle" --data "$csv" --label-column class --driver sim --json
echo
# Two rows of raw features from the data set (variance, skewness, curtosis, entropy): the first
# is a genuine note (class 0), the second a forgery (class 1).
cat <<MSG
== fpgaserve serve on 127.0.0.1:$http_port (REST) and 127.0.0.1:$grpc_port (gRPC)
Once it logs "model banknote READY", paste these in another terminal:

curl -s -X POST http://127.0.0.1:$http_port/v1/models/banknote:predict -d '{"instances":[[3.6216,8.6661,-2.8073,-0.44699],[-1.3971,3.3191,-1.3927,-1.9948]]}'

curl -s -X POST http://127.0.0.1:$http_port/v2/models/banknote/infer -d '{"inputs":[{"name":"input","shape":[2,4],"datatype":"FP32","data":[[3.6216,8.6661,-2.8073,-0.44699],[-1.3971,3.3191,-1.3927,-1.9948]]}]}'

Metrics: curl -s http://127.0.0.1:$http_port/metrics   gRPC: see README.md (examples/grpc_client.py)
MSG
exec "$bin" serve --model_name banknote --model_dir "$bundle" --http_port "$http_port" --grpc_port "$grpc_port"
