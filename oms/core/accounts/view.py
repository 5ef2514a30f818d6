"""AccountView: an account as its readers see it: its books valued at the marks, and the decisions its rules make.

Everything here reads and nothing changes: `AccountState` (`oms.core.accounts.state`), its one subclass, owns every
attribute declared below and changes them only by applying events. The allowance (`oms.core.accounts.allowance`)
reads the account through this class too.

Decision order: `decide` runs the checks of `risk.rules.RULES` in the list's order, each a function of `risk.checks`
called through that module; the first that fails is the reason. `decide_replace` runs the ones the list marks for
replaces.

Reference price: the account keeps its own (events `Marked`, `Quoted`; every fill also marks at its price, see
`oms.core.accounts.ledger`); `decide` may be given another `MarketView`, which then serves as the reference for that
decision only. Valuation price of an order: its limit price, else the top of the collar band
(`risk.checks.valuation_price`).

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
REDUCING, position, gross and net limits judge the worst case, as if every working order on the same side and symbol
  filled too (`risk.checks`), so risk-reducing orders always pass them.

Native check: `decide` asks a `native.RiskKernel` that holds, in C, every number a new order is judged against
(`AccountState` pushes them as its events apply). It gives the reason the rules above give (`reference_reason`, the
Python definition; tests/property/test_risk_kernel.py holds it to them) or hands the order back to those rules when
a number does not fit 64 bits. Importing this module fails when the built kernel checks in another order than the
list (a stale build).

Throttle: the account's order-rate window records the ts_ns of each OrderAccepted (rejected orders do not consume
the budget), so replay rebuilds it. `decide` asks it at `now_ns`, which becomes the accepted event's ts_ns.
Duplicate ClOrdIDs: every ClOrdID of an accepted, rejected or replaced order of the account since the last
`start_day`. Account events carry no session, so the rule is per account (stricter than FIX's per session); the
per-session message throttle is `risk.throttle.SessionThrottle`, held by whoever sees sessions.
"""

from __future__ import annotations

from fractions import Fraction

import msgspec

from native import UNDECIDED, RiskKernel, _risk
from oms.core.accounts.events import AccountError
from oms.core.accounts.ledger import MarketPrices, MarketView, OpenOrder, Position
from oms.core.model.enums import OrdType, RejectReason, Side, TradingState
from oms.core.model.instruments import Instrument, InstrumentRegistry
from oms.core.model.messages import OrderAccepted, OrderRejected, ReplaceOrder, SubmitOrder
from risk import checks
from risk.breakers import DrawdownLevel, drawdown, drawdown_level
from risk.limits import AccountLimits
from risk.money import notional_money
from risk.reasons import describe
from risk.rules import KERNEL_ORDER
from risk.throttle import SlidingWindow

__all__ = ["AccountView", "limit_price"]

if getattr(_risk, "CHECK_ORDER", None) != tuple(int(r) for r in KERNEL_ORDER):
    raise ImportError(
        f"native._risk checks {getattr(_risk, 'CHECK_ORDER', None)}, but risk.rules lists "
        f"{tuple(int(r) for r in KERNEL_ORDER)}: rebuild it (python setup.py build_ext --inplace) or bring "
        "RiskKernel.check in line with risk.rules.RULES"
    )

_OK = RejectReason.NONE
_REASONS = {int(r): r for r in RejectReason}


class AccountView:
    """The reads of one account: queries, valuation and decisions. Not built on its own: see `AccountState`."""

    account: str
    _instruments: InstrumentRegistry
    _limits: AccountLimits
    _known: frozenset[str]  # symbols with limits that the registry knows too: what `check_symbol` lets through
    _restricted: frozenset[str]
    _cash: int
    _sod_equity: int
    _trading_state: TradingState
    _kill_switch: bool
    _positions: dict[str, Position]
    _orders: dict[int, OpenOrder]
    _marks: MarketPrices
    _cl_ord_ids: set[str]
    _rate: SlidingWindow
    _exposure: int  # derived: the holds of the working orders
    _working: dict[tuple[str, Side], int]  # derived: leaves of the working orders per (symbol, side)
    _kernel: RiskKernel

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

    @property
    def open_order_count(self) -> int:
        """How many orders are working."""
        return len(self._orders)

    def working_orders(self) -> list[int]:
        """Ids of the account's working orders, ascending: what a kill switch cancels."""
        return sorted(self._orders)

    def working_qty(self, symbol: str, side: Side) -> int:
        """Leaves quantity of the working orders on `symbol` and `side`."""
        return self._working.get((symbol, side), 0)

    def orders_in_window(self, now_ns: int) -> int:
        """Accepted orders the order-rate window counts at `now_ns`."""
        return self._rate.count(now_ns)

    def tradable(self, symbol: str) -> bool:
        """True when the account may trade `symbol` at all: it has limits for it, the registry knows it, and it is
        not restricted."""
        return symbol in self._known and symbol not in self._restricted

    def instrument(self, symbol: str) -> Instrument:
        """The registry's instrument; AccountError for a symbol it does not know."""
        inst = self._instruments.by_symbol(symbol)
        if inst is None:
            raise AccountError(f"account {self.account}: unknown symbol {symbol}")
        return inst

    def seen_cl_ord_ids(self) -> frozenset[str]:
        """The ClOrdIDs `decide` refuses as duplicates."""
        return frozenset(self._cl_ord_ids)

    def reference_price(self, symbol: str) -> int | None:
        """The account's own reference price (MarketView)."""
        return self._marks.reference_price(symbol)

    def wants_quote(self, symbol: str, bid: int, ask: int) -> bool:
        """True when the quote `bid`/`ask` would change the account's reference price of `symbol`: it has no trade
        price (last print or mark) for it, and its reference is not already their mid."""
        return symbol not in self._marks.last and self._marks.reference_price(symbol) != (bid + ask) // 2

    def market_value(self, symbol: str) -> int:
        """Signed money value of the position at the reference price (at its cost basis when there is none)."""
        pos = self._positions.get(symbol)
        if pos is None or pos.qty == 0:
            return 0
        ref = self._marks.reference_price(symbol)
        if ref is None:
            return pos.cost
        return notional_money(self.instrument(symbol), pos.qty, ref)

    def market_values(self) -> dict[str, int]:
        """`market_value` of every symbol the account has held a position in."""
        return {s: self.market_value(s) for s in self._positions}

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
        inst = self.instrument(symbol)
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
        """Accept or reject a new order, in the order of `risk.rules.RULES`. Changes nothing: apply the returned
        event (after journaling it) to hold exposure and count the order.

        With the account's own reference prices the native kernel answers (`native._risk`), with exactly the
        reason `reference_reason` gives; it hands back to those rules whatever it cannot answer exactly."""
        code = UNDECIDED if market is not None or cmd.account != self.account else self._kernel.check(cmd, now_ns)
        reason = self._check_submit(cmd, now_ns, market) if code == UNDECIDED else _REASONS[code]
        if reason is not _OK:
            return OrderRejected.of(cmd, order_id, reason, describe(reason), now_ns)
        return OrderAccepted(
            order_id, cmd.cl_ord_id, cmd.account, cmd.symbol, cmd.side, cmd.ord_type, cmd.tif, cmd.qty, cmd.price,
            now_ns, cmd.stop_price, cmd.session, cmd.parent_id, cmd.venue,
        )  # fmt: skip

    def decide_replace(
        self, cmd: ReplaceOrder, order_id: int, now_ns: int, market: MarketView | None = None
    ) -> RejectReason:
        """NONE when a cancel/replace of working order `order_id` to (cmd.qty, cmd.price) may go to the venue.

        Runs the checks `risk.rules.RULES` marks for replaces (kill switch, HALTED, symbol, qty, pricing, notional,
        collar, reduce-only, position, gross, net, credit) on the new leaves quantity, counting this order's
        current leaves and hold as released. UNKNOWN_ORDER, right after the account check, when the order is not
        working here. Rate, open-order, restricted and ClOrdID checks are not repeated (the engine owns ClOrdIDs of
        replaces).
        """
        order = self._orders.get(order_id)
        if (reason := checks.check_account(cmd.account, self.account)) is not _OK:
            return reason
        if order is None or order.symbol != cmd.symbol:
            return RejectReason.UNKNOWN_ORDER
        if (reason := checks.check_trading_state(self._trading_state, self._kill_switch)) is not _OK:
            return reason
        # the registry knew the order's instrument when it was accepted: only the limits can have dropped it
        if (reason := checks.check_symbol(order.symbol, self._limits.symbols)) is not _OK:
            return reason
        sym = self._limits.symbols[order.symbol]
        if (reason := checks.check_order_qty(cmd.qty, sym.max_order_qty)) is not _OK:
            return reason
        leaves = cmd.qty - (order.qty - order.leaves)
        if leaves <= 0:
            return _OK  # the venue answers a replace down to (or below) the filled quantity
        price = limit_price(order.ord_type, cmd.price)
        return self._check_terms(
            order.symbol, order.side, order.ord_type, leaves, price, market, exclude=order, now_ns=None
        )

    def reference_reason(self, cmd: SubmitOrder, now_ns: int, market: MarketView | None = None) -> RejectReason:
        """The reason `decide` gives `cmd`, from the rules in Python alone: the definition the kernel is held to."""
        return self._check_submit(cmd, now_ns, market)

    def _check_submit(self, cmd: SubmitOrder, now_ns: int, market: MarketView | None) -> RejectReason:
        """The checks of `risk.rules.RULES`, one line each, in its order (tests/unit/core/test_risk_rules.py traces
        them)."""
        if (reason := checks.check_account(cmd.account, self.account)) is not _OK:
            return reason
        if (reason := checks.check_trading_state(self._trading_state, self._kill_switch)) is not _OK:
            return reason
        if (reason := checks.check_symbol(cmd.symbol, self._known)) is not _OK:
            return reason
        if (reason := checks.check_restricted(cmd.symbol, self._restricted)) is not _OK:
            return reason
        if (reason := checks.check_duplicate(cmd.cl_ord_id, self._cl_ord_ids)) is not _OK:
            return reason
        if (reason := checks.check_order_qty(cmd.qty, self._limits.symbols[cmd.symbol].max_order_qty)) is not _OK:
            return reason
        price = limit_price(cmd.ord_type, cmd.price)
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
        """The checks from pricing on, for `qty` more on `side`; `exclude` is a working order the new terms replace;
        `now_ns` None (a replace) skips the rate and open-order checks."""
        lim = self._limits
        sym = lim.symbols[symbol]
        inst = self.instrument(symbol)
        ref = (self._marks if market is None else market).reference_price(symbol)
        if (reason := checks.check_reference(price, ref)) is not _OK:
            return reason
        value_px = checks.valuation_price(price, ref, sym.collar_bp)
        notional = notional_money(inst, qty, value_px)
        if (reason := checks.check_order_notional(notional, lim.max_order_notional)) is not _OK:
            return reason
        if ord_type is OrdType.LIMIT and price is not None:  # the collar judges the prices of LIMIT orders only
            reason = checks.check_collar(price, ref, sym.collar_bp)
            if reason is not _OK:
                return reason
        if now_ns is not None:
            if (reason := checks.check_order_rate(self._rate, now_ns)) is not _OK:
                return reason
            if (reason := checks.check_max_open_orders(len(self._orders), lim.max_open_orders)) is not _OK:
                return reason
        pos = self._positions.get(symbol)
        pos_qty = 0 if pos is None else pos.qty
        same_side = self._working.get((symbol, side), 0)
        if exclude is not None:
            same_side -= exclude.leaves
        reducing = self._trading_state is TradingState.REDUCING
        if reducing and (reason := checks.check_reduce_only(side, qty, pos_qty, same_side)) is not _OK:
            return reason
        projected = checks.worst_case_position(side, qty, pos_qty, same_side)
        if (reason := checks.check_position(projected, pos_qty, sym.max_position)) is not _OK:
            return reason
        before = self.market_value(symbol)
        after = notional_money(inst, projected, value_px)
        gross = sum(abs(self.market_value(s)) for s in self._positions)
        if (reason := checks.check_gross(gross - abs(before) + abs(after), gross, lim.max_gross_notional)) is not _OK:
            return reason
        net = sum(self.market_value(s) for s in self._positions)
        if (reason := checks.check_net(net - before + after, net, lim.max_net_notional)) is not _OK:
            return reason
        hold = self._hold_for(inst, side, qty, value_px, exclude)
        freed = 0 if exclude is None else exclude.hold
        return checks.check_credit(hold, self.buying_power() + freed)

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


def limit_price(ord_type: OrdType, price: int | None) -> int | None:
    """The price an order is valued at when it has one: LIMIT and STOP_LIMIT orders carry a limit price; the others
    (MARKET, STOP) are valued at the reference."""
    return price if ord_type in (OrdType.LIMIT, OrdType.STOP_LIMIT) else None
