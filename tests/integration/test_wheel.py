"""The built wheel works outside the checkout: built with `pip wheel`, installed (`--no-deps`) into a fresh venv
that sees this Python's packages (so QuickFIX, Ray and chDB are not rebuilt), and run from a directory that is not
the checkout: `oms --version`, `oms config check` on the packaged defaults, `oms init` + `oms config check`, the
demo, `oms serve` on ./configs, and `oms exchange-sim` writing the packaged defaults to ./configs. Every command is
checked to run the venv's copy of the package, never the checkout's, and to write nothing inside it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from oms.infra.redis.server import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Venv:
    """A venv with the wheel installed, a working directory outside the checkout, and where the package landed."""

    bin: Path
    work: Path
    package: Path

    def run(self, *args: str, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """`oms <args>` from the venv, in `cwd` (the working directory by default)."""
        return subprocess.run(
            [str(self.bin / "oms"), *args], cwd=cwd or self.work, env=_env(), capture_output=True, text=True,
            timeout=timeout,
        )  # fmt: skip

    def files_in_package(self) -> set[Path]:
        return {p for p in self.package.rglob("*") if "__pycache__" not in p.parts}


def _env() -> dict[str, str]:
    """This environment without anything that would put the checkout on the path."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _stop(proc: subprocess.Popen[str], timeout: float) -> str:
    """SIGTERM `proc` and return the rest of its output; kill it (and fail) when it has not exited in `timeout`."""
    proc.send_signal(signal.SIGTERM)
    try:
        rest, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        rest, _ = proc.communicate()
        pytest.fail(f"{proc.args} did not stop within {timeout} s of SIGTERM: {rest[-3000:]}")
    return rest


def _until_ready(proc: subprocess.Popen[str]) -> list[str]:
    """What `proc` prints up to its `ready` line; fails with the output when it exits first."""
    assert proc.stdout is not None
    lines: list[str] = []
    while not lines or not lines[-1].startswith("ready"):
        line = proc.stdout.readline()
        if not line:
            proc.wait(timeout=60)
            pytest.fail(f"{proc.args} exited ({proc.returncode}) before it was ready: {''.join(lines)[-3000:]}")
        lines.append(line)
    return lines


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Venv:
    tmp = tmp_path_factory.mktemp("wheel")
    dist = tmp / "dist"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist), str(ROOT)],
        cwd=tmp, env=_env(), capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = dist.glob("oms-*.whl")
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(tmp / "venv")], check=True, timeout=300)
    python = tmp / "venv" / "bin" / "python"
    # --ignore-installed: this Python may have the checkout installed (editable); the venv gets its own copy
    installed = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--ignore-installed", str(wheel)],
        cwd=tmp, env=_env(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr[-3000:]
    work = tmp / "work"
    work.mkdir()
    where = subprocess.run(
        [str(python), "-c", "import oms, native; print(oms.__file__); print(native.__file__)"],
        cwd=work, env=_env(), capture_output=True, text=True, check=True, timeout=60,
    ).stdout.split()  # fmt: skip
    venv_root = (tmp / "venv").resolve()
    for module in where:
        assert Path(module).resolve().is_relative_to(venv_root), f"{module} is not the wheel's copy"
    return Venv(tmp / "venv" / "bin", work, Path(where[0]).resolve().parent)


def test_the_wheel_carries_the_default_configuration_and_the_sql(venv: Venv) -> None:
    for name in ("dev.toml", "instruments.toml", "accounts.toml", "api_keys.toml", "exchange.toml", "fix/acceptor.cfg",
                 "fix/exchange.cfg"):  # fmt: skip
        assert (venv.package / "configs" / name).read_bytes() == (ROOT / "configs" / name).read_bytes()
    assert not (venv.package / "configs").is_symlink()
    shipped = {p.relative_to(venv.package) for p in (venv.package / "infra" / "clickhouse" / "sql").rglob("*.sql")}
    in_checkout = {p.relative_to(ROOT / "oms") for p in (ROOT / "oms" / "infra" / "clickhouse" / "sql").rglob("*.sql")}
    assert shipped == in_checkout and shipped
    static = ROOT / "oms" / "adapters" / "api" / "static"  # the desk page and the API docs page
    pages = {p.relative_to(static) for p in static.rglob("*") if p.is_file()}
    assert {p.relative_to(venv.package / "adapters" / "api" / "static") for p in
            (venv.package / "adapters" / "api" / "static").rglob("*") if p.is_file()} == pages  # fmt: skip
    assert {Path("desk/index.html"), Path("docs/redoc.standalone.js")} <= pages


def test_version_is_the_wheels_package(venv: Venv) -> None:
    done = venv.run("--version")

    assert done.returncode == 0, done.stderr
    first, *others = done.stdout.splitlines()
    assert first.startswith("oms 0.") and f"({venv.package}, Python" in first
    assert [line.split()[0] for line in others] == ["quickfix", "ray", "chdb", "msgspec", "redis-server"]


def test_config_check_of_the_packaged_defaults_is_ok(venv: Venv) -> None:
    done = venv.run("config", "check")

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"ok: {venv.package / 'configs' / 'dev.toml'}\n")
    assert "oms serve` without --config first writes them to ./configs" in done.stdout


def test_init_writes_editable_configs_that_check_ok(venv: Venv, tmp_path: Path) -> None:
    target = tmp_path / "cfg"

    done = venv.run("init", str(target))

    assert done.returncode == 0, done.stderr
    assert f"oms serve --config {target / 'dev.toml'}" in done.stdout
    checked = venv.run("config", "check", "--config", str(target / "dev.toml"))
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.startswith(f"ok: {target / 'dev.toml'}\n")
    assert f"data in {tmp_path / 'var' / 'redis'}" in checked.stdout
    again = venv.run("init", str(target))
    assert again.returncode == 1 and "would overwrite" in again.stderr


def test_config_check_names_a_misspelt_key_of_an_installed_config(venv: Venv, tmp_path: Path) -> None:
    assert venv.run("init", str(tmp_path / "cfg")).returncode == 0
    dev = tmp_path / "cfg" / "dev.toml"
    dev.write_text(dev.read_text().replace("num_cpus = 2", "num_cpu = 2"))

    done = venv.run("config", "check", "--config", str(dev))

    assert done.returncode == 1
    assert done.stderr == f"{dev}: Object contains unknown field `num_cpu` - at `$.ray`\n"


def test_demo_runs_outside_the_checkout(venv: Venv, tmp_path: Path) -> None:
    before = venv.files_in_package()

    done = venv.run(
        "demo", "--run-dir", str(tmp_path / "demo"), "--twap-seconds", "6", "--probe-orders", "40", timeout=600
    )

    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert "streams: every chain intact" in done.stdout and "== best execution" in done.stdout
    assert (tmp_path / "demo" / "latency.png").is_file()
    assert venv.files_in_package() == before


@pytest.fixture
def serving(venv: Venv, tmp_path: Path) -> Iterator[tuple[Path, list[str]]]:
    """`oms serve` with no --config in a directory where `oms init configs` ran and the ports were made free ones;
    yields (the directory, what it printed up to `ready`) and stops it with SIGTERM."""
    work = tmp_path / "deploy"
    work.mkdir()
    assert venv.run("init", "configs", cwd=work).returncode == 0
    dev = work / "configs" / "dev.toml"
    dev.write_text(
        dev.read_text().replace("port = 9878", f"port = {free_port()}").replace("port = 8080", f"port = {free_port()}")
    )
    proc = subprocess.Popen(
        [str(venv.bin / "oms"), "serve"], cwd=work, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    try:
        lines = _until_ready(proc)
        yield work, lines
    finally:
        rest = _stop(proc, 120)
    assert proc.returncode == 0, rest
    assert rest.rstrip().endswith("stopped")


def test_serve_runs_outside_the_checkout_on_its_configs_folder(
    venv: Venv, serving: tuple[Path, list[str]]
) -> None:
    work, lines = serving
    out = "".join(lines)
    assert f"keys: {work / 'configs' / 'api_keys.toml'}" in out
    assert f"analytics chdb://{work / 'var' / 'clickhouse'}" in out
    assert f"log       {work / 'var' / 'log' / 'oms.jsonl'}" in out
    assert (work / "var" / "redis").is_dir()
    assert not (venv.package / "var").exists()
    api = next(line.split()[1] for line in lines if line.startswith("api "))
    with urllib.request.urlopen(f"{api}/desk/", timeout=30) as page:  # the packaged page, served
        assert b"<title>OMS desk</title>" in page.read()


def test_exchange_sim_without_a_config_writes_the_defaults_to_configs_and_runs(venv: Venv, tmp_path: Path) -> None:
    work = tmp_path / "sim"
    work.mkdir()
    proc = subprocess.Popen(
        [str(venv.bin / "oms"), "exchange-sim", "--port", str(free_port())], cwd=work, env=_env(),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        lines = _until_ready(proc)
    finally:
        rest = _stop(proc, 60)
    assert proc.returncode == 0, rest
    assert lines[0].startswith(f"oms exchange-sim: wrote the default configuration to {work / 'configs'}")
    assert (work / "configs" / "exchange.toml").read_bytes() == (ROOT / "configs" / "exchange.toml").read_bytes()
    assert (work / "var" / "exchange").is_dir()
    assert not (venv.package / "var").exists()
