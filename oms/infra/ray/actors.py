"""Account actors: the one place an account's state changes, and the engine's risk gate over them.

`AccountShard` holds the `AccountState` of one or more accounts (several accounts may share one actor: each Ray actor
is a process of its own, ~80 MiB). Every event it decides or is told about is appended to the account's journal
before it is applied to memory or answered, so a reply means durable. On start it rebuilds every account from the
journal (snapshot + replay), then journals the reserved gate's acceptances still in its write-ahead log
(`oms.infra.redis.reportlog`: acknowledged, their reports lost or still on their way); a host that Ray restarts after a
crash therefore continues exactly where the journal ends, and the state hash it reports equals that of a fresh replay.

If an append fails, or an event cannot be applied, the host rebuilds the accounts the call touched from the journal
(dropping what was not written) and raises: the caller gets an error, never an ack for an unjournaled decision.
Each call costs one journal append (one round trip, all or nothing) for every account it touches, however much it
carries.

Trade prints mark only the accounts with a position, a working order or an allowance in the symbol (an index kept
as events are applied); the others catch up with the last print when they next order or are granted an allowance.

`AccountActor` is `AccountShard` as a named, restartable Ray actor in the `oms` namespace.

Reserved mode (`oms.core.reserved`): `grant_allowance`, `report_spent`, `top_up`, `return_allowance` and the operator
changes journal allowance events like every other event. AccountShard is an `oms.core.reserved.Shard` in process
(the `gate_*` calls; the `Lease` of a grant is voided as soon as the account drops it, and a gate attached with
`attach_drain` is drained before anything not from the gate is applied). Over Ray, `ShardClient` is the
Shard: it calls `for_gate`, whose reply also carries every account's live grant id.

`RayAllowanceGate` is the engine's gate over the actors: strict accounts make one round trip per decision; reserved ones
(`build_gate` picks them by their configured `risk_mode`) decide locally within allowances (`oms.core.reserved`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import msgspec

from oms.core.accounts import (
    AccountEvent,
    AccountSnapshot,
    AccountState,
    AllowanceGranted,
    AllowanceRequest,
    AllowanceSpent,
    AllowanceToppedUp,
    MarketPrices,
    StaleAllowance,
)
from oms.core.model.enums import RejectReason, RiskMode, Side, TradingState
from oms.core.model.instruments import InstrumentRegistry
from oms.core.model.messages import OrderAccepted, OrderRejected, ReplaceOrder, SubmitOrder, TradePrinted
from oms.core.reserved import Allowance, AllowanceDesk, AllowanceGate, GrantAsk, Lease, Ready, admin, serve_asks
from oms.infra.redis.journal import Journal
from oms.infra.redis.reportlog import ReportLog, after
from oms.infra.redis.server import make_client
from risk.limits import AccountLimits, RiskConfig, load_risk_config
from risk.reasons import describe

__all__ = [
    "AccountShard",
    "AllowanceGate",
    "RayAllowanceGate",
    "ShardClient",
    "ShardConfig",
    "UnknownAccount",
    "account_actor_class",
    "build_gate",
    "summary_reader",
]

log = logging.getLogger(__name__)

R = TypeVar("R")
Decision = OrderAccepted | OrderRejected
Item = tuple[SubmitOrder, int, int]  # (command, order id, now_ns)
Mark = tuple[str, int, int]  # (symbol, price, ts_ns) of a trade print
Touched = dict[str, list[AccountEvent]]  # account -> events applied in memory, to journal at the end of the call
Granted = dict[str, tuple[AllowanceGranted | None, bool]]  # account -> (grant event, ship ClOrdIDs)


# Batches cross Ray as msgpack bytes (`pack`): a list of structs pickles ~15x slower, and a gate pays that on the
# engine's thread for every report it sends.
_packer = msgspec.msgpack.Encoder()
_events_decoder = msgspec.msgpack.Decoder(list[AccountEvent])
_items_decoder = msgspec.msgpack.Decoder(list[tuple[SubmitOrder, int, int]])
_decisions_decoder = msgspec.msgpack.Decoder(list[OrderAccepted | OrderRejected])


def pack(batch: Sequence[Any]) -> bytes:
    """Events, (order, order id, now) items or decisions as msgpack, for the `*_packed` calls and their answers."""
    return _packer.encode(batch)


def unpack_decisions(data: bytes) -> list[Decision]:
    """The answer of `AccountShard.submit_packed`."""
    return _decisions_decoder.decode(data)


def _events(batch: list[AccountEvent] | bytes) -> list[AccountEvent]:
    return _events_decoder.decode(batch) if isinstance(batch, bytes) else batch


#: What `AccountShard.for_gate` runs for a remote gate.
GATE_CALLS = frozenset({"gate_decide", "gate_check_replace", "gate_settle", "gate_return", "gate_operate"})


class UnknownAccount(KeyError):
    """A call named an account this host does not own."""


class ShardConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What every account host needs to find its configuration and its journal."""

    redis_url: str
    instruments_path: str
    risk_path: str
    snapshot_every: int = 1000  # journal records between snapshots of an account


class AccountShard:
    """Owns the state of `accounts`; decisions and updates arrive in batches and leave journaled."""

    def __init__(self, accounts: list[str], config: ShardConfig) -> None:
        """Load configuration and rebuild each account from its journal; raises on an account with no limits."""
        self._config = config
        self._instruments = InstrumentRegistry.load(config.instruments_path)
        self._risk: RiskConfig = load_risk_config(config.risk_path, self._instruments)
        self._client = make_client(config.redis_url)  # thread-safe; each account's journal object has one user
        self._journal: Journal[AccountEvent] = Journal(self._client, AccountEvent, snapshot_type=AccountSnapshot)
        self._market = MarketPrices()
        self._states: dict[str, AccountState] = {}
        self._since_snapshot: dict[str, int] = {}
        self._in_play: dict[str, set[str]] = {}  # symbol -> accounts that may hold something in it (a superset)
        self._desk = AllowanceDesk()
        self._wal: ReportLog[AccountEvent] = ReportLog(self._client, AccountEvent)
        self._floor: dict[str, str] = {}  # per account: the log id up to which the gate's reports are journaled
        self._settles: dict[str, str] = {}  # per account: the log id the batch being run reached
        for account in accounts:
            if self._risk.limits_for(account) is None:
                raise UnknownAccount(f"account {account!r} has no limits in {config.risk_path}")
            self._states[account] = self._recover(account)
            self._since_snapshot[account] = 0

    # -- COMMANDS --

    def submit_batch(self, items: list[Item]) -> list[Decision]:
        """Decide each (command, order id, now) in order; each decision sees the ones before it. Journaled first."""
        return self._run(lambda touched: self._decide(items, touched))

    def submit_packed(self, data: bytes) -> bytes:
        """`submit_batch` with the items and the decisions packed (`pack`, `unpack_decisions`): for large batches."""
        items = _items_decoder.decode(data)
        return pack(self._run(lambda touched: self._decide(items, touched)))

    def check_replace(self, cmd: ReplaceOrder, order_id: int, now_ns: int) -> RejectReason:
        """RejectReason.NONE when the replace may go to the venue (nothing changes until the venue answers)."""
        state = self._states.get(cmd.account)
        if state is None:
            return RejectReason.UNKNOWN_ACCOUNT
        return state.decide_replace(cmd, order_id, now_ns)

    def apply_batch(self, events: list[AccountEvent] | bytes) -> None:
        """Journal, then apply, post-trade events (fills, cancels, rejects, replaces, expiries, marks, admin); a
        list of them or `pack`ed."""
        batch = _events(events)
        self._run(lambda touched: self._apply_events(batch, touched))

    def mark(self, symbol: str, price: int, ts_ns: int) -> None:
        """A trade printed at `price`: marks the accounts trading `symbol` now, the others when they next order."""
        self._run(lambda touched: self._mark(symbol, price, ts_ns, touched))

    def set_kill_switch(self, account: str, on: bool, ts_ns: int) -> list[int]:
        """Block (or unblock) new orders of `account`; returns its working order ids for the caller to cancel."""
        return self.operate(account, "set_kill_switch", (on,), ts_ns)

    def set_limits(self, account: str, limits: AccountLimits, ts_ns: int) -> None:
        self.operate(account, "set_limits", (limits,), ts_ns)

    def set_trading_state(self, account: str, trading_state: TradingState, ts_ns: int) -> None:
        self.operate(account, "set_trading_state", (trading_state,), ts_ns)

    def start_day(self, account: str, ts_ns: int) -> None:
        self.operate(account, "start_day", (), ts_ns)

    def revoke_allowance(self, account: str, ts_ns: int) -> None:
        """Operator: void whatever allowance `account` has out (after draining its in-process gate)."""
        self.operate(account, "revoke_allowance", (), ts_ns)

    def operate(self, account: str, op: str, args: tuple[Any, ...], ts_ns: int) -> list[int]:
        """Operator change `op` (`oms.core.reserved.ADMIN_OPS`) on `account`, journaled; returns its working orders.
        A gate over Ray must make the change itself (`AllowanceGate.set_kill_switch`, ...): see `oms.core.reserved`."""
        return self._run(lambda touched: self._operate(account, op, args, ts_ns, touched))

    # -- RESERVED MODE --

    def attach_drain(self, account: str, drain: Callable[[], None]) -> None:
        """In-process gates only: `drain()` hands the gate's queued reports to `report_spent` before it returns."""
        self._state(account)
        self._desk.attach_drain(account, drain)

    def grant_allowance(self, account: str, request: AllowanceRequest, ts_ns: int) -> Allowance | None:
        """Grant `account` an allowance (journaled); None when it can grant nothing now."""
        self._state(account)
        ask = GrantAsk(request, ts_ns)
        granted = self._run(lambda touched: {account: (self._grant(account, ask, touched), True)})
        return self._issue(granted)[account]

    def report_spent(self, events: list[AccountEvent] | bytes) -> None:
        """A gate's reports (AllowanceSpent + OrderAccepted pairs, local OrderRejected), a list or `pack`ed:
        journaled, then applied. A spend against a void grant raises StaleAllowance and nothing of the batch is kept
        for that account."""
        batch = _events(events)
        self._run(lambda touched: self._report(batch, touched))

    def top_up(self, account: str, grant_id: int, request: AllowanceRequest, ts_ns: int) -> AllowanceToppedUp | None:
        """More of the live grant `grant_id` (journaled), see `AccountState.top_up_allowance`; None: nothing."""
        state = self._state(account)

        def work(touched: Touched) -> AllowanceToppedUp | None:
            self._desk.drain(account)
            events = touched.setdefault(account, [])
            event = state.top_up_allowance(grant_id, request, ts_ns)
            if event is not None:
                events.append(event)
            return event

        return self._run(work)

    def return_allowance(self, account: str, grant_id: int, ts_ns: int) -> None:
        state = self._state(account)
        self._run(lambda touched: touched.setdefault(account, []).append(state.return_allowance(grant_id, ts_ns)))

    # the `oms.core.reserved.Shard` calls: `marks` (prints this host has not seen yet) go first, then `reports`

    def gate_decide(
        self,
        reports: list[AccountEvent] | bytes,
        items: list[Item],
        asks: dict[str, GrantAsk],
        marks: Sequence[Mark] = (),
    ) -> tuple[list[Decision], dict[str, Allowance | None]]:
        def work(touched: Touched) -> tuple[list[Decision], Granted]:
            decisions = self._decide(items, touched)
            return decisions, self._serve(asks, touched)

        decisions, granted = self._gate(marks, reports, work)
        return decisions, self._issue(granted)

    def gate_check_replace(
        self,
        reports: list[AccountEvent] | bytes,
        cmd: ReplaceOrder,
        order_id: int,
        now_ns: int,
        marks: Sequence[Mark] = (),
    ) -> RejectReason:
        if marks or reports:
            self._gate(marks, reports, lambda touched: None)
        return self.check_replace(cmd, order_id, now_ns)

    def gate_settle(
        self,
        reports: list[AccountEvent] | bytes,
        events: list[AccountEvent] | bytes,
        prints: list[TradePrinted] | list[Mark],
        asks: dict[str, GrantAsk],
        marks: Sequence[Mark] = (),
    ) -> dict[str, Allowance | None]:
        """Post-trade `events` (a list or `pack`ed), then `prints` (TradePrinted or (symbol, price, ts_ns)), then
        `asks`."""
        batch = _events(events)

        def work(touched: Touched) -> Granted:
            self._apply_events(batch, touched)
            for p in prints:
                if isinstance(p, TradePrinted):
                    self._mark(p.symbol, p.price, p.ts_ns, touched)
                else:
                    self._mark(*p, touched)
            return self._serve(asks, touched)

        return self._issue(self._gate(marks, reports, work))

    def gate_top_up(
        self, account: str, grant_id: int, request: AllowanceRequest, ts_ns: int
    ) -> Ready[AllowanceToppedUp | None]:
        return Ready(self.top_up(account, grant_id, request, ts_ns))

    def gate_return(
        self, reports: list[AccountEvent] | bytes, account: str, grant_id: int, ts_ns: int, marks: Sequence[Mark] = ()
    ) -> None:
        state = self._state(account)
        self._gate(
            marks,
            reports,
            lambda touched: touched.setdefault(account, []).append(state.return_allowance(grant_id, ts_ns)),
        )

    def gate_operate(
        self,
        reports: list[AccountEvent] | bytes,
        account: str,
        op: str,
        args: tuple[Any, ...],
        ts_ns: int,
        marks: Sequence[Mark] = (),
    ) -> list[int]:
        return self._gate(marks, reports, lambda touched: self._operate(account, op, args, ts_ns, touched))

    def for_gate(self, call: str, marks: Sequence[Mark], *args: Any) -> tuple[Any, dict[str, int]]:
        """A remote gate's call (one of GATE_CALLS) with `marks` first; returns its result and, after it, the live
        grant id (0: none) of every account here, from which the gate voids what the call voided."""
        if call not in GATE_CALLS:
            raise ValueError(f"not a gate call: {call!r}")
        return getattr(self, call)(*args, marks=marks), self.live_grants()

    # -- QUERIES --

    def accounts(self) -> list[str]:
        return sorted(self._states)

    def live_grants(self) -> dict[str, int]:
        """account -> id of its live allowance, 0 when it has none."""
        return {account: state.allowance_id for account, state in self._states.items()}

    def in_play(self) -> list[str]:
        """Symbols some account here has a position, a working order or an allowance in (trade prints matter)."""
        return sorted({s for state in self._states.values() for s in state.symbols_in_play()})

    def pid(self) -> int:
        """The process hosting these accounts (it changes when Ray restarts the actor)."""
        return os.getpid()

    def state_hash(self, account: str) -> str:
        """Digest of the account's whole state; equal hashes mean equal states."""
        return self._state(account).state_hash()

    def replayed_hash(self, account: str) -> str:
        """The hash a fresh rebuild from the journal gives, for comparing with `state_hash`."""
        return self._rebuild(account).state_hash()

    def snapshot(self, account: str) -> AccountSnapshot:
        """The account's whole state (`AccountState.snapshot`)."""
        return self._state(account).snapshot()

    def summary(self, account: str) -> dict[str, object]:
        """Positions, cash, P&L, exposure and trading state of `account`, as plain data."""
        s = self._state(account)
        return {
            "account": account,
            "cash": s.cash,
            "equity": s.equity(),
            "realized": s.realized(),
            "exposure": s.exposure,
            "trading_state": s.trading_state.name,
            "kill_switch": s.kill_switch,
            "positions": {sym: msgspec.to_builtins(p) for sym, p in s.positions().items()},
            "working_orders": s.working_orders(),
            "allowance_id": s.allowance_id,
        }

    # -- INTERNALS: each helper applies in memory and lists what it applied in `touched` --

    def _decide(self, items: list[Item], touched: Touched) -> list[Decision]:
        decisions: list[Decision] = []
        last = self._market.last
        for cmd, order_id, now_ns in items:
            state = self._states.get(cmd.account)
            if state is None:
                reason = RejectReason.UNKNOWN_ACCOUNT
                text = f"account {cmd.account!r} is not known"
                decisions.append(OrderRejected(order_id, cmd.cl_ord_id, cmd.account, cmd.symbol, reason, text, now_ns))
                continue
            events = touched.setdefault(cmd.account, [])
            self._desk.drain(cmd.account)
            px = last.get(cmd.symbol)
            if px is not None and state.reference_price(cmd.symbol) != px:
                events.append(state.mark(cmd.symbol, px, now_ns))  # catch up with the tape before deciding
            decision = state.decide(cmd, order_id, now_ns)
            state.apply(decision)
            events.append(decision)
            if type(decision) is OrderAccepted:
                self._play(cmd.account, cmd.symbol)
            decisions.append(decision)
        return decisions

    def _apply_events(self, events: Iterable[AccountEvent], touched: Touched) -> None:
        for event in events:
            account = getattr(event, "account", None)
            state = self._states.get(account) if account is not None else None
            if state is None:
                raise UnknownAccount(f"event for account {account!r}, not owned here: {event!r}")
            applied = touched.setdefault(account, [])
            self._desk.drain(account)
            state.apply(event)
            applied.append(event)
            symbol = getattr(event, "symbol", None)
            if symbol is not None:
                self._play(account, symbol)

    def _report(self, events: list[AccountEvent], touched: Touched) -> None:
        skip: set[int] = set()
        for event in events:
            account = getattr(event, "account", "")
            state = self._state(account)
            if type(event) is AllowanceSpent and event.wal:
                if not after(event.wal, self._floor.get(account, "0-0")):
                    skip.add(event.order_id)  # journaled from the log when the account was rebuilt
                    continue
                self._floor[account] = self._settles[account] = event.wal
            elif type(event) is OrderAccepted and event.order_id in skip:
                continue
            applied = touched.setdefault(account, [])
            state.apply(event)
            applied.append(event)
            if type(event) is OrderAccepted:
                self._play(account, event.symbol)

    def _mark(self, symbol: str, price: int, ts_ns: int, touched: Touched) -> None:
        self._market.last[symbol] = price
        accounts = self._in_play.get(symbol)
        if not accounts:
            return
        for account in sorted(accounts):
            state = self._states[account]
            if (
                state.position(symbol).qty
                or state.working_qty(symbol, Side.BUY)
                or state.working_qty(symbol, Side.SELL)
                or state.allowance_covers(symbol)
            ):
                self._desk.drain(account)
                touched.setdefault(account, []).append(state.mark(symbol, price, ts_ns))
            else:
                accounts.discard(account)  # it comes back with its next order, fill or grant in the symbol

    def _grant(self, account: str, ask: GrantAsk, touched: Touched) -> AllowanceGranted | None:
        state = self._state(account)
        self._desk.drain(account)
        events = touched.setdefault(account, [])
        last = self._market.last
        for sym in sorted(state.limits.symbols):  # catch up with the tape first, as a strict decision would
            if sym in last and state.reference_price(sym) != last[sym]:
                events.append(state.mark(sym, last[sym], ask.ts_ns))
        granted = state.grant_allowance(ask.request, ask.ts_ns)
        if granted is not None:
            events.append(granted)
            for s in granted.symbols:
                self._play(account, s.symbol)
        return granted

    def _serve(self, asks: dict[str, GrantAsk], touched: Touched) -> Granted:
        """What `asks` call for (see `oms.core.reserved.serve_asks`), granted in memory; issued after the commit."""
        out: Granted = {}

        def grant(account: str, ask: GrantAsk) -> None:
            out[account] = (self._grant(account, ask, touched), ask.with_ids)

        serve_asks(self._states, asks, grant)  # type: ignore[arg-type]
        return out

    def _operate(self, account: str, op: str, args: tuple[Any, ...], ts_ns: int, touched: Touched) -> list[int]:
        state = self._state(account)
        self._desk.drain(account)
        events = touched.setdefault(account, [])
        events.append(admin(state, op, args, ts_ns))
        return state.working_orders()

    def _gate(self, marks: Sequence[Mark], reports: list[AccountEvent] | bytes, work: Callable[[Touched], R]) -> R:
        batch = _events(reports)

        def run(touched: Touched) -> R:
            for symbol, price, ts_ns in marks:
                self._mark(symbol, price, ts_ns, touched)
            self._report(batch, touched)
            return work(touched)

        return self._run(run)

    def _issue(self, granted: Granted) -> dict[str, Allowance | None]:
        """The Allowances for grants made (and journaled) by the call that just committed."""
        return {a: self._desk.issue(self._states[a], event, ids) for a, (event, ids) in granted.items()}

    def _play(self, account: str, symbol: str) -> None:
        accounts = self._in_play.get(symbol)
        if accounts is None:
            self._in_play[symbol] = {account}
        else:
            accounts.add(account)

    def _run(self, work: Callable[[Touched], R]) -> R:
        """`work` in memory, then one journal append per account it touched. If `work` raises, the touched accounts
        are rebuilt from the journal (memory must not run ahead of it) and the error goes to the caller."""
        touched: Touched = {}
        try:
            result = work(touched)
        except Exception:
            self._settles.clear()
            for account in touched:
                self._states[account] = self._recover(account)
            self._desk.void_all()
            raise
        self._commit(touched)
        return result

    def _state(self, account: str) -> AccountState:
        state = self._states.get(account)
        if state is None:
            raise UnknownAccount(f"account {account!r} is not owned here")
        return state

    def _fresh(self, account: str) -> AccountState:
        limits = self._risk.limits_for(account)
        assert limits is not None
        return AccountState(account, limits, self._instruments)

    def _rebuild(self, account: str) -> AccountState:
        """The account as its journal has it."""
        return self._journal.recover(
            account,
            restore=lambda snap: AccountState.restore(snap, self._instruments),
            fresh=lambda: self._fresh(account),
            apply=lambda state, event: state.apply(event),
        )

    def _recover(self, account: str) -> AccountState:
        """The account as its journal has it, then the gate's acceptances still in its write-ahead log, applied and
        journaled (`oms.infra.redis.reportlog`): they were acknowledged, so they happened. Reports of them that arrive
        later are skipped."""
        state = self._rebuild(account)
        entries, reached = self._wal.pending(account)
        if entries:
            events: list[AccountEvent] = []
            for wal, records in entries:
                for event in records:
                    if type(event) is AllowanceSpent:
                        event = msgspec.structs.replace(event, wal=wal)
                        try:
                            state.apply(event)
                        except StaleAllowance:
                            log.warning("account %s: order %s: its grant is gone; the acceptance stands", account,
                                        event.order_id)  # fmt: skip
                            continue
                    else:
                        state.apply(event)
                    events.append(event)
            self._journal.append_many(account, events, settles=(self._wal.key(account), entries[-1][0]))
        self._floor[account] = reached
        for symbol in state.symbols_in_play():
            self._play(account, symbol)
        return state

    def _settled(self, account: str) -> tuple[str, str] | None:
        """What an append of the account's batch deletes from the gate's log (its entries up to the last one
        the batch applied), None when the batch applied none."""
        wal = self._settles.pop(account, None)
        return None if wal is None else (self._wal.key(account), wal)

    def _commit(self, touched: Touched) -> None:
        """Append every touched account's events in one round trip, all or nothing, then snapshot the accounts
        due. If the append fails, the touched accounts are rebuilt from their journals and the error is raised."""
        work = [(account, events, self._settled(account)) for account, events in touched.items() if events]
        self._settles.clear()
        if not work:
            return
        try:
            written = self._journal.append_accounts(work)
        except Exception:
            for account, _, _ in work:
                self._states[account] = self._recover(account)  # memory must not run ahead of the journal
            self._desk.void_all()
            for account, _, _ in work:
                self._desk.sync(self._states[account])
            raise
        for (account, _, _), ids in zip(work, written, strict=True):
            self._desk.sync(self._states[account])
            self._since_snapshot[account] += len(ids)
            if self._since_snapshot[account] >= self._config.snapshot_every:
                self._journal.save_snapshot(account, self._states[account].snapshot(), ids[-1])
                self._since_snapshot[account] = 0


def account_actor_class():
    """`AccountShard` as a Ray actor class: restarted by Ray when it dies, one call at a time, named by the caller."""
    import ray

    return ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=0)(AccountShard)


class _RayAnswer:
    """A top-up on its way back from an actor (`oms.core.reserved.Answer`)."""

    __slots__ = ("_future",)

    def __init__(self, ref: Any) -> None:
        self._future = ref.future()

    def done(self) -> bool:
        return self._future.done()

    def result(self) -> AllowanceToppedUp | None:
        return self._future.result()


class ShardClient:
    """`oms.core.reserved.Shard` over AccountShard actors (several accounts may share one handle).

    Each gate call goes to the actors of the accounts it concerns as one `for_gate` call per actor, all in flight
    at once; reports for other actors go fire-and-forget (`report_spent`), and so does `report_spent` itself. A
    sender's calls to one actor run in the order sent, so every report lands before the next call. Every reply
    carries the live grant ids of that actor's accounts; a lease whose grant is no longer live is voided. The
    fire-and-forget calls are checked at the next synchronous call to the same actor: a failure there (a lost
    report: the actor died) raises, as a failed call does, after voiding that actor's leases. The lost reports'
    acceptances are not lost: the restarted actor journals them from the gate's write-ahead log.

    Trade prints go only to the actors with an account in the symbol (a superset the host keeps from what it sends
    and from each actor's `in_play` at start); the others get the last print of each symbol they missed ahead of
    their next call, before anything there depends on it.
    """

    def __init__(self, actors: Mapping[str, Any]) -> None:
        import ray

        self._ray = ray
        self._actors = dict(actors)
        self._handles = list(dict.fromkeys(self._actors.values()))
        self._accounts_of: dict[Any, list[str]] = {h: [] for h in self._handles}
        for account, h in self._actors.items():
            self._accounts_of[h].append(account)
        self._leases: dict[str, Lease] = {}
        self._sent: dict[Any, list[Any]] = {h: [] for h in self._handles}  # fire-and-forget refs, not yet checked
        self._last: dict[str, Mark] = {}  # symbol -> its latest print
        self._missed: dict[Any, set[str]] = {h: set() for h in self._handles}  # symbols whose last print h lacks
        self._in_play: dict[str, set[Any]] = {}  # symbol -> actors that may have an account in it
        for h, symbols in zip(self._handles, ray.get([h.in_play.remote() for h in self._handles]), strict=True):
            for symbol in symbols:
                self._in_play.setdefault(symbol, set()).add(h)

    # -- Shard --

    def accounts(self) -> list[str]:
        return sorted(self._actors)

    def attach_drain(self, account: str, drain: Callable[[], None]) -> None:
        """Nothing to attach: an actor cannot call back into the engine. The gate's queued reports travel ahead of
        each of its calls instead, and operator changes must go through the gate."""

    def report_spent(self, events: list[AccountEvent]) -> None:
        for h, batch in self._by_actor(events).items():
            self._fire(h, batch)

    def gate_decide(
        self, reports: list[AccountEvent], items: list[Item], asks: dict[str, GrantAsk]
    ) -> tuple[list[Decision], dict[str, Allowance | None]]:
        decisions: list[Decision | None] = [None] * len(items)
        by_actor: dict[Any, list[int]] = {}
        for i, (cmd, order_id, now_ns) in enumerate(items):
            h = self._actors.get(cmd.account)
            if h is None:
                reason = RejectReason.UNKNOWN_ACCOUNT
                decisions[i] = OrderRejected(
                    order_id, cmd.cl_ord_id, cmd.account, cmd.symbol, reason, describe(reason), now_ns
                )
            else:
                by_actor.setdefault(h, []).append(i)
        calls = {h: ("gate_decide", [items[i] for i in idx], self._asks_for(h, asks)) for h, idx in by_actor.items()}
        replies = self._call(reports, calls)
        granted: dict[str, Allowance | None] = {}
        for h, (got, allowances) in replies.items():
            for i, d in zip(by_actor[h], got, strict=True):
                decisions[i] = d
                self._play(h, items[i][0].symbol)
            granted.update(self._take_grants(h, allowances))
        return [d for d in decisions if d is not None], granted

    def gate_check_replace(
        self, reports: list[AccountEvent], cmd: ReplaceOrder, order_id: int, now_ns: int
    ) -> RejectReason:
        h = self._actors.get(cmd.account)
        if h is None:
            self.report_spent(reports)
            return RejectReason.UNKNOWN_ACCOUNT
        return self._call(reports, {h: ("gate_check_replace", cmd, order_id, now_ns)})[h]

    def gate_settle(
        self,
        reports: list[AccountEvent],
        events: list[AccountEvent],
        prints: list[TradePrinted],
        asks: dict[str, GrantAsk],
    ) -> dict[str, Allowance | None]:
        per: dict[Any, tuple[list[AccountEvent], list[Mark]]] = {}
        for e in events:
            h = self._actors.get(e.account)
            if h is None:
                raise UnknownAccount(f"event for account {e.account!r}, which no actor hosts: {e!r}")
            per.setdefault(h, ([], []))[0].append(e)
            symbol = getattr(e, "symbol", None)
            if symbol is not None:
                self._play(h, symbol)
        for p in prints:
            mark = self._last[p.symbol] = (p.symbol, p.price, p.ts_ns)
            playing = self._in_play.get(p.symbol, ())
            for h in self._handles:
                if h in playing:
                    per.setdefault(h, ([], []))[1].append(mark)
                else:
                    self._missed[h].add(p.symbol)
        for account, ask in asks.items():  # an account the gate wants a grant for: its actor is called too
            h = self._actors.get(account)
            if h is not None and not ask.held:
                per.setdefault(h, ([], []))
        calls = {
            h: ("gate_settle", pack(ev) if ev else [], marks, self._asks_for(h, asks)) for h, (ev, marks) in per.items()
        }
        granted: dict[str, Allowance | None] = {}
        for h, allowances in self._call(reports, calls).items():
            granted.update(self._take_grants(h, allowances))
        return granted

    def gate_top_up(self, account: str, grant_id: int, request: AllowanceRequest, ts_ns: int) -> _RayAnswer:
        return _RayAnswer(self._actors[account].top_up.remote(account, grant_id, request, ts_ns))

    def gate_return(self, reports: list[AccountEvent], account: str, grant_id: int, ts_ns: int) -> None:
        self._drop(account)
        h = self._actors[account]
        self._call(reports, {h: ("gate_return", account, grant_id, ts_ns)})

    def gate_operate(
        self, reports: list[AccountEvent], account: str, op: str, args: tuple[Any, ...], ts_ns: int
    ) -> list[int]:
        self._drop(account)  # before anything is sent: the very next decision is strict
        h = self._actors.get(account)
        if h is None:
            raise UnknownAccount(f"account {account!r}: no actor hosts it")
        return self._call(reports, {h: ("gate_operate", account, op, args, ts_ns)})[h]

    def wait_sent(self) -> None:
        """Wait until every fire-and-forget call has been applied by its actor; raise what one raised."""
        for h in self._handles:
            self._check_sent(h, wait=True)

    # -- internals --

    def _call(self, reports: list[AccountEvent], calls: dict[Any, tuple[Any, ...]]) -> dict[Any, Any]:
        """One `for_gate` call per actor in `calls` ((name, *args)), each with the prints it missed and its part
        of `reports` first; the rest of `reports` goes fire-and-forget. Waits for every reply."""
        parts = self._by_actor(reports)
        refs: dict[Any, Any] = {}
        for h, (name, *args) in calls.items():
            marks = [self._last[s] for s in sorted(self._missed[h])]
            self._missed[h].clear()
            part = parts.pop(h, None)
            refs[h] = h.for_gate.remote(name, marks, pack(part) if part else [], *args)
        for h, batch in parts.items():
            self._fire(h, batch)
        try:
            replies = self._ray.get(list(refs.values()))
        except Exception:
            for h in refs:
                self._lost(h)
            raise
        out: dict[Any, Any] = {}
        for h, (result, live) in zip(refs, replies, strict=True):
            for account, grant_id in live.items():
                lease = self._leases.get(account)
                if lease is not None and lease.grant_id != grant_id:
                    self._drop(account)
            out[h] = result
        for h in refs:
            self._check_sent(h, wait=True)
        return out

    def _fire(self, h: Any, batch: list[AccountEvent]) -> None:
        sent = self._sent[h]
        sent.append(h.report_spent.remote(pack(batch)))
        if len(sent) >= 64:
            self._check_sent(h, wait=False)

    def _check_sent(self, h: Any, wait: bool) -> None:
        """Raise what a fire-and-forget call to `h` raised (all of them when `wait`, else those already done)."""
        sent = self._sent[h]
        if not sent:
            return
        if wait:
            done, self._sent[h] = sent, []
        else:
            done, self._sent[h] = self._ray.wait(sent, num_returns=len(sent), timeout=0)
        try:
            self._ray.get(done)
        except Exception as exc:
            self._lost(h)
            exc.add_note("reports of accepted orders may be missing from their accounts' journals")
            raise

    def _lost(self, h: Any) -> None:
        """After a failed call to `h`: void its accounts' leases and resend every print it may have lost."""
        for account in self._accounts_of[h]:
            self._drop(account)
        self._missed[h] = set(self._last)
        self._sent[h] = []

    def _drop(self, account: str) -> None:
        lease = self._leases.pop(account, None)
        if lease is not None:
            lease.void = True

    def _take_grants(self, h: Any, allowances: dict[str, Allowance | None]) -> dict[str, Allowance | None]:
        """The actor's Allowances with a lease of this process (the actor's own leases do not travel)."""
        out: dict[str, Allowance | None] = {}
        for account, a in allowances.items():
            self._drop(account)
            if a is None:
                out[account] = None
                continue
            lease = self._leases[account] = Lease(account, a.grant.grant_id)
            out[account] = Allowance(a.grant, a.limits, a.cl_ord_ids, lease)
            for s in a.grant.symbols:
                self._play(h, s.symbol)
        return out

    def _asks_for(self, h: Any, asks: dict[str, GrantAsk]) -> dict[str, GrantAsk]:
        return {a: ask for a, ask in asks.items() if self._actors.get(a) is h}

    def _by_actor(self, events: list[AccountEvent]) -> dict[Any, list[AccountEvent]]:
        out: dict[Any, list[AccountEvent]] = {}
        for e in events:
            out.setdefault(self._actors[e.account], []).append(e)
        return out

    def _play(self, h: Any, symbol: str) -> None:
        actors = self._in_play.get(symbol)
        if actors is None:
            self._in_play[symbol] = {h}
        else:
            actors.add(h)


#: Reserved accounts over Ray: large grants (each refill costs an actor call) topped up at half.
RAY_REQUEST = AllowanceRequest(orders=256)
RAY_LOW_ORDERS = 128
RAY_BATCH = 64  # order reports per fire-and-forget call: each costs a Ray submission on the engine's thread
RAY_FLUSH_AFTER_NS = 1_000_000  # queued reports older than 1 ms (order clock) go at the next post-trade step


class RayAllowanceGate(AllowanceGate):
    """The OrderManager's risk gate over AccountShard actors.

    Accounts in `reserved` are in reserved mode (`oms.core.reserved`): decided here within allowances their actors
    grant, reports sent without waiting, top-ups asked for when low, revoked at once by a kill switch, a limits or
    trading-state change made through this gate. Every other account is strict: each decision is a round trip to
    its actor. Post-trade events go to the actors of the accounts they concern and are journaled there before
    `on_events` returns, so no fill leaves the OMS ahead of its journal record.
    """

    def __init__(
        self,
        actors: Mapping[str, Any],
        instruments: InstrumentRegistry | None = None,
        reserved: Iterable[str] = (),
        request: AllowanceRequest = RAY_REQUEST,
        batch: int = RAY_BATCH,
        low_orders: int = RAY_LOW_ORDERS,
        flush_after_ns: int | None = RAY_FLUSH_AFTER_NS,
        log: ReportLog[AccountEvent] | None = None,
    ) -> None:
        """`actors`: account -> actor handle (several accounts may share one handle); `instruments` and `log` (on
        the actors' Redis) are needed when `reserved` names accounts; see AllowanceGate for the rest."""
        reserved = sorted(reserved)
        if reserved and (instruments is None or log is None):
            raise ValueError("reserved accounts need the instrument registry and a report log")
        unknown = [a for a in reserved if a not in actors]
        if unknown:
            raise UnknownAccount(f"reserved account {unknown[0]!r} has no actor")
        registry = instruments if instruments is not None else InstrumentRegistry(())
        self._ray_host = ShardClient(actors)
        super().__init__(self._ray_host, registry, reserved, request, batch, low_orders, flush_after_ns, log)

    def close(self) -> None:
        """Return every allowance and report everything, and wait until the actors have journaled it all: call it
        before the actors stop (their journals then hold every order this gate accepted)."""
        super().close()
        self._ray_host.wait_sent()


def summary_reader(actors: Mapping[str, Any]) -> Callable[[str], dict[str, object]]:
    """A function reading one account's `AccountShard.summary` from its actor (one synchronous call per read)."""
    import ray

    return lambda account: ray.get(actors[account].summary.remote(account))


def reserved_accounts(accounts: Iterable[str], risk: RiskConfig) -> list[str]:
    """The accounts among `accounts` whose configured `risk_mode` is reserved."""
    return sorted(a for a in accounts if (lim := risk.limits_for(a)) is not None and lim.risk_mode is RiskMode.RESERVED)


def build_gate(
    actors: Mapping[str, Any], risk: RiskConfig, instruments: InstrumentRegistry, log: ReportLog[AccountEvent]
) -> RayAllowanceGate:
    """The engine's gate over `actors` (account -> handle): each account strict or reserved as its limits say;
    `log` on the actors' Redis."""
    return RayAllowanceGate(actors, instruments, reserved_accounts(actors, risk), log=log)
