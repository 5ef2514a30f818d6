"""Commands (imperative) and events (past tense) exchanged by the core, as frozen tagged msgspec Structs.

Prices and quantities are integers in the instrument's units (see `oms.core.model.instruments`); timestamps are integer
nanoseconds since the epoch. Every event names its order by `order_id` (assigned by the OMS, constant across the
ClOrdID chain of replaces; 0 on a reject issued before an id was assigned) and echoes the `cl_ord_id` of the
command it answers. `encoder` and `decoder` are built once here; decode `Command | Event` and dispatch with `match`.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Literal

import msgspec

from oms.core.model.enums import CancelReason, OrdType, RejectReason, Side, TimeInForce

__all__ = [
    "CancelOrder",
    "CancelRejected",
    "ChangePending",
    "Command",
    "Event",
    "Message",
    "OperatorAction",
    "OrderAccepted",
    "OrderCanceled",
    "OrderExpired",
    "OrderFilled",
    "OrderRejected",
    "OrderReplaced",
    "OrderTriggered",
    "ReplaceOrder",
    "SubmitOrder",
    "TradePrinted",
    "decoder",
    "encoder",
]


# -- COMMANDS --


class SubmitOrder(msgspec.Struct, frozen=True, tag="submit_order"):
    account: str
    cl_ord_id: str
    symbol: str
    side: Side
    ord_type: OrdType
    qty: int
    price: int | None  # None for MARKET and STOP
    stop_price: int | None = None
    tif: TimeInForce = TimeInForce.DAY
    display_qty: int | None = None  # iceberg: the visible slice
    expire_ts_ns: int | None = None  # GTD
    ts_ns: int = 0
    session: str = ""  # the gateway session that sent it, for routing the answers
    parent_id: str = ""  # an algo's child: its parent order
    venue: str = ""  # where the OMS routes it (set by the OrderManager as it submits)


class CancelOrder(msgspec.Struct, frozen=True, tag="cancel_order"):
    account: str
    cl_ord_id: str
    orig_cl_ord_id: str
    symbol: str
    side: Side
    ts_ns: int = 0
    session: str = ""


class ReplaceOrder(msgspec.Struct, frozen=True, tag="replace_order"):
    account: str
    cl_ord_id: str
    orig_cl_ord_id: str
    symbol: str
    side: Side
    qty: int  # new total quantity (FIX OrderQty), filled part included
    price: int | None
    ts_ns: int = 0
    session: str = ""


Command = SubmitOrder | CancelOrder | ReplaceOrder


# -- EVENTS --


class OrderAccepted(msgspec.Struct, frozen=True, tag="order_accepted"):
    order_id: int
    cl_ord_id: str
    account: str
    symbol: str
    side: Side
    ord_type: OrdType
    tif: TimeInForce
    qty: int
    price: int | None
    ts_ns: int
    stop_price: int | None = None
    session: str = ""  # where its reports go: kept in the journal so a restart knows whose order it is
    parent_id: str = ""  # an algo's child: its parent order
    venue: str = ""  # the venue the OMS routed it to


class OrderRejected(msgspec.Struct, frozen=True, tag="order_rejected"):
    """A new order refused (`order_id` 0 when refused before an id was spent). The order's terms are kept when the
    refusal had the command (`OrderRejected.of`): the record of a refusal says what was refused."""

    order_id: int
    cl_ord_id: str
    account: str
    symbol: str
    reason: RejectReason
    text: str
    ts_ns: int
    side: Side | None = None
    ord_type: OrdType | None = None
    tif: TimeInForce | None = None
    qty: int | None = None
    price: int | None = None
    stop_price: int | None = None
    session: str = ""

    @classmethod
    def of(cls, cmd: SubmitOrder, order_id: int, reason: RejectReason, text: str, ts_ns: int) -> OrderRejected:
        """The refusal of `cmd`, with its terms."""
        return cls(
            order_id, cmd.cl_ord_id, cmd.account, cmd.symbol, reason, text, ts_ns, cmd.side, cmd.ord_type, cmd.tif,
            cmd.qty, cmd.price, cmd.stop_price, cmd.session,
        )  # fmt: skip


class OrderFilled(msgspec.Struct, frozen=True, tag="order_filled"):
    """One execution. `exec_id` is unique per fill and the dedup key downstream.

    `cum_notional` is the sum of qty*price over all fills of the order, so `avg_px` is exact.
    """

    order_id: int
    cl_ord_id: str
    account: str
    symbol: str
    exec_id: int
    side: Side
    qty: int  # this fill (FIX LastQty)
    price: int  # this fill (FIX LastPx)
    leaves_qty: int
    cum_qty: int
    cum_notional: int
    aggressor: bool  # True: this order took liquidity
    ts_ns: int
    contra_order_id: int | None = None
    venue: str = "INTERNAL"  # where it executed (best-execution reports group by it)

    @property
    def avg_px(self) -> Fraction:
        """Exact average price in price units; 0 when nothing is filled."""
        return Fraction(self.cum_notional, self.cum_qty) if self.cum_qty else Fraction(0)


class OrderCanceled(msgspec.Struct, frozen=True, tag="order_canceled"):
    order_id: int
    cl_ord_id: str
    account: str
    symbol: str
    reason: CancelReason
    canceled_qty: int  # quantity taken off the book
    ts_ns: int
    orig_cl_ord_id: str = ""  # set when answering a client cancel


class OrderReplaced(msgspec.Struct, frozen=True, tag="order_replaced"):
    order_id: int
    cl_ord_id: str
    orig_cl_ord_id: str
    account: str
    symbol: str
    qty: int  # new total quantity
    price: int | None
    leaves_qty: int
    ts_ns: int


class OrderExpired(msgspec.Struct, frozen=True, tag="order_expired"):
    order_id: int
    cl_ord_id: str
    account: str
    symbol: str
    expired_qty: int
    ts_ns: int


class CancelRejected(msgspec.Struct, frozen=True, tag="cancel_rejected"):
    """A cancel or replace request was refused; the order keeps working unchanged."""

    order_id: int
    cl_ord_id: str
    orig_cl_ord_id: str
    account: str
    symbol: str
    reason: RejectReason
    text: str
    response_to: Literal["cancel", "replace"]
    ts_ns: int


class ChangePending(msgspec.Struct, frozen=True, tag="change_pending"):
    """A cancel or replace went to a venue that answers later: the order is PendingCancel / PendingReplace until
    it does (FIX ExecType 6 / E). Moves no account."""

    order_id: int
    cl_ord_id: str  # the cancel's or replace's
    orig_cl_ord_id: str
    account: str
    symbol: str
    request: Literal["cancel", "replace"]
    ts_ns: int


Event = OrderAccepted | OrderRejected | OrderFilled | OrderCanceled | OrderReplaced | OrderExpired | CancelRejected


class OrderTriggered(msgspec.Struct, frozen=True, tag="order_triggered"):
    """A stop or stop-limit order fired: the last trade reached its stop price (FIX 4.4 ExecType L)."""

    order_id: int
    cl_ord_id: str
    account: str
    symbol: str
    last_price: int  # the trade price that fired it
    ts_ns: int


# -- MARKET DATA --


class TradePrinted(msgspec.Struct, frozen=True, tag="trade_printed"):
    """A trade on a venue's tape: the last-trade price that marks positions and triggers stops."""

    venue: str
    symbol: str
    match_id: int  # unique per venue
    price: int
    qty: int
    aggressor_side: Side
    ts_ns: int


class OperatorAction(msgspec.Struct, frozen=True, tag="operator_action"):
    """An operator's command the OMS carried out (the kill switch, ...): what, on which account ('' for every
    account), with which setting, by whom (`actor`: the API key's session, `REST:<key id>`, or the tool's name)."""

    action: str
    account: str
    detail: str
    actor: str
    ts_ns: int


Message = Command | Event | ChangePending | OrderTriggered | TradePrinted

encoder = msgspec.msgpack.Encoder()
decoder: msgspec.msgpack.Decoder[Message] = msgspec.msgpack.Decoder(Message)
