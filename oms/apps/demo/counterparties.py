"""Who the demo trades with: FIX counterparties the script drives, and the two market makers (over FIX and REST)."""

from __future__ import annotations

import queue
import random
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from hdrh.histogram import HdrHistogram

from fix_gateway import tags as T
from fix_gateway.client import FixClient, Received
from oms.apps.demo.steps import DemoFailed

__all__ = ["FILLS", "HEADERS", "Counterparty", "FixQuoter", "Quoter", "RestQuoter", "describe"]

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
