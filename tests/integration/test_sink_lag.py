"""`SinkLag` against a real Redis: how far a consumer group is behind on each stream, as the sink's group would be."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from oms.infra.clickhouse.lag import COUNT_CAP, SinkLag, sink_streams
from oms.infra.redis.server import ManagedRedis, make_client
from oms.runtime.metrics import StreamLag

pytestmark = pytest.mark.integration

GROUP = "oms-clickhouse"


@pytest.fixture
def client(tmp_path: Path) -> Iterator[redis.Redis]:
    with ManagedRedis(tmp_path / "redis") as server:
        c = make_client(server.url, 1.0)
        yield c
        c.close()


def add(client: redis.Redis, stream: str, n: int) -> list[bytes]:
    return [client.xadd(stream, {"r": b"x"}) for _ in range(n)]


def test_the_sink_streams_are_the_tape_the_record_the_algo_journal_and_each_accounts_journal() -> None:
    assert sink_streams(["B", "A"]) == ["oms:tape", "oms:records:journal:events", "oms:algos:journal:parents",
                                        "oms:journal:A", "oms:journal:B"]  # fmt: skip


def test_undelivered_and_pending_entries_and_the_age_of_the_oldest_unacknowledged(client: redis.Redis) -> None:
    add(client, "s", 5)
    client.xgroup_create("s", GROUP, id="0")
    time.sleep(0.2)
    read = client.xreadgroup(GROUP, "sink-1", {"s": ">"}, count=2)  # delivered, not acknowledged: pending
    add(client, "s", 1)

    lag = SinkLag(client, GROUP, ["s"]).read()

    assert lag["s"].undelivered == 4 and lag["s"].pending == 2
    assert 0.2 <= lag["s"].oldest_age_s < 5
    ids = [entry_id for entry_id, _ in read[0][1]]
    client.xack("s", GROUP, *ids)
    after_ack = SinkLag(client, GROUP, ["s"]).read()["s"]  # the oldest is now the first undelivered one
    assert (after_ack.undelivered, after_ack.pending) == (4, 0) and 0.2 <= after_ack.oldest_age_s < 5


def test_a_caught_up_group_has_no_lag_and_a_missing_stream_is_left_out(client: redis.Redis) -> None:
    ids = add(client, "s", 3)
    client.xgroup_create("s", GROUP, id="0")
    client.xreadgroup(GROUP, "sink-1", {"s": ">"})
    client.xack("s", GROUP, *ids)

    assert SinkLag(client, GROUP, ["s", "nothing"]).read() == {"s": StreamLag(0, 0, 0.0)}


def test_a_stream_the_sink_has_not_found_yet_is_behind_by_all_its_entries(client: redis.Redis) -> None:
    add(client, "s", 3)
    time.sleep(0.1)

    lag = SinkLag(client, GROUP, lambda: ["s"]).read()["s"]

    assert (lag.undelivered, lag.pending) == (3, 0) and lag.oldest_age_s >= 0.1


def test_where_redis_cannot_tell_the_lag_the_undelivered_entries_are_counted(client: redis.Redis) -> None:
    ids = add(client, "s", 6)
    client.xgroup_create("s", GROUP, id="0")
    client.xreadgroup(GROUP, "sink-1", {"s": ">"}, count=2)
    client.xdel("s", ids[3])  # a deletion in the middle: XINFO GROUPS answers lag nil
    assert client.xinfo_groups("s")[0]["lag"] is None

    lag = SinkLag(client, GROUP, ["s"]).read()["s"]

    assert (lag.undelivered, lag.pending) == (3, 2) and COUNT_CAP > 3


def test_redis_out_of_reach_raises(tmp_path: Path) -> None:
    with ManagedRedis(tmp_path / "redis") as server:
        url = server.url
    client = make_client(url, 0.2)
    with pytest.raises(redis.ConnectionError):
        SinkLag(client, GROUP, ["s"]).read()
