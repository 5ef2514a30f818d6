"""A short pure-Python matching engine: the executable specification of the Cython core.

It implements the same interface as `native.MatchingEngine` and must emit exactly the same events for the same
commands; the shared test class and the property tests hold the two together. Clarity beats speed here.

Matching rules (both engines):
- Price-time priority per symbol. A taker trades at the maker's price, best level first, FIFO within a level.
- Every event gets the next engine-wide sequence number in its `exec_id` field, so fill ids are unique.
- One match emits FILL (taker, aggressor=1), FILL (maker, aggressor=0) and TRADE (the print: order_id is the
  taker, other_id the maker, side the aggressor's side).
- MARKET orders and IOC remainders are CANCELED (reason NO_LIQUIDITY / IOC). FOK is checked before acceptance
  and REJECTED with FOK_UNFILLABLE when the book cannot fill it entirely.
- Icebergs show `display_qty`; when the shown slice is consumed a new slice is shown at the back of the level.
  An aggressor matches hidden quantity through those refills; depth shows only the visible slices.
- STOP / STOP_LIMIT wait until the last trade price reaches the stop (buy: last >= stop, sell: last <= stop).
  After any command that traded, the earliest-accepted triggered stop fires (TRIGGERED), trades as a market or
  limit order, and the scan repeats until no stop is triggered. A stop that is already triggered when it arrives
  fires at once.
- Replace takes the new total quantity (FIX OrderQty). Lowering the quantity at the same price keeps time
  priority; a price change or a larger remaining quantity moves the order to the back and may trade.
- Self-trade prevention compares accounts and applies the engine's StpMode.
- Order ids are chosen by the caller and must be unique among working orders (DUPLICATE_ORDER_ID otherwise);
  the OMS never reuses one.
- Bad input never raises: it yields REJECTED / CANCEL_REJECTED / REPLACE_REJECTED with a RejectReason.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from native.types import CMD_CANCEL, CMD_NEW, CMD_REPLACE, EVENT_DTYPE, BookEvent
from oms.core.model.enums import BookEventKind as K
from oms.core.model.enums import CancelReason as C
from oms.core.model.enums import OrdType, Side, StpMode, TimeInForce
from oms.core.model.enums import RejectReason as R

_BUY, _SELL = int(Side.BUY), int(Side.SELL)
_MARKET, _LIMIT, _STOP, _STOP_LIMIT = (
    int(OrdType.MARKET),
    int(OrdType.LIMIT),
    int(OrdType.STOP),
    int(OrdType.STOP_LIMIT),
)
_DAY, _IOC, _FOK = int(TimeInForce.DAY), int(TimeInForce.IOC), int(TimeInForce.FOK)
_VALID_TIF = frozenset(int(t) for t in TimeInForce)


class _Order:
    __slots__ = (
        "account",
        "display",
        "filled",
        "leaves",
        "ord_type",
        "order_id",
        "price",
        "qty",
        "side",
        "stop_price",
        "symbol",
        "tif",
        "visible",
    )

    def __init__(
        self,
        order_id: int,
        account: int,
        symbol: int,
        side: int,
        ord_type: int,
        tif: int,
        qty: int,
        price: int,
        stop_price: int,
        display: int,
    ) -> None:
        self.order_id = order_id
        self.account = account
        self.symbol = symbol
        self.side = side
        self.ord_type = ord_type
        self.tif = tif
        self.qty = qty
        self.price = price
        self.stop_price = stop_price
        self.display = display
        self.filled = 0
        self.leaves = qty
        self.visible = 0

    def show(self) -> None:
        self.visible = min(self.display, self.leaves) if self.display else self.leaves


class _Book:
    def __init__(self, tick: int, lot: int) -> None:
        self.tick = tick
        self.lot = lot
        self.levels: tuple[dict[int, deque[_Order]], dict[int, deque[_Order]]] = ({}, {})  # [buy, sell]
        self.stops: list[_Order] = []
        self.last = 0

    def side_levels(self, side: int) -> dict[int, deque[_Order]]:
        return self.levels[0] if side == _BUY else self.levels[1]

    def sorted_prices(self, side: int) -> list[int]:
        """Prices of one side, best first."""
        return sorted(self.side_levels(side), reverse=side == _BUY)


class ReferenceEngine:
    """Multi-symbol matching engine in plain Python, event-for-event identical to `native.MatchingEngine`."""

    def __init__(self, stp_mode: int = StpMode.CANCEL_RESTING) -> None:
        self.stp_mode = int(stp_mode)
        self._books: dict[int, _Book] = {}
        self._orders: dict[int, _Order] = {}
        self._seq = 0
        self._out: list[BookEvent] = []

    # -- CONFIGURATION --

    def add_symbol(self, symbol: int, tick: int = 1, lot: int = 1) -> None:
        """Open a book for `symbol`; prices must be multiples of `tick` and quantities of `lot`."""
        if tick <= 0 or lot <= 0:
            raise ValueError(f"tick and lot must be positive, got tick={tick} lot={lot}")
        if symbol in self._books:
            raise ValueError(f"symbol {symbol} already has a book")
        self._books[symbol] = _Book(tick, lot)

    # -- COMMANDS --

    def submit(
        self,
        order_id: int,
        account: int,
        symbol: int,
        side: int,
        ord_type: int,
        tif: int,
        qty: int,
        price: int = 0,
        stop_price: int = 0,
        display_qty: int = 0,
    ) -> list[BookEvent]:
        """Enter a new order; returns the events it caused, in order."""
        self._out = []
        self._submit(order_id, account, symbol, side, ord_type, tif, qty, price, stop_price, display_qty)
        return self._out

    def cancel(self, order_id: int) -> list[BookEvent]:
        """Cancel a working order (resting or waiting stop); unknown ids give CANCEL_REJECTED."""
        self._out = []
        self._remove_working(order_id, K.CANCELED, C.USER, K.CANCEL_REJECTED)
        return self._out

    def expire(self, order_id: int) -> list[BookEvent]:
        """Expire a working order (GTD reached, end of day); unknown ids give CANCEL_REJECTED."""
        self._out = []
        self._remove_working(order_id, K.EXPIRED, C.EXPIRED, K.CANCEL_REJECTED)
        return self._out

    def replace(self, order_id: int, qty: int, price: int = 0) -> list[BookEvent]:
        """Change a working order's total quantity and limit price; see the module rules for priority."""
        self._out = []
        self._replace(order_id, qty, price)
        return self._out

    def end_of_day(self) -> list[BookEvent]:
        """Expire every working DAY order, in ascending order id."""
        self._out = []
        for oid in sorted(o.order_id for o in self._orders.values() if o.tif == _DAY):
            self._remove_working(oid, K.EXPIRED, C.EXPIRED, K.CANCEL_REJECTED)
        return self._out

    def process(self, cmds: np.ndarray) -> np.ndarray:
        """Run a batch of commands (CMD_DTYPE rows) and return all their events as an EVENT_DTYPE array."""
        events: list[BookEvent] = []
        for c in cmds.tolist():
            op, order_id, account, symbol, side, ord_type, tif, qty, price, stop_price, display = c
            if op == CMD_NEW:
                events += self.submit(order_id, account, symbol, side, ord_type, tif, qty, price, stop_price, display)
            elif op == CMD_CANCEL:
                events += self.cancel(order_id)
            elif op == CMD_REPLACE:
                events += self.replace(order_id, qty, price)
            else:
                raise ValueError(f"unknown batch op {op}")
        return np.array(events, dtype=EVENT_DTYPE)

    # -- QUERIES --

    def last_price(self, symbol: int) -> int:
        """Last trade price of `symbol`, 0 before the first trade."""
        return self._books[symbol].last

    def order(self, order_id: int) -> tuple[int, int, int, int, int] | None:
        """(side, price, leaves, filled, visible) of a working order, or None."""
        o = self._orders.get(order_id)
        return None if o is None else (o.side, o.price, o.leaves, o.filled, o.visible)

    def open_orders(self) -> int:
        """Number of working orders (resting and waiting stops)."""
        return len(self._orders)

    def l1(self, symbol: int) -> tuple[int, int, int, int]:
        """(bid_px, bid_qty, ask_px, ask_qty) of visible quantity; zeros where a side is empty."""
        bids, asks = self.l2(symbol, 1)
        return int(bids[0, 0]), int(bids[0, 1]), int(asks[0, 0]), int(asks[0, 1])

    def l2(self, symbol: int, depth: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """(bids, asks), each `depth` x [price, visible qty, orders], best first, zero rows past the last level."""
        book = self._books[symbol]
        out = []
        for side in (_BUY, _SELL):
            arr = np.zeros((depth, 3), dtype=np.int64)
            levels = book.side_levels(side)
            for i, px in enumerate(book.sorted_prices(side)[:depth]):
                arr[i] = (px, sum(o.visible for o in levels[px]), len(levels[px]))
            out.append(arr)
        return out[0], out[1]

    def snapshot(self, symbol: int) -> list[tuple[int, int, int, int, int]]:
        """Every working order of `symbol` in priority order: (side, price, order_id, leaves, visible).

        Bids best first, then asks best first, then waiting stops in arrival order (price = stop price)."""
        book = self._books[symbol]
        rows = []
        for side in (_BUY, _SELL):
            levels = book.side_levels(side)
            for px in book.sorted_prices(side):
                rows += [(side, px, o.order_id, o.leaves, o.visible) for o in levels[px]]
        rows += [(o.side, o.stop_price, o.order_id, o.leaves, o.visible) for o in book.stops]
        return rows

    # -- INTERNALS --

    def _emit(
        self,
        kind: int,
        symbol: int,
        order_id: int,
        other_id: int = 0,
        side: int = 0,
        price: int = 0,
        qty: int = 0,
        leaves: int = 0,
        reason: int = 0,
        aggressor: int = 0,
    ) -> None:
        self._seq += 1
        self._out.append(
            (int(kind), symbol, order_id, other_id, side, price, qty, leaves, self._seq, int(reason), aggressor)
        )

    def _validate_new(
        self, order_id: int, symbol: int, side: int, ord_type: int, tif: int, qty: int, price: int, stop: int, disp: int
    ) -> int:
        book = self._books.get(symbol)
        if book is None:
            return R.UNKNOWN_SYMBOL
        if order_id <= 0:
            return R.INVALID_ORDER_ID
        if order_id in self._orders:
            return R.DUPLICATE_ORDER_ID
        if side not in (_BUY, _SELL):
            return R.INVALID_SIDE
        if not _MARKET <= ord_type <= _STOP_LIMIT:
            return R.INVALID_ORD_TYPE
        if tif not in _VALID_TIF:
            return R.INVALID_TIF
        if qty <= 0 or qty % book.lot:
            return R.INVALID_QTY
        if ord_type in (_LIMIT, _STOP_LIMIT):
            if price <= 0 or price % book.tick:
                return R.INVALID_PRICE
        elif price != 0:
            return R.INVALID_PRICE
        if ord_type in (_STOP, _STOP_LIMIT):
            if stop <= 0 or stop % book.tick:
                return R.INVALID_STOP_PRICE
        elif stop != 0:
            return R.INVALID_STOP_PRICE
        if disp != 0 and (
            disp < 0 or disp % book.lot or disp >= qty or ord_type in (_MARKET, _STOP) or tif in (_IOC, _FOK)
        ):
            return R.INVALID_DISPLAY_QTY
        if ord_type == _MARKET and tif not in (_IOC, _FOK, _DAY):
            return R.INVALID_TIF
        return R.NONE

    def _submit(
        self,
        order_id: int,
        account: int,
        symbol: int,
        side: int,
        ord_type: int,
        tif: int,
        qty: int,
        price: int,
        stop: int,
        disp: int,
    ) -> None:
        reason = self._validate_new(order_id, symbol, side, ord_type, tif, qty, price, stop, disp)
        if reason:
            self._emit(K.REJECTED, symbol, order_id, side=side if side in (_BUY, _SELL) else 0, qty=qty, reason=reason)
            return
        book = self._books[symbol]
        o = _Order(order_id, account, symbol, side, ord_type, tif, qty, price, stop, disp)
        is_stop = ord_type in (_STOP, _STOP_LIMIT)
        if tif == _FOK and not is_stop and self._fillable(book, o) < qty:
            self._emit(K.REJECTED, symbol, order_id, side=side, qty=qty, reason=R.FOK_UNFILLABLE)
            return
        self._orders[order_id] = o
        self._emit(K.ACCEPTED, symbol, order_id, side=side, price=price, qty=qty, leaves=qty)
        if is_stop:
            book.stops.append(o)
            if not self._triggered(book, o):
                return
            book.stops.remove(o)
            self._fire(book, o)
        else:
            self._take(book, o)
        self._run_stops(book)

    def _remove_working(self, order_id: int, kind: int, reason: int, reject_kind: int) -> None:
        o = self._orders.get(order_id)
        if o is None:
            self._emit(reject_kind, 0, order_id, reason=R.UNKNOWN_ORDER)
            return
        book = self._books[o.symbol]
        if o in book.stops:
            book.stops.remove(o)
        else:
            self._unlink(book, o)
        del self._orders[order_id]
        self._emit(kind, o.symbol, order_id, side=o.side, price=o.price, qty=o.leaves, leaves=0, reason=reason)

    def _replace(self, order_id: int, qty: int, price: int) -> None:
        o = self._orders.get(order_id)
        if o is None:
            self._emit(K.REPLACE_REJECTED, 0, order_id, reason=R.UNKNOWN_ORDER)
            return
        book = self._books[o.symbol]
        reason = R.NONE
        if qty <= 0 or qty % book.lot:
            reason = R.INVALID_QTY
        elif qty <= o.filled:
            reason = R.QTY_BELOW_FILLED
        elif o.ord_type in (_LIMIT, _STOP_LIMIT):
            if price <= 0 or price % book.tick:
                reason = R.INVALID_PRICE
        elif price != 0:
            reason = R.INVALID_PRICE
        if reason:
            self._emit(K.REPLACE_REJECTED, o.symbol, order_id, side=o.side, price=o.price, qty=o.qty, reason=reason)
            return
        leaves = qty - o.filled
        if o in book.stops:
            o.qty, o.leaves, o.price = qty, leaves, price
            self._emit(K.REPLACED, o.symbol, order_id, side=o.side, price=price, qty=qty, leaves=leaves)
            return
        if price == o.price and leaves <= o.leaves:
            o.qty, o.leaves = qty, leaves
            o.visible = min(o.visible, leaves)
            self._emit(K.REPLACED, o.symbol, order_id, side=o.side, price=price, qty=qty, leaves=leaves)
            return
        self._unlink(book, o)
        o.qty, o.leaves, o.price = qty, leaves, price
        self._emit(K.REPLACED, o.symbol, order_id, side=o.side, price=price, qty=qty, leaves=leaves)
        self._take(book, o)
        self._run_stops(book)

    def _unlink(self, book: _Book, o: _Order) -> None:
        levels = book.side_levels(o.side)
        level = levels[o.price]
        level.remove(o)
        if not level:
            del levels[o.price]

    def _crosses(self, o: _Order, px: int) -> bool:
        if o.ord_type in (_MARKET, _STOP):
            return True
        return px <= o.price if o.side == _BUY else px >= o.price

    def _fillable(self, book: _Book, o: _Order) -> int:
        """Quantity `o` could trade right now, honouring self-trade prevention."""
        total = 0
        levels = book.side_levels(3 - o.side)
        for px in book.sorted_prices(3 - o.side):
            if not self._crosses(o, px):
                break
            for m in levels[px]:
                if m.account == o.account and self.stp_mode != StpMode.NONE:
                    if self.stp_mode == StpMode.CANCEL_RESTING:
                        continue
                    return total
                total += m.leaves
                if total >= o.leaves:
                    return total
        return total

    def _take(self, book: _Book, o: _Order) -> None:
        """Match `o` as the aggressor, then rest or cancel what is left."""
        levels = book.side_levels(3 - o.side)
        stp_hit = False
        while o.leaves > 0 and levels:
            best = min(levels) if o.side == _BUY else max(levels)
            if not self._crosses(o, best):
                break
            level = levels[best]
            m = level[0]
            if m.account == o.account and self.stp_mode != StpMode.NONE:
                if self.stp_mode != StpMode.CANCEL_INCOMING:
                    level.popleft()
                    if not level:
                        del levels[best]
                    del self._orders[m.order_id]
                    self._emit(
                        K.CANCELED, m.symbol, m.order_id, side=m.side, price=m.price, qty=m.leaves, reason=C.SELF_TRADE
                    )
                if self.stp_mode != StpMode.CANCEL_RESTING:
                    stp_hit = True
                    break
                continue
            q = min(o.leaves, m.visible)
            o.leaves -= q
            o.filled += q
            m.leaves -= q
            m.filled += q
            m.visible -= q
            book.last = best
            self._emit(K.FILL, o.symbol, o.order_id, m.order_id, o.side, best, q, o.leaves, aggressor=1)
            self._emit(K.FILL, o.symbol, m.order_id, o.order_id, m.side, best, q, m.leaves)
            self._emit(K.TRADE, o.symbol, o.order_id, m.order_id, o.side, best, q)
            if m.leaves == 0:
                level.popleft()
                del self._orders[m.order_id]
                if not level:
                    del levels[best]
            elif m.visible == 0:
                level.popleft()
                m.show()
                level.append(m)
        if o.leaves == 0:
            del self._orders[o.order_id]
            return
        is_market = o.ord_type in (_MARKET, _STOP)
        if stp_hit or is_market or o.tif == _IOC or o.tif == _FOK:
            del self._orders[o.order_id]
            reason = C.SELF_TRADE if stp_hit else C.NO_LIQUIDITY if is_market else C.IOC
            self._emit(K.CANCELED, o.symbol, o.order_id, side=o.side, price=o.price, qty=o.leaves, reason=reason)
            return
        o.show()
        book.side_levels(o.side).setdefault(o.price, deque()).append(o)

    def _triggered(self, book: _Book, o: _Order) -> bool:
        if book.last == 0:
            return False
        return book.last >= o.stop_price if o.side == _BUY else book.last <= o.stop_price

    def _fire(self, book: _Book, o: _Order) -> None:
        self._emit(K.TRIGGERED, o.symbol, o.order_id, side=o.side, price=book.last, qty=o.qty, leaves=o.leaves)
        if o.tif == _FOK and self._fillable(book, o) < o.leaves:
            del self._orders[o.order_id]
            self._emit(
                K.CANCELED, o.symbol, o.order_id, side=o.side, price=o.price, qty=o.leaves, reason=C.FOK_UNFILLABLE
            )
            return
        self._take(book, o)

    def _run_stops(self, book: _Book) -> None:
        while True:
            fired = next((s for s in book.stops if self._triggered(book, s)), None)
            if fired is None:
                return
            book.stops.remove(fired)
            self._fire(book, fired)
