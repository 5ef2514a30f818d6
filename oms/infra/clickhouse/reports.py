"""TCA and best-execution reports: the SQL in `sql/reports/*.sql`, run with named parameters, and their rendering.

Each report is one `.sql` file whose only placeholders are ClickHouse query parameters (`{name:Type}`), so the same
file runs from clickhouse-client (`--param_name=value`). The functions here fill the parameters, run the query and
return a `Report` (column names and rows); `render` prints it as a table, CSV or JSON.

Sign convention (all `*_bps` columns): a cost, positive when the execution was worse than its benchmark, for buys and
sells alike: side * (price - benchmark) / benchmark * 1e4 with side = +1 for a buy and -1 for a sell. The SQL files'
headers define each benchmark; `docs/compliance.md` explains them.

Failures are `AnalyticsError`s with a one-line message: `MissingTable` when the database lacks the schema,
`ReportEmpty` for an unknown order id or a window without data, `AnalyticsError` for anything else ClickHouse refused.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from clickhouse_connect.driver.exceptions import Error as ClickHouseDriverError

from oms.infra.clickhouse.clickhouse import SQL_DIR, AnalyticsError, Client, MissingTable, error_message
from oms.infra.clickhouse.settings import AnalyticsSettings

__all__ = [
    "FOREVER_NS",
    "REPORT_SQL",
    "Report",
    "ReportEmpty",
    "best_execution",
    "format_ns",
    "market_buckets",
    "render",
    "routing",
    "sql_text",
    "tca_orders",
    "tca_parents",
    "tca_parents_summary",
    "tca_summary",
]

REPORTS_DIR = SQL_DIR / "reports"
REPORT_SQL = {"tca": "tca_orders.sql", "buckets": "buckets.sql", "best-ex": "best_ex.sql", "routing": "routing.sql"}
FOREVER_NS = 2**63 - 1
Format = Literal["table", "csv", "json"]
_MISSING = ("UNKNOWN_TABLE", "UNKNOWN_DATABASE")


class ReportEmpty(AnalyticsError):
    """The report found nothing: an unknown order id, or no data in the window and filters asked for."""


@dataclass(frozen=True)
class Report:
    """A report's result: its name, column names and rows (floats for prices and figures, ints for ns times)."""

    name: str
    columns: list[str]
    rows: list[tuple[Any, ...]]

    def records(self) -> list[dict[str, Any]]:
        """The rows as dicts keyed by column name."""
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


def sql_text(report: str) -> str:
    """The SQL of a report by its name in `REPORT_SQL` (KeyError for another name)."""
    return (REPORTS_DIR / REPORT_SQL[report]).read_text()


def format_ns(ns: int) -> str:
    """ns since the epoch as ISO 8601 UTC with microseconds (`2026-01-01T09:30:00.000001Z`)."""
    if ns >= FOREVER_NS:
        return "end of time"
    return datetime.fromtimestamp(ns // 1000 / 1e6, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _window(start_ns: int, end_ns: int) -> str:
    if start_ns <= 0 and end_ns >= FOREVER_NS:
        return "at any time"
    return f"between {format_ns(start_ns)} and {format_ns(end_ns)}"


def _filters(**named: Any) -> str:
    given = [f"{k} {v}" for k, v in named.items() if v]
    return f" for {', '.join(given)}" if given else ""


def _run(client: Client, report: str, params: dict[str, Any]) -> tuple[list[str], list[tuple[Any, ...]]]:
    try:
        result = client.query(sql_text(report), parameters=params)
    except ClickHouseDriverError as exc:
        message = error_message(exc)
        if any(code in message for code in _MISSING):
            named = re.search(r"identifier '([\w.]+)'", message) or re.search(r"Table `?([\w.`]+?)`? does", message)
            what = f"table {named.group(1)} is missing" if named else message
            raise MissingTable(
                f"report {report}: {what}: database {client.database} has no OMS schema (the sink creates it when it "
                "starts; is this the right dsn and database?)"
            ) from None
        raise AnalyticsError(f"report {report}: {message}") from None
    return list(result.column_names), [tuple(r) for r in result.result_rows]


def _horizon_name(seconds: float) -> str:
    return f"markout_{seconds:g}s_bps"


def tca_orders(
    client: Client,
    *,
    start_ns: int = 0,
    end_ns: int = FOREVER_NS,
    account: str = "",
    symbol: str = "",
    order_id: int = 0,
    settings: AnalyticsSettings | None = None,
) -> Report:
    """Per-order TCA of the orders accepted in [start_ns, end_ns), optionally one account, symbol or order.

    Markout columns follow `settings.markout_horizons_s`; fees come from `settings.fees_bps` /
    `default_fee_bps`. Raises ReportEmpty when no order matches (naming the order id when one was given).
    """
    settings = settings or AnalyticsSettings()
    horizons = list(dict.fromkeys(settings.markout_horizons_s))
    venues = sorted(settings.fees_bps)
    params = {
        "from_ns": start_ns, "to_ns": end_ns, "account": account, "symbol": symbol, "order_id": order_id,
        "fee_venues": venues, "fee_bps": [float(settings.fees_bps[v]) for v in venues],
        "default_fee_bps": float(settings.default_fee_bps), "horizons_ns": [round(h * 1e9) for h in horizons],
        "arrival_max_age_ns": round(settings.arrival_max_age_s * 1e9),
    }  # fmt: skip
    columns, rows = _run(client, "tca", params)
    if not rows:
        if order_id:
            raise ReportEmpty(
                f"order {order_id} not found: no accepted order with that id {_window(start_ns, end_ns)}"
                f"{_filters(account=account, symbol=symbol)} in database {client.database}"
            )
        raise ReportEmpty(
            f"no orders accepted {_window(start_ns, end_ns)}{_filters(account=account, symbol=symbol)} "
            f"in database {client.database}"
        )
    at = columns.index("markouts_bps")
    names = [_horizon_name(h) for h in horizons]
    out_rows = []
    for row in rows:
        marks = list(row[at]) if row[at] else []
        marks += [None] * (len(horizons) - len(marks))
        out_rows.append((*row[:at], *marks, *row[at + 1 :]))
    return Report("tca", [*columns[:at], *names, *columns[at + 1 :]], out_rows)


def tca_summary(orders: Report) -> Report:
    """Per account, symbol and side, from a `tca_orders` report, every figure computed from totals (never an average
    of per-order figures): orders, orders with fills, executed quantity, average price (Σ notional / Σ quantity),
    slippage against arrival and interval VWAP as the cost of the whole executed notional against the benchmark value
    of the same quantities (Σ side * (notional - qty * benchmark) / Σ qty * benchmark, bps, over the orders that have
    the benchmark), and the implementation shortfall and its split as Perold defines it for a portfolio: total
    shortfall over total paper value (Σ shortfall / Σ paper notional, bps, over the orders with an arrival price,
    unfilled ones included). NULL where no order has the benchmark."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for rec in orders.records():
        groups.setdefault((rec["account"], rec["symbol"], rec["side"]), []).append(rec)
    parts = ("is_delay_bps", "is_realized_bps", "is_opportunity_bps", "is_fees_bps", "is_total_bps")
    columns = ["account", "symbol", "side", "orders", "filled_orders", "filled_qty", "avg_px",
               "slippage_arrival_bps", "slippage_vwap_bps", *parts]  # fmt: skip
    rows = []
    for (account, symbol, side), recs in sorted(groups.items()):
        sgn = 1 if side == "BUY" else -1
        filled = [r for r in recs if r["filled_qty"]]
        qty = sum(r["filled_qty"] for r in filled)
        avg_px = sum(r["filled_qty"] * r["avg_px"] for r in filled) / qty if qty else None
        slippage = [_against(filled, sgn, benchmark) for benchmark in ("arrival_px", "vwap")]
        papers = [r for r in recs if _number(r["paper_notional"]) and r["paper_notional"]]
        paper = sum(r["paper_notional"] for r in papers)
        shortfall = [sum(r[k] * r["paper_notional"] for r in papers) / paper if paper else None for k in parts]
        rows.append((account, symbol, side, len(recs), len(filled), qty, avg_px, *slippage, *shortfall))
    return Report("tca-summary", columns, rows)


def _number(value: Any) -> bool:
    return value is not None and math.isfinite(value)


def _against(filled: list[dict[str, Any]], sgn: int, benchmark: str) -> float | None:
    """Σ sgn * (notional - qty * benchmark) / Σ qty * benchmark * 1e4 over the filled orders with the benchmark."""
    have = [r for r in filled if _number(r[benchmark])]
    value = sum(r["filled_qty"] * r[benchmark] for r in have)
    notional = sum(r["filled_qty"] * r["avg_px"] for r in have)
    return sgn * (notional - value) / value * 1e4 if value else None


def market_buckets(
    client: Client,
    *,
    start_ns: int = 0,
    end_ns: int | None = None,
    bucket_s: float = 60.0,
    symbol: str = "",
    account: str = "",
) -> Report:
    """Per symbol and time bucket in [start_ns, end_ns): market VWAP/TWAP and volume, own VWAP and quantity.

    `end_ns` defaults to now. Buckets are aligned on multiples of `bucket_s` since the epoch; only buckets with market
    trades or own fills are listed. Raises ValueError for a bucket under 1 ms, ReportEmpty when nothing traded.
    """
    if bucket_s < 0.001:
        raise ValueError(f"bucket must be at least 1 ms, not {bucket_s} s")
    end_ns = time.time_ns() if end_ns is None else end_ns
    params = {
        "from_ns": start_ns, "to_ns": end_ns, "bucket_ns": round(bucket_s * 1e9), "symbol": symbol,
        "account": account,
    }  # fmt: skip
    columns, rows = _run(client, "buckets", params)
    if not rows:
        raise ReportEmpty(
            f"no market trades or fills {_window(start_ns, end_ns)}{_filters(symbol=symbol, account=account)} "
            f"in database {client.database}"
        )
    return Report("buckets", columns, rows)


def _mic_params(settings: AnalyticsSettings) -> dict[str, Any]:
    """The `mic_venues` / `mic_codes` query parameters: the configured venues and their MICs, in the same order."""
    venues = sorted(settings.venue_mics)
    return {"mic_venues": venues, "mic_codes": [settings.venue_mics[v] for v in venues]}


def best_execution(
    client: Client,
    *,
    start_ns: int = 0,
    end_ns: int = FOREVER_NS,
    account: str = "",
    settings: AnalyticsSettings | None = None,
) -> Report:
    """RTS 28 (Delegated Regulation (EU) 2017/576, Annex II, Table 1) over the executions in [start_ns, end_ns): per
    class of instrument, the top five venues by notional with their MIC (from `settings.venue_mics`, '' for a venue
    without one), shares of volume and of orders, the shares of passive, aggressive and directed orders, and the
    class's low-activity flag; then the counts behind them (`sql/reports/best_ex.sql` defines each column).

    Raises ReportEmpty when nothing was executed in the window (for the account, when one is given).
    """
    settings = settings or AnalyticsSettings()
    params = {"from_ns": start_ns, "to_ns": end_ns, "account": account, **_mic_params(settings)}
    columns, rows = _run(client, "best-ex", params)
    if not rows:
        raise ReportEmpty(
            f"no executions {_window(start_ns, end_ns)}{_filters(account=account)} in database {client.database}"
        )
    return Report("best-ex", columns, rows)


def routing(
    client: Client,
    *,
    start_ns: int = 0,
    end_ns: int = FOREVER_NS,
    account: str = "",
    settings: AnalyticsSettings | None = None,
) -> Report:
    """SEC Rule 606(a)(1) (17 CFR 242.606) over the orders routed (accepted with a venue) in [start_ns, end_ns): per
    calendar month (UTC) and class of instrument, the shares of non-directed orders and of the four order categories
    (market, marketable limit, non-marketable limit, other); per venue in the rule's order (the ten that received the
    most orders, and any with 5 % or more), its MIC, the share of each category routed there and the net payment
    received (positive) or paid (negative) for each category, in total and in cents per hundred shares executed, from
    `settings.fees_bps` / `default_fee_bps`; then the counts behind them (`sql/reports/routing.sql`). Marketability
    is judged against the symbol's latest quote before acceptance within `settings.arrival_max_age_s`.

    Raises ReportEmpty when no order was routed in the window (for the account, when one is given).
    """
    settings = settings or AnalyticsSettings()
    venues = sorted(settings.fees_bps)
    params = {
        "from_ns": start_ns, "to_ns": end_ns, "account": account, **_mic_params(settings),
        "fee_venues": venues, "fee_bps": [float(settings.fees_bps[v]) for v in venues],
        "default_fee_bps": float(settings.default_fee_bps),
        "quote_max_age_ns": round(settings.arrival_max_age_s * 1e9),
    }  # fmt: skip
    columns, rows = _run(client, "routing", params)
    if not rows:
        raise ReportEmpty(
            f"no orders routed {_window(start_ns, end_ns)}{_filters(account=account)} in database {client.database}"
        )
    return Report("routing", columns, rows)


# -- rendering --


def _cell(column: str, value: Any) -> str:
    """A value as the table shows it: ns times as ISO UTC, bps and percentages with 2 decimals, NULL as '-'."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if column.endswith("_ns") and isinstance(value, int):
        return format_ns(value)
    if isinstance(value, float):
        if column.endswith("_bps") or column.startswith("pct_"):
            text = f"{value:.2f}"
        elif column in ("fill_rate", "participation"):
            text = f"{value:.4f}"
        else:
            text = f"{value:.10g}"
        return text[1:] if text.startswith("-") and not text.strip("-0.") else text  # no "-0.00"
    return str(value)


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def render(report: Report, fmt: Format = "table") -> str:
    """The report as an aligned text table (one row: one `column  value` line each), CSV or JSON (a list of objects,
    NULL and non-finite numbers as null). Raises ValueError for another format."""
    if fmt == "json":
        return json.dumps(
            [{k: _json_value(v) for k, v in rec.items()} for rec in report.records()], indent=2, allow_nan=False
        )
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(report.columns)
        writer.writerows([["" if v is None else v for v in row] for row in report.rows])
        return buf.getvalue().rstrip("\n")
    if fmt != "table":
        raise ValueError(f"unknown format {fmt!r} (table, csv or json)")
    cells = [[_cell(c, v) for c, v in zip(report.columns, row, strict=True)] for row in report.rows]
    if len(cells) == 1:
        width = max(len(c) for c in report.columns)
        return "\n".join(f"{c.ljust(width)}  {v}" for c, v in zip(report.columns, cells[0], strict=True))
    return _table(report.columns, cells)


def _table(columns: Sequence[str], cells: list[list[str]]) -> str:
    widths = [max(len(col), *(len(r[i]) for r in cells)) for i, col in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for row in cells:
        lines.append("  ".join(v.rjust(w) if _numeric(v) else v.ljust(w) for v, w in zip(row, widths, strict=True)))
    return "\n".join(line.rstrip() for line in lines)


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# -- algo parents --

REPORT_SQL["tca-parents"] = "tca_parents.sql"
PARENT_KINDS = ("TWAP", "VWAP", "POV", "ICEBERG", "BRACKET")
_SHORTFALL = ("is_delay_bps", "is_realized_bps", "is_opportunity_bps", "is_fees_bps", "is_total_bps")


def tca_parents(
    client: Client,
    *,
    start_ns: int = 0,
    end_ns: int = FOREVER_NS,
    account: str = "",
    symbol: str = "",
    kind: str = "",
    parent_id: str = "",
    settings: AnalyticsSettings | None = None,
) -> Report:
    """Per-parent TCA of the algo parents accepted in [start_ns, end_ns), optionally one account, symbol, kind
    (`PARENT_KINDS`, any case) or parent (see `sql/reports/tca_parents.sql`): each parent measured as one order
    against its own arrival, its executions the fills of its children on its side.

    Fees come from `settings.fees_bps` / `default_fee_bps`. Raises ValueError for an unknown kind, ReportEmpty when
    no parent matches (naming the parent id when one was given).
    """
    settings = settings or AnalyticsSettings()
    if kind and kind.upper() not in PARENT_KINDS:
        raise ValueError(f"unknown parent kind {kind!r} ({', '.join(PARENT_KINDS)})")
    venues = sorted(settings.fees_bps)
    params = {
        "from_ns": start_ns, "to_ns": end_ns, "account": account, "symbol": symbol, "kind": kind.upper(),
        "parent_id": parent_id, "fee_venues": venues, "fee_bps": [float(settings.fees_bps[v]) for v in venues],
        "default_fee_bps": float(settings.default_fee_bps),
        "arrival_max_age_ns": round(settings.arrival_max_age_s * 1e9),
    }  # fmt: skip
    columns, rows = _run(client, "tca-parents", params)
    if not rows:
        filters = _filters(account=account, symbol=symbol, kind=kind.upper())
        if parent_id:
            raise ReportEmpty(
                f"parent {parent_id} not found: no accepted parent with that id {_window(start_ns, end_ns)}{filters} "
                f"in database {client.database}"
            )
        raise ReportEmpty(f"no parents accepted {_window(start_ns, end_ns)}{filters} in database {client.database}")
    return Report("tca-parents", columns, rows)


def tca_parents_summary(parents: Report, by: Literal["kind", "account"] = "kind") -> Report:
    """Per algo kind (`by="kind"`) or per kind and account (`by="account"`), from a `tca_parents` report, every
    figure computed from totals, never an average of per-parent figures: parents, parents with fills, executed
    notional, fees, slippage against the parents' arrival and interval VWAP as the cost of the whole executed
    notional against the benchmark value of the same quantities (Σ side * (notional - qty * benchmark) /
    Σ qty * benchmark, bps, over the filled parents that have the benchmark), and Perold's implementation shortfall
    and its split for the portfolio of parents (Σ shortfall / Σ paper value, bps, over the parents with an arrival
    price, unfilled ones included). Amounts of different symbols are added as they are (one currency is assumed).
    NULL where no parent has the benchmark. Raises ValueError for another `by`."""
    if by not in ("kind", "account"):
        raise ValueError(f"unknown roll-up {by!r} (kind or account)")
    keys = ("kind",) if by == "kind" else ("kind", "account")
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for rec in parents.records():
        groups.setdefault(tuple(rec[k] for k in keys), []).append(rec)
    columns = [*keys, "parents", "filled_parents", "filled_notional", "fees", "slippage_arrival_bps",
               "slippage_vwap_bps", *_SHORTFALL]  # fmt: skip
    rows = []
    for key, recs in sorted(groups.items()):
        filled = [r for r in recs if r["filled_qty"]]
        notional = sum(r["filled_qty"] * r["avg_px"] for r in filled)
        slippage = [_parents_against(filled, benchmark) for benchmark in ("arrival_px", "vwap")]
        papers = [r for r in recs if _number(r["paper_notional"]) and r["paper_notional"]]
        paper = sum(r["paper_notional"] for r in papers)
        shortfall = [sum(r[k] * r["paper_notional"] for r in papers) / paper if paper else None for k in _SHORTFALL]
        fees = sum(r["fees"] for r in recs)
        rows.append((*key, len(recs), len(filled), notional, fees, *slippage, *shortfall))
    return Report(f"tca-parents-by-{by}", columns, rows)


def _parents_against(filled: list[dict[str, Any]], benchmark: str) -> float | None:
    """Σ side * (notional - qty * benchmark) / Σ qty * benchmark * 1e4 over the filled parents with the benchmark,
    each parent with its own side."""
    have = [r for r in filled if _number(r[benchmark])]
    value = sum(r["filled_qty"] * r[benchmark] for r in have)
    cost = sum((1 if r["side"] == "BUY" else -1) * r["filled_qty"] * (r["avg_px"] - r[benchmark]) for r in have)
    return cost / value * 1e4 if value else None
