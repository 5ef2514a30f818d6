"""The sink and the algo engine's journal (real redis-server, real chDB): parent records become rows of `parents`,
the engine's working records are acknowledged without a row, a parent of an unknown instrument is a dead letter,
and a batch read again after a crash between insert and acknowledgement is not counted twice."""

from __future__ import annotations

import pytest
import redis

from oms.core.algos.messages import (
    CancelParent,
    CancelSent,
    ChildDone,
    ChildFilled,
    ChildSent,
    ParentClosing,
    ParentStatus,
    SubmitIceberg,
    SubmitTwap,
    VolumeObserved,
)
from oms.core.model.enums import CancelReason, OrdType, Side, TimeInForce
from oms.core.model.instruments import InstrumentRegistry
from oms.infra.clickhouse.clickhouse import Client
from oms.infra.clickhouse.rows import scales
from oms.infra.clickhouse.settings import AnalyticsSettings
from oms.infra.clickhouse.sink import Batch, Sink, algos_key, dead_letter_key
from oms.infra.redis.algo_store import RedisStore
from tests.integration.sink_child import INSTRUMENTS
from tests.integration.test_sink import db, store  # noqa: F401 (fixtures: a fresh database per test)

pytestmark = pytest.mark.integration

SCALE = scales(InstrumentRegistry.load(INSTRUMENTS))
T = 1_767_225_600_000_000_000
MS = 1_000_000


class Crash(Exception):
    """The sink died after ClickHouse confirmed its insert and before it acknowledged the entries."""


def _crash(batch: Batch) -> None:
    raise Crash


def test_algo_records_become_parent_rows_once_even_when_a_batch_is_read_again(
    redis_client: redis.Redis, db: tuple[Client, str]  # noqa: F811
) -> None:
    ch, prefix = db
    algos = RedisStore(redis_client, prefix=f"{prefix}:algos")  # what `oms serve` writes, under this test's prefix
    algos.append([SubmitTwap("P1", "ACC1", "AAPL", Side.BUY, 600, T, T + 60_000 * MS, 4, 1_500_000, ts_ns=T)])
    algos.append([
        ChildSent("P1", "P1.1", "slice", Side.BUY, OrdType.LIMIT, TimeInForce.IOC, 150, 1_500_000, None, 0, T + MS),
        ChildFilled("P1", "P1.1", 100, 100 * 1_499_900, 7, T + 2 * MS),  # the fill is a row of executions: no row
        VolumeObserved("P1", 5_000, T + 3 * MS),  # the engine's working state: no row
        ChildDone("P1", "P1.1", "canceled", int(CancelReason.IOC), "IOC", T + 4 * MS),
        SubmitIceberg("P2", "ACC2", "ESZ6", Side.SELL, 20, 5, 500_000),  # no time: the entry's is used
        SubmitIceberg("P3", "ACC2", "NOPE", Side.SELL, 20, 5, 500_000, ts_ns=T),  # unknown instrument: dead letter
        CancelParent("P1", T + 5 * MS),
        CancelSent("P1", "P1.2", "P1.3", T + 5 * MS),
        ParentClosing("P2", ParentStatus.STOPPED, "3 children rejected in a row", T + 6 * MS),
    ])  # fmt: skip
    stream = algos_key(prefix)
    settings = AnalyticsSettings(dsn="x")
    first = Sink(redis_client, ch, SCALE, settings, prefix=prefix, after_insert=_crash)

    with pytest.raises(Crash):
        first.drain()  # inserted, never acknowledged: every entry stays pending with this consumer
    pending = redis_client.xpending(stream, settings.group)["pending"]
    again = Sink(redis_client, ch, SCALE, settings, prefix=prefix)  # the restarted sink, same consumer name
    again.drain()

    rows = ch.query(
        "SELECT event, parent_id, kind, account, symbol, asset_class, side, qty, price, sched_start_ns, params, status,"
        " child_cl_ord_id, role, ord_type, tif, outcome, reason, text, ts_ns, ts_source FROM parents FINAL "
        "ORDER BY src_ms, src_seq"
    ).result_rows
    entry_ms = int(redis_client.xrange(stream)[4][0].split(b"-")[0])  # P2's entry
    assert pending == 10 and again.stats.rows["parents"] == 6  # every entry read again, the rows inserted again
    assert rows == [
        ("accepted", "P1", "TWAP", "ACC1", "AAPL", "equity", "BUY", 600.0, 150.0, T,
         '{"slices": 4, "jitter_pct": 0, "seed": 0}', "", "", "", "", "", "", "", "", T, "record"),
        ("child_sent", "P1", "", "", "", "", "BUY", None, None, None, "", "", "P1.1", "slice", "LIMIT", "IOC", "", "",
         "", T + MS, "record"),
        ("child_done", "P1", "", "", "", "", "", None, None, None, "", "", "P1.1", "", "", "", "canceled", "IOC", "IOC",
         T + 4 * MS, "record"),
        ("accepted", "P2", "ICEBERG", "ACC2", "ESZ6", "future", "SELL", 20.0, 5000.0, None, '{"display_qty": "5"}',
         "", "", "", "", "", "", "", "", entry_ms * MS, "entry"),
        ("cancel_requested", "P1", "", "", "", "", "", None, None, None, "", "CANCELED", "", "", "", "", "", "",
         "canceled on request", T + 5 * MS, "record"),
        ("closing", "P2", "", "", "", "", "", None, None, None, "", "STOPPED", "", "", "", "", "", "",
         "3 children rejected in a row", T + 6 * MS, "record"),
    ]  # fmt: skip
    dead = redis_client.xrange(dead_letter_key(prefix))
    assert [(f[b"stream"].decode(), f[b"reason"].decode()) for _, f in dead] == [(stream, "unknown instrument 'NOPE'")]
    assert redis_client.xpending(stream, settings.group)["pending"] == 0
