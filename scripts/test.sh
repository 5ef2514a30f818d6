#!/usr/bin/env bash
# Sets everything up, then runs the linter, the import-layer contracts (docs/architecture.md) and the whole test
# suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
"$PY" -m ruff check .
"$(dirname "$PY")/lint-imports" --no-cache
exec "$PY" -m pytest "$@"
