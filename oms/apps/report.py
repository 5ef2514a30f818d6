"""`oms report ...`: the TCA and best-execution reports on the command line (wired into `oms.apps.cli`)."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

import msgspec
from clickhouse_connect.driver.exceptions import Error as ClickHouseDriverError

from oms.apps.paths import default_config
from oms.core.model.instruments import ConfigError
from oms.infra.clickhouse.clickhouse import AnalyticsError, error_message
from oms.infra.clickhouse.query import check_read_only, connect_for_reading
from oms.infra.clickhouse.reports import (
    FOREVER_NS,
    PARENT_KINDS,
    REPORT_SQL,
    Report,
    best_execution,
    market_buckets,
    render,
    routing,
    tca_orders,
    tca_parents,
    tca_parents_summary,
)
from oms.infra.clickhouse.settings import AnalyticsSettings, load_analytics_settings

__all__ = ["add_report_command", "add_sql_command", "parse_time", "run_report", "run_sql"]

DEFAULT_CONFIG = default_config()  # configs/dev.toml of the checkout, or ./configs, or the packaged copy


def parse_time(text: str) -> int:
    """ns since the epoch from an integer (ns) or ISO 8601 text (`2026-01-02T09:30:00`, UTC unless it has an offset).

    Raises argparse.ArgumentTypeError for anything else.
    """
    if text.isdigit():
        return int(text)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither ns since the epoch nor an ISO 8601 time") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp()) * 1_000_000_000 + when.microsecond * 1000


def add_report_command(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add `report` and its reports (tca, buckets, best-ex, routing, tca-parents) to the `oms` command's
    subparsers."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", default=str(DEFAULT_CONFIG), help="OMS config; its [analytics] table says where")
    common.add_argument("--dsn", help="ClickHouse: chdb:///abs/path or http://host:8123 (overrides the config)")
    common.add_argument("--database", help="ClickHouse database (overrides the config; default oms)")
    common.add_argument("--format", choices=("table", "csv", "json"), default="table", help="(default: table)")
    common.add_argument("--from", dest="start", type=parse_time, default=0, help="ns or ISO 8601 UTC (default: start)")
    common.add_argument("--to", dest="end", type=parse_time, default=None, help="ns or ISO 8601 UTC, exclusive")
    common.add_argument("--account", default="", help="one account only")

    report = commands.add_parser(
        "report",
        help="TCA and best-execution reports from ClickHouse",
        description="Run one of the reports in oms/infra/clickhouse/sql/reports/ against ClickHouse and print it. "
        "Every *_bps figure is a cost: positive when the execution was worse than its benchmark, for buys and sells.",
    )
    kinds = report.add_subparsers(dest="report", metavar="REPORT", required=True)
    tca = kinds.add_parser(
        "tca",
        parents=[common],
        help="per order: arrival, VWAP, TWAP, slippage, implementation shortfall, participation, markouts",
        description=f"Per-order TCA of the orders accepted in the window ({REPORT_SQL['tca']}).",
    )
    tca.add_argument("--order-id", type=int, default=0, help="one order only")
    tca.add_argument("--symbol", default="", help="one symbol only")
    buckets = kinds.add_parser(
        "buckets",
        parents=[common],
        help="per symbol and time bucket: market VWAP/TWAP and volume, own VWAP and quantity",
        description=f"Market and own VWAP/TWAP per symbol and bucket ({REPORT_SQL['buckets']}).",
    )
    buckets.add_argument("--symbol", default="", help="one symbol only")
    buckets.add_argument("--bucket", type=float, default=60.0, help="bucket width in seconds (default: 60)")
    kinds.add_parser(
        "best-ex",
        parents=[common],
        help="RTS 28 Table 1: top five execution venues per class of instrument",
        description="Per class of instrument, the top five execution venues by volume traded, as Delegated "
        "Regulation (EU) 2017/576 Annex II Table 1 lists them: the low-activity notification, venue name and MIC "
        "([analytics] venue_mics), proportions of volume and of orders executed, percentages of passive, aggressive "
        "and directed orders; then the counts behind them. Use a calendar year as the window "
        f"({REPORT_SQL['best-ex']}).",
    )
    kinds.add_parser(
        "routing",
        parents=[common],
        help="SEC Rule 606(a)(1): routed orders per month, order category and venue, with net payments",
        description="Per calendar month (UTC) and class of instrument, the orders routed (accepted with a venue, "
        "executed or not) as SEC Rule 606(a)(1) reports them: the shares of market, marketable limit, "
        "non-marketable limit and other orders; per venue (the ten busiest and any with 5 % or more), its MIC, the "
        "share of each category routed there and the net payment received (+) or paid (-) from [analytics] fees_bps "
        f"in total and in cents per hundred shares; then the counts behind them ({REPORT_SQL['routing']}).",
    )
    algo = kinds.add_parser(
        "tca-parents",
        parents=[common],
        help="per algo parent: its children's fills against the parent's own arrival; or rolled up per algo",
        description="Per algo parent (TWAP/VWAP/POV/iceberg/bracket) accepted in the window: its children's fills "
        "on its side measured as one order against the parent's own arrival (arrival, VWAP, TWAP, slippage, "
        f"implementation shortfall, participation) ({REPORT_SQL['tca-parents']}). With --by: rolled up per kind, or "
        "per kind and account, from totals.",
    )
    algo.add_argument("--parent-id", default="", help="one parent only")
    algo.add_argument("--kind", default="", type=str.upper, choices=("", *PARENT_KINDS), metavar="KIND",
                      help="one kind only: twap, vwap, pov, iceberg or bracket")  # fmt: skip
    algo.add_argument("--symbol", default="", help="one symbol only")
    algo.add_argument("--by", choices=("kind", "account"), help="roll up per kind, or per kind and account")
    for sub in kinds.choices.values():
        sub.set_defaults(func=run_report)


def _settings(args: argparse.Namespace) -> AnalyticsSettings:
    settings = load_analytics_settings(args.config)
    overrides = {k: v for k, v in (("dsn", args.dsn), ("database", args.database)) if v}
    return msgspec.structs.replace(settings, **overrides)


def _run(args: argparse.Namespace, settings: AnalyticsSettings) -> Report:
    assert settings.dsn is not None
    client = connect_for_reading(settings.dsn, settings.database)  # through the running OMS's sink if it holds it
    try:
        end = FOREVER_NS if args.end is None else args.end
        match args.report:
            case "tca":
                return tca_orders(
                    client, start_ns=args.start, end_ns=end, account=args.account, symbol=args.symbol,
                    order_id=args.order_id, settings=settings,
                )  # fmt: skip
            case "buckets":
                return market_buckets(
                    client, start_ns=args.start, end_ns=args.end, bucket_s=args.bucket, symbol=args.symbol,
                    account=args.account,
                )  # fmt: skip
            case "best-ex":
                return best_execution(client, start_ns=args.start, end_ns=end, account=args.account, settings=settings)
            case "tca-parents":
                parents = tca_parents(
                    client, start_ns=args.start, end_ns=end, account=args.account, symbol=args.symbol, kind=args.kind,
                    parent_id=args.parent_id, settings=settings,
                )  # fmt: skip
                return parents if args.by is None else tca_parents_summary(parents, args.by)
            case _:
                return routing(client, start_ns=args.start, end_ns=end, account=args.account, settings=settings)
    finally:
        client.close()


def run_report(args: argparse.Namespace) -> int:
    """Print the report; a failure is one line on stderr and exit code 1."""
    try:
        print(render(_run(args, _settings(args)), args.format))
    except (AnalyticsError, ConfigError, ValueError) as exc:
        print(f"oms report {args.report}: {exc}", file=sys.stderr)
        return 1
    return 0


def add_sql_command(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add `sql`: one reading statement against the analytics store, while the OMS runs or not."""
    sql = commands.add_parser(
        "sql",
        help="run one reading SQL statement (SELECT, WITH, SHOW, DESCRIBE, EXPLAIN) against the analytics store",
        description="Run one reading statement against ClickHouse and print the answer. An embedded store that the "
        "running OMS holds is queried through its sink. Query parameters: {name:Type} in the SQL, --param name=value.",
    )
    sql.add_argument("statement", help="the SQL, e.g. \"SELECT count() FROM executions FINAL\"")
    sql.add_argument("--param", action="append", default=[], metavar="NAME=VALUE", help="a query parameter")
    sql.add_argument("--config", default=str(DEFAULT_CONFIG), help="OMS config; its [analytics] table says where")
    sql.add_argument("--dsn", help="ClickHouse: chdb:///abs/path or http://host:8123 (overrides the config)")
    sql.add_argument("--database", help="ClickHouse database (overrides the config; default oms)")
    sql.add_argument("--format", choices=("table", "csv", "json"), default="table", help="(default: table)")
    sql.set_defaults(func=run_sql, report="sql")


def run_sql(args: argparse.Namespace) -> int:
    """Print the statement's answer; a refused or failed statement is one line on stderr and exit code 1."""
    try:
        params = dict(_param(p) for p in args.param)
        check_read_only(args.statement)
        settings = _settings(args)
        assert settings.dsn is not None
        client = connect_for_reading(settings.dsn, settings.database)
        try:
            result = client.query(args.statement, parameters=params or None)
        except ClickHouseDriverError as exc:
            raise AnalyticsError(error_message(exc)) from None
        finally:
            client.close()
        print(render(Report("sql", list(result.column_names), [tuple(r) for r in result.result_rows]), args.format))
    except (AnalyticsError, ConfigError, ValueError) as exc:
        print(f"oms sql: {exc}", file=sys.stderr)
        return 1
    return 0


def _param(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.isidentifier():
        raise ValueError(f"--param {text!r}: expected NAME=VALUE")
    return name, value
