"""Intraday volume profiles from ClickHouse history: the bucket weights a VWAP parent spreads its quantity over.

For a VWAP window [start_ns, end_ns) cut into `buckets` equal buckets, the history is the same window on each of the
`lookback_days` previous days ([start - d * DAY, end - d * DAY) for d = 1 .. lookback_days, so a window that
crosses midnight UTC works too). Each day that traded in its window counts once: its volume per bucket over its own
window volume, and the profile is the mean of those shares over the days, as integer weights in parts per million
(summing to exactly 1,000,000). Days without a trade in the window (weekends, holidays) are left out.

Volume comes from the tape (`market_trades`: every venue print, the market's volume, which is what a VWAP follows);
when the tape has no history for the symbol, from our own fills (`executions`: each internal cross counted once, by
its aggressive side). Both are read with FINAL, so a row the sink inserted twice counts once.

`intraday_profile` and `history_profile` run on a clickhouse-connect client; `ClickHouseProfiles` is the adapter
the REST API holds: it opens the DSN for each call and never raises: a profile it cannot compute comes back empty
with the reason (no history, too few days, a window longer than a day, ClickHouse unavailable). `profile_weights`,
the pure part, and the `ProfileSource` port are in `oms.core.algos.profiles`.
"""

from __future__ import annotations

from clickhouse_connect.driver.exceptions import Error as ClickHouseDriverError

from oms.core.algos.profiles import WEIGHT_TOTAL, ProfileSource, VolumeProfile, profile_weights
from oms.infra.clickhouse.clickhouse import AnalyticsError, Client, MissingTable, connect, describe, error_message

__all__ = [
    "DAY_NS",
    "PROFILE_TABLES",
    "WEIGHT_TOTAL",
    "ClickHouseProfiles",
    "ProfileSource",
    "VolumeProfile",
    "history_profile",
    "intraday_profile",
    "profile_weights",
]

DAY_NS = 86_400 * 1_000_000_000
MAX_BUCKETS = 10_000

# (day, bucket, volume) per day and bucket of the windows shifted by whole days. `off` is the trade's offset into
# its day's window; the day index is negative (-1 = the day before start_ns). A filter per table (identifiers
# cannot be query parameters, so the table comes from this fixed list).
_SQL = """
SELECT intDiv(ts_ns - {{start_ns:Int64}} - off, {{day_ns:Int64}}) AS day,
       intDiv(off * {{buckets:Int64}}, {{span_ns:Int64}}) AS bucket,
       sum(qty) AS volume
FROM (
    SELECT ts_ns, qty, positiveModulo(ts_ns - {{start_ns:Int64}}, {{day_ns:Int64}}) AS off
    FROM {table} FINAL
    WHERE symbol = {{symbol:String}}
      AND ts >= fromUnixTimestamp64Nano({{from_ns:Int64}}) AND ts < fromUnixTimestamp64Nano({{to_ns:Int64}})
      AND ts_ns >= {{from_ns:Int64}} AND ts_ns < {{to_ns:Int64}}{where}
)
WHERE off < {{span_ns:Int64}}
GROUP BY day, bucket
HAVING volume > 0
ORDER BY day, bucket
"""
PROFILE_TABLES = {
    "market_trades": "",
    "executions": " AND (liquidity = 'AGGRESSIVE' OR contra_order_id IS NULL)",
}


def _check_window(start_ns: int, end_ns: int, buckets: int, lookback_days: int) -> str:
    if not 1 <= buckets <= MAX_BUCKETS:
        return f"buckets {buckets} must be within 1..{MAX_BUCKETS}"
    if end_ns <= start_ns:
        return "the window is empty (end_ns not after start_ns)"
    if end_ns - start_ns > DAY_NS:
        return "the window is longer than a day: an intraday profile does not apply"
    if lookback_days < 1:
        return f"lookback_days {lookback_days} must be >= 1"
    return ""


def intraday_profile(
    client: Client,
    symbol: str,
    start_ns: int,
    end_ns: int,
    buckets: int,
    *,
    lookback_days: int = 20,
    min_days: int = 1,
    table: str = "market_trades",
) -> VolumeProfile:
    """The profile of `symbol` from one table (`market_trades` or `executions`), see the module docstring.

    Empty, with the reason, when the window is empty or longer than a day, or fewer than `min_days` days traded in
    it. Raises MissingTable when the database lacks the table, AnalyticsError for anything else ClickHouse refused,
    ValueError for a table not in PROFILE_TABLES.
    """
    if table not in PROFILE_TABLES:
        raise ValueError(f"no volume profile from table {table!r} (known: {', '.join(PROFILE_TABLES)})")
    problem = _check_window(start_ns, end_ns, buckets, lookback_days)
    if problem:
        return VolumeProfile([], 0, 0.0, table, problem)
    span = end_ns - start_ns
    params = {
        "symbol": symbol,
        "start_ns": start_ns,
        "span_ns": span,
        "buckets": buckets,
        "day_ns": DAY_NS,
        "from_ns": start_ns - lookback_days * DAY_NS,
        "to_ns": end_ns - DAY_NS,
    }
    sql = _SQL.format(table=table, where=PROFILE_TABLES[table])
    try:
        result = client.query(sql, parameters=params)
    except ClickHouseDriverError as exc:
        message = error_message(exc)
        if "UNKNOWN_TABLE" in message or "UNKNOWN_DATABASE" in message:
            raise MissingTable(f"volume profile: {message}: database {client.database} has no OMS schema") from None
        raise AnalyticsError(f"volume profile from {table}: {message}") from None
    rows = [(int(d), int(b), float(v)) for d, b, v in result.result_rows]
    weights, days, volume = profile_weights(rows, buckets)
    if days < max(min_days, 1):
        found = "no trade" if not days else f"trades on {days} day{'s' if days > 1 else ''} only"
        reason = (
            f"{found} of {symbol} in {table} in this window on the {lookback_days} days before "
            f"(at least {max(min_days, 1)} needed)"
        )
        return VolumeProfile([], days, volume, table, reason)
    return VolumeProfile(weights, days, volume, table)


def history_profile(
    client: Client,
    symbol: str,
    start_ns: int,
    end_ns: int,
    buckets: int,
    *,
    lookback_days: int = 20,
    min_days: int = 1,
) -> VolumeProfile:
    """From the tape, else from our own fills; empty with both reasons when neither has enough history."""
    tape = intraday_profile(client, symbol, start_ns, end_ns, buckets, lookback_days=lookback_days, min_days=min_days)
    if tape.found or _check_window(start_ns, end_ns, buckets, lookback_days):
        return tape
    fills = intraday_profile(
        client, symbol, start_ns, end_ns, buckets, lookback_days=lookback_days, min_days=min_days, table="executions"
    )
    if fills.found:
        return fills
    return fills._replace(reason=f"{tape.reason}; {fills.reason}")


class ClickHouseProfiles:
    """A ProfileSource over a ClickHouse DSN (a server URL, or `chdb:///path` for an embedded store that no other
    process holds open). It connects for each profile and closes again, so it holds nothing between calls; every
    failure becomes an empty profile whose reason names it."""

    def __init__(self, dsn: str, database: str = "oms", lookback_days: int = 20, min_days: int = 1) -> None:
        self.dsn = dsn
        self.database = database
        self.lookback_days = lookback_days
        self.min_days = min_days

    def profile(self, symbol: str, start_ns: int, end_ns: int, buckets: int) -> VolumeProfile:
        problem = _check_window(start_ns, end_ns, buckets, self.lookback_days)
        if problem:
            return VolumeProfile([], 0, 0.0, "", problem)
        try:
            client = connect(self.dsn, self.database)
        except (AnalyticsError, ValueError) as exc:
            return VolumeProfile([], 0, 0.0, "", f"ClickHouse history unavailable: {exc}")
        try:
            return history_profile(
                client, symbol, start_ns, end_ns, buckets, lookback_days=self.lookback_days, min_days=self.min_days
            )
        except AnalyticsError as exc:
            return VolumeProfile([], 0, 0.0, "", f"ClickHouse history unavailable at {describe(self.dsn)}: {exc}")
        finally:
            client.close()
