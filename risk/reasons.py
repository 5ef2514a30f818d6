"""One human text per RejectReason: what FIX Text (58) and HTTP error bodies say next to the code.

`TEXT` covers every member of `RejectReason` (a unit test enforces it), so adding a member without its text fails
the suite rather than reaching a client as a bare number.
"""

from __future__ import annotations

from types import MappingProxyType

from oms.core.model.enums import RejectReason as R

__all__ = ["TEXT", "describe"]

TEXT: MappingProxyType[R, str] = MappingProxyType(
    {
        R.NONE: "accepted",
        R.UNKNOWN_SYMBOL: "unknown symbol",
        R.INVALID_QTY: "invalid quantity",
        R.INVALID_PRICE: "invalid price",
        R.INVALID_STOP_PRICE: "invalid stop price",
        R.INVALID_DISPLAY_QTY: "invalid display quantity",
        R.FOK_UNFILLABLE: "fill-or-kill order cannot be filled in full",
        R.UNKNOWN_ORDER: "unknown order",
        R.DUPLICATE_ORDER_ID: "duplicate order id",
        R.QTY_BELOW_FILLED: "quantity below the filled quantity",
        R.INVALID_SIDE: "invalid side",
        R.INVALID_ORD_TYPE: "invalid order type",
        R.INVALID_TIF: "invalid time in force",
        R.INVALID_ORDER_ID: "invalid order id",
        R.DUPLICATE_CL_ORD_ID: "duplicate ClOrdID",
        R.OFF_TICK: "price not on the tick grid",
        R.OFF_LOT: "quantity not on the lot grid",
        R.TOO_LATE_TO_CANCEL: "too late to cancel",
        R.INVALID_NUMBER: "not a plain decimal number",
        R.EXCESS_PRECISION: "too many decimal places",
        R.ORDER_PENDING: "a cancel or replace is already pending",
        R.VENUE_UNAVAILABLE: "venue not connected",
        R.VENUE_REJECTED: "rejected by the venue",
        R.SYSTEM_BUSY: "system busy: order not accepted, send it again later",
        R.INTERNAL_ERROR: "internal error: not accepted, nothing is held for it",
        R.SHUTTING_DOWN: "the OMS is shutting down: no new orders",
        R.NOT_READY: "the OMS is starting: no orders until it has reconciled its last run",
        R.JOURNAL_UNAVAILABLE: "journal unavailable: not accepted, nothing is held for it; send it again later",
        R.MAX_ORDER_QTY: "order quantity above the account's maximum",
        R.MAX_ORDER_NOTIONAL: "order notional above the account's maximum",
        R.PRICE_COLLAR: "limit price outside the collar around the reference price",
        R.NO_REFERENCE_PRICE: "no reference price to check the order against",
        R.CREDIT_LIMIT: "insufficient buying power",
        R.POSITION_LIMIT: "order could breach the position limit",
        R.GROSS_LIMIT: "order could breach the gross notional limit",
        R.NET_LIMIT: "order could breach the net notional limit",
        R.ORDER_RATE: "account order rate limit exceeded",
        R.SESSION_RATE: "session message rate limit exceeded",
        R.MAX_OPEN_ORDERS: "too many open orders",
        R.RESTRICTED_SYMBOL: "symbol restricted for this account",
        R.REDUCE_ONLY: "account is reduce-only: order could increase a position",
        R.HALTED: "account trading halted",
        R.KILL_SWITCH: "account kill switch engaged",
        R.UNKNOWN_ACCOUNT: "unknown account",
    }
)


def describe(reason: R) -> str:
    """The human text for `reason`. Every member has one; a KeyError here is a missing table entry (a bug)."""
    return TEXT[reason]
