"""A connection of its own for a writer on a hot path: commands packed by hiredis, sent in one write, replies read
in order, without redis-py's pool bookkeeping (a readiness poll per call) or its Pipeline object."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from typing import Any

import redis
from hiredis import pack_command

__all__ = ["Link", "Replies"]


class Link:
    """One connection of `client`'s (with its timeouts, outside its pool) for one writer: the committer's write-ahead,
    the tape's appends. `send` writes its commands at once and returns their `Replies`, read when asked for;
    `round_trip` sends and waits. Replies are read in the order the commands were sent, whichever thread asks: asking
    for a later send's replies reads every earlier one's first (each kept for its own `Replies`). Calls are
    serialized (a send waits for a read in progress). An error reply or a broken connection fails every send whose
    replies are not read yet and drops the connection, never reused half-read; the next send reconnects. The
    connection closes with `close`, or when the Link is collected."""

    def __init__(self, client: redis.Redis) -> None:
        self._conn = client.connection_pool.make_connection()
        self._lock = threading.Lock()
        self._owed: deque[Replies] = deque()  # sent, replies not read yet, oldest first

    def send(self, commands: Sequence[tuple[Any, ...]]) -> Replies:
        """Write `commands` in one write now; their replies are read by `Replies.get`. Never raises: a failed write
        fails its `Replies` (and every earlier one still owed)."""
        packed = b"".join(map(pack_command, commands))
        replies = Replies(self, len(commands))
        with self._lock:
            try:
                self._conn.send_packed_command([packed], check_health=False)
            except BaseException as exc:
                self._broken(exc)
                replies.error = exc
                return replies
            self._owed.append(replies)
        return replies

    def round_trip(self, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
        """Send `commands` and return their replies in order; raises what failed."""
        return self.send(commands).get()

    def close(self) -> None:
        with self._lock:
            self._broken(ConnectionError("the link was closed"))

    def _read(self, replies: Replies) -> None:
        """Read the owed replies, oldest first, until `replies` has its own (call under the lock)."""
        owed = self._owed
        while replies.values is None and replies.error is None:
            head = owed[0]
            try:
                head.values = [self._conn.read_response() for _ in range(head.count)]
            except BaseException as exc:
                self._broken(exc)
                return
            owed.popleft()

    def _broken(self, exc: BaseException) -> None:
        """Drop the connection; every send still owed its replies fails with `exc` (call under the lock)."""
        self._conn.disconnect()
        for replies in self._owed:
            replies.error = exc
        self._owed.clear()


class Replies:
    """The replies of one `Link.send`, read (once) by the first `get`."""

    __slots__ = ("_link", "count", "error", "values")

    def __init__(self, link: Link, count: int) -> None:
        self._link = link
        self.count = count
        self.values: list[Any] | None = None
        self.error: BaseException | None = None

    def get(self) -> list[Any]:
        """The replies, in the order of the commands, waiting for them; raises when the send or a reply failed (an
        error reply, a broken connection: then the entries may or may not be stored)."""
        if self.values is None and self.error is None:
            with self._link._lock:
                self._link._read(self)
        if self.error is not None:
            raise self.error
        assert self.values is not None
        return self.values
