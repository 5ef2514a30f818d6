"""Sink benchmark: fills from the Redis journal into embedded ClickHouse (chDB), throughput and fill-to-visible delay.

Both phases run the real pipeline: a managed `redis-server` (AOF on, `appendfsync` as given) holding account journal
streams, `oms.infra.clickhouse.sink.Sink` reading them through its consumer group, inserting batches into chDB and
acknowledging them.

- top level, `ops_per_sec`: `fills` fills are journaled first (spread over `accounts` accounts, `append_many` in
  chunks), then the sink drains them; fills per second from the start of the drain until the last batch is
  inserted and acknowledged. `count` is `fills`.
- `visible`: a producer process journals fills on a fixed schedule, `paced_rate` per second for `paced_s` seconds
  (open loop, `load: "open"`), while the sink runs with the default batching (`batch_rows` rows or
  `batch_interval_s`, whichever first). The delay of a fill is from its scheduled append time (its stamp) until the
  insert holding it returned (from then on every query sees it), in microseconds: a producer or Redis that falls
  behind schedule adds to the delay instead of hiding it (no coordinated omission). The top-level
  p50/p99/p999/max repeat it; `visible.hdr` keeps the distribution.

A fast wrong answer is not a result: after each phase `SELECT count(), uniqExact(exec_id), sum(qty) FROM executions
FINAL` must equal what was journaled, and no entry may be left pending in the consumer group.
"""

from __future__ import annotations

import multiprocessing
import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hdrh.histogram import HdrHistogram

from bench.paths import CONFIGS
from bench.report import latency_fields, write_result
from oms.core.accounts import AccountEvent
from oms.core.model.enums import Side
from oms.core.model.instruments import InstrumentRegistry
from oms.core.model.messages import OrderFilled
from oms.infra.clickhouse.clickhouse import Client, apply_schema, connect
from oms.infra.clickhouse.rows import scales
from oms.infra.clickhouse.settings import AnalyticsSettings
from oms.infra.clickhouse.sink import FlushReport, Sink
from oms.infra.redis.journal import Journal
from oms.infra.redis.server import ManagedRedis, make_client

TARGETS = {"ops_per_sec": 200_000.0, "visible_p99_us": 2_000_000.0}
SYMBOLS = (("AAPL", 1_500_000), ("MSFT", 4_000_000))
QTY = 100


@dataclass(frozen=True)
class SinkBenchParams:
    fills: int = 1_000_000  # journaled before the sink starts; the drain is timed
    accounts: int = 8
    chunk: int = 1_000  # fills per append_many when preloading
    batch_rows: int = 10_000
    batch_interval_s: float = 1.0
    read_rows: int = 10_000
    paced_rate: int = 20_000  # fills/s appended while the sink runs, for the fill-to-visible delay
    paced_s: float = 10.0
    appendfsync: str = "everysec"  # the bench redis-server's AOF policy


def _fill(n: int, account: str, ts_ns: int) -> OrderFilled:
    symbol, price = SYMBOLS[n % len(SYMBOLS)]
    side = Side.BUY if n % 2 else Side.SELL
    return OrderFilled(n // 4 + 1, f"c{n // 4}", account, symbol, n, side, QTY, price, 0, QTY, QTY * price,
                       n % 3 == 0, ts_ns, None, "INTERNAL")  # fmt: skip


def _preload(client: Any, p: SinkBenchParams) -> None:
    journal: Journal[AccountEvent] = Journal(client, AccountEvent)
    accounts = [f"BENCH{i:03d}" for i in range(p.accounts)]
    now = time.time_ns()
    for start in range(0, p.fills, p.chunk):
        account = accounts[(start // p.chunk) % len(accounts)]
        journal.append_many(account, [_fill(n, account, now + n) for n in range(start, min(start + p.chunk, p.fills))])


def _produce(url: str, first: int, rate: int, seconds: float, accounts: int) -> None:  # pragma: no cover - child
    """Journal round(rate * seconds) fills on a fixed schedule (open loop): fill k is due `k / rate` seconds after
    the start. Whenever it wakes (every millisecond at least), it appends every fill now due, each stamped with its
    due time rather than the moment it went out, so a stall of this producer, of Redis or of the machine counts
    against every fill that was due during it (no coordinated omission)."""
    client = make_client(url)
    journal: Journal[AccountEvent] = Journal(client, AccountEvent)
    names = [f"BENCH{i:03d}" for i in range(accounts)]  # streams the sink already reads: no discovery delay
    total = round(rate * seconds)
    start_ns, start = time.time_ns(), time.monotonic()  # stamps are wall clock, as the sink's commit time
    n = 0
    while n < total:
        due = min(total, int((time.monotonic() - start) * rate) + 1)  # fills k with k / rate <= elapsed
        while n < due:
            account = names[(first + n) % len(names)]
            upto = min(n + 50, due)
            stamped = [_fill(first + k, account, start_ns + k * 1_000_000_000 // rate) for k in range(n, upto)]
            journal.append_many(account, stamped)
            n = upto
        time.sleep(max(0.001, start + n / rate - time.monotonic()))
    client.close()


def _check(ch: Client, redis_client: Any, group: str, expected: int, what: str) -> None:
    count, unique, qty = ch.query("SELECT count(), uniqExact(exec_id), sum(qty) FROM executions FINAL").result_rows[0]
    assert (count, unique, qty) == (expected, expected, expected * QTY), (
        f"{what}: executions FINAL holds {count} rows / {unique} exec ids / qty {qty}, journal has {expected} fills"
    )
    pending = sum(
        int(redis_client.xpending(k, group)["pending"])
        for k in redis_client.scan_iter(match="oms:journal:*", _type="STREAM")
    )
    assert pending == 0, f"{what}: {pending} entries still pending"


def _drain(client: Any, ch: Client, sink: Sink, p: SinkBenchParams, progress: Callable[[str], None]) -> dict:
    progress(f"sink bench: journaling {p.fills:,} fills over {p.accounts} accounts ...")
    _preload(client, p)
    progress("sink bench: draining them into chDB ...")
    t0 = time.perf_counter()
    sink.drain()
    elapsed = time.perf_counter() - t0
    _check(ch, client, sink.settings.group, p.fills, "drain")
    return {"entries": sink.stats.entries, "batches": sink.stats.batches, "seconds": elapsed}


def _paced(
    url: str, client: Any, ch: Client, make_sink: Callable[..., Sink], p: SinkBenchParams,
    progress: Callable[[str], None],
) -> HdrHistogram:  # fmt: skip
    paced = round(p.paced_rate * p.paced_s)
    progress(f"sink bench: {p.paced_rate:,} fills/s for {p.paced_s:g} s while the sink runs ...")
    hist = HdrHistogram(1, 600_000_000_000, 3)
    seen = 0

    def on_commit(report: FlushReport) -> None:
        nonlocal seen
        for ts in report.fill_ts_ns:
            hist.record_value(max(1, report.committed_ns - ts))
        seen += len(report.fill_ts_ns)

    sink = make_sink(on_commit=on_commit)
    stop = threading.Event()
    runner = threading.Thread(target=sink.run, args=(stop,), name="bench-sink")
    runner.start()
    producer = multiprocessing.get_context("spawn").Process(
        target=_produce, args=(url, p.fills, p.paced_rate, p.paced_s, p.accounts)
    )
    producer.start()
    producer.join()
    deadline = time.monotonic() + 60 + 2 * p.batch_interval_s
    while seen < paced and time.monotonic() < deadline and runner.is_alive():
        time.sleep(0.05)
    stop.set()
    runner.join()
    assert producer.exitcode == 0, f"the producer exited with {producer.exitcode}"
    _check(ch, client, sink.settings.group, p.fills + paced, "paced")
    assert seen == paced, f"the sink committed {seen} of {paced} paced fills"
    return hist


def run(p: SinkBenchParams, out_dir: str = "bench/results", progress: Callable[[str], None] = print) -> dict:
    """Run both phases, verify them, write `<out_dir>/sink.json` and return what it wrote."""
    if p.appendfsync not in ("always", "everysec", "no"):
        raise ValueError(f"appendfsync must be always, everysec or no, not {p.appendfsync!r}")
    scale = scales(InstrumentRegistry.load(CONFIGS / "instruments.toml"))
    settings = AnalyticsSettings(
        dsn="unused", batch_rows=p.batch_rows, batch_interval_s=p.batch_interval_s, read_rows=p.read_rows
    )
    load_before = os.getloadavg()
    with (
        tempfile.TemporaryDirectory(prefix="oms-bench-sink-") as tmp,
        ManagedRedis(Path(tmp) / "redis", appendfsync=p.appendfsync) as server,  # type: ignore[arg-type]
    ):
        client = make_client(server.url, timeout_s=30.0)
        ch = connect(f"chdb://{tmp}/clickhouse", "bench")
        try:
            apply_schema(ch)

            def make_sink(**hooks: Any) -> Sink:
                return Sink(client, ch, scale, settings, **hooks)

            drained = _drain(client, ch, make_sink(), p, progress)
            hist = _paced(server.url, client, ch, make_sink, p, progress)
        finally:
            ch.close()
            client.close()
    visible = latency_fields(hist, load="open")
    result = {
        "name": "sink",
        "unit": "fills/s",
        "count": p.fills,
        "ops_per_sec": p.fills / drained["seconds"],
        "p50": visible["p50"],
        "p99": visible["p99"],
        "p999": visible["p999"],
        "max": visible["max"],
        "load": "open",
        "visible": {**visible, "rate": p.paced_rate, "seconds": p.paced_s, "timed_from": "scheduled append time"},
        "drain": drained,
        "targets": TARGETS,
        "verified": True,
        "params": asdict(p),
        "machine": {"cpus": os.cpu_count(), "load_before": load_before, "load_after": os.getloadavg()},
        "note": "ops_per_sec: fills/s from the Redis journal into chDB (XREADGROUP, decode, insert, XACK), drained "
        "from a preloaded journal; top-level p50/p99/p999/max = visible: fill's scheduled journal append -> its "
        "batch inserted (queryable), microseconds, open loop at visible.rate fills/s with the default batching",
    }
    write_result("sink", result, out_dir)
    return result


def summary(r: dict) -> str:
    """The throughput and the fill-to-visible delay beside their targets."""
    v = r["visible"]
    return "\n".join(
        [
            f"journal -> ClickHouse: {r['ops_per_sec']:,.0f} fills/s over {r['count']:,} fills "
            f"(target >= {TARGETS['ops_per_sec']:,.0f})",
            f"fill -> visible at {v['rate']:,} fills/s: p50 {v['p50'] / 1e3:,.1f} ms, p99 {v['p99'] / 1e3:,.1f} ms, "
            f"p99.9 {v['p999'] / 1e3:,.1f} ms, max {v['max'] / 1e3:,.1f} ms "
            f"(target p99 <= {TARGETS['visible_p99_us'] / 1e6:g} s)",
        ]
    )
