"""Reserved mode never accepts what strict mode rejects, given the same history.

Two paths see one history. The reserved path is a LocalShard (the account) behind a AllowanceGate that decides
locally within allowances; the strict path is a mirror AccountState that gets every event the reserved path's
account gets except the allowance events. At every submit the mirror's decision is computed first and the gate's
decision is then applied to both as the history. Random sequences mix submits (LIMIT inside and outside the band,
MARKET, STOP, duplicate ClOrdIDs, both symbols, both sides), partial and full fills at varied prices, cancels
(which the gate queues without asking the account: none may void its grant),
replaces, marks (direct and as trade prints through the gate), kill switch, trading state, limits changes, day
starts, revocations, returns, flushes and empty post-trade steps (where allowances running low are topped up);
clocks sometimes stand still.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
from hypothesis import event, given, settings
from hypothesis import strategies as st

from oms.core.accounts import AccountSnapshot, AccountState, AllowanceRequest
from oms.core.model.enums import CancelReason, OrdType, RejectReason, Side, TradingState
from oms.core.model.instruments import InstrumentRegistry
from oms.core.model.messages import (
    OrderAccepted,
    OrderCanceled,
    OrderFilled,
    OrderReplaced,
    ReplaceOrder,
    SubmitOrder,
    TradePrinted,
)
from oms.core.reserved import AllowanceGate, LocalShard
from risk.limits import LimitsSpec, SymbolSpec, resolve_limits

ROOT = Path(__file__).resolve().parents[2]
REG = InstrumentRegistry.load(ROOT / "configs" / "instruments.toml")
ACC = "ACC1"
SPEC = LimitsSpec(
    start_cash="30000",
    credit_limit="10000",
    max_order_notional="20000",
    max_gross_notional="100000",
    max_net_notional="60000",
    max_position="300",
    max_open_orders=8,
    orders_per_window=6,
    window_ms=10,
    collar_pct="10",
    drawdown_warn_pct="1",
    drawdown_reduce_pct="3",
    drawdown_halt_pct="6",
    symbols={"AAPL": SymbolSpec(max_position="1000")},
)
LIMITS = [  # credit binds first; gross (then position) binds first; net binds first; roomy
    resolve_limits(SPEC, REG),
    resolve_limits(
        msgspec.structs.replace(
            SPEC, credit_limit="100000", max_gross_notional="20000", max_position="80", orders_per_window=3
        ),
        REG,
    ),
    resolve_limits(msgspec.structs.replace(SPEC, credit_limit="100000", max_net_notional="15000"), REG),
    # roomy: many orders per window, so allowances last, run low and are topped up
    resolve_limits(msgspec.structs.replace(SPEC, orders_per_window=40, max_open_orders=30), REG),
]
SYMBOLS = ("AAPL", "BTC-USD")
PRICES = {"AAPL": st.integers(900, 1100).map(lambda p: p * 1000), "BTC-USD": st.integers(90, 110).map(lambda p: p * 50)}
QTYS = {"AAPL": st.integers(1, 120), "BTC-USD": st.integers(1, 200)}
OPS = st.sampled_from(
    ["submit"] * 6 + ["fill"] * 3 + ["cancel", "replace", "mark", "print", "admin", "flush", "give_back", "step"]
)
REQUESTS = st.builds(
    AllowanceRequest,
    orders=st.integers(1, 12),
    credit_share_bp=st.sampled_from([2_500, 5_000, 10_000]),
    qty_share_bp=st.sampled_from([2_500, 5_000, 10_000]),
    band_share_bp=st.sampled_from([2_500, 5_000, 10_000]),
)


def comparable(snap: AccountSnapshot) -> AccountSnapshot:
    """The snapshot without the allowance: what strict mode's state has too."""
    return msgspec.structs.replace(snap, allowance=None, grant_seq=0)


def assert_certified(state: AccountState) -> None:
    """A live allowance survives a full re-check of its certificate (the account skips it after a spend and the
    acceptance that spend covers): a no-op mark on a copy runs that check."""
    if not state.allowance_id:
        return
    probe = AccountState.restore(state.snapshot(), REG)
    allowance = probe.allowance()
    assert allowance is not None
    symbol = next(iter(allowance.symbols))
    price = probe.reference_price(symbol)
    assert price is not None
    probe.mark(symbol, price)
    assert probe.allowance_id == state.allowance_id


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_reserved_never_accepts_what_strict_rejects(data: st.DataObject) -> None:
    limits_at = data.draw(st.integers(0, len(LIMITS) - 1))
    mirror = AccountState(ACC, LIMITS[limits_at], REG)
    host = LocalShard([AccountState(ACC, LIMITS[limits_at], REG)])
    gate = AllowanceGate(host, REG, [ACC], data.draw(REQUESTS), batch=data.draw(st.integers(1, 4)),
                        low_orders=data.draw(st.sampled_from([0, 1, 3, 6])))  # fmt: skip
    ts = 0
    next_id = 1
    exec_id = 1
    first_limits = LIMITS[limits_at]
    local = 0

    def both(event: Any) -> None:
        gate.on_events([event])
        mirror.apply(event)

    for sym in SYMBOLS:
        price = data.draw(PRICES[sym])
        host.mark(sym, price, ts)
        mirror.mark(sym, price, ts)
    for _ in range(data.draw(st.integers(1, 50))):
        ts += data.draw(st.sampled_from([0, 0, 1, 1, 50_000, 200_000, 1_000_000, 15_000_000]))
        op = data.draw(OPS)
        working = mirror.working_orders()
        if op == "submit":
            sym = data.draw(st.sampled_from(SYMBOLS))
            ord_type = data.draw(st.sampled_from([OrdType.LIMIT, OrdType.LIMIT, OrdType.MARKET, OrdType.STOP]))
            price = data.draw(PRICES[sym]) if ord_type is OrdType.LIMIT else None
            stop = data.draw(PRICES[sym]) if ord_type is OrdType.STOP else None
            cl = f"c{next_id}" if data.draw(st.integers(0, 9)) else f"c{data.draw(st.integers(1, next_id))}"
            cmd = SubmitOrder(ACC, cl, sym, data.draw(st.sampled_from(Side)), ord_type, data.draw(QTYS[sym]), price,
                              stop_price=stop)  # fmt: skip
            strict = mirror.decide(cmd, next_id, ts)
            before = gate.local_accepts
            reserved = gate.decide(cmd, next_id, ts)
            if isinstance(reserved, OrderAccepted):
                assert isinstance(strict, OrderAccepted), (cmd, strict)
                assert reserved == strict
            if gate.local_accepts > before:
                local += 1
            else:  # a fallback is the host's strict decision on the same history: identical
                assert reserved == strict
            mirror.apply(reserved)
            next_id += 1
        elif op == "fill" and working:
            order = mirror.open_order(data.draw(st.sampled_from(working)))
            assert order is not None
            qty = data.draw(st.integers(1, order.leaves))
            price = (
                order.price if order.price is not None and data.draw(st.booleans()) else data.draw(PRICES[order.symbol])
            )
            cum = order.qty - order.leaves + qty
            both(OrderFilled(order.order_id, order.cl_ord_id, ACC, order.symbol, exec_id, order.side, qty, price,
                             order.leaves - qty, cum, cum * price, True, ts))  # fmt: skip
            exec_id += 1
        elif op == "cancel" and working:
            order = mirror.open_order(data.draw(st.sampled_from(working)))
            assert order is not None
            settled = data.draw(st.booleans())
            if settled:
                gate.flush()
            live = host.state(ACC).allowance_id
            both(OrderCanceled(order.order_id, order.cl_ord_id, ACC, order.symbol, CancelReason.USER, order.leaves,
                               ts))  # fmt: skip
            if settled:  # the gate queued the cancel without asking: the account must keep the grant it holds
                gate.flush()
                assert host.state(ACC).allowance_id == live
        elif op == "replace" and working:
            order = mirror.open_order(data.draw(st.sampled_from(working)))
            assert order is not None
            filled = order.qty - order.leaves
            qty = filled + data.draw(st.integers(1, 100))
            price = order.price if order.price is None else data.draw(PRICES[order.symbol])
            cmd = ReplaceOrder(ACC, f"r{next_id}", order.cl_ord_id, order.symbol, order.side, qty, price)
            reason = gate.decide_replace(cmd, order.order_id, ts)
            assert reason == mirror.decide_replace(cmd, order.order_id, ts)
            if reason is RejectReason.NONE:
                both(OrderReplaced(order.order_id, cmd.cl_ord_id, order.cl_ord_id, ACC, order.symbol, qty, price,
                                   qty - filled, ts))  # fmt: skip
            next_id += 1
        elif op in ("mark", "print"):
            sym = data.draw(st.sampled_from(SYMBOLS))
            price = data.draw(PRICES[sym])
            if mirror.reference_price(sym) != price:
                mirror.mark(sym, price, ts)
            if op == "mark":
                host.mark(sym, price, ts)
            else:
                gate.on_events([TradePrinted("SIM", sym, exec_id, price, 1, Side.BUY, ts)])
                exec_id += 1
        elif op == "admin":
            which = data.draw(st.integers(0, 4))
            if which == 0:
                on = data.draw(st.booleans())
                host.set_kill_switch(ACC, on, ts)
                mirror.set_kill_switch(on, ts)
            elif which == 1:
                trading = data.draw(st.sampled_from(TradingState))
                host.set_trading_state(ACC, trading, ts)
                mirror.set_trading_state(trading, ts)
            elif which == 2:
                limits_at = (limits_at + 1) % len(LIMITS)
                host.set_limits(ACC, LIMITS[limits_at], ts)
                mirror.set_limits(LIMITS[limits_at], ts)
            elif which == 3:
                host.start_day(ACC, ts)
                mirror.start_day(ts)
            else:
                host.revoke_allowance(ACC, ts)
        elif op == "flush":
            gate.flush()
            assert comparable(host.state(ACC).snapshot()) == comparable(mirror.snapshot())
            assert_certified(host.state(ACC))
        elif op == "give_back":
            gate.give_back(ACC)
        elif op == "step":  # a post-trade step with nothing to settle: an allowance running low is topped up
            gate.on_events([])
    event(f"local accepts: {min(local, 5)}{'+' if local >= 5 else ''}")
    event(f"top-ups: {min(gate.top_ups, 2)}{'+' if gate.top_ups >= 2 else ''}")

    gate.flush()
    state = host.state(ACC)
    assert comparable(state.snapshot()) == comparable(mirror.snapshot())
    assert_certified(state)
    replayed = AccountState(ACC, first_limits, REG)
    replayed.apply_all(host.events(ACC))
    assert replayed.state_hash() == state.state_hash()
    assert AccountState.restore(state.snapshot(), REG).state_hash() == state.state_hash()
