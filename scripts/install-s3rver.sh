#!/usr/bin/env bash
# Installs s3rver (an S3-compatible test server from npm) into build/npm for the object-store tests
# (tests/store/s3_store_test.cc). Idempotent: does nothing when build/npm already has it.
# The tests look for it at <source>/build/npm/node_modules/.bin/s3rver (or $FPGASERVE_S3RVER).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dir="$root/build/npm"

if [[ -x "$dir/node_modules/.bin/s3rver" ]]; then
  echo "install-s3rver: present in $dir"
  exit 0
fi
command -v npm >/dev/null || { echo "install-s3rver: npm not found (nodejs is needed for the S3 tests)" >&2; exit 1; }

mkdir -p "$dir"
echo "install-s3rver: installing s3rver@3 into $dir"
npm install --prefix "$dir" --no-audit --no-fund --no-save --loglevel=error s3rver@3
[[ -x "$dir/node_modules/.bin/s3rver" ]] || { echo "install-s3rver: npm did not install s3rver" >&2; exit 1; }
