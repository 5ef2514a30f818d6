"""Parent orders as pure state machines: records in (`apply`), actions out (`evaluate`). No I/O, no clock.

A parent changes only through `apply(record)` (its own submit command is given at construction; `CancelParent`
and the records of `oms.core.algos.messages` follow), so replaying its journal rebuilds it exactly. `evaluate(now_ns)`
is a query: from the state and the time it says what to do next (`NewChild`, `CancelChild`, `Close`), changing
nothing; the engine journals the record of each action (`ChildSent`, `CancelSent`, `ParentClosing`), applies it and
only then acts, and evaluates again until nothing is left to do.

Rules every kind shares:
- cum qty and cum notional are the sums over the children's fills (for a bracket: the entry's), so the average
  price `cum_notional / cum_qty` is exact; leaves = qty - cum.
- Child ClOrdIDs are `<parent_id>.<n>`, n counting every child and cancel the parent sent (cancels take a number
  too), so they are unique on the engine's session and the same after a replay.
- A child refused `max_rejects` times in a row stops the parent (STOPPED); a fill resets the count. A child canceled
  by the kill switch or a shutdown stops it too. Other unsolicited ends (IOC remainder, no liquidity, self-trade
  prevention) return the child's remainder to the schedule.
- Closing (CancelParent, stop, expiry) cancels every working child; the parent is terminal once none works. A
  parent whose whole quantity filled is FILLED, even when a cancel was on its way.
"""

from __future__ import annotations

import random
from bisect import bisect_right
from fractions import Fraction
from typing import NamedTuple

from oms.core.algos.messages import (
    AlgoKind,
    AlgoRejectReason,
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
    SubmitBracket,
    SubmitIceberg,
    SubmitParent,
    SubmitPov,
    SubmitTwap,
    SubmitVwap,
    VolumeObserved,
)
from oms.core.model.enums import CancelReason, OrdType, Side, TimeInForce
from oms.core.model.instruments import Instrument

__all__ = [
    "RETRY_NS",
    "Action",
    "BracketParent",
    "CancelChild",
    "Child",
    "Close",
    "IcebergParent",
    "NewChild",
    "Parent",
    "ParentView",
    "PovParent",
    "ScheduleParent",
    "make_parent",
    "validate",
]

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


# -- TWAP and VWAP --


class ScheduleParent(Parent):
    """Children at fixed times, each bringing the cum qty up to that time's target (TWAP, VWAP).

    Slot i is due at `times[i]` and targets `targets[i]` (cumulative, on the lot grid, the last one = qty). When the
    latest due slot has not been served, a child of target - cum - working goes out; what it leaves unfilled is
    caught up by the next slot, and a slot missed entirely (the engine was down) is caught up by the first one
    served after it. Once every slot is served, nothing works and `end_ns` has passed, a parent with quantity left
    is EXPIRED.
    """

    def __init__(self, cmd: SubmitTwap | SubmitVwap, lot: int, max_rejects: int, weights: list[int],
                 times: list[int]) -> None:  # fmt: skip
        super().__init__(cmd, lot, max_rejects)
        self.kind = AlgoKind.TWAP if isinstance(cmd, SubmitTwap) else AlgoKind.VWAP
        self.end_ns = cmd.end_ns
        self.limit_price = cmd.limit_price
        self.times = times
        total, run, targets = sum(weights), 0, []
        for w in weights:
            run += w
            targets.append(self._lots(cmd.qty * run // total))
        targets[-1] = cmd.qty
        self.targets = targets
        self.slots_served = 0

    def _on_child_sent(self, rec: ChildSent) -> None:
        self.slots_served = max(self.slots_served, rec.slot + 1)

    def _next(self, now_ns: int) -> list[Action]:
        due = bisect_right(self.times, now_ns)
        if due > self.slots_served:
            qty = self._lots(self.targets[due - 1] - self.cum_qty - self.working_qty)
            if qty > 0:
                return [self._taking(qty, due - 1, self.limit_price)]
        if due == len(self.times) and now_ns >= self.end_ns and not self.working():
            left = self.qty - self.cum_qty
            return [Close(ParentStatus.EXPIRED, f"schedule ended with {left} unfilled")]
        return []


def twap_plan(cmd: SubmitTwap) -> tuple[list[int], list[int]]:
    """(slice times, slice weights): equal unless `jitter_pct`, then seeded and reproducible."""
    span, n = cmd.end_ns - cmd.start_ns, cmd.slices
    rng = random.Random(cmd.seed)
    times, weights = [], []
    for i in range(n):
        t = cmd.start_ns + i * span // n
        w = 1000
        if cmd.jitter_pct:
            t += rng.randrange(max(span * cmd.jitter_pct // (100 * n), 1))
            w += rng.randint(-10 * cmd.jitter_pct, 10 * cmd.jitter_pct)
        times.append(t)
        weights.append(w)
    return times, weights


def vwap_times(cmd: SubmitVwap) -> list[int]:
    span, n = cmd.end_ns - cmd.start_ns, len(cmd.profile)
    return [cmd.start_ns + b * span // n for b in range(n)]


# -- POV --


class PovParent(Parent):
    """Trades toward rate * (market volume by others since start), never past it.

    A child goes out when the shortfall (target - cum - working) reaches `min_clip` (or all that is left, when less
    remains), of min(shortfall, max_clip), at most once per new market volume or once per RETRY_NS. So while
    liquidity lets children fill and no single print asks more than `max_clip`, cum stays within
    (target - min_clip, target].
    """

    kind = AlgoKind.POV

    def __init__(self, cmd: SubmitPov, lot: int, max_rejects: int) -> None:
        super().__init__(cmd, lot, max_rejects)
        self.pov = cmd
        self.market_volume = 0
        self.volume_at_last_child = -1

    def wants_volume(self, now_ns: int) -> bool:
        return now_ns >= self.pov.start_ns and self.closing is None

    def target(self) -> int:
        return min(self.qty, self._lots(self.pov.rate_bp * self.market_volume // 10_000))

    def _on_child_sent(self, rec: ChildSent) -> None:
        self.volume_at_last_child = self.market_volume

    def _on_market(self, rec: VolumeObserved | StopTriggered) -> None:
        if isinstance(rec, VolumeObserved):
            self.market_volume += rec.qty

    def _next(self, now_ns: int) -> list[Action]:
        p = self.pov
        if now_ns < p.start_ns or self.working():
            return []
        if p.end_ns is not None and now_ns >= p.end_ns:
            return [Close(ParentStatus.EXPIRED, f"window ended with {self.qty - self.cum_qty} unfilled")]
        if self.market_volume <= self.volume_at_last_child and now_ns < self.last_child_ts + RETRY_NS:
            return []
        shortfall = self.target() - self.cum_qty
        if shortfall < min(p.min_clip, self.qty - self.cum_qty) or shortfall <= 0:
            return []
        qty = self._lots(min(shortfall, p.max_clip))
        return [self._taking(qty, -1, p.limit_price)] if qty > 0 else []


# -- iceberg --


class IcebergParent(Parent):
    """One resting GTC limit child of display_qty (or what is left) at a time; the next when it is done."""

    kind = AlgoKind.ICEBERG

    def __init__(self, cmd: SubmitIceberg, lot: int, max_rejects: int) -> None:
        super().__init__(cmd, lot, max_rejects)
        self.ice = cmd

    def _next(self, now_ns: int) -> list[Action]:
        if self.working():
            return []
        if self.last_child_empty and now_ns < self.last_child_ts + RETRY_NS:
            return []
        qty = min(self.ice.display_qty, self.qty - self.cum_qty)
        return [NewChild("slice", self.side, OrdType.LIMIT, TimeInForce.GTC, qty, self.ice.price, slot=self.seq)]


# -- bracket / OCO --


class BracketParent(Parent):
    """Entry, then take-profit (tp) and stop-loss (sl) legs on the entry's filled quantity, one-cancels-other.

    The exits go out when the entry is done (filled, or ended with a partial fill). The first fill of either leg
    cancels the other. With a synthetic stop (default) the sl leg exists only in this parent until a trade reaches
    the stop while tp has filled nothing: then tp is canceled, and only once tp has ended with nothing filled does
    the sl child go out (market IOC, or IOC limit at stop_limit; retried every RETRY_NS until the exit is done).
    A tp fill seen first disarms the stop. So the two legs never both fill, whatever the venue does.
    """

    kind = AlgoKind.BRACKET

    def __init__(self, cmd: SubmitBracket, lot: int, max_rejects: int) -> None:
        super().__init__(cmd, lot, max_rejects)
        self.br = cmd
        self.exit_side = cmd.side.opposite
        self.triggered = False
        self.breach_reported = False

    # -- legs --

    def leg(self, role: str) -> list[Child]:
        return [c for c in self.children.values() if c.role == role]

    def _one(self, role: str) -> Child | None:
        legs = self.leg(role)
        return legs[0] if legs else None

    def _cum(self, role: str) -> tuple[int, int]:
        legs = self.leg(role)
        return sum(c.cum_qty for c in legs), sum(c.cum_notional for c in legs)

    @property
    def cum_qty(self) -> int:
        return self._cum("entry")[0]

    @property
    def cum_notional(self) -> int:
        return self._cum("entry")[1]

    def exit_target(self) -> int:
        entry = self._one("entry")
        return entry.cum_qty if entry is not None and entry.done else 0

    def is_filled(self) -> bool:
        target = self.exit_target()
        return target > 0 and self._cum("tp")[0] + self._cum("sl")[0] >= target

    def breached(self) -> bool:
        """Both legs executed (must never happen with a synthetic stop)."""
        return self._cum("tp")[0] > 0 and self._cum("sl")[0] > 0

    def view(self) -> ParentView:
        tp, sl = self._cum("tp"), self._cum("sl")
        return super().view()._replace(exit_cum_qty=tp[0] + sl[0], exit_cum_notional=tp[1] + sl[1])

    def armed(self) -> bool:
        tp = self._one("tp")
        return (
            self.br.synthetic_stop and not self.triggered and self.closing is None and tp is not None
            and tp.cum_qty == 0 and not tp.done
        )  # fmt: skip

    def observe_print(self, price: int) -> bool:
        if not self.armed():
            return False
        return price <= self.br.stop_loss if self.side is Side.BUY else price >= self.br.stop_loss

    def _on_market(self, rec: VolumeObserved | StopTriggered) -> None:
        if isinstance(rec, StopTriggered):
            self.triggered = True

    # -- schedule --

    def _next(self, now_ns: int) -> list[Action]:
        br, side = self.br, self.exit_side
        entry = self._one("entry")
        if entry is None:
            if br.entry_price is None:
                return [NewChild("entry", self.side, OrdType.MARKET, TimeInForce.IOC, self.qty)]
            return [NewChild("entry", self.side, OrdType.LIMIT, TimeInForce.GTC, self.qty, br.entry_price)]
        if not entry.done:
            return []
        if entry.cum_qty == 0:
            return [Close(ParentStatus.STOPPED, f"entry {entry.outcome} with nothing filled: {self.last_reject}")]
        target = entry.cum_qty
        tp, sl_legs = self._one("tp"), self.leg("sl")
        if tp is None:
            acts: list[Action] = [NewChild("tp", side, OrdType.LIMIT, TimeInForce.GTC, target, br.take_profit)]
            if not br.synthetic_stop:
                kind = OrdType.STOP if br.stop_limit is None else OrdType.STOP_LIMIT
                acts.append(NewChild("sl", side, kind, TimeInForce.GTC, target, br.stop_limit, br.stop_loss))
            return acts
        if not br.synthetic_stop:
            return self._venue_oco(tp, sl_legs[0] if sl_legs else None, target)
        if tp.cum_qty > 0:
            if tp.done and tp.cum_qty < target:
                return [Close(ParentStatus.STOPPED, f"take-profit ended ({tp.outcome}) with {target - tp.cum_qty} "
                                                    "left and the stop disarmed")]  # fmt: skip
            return []
        if not self.triggered:
            if tp.done:
                return [Close(ParentStatus.STOPPED, f"take-profit ended ({tp.outcome}) before the stop fired")]
            return []
        if not tp.done:
            return [] if tp.cancel_requested else [CancelChild(tp.cl_ord_id)]
        if any(not c.done for c in sl_legs):
            return []
        left = target - self._cum("sl")[0]
        if left <= 0 or (sl_legs and now_ns < self.last_child_ts + RETRY_NS):
            return []
        if br.stop_limit is None:
            return [NewChild("sl", side, OrdType.MARKET, TimeInForce.IOC, left)]
        return [NewChild("sl", side, OrdType.LIMIT, TimeInForce.IOC, left, br.stop_limit)]

    def _venue_oco(self, tp: Child, sl: Child | None, target: int) -> list[Action]:
        assert sl is not None
        if tp.cum_qty > 0 and not sl.done and not sl.cancel_requested:
            return [CancelChild(sl.cl_ord_id)]
        if sl.cum_qty > 0 and not tp.done and not tp.cancel_requested:
            return [CancelChild(tp.cl_ord_id)]
        if tp.done and sl.done and tp.cum_qty + sl.cum_qty < target:
            return [Close(ParentStatus.STOPPED, f"both legs ended with {target - tp.cum_qty - sl.cum_qty} left")]
        return []


# -- construction --


def _on_grid(value: int | None, step: int) -> bool:
    return value is None or (value > 0 and value % step == 0)


def validate(cmd: SubmitParent, inst: Instrument | None) -> tuple[AlgoRejectReason, str]:
    """(NONE, "") when `cmd` can become a parent, else the reason and a text naming the field."""
    R = AlgoRejectReason
    if inst is None:
        return R.UNKNOWN_SYMBOL, f"unknown symbol {cmd.symbol!r}"
    if cmd.qty <= 0:
        return R.INVALID_QTY, f"qty {cmd.qty} must be > 0"
    if cmd.qty % inst.lot:
        return R.OFF_LOT, f"qty {cmd.qty} is off the lot grid ({inst.lot})"
    match cmd:
        case SubmitTwap() | SubmitVwap():
            if cmd.end_ns <= cmd.start_ns:
                return R.INVALID_WINDOW, "end_ns must be after start_ns"
            if not _on_grid(cmd.limit_price, inst.tick):
                return R.OFF_TICK, f"limit_price {cmd.limit_price} is off the tick grid ({inst.tick})"
            if isinstance(cmd, SubmitTwap):
                if cmd.slices < 1:
                    return R.INVALID_SLICES, f"slices {cmd.slices} must be >= 1"
                if not 0 <= cmd.jitter_pct <= 100:
                    return R.INVALID_JITTER, f"jitter_pct {cmd.jitter_pct} must be within 0..100"
            elif not cmd.profile or any(w < 0 for w in cmd.profile) or sum(cmd.profile) == 0:
                return R.INVALID_PROFILE, "profile must hold non-negative weights, not all zero"
        case SubmitPov():
            if not 0 < cmd.rate_bp <= 10_000:
                return R.INVALID_RATE, f"rate_bp {cmd.rate_bp} must be within 1..10000"
            if not 0 < cmd.min_clip <= cmd.max_clip or cmd.min_clip % inst.lot or cmd.max_clip % inst.lot:
                return R.INVALID_CLIP, "clips must satisfy 0 < min_clip <= max_clip, on the lot grid"
            if cmd.end_ns is not None and cmd.end_ns <= cmd.start_ns:
                return R.INVALID_WINDOW, "end_ns must be after start_ns"
            if not _on_grid(cmd.limit_price, inst.tick):
                return R.OFF_TICK, f"limit_price {cmd.limit_price} is off the tick grid ({inst.tick})"
        case SubmitIceberg():
            if not 0 < cmd.display_qty <= cmd.qty or cmd.display_qty % inst.lot:
                return R.INVALID_DISPLAY_QTY, f"display_qty {cmd.display_qty} must be within 1..qty, on the lot grid"
            if not _on_grid(cmd.price, inst.tick):
                return R.OFF_TICK, f"price {cmd.price} is off the tick grid ({inst.tick})"
        case SubmitBracket():
            for name in ("entry_price", "take_profit", "stop_loss", "stop_limit"):
                if not _on_grid(getattr(cmd, name), inst.tick):
                    return R.OFF_TICK, f"{name} {getattr(cmd, name)} is off the tick grid ({inst.tick})"
            lo, hi = (cmd.stop_loss, cmd.take_profit) if cmd.side is Side.BUY else (cmd.take_profit, cmd.stop_loss)
            if not lo < hi or (cmd.entry_price is not None and not lo < cmd.entry_price < hi):
                return R.INVALID_BRACKET, "need stop_loss < entry_price < take_profit for a buy (reversed for a sell)"
    return R.NONE, ""


def make_parent(cmd: SubmitParent, inst: Instrument, max_rejects: int = 3) -> Parent:
    """The parent for a command that `validate` passed."""
    match cmd:
        case SubmitTwap():
            times, weights = twap_plan(cmd)
            return ScheduleParent(cmd, inst.lot, max_rejects, weights, times)
        case SubmitVwap():
            return ScheduleParent(cmd, inst.lot, max_rejects, list(cmd.profile), vwap_times(cmd))
        case SubmitPov():
            return PovParent(cmd, inst.lot, max_rejects)
        case SubmitIceberg():
            return IcebergParent(cmd, inst.lot, max_rejects)
        case SubmitBracket():
            return BracketParent(cmd, inst.lot, max_rejects)
    raise TypeError(f"not a parent command: {cmd!r}")
