"""`RedisStore`: the algo engine's `AlgoStore` on one Redis stream (see `oms.core.algos.store`)."""

from __future__ import annotations

from collections.abc import Iterator

import redis

from oms.core.algos.messages import AlgoRecord
from oms.infra.redis.journal import Journal

__all__ = ["RedisStore"]


class RedisStore:
    """Records on one Redis stream through `oms.infra.redis.journal.Journal` (msgpack, tagged `AlgoRecord` union)."""

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
