"""A demo run's configuration files and the exchange simulator's process."""

from __future__ import annotations

import signal
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from oms.apps.demo.steps import DemoFailed
from oms.apps.paths import default_config, work_dir
from oms.apps.run_config import embedded_config, write_config
from oms.infra.redis.server import free_port

__all__ = ["DemoParams", "Ports", "exchange_sim", "write_configs"]


@dataclass(frozen=True)
class DemoParams:
    """What `oms demo` was asked for: the configs it starts from, where the run's files go, and the script's knobs."""

    config: Path = field(default_factory=default_config)
    exchange_config: Path = field(default_factory=lambda: default_config("exchange.toml"))
    run_dir: Path = field(default_factory=lambda: work_dir() / "var" / "demo")
    hold_s: float = 0.0
    seed: int = 7
    twap_s: float = 16.0
    probe_orders: int = 150


@dataclass(frozen=True)
class Ports:
    """The free ports of one run: the OMS's FIX acceptor and API, and the simulator's acceptor."""

    fix: int
    api: int
    exchange: int


# -- configuration of a run --


def write_configs(params: DemoParams) -> tuple[Path, Path, Ports]:
    """The OMS and simulator configurations of one run, written into its directory: everything embedded (a managed
    Redis, a local Ray cluster, chDB) with its files in the run directory, free ports, and MSFT routed to the
    simulator. Returns (OMS config, simulator config, ports)."""
    run = params.run_dir
    ports = _distinct_ports()
    raw = embedded_config(params.config, run, ports.fix, ports.api)
    exch = raw.get("venues", {}).get("fix", {}).get("EXCH")
    if exch is None:
        raise DemoFailed(f"{params.config}: the demo routes MSFT to [venues.fix.EXCH], which it lacks")
    venues = raw["venues"]
    venues["routes"] = {**venues.get("routes", {}), "MSFT": "EXCH"}
    exch.update(port=ports.exchange, data_dir=str(run / "venues"))
    oms_path = write_config(raw, run / "oms.toml")

    raw = tomllib.loads(params.exchange_config.read_text())
    base = params.exchange_config.parent
    raw["instruments"] = str(base / raw.get("instruments", "instruments.toml"))
    fix = raw.setdefault("fix", {})
    fix.update(port=ports.exchange, data_dir=str(run / "exchange"),
               settings=str(base / fix.get("settings", "fix/exchange.cfg")))  # fmt: skip
    return oms_path, write_config(raw, run / "exchange.toml"), ports


def _distinct_ports() -> Ports:
    ports: list[int] = []
    while len(ports) < 3:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return Ports(*ports)


# -- the simulator's process --


@contextmanager
def exchange_sim(config: Path, log: Path) -> Iterator[subprocess.Popen[str]]:
    """`oms exchange-sim` running on `config` until the block ends (then SIGTERM; it cancels what rests)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "oms", "exchange-sim", "--config", str(config)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        lines = _until_ready(proc, "oms exchange-sim")
        for line in lines[:-1]:
            print(f"  {line}")
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
        log.write_text(out)


def _until_ready(proc: subprocess.Popen[str], what: str) -> list[str]:
    assert proc.stdout is not None
    lines: list[str] = []
    while not lines or not lines[-1].startswith("ready"):
        line = proc.stdout.readline()
        if not line:
            raise DemoFailed(f"{what} exited before it was ready: {''.join(lines).strip()}")
        lines.append(line.rstrip("\n"))
    return lines
