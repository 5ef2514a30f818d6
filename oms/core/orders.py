"""The order state machine: legal OrdStatus transitions, cumulative and leaves quantity, exact average price.

Pure and synchronous: no I/O, no clocks. One `Order` per OrderID; the engine calls one `on_*` method per venue or
OMS event, and every status change is checked against `TRANSITIONS`. A refused call raises and changes nothing.

Decisions, after FIX 4.4:
- PENDING_NEW ends in NEW, REJECTED, CANCELED or EXPIRED. It never goes straight to a fill: the OMS reports New
  before the first fill (the native core emits ACCEPTED before FILL; a venue adapter synthesises the ack when an
  external venue fills without one).
- Fills may arrive while a cancel or replace is pending. The status stays PENDING_CANCEL / PENDING_REPLACE (cum and
  leaves still move), unless the fill completes the order, which makes it FILLED.
- A rejected cancel or replace returns the order to its working status: NEW when nothing is filled, else
  PARTIALLY_FILLED.
- Replace keeps the OrderID and moves the order to the new ClOrdID in place. `on_replaced` takes the new total
  quantity (FIX OrderQty): leaves = new qty - cum. The status becomes REPLACED, or FILLED when the new quantity
  equals the filled quantity (FIX: reducing OrderQty to CumQty completes the order). A new quantity below the
  filled quantity raises `InvalidQty`.
- REPLACED is a working status, as FIX 4.2 reports it (OrdStatus=5) until the next fill, cancel or replace; it
  takes the same events as NEW and PARTIALLY_FILLED. FIX 4.4 dropped OrdStatus=Replaced: its codec reports an order
  in REPLACED as New or PartiallyFilled from cum_qty.
- Terminal: FILLED, CANCELED, REJECTED, EXPIRED, DONE_FOR_DAY (done for this trading day; a next-day session
  would start a new Order). Terminal orders have leaves_qty == 0 and accept nothing.

Invariants: cum_qty never decreases; cum_qty + leaves_qty == qty while not terminal and when FILLED; leaves_qty == 0
in every terminal status; cum_notional == sum(fill qty * fill price), so `avg_px` is exact.
"""

from __future__ import annotations

from fractions import Fraction
from typing import NamedTuple

from oms.core.model.enums import OrdStatus, OrdType, Side, TimeInForce

__all__ = [
    "TERMINAL",
    "TRANSITIONS",
    "IllegalTransition",
    "InvalidFill",
    "InvalidQty",
    "Order",
    "OrderError",
    "OrderView",
    "Overfill",
    "check_transition",
]

_PN = OrdStatus.PENDING_NEW
_NEW = OrdStatus.NEW
_PF = OrdStatus.PARTIALLY_FILLED
_FILLED = OrdStatus.FILLED
_PC = OrdStatus.PENDING_CANCEL
_CANCELED = OrdStatus.CANCELED
_PR = OrdStatus.PENDING_REPLACE
_REPLACED = OrdStatus.REPLACED
_REJECTED = OrdStatus.REJECTED
_EXPIRED = OrdStatus.EXPIRED
_DFD = OrdStatus.DONE_FOR_DAY

#: Every legal (from, to) status change. Self-pairs are further fills that leave the status as it was.
TRANSITIONS: frozenset[tuple[OrdStatus, OrdStatus]] = frozenset(
    {
        (_PN, _NEW),
        (_PN, _REJECTED),
        (_PN, _CANCELED),
        (_PN, _EXPIRED),
        *((_NEW, to) for to in (_PF, _FILLED, _PC, _PR, _CANCELED, _EXPIRED, _DFD)),
        *((_PF, to) for to in (_PF, _FILLED, _PC, _PR, _CANCELED, _EXPIRED, _DFD)),
        *((_REPLACED, to) for to in (_PF, _FILLED, _PC, _PR, _CANCELED, _EXPIRED, _DFD)),
        # fill, completing fill, cancel done, cancel rejected (back to working), unsolicited end
        *((_PC, to) for to in (_PC, _FILLED, _CANCELED, _NEW, _PF, _EXPIRED, _DFD)),
        # fill, completing fill or replace to cum, replace done, replace rejected (back to working), unsolicited end
        *((_PR, to) for to in (_PR, _FILLED, _REPLACED, _NEW, _PF, _CANCELED, _EXPIRED, _DFD)),
    }
)

#: Statuses an order never leaves.
TERMINAL: frozenset[OrdStatus] = frozenset({_FILLED, _CANCELED, _REJECTED, _EXPIRED, _DFD})


class OrderError(Exception):
    """An event that the order cannot take: a bug upstream or a venue breaking protocol."""


class IllegalTransition(OrderError):
    def __init__(self, from_status: OrdStatus, to_status: OrdStatus, event: str = "") -> None:
        on = f" on {event}" if event else ""
        super().__init__(f"illegal transition {from_status.name} -> {to_status.name}{on}")
        self.from_status = from_status
        self.to_status = to_status


class InvalidFill(OrderError):
    """A fill with a non-positive quantity."""


class Overfill(OrderError):
    """A fill larger than the order's leaves quantity."""


class InvalidQty(OrderError):
    """An order or replace quantity that is not positive, or below what is already filled."""


def check_transition(from_status: OrdStatus, to_status: OrdStatus, event: str = "") -> None:
    """Return if (from_status, to_status) is in TRANSITIONS; raise IllegalTransition otherwise."""
    if (from_status, to_status) not in TRANSITIONS:
        raise IllegalTransition(from_status, to_status, event)


class OrderView(NamedTuple):
    """An order's status and quantities at one moment; `cum_notional / cum_qty` is the exact average price."""

    status: OrdStatus
    qty: int
    price: int | None
    cum_qty: int
    cum_notional: int
    leaves_qty: int


class Order:
    """Mutable state of one order, changed only through the `on_*` methods. Starts PENDING_NEW."""

    __slots__ = (
        "account",
        "cl_ord_id",
        "cum_notional",
        "cum_qty",
        "leaves_qty",
        "ord_type",
        "order_id",
        "price",
        "qty",
        "side",
        "status",
        "symbol",
        "tif",
    )

    def __init__(
        self,
        order_id: int,
        cl_ord_id: str,
        account: str,
        symbol: str,
        side: Side,
        ord_type: OrdType,
        tif: TimeInForce,
        qty: int,
        price: int | None,
    ) -> None:
        """Raises InvalidQty when qty <= 0."""
        if qty <= 0:
            raise InvalidQty(f"order {order_id}: qty {qty} must be > 0")
        self.order_id = order_id
        self.cl_ord_id = cl_ord_id
        self.account = account
        self.symbol = symbol
        self.side = side
        self.ord_type = ord_type
        self.tif = tif
        self.qty = qty
        self.price = price
        self.status = OrdStatus.PENDING_NEW
        self.cum_qty = 0
        self.leaves_qty = qty
        self.cum_notional = 0  # sum of fill qty * fill price

    def __repr__(self) -> str:
        return (
            f"Order(order_id={self.order_id}, cl_ord_id={self.cl_ord_id!r}, status={self.status.name}, "
            f"qty={self.qty}, price={self.price}, cum_qty={self.cum_qty}, leaves_qty={self.leaves_qty})"
        )

    # -- QUERIES --

    def view(self) -> OrderView:
        """The order's reportable state now (what an ExecutionReport for the latest event carries)."""
        return OrderView(self.status, self.qty, self.price, self.cum_qty, self.cum_notional, self.leaves_qty)

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def avg_px(self) -> Fraction:
        """Exact volume-weighted average fill price in price units; Fraction(0) before the first fill."""
        return Fraction(self.cum_notional, self.cum_qty) if self.cum_qty else Fraction(0)

    def avg_px_units(self, extra_digits: int = 0) -> int:
        """avg_px in units of 10**-extra_digits price units, rounded half to even (FIX AvgPx for display)."""
        return round(self.avg_px * 10**extra_digits)

    def _working_status(self) -> OrdStatus:
        return OrdStatus.PARTIALLY_FILLED if self.cum_qty else OrdStatus.NEW

    def _require(self, expected: tuple[OrdStatus, ...], to_status: OrdStatus, event: str) -> None:
        # Some events share a (from, to) pair with another event (a cancel reject and an ack both land in NEW);
        # the table alone cannot tell them apart, so those events also name the statuses they may arrive in.
        if self.status not in expected:
            raise IllegalTransition(self.status, to_status, event)

    # -- COMMANDS --

    def on_accepted(self) -> None:
        """PENDING_NEW -> NEW."""
        self._require((_PN,), _NEW, "accepted")
        self.status = _NEW

    def on_rejected(self) -> None:
        """PENDING_NEW -> REJECTED; leaves becomes 0."""
        check_transition(self.status, _REJECTED, "rejected")
        self.status = _REJECTED
        self.leaves_qty = 0

    def on_fill(self, qty: int, price: int) -> None:
        """Apply one execution of `qty` at `price` (price units).

        The status becomes FILLED when leaves reaches 0, otherwise PARTIALLY_FILLED, or stays PENDING_CANCEL /
        PENDING_REPLACE. Raises InvalidFill for qty <= 0, IllegalTransition when the status takes no fills, and
        Overfill when qty exceeds leaves_qty.
        """
        if qty <= 0:
            raise InvalidFill(f"order {self.order_id}: fill qty {qty} must be > 0")
        leaves = self.leaves_qty - qty
        if leaves == 0:
            to_status = _FILLED
        elif self.status is _PC or self.status is _PR:
            to_status = self.status
        else:
            to_status = _PF
        check_transition(self.status, to_status, "fill")
        if leaves < 0:
            raise Overfill(f"order {self.order_id}: fill qty {qty} exceeds leaves qty {self.leaves_qty}")
        self.cum_qty += qty
        self.cum_notional += qty * price
        self.leaves_qty = leaves
        self.status = to_status

    def on_pending_cancel(self) -> None:
        """NEW / PARTIALLY_FILLED / REPLACED -> PENDING_CANCEL."""
        check_transition(self.status, _PC, "pending cancel")
        self.status = _PC

    def on_canceled(self) -> None:
        """Any non-terminal status -> CANCELED (requested or unsolicited); leaves becomes 0."""
        check_transition(self.status, _CANCELED, "canceled")
        self.status = _CANCELED
        self.leaves_qty = 0

    def on_cancel_rejected(self) -> None:
        """PENDING_CANCEL / PENDING_REPLACE -> NEW or PARTIALLY_FILLED (whichever the fills say); terms unchanged."""
        to_status = self._working_status()
        self._require((_PC, _PR), to_status, "cancel rejected")
        check_transition(self.status, to_status, "cancel rejected")
        self.status = to_status

    def on_pending_replace(self) -> None:
        """NEW / PARTIALLY_FILLED / REPLACED -> PENDING_REPLACE."""
        check_transition(self.status, _PR, "pending replace")
        self.status = _PR

    def on_replaced(self, new_qty: int, new_price: int | None, new_cl_ord_id: str) -> None:
        """PENDING_REPLACE -> REPLACED, or FILLED when new_qty == cum_qty.

        `new_qty` is the new total quantity (FIX OrderQty); leaves becomes new_qty - cum_qty. Raises InvalidQty when
        new_qty <= 0 or new_qty < cum_qty, IllegalTransition when no replace is pending (checked first).
        """
        self._require((_PR,), _REPLACED, "replaced")
        if new_qty <= 0 or new_qty < self.cum_qty:
            raise InvalidQty(
                f"order {self.order_id}: replace qty {new_qty} must be > 0 and >= filled qty {self.cum_qty}"
            )
        to_status = _FILLED if new_qty == self.cum_qty else _REPLACED
        check_transition(self.status, to_status, "replaced")
        self.qty = new_qty
        self.price = new_price
        self.cl_ord_id = new_cl_ord_id
        self.leaves_qty = new_qty - self.cum_qty
        self.status = to_status

    def on_expired(self) -> None:
        """Any non-terminal status -> EXPIRED (GTD reached, DAY order at the close); leaves becomes 0."""
        check_transition(self.status, _EXPIRED, "expired")
        self.status = _EXPIRED
        self.leaves_qty = 0

    def on_done_for_day(self) -> None:
        """A working or pending cancel/replace status -> DONE_FOR_DAY; leaves becomes 0."""
        check_transition(self.status, _DFD, "done for day")
        self.status = _DFD
        self.leaves_qty = 0
