"""Account actors: the one place an account's state changes.

`AccountHost` holds the `AccountState` of one or more accounts (several accounts may share one actor: each Ray actor
is a process of its own, ~80 MiB). Every event it decides or is told about is appended to the account's journal
before it is applied to memory or answered, so a reply means durable. On start it rebuilds every account from the
journal (snapshot + replay); a host that Ray restarts after a crash therefore continues exactly where the journal
ends, and the state hash it reports equals that of a fresh replay.

If an append fails, the host rebuilds the account from the journal (dropping what was not written) and raises:
the caller gets an error, never an ack for an unjournaled decision.

`AccountActor` is `AccountHost` as a named, restartable Ray actor in the `oms` namespace.

Reserved mode (`oms.reserved`): `grant_allowance`, `report_spent`, `return_allowance` and `revoke_allowance`
journal allowance events like every other event. In-process, the `Lease` of a grant is voided as soon as the
account drops the grant (after each commit, or when a commit fails), and a gate attached with `attach_drain` is
drained before a kill switch, post-trade batch or mark is applied. `ReservedGate` is re-exported here.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

import msgspec

from oms.accounts import AccountEvent, AccountSnapshot, AccountState, AllowanceRequest, MarketPrices
from oms.journal import Journal
from oms.model.enums import RejectReason, Side
from oms.model.instruments import InstrumentRegistry
from oms.model.messages import Message, OrderAccepted, OrderRejected, ReplaceOrder, SubmitOrder, TradePrinted
from oms.redis_server import make_client
from oms.reserved import Allowance, AllowanceDesk, ReservedGate
from risk.limits import RiskConfig, load_risk_config
from risk.reasons import describe

__all__ = ["AccountHost", "ActorGate", "HostConfig", "ReservedGate", "UnknownAccount", "account_actor_class"]


class UnknownAccount(KeyError):
    """A call named an account this host does not own."""


class HostConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What every account host needs to find its configuration and its journal."""

    redis_url: str
    instruments_path: str
    risk_path: str
    snapshot_every: int = 1000  # journal records between snapshots of an account


class AccountHost:
    """Owns the state of `accounts`; decisions and updates arrive in batches and leave journaled."""

    def __init__(self, accounts: list[str], config: HostConfig) -> None:
        """Load configuration and rebuild each account from its journal; raises on an account with no limits."""
        self._config = config
        self._instruments = InstrumentRegistry.load(config.instruments_path)
        self._risk: RiskConfig = load_risk_config(config.risk_path, self._instruments)
        self._journal: Journal[AccountEvent] = Journal(
            make_client(config.redis_url), AccountEvent, snapshot_type=AccountSnapshot
        )
        self._market = MarketPrices()
        self._states: dict[str, AccountState] = {}
        self._since_snapshot: dict[str, int] = {}
        self._desk = AllowanceDesk()
        for account in accounts:
            if self._risk.limits_for(account) is None:
                raise UnknownAccount(f"account {account!r} has no limits in {config.risk_path}")
            self._states[account] = self._recover(account)
            self._since_snapshot[account] = 0

    # -- COMMANDS --

    def submit_batch(self, items: list[tuple[SubmitOrder, int, int]]) -> list[OrderAccepted | OrderRejected]:
        """Decide each (command, order id, now) in order; each decision sees the ones before it. Journaled first."""
        decisions: list[OrderAccepted | OrderRejected] = []
        touched: dict[str, list[AccountEvent]] = {}
        for cmd, order_id, now_ns in items:
            state = self._states.get(cmd.account)
            if state is None:
                reason = RejectReason.UNKNOWN_ACCOUNT
                text = f"account {cmd.account!r} is not known"
                decisions.append(OrderRejected(order_id, cmd.cl_ord_id, cmd.account, cmd.symbol, reason, text, now_ns))
                continue
            events = touched.setdefault(cmd.account, [])
            last = self._market.last.get(cmd.symbol)
            if last is not None and state.reference_price(cmd.symbol) != last:
                events.append(state.mark(cmd.symbol, last, now_ns))  # catch up with the tape before deciding
            decision = state.decide(cmd, order_id, now_ns)
            state.apply(decision)
            events.append(decision)
            decisions.append(decision)
        self._commit(touched)
        return decisions

    def check_replace(self, cmd: ReplaceOrder, order_id: int, now_ns: int) -> RejectReason:
        """RejectReason.NONE when the replace may go to the venue (nothing changes until the venue answers)."""
        state = self._states.get(cmd.account)
        if state is None:
            return RejectReason.UNKNOWN_ACCOUNT
        return state.decide_replace(cmd, order_id, now_ns)

    def apply_batch(self, events: list[AccountEvent]) -> None:
        """Journal, then apply, post-trade events (fills, cancels, rejects, replaces, expiries, marks, admin)."""
        touched: dict[str, list[AccountEvent]] = {}
        for event in events:
            account = getattr(event, "account", None)
            state = self._states.get(account) if account is not None else None
            if state is None:
                raise UnknownAccount(f"event for account {account!r}, not owned here: {event!r}")
            self._desk.drain(account)
            state.apply(event)
            touched.setdefault(account, []).append(event)
        self._commit(touched)

    def set_kill_switch(self, account: str, on: bool, ts_ns: int) -> list[int]:
        """Block (or unblock) new orders of `account`; returns its working order ids for the caller to cancel."""
        state = self._state(account)
        self._desk.drain(account)
        self._commit({account: [state.set_kill_switch(on, ts_ns)]})
        return state.working_orders()

    def mark(self, symbol: str, price: int, ts_ns: int) -> None:
        """A trade printed at `price`: marks the accounts trading `symbol` now, the others when they next order."""
        self._market.last[symbol] = price
        touched: dict[str, list[AccountEvent]] = {}
        for account, state in self._states.items():
            allowance = state.allowance() if state.allowance_id else None
            if (
                state.position(symbol).qty
                or state.working_qty(symbol, Side.BUY)
                or state.working_qty(symbol, Side.SELL)
                or (allowance is not None and symbol in allowance.symbols)
            ):
                self._desk.drain(account)
                touched[account] = [state.mark(symbol, price, ts_ns)]
        self._commit(touched)

    # -- RESERVED MODE --

    def attach_drain(self, account: str, drain: Callable[[], None]) -> None:
        """In-process gates only: `drain()` hands the gate's queued reports to `report_spent` before it returns."""
        self._state(account)
        self._desk.attach_drain(account, drain)

    def grant_allowance(self, account: str, request: AllowanceRequest, ts_ns: int) -> Allowance | None:
        """Grant `account` an allowance (journaled); None when it can grant nothing now."""
        state = self._state(account)
        self._desk.drain(account)
        last = self._market.last
        events: list[AccountEvent] = [
            state.mark(sym, last[sym], ts_ns)
            for sym in sorted(state.limits.symbols)
            if sym in last and state.reference_price(sym) != last[sym]
        ]  # catch up with the tape first, as a strict decision would
        granted = state.grant_allowance(request, ts_ns)
        if granted is not None:
            events.append(granted)
        self._commit({account: events})
        return self._desk.issue(state, granted)

    def report_spent(self, events: list[AccountEvent]) -> None:
        """A gate's reports (AllowanceSpent + OrderAccepted pairs): journaled, then applied. A spend against a
        void grant raises StaleAllowance and nothing of the batch is kept for that account."""
        touched: dict[str, list[AccountEvent]] = {}
        for event in events:
            account = getattr(event, "account", "")
            state = self._state(account)
            try:
                state.apply(event)
            except Exception:
                self._states[account] = self._recover(account)
                self._desk.void_all()
                raise
            touched.setdefault(account, []).append(event)
        self._commit(touched)

    def return_allowance(self, account: str, grant_id: int, ts_ns: int) -> None:
        state = self._state(account)
        self._commit({account: [state.return_allowance(grant_id, ts_ns)]})

    def revoke_allowance(self, account: str, ts_ns: int) -> None:
        """Operator: void whatever allowance `account` has out (after draining its gate)."""
        state = self._state(account)
        self._desk.drain(account)
        self._commit({account: [state.revoke_allowance(ts_ns)]})

    # -- QUERIES --

    def accounts(self) -> list[str]:
        return sorted(self._states)

    def pid(self) -> int:
        """The process hosting these accounts (it changes when Ray restarts the actor)."""
        return os.getpid()

    def state_hash(self, account: str) -> str:
        """Digest of the account's whole state; equal hashes mean equal states."""
        return self._state(account).state_hash()

    def replayed_hash(self, account: str) -> str:
        """The hash a fresh rebuild from the journal gives, for comparing with `state_hash`."""
        return self._recover(account).state_hash()

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
        }

    # -- INTERNALS --

    def _state(self, account: str) -> AccountState:
        state = self._states.get(account)
        if state is None:
            raise UnknownAccount(f"account {account!r} is not owned here")
        return state

    def _fresh(self, account: str) -> AccountState:
        limits = self._risk.limits_for(account)
        assert limits is not None
        return AccountState(account, limits, self._instruments)

    def _recover(self, account: str) -> AccountState:
        return self._journal.recover(
            account,
            restore=lambda snap: AccountState.restore(snap, self._instruments),
            fresh=lambda: self._fresh(account),
            apply=lambda state, event: state.apply(event),
        )

    def _commit(self, touched: dict[str, list[AccountEvent]]) -> None:
        for account, events in touched.items():
            if not events:
                continue
            try:
                ids = self._journal.append_many(account, events)
            except Exception:
                self._states[account] = self._recover(account)  # memory must not run ahead of the journal
                self._desk.void_all()
                raise
            finally:
                self._desk.sync(self._states[account])
            self._since_snapshot[account] += len(ids)
            if self._since_snapshot[account] >= self._config.snapshot_every:
                self._journal.save_snapshot(account, self._states[account].snapshot(), ids[-1])
                self._since_snapshot[account] = 0


def account_actor_class():
    """`AccountHost` as a Ray actor class: restarted by Ray when it dies, one call at a time, named by the caller."""
    import ray

    return ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=0)(AccountHost)


class ActorGate:
    """The OrderManager's risk gate in strict mode: every decision is a round trip to the account's actor.

    Post-trade events go to the actors of the accounts they concern and are journaled there before `on_events`
    returns, so no report leaves the OMS ahead of its journal record. Trade prints become marks on every actor.
    """

    def __init__(self, actors: dict[str, object]) -> None:
        """`actors`: account -> actor handle (several accounts may share one handle)."""
        import ray

        self._ray = ray
        self._actors = actors

    def decide(self, cmd: SubmitOrder, order_id: int, now_ns: int) -> OrderAccepted | OrderRejected:
        actor = self._actors.get(cmd.account)
        if actor is None:
            reason = RejectReason.UNKNOWN_ACCOUNT
            return OrderRejected(order_id, cmd.cl_ord_id, cmd.account, cmd.symbol, reason, describe(reason), now_ns)
        (decision,) = self._ray.get(actor.submit_batch.remote([(cmd, order_id, now_ns)]))
        return decision

    def decide_replace(self, cmd: ReplaceOrder, order_id: int, now_ns: int) -> RejectReason:
        actor = self._actors.get(cmd.account)
        if actor is None:
            return RejectReason.UNKNOWN_ACCOUNT
        return self._ray.get(actor.check_replace.remote(cmd, order_id, now_ns))

    def set_kill_switch(self, account: str, on: bool, now_ns: int) -> None:
        self._ray.get(self._actors[account].set_kill_switch.remote(account, on, now_ns))

    def accounts(self) -> list[str]:
        return sorted(self._actors)

    def on_events(self, events: Iterable[Message]) -> None:
        by_actor: dict[object, list[AccountEvent]] = {}
        prints: list[TradePrinted] = []
        for e in events:
            if isinstance(e, TradePrinted):
                prints.append(e)
            else:
                by_actor.setdefault(self._actors[e.account], []).append(e)
        refs = [actor.apply_batch.remote(batch) for actor, batch in by_actor.items()]
        for p in prints:
            refs += [actor.mark.remote(p.symbol, p.price, p.ts_ns) for actor in set(self._actors.values())]
        self._ray.get(refs)
