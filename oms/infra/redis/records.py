"""The OMS's own record: what it did or refused that changes no account, in one journal stream of its own.

The account journals (`oms:journal:{account}`) hold what moves an account; some things the OMS answers move none and
would otherwise be recorded nowhere: a cancel or replace it refused (`CancelRejected`), a new order refused before an
order id was spent for it (`OrderRejected` with order id 0: unknown symbol, duplicate ClOrdID, not ready, shutting
down), and what an operator did (`OperatorAction`: the kill switch, by whom). `RecordLog` keeps them in the stream
`oms:records:journal:events` (a `Journal`: msgpack records in a hash chain that `oms audit verify` checks), and the
ClickHouse sink turns them into rows of `orders` and `operator_actions`.

They are written like the journal's write-ahead: held while the sequencer's batch runs (`on_reports`, a subscriber,
and `add`, from inside a step), written as one append when the batch is sealed (`seal`, one of the sequencer's
seals), so the answer to a refused cancel leaves only once its record is durable.
"""

from __future__ import annotations

from collections.abc import Callable

import redis

from oms.core.model.messages import CancelRejected, OperatorAction, OrderRejected
from oms.core.orders import OrderView
from oms.infra.redis.journal import Journal
from oms.runtime.logs import EventLog

__all__ = ["RECORDS_PREFIX", "RECORDS_STREAM", "Record", "RecordLog"]

Record = CancelRejected | OrderRejected | OperatorAction
RECORDS_PREFIX = "oms:records"  # the stream is `<prefix>:journal:<stream>` (`oms.infra.redis.journal`)
RECORDS_STREAM = "events"
operator_log = EventLog("oms.operator")


class RecordLog:
    """Holds the records of the sequencer's running batch and writes them when it is sealed (see the module)."""

    def __init__(self, client: redis.Redis, prefix: str = RECORDS_PREFIX) -> None:
        """`client` must return bytes (`oms.infra.redis.server.make_client`)."""
        self._client = client
        self._journal: Journal[Record] = Journal(client, Record, prefix=prefix)
        self._held: list[Record] = []

    def on_reports(self, reports: list[tuple[object, OrderView | None]]) -> None:
        """The sequencer's subscriber: keeps every refused cancel or replace, and every new order refused before it
        had an order id (the account journals hold the rest)."""
        for event, _ in reports:
            if type(event) is CancelRejected or (type(event) is OrderRejected and not event.order_id):
                self._held.append(event)

    def add(self, record: OperatorAction) -> None:
        """Keep `record` with the running batch (call from inside a step, on the sequence), and log it (INFO on
        `oms.operator`: action, account, detail, actor)."""
        self._held.append(record)
        operator_log.info("operator action", action=record.action, account=record.account, detail=record.detail,
                          actor=record.actor)  # fmt: skip

    def seal(self) -> Callable[[], None] | None:
        """The sequencer's seal: the append of what the batch kept (None when it kept nothing). The append is
        retried by the committer until it lands; one that failed after Redis took it leaves the records twice."""
        if not self._held:
            return None
        records, self._held = self._held, []
        journal = self._journal

        def write() -> None:
            journal.append_many(RECORDS_STREAM, records)

        return write

    def close(self) -> None:
        """Close the Redis client (after the sequencer has stopped: nothing is sealed any more)."""
        self._client.close()

    def read(self) -> list[Record]:
        """Every record so far, oldest first (for tools and tests)."""
        return [record for _, record in self._journal.read(RECORDS_STREAM)]
