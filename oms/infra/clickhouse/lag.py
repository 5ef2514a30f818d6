"""How far the ClickHouse sink is behind, measured in Redis from any process (the OMS's `/metrics`): on each stream
the sink reads (`oms.infra.clickhouse.sink`: every account journal, the tape, the OMS's record, the algo journal),
its consumer group's entries not delivered yet (XINFO GROUPS `lag`), delivered and not acknowledged yet (`pending`:
read, not yet committed to ClickHouse), and the age of the oldest entry not acknowledged (XPENDING's smallest id, or
else the first entry after the group's last delivered one; a stream id's first part is the Redis server's clock in
milliseconds when the entry was added, and the age is taken against that same clock, Redis TIME).

Two pipelined round trips per read at most (the second only for streams with undelivered entries), none of them
blocking. A stream that does not exist yet has nothing to sink and is left out; one whose group does not exist yet
(the sink has not discovered it) counts every entry as undelivered. Where Redis cannot tell a group's lag (entries
deleted from the middle of the stream), the undelivered entries are counted, up to `COUNT_CAP`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import redis

from oms.infra.clickhouse.sink import algos_key
from oms.infra.clickhouse.tape import tape_key
from oms.infra.redis.journal import journal_key
from oms.infra.redis.records import RECORDS_STREAM
from oms.runtime.metrics import StreamLag

__all__ = ["COUNT_CAP", "SinkLag", "sink_streams"]

COUNT_CAP = 1000  # undelivered entries counted one by one at most, where Redis cannot tell the lag


def sink_streams(accounts: Sequence[str], prefix: str = "oms") -> list[str]:
    """The streams the sink reads for these accounts: the tape, the OMS's record, the algo journal, each account's
    journal (the sink finds the account journals by SCAN; the OMS knows its accounts)."""
    return [
        tape_key(prefix),
        f"{prefix}:records:journal:{RECORDS_STREAM}",
        algos_key(prefix),
        *(journal_key(a, prefix) for a in sorted(accounts)),
    ]


def _ms(entry_id: bytes) -> int:
    return int(entry_id.split(b"-", 1)[0])


class SinkLag:
    """`read()`: each stream's `StreamLag` for the consumer group `group`. Raises redis errors (Redis unreachable,
    or slower than the client's timeout): the caller's metrics leave the lag out of that scrape."""

    def __init__(self, client: redis.Redis, group: str, streams: Sequence[str] | Callable[[], Sequence[str]]) -> None:
        """`client`: its socket timeout bounds each round trip. `streams`: the streams, or a function naming them at
        each read."""
        self._redis = client
        self._group = group.encode()
        self._streams = streams

    def read(self) -> dict[str, StreamLag]:
        streams = list(self._streams() if callable(self._streams) else self._streams)
        pipe = self._redis.pipeline(transaction=False)
        pipe.time()
        for stream in streams:
            pipe.xlen(stream)
            pipe.xinfo_groups(stream)
            pipe.xpending(stream, self._group)
        first, *replies = pipe.execute(raise_on_error=False)
        if isinstance(first, Exception):
            raise first
        now_ms = first[0] * 1000 + first[1] // 1000
        found: dict[str, tuple[int, int, int | None, bytes | None, bytes]] = {}  # (xlen, pending, lag, oldest, after)
        for i, stream in enumerate(streams):
            length, groups, pending = replies[3 * i : 3 * i + 3]
            if isinstance(length, Exception):
                raise length
            if not length:
                continue  # no stream (or an empty one): nothing to sink
            if isinstance(groups, Exception):
                raise groups
            group = next((g for g in groups if g["name"] == self._group), None)
            if group is None:  # not discovered by the sink yet: everything is undelivered
                found[stream] = (length, 0, length, None, b"0-0")
                continue
            if isinstance(pending, Exception):
                raise pending
            lag = group["lag"]
            oldest = pending["min"] if pending["pending"] else None
            found[stream] = (length, int(group["pending"]), lag, oldest, group["last-delivered-id"])
        # the first undelivered entry (for the age when nothing is pending), or the undelivered ones counted
        later = [s for s, (_, pend, lag, _, _) in found.items() if lag is None or (lag > 0 and not pend)]
        if later:
            pipe = self._redis.pipeline(transaction=False)
            for stream in later:
                after = found[stream][4]
                start = b"-" if after == b"0-0" else b"(" + after
                pipe.xrange(stream, start, "+", count=COUNT_CAP if found[stream][2] is None else 1)
            tails = dict(zip(later, pipe.execute(), strict=True))
        else:
            tails = {}
        out: dict[str, StreamLag] = {}
        for stream, (length, pend, lag, oldest, _) in found.items():
            tail = tails.get(stream, [])
            undelivered = len(tail) if lag is None else min(int(lag), length)
            if oldest is None and undelivered and tail:
                oldest = tail[0][0]
            age = max(now_ms - _ms(oldest), 0) / 1000 if oldest is not None else 0.0
            out[stream] = StreamLag(undelivered, pend, age)
        return out
