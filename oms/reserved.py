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

THE ENGINE'S LOCAL RULE (`ReservedGate.decide`), for an order of the account while its allowance is valid and
  now_ns >= the grant's ts_ns: LIMIT (price in [lo, hi], valued at its price) or MARKET (valued at value_cap) on a
  granted symbol; 0 < qty <= max_order_qty; qty * value <= max_order_notional; ClOrdID not seen by the account at
  the grant nor by the gate since; a token left; qty <= the side's headroom left; qty * value <= credit left.
  It then spends one token, qty of headroom and qty * value of credit, and queues AllowanceSpent + OrderAccepted.
  Anything else (other order types, no allowance, exhausted, void) goes to the account for a strict decision.

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

REPORTS AND REVOCATION
  Reports (AllowanceSpent, then the OrderAccepted it covers) queue in the gate and reach the host in batches: when
  the batch is full, and before anything else the gate sends to the host (fallback decisions, replace checks,
  post-trade events, grant requests), so the host never sees a fill or a revocation ahead of the acceptance.
  In-process revocation: the host hands the gate a `Lease` per grant and sets `lease.void` as soon as the account
  drops the grant (after applying any batch); `decide` reads that flag first, so the very next order falls back.
  Changes that do not come through the gate (an operator's kill switch, limits, trading state, a mark) first
  drain the gate's queue through the callback the gate attached (`attach_drain`), then apply: revoke-after-drain,
  so the kill switch's list of working orders includes every order the gate accepted before it. A spend reported
  against a void grant is refused by the account (StaleAllowance): it cannot happen unless that order is broken.
  Over Ray (not built here) the same order of operations holds: reports are fire-and-forget calls on the actor,
  ordered before the synchronous post-trade call whose reply carries the voided grant ids; operator changes call
  the engine's drain-and-void endpoint synchronously before applying, and a grant carries no expiry today, so an
  unreachable engine must be fenced (stopped) before the change applies.

`LocalHost` is the in-process host (no journal, an event list per account) for tests, benchmarks and
single-process use; `oms.actors.AccountHost` offers the same allowance calls with its Redis journal.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from oms.accounts import (
    AccountEvent,
    AccountState,
    AllowanceGranted,
    AllowanceRequest,
    AllowanceSpent,
)
from oms.model.enums import OrdType, RejectReason, Side, TradingState
from oms.model.instruments import InstrumentRegistry
from oms.model.messages import (
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

__all__ = ["Allowance", "AllowanceDesk", "AllowanceHost", "Lease", "LocalHost", "ReservedGate"]


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
    cl_ord_ids: frozenset[str]  # the account's seen ClOrdIDs at the grant
    lease: Lease


class AllowanceDesk:
    """Host-side bookkeeping shared by `LocalHost` and `oms.actors.AccountHost`: leases and drain callbacks."""

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

    def issue(self, state: AccountState, event: AllowanceGranted | None) -> Allowance | None:
        """The Allowance for a grant `state` just applied, or None when it granted nothing (or voided it at once)."""
        self.sync(state)
        if event is None or state.allowance_id != event.grant_id:
            return None
        lease = self._leases[state.account] = Lease(state.account, event.grant_id)
        return Allowance(event, state.limits, state.seen_cl_ord_ids(), lease)

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


class AllowanceHost(Protocol):
    """What a ReservedGate needs from the host that owns the accounts (LocalHost, AccountHost)."""

    def submit_batch(self, items: list[tuple[SubmitOrder, int, int]]) -> list[OrderAccepted | OrderRejected]: ...

    def check_replace(self, cmd: ReplaceOrder, order_id: int, now_ns: int) -> RejectReason: ...

    def apply_batch(self, events: list[AccountEvent]) -> None: ...

    def mark(self, symbol: str, price: int, ts_ns: int) -> None: ...

    def grant_allowance(self, account: str, request: AllowanceRequest, ts_ns: int) -> Allowance | None: ...

    def report_spent(self, events: list[AccountEvent]) -> None: ...

    def return_allowance(self, account: str, grant_id: int, ts_ns: int) -> None: ...

    def attach_drain(self, account: str, drain: Callable[[], None]) -> None: ...

    def set_kill_switch(self, account: str, on: bool, ts_ns: int) -> list[int]: ...


class LocalHost:
    """Accounts in this process, no journal: every applied event is appended to `events(account)` instead.

    Same calls as `oms.actors.AccountHost` for what a gate needs, plus the operator commands. Marks reach every
    account (so each account's reference is the tape's). Everything that does not come from the account's gate
    drains the gate first (see the module docstring).
    """

    def __init__(self, states: Iterable[AccountState]) -> None:
        self._states = {s.account: s for s in states}
        self._log: dict[str, list[AccountEvent]] = {a: [] for a in self._states}
        self._desk = AllowanceDesk()

    # -- queries --

    def state(self, account: str) -> AccountState:
        return self._states[account]

    def events(self, account: str) -> list[AccountEvent]:
        """Every event applied to `account` here, in order: its journal."""
        return self._log[account]

    # -- what the gate calls --

    def attach_drain(self, account: str, drain: Callable[[], None]) -> None:
        self._desk.attach_drain(account, drain)

    def submit_batch(self, items: list[tuple[SubmitOrder, int, int]]) -> list[OrderAccepted | OrderRejected]:
        """Strict decisions, each applied before the next is made."""
        out: list[OrderAccepted | OrderRejected] = []
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
        state = self._states[account]
        self._desk.drain(account)
        event = state.grant_allowance(request, ts_ns)
        if event is not None:
            self._log[account].append(event)
        return self._desk.issue(state, event)

    def report_spent(self, events: list[AccountEvent]) -> None:
        """The gate's reports: AllowanceSpent + OrderAccepted pairs (no drain: they are the queue)."""
        for event in events:
            self._apply(self._states[event.account], [event])

    def return_allowance(self, account: str, grant_id: int, ts_ns: int) -> None:
        state = self._states[account]
        self._log[account].append(state.return_allowance(grant_id, ts_ns))
        self._desk.sync(state)

    # -- operator commands --

    def set_kill_switch(self, account: str, on: bool, ts_ns: int) -> list[int]:
        """Drain the gate, then block (or unblock) new orders; returns the working orders to cancel."""
        state = self._operator(account)
        self._log[account].append(state.set_kill_switch(on, ts_ns))
        self._desk.sync(state)
        return state.working_orders()

    def set_trading_state(self, account: str, trading_state: TradingState, ts_ns: int) -> None:
        state = self._operator(account)
        self._log[account].append(state.set_trading_state(trading_state, ts_ns))
        self._desk.sync(state)

    def set_limits(self, account: str, limits: AccountLimits, ts_ns: int) -> None:
        state = self._operator(account)
        self._log[account].append(state.set_limits(limits, ts_ns))
        self._desk.sync(state)

    def start_day(self, account: str, ts_ns: int) -> None:
        state = self._operator(account)
        self._log[account].append(state.start_day(ts_ns))
        self._desk.sync(state)

    def revoke_allowance(self, account: str, ts_ns: int) -> None:
        state = self._operator(account)
        self._log[account].append(state.revoke_allowance(ts_ns))
        self._desk.sync(state)

    # -- internals --

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
    cl_ord_ids: frozenset[str]
    symbols: dict[str, _Side]
    seen: set[str] = field(default_factory=set)  # ClOrdIDs the account saw since the grant, through this gate


GRANT_RETRY_NS = 50_000_000  # after an empty grant, orders of the account go to the host for this long


class ReservedGate:
    """The OrderManager's risk gate in reserved mode (the `oms.engine.RiskGate` protocol).

    Accounts in `accounts` are decided locally within their allowance and fall back to a strict decision by the
    host otherwise; any other account is always decided by the host. See the module docstring for the rules.
    """

    def __init__(
        self,
        host: AllowanceHost,
        instruments: InstrumentRegistry,
        accounts: Iterable[str],
        request: AllowanceRequest | None = None,
        batch: int = 32,
        low_orders: int = 4,
    ) -> None:
        """`batch`: reports queued before they are sent; `low_orders`: tokens left at which a refill is asked for
        at the next post-trade call."""
        self._host = host
        self._instruments = instruments
        self._accounts = frozenset(accounts)
        self._request = request or AllowanceRequest()
        self._batch = max(batch, 1)
        self._low_orders = low_orders
        self._local: dict[str, _Local] = {}
        self._pending: list[AccountEvent] = []
        self._low: set[str] = set()
        self._retry_at: dict[str, int] = {}  # account -> earliest ts to ask again after a grant came back empty
        self._clock = 0  # the latest now_ns seen: grants asked for outside a decision are stamped with it
        self.local_accepts = 0
        self.fallbacks = 0
        for account in self._accounts:
            host.attach_drain(account, self.flush)

    # -- RiskGate --

    def decide(self, cmd: SubmitOrder, order_id: int, now_ns: int) -> OrderAccepted | OrderRejected:
        """Accept locally within the account's allowance, else ask the host (and then ask for a fresh grant)."""
        if now_ns > self._clock:
            self._clock = now_ns
        loc = self._local.get(cmd.account)
        if loc is not None and not loc.lease.void and now_ns >= loc.ts_ns:
            accepted = self._spend(loc, cmd, order_id, now_ns)
            if accepted is not None:
                return accepted
        return self._fallback(cmd, order_id, now_ns)

    def decide_replace(self, cmd: ReplaceOrder, order_id: int, now_ns: int) -> RejectReason:
        """Always the host's strict check (replaces are not covered by allowances)."""
        self.flush()
        return self._host.check_replace(cmd, order_id, now_ns)

    def on_events(self, events: Iterable[Message]) -> None:
        """Send queued reports, then the post-trade events (synchronously), then top up allowances running low."""
        self.flush()
        batch: list[AccountEvent] = []
        prints: list[TradePrinted] = []
        for e in events:
            if isinstance(e, TradePrinted):
                prints.append(e)
                continue
            if isinstance(e, OrderReplaced | OrderRejected):
                loc = self._local.get(e.account)
                if loc is not None:
                    loc.seen.add(e.cl_ord_id)
            batch.append(e)  # type: ignore[arg-type]
        if batch:
            self._host.apply_batch(batch)
        for p in prints:
            self._host.mark(p.symbol, p.price, p.ts_ns)
        self.refill()

    def set_kill_switch(self, account: str, on: bool, now_ns: int) -> None:
        """Block (on) or allow new orders of `account`; the host drains this gate and voids its allowance first,
        so nothing is accepted locally after the switch."""
        self.flush()
        self._host.set_kill_switch(account, on, now_ns)

    def accounts(self) -> list[str]:
        """The accounts this gate decides for locally (others go to the host, strict)."""
        return sorted(self._accounts)

    # -- reserved mode --

    def flush(self) -> None:
        """Hand every queued report to the host."""
        if self._pending:
            batch, self._pending = self._pending, []
            self._host.report_spent(batch)

    def refill(self) -> None:
        """Ask for a fresh grant for every account whose allowance is void, missing or low."""
        for account in self._accounts:
            loc = self._local.get(account)
            if loc is None or loc.lease.void or account in self._low:
                self._grant(account, self._clock)

    def give_back(self, account: str) -> None:
        """Return what is left of `account`'s allowance to the host."""
        self.flush()
        loc = self._local.pop(account, None)
        self._low.discard(account)
        if loc is not None and not loc.lease.void:
            self._host.return_allowance(account, loc.grant_id, self._clock)

    def allowance_left(self, account: str) -> tuple[int, int] | None:
        """(tokens, credit) left of `account`'s valid allowance, None when it has none."""
        loc = self._local.get(account)
        if loc is None or loc.lease.void:
            return None
        return loc.orders, loc.credit

    # -- internals --

    def _spend(self, loc: _Local, cmd: SubmitOrder, order_id: int, now_ns: int) -> OrderAccepted | None:
        if loc.orders < 1:
            return None
        side = loc.symbols.get(cmd.symbol)
        if side is None:
            return None
        qty = cmd.qty
        if qty <= 0 or qty > side.max_qty:
            return None
        if cmd.ord_type is OrdType.LIMIT:
            value = cmd.price
            if value is None or value < side.lo or value > side.hi:
                return None
        elif cmd.ord_type is OrdType.MARKET:
            value = side.value_cap
        else:
            return None
        credit = qty * value * side.factor
        if credit > loc.credit or credit > loc.max_notional:
            return None
        buy = cmd.side is Side.BUY
        if qty > (side.buy if buy else side.sell):
            return None
        cl = cmd.cl_ord_id
        if cl in loc.cl_ord_ids or cl in loc.seen:
            return None
        if buy:
            side.buy -= qty
        else:
            side.sell -= qty
        loc.orders -= 1
        loc.credit -= credit
        loc.seen.add(cl)
        accepted = OrderAccepted(
            order_id, cl, cmd.account, cmd.symbol, cmd.side, cmd.ord_type, cmd.tif, qty, cmd.price, now_ns,
            cmd.stop_price,
        )  # fmt: skip
        pending = self._pending
        pending.append(AllowanceSpent(cmd.account, loc.grant_id, order_id, cmd.symbol, cmd.side, qty, credit, now_ns))
        pending.append(accepted)
        self.local_accepts += 1
        if loc.orders <= self._low_orders:
            self._low.add(cmd.account)
        if len(pending) >= 2 * self._batch:
            self.flush()
        return accepted

    def _fallback(self, cmd: SubmitOrder, order_id: int, now_ns: int) -> OrderAccepted | OrderRejected:
        self.fallbacks += 1
        self.flush()
        (decision,) = self._host.submit_batch([(cmd, order_id, now_ns)])
        loc = self._local.get(cmd.account)
        if loc is not None:
            loc.seen.add(cmd.cl_ord_id)
        wants = loc is None or loc.lease.void or cmd.account in self._low
        if cmd.account in self._accounts and wants and now_ns >= self._retry_at.get(cmd.account, 0):
            self._grant(cmd.account, now_ns)
        return decision

    def _grant(self, account: str, ts_ns: int) -> None:
        self.flush()
        self._low.discard(account)
        allowance = self._host.grant_allowance(account, self._request, ts_ns)
        if allowance is None:  # nothing to grant yet (e.g. no reference price): ask again later, not every order
            self._local.pop(account, None)
            self._retry_at[account] = ts_ns + GRANT_RETRY_NS
            return
        self._retry_at.pop(account, None)
        g, lim = allowance.grant, allowance.limits
        symbols: dict[str, _Side] = {}
        for s in g.symbols:
            inst = self._instruments.by_symbol(s.symbol)
            if inst is None:
                continue
            max_qty = lim.symbols[s.symbol].max_order_qty
            symbols[s.symbol] = _Side(s.lo, s.hi, s.value_cap, money_factor(inst), max_qty, s.buy_qty, s.sell_qty)
        self._local[account] = _Local(
            account, g.grant_id, g.ts_ns, allowance.lease, g.orders, g.credit, lim.max_order_notional,
            allowance.cl_ord_ids, symbols,
        )  # fmt: skip
