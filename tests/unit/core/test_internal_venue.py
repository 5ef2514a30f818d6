"""The internal venue: native book events become model events with exact cumulative figures."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from oms.core.model.enums import CancelReason, OrdType, RejectReason, Side, StpMode
from oms.core.model.enums import TimeInForce as T
from oms.core.model.instruments import InstrumentRegistry
from oms.core.model.messages import (
    CancelOrder,
    CancelRejected,
    OrderAccepted,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderReplaced,
    OrderTriggered,
    ReplaceOrder,
    SubmitOrder,
    TradePrinted,
    decoder,
    encoder,
)
from oms.core.orders import Order
from oms.core.venues.internal import InternalVenue

INSTRUMENTS = InstrumentRegistry.load(Path(__file__).parents[3] / "configs" / "instruments.toml")
PX = 1_500_000  # AAPL 150.00 at price precision 4
TICK = 100  # AAPL tick 0.01


def order(cl: str, side: Side, qty: int, price: int | None, account: str = "ACC1", **kw) -> SubmitOrder:
    ord_type = kw.pop("ord_type", OrdType.LIMIT if price else OrdType.MARKET)
    return SubmitOrder(account, cl, "AAPL", side, ord_type, qty, price, tif=kw.pop("tif", T.GTC), **kw)


@pytest.fixture
def venue() -> InternalVenue:
    return InternalVenue(INSTRUMENTS)


def types(events: list) -> list[str]:
    return [type(e).__name__ for e in events]


def test_resting_order_is_accepted_with_its_terms(venue):
    (ack,) = venue.submit(1, order("c1", Side.BUY, 100, PX), ts_ns=5)

    want = OrderAccepted(1, "c1", "ACC1", "AAPL", Side.BUY, OrdType.LIMIT, T.GTC, 100, PX, 5, None, venue="INTERNAL")
    assert ack == want


def test_fills_carry_exact_cumulative_qty_and_notional_and_a_trade_print(venue):
    venue.submit(1, order("s1", Side.SELL, 30, PX, account="ACC2"), 1)
    venue.submit(2, order("s2", Side.SELL, 30, PX + TICK, account="ACC2"), 1)

    events = venue.submit(3, order("b1", Side.BUY, 50, PX + TICK), 2)

    taker = [e for e in events if isinstance(e, OrderFilled) and e.order_id == 3]
    assert [(f.qty, f.price, f.cum_qty, f.leaves_qty, f.aggressor) for f in taker] == [
        (30, PX, 30, 20, True),
        (20, PX + TICK, 50, 0, True),
    ]
    assert taker[-1].avg_px == Fraction(30 * PX + 20 * (PX + TICK), 50)
    makers = [e for e in events if isinstance(e, OrderFilled) and e.order_id != 3]
    assert [(m.order_id, m.cl_ord_id, m.contra_order_id, m.aggressor) for m in makers] == [
        (1, "s1", 3, False),
        (2, "s2", 3, False),
    ]
    prints = [e for e in events if isinstance(e, TradePrinted)]
    assert [(p.venue, p.symbol, p.price, p.qty, p.aggressor_side) for p in prints] == [
        ("INTERNAL", "AAPL", PX, 30, Side.BUY),
        ("INTERNAL", "AAPL", PX + TICK, 20, Side.BUY),
    ]
    assert len({f.exec_id for f in taker + makers}) == 4


@pytest.mark.parametrize(
    ("cmd", "reason"),
    [
        (SubmitOrder("ACC1", "x", "NOPE", Side.BUY, OrdType.LIMIT, 10, PX), RejectReason.UNKNOWN_SYMBOL),
        (order("x", Side.BUY, 10, PX + 1), RejectReason.INVALID_PRICE),
        (order("x", Side.BUY, 0, PX), RejectReason.INVALID_QTY),
        (order("x", Side.BUY, 10, PX, tif=T.FOK), RejectReason.FOK_UNFILLABLE),
    ],
)
def test_book_rejects_become_order_rejected_with_the_reason(venue, cmd, reason):
    (rej,) = venue.submit(7, cmd, 1)

    assert isinstance(rej, OrderRejected)
    assert (rej.order_id, rej.cl_ord_id, rej.reason) == (7, "x", reason)
    assert rej.text


def test_client_cancel_answers_with_the_cancel_clordid_and_the_original_one(venue):
    venue.submit(1, order("c1", Side.BUY, 100, PX), 1)

    (done,) = venue.cancel(1, CancelOrder("ACC1", "c2", "c1", "AAPL", Side.BUY), 2)

    assert done == OrderCanceled(1, "c2", "ACC1", "AAPL", CancelReason.USER, 100, 2, "c1")


def test_cancel_of_a_filled_order_is_too_late(venue):
    venue.submit(1, order("s1", Side.SELL, 10, PX, account="ACC2"), 1)
    venue.submit(2, order("b1", Side.BUY, 10, PX), 1)

    (rej,) = venue.cancel(1, CancelOrder("ACC2", "s2", "s1", "AAPL", Side.SELL), 2)

    assert isinstance(rej, CancelRejected)
    assert (rej.reason, rej.response_to, rej.orig_cl_ord_id) == (RejectReason.TOO_LATE_TO_CANCEL, "cancel", "s1")


def test_replace_moves_the_clordid_chain_and_later_fills_use_the_new_one(venue):
    venue.submit(1, order("c1", Side.BUY, 100, PX), 1)

    (rep,) = venue.replace(1, ReplaceOrder("ACC1", "c2", "c1", "AAPL", Side.BUY, 60, PX), 2)
    fills = venue.submit(2, order("s1", Side.SELL, 10, PX, account="ACC2"), 3)

    assert rep == OrderReplaced(1, "c2", "c1", "ACC1", "AAPL", 60, PX, 60, 2)
    assert [f.cl_ord_id for f in fills if isinstance(f, OrderFilled) and f.order_id == 1] == ["c2"]


def test_bad_replace_is_refused_and_the_order_keeps_working(venue):
    venue.submit(1, order("c1", Side.BUY, 100, PX), 1)

    (rej,) = venue.replace(1, ReplaceOrder("ACC1", "c2", "c1", "AAPL", Side.BUY, 60, PX + 1), 2)

    assert isinstance(rej, CancelRejected)
    assert (rej.reason, rej.response_to) == (RejectReason.INVALID_PRICE, "replace")
    assert venue.engine.order(1) == (Side.BUY, PX, 100, 0, 100)


def test_ioc_remainder_and_self_trade_are_unsolicited_cancels_with_reasons():
    venue = InternalVenue(INSTRUMENTS, StpMode.CANCEL_RESTING)
    venue.submit(1, order("own", Side.SELL, 10, PX), 1)
    venue.submit(2, order("other", Side.SELL, 10, PX, account="ACC2"), 1)

    events = venue.submit(3, order("ioc", Side.BUY, 30, PX, tif=T.IOC), 2)

    cancels = [(e.order_id, e.cl_ord_id, e.reason, e.canceled_qty) for e in events if isinstance(e, OrderCanceled)]
    assert cancels == [(1, "own", CancelReason.SELF_TRADE, 10), (3, "ioc", CancelReason.IOC, 20)]


def test_a_firing_stop_is_reported_before_it_trades(venue):
    venue.submit(1, order("stop", Side.BUY, 10, None, ord_type=OrdType.STOP, stop_price=PX), 1)
    venue.submit(2, order("ask", Side.SELL, 20, PX, account="ACC2"), 1)

    events = venue.submit(3, order("bid", Side.BUY, 10, PX, account="ACC3"), 2)

    assert types(events)[-4:] == ["OrderTriggered", "OrderFilled", "OrderFilled", "TradePrinted"]
    assert events[-4] == OrderTriggered(1, "stop", "ACC1", "AAPL", PX, 2)


def test_end_of_day_expires_day_orders(venue):
    venue.submit(1, order("day", Side.BUY, 10, PX, tif=T.DAY), 1)

    assert venue.end_of_day(9) == [OrderExpired(1, "day", "ACC1", "AAPL", 10, 9)]


# -- every order's event stream is legal for the order state machine --

steps = st.lists(
    st.tuples(
        st.sampled_from(["new"] * 6 + ["cancel", "replace"]),
        st.sampled_from(["ACC1", "ACC2", "ACC3"]),
        st.sampled_from([Side.BUY, Side.SELL]),
        st.sampled_from([OrdType.LIMIT] * 6 + [OrdType.MARKET, OrdType.STOP, OrdType.STOP_LIMIT]),
        st.sampled_from([T.GTC, T.DAY, T.IOC, T.FOK]),
        st.integers(1, 5),
        st.integers(-3, 3),
        st.integers(0, 6),
    ),
    min_size=5,
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(steps=steps)
def test_every_event_stream_is_legal_for_the_order_state_machine(steps):
    venue = InternalVenue(INSTRUMENTS)
    orders: dict[int, Order] = {}
    for n, (op, acct, side, ord_type, tif, lots, off, misc) in enumerate(steps, 1):
        px = PX + off * TICK
        if op == "new":
            limit = px if ord_type in (OrdType.LIMIT, OrdType.STOP_LIMIT) else None
            stop = PX + (misc - 3) * TICK if ord_type in (OrdType.STOP, OrdType.STOP_LIMIT) else None
            cmd = SubmitOrder(acct, f"c{n}", "AAPL", side, ord_type, lots * 10, limit, stop, tif)
            orders[n] = Order(n, cmd.cl_ord_id, acct, "AAPL", side, ord_type, tif, cmd.qty, limit)
            events = venue.submit(n, cmd, n)
        elif orders:
            target = sorted(orders)[-1 - misc % len(orders)]
            o = orders[target]
            if o.is_terminal:
                continue
            if op == "cancel":
                o.on_pending_cancel()
                events = venue.cancel(target, CancelOrder(o.account, f"x{n}", o.cl_ord_id, "AAPL", o.side), n)
            else:
                o.on_pending_replace()
                price = px if o.ord_type in (OrdType.LIMIT, OrdType.STOP_LIMIT) else None
                rep = ReplaceOrder(o.account, f"r{n}", o.cl_ord_id, "AAPL", o.side, o.cum_qty + lots * 10, price)
                events = venue.replace(target, rep, n)
        else:
            continue
        for e in events:
            assert decoder.decode(encoder.encode(e)) == e
            match e:
                case OrderAccepted():
                    orders[e.order_id].on_accepted()
                case OrderRejected():
                    orders[e.order_id].on_rejected()
                case OrderFilled():
                    o = orders[e.order_id]
                    o.on_fill(e.qty, e.price)
                    assert (o.cum_qty, o.leaves_qty, o.cum_notional) == (e.cum_qty, e.leaves_qty, e.cum_notional)
                case OrderCanceled():
                    orders[e.order_id].on_canceled()
                case OrderExpired():
                    orders[e.order_id].on_expired()
                case OrderReplaced():
                    o = orders[e.order_id]
                    o.on_replaced(e.qty, e.price, e.cl_ord_id)
                    assert o.leaves_qty == e.leaves_qty
                case CancelRejected():
                    o = orders[e.order_id]
                    if not o.is_terminal:
                        o.on_cancel_rejected()
                case OrderTriggered() | TradePrinted():
                    pass
    for oid, o in orders.items():
        working = venue.engine.order(oid)
        assert (working is not None) == (not o.is_terminal), o
        if working is not None:
            assert working[2] == o.leaves_qty
