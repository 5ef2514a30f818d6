"""OrderManager: ids, ClOrdID rules, risk before routing, order state and what the account gate is told."""

from __future__ import annotations

from pathlib import Path

import pytest

from oms.core.engine import OrderManager, Unsettled
from oms.core.model.enums import CancelReason, OrdStatus, OrdType, RejectReason, Side
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
    ReplaceOrder,
    SubmitOrder,
    TradePrinted,
)
from oms.core.venues.internal import InternalVenue
from tests.stubs import RecordingGate

INSTRUMENTS = InstrumentRegistry.load(Path(__file__).parents[3] / "configs" / "instruments.toml")
PX = 1_500_000


def new(cl: str, side: Side = Side.BUY, qty: int = 100, price: int | None = PX, account: str = "ACC1", session="S1"):
    ord_type = OrdType.LIMIT if price else OrdType.MARKET
    return SubmitOrder(account, cl, "AAPL", side, ord_type, qty, price, tif=T.GTC, session=session)


def cancel(cl: str, orig: str, side: Side = Side.BUY, account: str = "ACC1", session: str = "S1") -> CancelOrder:
    return CancelOrder(account, cl, orig, "AAPL", side, session=session)


@pytest.fixture
def gate() -> RecordingGate:
    return RecordingGate()


@pytest.fixture
def oms(gate) -> OrderManager:
    venue = InternalVenue(INSTRUMENTS)
    return OrderManager(INSTRUMENTS, gate, lambda symbol: venue)


def test_orders_get_increasing_ids_and_reach_new(oms):
    (a,) = oms.submit(new("c1"), 1)
    (b,) = oms.submit(new("c2"), 2)

    assert (type(a), a.order_id, b.order_id) == (OrderAccepted, 1, 2)
    assert oms.orders[1].status is OrdStatus.NEW
    assert oms.session_of[2] == "S1"


def test_duplicate_clordid_on_a_session_is_rejected_without_an_order(oms):
    oms.submit(new("c1"), 1)

    (rej,) = oms.submit(new("c1"), 2)

    assert isinstance(rej, OrderRejected)
    assert (rej.order_id, rej.reason) == (0, RejectReason.DUPLICATE_CL_ORD_ID)
    assert list(oms.orders) == [1]


def test_the_same_clordid_on_another_session_is_a_new_order(oms):
    oms.submit(new("c1"), 1)

    (ack,) = oms.submit(new("c1", session="S2"), 2)

    assert isinstance(ack, OrderAccepted)


def test_unknown_symbol_is_rejected_before_risk_and_routing(oms, gate):
    cmd = SubmitOrder("ACC1", "c1", "NOPE", Side.BUY, OrdType.LIMIT, 10, PX)

    (rej,) = oms.submit(cmd, 1)

    assert rej.reason == RejectReason.UNKNOWN_SYMBOL
    assert gate.seen == []


def test_risk_reject_never_reaches_the_venue(oms, gate):
    gate.deny["c1"] = RejectReason.INVALID_QTY

    (rej,) = oms.submit(new("c1"), 1)

    assert (type(rej), rej.order_id, rej.reason) == (OrderRejected, 1, RejectReason.INVALID_QTY)
    assert oms.orders[1].status is OrdStatus.REJECTED
    assert oms.submit(new("c2", Side.SELL), 2)[0].__class__ is OrderAccepted  # nothing rests from c1


def test_fills_update_both_orders_and_reach_the_gate(oms, gate):
    oms.submit(new("s1", Side.SELL, 60, account="ACC2", session="S2"), 1)

    events = oms.submit(new("b1", Side.BUY, 100), 2)

    assert [type(e) for e in events] == [OrderAccepted, OrderFilled, OrderFilled, TradePrinted]
    assert oms.orders[1].status is OrdStatus.FILLED
    assert (oms.orders[2].status, oms.orders[2].cum_qty) == (OrdStatus.PARTIALLY_FILLED, 60)
    assert [type(e) for e in gate.seen] == [OrderFilled, OrderFilled, TradePrinted]


def test_cancel_by_orig_clordid(oms, gate):
    oms.submit(new("c1"), 1)

    (done,) = oms.cancel(cancel("c2", "c1"), 2)

    assert isinstance(done, OrderCanceled)
    assert oms.orders[1].status is OrdStatus.CANCELED
    assert gate.seen == [done]


@pytest.mark.parametrize(
    ("cmd", "reason"),
    [
        (cancel("c9", "nope"), RejectReason.UNKNOWN_ORDER),
        (cancel("c9", "c1", account="ACC2"), RejectReason.UNKNOWN_ORDER),
        (cancel("c9", "c1", session="S2"), RejectReason.UNKNOWN_ORDER),
        (cancel("c1", "c1"), RejectReason.DUPLICATE_CL_ORD_ID),
    ],
)
def test_bad_cancel_is_refused_with_a_reason(oms, cmd, reason):
    oms.submit(new("c1"), 1)

    (rej,) = oms.cancel(cmd, 2)

    assert isinstance(rej, CancelRejected)
    assert (rej.reason, rej.response_to) == (reason, "cancel")
    assert oms.orders[1].status is OrdStatus.NEW


def test_a_replace_that_changes_the_side_is_refused_and_never_reaches_the_gate(oms, gate):
    oms.submit(new("c1"), 1)
    gate.seen.clear()

    (rej,) = oms.replace(ReplaceOrder("ACC1", "c2", "c1", "AAPL", Side.SELL, 50, PX, session="S1"), 2)

    assert isinstance(rej, CancelRejected)
    assert (rej.reason, rej.response_to) == (RejectReason.INVALID_SIDE, "replace")
    assert (oms.orders[1].status, oms.orders[1].qty, gate.replace_checks) == (OrdStatus.NEW, 100, [])


def test_cancel_of_a_filled_order_is_too_late(oms):
    oms.submit(new("s1", Side.SELL, 100, account="ACC2"), 1)
    oms.submit(new("b1", Side.BUY, 100), 2)

    (rej,) = oms.cancel(cancel("b2", "b1"), 3)

    assert (rej.order_id, rej.reason) == (2, RejectReason.TOO_LATE_TO_CANCEL)


def test_replace_then_cancel_with_the_new_clordid(oms, gate):
    oms.submit(new("c1"), 1)

    (rep,) = oms.replace(ReplaceOrder("ACC1", "c2", "c1", "AAPL", Side.BUY, 50, PX, session="S1"), 2)
    (done,) = oms.cancel(cancel("c3", "c2"), 3)

    assert isinstance(rep, OrderReplaced)
    assert gate.replace_checks == [("c2", OrdType.LIMIT)]  # the gate is told the order's type
    assert (done.cl_ord_id, done.orig_cl_ord_id, done.canceled_qty) == ("c3", "c2", 50)


def test_replace_the_gate_refuses_leaves_the_order_working(oms, gate):
    oms.submit(new("c1"), 1)
    gate.deny["c2"] = RejectReason.INVALID_QTY

    (rej,) = oms.replace(ReplaceOrder("ACC1", "c2", "c1", "AAPL", Side.BUY, 500, PX, session="S1"), 2)

    assert (type(rej), rej.reason, rej.response_to) == (CancelRejected, RejectReason.INVALID_QTY, "replace")
    assert oms.orders[1].status is OrdStatus.NEW


def test_kill_switch_cancels_the_accounts_working_orders_and_blocks_new_ones(oms, gate):
    oms.submit(new("c1"), 1)
    oms.submit(new("c2", Side.SELL, price=PX + 100), 2)
    oms.submit(new("x1", account="ACC2", session="S2"), 3)

    events = oms.kill_switch("ACC1", True, 4)
    (rej,) = oms.submit(new("c3"), 5)

    assert [(e.order_id, e.reason) for e in events] == [(1, CancelReason.KILL_SWITCH), (2, CancelReason.KILL_SWITCH)]
    assert rej.reason == RejectReason.KILL_SWITCH
    assert oms.orders[3].status is OrdStatus.NEW
    assert [e for e in gate.seen if isinstance(e, OrderCanceled)] == events


def test_global_kill_switch_reaches_every_account_and_can_be_lifted(oms, gate):
    oms.submit(new("c1"), 1)
    oms.submit(new("x1", account="ACC2", session="S2"), 2)

    events = oms.kill_switch(None, True, 3)
    oms.kill_switch(None, False, 4)

    assert sorted(e.order_id for e in events) == [1, 2]
    assert isinstance(oms.submit(new("c2"), 5)[0], OrderAccepted)


def test_outbox_holds_each_event_with_the_order_as_it_was_right_after_it(oms):
    oms.submit(new("s1", Side.SELL, qty=100), 1)
    oms.take_reports()

    oms.submit(new("b1", Side.BUY, qty=60, account="ACC2"), 2)
    reports = oms.take_reports()

    views = [(type(e).__name__, e.order_id, v.status, v.cum_qty, v.leaves_qty) for e, v in reports if v is not None]
    assert views[0][:3] == ("OrderAccepted", 2, OrdStatus.NEW) and views[0][3:] == (0, 60)
    assert (2, OrdStatus.FILLED, 60, 0) in [v[1:] for v in views]
    assert (1, OrdStatus.PARTIALLY_FILLED, 60, 40) in [v[1:] for v in views]
    assert oms.take_reports() == []


def test_refused_commands_reach_the_outbox_without_a_view(oms):
    oms.submit(new("c1"), 1)
    oms.take_reports()

    oms.submit(new("c1"), 2)
    oms.cancel(cancel("x", "nope"), 3)
    (dup, _), (refused, view) = oms.take_reports()

    assert dup.reason == RejectReason.DUPLICATE_CL_ORD_ID
    assert refused.reason == RejectReason.UNKNOWN_ORDER and view is None


def test_mass_cancel_takes_only_the_sessions_working_orders_in_the_symbol(oms):
    oms.submit(new("a", session="S1"), 1)
    oms.submit(new("b", session="S2", account="ACC2"), 2)

    events = oms.mass_cancel("S1", "AAPL", 3)

    assert [(e.cl_ord_id, e.reason) for e in events if isinstance(e, OrderCanceled)] == [("a", CancelReason.USER)]
    assert [o.cl_ord_id for o in oms.working()] == ["b"]
    assert oms.find("S2", "b") is oms.working("S2")[0]
    assert oms.find("S1", "b") is None


class Stamps:
    """Records the order of the engine's stage stamps."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def risk_decided(self) -> None:
        self.calls.append("risk")

    def venue_done(self) -> None:
        self.calls.append("venue")


class NoisyVenue:
    """A venue that notes in `stamps` when it is asked, to show where the venue stamp falls."""

    name = "INTERNAL"

    def __init__(self, stamps: Stamps) -> None:
        self.inner = InternalVenue(INSTRUMENTS)
        self.stamps = stamps

    def submit(self, order_id, cmd, ts_ns):
        self.stamps.calls.append("venue called")
        return self.inner.submit(order_id, cmd, ts_ns)


def test_an_accepted_order_is_stamped_after_the_risk_decision_and_after_the_venue(gate):
    stamps = Stamps()
    oms = OrderManager(INSTRUMENTS, gate, lambda symbol: NoisyVenue(stamps))

    (ack,) = oms.submit(new("c1"), 1, stamps)

    assert isinstance(ack, OrderAccepted)
    assert stamps.calls == ["risk", "venue called", "venue"]


def test_a_refused_order_is_stamped_at_its_decision_only(oms, gate):
    gate.deny["c2"] = RejectReason.CREDIT_LIMIT
    oms.submit(new("c1"), 1)
    refused = {"risk": Stamps(), "duplicate": Stamps(), "symbol": Stamps()}

    oms.submit(new("c2"), 2, refused["risk"])
    oms.submit(new("c1"), 3, refused["duplicate"])
    oms.submit(SubmitOrder("ACC1", "c3", "NOPE", Side.BUY, OrdType.LIMIT, 10, PX), 4, refused["symbol"])

    assert {k: s.calls for k, s in refused.items()} == {"risk": ["risk"], "duplicate": ["risk"], "symbol": ["risk"]}


def gtd(cl: str, expire_ts_ns: int, side: Side = Side.BUY) -> SubmitOrder:
    return SubmitOrder("ACC1", cl, "AAPL", side, OrdType.LIMIT, 10, PX, tif=T.GTD, expire_ts_ns=expire_ts_ns,
                       session="S1")  # fmt: skip


def test_gtd_orders_expire_when_their_time_comes_and_not_before(oms, gate):
    oms.submit(gtd("g1", 1_000), 1)
    oms.submit(gtd("g2", 2_000), 1)
    oms.submit(gtd("g3", 1_500), 1)
    oms.cancel(cancel("x3", "g3"), 2)
    assert oms.next_expiry() == 1_000

    assert oms.expire_due(999) == []
    (expired,) = oms.expire_due(1_600)  # g3 was canceled: nothing to expire

    assert isinstance(expired, OrderExpired) and expired.order_id == 1
    assert oms.orders[1].status is OrdStatus.EXPIRED and oms.orders[2].status is OrdStatus.NEW
    assert expired in gate.seen  # the account releases it
    assert oms.next_expiry() == 2_000
    assert [type(e) for e in oms.expire_due(2_000)] == [OrderExpired]
    assert oms.next_expiry() is None


def test_the_days_close_expires_day_orders_and_leaves_gtc_and_gtd_working(oms):
    oms.submit(new("gtc", price=PX - 100), 1)  # GTC
    day = SubmitOrder("ACC1", "day", "AAPL", Side.BUY, OrdType.LIMIT, 10, PX - 200, tif=T.DAY, session="S1")
    oms.submit(day, 1)
    oms.submit(gtd("gtd", 10**12), 1)

    events = oms.end_of_day(5)

    assert [(type(e), e.order_id) for e in events] == [(OrderExpired, 2)]
    assert [o.cl_ord_id for o in oms.working()] == ["gtc", "gtd"]
    assert oms.end_of_day(6) == []


def _restarted(gate: RecordingGate) -> tuple[OrderManager, RecordingGate]:
    """A new manager (the next start's ids, a new empty book) rebuilt from what `gate` journaled."""
    venue = InternalVenue(INSTRUMENTS)
    after = RecordingGate()
    manager = OrderManager(INSTRUMENTS, after, lambda symbol: venue, first_order_id=1_000, ready=False)
    assert manager.restore(gate.journal) == 0
    return manager, after


def test_a_restart_rebuilds_every_order_from_the_journal_and_cancels_what_the_lost_book_held(oms, gate):
    oms.submit(new("rest", Side.SELL, qty=50), 1)  # rests, then partly filled
    oms.submit(new("take", qty=20, account="ACC2"), 2)  # fills against it: FILLED
    oms.submit(new("gone", price=PX - 500), 3)
    oms.cancel(cancel("x-gone", "gone"), 4)  # canceled
    oms.submit(new("moved", price=PX - 600, session="S2"), 5)
    oms.replace(ReplaceOrder("ACC1", "moved-2", "moved", "AAPL", Side.BUY, 80, PX - 700, session="S2"), 6)
    before = {oid: (o.cl_ord_id, o.view(), oms.session_of[oid]) for oid, o in oms.orders.items()}

    manager, after = _restarted(gate)

    assert {oid: (o.cl_ord_id, o.view(), manager.session_of[oid]) for oid, o in manager.orders.items()} == before
    assert list(manager.orders) == sorted(before)
    for session, cl in (("S1", "rest"), ("S1", "take"), ("S1", "x-gone"), ("S2", "moved"), ("S2", "moved-2")):
        assert manager.find(session, cl) is not None, cl
    (dup,) = manager.submit(new("take", account="ACC2"), 7)  # the same ClOrdID is judged as before the restart ...
    assert dup.reason is RejectReason.NOT_READY  # ... once the OMS is ready; until then nothing is taken

    events = manager.recover(8)

    canceled = {e.cl_ord_id: e for e in events if isinstance(e, OrderCanceled)}
    assert set(canceled) == {"rest", "moved-2"}  # the working ones: the book that held them is gone
    assert {e.reason for e in canceled.values()} == {CancelReason.RESTART}
    assert (canceled["rest"].canceled_qty, canceled["moved-2"].canceled_qty) == (30, 80)
    assert all(e in after.seen for e in canceled.values())  # the accounts release what they held
    assert manager.working() == [] and manager.ready
    (dup,) = manager.submit(new("take", account="ACC2"), 9)
    assert dup.reason is RejectReason.DUPLICATE_CL_ORD_ID
    (dup,) = manager.cancel(cancel("x2", "take", account="ACC2"), 10)
    assert dup.reason is RejectReason.TOO_LATE_TO_CANCEL
    [ack] = [e for e in manager.submit(new("fresh"), 11) if isinstance(e, OrderAccepted)]
    assert ack.order_id == 1_000


def test_a_venue_that_may_still_hold_an_order_gets_it_back_working(gate):
    class KeepingVenue(InternalVenue):
        def recover(self, order_id, cmd, cum_qty, cum_notional, ts_ns, replaced=False):
            self.kept = (order_id, cmd.cl_ord_id, cmd.session, cmd.qty, cum_qty, replaced)
            return []

    book = InternalVenue(INSTRUMENTS)
    oms = OrderManager(INSTRUMENTS, gate, lambda symbol: book)
    oms.submit(new("far", Side.SELL, qty=30), 1)
    oms.submit(new("hit", qty=10, account="ACC2"), 2)
    venue = KeepingVenue(INSTRUMENTS)
    manager = OrderManager(INSTRUMENTS, RecordingGate(), lambda symbol: venue, first_order_id=1_000, ready=False)
    manager.restore(gate.journal)

    assert manager.recover(3) == []

    assert venue.kept == (1, "far", "S1", 30, 10, False)
    working = [(o.cl_ord_id, o.status, o.leaves_qty) for o in manager.working()]
    assert working == [("far", OrdStatus.PARTIALLY_FILLED, 20)]

    # a replace journaled: the venue is told so at the next start (it may know the order by another id)
    replaced = OrderReplaced(1, "far2", "far", "ACC1", "AAPL", 25, PX, 15, 4)
    again = OrderManager(INSTRUMENTS, RecordingGate(), lambda symbol: venue, first_order_id=2_000, ready=False)
    again.restore([*gate.journal, replaced])
    again.recover(5)
    assert venue.kept == (1, "far2", "S1", 25, 10, True)


def test_events_of_orders_the_journal_does_not_accept_are_skipped_and_counted():
    manager = OrderManager(INSTRUMENTS, RecordingGate(), lambda symbol: InternalVenue(INSTRUMENTS), ready=False)
    fill = OrderFilled(5, "old", "ACC1", "AAPL", 9, Side.BUY, 1, PX, 0, 1, PX, True, 1)

    assert manager.restore([fill]) == 1
    assert manager.orders == {}


def test_a_gate_that_could_not_settle_durable_events_is_a_fault_and_the_fills_stand(gate):
    class Unsettling(RecordingGate):
        def on_events(self, events):
            events = list(events)
            if any(isinstance(e, OrderFilled) for e in events):
                raise Unsettled("the host died mid-call; the fills are written ahead")
            super().on_events(events)

    book = InternalVenue(INSTRUMENTS)
    oms = OrderManager(INSTRUMENTS, Unsettling(), lambda symbol: book)
    oms.submit(new("s", Side.SELL, qty=10), 1)

    events = oms.submit(new("b", qty=10, account="ACC2"), 2)

    assert sum(isinstance(e, OrderFilled) for e in events) == 2
    assert [o.status for o in oms.orders.values()] == [OrdStatus.FILLED, OrdStatus.FILLED]
    assert [port for port, _ in oms.take_faults()] == ["risk gate"]
