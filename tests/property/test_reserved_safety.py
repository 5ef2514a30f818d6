"""Reserved mode never accepts what strict mode rejects, given the same history.

Two paths see one history. The reserved path is a LocalShard (the account) behind a AllowanceGate that decides
locally within allowances; the strict path is a mirror AccountState that gets every event the reserved path's
account gets except the allowance events. At every submit the mirror's decision is computed first and the gate's
decision is then applied to both as the history. Random sequences mix submits (LIMIT inside and outside the band,
MARKET, STOP, duplicate ClOrdIDs, both symbols, both sides), partial and full fills at varied prices, cancels
(which the gate queues without asking the account: none may void its grant), replaces (accepted within the
allowance where their terms allow, else checked by the account), marks (direct and as trade prints through the
gate), kill switch, trading state, limits changes, day starts, revocations, returns, flushes and empty post-trade
steps (where allowances running low are topped up); clocks sometimes stand still.

The remote variant runs the gate the way it runs over Ray: post-trade events and prints are written ahead and sent
without waiting, the host applies each call when it is made, and the gate learns what a call voided only from its
reply (the live grant ids it carries), which for a post-trade call arrives when the test delivers it, some steps
later. Operator changes go through the gate, marks only as trade prints, and a third symbol gets its first price
from a print, so some prints fall on a symbol the allowance does not cover.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
from hypothesis import event, given, settings
from hypothesis import strategies as st

from oms.core.accounts import AccountEvent, AccountSnapshot, AccountState, AllowanceRequest
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
from oms.core.reserved import Allowance, AllowanceGate, Lease, LocalShard
from oms.core.reserved.commands import CheckReplace, Decide, Operate, Resync, ReturnAllowance, Settle, TopUp
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
UNPRICED = "MSFT"  # the remote variant's third symbol: no price until a print gives it one
PRICES = {
    "AAPL": st.integers(900, 1100).map(lambda p: p * 1000),
    "BTC-USD": st.integers(90, 110).map(lambda p: p * 50),
    UNPRICED: st.integers(900, 1100).map(lambda p: p * 1000),
}
QTYS = {"AAPL": st.integers(1, 120), "BTC-USD": st.integers(1, 200), UNPRICED: st.integers(1, 120)}
OPS = st.sampled_from(
    ["submit"] * 6 + ["fill"] * 3 + ["cancel", "replace", "mark", "print", "admin", "flush", "give_back", "step"]
)
REMOTE_OPS = st.sampled_from(
    ["submit"] * 6 + ["fill"] * 3 + ["print"] * 2 + ["deliver"] * 3 + ["cancel", "replace", "admin", "flush",
                                                                        "give_back", "step"]
)  # fmt: skip
REQUESTS = st.builds(
    AllowanceRequest,
    orders=st.integers(1, 12),
    credit_share_bp=st.sampled_from([2_500, 5_000, 10_000]),
    qty_share_bp=st.sampled_from([2_500, 5_000, 10_000]),
    band_share_bp=st.sampled_from([2_500, 5_000, 10_000]),
    symbols=st.sampled_from([None, None, ("AAPL",), ("BTC-USD",)]),  # a grant may leave out a symbol held
)


class Delivered:
    """A post-trade call's reply, in once the test delivers it (or the gate waits for it)."""

    def __init__(self, reply: Callable[[], dict[str, Allowance | None]]) -> None:
        self._reply = reply
        self.arrived = False

    def done(self) -> bool:
        return self.arrived

    def result(self) -> dict[str, Allowance | None]:
        self.arrived = True
        return self._reply()


class Remote:
    """A LocalShard as a gate over Ray sees its host (`ShardClient` over an `AccountShard`): every call is applied
    when it is made, and the gate holds leases of its own, voided only by the live grant ids a reply carries; a
    post-trade call's reply, with the live ids as they were when the host applied it, waits until delivered. Nothing
    drains the gate (an actor cannot call back). A trade print reaches the host only once the account has a position
    or an order in its symbol (as far as the client has seen: decisions, acceptances, fills); otherwise the host gets
    the symbol's last print with its next call, after the call's reports."""

    def __init__(self, inner: LocalShard) -> None:
        self.inner = inner
        self.leases: dict[str, Lease] = {}
        self.replies: list[Delivered] = []
        self.played = set(inner.state(ACC).exposed_symbols())  # symbols whose prints the host is sent
        self.last: dict[str, TradePrinted] = {}
        self.missed: set[str] = set()

    def accounts(self) -> list[str]:
        return self.inner.accounts()

    def attach_drain(self, account: str, drain: Callable[[], None]) -> None:
        pass

    def report_spent(self, events: list[AccountEvent]) -> None:
        self.played.update(e.symbol for e in events if type(e) is OrderAccepted)
        self.inner.report_spent(events)

    def catch_up(self) -> None:
        """The last print of each symbol the host missed (sent ahead of its next call)."""
        for symbol in sorted(self.missed):
            p = self.last[symbol]
            self.inner.mark(symbol, p.price, p.ts_ns)
        self.missed.clear()

    def _called(self, reports: list[AccountEvent]) -> None:
        """A call reaches the host: its reports first, then the prints it missed."""
        self.report_spent(reports)
        self.catch_up()

    def gate_decide(self, reports: list[AccountEvent], call: Decide) -> Any:
        self._called(reports)
        self.played.update(cmd.symbol for cmd, _, _ in call.items)
        decisions, granted = self.inner.gate_decide([], call)
        return decisions, self._reply(granted, self._live())

    def gate_check_replace(self, reports: list[AccountEvent], call: CheckReplace) -> RejectReason:
        self._called(reports)
        reason = self.inner.gate_check_replace([], call)
        self._reply({}, self._live())
        return reason

    def gate_settle(self, reports: list[AccountEvent], call: Settle) -> Delivered:
        self.played.update(e.symbol for e in reports if type(e) is OrderAccepted)
        self.played.update(symbol for e in call.events if (symbol := getattr(e, "symbol", None)) is not None)
        sent = [p for p in call.prints if p.symbol in self.played]
        for p in call.prints:
            self.last[p.symbol] = p
            if p.symbol not in self.played:
                self.missed.add(p.symbol)
        granted: dict[str, Allowance | None] = {}
        if call.events or sent or any(not ask.held for ask in call.asks.values()):  # the call reaches the host
            self._called(reports)
            granted = self.inner.gate_settle([], Settle(call.events, sent, call.asks, call.wal)).result()
        else:
            self.inner.report_spent(reports)
        live = self._live()
        answer = Delivered(lambda: self._reply(granted, live))
        self.replies.append(answer)
        return answer

    def gate_top_up(self, call: TopUp) -> Any:
        return self.inner.gate_top_up(call)

    def gate_return(self, reports: list[AccountEvent], call: ReturnAllowance) -> None:
        self._drop(call.account)
        self._called(reports)
        self.inner.gate_return([], call)

    def gate_operate(self, reports: list[AccountEvent], call: Operate) -> list[int]:
        self._drop(call.command.account)
        self._called(reports)
        working = self.inner.gate_operate([], call)
        self._reply({}, self._live())
        return working

    def gate_resync(self, reports: list[AccountEvent], call: Resync) -> None:
        self._drop(call.account)
        self._called(reports)
        self.inner.gate_resync([], call)

    def deliver(self, n: int) -> None:
        """The oldest `n` replies not yet in arrive."""
        waiting = [r for r in self.replies if not r.arrived]
        for r in waiting[:n]:
            r.arrived = True
        self.replies = [r for r in self.replies if not r.arrived]

    def _live(self) -> dict[str, int]:
        return {a: self.inner.state(a).allowance_id for a in self.inner.accounts()}

    def _drop(self, account: str) -> None:
        lease = self.leases.pop(account, None)
        if lease is not None:
            lease.void = True

    def _reply(self, granted: dict[str, Allowance | None], live: dict[str, int]) -> dict[str, Allowance | None]:
        for account, grant_id in live.items():
            lease = self.leases.get(account)
            if lease is not None and lease.grant_id != grant_id:
                self._drop(account)
        out: dict[str, Allowance | None] = {}
        for account, a in granted.items():
            self._drop(account)
            if a is None:
                out[account] = None
                continue
            lease = self.leases[account] = Lease(account, a.grant.grant_id)
            out[account] = Allowance(a.grant, a.limits, a.cl_ord_ids, lease, a.exposed)
        return out


class MemoryLog:
    """The write-ahead log, in memory."""

    def __init__(self) -> None:
        self.entries = 0

    def write(self, account: str, records: Any) -> str:
        return self.write_many([(account, records)])[0]

    def write_many(self, entries: Any) -> list[str]:
        ids = []
        for _ in entries:
            self.entries += 1
            ids.append(f"1-{self.entries}")
        return ids


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
    check_history(data, remote=False)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_reserved_never_accepts_what_strict_rejects_while_post_trade_answers_are_on_their_way(
    data: st.DataObject,
) -> None:
    check_history(data, remote=True)


def check_history(data: st.DataObject, remote: bool) -> None:
    limits_at = data.draw(st.integers(0, len(LIMITS) - 1))
    mirror = AccountState(ACC, LIMITS[limits_at], REG)
    host = LocalShard([AccountState(ACC, LIMITS[limits_at], REG)])
    via = Remote(host) if remote else host
    group = remote and data.draw(st.booleans())  # group commit: the log's entries written once per batch
    gate = AllowanceGate(via, REG, [ACC], data.draw(REQUESTS), batch=data.draw(st.integers(1, 4)),  # type: ignore[arg-type]
                         low_orders=data.draw(st.sampled_from([0, 1, 3, 6])),
                         log=MemoryLog() if remote else None, group_commit=group)  # fmt: skip
    symbols = (*SYMBOLS, UNPRICED) if remote else SYMBOLS
    ops = REMOTE_OPS if remote else OPS
    ts = 0
    next_id = 1
    exec_id = 1
    first_limits = LIMITS[limits_at]
    local = 0
    local_replaces = 0

    def both(event: Any) -> None:
        gate.on_events([event])
        mirror.apply(event)

    for sym in SYMBOLS:
        price = data.draw(PRICES[sym])
        host.mark(sym, price, ts)
        mirror.mark(sym, price, ts)
    for _ in range(data.draw(st.integers(1, 50))):
        ts += data.draw(st.sampled_from([0, 0, 1, 1, 50_000, 200_000, 1_000_000, 15_000_000]))
        op = data.draw(ops)
        working = mirror.working_orders()
        if op == "submit":
            sym = data.draw(st.sampled_from(symbols))
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
            strict_reason = mirror.decide_replace(cmd, order.order_id, ts)
            before = gate.local_replaces
            reason = gate.decide_replace(cmd, order.order_id, ts, order.ord_type)
            if gate.local_replaces > before:  # accepted within the allowance: strict mode accepts it too
                assert strict_reason is RejectReason.NONE, (cmd, strict_reason)
                local_replaces += 1
            assert reason == strict_reason  # and a host check is the strict check on the same history
            if reason is RejectReason.NONE:
                both(OrderReplaced(order.order_id, cmd.cl_ord_id, order.cl_ord_id, ACC, order.symbol, qty, price,
                                   qty - filled, ts))  # fmt: skip
            next_id += 1
        elif op in ("mark", "print"):
            sym = data.draw(st.sampled_from(symbols))
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
            admin = gate if remote else host  # over Ray, operator changes go through the gate
            if which == 0:
                on = data.draw(st.booleans())
                admin.set_kill_switch(ACC, on, ts)
                mirror.set_kill_switch(on, ts)
            elif which == 1:
                trading = data.draw(st.sampled_from(TradingState))
                admin.set_trading_state(ACC, trading, ts)
                mirror.set_trading_state(trading, ts)
            elif which == 2:
                limits_at = (limits_at + 1) % len(LIMITS)
                admin.set_limits(ACC, LIMITS[limits_at], ts)
                mirror.set_limits(LIMITS[limits_at], ts)
            elif which == 3:
                admin.start_day(ACC, ts)
                mirror.start_day(ts)
            else:
                admin.revoke_allowance(ACC, ts)
        elif op == "deliver":
            assert isinstance(via, Remote)
            via.deliver(data.draw(st.integers(1, 3)))
        elif op == "flush":
            gate.flush()
            if isinstance(via, Remote):  # as the host's next call would
                via.catch_up()
            assert comparable(host.state(ACC).snapshot()) == comparable(mirror.snapshot())
            assert_certified(host.state(ACC))
        elif op == "give_back":
            gate.give_back(ACC)
        elif op == "step":  # a post-trade step with nothing to settle: an allowance running low is topped up
            gate.on_events([])
        if group:  # each op is a batch of the sequencer: sealed, its write made, the settles it waited for sent
            write = gate.seal()
            if write is not None:
                write()
            gate.flush_written()
    event(f"local accepts: {min(local, 5)}{'+' if local >= 5 else ''}")
    event(f"top-ups: {min(gate.top_ups, 2)}{'+' if gate.top_ups >= 2 else ''}")
    event(f"local replaces: {min(local_replaces, 2)}{'+' if local_replaces >= 2 else ''}")
    event(f"replaces joined to their spend: {min(gate.replaces_joined, 2)}{'+' if gate.replaces_joined >= 2 else ''}")

    gate.flush()
    if isinstance(via, Remote):
        via.catch_up()
    state = host.state(ACC)
    assert comparable(state.snapshot()) == comparable(mirror.snapshot())
    assert_certified(state)
    replayed = AccountState(ACC, first_limits, REG)
    replayed.apply_all(host.events(ACC))
    assert replayed.state_hash() == state.state_hash()
    assert AccountState.restore(state.snapshot(), REG).state_hash() == state.state_hash()
