"""`oms demo`: the whole OMS on embedded defaults, an exchange simulator with synthetic market flow, and a scripted
trading day over FIX and REST; then the accounts' positions and P&L, the TCA summary and the best-execution table
from ClickHouse, and a latency histogram.

Everything runs for real: a managed `redis-server`, a local Ray cluster with the account actors, the ClickHouse sink
on embedded chDB, the FIX acceptor and the REST API of `oms serve` (in this process), and `oms exchange-sim` (its own
process) that MSFT is routed to. Two market makers make the market: `MAKER`, a member of the simulator quoting MSFT
over FIX 4.4, and account MM1 quoting AAPL on the internal book over REST. Each step of the script waits for the
answer it expects and prints what came back; any other answer stops the demo with the step's name and exit code 1.
A run keeps its files (configs, journal, ClickHouse store, FIX logs, the PNG) in one directory, recreated each run.
"""

from __future__ import annotations

import argparse
import queue
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
import tomllib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import tomli_w
from hdrh.histogram import HdrHistogram

from fix_gateway import tags as T
from fix_gateway.client import FixClient, Received
from oms.apps.exchange_sim import DEFAULT_EXCHANGE_CONFIG
from oms.apps.serve import DEFAULT_CONFIG, OmsApp
from oms.infra.redis.server import free_port
from oms.runtime.logs import configure_logging

__all__ = ["DemoFailed", "add_demo_command", "run_demo"]

ROOT = Path(__file__).parents[2]
FILLS = {"1", "2", "F"}  # ExecType of a fill: partial / fill in FIX 4.2, trade in FIX 4.4
EXEC_TYPES = {"0": "new", "1": "partial", "2": "fill", "4": "canceled", "5": "replaced", "6": "pending cancel",
              "8": "rejected", "C": "expired", "E": "pending replace", "F": "trade"}  # fmt: skip
ORD_STATUS = {"0": "new", "1": "partially filled", "2": "filled", "4": "canceled", "5": "replaced",
              "6": "pending cancel", "8": "rejected", "C": "expired", "E": "pending replace"}  # fmt: skip
HEADERS = {
    "admin": {"X-API-Key": "admin-dev-secret"},
    "risk": {"X-API-Key": "risk1-dev-secret"},
    "trader": {"X-API-Key": "trader1-dev-secret"},
    "algo": {"X-API-Key": "algo-dev-secret"},
    "maker": {"X-API-Key": "maker-dev-secret"},
}


class DemoFailed(Exception):
    """A scripted step did not get the answer it expects."""


@dataclass(frozen=True)
class DemoParams:
    config: Path = DEFAULT_CONFIG
    exchange_config: Path = DEFAULT_EXCHANGE_CONFIG
    run_dir: Path = ROOT / "var" / "demo"
    hold_s: float = 0.0
    seed: int = 7
    twap_s: float = 16.0
    probe_orders: int = 150


@dataclass(frozen=True)
class Ports:
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
    raw = tomllib.loads(params.config.read_text())
    base = params.config.parent
    exch = raw.get("venues", {}).get("fix", {}).get("EXCH")
    if exch is None:
        raise DemoFailed(f"{params.config}: the demo routes MSFT to [venues.fix.EXCH], which it lacks")
    raw["instruments"] = str(base / raw.get("instruments", "instruments.toml"))
    raw["accounts"] = str(base / raw.get("accounts", "accounts.toml"))
    redis = raw.setdefault("redis", {})
    redis.pop("url", None)
    redis["data_dir"] = str(run / "redis")
    raw.setdefault("ray", {}).pop("address", None)
    fix = raw.setdefault("fix", {})
    fix.update(port=ports.fix, data_dir=str(run / "fix"), settings=str(base / fix.get("settings", "fix/acceptor.cfg")))
    api = raw.setdefault("api", {})
    api.update(port=ports.api, keys=str(base / api.get("keys", "api_keys.toml")))
    analytics = raw.setdefault("analytics", {})
    analytics.pop("dsn", None)
    analytics["data_dir"] = str(run / "clickhouse")
    venues = raw["venues"]
    venues["routes"] = {**venues.get("routes", {}), "MSFT": "EXCH"}
    exch.update(port=ports.exchange, data_dir=str(run / "venues"))
    oms_path = run / "oms.toml"
    oms_path.write_text(tomli_w.dumps(raw))

    raw = tomllib.loads(params.exchange_config.read_text())
    base = params.exchange_config.parent
    raw["instruments"] = str(base / raw.get("instruments", "instruments.toml"))
    fix = raw.setdefault("fix", {})
    fix.update(port=ports.exchange, data_dir=str(run / "exchange"),
               settings=str(base / fix.get("settings", "fix/exchange.cfg")))  # fmt: skip
    exchange_path = run / "exchange.toml"
    exchange_path.write_text(tomli_w.dumps(raw))
    return oms_path, exchange_path, ports


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


# -- FIX counterparties --


class Counterparty:
    """A FIX client the script drives: it waits for the answers it expects and prints every message it reads."""

    def __init__(self, label: str, begin_string: str, sender: str, port: int, data_dir: Path, **kw: Any) -> None:
        self.label = label
        self.arrivals: queue.Queue[tuple[int, Received]] = queue.Queue()
        self.client = FixClient(begin_string, sender, port, data_dir, on_app=self._arrived, **kw)
        self.quiet = False  # while True, messages read are not printed (the latency probe)

    def _arrived(self, msg: Received) -> None:
        self.arrivals.put((time.perf_counter_ns(), msg))

    def start(self) -> Counterparty:
        self.client.start(wait=30)
        return self

    def stop(self) -> None:
        self.client.stop()

    def read(self, timeout: float) -> tuple[int, Received]:
        """The next application message and when it arrived (perf_counter ns)."""
        try:
            at, msg = self.arrivals.get(timeout=timeout)
        except queue.Empty:
            raise DemoFailed(f"{self.label}: nothing received in {timeout:g} s") from None
        if not self.quiet:
            print(f"  {self.label:<8} <- {describe(msg)}")
        return at, msg

    def expect(self, cl_ord_id: str, exec_types: set[str], timeout: float = 30.0) -> Received:
        """Read until the ExecutionReport for `cl_ord_id` with one of `exec_types`. When a reject ("8") is what is
        expected, any other answer for that id is a DemoFailed; otherwise a reject or OrderCancelReject is."""
        deadline = time.monotonic() + timeout
        while True:
            _, msg = self.read(max(0.0, deadline - time.monotonic()))
            if msg.get(T.CL_ORD_ID) != cl_ord_id:
                continue
            if msg.msg_type == T.MT_EXECUTION_REPORT and msg.get(T.EXEC_TYPE) in exec_types:
                return msg
            if "8" in exec_types:
                raise DemoFailed(f"{self.label}: {cl_ord_id} was not rejected: {describe(msg)}")
            if msg.msg_type == T.MT_ORDER_CANCEL_REJECT or msg.get(T.EXEC_TYPE) == "8":
                raise DemoFailed(f"{self.label}: {cl_ord_id} refused: {describe(msg)}")

    def send(self, what: str, action: Callable[[FixClient], None]) -> None:
        print(f"  {self.label:<8} -> {what}")
        action(self.client)


def describe(msg: Received) -> str:
    """One line of an application message, in words."""
    if msg.msg_type == T.MT_ORDER_CANCEL_REJECT:
        return f"OrderCancelReject {msg.get(T.CL_ORD_ID)}: {msg.get(T.TEXT, '')}"
    if msg.msg_type != T.MT_EXECUTION_REPORT:
        return f"MsgType {msg.msg_type}: {msg.get(T.TEXT, '')}"
    parts = [
        EXEC_TYPES.get(msg.get(T.EXEC_TYPE, ""), msg.get(T.EXEC_TYPE, "?")).ljust(8),
        msg.get(T.CL_ORD_ID, ""),
        f"{'buy' if msg.get(T.SIDE) == '1' else 'sell'} {msg.get(T.SYMBOL, '')}",
    ]
    if msg.get(T.EXEC_TYPE) in FILLS:
        parts.append(f"{msg[T.LAST_QTY]} @ {msg[T.LAST_PX]}")
    parts.append(f"cum {msg.get(T.CUM_QTY)} leaves {msg.get(T.LEAVES_QTY)}")
    parts.append(f"({ORD_STATUS.get(msg.get(T.ORD_STATUS, ''), '?')})")
    if msg.get(T.TEXT):
        parts.append(f"- {msg[T.TEXT]}")
    return " ".join(parts)


# -- market makers --


class Quoter(ABC):
    """Two-sided quotes of `size` around a seeded random-walk mid (in cents), re-priced every `interval_s` on a
    thread of its own once `start` is called; `quote` posts the first pair."""

    def __init__(self, symbol: str, mid_cents: int, size: int, seed: int, interval_s: float = 0.3) -> None:
        self.symbol = symbol
        self.anchor = self.mid = mid_cents
        self.size = size
        self.interval_s = interval_s
        self._rng = random.Random(seed)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def bid_ask(self) -> tuple[str, str]:
        return _price(self.mid - 5), _price(self.mid + 5)

    def quote(self) -> None:
        bid, ask = self.bid_ask()
        self.replace("1", bid)
        self.replace("2", ask)

    def step(self) -> None:
        """Move the mid one random step (pulled back toward where it started) and re-quote."""
        drift = -1 if self.mid > self.anchor + 10 else 1 if self.mid < self.anchor - 10 else 0
        self.mid += self._rng.choice((-2, -1, 0, 1, 2)) + drift
        self.quote()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"quoter-{self.symbol}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.step()

    @abstractmethod
    def replace(self, side: str, price: str) -> None:
        """Withdraw the quote on `side` ("1" bid, "2" ask) if it still rests, and post one at `price`."""


def _price(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


class FixQuoter(Quoter):
    """The simulator's member MAKER, quoting over FIX 4.4."""

    def __init__(self, port: int, data_dir: Path, symbol: str, mid_cents: int, size: int, seed: int) -> None:
        super().__init__(symbol, mid_cents, size, seed)
        self.client = FixClient("FIX.4.4", "MAKER", port, data_dir, target="EXCH", on_app=self._on_app)
        self._live: dict[str, str] = {}  # side -> ClOrdID of its resting quote
        self._done: set[str] = set()
        self._n = 0

    def _on_app(self, msg: Received) -> None:
        if msg.get(T.ORD_STATUS) in {"2", "4", "8", "C"}:
            self._done.add(msg.get(T.CL_ORD_ID, ""))

    def replace(self, side: str, price: str) -> None:
        old = self._live.get(side)
        if old is not None and old not in self._done:
            self._n += 1
            self.client.cancel(f"mk-x{self._n}", old, self.symbol, side, str(self.size))
        self._n += 1
        cl = f"mk-{self._n}"
        self.client.new_order(cl, self.symbol, side, str(self.size), price)
        self._live[side] = cl


class RestQuoter(Quoter):
    """Account MM1 quoting on the internal book over REST; keeps each request's latency."""

    def __init__(self, api: str, symbol: str, mid_cents: int, size: int, seed: int) -> None:
        super().__init__(symbol, mid_cents, size, seed)
        self.http = httpx.Client(base_url=api, headers=HEADERS["maker"], timeout=30)
        self._live: dict[str, int] = {}
        self.latency = HdrHistogram(1, 60_000_000_000, 3)

    def replace(self, side: str, price: str) -> None:
        old = self._live.pop(side, None)
        if old is not None:  # a quote filled meanwhile is done already: the 409 that answers is expected
            self.http.delete(f"/v1/orders/{old}")
        body = {"account": "MM1", "symbol": self.symbol, "side": "buy" if side == "1" else "sell",
                "qty": str(self.size), "price": price}  # fmt: skip
        t0 = time.perf_counter_ns()
        r = self.http.post("/v1/orders", json=body)
        self.latency.record_value(max(1, time.perf_counter_ns() - t0))
        if r.status_code != 201 or r.json()["status"] == "rejected":
            raise DemoFailed(f"MM1 quote refused: {r.status_code} {r.text}")
        if r.json()["status"] in {"new", "partially_filled"}:
            self._live[side] = r.json()["order_id"]


# -- the scripted day --


@contextmanager
def step(title: str) -> Iterator[None]:
    """A titled step of the script: its failures name it."""
    print(f"\n== {title}")
    try:
        yield
    except DemoFailed as exc:
        raise DemoFailed(f"{title}: {exc}") from None
    except (httpx.HTTPError, TimeoutError, ConnectionError) as exc:
        raise DemoFailed(f"{title}: {type(exc).__name__}: {exc}") from None


class TradingDay:
    """The script: FIX 4.2 and 4.4 clients trade, a latency probe, REST algos (TWAP, iceberg), a kill switch."""

    def __init__(self, app: OmsApp, ports: Ports, params: DemoParams) -> None:
        assert app.api is not None
        self.params = params
        self.api = app.api.url
        self.http = {role: httpx.Client(base_url=self.api, headers=h, timeout=30) for role, h in HEADERS.items()}
        clients = params.run_dir / "clients"
        self.c42 = Counterparty("CLIENT42", "FIX.4.2", "CLIENT42", ports.fix, clients / "CLIENT42")
        self.c44 = Counterparty("CLIENT44", "FIX.4.4", "CLIENT44", ports.fix, clients / "CLIENT44",
                                password="client44-dev")  # fmt: skip
        self.msft = FixQuoter(ports.exchange, clients / "MAKER", "MSFT", 30000, 300, params.seed)
        self.aapl = RestQuoter(self.api, "AAPL", 15000, 500, params.seed + 1)
        self.ack_latency = HdrHistogram(1, 60_000_000_000, 3)
        self.cancel_latency = HdrHistogram(1, 60_000_000_000, 3)

    def run(self) -> None:
        try:
            with step("connect: CLIENT42 (FIX 4.2) and CLIENT44 (FIX 4.4) to the OMS, MAKER (FIX 4.4) to EXCH"):
                self.c42.start()
                self.c44.start()
                self.msft.client.start(wait=30)
            with step("market makers: MAKER quotes MSFT on EXCH over FIX, MM1 quotes AAPL on the internal book"):
                self.msft.quote()
                self.aapl.quote()
                print(f"  MSFT {' / '.join(self.msft.bid_ask())} x {self.msft.size} (MAKER on EXCH)")
                print(f"  AAPL {' / '.join(self.aapl.bid_ask())} x {self.aapl.size} (MM1, internal)")
            self.fix_session()
            self.latency_probe()
            self.aapl.start()
            self.msft.start()
            self.algos_and_kill_switch()
            self.aapl.stop()
            self.msft.stop()
            self.read_back()
            if self.params.hold_s > 0:
                print(f"\n== holding {self.params.hold_s:g} s: curl {self.api}/metrics")
                time.sleep(self.params.hold_s)
        finally:
            self.aapl.stop()
            self.msft.stop()
            for c in (self.c42, self.c44):
                c.stop()
            self.msft.client.stop()
            for http in self.http.values():
                http.close()
            self.aapl.http.close()

    def fix_session(self) -> None:
        c42, c44 = self.c42, self.c44
        with step("CLIENT42 offers 300 AAPL at 150.04, inside MM1's spread (ACC1)"):
            c42.send("NewOrderSingle s1: sell 300 AAPL limit 150.04", lambda c: c.new_order(
                "s1", "AAPL", "2", "300", "150.04", account="ACC1"))  # fmt: skip
            c42.expect("s1", {"0"})
        with step("CLIENT44 lifts 100 of it (ACC2): a fill for one, a partial fill for the other"):
            c44.send("NewOrderSingle b1: buy 100 AAPL limit 150.04", lambda c: c.new_order(
                "b1", "AAPL", "1", "100", "150.04", account="ACC2"))  # fmt: skip
            c44.expect("b1", FILLS)
            c42.expect("s1", FILLS)
        with step("CLIENT42 replaces the rest: 250 in total at 150.03"):
            c42.send("OrderCancelReplaceRequest s1r (was s1): 250 at 150.03", lambda c: c.replace(
                "s1r", "s1", "AAPL", "2", "250", "150.03"))  # fmt: skip
            c42.expect("s1r", {"5"})
        with step("CLIENT44 buys 100 more at 150.03"):
            c44.send("NewOrderSingle b2: buy 100 AAPL limit 150.03", lambda c: c.new_order(
                "b2", "AAPL", "1", "100", "150.03", account="ACC2"))  # fmt: skip
            c44.expect("b2", FILLS)
            c42.expect("s1r", FILLS)
        with step("CLIENT42 cancels what is left"):
            c42.send("OrderCancelRequest s1x (for s1r)", lambda c: c.cancel("s1x", "s1r", "AAPL", "2", "250"))
            c42.expect("s1x", {"4"})
        with step("risk reject: CLIENT44 sends 200 AAPL for TIGHT1, whose orders may not exceed 100 shares"):
            c44.send("NewOrderSingle r1: buy 200 AAPL limit 150.05", lambda c: c.new_order(
                "r1", "AAPL", "1", "200", "150.05", account="TIGHT1"))  # fmt: skip
            c44.expect("r1", {"8"})
        _, ask = self.msft.bid_ask()
        with step(f"routing: CLIENT42 buys 200 MSFT at {ask}; MSFT goes to EXCH over FIX, where MAKER sells"):
            c42.send(f"NewOrderSingle m1: buy 200 MSFT limit {ask}", lambda c: c.new_order(
                "m1", "MSFT", "1", "200", ask, account="ACC1"))  # fmt: skip
            c42.expect("m1", FILLS)
        with step("CLIENT44 bids 100 MSFT at 295.00 on EXCH: it rests there"):
            c44.send("NewOrderSingle m2: buy 100 MSFT limit 295.00", lambda c: c.new_order(
                "m2", "MSFT", "1", "100", "295.00", account="ACC2"))  # fmt: skip
            c44.expect("m2", {"0"})

    def latency_probe(self) -> None:
        n, rate = self.params.probe_orders, 25.0  # ACC1 may send 50 orders a second
        with step(
            f"latency probe: CLIENT42 sends {n} bids below the market and cancels each, {rate:g} messages/s, "
            "timed from when each was due to its first report"
        ):
            c = self.c42
            requests: list[tuple[str, Callable[[], None], HdrHistogram, str]] = []
            for i in range(n):
                requests.append((f"p{i}", partial(c.client.new_order, f"p{i}", "AAPL", "1", "1", "149.00",
                                                  account="ACC1"), self.ack_latency, "0"))  # fmt: skip
                requests.append((f"x{i}", partial(c.client.cancel, f"x{i}", f"p{i}", "AAPL", "1", "1"),
                                 self.cancel_latency, "4"))  # fmt: skip
            c.quiet = True
            try:
                self._paced(c, requests, rate)
            finally:
                c.quiet = False
            for what, h in (("NewOrderSingle -> New", self.ack_latency), ("cancel -> Canceled", self.cancel_latency)):
                print(f"  {what:<22} {_percentiles(h)}")
            print("  (ACC1 is in reserved mode: the order is decided in the engine within its actor's allowance;")
            print("  a cancel changes the account, so it is journaled through the actor before it is reported)")

    def _paced(
        self, c: Counterparty, requests: list[tuple[str, Callable[[], None], HdrHistogram, str]], rate: float
    ) -> None:
        """Send `requests` (ClOrdID, send, histogram, awaited ExecType) at `rate` per second, open loop, and record
        each one's time from when it was due to its awaited report; a cancel goes once its order is acknowledged."""
        due: dict[str, tuple[int, HdrHistogram, str]] = {}
        start = time.perf_counter_ns()
        for i, (cl, send, hist, exec_type) in enumerate(requests):
            at = start + int(i * 1e9 / rate)
            while (wait := at - time.perf_counter_ns()) > 0:
                self._drain_probe(c, due, min(wait / 1e9, 0.001))
            if cl.startswith("x"):  # its order must be acknowledged before it can be canceled
                deadline = time.monotonic() + 30
                while "p" + cl[1:] in due:
                    if time.monotonic() > deadline:
                        raise DemoFailed(f"order p{cl[1:]} unacknowledged after 30 s")
                    self._drain_probe(c, due, 0.001)
            due[cl] = (at, hist, exec_type)
            send()
        deadline = time.monotonic() + 30
        while due:
            if time.monotonic() > deadline:
                raise DemoFailed(f"{len(due)} probe requests unanswered after 30 s")
            self._drain_probe(c, due, 0.2)

    @staticmethod
    def _drain_probe(c: Counterparty, due: dict[str, tuple[int, HdrHistogram, str]], timeout: float) -> None:
        """Read what arrived (waiting up to `timeout` for the first message); the awaited report of a request
        records its latency."""
        while True:
            try:
                at, msg = c.arrivals.get(timeout=timeout)
            except queue.Empty:
                return
            cl = msg.get(T.CL_ORD_ID, "")
            if msg.msg_type != T.MT_EXECUTION_REPORT or msg.get(T.EXEC_TYPE) == "8":
                raise DemoFailed(f"probe request refused: {describe(msg)}")
            if cl in due and msg.get(T.EXEC_TYPE) == due[cl][2]:
                sent_at, hist, _ = due.pop(cl)
                hist.record_value(max(1, at - sent_at))
            timeout = 0.0

    def algos_and_kill_switch(self) -> None:
        twap_s = self.params.twap_s
        with step(f"REST: ALGO1 buys 1500 AAPL by TWAP over {twap_s:g} s (limit 150.60); ACC1 sells 1000 AAPL "
                  "as an iceberg showing 200 (limit 149.85)"):  # fmt: skip
            twap = self.submit_parent("algo", {
                "kind": "twap", "account": "ALGO1", "symbol": "AAPL", "side": "buy", "qty": "1500",
                "end_ns": time.time_ns() + int(twap_s * 1e9), "slices": 8, "limit_price": "150.60"})  # fmt: skip
            iceberg = self.submit_parent("trader", {
                "kind": "iceberg", "account": "ACC1", "symbol": "AAPL", "side": "sell", "qty": "1000",
                "display_qty": "200", "price": "149.85"})  # fmt: skip
        time.sleep(twap_s / 2)
        with step("kill switch on ACC2 (REST, risk key): its MSFT bid resting on EXCH is canceled"):
            r = self.http["risk"].post("/v1/accounts/ACC2/kill-switch", json={"on": True})
            if r.status_code != 200:
                raise DemoFailed(f"kill switch refused: {r.status_code} {r.text}")
            out = r.json()
            print(
                f"  REST     <- kill switch on for {out['accounts']}: canceled {out['canceled']}, "
                f"cancel sent to the venue {out['pending']}"
            )
            if not out["pending"]:
                raise DemoFailed("the kill switch did not withdraw ACC2's order resting on EXCH")
            self.c44.expect("m2", {"4"})
        with step("CLIENT44 tries again for ACC2: refused while the kill switch is on"):
            self.c44.send("NewOrderSingle k1: buy 10 AAPL limit 150.00", lambda c: c.new_order(
                "k1", "AAPL", "1", "10", "150.00", account="ACC2"))  # fmt: skip
            self.c44.expect("k1", {"8"})
        with step("the algos finish"):
            for name, parent_id in (("TWAP", twap), ("iceberg", iceberg)):
                view = self.wait_parent(parent_id, twap_s + 30)
                print(
                    f"  {name:<8} {view['status']}: {view['cum_qty']} of {view['qty']} at {view['avg_px']} "
                    f"in {view['child_count']} child orders"
                )

    def submit_parent(self, role: str, body: dict[str, Any]) -> str:
        r = self.http[role].post("/v1/algos", json=body)
        print(f"  REST     -> POST /v1/algos {body['kind']}: {r.status_code} {r.json().get('status')}")
        if r.status_code != 201 or r.json().get("status") == "rejected":
            raise DemoFailed(f"{body['kind']} refused: {r.status_code} {r.text}")
        return str(r.json()["parent_id"])

    def wait_parent(self, parent_id: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            r = self.http["admin"].get(f"/v1/algos/{parent_id}")
            r.raise_for_status()
            view: dict[str, Any] = r.json()
            if view["status"] in {"filled", "canceled", "expired", "stopped"}:
                return view
            if time.monotonic() > deadline:
                raise DemoFailed(f"parent {parent_id} still {view['status']} after {timeout:g} s")
            time.sleep(0.5)

    def read_back(self) -> None:
        with step("positions and P&L (REST, admin key)"):
            positions: dict[str, dict[str, Any]] = {}
            for account in ("ACC1", "ACC2", "ALGO1", "MM1"):
                r = self.http["admin"].get(f"/v1/accounts/{account}/positions")
                r.raise_for_status()
                positions[account] = r.json()
            print(positions_table(positions))
        with step("hot-path metrics (GET /metrics): latency per stage"):
            text = httpx.get(f"{self.api}/metrics", timeout=30).text
            counts = stage_counts(text)
            if not counts or not all(counts.values()):
                raise DemoFailed(f"per-stage latency histograms missing or empty: {counts}")
            for stage, count in counts.items():
                print(f"  {stage:<40} {count:>8.0f} observations")


def _percentiles(h: HdrHistogram) -> str:
    p50, p99, top = (v / 1e3 for v in (h.get_value_at_percentile(50), h.get_value_at_percentile(99), h.get_max_value()))
    return f"n {h.get_total_count()}: p50 {p50:.0f} us, p99 {p99:.0f} us, max {top:.0f} us"


def positions_table(summaries: dict[str, dict[str, Any]]) -> str:
    """Accounts' cash, P&L and positions as an aligned text table."""
    rows = [("account", "cash", "realized P&L", "unrealized P&L", "positions")]
    for account, s in summaries.items():
        held = ", ".join(f"{p['symbol']} {p['qty']}" for p in s["positions"] if Decimal(p["qty"])) or "flat"
        rows.append((account, s["cash"], s["realized_pnl"], s["unrealized_pnl"], held))
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  " + "  ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=True)) for r in rows)


def stage_counts(metrics_text: str) -> dict[str, float]:
    """Observation counts of every histogram labelled by `stage` in a Prometheus exposition."""
    counts: dict[str, float] = {}
    for line in metrics_text.splitlines():
        name, _, rest = line.partition("{")
        if name.endswith("_count") and 'stage="' in rest:
            labels, _, value = rest.rpartition("}")
            counts[f"{name[: -len('_count')]}{{{labels}}}"] = float(value)
    return counts


# -- after the day --


def audit(redis_url: str) -> None:
    """Check the hash chain of every journal stream (what `oms audit verify` does)."""
    from oms.infra.redis.audit import verify
    from oms.infra.redis.server import make_client

    with step("audit trail: each journal record carries the hash of the one before (oms audit verify)"):
        client = make_client(redis_url)
        try:
            report = verify(client)
        finally:
            client.close()
        if not report.ok:
            raise DemoFailed(f"journal chain broken: {report.first_problem}")
        print(f"  {report.records} records in {len(report.streams)} streams: every chain intact")


def analytics_summary(run_dir: Path, start_ns: int) -> None:
    """The TCA summary and the best-execution table of the run, from its ClickHouse store."""
    from oms.infra.clickhouse.clickhouse import connect
    from oms.infra.clickhouse.reports import best_execution, render, tca_orders, tca_summary

    ch = connect(f"chdb://{run_dir / 'clickhouse'}")
    try:
        with step("TCA summary per account and symbol (ClickHouse: slippage in bps, positive = cost)"):
            print(render(tca_summary(tca_orders(ch, start_ns=start_ns))))
        with step("best execution: top venues per instrument class (ClickHouse)"):
            print(render(best_execution(ch, start_ns=start_ns)))
    finally:
        ch.close()


def run_demo(params: DemoParams) -> int:
    """Run the demo; 0 when every step got the answer it expects, 1 (the failed step named on stderr) otherwise."""
    from oms.core.model.instruments import ConfigError
    from oms.infra.clickhouse.clickhouse import AnalyticsError
    from oms.infra.redis.server import JournalUnavailable

    start_ns = time.time_ns()
    run = params.run_dir.resolve()
    params = DemoParams(**{**params.__dict__, "run_dir": run})
    try:
        if run.exists():
            shutil.rmtree(run)
        run.mkdir(parents=True)
        print(f"oms demo: every part on embedded defaults; this run's files are in {run}")
        oms_config, exchange_config, ports = write_configs(params)
        print("\n== start: oms exchange-sim (its own process), then the OMS")
        logs = configure_logging(run / "log" / "oms.jsonl")
        with logs, exchange_sim(exchange_config, run / "exchange-sim.log"):
            app = OmsApp.start(oms_config, with_fix=True, with_analytics=True, with_api=True)
            try:
                for line in app.describe():
                    print(f"  {line}")
                day = TradingDay(app, ports, params)
                day.run()
                audit(app.redis_url)
            finally:
                print("\n== stop: working orders canceled, the journal committed to ClickHouse")
                app.stop()
        analytics_summary(run, start_ns)
        with step("latency histogram"):
            from bench.plots import plot_latency

            png = run / "latency.png"
            plot_latency(
                day.ack_latency,
                png,
                "oms demo: FIX 4.2 latency, timed from when each request was due",
                label="NewOrderSingle -> New",
                baseline=day.cancel_latency,
                baseline_label="cancel -> Canceled",
                others=[("REST POST /v1/orders -> 201 (MM1 quotes)", day.aapl.latency)],
            )
            print(f"  wrote {png}")
    except (DemoFailed, ConfigError, JournalUnavailable, AnalyticsError, OSError) as exc:
        print(f"oms demo: FAILED: {exc}", file=sys.stderr)
        return 1
    print(
        f"\noms demo: done in {(time.time_ns() - start_ns) / 1e9:.0f} s; every report of this run: "
        f"oms report tca|buckets|best-ex|routing --config {run / 'oms.toml'}"
    )
    return 0


def add_demo_command(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register `oms demo`."""
    d = DemoParams()
    demo = commands.add_parser(
        "demo",
        help="start everything on embedded defaults plus an exchange simulator, run a scripted trading day over FIX "
        "and REST, print positions, P&L, TCA and best execution; exit 0 when every step worked",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument("--config", type=Path, default=d.config, help="(default: configs/dev.toml)")
    demo.add_argument(
        "--exchange-config", type=Path, default=d.exchange_config, help="(default: configs/exchange.toml)"
    )
    demo.add_argument("--run-dir", type=Path, default=d.run_dir, help="where the run's files go (default: var/demo)")
    demo.add_argument("--hold", type=float, default=d.hold_s, dest="hold_s", metavar="SECONDS",
                      help="keep serving this long after the script, e.g. to curl /metrics (default: 0)")  # fmt: skip
    demo.add_argument("--seed", type=int, default=d.seed, help="of the market makers' random walks (default: 7)")
    demo.add_argument("--twap-seconds", type=float, default=d.twap_s, dest="twap_s", help="(default: 16)")
    demo.add_argument("--probe-orders", type=int, default=d.probe_orders, help="(default: 150)")
    demo.set_defaults(
        func=lambda args: run_demo(
            DemoParams(
                args.config, args.exchange_config, args.run_dir, args.hold_s, args.seed, args.twap_s, args.probe_orders
            )
        )
    )
