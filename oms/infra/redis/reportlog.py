"""The reserved gate's write-ahead log: a local decision is in Redis before its report leaves the OMS.

In reserved mode the engine accepts orders itself, and queues the cancels and expiries of those accounts' orders,
and reports them to the account later, in batches. Without this log, a crash (of the OMS, or of the account's actor
while a report is on its way) would lose acknowledged orders and leave canceled ones holding exposure.

Key `oms:wal:{account}`: a Redis stream; each entry holds one field `r`, the msgpack list of the events of one local
acceptance (AllowanceSpent, OrderAccepted) or of the cancels and expiries one step queued. The gate
(`oms.core.reserved.AllowanceGate`) writes the entry and only then returns. The account shard journals an
acceptance when the gate's report reaches it, and deletes the log's entries up to that one in the same script
(`Journal.append_many(..., settles=...)`): an acceptance is in the log or in the account's journal, never both and
never neither. The spend carries its entry's id (`AllowanceSpent.wal`). A cancel's entry goes with the next
acceptance's (or at a rebuild); until then it may be in both, which is harmless: an account applies a cancel or
expiry only to an order it holds open, and journals nothing for a second copy.

When a host rebuilds an account (an actor restarted, an OMS restarted after a crash), `pending` gives what the log
still holds, in order, and the id the log has reached, read together in one script. The host applies and journals
those entries first; acceptances reported afterwards for entries at or below that id are already in the journal and
are skipped, and so are cancels of orders no longer open. Local rejects are not written ahead: they hold nothing,
and a crash before their report only loses the reject's record (the ClOrdID is not remembered as used).

A write that fails raises, and the gate accepts (or queues) nothing. If the failure hid a write that did happen (a
timeout after Redis applied it), the rebuilt account holds that order as accepted although no ack left: the same
ambiguity as any journal append whose reply was lost (docs/journal.md).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

import msgspec
import redis

from oms.infra.redis.journal import RECORD_FIELD, parse_id
from oms.infra.redis.link import Link

__all__ = ["ReportLog", "after", "wal_key"]

R = TypeVar("R")

# The log's entries and the id it has reached (XINFO's last-generated-id survives the deletion of every entry),
# read atomically so that no entry written in between is counted as seen and not returned.
_PENDING_LUA = """
local entries = redis.call('XRANGE', KEYS[1], '-', '+')
local last = '0-0'
if redis.call('EXISTS', KEYS[1]) == 1 then
    local info = redis.call('XINFO', 'STREAM', KEYS[1])
    for i = 1, #info, 2 do
        if info[i] == 'last-generated-id' then last = info[i + 1] end
    end
end
return {last, entries}
"""


def wal_key(account: str, prefix: str = "oms") -> str:
    return f"{prefix}:wal:{account}"


def after(entry_id: str, floor: str) -> bool:
    """True when stream id `entry_id` comes after `floor`."""
    return parse_id(entry_id) > parse_id(floor)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class ReportLog(Generic[R]):
    """Write-ahead entries of local decisions, one stream per account; see the module docstring."""

    def __init__(self, client: redis.Redis, record_type: Any, prefix: str = "oms") -> None:
        if client.get_connection_kwargs().get("decode_responses"):
            raise ValueError("the report log needs a redis client with decode_responses=False (entries are msgpack)")
        self._client = client
        self._prefix = prefix
        self._encoder = msgspec.msgpack.Encoder()
        self._decoder: msgspec.msgpack.Decoder[list[Any]] = msgspec.msgpack.Decoder(list[record_type])  # type: ignore[valid-type]
        self._pending = client.register_script(_PENDING_LUA)
        self._link = Link(client)  # the write-ahead's own connection (opened at the first write_many)

    def key(self, account: str) -> str:
        return wal_key(account, self._prefix)

    def write(self, account: str, records: Sequence[R]) -> str:
        """Append one entry holding `records`; returns its id once Redis has answered (a failure raises)."""
        return _text(self._client.xadd(self.key(account), {RECORD_FIELD: self._encoder.encode(records)}))

    def write_many(self, entries: Sequence[tuple[str, Sequence[R]]]) -> list[str]:
        """Append each (account, records) as one entry of that account's log, in one round trip (pipelined: one
        fsync covers them all); their ids, in order. A failure raises (entries before it may be stored: a rebuilt
        account journals them, as it would a write whose reply was lost)."""
        return self.send_many(entries)()

    def send_many(self, entries: Sequence[tuple[str, Sequence[R]]]) -> Callable[[], list[str]]:
        """`write_many`, with the round trip split: the entries are sent now, and the returned call waits for the
        answer (their ids, in order; it raises what failed, entries before it may be stored). Any later call reads
        this one's answer first: writes land in the order they were sent."""
        encode = self._encoder.encode
        commands = [("XADD", self.key(account), "*", RECORD_FIELD, encode(records)) for account, records in entries]
        replies = self._link.send(commands)
        return lambda: [_text(sid) for sid in replies.get()]

    def pending(self, account: str) -> tuple[list[tuple[str, list[R]]], str]:
        """([(id, records)] still in the log, oldest first; the id the log has reached, "0-0" when never written)."""
        last, entries = self._pending(keys=[self.key(account)])
        out = [(_text(sid), self._decoder.decode(fields[fields.index(RECORD_FIELD) + 1])) for sid, fields in entries]
        return out, _text(last)

    def length(self, account: str) -> int:
        """Entries still in the log (XLEN)."""
        return int(self._client.xlen(self.key(account)))
