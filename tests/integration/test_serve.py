"""`oms serve` as a user runs it: a FIX client trades through the whole OMS (Ray actors, Redis journal), and
SIGTERM stops it cleanly, reporting the working order it cancels."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from fix_gateway import tags as T
from fix_gateway.client import FixClient
from oms.redis_server import free_port

pytestmark = pytest.mark.integration

CONFIGS = Path(__file__).parents[2] / "configs"


@pytest.fixture
def configs(tmp_path: Path) -> tuple[Path, int]:
    target = tmp_path / "configs"
    shutil.copytree(CONFIGS, target)
    dev = target / "dev.toml"
    port = free_port()
    dev.write_text(
        dev.read_text()
        .replace('data_dir = "../var/redis"', f'data_dir = "{tmp_path / "redis"}"')
        .replace('data_dir = "../var/fix"', f'data_dir = "{tmp_path / "fix"}"')
        .replace("port = 9878", f"port = {port}")
    )
    return dev, port


def test_serve_trades_over_fix_and_stops_cleanly_on_sigterm(configs: tuple[Path, int], tmp_path: Path) -> None:
    config, port = configs
    proc = subprocess.Popen(
        [sys.executable, "-m", "oms", "serve", "--config", str(config)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    lines = [proc.stdout.readline() for _ in range(4)]
    client = FixClient("FIX.4.2", "CLIENT42", port, tmp_path / "client").start()
    try:
        client.new_order("s1", "AAPL", "2", "100", "150")
        client.new_order("b1", "AAPL", "1", "40", "150", account="ACC2")
        ack, ack2, fill_b, fill_s = client.expect(4, timeout=30)
        client.new_order("big", "AAPL", "1", "100", "250", account="TIGHT1")
        (rejected,) = client.expect(1, timeout=30)

        proc.send_signal(signal.SIGTERM)
        (shutdown,) = client.expect(1, timeout=60)
    finally:
        client.stop()
        out, _ = proc.communicate(timeout=120)

    assert lines[-1].startswith("ready") and f"port {port}" in lines[2]
    assert (ack[T.ORD_STATUS], ack2[T.EXEC_TYPE]) == ("0", "0")
    assert {(m[T.CL_ORD_ID], m[T.ORD_STATUS]) for m in (fill_b, fill_s)} == {("b1", "2"), ("s1", "1")}
    assert (rejected[T.ORD_STATUS], rejected[T.TEXT]) == ("8", "order notional above the account's maximum")
    assert (shutdown[T.CL_ORD_ID], shutdown[T.ORD_STATUS], shutdown[T.CUM_QTY]) == ("s1", "4", "40")
    assert proc.returncode == 0 and "stopped" in out


def test_a_busy_fix_port_is_named_in_one_line_and_nothing_keeps_running(configs: tuple[Path, int]) -> None:
    config, port = configs
    with socket.create_server(("0.0.0.0", port)):
        done = subprocess.run(
            [sys.executable, "-m", "oms", "serve", "--config", str(config)], capture_output=True, text=True,
            timeout=120,
        )  # fmt: skip

    assert done.returncode == 1
    assert done.stderr == f"oms serve: FIX acceptor: port {port} is busy (Address already in use)\n"
