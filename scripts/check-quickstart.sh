#!/usr/bin/env bash
# Runs every ```bash block of docs/quickstart-distributed.md in order, in one shell, as a user
# pasting them would (after `make test`), and fails on the first failing command or after 10
# minutes. It uses the doc's fixed loopback ports (4568, 50051, 50061, 8080-8091), so it is not
# part of `make test` (whose tests use ephemeral ports): run it after changing the doc or the
# commands it shows.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
script=$(mktemp)
trap 'rm -f "$script"; pkill -P $$ 2>/dev/null || true' EXIT
{
  echo 'set -euo pipefail'
  /usr/bin/python3 - docs/quickstart-distributed.md <<'PY'
import re, sys
text = open(sys.argv[1]).read()
for block in re.findall(r"```bash\n(.*?)```", text, re.S):
    print(block)
PY
} >"$script"
timeout 600 bash "$script"
echo "check-quickstart: every step of docs/quickstart-distributed.md ran"
