"""The commands and code in README.md and docs/ run as written, against a real `oms serve`.

Every fenced `bash` and `python` block is run, and every `toml` block must parse, unless the line before it is a
comment `<!-- not run: why -->` saying why it cannot be (the two commands CI runs itself, a server that blocks,
placeholders to fill in): an exclusion is written where the reader sees it. The SQL blocks are run by
tests/unit/infra/test_compliance_docs.py, on a seeded store. The bash blocks meet the server as a user would, with a
few orders in it: `localhost:8080` is the server this test started, and `oms` commands get its `--config`; each block
runs with `set -euo pipefail`, and no answer may be a server error (`internal_error`).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.test_serve import serve_configs, start_serve

pytestmark = pytest.mark.integration

ROOT = Path(__file__).parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_BLOCK = re.compile(r"^(?P<before>[^\n]*)\n```(?P<lang>\w*)\n(?P<body>.*?)^```$", re.M | re.S)
_SKIP = re.compile(r"<!-- not run: (.+?) -->\s*$")
_OMS_COMMANDS = ("sql", "report", "operator", "audit", "config")  # those that take --config
TRADER = {"X-API-Key": "trader1-dev-secret"}


def blocks(lang: str) -> list[tuple[str, str]]:
    """(where, body) of every `lang` block of the docs that is not marked as not run."""
    found = []
    for path in DOCS:
        text = "\n" + path.read_text()
        for m in _BLOCK.finditer(text):
            last = m.group("before").rsplit("\n", 1)[-1]
            if m.group("lang") == lang and not _SKIP.search(last):
                line = text[: m.start("body")].count("\n")
                found.append((f"{path.relative_to(ROOT)}:{line}", m.group("body")))
    return found


def test_every_excluded_block_says_why() -> None:
    for path in DOCS:
        for reason in _SKIP.findall(path.read_text()):
            assert len(reason) > 10, f"{path}: '{reason}' is no reason"


def test_every_toml_block_parses() -> None:
    for where, body in blocks("toml"):
        try:
            tomllib.loads(body)
        except tomllib.TOMLDecodeError as exc:
            raise AssertionError(f"{where}: {exc}") from exc


@pytest.mark.parametrize(("where", "body"), blocks("python"), ids=lambda v: v if ":" in str(v) else "")
def test_every_python_block_runs(where: str, body: str, served: tuple[Path, str]) -> None:
    config, api = served
    code = as_run_here(body, config, api)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, f"{where}:\n{code}\n--- stderr\n{done.stderr[-2000:]}"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    tmp = tmp_path_factory.mktemp("docs")
    config, _ = serve_configs(tmp)
    proc, api = start_serve(config)
    try:
        for price in ("149", "149.5", "150"):  # something to list and page through
            body = {"account": "ACC1", "symbol": "AAPL", "side": "buy", "qty": "10", "price": price}
            assert httpx.post(f"{api}/v1/orders", json=body, headers=TRADER, timeout=30).status_code == 201
        yield config, api
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=120)


def as_run_here(body: str, config: Path, api: str) -> str:
    """`body` aimed at this test's server: its API address, and its configuration for `oms` commands."""
    body = body.replace("localhost:8080", api.removeprefix("http://")).replace("configs/dev.toml", str(config))
    lines = []
    for line in body.splitlines():
        command, hash_, comment = line.partition(" #")
        if re.match(rf"\s*oms ({'|'.join(_OMS_COMMANDS)})\b", command) and "--config" not in command:
            line = f"{command.rstrip()} --config {config}" + (f"  #{comment}" if hash_ else "")
        lines.append(line)
    return "\n".join(lines)


@pytest.mark.parametrize(("where", "body"), blocks("bash"), ids=lambda v: v if ":" in str(v) else "")
def test_every_bash_block_runs_against_a_running_oms(where: str, body: str, served: tuple[Path, str]) -> None:
    config, api = served
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    script = "set -euo pipefail\n" + as_run_here(body, config, api)
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)
    assert done.returncode == 0, f"{where}:\n{script}\n--- stdout\n{done.stdout[-2000:]}\n--- stderr\n{done.stderr}"
    assert '"code":"internal_error"' not in done.stdout.replace(" ", ""), f"{where}: {done.stdout[-2000:]}"
