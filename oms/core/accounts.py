"""AccountState: one account's positions, cash, P&L, open-order exposure, limits and trading state. Pure.

Event-sourced, the actor pattern. `decide` answers a new order with an OrderAccepted or OrderRejected and changes
nothing; `apply(event)` is the only way state changes, and it takes every event of `oms.core.model.messages.Event` plus
the admin events defined here (`AdminEvent`). The admin commands (`mark`, `quote`, `set_kill_switch`,
`set_trading_state`, `set_limits`, `start_day`) build their event, apply it and return it for the journal. So the
state is a pure function of (initial limits, event sequence): replaying the journal into a fresh
`AccountState(account, limits, instruments)` rebuilds it exactly, and `state_hash` proves it.

Units: quantities and prices in instrument units, money in 10**-MONEY_PRECISION currency units (`risk.money`), one
currency for everything.

Decision order in `decide` (the first failing check is the reason):
  1. account (UNKNOWN_ACCOUNT when the command names another account), 2. kill switch (KILL_SWITCH),
  3. HALTED, 4. symbol known (UNKNOWN_SYMBOL), 5. restricted (RESTRICTED_SYMBOL), 6. duplicate ClOrdID
  (DUPLICATE_CL_ORD_ID), 7. qty (INVALID_QTY, MAX_ORDER_QTY), 8. pricing (NO_REFERENCE_PRICE for an order
  without a limit price and no reference), 9. notional (MAX_ORDER_NOTIONAL), 10. collar (PRICE_COLLAR, LIMIT
  orders with a reference only), 11. order rate (ORDER_RATE), 12. open orders (MAX_OPEN_ORDERS),
  13. reduce-only when REDUCING (REDUCE_ONLY), 14. position (POSITION_LIMIT), 15. gross (GROSS_LIMIT),
  16. net (NET_LIMIT), 17. credit (CREDIT_LIMIT).

Reference price of a symbol: the last trade, else the mid of bid and ask (rounded down to a price unit), else
none. The account keeps its own (events `Marked`, `Quoted`; every fill also marks at its price); `decide` may be
given another `MarketView`, which then serves as the reference for that decision only.

Valuation price of an order: its limit price; without one (MARKET, STOP) the top of the collar band,
ceil(reference * (1 + collar)).

Exposure (the hold): fixed when the OrderAccepted is applied, from the account's own marks.
  - a buy holds qty * valuation price;
  - a sell holds the part that opens or extends a short: qty minus what is left of a long position after the
    account's other working sells; a sell that only closes a long holds nothing.
  Fills release the hold in proportion to the leaves quantity (rounded down, so it reaches exactly 0 when the order
  is done); cancel, expiry and reject release what is left; a replace re-computes it for the new terms.
Buying power = cash + credit_limit - held exposure - 2 * |market value of short positions|: a short's proceeds
  are not spendable, and the short ties up its notional as a long does (so filling a sell that opened a short
  leaves buying power where its hold had put it). A new order passes the credit check when its hold <= buying
  power.
REDUCING: an order passes only if, together with the account's other working orders on the same side and symbol,
  it cannot increase |position|.
Position limits use the worst case (all working same-side orders and this one fill) and refuse only what would end
  above the limit *and* above today's level, so risk-reducing orders always pass them.

Positions: signed qty; `cost` is the signed money basis of the open quantity. Reducing q of |qty| removes
  cost * q / |qty| (truncated; the remainder stays in the basis and leaves with the last unit), realized P&L is
  the closing value minus the removed basis; a flip closes first and opens the rest at the fill price.
  Market value = qty * mark (the reference price; cost when there is none); unrealized = market value - cost.
  Equity = cash + sum of market values. Always: cash + sum(cost) == initial cash + sum(realized).

Native check: `decide` asks a `native.RiskKernel` that holds, in C, every number a new order is judged against;
`apply` and `restore` push those numbers into it. It gives the reason the rules above give (`reference_reason`,
the Python definition; tests/property/test_risk_kernel.py holds it to them) or hands the order back to those rules
when a number does not fit 64 bits.

Trading state: ACTIVE, REDUCING, HALTED. Drawdown breakers (`risk.breakers`) escalate it automatically after every
event; only `set_trading_state` de-escalates. That explicit choice holds while the drawdown stays at the level it
had then (the operator accepted it); the breaker trips again once the drawdown reaches a higher level, or falls
below and then comes back. The kill switch is separate and blocks every new order; the actor
cancels `working_orders()` itself.

Throttle: the account's order-rate window records the ts_ns of each OrderAccepted (rejected orders do not consume
the budget), so replay rebuilds it. `decide` asks it at `now_ns`, which becomes the accepted event's ts_ns.
Duplicate ClOrdIDs: every ClOrdID of an accepted, rejected or replaced order of the account since the last
`start_day`. Account events carry no session, so the rule is per account (stricter than FIX's per session); the
per-session message throttle is `risk.throttle.SessionThrottle`, held by whoever sees sessions.

Allowances (reserved mode, `oms.core.reserved`): `grant_allowance` gives the engine a budget it may spend without
asking (order tokens, credit, per symbol and side quantity headroom, a band of limit prices and a valuation cap),
recorded as AllowanceGranted. The grant is a certificate, not a carve-out: strict decisions here ignore it, and
after every event the account re-checks that any order within the unspent budget would still pass `decide`; the
moment it would not (a fill, mark, cancel, replace or strict decision ate into it, a breaker tripped), the
allowance is void. KillSwitchSet, TradingStateSet, LimitsChanged, DayStarted, AllowanceRevoked and
AllowanceReturned void it outright. AllowanceSpent (the engine's report, journaled just before the OrderAccepted it
covers) draws it down; a report against a void or unknown grant is refused (StaleAllowance). `top_up_allowance`
(AllowanceToppedUp) adds to the live grant under the same id, certified the same way, so spends already on their
way against that grant stay good. Voiding is a pure function of the event sequence, so replay rebuilds it. See
`oms.core.reserved` for the rules the engine side follows.

Exceptions are for bugs only: events for another account (WrongAccount), fills or replaces for orders the account
never accepted (UnknownOrder), an order accepted twice (DuplicateOrder), an overfill (OverfillError), an order
without a limit price accepted while the account has no reference price for it (MissingReference).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from fractions import Fraction
from typing import Protocol

import msgspec

from native import UNDECIDED, RiskKernel, _risk
from oms.core.model.enums import OrdType, RejectReason, Side, TradingState
from oms.core.model.instruments import Instrument, InstrumentRegistry
from oms.core.model.messages import (
    CancelRejected,
    Event,
    OrderAccepted,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderReplaced,
    ReplaceOrder,
    SubmitOrder,
)
from risk import checks
from risk.breakers import DrawdownLevel, drawdown, drawdown_level, escalate
from risk.limits import AccountLimits
from risk.money import money_factor, notional_money
from risk.reasons import describe
from risk.throttle import SlidingWindow

__all__ = [
    "AccountError",
    "AccountEvent",
    "AccountSnapshot",
    "AccountState",
    "AdminEvent",
    "AllowanceGranted",
    "AllowanceOverdrawn",
    "AllowanceRequest",
    "AllowanceReturned",
    "AllowanceRevoked",
    "AllowanceSpent",
    "AllowanceState",
    "AllowanceToppedUp",
    "DayStarted",
    "DuplicateOrder",
    "KillSwitchSet",
    "LimitsChanged",
    "Marked",
    "MarketPrices",
    "MarketView",
    "MissingReference",
    "OpenOrder",
    "OverfillError",
    "Position",
    "Quoted",
    "StaleAllowance",
    "SymbolAllowance",
    "SymbolHeadroom",
    "SymbolTopUp",
    "TradingStateSet",
    "UnknownOrder",
    "WrongAccount",
    "account_decoder",
    "account_encoder",
]

_OK = RejectReason.NONE
_BP = 10_000
_REASONS = {int(r): r for r in RejectReason}
_STATE_CODE = {
    TradingState.ACTIVE: _risk.ACTIVE,
    TradingState.REDUCING: _risk.REDUCING,
    TradingState.HALTED: _risk.HALTED,
}


# -- ERRORS (bugs, never decisions) --


class AccountError(Exception):
    """An event the account cannot take: a bug upstream or a journal that does not belong to this account."""


class WrongAccount(AccountError):
    pass


class UnknownOrder(AccountError):
    pass


class DuplicateOrder(AccountError):
    pass


class OverfillError(AccountError):
    pass


class MissingReference(AccountError):
    pass


class StaleAllowance(AccountError):
    """A spend reported against an allowance that is void or was never granted."""


class AllowanceOverdrawn(AccountError):
    """A spend larger than what is left of the allowance."""


# -- ADMIN EVENTS --


class Marked(msgspec.Struct, frozen=True, tag="marked"):
    """A last trade: marks positions to `price` and becomes the symbol's reference price."""

    account: str
    symbol: str
    price: int
    ts_ns: int


class Quoted(msgspec.Struct, frozen=True, tag="quoted"):
    """Best bid and ask; their mid is the reference price while the symbol has no last trade."""

    account: str
    symbol: str
    bid: int | None
    ask: int | None
    ts_ns: int


class KillSwitchSet(msgspec.Struct, frozen=True, tag="kill_switch_set"):
    account: str
    on: bool
    ts_ns: int


class TradingStateSet(msgspec.Struct, frozen=True, tag="trading_state_set"):
    """An operator's choice of trading state: the only way back to ACTIVE after a breaker tripped."""

    account: str
    state: TradingState
    ts_ns: int


class LimitsChanged(msgspec.Struct, frozen=True, tag="limits_changed"):
    """New limits. Cash is not touched (`start_cash` only seeds a new account)."""

    account: str
    limits: AccountLimits
    ts_ns: int


class DayStarted(msgspec.Struct, frozen=True, tag="day_started"):
    """Start of a trading day: start-of-day equity becomes the current equity; seen ClOrdIDs are forgotten."""

    account: str
    ts_ns: int


class SymbolAllowance(msgspec.Struct, frozen=True):
    """What an allowance grants on one symbol: limit prices in [lo, hi], every order valued at most at `value_cap`
    (orders without a limit price at exactly `value_cap`), and at most `buy_qty` / `sell_qty` more on each side."""

    symbol: str
    lo: int
    hi: int
    value_cap: int
    buy_qty: int
    sell_qty: int


class AllowanceGranted(msgspec.Struct, frozen=True, tag="allowance_granted"):
    """A budget the engine may spend without asking: `orders` order tokens, `credit` money of holds, and the
    per-symbol terms. `rate_used` is how many orders the rate window counted at `ts_ns` (see `AllowanceState`)."""

    account: str
    grant_id: int
    orders: int
    credit: int
    rate_used: int
    symbols: tuple[SymbolAllowance, ...]
    ts_ns: int


class AllowanceSpent(msgspec.Struct, frozen=True, tag="allowance_spent"):
    """The engine accepted order `order_id` under grant `grant_id`, spending one token, `credit` and `qty` of the
    symbol's headroom on `side`. Journaled immediately before that order's OrderAccepted. `wal`: the id of the gate's
    write-ahead entry holding the pair (`oms.infra.redis.reportlog`), empty when the gate keeps no log."""

    account: str
    grant_id: int
    order_id: int
    symbol: str
    side: Side
    qty: int
    credit: int
    ts_ns: int
    wal: str = ""


class SymbolTopUp(msgspec.Struct, frozen=True):
    """Quantity headroom a top-up adds to one symbol of the live allowance (its price band stays)."""

    symbol: str
    buy_qty: int
    sell_qty: int


class AllowanceToppedUp(msgspec.Struct, frozen=True, tag="allowance_topped_up"):
    """More of grant `grant_id`, same terms otherwise: `orders` more tokens, `credit` more money, more quantity
    headroom per symbol. The grant id stays, so spends already on their way against it remain good."""

    account: str
    grant_id: int
    orders: int
    credit: int
    symbols: tuple[SymbolTopUp, ...]
    ts_ns: int


class AllowanceReturned(msgspec.Struct, frozen=True, tag="allowance_returned"):
    """The engine gives back what is left of grant `grant_id` (a no-op when it is already void)."""

    account: str
    grant_id: int
    ts_ns: int


class AllowanceRevoked(msgspec.Struct, frozen=True, tag="allowance_revoked"):
    """An operator voids whatever allowance the account has out."""

    account: str
    ts_ns: int


AllowanceEvent = AllowanceGranted | AllowanceSpent | AllowanceToppedUp | AllowanceReturned | AllowanceRevoked
AdminEvent = Marked | Quoted | KillSwitchSet | TradingStateSet | LimitsChanged | DayStarted | AllowanceEvent
AccountEvent = Event | AdminEvent

_VOIDING = (KillSwitchSet, TradingStateSet, LimitsChanged, DayStarted)

account_encoder = msgspec.msgpack.Encoder()
account_decoder: msgspec.msgpack.Decoder[AccountEvent] = msgspec.msgpack.Decoder(AccountEvent)
_canonical = msgspec.msgpack.Encoder(order="sorted")


# -- MARKET --


class MarketView(Protocol):
    """Reference prices: the last trade, else the mid; None when there is neither."""

    def reference_price(self, symbol: str) -> int | None: ...


class MarketPrices(msgspec.Struct):
    """A plain MarketView: last trades and best bid/ask per symbol, in price units."""

    last: dict[str, int] = {}
    bid: dict[str, int] = {}
    ask: dict[str, int] = {}

    def reference_price(self, symbol: str) -> int | None:
        last = self.last.get(symbol)
        if last is not None:
            return last
        bid, ask = self.bid.get(symbol), self.ask.get(symbol)
        if bid is None or ask is None:
            return None
        return (bid + ask) // 2


# -- STATE PIECES --


class Position(msgspec.Struct):
    """Signed quantity, signed money basis of the open quantity, realized P&L (money)."""

    qty: int = 0
    cost: int = 0
    realized: int = 0


class OpenOrder(msgspec.Struct):
    """A working order as the account sees it: what is left and what it holds."""

    order_id: int
    cl_ord_id: str
    symbol: str
    side: Side
    ord_type: OrdType
    price: int | None
    qty: int  # total, filled part included
    leaves: int
    hold: int  # money still held for the leaves


class AllowanceRequest(msgspec.Struct, frozen=True):
    """How much of its headroom an account is asked to grant; shares are basis points of what is available."""

    orders: int = 64  # order tokens at most (also bounded by the rate window and open-order room)
    credit_share_bp: int = 5_000  # of the buying power
    qty_share_bp: int = 5_000  # of each symbol and side's position/gross/net headroom
    band_share_bp: int = 5_000  # of the collar: limit prices within this share of it around the reference
    symbols: tuple[str, ...] | None = None  # None: every tradable symbol with a reference price


class SymbolHeadroom(msgspec.Struct):
    """The unspent part of a SymbolAllowance."""

    lo: int
    hi: int
    value_cap: int
    buy_qty: int
    sell_qty: int


class AllowanceState(msgspec.Struct):
    """The live allowance: what is left of it. `rate_used` counts the rate-window entries newer than
    ts_ns - window_ns at the grant plus every order accepted since, an upper bound of the window's count at any
    time >= ts_ns; the grant stays valid only while rate_used + orders <= orders_per_window."""

    grant_id: int
    ts_ns: int
    orders: int
    credit: int
    rate_used: int
    symbols: dict[str, SymbolHeadroom]


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


class AccountState:
    """The pure core of an account actor. See the module docstring for every rule it applies."""

    def __init__(self, account: str, limits: AccountLimits, instruments: InstrumentRegistry) -> None:
        self.account = account
        self._instruments = instruments
        self._limits = limits
        self._restricted = frozenset(limits.restricted_symbols)
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
        self._allowance: AllowanceState | None = None
        self._grant_seq = 0  # the last grant id handed out
        self._last_spend: AllowanceSpent | None = None  # transient: the event just applied, when it was a spend
        # derived, rebuilt from the above on restore
        self._exposure = 0
        self._working: dict[tuple[str, Side], int] = {}
        self._kernel = RiskKernel([i.symbol for i in instruments], [_factor(i) for i in instruments])
        self._push_all()

    # -- QUERIES --

    @property
    def limits(self) -> AccountLimits:
        return self._limits

    @property
    def cash(self) -> int:
        return self._cash

    @property
    def sod_equity(self) -> int:
        return self._sod_equity

    @property
    def trading_state(self) -> TradingState:
        return self._trading_state

    @property
    def kill_switch(self) -> bool:
        return self._kill_switch

    @property
    def exposure(self) -> int:
        """Money held for working orders."""
        return self._exposure

    def position(self, symbol: str) -> Position:
        """A copy of the symbol's position (flat when it never traded)."""
        pos = self._positions.get(symbol)
        return Position() if pos is None else msgspec.structs.replace(pos)

    def positions(self) -> dict[str, Position]:
        return {s: msgspec.structs.replace(p) for s, p in self._positions.items()}

    def open_order(self, order_id: int) -> OpenOrder | None:
        order = self._orders.get(order_id)
        return None if order is None else msgspec.structs.replace(order)

    def working_orders(self) -> list[int]:
        """Ids of the account's working orders, ascending: what a kill switch cancels."""
        return sorted(self._orders)

    def working_qty(self, symbol: str, side: Side) -> int:
        """Leaves quantity of the working orders on `symbol` and `side`."""
        return self._working.get((symbol, side), 0)

    def allowance(self) -> AllowanceState | None:
        """A copy of the live allowance, None when there is none (never granted, spent, void)."""
        return _copy_allowance(self._allowance)

    @property
    def allowance_id(self) -> int:
        """The live allowance's grant id, 0 when there is none."""
        return 0 if self._allowance is None else self._allowance.grant_id

    def allowance_covers(self, symbol: str) -> bool:
        """True while the live allowance grants something on `symbol`."""
        return self._allowance is not None and symbol in self._allowance.symbols

    def symbols_in_play(self) -> set[str]:
        """Symbols the account has a position, a working order or a live allowance in: those a trade print moves."""
        out = {s for s, p in self._positions.items() if p.qty}
        out.update(o.symbol for o in self._orders.values())
        if self._allowance is not None:
            out.update(self._allowance.symbols)
        return out

    def seen_cl_ord_ids(self) -> frozenset[str]:
        """The ClOrdIDs `decide` refuses as duplicates."""
        return frozenset(self._cl_ord_ids)

    def reference_price(self, symbol: str) -> int | None:
        """The account's own reference price (MarketView)."""
        return self._marks.reference_price(symbol)

    def market_value(self, symbol: str) -> int:
        """Signed money value of the position at the reference price (at its cost basis when there is none)."""
        pos = self._positions.get(symbol)
        if pos is None or pos.qty == 0:
            return 0
        ref = self._marks.reference_price(symbol)
        if ref is None:
            return pos.cost
        return notional_money(self._inst(symbol), pos.qty, ref)

    def unrealized(self, symbol: str) -> int:
        pos = self._positions.get(symbol)
        return 0 if pos is None else self.market_value(symbol) - pos.cost

    def realized(self) -> int:
        return sum(p.realized for p in self._positions.values())

    def avg_cost(self, symbol: str) -> Fraction | None:
        """Exact average cost in price units; None when flat."""
        pos = self._positions.get(symbol)
        if pos is None or pos.qty == 0:
            return None
        inst = self._inst(symbol)
        return Fraction(pos.cost, pos.qty * notional_money(inst, 1, 1))

    def equity(self) -> int:
        """Cash plus the market value of every position."""
        return self._cash + sum(self.market_value(s) for s in self._positions)

    def buying_power(self) -> int:
        """cash + credit_limit - held exposure - 2 * |market value of short positions|."""
        shorts = sum(-self.market_value(s) for s, p in self._positions.items() if p.qty < 0)
        return self._cash + self._limits.credit_limit - self._exposure - 2 * shorts

    def drawdown(self) -> Fraction:
        return drawdown(self._sod_equity, self.equity())

    def drawdown_level(self) -> DrawdownLevel:
        lim = self._limits
        return drawdown_level(
            self._sod_equity, self.equity(), lim.drawdown_warn_bp, lim.drawdown_reduce_bp, lim.drawdown_halt_bp
        )

    @property
    def drawdown_warning(self) -> bool:
        """True at or past the warn threshold: a flag for operators, it blocks nothing by itself."""
        return self.drawdown_level() >= DrawdownLevel.WARN

    # -- DECISIONS (pure) --

    def decide(
        self, cmd: SubmitOrder, order_id: int, now_ns: int, market: MarketView | None = None
    ) -> OrderAccepted | OrderRejected:
        """Accept or reject a new order, in the order the module docstring lists. Changes nothing: apply the
        returned event (after journaling it) to hold exposure and count the order.

        With the account's own reference prices the native kernel answers (`native._risk`), with exactly the
        reason `reference_reason` gives; it hands back to those rules whatever it cannot answer exactly."""
        code = UNDECIDED if market is not None or cmd.account != self.account else self._kernel.check(cmd, now_ns)
        reason = self._check_submit(cmd, now_ns, market) if code == UNDECIDED else _REASONS[code]
        if reason is not _OK:
            return OrderRejected(order_id, cmd.cl_ord_id, cmd.account, cmd.symbol, reason, describe(reason), now_ns)
        return OrderAccepted(
            order_id, cmd.cl_ord_id, cmd.account, cmd.symbol, cmd.side, cmd.ord_type, cmd.tif, cmd.qty, cmd.price,
            now_ns, cmd.stop_price,
        )  # fmt: skip

    def decide_replace(
        self, cmd: ReplaceOrder, order_id: int, now_ns: int, market: MarketView | None = None
    ) -> RejectReason:
        """NONE when a cancel/replace of working order `order_id` to (cmd.qty, cmd.price) may go to the venue.

        Runs the submit checks that depend on the terms (kill switch, HALTED, qty, pricing, notional, collar,
        reduce-only, position, gross, net, credit) on the new leaves quantity, counting this order's current
        leaves and hold as released. UNKNOWN_ORDER when the order is not working here. Rate, open-order and
        ClOrdID checks are not repeated (the engine owns ClOrdIDs of replaces).
        """
        order = self._orders.get(order_id)
        if cmd.account != self.account:
            return RejectReason.UNKNOWN_ACCOUNT
        if order is None or order.symbol != cmd.symbol:
            return RejectReason.UNKNOWN_ORDER
        reason = checks.check_trading_state(self._trading_state, self._kill_switch)
        if reason is not _OK:
            return reason
        sym = self._limits.symbols.get(order.symbol)
        if sym is None:
            return RejectReason.UNKNOWN_SYMBOL
        reason = checks.check_order_qty(cmd.qty, sym.max_order_qty)
        if reason is not _OK:
            return reason
        leaves = cmd.qty - (order.qty - order.leaves)
        if leaves <= 0:
            return _OK  # the venue answers a replace down to (or below) the filled quantity
        price = cmd.price if order.ord_type in (OrdType.LIMIT, OrdType.STOP_LIMIT) else None
        return self._check_terms(
            order.symbol, order.side, order.ord_type, leaves, price, market, exclude=order, now_ns=None
        )

    def reference_reason(self, cmd: SubmitOrder, now_ns: int, market: MarketView | None = None) -> RejectReason:
        """The reason `decide` gives `cmd`, from the rules in Python alone: the definition the kernel is held to."""
        return self._check_submit(cmd, now_ns, market)

    def _check_submit(self, cmd: SubmitOrder, now_ns: int, market: MarketView | None) -> RejectReason:
        if cmd.account != self.account:
            return RejectReason.UNKNOWN_ACCOUNT
        reason = checks.check_trading_state(self._trading_state, self._kill_switch)
        if reason is not _OK:
            return reason
        sym = self._limits.symbols.get(cmd.symbol)
        if sym is None or self._instruments.by_symbol(cmd.symbol) is None:
            return RejectReason.UNKNOWN_SYMBOL
        reason = checks.check_restricted(cmd.symbol, self._restricted)
        if reason is not _OK:
            return reason
        if cmd.cl_ord_id in self._cl_ord_ids:
            return RejectReason.DUPLICATE_CL_ORD_ID
        reason = checks.check_order_qty(cmd.qty, sym.max_order_qty)
        if reason is not _OK:
            return reason
        price = cmd.price if cmd.ord_type in (OrdType.LIMIT, OrdType.STOP_LIMIT) else None
        return self._check_terms(
            cmd.symbol, cmd.side, cmd.ord_type, cmd.qty, price, market, exclude=None, now_ns=now_ns
        )

    def _check_terms(
        self,
        symbol: str,
        side: Side,
        ord_type: OrdType,
        qty: int,
        price: int | None,
        market: MarketView | None,
        exclude: OpenOrder | None,
        now_ns: int | None,
    ) -> RejectReason:
        """Checks 8-17 for `qty` more on `side`; `exclude` is a working order the new terms replace."""
        lim = self._limits
        sym = lim.symbols[symbol]
        inst = self._inst(symbol)
        ref = (self._marks if market is None else market).reference_price(symbol)
        if price is None:
            if ref is None:
                return RejectReason.NO_REFERENCE_PRICE
            value_px = checks.collared_price(ref, sym.collar_bp)
        else:
            value_px = price
        reason = checks.check_order_notional(notional_money(inst, qty, value_px), lim.max_order_notional)
        if reason is not _OK:
            return reason
        if ord_type is OrdType.LIMIT and price is not None:
            reason = checks.check_collar(price, ref, sym.collar_bp)
            if reason is not _OK:
                return reason
        if now_ns is not None:
            if not self._rate.would_allow(now_ns):
                return RejectReason.ORDER_RATE
            reason = checks.check_max_open_orders(len(self._orders), lim.max_open_orders)
            if reason is not _OK:
                return reason
        pos = self._positions.get(symbol)
        pos_qty = 0 if pos is None else pos.qty
        same_side = self._working.get((symbol, side), 0)
        if exclude is not None:
            same_side -= exclude.leaves
        if self._trading_state is TradingState.REDUCING:
            reason = checks.check_reduce_only(side, qty, pos_qty, same_side)
            if reason is not _OK:
                return reason
        projected = checks.worst_case_position(side, qty, pos_qty, same_side)
        reason = checks.check_position(projected, pos_qty, sym.max_position)
        if reason is not _OK:
            return reason
        before = self.market_value(symbol)
        after = notional_money(inst, projected, value_px)
        gross = sum(abs(self.market_value(s)) for s in self._positions)
        reason = checks.check_gross(gross - abs(before) + abs(after), gross, lim.max_gross_notional)
        if reason is not _OK:
            return reason
        net = sum(self.market_value(s) for s in self._positions)
        reason = checks.check_net(net - before + after, net, lim.max_net_notional)
        if reason is not _OK:
            return reason
        hold = self._hold_for(inst, side, qty, value_px, exclude)
        freed = 0 if exclude is None else exclude.hold
        return checks.check_credit(hold, self.buying_power() + freed)

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
                _set_or_drop(self._marks.bid, event.symbol, event.bid)
                _set_or_drop(self._marks.ask, event.symbol, event.ask)
            case KillSwitchSet():
                self._kill_switch = event.on
            case TradingStateSet():
                self._trading_state = event.state
            case LimitsChanged():
                self._limits = event.limits
                self._restricted = frozenset(event.limits.restricted_symbols)
                self._rate = SlidingWindow(event.limits.orders_per_window, event.limits.window_ns, self._rate.times())
            case DayStarted():
                self._sod_equity = self.equity()
                self._cl_ord_ids.clear()
            case AllowanceGranted():
                self._on_granted(event)
            case AllowanceSpent():
                self._on_spent(event)
            case AllowanceToppedUp():
                self._on_topped_up(event)
            case AllowanceReturned():
                if self._allowance is not None and self._allowance.grant_id == event.grant_id:
                    self._allowance = None
            case AllowanceRevoked():
                self._allowance = None
            case _:
                raise AccountError(f"account {self.account}: not an account event: {event!r}")
        level = self.drawdown_level()
        if isinstance(event, TradingStateSet):
            self._breaker_ack = level
        else:
            self._breaker_ack = min(self._breaker_ack, level)
            if level > self._breaker_ack:
                self._trading_state = escalate(self._trading_state, level)
        if self._allowance is not None:
            if isinstance(event, OrderAccepted):
                self._allowance.rate_used += 1
            if isinstance(event, _VOIDING):
                self._allowance = None
            elif type(event) is not AllowanceSpent and not self._spent_on(event) and not self._allowance_holds():
                # a spend only shrinks the budget and changes nothing else, and every check of the certificate is
                # monotone in the budget, so it needs no check; nor does the acceptance it covers (`_spent_on`)
                self._allowance = None
        self._last_spend = event if type(event) is AllowanceSpent else None
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
        inst = self._inst(e.symbol)
        price = e.price if e.ord_type in (OrdType.LIMIT, OrdType.STOP_LIMIT) else None
        if price is None:
            ref = self._marks.reference_price(e.symbol)
            if ref is None:
                raise MissingReference(f"account {self.account}: order {e.order_id}: no reference for {e.symbol}")
            value_px = checks.collared_price(ref, self._limits.symbols[e.symbol].collar_bp)
        else:
            value_px = price
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
        inst = self._inst(order.symbol)
        notional = notional_money(inst, e.qty, e.price)
        self._cash -= order.side.sign * notional
        pos = self._positions.get(order.symbol)
        if pos is None:
            pos = self._positions[order.symbol] = Position()
        _trade(pos, order.side.sign * e.qty, notional)
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
        if order.ord_type in (OrdType.LIMIT, OrdType.STOP_LIMIT) and e.price is not None:
            value_px = e.price
        else:
            ref = self._marks.reference_price(order.symbol)
            if ref is None:
                raise MissingReference(f"account {self.account}: order {e.order_id}: no reference for {order.symbol}")
            value_px = checks.collared_price(ref, self._limits.symbols[order.symbol].collar_bp)
        order.hold = self._hold_for(self._inst(order.symbol), order.side, order.leaves, value_px, order)
        self._exposure += order.hold

    def _on_granted(self, e: AllowanceGranted) -> None:
        self._grant_seq = max(self._grant_seq, e.grant_id)
        self._allowance = AllowanceState(
            e.grant_id, e.ts_ns, e.orders, e.credit, e.rate_used,
            {s.symbol: SymbolHeadroom(s.lo, s.hi, s.value_cap, s.buy_qty, s.sell_qty) for s in e.symbols},
        )  # fmt: skip

    def _on_spent(self, e: AllowanceSpent) -> None:
        a = self._allowance
        if a is None or a.grant_id != e.grant_id:
            raise StaleAllowance(f"account {self.account}: spend on grant {e.grant_id}, live grant {self.allowance_id}")
        room = a.symbols.get(e.symbol)
        left = None if room is None else (room.buy_qty if e.side is Side.BUY else room.sell_qty) - e.qty
        if room is None or left is None or left < 0 or e.qty <= 0 or a.orders < 1 or e.credit > a.credit:
            raise AllowanceOverdrawn(f"account {self.account}: {e!r} exceeds what is left of grant {e.grant_id}")
        a.orders -= 1
        a.credit -= e.credit
        if e.side is Side.BUY:
            room.buy_qty = left
        else:
            room.sell_qty = left

    def _on_topped_up(self, e: AllowanceToppedUp) -> None:
        a = self._allowance
        if a is None or a.grant_id != e.grant_id:
            raise StaleAllowance(f"account {self.account}: top-up of grant {e.grant_id}, live {self.allowance_id}")
        a.orders += e.orders
        a.credit += e.credit
        for t in e.symbols:
            room = a.symbols.get(t.symbol)
            if room is None:
                raise AllowanceOverdrawn(f"account {self.account}: top-up of {t.symbol}, not in grant {e.grant_id}")
            room.buy_qty += t.buy_qty
            room.sell_qty += t.sell_qty

    def _spent_on(self, event: AccountEvent) -> bool:
        """True for the OrderAccepted a spend just before it covers (same order, symbol, side and quantity, a hold
        within the credit spent). That pair keeps the certificate: tokens and rate use, open orders and tokens move
        one for one; buying power drops by the hold, credit by at least as much; on the order's symbol and side the
        working quantity grows by what the headroom shrinks, so the worst-case positions at the ends of the
        remaining headroom stay where they were or move inward (gross and net pass on an interval); nothing else
        changes."""
        spend = self._last_spend
        if spend is None or type(event) is not OrderAccepted:
            return False
        order = self._orders.get(event.order_id)
        return (
            order is not None
            and spend.order_id == event.order_id
            and spend.symbol == event.symbol
            and spend.side is event.side
            and spend.qty == event.qty
            and spend.credit >= order.hold
        )

    def _allowance_holds(self) -> bool:
        """True while every order the live allowance covers would pass `decide` (see `oms.core.reserved`)."""
        a = self._allowance
        assert a is not None
        lim = self._limits
        if self._kill_switch or self._trading_state is not TradingState.ACTIVE:
            return False
        if a.rate_used + a.orders > lim.orders_per_window or len(self._orders) + a.orders > lim.max_open_orders:
            return False
        if self.buying_power() < a.credit:
            return False
        values = {s: self.market_value(s) for s in self._positions}
        gross = sum(abs(v) for v in values.values())
        net = sum(values.values())
        for symbol, room in a.symbols.items():
            collar = lim.symbols[symbol].collar_bp
            ref = self._marks.reference_price(symbol)
            before = values.get(symbol, 0)
            if (
                ref is None
                or checks.check_collar(room.lo, ref, collar) is not _OK
                or checks.check_collar(room.hi, ref, collar) is not _OK
                or checks.collared_price(ref, collar) > room.value_cap
                or not self._headroom_ok(symbol, Side.BUY, room.buy_qty, room.value_cap, gross, net, before)
                or not self._headroom_ok(symbol, Side.SELL, room.sell_qty, room.value_cap, gross, net, before)
            ):
                return False
        return True

    def _headroom_ok(
        self, symbol: str, side: Side, qty: int, value_cap: int, gross: int, net: int, before: int | None = None
    ) -> bool:
        """True when every order of 1..`qty` on `symbol` and `side`, valued at any price in (0, value_cap], passes
        the position, gross and net checks (`before`: the symbol's market value, when the caller has it). The
        worst-case position is affine in the order's qty, so its extremes over 1..qty lie at the ends (0 and qty);
        see `oms.core.reserved` for why checking those suffices."""
        if qty <= 0:
            return True
        lim = self._limits
        inst = self._inst(symbol)
        pos = self._positions.get(symbol)
        pos_qty = 0 if pos is None else pos.qty
        p0 = checks.worst_case_position(side, 0, pos_qty, self._working.get((symbol, side), 0))
        pq = p0 + side.sign * qty
        if checks.check_position(pq, pos_qty, lim.symbols[symbol].max_position) is not _OK:
            return False
        if before is None:
            before = self.market_value(symbol)
        worst = notional_money(inst, max(abs(p0), abs(pq)), value_cap)
        if checks.check_gross(gross - abs(before) + worst, gross, lim.max_gross_notional) is not _OK:
            return False
        for end in (min(p0, pq, 0), max(p0, pq, 0)):
            after = net - before + notional_money(inst, end, value_cap)
            if checks.check_net(after, net, lim.max_net_notional) is not _OK:
                return False
        return True

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

    def _hold_for(self, inst: Instrument, side: Side, qty: int, price: int, exclude: OpenOrder | None) -> int:
        if side is Side.BUY:
            return notional_money(inst, qty, price)
        pos = self._positions.get(inst.symbol)
        long = 0 if pos is None else max(pos.qty, 0)
        working_sells = self._working.get((inst.symbol, Side.SELL), 0)
        if exclude is not None:
            working_sells -= exclude.leaves
        closing = min(qty, max(long - working_sells, 0))
        return notional_money(inst, qty - closing, price)

    def _inst(self, symbol: str) -> Instrument:
        inst = self._instruments.by_symbol(symbol)
        if inst is None:
            raise AccountError(f"account {self.account}: unknown symbol {symbol}")
        return inst

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
        if self._kill_switch or self._trading_state is not TradingState.ACTIVE:
            return None
        lim = self._limits
        rate_used = self._rate.count(ts_ns)
        orders = min(request.orders, lim.orders_per_window - rate_used, lim.max_open_orders - len(self._orders))
        if orders < 1:
            return None
        credit = max(self.buying_power(), 0) * request.credit_share_bp // _BP
        gross = sum(abs(self.market_value(s)) for s in self._positions)
        net = sum(self.market_value(s) for s in self._positions)
        wanted = sorted(lim.symbols) if request.symbols is None else request.symbols
        granted: list[SymbolAllowance] = []
        for symbol in wanted:
            sym = lim.symbols.get(symbol)
            ref = self._marks.reference_price(symbol)
            if sym is None or ref is None or symbol in self._restricted or self._instruments.by_symbol(symbol) is None:
                continue
            half = ref * sym.collar_bp * request.band_share_bp // (_BP * _BP)
            lo, hi = max(ref - half, 1), ref + half
            cap = checks.collared_price(hi, sym.collar_bp)
            sides = [
                self._max_headroom(symbol, side, cap, gross, net) * request.qty_share_bp // _BP
                for side in (Side.BUY, Side.SELL)
            ]
            if any(sides):
                granted.append(SymbolAllowance(symbol, lo, hi, cap, sides[0], sides[1]))
        if not granted:
            return None
        event = AllowanceGranted(self.account, self._grant_seq + 1, orders, credit, rate_used, tuple(granted), ts_ns)
        self.apply(event)
        return event

    def _max_headroom(self, symbol: str, side: Side, value_cap: int, gross: int, net: int) -> int:
        """The largest qty `_headroom_ok` passes (it passes a downward-closed set of quantities)."""
        pos = self._positions.get(symbol)
        lo, hi = 0, self._limits.symbols[symbol].max_position + abs(0 if pos is None else pos.qty) + 1
        hi += self._working.get((symbol, side), 0)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self._headroom_ok(symbol, side, mid, value_cap, gross, net):
                lo = mid
            else:
                hi = mid - 1
        return lo

    def top_up_allowance(self, grant_id: int, request: AllowanceRequest, ts_ns: int) -> AllowanceToppedUp | None:
        """Bring the live grant `grant_id` back up to what `request` would grant now, keeping its id, price bands and
        `rate_used` (apply and return it, for the journal); None when that grant is not live or nothing can be
        added. What is added is certified like a grant: the topped-up allowance must pass the same check
        (`_allowance_holds`) before the event exists."""
        a = self._allowance
        if a is None or a.grant_id != grant_id:
            return None
        lim = self._limits
        room_orders = min(request.orders, lim.orders_per_window - a.rate_used, lim.max_open_orders - len(self._orders))
        orders = max(room_orders - a.orders, 0)
        credit = max(max(self.buying_power(), 0) * request.credit_share_bp // _BP - a.credit, 0)
        gross = sum(abs(self.market_value(s)) for s in self._positions)
        net = sum(self.market_value(s) for s in self._positions)
        added: list[SymbolTopUp] = []
        share = request.qty_share_bp
        for symbol, room in sorted(a.symbols.items()):
            buy, sell = (
                max(self._max_headroom(symbol, side, room.value_cap, gross, net) * share // _BP - left, 0)
                for side, left in ((Side.BUY, room.buy_qty), (Side.SELL, room.sell_qty))
            )
            if buy or sell:
                added.append(SymbolTopUp(symbol, buy, sell))
        if not (orders or credit or added):
            return None
        event = AllowanceToppedUp(self.account, grant_id, orders, credit, tuple(added), ts_ns)
        trial = _copy_allowance(a)
        assert trial is not None
        self._allowance = trial
        try:
            self._on_topped_up(event)
            holds = self._allowance_holds()
        finally:
            self._allowance = a
        if not holds:
            return None
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
            grant_seq=self._grant_seq,
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
        state._allowance = _copy_allowance(snapshot.allowance)
        state._grant_seq = snapshot.grant_seq
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


def _trade(pos: Position, signed_qty: int, notional: int) -> None:
    """Move `pos` by a fill of `signed_qty` whose unsigned money value is `notional`."""
    signed_value = notional if signed_qty > 0 else -notional
    if pos.qty == 0 or (pos.qty > 0) == (signed_qty > 0):
        pos.qty += signed_qty
        pos.cost += signed_value
        return
    closing = min(abs(signed_qty), abs(pos.qty))
    closing_value = signed_value * closing // abs(signed_qty) if closing < abs(signed_qty) else signed_value
    # the position side's view: closing q of a long receives +value, of a short pays it
    removed = pos.cost if closing == abs(pos.qty) else _div_trunc(pos.cost * closing, abs(pos.qty))
    pos.realized += -closing_value - removed
    pos.cost -= removed
    pos.qty += signed_qty
    if pos.qty and (pos.qty > 0) == (signed_qty > 0):  # flipped: the rest opens at the fill price
        pos.cost = signed_value - closing_value  # the opening part, exactly what the closing part did not take


def _copy_allowance(a: AllowanceState | None) -> AllowanceState | None:
    if a is None:
        return None
    symbols = {k: msgspec.structs.replace(v) for k, v in a.symbols.items()}
    return AllowanceState(a.grant_id, a.ts_ns, a.orders, a.credit, a.rate_used, symbols)


def _factor(inst: Instrument) -> int:
    """The instrument's money factor; -1 when it has none (the kernel then leaves its orders to the rules)."""
    try:
        return money_factor(inst)
    except ValueError:
        return -1


def _div_trunc(a: int, b: int) -> int:
    q = abs(a) // b
    return q if a >= 0 else -q


def _set_or_drop(prices: dict[str, int], symbol: str, price: int | None) -> None:
    if price is None:
        prices.pop(symbol, None)
    else:
        prices[symbol] = price
