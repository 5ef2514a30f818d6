"""The chaos suite: `oms serve` under FIX load from independent raw-socket sessions while something breaks: the OMS
killed (SIGKILL) or stopped (SIGTERM) and started again, its Redis stopped (SIGSTOP) or killed, an account actor's
process killed, the exchange simulator it routes MSFT to killed (SIGKILL) with orders resting there and started
again with an empty book. After each scenario, checked against the OMS as a client and an auditor would:

- every ExecutionReport a client saw is reflected: a status request answers the order with at least the CumQty the
  client saw, and with the same final status when the client saw one; every fill the client saw is journaled;
- nothing is stuck: no order pending (PendingNew, PendingCancel, PendingReplace) once the flow has stopped;
- no ghost exposure: each account's working orders are the OMS's working orders, and its position equals the net of
  its journaled fills; after the exchange's crash, no order it lost is still working at the OMS;
- `oms audit verify` passes, and (after the final stop) ClickHouse holds each fill once.

It prints one report line per scenario (orders sent, reports seen, fills seen, and what was lost, stuck or ghost:
all must be zero). Bounded: a few seconds of load per scenario.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
import tomllib
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from bench.fix_load import Session, prime
from bench.serve import PRIME_ACCOUNTS, PRIME_SESSION, write_run_configs
from oms.apps.exchange_sim import DEFAULT_EXCHANGE_CONFIG
from oms.apps.run_config import write_config
from oms.core.accounts import AccountEvent
from oms.core.model.messages import OrderFilled
from oms.infra.clickhouse.clickhouse import connect
from oms.infra.redis.journal import Journal
from oms.infra.redis.server import free_port, make_client
from tests.integration.procs import descendants
from tests.integration.test_serve import read_until_ready

pytestmark = pytest.mark.integration

ROOT = Path(__file__).parents[2]
SOH = "\x01"
RISK = {"X-API-Key": "admin-dev-secret"}  # reads every account's orders, risk state and positions
TRADERS = ("BENCH1", "BENCH2")  # each its own session and account: BENCH1 buys, BENCH2 sells, at crossing prices
LOAD_S = 4.0  # of flow per scenario, the fault after a quarter of it
RATE = 60  # new orders a second per session (every fifth one rests below the market, then is canceled)
PENDING = {"A", "6", "E"}  # PendingNew, PendingCancel, PendingReplace
FINAL = {"2", "4", "8", "C"}  # Filled, Canceled, Rejected, Expired


class Exchange:
    """`oms exchange-sim` (the venue MSFT is routed to) on one run directory, started again on the same one."""

    def __init__(self, run: Path, port: int) -> None:
        self.port = port
        self.config = write_config({
            "instruments": str(DEFAULT_EXCHANGE_CONFIG.parent / "instruments.toml"),
            "fix": {"port": port, "settings": str(DEFAULT_EXCHANGE_CONFIG.parent / "fix" / "exchange.cfg"),
                    "data_dir": str(run / "exchange")},
        }, run / "exchange.toml")  # fmt: skip
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "oms", "exchange-sim", "--config", str(self.config)],
                                     stdout=subprocess.PIPE, text=True, cwd=ROOT)  # fmt: skip
        read_until_ready(self.proc)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)
        self.proc.communicate(timeout=60)


class Oms:
    """`oms serve` on one run directory, started again on the same one; MSFT is routed to `exchange`."""

    def __init__(self, run: Path, fix_port: int, api_port: int, exchange: Exchange) -> None:
        config = write_run_configs(run, fix_port, api_port)
        raw = tomllib.loads(config.read_text())
        venue = {"port": exchange.port, "account": "OMS", "data_dir": str(run / "venues")}
        raw["venues"] = {"default": "INTERNAL", "routes": {"MSFT": "EXCH"}, "fix": {"EXCH": venue}}
        self.config = write_config(raw, config)
        self.run, self.fix_port = run, fix_port
        self.proc: subprocess.Popen[str] | None = None
        self.api = self.redis = ""

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "oms", "serve", "--config", str(self.config), "--log", str(self.run / "oms.jsonl")],
            stdout=subprocess.PIPE, text=True, cwd=ROOT,
        )  # fmt: skip
        lines = read_until_ready(self.proc)
        self.api = next(line.split()[1] for line in lines if line.startswith("api "))
        self.redis = next(line.split()[1] for line in lines if line.startswith("redis "))

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        self.proc.communicate(timeout=120)
        return self.proc.returncode

    def redis_pid(self) -> int:
        client = make_client(self.redis)
        try:
            return int(client.info("server")["process_id"])
        finally:
            client.close()

    def actor_pid(self) -> int:
        """An account actor's process (Ray's worker running `AccountShard`), below `oms serve`."""
        assert self.proc is not None
        for pid in descendants(self.proc.pid):
            try:
                if Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"ray::AccountShard"):
                    return pid
            except OSError:
                continue
        raise AssertionError("no account actor process found below oms serve")


class Trader:
    """A raw FIX session for one account and everything it saw: per ClOrdID, the reports in order."""

    def __init__(self, oms: Oms, account: str, side: str, tag: str) -> None:
        self.oms, self.account, self.side, self.tag = oms, account, side, tag
        self.seen: dict[str, list[dict[str, str]]] = {}
        self.sent: list[str] = []
        self.resting: list[str] = []
        self.at_venue: list[str] = []  # MSFT orders resting at the exchange, never canceled by the client
        # of those, the ones the client saw acknowledged when the exchange crashed: resting in the book it lost (one
        # still on its way then is resent once the exchange is back, asks for it, and may work there)
        self.lost_at_venue: list[str] = []
        self.session: Session | None = None

    def connect(self) -> None:
        self.close()
        self.session = Session(self.oms.fix_port, self.account, self.account)
        self.session.logon()

    def close(self) -> None:
        if self.session is not None:
            self.session.sock.close()
            self.session = None

    def send(self, n: int) -> None:
        """Order number `n`: a crossing 1 @ 150, or every fifth a bid/ask off the market (canceled at the next);
        every tenth also an MSFT bid/ask off the market, routed to the exchange and left there."""
        s = self.session
        assert s is not None
        cl = f"{self.tag}{self.account}-{n}"
        if n % 10 == 3:
            px = "290" if self.side == "1" else "310"
            s.outbox += s.message("D", f"11=v{cl}{SOH}1={self.account}{SOH}55=MSFT{SOH}54={self.side}{SOH}"
                                       f"60=20260101-00:00:00{SOH}38=1{SOH}40=2{SOH}44={px}{SOH}59=1{SOH}")  # fmt: skip
            self.sent.append(f"v{cl}")
            self.at_venue.append(f"v{cl}")
        price = "150" if n % 5 else ("148" if self.side == "1" else "152")
        s.outbox += s.message("D", f"11={cl}{SOH}1={self.account}{SOH}55=AAPL{SOH}54={self.side}{SOH}"
                                   f"60=20260101-00:00:00{SOH}38=1{SOH}40=2{SOH}44={price}{SOH}59=1{SOH}")  # fmt: skip
        self.sent.append(cl)
        if n % 5 == 0:
            self.resting.append(cl)
        elif n % 5 == 1 and self.resting:
            orig = self.resting[-1]
            s.outbox += s.message("F", f"11=x{orig}{SOH}41={orig}{SOH}55=AAPL{SOH}54={self.side}{SOH}38=1{SOH}"
                                       f"60=20260101-00:00:00{SOH}")  # fmt: skip
        self.pump()

    def pump(self) -> bool:
        """Send what waits and take what came; False once the connection is gone."""
        s = self.session
        if s is None:
            return False
        try:
            s.flush()
            for f in s.read():
                if f.get("35") in ("8", "9"):
                    cl = f.get("41") if f.get("35") == "9" or f["11"].startswith("x") else f["11"]
                    self.seen.setdefault(cl or f["11"], []).append(f)
        except OSError:
            self.close()
            return False
        return True

    def answer(self, cl: str) -> dict[str, str]:
        """The first report whose ClOrdID is `cl` (an order's answer, or a cancel's), within 15 s."""
        s = self.session
        assert s is not None
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            s.flush()
            for f in s.read():
                if f.get("35") in ("8", "9") and f.get("11") == cl:
                    return f
            time.sleep(0.002)
        raise TimeoutError(f"{self.account}: no answer for {cl}")

    def status(self, cl: str) -> dict[str, str]:
        """The OMS's answer to an OrderStatusRequest for `cl`."""
        s = self.session
        assert s is not None
        symbol = "MSFT" if cl.startswith("v") else "AAPL"
        s.outbox += s.message("H", f"11={cl}{SOH}790=q-{cl}{SOH}55={symbol}{SOH}54={self.side}{SOH}")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            s.flush()
            try:
                for f in s.read():
                    if f.get("35") == "8" and f.get("790") == f"q-{cl}":
                        return f
                    if f.get("35") in ("8", "9"):
                        self.seen.setdefault(f.get("41") or f["11"], []).append(f)
            except BlockingIOError:
                pass
            time.sleep(0.002)
        raise TimeoutError(f"{self.account}: no status answer for {cl}")


def _flow(traders: list[Trader], seconds: float, fault: Callable[[], None] | None) -> None:
    """Both traders send at RATE for `seconds`; `fault` runs after a quarter of it (a session the fault closed stays
    closed: the scenario starts the OMS again afterwards)."""
    start = time.monotonic()
    n = {t.account: 0 for t in traders}
    faulted = fault is None
    while (now := time.monotonic()) < start + seconds:
        if not faulted and now >= start + seconds / 4:
            fault()  # type: ignore[misc]
            faulted = True
        for t in traders:
            if t.session is None:
                continue
            n[t.account] += 1
            try:
                t.send(n[t.account])
            except OSError:
                t.close()
        time.sleep(1 / RATE)


def _settle(traders: list[Trader], quiet_s: float = 1.5, within_s: float = 30) -> None:
    """Read until nothing has come for `quiet_s`."""
    last, deadline = time.monotonic(), time.monotonic() + within_s
    while time.monotonic() - last < quiet_s and time.monotonic() < deadline:
        before = sum(map(len, (t.seen for t in traders)))
        for t in traders:
            t.pump()
        if sum(map(len, (t.seen for t in traders))) != before:
            last = time.monotonic()
        time.sleep(0.01)


def _taken_again(t: Trader, within_s: float = 60) -> bool:
    """Order entry came back by itself: an order off the market is taken (then canceled) within `within_s`."""
    deadline = time.monotonic() + within_s
    n = 0
    while time.monotonic() < deadline:
        n += 1
        s = t.session
        assert s is not None
        cl = f"probe-{t.tag}{n}"
        px = "148" if t.side == "1" else "152"
        s.outbox += s.message("D", f"11={cl}{SOH}1={t.account}{SOH}55=AAPL{SOH}54={t.side}{SOH}60=20260101-00:00:00"
                                   f"{SOH}38=1{SOH}40=2{SOH}44={px}{SOH}59=1{SOH}")  # fmt: skip
        if t.answer(cl).get("150") == "0":
            s.outbox += s.message("F", f"11=x{cl}{SOH}41={cl}{SOH}55=AAPL{SOH}54={t.side}{SOH}38=1{SOH}"
                                       f"60=20260101-00:00:00{SOH}")  # fmt: skip
            t.answer(f"x{cl}")
            return True
        time.sleep(0.5)
    return False


def _check(oms: Oms, traders: list[Trader]) -> dict[str, int]:
    """What the clients saw against what the OMS says now (see the module text); the counts of every kind."""
    lost = stuck = ghost = 0
    problems: list[str] = []
    client = make_client(oms.redis)
    try:
        by_account = {t.account: [r for _, r in Journal(client, AccountEvent).read(t.account)
                                  if isinstance(r, OrderFilled)] for t in traders}  # fmt: skip
    finally:
        client.close()
    for t in traders:
        journaled = by_account[t.account]
        exec_ids = {str(r.exec_id) for r in journaled}
        for cl, reports in t.seen.items():
            fills = {f["17"] for f in reports if f.get("35") == "8" and f.get("150") in ("F", "1", "2")}
            if fills - exec_ids:
                lost += 1
                problems.append(f"{cl}: fills seen, not journaled: {sorted(fills - exec_ids)}")
            execs = [f for f in reports if f.get("35") == "8"]
            if not execs or execs[0].get("37") == "NONE":
                continue  # refused before an order existed
            status = t.status(cl)
            seen_cum = max(int(f.get("14", "0")) for f in execs)
            final = [f["39"] for f in execs if f.get("39") in FINAL]
            if status.get("39") in PENDING:
                stuck += 1
                problems.append(f"{cl}: still pending ({status.get('39')})")
            if int(status.get("14", "0")) < seen_cum or (final and status.get("39") != final[-1]):
                lost += 1
                problems.append(f"{cl}: saw {final[-1:] or '-'} cum {seen_cum}, status {status.get('39')} "
                                f"cum {status.get('14')}")  # fmt: skip
        for cl in set(t.sent) - set(t.seen):  # sent, never answered (in flight at a crash): known or not, not pending
            status = t.status(cl)
            if status.get("39") in PENDING:
                stuck += 1
                problems.append(f"{cl}: never answered, and still pending ({status.get('39')})")
        risk = httpx.get(f"{oms.api}/v1/accounts/{t.account}/risk", headers=RISK, timeout=30).json()
        working = [
            o for status in ("new", "partially_filled", "replaced")
            for o in httpx.get(f"{oms.api}/v1/orders", headers=RISK, timeout=30,
                               params={"account": t.account, "status": status, "limit": 1000}).json()
        ]  # fmt: skip
        if risk["working_orders"] != len(working):
            ghost += 1
            problems.append(f"{t.account}: the account holds {risk['working_orders']} working, the OMS {len(working)}")
        positions = httpx.get(f"{oms.api}/v1/accounts/{t.account}/positions", headers=RISK, timeout=30).json()
        held = sum(float(p["qty"]) for p in positions["positions"] if p["symbol"] == "AAPL")
        net = sum(r.qty if r.side.name == "BUY" else -r.qty for r in journaled)
        if held != net:
            ghost += 1
            problems.append(f"{t.account}: position {held}, journaled fills net {net}")
        for cl in t.lost_at_venue:  # the exchange lost its book: the OMS must not hold these as working
            status = t.status(cl)
            if status.get("39") in ("0", "1", *PENDING):
                ghost += 1
                problems.append(f"{cl}: lost by the exchange, status {status.get('39')} at the OMS")
    audit = subprocess.run([sys.executable, "-m", "oms", "audit", "verify", "--redis-url", oms.redis],
                           capture_output=True, text=True, cwd=ROOT, timeout=120)  # fmt: skip
    if audit.returncode != 0:
        problems.append(f"audit: {audit.stdout[-500:]}")
    assert not problems, "\n".join(problems[:20])
    return {"lost": lost, "stuck": stuck, "ghost": ghost, "audit": audit.returncode}


def _scenarios(oms: Oms, exchange: Exchange, traders: list[Trader]) -> dict[str, Callable[[], bool]]:
    """name -> the fault; returns True when the OMS has to be started again afterwards."""

    def oms_sigkill() -> bool:
        time.sleep(random.uniform(0, 0.3))
        oms.stop(signal.SIGKILL)
        return True

    def oms_sigterm() -> bool:
        assert oms.stop(signal.SIGTERM) == 0
        return True

    def redis_sigstop() -> bool:  # for 1.5 s, while the flow goes on
        pid = oms.redis_pid()
        os.kill(pid, signal.SIGSTOP)
        threading.Timer(1.5, os.kill, (pid, signal.SIGCONT)).start()
        return False

    def redis_sigkill() -> bool:
        os.kill(oms.redis_pid(), signal.SIGKILL)
        return False

    def actor_sigkill() -> bool:
        os.kill(oms.actor_pid(), signal.SIGKILL)
        return False

    def exchange_sigkill() -> bool:  # started again at once, with an empty book
        for t in traders:
            t.pump()  # the reports already here: an order the exchange acknowledged rests in the book it loses
            t.lost_at_venue = [cl for cl in t.at_venue if any(f.get("150") == "0" for f in t.seen.get(cl, ()))]
        exchange.stop(signal.SIGKILL)
        exchange.start()
        return False

    return {"oms_sigkill": oms_sigkill, "oms_sigterm": oms_sigterm, "redis_sigstop": redis_sigstop,
            "redis_sigkill": redis_sigkill, "actor_sigkill": actor_sigkill,
            "exchange_sigkill": exchange_sigkill}  # fmt: skip


def _scenario(oms: Oms, name: str, fault: Callable[[], bool], traders: list[Trader]) -> str:
    """Flow with `fault` in it, the OMS started again when the fault stopped it, the checks; the report line."""
    for t in traders:
        t.connect()
    restart: list[bool] = []
    _flow(traders, LOAD_S, lambda: restart.append(fault()))
    if restart and restart[0]:
        oms.start()
        for t in traders:
            t.connect()
    _settle(traders)
    counts = _check(oms, traders)
    assert _taken_again(traders[0]), f"{name}: order entry did not come back within 60 s"
    sent = sum(len(t.sent) for t in traders)
    seen = sum(len(r) for t in traders for r in t.seen.values())
    fills = sum(1 for t in traders for r in t.seen.values() for f in r if f.get("150") in ("F", "1", "2"))
    return (f"{name:14} orders {sent:4}  reports {seen:4}  fills {fills:4}  lost {counts['lost']}  "
            f"stuck {counts['stuck']}  ghost {counts['ghost']}  audit ok")  # fmt: skip


def test_chaos_suite_loses_nothing_a_client_saw_and_leaves_nothing_stuck(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    random.seed(7)
    exchange = Exchange(tmp_path, free_port())
    exchange.start()
    oms = Oms(tmp_path, free_port(), free_port(), exchange)
    report: list[str] = []
    try:
        oms.start()
        prime(oms.fix_port, PRIME_SESSION, PRIME_ACCOUNTS, "AAPL", "150", "chaos")
        names = list(_scenarios(oms, exchange, []))
        for name in names:
            traders = [Trader(oms, a, side, f"{name}-") for a, side in zip(TRADERS, ("1", "2"), strict=True)]
            try:
                report.append(_scenario(oms, name, _scenarios(oms, exchange, traders)[name], traders))
            finally:
                for t in traders:
                    t.close()
    finally:
        code = oms.stop() if oms.proc is not None else -1
        exchange.stop()
    ch = connect(f"chdb://{tmp_path / 'clickhouse'}")  # the run's embedded store (`write_run_configs`)
    try:
        rows, unique = ch.query("SELECT count(), uniqExact(exec_id) FROM executions FINAL").result_rows[0]
    finally:
        ch.close()
    with capsys.disabled():
        print("\nchaos suite\n" + "\n".join(report) + f"\nClickHouse: {rows} fills, {unique} distinct exec ids")
    assert code == 0 and rows == unique and rows > 0
