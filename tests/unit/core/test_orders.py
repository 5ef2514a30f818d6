from collections.abc import Callable
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oms.core.model.enums import OrdStatus, OrdType, Side, TimeInForce
from oms.core.orders import (
    TERMINAL,
    TRANSITIONS,
    IllegalTransition,
    InvalidFill,
    InvalidQty,
    Order,
    Overfill,
    check_transition,
)

S = OrdStatus
QTY = 10
PX = 1_500_000
FILLED_BEFORE = 3  # how much an order driven to a "partially filled" flavour of a status has filled


def _new_order(qty: int = QTY) -> Order:
    return Order(1, "c-1", "ACC1", "AAPL", Side.BUY, OrdType.LIMIT, TimeInForce.DAY, qty, PX)


def _drive(status: OrdStatus, *, filled: int = 0) -> Order:
    """An order brought into `status` through legal calls only, with `filled` executed first when it can be."""
    order = _new_order()
    if status is S.PENDING_NEW:
        return order
    if status is S.REJECTED:
        order.on_rejected()
        return order
    order.on_accepted()
    if filled:
        order.on_fill(filled, PX)
    steps: dict[OrdStatus, Callable[[], None]] = {
        S.NEW: lambda: None,
        S.PARTIALLY_FILLED: lambda: None if filled else order.on_fill(FILLED_BEFORE, PX),
        S.FILLED: lambda: order.on_fill(order.leaves_qty, PX),
        S.PENDING_CANCEL: order.on_pending_cancel,
        S.PENDING_REPLACE: order.on_pending_replace,
        S.REPLACED: lambda: (order.on_pending_replace(), order.on_replaced(QTY, PX + 100, "c-2")),
        S.CANCELED: order.on_canceled,
        S.EXPIRED: order.on_expired,
        S.DONE_FOR_DAY: order.on_done_for_day,
    }
    steps[status]()
    assert order.status is status
    return order


# For each legal pair: how much the order has filled before entering `from`, and the call that makes the move.
_PATHS: dict[tuple[OrdStatus, OrdStatus], tuple[int, Callable[[Order], None]]] = {
    (S.PENDING_NEW, S.NEW): (0, lambda o: o.on_accepted()),
    (S.PENDING_NEW, S.REJECTED): (0, lambda o: o.on_rejected()),
    (S.PENDING_NEW, S.CANCELED): (0, lambda o: o.on_canceled()),
    (S.PENDING_NEW, S.EXPIRED): (0, lambda o: o.on_expired()),
    (S.NEW, S.PARTIALLY_FILLED): (0, lambda o: o.on_fill(4, PX)),
    (S.NEW, S.FILLED): (0, lambda o: o.on_fill(QTY, PX)),
    (S.NEW, S.PENDING_CANCEL): (0, lambda o: o.on_pending_cancel()),
    (S.NEW, S.PENDING_REPLACE): (0, lambda o: o.on_pending_replace()),
    (S.NEW, S.CANCELED): (0, lambda o: o.on_canceled()),
    (S.NEW, S.EXPIRED): (0, lambda o: o.on_expired()),
    (S.NEW, S.DONE_FOR_DAY): (0, lambda o: o.on_done_for_day()),
    (S.PARTIALLY_FILLED, S.PARTIALLY_FILLED): (3, lambda o: o.on_fill(2, PX)),
    (S.PARTIALLY_FILLED, S.FILLED): (3, lambda o: o.on_fill(7, PX)),
    (S.PARTIALLY_FILLED, S.PENDING_CANCEL): (3, lambda o: o.on_pending_cancel()),
    (S.PARTIALLY_FILLED, S.PENDING_REPLACE): (3, lambda o: o.on_pending_replace()),
    (S.PARTIALLY_FILLED, S.CANCELED): (3, lambda o: o.on_canceled()),
    (S.PARTIALLY_FILLED, S.EXPIRED): (3, lambda o: o.on_expired()),
    (S.PARTIALLY_FILLED, S.DONE_FOR_DAY): (3, lambda o: o.on_done_for_day()),
    (S.PENDING_CANCEL, S.PENDING_CANCEL): (0, lambda o: o.on_fill(2, PX)),
    (S.PENDING_CANCEL, S.FILLED): (3, lambda o: o.on_fill(7, PX)),
    (S.PENDING_CANCEL, S.CANCELED): (3, lambda o: o.on_canceled()),
    (S.PENDING_CANCEL, S.NEW): (0, lambda o: o.on_cancel_rejected()),
    (S.PENDING_CANCEL, S.PARTIALLY_FILLED): (3, lambda o: o.on_cancel_rejected()),
    (S.PENDING_CANCEL, S.EXPIRED): (0, lambda o: o.on_expired()),
    (S.PENDING_CANCEL, S.DONE_FOR_DAY): (3, lambda o: o.on_done_for_day()),
    (S.PENDING_REPLACE, S.PENDING_REPLACE): (3, lambda o: o.on_fill(2, PX)),
    (S.PENDING_REPLACE, S.FILLED): (3, lambda o: o.on_replaced(3, PX, "c-2")),
    (S.PENDING_REPLACE, S.REPLACED): (3, lambda o: o.on_replaced(12, PX + 100, "c-2")),
    (S.PENDING_REPLACE, S.NEW): (0, lambda o: o.on_cancel_rejected()),
    (S.PENDING_REPLACE, S.PARTIALLY_FILLED): (3, lambda o: o.on_cancel_rejected()),
    (S.PENDING_REPLACE, S.CANCELED): (0, lambda o: o.on_canceled()),
    (S.PENDING_REPLACE, S.EXPIRED): (3, lambda o: o.on_expired()),
    (S.PENDING_REPLACE, S.DONE_FOR_DAY): (0, lambda o: o.on_done_for_day()),
    (S.REPLACED, S.PARTIALLY_FILLED): (0, lambda o: o.on_fill(2, PX)),
    (S.REPLACED, S.FILLED): (3, lambda o: o.on_fill(7, PX)),
    (S.REPLACED, S.PENDING_CANCEL): (3, lambda o: o.on_pending_cancel()),
    (S.REPLACED, S.PENDING_REPLACE): (0, lambda o: o.on_pending_replace()),
    (S.REPLACED, S.CANCELED): (3, lambda o: o.on_canceled()),
    (S.REPLACED, S.EXPIRED): (0, lambda o: o.on_expired()),
    (S.REPLACED, S.DONE_FOR_DAY): (3, lambda o: o.on_done_for_day()),
}

_ILLEGAL = sorted(
    ((a, b) for a in OrdStatus for b in OrdStatus if (a, b) not in TRANSITIONS), key=lambda p: (p[0].value, p[1].value)
)
# Every status an order can reach, with and without an earlier fill where that differs.
_STARTS = [
    (status, filled)
    for status in OrdStatus
    for filled in ((0,) if status in (S.PENDING_NEW, S.REJECTED, S.NEW, S.PARTIALLY_FILLED) else (0, FILLED_BEFORE))
]

# Every event an order can be told about, with arguments that are valid whenever the event itself is.
_CALLS: dict[str, Callable[[Order], None]] = {
    "accepted": lambda o: o.on_accepted(),
    "rejected": lambda o: o.on_rejected(),
    "partial_fill": lambda o: o.on_fill(1, PX),
    "completing_fill": lambda o: o.on_fill(max(o.leaves_qty, 1), PX),
    "pending_cancel": lambda o: o.on_pending_cancel(),
    "canceled": lambda o: o.on_canceled(),
    "cancel_rejected": lambda o: o.on_cancel_rejected(),
    "pending_replace": lambda o: o.on_pending_replace(),
    "replaced_up": lambda o: o.on_replaced(o.qty + 5, PX, "c-9"),
    "replaced_to_cum": lambda o: o.on_replaced(max(o.cum_qty, 1), PX, "c-9"),
    "expired": lambda o: o.on_expired(),
    "done_for_day": lambda o: o.on_done_for_day(),
}


def _pair_id(pair: tuple[OrdStatus, OrdStatus]) -> str:
    return f"{pair[0].name}->{pair[1].name}"


def _snapshot(order: Order) -> tuple:
    return tuple(getattr(order, name) for name in Order.__slots__)


def _assert_invariants(order: Order) -> None:
    if order.is_terminal:
        assert order.leaves_qty == 0
    if order.status is not S.FILLED and not order.is_terminal:
        assert order.cum_qty + order.leaves_qty == order.qty
    if order.status is S.FILLED:
        assert order.cum_qty == order.qty
    assert order.leaves_qty >= 0


def test_every_legal_transition_has_a_path_and_nothing_else_does() -> None:
    assert set(_PATHS) == TRANSITIONS


def test_replace_lands_in_replaced_and_the_next_fill_makes_it_partially_filled() -> None:
    order = _drive(S.PENDING_REPLACE, filled=FILLED_BEFORE)

    order.on_replaced(12, PX + 100, "c-2")
    assert (order.status, order.cl_ord_id, order.qty, order.leaves_qty) == (S.REPLACED, "c-2", 12, 9)
    order.on_fill(4, PX + 100)

    assert (order.status, order.cum_qty, order.leaves_qty) == (S.PARTIALLY_FILLED, 7, 5)


def test_terminal_statuses_have_no_way_out() -> None:
    assert all(frm not in TERMINAL for frm, _ in TRANSITIONS)


@pytest.mark.parametrize("pair", sorted(TRANSITIONS, key=lambda p: (p[0].value, p[1].value)), ids=_pair_id)
def test_legal_transition_succeeds(pair: tuple[OrdStatus, OrdStatus]) -> None:
    frm, to = pair
    filled, move = _PATHS[pair]
    order = _drive(frm, filled=filled)
    cum_before = order.cum_qty

    move(order)

    assert order.status is to
    assert order.cum_qty >= cum_before
    _assert_invariants(order)


@pytest.mark.parametrize("pair", _ILLEGAL, ids=_pair_id)
def test_illegal_transition_raises_naming_both_statuses(pair: tuple[OrdStatus, OrdStatus]) -> None:
    frm, to = pair

    with pytest.raises(IllegalTransition) as err:
        check_transition(frm, to)

    assert (err.value.from_status, err.value.to_status) == (frm, to)
    assert frm.name in str(err.value) and to.name in str(err.value)


@pytest.mark.parametrize("call", list(_CALLS))
@pytest.mark.parametrize(("status", "filled"), _STARTS, ids=lambda v: v.name if isinstance(v, OrdStatus) else str(v))
def test_no_event_moves_an_order_outside_the_table(status: OrdStatus, filled: int, call: str) -> None:
    order = _drive(status, filled=filled)
    before = _snapshot(order)

    try:
        _CALLS[call](order)
    except IllegalTransition as err:
        assert err.from_status is status
        assert _snapshot(order) == before
    else:
        assert (status, order.status) in TRANSITIONS
        _assert_invariants(order)


@pytest.mark.parametrize(
    ("status", "call"),
    [
        (S.PENDING_CANCEL, "accepted"),
        (S.PENDING_REPLACE, "accepted"),
        (S.NEW, "accepted"),
        (S.PARTIALLY_FILLED, "cancel_rejected"),
        (S.NEW, "cancel_rejected"),
        (S.PENDING_CANCEL, "replaced_up"),
        (S.PARTIALLY_FILLED, "replaced_up"),
        (S.PENDING_NEW, "partial_fill"),
        (S.PENDING_NEW, "pending_cancel"),
        (S.PENDING_NEW, "done_for_day"),
        (S.PENDING_CANCEL, "pending_replace"),
        (S.PENDING_REPLACE, "pending_cancel"),
        (S.FILLED, "partial_fill"),
        (S.CANCELED, "canceled"),
        (S.NEW, "rejected"),
    ],
)
def test_event_out_of_place_is_an_illegal_transition(status: OrdStatus, call: str) -> None:
    order = _drive(status, filled=FILLED_BEFORE if status is S.PARTIALLY_FILLED else 0)

    with pytest.raises(IllegalTransition):
        _CALLS[call](order)


def test_partial_fill_while_cancel_pending_keeps_pending_cancel() -> None:
    order = _drive(S.PENDING_CANCEL)

    order.on_fill(4, PX)

    assert (order.status, order.cum_qty, order.leaves_qty) == (S.PENDING_CANCEL, 4, 6)


def test_rejected_replace_returns_to_partially_filled_with_terms_unchanged() -> None:
    order = _drive(S.PENDING_REPLACE, filled=3)

    order.on_cancel_rejected()

    assert (order.status, order.qty, order.price, order.cl_ord_id) == (S.PARTIALLY_FILLED, QTY, PX, "c-1")


def test_replace_sets_new_terms_and_leaves_from_new_total() -> None:
    order = _drive(S.PENDING_REPLACE, filled=3)

    order.on_replaced(8, PX - 100, "c-2")

    assert (order.qty, order.price, order.cl_ord_id) == (8, PX - 100, "c-2")
    assert (order.status, order.cum_qty, order.leaves_qty) == (S.REPLACED, 3, 5)


@pytest.mark.parametrize("new_qty", [2, 0, -1])
def test_replace_below_filled_or_non_positive_raises_invalid_qty(new_qty: int) -> None:
    order = _drive(S.PENDING_REPLACE, filled=3)
    before = _snapshot(order)

    with pytest.raises(InvalidQty, match="replace qty"):
        order.on_replaced(new_qty, PX, "c-2")

    assert _snapshot(order) == before


def test_overfill_raises_and_changes_nothing() -> None:
    order = _drive(S.PARTIALLY_FILLED)
    before = _snapshot(order)

    with pytest.raises(Overfill, match="exceeds leaves qty 7"):
        order.on_fill(8, PX)

    assert _snapshot(order) == before


@pytest.mark.parametrize("qty", [0, -3])
def test_non_positive_fill_raises_invalid_fill(qty: int) -> None:
    order = _drive(S.NEW)

    with pytest.raises(InvalidFill):
        order.on_fill(qty, PX)

    assert order.cum_qty == 0


def test_order_with_non_positive_qty_is_refused() -> None:
    with pytest.raises(InvalidQty):
        _new_order(qty=0)


def test_avg_px_is_exact_where_float_is_not() -> None:
    order = _drive(S.NEW)

    for price in (1, 2, 2):
        order.on_fill(1, price)

    assert order.avg_px == Fraction(5, 3)
    assert (order.cum_qty, order.leaves_qty, order.cum_notional) == (3, 7, 5)
    assert order.avg_px_units() == 2
    assert order.avg_px_units(extra_digits=4) == 16667


def test_avg_px_units_rounds_half_to_even() -> None:
    order = _drive(S.NEW)
    order.on_fill(1, 1)
    order.on_fill(1, 2)  # avg 1.5
    other = _drive(S.NEW)
    other.on_fill(1, 2)
    other.on_fill(1, 3)  # avg 2.5

    assert (order.avg_px_units(), other.avg_px_units()) == (2, 2)


def test_avg_px_is_zero_before_any_fill() -> None:
    assert _new_order().avg_px == 0


@given(
    qty=st.integers(min_value=1, max_value=10**9),
    fills=st.lists(
        st.tuples(st.integers(min_value=1, max_value=10**9), st.integers(min_value=1, max_value=10**12)),
        min_size=1,
        max_size=30,
    ),
    cancel_after=st.integers(min_value=0, max_value=30),
)
def test_random_fills_keep_quantities_and_avg_px_exact(
    qty: int, fills: list[tuple[int, int]], cancel_after: int
) -> None:
    order = _new_order(qty)
    order.on_accepted()
    applied: list[tuple[int, int]] = []

    for n, (want, price) in enumerate(fills):
        if order.status is S.FILLED:
            break
        if n == cancel_after:
            order.on_pending_cancel()
        fill_qty = min(want, order.leaves_qty)
        order.on_fill(fill_qty, price)
        applied.append((fill_qty, price))

        assert order.cum_qty + order.leaves_qty == qty
        assert order.avg_px == Fraction(sum(q * p for q, p in applied), sum(q for q, _ in applied))

    pending = cancel_after < len(applied)
    if order.leaves_qty == 0:
        assert order.status is S.FILLED
    else:
        assert order.status is (S.PENDING_CANCEL if pending else S.PARTIALLY_FILLED)
