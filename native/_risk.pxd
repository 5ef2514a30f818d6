# cython: language_level=3
"""Header of the native pre-trade check: the numbers of one account that a new order is judged against."""

from libc.stdint cimport int64_t


# -- RECORDS --

cdef struct Row:
    bint known            # the account has limits for the symbol (and the registry has it)
    bint restricted
    bint bad              # a number of this row does not fit int64: orders on it go to the reference
    int64_t factor        # money units per (qty unit * price unit); -1: not valuable exactly
    int64_t max_order_qty
    int64_t max_position
    int64_t collar_bp
    int64_t pos           # signed position, quantity units
    int64_t cost          # signed money basis of the position
    bint has_ref
    int64_t ref           # reference price: last trade, else mid
    int64_t work_buy      # leaves of the working buys
    int64_t work_sell     # leaves of the working sells
    int64_t mv            # market value: pos * ref (cost without a reference, 0 when flat)


# -- THE KERNEL --

cdef class RiskKernel:
    cdef Row* rows
    cdef Py_ssize_t n
    cdef dict index            # symbol -> row
    cdef object seen           # the account's ClOrdID set, shared, never copied
    # limits
    cdef bint limits_bad
    cdef int64_t max_order_notional
    cdef int64_t credit_limit
    cdef int64_t max_gross
    cdef int64_t max_net
    cdef int64_t max_open_orders
    cdef int64_t window_ns
    # account
    cdef bint account_bad
    cdef bint kill
    cdef int state             # 0 active, 1 reducing, 2 halted
    cdef int64_t cash
    cdef int64_t exposure
    cdef int64_t open_orders
    cdef bint rate_full
    cdef int64_t rate_oldest
    # over every row
    cdef bint sums_bad
    cdef int64_t gross         # sum of |mv|
    cdef int64_t net           # sum of mv
    cdef int64_t shorts        # sum of -mv over short positions

    cdef void _sum(self) noexcept
    cdef int _check(self, Row* r, bint buy, bint limit, int64_t qty, bint has_price, int64_t price, int64_t now) noexcept
