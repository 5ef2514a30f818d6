"""An account's books: reference prices, positions with their cost basis and realized P&L, and working orders.

Reference price of a symbol: the last trade, else the mid of bid and ask (rounded down to a price unit), else none.

Positions: signed qty; `cost` is the signed money basis of the open quantity. Reducing q of |qty| removes
cost * q / |qty| (truncated; the remainder stays in the basis and leaves with the last unit), realized P&L is the
closing value minus the removed basis; a flip closes first and opens the rest at the fill price. Market value =
qty * mark (the reference price; cost when there is none); unrealized = market value - cost. Always:
cash + sum(cost) == initial cash + sum(realized).
"""

from __future__ import annotations

from typing import Protocol

import msgspec

from oms.core.model.enums import OrdType, Side

__all__ = ["MarketPrices", "MarketView", "OpenOrder", "Position", "trade"]


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

    def quote(self, symbol: str, bid: int | None, ask: int | None) -> None:
        """Take the best bid and ask of `symbol`; None clears that side."""
        _set_or_drop(self.bid, symbol, bid)
        _set_or_drop(self.ask, symbol, ask)


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


def trade(pos: Position, signed_qty: int, notional: int) -> None:
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


def _div_trunc(a: int, b: int) -> int:
    q = abs(a) // b
    return q if a >= 0 else -q


def _set_or_drop(prices: dict[str, int], symbol: str, price: int | None) -> None:
    if price is None:
        prices.pop(symbol, None)
    else:
        prices[symbol] = price
