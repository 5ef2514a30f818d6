"""`Link.round_trip`: the order path's one write per batch, on a real redis-server: every reply in order, and an error
reply raises without leaving a half-read connection behind."""

from __future__ import annotations

import pytest
import redis

from oms.infra.redis.link import Link
from oms.infra.redis.server import ManagedRedis, make_client

pytestmark = pytest.mark.integration


def test_every_command_is_applied_and_answered_in_order(fresh_redis: redis.Redis) -> None:
    link = Link(fresh_redis)
    ids = link.round_trip([("XADD", "p:a", "*", "r", b"1"), ("XADD", "p:b", "*", "r", b"2"),
                           ("XADD", "p:a", "*", "r", b"3")])  # fmt: skip
    link.close()
    assert [[f[b"r"] for _, f in fresh_redis.xrange(k)] for k in ("p:a", "p:b")] == [[b"1", b"3"], [b"2"]]
    assert [i.decode() for i in ids] == [fresh_redis.xrange("p:a")[0][0].decode(),
                                         fresh_redis.xrange("p:b")[0][0].decode(),
                                         fresh_redis.xrange("p:a")[1][0].decode()]  # fmt: skip


def test_an_error_reply_raises_and_the_client_goes_on(redis_server: ManagedRedis) -> None:
    client = make_client(redis_server.url)
    link = Link(client)
    try:
        client.delete("p:s", "p:t")
        client.set("p:s", "a string, not a stream")
        with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
            link.round_trip([("XADD", "p:s", "*", "r", b"x"), ("XADD", "p:t", "*", "r", b"y")])
        assert client.xlen("p:t") == 1  # the command after the error was sent, and applied, with its batch
        assert link.round_trip([("XLEN", "p:t")]) == [1]  # no reply of the failed batch is read as this one's
        assert client.ping()
    finally:
        client.delete("p:s", "p:t")
        link.close()
        client.close()
