from __future__ import annotations

import pytest

from oms.core.model.enums import RejectReason
from risk.throttle import SessionThrottle, SlidingWindow

MS = 1_000_000


def test_flood_of_n_plus_one_in_the_window_denies_the_last() -> None:
    window = SlidingWindow(5, 1000 * MS)
    results = [window.allow(t * MS) for t in range(6)]
    assert results == [True] * 5 + [False]


def test_window_slides_the_oldest_event_out() -> None:
    window = SlidingWindow(2, 1000 * MS)
    assert window.allow(0) and window.allow(10 * MS)
    assert not window.allow(999 * MS)
    assert window.allow(1000 * MS)  # (0, 1000] no longer holds the event at 0
    assert not window.allow(1009 * MS)
    assert window.allow(1010 * MS)


def test_would_allow_changes_nothing() -> None:
    window = SlidingWindow(1, 100)
    assert window.would_allow(0) and window.would_allow(0)
    window.record(0)
    assert not window.would_allow(50)
    assert window.times() == [0]


def test_denied_events_are_not_counted() -> None:
    window = SlidingWindow(1, 100)
    assert window.allow(0)
    assert not window.allow(99)
    assert window.allow(100)


def test_timestamps_going_backwards_are_clamped() -> None:
    window = SlidingWindow(2, 100)
    window.record(100)
    window.record(50)
    assert window.times() == [100, 100]
    assert not window.would_allow(150)


def test_count_and_rebuild_from_times() -> None:
    window = SlidingWindow(3, 100, [1, 2, 3, 4])
    assert window.times() == [2, 3, 4]
    assert window.count(102) == 2  # (2, 102] holds 3 and 4
    assert SlidingWindow(3, 100, window.times()).times() == window.times()


@pytest.mark.parametrize(("limit", "window_ns"), [(0, 1), (1, 0)])
def test_bad_parameters_are_refused(limit: int, window_ns: int) -> None:
    with pytest.raises(ValueError):
        SlidingWindow(limit, window_ns)


def test_session_throttle_keeps_one_window_per_session() -> None:
    throttle = SessionThrottle(2, 1000)
    assert [throttle.check("A", t) for t in (0, 1, 2)] == [RejectReason.NONE] * 2 + [RejectReason.SESSION_RATE]
    assert throttle.check("B", 2) is RejectReason.NONE
    assert throttle.check("A", 1000) is RejectReason.NONE
