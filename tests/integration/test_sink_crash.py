"""The sink survives SIGKILL at any point: no fill lost, none counted twice (real redis-server, real chDB, processes).

One journal (three accounts) and one tape are written once. Three sink runs read them, each with its own consumer
group and its own ClickHouse database in one embedded store:

- `ref`: drained without incident, the reference;
- `crash`: the sink SIGKILLs itself right after ClickHouse confirmed its third insert and before the XACK (a batch both
  in ClickHouse and pending in Redis), then a new process with the same consumer name re-reads its pending entries;
- `ext`: the test SIGKILLs a running sink after two commits (entries read ahead and pending), then a sink under
  another consumer name takes the abandoned entries over with XAUTOCLAIM.

Only one process may open an embedded chDB store, so the test opens it only after every sink process has exited.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis

from oms.core.accounts import AccountEvent
from oms.core.model.enums import CancelReason, OrdType, Side, TimeInForce
from oms.core.model.messages import OrderAccepted, OrderCanceled, OrderFilled, TradePrinted
from oms.infra.clickhouse.clickhouse import Client, connect
from oms.infra.clickhouse.reports import best_execution, market_buckets, render, routing, tca_orders
from oms.infra.clickhouse.sink import dead_letter_key
from oms.infra.clickhouse.tape import Quote, Tape, TapeRecord, tape_key
from oms.infra.redis.journal import Journal, journal_key
from oms.infra.redis.server import ManagedRedis, make_client

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ACCOUNTS = ("ACC1", "ACC2", "ACC3")
SYMBOLS = {"AAPL": (1_500_000, 100), "ESZ6": (500_000, 25), "BTC-USD": (6_000_000, 50)}  # mid, tick in price units
T0 = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z
SEC = 1_000_000_000
ORDERS = 1500
TIMEOUT_S = 120


def workload(seed: int = 11) -> tuple[dict[str, list[AccountEvent]], list[TapeRecord], int]:
    """Per-account journal events (accepts, partial and full fills, cancels), the tape, and the number of fills."""
    rng = random.Random(seed)
    journal: dict[str, list[AccountEvent]] = {a: [] for a in ACCOUNTS}
    tape: list[TapeRecord] = []
    exec_id, match_id, fills = 1_000, 0, 0
    for n in range(ORDERS):
        account, symbol = ACCOUNTS[n % 3], list(SYMBOLS)[n % 3]
        mid, tick = SYMBOLS[symbol]
        side = Side.BUY if rng.random() < 0.5 else Side.SELL
        t = T0 + n * 40_000_000
        qty = rng.randint(2, 9) * 10
        tape.append(Quote("XNAS", symbol, mid - tick, 500, mid + tick, 400, t - 1_000))
        journal[account].append(
            OrderAccepted(n + 1, f"c{n}", account, symbol, side, OrdType.LIMIT, TimeInForce.DAY, qty, mid + tick, t,
                          venue="XNAS")
        )  # fmt: skip
        cum, notional = 0, 0
        for k in range(rng.randint(1, 5)):
            fill = min(qty - cum, rng.randint(1, 4) * 10)
            if fill <= 0:
                break
            px = mid + rng.randint(-3, 3) * tick
            cum, notional, exec_id, match_id = cum + fill, notional + fill * px, exec_id + 1, match_id + 1
            ts = t + (k + 1) * 1_000_000
            venue = rng.choice(("INTERNAL", "XNAS"))
            aggressor = rng.random() < 0.5
            fill_event = OrderFilled(
                n + 1, f"c{n}", account, symbol, exec_id, side, fill, px, qty - cum, cum, notional, aggressor, ts,
                None, venue,
            )  # fmt: skip
            journal[account].append(fill_event)
            tape.append(TradePrinted("XNAS", symbol, match_id, px, fill * 3, side, ts))
            fills += 1
        if cum < qty:
            journal[account].append(
                OrderCanceled(n + 1, f"x{n}", account, symbol, CancelReason.USER, qty - cum, t + 9_000_000, f"c{n}")
            )
    return journal, tape, fills


@dataclass
class Run:
    """What happened to one consumer group's sink processes."""

    outputs: list[str] = field(default_factory=list)
    codes: list[int] = field(default_factory=list)
    pending_after_kill: int = 0


@dataclass
class World:
    prefix: str
    fills: int
    order_events: int
    trades: int
    quotes: int
    runs: dict[str, Run]
    groups: dict[str, list[dict]]  # group -> XINFO GROUPS entry of each stream at the end
    dead: int
    locked: subprocess.CompletedProcess[str]  # `oms report` while a sink process held the store
    cli_tca: subprocess.CompletedProcess[str]  # `oms report tca --format json` in another process
    ch: Client


def _child(url: str, dsn: str, prefix: str, group: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable, "-m", "tests.integration.sink_child", "--redis-url", url, "--dsn", dsn,
            "--database", group, "--prefix", prefix, "--group", group, *extra,
        ],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _report(dsn: str, database: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "oms", "report", *args, "--dsn", dsn, "--database", database],
        cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT_S,
    )  # fmt: skip


def _finish(proc: subprocess.Popen[str], run: Run) -> None:
    out, err = proc.communicate(timeout=TIMEOUT_S)
    run.outputs.append(out + err)
    run.codes.append(proc.returncode)


def _pending(client: redis.Redis, streams: list[str], group: str) -> int:
    return sum(int(client.xpending(s, group)["pending"]) for s in streams)


@pytest.fixture(scope="module")
def world(redis_server: ManagedRedis, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    prefix = f"sk{uuid.uuid4().hex[:8]}"
    client = make_client(redis_server.url)
    journal_events, tape_records, fills = workload()
    journal: Journal[AccountEvent] = Journal(client, AccountEvent, prefix=prefix)
    for account, events in journal_events.items():
        for k in range(0, len(events), 500):
            journal.append_many(account, events[k : k + 500])
    Tape(client, prefix=prefix).append_many(tape_records)
    streams = [tape_key(prefix), *(journal_key(a, prefix) for a in ACCOUNTS)]
    dsn = f"chdb://{tmp_path_factory.mktemp('sink-crash')}/store"
    url = redis_server.url
    runs = {g: Run() for g in ("ref", "crash", "ext")}

    _finish(_child(url, dsn, prefix, "ref", "--drain"), runs["ref"])

    _finish(_child(url, dsn, prefix, "crash", "--drain", "--kill-after-batches", "3"), runs["crash"])
    runs["crash"].pending_after_kill = _pending(client, streams, "crash")
    _finish(_child(url, dsn, prefix, "crash", "--drain"), runs["crash"])

    proc = _child(url, dsn, prefix, "ext", "--consumer", "a")
    assert proc.stdout is not None
    lines, commits = [], 0
    while commits < 2:
        line = proc.stdout.readline()
        assert line, f"the sink ended early: {''.join(lines)}{proc.stderr.read() if proc.stderr else ''}"
        lines.append(line)
        commits += line.startswith("COMMITTED")
    deadline = time.monotonic() + TIMEOUT_S
    while _pending(client, streams, "ext") == 0 and time.monotonic() < deadline:
        time.sleep(0.002)  # killed while it holds entries read and not yet acknowledged (its reader polls each 50 ms)
    proc.send_signal(signal.SIGKILL)
    _finish(proc, runs["ext"])
    runs["ext"].outputs[-1] = "".join(lines) + runs["ext"].outputs[-1]
    runs["ext"].pending_after_kill = _pending(client, streams, "ext")
    _finish(_child(url, dsn, prefix, "ext", "--consumer", "b", "--claim-idle-s", "0.001", "--drain"), runs["ext"])

    # `oms report` in a process of its own: refused while a sink holds the store, then reading what the sinks wrote
    holder = _child(url, dsn, prefix, "lock")
    assert holder.stdout is not None and holder.stdout.readline().startswith("READY")
    locked = _report(dsn, "ref", "best-ex")
    holder.send_signal(signal.SIGTERM)
    holder.communicate(timeout=TIMEOUT_S)
    cli_tca = _report(dsn, "ref", "tca", "--format", "json")

    groups = {
        g: [{k: v for k, v in info.items() if k in ("pending", "lag")} for s in streams
            for info in client.xinfo_groups(s) if info["name"].decode() == g]
        for g in runs
    }  # fmt: skip
    dead = client.xlen(dead_letter_key(prefix))
    orders = sum(1 for events in journal_events.values() for e in events if not isinstance(e, OrderFilled))
    trades = sum(isinstance(r, TradePrinted) for r in tape_records)
    client.close()
    ch = connect(dsn, "ref")
    try:
        yield World(prefix, fills, orders, trades, len(tape_records) - trades, runs, groups, dead, locked, cli_tca, ch)
    finally:
        ch.close()


def _journal_fills(world: World, url: str) -> int:
    client = make_client(url)
    try:
        journal: Journal[AccountEvent] = Journal(client, AccountEvent, prefix=world.prefix)
        return sum(isinstance(r, OrderFilled) for a in ACCOUNTS for _, r in journal.read(a))
    finally:
        client.close()


def _rows(ch: Client, db: str, table: str) -> list[tuple]:
    return ch.query(f"SELECT * FROM {db}.{table} FINAL ORDER BY ALL").result_rows


def test_every_sink_run_ends_with_all_entries_acknowledged(world: World) -> None:
    assert world.runs["ref"].codes == [0]
    for group, infos in world.groups.items():
        assert len(infos) == 1 + len(ACCOUNTS)
        assert all(info["pending"] == 0 and info["lag"] == 0 for info in infos), (group, infos)
    assert world.dead == 0


def test_a_sink_killed_between_insert_and_ack_loses_no_fill_and_counts_none_twice(
    world: World, redis_server: ManagedRedis
) -> None:
    run = world.runs["crash"]
    assert run.codes == [-signal.SIGKILL, 0], run.outputs
    killed = run.outputs[0].split("KILLING after insert 3 of ")[1]
    batch, held = int(killed.split()[0]), int(killed.split("executions holds ")[1].split()[0])
    assert held > 0 and run.pending_after_kill >= batch  # the killed batch: in ClickHouse, still pending in Redis

    fills = _journal_fills(world, redis_server.url)
    assert fills == world.fills
    assert world.ch.query("SELECT count(), uniqExact(exec_id) FROM crash.executions FINAL").result_rows == [
        (fills, fills)
    ]
    raw = world.ch.query("SELECT count() FROM crash.executions").result_rows[0][0]
    assert raw >= fills  # before merges the re-inserted batch is there twice; FINAL counts it once


def test_a_sink_killed_from_outside_is_replaced_by_one_that_claims_its_pending_entries(world: World) -> None:
    run = world.runs["ext"]
    assert run.codes == [-signal.SIGKILL, 0], run.outputs
    assert run.pending_after_kill > 0
    claimed = int(run.outputs[1].split("claimed=")[1].split()[0])
    assert claimed >= run.pending_after_kill
    assert world.ch.query("SELECT count(), uniqExact(exec_id) FROM ext.executions FINAL").result_rows == [
        (world.fills, world.fills)
    ]


@pytest.mark.parametrize("table", ["executions", "orders", "market_trades", "quotes"])
def test_crashed_runs_end_with_the_same_rows_as_the_clean_run(world: World, table: str) -> None:
    expected = {"executions": world.fills, "orders": world.order_events, "market_trades": world.trades,
                "quotes": world.quotes}[table]  # fmt: skip
    ref = _rows(world.ch, "ref", table)
    assert len(ref) == expected
    assert _rows(world.ch, "crash", table) == ref
    assert _rows(world.ch, "ext", table) == ref


def test_no_order_event_of_the_journal_is_missing_from_clickhouse(world: World) -> None:
    by_event = dict(world.ch.query("SELECT event, count() FROM ref.orders FINAL GROUP BY event").result_rows)
    assert by_event == {"accepted": ORDERS, "canceled": world.order_events - ORDERS}


REPORTS = {
    "tca": lambda ch: tca_orders(ch),
    "buckets": lambda ch: market_buckets(ch, start_ns=T0, end_ns=T0 + ORDERS * 40_000_000 + SEC, bucket_s=1.0),
    "best-ex": lambda ch: best_execution(ch),
    "routing": lambda ch: routing(ch),
}


@pytest.mark.parametrize("report", sorted(REPORTS))
def test_every_report_after_the_crashes_equals_the_clean_run(world: World, report: str) -> None:
    results = {}
    for db in ("ref", "crash", "ext"):
        world.ch.database = db
        try:
            results[db] = REPORTS[report](world.ch)
        finally:
            world.ch.database = "ref"
    ref = results["ref"]
    assert len(ref.rows) > 1
    for db in ("crash", "ext"):
        assert results[db].columns == ref.columns
        assert results[db].rows == [approx_row(row) for row in ref.rows], db


def test_oms_report_in_another_process_reads_what_the_sink_wrote(world: World) -> None:
    assert world.cli_tca.returncode == 0, world.cli_tca.stderr
    expected = json.loads(render(tca_orders(world.ch), "json"))
    assert json.loads(world.cli_tca.stdout) == [approx_row(r) for r in expected]


def test_a_store_held_by_a_running_sink_is_one_clear_line_from_oms_report(world: World) -> None:
    assert world.locked.returncode == 1
    assert world.locked.stderr.startswith("oms report best-ex: the embedded ClickHouse store chdb://")
    assert "is open in another process" in world.locked.stderr and world.locked.stderr.count("\n") == 1


def approx_row(row: Any) -> Any:
    """`row` (a tuple or a dict) with each number compared to 1e-12 relative (pytest.approx takes numbers only)."""

    def one(value: object) -> object:
        if isinstance(value, float | int) and not isinstance(value, bool):
            return pytest.approx(value, rel=1e-12, abs=1e-9, nan_ok=True)
        return value

    if isinstance(row, dict):
        return {k: one(v) for k, v in row.items()}
    return tuple(one(v) for v in row)
