"""The FIX gateway's inbound marks in a real Redis: written soon after they are saved, the latest one wins, read back
by the next start, and kept (not lost, not reordered) while Redis does not answer."""

from __future__ import annotations

import time

import redis

from oms.infra.redis.fixmarks import KEY, RedisInboundMarks
from oms.infra.redis.server import ManagedRedis, make_client


def _until(check, seconds: float = 5.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def test_marks_are_written_soon_and_read_back(fresh_redis: redis.Redis, redis_server: ManagedRedis) -> None:
    marks = RedisInboundMarks(make_client(redis_server.url))
    marks.save("FIX.4.4:OMS->A", 7)
    marks.save("FIX.4.4:OMS->A", 9)  # the latest wins
    marks.save("FIX.4.2:OMS->B", 3)

    assert _until(lambda: fresh_redis.hget(KEY, "FIX.4.4:OMS->A") == b"9")
    marks.close()
    assert RedisInboundMarks(make_client(redis_server.url)).load() == {"FIX.4.4:OMS->A": 9, "FIX.4.2:OMS->B": 3}


def test_marks_wait_for_redis_and_are_written_when_it_answers(
    fresh_redis: redis.Redis, redis_server: ManagedRedis
) -> None:
    unreachable = make_client("redis://127.0.0.1:1/0", timeout_s=0.2)
    marks = RedisInboundMarks(unreachable)
    marks.save("S", 4)
    marks.flush()  # logged, kept
    marks.save("S", 5)
    marks._client = make_client(redis_server.url)  # Redis answers again
    marks.flush()

    assert fresh_redis.hget(KEY, "S") == b"5"
    marks.close()
