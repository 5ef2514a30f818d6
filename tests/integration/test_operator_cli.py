"""`oms operator` against the real `oms serve`: halt, status, resume, the kill switch and limits from the command
line, each taking effect on order entry; refusals and an OMS that is not there are one line on stderr and exit 1.
And, on the same fresh server (account actors on Ray), a market order valued at the book's quote before anything
traded."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from oms.infra.redis.server import free_port
from tests.integration.test_serve import configs, start_serve  # noqa: F401 - the fixture, and how serve starts

pytestmark = pytest.mark.integration

TRADER = {"X-API-Key": "trader1-dev-secret"}


def operator(config: Path, *args: str, key: str | None = "risk1-dev-secret") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "OMS_API_KEY"}
    if key is not None:
        env["OMS_API_KEY"] = key
    return subprocess.run([sys.executable, "-m", "oms", "operator", *args, "--config", str(config)],
                          capture_output=True, text=True, timeout=60, env=env)  # fmt: skip


def test_operator_commands_halt_resume_and_kill_an_account(configs: tuple[Path, int]) -> None:  # noqa: F811
    config, _ = configs
    proc, api = start_serve(config)

    def order_as(account: str, side: str, price: str | None, **more: str) -> dict:
        body = {"account": account, "symbol": "AAPL", "side": side, "qty": "1", "price": price, **more}
        body = {k: v for k, v in body.items() if v is not None}
        return httpx.post(f"{api}/v1/orders", headers=TRADER, json=body, timeout=30).json()

    def order(price: str = "100") -> dict:  # within the collar around the last trade (101)
        return order_as("ACC1", "buy", price)

    try:
        one_side = order_as("ACC2", "sell", "101")
        refused = order_as("ACC1", "buy", None, ord_type="market")
        order_as("ACC2", "buy", "99")
        valued = order_as("ACC1", "buy", None, ord_type="market")
        working = order()["order_id"]
        halt = operator(config, "halt", "ACC1")
        halted = order()
        status = operator(config, "status", "ACC1")
        resume = operator(config, "resume", "ACC1")
        after = order()
        kill = operator(config, "kill-switch", "on", "ACC1")
        killed = order()
        release = operator(config, "kill-switch", "off", "--all", key="admin-dev-secret")
        limits = operator(config, "limits", "ACC1", "--max-order-notional", "50", "--max-open-orders", "3")
        too_big = order()  # 1 x 100 > 50
        status_after = operator(config, "status", "ACC1")
        nothing = operator(config, "limits", "ACC1")
        forbidden = operator(config, "halt", "ACC1", key="trader1-dev-secret")
        unknown = operator(config, "halt", "NOPE")
        keyless = operator(config, "halt", "ACC1", key=None)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=120)

    assert one_side["status"] == "new" and refused["reject_code"] == "no_reference_price"  # one side: no quote
    assert (valued["status"], valued["avg_px"]) == ("filled", "101"), valued  # two-sided: valued at the mid
    assert halt.returncode == 0 and json.loads(halt.stdout) == {"account": "ACC1", "state": "halted"}, halt.stderr
    assert (halted["status"], halted["reject_code"]) == ("rejected", "halted")
    assert status.returncode == 0 and json.loads(status.stdout)["trading_state"] == "halted"
    assert resume.returncode == 0 and after["status"] == "new"
    assert kill.returncode == 0 and working in json.loads(kill.stdout)["canceled"]
    assert killed["reject_code"] == "kill_switch"
    assert release.returncode == 0 and "ACC1" in json.loads(release.stdout)["accounts"]
    assert limits.returncode == 0, limits.stderr
    assert (json.loads(limits.stdout)["limits"]["max_order_notional"], too_big["reject_code"]) == ("50",
                                                                                                   "max_order_notional")
    assert json.loads(status_after.stdout)["limits"]["max_open_orders"] == 3  # the actor holds them now
    assert nothing.returncode == 1 and "400 invalid_request: no limit given" in nothing.stderr
    assert forbidden.returncode == 1 and forbidden.stderr.startswith("oms operator: 403 forbidden: ")
    assert unknown.returncode == 1 and "404 unknown_account" in unknown.stderr
    assert keyless.returncode == 1 and "OMS_API_KEY" in keyless.stderr


def test_operator_names_an_oms_that_does_not_answer(configs: tuple[Path, int]) -> None:  # noqa: F811
    config, _ = configs
    done = operator(config, "halt", "ACC1", "--url", f"http://127.0.0.1:{free_port()}")
    assert done.returncode == 1 and "no OMS answers at http://127.0.0.1:" in done.stderr
    assert "Traceback" not in done.stderr
