#!/usr/bin/env bash
# Installs everything the OMS needs into ./.venv (system packages through apt when missing). Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v gcc >/dev/null || need_apt+=(gcc)
command -v g++ >/dev/null || need_apt+=(g++)
if ! python3 -c "import venv, ensurepip" >/dev/null 2>&1; then need_apt+=(python3-venv); fi
if ((${#need_apt[@]})); then
    echo "setup: installing system packages: ${need_apt[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
fi

if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv"
    python3 -m venv .venv
fi
py=.venv/bin/python
$py -m pip install -q --upgrade pip
# Build requirements first, then build the Cython core against them without an isolated build env.
$py -m pip install -q "setuptools>=68" wheel "Cython>=3.0" "numpy>=1.26"
$py -m pip install -q --no-build-isolation -e ".[dev]"
$py -c "import native" || { echo "setup: the native extension did not build" >&2; exit 1; }
echo "setup: ready ($($py --version), $($py -c 'import native, numpy; print("native", "ok", "numpy", numpy.__version__)'))"
