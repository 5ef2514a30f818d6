# cython: language_level=3, cdivision=True
"""Native pre-trade check of a new order: `AccountState.decide`'s rules over the account's numbers held in C.

It makes the checks of `risk.rules.RULES` that the list marks native, in the list's order, and says so in
`CHECK_ORDER`.

`oms.core.accounts.AccountState` stays the definition. It pushes every number a decision reads into a `RiskKernel` as
its events apply (`set_limits`, `set_account`, `set_symbol`; the ClOrdID set is shared, not copied), and asks
`check(cmd, now_ns)` for the reason code of a new order. The kernel answers with exactly the reason the pure-Python
rules give (tests/property/test_risk_kernel.py compares them over random histories), or with -1 when it cannot
answer exactly: a number that does not fit 64 bits or an intermediate product that would overflow. The caller
then runs the reference rules, so a decision is never approximated.
"""

from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cpython.set cimport PySet_Contains
from libc.stdint cimport INT64_MIN, int64_t
from libc.string cimport memset

from oms.core.model.enums import OrdType, RejectReason, Side

cdef extern from *:
    """
    static inline int oms_mul(int64_t a, int64_t b, int64_t *r) { return __builtin_mul_overflow(a, b, r); }
    static inline int oms_add(int64_t a, int64_t b, int64_t *r) { return __builtin_add_overflow(a, b, r); }
    static inline int oms_sub(int64_t a, int64_t b, int64_t *r) { return __builtin_sub_overflow(a, b, r); }
    """
    bint oms_mul(int64_t a, int64_t b, int64_t* r) nogil
    bint oms_add(int64_t a, int64_t b, int64_t* r) nogil
    bint oms_sub(int64_t a, int64_t b, int64_t* r) nogil

cdef enum:
    BP = 10_000
    K_UNDECIDED = -1
    K_ACTIVE = 0
    K_REDUCING = 1
    K_HALTED = 2

# Reason codes, read from the enum so they cannot drift from it.
cdef int R_NONE = RejectReason.NONE
cdef int R_UNKNOWN_SYMBOL = RejectReason.UNKNOWN_SYMBOL
cdef int R_INVALID_QTY = RejectReason.INVALID_QTY
cdef int R_DUPLICATE_CL_ORD_ID = RejectReason.DUPLICATE_CL_ORD_ID
cdef int R_MAX_ORDER_QTY = RejectReason.MAX_ORDER_QTY
cdef int R_MAX_ORDER_NOTIONAL = RejectReason.MAX_ORDER_NOTIONAL
cdef int R_PRICE_COLLAR = RejectReason.PRICE_COLLAR
cdef int R_NO_REFERENCE_PRICE = RejectReason.NO_REFERENCE_PRICE
cdef int R_CREDIT_LIMIT = RejectReason.CREDIT_LIMIT
cdef int R_POSITION_LIMIT = RejectReason.POSITION_LIMIT
cdef int R_GROSS_LIMIT = RejectReason.GROSS_LIMIT
cdef int R_NET_LIMIT = RejectReason.NET_LIMIT
cdef int R_ORDER_RATE = RejectReason.ORDER_RATE
cdef int R_MAX_OPEN_ORDERS = RejectReason.MAX_OPEN_ORDERS
cdef int R_RESTRICTED_SYMBOL = RejectReason.RESTRICTED_SYMBOL
cdef int R_REDUCE_ONLY = RejectReason.REDUCE_ONLY
cdef int R_HALTED = RejectReason.HALTED
cdef int R_KILL_SWITCH = RejectReason.KILL_SWITCH
cdef int64_t BUY = Side.BUY
cdef int64_t LIMIT = OrdType.LIMIT
cdef int64_t STOP_LIMIT = OrdType.STOP_LIMIT

#: The reasons `check` gives, in the order it tests them: `risk.rules.KERNEL_ORDER` (the list every copy of the
#: rules follows) must equal it. Keep it next to the code: a check moved or added below moves or adds its reason here.
CHECK_ORDER = (
    R_KILL_SWITCH, R_HALTED, R_UNKNOWN_SYMBOL, R_RESTRICTED_SYMBOL, R_DUPLICATE_CL_ORD_ID, R_INVALID_QTY,
    R_MAX_ORDER_QTY, R_NO_REFERENCE_PRICE, R_MAX_ORDER_NOTIONAL, R_PRICE_COLLAR, R_ORDER_RATE, R_MAX_OPEN_ORDERS,
    R_REDUCE_ONLY, R_POSITION_LIMIT, R_GROSS_LIMIT, R_NET_LIMIT, R_CREDIT_LIMIT,
)
#: What `check` returns when only the reference rules can answer.
UNDECIDED = K_UNDECIDED
#: `set_account` trading states.
ACTIVE, REDUCING, HALTED = K_ACTIVE, K_REDUCING, K_HALTED


cdef inline bint _abs(int64_t a, int64_t* r) noexcept nogil:
    """|a| into r; True when it overflows."""
    if a == INT64_MIN:
        return True
    r[0] = -a if a < 0 else a
    return False


cdef inline int64_t _max(int64_t a, int64_t b) noexcept nogil:
    return a if a > b else b


cdef inline bint _fits(object v, int64_t* out) except -1:
    """v as int64 into out; False when it does not fit (or is not an int)."""
    try:
        out[0] = v
    except (OverflowError, TypeError):
        return False
    return True


cdef class RiskKernel:
    """The numbers of one account that a new order is judged against; see the module docstring."""

    def __cinit__(self, symbols, factors):
        """`symbols`: every instrument of the registry; `factors`: each one's money factor (-1 when it has none)."""
        symbols, factors = list(symbols), list(factors)
        if len(symbols) != len(factors):
            raise ValueError("one money factor per symbol")
        self.n = len(symbols)
        self.rows = <Row*>PyMem_Malloc(max(self.n, 1) * sizeof(Row))
        if self.rows == NULL:
            raise MemoryError()
        memset(self.rows, 0, max(self.n, 1) * sizeof(Row))
        self.index = {}
        for i, (symbol, factor) in enumerate(zip(symbols, factors)):
            self.index[symbol] = i
            if not _fits(factor, &self.rows[i].factor) or self.rows[i].factor < 0:
                self.rows[i].factor = -1
        self.seen = set()
        self.limits_bad = self.account_bad = True  # nothing is decided here before the first pushes

    def __dealloc__(self):
        PyMem_Free(self.rows)

    # -- PUSHES (the account calls these as its events apply) --

    def set_seen(self, seen: set) -> None:
        """The account's set of ClOrdIDs refused as duplicates; it is read in place, so later changes show."""
        self.seen = seen

    def set_limits(
        self,
        max_order_notional, credit_limit, max_gross, max_net, max_open_orders, window_ns,
        symbols: dict, restricted,
    ) -> None:
        """Account limits; `symbols` maps a symbol to (max_order_qty, max_position, collar_bp); symbols not in it
        are unknown to the account; `restricted` holds the restricted symbols."""
        cdef Row* r
        cdef int64_t q, p, c
        ok = (
            _fits(max_order_notional, &self.max_order_notional) and _fits(credit_limit, &self.credit_limit)
            and _fits(max_gross, &self.max_gross) and _fits(max_net, &self.max_net)
            and _fits(max_open_orders, &self.max_open_orders) and _fits(window_ns, &self.window_ns)
        )
        for symbol, i in self.index.items():
            r = &self.rows[<Py_ssize_t>i]
            spec = symbols.get(symbol)
            r.known = spec is not None
            r.restricted = symbol in restricted
            if spec is not None:
                if not (_fits(spec[0], &q) and _fits(spec[1], &p) and _fits(spec[2], &c)):
                    ok = False
                r.max_order_qty, r.max_position, r.collar_bp = q, p, c
        self.limits_bad = not ok

    def set_account(self, bint kill, int state, cash, exposure, open_orders, rate_oldest) -> None:
        """Kill switch, trading state (ACTIVE, REDUCING, HALTED), cash, held exposure, working orders, and the
        oldest time in the order-rate window when it is full (None while it is not)."""
        self.kill = kill
        self.state = state
        ok = _fits(cash, &self.cash) and _fits(exposure, &self.exposure) and _fits(open_orders, &self.open_orders)
        self.rate_full = rate_oldest is not None
        if self.rate_full and not _fits(rate_oldest, &self.rate_oldest):
            ok = False
        self.account_bad = not ok

    def set_symbol(self, symbol, pos, cost, ref, work_buy, work_sell) -> None:
        """A symbol's position (signed qty, money basis), reference price (None: none) and working leaves by side.
        Symbols outside the registry are ignored: orders on them are unknown anyway."""
        i = self.index.get(symbol)
        if i is None:
            return
        cdef Row* r = &self.rows[<Py_ssize_t>i]
        r.has_ref = ref is not None
        ok = (
            _fits(pos, &r.pos) and _fits(cost, &r.cost) and _fits(work_buy, &r.work_buy)
            and _fits(work_sell, &r.work_sell) and (not r.has_ref or _fits(ref, &r.ref))
        )
        if r.pos == 0:
            r.mv = 0
        elif not r.has_ref:
            r.mv = r.cost
        elif r.factor < 0 or oms_mul(r.pos, r.ref, &r.mv) or oms_mul(r.mv, r.factor, &r.mv):
            ok = False
        r.bad = not ok
        self._sum()

    cdef void _sum(self) noexcept:
        cdef Py_ssize_t i
        cdef int64_t gross = 0, net = 0, shorts = 0, a
        cdef Row* r
        cdef bint bad = False
        for i in range(self.n):
            r = &self.rows[i]
            if r.bad:
                bad = True
            elif r.pos != 0:
                bad = bad or _abs(r.mv, &a) or oms_add(gross, a, &gross) or oms_add(net, r.mv, &net)
                if r.pos < 0:
                    bad = bad or oms_sub(shorts, r.mv, &shorts)
        self.gross, self.net, self.shorts, self.sums_bad = gross, net, shorts, bad

    # -- THE CHECK --

    def check(self, cmd, int64_t now_ns) -> int:
        """The reason code `AccountState.decide` gives a new order `cmd` of this account at `now_ns` (0: accept),
        or UNDECIDED (-1) when only the reference rules can answer exactly."""
        cdef int64_t qty, price = 0, side, ord_type
        if self.limits_bad or self.account_bad:
            return K_UNDECIDED
        if self.kill:
            return R_KILL_SWITCH
        if self.state == K_HALTED:
            return R_HALTED
        i = self.index.get(cmd.symbol)
        if i is None:
            return R_UNKNOWN_SYMBOL
        cdef Row* r = &self.rows[<Py_ssize_t>i]
        if not r.known:
            return R_UNKNOWN_SYMBOL
        if r.restricted:
            return R_RESTRICTED_SYMBOL
        if PySet_Contains(self.seen, cmd.cl_ord_id):
            return R_DUPLICATE_CL_ORD_ID
        if not _fits(cmd.qty, &qty) or not _fits(cmd.side, &side) or not _fits(cmd.ord_type, &ord_type):
            return K_UNDECIDED
        if qty <= 0:
            return R_INVALID_QTY
        if qty > r.max_order_qty:
            return R_MAX_ORDER_QTY
        has_price = (ord_type == LIMIT or ord_type == STOP_LIMIT) and cmd.price is not None
        if has_price and not _fits(cmd.price, &price):
            return K_UNDECIDED
        if r.bad or r.factor < 0 or self.sums_bad:
            return K_UNDECIDED
        return self._check(r, side == BUY, ord_type == LIMIT, qty, has_price, price, now_ns)

    cdef int _check(self, Row* r, bint buy, bint limit, int64_t qty, bint has_price, int64_t price, int64_t now) noexcept:
        cdef int64_t value_px, t, u, notional, same, room, projected, before, after, gross_after, net_after
        cdef int64_t hold, long_, closing, bp, ap, an
        # pricing: an order without a limit price is valued at the top of the collar band, rounded up
        if has_price:
            value_px = price
        elif not r.has_ref:
            return R_NO_REFERENCE_PRICE
        else:
            if oms_mul(r.ref, BP + r.collar_bp, &t):
                return K_UNDECIDED
            value_px = t // BP  # C division truncates: the ceiling already below zero, one short above it
            if t > 0 and value_px * BP != t:
                value_px += 1
        if oms_mul(qty, value_px, &t) or oms_mul(t, r.factor, &notional) or _abs(notional, &t):
            return K_UNDECIDED
        if t > self.max_order_notional:
            return R_MAX_ORDER_NOTIONAL
        if limit and has_price and r.has_ref:
            if oms_sub(price, r.ref, &t) or _abs(t, &t) or oms_mul(t, BP, &t) or oms_mul(r.ref, r.collar_bp, &u):
                return K_UNDECIDED
            if t > u:
                return R_PRICE_COLLAR
        if self.rate_full:
            if oms_sub(now, self.window_ns, &t):
                return K_UNDECIDED
            if self.rate_oldest > t:
                return R_ORDER_RATE
        if self.open_orders >= self.max_open_orders:
            return R_MAX_OPEN_ORDERS
        same = r.work_buy if buy else r.work_sell
        if self.state == K_REDUCING:
            room = r.pos if not buy else -r.pos
            if r.pos == INT64_MIN or oms_sub(room, same, &t):
                return K_UNDECIDED
            if qty > t:
                return R_REDUCE_ONLY
        if oms_add(same, qty, &t):
            return K_UNDECIDED
        if (oms_add(r.pos, t, &projected) if buy else oms_sub(r.pos, t, &projected)):
            return K_UNDECIDED
        if _abs(projected, &ap) or _abs(r.pos, &t):
            return K_UNDECIDED
        if ap > _max(r.max_position, t):
            return R_POSITION_LIMIT
        before = r.mv
        if oms_mul(projected, value_px, &t) or oms_mul(t, r.factor, &after):
            return K_UNDECIDED
        if _abs(before, &bp) or _abs(after, &ap) or oms_sub(self.gross, bp, &t) or oms_add(t, ap, &gross_after):
            return K_UNDECIDED
        if gross_after > _max(self.max_gross, self.gross):
            return R_GROSS_LIMIT
        if oms_sub(self.net, before, &t) or oms_add(t, after, &net_after) or _abs(net_after, &an) or _abs(self.net, &t):
            return K_UNDECIDED
        if an > _max(self.max_net, t):
            return R_NET_LIMIT
        # the hold: a buy holds its value; a sell what opens or extends a short
        if buy:
            closing = 0
        else:
            long_ = _max(r.pos, 0)
            if oms_sub(long_, r.work_sell, &t):
                return K_UNDECIDED
            closing = min(qty, _max(t, 0))
        if oms_mul(qty - closing, value_px, &t) or oms_mul(t, r.factor, &hold):
            return K_UNDECIDED
        # buying power: cash + credit limit - held exposure - 2 * shorts
        if (
            oms_add(self.cash, self.credit_limit, &t) or oms_sub(t, self.exposure, &t)
            or oms_mul(self.shorts, 2, &u) or oms_sub(t, u, &t)
        ):
            return K_UNDECIDED
        if hold > t:
            return R_CREDIT_LIMIT
        return R_NONE
