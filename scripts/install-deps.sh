#!/usr/bin/env bash
# Installs every Debian package fpgaserve needs to build, test and run its examples.
# Idempotent: only missing packages are installed; `apt-get update` runs at most once.
set -euo pipefail

packages=(
  # build
  cmake g++ make pkg-config
  # libraries
  libprotobuf-dev protobuf-compiler libonnx-dev libhdf5-dev nlohmann-json3-dev libcli11-dev libyaml-cpp-dev
  # tests
  libgtest-dev libgmock-dev libbenchmark-dev
  # serving (F5): HTTP (Boost.Beast/Asio), gRPC, and the tools its tests and benchmarks use
  libboost-dev libgrpc++-dev protobuf-compiler-grpc python3-grpc-tools prometheus wrk nginx-light curl libnghttp2-dev
  # hardware: simulation (the sim board), lint, testbenches, synthesis
  verilator iverilog yosys
  # the open iCE40 flow (icebreaker): place & route and bitstream packing
  nextpnr-ice40 fpga-icestorm
  # programming a real icebreaker (the ice40 driver; its tests use a fake)
  openfpgaloader
  # examples (train.py) and fixture generators: Debian's python3 packages
  python3 python3-numpy python3-torch python3-onnx python3-h5py
  # object stores (F6): libcurl for s3:// and http(s)://; awscli (/usr/bin/aws) and Node.js (for
  # s3rver, see scripts/install-s3rver.sh) in the store tests
  libcurl4-openssl-dev awscli nodejs
  # the build service (F6): its SQLite job table
  libsqlite3-dev
  # Alveo cards (the xrt driver, built when present; XRT's headers need uuid-dev)
  libxrt-dev uuid-dev
)
# npm: Debian ships it apart from nodejs; NodeSource's nodejs bundles it (and conflicts with it).
command -v npm >/dev/null || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo_cmd=(sudo)
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -q
"${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
