"""Intraday volume profiles (`oms.infra.clickhouse.profile`) from an embedded ClickHouse holding real rows, against an
independent computation over the same records: the windows shifted by whole days are cut explicitly here (no
modulo), each day's shares are exact fractions, and the weights are compared within one part per million."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import pytest

from oms.core.model.enums import Side
from oms.core.model.instruments import InstrumentRegistry
from oms.core.model.messages import OrderFilled, TradePrinted
from oms.infra.clickhouse.clickhouse import Client, apply_schema, connect
from oms.infra.clickhouse.profile import (
    DAY_NS,
    WEIGHT_TOTAL,
    ClickHouseProfiles,
    VolumeProfile,
    history_profile,
    intraday_profile,
    profile_weights,
)
from oms.infra.clickhouse.rows import fill_columns, scales, trade_columns

CONFIGS = Path(__file__).resolve().parents[3] / "configs"
SCALE = scales(InstrumentRegistry.load(CONFIGS / "instruments.toml"))
S = 1_000_000_000
MIN = 60 * S
START = 1_767_346_200_000_000_000  # 2026-01-02T09:30:00Z: the VWAP window opens here
END = START + 60 * MIN
PX = 1_500_000


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An embedded store for the module (one path per process); each test takes a database of its own."""
    path = tmp_path_factory.mktemp("profile") / "store"
    yield f"chdb://{path}"


@pytest.fixture
def db(store: str) -> Iterator[tuple[Client, str]]:
    name = f"p{uuid.uuid4().hex[:10]}"
    client = connect(store, name)
    apply_schema(client)
    yield client, name
    client.close()


def _ids(n: int) -> list[bytes]:
    return [f"1767346200000-{i}".encode() for i in range(n)]


def insert_trades(client: Client, trades: list[TradePrinted]) -> None:
    names, cols = trade_columns(trades, _ids(len(trades)), SCALE)
    client.insert("market_trades", cols, column_names=list(names), column_oriented=True)


def insert_fills(client: Client, fills: list[OrderFilled]) -> None:
    names, cols = fill_columns(fills, _ids(len(fills)), SCALE)
    client.insert("executions", cols, column_names=list(names), column_oriented=True)


def expected(
    prints: list[tuple[int, int]], start: int, end: int, buckets: int, lookback: int
) -> tuple[list[Fraction], int]:
    """(exact mean share per bucket, days) from (ts_ns, qty) prints, window by window."""
    span = end - start
    shares: list[list[Fraction]] = []
    for d in range(1, lookback + 1):
        lo, hi = start - d * DAY_NS, end - d * DAY_NS
        vol = [0] * buckets
        for ts, qty in prints:
            if lo <= ts < hi:
                vol[(ts - lo) * buckets // span] += qty
        if sum(vol):
            shares.append([Fraction(v, sum(vol)) for v in vol])
    mean = [sum(day[b] for day in shares) / len(shares) for b in range(buckets)] if shares else []
    return mean, len(shares)


def assert_close(weights: list[int], mean: list[Fraction]) -> None:
    assert sum(weights) == WEIGHT_TOTAL
    assert [abs(w - m * WEIGHT_TOTAL) <= 1 for w, m in zip(weights, mean, strict=True)] == [True] * len(mean), (
        weights,
        [float(m * WEIGHT_TOTAL) for m in mean],
    )


def market(seed: int = 3) -> list[TradePrinted]:
    """A morning-heavy AAPL tape on the days before START (one day without trades), noise around the windows, an
    MSFT tape, and trades of the window's own day (not history)."""
    rng = random.Random(seed)
    trades: list[TradePrinted] = []

    def add(symbol: str, ts: int, qty: int) -> None:
        trades.append(TradePrinted("XNAS", symbol, len(trades) + 1, PX, qty, Side.BUY, ts))

    for d in range(1, 9):
        if d == 3:
            continue  # a day without trades (a holiday): it does not count
        base = START - d * DAY_NS
        for _ in range(rng.randint(40, 80)):
            at = int(rng.triangular(0, 60, 0) * MIN)  # more volume early in the hour
            add("AAPL", base + at, rng.randint(1, 30) * 10)
        for _ in range(10):  # outside the window that day
            add("AAPL", base - rng.randint(1, 500) * MIN, 999)
            add("AAPL", base + 60 * MIN + rng.randint(0, 500) * MIN, 999)
        add("MSFT", base + 5 * MIN, 5000)
    for _ in range(20):
        add("AAPL", START + rng.randint(0, 59) * MIN, 7777)  # today: not history
    return trades


# -- the pure part --


def test_profile_weights_average_each_days_shares_and_sum_to_a_million() -> None:
    rows = [(-1, 0, 100.0), (-1, 1, 300.0), (-2, 0, 10.0), (-2, 2, 10.0), (-2, 7, 50.0), (-3, 1, 0.0)]

    weights, days, volume = profile_weights(rows, 3)

    # day -1: 1/4 3/4 0, day -2: 1/2 0 1/2 (bucket 7 does not exist, day -3 had no volume)
    assert (weights, days, volume) == ([375_000, 375_000, 250_000], 2, 420.0)
    assert profile_weights([], 4) == ([], 0, 0.0)


def test_profile_weights_round_to_an_exact_total() -> None:
    weights, _, _ = profile_weights([(-1, b, 1.0) for b in range(7)], 7)

    assert sum(weights) == WEIGHT_TOTAL and max(weights) - min(weights) == 1


# -- against ClickHouse --


@pytest.mark.parametrize(("buckets", "lookback"), [(4, 10), (12, 10), (6, 4), (1, 10)])
def test_the_tape_profile_matches_an_independent_computation(db, buckets: int, lookback: int) -> None:
    client, _ = db
    trades = market()
    insert_trades(client, trades)

    got = intraday_profile(client, "AAPL", START, END, buckets, lookback_days=lookback)

    mean, days = expected([(t.ts_ns, t.qty) for t in trades if t.symbol == "AAPL"], START, END, buckets, lookback)
    assert (got.found, got.days, got.table, got.reason) == (True, days, "market_trades", "")
    assert_close(got.weights, mean)
    assert buckets == 1 or got.weights[0] > got.weights[-1]  # the tape is morning-heavy
    window_volume = sum(
        t.qty for t in trades if t.symbol == "AAPL"
        and any(START - d * DAY_NS <= t.ts_ns < END - d * DAY_NS for d in range(1, lookback + 1))
    )  # fmt: skip
    assert got.volume == window_volume


def test_a_window_across_midnight_takes_each_days_window_whole(db) -> None:
    client, _ = db
    start = START - START % DAY_NS - 30 * MIN  # 23:30 UTC the day before, to 00:30
    end = start + 60 * MIN
    prints = [(-1, 5, 100), (-1, 45, 300), (-2, 10, 50), (-2, 40, 50), (-2, 59, 100)]  # (day, minute, qty)
    trades = [
        TradePrinted("XNAS", "AAPL", i + 1, PX, q, Side.SELL, start + d * DAY_NS + m * MIN)
        for i, (d, m, q) in enumerate(prints)
    ]
    insert_trades(client, trades)

    got = intraday_profile(client, "AAPL", start, end, 2)

    assert got.days == 2
    assert_close(got.weights, [Fraction(1, 4) / 2 + Fraction(1, 4) / 2, Fraction(3, 4) / 2 + Fraction(3, 4) / 2])


def test_a_print_inserted_twice_counts_once(db) -> None:
    client, _ = db
    trades = [TradePrinted("XNAS", "AAPL", 1, PX, 100, Side.BUY, START - DAY_NS + 1 * MIN),
              TradePrinted("XNAS", "AAPL", 2, PX, 100, Side.BUY, START - DAY_NS + 40 * MIN)]  # fmt: skip
    insert_trades(client, trades)
    insert_trades(client, trades[:1])  # the sink retried a batch

    got = intraday_profile(client, "AAPL", START, END, 2)

    assert (got.weights, got.volume) == ([500_000, 500_000], 200.0)


def test_too_little_history_is_an_empty_profile_with_the_reason(db) -> None:
    client, _ = db
    insert_trades(client, [TradePrinted("XNAS", "AAPL", 1, PX, 100, Side.BUY, START - 2 * DAY_NS + MIN)])

    one = intraday_profile(client, "AAPL", START, END, 4, min_days=2)
    none = intraday_profile(client, "MSFT", START, END, 4)
    too_far = intraday_profile(client, "AAPL", START, END, 4, lookback_days=1)

    assert (one.found, one.days) == (False, 1)
    assert "trades on 1 day only" in one.reason and "at least 2 needed" in one.reason
    assert "no trade of MSFT in market_trades" in none.reason and not none.found
    assert too_far.days == 0 and not too_far.found


@pytest.mark.parametrize(
    ("start", "end", "buckets", "reason"),
    [
        (START, START, 4, "window is empty"),
        (START, START + DAY_NS + 1, 4, "longer than a day"),
        (START, END, 0, "buckets 0"),
    ],
)
def test_a_window_without_an_intraday_profile_says_why(db, start: int, end: int, buckets: int, reason: str) -> None:
    client, _ = db

    got = intraday_profile(client, "AAPL", start, end, buckets)

    assert not got.found and reason in got.reason


def test_without_a_tape_the_profile_comes_from_our_fills_each_internal_cross_once(db) -> None:
    client, _ = db
    day = START - DAY_NS

    def fill(exec_id: int, minute: int, qty: int, aggressor: bool, contra: int | None) -> OrderFilled:
        return OrderFilled(exec_id, f"c{exec_id}", "ACC1", "AAPL", exec_id, Side.BUY, qty, PX, 0, qty, qty * PX,
                           aggressor, day + minute * MIN, contra, "INTERNAL" if contra else "XNAS")  # fmt: skip

    insert_fills(client, [
        fill(1, 5, 100, True, 2), fill(2, 5, 100, False, 1),  # one internal cross: 100, not 200
        fill(3, 50, 100, False, None), fill(4, 55, 200, True, None),  # external fills, passive and aggressive
    ])  # fmt: skip

    got = history_profile(client, "AAPL", START, END, 2)

    assert (got.table, got.days, got.volume) == ("executions", 1, 400.0)
    assert got.weights == [250_000, 750_000]


def test_history_says_what_both_tables_lacked(db) -> None:
    client, _ = db

    got = history_profile(client, "AAPL", START, END, 2)

    assert not got.found
    assert "in market_trades" in got.reason and "in executions" in got.reason


# -- the adapter the API holds --


def test_clickhouse_profiles_opens_the_store_reads_and_closes(db, store: str) -> None:
    client, name = db
    insert_trades(client, [TradePrinted("XNAS", "AAPL", 1, PX, 30, Side.BUY, START - DAY_NS + 10 * MIN)])

    got = ClickHouseProfiles(store, name, lookback_days=5).profile("AAPL", START, END, 3)

    assert got == VolumeProfile([1_000_000, 0, 0], 1, 30.0, "market_trades")


def test_clickhouse_profiles_never_raises_and_names_the_problem(store: str) -> None:
    missing = ClickHouseProfiles(store, f"empty{uuid.uuid4().hex[:8]}").profile("AAPL", START, END, 3)
    down = ClickHouseProfiles("http://127.0.0.1:1").profile("AAPL", START, END, 3)
    bad = ClickHouseProfiles(store, "not-an-identifier").profile("AAPL", START, END, 3)

    assert not missing.found and "no OMS schema" in missing.reason
    assert not down.found and "unavailable" in down.reason and "127.0.0.1:1" in down.reason
    assert not bad.found and "plain identifier" in bad.reason
