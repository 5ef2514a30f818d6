"""Bucketed VWAP/TWAP against numpy over the same data, and `oms report` on the command line: formats, and one-line
messages for a missing table, an unknown order, no data. Best execution and routing: `test_best_ex_reports`."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from oms.apps.cli import main
from oms.apps.report import DEFAULT_CONFIG
from oms.core.model.enums import Side
from oms.core.model.messages import OrderFilled, TradePrinted
from oms.infra.clickhouse.clickhouse import Client, apply_schema, connect
from oms.infra.clickhouse.reports import Report, best_execution, market_buckets, render
from oms.infra.clickhouse.settings import load_analytics_settings
from tests.unit.infra.test_tca import SEC, T0, Book, Market, Series, load, px, qty, simulate

W = 10 * SEC  # bucket width
FROM, TO = T0 + 23_700_000_000, T0 + 187_300_000_000  # not on bucket boundaries: the edges are clipped


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"chdb://{tmp_path_factory.mktemp('tca-reports')}/store"


@pytest.fixture(scope="module")
def data(store: str) -> Iterator[tuple[Client, Market, Book]]:
    client = connect(store, "reports")
    apply_schema(client)
    market, book = simulate(seed=8)
    load(client, market, book)
    yield client, market, book
    client.close()


def _close(got: object, want: object) -> bool:
    if want is None:
        return got is None
    if isinstance(want, str):  # pytest.approx takes numbers only
        return got == want
    return got == pytest.approx(want, rel=1e-9, abs=1e-9)


def _diff(report: Report, want: dict[tuple, dict[str, object]], key: tuple[str, ...]) -> list[tuple]:
    got = {tuple(r[k] for k in key): r for r in report.records()}
    assert sorted(got) == sorted(want)
    return [(k, c, got[k][c], v) for k, row in want.items() for c, v in row.items() if not _close(got[k][c], v)]


def expected_buckets(market: Market, book: Book, start: int, end: int, width: int) -> dict[tuple, dict[str, object]]:
    """Every figure of `market_buckets` per (symbol, bucket start), from the records (docs/compliance.md). Own
    participation counts each print once: a passive fill whose contra order is among the fills counted (an internal
    cross between two of our orders) does not count the print again."""
    want: dict[tuple, dict[str, object]] = {}
    symbols = sorted({t.symbol for t in market.trades} | {f.symbol for f in book.fills})
    for symbol in symbols:
        s = Series(market, symbol)
        t_in = (s.t_ts >= start) & (s.t_ts < end)
        fills = [f for f in book.fills if f.symbol == symbol and start <= f.ts_ns < end]
        ours = {f.order_id for f in fills}
        f_ts = np.array([f.ts_ns for f in fills], dtype=np.int64)
        f_q = np.array([qty(symbol, f.qty) for f in fills])
        f_p = np.array([px(symbol, f.price) for f in fills])
        again = np.array([not f.aggressor and f.contra_order_id in ours for f in fills], dtype=bool)
        for b in sorted(set((s.t_ts[t_in] // width).tolist()) | set((f_ts // width).tolist())):
            m = t_in & (s.t_ts // width == b)
            o = f_ts // width == b
            mq, oq = float(s.t_qty[m].sum()), float(f_q[o].sum())
            printed = float(f_q[o & ~again].sum())
            lo, hi = max(b * width, start), min((b + 1) * width, end)
            want[(symbol, b * width)] = {
                "market_vwap": float((s.t_qty[m] * s.t_px[m]).sum() / mq) if mq else None,
                "market_twap": s.twap(lo, hi) if m.any() else None,
                "market_qty": mq, "market_trades": int(m.sum()),
                "own_vwap": float((f_q[o] * f_p[o]).sum() / oq) if oq else None, "own_qty": oq,
                "own_fills": int(o.sum()), "participation": printed / mq if mq else None,
            }  # fmt: skip
    return want


def test_buckets_equal_the_numpy_computation(data: tuple[Client, Market, Book]) -> None:
    client, market, book = data
    want = expected_buckets(market, book, FROM, TO, W)

    report = market_buckets(client, start_ns=FROM, end_ns=TO, bucket_s=W / SEC)

    assert _diff(report, want, ("symbol", "bucket_start_ns")) == []
    assert sum(r["own_fills"] > 0 and r["market_trades"] > 0 for r in report.records()) > 10


def test_a_print_with_both_sides_ours_counts_once_in_participation(data: tuple[Client, Market, Book]) -> None:
    """An internal cross of 10 between two of our accounts is one print of 10: participation 1, not 2 (own_qty still
    counts both fills); each account alone took part in the whole print too."""
    client, _, _ = data
    t = T0 + 300_000 * SEC  # a bucket of its own
    market = Market(trades=[TradePrinted("INTERNAL", "AAPL", 930_001, 1_500_000, 10, Side.BUY, t)])
    book = Book(fills=[
        OrderFilled(931, "b", "XBUY", "AAPL", 930_002, Side.BUY, 10, 1_500_000, 0, 10, 15_000_000, True, t, 932,
                    "INTERNAL"),
        OrderFilled(932, "s", "XSELL", "AAPL", 930_003, Side.SELL, 10, 1_500_000, 0, 10, 15_000_000, False, t, 931,
                    "INTERNAL"),
    ])  # fmt: skip
    load(client, market, book)

    def bucket(account: str = "") -> dict[str, object]:
        (row,) = market_buckets(client, start_ns=t, end_ns=t + SEC, bucket_s=1, account=account).records()
        return row

    assert (bucket()["own_qty"], bucket()["participation"]) == (20, 1)
    assert bucket("XBUY")["participation"] == bucket("XSELL")["participation"] == 1


# -- the command line --


def _cli(store: str, *args: str) -> list[str]:
    return ["report", *args, "--dsn", store, "--database", "reports"]


def test_oms_report_prints_json_csv_and_a_table(
    data: tuple[Client, Market, Book], store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    client, _, _ = data
    window = ["--from", str(FROM), "--to", "2026-01-01T09:36:27.300Z"]  # TO as ISO 8601

    assert main(_cli(store, "best-ex", "--format", "json", *window)) == 0
    as_json = json.loads(capsys.readouterr().out)
    assert main(_cli(store, "best-ex", "--format", "csv", *window)) == 0
    as_csv = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert main(_cli(store, "best-ex", *window)) == 0
    table = capsys.readouterr().out.splitlines()

    expected = best_execution(client, start_ns=FROM, end_ns=TO, settings=load_analytics_settings(DEFAULT_CONFIG))
    assert as_json == json.loads(render(expected, "json"))
    assert [r["venue"] for r in as_csv] == [r["venue"] for r in expected.records()]
    assert table[0].split() == expected.columns and len(table) == 2 + len(expected.rows)


def test_oms_report_of_one_order_prints_its_figures_one_per_line(
    data: tuple[Client, Market, Book], store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    _, _, book = data
    order = next(f.order_id for f in book.fills)

    assert main(_cli(store, "tca", "--order-id", str(order))) == 0

    lines = dict(line.split(None, 1) for line in capsys.readouterr().out.splitlines())
    assert lines["order_id"].strip() == str(order)
    assert {"slippage_vwap_bps", "is_total_bps", "markout_60s_bps", "participation"} <= lines.keys()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["tca", "--order-id", "999999"], "oms report tca: order 999999 not found: no accepted order with that id"),
        (
            ["tca", "--from", "2020-01-01", "--to", "2020-01-02"],
            "oms report tca: no orders accepted between 2020-01-01",
        ),
        (["buckets", "--from", "2020-01-01", "--to", "2020-01-02"], "oms report buckets: no market trades or fills"),
        (["best-ex", "--account", "NOBODY"], "oms report best-ex: no executions at any time for account NOBODY"),
        (
            ["routing", "--from", "2020-01-01", "--to", "2020-02-01"],
            "oms report routing: no orders routed between 2020-01-01T00:00:00.000000Z and 2020-02-01",
        ),
    ],
)
def test_no_data_is_one_clear_line_and_exit_code_1(
    data: tuple[Client, Market, Book], store: str, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(_cli(store, *args)) == 1

    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1 and "Traceback" not in err


def test_a_database_without_the_schema_is_one_clear_line(
    data: tuple[Client, Market, Book], store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "routing", "--dsn", store, "--database", "no_schema_here"]) == 1

    err = capsys.readouterr().err
    assert err.startswith("oms report routing: report routing: table orders is missing")
    assert "database no_schema_here has no OMS schema" in err and err.count("\n") == 1


def test_a_bad_time_is_refused_by_the_argument_parser(store: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(_cli(store, "tca", "--from", "yesterday"))

    assert exc.value.code == 2
    assert "'yesterday' is neither ns since the epoch nor an ISO 8601 time" in capsys.readouterr().err


def test_the_report_sql_files_are_plain_clickhouse_with_named_parameters() -> None:
    sql_dir = Path(__file__).resolve().parents[3] / "oms" / "infra" / "clickhouse" / "sql" / "reports"
    for path in sql_dir.glob("*.sql"):
        text = path.read_text()
        assert "{" in text and "%(" not in text and "?" not in text.replace("-- ", ""), path.name
