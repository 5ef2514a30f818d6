#!/usr/bin/env bash
# Sets everything up, then runs the OMS's main job: the matching-engine benchmark (the full demo comes with the
# gateway and account actors). Extra arguments go to `oms bench book`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
exec "$PY" -m oms bench book "$@"
