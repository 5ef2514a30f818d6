"""FIX messages to commands, events to FIX messages: what FIX 4.2 and FIX 4.4 share.

`Codec` reads NewOrderSingle, OrderCancelRequest, OrderCancelReplaceRequest into SubmitOrder / CancelOrder /
ReplaceOrder, or a `Refusal` naming the RejectReason and the field at fault; it writes ExecutionReports,
OrderCancelRejects, order status answers and BusinessMessageRejects as `Draft`s (`fix_gateway.fields`), which each
session's sender turns into QuickFIX messages. The subclasses in `fix42` and `fix44` hold what the two versions do
differently (ExecTransType, ExecType for fills, OrdStatus Replaced, the reject-reason enumerations, drop-copy
marking). Prices and quantities go through the instrument's grid in both directions, so a
number never passes through a float.
"""

from __future__ import annotations

import calendar
import re
import time
from fractions import Fraction
from typing import Any, NamedTuple

from fix_gateway import tags as T
from fix_gateway.fields import Draft
from fix_gateway.settings import SessionSpec
from oms.core.model.enums import OrdStatus, OrdType, RejectReason, Side, TimeInForce
from oms.core.model.instruments import Instrument, InstrumentRegistry, format_price, format_qty, parse_price, parse_qty
from oms.core.model.messages import (
    CancelOrder,
    CancelRejected,
    ChangePending,
    Message,
    OrderAccepted,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderReplaced,
    ReplaceOrder,
    SubmitOrder,
)
from oms.core.model.numbers import InvalidValue, from_units, to_units
from oms.core.orders import Order, OrderView
from risk.reasons import describe

__all__ = [
    "LIMIT_REASONS",
    "ORD_TYPE_CHARS",
    "SIDE_CHARS",
    "TIF_CHARS",
    "Codec",
    "Refusal",
    "field_problem",
    "utc_timestamp",
]

AVG_PX_EXTRA_DIGITS = 6  # AvgPx carries this many digits beyond the instrument's price precision

_SIDES = {"1": Side.BUY, "2": Side.SELL}
SIDE_CHARS = {Side.BUY: "1", Side.SELL: "2"}
_ORD_TYPES = {"1": OrdType.MARKET, "2": OrdType.LIMIT, "3": OrdType.STOP, "4": OrdType.STOP_LIMIT}
ORD_TYPE_CHARS = {v: k for k, v in _ORD_TYPES.items()}
_TIFS = {"0": TimeInForce.DAY, "1": TimeInForce.GTC, "3": TimeInForce.IOC, "4": TimeInForce.FOK, "6": TimeInForce.GTD}
TIF_CHARS = {v: k for k, v in _TIFS.items()}
_ORD_STATUS_CHARS = {
    OrdStatus.NEW: "0",
    OrdStatus.PARTIALLY_FILLED: "1",
    OrdStatus.FILLED: "2",
    OrdStatus.DONE_FOR_DAY: "3",
    OrdStatus.CANCELED: "4",
    OrdStatus.REPLACED: "5",
    OrdStatus.PENDING_CANCEL: "6",
    OrdStatus.REJECTED: "8",
    OrdStatus.PENDING_NEW: "A",
    OrdStatus.EXPIRED: "C",
    OrdStatus.PENDING_REPLACE: "E",
}
#: Risk limits an order exceeded: FIX OrdRejReason 3 (order exceeds limit) in both versions.
LIMIT_REASONS = (
    RejectReason.MAX_ORDER_QTY, RejectReason.MAX_ORDER_NOTIONAL, RejectReason.CREDIT_LIMIT,
    RejectReason.POSITION_LIMIT, RejectReason.GROSS_LIMIT, RejectReason.NET_LIMIT, RejectReason.ORDER_RATE,
    RejectReason.SESSION_RATE, RejectReason.MAX_OPEN_ORDERS,
)  # fmt: skip
_PRICED = (OrdType.LIMIT, OrdType.STOP_LIMIT)
_STOPPED = (OrdType.STOP, OrdType.STOP_LIMIT)


class Refusal(NamedTuple):
    """Why an inbound message cannot become a command: the reason code and the text for Text (58)."""

    reason: RejectReason
    text: str


_SECOND: tuple[int, str] = (-1, "")  # the last whole second formatted, and its text: reports come many a second


def utc_timestamp(ts_ns: int) -> str:
    """FIX UTCTimestamp with milliseconds (`YYYYMMDD-HH:MM:SS.sss`)."""
    global _SECOND
    seconds, ns = divmod(ts_ns, 1_000_000_000)
    second, text = _SECOND
    if second != seconds:
        text = time.strftime("%Y%m%d-%H:%M:%S", time.gmtime(seconds))
        _SECOND = (seconds, text)  # one tuple: a thread reads this pair whole or the one before
    return f"{text}.{ns // 1_000_000:03d}"


def _get(msg: Any, tag: int) -> str | None:
    return msg.getField(tag) if msg.isSetField(tag) else None


# the data dictionaries let an order without OrderQty (38) through (FIX 4.4's OrderQtyData may carry CashOrderQty
# instead, which the OMS does not take): its absence is an invalid quantity
_NO_QTY = Refusal(RejectReason.INVALID_QTY, "invalid quantity: OrderQty (38) is required")


MAX_ID_LENGTH = 64  # ClOrdID, OrigClOrdID, OrdStatusReqID, Account, Symbol: as REST bounds its ids
MAX_TEXT_LENGTH = 256
_ID_CHARS = re.compile("[!-~]+")  # as REST's ids: printable ASCII, no space
_BOUNDED = {T.CL_ORD_ID: ("ClOrdID", MAX_ID_LENGTH), T.ORIG_CL_ORD_ID: ("OrigClOrdID", MAX_ID_LENGTH),
            T.ORD_STATUS_REQ_ID: ("OrdStatusReqID", MAX_ID_LENGTH), T.ACCOUNT: ("Account", MAX_ID_LENGTH),
            T.SYMBOL: ("Symbol", MAX_ID_LENGTH), T.TEXT: ("Text", MAX_TEXT_LENGTH)}  # fmt: skip


def field_problem(msg: Any) -> tuple[int, str] | None:
    """(tag, what is wrong) for the first field of an application message the OMS would echo or keep that is
    longer than its bound, or an id (which the OMS puts on every report, or keeps for the order's life) with a
    character outside printable ASCII or a space; None when every one is within bounds."""
    for tag, (name, limit) in _BOUNDED.items():
        if not msg.isSetField(tag):
            continue
        value = msg.getField(tag)
        if len(value) > limit:
            return tag, f"{name} ({tag}) longer than {limit} characters"
        if tag != T.TEXT and not _ID_CHARS.fullmatch(value):
            return tag, f"{name} ({tag}) must be printable ASCII without spaces"
    return None


class Codec:
    """One session's translator. Subclasses set `begin_string` and override the version hooks."""

    begin_string = ""

    def __init__(self, instruments: InstrumentRegistry, spec: SessionSpec) -> None:
        self._instruments = instruments
        self.spec = spec
        self.session = spec.name

    # -- INBOUND --

    def new_order(self, msg: Any, now_ns: int) -> SubmitOrder | Refusal:
        """A NewOrderSingle as a SubmitOrder, or why it cannot be one."""
        cl_ord_id = msg.getField(T.CL_ORD_ID)
        target = self._account_and_instrument(msg, None)
        if isinstance(target, Refusal):
            return target
        account, inst = target
        side = self._side(msg)
        if isinstance(side, Refusal):
            return side
        ord_type = _ORD_TYPES.get(msg.getField(T.ORD_TYPE))
        if ord_type is None:
            return Refusal(RejectReason.INVALID_ORD_TYPE, f"OrdType {msg.getField(T.ORD_TYPE)!r} not supported")
        tif = _TIFS.get(_get(msg, T.TIME_IN_FORCE) or "0")
        if tif is None:
            return Refusal(RejectReason.INVALID_TIF, f"TimeInForce {msg.getField(T.TIME_IN_FORCE)!r} not supported")
        if not msg.isSetField(T.ORDER_QTY):
            return _NO_QTY
        try:
            qty = parse_qty(inst, msg.getField(T.ORDER_QTY))
            price = self._price(msg, inst, T.PRICE, "Price", ord_type in _PRICED)
            stop = self._price(msg, inst, T.STOP_PX, "StopPx", ord_type in _STOPPED)
            floor = _get(msg, T.MAX_FLOOR)
            display = parse_qty(inst, floor) if floor is not None else None
        except InvalidValue as exc:
            return Refusal(exc.reason, f"{describe(exc.reason)}: {exc}")
        expire = None
        if tif is TimeInForce.GTD:
            text = _get(msg, T.EXPIRE_TIME)
            if text is None:
                return Refusal(RejectReason.INVALID_TIF, "GTD order without ExpireTime (126)")
            expire = _parse_utc(text)
            if expire is None or expire <= now_ns:
                return Refusal(RejectReason.INVALID_TIF, f"ExpireTime {text!r} is not a future UTC timestamp")
        return SubmitOrder(
            account,
            cl_ord_id,
            inst.symbol,
            side,
            ord_type,
            qty,
            price,
            stop,
            tif,
            display,
            expire,
            now_ns,
            self.session,
        )

    def cancel(self, msg: Any, order: Order | None, now_ns: int) -> CancelOrder | Refusal:
        """An OrderCancelRequest as a CancelOrder; `order` is the one OrigClOrdID names, when known."""
        account = self._account(_get(msg, T.ACCOUNT), order)
        if isinstance(account, Refusal):
            return account
        side = self._side(msg)
        if isinstance(side, Refusal):
            return side
        return CancelOrder(
            account, msg.getField(T.CL_ORD_ID), msg.getField(T.ORIG_CL_ORD_ID), msg.getField(T.SYMBOL), side, now_ns,
            self.session,
        )  # fmt: skip

    def replace(self, msg: Any, order: Order | None, now_ns: int) -> ReplaceOrder | Refusal:
        """An OrderCancelReplaceRequest as a ReplaceOrder (new total qty and price; type and side unchanged)."""
        target = self._account_and_instrument(msg, order)
        if isinstance(target, Refusal):
            return target
        account, inst = target
        side = _SIDES.get(msg.getField(T.SIDE))
        ord_type = _ORD_TYPES.get(msg.getField(T.ORD_TYPE))
        if order is not None and side is not order.side:
            return Refusal(RejectReason.INVALID_SIDE, "a replace cannot change the side")
        if order is not None and ord_type is not order.ord_type:
            return Refusal(RejectReason.INVALID_ORD_TYPE, "a replace cannot change the order type")
        if side is None or ord_type is None:
            return Refusal(RejectReason.INVALID_ORD_TYPE, "side or order type not supported")
        if not msg.isSetField(T.ORDER_QTY):
            return _NO_QTY
        try:
            qty = parse_qty(inst, msg.getField(T.ORDER_QTY))
            price = self._price(msg, inst, T.PRICE, "Price", ord_type in _PRICED)
        except InvalidValue as exc:
            return Refusal(exc.reason, f"{describe(exc.reason)}: {exc}")
        return ReplaceOrder(
            account, msg.getField(T.CL_ORD_ID), msg.getField(T.ORIG_CL_ORD_ID), inst.symbol, side, qty, price, now_ns,
            self.session,
        )  # fmt: skip

    def _account_and_instrument(self, msg: Any, order: Order | None) -> tuple[str, Instrument] | Refusal:
        """The order's account (see `_account`) and the instrument Symbol (55) names."""
        account = self._account(_get(msg, T.ACCOUNT), order)
        if isinstance(account, Refusal):
            return account
        symbol = msg.getField(T.SYMBOL)
        inst = self._instruments.by_symbol(symbol)
        if inst is None:
            return Refusal(RejectReason.UNKNOWN_SYMBOL, f"unknown symbol {symbol!r}")
        return account, inst

    @staticmethod
    def _side(msg: Any) -> Side | Refusal:
        side = _SIDES.get(msg.getField(T.SIDE))
        if side is None:
            return Refusal(RejectReason.INVALID_SIDE, f"side {msg.getField(T.SIDE)!r} not supported (1=buy, 2=sell)")
        return side

    def _account(self, tagged: str | None, order: Order | None) -> str | Refusal:
        """Account (1) if given, else the order's, else the session's default; it must be one the session trades."""
        account = tagged if tagged is not None else order.account if order is not None else self.spec.accounts[0]
        if account not in self.spec.accounts:
            return Refusal(RejectReason.UNKNOWN_ACCOUNT, f"account {account!r} is not traded on this session")
        return account

    @staticmethod
    def _price(msg: Any, inst: Instrument, tag: int, name: str, required: bool) -> int | None:
        text = _get(msg, tag)
        if text is None:
            if required:
                raise InvalidValue(RejectReason.INVALID_PRICE, name, None, "required for this order type")
            return None
        if not required:
            raise InvalidValue(RejectReason.INVALID_PRICE, name, text, "not allowed for this order type")
        return parse_price(inst, text)

    # -- OUTBOUND --

    def report(
        self, event: Message, view: OrderView | None, order: Order | None, exec_id: str, side: str = "1"
    ) -> Draft | None:
        """The ExecutionReport or OrderCancelReject that tells the client of `event`; None for events no client
        message describes in this FIX version. `view` is the order right after the event, `order` the order;
        `side` is the Side (54) the client sent, for a reject of an order that never existed."""
        match event:
            case CancelRejected():
                return self.cancel_reject(event, order)
            case OrderAccepted():
                exec_type = "0"
            case OrderFilled():
                exec_type = self.exec_type_fill(event.leaves_qty)
            case OrderCanceled():
                exec_type = "4"
            case OrderReplaced():
                exec_type = "5"
            case OrderExpired():
                exec_type = "C"
            case OrderRejected():
                exec_type = "8"
            case ChangePending():
                exec_type = "6" if event.request == "cancel" else "E"
            case _:  # OrderTriggered: the stop is now live, its fills report it (neither dictionary has ExecType L)
                return None
        msg = self._execution_report(event, view, order, exec_id, exec_type, side)
        match event:
            case OrderFilled():
                inst = self._inst(event.symbol)
                msg.setField(T.LAST_QTY, format_qty(inst, event.qty))
                msg.setField(T.LAST_PX, format_price(inst, event.price))
                self.liquidity(msg, event.aggressor)
            case OrderRejected():
                msg.setField(T.ORD_REJ_REASON, self.ord_rej_reason(event.reason))
                msg.setField(T.TEXT, event.text)
            case OrderCanceled() if event.orig_cl_ord_id:
                msg.setField(T.ORIG_CL_ORD_ID, event.orig_cl_ord_id)
            case OrderCanceled():
                msg.setField(T.TEXT, f"canceled: {event.reason.name.lower().replace('_', ' ')}")
            case OrderReplaced() | ChangePending():
                msg.setField(T.ORIG_CL_ORD_ID, event.orig_cl_ord_id)
        return msg

    def status(self, order: Order, exec_id: str, req_id: str | None, now_ns: int) -> Draft:
        """The ExecutionReport answering an OrderStatusRequest (or a PossResend of a known order) for `order`."""
        event = OrderAccepted(
            order.order_id, order.cl_ord_id, order.account, order.symbol, order.side, order.ord_type, order.tif,
            order.qty, order.price, now_ns,
        )  # fmt: skip
        msg = self._execution_report(event, order.view(), order, exec_id, "", SIDE_CHARS[order.side])
        self.status_fields(msg, self.ord_status(order.status, order.cum_qty), req_id)
        return msg

    def unknown_status(
        self, cl_ord_id: str, symbol: str, side: str, exec_id: str, req_id: str | None, now_ns: int
    ) -> Draft:
        """The ExecutionReport answering an OrderStatusRequest for an order this session does not have (Rejected,
        UNKNOWN_ORDER; OrdStatusReqID echoed)."""
        msg = self._message(T.MT_EXECUTION_REPORT)
        for tag, value in (
            (T.ORDER_ID, "NONE"), (T.CL_ORD_ID, cl_ord_id), (T.EXEC_ID, exec_id), (T.ORD_STATUS, "8"),
            (T.SYMBOL, symbol), (T.SIDE, side), (T.LEAVES_QTY, "0"), (T.CUM_QTY, "0"), (T.AVG_PX, "0"),
            (T.ORD_REJ_REASON, self.ord_rej_reason(RejectReason.UNKNOWN_ORDER)),
            (T.TEXT, describe(RejectReason.UNKNOWN_ORDER)), (T.TRANSACT_TIME, utc_timestamp(now_ns)),
        ):  # fmt: skip
            msg.setField(tag, value)
        self.status_fields(msg, "8", req_id)
        return msg

    def cancel_reject(self, event: CancelRejected, order: Order | None) -> Draft:
        """OrderCancelReject (9) for a refused cancel or replace."""
        msg = self._message(T.MT_ORDER_CANCEL_REJECT)
        status = "8" if order is None else self.ord_status(order.status, order.cum_qty)
        msg.setField(T.ORDER_ID, str(event.order_id) if event.order_id else "NONE")
        msg.setField(T.CL_ORD_ID, event.cl_ord_id)
        msg.setField(T.ORIG_CL_ORD_ID, event.orig_cl_ord_id)
        msg.setField(T.ORD_STATUS, status)
        if event.account:
            msg.setField(T.ACCOUNT, event.account)
        msg.setField(T.TRANSACT_TIME, utc_timestamp(event.ts_ns))
        msg.setField(T.CXL_REJ_RESPONSE_TO, "1" if event.response_to == "cancel" else "2")
        msg.setField(T.CXL_REJ_REASON, self.cxl_rej_reason(event.reason))
        msg.setField(T.TEXT, event.text)
        return msg

    def mass_cancel_report(
        self, request: Any, report_id: str, accepted_type: str | None, affected: int, text: str, now_ns: int
    ) -> Draft:
        """OrderMassCancelReport (r) answering `request`: accepted (`accepted_type` echoed) or, when None, rejected
        with MassCancelRejectReason 0 (not supported) and `text`."""
        msg = self._message(T.MT_ORDER_MASS_CANCEL_REPORT)
        msg.setField(T.CL_ORD_ID, request.getField(T.CL_ORD_ID))
        msg.setField(T.ORDER_ID, report_id)
        msg.setField(T.MASS_CANCEL_REQUEST_TYPE, request.getField(T.MASS_CANCEL_REQUEST_TYPE))
        if accepted_type is None:
            msg.setField(T.MASS_CANCEL_RESPONSE, T.MASS_CANCEL_REJECTED)
            msg.setField(T.MASS_CANCEL_REJECT_REASON, T.MASS_CANCEL_NOT_SUPPORTED)
            msg.setField(T.TEXT, text)
        else:
            msg.setField(T.MASS_CANCEL_RESPONSE, accepted_type)
            msg.setField(T.TOTAL_AFFECTED_ORDERS, str(affected))
        if request.isSetField(T.SYMBOL):
            msg.setField(T.SYMBOL, request.getField(T.SYMBOL))
        msg.setField(T.TRANSACT_TIME, utc_timestamp(now_ns))
        return msg

    def session_reject(self, ref_seq_num: str, ref_msg_type: str, ref_tag: int, reason: str, text: str) -> Draft:
        """Reject (3) of a message the session layer let through but the OMS refuses field by field: RefTagID names
        the field, SessionRejectReason says what is wrong with it."""
        msg = self._message(T.MT_REJECT)
        msg.setField(T.REF_SEQ_NUM, ref_seq_num)
        msg.setField(T.REF_TAG_ID, str(ref_tag))
        msg.setField(T.REF_MSG_TYPE, ref_msg_type)
        msg.setField(T.SESSION_REJECT_REASON, reason)
        msg.setField(T.TEXT, text)
        return msg

    def business_reject(self, ref_seq_num: str, ref_msg_type: str, reason: str, text: str) -> Draft:
        """BusinessMessageReject (j) for an application message the OMS will not process."""
        msg = self._message(T.MT_BUSINESS_MESSAGE_REJECT)
        msg.setField(T.REF_SEQ_NUM, ref_seq_num)
        msg.setField(T.REF_MSG_TYPE, ref_msg_type)
        msg.setField(T.BUSINESS_REJECT_REASON, reason)
        msg.setField(T.TEXT, text)
        return msg

    def _execution_report(
        self, event: Any, view: OrderView | None, order: Order | None, exec_id: str, exec_type: str, side: str
    ) -> Draft:
        inst = self._inst(event.symbol)
        msg = self._message(T.MT_EXECUTION_REPORT)
        msg.setField(T.ORDER_ID, str(event.order_id) if event.order_id else "NONE")
        msg.setField(T.CL_ORD_ID, event.cl_ord_id)
        msg.setField(T.EXEC_ID, exec_id)
        if exec_type:
            self.exec_fields(msg, exec_type)
        if view is None:  # refused before the order existed: nothing working, nothing filled
            msg.setField(T.ORD_STATUS, "8")
            cum_qty = leaves = cum_notional = 0
        else:
            msg.setField(T.ORD_STATUS, self.ord_status(view.status, view.cum_qty))
            cum_qty, leaves, cum_notional = view.cum_qty, view.leaves_qty, view.cum_notional
        if event.account:
            msg.setField(T.ACCOUNT, event.account)
        msg.setField(T.SYMBOL, event.symbol)
        if order is not None:
            msg.setField(T.SIDE, SIDE_CHARS[order.side])
            msg.setField(T.ORD_TYPE, ORD_TYPE_CHARS[order.ord_type])
            msg.setField(T.TIME_IN_FORCE, TIF_CHARS[order.tif])
            qty, price = (view.qty, view.price) if view is not None else (order.qty, order.price)
            if inst is not None:
                msg.setField(T.ORDER_QTY, format_qty(inst, qty))
                if price is not None:
                    msg.setField(T.PRICE, format_price(inst, price))
        else:
            msg.setField(T.SIDE, side)
        if inst is not None:
            msg.setField(T.LEAVES_QTY, format_qty(inst, leaves))
            msg.setField(T.CUM_QTY, format_qty(inst, cum_qty))
            msg.setField(T.AVG_PX, _avg_px(inst, cum_notional, cum_qty))
        else:
            msg.setField(T.LEAVES_QTY, "0")
            msg.setField(T.CUM_QTY, "0")
            msg.setField(T.AVG_PX, "0")
        msg.setField(T.TRANSACT_TIME, utc_timestamp(event.ts_ns))
        return msg

    def _message(self, msg_type: str) -> Draft:
        return Draft(self.begin_string, msg_type)

    def _inst(self, symbol: str) -> Instrument | None:
        return self._instruments.by_symbol(symbol)

    # -- VERSION HOOKS --

    def exec_fields(self, msg: Any, exec_type: str) -> None:
        """ExecType (150) and whatever else this version puts beside it."""
        msg.setField(T.EXEC_TYPE, exec_type)

    def exec_type_fill(self, leaves_qty: int) -> str:
        raise NotImplementedError

    def ord_status(self, status: OrdStatus, cum_qty: int) -> str:
        return _ORD_STATUS_CHARS[status]

    def status_fields(self, msg: Any, ord_status: str, req_id: str | None) -> None:
        """What marks an ExecutionReport as the answer to a status request."""
        raise NotImplementedError

    def liquidity(self, msg: Any, aggressor: bool) -> None:
        """Passive/aggressive on a fill, where the version has a field for it."""

    def ord_rej_reason(self, reason: RejectReason) -> str:
        raise NotImplementedError

    def cxl_rej_reason(self, reason: RejectReason) -> str:
        raise NotImplementedError

    def mark_copy(self, msg: Any) -> None:
        """Mark `msg` as a drop copy, where the version has a field for it."""


def _avg_px(inst: Instrument, cum_notional: int, cum_qty: int) -> str:
    if not cum_qty:
        return "0"
    units = round(Fraction(cum_notional, cum_qty) * 10**AVG_PX_EXTRA_DIGITS)
    return from_units(units, inst.price_precision + AVG_PX_EXTRA_DIGITS)


def _parse_utc(text: str) -> int | None:
    """A FIX UTCTimestamp (`YYYYMMDD-HH:MM:SS[.fff...]`) as ns since the epoch; None when malformed."""
    whole, _, frac = text.partition(".")
    try:
        seconds = calendar.timegm(time.strptime(whole, "%Y%m%d-%H:%M:%S"))
        ns = to_units("0." + frac, 9) if frac else 0
    except (ValueError, InvalidValue):
        return None
    return int(seconds) * 1_000_000_000 + ns
