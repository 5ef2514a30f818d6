"""AccountState: one account's positions, cash, P&L, open-order exposure, limits and trading state. Pure.

Event-sourced, the actor pattern. `decide` (`oms.core.accounts.view`) answers a new order with an OrderAccepted or
OrderRejected and changes nothing; `apply(event)` is the only way state changes, and it takes every event of
`oms.core.model.messages.Event` plus the admin events of `oms.core.accounts.events` (`AdminEvent`). The admin commands
(`mark`, `quote`, `set_kill_switch`, `set_trading_state`, `set_limits`, `start_day`, and the allowance's) build their
event, apply it and return it for the journal. So the state is a pure function of (initial limits, event sequence):
replaying the journal into a fresh `AccountState(account, limits, instruments)` rebuilds it exactly, and `state_hash`
proves it.

Units: quantities and prices in instrument units, money in 10**-MONEY_PRECISION currency units (`risk.money`), one
currency for everything.

Trading state: ACTIVE, REDUCING, HALTED. Drawdown breakers (`risk.breakers`) escalate it automatically after every
event; only `set_trading_state` de-escalates. That explicit choice holds while the drawdown stays at the level it
had then (the operator accepted it); the breaker trips again once the drawdown reaches a higher level, or falls
below and then comes back. The kill switch is separate and blocks every new order; the actor
cancels `working_orders()` itself.

The native kernel's copy: every event pushes into `native.RiskKernel` the numbers it changed, so the kernel judges a
new order on what the rules would read (`oms.core.accounts.view`).

Allowances (reserved mode): `oms.core.accounts.allowance`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

import msgspec

from native import RiskKernel, _risk
from oms.core.accounts.allowance import AllowanceRequest, Allowances, AllowanceState, copy_allowance
from oms.core.accounts.events import (
    AccountError,
    AccountEvent,
    AllowanceGranted,
    AllowanceReturned,
    AllowanceRevoked,
    AllowanceSpent,
    AllowanceToppedUp,
    DayStarted,
    DuplicateOrder,
    KillSwitchSet,
    LimitsChanged,
    Marked,
    MissingReference,
    OverfillError,
    Quoted,
    TradingStateSet,
    UnknownOrder,
    WrongAccount,
)
from oms.core.accounts.ledger import MarketPrices, OpenOrder, Position, trade
from oms.core.accounts.view import AccountView, limit_price
from oms.core.model.enums import Side, TradingState
from oms.core.model.instruments import Instrument, InstrumentRegistry
from oms.core.model.messages import (
    CancelRejected,
    OrderAccepted,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderReplaced,
    SubmitOrder,
)
from risk import checks
from risk.breakers import DrawdownLevel, escalate
from risk.limits import AccountLimits
from risk.money import money_factor, notional_money
from risk.throttle import SlidingWindow

__all__ = ["AccountSnapshot", "AccountState"]

_STATE_CODE = {
    TradingState.ACTIVE: _risk.ACTIVE,
    TradingState.REDUCING: _risk.REDUCING,
    TradingState.HALTED: _risk.HALTED,
}
_canonical = msgspec.msgpack.Encoder(order="sorted")


class AccountSnapshot(msgspec.Struct, frozen=True, tag="account_snapshot", omit_defaults=True):
    """Everything an AccountState is, in canonical order (lists sorted; dicts are sorted when hashed)."""

    account: str
    limits: AccountLimits
    cash: int
    sod_equity: int
    trading_state: TradingState
    kill_switch: bool
    breaker_ack: DrawdownLevel
    positions: dict[str, Position]
    orders: list[OpenOrder]
    marks: MarketPrices
    cl_ord_ids: list[str]
    rate_times: list[int]
    allowance: AllowanceState | None = None  # omitted when None: snapshots without allowances encode as before
    grant_seq: int = 0


class AccountState(AccountView):
    """The pure core of an account actor: its reads and decisions (`AccountView`), and the events that change it.
    See the module docstrings for every rule it applies."""

    def __init__(self, account: str, limits: AccountLimits, instruments: InstrumentRegistry) -> None:
        self.account = account
        self._instruments = instruments
        self._set_limits(limits)
        self._cash = limits.start_cash
        self._sod_equity = limits.start_cash
        self._trading_state = TradingState.ACTIVE
        self._kill_switch = False
        self._breaker_ack = DrawdownLevel.NONE  # drawdown level an operator accepted with set_trading_state
        self._positions: dict[str, Position] = {}
        self._orders: dict[int, OpenOrder] = {}
        self._marks = MarketPrices()
        self._cl_ord_ids: set[str] = set()
        self._rate = SlidingWindow(limits.orders_per_window, limits.window_ns)
        self._allowances = Allowances()
        # derived, rebuilt from the above on restore
        self._exposure = 0
        self._working: dict[tuple[str, Side], int] = {}
        self._kernel = RiskKernel([i.symbol for i in instruments], [_factor(i) for i in instruments])
        self._push_all()

    def _set_limits(self, limits: AccountLimits) -> None:
        self._limits = limits
        self._known = frozenset(s for s in limits.symbols if self._instruments.by_symbol(s) is not None)
        self._restricted = frozenset(limits.restricted_symbols)

    # -- THE ALLOWANCE (reserved mode) --

    def allowance(self) -> AllowanceState | None:
        """A copy of the live allowance, None when there is none (never granted, spent, void)."""
        return copy_allowance(self._allowances.live)

    @property
    def allowance_id(self) -> int:
        """The live allowance's grant id, 0 when there is none."""
        return self._allowances.grant_id

    def allowance_covers(self, symbol: str) -> bool:
        """True while the live allowance grants something on `symbol`."""
        live = self._allowances.live
        return live is not None and symbol in live.symbols

    def exposed_symbols(self) -> set[str]:
        """Symbols the account has a position or a working order in: those whose price moves its equity and holds."""
        out = {s for s, p in self._positions.items() if p.qty}
        out.update(o.symbol for o in self._orders.values())
        return out

    def symbols_in_play(self) -> set[str]:
        """Symbols the account has a position, a working order or a live allowance in: those a trade print moves."""
        out = self.exposed_symbols()
        if self._allowances.live is not None:
            out.update(self._allowances.live.symbols)
        return out

    # -- EVENTS: the only mutation path --

    def apply(self, event: AccountEvent) -> None:
        """Apply one event of this account. Raises an AccountError subclass for events that can only be bugs."""
        if event.account != self.account:
            raise WrongAccount(f"account {self.account}: event for account {event.account}: {event!r}")
        match event:
            case OrderAccepted():
                self._on_accepted(event)
            case OrderFilled():
                self._on_filled(event)
            case OrderCanceled() | OrderExpired():
                self._remove(event.order_id)
            case OrderRejected():
                if event.cl_ord_id:
                    self._cl_ord_ids.add(event.cl_ord_id)
                self._remove(event.order_id)
            case OrderReplaced():
                self._on_replaced(event)
            case CancelRejected():
                pass
            case Marked():
                self._marks.last[event.symbol] = event.price
            case Quoted():
                self._marks.quote(event.symbol, event.bid, event.ask)
            case KillSwitchSet():
                self._kill_switch = event.on
            case TradingStateSet():
                self._trading_state = event.state
            case LimitsChanged():
                self._set_limits(event.limits)
                self._rate = SlidingWindow(event.limits.orders_per_window, event.limits.window_ns, self._rate.times())
            case DayStarted():
                self._sod_equity = self.equity()
                self._cl_ord_ids.clear()
            case AllowanceGranted() | AllowanceSpent() | AllowanceToppedUp() | AllowanceReturned() | AllowanceRevoked():
                self._allowances.take(event)
            case _:
                raise AccountError(f"account {self.account}: not an account event: {event!r}")
        level = self.drawdown_level()
        if isinstance(event, TradingStateSet):
            self._breaker_ack = level
        else:
            self._breaker_ack = min(self._breaker_ack, level)
            if level > self._breaker_ack:
                self._trading_state = escalate(self._trading_state, level)
        self._allowances.after(self, event)
        if type(event) is LimitsChanged:
            self._push_all()
            return
        symbol = getattr(event, "symbol", None)
        if symbol is not None:
            self._push_symbol(symbol)
        self._push_account()

    def apply_all(self, events: Iterable[AccountEvent]) -> None:
        for event in events:
            self.apply(event)

    def _on_accepted(self, e: OrderAccepted) -> None:
        if e.order_id in self._orders:
            raise DuplicateOrder(f"account {self.account}: order {e.order_id} accepted twice")
        inst = self.instrument(e.symbol)
        value_px = self._valuation(e.symbol, limit_price(e.ord_type, e.price), e.order_id)
        hold = self._hold_for(inst, e.side, e.qty, value_px, None)
        order = OpenOrder(e.order_id, e.cl_ord_id, e.symbol, e.side, e.ord_type, e.price, e.qty, e.qty, hold)
        self._cl_ord_ids.add(e.cl_ord_id)
        self._rate.record(e.ts_ns)
        self._orders[e.order_id] = order
        self._exposure += hold
        key = (e.symbol, e.side)
        self._working[key] = self._working.get(key, 0) + e.qty

    def _on_filled(self, e: OrderFilled) -> None:
        order = self._orders.get(e.order_id)
        if order is None:
            raise UnknownOrder(f"account {self.account}: fill {e.exec_id} for unknown order {e.order_id}")
        if e.qty <= 0 or e.qty > order.leaves:
            raise OverfillError(
                f"account {self.account}: fill {e.exec_id} of {e.qty} on order {e.order_id} with leaves {order.leaves}"
            )
        inst = self.instrument(order.symbol)
        notional = notional_money(inst, e.qty, e.price)
        self._cash -= order.side.sign * notional
        pos = self._positions.get(order.symbol)
        if pos is None:
            pos = self._positions[order.symbol] = Position()
        trade(pos, order.side.sign * e.qty, notional)
        self._marks.last[order.symbol] = e.price
        leaves = order.leaves - e.qty
        hold = order.hold * leaves // order.leaves
        self._exposure -= order.hold - hold
        self._working[(order.symbol, order.side)] -= e.qty
        order.leaves = leaves
        order.hold = hold
        if leaves == 0:
            self._remove(order.order_id)

    def _on_replaced(self, e: OrderReplaced) -> None:
        order = self._orders.get(e.order_id)
        if order is None:
            raise UnknownOrder(f"account {self.account}: replace of unknown order {e.order_id}")
        self._cl_ord_ids.add(e.cl_ord_id)
        key = (order.symbol, order.side)
        self._working[key] += e.leaves_qty - order.leaves
        self._exposure -= order.hold
        order.qty, order.price, order.leaves, order.cl_ord_id, order.hold = e.qty, e.price, e.leaves_qty, e.cl_ord_id, 0
        if order.leaves <= 0:
            self._remove(order.order_id)
            return
        value_px = self._valuation(order.symbol, limit_price(order.ord_type, e.price), e.order_id)
        order.hold = self._hold_for(self.instrument(order.symbol), order.side, order.leaves, value_px, order)
        self._exposure += order.hold

    def _valuation(self, symbol: str, price: int | None, order_id: int) -> int:
        """What an order with limit price `price` (None: none) is valued at, on the account's own marks.
        MissingReference for an order without a limit price while the account has no reference for `symbol`."""
        if price is not None:
            return price
        ref = self._marks.reference_price(symbol)
        if ref is None:
            raise MissingReference(f"account {self.account}: order {order_id}: no reference for {symbol}")
        return checks.collared_price(ref, self._limits.symbols[symbol].collar_bp)

    def _remove(self, order_id: int) -> None:
        """Release whatever the order still holds and forget it; unknown ids are ignored (risk rejects)."""
        order = self._orders.pop(order_id, None)
        if order is None:
            return
        self._exposure -= order.hold
        key = (order.symbol, order.side)
        left = self._working[key] - order.leaves
        if left:
            self._working[key] = left
        else:
            del self._working[key]

    # -- THE KERNEL'S COPY of what a new order is judged against --

    def _push_all(self) -> None:
        lim = self._limits
        self._kernel.set_limits(
            lim.max_order_notional, lim.credit_limit, lim.max_gross_notional, lim.max_net_notional,
            lim.max_open_orders, lim.window_ns,
            {s: (v.max_order_qty, v.max_position, v.collar_bp) for s, v in lim.symbols.items()}, self._restricted,
        )  # fmt: skip
        self._kernel.set_seen(self._cl_ord_ids)
        for inst in self._instruments:
            self._push_symbol(inst.symbol)
        self._push_account()

    def _push_account(self) -> None:
        self._kernel.set_account(
            self._kill_switch, _STATE_CODE[self._trading_state], self._cash, self._exposure, len(self._orders),
            self._rate.full_since(),
        )  # fmt: skip

    def _push_symbol(self, symbol: str) -> None:
        pos = self._positions.get(symbol)
        working = self._working
        self._kernel.set_symbol(
            symbol, 0 if pos is None else pos.qty, 0 if pos is None else pos.cost,
            self._marks.reference_price(symbol),
            working.get((symbol, Side.BUY), 0), working.get((symbol, Side.SELL), 0),
        )  # fmt: skip

    # -- ADMIN COMMANDS: build the event, apply it, return it for the journal --

    def mark(self, symbol: str, price: int, ts_ns: int = 0) -> Marked:
        event = Marked(self.account, symbol, price, ts_ns)
        self.apply(event)
        return event

    def quote(self, symbol: str, bid: int | None, ask: int | None, ts_ns: int = 0) -> Quoted:
        event = Quoted(self.account, symbol, bid, ask, ts_ns)
        self.apply(event)
        return event

    def quote_for(
        self, cmd: SubmitOrder, quotes: Mapping[str, tuple[int, int]] | None, ts_ns: int = 0
    ) -> Quoted | None:
        """The quote (`Decide.quotes`) an order without a limit price is to be valued on, taken and returned for
        the journal; None when the order has a limit price, no quote came for its symbol, or the account has a trade
        price for it (last print or mark) or already values it at that quote's mid."""
        quote = None if quotes is None or cmd.price is not None else quotes.get(cmd.symbol)
        if quote is None or not self.wants_quote(cmd.symbol, *quote):
            return None
        return self.quote(cmd.symbol, *quote, ts_ns)

    def set_kill_switch(self, on: bool, ts_ns: int = 0) -> KillSwitchSet:
        """Block (on) or allow new orders. Working orders are not touched here: cancel `working_orders()`."""
        event = KillSwitchSet(self.account, on, ts_ns)
        self.apply(event)
        return event

    def set_trading_state(self, state: TradingState, ts_ns: int = 0) -> TradingStateSet:
        """Set the state outright, de-escalation included; the current drawdown level counts as accepted."""
        event = TradingStateSet(self.account, state, ts_ns)
        self.apply(event)
        return event

    def set_limits(self, limits: AccountLimits, ts_ns: int = 0) -> LimitsChanged:
        """Replace the limits; working orders keep their holds."""
        event = LimitsChanged(self.account, limits, ts_ns)
        self.apply(event)
        return event

    def start_day(self, ts_ns: int = 0) -> DayStarted:
        event = DayStarted(self.account, ts_ns)
        self.apply(event)
        return event

    def grant_allowance(self, request: AllowanceRequest, ts_ns: int) -> AllowanceGranted | None:
        """Grant (apply and return, for the journal) the allowance `request` asks for, sized to what the account
        can certify now; None when it can grant nothing (kill switch, not ACTIVE, no rate or open-order room, no
        symbol with a reference price). A live allowance is replaced (its unspent part lapses)."""
        event = self._allowances.grant(self, request, ts_ns)
        if event is not None:
            self.apply(event)
        return event

    def top_up_allowance(self, grant_id: int, request: AllowanceRequest, ts_ns: int) -> AllowanceToppedUp | None:
        """Bring the live grant `grant_id` back up to what `request` would grant now, keeping its id, price bands and
        `rate_used` (apply and return it, for the journal); None when that grant is not live or nothing can be
        added. What is added is certified like a grant: the topped-up allowance must pass the same check before the
        event exists."""
        event = self._allowances.top_up(self, grant_id, request, ts_ns)
        if event is not None:
            self.apply(event)
        return event

    def return_allowance(self, grant_id: int, ts_ns: int = 0) -> AllowanceReturned:
        event = AllowanceReturned(self.account, grant_id, ts_ns)
        self.apply(event)
        return event

    def revoke_allowance(self, ts_ns: int = 0) -> AllowanceRevoked:
        event = AllowanceRevoked(self.account, ts_ns)
        self.apply(event)
        return event

    # -- SNAPSHOTS --

    def snapshot(self) -> AccountSnapshot:
        """A deep copy of the state in canonical form."""
        return AccountSnapshot(
            account=self.account,
            limits=self._limits,
            cash=self._cash,
            sod_equity=self._sod_equity,
            trading_state=self._trading_state,
            kill_switch=self._kill_switch,
            breaker_ack=self._breaker_ack,
            positions={s: msgspec.structs.replace(p) for s, p in sorted(self._positions.items())},
            orders=[msgspec.structs.replace(self._orders[i]) for i in sorted(self._orders)],
            marks=MarketPrices(
                last=dict(sorted(self._marks.last.items())),
                bid=dict(sorted(self._marks.bid.items())),
                ask=dict(sorted(self._marks.ask.items())),
            ),
            cl_ord_ids=sorted(self._cl_ord_ids),
            rate_times=self._rate.times(),
            allowance=self.allowance(),
            grant_seq=self._allowances.grant_seq,
        )

    @classmethod
    def restore(cls, snapshot: AccountSnapshot, instruments: InstrumentRegistry) -> AccountState:
        """The state `snapshot` was taken of; `restore(s).state_hash()` equals the original's."""
        state = cls(snapshot.account, snapshot.limits, instruments)
        state._cash = snapshot.cash
        state._sod_equity = snapshot.sod_equity
        state._trading_state = snapshot.trading_state
        state._kill_switch = snapshot.kill_switch
        state._breaker_ack = snapshot.breaker_ack
        state._positions = {s: msgspec.structs.replace(p) for s, p in snapshot.positions.items()}
        state._marks = MarketPrices(dict(snapshot.marks.last), dict(snapshot.marks.bid), dict(snapshot.marks.ask))
        state._cl_ord_ids = set(snapshot.cl_ord_ids)
        state._rate = SlidingWindow(snapshot.limits.orders_per_window, snapshot.limits.window_ns, snapshot.rate_times)
        state._allowances = Allowances(copy_allowance(snapshot.allowance), snapshot.grant_seq)
        for o in snapshot.orders:
            order = state._orders[o.order_id] = msgspec.structs.replace(o)
            state._exposure += order.hold
            key = (order.symbol, order.side)
            state._working[key] = state._working.get(key, 0) + order.leaves
        state._push_all()
        return state

    def state_hash(self) -> str:
        """blake2b (128 bits, hex) of the canonical msgpack encoding of `snapshot()`."""
        return hashlib.blake2b(_canonical.encode(self.snapshot()), digest_size=16).hexdigest()


def _factor(inst: Instrument) -> int:
    """The instrument's money factor; -1 when it has none (the kernel then leaves its orders to the rules)."""
    try:
        return money_factor(inst)
    except ValueError:
        return -1
