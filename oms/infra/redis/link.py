"""A connection of its own for a writer on a hot path: commands packed by hiredis, sent in one write, replies read
in order, without redis-py's pool bookkeeping (a readiness poll per call) or its Pipeline object."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import redis
from hiredis import pack_command

__all__ = ["Link"]


class Link:
    """One connection of `client`'s (with its timeouts, outside its pool) for one writer: the committer's write-ahead,
    the tape's appends. `round_trip` sends its commands in one write and returns their replies in order; calls are
    serialized. An error reply or a broken connection raises and drops the connection, never reused half-read;
    the next call reconnects. The connection closes with `close`, or when the Link is collected."""

    def __init__(self, client: redis.Redis) -> None:
        self._conn = client.connection_pool.make_connection()
        self._lock = threading.Lock()

    def round_trip(self, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
        packed = b"".join(map(pack_command, commands))
        with self._lock:
            conn = self._conn
            try:
                conn.send_packed_command([packed], check_health=False)
                return [conn.read_response() for _ in commands]
            except BaseException:
                conn.disconnect()
                raise

    def close(self) -> None:
        with self._lock:
            self._conn.disconnect()
