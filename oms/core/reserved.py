"""Reserved risk mode: the account grants the engine an allowance, the engine decides locally within it.

Safety property: reserved mode never accepts an order that strict mode would reject given the same history
(`tests/property/test_reserved_safety.py` checks it over random order, fill, cancel, replace, mark and admin
sequences). Everything below exists to make that hold.

THE ALLOWANCE (granted by `AccountState.grant_allowance`, journaled as AllowanceGranted)
  - `orders` order tokens: at most min(request, rate-window room, open-order room) at the grant;
  - `credit`: a share of the buying power, in money;
  - per symbol (tradable, not restricted, with a reference price): a limit-price band [lo, hi] around the
    reference (a share of the collar), a valuation cap `value_cap` = collared(hi), and quantity headroom per side:
    a share of the largest qty q for which the worst-case position after 1..q more on that side passes the
    position limit and, valued at any price up to `value_cap`, the gross and net limits.

THE CERTIFICATE (checked by the account after every event it applies)
  The allowance is not carved out of the account's headroom: strict decisions ignore it. Instead the account keeps
  it valid only while this holds, and voids it the moment it does not:
    not kill switch, trading state ACTIVE, limits unchanged (KillSwitchSet, TradingStateSet, LimitsChanged,
    DayStarted, AllowanceRevoked, AllowanceReturned void it outright);
    rate_used + orders <= orders_per_window (rate_used: window entries newer than ts - window at the grant, plus
    every order accepted since: an upper bound of the window's count at any time >= the grant);
    open orders + orders <= max_open_orders;
    buying power >= credit;
    per granted symbol: a reference price exists, lo and hi pass the collar against it, collared(reference) <=
    value_cap, and for each side the headroom passes `AccountState._headroom_ok`.
  A strict decision (or fill, mark, replace, cancel, breaker) that eats into the allowance therefore voids it;
  the account never refuses one of its own strict orders because an allowance is out.

THE ENGINE'S LOCAL RULE (`AllowanceGate.decide`), for an order of the account while its allowance is valid and
  now_ns >= the grant's ts_ns: LIMIT (price in [lo, hi], valued at its price) or MARKET (valued at value_cap) on a
  granted symbol; 0 < qty <= max_order_qty; qty * value <= max_order_notional; ClOrdID not seen by the account at
  the grant nor by the gate since; a token left; qty <= the side's headroom left; qty * value <= credit left.
  It then spends one token, qty of headroom and qty * value of credit, and queues AllowanceSpent + OrderAccepted.
  Anything else (other order types, no allowance, exhausted, void) goes to the account for a strict decision.

LOCAL REJECTS: while the allowance is valid, an order on a granted symbol whose ClOrdID the gate has not seen, with
  qty <= 0 (INVALID_QTY), above max_order_qty (MAX_ORDER_QTY), or a LIMIT whose qty * price is above
  max_order_notional (MAX_ORDER_NOTIONAL), is rejected here and the OrderRejected queued like a spend. The account
  would reject it for the same reason: every earlier check in `AccountState.decide` passes (no kill switch, ACTIVE,
  a known, unrestricted symbol, limits unchanged since the grant, and a ClOrdID the account has not seen, since the
  gate's set holds every one the account had at a grant plus every one sent through the gate since).

WHY A LOCAL ACCEPT IS A STRICT ACCEPT (s = the order's side, v its value, W the working qty on (symbol, s)):
  kill switch, HALTED, symbol, restricted, qty, notional: unchanged since the grant or checked exactly.
  Collar: the price is in [lo, hi], both ends within the collar of the current reference (interval).
  No reference: one exists. Market value collared(ref) <= value_cap = v, so holds and notionals are bounded by v.
  Rate: the window's count at now is <= rate_used <= orders_per_window - orders < orders_per_window.
  Open orders: count <= max_open_orders - orders < max_open_orders. Reduce-only: never, the state is ACTIVE.
  Position: |pos + s(W + q)| is convex in q; at q = headroom it passes, and at q = 0 either it is <= |pos| or
  the function grows with q, so every q in 1..headroom passes. Gross: |position| over 1..q is at most the larger
  end, valued at >= v. Net: position * v lies between min(ends, 0) * cap and max(ends, 0) * cap, both checked.
  Credit: the hold is <= qty * v <= credit left <= buying power.
  The gate's counters lag the account's only by queued spends, and every queued spend keeps the certificate
  (it lowers the budget by at least what the order takes), so the account's check covers them too.

REFILLS
  A gate asks for more in two ways. A fresh grant (new id, bands re-centred on the current reference) rides on a
  synchronous call the gate makes anyway: the fallback of an order its allowance could not cover, or a post-trade
  call; every such call also tells the host which grant the gate holds, so a grant the call voided is replaced in
  the same round trip. When an allowance runs low (`low_orders` tokens left) the gate asks for a top-up
  (AllowanceToppedUp: the same grant, more tokens, credit and headroom, certified like a grant) without waiting:
  in-process the answer is there at once, over Ray it arrives later and the gate adds it at its next decision if
  that grant is still the one it holds. A spend sent before or after a top-up draws on the same grant, so nothing
  is refused; and the account's view of the budget is always the gate's plus the spends still on their way, so the
  certificate covers what the gate may spend.

REPORTS AND REVOCATION
  With a `log` (`oms.infra.redis.reportlog`; the gate over journaling actors always has one), each local acceptance is
  written ahead to Redis before `decide` returns it, so an acknowledged order survives a crash of the OMS or of the
  actor while its report is queued or on its way: the host journals it from the log when it rebuilds the account, and
  skips the report when it arrives. Local rejects are not written ahead. Reports (AllowanceSpent, then the OrderAccepted
  it covers) queue in the gate and reach the host in batches: when the batch is full (`report_spent`, which over Ray is
  fire-and-forget), when a post-trade step finds them older than `flush_after_ns` (in-process: at every step), and with
  anything else the gate sends to the host (fallback decisions, replace checks, post-trade events, operator changes),
  ahead of it in the same call. So the host never sees a fill or a revocation ahead of the acceptance. In-process
  revocation: the host hands the gate a `Lease` per grant and sets `lease.void` as soon as the account drops the grant
  (after applying any batch); `decide` reads that flag first, so the very next order falls back. Changes that do not
  come through the gate (an operator's kill switch, limits, trading state, a mark) first drain the gate's queue through
  the callback the gate attached (`attach_drain`), then apply: revoke-after-drain, so the kill switch's list of working
  orders includes every order the gate accepted before it. A spend reported against a void grant is refused by the
  account (StaleAllowance): it cannot happen unless that order is broken. Over Ray (`oms.infra.ray.actors.ShardClient`)
  the same order of operations holds: a sender's calls to one actor run in the order they were sent, so fire-and-forget
  reports land before the gate's next call; every synchronous reply carries the live grant id of each account on that
  actor and the host voids the leases that differ; operator changes go through the gate (`set_kill_switch`,
  `set_limits`, `set_trading_state`, `start_day`, `revoke_allowance`), which drops the allowance locally first and sends
  the queued reports with the change. A grant carries no expiry today, so a change made on an actor directly, behind the
  gate's back, reaches the gate only at its next synchronous call: stop (fence) the engine before making one.

`LocalShard` is the in-process host (no journal, an event list per account) for tests, benchmarks and
single-process use; `oms.infra.ray.actors.AccountShard` offers the same calls with its Redis journal, and
`oms.infra.ray.actors.ShardClient` offers them over AccountShard actors.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import msgspec

from oms.core.accounts import (
    AccountEvent,
    AccountState,
    AdminEvent,
    AllowanceGranted,
    AllowanceRequest,
    AllowanceSpent,
    AllowanceToppedUp,
)
from oms.core.model.enums import OrdType, RejectReason, RiskMode, Side, TradingState
from oms.core.model.instruments import InstrumentRegistry
from oms.core.model.messages import (
    Message,
    OrderAccepted,
    OrderRejected,
    OrderReplaced,
    ReplaceOrder,
    SubmitOrder,
    TradePrinted,
)
from risk.limits import AccountLimits
from risk.money import money_factor
from risk.reasons import describe

__all__ = [
    "ADMIN_OPS",
    "Allowance",
    "AllowanceDesk",
    "AllowanceGate",
    "Answer",
    "GrantAsk",
    "Lease",
    "LocalShard",
    "Ready",
    "Shard",
    "WriteAhead",
    "admin",
    "serve_asks",
]

T = TypeVar("T")


class WriteAhead(Protocol):
    """Where each local acceptance is made durable before it is returned (`oms.infra.redis.reportlog.ReportLog`)."""

    def write(self, account: str, records: Sequence[AccountEvent]) -> str:
        """Store `records` as one entry of `account`'s log and return the entry's id; raise if it is not stored."""
        ...


Decision = OrderAccepted | OrderRejected
Item = tuple[SubmitOrder, int, int]  # (command, order id, now_ns)

#: The operator changes a host applies through `gate_operate`: the AccountState admin command of that name.
ADMIN_OPS = frozenset({"set_kill_switch", "set_trading_state", "set_limits", "start_day", "revoke_allowance"})


class Lease:
    """The host's side of a grant held by an in-process gate: `void` turns True once, when the grant is dropped."""

    __slots__ = ("account", "grant_id", "void")

    def __init__(self, account: str, grant_id: int) -> None:
        self.account = account
        self.grant_id = grant_id
        self.void = False


@dataclass(frozen=True, slots=True)
class Allowance:
    """What the engine gets with a grant: the journaled terms plus the static view it needs to decide locally."""

    grant: AllowanceGranted
    limits: AccountLimits
    cl_ord_ids: frozenset[str]  # the account's seen ClOrdIDs at the grant (empty when the gate did not ask for them)
    lease: Lease


class GrantAsk(msgspec.Struct, frozen=True):
    """What a gate wants for one account at the end of a synchronous call: keep grant `held` while the account still
    holds it, else a fresh grant sized by `request` and stamped `ts_ns` (`held` 0: a fresh grant whatever is live).
    `with_ids`: send the account's seen ClOrdIDs along (the gate has no copy yet)."""

    request: AllowanceRequest
    ts_ns: int
    held: int = 0
    with_ids: bool = True


class Answer(Protocol[T]):
    """An answer that may arrive later (a top-up over Ray); `result()` raises what the call raised."""

    def done(self) -> bool: ...

    def result(self) -> T: ...


class Ready(Generic[T]):
    """An answer that is already here."""

    __slots__ = ("_value",)

    def __init__(self, value: T) -> None:
        self._value = value

    def done(self) -> bool:
        return True

    def result(self) -> T:
        return self._value


def admin(state: AccountState, op: str, args: tuple[Any, ...], ts_ns: int) -> AdminEvent:
    """Apply operator change `op` (one of ADMIN_OPS) with `args` to `state`; returns its event for the journal.
    ValueError for any other name."""
    if op not in ADMIN_OPS:
        raise ValueError(f"not an operator change: {op!r} (known: {', '.join(sorted(ADMIN_OPS))})")
    return getattr(state, op)(*args, ts_ns)


class AllowanceDesk:
    """Host-side bookkeeping shared by `LocalShard` and `oms.infra.ray.actors.AccountShard`: leases and drain
    callbacks."""

    def __init__(self) -> None:
        self._leases: dict[str, Lease] = {}
        self._drains: dict[str, Callable[[], None]] = {}

    def attach_drain(self, account: str, drain: Callable[[], None]) -> None:
        """`drain()` must hand every queued report of `account` to the host before it returns."""
        self._drains[account] = drain

    def drain(self, account: str) -> None:
        """Run before applying anything for `account` that does not come from its gate."""
        fn = self._drains.get(account)
        if fn is not None:
            fn()

    def issue(self, state: AccountState, event: AllowanceGranted | None, with_ids: bool = True) -> Allowance | None:
        """The Allowance for a grant `state` just applied, or None when it granted nothing (or voided it at once)."""
        self.sync(state)
        if event is None or state.allowance_id != event.grant_id:
            return None
        lease = self._leases[state.account] = Lease(state.account, event.grant_id)
        ids = state.seen_cl_ord_ids() if with_ids else frozenset()
        return Allowance(event, state.limits, ids, lease)

    def sync(self, state: AccountState) -> None:
        """Void the account's lease if the account no longer holds that grant."""
        lease = self._leases.get(state.account)
        if lease is not None and state.allowance_id != lease.grant_id:
            lease.void = True
            del self._leases[state.account]

    def void_all(self) -> None:
        """Void every lease (the host lost its state: a failed journal append, a restart)."""
        for lease in self._leases.values():
            lease.void = True
        self._leases.clear()


def serve_asks(
    states: dict[str, AccountState], asks: dict[str, GrantAsk], grant: Callable[[str, GrantAsk], Allowance | None]
) -> dict[str, Allowance | None]:
    """The grants a host owes for `asks` (accounts it does not own are left out): nothing for an account that still
    holds the grant its gate holds, else `grant(account, ask)` (None when it can grant nothing)."""
    out: dict[str, Allowance | None] = {}
    for account, ask in asks.items():
        state = states.get(account)
        if state is None or (ask.held and state.allowance_id == ask.held):
            continue
        out[account] = grant(account, ask)
    return out


class Shard(Protocol):
    """What a AllowanceGate needs from the host that owns the accounts (LocalShard, AccountShard, ShardClient).

    Each `gate_*` call first applies `reports` (the gate's queued AllowanceSpent + OrderAccepted pairs), then does
    its work; `report_spent` may be asynchronous but reaches the host before any later call of the same gate.
    """

    def accounts(self) -> list[str]: ...

    def attach_drain(self, account: str, drain: Callable[[], None]) -> None: ...

    def report_spent(self, events: list[AccountEvent]) -> None: ...

    def gate_decide(
        self, reports: list[AccountEvent], items: list[Item], asks: dict[str, GrantAsk]
    ) -> tuple[list[Decision], dict[str, Allowance | None]]: ...

    def gate_check_replace(
        self, reports: list[AccountEvent], cmd: ReplaceOrder, order_id: int, now_ns: int
    ) -> RejectReason: ...

    def gate_settle(
        self,
        reports: list[AccountEvent],
        events: list[AccountEvent],
        prints: list[TradePrinted],
        asks: dict[str, GrantAsk],
    ) -> dict[str, Allowance | None]: ...

    def gate_top_up(
        self, account: str, grant_id: int, request: AllowanceRequest, ts_ns: int
    ) -> Answer[AllowanceToppedUp | None]: ...

    def gate_return(self, reports: list[AccountEvent], account: str, grant_id: int, ts_ns: int) -> None: ...

    def gate_operate(
        self, reports: list[AccountEvent], account: str, op: str, args: tuple[Any, ...], ts_ns: int
    ) -> list[int]: ...


class LocalShard:
    """Accounts in this process, no journal: every applied event is appended to `events(account)` instead.

    The gate's calls (`Shard`) plus the operator commands. Marks reach every account (so each account's
    reference is the tape's). Everything that does not come from the account's gate drains the gate first (see the
    module docstring).
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
        self, reports: list[AccountEvent], items: list[Item], asks: dict[str, GrantAsk]
    ) -> tuple[list[Decision], dict[str, Allowance | None]]:
        self.report_spent(reports)
        decisions = self.submit_batch(items)
        return decisions, serve_asks(self._states, asks, self._grant)

    def gate_check_replace(
        self, reports: list[AccountEvent], cmd: ReplaceOrder, order_id: int, now_ns: int
    ) -> RejectReason:
        self.report_spent(reports)
        return self.check_replace(cmd, order_id, now_ns)

    def gate_settle(
        self,
        reports: list[AccountEvent],
        events: list[AccountEvent],
        prints: list[TradePrinted],
        asks: dict[str, GrantAsk],
    ) -> dict[str, Allowance | None]:
        self.report_spent(reports)
        self.apply_batch(events)
        for p in prints:
            self.mark(p.symbol, p.price, p.ts_ns)
        return serve_asks(self._states, asks, self._grant)

    def gate_top_up(
        self, account: str, grant_id: int, request: AllowanceRequest, ts_ns: int
    ) -> Ready[AllowanceToppedUp | None]:
        state = self._states[account]
        self._desk.drain(account)
        event = state.top_up_allowance(grant_id, request, ts_ns)
        if event is not None:
            self._log[account].append(event)
        self._desk.sync(state)
        return Ready(event)

    def gate_return(self, reports: list[AccountEvent], account: str, grant_id: int, ts_ns: int) -> None:
        self.report_spent(reports)
        self.return_allowance(account, grant_id, ts_ns)

    def gate_operate(
        self, reports: list[AccountEvent], account: str, op: str, args: tuple[Any, ...], ts_ns: int
    ) -> list[int]:
        self.report_spent(reports)
        state = self._operator(account)
        self._log[account].append(admin(state, op, args, ts_ns))
        self._desk.sync(state)
        return state.working_orders()

    def submit_batch(self, items: list[Item]) -> list[Decision]:
        """Strict decisions, each applied before the next is made."""
        out: list[Decision] = []
        for cmd, order_id, now_ns in items:
            state = self._states.get(cmd.account)
            if state is None:
                reason = RejectReason.UNKNOWN_ACCOUNT
                out.append(OrderRejected(order_id, cmd.cl_ord_id, cmd.account, cmd.symbol, reason, reason.name, now_ns))
                continue
            self._desk.drain(cmd.account)
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

    # -- operator commands: drain the gate, then apply --

    def set_kill_switch(self, account: str, on: bool, ts_ns: int) -> list[int]:
        """Drain the gate, then block (or unblock) new orders; returns the working orders to cancel."""
        return self.gate_operate([], account, "set_kill_switch", (on,), ts_ns)

    def set_trading_state(self, account: str, trading_state: TradingState, ts_ns: int) -> None:
        self.gate_operate([], account, "set_trading_state", (trading_state,), ts_ns)

    def set_limits(self, account: str, limits: AccountLimits, ts_ns: int) -> None:
        self.gate_operate([], account, "set_limits", (limits,), ts_ns)

    def start_day(self, account: str, ts_ns: int) -> None:
        self.gate_operate([], account, "start_day", (), ts_ns)

    def revoke_allowance(self, account: str, ts_ns: int) -> None:
        self.gate_operate([], account, "revoke_allowance", (), ts_ns)

    # -- internals --

    def _grant(self, account: str, ask: GrantAsk) -> Allowance | None:
        state = self._states[account]
        self._desk.drain(account)
        event = state.grant_allowance(ask.request, ask.ts_ns)
        if event is not None:
            self._log[account].append(event)
        return self._desk.issue(state, event, ask.with_ids)

    def _operator(self, account: str) -> AccountState:
        self._desk.drain(account)
        return self._states[account]

    def _apply(self, state: AccountState, events: list[AccountEvent]) -> None:
        for event in events:
            state.apply(event)
            self._log[state.account].append(event)
        self._desk.sync(state)


@dataclass(slots=True)
class _Side:
    lo: int
    hi: int
    value_cap: int
    factor: int  # money per (qty unit * price unit)
    max_qty: int
    buy: int
    sell: int


@dataclass(slots=True)
class _Local:
    """The gate's copy of one account's grant: what it may still spend."""

    account: str
    grant_id: int
    ts_ns: int
    lease: Lease
    orders: int
    credit: int
    max_notional: int
    cl_ord_ids: set[str]  # the gate's set for the account (AllowanceGate._seen), shared across its grants
    symbols: dict[str, _Side]


GRANT_RETRY_NS = 50_000_000  # after an empty grant (or top-up), the account is not asked again for this long
HARD_BATCHES = 8  # with `flush_after_ns`: a decision sends the queued reports itself only past this many batches


class AllowanceGate:
    """The OrderManager's risk gate in reserved mode (the `oms.core.engine.RiskGate` protocol).

    Accounts in `accounts` are decided locally within their allowance and fall back to a strict decision by the
    host otherwise; any other account of the host is always decided by the host. See the module docstring for the
    rules.
    """

    def __init__(
        self,
        host: Shard,
        instruments: InstrumentRegistry,
        accounts: Iterable[str],
        request: AllowanceRequest | None = None,
        batch: int = 32,
        low_orders: int = 4,
        flush_after_ns: int | None = None,
        log: WriteAhead | None = None,
    ) -> None:
        """`batch`: order reports queued before they are sent on their own; `low_orders`: tokens left at which a
        top-up is asked for; `flush_after_ns`: a post-trade step sends queued reports once `batch` are queued or the
        oldest is this old (by the order clock), and a decision only once `HARD_BATCHES` batches are (so the send
        stays off the order's path); None: every step sends them, and a decision once `batch` are queued. `log`:
        where each local acceptance is written before it is returned (`oms.infra.redis.reportlog`); a host with a
        journal needs it, or a crash loses the acceptances whose reports had not reached it."""
        self._host = host
        self._log = log
        self._instruments = instruments
        self._accounts = set(accounts)
        self._request = request or AllowanceRequest()
        self._batch = max(batch, 1)
        self._low_orders = low_orders
        self._flush_after = flush_after_ns
        self._hard = 2 * self._batch * (1 if flush_after_ns is None else HARD_BATCHES)  # events (2 per order)
        self._local: dict[str, _Local] = {}
        self._seen: dict[str, set[str]] = {}  # per account: its ClOrdIDs at a grant, plus every one sent here since
        self._pending: list[AccountEvent] = []
        self._oldest = 0  # now_ns of the oldest queued report
        self._low: set[str] = set()
        self._topups: dict[str, Answer[AllowanceToppedUp | None]] = {}
        self._retry_at: dict[str, int] = {}  # account -> earliest ts to ask again after a grant came back empty
        self._topup_at: dict[str, int] = {}  # account -> earliest ts to ask again after a top-up came back empty
        self._clock = 0  # the latest now_ns seen: grants asked for outside a decision are stamped with it
        self.local_accepts = 0
        self.local_rejects = 0
        self.fallbacks = 0
        self.top_ups = 0
        for account in self._accounts:
            host.attach_drain(account, self.flush)

    # -- RiskGate --

    def decide(self, cmd: SubmitOrder, order_id: int, now_ns: int) -> OrderAccepted | OrderRejected:
        """Accept within the account's allowance (or reject what the account surely would) here, else ask the host,
        whose answer brings a fresh grant when the account needs one."""
        if now_ns > self._clock:
            self._clock = now_ns
        if self._topups:
            self._collect_top_ups()
        loc = self._local.get(cmd.account)
        if loc is not None and not loc.lease.void and now_ns >= loc.ts_ns:
            accepted = self._spend(loc, cmd, order_id, now_ns)
            if accepted is not None:
                return accepted
        return self._fallback(cmd, order_id, now_ns)

    def decide_replace(self, cmd: ReplaceOrder, order_id: int, now_ns: int) -> RejectReason:
        """Always the host's strict check (replaces are not covered by allowances)."""
        return self._host.gate_check_replace(self._take(), cmd, order_id, now_ns)

    def on_events(self, events: Iterable[Message]) -> None:
        """Post-trade events and trade prints go to the host in one synchronous call (queued reports ahead of them,
        fresh grants for allowances they voided behind them); without any, queued reports go when due. Then
        top-ups are asked for allowances running low."""
        batch: list[AccountEvent] = []
        prints: list[TradePrinted] = []
        for e in events:
            if isinstance(e, TradePrinted):
                prints.append(e)
                continue
            if isinstance(e, OrderReplaced | OrderRejected):
                seen = self._seen.get(e.account)
                if seen is not None:
                    seen.add(e.cl_ord_id)
            batch.append(e)  # type: ignore[arg-type]
        if batch or prints:
            self._install(self._host.gate_settle(self._take(), batch, prints, self._asks()))
        elif self._pending and (
            self._flush_after is None
            or len(self._pending) >= 2 * self._batch
            or self._clock - self._oldest >= self._flush_after
        ):
            self.flush()
        if self._low:
            self._request_top_ups()

    def set_kill_switch(self, account: str, on: bool, now_ns: int) -> None:
        """Block (on) or allow new orders of `account`; its allowance is dropped here first and the queued reports
        reach the host ahead of the switch, so nothing is accepted locally after it."""
        self._operate(account, "set_kill_switch", (on,), now_ns)

    def accounts(self) -> list[str]:
        """Every account of the host (reserved ones are decided here within their allowance, the others there)."""
        return self._host.accounts()

    # -- operator changes (they revoke the account's allowance at once) --

    def set_limits(self, account: str, limits: AccountLimits, now_ns: int) -> None:
        """New limits for `account`; its risk mode follows `limits.risk_mode` from now on."""
        self._operate(account, "set_limits", (limits,), now_ns)
        if limits.risk_mode is RiskMode.RESERVED:
            if account not in self._accounts:
                self._accounts.add(account)
                self._host.attach_drain(account, self.flush)
        else:
            self._accounts.discard(account)

    def set_trading_state(self, account: str, trading_state: TradingState, now_ns: int) -> None:
        self._operate(account, "set_trading_state", (trading_state,), now_ns)

    def start_day(self, account: str, now_ns: int) -> None:
        self._operate(account, "start_day", (), now_ns)

    def revoke_allowance(self, account: str, now_ns: int) -> None:
        self._operate(account, "revoke_allowance", (), now_ns)

    # -- reserved mode --

    def reserved_accounts(self) -> list[str]:
        """The accounts this gate decides for locally."""
        return sorted(self._accounts)

    def flush(self) -> None:
        """Hand every queued report to the host (over Ray: without waiting)."""
        if self._pending:
            self._host.report_spent(self._take())

    def refill(self) -> None:
        """Ask now for a fresh grant for every reserved account without a valid allowance, and for a top-up of
        every allowance running low."""
        asks = {
            a: GrantAsk(self._request, self._clock, 0, a not in self._seen)
            for a in self._accounts
            if (loc := self._local.get(a)) is None or loc.lease.void
        }
        if asks:
            self._install(self._host.gate_settle(self._take(), [], [], asks))
        if self._low:
            self._request_top_ups()

    def give_back(self, account: str) -> None:
        """Return what is left of `account`'s allowance to the host."""
        loc = self._local.pop(account, None)
        self._low.discard(account)
        reports = self._take()
        if loc is not None and not loc.lease.void:
            self._host.gate_return(reports, account, loc.grant_id, self._clock)
        elif reports:
            self._host.report_spent(reports)

    def close(self) -> None:
        """Return every allowance (each return carries the queued reports) and send what is still queued; from
        then on every order goes to the host. For a clean stop, before the host goes."""
        for account in sorted(self._local):
            self.give_back(account)
        self._accounts.clear()
        self.flush()

    def allowance_left(self, account: str) -> tuple[int, int] | None:
        """(tokens, credit) left of `account`'s valid allowance, None when it has none."""
        loc = self._local.get(account)
        if loc is None or loc.lease.void:
            return None
        return loc.orders, loc.credit

    # -- internals --

    def _take(self) -> list[AccountEvent]:
        """The queued reports, for the host call about to be made (which applies them first)."""
        reports, self._pending = self._pending, []
        return reports

    def _spend(self, loc: _Local, cmd: SubmitOrder, order_id: int, now_ns: int) -> OrderAccepted | OrderRejected | None:
        side = loc.symbols.get(cmd.symbol)
        if side is None:
            return None
        cl = cmd.cl_ord_id
        seen = loc.cl_ord_ids
        if cl in seen:
            return None
        qty = cmd.qty
        if qty <= 0 or qty > side.max_qty:
            return self._reject(
                cmd, order_id, now_ns, RejectReason.INVALID_QTY if qty <= 0 else RejectReason.MAX_ORDER_QTY
            )
        if cmd.ord_type is OrdType.LIMIT:
            value = cmd.price
            if value is None:
                return None
            if abs(qty * value * side.factor) > loc.max_notional:
                return self._reject(cmd, order_id, now_ns, RejectReason.MAX_ORDER_NOTIONAL)
            if value < side.lo or value > side.hi:
                return None
        elif cmd.ord_type is OrdType.MARKET:
            value = side.value_cap
        else:
            return None
        if loc.orders < 1:
            return None
        credit = qty * value * side.factor
        if credit > loc.credit or credit > loc.max_notional:
            return None
        buy = cmd.side is Side.BUY
        if qty > (side.buy if buy else side.sell):
            return None
        accepted = OrderAccepted(
            order_id, cl, cmd.account, cmd.symbol, cmd.side, cmd.ord_type, cmd.tif, qty, cmd.price, now_ns,
            cmd.stop_price,
        )  # fmt: skip
        spent = AllowanceSpent(cmd.account, loc.grant_id, order_id, cmd.symbol, cmd.side, qty, credit, now_ns)
        if self._log is not None:  # durable before the acceptance leaves; a failure raises with nothing spent
            spent = msgspec.structs.replace(spent, wal=self._log.write(cmd.account, (spent, accepted)))
        if buy:
            side.buy -= qty
        else:
            side.sell -= qty
        loc.orders -= 1
        loc.credit -= credit
        seen.add(cl)
        pending = self._pending
        if not pending:
            self._oldest = now_ns
        pending.append(spent)
        pending.append(accepted)
        self.local_accepts += 1
        if loc.orders <= self._low_orders:
            self._low.add(cmd.account)
        if len(pending) >= self._hard:
            self.flush()
        return accepted

    def _reject(self, cmd: SubmitOrder, order_id: int, now_ns: int, reason: RejectReason) -> OrderRejected:
        """A reject the account would make too (see LOCAL REJECTS in the module docstring), queued like a spend."""
        rejected = OrderRejected(order_id, cmd.cl_ord_id, cmd.account, cmd.symbol, reason, describe(reason), now_ns)
        self._local[cmd.account].cl_ord_ids.add(cmd.cl_ord_id)
        pending = self._pending
        if not pending:
            self._oldest = now_ns
        pending.append(rejected)
        self.local_rejects += 1
        if len(pending) >= self._hard:
            self.flush()
        return rejected

    def _fallback(self, cmd: SubmitOrder, order_id: int, now_ns: int) -> OrderAccepted | OrderRejected:
        """The host's strict decision; for a reserved account the same call brings a fresh grant when its
        allowance is missing, void or low, or when this decision voids it."""
        self.fallbacks += 1
        account = cmd.account
        asks: dict[str, GrantAsk] = {}
        if account in self._accounts:
            loc = self._local.get(account)
            if loc is not None and not loc.lease.void and account not in self._low:
                asks[account] = GrantAsk(self._request, now_ns, loc.grant_id, False)
            elif now_ns >= self._retry_at.get(account, 0):
                asks[account] = GrantAsk(self._request, now_ns, 0, account not in self._seen)
        (decision,), granted = self._host.gate_decide(self._take(), [(cmd, order_id, now_ns)], asks)
        seen = self._seen.get(account)
        if seen is not None:
            seen.add(cmd.cl_ord_id)
        if granted:
            self._install(granted)
        return decision

    def _asks(self) -> dict[str, GrantAsk]:
        """Per reserved account: keep the grant held while it lives, else (once past its retry time) a fresh one."""
        asks: dict[str, GrantAsk] = {}
        clock = self._clock
        for account in self._accounts:
            loc = self._local.get(account)
            if loc is not None and not loc.lease.void:
                asks[account] = GrantAsk(self._request, clock, loc.grant_id, False)
            elif clock >= self._retry_at.get(account, 0):
                asks[account] = GrantAsk(self._request, clock, 0, account not in self._seen)
        return asks

    def _install(self, granted: dict[str, Allowance | None]) -> None:
        """Take the grants a host call brought: a new allowance replaces the account's, None means none for now."""
        for account, allowance in granted.items():
            self._low.discard(account)
            if allowance is None:
                self._local.pop(account, None)
                self._retry_at[account] = self._clock + GRANT_RETRY_NS
                continue
            self._retry_at.pop(account, None)
            seen = self._seen.get(account)
            if seen is None:
                seen = self._seen[account] = set(allowance.cl_ord_ids)
            elif allowance.cl_ord_ids:
                seen |= allowance.cl_ord_ids
            g, lim = allowance.grant, allowance.limits
            symbols: dict[str, _Side] = {}
            for s in g.symbols:
                inst = self._instruments.by_symbol(s.symbol)
                if inst is None:
                    continue
                max_qty = lim.symbols[s.symbol].max_order_qty
                symbols[s.symbol] = _Side(s.lo, s.hi, s.value_cap, money_factor(inst), max_qty, s.buy_qty, s.sell_qty)
            self._local[account] = _Local(
                account, g.grant_id, g.ts_ns, allowance.lease, g.orders, g.credit, lim.max_order_notional, seen,
                symbols,
            )  # fmt: skip

    def _request_top_ups(self) -> None:
        """Ask, without waiting, for a top-up of every allowance running low (one at a time per account). The queued
        reports go first, so the host sizes the top-up on what the gate has spent."""
        flushed = False
        for account in list(self._low):
            if account in self._topups or self._clock < self._topup_at.get(account, 0):
                continue
            self._low.discard(account)
            loc = self._local.get(account)
            if loc is None or loc.lease.void:
                continue
            if not flushed:
                self.flush()
                flushed = True
            self._topups[account] = self._host.gate_top_up(account, loc.grant_id, self._request, self._clock)
        self._collect_top_ups()

    def _collect_top_ups(self) -> None:
        """Add the top-ups that have arrived to the allowances they were asked for (if still held)."""
        for account, answer in list(self._topups.items()):
            if not answer.done():
                continue
            del self._topups[account]
            try:
                event = answer.result()
            except Exception:
                self._local.pop(account, None)  # the host may have lost the grant: decide strictly until told
                raise
            if event is None:
                self._topup_at[account] = self._clock + GRANT_RETRY_NS
                continue
            loc = self._local.get(account)
            if loc is None or loc.lease.void or loc.grant_id != event.grant_id:
                continue
            loc.orders += event.orders
            loc.credit += event.credit
            for t in event.symbols:
                side = loc.symbols.get(t.symbol)
                if side is not None:
                    side.buy += t.buy_qty
                    side.sell += t.sell_qty
            self.top_ups += 1

    def _operate(self, account: str, op: str, args: tuple[Any, ...], now_ns: int) -> list[int]:
        """Drop `account`'s allowance here, then apply operator change `op` at the host after the queued reports."""
        self._local.pop(account, None)
        self._low.discard(account)
        self._topups.pop(account, None)
        if now_ns > self._clock:
            self._clock = now_ns
        return self._host.gate_operate(self._take(), account, op, args, now_ns)
