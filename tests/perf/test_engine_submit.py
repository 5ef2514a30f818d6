"""Micro-benchmarks of `OrderManager.submit` over the internal venue (the native matching core).

The gate is the recording stub (tests/stubs.py), so the figures are the engine and the book alone: the account
rules are timed in test_account_decide.py. Each benchmark checks every order it sent after timing; the times are
reported, never asserted. See the figures with `pytest tests/perf --benchmark-only`; a plain `pytest` runs these
briefly (bounded rounds) and `--benchmark-disable` runs each target once, still checked.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import count
from pathlib import Path

from pytest_benchmark.fixture import BenchmarkFixture

from oms.core.engine import OrderManager
from oms.core.model.enums import OrdStatus, OrdType, Side, TimeInForce
from oms.core.model.instruments import InstrumentRegistry
from oms.core.model.messages import Message, OrderAccepted, OrderFilled, SubmitOrder, TradePrinted
from oms.core.venues.internal import InternalVenue
from tests.stubs import RecordingGate

INSTRUMENTS = InstrumentRegistry.load(Path(__file__).resolve().parents[2] / "configs" / "instruments.toml")
PX = 1_500_000  # AAPL 150.00
ROUNDS = 2_000


def engine() -> OrderManager:
    """An engine routing every symbol to a fresh internal venue, behind a gate that accepts every order."""
    venue = InternalVenue(INSTRUMENTS)
    return OrderManager(INSTRUMENTS, RecordingGate(), lambda symbol: venue)


def order_flow(account: str, side: Side) -> Callable[[], SubmitOrder]:
    """A fresh GTC limit order of 100 AAPL at PX on each call (ClOrdIDs and timestamps only go up)."""
    n = count(1)

    def next_order() -> SubmitOrder:
        k = next(n)
        cl = f"{side.name[0]}{k}"
        return SubmitOrder(
            account, cl, "AAPL", side, OrdType.LIMIT, 100, PX, tif=TimeInForce.GTC, ts_ns=k, session="S1"
        )

    return next_order


def test_submit_of_an_order_that_rests_on_the_book(benchmark: BenchmarkFixture) -> None:
    oms = engine()
    buys = order_flow("ACC1", Side.BUY)
    sent: list[SubmitOrder] = []

    def submit() -> list[Message]:
        cmd = buys()
        sent.append(cmd)
        return oms.submit(cmd, cmd.ts_ns)

    last = benchmark.pedantic(submit, rounds=ROUNDS // 10, iterations=10, warmup_rounds=5)

    assert [type(e) for e in last] == [OrderAccepted] and last[0].cl_ord_id == sent[-1].cl_ord_id
    assert [o.cl_ord_id for o in oms.orders.values()] == [c.cl_ord_id for c in sent]  # one order per call
    assert all(o.status is OrdStatus.NEW and o.leaves_qty == 100 for o in oms.orders.values())


def test_submit_of_an_order_that_fills_a_resting_one(benchmark: BenchmarkFixture) -> None:
    oms = engine()
    buys, sells = order_flow("ACC1", Side.BUY), order_flow("ACC2", Side.SELL)
    sent: list[SubmitOrder] = []

    def rest_a_buy() -> tuple[tuple[SubmitOrder], dict]:
        """Untimed: the resting order the timed sell meets."""
        cmd = buys()
        (ack,) = oms.submit(cmd, cmd.ts_ns)
        assert isinstance(ack, OrderAccepted)
        return (sells(),), {}

    def submit(cmd: SubmitOrder) -> list[Message]:
        sent.append(cmd)
        return oms.submit(cmd, cmd.ts_ns)

    last = benchmark.pedantic(submit, setup=rest_a_buy, rounds=ROUNDS, warmup_rounds=20)

    accepted, taker, maker, printed = last
    assert isinstance(accepted, OrderAccepted) and accepted.side is Side.SELL
    assert isinstance(taker, OrderFilled) and (taker.order_id, taker.qty, taker.leaves_qty) == (
        accepted.order_id,
        100,
        0,
    )
    assert isinstance(maker, OrderFilled) and (maker.contra_order_id, maker.price) == (accepted.order_id, PX)
    assert isinstance(printed, TradePrinted) and printed.qty == 100
    assert len(oms.orders) == 2 * len(sent)  # each round: one resting buy, one sell that filled it
    assert all(o.status is OrdStatus.FILLED and o.cum_qty == 100 for o in oms.orders.values())
