"""`oms demo` as a user runs it: every scripted step gets its answer, the summary is printed, exit 0; and every figure
of the compliance reports on its ClickHouse store equals an independent computation from the raw records the run
left in Redis (the account journals, the OMS's record, the algo journal, the tape), not from the store."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import msgspec
import pytest

from oms.core.accounts import AccountEvent
from oms.core.algos.messages import AlgoRecord
from oms.core.model.messages import (
    OrderAccepted,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderReplaced,
    TradePrinted,
)
from oms.infra.clickhouse.clickhouse import Client, connect
from oms.infra.clickhouse.reports import best_execution, market_buckets, routing, tca_orders, tca_parents
from oms.infra.clickhouse.settings import AnalyticsSettings, load_analytics_settings
from oms.infra.clickhouse.tape import Quote, tape_decoder, tape_key
from oms.infra.redis.journal import Journal
from oms.infra.redis.server import ManagedRedis, make_client
from tests.unit.infra import test_best_ex_reports as bx
from tests.unit.infra import test_tca, test_tca_parents, test_tca_reports

pytestmark = pytest.mark.integration


@dataclass
class Demo:
    run: Path
    out: str


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    run = tmp_path_factory.mktemp("demo") / "demo"
    done = subprocess.run(
        [sys.executable, "-m", "oms", "demo", "--run-dir", str(run), "--twap-seconds", "6", "--probe-orders", "40"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return Demo(run, done.stdout)


def test_demo_runs_the_scripted_day_and_exits_0(demo: Demo) -> None:
    out = demo.out
    for expected in (
        "CLIENT42 <- partial  s1 sell AAPL 100 @ 150.04 cum 100 leaves 200 (partially filled)",
        "CLIENT42 <- replaced s1r",
        "CLIENT42 <- canceled s1x",
        "CLIENT44 <- rejected r1 buy AAPL cum 0 leaves 0 (rejected) - order quantity above the account's maximum",
        "CLIENT42 <- fill     m1 buy MSFT 200 @ 300.05",
        "CLIENT44 <- canceled m2",
        "CLIENT44 <- rejected k1",
        "streams: every chain intact",
        'oms_stage_seconds{stage="in_to_ack"}',
        "== TCA summary",
        "== best execution",
    ):
        assert expected in out
    assert "EXCH" in out.split("== best execution")[1]
    assert re.search(r"the desk page \(http://127\.0\.0\.1:\d+/desk/, key admin-dev-secret\)", out)
    assert (demo.run / "latency.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@dataclass
class Raw:
    market: test_tca.Market
    book: test_tca.Book
    flow: test_tca_parents.Flow


@pytest.fixture(scope="module")
def raw(demo: Demo) -> Raw:
    """The run's records as its Redis holds them, in the shapes the unit tests' reference computations take."""
    market, book, flow = test_tca.Market(), test_tca.Book(), test_tca_parents.Flow()
    with ManagedRedis(demo.run / "redis") as server:
        client = make_client(server.url)
        try:
            journal: Journal[AccountEvent] = Journal(client, AccountEvent)
            for account in journal.accounts():
                for _, e in journal.read(account):
                    match e:
                        case OrderAccepted():
                            book.accepted.append(e)
                        case OrderFilled():
                            book.fills.append(e)
                        case OrderCanceled() | OrderReplaced() | OrderExpired() | OrderRejected() if e.order_id:
                            book.other.append(e)  # type: ignore[arg-type]
                        case _:
                            pass  # marks, allowances, limits: no order's event
                    if isinstance(e, OrderAccepted | OrderFilled | OrderCanceled | OrderExpired | OrderRejected):
                        flow.events.append(e)
            decode = tape_decoder
            for _, fields in client.xrange(tape_key()):
                record = decode.decode(fields[b"r"])
                (market.trades if isinstance(record, TradePrinted) else market.quotes).append(record)
            algos: Journal[AlgoRecord] = Journal(client, AlgoRecord, prefix="oms:algos")
            for sid, record in algos.read("parents"):
                flow.algo.append((int(sid.split("-")[0]) * test_tca_parents.MS, record))
        finally:
            client.close()
    assert all(isinstance(q, Quote) for q in market.quotes)
    return Raw(market, book, flow)


@pytest.fixture(scope="module")
def store(demo: Demo) -> Iterator[tuple[Client, AnalyticsSettings]]:
    settings = load_analytics_settings(demo.run / "oms.toml")
    ch = connect(f"chdb://{demo.run / 'clickhouse'}")
    yield ch, settings
    ch.close()


def _mismatches(got: list[dict[str, object]], want: dict[object, dict[str, object]], key: str) -> list[tuple]:
    rows = {r[key]: r for r in got}
    assert sorted(rows, key=str) == sorted(want, key=str)
    return [(k, c, rows[k][c], v) for k, row in want.items() for c, v in row.items()
            if not test_tca._same(rows[k][c], v)]


def test_the_demos_order_tca_equals_the_computation_from_its_journals(
    raw: Raw, store: tuple[Client, AnalyticsSettings]
) -> None:
    ch, settings = store
    want = test_tca.expected(raw.market, raw.book, settings)

    got = tca_orders(ch, settings=settings).records()

    assert len(got) > 50 and _mismatches(got, want, "order_id") == []  # type: ignore[arg-type]


def test_the_demos_parent_tca_equals_the_computation_from_its_algo_journal(
    raw: Raw, store: tuple[Client, AnalyticsSettings]
) -> None:
    ch, settings = store
    want = test_tca_parents.expected(raw.flow, raw.market, settings)

    got = tca_parents(ch, settings=settings).records()

    assert {r["kind"] for r in got} >= {"TWAP", "ICEBERG"}
    assert _mismatches(got, want, "parent_id") == []  # type: ignore[arg-type]


def test_the_demos_best_execution_tables_equal_the_computation_from_its_journals(
    raw: Raw, store: tuple[Client, AnalyticsSettings]
) -> None:
    ch, settings = store
    with_mics = msgspec.structs.replace(settings, venue_mics=bx.MICS)

    rts28 = bx._diff(best_execution(ch, settings=with_mics), bx.rts28(raw.book), ("asset_class", "rank"))
    rule606 = bx._diff(routing(ch, settings=with_mics), bx.rule606(raw.market, raw.book, settings=with_mics),
                       ("month", "asset_class", "rank"))  # fmt: skip

    assert rts28 == [] and rule606 == []


def test_the_demos_buckets_equal_the_computation_from_its_tape_and_journals(
    raw: Raw, store: tuple[Client, AnalyticsSettings]
) -> None:
    """Market and own VWAP/TWAP per 10 s bucket over the whole run; participation counts each print once (the demo's
    internal crosses have our orders on both sides)."""
    ch, _ = store
    times = [t.ts_ns for t in raw.market.trades] + [f.ts_ns for f in raw.book.fills]
    start, end, width = min(times), max(times) + 1, 10 * test_tca.SEC
    want = test_tca_reports.expected_buckets(raw.market, raw.book, start, end, width)

    report = market_buckets(ch, start_ns=start, end_ns=end, bucket_s=width / test_tca.SEC)

    assert bx._diff(report, want, ("symbol", "bucket_start_ns")) == []
    assert max(r["participation"] or 0 for r in report.records()) <= 1
