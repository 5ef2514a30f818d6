"""Random accept/fill/cancel/replace/mark/admin sequences: replay, snapshot+tail and conservation invariants."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from oms.core.accounts import AccountState
from oms.core.model.enums import CancelReason, OrdType, Side, TradingState
from oms.core.model.instruments import InstrumentRegistry
from oms.core.model.messages import OrderAccepted, OrderCanceled, OrderFilled, OrderRejected, OrderReplaced, SubmitOrder
from risk.limits import LimitsSpec, resolve_limits

ROOT = Path(__file__).resolve().parents[2]
REG = InstrumentRegistry.load(ROOT / "configs" / "instruments.toml")
ACC = "ACC1"
LIMITS = resolve_limits(
    LimitsSpec(
        start_cash="100000",
        credit_limit="50000",
        max_order_notional="20000",
        max_position="300",
        max_open_orders=8,
        orders_per_window=6,
        window_ms=1,
        collar_pct="10",
    ),
    REG,
)
SYMBOLS = ("AAPL", "BTC-USD")
PRICES = {"AAPL": st.integers(900, 1100).map(lambda p: p * 1000), "BTC-USD": st.integers(90, 110).map(lambda p: p * 50)}
QTYS = {"AAPL": st.integers(1, 120), "BTC-USD": st.integers(1, 200)}
OPS = st.sampled_from(["submit", "submit", "submit", "fill", "fill", "cancel", "replace", "mark", "admin"])


def check_invariants(state: AccountState) -> None:
    snap = state.snapshot()
    holds = [o.hold for o in snap.orders]
    assert all(h >= 0 for h in holds)
    assert state.exposure == sum(holds) >= 0
    if not snap.orders:
        assert state.exposure == 0
    assert all(0 < o.leaves <= o.qty for o in snap.orders)
    costs = sum(p.cost for p in snap.positions.values())
    assert state.cash + costs == LIMITS.start_cash + state.realized()
    assert state.equity() == state.cash + sum(state.market_value(s) for s in snap.positions)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_replay_and_snapshot_rebuild_the_same_state(data: st.DataObject) -> None:
    state = AccountState(ACC, LIMITS, REG)
    events: list[Any] = []
    ts = 0
    next_id = 1
    exec_id = 1

    def record(event: Any) -> None:
        state.apply(event)
        events.append(event)

    for sym in SYMBOLS:
        events.append(state.mark(sym, data.draw(PRICES[sym]), ts))
    for _ in range(data.draw(st.integers(1, 40))):
        ts += data.draw(st.integers(0, 400_000))
        op = data.draw(OPS)
        working = state.working_orders()
        if op == "submit":
            sym = data.draw(st.sampled_from(SYMBOLS))
            market = data.draw(st.booleans())
            price = None if market else data.draw(PRICES[sym])
            cmd = SubmitOrder(ACC, f"c{next_id}", sym, data.draw(st.sampled_from(Side)),
                              OrdType.MARKET if market else OrdType.LIMIT, data.draw(QTYS[sym]), price)  # fmt: skip
            decision = state.decide(cmd, next_id, ts)
            assert isinstance(decision, OrderAccepted | OrderRejected)
            record(decision)
            next_id += 1
        elif op == "fill" and working:
            order = state.open_order(data.draw(st.sampled_from(working)))
            assert order is not None
            qty = data.draw(st.integers(1, order.leaves))
            price = order.price if order.price is not None else data.draw(PRICES[order.symbol])
            cum = order.qty - order.leaves + qty
            record(OrderFilled(order.order_id, order.cl_ord_id, ACC, order.symbol, exec_id, order.side, qty, price,
                               order.leaves - qty, cum, cum * price, True, ts))  # fmt: skip
            exec_id += 1
        elif op == "cancel" and working:
            order = state.open_order(data.draw(st.sampled_from(working)))
            assert order is not None
            record(OrderCanceled(order.order_id, order.cl_ord_id, ACC, order.symbol, CancelReason.USER,
                                 order.leaves, ts))  # fmt: skip
        elif op == "replace" and working:
            order = state.open_order(data.draw(st.sampled_from(working)))
            assert order is not None
            filled = order.qty - order.leaves
            qty = filled + data.draw(st.integers(0, 100))
            price = order.price if order.price is None else data.draw(PRICES[order.symbol])
            record(OrderReplaced(order.order_id, f"r{next_id}", order.cl_ord_id, ACC, order.symbol, qty, price,
                                 qty - filled, ts))  # fmt: skip
            next_id += 1
        elif op == "mark":
            sym = data.draw(st.sampled_from(SYMBOLS))
            events.append(state.mark(sym, data.draw(PRICES[sym]), ts))
        elif op == "admin":
            which = data.draw(st.integers(0, 2))
            if which == 0:
                events.append(state.set_kill_switch(data.draw(st.booleans()), ts))
            elif which == 1:
                events.append(state.set_trading_state(data.draw(st.sampled_from(TradingState)), ts))
            else:
                events.append(state.start_day(ts))
        check_invariants(state)

    replayed = AccountState(ACC, LIMITS, REG)
    replayed.apply_all(events)
    assert replayed.state_hash() == state.state_hash()

    cut = data.draw(st.integers(0, len(events)))
    head = AccountState(ACC, LIMITS, REG)
    head.apply_all(events[:cut])
    resumed = AccountState.restore(head.snapshot(), REG)
    assert resumed.state_hash() == head.state_hash()
    resumed.apply_all(events[cut:])
    assert resumed.state_hash() == state.state_hash()
    # the same decisions follow from the rebuilt state
    probe = SubmitOrder(ACC, "probe", "AAPL", Side.BUY, OrdType.LIMIT, 10, 1_000_000)
    assert resumed.decide(probe, 0, ts) == state.decide(probe, 0, ts)
