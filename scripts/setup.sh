#!/usr/bin/env bash
# Installs everything the OMS needs (system packages through apt when missing) and builds the Cython core.
# Installs into the active Python, so `oms` and `import native` work straight after; where that interpreter is
# externally managed (PEP 668, e.g. Debian's own python3) it uses ./.venv instead. Safe to re-run.
# Run it, or source it to get $PY: the interpreter everything was installed into.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

need_apt=()
command -v gcc >/dev/null || need_apt+=(gcc)
command -v g++ >/dev/null || need_apt+=(g++)
command -v python3 >/dev/null || need_apt+=(python3 python3-dev python3-venv)
command -v redis-server >/dev/null || need_apt+=(redis-server)  # the journal; the OMS starts it itself
if [[ "${OMS_TEST_TOOLS:-}" == 1 ]]; then  # set by scripts/test.sh: what only the tests need
    command -v promtool >/dev/null || need_apt+=(prometheus)  # promtool checks deploy/prometheus
    command -v chromium >/dev/null || need_apt+=(chromium)  # the desk page's browser test
fi
if ((${#need_apt[@]})); then
    echo "setup: installing system packages: ${need_apt[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
fi

PY=${OMS_PYTHON:-python3}
managed=$($PY -c 'import sys, sysconfig, os; print(int(sys.prefix == sys.base_prefix and os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED"))))')
if [ "$managed" = 1 ] || ! $PY -m pip --version >/dev/null 2>&1; then
    if [ ! -x .venv/bin/python ]; then
        $PY -m venv .venv 2>/dev/null || {
            apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv python3-dev
            $PY -m venv .venv
        }
    fi
    PY=$(pwd)/.venv/bin/python
    echo "setup: $($PY --version) in .venv (the system Python is externally managed): use .venv/bin/oms"
fi

$PY -m pip install -q --disable-pip-version-check "setuptools>=68" wheel "Cython>=3.0" "numpy>=1.26"
# Build the Cython core against what was just installed, without an isolated build env.
$PY -m pip install -q --disable-pip-version-check --no-build-isolation -e ".[dev]"
command -v pyenv >/dev/null && pyenv rehash 2>/dev/null || true
$PY -c "import native" || { echo "setup: the native extension did not build" >&2; exit 1; }
echo "setup: ready ($($PY --version), $($PY -c 'import sys; print(sys.prefix)'))"
export PY
