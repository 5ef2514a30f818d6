"""Parents over the real OMS core (local_engine + native book), in simulated time: TWAP, iceberg, cancel, rejects."""

from __future__ import annotations

import bisect
from fractions import Fraction

import pytest

from oms.adapters.algos import (
    AlgoEngine,
    AlgoRejectReason,
    CancelParent,
    ChildRejected,
    ManualClock,
    MemoryStore,
    ParentDone,
    ParentRejected,
    ParentStatus,
    SubmitIceberg,
    SubmitTwap,
)
from oms.apps.serve import load_config, local_engine
from oms.apps.sim import SimMarket
from oms.core.algos.parents import twap_plan
from oms.core.model.enums import CancelReason, OrdStatus, OrdType, RejectReason, Side, TimeInForce
from oms.core.model.messages import OrderFilled, SubmitOrder
from oms.runtime.sequencer import Sequencer

S = 1_000_000_000
MID = 1_500_000  # 150.00 AAPL
TICK = 100


def children_of(host: Sequencer, parent_id: str) -> list:
    """The child orders the OrderManager holds for a parent (session ALGO, ClOrdID `<parent>.<n>`)."""
    return [
        o for oid, o in host.engine.orders.items()
        if host.engine.session_of[oid] == "ALGO" and o.cl_ord_id.startswith(parent_id + ".")
    ]  # fmt: skip


def market_twap(prints: list, start_ns: int, end_ns: int, step_ns: int = S) -> float:
    """Time-weighted last trade price, sampled every step over [start, end)."""
    ts = [p.ts_ns for p in prints]
    samples = [prints[bisect.bisect_right(ts, t) - 1].price for t in range(start_ns, end_ns, step_ns)]
    return sum(samples) / len(samples)


# -- TWAP --


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_twap_slices_on_schedule_and_averages_near_the_market_twap(seed):
    m = SimMarket(seed=seed)
    m.algos.submit(SubmitTwap("T1", "ALGO1", "AAPL", Side.BUY, 6000, 60 * S, 660 * S, 10))
    slice_asks: dict[int, int] = {}
    sent_at: list[int] = []
    seen = 0
    while m.now < 700 * S:
        m.step()
        kids = children_of(m.host, "T1")
        if len(kids) > seen:
            sent_at.append(m.now)
            slice_asks[m.now] = m.maker.ask
            seen = len(kids)

    view = m.algos.view("T1")
    kids = children_of(m.host, "T1")
    assert view.status is ParentStatus.FILLED
    assert sent_at == [60 * S + i * 60 * S for i in range(10)]  # one slice a minute from the start
    assert [k.qty for k in kids] == [600] * 10
    assert view.cum_qty == 6000 and view.cum_notional == sum(k.cum_notional for k in kids)
    # every slice took the maker's ask at its time, so the average is exact and independently known
    assert view.avg_px == Fraction(sum(600 * a for a in slice_asks.values()), 6000)
    # and it is close to the market's time-weighted print price over the window: stated tolerance 3 bps
    twap = market_twap(m.tape.prints, 60 * S, 660 * S)
    assert abs(float(view.avg_px) - twap) / twap <= 3e-4


def test_twap_jitter_is_seeded_and_stays_within_each_slice():
    cmd = SubmitTwap("T", "ALGO1", "AAPL", Side.BUY, 1000, 0, 100 * S, 10, jitter_pct=50, seed=7)

    times, weights = twap_plan(cmd)

    assert (times, weights) == twap_plan(cmd)
    assert (times, weights) != twap_plan(SubmitTwap(**{**_fields(cmd), "seed": 8}))
    assert all(i * 10 * S <= t < i * 10 * S + 5 * S for i, t in enumerate(times))
    assert all(500 <= w <= 1500 for w in weights)


def test_twap_with_jitter_still_completes_its_quantity_exactly():
    m = SimMarket(seed=5)
    m.algos.submit(SubmitTwap("T2", "ALGO1", "AAPL", Side.SELL, 1003, 10 * S, 110 * S, 7, jitter_pct=80, seed=3))
    m.run_until(120 * S)

    view = m.algos.view("T2")
    assert (view.status, view.cum_qty) == (ParentStatus.FILLED, 1003)
    assert sum(k.cum_qty for k in children_of(m.host, "T2")) == 1003


def test_twap_limit_cap_leaves_the_rest_unfilled_and_expires_at_the_end():
    m = SimMarket(seed=0)
    cap = MID - 10 * TICK  # below the ask: no slice can trade
    m.algos.submit(SubmitTwap("T3", "ALGO1", "AAPL", Side.BUY, 500, 10 * S, 60 * S, 5, limit_price=cap))
    m.run_until(70 * S)

    view = m.algos.view("T3")
    kids = children_of(m.host, "T3")
    assert (view.status, view.cum_qty) == (ParentStatus.EXPIRED, 0)
    assert all(k.ord_type is OrdType.LIMIT and k.price == cap and k.tif is TimeInForce.IOC for k in kids)
    assert len(kids) == 5 and "500 unfilled" in view.text


def test_twap_catches_up_what_a_slice_left_unfilled():
    m = SimMarket(seed=0, size=150, noise_p=0.0)  # the maker shows only 150 a side; nobody else trades
    m.algos.submit(SubmitTwap("T4", "ALGO1", "AAPL", Side.BUY, 800, 10 * S, 50 * S, 4))
    m.run_until(10 * S)

    kids = children_of(m.host, "T4")
    assert [(k.qty, k.cum_qty) for k in kids] == [(200, 150)]
    m.run_until(20 * S)
    assert [k.qty for k in children_of(m.host, "T4")] == [200, 250]  # 200 for the slice + 50 left over


# -- rejects and validation --


def test_risk_rejected_children_are_reported_on_the_parent_which_stops_after_three_in_a_row():
    m = SimMarket(seed=0)
    m.algos.submit(SubmitTwap("R1", "TIGHT1", "AAPL", Side.BUY, 600, 0, 30 * S, 3))  # max_order_qty 100
    m.run_until(40 * S)
    events = m.algos.take_events()

    rejects = [e for e in events if isinstance(e, ChildRejected)]
    view = m.algos.view("R1")
    assert [r.reason for r in rejects] == [RejectReason.MAX_ORDER_QTY] * 3
    assert [r.cl_ord_id for r in rejects] == ["R1.1", "R1.2", "R1.3"]
    assert (view.status, view.rejects, view.cum_qty) == (ParentStatus.STOPPED, 3, 0)
    assert "3 children rejected in a row" in view.text
    assert any(isinstance(e, ParentDone) and e.status is ParentStatus.STOPPED for e in events)


@pytest.mark.parametrize(
    ("cmd", "reason"),
    [
        (SubmitTwap("X", "ALGO1", "NOPE", Side.BUY, 10, 0, S, 1), AlgoRejectReason.UNKNOWN_SYMBOL),
        (SubmitTwap("X", "ALGO1", "AAPL", Side.BUY, 0, 0, S, 1), AlgoRejectReason.INVALID_QTY),
        (SubmitTwap("X", "ALGO1", "AAPL", Side.BUY, 10, S, S, 1), AlgoRejectReason.INVALID_WINDOW),
        (SubmitTwap("X", "ALGO1", "AAPL", Side.BUY, 10, 0, S, 0), AlgoRejectReason.INVALID_SLICES),
        (SubmitTwap("X", "ALGO1", "AAPL", Side.BUY, 10, 0, S, 1, limit_price=MID + 1), AlgoRejectReason.OFF_TICK),
        (SubmitTwap("X", "ALGO1", "AAPL", Side.BUY, 10, 0, S, 1, jitter_pct=101), AlgoRejectReason.INVALID_JITTER),
        (SubmitTwap("X", "ALGO1", "AAPL", Side.BUY, 10, 0, S, 1, seed=2**64), AlgoRejectReason.INVALID_SEED),
        (SubmitTwap("X", "ALGO1", "AAPL", Side.BUY, 10, 0, S, 1, seed=-1), AlgoRejectReason.INVALID_SEED),
        (SubmitTwap("X", "ALGO1", "EURUSD", Side.BUY, 1500, 0, S, 1), AlgoRejectReason.OFF_LOT),
        (SubmitIceberg("X", "ALGO1", "AAPL", Side.BUY, 100, 0, MID), AlgoRejectReason.INVALID_DISPLAY_QTY),
        (SubmitIceberg("X", "ALGO1", "AAPL", Side.BUY, 100, 200, MID), AlgoRejectReason.INVALID_DISPLAY_QTY),
    ],
)
def test_invalid_parents_are_rejected_with_a_reason_and_send_nothing(cmd, reason):
    m = SimMarket(seed=0)

    (event,) = m.algos.submit(cmd)

    assert isinstance(event, ParentRejected) and event.reason is reason and event.text
    assert children_of(m.host, "X") == [] and m.algos.view("X") is None


def test_a_parent_id_is_used_once_and_cancel_of_an_unknown_or_ended_parent_is_refused():
    m = SimMarket(seed=0)
    cmd = SubmitTwap("D1", "ALGO1", "AAPL", Side.BUY, 100, 0, S, 1)
    m.algos.submit(cmd)
    m.run_until(2 * S)

    (dup,) = m.algos.submit(cmd)
    (unknown,) = m.algos.cancel(CancelParent("nope"))
    (late,) = m.algos.cancel(CancelParent("D1"))

    assert dup.reason is AlgoRejectReason.DUPLICATE_PARENT_ID
    assert unknown.reason is AlgoRejectReason.UNKNOWN_PARENT
    assert late.reason is AlgoRejectReason.PARENT_DONE


class RefusingStore(MemoryStore):
    """A store whose appends fail while `refusing` (as Redis down, or a record it cannot encode, would)."""

    def __init__(self) -> None:
        super().__init__()
        self.refusing = True

    def append(self, records: list) -> None:
        if self.refusing:
            raise ConnectionError("the store is down")
        super().append(records)


def test_a_parent_the_store_refuses_is_rejected_not_started_and_later_parents_still_start(caplog):
    m = SimMarket(seed=0, store=(store := RefusingStore()))

    with caplog.at_level("ERROR", logger="oms.adapters.algos.engine"):
        (refused,) = m.algos.submit(SubmitTwap("J1", "ALGO1", "AAPL", Side.BUY, 100, 0, S, 1))
    store.refusing = False
    events = m.algos.submit(SubmitTwap("J2", "ALGO1", "AAPL", Side.BUY, 100, 0, S, 1))
    m.run_until(2 * S)

    assert isinstance(refused, ParentRejected) and refused.reason is AlgoRejectReason.JOURNAL_UNAVAILABLE
    assert m.algos.view("J1") is None and children_of(m.host, "J1") == []
    assert "parent J1 not journaled" in caplog.text and "the store is down" in caplog.text
    assert not any(isinstance(e, ParentRejected) for e in events)
    assert {getattr(r, "parent_id", None) for r in store.records} == {"J2"}  # J1 was never stored
    assert m.algos.view("J2") is not None and m.algos.view("J2").cum_qty == 100


# -- iceberg and cancel, over a bare book --


@pytest.fixture
def bare():
    """A host over local_engine with no market maker: the test places every contra order itself."""
    loaded = load_config()
    host = Sequencer(local_engine(loaded))
    clock = ManualClock(S)
    return host, AlgoEngine(host, loaded.instruments, clock), clock


def sell(host: Sequencer, cl: str, qty: int, px: int, now: int = S) -> list:
    cmd = SubmitOrder("ACC1", cl, "AAPL", Side.SELL, OrdType.LIMIT, qty, px, tif=TimeInForce.IOC, session="C")
    return host.run(lambda e: e.submit(cmd, now))


def test_iceberg_shows_one_child_of_display_qty_and_refills_in_the_same_step_until_done(bare):
    host, algos, _ = bare
    algos.submit(SubmitIceberg("I1", "ALGO1", "AAPL", Side.BUY, 350, 100, MID))
    assert [(o.qty, o.price) for o in host.engine.working(session="ALGO")] == [(100, MID)]

    for n, qty in enumerate([100, 60, 40, 100, 50], 1):
        events = sell(host, f"s{n}", qty, MID)
        assert sum(e.qty for e in events if isinstance(e, OrderFilled) and e.cl_ord_id == f"s{n}") == qty
        working = host.engine.working(session="ALGO")  # the refill happened inside that same step
        leaves = algos.view("I1").leaves_qty
        assert len(working) == (1 if leaves else 0)  # never more than one child shows
        assert all(0 < w.leaves_qty <= min(100, leaves) for w in working)

    view = algos.view("I1")
    kids = children_of(host, "I1")
    assert (view.status, view.cum_qty) == (ParentStatus.FILLED, 350)
    assert [k.qty for k in kids] == [100, 100, 100, 50]
    assert all(k.status is OrdStatus.FILLED for k in kids)
    assert view.avg_px == MID


def test_cancel_parent_cancels_its_working_child_and_reports_exact_cum_and_avg(bare):
    host, algos, _ = bare
    algos.submit(SubmitIceberg("I2", "ALGO1", "AAPL", Side.BUY, 500, 200, MID))
    sell(host, "s1", 30, MID)
    sell(host, "s2", 45, MID)

    events = algos.cancel(CancelParent("I2"))

    view = algos.view("I2")
    (child,) = children_of(host, "I2")
    assert child.status is OrdStatus.CANCELED and host.engine.working(session="ALGO") == []
    assert (view.status, view.cum_qty, view.cum_notional, view.leaves_qty) == (
        ParentStatus.CANCELED, 75, 75 * MID, 425,
    )  # fmt: skip
    assert isinstance(events[-1], ParentDone) and events[-1].status is ParentStatus.CANCELED


def test_parent_avg_price_is_exact_over_fills_at_several_prices(bare):
    host, algos, _ = bare
    algos.submit(SubmitIceberg("I3", "ALGO1", "AAPL", Side.BUY, 3, 1, MID))
    sell(host, "a", 1, MID)
    algos.cancel(CancelParent("I3"))
    algos.submit(SubmitIceberg("I4", "ALGO1", "AAPL", Side.BUY, 3, 3, MID + TICK))
    sell(host, "b", 1, MID)  # trades at the resting child's price MID + TICK
    sell(host, "c", 1, MID + TICK)

    view = algos.view("I4")
    assert (view.cum_qty, view.cum_notional) == (2, 2 * (MID + TICK))
    assert algos.view("I3").avg_px == MID
    assert isinstance(view.avg_px, Fraction)


def test_a_child_canceled_by_the_kill_switch_stops_the_parent(bare):
    host, algos, _ = bare
    algos.submit(SubmitIceberg("I5", "ALGO1", "AAPL", Side.BUY, 500, 100, MID))

    # what OrderManager.kill_switch does to working orders (AllowanceGate has no set_kill_switch yet)
    host.run(lambda e: e.mass_cancel(None, None, S, CancelReason.KILL_SWITCH))
    algos.on_timer(2 * S)

    view = algos.view("I5")
    assert view.status is ParentStatus.STOPPED and "KILL_SWITCH" in view.text
    assert host.engine.working(session="ALGO") == []


def _fields(cmd) -> dict:
    return {f: getattr(cmd, f) for f in cmd.__struct_fields__}


def test_other_subscribers_get_every_report_once_and_in_order_refills_with_the_next_step(bare):
    host, algos, _ = bare
    seen: list = []
    host.subscribe(lambda reports: seen.extend(e for e, _ in reports))  # after the algo engine, like a gateway
    algos.submit(SubmitIceberg("I6", "ALGO1", "AAPL", Side.BUY, 200, 100, MID))

    sell(host, "s1", 100, MID)  # fills I6.1; the algo engine sends I6.2 inside that step
    algos.on_timer(2 * S)  # the next step publishes what the refill caused (today's Sequencer.publish)

    names = [(type(e).__name__, e.cl_ord_id) for e in seen if hasattr(e, "cl_ord_id")]
    assert names.index(("OrderFilled", "s1")) < names.index(("OrderAccepted", "I6.2"))
    assert names.count(("OrderAccepted", "I6.2")) == 1 and names.count(("OrderAccepted", "I6.1")) == 1
    assert [o.cl_ord_id for o in host.engine.working(session="ALGO")] == ["I6.2"]
