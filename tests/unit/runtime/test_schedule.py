"""The trading day's close: wall-clock time in the configured zone, daylight saving included."""

from __future__ import annotations

import datetime as dt

import msgspec
import pytest

from oms.core.model.instruments import ConfigError
from oms.runtime.schedule import ScheduleSettings, next_close

NY = ScheduleSettings(timezone="America/New_York", day_close="16:00")


def ns(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).timestamp()) * 1_000_000_000


@pytest.mark.parametrize(
    ("now", "close"),
    [
        ("2026-12-07T15:00:00+00:00", "2026-12-07T21:00:00+00:00"),  # winter: 16:00 EST is 21:00 UTC, same day
        ("2026-12-07T21:00:00+00:00", "2026-12-08T21:00:00+00:00"),  # at the close: the next one
        ("2026-07-01T12:00:00+00:00", "2026-07-01T20:00:00+00:00"),  # summer: 16:00 EDT is 20:00 UTC
        ("2026-03-07T22:00:00+00:00", "2026-03-08T20:00:00+00:00"),  # across the spring change: 23 h later
    ],
)
def test_the_next_close_is_the_wall_clock_close_in_the_zone(now: str, close: str) -> None:
    assert next_close(NY, ns(now)) == ns(close)


def test_an_unknown_zone_and_a_malformed_close_are_refused_by_name() -> None:
    with pytest.raises(ConfigError, match="Mars/Olympus"):
        next_close(ScheduleSettings(timezone="Mars/Olympus"), 0)
    with pytest.raises(msgspec.ValidationError, match="day_close"):
        msgspec.convert({"day_close": "4pm"}, ScheduleSettings)
