"""The ports an `AllowanceGate` uses (`Shard`: the host that owns the accounts; `WriteAhead`: where local
acceptances are made durable) and `LocalShard`, the in-process host (see docs/reserved.md)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Protocol

from oms.core.accounts import AccountEvent, AccountState, AllowanceRequest, AllowanceToppedUp
from oms.core.model.enums import RejectReason
from oms.core.model.messages import OrderRejected, ReplaceOrder
from oms.core.reserved.allowance import Allowance, AllowanceDesk, Answer, GrantAsk, Ready, serve_asks
from oms.core.reserved.commands import (
    CheckReplace,
    Decide,
    Decision,
    Item,
    Operate,
    OperatorCommand,
    OperatorMethods,
    Resync,
    ReturnAllowance,
    Settle,
    TopUp,
    apply_operator,
)

__all__ = ["LocalShard", "Shard", "WriteAhead"]


class WriteAhead(Protocol):
    """Where each local acceptance is made durable before it is returned (`oms.infra.redis.reportlog.ReportLog`)."""

    def write(self, account: str, records: Sequence[AccountEvent]) -> str:
        """Store `records` as one entry of `account`'s log and return the entry's id; raise if it is not stored."""
        ...

    def write_many(self, entries: Sequence[tuple[str, Sequence[AccountEvent]]]) -> list[str]:
        """Store each (account, records) as one entry, all in one round trip; their ids, in order. Raise if any is
        not stored (entries before it may be)."""
        ...

    def send_many(self, entries: Sequence[tuple[str, Sequence[AccountEvent]]]) -> Callable[[], list[str]]:
        """`write_many` started now and finished later: the entries go now, the returned call waits for their ids
        (raising as `write_many` does). Writes land in the order they were started or made."""
        ...


class Shard(Protocol):
    """What an AllowanceGate needs from the host that owns the accounts (LocalShard, AccountShard, ShardClient).

    Each `gate_*` call takes its typed call (`oms.core.reserved.commands.GateCall`) and first applies `reports` (the
    gate's queued AllowanceSpent + OrderAccepted pairs), then does its work; `report_spent` may be asynchronous but
    reaches the host before any later call of the same gate. So may `gate_settle`, whose answer the gate takes
    later (it raises at once, or from `result()`, when the host did not take the call).
    """

    def accounts(self) -> list[str]: ...

    def attach_drain(self, account: str, drain: Callable[[], None]) -> None: ...

    def report_spent(self, events: list[AccountEvent]) -> None: ...

    def gate_decide(
        self, reports: list[AccountEvent], call: Decide
    ) -> tuple[list[Decision], dict[str, Allowance | None]]: ...

    def gate_check_replace(self, reports: list[AccountEvent], call: CheckReplace) -> RejectReason: ...

    def gate_settle(self, reports: list[AccountEvent], call: Settle) -> Answer[dict[str, Allowance | None]]: ...

    def gate_top_up(self, call: TopUp) -> Answer[AllowanceToppedUp | None]: ...

    def gate_return(self, reports: list[AccountEvent], call: ReturnAllowance) -> None: ...

    def gate_operate(self, reports: list[AccountEvent], call: Operate) -> list[int]: ...

    def gate_resync(self, reports: list[AccountEvent], call: Resync) -> None: ...


class LocalShard(OperatorMethods):
    """Accounts in this process, no journal: every applied event is appended to `events(account)` instead.

    The gate's calls (`Shard`) plus the operator commands. Marks reach every account (so each account's
    reference is the tape's). Everything that does not come from the account's gate drains the gate first (see
    docs/reserved.md).
    """

    def __init__(self, states: Iterable[AccountState]) -> None:
        self._states = {s.account: s for s in states}
        self._log: dict[str, list[AccountEvent]] = {a: [] for a in self._states}
        self._desk = AllowanceDesk()

    # -- queries --

    def accounts(self) -> list[str]:
        return sorted(self._states)

    def state(self, account: str) -> AccountState:
        return self._states[account]

    def events(self, account: str) -> list[AccountEvent]:
        """Every event applied to `account` here, in order: its journal."""
        return self._log[account]

    # -- what the gate calls --

    def attach_drain(self, account: str, drain: Callable[[], None]) -> None:
        self._desk.attach_drain(account, drain)

    def gate_decide(
        self, reports: list[AccountEvent], call: Decide
    ) -> tuple[list[Decision], dict[str, Allowance | None]]:
        self.report_spent(reports)
        decisions = self.submit_batch(call.items, call.quotes)
        return decisions, serve_asks(self._states, call.asks, self._grant)

    def gate_check_replace(self, reports: list[AccountEvent], call: CheckReplace) -> RejectReason:
        self.report_spent(reports)
        return self.check_replace(call.cmd, call.order_id, call.now_ns)

    def gate_settle(self, reports: list[AccountEvent], call: Settle) -> Ready[dict[str, Allowance | None]]:
        self.report_spent(reports)
        self.apply_batch(call.events)
        for p in call.prints:
            self.mark(p.symbol, p.price, p.ts_ns)
        return Ready(serve_asks(self._states, call.asks, self._grant))

    def gate_top_up(self, call: TopUp) -> Ready[AllowanceToppedUp | None]:
        account = call.account
        state = self._states[account]
        self._desk.drain(account)
        event = state.top_up_allowance(call.grant_id, call.request, call.ts_ns)
        if event is not None:
            self._log[account].append(event)
        self._desk.sync(state)
        return Ready(event)

    def gate_return(self, reports: list[AccountEvent], call: ReturnAllowance) -> None:
        self.report_spent(reports)
        self.return_allowance(call.account, call.grant_id, call.ts_ns)

    def gate_operate(self, reports: list[AccountEvent], call: Operate) -> list[int]:
        self.report_spent(reports)
        return self.operate(call.command)

    def gate_resync(self, reports: list[AccountEvent], call: Resync) -> None:
        """In this process every call succeeds or raises at once: there is nothing to rebuild from."""
        self.report_spent(reports)

    def submit_batch(self, items: list[Item], quotes: Mapping[str, tuple[int, int]] | None = None) -> list[Decision]:
        """Strict decisions, each applied before the next is made; `quotes` as in `Decide`."""
        out: list[Decision] = []
        for cmd, order_id, now_ns in items:
            state = self._states.get(cmd.account)
            if state is None:
                reason = RejectReason.UNKNOWN_ACCOUNT
                out.append(OrderRejected.of(cmd, order_id, reason, reason.name, now_ns))
                continue
            self._desk.drain(cmd.account)
            if (quoted := state.quote_for(cmd, quotes, now_ns)) is not None:
                self._log[cmd.account].append(quoted)
            decision = state.decide(cmd, order_id, now_ns)
            self._apply(state, [decision])
            out.append(decision)
        return out

    def check_replace(self, cmd: ReplaceOrder, order_id: int, now_ns: int) -> RejectReason:
        state = self._states.get(cmd.account)
        if state is None:
            return RejectReason.UNKNOWN_ACCOUNT
        self._desk.drain(cmd.account)
        return state.decide_replace(cmd, order_id, now_ns)

    def apply_batch(self, events: list[AccountEvent]) -> None:
        for event in events:
            state = self._states[event.account]
            self._desk.drain(event.account)
            self._apply(state, [event])

    def mark(self, symbol: str, price: int, ts_ns: int) -> None:
        for account, state in self._states.items():
            if state.reference_price(symbol) != price:
                self._desk.drain(account)
                self._log[account].append(state.mark(symbol, price, ts_ns))
                self._desk.sync(state)

    def grant_allowance(self, account: str, request: AllowanceRequest, ts_ns: int) -> Allowance | None:
        return self._grant(account, GrantAsk(request, ts_ns))

    def report_spent(self, events: list[AccountEvent]) -> None:
        """The gate's reports: AllowanceSpent + OrderAccepted pairs (no drain: they are the queue)."""
        for event in events:
            self._apply(self._states[event.account], [event])

    def return_allowance(self, account: str, grant_id: int, ts_ns: int) -> None:
        state = self._states[account]
        self._log[account].append(state.return_allowance(grant_id, ts_ns))
        self._desk.sync(state)

    # -- operator commands (`OperatorMethods` builds them): drain the gate, then apply --

    def operate(self, command: OperatorCommand) -> list[int]:
        """Drain the account's gate, then apply `command`; returns the account's working orders (to cancel, after a
        kill switch). KeyError for an account not here."""
        account = command.account
        self._desk.drain(account)
        state = self._states[account]
        self._log[account].append(apply_operator(state, command))
        self._desk.sync(state)
        return state.working_orders()

    # -- internals --

    def _grant(self, account: str, ask: GrantAsk) -> Allowance | None:
        state = self._states[account]
        self._desk.drain(account)
        event = state.grant_allowance(ask.request, ask.ts_ns)
        if event is not None:
            self._log[account].append(event)
        return self._desk.issue(state, event, ask.with_ids)

    def _apply(self, state: AccountState, events: list[AccountEvent]) -> None:
        for event in events:
            state.apply(event)
            self._log[state.account].append(event)
        self._desk.sync(state)
