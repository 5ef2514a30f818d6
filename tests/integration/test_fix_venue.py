"""Outbound routing over FIX: the OMS (FIX acceptor in front, in-process accounts) routes MSFT to the exchange
simulator over a real QuickFIX initiator session and AAPL to its internal book. A liquidity provider trades on the
simulator through its own FIX session. Everything runs over loopback."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import quickfix as fix

from fix_gateway import tags as T
from fix_gateway.client import FixClient
from fix_gateway.codec import utc_timestamp
from fix_gateway.gateway import FixGateway
from fix_gateway.venue import FixVenue
from oms.apps.exchange_sim import DEFAULT_EXCHANGE_CONFIG, ExchangeSim
from oms.apps.serve import DEFAULT_CONFIG, build_venues, id_bases, load_config, local_engine
from oms.infra.redis.server import free_port
from oms.runtime.sequencer import Sequencer

pytestmark = pytest.mark.integration

CONFIGS = DEFAULT_CONFIG.parent


def write_config(root: Path, oms_port: int, sim_port: int, account: str = "OMS") -> Path:
    path = root / "oms.toml"
    path.write_text(
        f"""
instruments = "{CONFIGS / "instruments.toml"}"
accounts = "{CONFIGS / "accounts.toml"}"
[fix]
port = {oms_port}
settings = "{CONFIGS / "fix" / "acceptor.cfg"}"
data_dir = "{root / "oms-fix"}"
[venues]
default = "INTERNAL"
routes = {{ "MSFT" = "EXCH" }}
[venues.fix.EXCH]
port = {sim_port}
account = "{account}"
data_dir = "{root / "venues"}"
"""
    )
    return path


def write_sim_config(root: Path, sim_port: int) -> Path:
    path = root / "exchange.toml"
    path.write_text(
        f"""
instruments = "{CONFIGS / "instruments.toml"}"
[fix]
port = {sim_port}
settings = "{DEFAULT_EXCHANGE_CONFIG.parent / "fix" / "exchange.cfg"}"
data_dir = "{root / "sim"}"
"""
    )
    return path


@dataclass
class Routed:
    root: Path
    sim: ExchangeSim
    gateway: FixGateway
    venue: FixVenue
    oms_port: int
    clients: list[FixClient] = field(default_factory=list)

    def client(self) -> FixClient:
        c = FixClient("FIX.4.4", "CLIENT44", self.oms_port, self.root / "client", password="client44-dev")
        self.clients.append(c)
        return c.start()

    def maker(self) -> FixClient:
        c = FixClient("FIX.4.4", "MAKER", self.sim.port, self.root / "maker", target="EXCH")
        self.clients.append(c)
        return c.start()


def start_routed(root: Path, account: str = "OMS") -> Routed:
    oms_port, sim_port = free_port(), free_port()
    sim = ExchangeSim.start(write_sim_config(root, sim_port))
    loaded = load_config(write_config(root, oms_port, sim_port, account))
    venues = build_venues(loaded, id_bases(1)[1])
    engine = local_engine(loaded, 1, venues)
    fix = loaded.config.fix
    host = Sequencer(engine)
    gateway = FixGateway(host, loaded.instruments, loaded.fix_sessions, fix.port, fix.data_dir, 1)
    gateway.start()
    venue = venues["EXCH"]
    assert isinstance(venue, FixVenue)
    venue.start(host.apply_venue, wait=10.0)
    return Routed(root, sim, gateway, venue, oms_port)


def stop_routed(r: Routed) -> None:
    threads = [threading.Thread(target=c.stop) for c in r.clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    r.gateway.stop()
    r.venue.stop()
    r.sim.stop()


@pytest.fixture
def routed(tmp_path: Path) -> Iterator[Routed]:
    r = start_routed(tmp_path)
    yield r
    stop_routed(r)


def test_order_routed_to_the_venue_fills_against_its_liquidity(routed: Routed) -> None:
    maker, client = routed.maker(), routed.client()
    maker.new_order("m1", "MSFT", "2", "100", "300")
    assert maker.next()[T.EXEC_TYPE] == "0"

    client.new_order("c1", "MSFT", "1", "60", "300.05")
    ack, fill = client.expect(2)
    maker_fill = maker.next()

    assert (ack[T.EXEC_TYPE], ack[T.ORD_STATUS], ack[T.CL_ORD_ID]) == ("0", "0", "c1")
    assert (fill[T.EXEC_TYPE], fill[T.ORD_STATUS], fill[T.LAST_QTY], fill[T.LAST_PX]) == ("F", "2", "60", "300")
    assert (fill[T.CUM_QTY], fill[T.LEAVES_QTY], fill[T.AVG_PX], fill[T.LAST_LIQUIDITY_IND]) == ("60", "0", "300", "2")
    assert fill[T.ACCOUNT] == "ACC2" and fill[T.ORDER_ID] == ack[T.ORDER_ID]
    # the venue saw the OMS (its account, its own ClOrdID), not the client
    assert (maker_fill[T.LAST_QTY], maker_fill[T.LEAVES_QTY], maker_fill[T.LAST_LIQUIDITY_IND]) == ("60", "40", "1")
    (order,) = [o for o in routed.sim.engine.orders.values() if o.account == "OMS"]
    assert order.cl_ord_id == ack[T.ORDER_ID] and order.cum_qty == 60


def test_symbols_not_routed_to_the_venue_stay_on_the_internal_book(routed: Routed) -> None:
    client = routed.client()
    client.new_order("a1", "AAPL", "1", "10", "150")
    (ack,) = client.expect(1)

    assert ack[T.EXEC_TYPE] == "0"
    assert not routed.sim.engine.orders  # the venue never heard of it
    (order,) = routed.gateway.engine.working()
    assert order.symbol == "AAPL"


def test_cancel_goes_pending_then_canceled_by_the_venue(routed: Routed) -> None:
    client = routed.client()
    client.new_order("c1", "MSFT", "1", "10", "299")
    client.expect(1)

    client.cancel("x1", "c1", "MSFT", "1", "10")
    pending, canceled = client.expect(2)

    assert (pending[T.EXEC_TYPE], pending[T.ORD_STATUS], pending[T.CL_ORD_ID]) == ("6", "6", "x1")
    assert pending[T.ORIG_CL_ORD_ID] == "c1" and pending[T.LEAVES_QTY] == "10"
    assert (canceled[T.EXEC_TYPE], canceled[T.ORD_STATUS], canceled[T.CL_ORD_ID]) == ("4", "4", "x1")
    assert (canceled[T.ORIG_CL_ORD_ID], canceled[T.LEAVES_QTY]) == ("c1", "0")
    assert not routed.sim.engine.working()


def test_replace_goes_pending_then_replaced_and_the_new_terms_trade(routed: Routed) -> None:
    maker, client = routed.maker(), routed.client()
    client.new_order("c1", "MSFT", "1", "10", "299")
    client.expect(1)

    client.replace("r1", "c1", "MSFT", "1", "20", "300")
    pending, replaced = client.expect(2)
    maker.new_order("m1", "MSFT", "2", "20", "300")
    maker.expect(2)  # ack and fill
    (fill,) = client.expect(1)

    assert (pending[T.EXEC_TYPE], pending[T.ORD_STATUS], pending[T.ORIG_CL_ORD_ID]) == ("E", "E", "c1")
    assert (replaced[T.EXEC_TYPE], replaced[T.CL_ORD_ID], replaced[T.ORIG_CL_ORD_ID]) == ("5", "r1", "c1")
    assert (replaced[T.ORDER_QTY], replaced[T.PRICE], replaced[T.LEAVES_QTY]) == ("20", "300", "20")
    assert (fill[T.CL_ORD_ID], fill[T.LAST_QTY], fill[T.ORD_STATUS], fill[T.LAST_LIQUIDITY_IND]) == (
        "r1",
        "20",
        "2",
        "1",
    )


def test_venue_cancels_an_ioc_remainder_on_its_own(routed: Routed) -> None:
    maker, client = routed.maker(), routed.client()
    maker.new_order("m1", "MSFT", "2", "4", "300")
    maker.expect(1)

    client.new_order("c1", "MSFT", "1", "10", "300", tif="3")
    ack, fill, canceled = client.expect(3)

    assert (ack[T.EXEC_TYPE], fill[T.LAST_QTY], fill[T.ORD_STATUS]) == ("0", "4", "1")
    assert (canceled[T.EXEC_TYPE], canceled[T.ORD_STATUS], canceled[T.CUM_QTY]) == ("4", "4", "4")
    assert canceled[T.LEAVES_QTY] == "0" and canceled[T.TEXT] == "canceled: venue"


def test_a_cancel_the_venue_refuses_reaches_the_client_as_cancel_reject(routed: Routed) -> None:
    maker, client = routed.maker(), routed.client()
    client.new_order("c1", "MSFT", "1", "10", "300")
    client.expect(1)
    with routed.gateway.lock:  # the venue's fill report waits here while the cancel goes out
        maker.new_order("m1", "MSFT", "2", "10", "300")
        maker.expect(2)  # filled at the venue
        cancel = fix.Message()
        cancel.getHeader().setField(T.BEGIN_STRING, "FIX.4.4")
        cancel.getHeader().setField(T.MSG_TYPE, T.MT_ORDER_CANCEL_REQUEST)
        for tag, value in ((T.CL_ORD_ID, "x1"), (T.ORIG_CL_ORD_ID, "c1"), (T.SYMBOL, "MSFT"), (T.SIDE, "1"),
                           (T.ORDER_QTY, "10"), (T.TRANSACT_TIME, utc_timestamp(time.time_ns()))):  # fmt: skip
            cancel.setField(tag, value)
        routed.gateway.on_cancel(cancel, fix.SessionID("FIX.4.4", "OMS", "CLIENT44"))
    msgs = client.expect(3)

    kinds = [(m.msg_type, m.get(T.EXEC_TYPE)) for m in msgs]
    assert kinds == [("8", "6"), ("8", "F"), ("9", None)], kinds
    pending, fill, reject = msgs
    assert (pending[T.ORD_STATUS], fill[T.ORD_STATUS], fill[T.CUM_QTY]) == ("6", "2", "10")
    assert (reject[T.CL_ORD_ID], reject[T.ORIG_CL_ORD_ID], reject[T.ORD_STATUS]) == ("x1", "c1", "2")
    assert reject[T.CXL_REJ_REASON] == "0"  # too late to cancel
    assert not routed.gateway.engine.working()


def test_gateway_stop_withdraws_orders_resting_at_the_venue(routed: Routed) -> None:
    client = routed.client()
    client.new_order("c1", "MSFT", "1", "10", "299")
    client.expect(1)
    assert routed.sim.engine.working()

    routed.gateway.stop()

    assert not routed.sim.engine.working()
    assert not routed.gateway.engine.working()


def test_orders_are_rejected_while_the_venue_is_down(tmp_path: Path) -> None:
    r = start_routed(tmp_path)
    try:
        client = r.client()
        r.venue.stop()
        client.new_order("c1", "MSFT", "1", "10", "300")
        (rej,) = client.expect(1)
        client.new_order("a1", "AAPL", "1", "10", "150")
        (ack,) = client.expect(1)
    finally:
        stop_routed(r)

    assert (rej[T.EXEC_TYPE], rej[T.ORD_STATUS], rej[T.ORD_REJ_REASON]) == ("8", "8", "2")  # 2: exchange closed
    assert rej[T.TEXT] == "venue EXCH not connected"
    assert ack[T.EXEC_TYPE] == "0"  # the internal book is unaffected


def test_a_venue_reject_reaches_the_client_with_the_venues_reason(tmp_path: Path) -> None:
    r = start_routed(tmp_path, account="NOT-A-MEMBER")
    try:
        client = r.client()
        client.new_order("c1", "MSFT", "1", "10", "300")
        (rej,) = client.expect(1)
        client.new_order("c2", "MSFT", "1", "10", "300")  # the hold of the first was released
        (rej2,) = client.expect(1)
    finally:
        stop_routed(r)

    assert (rej[T.EXEC_TYPE], rej[T.ORD_STATUS], rej[T.CL_ORD_ID]) == ("8", "8", "c1")
    assert rej[T.TEXT] == "rejected by the venue: account 'NOT-A-MEMBER' is not traded on this session"
    assert rej2[T.EXEC_TYPE] == "8"


def test_a_venue_restarted_with_an_empty_book_has_the_orders_it_lost_canceled(tmp_path: Path) -> None:
    r = start_routed(tmp_path)
    try:
        client = r.client()
        client.new_order("c1", "MSFT", "1", "10", "299")
        client.new_order("c2", "MSFT", "1", "5", "298")
        client.expect(2)
        # the venue crashes: its book goes, its FIX session store stays
        r.sim.gateway.stop(cancel_working=False)
        assert _wait(lambda: not r.venue.connected, 5)
        r.sim = ExchangeSim.start(write_sim_config(tmp_path, r.sim.port))
        assert r.venue.wait_connected(10)
        reports = client.expect(2, timeout=10)
        client.cancel("x1", "c1", "MSFT", "1", "10")
        (cancel_reject,) = client.expect(1)
    finally:
        stop_routed(r)

    assert sorted(m[T.CL_ORD_ID] for m in reports) == ["c1", "c2"]
    for m in reports:
        assert (m[T.EXEC_TYPE], m[T.ORD_STATUS], m[T.LEAVES_QTY]) == ("4", "4", "0")
        assert m[T.TEXT] == "canceled: venue lost"
    assert not r.gateway.engine.working()  # no exposure left behind for orders nobody holds
    assert cancel_reject.msg_type == "9" and cancel_reject[T.ORD_STATUS] == "4"


def _wait(cond: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True
