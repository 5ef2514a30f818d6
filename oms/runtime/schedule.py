"""The trading day's clock: when DAY orders end (`[schedule]` in the config; GTD orders end at their own time).

    [schedule]
    timezone = "America/New_York"   # an IANA zone: the close is wall-clock time there, daylight saving included
    day_close = "16:00"             # HH:MM: every working DAY order expires then, every day

`oms serve` checks the clock every 50 ms (`OmsApp`): GTD orders whose ExpireTime has come are expired
(`OrderManager.expire_due`), and at the close every DAY order (`OrderManager.end_of_day`), each reported as
Expired (ExecType C) and journaled like any other event.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from oms.core.model.instruments import ConfigError

__all__ = ["ScheduleSettings", "next_close"]


class ScheduleSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`[schedule]`: the zone the close is given in and the close itself (HH:MM, 24 h)."""

    timezone: str = "America/New_York"
    day_close: Annotated[str, msgspec.Meta(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")] = "16:00"

    def zone(self) -> ZoneInfo:
        """The zone; ConfigError naming it when the system does not know it."""
        try:
            return ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"[schedule] timezone {self.timezone!r} is not a known IANA time zone") from None


def next_close(settings: ScheduleSettings, now_ns: int) -> int:
    """The first close strictly after `now_ns` (ns since the epoch): today's at `day_close` in the zone if it is
    still to come, else tomorrow's."""
    zone = settings.zone()
    hour, minute = (int(x) for x in settings.day_close.split(":"))
    now = dt.datetime.fromtimestamp(now_ns / 1e9, zone)
    close = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if close <= now:
        close = (now + dt.timedelta(days=1)).replace(hour=hour, minute=minute, second=0, microsecond=0)
    return int(close.timestamp()) * 1_000_000_000
