#!/usr/bin/env bash
# Sets everything up, then runs the linter and the whole test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
"$PY" -m ruff check .
exec "$PY" -m pytest "$@"
