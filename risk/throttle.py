"""Sliding-window rate limits over caller-supplied timestamps (integer nanoseconds); no clock is read here.

`SlidingWindow(limit, window_ns)` allows at most `limit` events in any half-open window (t - window_ns, t]. Only
the last `limit` timestamps can matter for that question, so the window keeps at most `limit` of them (a bounded
deque): `would_allow` and `record` are O(1). Timestamps are clamped to be non-decreasing, so an out-of-order clock
never lets a burst through twice.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from oms.core.model.enums import RejectReason

__all__ = ["SessionThrottle", "SlidingWindow"]


class SlidingWindow:
    """At most `limit` recorded events per `window_ns`. `limit` >= 1 and `window_ns` >= 1 (ValueError otherwise)."""

    __slots__ = ("_times", "limit", "window_ns")

    def __init__(self, limit: int, window_ns: int, times: Iterable[int] = ()) -> None:
        """`times`: earlier recorded timestamps, oldest first (only the last `limit` are kept)."""
        if limit < 1 or window_ns < 1:
            raise ValueError(f"limit {limit} and window_ns {window_ns} must both be >= 1")
        self.limit = limit
        self.window_ns = window_ns
        self._times: deque[int] = deque(maxlen=limit)
        for t in times:
            self.record(t)

    def would_allow(self, now_ns: int) -> bool:
        """True when one more event at `now_ns` keeps the window within its limit. Changes nothing."""
        times = self._times
        return len(times) < self.limit or times[0] <= now_ns - self.window_ns

    def record(self, now_ns: int) -> None:
        """Count an event at `now_ns` whether or not it was allowed (replay records what was accepted)."""
        times = self._times
        times.append(max(now_ns, times[-1]) if times else now_ns)

    def allow(self, now_ns: int) -> bool:
        """Record an event at `now_ns` and return True if `would_allow(now_ns)`; otherwise change nothing."""
        if not self.would_allow(now_ns):
            return False
        self.record(now_ns)
        return True

    def count(self, now_ns: int) -> int:
        """Recorded events after now_ns - window_ns (at most `limit`). The times never decrease, so it walks back
        from the newest and stops at the first one outside: O(events in the window), not O(limit)."""
        cutoff = now_ns - self.window_ns
        n = 0
        for t in reversed(self._times):
            if t <= cutoff:
                break
            n += 1
        return n

    def full_since(self) -> int | None:
        """The oldest kept timestamp while the window holds `limit` events, else None: `would_allow(t)` is
        `full_since() is None or full_since() <= t - window_ns`."""
        times = self._times
        return times[0] if len(times) == self.limit else None

    def times(self) -> list[int]:
        """The timestamps kept, oldest first: enough to rebuild an equivalent window."""
        return list(self._times)


class SessionThrottle:
    """Per-session message throttle for whoever sees sessions (the gateway or the engine), not the account.

    Each session gets its own `SlidingWindow(limit, window_ns)`; `check` records the message when it passes.
    """

    __slots__ = ("_windows", "limit", "window_ns")

    def __init__(self, limit: int, window_ns: int) -> None:
        SlidingWindow(limit, window_ns)  # validate once, here
        self.limit = limit
        self.window_ns = window_ns
        self._windows: dict[str, SlidingWindow] = {}

    def check(self, session: str, now_ns: int) -> RejectReason:
        """NONE (and the message is counted) or SESSION_RATE (nothing counted)."""
        window = self._windows.get(session)
        if window is None:
            window = self._windows[session] = SlidingWindow(self.limit, self.window_ns)
        return RejectReason.NONE if window.allow(now_ns) else RejectReason.SESSION_RATE
