"""The scripted trading day: FIX 4.2 and 4.4 clients trade, a latency probe, REST algos, a kill switch."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import httpx
from hdrh.histogram import HdrHistogram

from fix_gateway import tags as T
from oms.apps.demo.configs import DemoParams, Ports
from oms.apps.demo.counterparties import FILLS, HEADERS, Counterparty, FixQuoter, RestQuoter, describe
from oms.apps.demo.results import percentiles, positions_table, stage_counts
from oms.apps.demo.steps import DemoFailed, step
from oms.apps.serve import OmsApp

__all__ = ["TradingDay"]


class TradingDay:
    """The script: FIX 4.2 and 4.4 clients trade, a latency probe, REST algos (TWAP, iceberg), a kill switch."""

    def __init__(self, app: OmsApp, ports: Ports, params: DemoParams) -> None:
        assert app.api is not None
        self.params = params
        self.api = app.api.url
        self.http = {role: httpx.Client(base_url=self.api, headers=h, timeout=30) for role, h in HEADERS.items()}
        clients = params.run_dir / "clients"
        self.c42 = Counterparty("CLIENT42", "FIX.4.2", "CLIENT42", ports.fix, clients / "CLIENT42",
                                password="client42-dev")  # fmt: skip
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
                print(f"\n== holding {self.params.hold_s:g} s: the desk page at {self.api}/desk/ (API key: e.g. "
                      f"admin-dev-secret, configs/api_keys.toml), metrics at {self.api}/metrics")  # fmt: skip
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
        n, rate = self.params.probe_orders, 200.0  # as `oms bench serve`'s 200 msg/s row, 1 session
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
                print(f"  {what:<22} {percentiles(h)}")
            print("  (ACC1 is in reserved mode: orders and cancels are decided in the engine within its actor's")
            print("  allowance, written ahead to Redis with their batch, and reported to the actor in batches;")
            print("  `oms bench serve` measures the same path at fixed rates from 1 and 4 sessions)")

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
