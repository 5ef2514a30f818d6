"""Parents that follow a schedule or the market: TWAP and VWAP (`ScheduleParent`, with the plans that time their
slices) and POV (`PovParent`). Each child is an IOC that takes liquidity now; what it leaves unfilled stays in the
schedule."""

from __future__ import annotations

import random
from bisect import bisect_right

from oms.core.algos.messages import (
    AlgoKind,
    ChildSent,
    ParentStatus,
    StopTriggered,
    SubmitPov,
    SubmitTwap,
    SubmitVwap,
    VolumeObserved,
)
from oms.core.algos.parents.base import RETRY_NS, Action, Close, Parent

__all__ = ["PovParent", "ScheduleParent", "twap_plan", "vwap_times"]


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
    """The start time of each bucket of the profile: the window split evenly among them."""
    span, n = cmd.end_ns - cmd.start_ns, len(cmd.profile)
    return [cmd.start_ns + b * span // n for b in range(n)]


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
