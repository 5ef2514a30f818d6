"""What every parent shares: the actions it asks for, what it knows of its children, and `Parent`, the base that
applies records and evaluates the next actions (the rules are in the package docstring, `oms.core.algos.parents`)."""

from __future__ import annotations

from fractions import Fraction
from typing import NamedTuple

from oms.core.algos.messages import (
    AlgoKind,
    CancelFailed,
    CancelParent,
    CancelSent,
    ChildDone,
    ChildFilled,
    ChildSent,
    ParentClosing,
    ParentRecord,
    ParentStatus,
    StopTriggered,
    SubmitParent,
    VolumeObserved,
)
from oms.core.model.enums import CancelReason, OrdType, Side, TimeInForce

__all__ = ["RETRY_NS", "Action", "CancelChild", "Child", "Close", "NewChild", "Parent", "ParentView"]

RETRY_NS = 1_000_000_000  # how long a parent waits before it tries again after a child that got nothing
_STOPPING_CANCELS = frozenset({CancelReason.KILL_SWITCH, CancelReason.SHUTDOWN})


class NewChild(NamedTuple):
    role: str
    side: Side
    ord_type: OrdType
    tif: TimeInForce
    qty: int
    price: int | None = None
    stop_price: int | None = None
    slot: int = -1


class CancelChild(NamedTuple):
    cl_ord_id: str


class Close(NamedTuple):
    status: ParentStatus
    text: str


Action = NewChild | CancelChild | Close


class ParentView(NamedTuple):
    """A parent at one moment. `avg_px` is exact; bracket parents also report their exit leg."""

    parent_id: str
    kind: AlgoKind
    account: str
    symbol: str
    side: Side
    status: ParentStatus
    qty: int
    cum_qty: int
    cum_notional: int
    leaves_qty: int
    working_qty: int
    children: int
    rejects: int
    text: str
    exit_cum_qty: int = 0
    exit_cum_notional: int = 0

    @property
    def avg_px(self) -> Fraction:
        return Fraction(self.cum_notional, self.cum_qty) if self.cum_qty else Fraction(0)


class Child:
    """What a parent knows of one child order."""

    __slots__ = (
        "cancel_requested",
        "cl_ord_id",
        "cum_notional",
        "cum_qty",
        "done",
        "ord_type",
        "outcome",
        "price",
        "qty",
        "role",
        "side",
        "slot",
        "ts_ns",
    )

    def __init__(self, rec: ChildSent) -> None:
        self.cl_ord_id = rec.cl_ord_id
        self.role = rec.role
        self.side = rec.side
        self.ord_type = rec.ord_type
        self.qty = rec.qty
        self.price = rec.price
        self.slot = rec.slot
        self.ts_ns = rec.ts_ns
        self.cum_qty = 0
        self.cum_notional = 0
        self.done = False
        self.outcome = ""
        self.cancel_requested = False

    @property
    def working_qty(self) -> int:
        return 0 if self.done else self.qty - self.cum_qty

    def __repr__(self) -> str:
        return (
            f"Child({self.cl_ord_id!r}, {self.role}, qty={self.qty}, cum={self.cum_qty}, done={self.done}, "
            f"outcome={self.outcome!r})"
        )


class Parent:
    """What every kind shares; subclasses add their schedule in `_next` and may re-define how they fill."""

    kind: AlgoKind

    def __init__(self, cmd: SubmitParent, lot: int, max_rejects: int = 3) -> None:
        self.cmd = cmd
        self.parent_id = cmd.parent_id
        self.account = cmd.account
        self.symbol = cmd.symbol
        self.side = cmd.side
        self.qty = cmd.qty
        self.lot = lot
        self.max_rejects = max_rejects
        self.children: dict[str, Child] = {}
        self.seq = 0  # ClOrdIDs used (children and cancels)
        self.rejects = 0
        self.rejects_in_row = 0
        self.last_reject = ""
        self.closing: tuple[ParentStatus, str] | None = None
        self.halt = ""  # why the parent must stop, seen in a child event (kill switch, shutdown)
        self.last_child_ts = -RETRY_NS
        self.last_child_empty = False  # the latest child ended with nothing filled

    # -- QUERIES --

    @property
    def cum_qty(self) -> int:
        return sum(c.cum_qty for c in self.children.values())

    @property
    def cum_notional(self) -> int:
        return sum(c.cum_notional for c in self.children.values())

    @property
    def working_qty(self) -> int:
        return sum(c.working_qty for c in self.children.values())

    def working(self) -> list[Child]:
        return [c for c in self.children.values() if not c.done]

    def is_filled(self) -> bool:
        return self.cum_qty >= self.qty

    @property
    def status(self) -> ParentStatus:
        if self.is_filled() and not self.working():
            return ParentStatus.FILLED
        if self.closing is not None:
            return ParentStatus.PENDING_CANCEL if self.working() else self.closing[0]
        return ParentStatus.PARTIALLY_FILLED if self.cum_qty else ParentStatus.NEW

    @property
    def is_terminal(self) -> bool:
        return self.status.is_terminal

    @property
    def text(self) -> str:
        return self.closing[1] if self.closing is not None else self.last_reject

    def view(self) -> ParentView:
        cum = self.cum_qty
        return ParentView(
            self.parent_id, self.kind, self.account, self.symbol, self.side, self.status, self.qty, cum,
            self.cum_notional, max(self.qty - cum, 0), self.working_qty, len(self.children), self.rejects, self.text,
        )  # fmt: skip

    def next_cl_ord_id(self) -> str:
        return f"{self.parent_id}.{self.seq + 1}"

    def evaluate(self, now_ns: int) -> list[Action]:
        """What to do now; changes nothing (the engine applies each action's record before acting on it)."""
        if self.is_terminal:
            return []
        if self.closing is not None:
            return [CancelChild(c.cl_ord_id) for c in self.working() if not c.cancel_requested]
        if self.is_filled():  # a bracket's other leg may still work
            return [CancelChild(c.cl_ord_id) for c in self.working() if not c.cancel_requested]
        if self.halt:
            return [Close(ParentStatus.STOPPED, self.halt)]
        if self.rejects_in_row >= self.max_rejects:
            text = f"{self.rejects_in_row} children rejected in a row: {self.last_reject}"
            return [Close(ParentStatus.STOPPED, text)]
        return self._next(now_ns)

    def observe_print(self, price: int) -> bool:
        """True when a trade at `price` fires something the engine must journal (a synthetic stop)."""
        return False

    def wants_volume(self, now_ns: int) -> bool:
        """True when the parent follows market volume (POV) at `now_ns`."""
        return False

    # -- COMMANDS --

    def apply(self, rec: ParentRecord | CancelParent) -> None:
        """Change the state by one journaled fact; the only way a parent changes."""
        match rec:
            case ChildSent():
                self.seq += 1
                self.children[rec.cl_ord_id] = Child(rec)
                self.last_child_ts = rec.ts_ns
                self._on_child_sent(rec)
            case CancelSent():
                self.seq += 1
                self.children[rec.cl_ord_id].cancel_requested = True
            case CancelFailed():
                self.children[rec.cl_ord_id].cancel_requested = False
            case ChildFilled():
                child = self.children[rec.cl_ord_id]
                child.cum_qty += rec.qty
                child.cum_notional += rec.notional
                self.rejects_in_row = 0
                if child.cum_qty >= child.qty:
                    child.done, child.outcome = True, "filled"
            case ChildDone():
                child = self.children[rec.cl_ord_id]
                if child.done:
                    return
                child.done, child.outcome = True, rec.outcome
                self.last_child_empty = child.cum_qty == 0
                if rec.outcome == "rejected":
                    self.rejects += 1
                    self.rejects_in_row += 1
                    self.last_reject = rec.text
                elif rec.outcome == "canceled" and not child.cancel_requested and rec.reason in _STOPPING_CANCELS:
                    self.halt = f"child {rec.cl_ord_id} canceled: {CancelReason(rec.reason).name}"
            case CancelParent():
                if self.closing is None:
                    self.closing = (ParentStatus.CANCELED, "canceled on request")
            case ParentClosing():
                if self.closing is None:
                    self.closing = (rec.status, rec.text)
            case VolumeObserved() | StopTriggered():
                self._on_market(rec)

    # -- for subclasses --

    def _next(self, now_ns: int) -> list[Action]:
        raise NotImplementedError

    def _on_child_sent(self, rec: ChildSent) -> None:
        pass

    def _on_market(self, rec: VolumeObserved | StopTriggered) -> None:
        pass

    def _lots(self, qty: int) -> int:
        return qty // self.lot * self.lot

    def _taking(self, qty: int, slot: int, limit: int | None) -> NewChild:
        """An IOC child that takes liquidity now: a market order, or a limit at `limit`."""
        if limit is None:
            return NewChild("slice", self.side, OrdType.MARKET, TimeInForce.IOC, qty, slot=slot)
        return NewChild("slice", self.side, OrdType.LIMIT, TimeInForce.IOC, qty, limit, slot=slot)
