"""A sink process for crash tests: `python -m tests.integration.sink_child --redis-url URL --dsn DSN ...`.

Modes: `--drain` reads until nothing is left and exits 0; otherwise it runs until SIGTERM. `--kill-after-batches K`
SIGKILLs this very process right after ClickHouse confirmed the K-th insert and before its XACK: the worst moment,
a batch in ClickHouse and still pending in Redis. After each committed batch it prints `COMMITTED <entries>`.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path

from oms.core.model.instruments import InstrumentRegistry
from oms.infra.clickhouse.clickhouse import apply_schema, connect
from oms.infra.clickhouse.rows import scales
from oms.infra.clickhouse.settings import AnalyticsSettings
from oms.infra.clickhouse.sink import Batch, FlushReport, Sink
from oms.infra.redis.server import make_client

INSTRUMENTS = Path(__file__).resolve().parents[2] / "configs" / "instruments.toml"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--database", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--group", default="oms-clickhouse")
    parser.add_argument("--consumer", default="sink-1")
    parser.add_argument("--batch-rows", type=int, default=1000)
    parser.add_argument("--read-rows", type=int, default=500)
    parser.add_argument("--claim-idle-s", type=float, default=30.0)
    parser.add_argument("--kill-after-batches", type=int, default=0)
    parser.add_argument("--drain", action="store_true")
    args = parser.parse_args()

    settings = AnalyticsSettings(
        dsn=args.dsn, database=args.database, group=args.group, consumer=args.consumer, batch_rows=args.batch_rows,
        read_rows=args.read_rows, batch_interval_s=0.2, claim_idle_s=args.claim_idle_s,
    )  # fmt: skip
    inserted = 0

    def after_insert(batch: Batch) -> None:
        nonlocal inserted
        inserted += 1
        if inserted == args.kill_after_batches:
            held = ch.query("SELECT count() FROM executions").result_rows[0][0]
            print(f"KILLING after insert {inserted} of {batch.entries} entries; executions holds {held}", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)

    def on_commit(report: FlushReport) -> None:
        print(f"COMMITTED {report.entries}", flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    ch = connect(args.dsn, args.database)
    client = make_client(args.redis_url)
    try:
        apply_schema(ch)
        sink = Sink(
            client, ch, scales(InstrumentRegistry.load(INSTRUMENTS)), settings, prefix=args.prefix,
            after_insert=after_insert, on_commit=on_commit,
        )  # fmt: skip
        print("READY", flush=True)
        if args.drain:
            sink.drain()
        else:
            sink.run(stop)
        print(f"DONE {sink.stats.entries} claimed={sink.stats.claimed}", flush=True)
    finally:
        client.close()
        ch.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
