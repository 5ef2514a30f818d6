"""`Link`: the order path's one write per batch, on a real redis-server: every reply in order, whichever send is read
first; an error reply or a broken connection raises without leaving a half-read connection behind."""

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


def test_sends_are_answered_in_order_whichever_is_asked_first(fresh_redis: redis.Redis) -> None:
    link = Link(fresh_redis)
    try:
        first = link.send([("XADD", "p:a", "*", "r", b"1")])
        second = link.send([("XADD", "p:a", "*", "r", b"2"), ("XLEN", "p:a")])
        later, length = second.get()  # reads the first send's reply on the way, and keeps it for it
        (earlier,) = first.get()
        assert length == 2
        assert [i for i, _ in fresh_redis.xrange("p:a")] == [earlier, later]
        assert link.round_trip([("XLEN", "p:a")]) == [2]
    finally:
        link.close()


def test_a_broken_connection_fails_every_send_still_owed_and_the_next_one_reconnects(
    redis_server: ManagedRedis,
) -> None:
    client = make_client(redis_server.url)
    link = Link(client)
    try:
        client.delete("p:q", "p:u")
        (link_id,) = link.round_trip([("CLIENT", "ID")])
        waiting = link.send([("BLPOP", "p:q", 5)])  # answered only when p:q gets an item, or in 5 s
        behind = link.send([("XADD", "p:u", "*", "r", b"x")])  # Redis reads it only after the BLPOP
        assert client.client_kill_filter(_id=link_id) == 1  # the link's connection, and no other
        with pytest.raises(redis.ConnectionError):
            behind.get()
        with pytest.raises(redis.ConnectionError):
            waiting.get()  # failed with it: never read as anything else's reply
        assert link.round_trip([("XADD", "p:u", "*", "r", b"y"), ("XLEN", "p:u")])[1] == 1
    finally:
        client.delete("p:q", "p:u")
        link.close()
        client.close()
