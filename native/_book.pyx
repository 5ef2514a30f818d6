# cython: language_level=3
# distutils: language = c++
"""Native price-time priority matching engine.

Event-for-event identical to `native.reference.ReferenceEngine`, whose module docstring states the matching rules.
No Python objects are touched on the matching path except the per-symbol book; events collect in a C++ vector and
leave either as tuples (single-call API) or as one numpy array (batch API).
"""

from cython.operator cimport dereference as deref
from libc.stdint cimport int32_t, int64_t
from libc.string cimport memcpy
from libcpp.algorithm cimport sort
from libcpp.map cimport map as cmap
from libcpp.utility cimport pair
from libcpp.vector cimport vector

cimport numpy as cnp
import numpy as np

from native.types import CMD_DTYPE, EVENT_DTYPE
from oms.core.model.enums import StpMode

cnp.import_array()

# -- CONSTANTS (mirror oms.core.model.enums; tests/unit/test_book_abi.py pins them) --

cdef enum:
    BUY = 1
    SELL = 2
    MARKET = 1
    LIMIT = 2
    STOP = 3
    STOP_LIMIT = 4
    DAY = 0
    GTC = 1
    IOC = 3
    FOK = 4
    GTD = 6
    STP_NONE = 0
    STP_CANCEL_RESTING = 1
    STP_CANCEL_INCOMING = 2
    STP_CANCEL_BOTH = 3

cdef enum:
    K_ACCEPTED = 1
    K_REJECTED = 2
    K_FILL = 3
    K_TRADE = 4
    K_CANCELED = 5
    K_EXPIRED = 6
    K_TRIGGERED = 7
    K_REPLACED = 8
    K_CANCEL_REJECTED = 9
    K_REPLACE_REJECTED = 10

cdef enum:
    R_NONE = 0
    R_UNKNOWN_SYMBOL = 1
    R_INVALID_QTY = 2
    R_INVALID_PRICE = 3
    R_INVALID_STOP_PRICE = 4
    R_INVALID_DISPLAY_QTY = 5
    R_FOK_UNFILLABLE = 6
    R_UNKNOWN_ORDER = 7
    R_DUPLICATE_ORDER_ID = 8
    R_QTY_BELOW_FILLED = 9
    R_INVALID_SIDE = 10
    R_INVALID_ORD_TYPE = 11
    R_INVALID_TIF = 12
    R_INVALID_ORDER_ID = 13

cdef enum:
    C_USER = 1
    C_IOC = 2
    C_NO_LIQUIDITY = 3
    C_SELF_TRADE = 4
    C_FOK_UNFILLABLE = 5
    C_EXPIRED = 7

cdef enum:
    W_FREE = 0
    W_RESTING = 1
    W_STOP = 2
    W_TAKING = 3

CMD_NEW = 1
CMD_CANCEL = 2
CMD_REPLACE = 3

ABI = {
    "BUY": BUY, "SELL": SELL, "MARKET": MARKET, "LIMIT": LIMIT, "STOP": STOP, "STOP_LIMIT": STOP_LIMIT,
    "DAY": DAY, "GTC": GTC, "IOC": IOC, "FOK": FOK, "GTD": GTD,
    "STP_NONE": STP_NONE, "STP_CANCEL_RESTING": STP_CANCEL_RESTING, "STP_CANCEL_INCOMING": STP_CANCEL_INCOMING,
    "STP_CANCEL_BOTH": STP_CANCEL_BOTH,
    "K_ACCEPTED": K_ACCEPTED, "K_REJECTED": K_REJECTED, "K_FILL": K_FILL, "K_TRADE": K_TRADE,
    "K_CANCELED": K_CANCELED, "K_EXPIRED": K_EXPIRED, "K_TRIGGERED": K_TRIGGERED, "K_REPLACED": K_REPLACED,
    "K_CANCEL_REJECTED": K_CANCEL_REJECTED, "K_REPLACE_REJECTED": K_REPLACE_REJECTED,
    "R_NONE": R_NONE, "R_UNKNOWN_SYMBOL": R_UNKNOWN_SYMBOL, "R_INVALID_QTY": R_INVALID_QTY,
    "R_INVALID_PRICE": R_INVALID_PRICE, "R_INVALID_STOP_PRICE": R_INVALID_STOP_PRICE,
    "R_INVALID_DISPLAY_QTY": R_INVALID_DISPLAY_QTY, "R_FOK_UNFILLABLE": R_FOK_UNFILLABLE,
    "R_UNKNOWN_ORDER": R_UNKNOWN_ORDER, "R_DUPLICATE_ORDER_ID": R_DUPLICATE_ORDER_ID,
    "R_QTY_BELOW_FILLED": R_QTY_BELOW_FILLED, "R_INVALID_SIDE": R_INVALID_SIDE,
    "R_INVALID_ORD_TYPE": R_INVALID_ORD_TYPE, "R_INVALID_TIF": R_INVALID_TIF,
    "R_INVALID_ORDER_ID": R_INVALID_ORDER_ID,
    "C_USER": C_USER, "C_IOC": C_IOC, "C_NO_LIQUIDITY": C_NO_LIQUIDITY, "C_SELF_TRADE": C_SELF_TRADE,
    "C_FOK_UNFILLABLE": C_FOK_UNFILLABLE, "C_EXPIRED": C_EXPIRED,
}

cdef Event _e
cdef Cmd _c
if (sizeof(Event) != EVENT_DTYPE.itemsize or sizeof(Cmd) != CMD_DTYPE.itemsize
        or EVENT_DTYPE.fields["order_id"][1] != <char*> &_e.order_id - <char*> &_e
        or EVENT_DTYPE.fields["symbol"][1] != <char*> &_e.symbol - <char*> &_e
        or EVENT_DTYPE.fields["kind"][1] != <char*> &_e.kind - <char*> &_e
        or EVENT_DTYPE.fields["aggressor"][1] != <char*> &_e.aggressor - <char*> &_e
        or CMD_DTYPE.fields["display_qty"][1] != <char*> &_c.display_qty - <char*> &_c):
    raise ImportError("native._book record layout does not match native.types")


cdef inline bint _valid_tif(int tif) noexcept:
    return tif == DAY or tif == GTC or tif == IOC or tif == FOK or tif == GTD


cdef inline bint _is_stop(int ord_type) noexcept:
    return ord_type == STOP or ord_type == STOP_LIMIT


cdef inline bint _is_market(int ord_type) noexcept:
    return ord_type == MARKET or ord_type == STOP


cdef class SymbolBook:
    """One symbol's bids, asks and waiting stops. Owned by a MatchingEngine."""

    def __cinit__(self, int32_t symbol, int64_t tick, int64_t lot):
        self.symbol = symbol
        self.tick = tick
        self.lot = lot
        self.last = 0


cdef class MatchingEngine:
    """Multi-symbol price-time priority matching engine.

    Identical in behaviour to `native.ReferenceEngine`. Single-call methods return a list of event tuples laid out as
    `native.EVENT_FIELDS`; `process` runs a CMD_DTYPE array and returns an EVENT_DTYPE array. Bad input yields a
    reject event, never an exception; integer arguments must fit in 64 bits.
    """

    def __cinit__(self, int stp_mode=STP_CANCEL_RESTING, Py_ssize_t capacity=1024):
        if stp_mode < STP_NONE or stp_mode > STP_CANCEL_BOTH:
            raise ValueError(f"unknown self-trade prevention mode {stp_mode}")
        self.stp = stp_mode
        self.seq = 0
        self.books = {}
        self.orders.reserve(capacity)
        self.levels.reserve(capacity)
        self.ids.reserve(capacity)
        self.out.reserve(64)

    @property
    def stp_mode(self) -> StpMode:
        return StpMode(self.stp)

    # -- CONFIGURATION --

    def add_symbol(self, int32_t symbol, int64_t tick=1, int64_t lot=1) -> None:
        """Open a book for `symbol`; prices must be multiples of `tick` and quantities of `lot`."""
        if tick <= 0 or lot <= 0:
            raise ValueError(f"tick and lot must be positive, got tick={tick} lot={lot}")
        if symbol in self.books:
            raise ValueError(f"symbol {symbol} already has a book")
        self.books[symbol] = SymbolBook(symbol, tick, lot)

    # -- COMMANDS (single call) --

    def submit(self, int64_t order_id, int64_t account, int32_t symbol, int side, int ord_type, int tif,
               int64_t qty, int64_t price=0, int64_t stop_price=0, int64_t display_qty=0) -> list:
        """Enter a new order; returns the events it caused, in order."""
        self.out.clear()
        self._submit(order_id, account, symbol, side, ord_type, tif, qty, price, stop_price, display_qty)
        return self._drain()

    def cancel(self, int64_t order_id) -> list:
        """Cancel a working order (resting or waiting stop); unknown ids give CANCEL_REJECTED."""
        self.out.clear()
        self._remove_working(order_id, K_CANCELED, C_USER, K_CANCEL_REJECTED)
        return self._drain()

    def expire(self, int64_t order_id) -> list:
        """Expire a working order (GTD reached, end of day); unknown ids give CANCEL_REJECTED."""
        self.out.clear()
        self._remove_working(order_id, K_EXPIRED, C_EXPIRED, K_CANCEL_REJECTED)
        return self._drain()

    def replace(self, int64_t order_id, int64_t qty, int64_t price=0) -> list:
        """Change a working order's total quantity and limit price; see the reference engine for priority."""
        self.out.clear()
        self._replace(order_id, qty, price)
        return self._drain()

    def end_of_day(self) -> list:
        """Expire every working DAY order, in ascending order id."""
        cdef vector[int64_t] day
        cdef size_t i
        self.out.clear()
        for i in range(self.ids.capacity()):
            if self.ids.key_at(i) != 0 and self.orders[self.ids.val_at(i)].tif == DAY:
                day.push_back(self.ids.key_at(i))
        sort(day.begin(), day.end())
        for i in range(day.size()):
            self._remove_working(day[i], K_EXPIRED, C_EXPIRED, K_CANCEL_REJECTED)
        return self._drain()

    # -- COMMANDS (batch) --

    def process(self, cnp.ndarray cmds, cnp.ndarray out=None) -> cnp.ndarray:
        """Run a batch of commands (a C-contiguous CMD_DTYPE array); returns all their events as EVENT_DTYPE.

        With `out` (a C-contiguous EVENT_DTYPE array) the events are written into it and the filled prefix is
        returned as a view, which saves allocating fresh memory per batch; when `out` is too small a new array is
        returned instead, so no event is ever dropped."""
        if cmds.dtype != CMD_DTYPE or not cmds.flags.c_contiguous or cmds.ndim != 1:
            raise TypeError("process() takes a 1-d C-contiguous array of native.CMD_DTYPE")
        if out is not None and (out.dtype != EVENT_DTYPE or not out.flags.c_contiguous or out.ndim != 1):
            raise TypeError("process(out=...) takes a 1-d C-contiguous array of native.EVENT_DTYPE")
        cdef const Cmd* c = <const Cmd*> cnp.PyArray_DATA(cmds)
        cdef Py_ssize_t i, n = cmds.shape[0]
        for i in range(n):
            if c[i].op != CMD_NEW and c[i].op != CMD_CANCEL and c[i].op != CMD_REPLACE:
                raise ValueError(f"unknown batch op {c[i].op} at row {i}; nothing was processed")
        self.out.clear()
        for i in range(n):
            if c[i].op == CMD_NEW:
                self._submit(c[i].order_id, c[i].account, c[i].symbol, c[i].side, c[i].ord_type, c[i].tif,
                             c[i].qty, c[i].price, c[i].stop_price, c[i].display_qty)
            elif c[i].op == CMD_CANCEL:
                self._remove_working(c[i].order_id, K_CANCELED, C_USER, K_CANCEL_REJECTED)
            else:
                self._replace(c[i].order_id, c[i].qty, c[i].price)
        cdef cnp.ndarray events
        if out is not None and <size_t> out.shape[0] >= self.out.size():
            events = out[:self.out.size()]
        else:
            events = np.empty(self.out.size(), dtype=EVENT_DTYPE)
        if self.out.size():
            memcpy(cnp.PyArray_DATA(events), self.out.data(), self.out.size() * sizeof(Event))
        self.out.clear()
        return events

    # -- QUERIES --

    def last_price(self, int32_t symbol) -> int:
        """Last trade price of `symbol`, 0 before the first trade."""
        return (<SymbolBook> self.books[symbol]).last

    def order(self, int64_t order_id):
        """(side, price, leaves, filled, visible) of a working order, or None."""
        cdef int32_t slot = self.ids.get(order_id)
        if slot == -1:
            return None
        cdef Order* o = &self.orders[slot]
        return (o.side, o.price, o.leaves, o.filled, o.visible)

    def open_orders(self) -> int:
        """Number of working orders (resting and waiting stops)."""
        return self.ids.size()

    def l1(self, int32_t symbol) -> tuple:
        """(bid_px, bid_qty, ask_px, ask_qty) of visible quantity; zeros where a side is empty. Read from the best
        level of each side, no array made: the tape reads it after every step that touched the symbol."""
        cdef SymbolBook book = self.books[symbol]
        cdef int64_t bid = 0, bid_qty = 0, ask = 0, ask_qty = 0
        cdef Level* lv
        if not book.bids.empty():
            lv = &self.levels[deref(book.bids.begin()).second]
            bid, bid_qty = lv.price, lv.visible
        if not book.asks.empty():
            lv = &self.levels[deref(book.asks.begin()).second]
            ask, ask_qty = lv.price, lv.visible
        return (bid, bid_qty, ask, ask_qty)

    def l2(self, int32_t symbol, int depth=10):
        """(bids, asks), each `depth` x [price, visible qty, orders], best first, zero rows past the last level."""
        cdef SymbolBook book = self.books[symbol]
        cdef cnp.ndarray[cnp.int64_t, ndim=2] bids = np.zeros((depth, 3), dtype=np.int64)
        cdef cnp.ndarray[cnp.int64_t, ndim=2] asks = np.zeros((depth, 3), dtype=np.int64)
        cdef int i = 0
        cdef Level* lv
        cdef pair[int64_t, int32_t] kv
        for kv in book.bids:
            if i >= depth:
                break
            lv = &self.levels[kv.second]
            bids[i, 0] = lv.price
            bids[i, 1] = lv.visible
            bids[i, 2] = lv.count
            i += 1
        i = 0
        for kv in book.asks:
            if i >= depth:
                break
            lv = &self.levels[kv.second]
            asks[i, 0] = lv.price
            asks[i, 1] = lv.visible
            asks[i, 2] = lv.count
            i += 1
        return bids, asks

    def snapshot(self, int32_t symbol) -> list:
        """Every working order of `symbol` in priority order: (side, price, order_id, leaves, visible).

        Bids best first, then asks best first, then waiting stops in arrival order (price = stop price)."""
        cdef SymbolBook book = self.books[symbol]
        cdef list rows = []
        cdef int32_t s
        cdef Order* o
        cdef pair[int64_t, int32_t] kv
        for kv in book.bids:
            s = self.levels[kv.second].head
            while s != -1:
                o = &self.orders[s]
                rows.append((o.side, o.price, o.order_id, o.leaves, o.visible))
                s = o.next
        for kv in book.asks:
            s = self.levels[kv.second].head
            while s != -1:
                o = &self.orders[s]
                rows.append((o.side, o.price, o.order_id, o.leaves, o.visible))
                s = o.next
        for s in book.stops:
            o = &self.orders[s]
            rows.append((o.side, o.stop_price, o.order_id, o.leaves, o.visible))
        return rows

    # -- INTERNALS: commands --

    cdef void _submit(self, int64_t order_id, int64_t account, int32_t symbol, int side, int ord_type, int tif,
                      int64_t qty, int64_t price, int64_t stop, int64_t disp) noexcept:
        cdef SymbolBook book = self._book(symbol)
        cdef int reason = R_NONE
        if book is None:
            reason = R_UNKNOWN_SYMBOL
        else:
            if order_id <= 0:
                reason = R_INVALID_ORDER_ID
            elif self.ids.contains(order_id):
                reason = R_DUPLICATE_ORDER_ID
            elif side != BUY and side != SELL:
                reason = R_INVALID_SIDE
            elif ord_type < MARKET or ord_type > STOP_LIMIT:
                reason = R_INVALID_ORD_TYPE
            elif not _valid_tif(tif):
                reason = R_INVALID_TIF
            elif qty <= 0 or qty % book.lot:
                reason = R_INVALID_QTY
            elif (ord_type == LIMIT or ord_type == STOP_LIMIT) and (price <= 0 or price % book.tick):
                reason = R_INVALID_PRICE
            elif (ord_type == MARKET or ord_type == STOP) and price != 0:
                reason = R_INVALID_PRICE
            elif _is_stop(ord_type) and (stop <= 0 or stop % book.tick):
                reason = R_INVALID_STOP_PRICE
            elif not _is_stop(ord_type) and stop != 0:
                reason = R_INVALID_STOP_PRICE
            elif disp != 0 and (disp < 0 or disp % book.lot or disp >= qty or _is_market(ord_type)
                                or tif == IOC or tif == FOK):
                reason = R_INVALID_DISPLAY_QTY
            elif ord_type == MARKET and tif != IOC and tif != FOK and tif != DAY:
                reason = R_INVALID_TIF
        if reason != R_NONE:
            self._emit(K_REJECTED, symbol, order_id, 0, side if (side == BUY or side == SELL) else 0,
                       0, qty, 0, reason, 0)
            return

        cdef int32_t slot = self._alloc_order()
        cdef Order* o = &self.orders[slot]
        o.order_id = order_id
        o.account = account
        o.symbol = symbol
        o.side = side
        o.ord_type = ord_type
        o.tif = tif
        o.qty = qty
        o.price = price
        o.stop_price = stop
        o.display = disp
        o.filled = 0
        o.leaves = qty
        o.visible = 0
        o.prev = -1
        o.next = -1
        o.level = -1
        o.where = W_TAKING
        o.book = <void*> book
        if tif == FOK and not _is_stop(ord_type) and self._fillable(book, slot) < qty:
            self._free_order(slot)
            self._emit(K_REJECTED, symbol, order_id, 0, side, 0, qty, 0, R_FOK_UNFILLABLE, 0)
            return
        self.ids.put(order_id, slot)
        self._emit(K_ACCEPTED, symbol, order_id, 0, side, price, qty, qty, 0, 0)
        if _is_stop(ord_type):
            if book.last != 0 and ((side == BUY and book.last >= stop) or (side == SELL and book.last <= stop)):
                self._fire(book, slot)
            else:
                self.orders[slot].where = W_STOP
                book.stops.push_back(slot)
                return
        else:
            self._take(book, slot)
        self._run_stops(book)

    cdef void _remove_working(self, int64_t order_id, int kind, int reason, int reject_kind) noexcept:
        cdef int32_t slot = self.ids.get(order_id)
        if slot == -1:
            self._emit(reject_kind, 0, order_id, 0, 0, 0, 0, 0, R_UNKNOWN_ORDER, 0)
            return
        cdef SymbolBook book = <SymbolBook> self.orders[slot].book
        cdef size_t i
        if self.orders[slot].where == W_STOP:
            for i in range(book.stops.size()):
                if book.stops[i] == slot:
                    book.stops.erase(book.stops.begin() + i)
                    break
        else:
            self._unlink(book, slot)
        self.ids.erase(order_id)
        cdef Order* o = &self.orders[slot]
        self._emit(kind, o.symbol, order_id, 0, o.side, o.price, o.leaves, 0, reason, 0)
        self._free_order(slot)

    cdef void _replace(self, int64_t order_id, int64_t qty, int64_t price) noexcept:
        cdef int32_t slot = self.ids.get(order_id)
        if slot == -1:
            self._emit(K_REPLACE_REJECTED, 0, order_id, 0, 0, 0, 0, 0, R_UNKNOWN_ORDER, 0)
            return
        cdef Order* o = &self.orders[slot]
        cdef SymbolBook book = <SymbolBook> o.book
        cdef int reason = R_NONE
        if qty <= 0 or qty % book.lot:
            reason = R_INVALID_QTY
        elif qty <= o.filled:
            reason = R_QTY_BELOW_FILLED
        elif o.ord_type == LIMIT or o.ord_type == STOP_LIMIT:
            if price <= 0 or price % book.tick:
                reason = R_INVALID_PRICE
        elif price != 0:
            reason = R_INVALID_PRICE
        if reason != R_NONE:
            self._emit(K_REPLACE_REJECTED, o.symbol, order_id, 0, o.side, o.price, o.qty, 0, reason, 0)
            return
        cdef int64_t leaves = qty - o.filled
        cdef int64_t visible
        if o.where == W_STOP:
            o.qty = qty
            o.leaves = leaves
            o.price = price
            self._emit(K_REPLACED, o.symbol, order_id, 0, o.side, price, qty, leaves, 0, 0)
            return
        if price == o.price and leaves <= o.leaves:
            visible = o.visible if o.visible < leaves else leaves
            self.levels[o.level].visible -= o.visible - visible
            o.visible = visible
            o.qty = qty
            o.leaves = leaves
            self._emit(K_REPLACED, o.symbol, order_id, 0, o.side, price, qty, leaves, 0, 0)
            return
        self._unlink(book, slot)
        o = &self.orders[slot]
        o.qty = qty
        o.leaves = leaves
        o.price = price
        o.where = W_TAKING
        self._emit(K_REPLACED, o.symbol, order_id, 0, o.side, price, qty, leaves, 0, 0)
        self._take(book, slot)
        self._run_stops(book)

    # -- INTERNALS: matching --

    cdef void _take(self, SymbolBook book, int32_t slot) noexcept:
        cdef Order* o = &self.orders[slot]
        cdef Order* m
        cdef cmap[int64_t, int32_t]* opp = &book.asks if o.side == BUY else &book.bids
        cdef bint market = _is_market(o.ord_type)
        cdef bint stp_hit = False
        cdef int32_t lvl, ms
        cdef int64_t px, q
        cdef Level* lv
        while o.leaves > 0 and not opp.empty():
            lvl = deref(opp.begin()).second
            lv = &self.levels[lvl]
            px = lv.price
            if not market and ((o.side == BUY and px > o.price) or (o.side == SELL and px < o.price)):
                break
            ms = lv.head
            m = &self.orders[ms]
            if self.stp != STP_NONE and m.account == o.account:
                if self.stp != STP_CANCEL_INCOMING:
                    self.ids.erase(m.order_id)
                    self._emit(K_CANCELED, m.symbol, m.order_id, 0, m.side, m.price, m.leaves, 0, C_SELF_TRADE, 0)
                    self._unlink(book, ms)
                    self._free_order(ms)
                if self.stp != STP_CANCEL_RESTING:
                    stp_hit = True
                    break
                continue
            q = o.leaves if o.leaves < m.visible else m.visible
            o.leaves -= q
            o.filled += q
            m.leaves -= q
            m.filled += q
            m.visible -= q
            lv.visible -= q
            book.last = px
            self._emit(K_FILL, o.symbol, o.order_id, m.order_id, o.side, px, q, o.leaves, 0, 1)
            self._emit(K_FILL, o.symbol, m.order_id, o.order_id, m.side, px, q, m.leaves, 0, 0)
            self._emit(K_TRADE, o.symbol, o.order_id, m.order_id, o.side, px, q, 0, 0, 0)
            if m.leaves == 0:
                self.ids.erase(m.order_id)
                self._unlink(book, ms)
                self._free_order(ms)
            elif m.visible == 0:
                # iceberg: show the next slice at the back of the level
                self._unlink(book, ms)
                self._rest(book, ms)
        if o.leaves == 0:
            self.ids.erase(o.order_id)
            self._free_order(slot)
            return
        if stp_hit or market or o.tif == IOC or o.tif == FOK:
            self.ids.erase(o.order_id)
            self._emit(K_CANCELED, o.symbol, o.order_id, 0, o.side, o.price, o.leaves, 0,
                       C_SELF_TRADE if stp_hit else (C_NO_LIQUIDITY if market else C_IOC), 0)
            self._free_order(slot)
            return
        self._rest(book, slot)

    cdef int64_t _fillable(self, SymbolBook book, int32_t slot) noexcept:
        cdef Order* o = &self.orders[slot]
        cdef Order* m
        cdef cmap[int64_t, int32_t]* opp = &book.asks if o.side == BUY else &book.bids
        cdef bint market = _is_market(o.ord_type)
        cdef int64_t total = 0, px
        cdef int32_t s
        cdef pair[int64_t, int32_t] kv
        for kv in deref(opp):
            px = self.levels[kv.second].price
            if not market and ((o.side == BUY and px > o.price) or (o.side == SELL and px < o.price)):
                break
            s = self.levels[kv.second].head
            while s != -1:
                m = &self.orders[s]
                if self.stp != STP_NONE and m.account == o.account:
                    if self.stp != STP_CANCEL_RESTING:
                        return total
                else:
                    total += m.leaves
                    if total >= o.leaves:
                        return total
                s = m.next
        return total

    cdef void _fire(self, SymbolBook book, int32_t slot) noexcept:
        cdef Order* o = &self.orders[slot]
        o.where = W_TAKING
        self._emit(K_TRIGGERED, o.symbol, o.order_id, 0, o.side, book.last, o.qty, o.leaves, 0, 0)
        if o.tif == FOK and self._fillable(book, slot) < o.leaves:
            o = &self.orders[slot]
            self.ids.erase(o.order_id)
            self._emit(K_CANCELED, o.symbol, o.order_id, 0, o.side, o.price, o.leaves, 0, C_FOK_UNFILLABLE, 0)
            self._free_order(slot)
            return
        self._take(book, slot)

    cdef void _run_stops(self, SymbolBook book) noexcept:
        cdef size_t i
        cdef int32_t s
        cdef Order* o
        cdef bint found
        while book.last != 0 and book.stops.size():
            found = False
            for i in range(book.stops.size()):
                s = book.stops[i]
                o = &self.orders[s]
                if (o.side == BUY and book.last >= o.stop_price) or (o.side == SELL and book.last <= o.stop_price):
                    found = True
                    break
            if not found:
                return
            book.stops.erase(book.stops.begin() + i)
            self._fire(book, s)

    # -- INTERNALS: storage --

    cdef SymbolBook _book(self, int32_t symbol):
        """The book of `symbol`, or None."""
        if self.last_book is not None and symbol == self.last_symbol:
            return self.last_book
        book = self.books.get(symbol)
        if book is not None:
            self.last_symbol = symbol
            self.last_book = <SymbolBook> book
        return book

    cdef int32_t _alloc_order(self) noexcept:
        cdef int32_t slot
        if self.free_orders.size():
            slot = self.free_orders.back()
            self.free_orders.pop_back()
            return slot
        self.orders.resize(self.orders.size() + 1)
        return <int32_t> (self.orders.size() - 1)

    cdef void _free_order(self, int32_t slot) noexcept:
        self.orders[slot].where = W_FREE
        self.free_orders.push_back(slot)

    cdef void _rest(self, SymbolBook book, int32_t slot) noexcept:
        """Show the order's next slice and append it to the back of its price level."""
        cdef Order* o = &self.orders[slot]
        cdef cmap[int64_t, int32_t]* side_map = &book.bids if o.side == BUY else &book.asks
        cdef int64_t key = -o.price if o.side == BUY else o.price
        cdef int32_t lvl
        cdef Level* lv
        cdef cmap[int64_t, int32_t].iterator it = side_map.find(key)
        if it == side_map.end():
            if self.free_levels.size():
                lvl = self.free_levels.back()
                self.free_levels.pop_back()
            else:
                self.levels.resize(self.levels.size() + 1)
                lvl = <int32_t> (self.levels.size() - 1)
            lv = &self.levels[lvl]
            lv.price = o.price
            lv.visible = 0
            lv.head = -1
            lv.tail = -1
            lv.count = 0
            side_map.insert((key, lvl))
        else:
            lvl = deref(it).second
            lv = &self.levels[lvl]
        o.visible = o.display if (o.display and o.display < o.leaves) else o.leaves
        o.level = lvl
        o.where = W_RESTING
        o.next = -1
        o.prev = lv.tail
        if lv.tail != -1:
            self.orders[lv.tail].next = slot
        else:
            lv.head = slot
        lv.tail = slot
        lv.count += 1
        lv.visible += o.visible

    cdef void _unlink(self, SymbolBook book, int32_t slot) noexcept:
        """Take a resting order out of its level; drop the level when it empties."""
        cdef Order* o = &self.orders[slot]
        cdef int32_t lvl = o.level
        cdef Level* lv = &self.levels[lvl]
        if o.prev != -1:
            self.orders[o.prev].next = o.next
        else:
            lv.head = o.next
        if o.next != -1:
            self.orders[o.next].prev = o.prev
        else:
            lv.tail = o.prev
        lv.count -= 1
        lv.visible -= o.visible
        o.prev = -1
        o.next = -1
        o.level = -1
        o.where = W_TAKING
        if lv.count == 0:
            if o.side == BUY:
                book.bids.erase(-lv.price)
            else:
                book.asks.erase(lv.price)
            self.free_levels.push_back(lvl)

    cdef inline void _emit(self, int kind, int32_t symbol, int64_t order_id, int64_t other_id, int side,
                           int64_t price, int64_t qty, int64_t leaves, int reason, int aggressor) noexcept:
        cdef Event e
        self.seq += 1
        e.kind = kind
        e.symbol = symbol
        e.order_id = order_id
        e.other_id = other_id
        e.side = side
        e.price = price
        e.qty = qty
        e.leaves = leaves
        e.exec_id = self.seq
        e.reason = reason
        e.aggressor = aggressor
        self.out.push_back(e)

    cdef list _drain(self):
        cdef list events = []
        cdef Event* e
        cdef size_t i
        for i in range(self.out.size()):
            e = &self.out[i]
            events.append((e.kind, e.symbol, e.order_id, e.other_id, e.side, e.price, e.qty, e.leaves, e.exec_id,
                           e.reason, e.aggressor))
        self.out.clear()
        return events
