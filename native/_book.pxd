# cython: language_level=3
"""Header of the native matching engine: record layouts and the engine's state."""

from libc.stdint cimport int8_t, int32_t, int64_t
from libcpp.map cimport map as cmap
from libcpp.unordered_map cimport unordered_map
from libcpp.vector cimport vector

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

cdef struct Level:
    int64_t price
    int64_t visible       # sum of the visible qty of its orders
    int32_t head
    int32_t tail
    int32_t count

# Same layout as native.types.EVENT_DTYPE (numpy align=True).
cdef struct Event:
    int8_t kind
    int32_t symbol
    int64_t order_id
    int64_t other_id
    int8_t side
    int64_t price
    int64_t qty
    int64_t leaves
    int64_t exec_id
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


cdef class MatchingEngine:
    cdef vector[Order] orders
    cdef vector[int32_t] free_orders
    cdef vector[Level] levels
    cdef vector[int32_t] free_levels
    cdef unordered_map[int64_t, int32_t] ids
    cdef vector[Event] out
    cdef int64_t seq
    cdef int stp
    cdef dict books

    # -- COMMANDS --
    cdef void _submit(self, int64_t order_id, int64_t account, int32_t symbol, int side, int ord_type, int tif,
                      int64_t qty, int64_t price, int64_t stop, int64_t disp)
    cdef void _remove_working(self, int64_t order_id, int kind, int reason, int reject_kind)
    cdef void _replace(self, int64_t order_id, int64_t qty, int64_t price)

    # -- MATCHING --
    cdef void _take(self, SymbolBook book, int32_t slot)
    cdef int64_t _fillable(self, SymbolBook book, int32_t slot)
    cdef void _fire(self, SymbolBook book, int32_t slot)
    cdef void _run_stops(self, SymbolBook book)

    # -- STORAGE --
    cdef int32_t _alloc_order(self) noexcept
    cdef void _free_order(self, int32_t slot) noexcept
    cdef void _rest(self, SymbolBook book, int32_t slot)
    cdef void _unlink(self, SymbolBook book, int32_t slot)
    cdef void _emit(self, int kind, int32_t symbol, int64_t order_id, int64_t other_id, int side, int64_t price,
                    int64_t qty, int64_t leaves, int reason, int aggressor) noexcept
    cdef list _drain(self)
