"""Where the algo engine journals parent commands and records: the `AlgoStore` port, and a list.

The durable store is `oms.infra.redis.algo_store.RedisStore`; it uses `oms.infra.redis.journal.Journal` on one
stream that no account owns, `oms:algos:journal:parents` by default (its own prefix, so a scan of the accounts'
`oms:journal:*` streams never meets it). Records are appended in batches of one round trip each (`Journal.append_many`:
all or nothing) and read back in order by `read`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from oms.core.algos.messages import AlgoRecord

__all__ = ["AlgoStore", "MemoryStore"]


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
