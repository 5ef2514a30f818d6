"""Pure pre-trade checks. Each takes plain values and returns `RejectReason.NONE` or the reason to refuse.

Nothing here reads state: `oms.core.accounts.AccountState.decide` gathers the inputs from the account and runs the
checks in the order `risk.rules.RULES` declares, calling each through this module (`checks.check_x`, so a test can
trace the calls). Prices are in price units, quantities in quantity units, money in money units
(`risk.money`), percentages in basis points. "Worst case" below means: as if every working order of the account
on the same side and symbol filled in full, plus the new order.
"""

from __future__ import annotations

from collections.abc import Container

from oms.core.model.enums import RejectReason, Side, TradingState
from risk.breakers import BP
from risk.throttle import SlidingWindow

__all__ = [
    "check_account",
    "check_collar",
    "check_credit",
    "check_duplicate",
    "check_gross",
    "check_max_open_orders",
    "check_net",
    "check_order_notional",
    "check_order_qty",
    "check_order_rate",
    "check_position",
    "check_reduce_only",
    "check_reference",
    "check_restricted",
    "check_symbol",
    "check_trading_state",
    "collared_price",
    "valuation_price",
    "worst_case_position",
]

_OK = RejectReason.NONE


def check_account(account: str, owner: str) -> RejectReason:
    """UNKNOWN_ACCOUNT when the order names an account other than `owner`, the one whose state judges it."""
    return _OK if account == owner else RejectReason.UNKNOWN_ACCOUNT


def check_trading_state(state: TradingState, kill_switch: bool) -> RejectReason:
    """KILL_SWITCH while the kill switch is on, HALTED in HALTED; REDUCING is judged per order (check_reduce_only)."""
    if kill_switch:
        return RejectReason.KILL_SWITCH
    if state is TradingState.HALTED:
        return RejectReason.HALTED
    return _OK


def check_symbol(symbol: str, tradable: Container[str]) -> RejectReason:
    """UNKNOWN_SYMBOL unless `symbol` is one the account has limits for and the instrument registry knows."""
    return _OK if symbol in tradable else RejectReason.UNKNOWN_SYMBOL


def check_restricted(symbol: str, restricted: tuple[str, ...] | frozenset[str]) -> RejectReason:
    """RESTRICTED_SYMBOL when `symbol` is on the account's restricted list."""
    return RejectReason.RESTRICTED_SYMBOL if symbol in restricted else _OK


def check_duplicate(cl_ord_id: str, seen: Container[str]) -> RejectReason:
    """DUPLICATE_CL_ORD_ID when the account has seen `cl_ord_id` (accepted, rejected or replaced) since the day
    started."""
    return RejectReason.DUPLICATE_CL_ORD_ID if cl_ord_id in seen else _OK


def check_order_qty(qty: int, max_order_qty: int) -> RejectReason:
    """INVALID_QTY for qty <= 0, MAX_ORDER_QTY above the maximum (the maximum itself passes)."""
    if qty <= 0:
        return RejectReason.INVALID_QTY
    return RejectReason.MAX_ORDER_QTY if qty > max_order_qty else _OK


def check_reference(price: int | None, reference: int | None) -> RejectReason:
    """NO_REFERENCE_PRICE for an order without a limit price (`price` None) when there is no reference price to
    value it at; an order with a limit price is valued at that price and always passes."""
    return RejectReason.NO_REFERENCE_PRICE if price is None and reference is None else _OK


def valuation_price(price: int | None, reference: int | None, collar_bp: int) -> int:
    """What an order is valued at: its limit price, else the top of the collar band around `reference`
    (`collared_price`). ValueError when it has neither: `check_reference` refuses such an order first."""
    if price is not None:
        return price
    if reference is None:
        raise ValueError("an order without a limit price needs a reference price to be valued")
    return collared_price(reference, collar_bp)


def check_order_notional(notional: int, max_order_notional: int) -> RejectReason:
    """MAX_ORDER_NOTIONAL when |notional| is above the maximum."""
    return RejectReason.MAX_ORDER_NOTIONAL if abs(notional) > max_order_notional else _OK


def collared_price(reference: int, collar_bp: int) -> int:
    """The top of the collar band, rounded up: what an order without a limit price is valued at."""
    return -(-reference * (BP + collar_bp) // BP)


def check_collar(price: int, reference: int | None, collar_bp: int) -> RejectReason:
    """PRICE_COLLAR when |price - reference| > reference * collar_bp / 10_000 (exact); no reference: passes.

    Orders without a limit price never reach this check: they need a reference to be valued at all, and its
    absence is NO_REFERENCE_PRICE at the pricing step.
    """
    if reference is None:
        return _OK
    return RejectReason.PRICE_COLLAR if abs(price - reference) * BP > reference * collar_bp else _OK


def check_order_rate(window: SlidingWindow, now_ns: int) -> RejectReason:
    """ORDER_RATE when one more order at `now_ns` would exceed the account's order-rate window (which counts
    accepted orders only)."""
    return _OK if window.would_allow(now_ns) else RejectReason.ORDER_RATE


def check_max_open_orders(open_orders: int, max_open_orders: int) -> RejectReason:
    """MAX_OPEN_ORDERS when the account already has `max_open_orders` working orders."""
    return RejectReason.MAX_OPEN_ORDERS if open_orders >= max_open_orders else _OK


def check_reduce_only(side: Side, qty: int, position: int, working_same_side: int) -> RejectReason:
    """For REDUCING accounts: passes only an order that cannot increase |position|, even if every working order
    on its side fills too. A sell passes when qty <= long position - working sells; a buy when qty <= short
    position - working buys. Anything else (including any order on a flat position) is REDUCE_ONLY.
    """
    room = position if side is Side.SELL else -position
    return _OK if qty <= room - working_same_side else RejectReason.REDUCE_ONLY


def worst_case_position(side: Side, qty: int, position: int, working_same_side: int) -> int:
    """Position after every working order on `side` and this one fill."""
    return position + side.sign * (working_same_side + qty)


def check_position(projected: int, position: int, max_position: int) -> RejectReason:
    """POSITION_LIMIT when the worst-case |position| exceeds the limit and is larger than today's |position|
    (so an order that shrinks an already oversized position passes)."""
    return RejectReason.POSITION_LIMIT if abs(projected) > max(max_position, abs(position)) else _OK


def check_gross(gross_after: int, gross_before: int, max_gross: int) -> RejectReason:
    """GROSS_LIMIT when the worst-case gross notional exceeds the limit and grows."""
    return RejectReason.GROSS_LIMIT if gross_after > max(max_gross, gross_before) else _OK


def check_net(net_after: int, net_before: int, max_net: int) -> RejectReason:
    """NET_LIMIT when the worst-case |net notional| exceeds the limit and grows."""
    return RejectReason.NET_LIMIT if abs(net_after) > max(max_net, abs(net_before)) else _OK


def check_credit(hold: int, buying_power: int) -> RejectReason:
    """CREDIT_LIMIT when the order's hold is more than the buying power left (exactly equal passes)."""
    return RejectReason.CREDIT_LIMIT if hold > buying_power else _OK
