"""Enumerations shared by the whole core.

The integer values of the book-facing enums (Side, OrdType, TimeInForce, StpMode, BookEventKind, RejectReason,
CancelReason) are part of the native matching core's ABI: `native/_book.pyx` mirrors them as C constants and a unit
test pins the two together. Never renumber a member; append new ones.
"""

from __future__ import annotations

from enum import Enum, IntEnum


class Side(IntEnum):
    BUY = 1
    SELL = 2

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY

    @property
    def sign(self) -> int:
        """+1 for a buy, -1 for a sell: the sign of the position change a fill causes."""
        return 1 if self is Side.BUY else -1


class OrdType(IntEnum):
    MARKET = 1
    LIMIT = 2
    STOP = 3
    STOP_LIMIT = 4


class TimeInForce(IntEnum):
    DAY = 0
    GTC = 1
    IOC = 3
    FOK = 4
    GTD = 6


class StpMode(IntEnum):
    """Self-trade prevention: what happens when an order would trade with a resting order of its own account."""

    NONE = 0
    CANCEL_RESTING = 1
    CANCEL_INCOMING = 2
    CANCEL_BOTH = 3


class BookEventKind(IntEnum):
    ACCEPTED = 1
    REJECTED = 2
    FILL = 3
    TRADE = 4
    CANCELED = 5
    EXPIRED = 6
    TRIGGERED = 7
    REPLACED = 8
    CANCEL_REJECTED = 9
    REPLACE_REJECTED = 10


class RejectReason(IntEnum):
    """Why a command was refused. Codes 1-49 come from validation and the book, 50 and up from risk checks."""

    NONE = 0
    UNKNOWN_SYMBOL = 1
    INVALID_QTY = 2
    INVALID_PRICE = 3
    INVALID_STOP_PRICE = 4
    INVALID_DISPLAY_QTY = 5
    FOK_UNFILLABLE = 6
    UNKNOWN_ORDER = 7
    DUPLICATE_ORDER_ID = 8
    QTY_BELOW_FILLED = 9
    INVALID_SIDE = 10
    INVALID_ORD_TYPE = 11
    INVALID_TIF = 12
    INVALID_ORDER_ID = 13
    DUPLICATE_CL_ORD_ID = 14
    OFF_TICK = 15
    OFF_LOT = 16
    TOO_LATE_TO_CANCEL = 17
    INVALID_NUMBER = 18  # not a plain decimal string
    EXCESS_PRECISION = 19  # more decimal places than the field's precision allows
    ORDER_PENDING = 20  # a cancel or replace is already pending on the order
    VENUE_UNAVAILABLE = 21  # the venue the symbol is routed to is not connected
    VENUE_REJECTED = 22  # the venue refused it (its own text goes with it)
    SYSTEM_BUSY = 23  # shed unseen: the OMS is past capacity (its queue of commands is full); send again later
    INTERNAL_ERROR = 24  # a component failed while deciding or routing it (logged server-side); nothing holds it
    SHUTTING_DOWN = 25  # the OMS is stopping: it takes no new orders (cancels still go through)
    NOT_READY = 26  # the OMS is starting: it takes orders once it has reconciled what the last run left
    JOURNAL_UNAVAILABLE = 27  # the journal has not answered for a while: nothing is taken until it does
    # -- risk checks (risk/) --
    MAX_ORDER_QTY = 50
    MAX_ORDER_NOTIONAL = 51
    PRICE_COLLAR = 52  # limit price outside the band around the reference price
    NO_REFERENCE_PRICE = 53  # an order without a limit price and no last trade or mid to value it
    CREDIT_LIMIT = 54  # not enough buying power for the order's hold
    POSITION_LIMIT = 55  # per-symbol position limit
    GROSS_LIMIT = 56  # gross position notional limit
    NET_LIMIT = 57  # net position notional limit
    ORDER_RATE = 58  # per-account order throttle
    SESSION_RATE = 59  # per-session message throttle
    MAX_OPEN_ORDERS = 60
    RESTRICTED_SYMBOL = 61
    REDUCE_ONLY = 62  # trading state REDUCING: the order could increase a position
    HALTED = 63  # trading state HALTED
    KILL_SWITCH = 64
    UNKNOWN_ACCOUNT = 65


class TradingState(Enum):
    """What an account may do: trade freely, only reduce positions, or nothing at all (cancels always pass)."""

    ACTIVE = "active"
    REDUCING = "reducing"
    HALTED = "halted"


class RiskMode(Enum):
    """`strict`: every order asks the account actor; `reserved`: the engine spends allowances the actor grants."""

    STRICT = "strict"
    RESERVED = "reserved"


class CancelReason(IntEnum):
    """Why a working order (or its remainder) stopped working without a client cancel being refused."""

    NONE = 0
    USER = 1
    IOC = 2
    NO_LIQUIDITY = 3
    SELF_TRADE = 4
    FOK_UNFILLABLE = 5
    KILL_SWITCH = 6
    EXPIRED = 7
    SHUTDOWN = 8  # the OMS stopped and its book with it
    VENUE = 9  # an external venue canceled it on its own (IOC remainder, no liquidity, its own reasons)
    RESTART = 10  # working in the internal book when the OMS last stopped without canceling it (a crash)
    VENUE_LOST = 11  # an external venue asked for its status no longer knows it (it restarted with an empty book)


class OrdStatus(Enum):
    PENDING_NEW = "pending_new"
    NEW = "new"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    PENDING_CANCEL = "pending_cancel"
    CANCELED = "canceled"
    PENDING_REPLACE = "pending_replace"
    REPLACED = "replaced"
    REJECTED = "rejected"
    EXPIRED = "expired"
    DONE_FOR_DAY = "done_for_day"


class ExecType(Enum):
    NEW = "new"
    TRADE = "trade"
    CANCELED = "canceled"
    REPLACED = "replaced"
    PENDING_CANCEL = "pending_cancel"
    PENDING_REPLACE = "pending_replace"
    PENDING_NEW = "pending_new"
    REJECTED = "rejected"
    EXPIRED = "expired"
    DONE_FOR_DAY = "done_for_day"
    ORDER_STATUS = "order_status"
