"""`AnalyticsSettings`: the `[analytics]` table of the OMS configuration, and loading it from a config file."""

from __future__ import annotations

from os import PathLike
from pathlib import Path
from typing import Annotated

import msgspec

from oms.core.model.instruments import ConfigError, InstrumentRegistry, read_toml

__all__ = ["AnalyticsSettings", "load_analytics_settings", "load_config_instruments"]

_Positive = Annotated[float, msgspec.Meta(gt=0)]
_Mic = Annotated[str, msgspec.Meta(pattern="^[A-Z0-9]{4}$")]  # ISO 10383: four characters, capitals or digits


class AnalyticsSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Where ClickHouse is and how the sink and the reports behave. A misspelt key fails with its name.

    - `dsn`: `http(s)://[user:password@]host:8123` of a ClickHouse server, or `chdb:///abs/path` for the embedded
      engine. `None` (the default): embedded chDB in `data_dir`.
    - `data_dir`: the embedded store's directory, relative to the config file (`<repo>/var/clickhouse` for
      `configs/dev.toml`). Only one process at a time can open an embedded store.
    - `database`: the ClickHouse database holding the tables.
    - `batch_rows` / `batch_interval_s`: the sink inserts when it holds this many rows, or when its oldest row has
      waited this long, whichever comes first.
    - `read_rows`: entries fetched from Redis per poll (spread over the streams).
    - `group` / `consumer`: the Redis consumer group and this sink's consumer name in it. Keep the name stable
      across restarts: a restarted sink first re-reads its own pending entries.
    - `claim_idle_s`: entries pending this long with another consumer (a sink that died under another name) are
      taken over with XAUTOCLAIM.
    - `markout_horizons_s`: markout horizons after each fill.
    - `arrival_max_age_s`: how old the quote (or, failing a two-sided one, the print) behind an order's arrival price
      may be; older, the order has no arrival price (`arrival_source` "none").
    - `fees_bps`: fee per venue in basis points of the fill notional; `default_fee_bps` for other venues.
    - `venue_mics`: the ISO 10383 market identifier code (four capitals or digits) of each venue name, shown by the
      best-execution and routing reports; a venue without one is shown by its name alone, its MIC left empty.
    """

    dsn: str | None = None
    data_dir: str = "../var/clickhouse"
    database: str = "oms"
    batch_rows: Annotated[int, msgspec.Meta(ge=1)] = 10_000
    batch_interval_s: _Positive = 1.0
    read_rows: Annotated[int, msgspec.Meta(ge=1)] = 10_000
    group: Annotated[str, msgspec.Meta(min_length=1)] = "oms-clickhouse"
    consumer: Annotated[str, msgspec.Meta(min_length=1)] = "sink-1"
    claim_idle_s: _Positive = 30.0
    poll_interval_s: _Positive = 0.25
    discover_interval_s: _Positive = 2.0
    markout_horizons_s: list[Annotated[float, msgspec.Meta(ge=0)]] = msgspec.field(
        default_factory=lambda: [1.0, 5.0, 60.0]
    )
    arrival_max_age_s: _Positive = 60.0
    fees_bps: dict[str, float] = msgspec.field(default_factory=dict)
    default_fee_bps: float = 0.0
    venue_mics: dict[str, _Mic] = msgspec.field(default_factory=dict)

    def resolved(self, base: str | PathLike[str]) -> AnalyticsSettings:
        """These settings with `dsn` set: a relative `data_dir` is taken relative to `base` (the config's folder)."""
        if self.dsn is not None:
            return self
        path = Path(self.data_dir)
        if not path.is_absolute():
            path = Path(base) / path
        return msgspec.structs.replace(self, dsn=f"chdb://{path.resolve()}")


def load_analytics_settings(config_path: str | PathLike[str]) -> AnalyticsSettings:
    """The `[analytics]` table of the TOML file at `config_path` (defaults when absent), with its DSN resolved.

    Raises ConfigError naming the file and the field for an unreadable file, invalid TOML or a bad field.
    """
    path = Path(config_path)
    try:
        settings = msgspec.convert(read_toml(path).get("analytics", {}), AnalyticsSettings)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{path}: analytics: {exc}") from exc
    return settings.resolved(path.parent)


def load_config_instruments(config_path: str | PathLike[str]) -> InstrumentRegistry:
    """The instruments the OMS config at `config_path` names (its `instruments` key, relative to the file)."""
    path = Path(config_path)
    name = read_toml(path).get("instruments", "instruments.toml")
    return InstrumentRegistry.load(path.parent / str(name))
