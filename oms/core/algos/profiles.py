"""VWAP volume profiles: the `ProfileSource` port the algo desk asks, and the pure arithmetic of a profile.

A profile is one integer weight per bucket of a window, in parts per million of the average day's window volume
(summing to exactly WEIGHT_TOTAL). Where the history comes from is an adapter's business
(`oms.infra.clickhouse.profile.ClickHouseProfiles` reads ClickHouse).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import NamedTuple, Protocol

__all__ = ["WEIGHT_TOTAL", "ProfileSource", "VolumeProfile", "profile_weights"]

WEIGHT_TOTAL = 1_000_000  # weights are parts per million of the average day's window volume


class VolumeProfile(NamedTuple):
    """A profile, or why there is none (`weights` empty and `reason` set).

    `weights`: one per bucket, parts per million, summing to WEIGHT_TOTAL. `days`: days of history that traded in
    the window. `volume`: their total volume in the window (instrument units). `table`: where it came from.
    """

    weights: list[int]
    days: int
    volume: float
    table: str
    reason: str = ""

    @property
    def found(self) -> bool:
        return bool(self.weights)


class ProfileSource(Protocol):
    def profile(self, symbol: str, start_ns: int, end_ns: int, buckets: int) -> VolumeProfile:
        """The intraday profile of `symbol` for the window, or an empty one with the reason; never raises."""
        ...


def profile_weights(rows: Iterable[tuple[int, int, float]], buckets: int) -> tuple[list[int], int, float]:
    """(weights, days, volume) from (day, bucket, volume) rows: the mean over days of each day's share of its own
    volume per bucket, as integers summing to WEIGHT_TOTAL (largest remainder rounding). Rows with a bucket outside
    0 .. buckets - 1 or a volume <= 0 are ignored. No volume at all gives ([], 0, 0.0)."""
    per_day: dict[int, list[float]] = defaultdict(lambda: [0.0] * buckets)
    for day, bucket, volume in rows:
        if 0 <= bucket < buckets and volume > 0:
            per_day[day][bucket] += float(volume)
    if not per_day:
        return [], 0, 0.0
    mean = [0.0] * buckets
    total_volume = 0.0
    for volumes in per_day.values():
        total = sum(volumes)
        total_volume += total
        for b, v in enumerate(volumes):
            mean[b] += v / total
    exact = [m * WEIGHT_TOTAL / len(per_day) for m in mean]
    weights = [int(x) for x in exact]
    short = WEIGHT_TOTAL - sum(weights)
    for b in sorted(range(buckets), key=lambda i: weights[i] - exact[i])[: max(short, 0)]:
        weights[b] += 1
    return weights, len(per_day), total_volume
