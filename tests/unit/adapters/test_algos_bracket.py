"""Bracket / OCO over the real OMS core: entry, then take-profit and stop-loss; never both legs filled."""

from __future__ import annotations

import logging

import pytest

from oms.adapters.algos import (
    AlgoEngine,
    AlgoRejectReason,
    CancelParent,
    ManualClock,
    OcoBreach,
    ParentStatus,
    SubmitBracket,
)
from oms.apps.serve import load_config, local_engine
from oms.core.model.enums import CancelReason, OrdStatus, OrdType, Side, TimeInForce
from oms.core.model.messages import OrderAccepted, OrderCanceled, OrderFilled, SubmitOrder, TradePrinted
from oms.runtime.sequencer import Sequencer

S = 1_000_000_000
C = 10_000  # one dollar in AAPL price units
ENTRY, TP, SL = 150 * C, 151 * C, 149 * C


@pytest.fixture
def mkt():
    loaded = load_config()
    host = Sequencer(local_engine(loaded))
    clock = ManualClock(S)
    algos = AlgoEngine(host, loaded.instruments, clock)
    return host, algos


def order(host: Sequencer, account: str, cl: str, side: Side, qty: int, px: int, tif=TimeInForce.IOC) -> list:
    cmd = SubmitOrder(account, cl, "AAPL", side, OrdType.LIMIT, qty, px, tif=tif, session="C-" + account)
    return host.run(lambda e: e.submit(cmd, S))


def legs(host: Sequencer, parent_id: str) -> dict[str, list]:
    """The parent's child orders in the OrderManager, by the role their ClOrdID was journaled with."""
    engine = host.engine
    return {
        o.cl_ord_id: o for oid, o in engine.orders.items()
        if engine.session_of[oid] == "ALGO" and o.cl_ord_id.startswith(parent_id + ".")
    }  # fmt: skip


def entered(host: Sequencer, algos: AlgoEngine, synthetic: bool = True, qty: int = 100) -> None:
    """A long bracket whose entry has filled: tp (sell limit at TP) works, the stop at SL is armed."""
    algos.submit(SubmitBracket("B1", "ALGO1", "AAPL", Side.BUY, qty, ENTRY, TP, SL, synthetic_stop=synthetic))
    order(host, "ACC2", "entry-contra", Side.SELL, qty, ENTRY)


def test_entry_fill_places_the_take_profit_and_arms_a_synthetic_stop(mkt):
    host, algos = mkt
    entered(host, algos)

    kids = legs(host, "B1")
    view = algos.view("B1")
    assert [(k.side, k.price, k.qty, k.status) for k in kids.values()] == [
        (Side.BUY, ENTRY, 100, OrdStatus.FILLED), (Side.SELL, TP, 100, OrdStatus.NEW),
    ]  # fmt: skip
    # a bracket is PARTIALLY_FILLED from its first entry fill until its exit is done
    assert (view.status, view.cum_qty, view.avg_px, view.exit_cum_qty) == (ParentStatus.PARTIALLY_FILLED, 100, ENTRY, 0)
    assert algos.parent("B1").armed()


def test_take_profit_fill_disarms_the_stop_and_completes_the_parent(mkt):
    host, algos = mkt
    entered(host, algos)

    order(host, "ACC1", "lift", Side.BUY, 100, TP)
    order(host, "ACC1", "rest", Side.BUY, 500, SL - C)
    order(host, "ACC2", "crash", Side.SELL, 50, SL - C)  # prints below the stop: too late, tp already filled

    view = algos.view("B1")
    assert (view.status, view.exit_cum_qty, view.exit_cum_notional) == (ParentStatus.FILLED, 100, 100 * TP)
    assert len(legs(host, "B1")) == 2  # no stop-loss child ever went out


def test_a_print_at_the_stop_cancels_the_take_profit_and_sells_in_the_same_step(mkt):
    host, algos = mkt
    entered(host, algos)
    order(host, "ACC1", "bid", Side.BUY, 500, SL - 10 * 100, TimeInForce.GTC)  # 148.90

    order(host, "ACC2", "hit", Side.SELL, 50, SL - 10 * 100)  # prints 148.90 <= 149.00

    kids = list(legs(host, "B1").values())
    tp, sl = kids[1], kids[2]
    view = algos.view("B1")
    assert tp.status is OrdStatus.CANCELED and tp.cum_qty == 0
    assert (sl.side, sl.ord_type, sl.qty, sl.cum_qty) == (Side.SELL, OrdType.MARKET, 100, 100)
    assert (view.status, view.exit_cum_qty, view.exit_cum_notional) == (ParentStatus.FILLED, 100, 100 * (SL - 1000))


def sweep_through_both_legs(host: Sequencer) -> None:
    """One buy that first trades below the stop (an ask left at 148.50) and then lifts the take-profit at 151."""
    order(host, "ACC1", "bid", Side.BUY, 500, 148 * C, TimeInForce.GTC)
    order(host, "ACC2", "low-ask", Side.SELL, 10, 148 * C + 5000, TimeInForce.GTC)
    order(host, "ACC1", "sweep", Side.BUY, 110, TP)


@pytest.mark.parametrize("synthetic", [True, False])
def test_a_sweep_through_both_prices_fills_only_the_take_profit_on_the_internal_venue(mkt, synthetic):
    # The core fires stops on the last price a command leaves (151 here), and the algo cancels a venue-resident
    # stop in the step that reported the take-profit fill, before any other command reaches the book.
    host, algos = mkt
    entered(host, algos, synthetic=synthetic)

    sweep_through_both_legs(host)
    order(host, "ACC2", "crash", Side.SELL, 500, 148 * C)  # prints 148 later: nothing is left to fire

    view = algos.view("B1")
    kids = list(legs(host, "B1").values())
    assert not any(isinstance(e, OcoBreach) for e in algos.take_events())
    assert (view.status, view.exit_cum_qty, view.exit_cum_notional) == (ParentStatus.FILLED, 100, 100 * TP)
    assert [k.cum_qty for k in kids] == [100, 100] + ([] if synthetic else [0])


class ExternalVenue:
    """A venue that answers cancels later and reports fills in batches of its own (like a FIX venue): the test
    plays its side through `host.on_venue_events`."""

    name = "EXTERNAL"

    def __init__(self) -> None:
        self.orders: dict[str, tuple[int, SubmitOrder]] = {}
        self.cancels: list[str] = []
        self.exec_id = 0

    def quote(self, symbol: str) -> None:
        return None  # no market data: orders without a limit price are valued on trades only

    def submit(self, order_id: int, cmd: SubmitOrder, ts_ns: int) -> list:
        self.orders[cmd.cl_ord_id] = (order_id, cmd)
        return [OrderAccepted(order_id, cmd.cl_ord_id, cmd.account, cmd.symbol, cmd.side, cmd.ord_type, cmd.tif,
                              cmd.qty, cmd.price, ts_ns, cmd.stop_price)]  # fmt: skip

    def cancel(self, order_id: int, cmd, ts_ns: int) -> list:
        self.cancels.append(cmd.orig_cl_ord_id)
        return []  # answered later

    def replace(self, order_id: int, cmd, ts_ns: int) -> list:
        return []

    def withdraw(self, order_id: int, reason, ts_ns: int) -> list:
        return []

    def fill(self, cl: str, qty: int, px: int) -> OrderFilled:
        order_id, cmd = self.orders[cl]
        self.exec_id += 1
        return OrderFilled(order_id, cl, cmd.account, cmd.symbol, self.exec_id, cmd.side, qty, px, cmd.qty - qty, qty,
                           qty * px, False, S, venue="EXT")  # fmt: skip

    def canceled(self, cl: str) -> OrderCanceled:
        order_id, cmd = self.orders[cl]
        return OrderCanceled(order_id, cl, cmd.account, cmd.symbol, CancelReason.USER, cmd.qty, S)

    def printed(self, px: int) -> TradePrinted:
        self.exec_id += 1
        return TradePrinted("EXT", "AAPL", self.exec_id, px, 10, Side.SELL, S)


@pytest.fixture
def ext():
    loaded = load_config()
    venue = ExternalVenue()
    host = Sequencer(local_engine(loaded, venues={"INTERNAL": venue}))
    algos = AlgoEngine(host, loaded.instruments, ManualClock(S))
    algos.submit(SubmitBracket("B1", "ALGO1", "AAPL", Side.BUY, 100, ENTRY, TP, SL, synthetic_stop=False))
    host.on_venue_events([venue.fill("B1.1", 100, ENTRY)])
    return host, algos, venue


def test_a_venue_that_fills_both_legs_in_one_batch_is_reported_loudly_as_a_breach(ext, caplog):
    host, algos, venue = ext
    assert [k.ord_type for k in legs(host, "B1").values()] == [OrdType.LIMIT, OrdType.LIMIT, OrdType.STOP]

    with caplog.at_level(logging.ERROR, logger="oms.adapters.algos.engine"):
        host.on_venue_events([venue.fill("B1.2", 100, TP), venue.fill("B1.3", 100, SL)])

    breaches = [e for e in algos.take_events() if isinstance(e, OcoBreach)]
    assert len(breaches) == 1 and breaches[0].take_profit_cum_qty == breaches[0].stop_loss_cum_qty == 100
    assert "OCO BREACH" in caplog.text


def test_a_synthetic_stop_waits_for_the_take_profit_cancel_and_a_late_tp_fill_wins():
    loaded = load_config()
    venue = ExternalVenue()
    host = Sequencer(local_engine(loaded, venues={"INTERNAL": venue}))
    algos = AlgoEngine(host, loaded.instruments, ManualClock(S))
    algos.submit(SubmitBracket("B1", "ALGO1", "AAPL", Side.BUY, 100, ENTRY, TP, SL))
    host.on_venue_events([venue.fill("B1.1", 100, ENTRY)])

    host.on_venue_events([venue.printed(SL)])  # the stop is reached: cancel tp first, send nothing yet
    assert venue.cancels == ["B1.2"] and list(venue.orders) == ["B1.1", "B1.2"]
    host.on_venue_events([venue.fill("B1.2", 100, TP)])  # the venue filled tp before the cancel got there

    view = algos.view("B1")
    assert list(venue.orders) == ["B1.1", "B1.2"]  # no stop-loss child, ever
    assert (view.status, view.exit_cum_qty, view.exit_cum_notional) == (ParentStatus.FILLED, 100, 100 * TP)


def test_a_synthetic_stop_sells_once_the_take_profit_cancel_is_confirmed():
    loaded = load_config()
    venue = ExternalVenue()
    host = Sequencer(local_engine(loaded, venues={"INTERNAL": venue}))
    algos = AlgoEngine(host, loaded.instruments, ManualClock(S))
    algos.submit(SubmitBracket("B1", "ALGO1", "AAPL", Side.BUY, 100, ENTRY, TP, SL))
    host.on_venue_events([venue.fill("B1.1", 100, ENTRY)])
    host.on_venue_events([venue.printed(SL)])

    host.on_venue_events([venue.canceled("B1.2")])

    _, sl = venue.orders["B1.4"]  # B1.3 was the cancel's ClOrdID
    assert (sl.side, sl.ord_type, sl.qty) == (Side.SELL, OrdType.MARKET, 100)
    host.on_venue_events([venue.fill("B1.4", 100, SL - 100)])
    assert algos.view("B1").status is ParentStatus.FILLED


def test_venue_mode_first_fill_of_one_leg_cancels_the_other(mkt):
    host, algos = mkt
    entered(host, algos, synthetic=False)

    order(host, "ACC1", "lift", Side.BUY, 40, TP)  # tp partly filled: the stop goes

    _, tp, sl = legs(host, "B1").values()
    assert (tp.cum_qty, tp.status, sl.status) == (40, OrdStatus.PARTIALLY_FILLED, OrdStatus.CANCELED)


def test_cancel_parent_cancels_the_take_profit_and_disarms_the_stop(mkt):
    host, algos = mkt
    entered(host, algos)

    algos.cancel(CancelParent("B1"))
    order(host, "ACC1", "bid", Side.BUY, 500, SL - C, TimeInForce.GTC)
    order(host, "ACC2", "hit", Side.SELL, 50, SL - C)

    view = algos.view("B1")
    assert (view.status, view.cum_qty, view.exit_cum_qty) == (ParentStatus.CANCELED, 100, 0)
    assert [k.status for k in legs(host, "B1").values()] == [OrdStatus.FILLED, OrdStatus.CANCELED]


def test_a_rejected_entry_stops_the_bracket_with_the_reason(mkt):
    _, algos = mkt

    algos.submit(SubmitBracket("B2", "TIGHT1", "AAPL", Side.BUY, 1000, ENTRY, TP, SL))  # max_order_qty 100

    view = algos.view("B2")
    assert view.status is ParentStatus.STOPPED and "entry rejected" in view.text and view.rejects == 1


@pytest.mark.parametrize(
    ("side", "entry", "tp", "sl"),
    [(Side.BUY, ENTRY, SL, TP), (Side.BUY, TP + C, TP, SL), (Side.SELL, ENTRY, TP, SL), (Side.BUY, None, SL, SL)],
)
def test_a_bracket_with_its_prices_on_the_wrong_sides_is_rejected(mkt, side, entry, tp, sl):
    _, algos = mkt

    (event,) = algos.submit(SubmitBracket("B3", "ALGO1", "AAPL", side, 10, entry, tp, sl))

    assert event.reason is AlgoRejectReason.INVALID_BRACKET
