# cython: language_level=3
"""Header of the native matching engine: record layouts and the engine's state."""

cimport cython
from libc.stdint cimport int8_t, int32_t, int64_t
from libcpp cimport bool as cbool
from libcpp.map cimport map as cmap
from libcpp.vector cimport vector


cdef extern from "idmap.h" nogil:
    cdef cppclass IdMap:
        void reserve(size_t n)
        int32_t get(int64_t key)
        cbool contains(int64_t key)
        void put(int64_t key, int32_t val)
        cbool erase(int64_t key)
        size_t size()
        size_t capacity()
        int64_t key_at(size_t i)
        int32_t val_at(size_t i)

# -- RECORDS --

cdef struct Order:
    int64_t order_id
    int64_t account
    int64_t price
    int64_t stop_price
    int64_t qty
    int64_t filled
    int64_t leaves
    int64_t visible
    int64_t display
    int32_t prev          # neighbours in the price level's FIFO, -1 at the ends
    int32_t next
    int32_t level         # slot in the level pool while resting, -1 otherwise
    int32_t symbol
    int8_t side
    int8_t ord_type
    int8_t tif
    int8_t where          # W_FREE, W_RESTING, W_STOP, W_TAKING
    void* book            # borrowed SymbolBook; the engine's `books` dict keeps it alive

cdef struct Level:
    int64_t price
    int64_t visible       # sum of the visible qty of its orders
    int32_t head
    int32_t tail
    int32_t count

# Same layout as native.types.EVENT_DTYPE (56 bytes; the import checks field offsets).
cdef struct Event:
    int64_t order_id
    int64_t other_id
    int64_t price
    int64_t qty
    int64_t leaves
    int64_t exec_id
    int32_t symbol
    int8_t kind
    int8_t side
    int8_t reason
    int8_t aggressor

# Same layout as native.types.CMD_DTYPE (numpy align=True).
cdef struct Cmd:
    int8_t op
    int64_t order_id
    int64_t account
    int32_t symbol
    int8_t side
    int8_t ord_type
    int8_t tif
    int64_t qty
    int64_t price
    int64_t stop_price
    int64_t display_qty


cdef class SymbolBook:
    cdef int32_t symbol
    cdef int64_t tick
    cdef int64_t lot
    cdef int64_t last
    cdef cmap[int64_t, int32_t] bids      # key -price, so begin() is the best bid
    cdef cmap[int64_t, int32_t] asks      # key price
    cdef vector[int32_t] stops            # waiting stop orders, in arrival order


@cython.final
cdef class MatchingEngine:
    cdef vector[Order] orders
    cdef vector[int32_t] free_orders
    cdef vector[Level] levels
    cdef vector[int32_t] free_levels
    cdef IdMap ids                        # order id -> slot in `orders`
    cdef vector[Event] out
    cdef int64_t seq
    cdef int stp
    cdef dict books
    cdef int32_t last_symbol             # one-entry cache in front of `books`
    cdef SymbolBook last_book

    # -- COMMANDS --
    cdef void _submit(self, int64_t order_id, int64_t account, int32_t symbol, int side, int ord_type, int tif,
                      int64_t qty, int64_t price, int64_t stop, int64_t disp) noexcept
    cdef void _remove_working(self, int64_t order_id, int kind, int reason, int reject_kind) noexcept
    cdef void _replace(self, int64_t order_id, int64_t qty, int64_t price) noexcept

    # -- MATCHING --
    cdef void _take(self, SymbolBook book, int32_t slot) noexcept
    cdef int64_t _fillable(self, SymbolBook book, int32_t slot) noexcept
    cdef void _fire(self, SymbolBook book, int32_t slot) noexcept
    cdef void _run_stops(self, SymbolBook book) noexcept

    # -- STORAGE --
    cdef SymbolBook _book(self, int32_t symbol)
    cdef int32_t _alloc_order(self) noexcept
    cdef void _free_order(self, int32_t slot) noexcept
    cdef void _rest(self, SymbolBook book, int32_t slot) noexcept
    cdef void _unlink(self, SymbolBook book, int32_t slot) noexcept
    cdef inline void _emit(self, int kind, int32_t symbol, int64_t order_id, int64_t other_id, int side,
                           int64_t price, int64_t qty, int64_t leaves, int reason, int aggressor) noexcept
    cdef list _drain(self)
