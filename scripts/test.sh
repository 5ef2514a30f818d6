#!/usr/bin/env bash
# Sets everything up, then runs the linter, the import-layer contracts (docs/architecture.md) and the whole test
# suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
OMS_TEST_TOOLS=1 source scripts/setup.sh
"$PY" -m ruff check .
# the layer contracts: lint-imports is installed beside the interpreter (a venv's bin/ or the Python's own)
"$("$PY" -c 'import os, sys; print(os.path.join(os.path.dirname(sys.executable), "lint-imports"))')" --no-cache
exec "$PY" -m pytest "$@"
