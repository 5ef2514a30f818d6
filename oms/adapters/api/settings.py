"""`ApiSettings`: the `[api]` table of the OMS configuration."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from oms.adapters.api.keys import DEFAULT_KEYS

__all__ = ["ApiSettings"]


class ApiSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Where the API listens, whose keys it accepts, how it authenticates and how fast a key may call it.

    `signing`: "optional" accepts `X-API-Key` or a signed request (a signed request is always verified);
    "required" refuses unsigned requests. `rate_limit` requests per `rate_window_ms` per key (sliding window),
    unless the key's own `rate_limit` says otherwise. `max_clock_skew_s`: how old (or how far ahead) a signed
    request's timestamp may be.

    VWAP `"history"` profiles read ClickHouse at `profile_dsn` (a server URL, or `chdb:///absolute/path` of an
    embedded store that no other process holds open: the sink of `oms serve` holds its own), database
    `profile_database`: the same time of day on the `profile_lookback_days` previous days, at least
    `profile_min_days` of which must have traded (`oms.infra.clickhouse.profile`). Unset: no history, and a VWAP asking
    for it gets its fallback profile, with the reason in the answer.
    """

    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 8080  # 0: any free port (ApiServer.port tells which)
    keys: str = str(DEFAULT_KEYS)
    signing: Literal["optional", "required"] = "optional"
    rate_limit: Annotated[int, msgspec.Meta(ge=1)] = 100
    rate_window_ms: Annotated[int, msgspec.Meta(ge=1)] = 1000
    max_clock_skew_s: Annotated[int, msgspec.Meta(ge=1)] = 30
    idempotency_ttl_s: Annotated[int, msgspec.Meta(ge=1)] = 86_400
    executions_kept: Annotated[int, msgspec.Meta(ge=1)] = 100_000  # fills kept per account for GET executions
    profile_dsn: str | None = None
    profile_database: str = "oms"
    profile_lookback_days: Annotated[int, msgspec.Meta(ge=1, le=366)] = 20
    profile_min_days: Annotated[int, msgspec.Meta(ge=1, le=366)] = 1
