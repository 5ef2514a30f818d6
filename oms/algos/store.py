"""Where the algo engine journals parent commands and records: a Redis stream (`RedisStore`) or a list.

`RedisStore` uses `oms.journal.Journal` on one stream that no account owns, `oms:algos:journal:parents` by default
(its own prefix, so a scan of the accounts' `oms:journal:*` streams never meets it). Records are appended in
batches of one round trip each (`Journal.append_many`: all or nothing) and read back in order by `read`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import redis

from oms.algos.messages import AlgoRecord
from oms.journal import Journal

__all__ = ["AlgoStore", "MemoryStore", "RedisStore"]


class AlgoStore(Protocol):
    def append(self, records: list[AlgoRecord]) -> None:
        """Store `records` in order; returns once they are as durable as the store makes them."""
        ...

    def read(self) -> Iterator[AlgoRecord]:
        """Every record stored, oldest first."""
        ...


class MemoryStore:
    """Records in a list: for tests and for an engine that need not survive its process."""

    def __init__(self) -> None:
        self.records: list[AlgoRecord] = []

    def append(self, records: list[AlgoRecord]) -> None:
        self.records.extend(records)

    def read(self) -> Iterator[AlgoRecord]:
        return iter(list(self.records))


class RedisStore:
    """Records on one Redis stream through `oms.journal.Journal` (msgpack, tagged `AlgoRecord` union)."""

    def __init__(self, client: redis.Redis, stream: str = "parents", prefix: str = "oms:algos") -> None:
        self._journal: Journal[AlgoRecord] = Journal(client, AlgoRecord, prefix=prefix)
        self._stream = stream

    def append(self, records: list[AlgoRecord]) -> None:
        self._journal.append_many(self._stream, records)

    def read(self) -> Iterator[AlgoRecord]:
        for _, record in self._journal.read(self._stream):
            yield record

    def length(self) -> int:
        return self._journal.length(self._stream)
