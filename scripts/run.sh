#!/usr/bin/env bash
# Sets everything up, then runs `oms demo`: the whole OMS on embedded defaults (managed Redis, local Ray, chDB) plus
# the exchange simulator, a scripted trading day over FIX and REST, and its positions, P&L, TCA and best execution.
# Extra arguments go to `oms demo` (e.g. `--hold 60` keeps it serving a minute after the script).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
exec "$PY" -m oms demo "$@"
