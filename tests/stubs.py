"""Hand-written stand-ins for adapters in unit tests of the core (never for Redis, ClickHouse, QuickFIX or Ray)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from oms.core.model.enums import OrdType, RejectReason, TradingState
from oms.core.model.messages import Message, OrderAccepted, OrderRejected, ReplaceOrder, SubmitOrder, TradePrinted
from risk.limits import AccountLimits


class RecordingGate:
    """A risk gate that accepts everything except what `deny` names, and records what it was told."""

    def __init__(self, deny: dict[str, RejectReason] | None = None) -> None:
        self.deny = deny or {}  # ClOrdID -> reason to reject it with
        self.seen: list[Message] = []
        self.journal: list[Message] = []  # what an account journal would hold: acceptances, then what it was told
        self.killed: dict[str, bool] = {}
        self.states: dict[str, TradingState] = {}
        self.quotes: dict[str, tuple[int, int]] = {}  # symbol -> the last (bid, ask) the engine gave
        self.limits: dict[str, AccountLimits] = {}  # the limits an operator set, per account
        self.replace_checks: list[tuple[str, OrdType]] = []  # (ClOrdID, the order's type) of each replace asked

    def decide(self, cmd: SubmitOrder, order_id: int, now_ns: int) -> OrderAccepted | OrderRejected:
        reason = RejectReason.KILL_SWITCH if self.killed.get(cmd.account) else self.deny.get(cmd.cl_ord_id)
        if reason is None and self.states.get(cmd.account) is TradingState.HALTED:
            reason = RejectReason.HALTED
        if reason is not None:
            return OrderRejected.of(cmd, order_id, reason, reason.name, now_ns)
        accepted = OrderAccepted(
            order_id, cmd.cl_ord_id, cmd.account, cmd.symbol, cmd.side, cmd.ord_type, cmd.tif, cmd.qty, cmd.price,
            now_ns, cmd.stop_price, cmd.session,
        )  # fmt: skip
        self.journal.append(accepted)
        return accepted

    def decide_replace(self, cmd: ReplaceOrder, order_id: int, now_ns: int, ord_type: OrdType) -> RejectReason:
        self.replace_checks.append((cmd.cl_ord_id, ord_type))
        return self.deny.get(cmd.cl_ord_id, RejectReason.NONE)

    def on_events(self, events: Iterable[Message]) -> None:
        events = list(events)
        self.seen.extend(events)
        self.journal += [e for e in events if not isinstance(e, TradePrinted)]

    def set_kill_switch(self, account: str, on: bool, now_ns: int) -> None:
        self.killed[account] = on

    def set_trading_state(self, account: str, trading_state: TradingState, now_ns: int) -> None:
        self.states[account] = trading_state

    def quote(self, symbol: str, bid: int, ask: int, now_ns: int) -> None:
        self.quotes[symbol] = (bid, ask)

    def set_limits(self, account: str, limits: AccountLimits, now_ns: int) -> None:
        self.limits[account] = limits

    def accounts(self) -> list[str]:
        return ["ACC1", "ACC2"]


class HeldWrites:
    """A sequencer seal (`Sequencer(seal=...)`, `add_seal`) whose write-aheads wait while `hold` is set, until
    `release` is: a journal slowing down, as the sequencer and its adapters see it. (The real journal's stalls are
    tested with a stopped Redis: tests/integration/test_faults.py.) `writing` is set once a held write has begun."""

    def __init__(self, hold: bool = True) -> None:
        self.hold, self.release, self.writing = threading.Event(), threading.Event(), threading.Event()
        if hold:
            self.hold.set()

    def seal(self) -> Callable[[], None]:
        def write() -> None:
            if self.hold.is_set():
                self.writing.set()
                self.release.wait(10)

        return write
