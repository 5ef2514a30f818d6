"""Parent commands, parent events and the journal records that rebuild parents, as frozen tagged msgspec Structs.

Prices and quantities are integers in the instrument's units, timestamps integer nanoseconds, like
`oms.core.model.messages`. Commands are what a client (REST, a script) sends the `AlgoEngine`; events are what it
reports back; records (`ChildSent`, `ChildFilled`, ...) are the facts the engine journals so that `Parent.apply`
can rebuild a parent after a restart. `AlgoRecord` is the journal's union: every parent command plus every record.
"""

from __future__ import annotations

from enum import Enum, IntEnum
from fractions import Fraction

import msgspec

from oms.core.model.enums import OrdType, RejectReason, Side, TimeInForce

__all__ = [
    "AlgoCommand",
    "AlgoEvent",
    "AlgoKind",
    "AlgoRecord",
    "AlgoRejectReason",
    "CancelFailed",
    "CancelParent",
    "CancelParentRejected",
    "CancelSent",
    "ChildDone",
    "ChildFilled",
    "ChildRejected",
    "ChildSent",
    "OcoBreach",
    "ParentAccepted",
    "ParentClosing",
    "ParentDone",
    "ParentRejected",
    "ParentStatus",
    "ParentUpdated",
    "StopTriggered",
    "SubmitBracket",
    "SubmitIceberg",
    "SubmitParent",
    "SubmitPov",
    "SubmitTwap",
    "SubmitVwap",
    "VolumeObserved",
]


class AlgoKind(Enum):
    TWAP = "twap"
    VWAP = "vwap"
    POV = "pov"
    ICEBERG = "iceberg"
    BRACKET = "bracket"


class ParentStatus(Enum):
    NEW = "new"  # accepted, nothing filled yet
    PARTIALLY_FILLED = "partially_filled"
    PENDING_CANCEL = "pending_cancel"  # canceling, stopping or expiring: waiting for working children to end
    FILLED = "filled"  # the whole quantity executed (bracket: the exit closed the entry's position)
    CANCELED = "canceled"  # by CancelParent
    EXPIRED = "expired"  # the schedule ended with quantity left
    STOPPED = "stopped"  # the engine gave up: children rejected in a row, kill switch, a leg ended unexpectedly

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL


_TERMINAL = frozenset({ParentStatus.FILLED, ParentStatus.CANCELED, ParentStatus.EXPIRED, ParentStatus.STOPPED})


class AlgoRejectReason(IntEnum):
    """Why a parent command was refused (codes, not exceptions)."""

    NONE = 0
    UNKNOWN_SYMBOL = 1
    INVALID_QTY = 2  # not positive
    OFF_LOT = 3  # a quantity off the instrument's lot grid
    OFF_TICK = 4  # a price off the tick grid, or not positive
    INVALID_WINDOW = 5  # end not after start
    INVALID_SLICES = 6
    INVALID_PROFILE = 7  # empty, a negative weight, or all weights zero
    UNKNOWN_PROFILE = 8
    INVALID_RATE = 9  # POV participation not in (0, 100 %]
    INVALID_CLIP = 10  # POV clips not 0 < min <= max
    INVALID_DISPLAY_QTY = 11
    INVALID_BRACKET = 12  # stop-loss and take-profit on the wrong sides of each other or of the entry
    DUPLICATE_PARENT_ID = 13
    UNKNOWN_PARENT = 14
    PARENT_DONE = 15  # cancel of a parent that already ended
    INVALID_JITTER = 16
    INVALID_SEED = 17  # outside 0 .. 2**63 - 1: the journal stores it as a 64-bit integer
    JOURNAL_UNAVAILABLE = 18  # the parent could not be journaled, so it was not started


# -- COMMANDS --


class SubmitTwap(msgspec.Struct, frozen=True, tag="submit_twap"):
    """`qty` in `slices` equal slices at start + i * (end - start) / slices. `jitter_pct` (0-100) moves each slice
    later by up to that share of a slice interval and scales its size by up to +/- that percentage, from a
    `random.Random(seed)`: the same command always gives the same schedule. Children are IOC: market orders, or
    limits at `limit_price` (a cap for a buy, a floor for a sell); what a slice leaves unfilled rolls into the
    next one."""

    parent_id: str
    account: str
    symbol: str
    side: Side
    qty: int
    start_ns: int
    end_ns: int
    slices: int
    limit_price: int | None = None
    jitter_pct: int = 0
    seed: int = 0
    ts_ns: int = 0


class SubmitVwap(msgspec.Struct, frozen=True, tag="submit_vwap"):
    """[start, end] cut into len(profile) equal buckets; bucket b gets qty * profile[b] / sum(profile), sent at the
    bucket's start. `profile` holds integer weights (volumes, basis points); when empty, `profile_name` names one of
    the engine's configured profiles and the engine journals the command with that profile filled in."""

    parent_id: str
    account: str
    symbol: str
    side: Side
    qty: int
    start_ns: int
    end_ns: int
    profile: list[int] = []
    profile_name: str = ""
    limit_price: int | None = None
    ts_ns: int = 0


class SubmitPov(msgspec.Struct, frozen=True, tag="submit_pov"):
    """Trade `rate_bp` / 10000 of the market volume printed since `start_ns` (the algo's own fills excluded),
    in children of `min_clip` to `max_clip`, until `qty` is done or `end_ns` passes."""

    parent_id: str
    account: str
    symbol: str
    side: Side
    qty: int
    rate_bp: int
    min_clip: int
    max_clip: int
    start_ns: int = 0
    end_ns: int | None = None
    limit_price: int | None = None
    ts_ns: int = 0


class SubmitIceberg(msgspec.Struct, frozen=True, tag="submit_iceberg"):
    """One resting limit child of `display_qty` at a time at `price`; a new one each time the last one fills."""

    parent_id: str
    account: str
    symbol: str
    side: Side
    qty: int
    display_qty: int
    price: int
    ts_ns: int = 0


class SubmitBracket(msgspec.Struct, frozen=True, tag="submit_bracket"):
    """An entry (a GTC limit at `entry_price`, or a market order when None); once it is done, a take-profit limit
    and a stop-loss as an OCO pair on the filled quantity. With `synthetic_stop` (the default) the stop is held by
    the engine and sent (market, or an IOC limit at `stop_limit`) only after the take-profit is canceled with
    nothing filled, so the two legs can never both fill; without it the stop rests at the venue as a STOP /
    STOP_LIMIT order, and a venue that fills both legs in one step is reported as an `OcoBreach`."""

    parent_id: str
    account: str
    symbol: str
    side: Side  # the entry's side; the exits take the other side
    qty: int
    entry_price: int | None
    take_profit: int
    stop_loss: int
    stop_limit: int | None = None
    synthetic_stop: bool = True
    ts_ns: int = 0


class CancelParent(msgspec.Struct, frozen=True, tag="cancel_parent"):
    parent_id: str
    ts_ns: int = 0


SubmitParent = SubmitTwap | SubmitVwap | SubmitPov | SubmitIceberg | SubmitBracket
AlgoCommand = SubmitParent | CancelParent


# -- EVENTS --


class ParentAccepted(msgspec.Struct, frozen=True, tag="parent_accepted"):
    parent_id: str
    kind: AlgoKind
    account: str
    symbol: str
    side: Side
    qty: int
    ts_ns: int


class ParentRejected(msgspec.Struct, frozen=True, tag="parent_rejected"):
    parent_id: str
    reason: AlgoRejectReason
    text: str
    ts_ns: int


class CancelParentRejected(msgspec.Struct, frozen=True, tag="cancel_parent_rejected"):
    parent_id: str
    reason: AlgoRejectReason
    text: str
    ts_ns: int


class ParentUpdated(msgspec.Struct, frozen=True, tag="parent_updated"):
    """The parent's state after a change. `cum_notional / cum_qty` is the exact average price (`avg_px`)."""

    parent_id: str
    status: ParentStatus
    qty: int
    cum_qty: int
    cum_notional: int
    leaves_qty: int
    working_qty: int  # at the venue now, in working children
    ts_ns: int

    @property
    def avg_px(self) -> Fraction:
        return Fraction(self.cum_notional, self.cum_qty) if self.cum_qty else Fraction(0)


class ChildRejected(msgspec.Struct, frozen=True, tag="child_rejected"):
    """A child was refused (risk check, venue); the parent goes on unless too many are refused in a row."""

    parent_id: str
    cl_ord_id: str
    reason: RejectReason
    text: str
    ts_ns: int


class ParentDone(msgspec.Struct, frozen=True, tag="parent_done"):
    parent_id: str
    status: ParentStatus
    cum_qty: int
    cum_notional: int
    text: str
    ts_ns: int


class OcoBreach(msgspec.Struct, frozen=True, tag="oco_breach"):
    """Both legs of an OCO pair executed: the one thing an OCO promises not to do. Logged at ERROR as well."""

    parent_id: str
    take_profit_cl_ord_id: str
    stop_loss_cl_ord_id: str
    take_profit_cum_qty: int
    stop_loss_cum_qty: int
    ts_ns: int


AlgoEvent = (
    ParentAccepted | ParentRejected | CancelParentRejected | ParentUpdated | ChildRejected | ParentDone | OcoBreach
)


# -- JOURNAL RECORDS (facts a parent is rebuilt from) --


class ChildSent(msgspec.Struct, frozen=True, tag="child_sent"):
    """Journaled before the child goes to the OrderManager; `slot` is the schedule slot it serves (-1: none)."""

    parent_id: str
    cl_ord_id: str
    role: str  # "slice", "entry", "tp", "sl"
    side: Side
    ord_type: OrdType
    tif: TimeInForce
    qty: int
    price: int | None
    stop_price: int | None
    slot: int
    ts_ns: int


class CancelSent(msgspec.Struct, frozen=True, tag="cancel_sent"):
    parent_id: str
    cl_ord_id: str  # the child's
    cancel_cl_ord_id: str
    ts_ns: int


class CancelFailed(msgspec.Struct, frozen=True, tag="cancel_failed"):
    parent_id: str
    cl_ord_id: str
    reason: RejectReason
    ts_ns: int


class ChildFilled(msgspec.Struct, frozen=True, tag="child_filled"):
    """`notional` is qty * price of the fill (or the catch-up difference found at recovery, exec_id 0)."""

    parent_id: str
    cl_ord_id: str
    qty: int
    notional: int
    exec_id: int
    ts_ns: int


class ChildDone(msgspec.Struct, frozen=True, tag="child_done"):
    """The child stopped working: canceled, expired, rejected, or lost (not found after an OMS restart)."""

    parent_id: str
    cl_ord_id: str
    outcome: str  # "filled" | "canceled" | "expired" | "rejected" | "lost"
    reason: int  # CancelReason for canceled, RejectReason for rejected, 0 otherwise
    text: str
    ts_ns: int


class VolumeObserved(msgspec.Struct, frozen=True, tag="volume_observed"):
    """Market volume printed on the parent's symbol by others (POV)."""

    parent_id: str
    qty: int
    ts_ns: int


class StopTriggered(msgspec.Struct, frozen=True, tag="stop_triggered"):
    """A trade reached a synthetic stop-loss."""

    parent_id: str
    price: int
    ts_ns: int


class ParentClosing(msgspec.Struct, frozen=True, tag="parent_closing"):
    """The engine ends the parent with `status` once its working children are canceled."""

    parent_id: str
    status: ParentStatus
    text: str
    ts_ns: int


ParentRecord = (
    ChildSent | CancelSent | CancelFailed | ChildFilled | ChildDone | VolumeObserved | StopTriggered | ParentClosing
)
AlgoRecord = AlgoCommand | ParentRecord
