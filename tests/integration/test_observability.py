"""Observability over loopback: orders through the real FIX gateway (QuickFIX initiators) fill every stage histogram
of the process's hot-path metrics, which the REST API's `/metrics` page shows; the lifecycle log lines carry each
report's ClOrdID and OrderID; an order routed to a FIX venue is timed until the venue's answer reaches the client."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from fix_gateway import tags as T
from fix_gateway.client import FixClient, Received
from fix_gateway.gateway import FixGateway
from fix_gateway.venue import FixVenue
from oms.adapters.api import ApiServer, ApiSettings
from oms.apps.exchange_sim import ExchangeSim
from oms.apps.local_api import local_core
from oms.apps.serve import build_venues, id_bases, load_config, local_engine
from oms.infra.redis.server import free_port
from oms.runtime.logs import JsonLogging, configure_logging
from oms.runtime.metrics import METRICS, STAGES, HotPathMetrics, Snapshot
from oms.runtime.sequencer import Sequencer
from tests.integration.test_fix_venue import write_config, write_sim_config

pytestmark = pytest.mark.integration

PASSWORDS = {"CLIENT42": "client42-dev", "CLIENT44": "client44-dev"}
VERSION_OF = {"CLIENT42": "FIX.4.2", "CLIENT44": "FIX.4.4"}


@dataclass
class Stack:
    """A FIX gateway and a REST API over one in-process core, JSON logs on, the process's metrics."""

    root: Path
    gateway: FixGateway
    api: ApiServer
    logs: JsonLogging
    log_path: Path
    clients: list[FixClient] = field(default_factory=list)

    def client(self, sender: str) -> FixClient:
        c = FixClient(VERSION_OF[sender], sender, self.gateway.port, self.root / sender, password=PASSWORDS[sender])
        self.clients.append(c)
        return c.start(wait=10.0)

    def scrape(self) -> dict[tuple[str, str], float]:
        """`/metrics` over HTTP: each sample's value by (name, its one label's value)."""
        text = httpx.get(f"{self.api.url}/metrics", timeout=10).text
        return {
            (s.name, next(iter(s.labels.values()), "")): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if family.name.startswith("oms_") and "le" not in s.labels
        }

    def log_lines(self) -> list[dict[str, object]]:
        """Every line written so far (logging is closed first, so nothing is left queued)."""
        self.logs.close()
        return [json.loads(line) for line in self.log_path.read_text().splitlines()]


def stop_clients(clients: list[FixClient]) -> None:
    threads = [threading.Thread(target=c.stop) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    loaded = load_config()
    log_path = tmp_path / "log" / "oms.jsonl"
    logs = configure_logging(log_path, "INFO")
    core = local_core(loaded)
    gateway = FixGateway(core.host, loaded.instruments, loaded.fix_sessions, free_port(), tmp_path / "gw", 1)
    gateway.start()
    api = ApiServer(core.host, core.view, ApiSettings(port=0, rate_limit=10_000)).start()
    s = Stack(tmp_path, gateway, api, logs, log_path)
    yield s
    stop_clients(s.clients)
    gateway.stop()
    api.stop()
    logs.close()


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Until `condition()`: a stage is recorded once QuickFIX returned from sending, just after the client may
    already have the report."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        time.sleep(0.01)


def stage_counts(snap: Snapshot) -> dict[str, int]:
    return {stage: snap.stage_count(stage) for stage in STAGES}


def delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}


@dataclass
class Flow:
    """What `trade` sent and what came back."""

    resting_ack: Received
    taker_ack: Received
    taker_fill: Received
    risk_reject: Received
    codec_reject: Received
    canceled: Received


def trade(stack: Stack) -> Flow:
    """Over FIX: a resting sell (CLIENT44, ACC2), a buy that fills part of it (CLIENT42, ACC1), a buy over the
    account's max order qty (risk reject), a price off the tick grid (refused by the codec), and a cancel."""
    maker, taker = stack.client("CLIENT44"), stack.client("CLIENT42")
    maker.new_order("r1", "AAPL", "2", "100", "150")
    (resting_ack,) = maker.expect(1)
    taker.new_order("t1", "AAPL", "1", "40", "150")
    taker_ack, taker_fill = taker.expect(2)
    maker.expect(1)  # its partial fill
    taker.new_order("big", "AAPL", "1", "20000", "150")
    (risk_reject,) = taker.expect(1)
    taker.new_order("odd", "AAPL", "1", "10", "150.001")
    (codec_reject,) = taker.expect(1)
    maker.cancel("r1-x", "r1", "AAPL", "2")
    (canceled,) = maker.expect(1)
    return Flow(resting_ack, taker_ack, taker_fill, risk_reject, codec_reject, canceled)


def test_fix_orders_fill_every_stage_histogram_and_the_rest_metrics_page_shows_them(stack: Stack) -> None:
    before, page_before = METRICS.snapshot(), stack.scrape()
    expected = {"in_to_risk": 3, "risk_to_venue": 2, "venue_to_ack": 2, "in_to_ack": 4,  # codec refusal: total only
                "venue_to_sealed": 2, "sealed_to_durable": 2, "durable_to_ack": 2}  # fmt: skip

    flow = trade(stack)
    wait_for(lambda: delta(stage_counts(METRICS.snapshot()), stage_counts(before)) == expected)
    after, page = METRICS.snapshot(), stack.scrape()

    assert [m[T.EXEC_TYPE] for m in (flow.risk_reject, flow.codec_reject, flow.canceled)] == ["8", "8", "4"]
    assert delta(after.orders_in, before.orders_in) == {"fix": 4}
    assert after.acks - before.acks == 2
    assert delta(after.fills, before.fills) == {"INTERNAL": 2}
    assert delta(after.rejects, before.rejects) == {"max_order_qty": 1, "off_tick": 1}
    for stage, n in expected.items():
        key = ("oms_stage_seconds_count", stage)
        assert page[key] - page_before.get(key, 0) == n, stage
        assert page[("oms_stage_seconds_sum", stage)] > page_before.get(("oms_stage_seconds_sum", stage), 0)
    assert page[("oms_orders_in_total", "fix")] - page_before[("oms_orders_in_total", "fix")] == 4
    assert ("oms_api_orders_in_total", "") in page  # the API's own counters on the same page


def test_lifecycle_log_lines_carry_each_reports_clordid_and_orderid(stack: Stack) -> None:
    flow = trade(stack)

    lines = [o for o in stack.log_lines() if o["logger"] in ("oms.fix", "oms.orders")]

    assert all({"ts", "level", "msg", "session", "account", "cl_ord_id"} <= set(o) for o in lines)
    assert all("order_id" in o for o in lines if o["msg"] != "order received")  # no id yet when received
    by = {(o["msg"], o["cl_ord_id"]): o for o in lines}
    received = sorted(cl for msg, cl in by if msg == "order received")
    assert received == ["big", "odd", "r1", "t1"]
    assert by[("order received", "t1")]["account"] == "ACC1"
    assert by[("order received", "t1")]["session"] == "FIX.4.2:OMS->CLIENT42"
    acked = by[("order acked", "r1")]
    assert (acked["order_id"], acked["account"]) == (int(flow.resting_ack[T.ORDER_ID]), "ACC2")
    fill = by[("order filled", "t1")]
    assert (fill["order_id"], fill["exec_id"]) == (int(flow.taker_fill[T.ORDER_ID]), int(flow.taker_fill[T.EXEC_ID]))
    assert fill["venue"] == "INTERNAL"
    risk = by[("order rejected", "big")]
    assert (risk["order_id"], risk["reason"]) == (int(flow.risk_reject[T.ORDER_ID]), "max_order_qty")
    assert by[("order rejected", "odd")]["reason"] == "off_tick"
    canceled = by[("order canceled", "r1-x")]
    assert (canceled["orig_cl_ord_id"], canceled["order_id"]) == ("r1", acked["order_id"])
    assert [o["msg"] for o in lines if o["cl_ord_id"] == "t1"] == ["order received", "order acked", "order filled"]


def test_rest_orders_and_their_fills_are_logged_like_fix_orders_with_the_key_as_session(stack: Stack) -> None:
    """The lifecycle log is the sequencer's, so a session that uses only REST leaves its trail too."""
    key = {"X-API-Key": "trader1-dev-secret"}
    order = {"account": "ACC1", "symbol": "AAPL", "side": "buy", "qty": "5", "price": "140"}
    rest = httpx.post(f"{stack.api.url}/v1/orders", headers=key, timeout=30, json=order)
    order_id = rest.json()["order_id"]
    gone = httpx.delete(f"{stack.api.url}/v1/orders/{order_id}", headers=key, timeout=30)

    lines = [o for o in stack.log_lines() if o["logger"] == "oms.orders" and o["order_id"] == int(order_id)]

    assert rest.status_code == 201 and gone.status_code in (200, 202, 204), (rest.text, gone.text)
    assert [(o["msg"], o["session"]) for o in lines] == [("order acked", "REST:trader1"),
                                                         ("order canceled", "REST:trader1")]  # fmt: skip
    assert lines[0]["venue"] == "INTERNAL" and lines[1]["reason"] == "user"


def test_an_order_at_a_fix_venue_is_timed_until_the_venues_answer_reaches_the_client(tmp_path: Path) -> None:
    oms_port, sim_port = free_port(), free_port()
    sim = ExchangeSim.start(write_sim_config(tmp_path, sim_port))  # a FIX gateway too: it counts in METRICS
    loaded = load_config(write_config(tmp_path, oms_port, sim_port))  # MSFT routed to the simulator
    venues = build_venues(loaded, id_bases(1)[1])
    metrics = HotPathMetrics()  # the OMS's own, apart from the simulator's
    host = Sequencer(local_engine(loaded, 1, venues), metrics=metrics)
    gateway = FixGateway(host, loaded.instruments, loaded.fix_sessions, oms_port, loaded.config.fix.data_dir, 1)
    venue = venues["EXCH"]
    assert isinstance(venue, FixVenue)
    client = FixClient("FIX.4.4", "CLIENT44", oms_port, tmp_path / "client", password="client44-dev")
    try:
        gateway.start()
        venue.start(host.apply_venue, wait=10.0)
        client.start(wait=10.0)

        client.new_order("v1", "MSFT", "1", "10", "299")
        (ack,) = client.expect(1)
        wait_for(lambda: metrics.snapshot().stage_count("in_to_ack") == 1)

        assert (ack[T.EXEC_TYPE], ack[T.CL_ORD_ID]) == ("0", "v1")
        snap = metrics.snapshot()
        assert stage_counts(snap) == {stage: 1 for stage in STAGES}
        assert (snap.orders_in, snap.acks) == ({"fix": 1}, 1)
    finally:
        client.stop()
        gateway.stop()
        venue.stop()
        sim.stop()
