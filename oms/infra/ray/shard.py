"""Account shards: the one place an account's state changes.

`AccountShard` holds the `AccountState` of one or more accounts (several accounts may share one actor: each Ray actor
is a process of its own, ~80 MiB). Every event it decides or is told about is appended to the account's journal
before it is applied to memory or answered, so a reply means durable. On start it rebuilds every account from the
journal (snapshot + replay), then journals the reserved gate's acceptances, cancels and expiries still in its
write-ahead log (`oms.infra.redis.reportlog`: reported to clients, their reports to the account lost or still on their
way); a host that Ray restarts after a crash therefore continues exactly where the journal ends, and the state hash
it reports equals that of a fresh replay.

If an append fails, or an event cannot be applied, the host rebuilds the accounts the call touched from the journal
(dropping what was not written) and raises: the caller gets an error, never an ack for an unjournaled decision.
Each call costs one journal append (one round trip, all or nothing) for every account it touches, however much it
carries.

Trade prints mark only the accounts with a position, a working order or an allowance in the symbol (an index kept
as events are applied); the others catch up with the last print when they next order or are granted an allowance.

`account_actor_class()` is `AccountShard` as a restartable Ray actor class; the caller names each actor in the `oms`
namespace.

Reserved mode (`oms.core.reserved`): `grant_allowance`, `report_spent`, `top_up`, `return_allowance` and the operator
changes journal allowance events like every other event. AccountShard is an `oms.core.reserved.Shard` in process
(the `gate_*` calls; the `Lease` of a grant is voided as soon as the account drops it, and a gate attached with
`attach_drain` is drained before anything not from the gate is applied). A gate over Ray reaches it through
`oms.infra.ray.client.ShardClient`, which sends each typed call (`oms.core.reserved.GateCall`) to `serve_gate`, whose
reply also carries every account's live grant id.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TypeVar

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
    account_encoder,
)
from oms.core.model.enums import RejectReason, Side
from oms.core.model.instruments import InstrumentRegistry
from oms.core.model.messages import (
    OrderAccepted,
    OrderCanceled,
    OrderExpired,
    OrderRejected,
    OrderReplaced,
    ReplaceOrder,
    TradePrinted,
)
from oms.core.reserved import Allowance, AllowanceDesk, GrantAsk, Ready, serve_asks
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
from oms.infra.ray.wire import pack, unpack_events, unpack_items, unpack_request
from oms.infra.redis.journal import Journal
from oms.infra.redis.reportlog import ReportLog, after
from oms.infra.redis.server import make_client
from risk.limits import RiskConfig, load_risk_config

__all__ = ["AccountShard", "ShardConfig", "UnknownAccount", "account_actor_class"]

log = logging.getLogger(__name__)
_CLOSING = (OrderCanceled, OrderExpired)  # written ahead by the gate: applied once, whichever copy comes first
_SPENT_ON = (OrderAccepted, OrderReplaced)  # what follows a spend in its write-ahead entry

R = TypeVar("R")
Touched = dict[str, list[AccountEvent]]  # account -> events applied in memory, to journal at the end of the call
Granted = dict[str, tuple[AllowanceGranted | None, bool]]  # account -> (grant event, ship ClOrdIDs)


class UnknownAccount(KeyError):
    """A call named an account this host does not own."""


class ShardConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What every account shard needs to find its configuration and its journal."""

    redis_url: str
    instruments_path: str
    risk_path: str
    snapshot_every: int = 1000  # journal records between snapshots of an account


class AccountShard(OperatorMethods):
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
        # accounts whose journal append failed and whose rebuild failed too (the journal was away): memory may be
        # ahead of the journal and the log may hold entries not journaled; rebuilt before the next call uses them
        self._stale: set[str] = set()
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
        items = unpack_items(data)
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
        batch = unpack_events(events)
        self._run(lambda touched: self._apply_events(batch, touched))

    def mark(self, symbol: str, price: int, ts_ns: int) -> None:
        """A trade printed at `price`: marks the accounts trading `symbol` now, the others when they next order."""
        self._run(lambda touched: self._mark(symbol, price, ts_ns, touched))

    def operate(self, command: OperatorCommand) -> list[int]:
        """Operator change `command`, journaled; returns the account's working orders (`OperatorMethods` offers one
        method per command). A gate over Ray must make the change itself (`AllowanceGate.set_kill_switch`, ...): see
        docs/reserved.md. UnknownAccount for an account not here."""
        return self._run(lambda touched: self._operate(command, touched))

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
        batch = unpack_events(events)
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

    # the `oms.core.reserved.Shard` calls: `reports` go first, then `marks` (the last prints this host has not seen)

    def gate_decide(
        self, reports: list[AccountEvent], call: Decide, marks: Sequence[TradePrinted] = ()
    ) -> tuple[list[Decision], dict[str, Allowance | None]]:
        def work(touched: Touched) -> tuple[list[Decision], Granted]:
            decisions = self._decide(call.items, touched, call.quotes)
            return decisions, self._serve(call.asks, touched)

        decisions, granted = self._gate(marks, reports, work)
        return decisions, self._issue(granted)

    def gate_check_replace(
        self, reports: list[AccountEvent], call: CheckReplace, marks: Sequence[TradePrinted] = ()
    ) -> RejectReason:
        self._catch_up(marks, reports)
        return self.check_replace(call.cmd, call.order_id, call.now_ns)

    def gate_settle(
        self, reports: list[AccountEvent], call: Settle, marks: Sequence[TradePrinted] = ()
    ) -> Ready[dict[str, Allowance | None]]:
        def work(touched: Touched) -> Granted:
            self._apply_events(self._unlogged(call), touched)
            for p in call.prints:
                self._mark(p.symbol, p.price, p.ts_ns, touched)
            return self._serve(call.asks, touched)

        return Ready(self._issue(self._gate(marks, reports, work)))

    def gate_top_up(self, call: TopUp) -> Ready[AllowanceToppedUp | None]:
        return Ready(self.top_up(call.account, call.grant_id, call.request, call.ts_ns))

    def gate_return(
        self, reports: list[AccountEvent], call: ReturnAllowance, marks: Sequence[TradePrinted] = ()
    ) -> None:
        state = self._state(call.account)

        def work(touched: Touched) -> None:
            touched.setdefault(call.account, []).append(state.return_allowance(call.grant_id, call.ts_ns))

        self._gate(marks, reports, work)

    def gate_operate(self, reports: list[AccountEvent], call: Operate, marks: Sequence[TradePrinted] = ()) -> list[int]:
        return self._gate(marks, reports, lambda touched: self._operate(call.command, touched))

    def gate_resync(self, reports: list[AccountEvent], call: Resync, marks: Sequence[TradePrinted] = ()) -> None:
        """The account rebuilt from its journal and the write-ahead log (what the log holds is journaled, once),
        then `reports` (those the log held are skipped) and `marks`: after a call of the gate's failed, memory may
        have run ahead of the journal, and the log may hold what the call carried. The rebuild comes first: an
        append of the reports deletes the log up to their entries, and must not delete one not yet journaled."""
        self._desk.drain(call.account)
        self._states[call.account] = self._recover(call.account)  # first: journals what the log holds, once
        self._stale.discard(call.account)
        self._catch_up(marks, reports)

    def serve_gate(self, packed: bytes) -> tuple[object, dict[str, int]]:
        """A remote gate's call, packed (`oms.infra.ray.wire.pack_request`): the gate's reports, then the prints this
        host missed, then the call itself, dispatched on its type. Returns the call's result and, after it, the
        live grant id (0: none) of every account here, from which the gate voids what the call voided. A request
        that does not decode as a GateRequest raises msgspec.ValidationError before anything is applied."""
        request = unpack_request(packed)
        call, reports, marks = request.call, request.reports, request.marks
        result: object
        match call:
            case Decide():
                result = self.gate_decide(reports, call, marks)
            case CheckReplace():
                result = self.gate_check_replace(reports, call, marks)
            case Settle():
                result = self.gate_settle(reports, call, marks).result()
            case TopUp():
                self._catch_up(marks, reports)
                result = self.top_up(call.account, call.grant_id, call.request, call.ts_ns)
            case ReturnAllowance():
                result = self.gate_return(reports, call, marks)
            case Operate():
                result = self.gate_operate(reports, call, marks)
            case Resync():
                result = self.gate_resync(reports, call, marks)
        return result, self.live_grants()

    # -- QUERIES --

    def accounts(self) -> list[str]:
        return sorted(self._states)

    def live_grants(self) -> dict[str, int]:
        """account -> id of its live allowance, 0 when it has none."""
        return {account: state.allowance_id for account, state in self._states.items()}

    def in_play(self) -> list[str]:
        """Symbols some account here has a position or a working order in: the trade prints that move an account
        here. (A print in a symbol an account only holds an allowance in matters to that allowance's band, which its
        gate checks itself and, when the print breaks it, asks the account for a fresh grant: docs/reserved.md.)"""
        return sorted({s for state in self._states.values() for s in state.exposed_symbols()})

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
            "market_values": {sym: s.market_value(sym) for sym in s.positions()},
            "unrealized": {sym: s.unrealized(sym) for sym in s.positions()},
            "buying_power": s.buying_power(),
            "limits": msgspec.to_builtins(s.limits),
            "drawdown_level": s.drawdown_level().name.lower(),
            "working_orders": s.working_orders(),
            "allowance_id": s.allowance_id,
        }

    # -- INTERNALS: each helper applies in memory and lists what it applied in `touched` --

    def _decide(
        self, items: list[Item], touched: Touched, quotes: Mapping[str, tuple[int, int]] | None = None
    ) -> list[Decision]:
        """Strict decisions, each applied before the next; `quotes` as in `Decide`."""
        decisions: list[Decision] = []
        last = self._market.last
        for cmd, order_id, now_ns in items:
            state = self._states.get(cmd.account)
            if state is None:
                reason = RejectReason.UNKNOWN_ACCOUNT
                text = f"account {cmd.account!r} is not known"
                decisions.append(OrderRejected.of(cmd, order_id, reason, text, now_ns))
                continue
            events = touched.setdefault(cmd.account, [])
            self._desk.drain(cmd.account)
            px = last.get(cmd.symbol)
            if px is not None and state.reference_price(cmd.symbol) != px:
                events.append(state.mark(cmd.symbol, px, now_ns))  # catch up with the tape before deciding
            if (quoted := state.quote_for(cmd, quotes, now_ns)) is not None:
                events.append(quoted)
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

    def _unlogged(self, call: Settle) -> list[AccountEvent]:
        """The settle's events, less those of accounts rebuilt from the log since the gate wrote them there (they
        were journaled then); the append of the others deletes their entries from the log."""
        skip: set[str] = set()
        for account, wal in call.wal.items():
            if not after(wal, self._floor.get(account, "0-0")):
                skip.add(account)
            else:
                self._floor[account] = self._settles[account] = wal
        if not skip:
            return call.events
        return [e for e in call.events if getattr(e, "account", "") not in skip]

    def _report(self, events: list[AccountEvent], touched: Touched) -> None:
        skip: set[int] = set()
        for event in events:
            account = getattr(event, "account", "")
            state = self._state(account)
            if type(event) is AllowanceSpent and event.wal:
                if not after(event.wal, self._floor.get(account, "0-0")):
                    skip.add(event.order_id)  # journaled from the log when the account was rebuilt
                    continue
                skip.discard(event.order_id)
                self._floor[account] = self._settles[account] = event.wal
            elif type(event) in _SPENT_ON and event.order_id in skip:
                continue  # the rest of a skipped spend's entry: the acceptance, or the replace, it covers
            elif type(event) in _CLOSING and state.open_order(event.order_id) is None:
                continue  # its write-ahead entry was journaled when the account was rebuilt
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

    def _operate(self, command: OperatorCommand, touched: Touched) -> list[int]:
        state = self._state(command.account)
        self._desk.drain(command.account)
        touched.setdefault(command.account, []).append(apply_operator(state, command))
        return state.working_orders()

    def _gate(self, marks: Sequence[TradePrinted], reports: list[AccountEvent], work: Callable[[Touched], R]) -> R:
        """`work` after `reports` and then `marks`, in one run: one journal append per account, all or nothing.
        The reports first: they were accepted within grants the missed prints had not voided (a gate checks each
        print against the bands of the accounts it does not send it to, docs/reserved.md), and a mark first could
        void a grant a queued spend was made from."""

        def run(touched: Touched) -> R:
            self._report(reports, touched)
            for p in marks:
                self._mark(p.symbol, p.price, p.ts_ns, touched)
            return work(touched)

        return self._run(run)

    def _catch_up(self, marks: Sequence[TradePrinted], reports: list[AccountEvent]) -> None:
        """`reports`, then `marks`, journaled, ahead of a call that journals nothing of its own in the same run."""
        if marks or reports:
            self._gate(marks, reports, lambda touched: None)

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
        are rebuilt from the journal (memory must not run ahead of it) and the error goes to the caller. An account
        left stale by an earlier failure is rebuilt first: the log entries that failure left unjournaled must be
        journaled before any append deletes the log up to a later entry."""
        for account in sorted(self._stale):
            self._states[account] = self._recover(account)
            self._stale.discard(account)
        touched: Touched = {}
        floor = dict(self._floor)
        try:
            result = work(touched)
        except Exception:
            self._failed(floor, set(touched) | set(self._settles))
            raise
        self._commit(touched, floor)
        return result

    def _failed(self, floor: dict[str, str], accounts: set[str]) -> None:
        """A call failed before its journal append took: nothing of it was journaled, so neither were the log
        entries it saw (the log floors go back to `floor`); the accounts it touched or whose log entries it carried
        are rebuilt from their journals and the log."""
        self._settles.clear()
        self._floor = floor
        self._rebuild_after_failure(sorted(accounts))

    def _rebuild_after_failure(self, accounts: list[str]) -> None:
        """Rebuild `accounts` from their journals and the log; those the journal cannot give back now stay
        `_stale` (rebuilt before the next call). Every allowance is voided."""
        self._stale.update(accounts)
        try:
            for account in accounts:
                self._states[account] = self._recover(account)  # memory must not run ahead of the journal
                self._stale.discard(account)
        finally:
            self._desk.void_all()
        for account in accounts:
            self._desk.sync(self._states[account])

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
        """The account as its journal has it, then what the gate's write-ahead log still holds (acceptances, cancels
        and expiries, post-trade events), applied and journaled (`oms.infra.redis.reportlog`): their reports may have
        left, so they happened. Reports of them that arrive later are skipped; a record the log holds twice (a write
        retried after its answer was lost) is applied once."""
        state = self._rebuild(account)
        entries, reached = self._wal.pending(account)
        if entries:
            events: list[AccountEvent] = []
            copies: set[bytes] = set()  # a write retried after its answer was lost leaves the same records twice
            for wal, records in entries:
                for event in records:
                    copy = account_encoder.encode(event)
                    if copy in copies:
                        continue
                    copies.add(copy)
                    if type(event) is AllowanceSpent:
                        event = msgspec.structs.replace(event, wal=wal)
                        try:
                            state.apply(event)
                        except StaleAllowance:
                            log.warning("account %s: order %s: its grant is gone; the acceptance stands", account,
                                        event.order_id)  # fmt: skip
                            continue
                    elif type(event) in _CLOSING and state.open_order(event.order_id) is None:
                        continue  # reported and journaled before the crash: its entry was not yet trimmed
                    elif type(event) is OrderReplaced and state.open_order(event.order_id) is None:
                        log.warning("account %s: order %s: replaced after it closed; the replace is skipped", account,
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

    def _commit(self, touched: Touched, floor: dict[str, str]) -> None:
        """Append every touched account's events in one round trip, all or nothing, then snapshot the accounts
        due. If the append fails, the call has `_failed` (`floor`: the log floors before it) and the error is
        raised. A snapshot that fails is logged and tried again at the next append: the events are journaled, and
        a rebuild replays them from the last snapshot that was saved."""
        seen = set(touched) | set(self._settles)
        work = [(account, events, self._settled(account)) for account, events in touched.items() if events]
        self._settles.clear()
        if not work:
            return
        try:
            written = self._journal.append_accounts(work)
        except Exception:
            self._failed(floor, seen)
            raise
        for (account, _, _), ids in zip(work, written, strict=True):
            self._desk.sync(self._states[account])
            self._since_snapshot[account] += len(ids)
            if self._since_snapshot[account] >= self._config.snapshot_every:
                try:
                    self._journal.save_snapshot(account, self._states[account].snapshot(), ids[-1])
                except Exception:
                    log.exception("account %s: its snapshot at %s was not saved (its events are journaled)",
                                  account, ids[-1])  # fmt: skip
                    continue
                self._since_snapshot[account] = 0


def account_actor_class():
    """`AccountShard` as a Ray actor class: restarted by Ray when it dies, one call at a time, named by the caller.
    Ray's task events (the per-call records its state API and dashboard show) are off for it: the OMS runs Ray
    without a dashboard, and recording each call cost the caller, the actor and Ray's control store CPU on every
    batch of reports (a failed call still raises to its caller, and the OMS logs it)."""
    import ray

    return ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=0, enable_task_events=False)(AccountShard)
