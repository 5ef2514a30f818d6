"""The native pre-trade check gives exactly the reasons of the Python rules, over random account histories.

Each history mixes decisions, fills (opening and flipping positions), cancels, replaces, marks, quotes, admin events
and limit changes, and is cut once through snapshot + restore. Before every step a probe order is judged twice: by
the kernel (`RiskKernel.check`, through `decide`) and by `AccountState.reference_reason`. Limits are tight so every
check's reason occurs (the test counts them); numbers stay in the kernel's 64-bit range, so it must answer every
probe itself. Numbers outside that range are the second test: the kernel declines and `decide` still answers right.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from native import UNDECIDED
from oms.core.accounts import AccountState
from oms.core.model.enums import CancelReason, OrdType, RejectReason, Side, TimeInForce, TradingState
from oms.core.model.instruments import InstrumentRegistry
from oms.core.model.messages import (
    OrderAccepted,
    OrderCanceled,
    OrderFilled,
    OrderRejected,
    OrderReplaced,
    SubmitOrder,
)
from risk import limits, rules
from risk.limits import LimitsSpec, resolve_limits

ROOT = Path(__file__).resolve().parents[2]
REG = InstrumentRegistry.load(ROOT / "configs" / "instruments.toml")
ACC = "ACC1"
SPEC = LimitsSpec(
    start_cash="5000",
    credit_limit="3000",
    max_order_notional="9000",
    max_gross_notional="9000",
    max_net_notional="7000",
    max_order_qty="80",
    max_position="100",
    max_open_orders=4,
    orders_per_window=3,
    window_ms=1,
    collar_pct="5",
    restricted_symbols=["ESZ6"],
)
LIMITS = resolve_limits(SPEC, REG)
LOOSER = resolve_limits(
    msgspec.structs.replace(SPEC, max_position="400", collar_pct="20", max_open_orders=9, restricted_symbols=[]), REG
)
SYMBOLS = ("AAPL", "MSFT", "BTC-USD") * 3 + ("ESZ6", "NOPE")
TRADED = ("AAPL", "MSFT", "BTC-USD")
PRICES = {
    "AAPL": st.integers(80, 120).map(lambda p: p * 10_000),  # 80.00 - 120.00
    "MSFT": st.integers(380, 420).map(lambda p: p * 1_000),  # 38.0 - 42.0
    "BTC-USD": st.integers(90, 110).map(lambda p: p * 50),
    "ESZ6": st.just(500_000),
    "NOPE": st.just(100),
}
QTYS = {"AAPL": st.integers(-2, 110), "MSFT": st.integers(-2, 110), "BTC-USD": st.integers(1, 90_000)}
QTYS["ESZ6"] = QTYS["NOPE"] = st.integers(1, 10)
OPS = st.sampled_from(
    ["submit"] * 4 + ["fill"] * 3 + ["cancel", "replace", "mark", "quote", "admin", "limits", "restore"]
)


def probe(data: st.DataObject, n: int, seen: list[str]) -> SubmitOrder:
    sym = data.draw(st.sampled_from(SYMBOLS))
    ord_type = data.draw(st.sampled_from(OrdType))
    price = data.draw(PRICES[sym]) if ord_type in (OrdType.LIMIT, OrdType.STOP_LIMIT) else None
    cl = data.draw(st.sampled_from(seen)) if seen and data.draw(st.integers(0, 9)) == 0 else f"c{n}"
    account = "OTHER" if data.draw(st.integers(0, 49)) == 0 else ACC
    return SubmitOrder(account, cl, sym, data.draw(st.sampled_from(Side)), ord_type, data.draw(QTYS[sym]), price)


REASONS: Counter[RejectReason] = Counter()


@settings(max_examples=400, deadline=None, derandomize=True)  # the guard below needs the same histories each run
@given(st.data())
def test_kernel_gives_the_reference_reason_for_every_order(data: st.DataObject) -> None:
    state = AccountState(ACC, LIMITS, REG)
    ts, next_id, exec_id = 0, 1, 1
    seen: list[str] = []
    for sym in TRADED:
        if data.draw(st.booleans()):
            state.mark(sym, data.draw(PRICES[sym]), ts)
    for _ in range(data.draw(st.integers(1, 50))):
        ts += data.draw(st.sampled_from([0, 1_000, 50_000, 400_000, 2_000_000]))
        cmd = probe(data, next_id, seen)
        expected = state.reference_reason(cmd, ts)
        if cmd.account == ACC:
            assert state._kernel.check(cmd, ts) == int(expected), cmd
        REASONS[expected] += 1
        op = data.draw(OPS)
        working = state.working_orders()
        if op == "submit":
            decision = state.decide(cmd, next_id, ts)
            assert isinstance(decision, OrderAccepted | OrderRejected)
            assert (decision.reason if isinstance(decision, OrderRejected) else RejectReason.NONE) is expected
            if cmd.account == ACC and cmd.symbol in TRADED:
                state.apply(decision)
                seen.append(cmd.cl_ord_id)
            next_id += 1
        elif op == "fill" and working:
            order = state.open_order(data.draw(st.sampled_from(working)))
            assert order is not None
            qty = data.draw(st.integers(1, order.leaves))
            price = order.price if order.price is not None else data.draw(PRICES[order.symbol])
            cum = order.qty - order.leaves + qty
            state.apply(OrderFilled(order.order_id, order.cl_ord_id, ACC, order.symbol, exec_id, order.side, qty,
                                    price, order.leaves - qty, cum, cum * price, True, ts))  # fmt: skip
            exec_id += 1
        elif op == "cancel" and working:
            order = state.open_order(data.draw(st.sampled_from(working)))
            assert order is not None
            state.apply(OrderCanceled(order.order_id, order.cl_ord_id, ACC, order.symbol, CancelReason.USER,
                                      order.leaves, ts))  # fmt: skip
        elif op == "replace" and working:
            order = state.open_order(data.draw(st.sampled_from(working)))
            assert order is not None
            if order.price is None and state.reference_price(order.symbol) is None:
                continue  # an order without a price is valued at the reference: the venue would not replace it
            filled = order.qty - order.leaves
            qty = filled + data.draw(st.integers(0, 60))
            price = order.price if order.price is None else data.draw(PRICES[order.symbol])
            state.apply(OrderReplaced(order.order_id, f"r{next_id}", order.cl_ord_id, ACC, order.symbol, qty, price,
                                      qty - filled, ts))  # fmt: skip
            seen.append(f"r{next_id}")
            next_id += 1
        elif op == "mark":
            sym = data.draw(st.sampled_from(TRADED))
            state.mark(sym, data.draw(PRICES[sym]), ts)
        elif op == "quote":
            sym = data.draw(st.sampled_from(TRADED))
            bid = data.draw(st.none() | PRICES[sym])
            state.quote(sym, bid, data.draw(st.none() | PRICES[sym]), ts)
        elif op == "admin":
            which = data.draw(st.integers(0, 2))
            if which == 0:
                state.set_kill_switch(data.draw(st.sampled_from([False, False, True])), ts)
            elif which == 1:
                state.set_trading_state(data.draw(st.sampled_from([*TradingState, TradingState.ACTIVE])), ts)
            else:
                state.start_day(ts)
                seen.clear()
        elif op == "limits":
            state.set_limits(data.draw(st.sampled_from([LIMITS, LOOSER])), ts)
        elif op == "restore":
            state = AccountState.restore(state.snapshot(), REG)


def test_the_histories_reach_every_reason_the_kernel_gives() -> None:
    """Guards the test above against a generator that never reaches a check (run after it, in file order): every
    reason of `risk.rules.RULES` must occur, so a check added to the list fails here until the histories reach it."""
    wanted = {RejectReason.NONE} | rules.REASONS
    if not REASONS:
        test_kernel_gives_the_reference_reason_for_every_order()
    assert wanted <= set(REASONS), f"never reached: {sorted(r.name for r in wanted - set(REASONS))}"


BIG = 2**63


@settings(max_examples=200, deadline=None)
@given(
    qty=st.sampled_from([1, 10, BIG, BIG * 7, -BIG - 1]),
    price=st.sampled_from([1_000_000, BIG // 3, BIG, 3 * BIG]),
    mark=st.sampled_from([1_000_000, BIG // 1000, BIG // 7, BIG * 2]),
    fill=st.sampled_from([0, 5, 10**12, BIG // 10**4]),
    side=st.sampled_from(Side),
    ord_type=st.sampled_from(OrdType),
)
def test_numbers_past_64_bits_are_left_to_the_reference(
    qty: int, price: int, mark: int, fill: int, side: Side, ord_type: OrdType
) -> None:
    # limits past what a configuration may give (risk.limits.MAX_UNITS), so that huge numbers pass every check and
    # reach the products the kernel must leave to the reference: built with the bound lifted
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(limits, "MAX_UNITS", 10**40)
        huge = resolve_limits(
            LimitsSpec(start_cash="1" + "0" * 20, credit_limit="1" + "0" * 20, max_order_notional="1" + "0" * 20,
                       max_gross_notional="1" + "0" * 21, max_net_notional="1" + "0" * 21,
                       max_order_qty="1" + "0" * 30, max_position="1" + "0" * 30, collar_pct="100"),
            REG,
        )  # fmt: skip
    state = AccountState(ACC, huge, REG)
    state.mark("AAPL", mark, 0)
    if fill:
        state.apply(OrderAccepted(1, "f", ACC, "AAPL", Side.BUY, OrdType.LIMIT, TimeInForce.DAY, fill, mark, 0))
        state.apply(OrderFilled(1, "f", ACC, "AAPL", 1, Side.BUY, fill, mark, 0, fill, fill * mark, True, 0))
    price_or_none = price if ord_type in (OrdType.LIMIT, OrdType.STOP_LIMIT) else None
    cmd = SubmitOrder(ACC, "c", "AAPL", side, ord_type, qty, price_or_none)
    code = state._kernel.check(cmd, 1)
    expected = state.reference_reason(cmd, 1)
    assert code in (UNDECIDED, int(expected))
    decision = state.decide(cmd, 2, 1)
    assert (decision.reason if isinstance(decision, OrderRejected) else RejectReason.NONE) is expected
