"""The ClickHouse sink: journal and tape streams -> a Redis consumer group -> batched inserts -> XACK.

Streams: every account journal `<prefix>:journal:{account}` (found by SCAN, again every `discover_interval_s`, so
new accounts join), the tape `<prefix>:tape`, the OMS's own record of refusals and operator actions
`<prefix>:records:journal:events` (`oms.infra.redis.records`) and the algo engine's journal of parent orders
`<prefix>:algos:journal:parents` (`oms.infra.redis.algo_store`, rows of `parents`). On each the sink reads as
consumer `consumer` of group `group` (created at the start of the stream, id 0, so a new group sinks the whole
history).

Promises:

- Nothing is acknowledged before ClickHouse confirmed the insert that holds it. A batch is inserted (one insert per
  table) when it holds `batch_rows` entries or its oldest entry has waited `batch_interval_s`; only then are its
  entries XACK-ed. So a sink killed at any point leaves every entry it had not acknowledged in the group's pending
  list, and the next start re-reads its own pending entries (XREADGROUP from id 0) before new ones. Entries pending
  with another consumer longer than `claim_idle_s` (a sink that died under another name) are taken over with
  XAUTOCLAIM. No fill is lost.
- A re-read batch may already be in ClickHouse, in part or in full: every table is a ReplacingMergeTree keyed by the
  record's identity (exec_id for fills, (venue, match_id) for prints, the stream entry for order events and quotes),
  so queries with FINAL (all reports) count each record once. No fill is counted twice.
- An entry that cannot be used (does not decode, has no `r` field, was deleted while pending, or names an unknown
  instrument) is not dropped silently: it is appended to `<prefix>:analytics:dead` (stream, id, reason) and then
  acknowledged, so one bad record cannot stall the pipeline. The journal's kill switch, trading state, limits and
  day starts become rows of `account_changes`; its other admin events (marks, quotes, allowances) and the algo
  engine's working records (`ChildFilled`, whose fill is a row of `executions`, `CancelSent`,
  `CancelFailed`, `VolumeObserved`, `StopTriggered`) are acknowledged without a row.
- ClickHouse errors on insert are retried (the batch stays unacknowledged) with a growing pause; Redis errors end
  `run` with the exception. Restarting is always safe.

Reading is one EVALSHA per poll for all streams: a short Lua script runs XREADGROUP on each stream and returns the
entry ids joined by spaces and the records concatenated, so a poll costs two bulk strings to parse, whatever its size,
and msgspec decodes the concatenation as one msgpack array. Acknowledging is one EVALSHA too.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import msgspec
import pyarrow as pa
import redis
from clickhouse_connect.driver.exceptions import Error as ClickHouseDriverError

from oms.core.accounts import AccountEvent
from oms.core.algos.messages import AlgoRecord
from oms.core.model.messages import OperatorAction, OrderFilled, OrderRejected, TradePrinted
from oms.infra.clickhouse.clickhouse import TABLES, AnalyticsError, Client, error_message
from oms.infra.clickhouse.rows import (
    ACCOUNT_CHANGES,
    ORDER_EVENTS,
    PARENT_RECORDS,
    PARENT_SUBMITS,
    Columns,
    Scale,
    action_columns,
    change_columns,
    fill_columns,
    order_columns,
    parent_columns,
    quote_columns,
    trade_columns,
)
from oms.infra.clickhouse.settings import AnalyticsSettings
from oms.infra.clickhouse.tape import Quote, TapeRecord, tape_key
from oms.infra.redis.records import RECORDS_STREAM, Record

__all__ = ["Batch", "Chunk", "FlushReport", "Sink", "SinkStats", "algos_key", "dead_letter_key"]

log = logging.getLogger("oms.infra.clickhouse.sink")

# KEYS: the streams. ARGV[1] group, ARGV[2] consumer, ARGV[3] COUNT per stream, ARGV[3 + i] the id for KEYS[i]
# ('>' for new entries, or an id to re-read this consumer's pending entries after it). Per stream it returns
# {ids joined by ' ', records concatenated, ids of unusable entries joined by ' '}.
_READ_LUA = """
local out = {}
for i, key in ipairs(KEYS) do
    local r = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', ARGV[3], 'STREAMS', key, ARGV[3 + i])
    local ids, recs, bad = {}, {}, {}
    if r then
        for _, e in ipairs(r[1][2]) do
            local f = e[2]
            if f and #f == 2 and f[1] == 'r' then
                ids[#ids + 1] = e[1]
                recs[#recs + 1] = f[2]
            else
                bad[#bad + 1] = e[1]
            end
        end
    end
    out[i] = {table.concat(ids, ' '), table.concat(recs), table.concat(bad, ' ')}
end
return out
"""
# KEYS: the streams; ARGV[1] group; ARGV[1 + i]: the ids to acknowledge on KEYS[i], joined by ' '.
_ACK_LUA = """
local acked = 0
for i, key in ipairs(KEYS) do
    local ids = {}
    for id in string.gmatch(ARGV[1 + i], '%S+') do
        ids[#ids + 1] = id
        if #ids == 1000 then
            acked = acked + redis.call('XACK', key, ARGV[1], unpack(ids))
            ids = {}
        end
    end
    if #ids > 0 then
        acked = acked + redis.call('XACK', key, ARGV[1], unpack(ids))
    end
end
return acked
"""
RECORD_FIELD = b"r"
_PENDING = "0"  # cursor value: re-read this consumer's pending entries from the start
_NEW = ">"


def dead_letter_key(prefix: str = "oms") -> str:
    return f"{prefix}:analytics:dead"


def algos_key(prefix: str = "oms") -> str:
    """The algo engine's journal stream (`oms.infra.redis.algo_store.RedisStore` with its default stream, under
    `<prefix>:algos`)."""
    return f"{prefix}:algos:journal:parents"


@dataclass
class Batch:
    """What the sink holds between two inserts: records by table, and the entry ids to acknowledge per stream."""

    fills: list[OrderFilled] = field(default_factory=list)
    fill_ids: list[bytes] = field(default_factory=list)
    orders: list[Any] = field(default_factory=list)
    order_ids: list[bytes] = field(default_factory=list)
    order_srcs: list[str] = field(default_factory=list)  # '' for an account journal's, 'records' for the OMS's own
    actions: list[OperatorAction] = field(default_factory=list)
    action_ids: list[bytes] = field(default_factory=list)
    changes: list[Any] = field(default_factory=list)  # the accounts' kill switch, trading state, limits, day starts
    change_ids: list[bytes] = field(default_factory=list)
    trades: list[TradePrinted] = field(default_factory=list)
    trade_ids: list[bytes] = field(default_factory=list)
    quotes: list[Quote] = field(default_factory=list)
    quote_ids: list[bytes] = field(default_factory=list)
    parents: list[AlgoRecord] = field(default_factory=list)
    parent_ids: list[bytes] = field(default_factory=list)
    dead: list[tuple[str, bytes, str]] = field(default_factory=list)  # (stream, id, reason)
    acks: dict[str, list[bytes]] = field(default_factory=dict)  # stream -> entry ids to XACK
    entries: int = 0
    first_ns: int = 0  # monotonic time the oldest entry was read

    def tables(self, scale: dict[str, Scale]) -> list[tuple[str, Columns]]:
        """(table, columns) for every table with rows in this batch."""
        out = []
        if self.orders:
            out.append(("orders", order_columns(self.orders, self.order_ids, scale, self.order_srcs)))
        if self.actions:
            out.append(("operator_actions", action_columns(self.actions, self.action_ids)))
        if self.changes:
            out.append(("account_changes", change_columns(self.changes, self.change_ids)))
        if self.fills:
            out.append(("executions", fill_columns(self.fills, self.fill_ids, scale)))
        if self.trades:
            out.append(("market_trades", trade_columns(self.trades, self.trade_ids, scale)))
        if self.quotes:
            out.append(("quotes", quote_columns(self.quotes, self.quote_ids, scale)))
        if self.parents:
            out.append(("parents", parent_columns(self.parents, self.parent_ids, scale)))
        return out


@dataclass(frozen=True)
class FlushReport:
    """One committed batch: when ClickHouse confirmed it, and what it held."""

    committed_ns: int  # wall clock (time.time_ns) once every insert of the batch returned
    entries: int
    rows: dict[str, int]
    fill_ts_ns: list[int]  # ts_ns of each fill in the batch (the bench's fill-to-visible delay)
    dead: int


@dataclass
class SinkStats:
    entries: int = 0
    rows: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))
    dead: int = 0
    batches: int = 0
    claimed: int = 0
    insert_errors: int = 0


class _Failure(NamedTuple):
    exc: BaseException


_IDLE = object()  # the reader's marker: a round of reads found nothing undelivered


class Chunk(NamedTuple):
    """One stream's share of a read: usable entries (ids and records concatenated) and unusable ones."""

    key: str
    ids: list[bytes]
    recs: bytes
    bad: list[bytes]


class Sink:
    """Consumes the journal and the tape into ClickHouse (see the module doc for what it promises).

    `redis_client` must return bytes (`oms.infra.redis.server.make_client`); `ch` is a client on the database holding
    the schema (`oms.infra.clickhouse.clickhouse.connect` + `apply_schema`). The caller owns and closes both.
    `after_insert(batch)` runs after ClickHouse confirmed a batch and before it is acknowledged (a test seam for crashes
    at the worst moment); `on_commit(report)` after it is acknowledged.

    `run` and `drain` read on a second thread (Redis works on the next read while this thread decodes and inserts),
    at most `_QUEUE` reads ahead; reads ahead are delivered to this consumer, so they too are re-read after a crash.
    """

    _QUEUE = 4

    def __init__(
        self,
        redis_client: redis.Redis,
        ch: Client,
        scale: dict[str, Scale],
        settings: AnalyticsSettings,
        *,
        prefix: str = "oms",
        after_insert: Callable[[Batch], None] | None = None,
        on_commit: Callable[[FlushReport], None] | None = None,
    ) -> None:
        if redis_client.get_connection_kwargs().get("decode_responses"):
            raise ValueError("the sink needs a redis client with decode_responses=False (records are msgpack)")
        self._redis = redis_client
        self._ch = ch
        self._scale = scale
        self.settings = settings
        self._journal_head = f"{prefix}:journal:"
        self._tape = tape_key(prefix)
        self._records = f"{prefix}:records:journal:{RECORDS_STREAM}"
        self._algos = algos_key(prefix)
        self._dead_key = dead_letter_key(prefix)
        self._after_insert = after_insert
        self._on_commit = on_commit
        self._read = redis_client.register_script(_READ_LUA)
        self._ack = redis_client.register_script(_ACK_LUA)
        self._journal_decoder: msgspec.msgpack.Decoder[list[AccountEvent]] = msgspec.msgpack.Decoder(list[AccountEvent])
        self._tape_decoder: msgspec.msgpack.Decoder[list[TapeRecord]] = msgspec.msgpack.Decoder(list[TapeRecord])
        self._one_journal: msgspec.msgpack.Decoder[AccountEvent] = msgspec.msgpack.Decoder(AccountEvent)
        self._one_tape: msgspec.msgpack.Decoder[TapeRecord] = msgspec.msgpack.Decoder(TapeRecord)
        self._records_decoder: msgspec.msgpack.Decoder[list[Record]] = msgspec.msgpack.Decoder(list[Record])
        self._one_record: msgspec.msgpack.Decoder[Record] = msgspec.msgpack.Decoder(Record)
        self._algos_decoder: msgspec.msgpack.Decoder[list[AlgoRecord]] = msgspec.msgpack.Decoder(list[AlgoRecord])
        self._one_algo: msgspec.msgpack.Decoder[AlgoRecord] = msgspec.msgpack.Decoder(AlgoRecord)
        # Reader state (only the reading thread touches it): stream -> _PENDING, a pending id to continue after, _NEW
        self._cursors: dict[str, str] = {}
        self._last_discover = float("-inf")
        self._last_claim = float("-inf")
        self._batch = Batch()
        self.stats = SinkStats()

    # -- COMMANDS --

    def run(self, stop: threading.Event) -> None:
        """Read, insert and acknowledge until `stop` is set; then commit what was read and return."""
        self._consume(stop, until_idle=False)

    def drain(self) -> None:
        """Read and commit until no stream (streams created since the last discovery included) has undelivered
        entries and this consumer has nothing pending."""
        self.discover()
        self._consume(threading.Event(), until_idle=True)

    def poll(self) -> int:
        """One read of every stream, on this thread, into the held batch; returns how many entries it read."""
        chunks = self._maintain()
        chunks += self._fetch()[0]
        for chunk in chunks:
            self._take(chunk)
        return sum(len(c.ids) + len(c.bad) for c in chunks)

    def flush(self) -> FlushReport | None:
        """Insert the held batch (one insert per table), then acknowledge its entries. Returns what it committed.

        Raises AnalyticsError (nothing acknowledged, the batch kept) when ClickHouse refuses an insert.
        """
        batch = self._batch
        if batch.entries == 0:
            return None
        tables = batch.tables(self._scale)
        for table, (names, cols) in tables:
            try:
                self._ch.insert_arrow(table, pa.table(dict(zip(names, cols, strict=True))))
            except ClickHouseDriverError as exc:
                raise AnalyticsError(f"insert into {table} failed: {error_message(exc)}") from None
        committed = time.time_ns()
        if self._after_insert is not None:
            self._after_insert(batch)
        if batch.dead:
            pipe = self._redis.pipeline(transaction=False)
            for stream, sid, reason in batch.dead:
                pipe.xadd(self._dead_key, {"stream": stream, "id": sid, "reason": reason})
            pipe.execute()
        keys = list(batch.acks)
        self._ack(keys=keys, args=[self.settings.group, *(b" ".join(batch.acks[k]) for k in keys)])
        rows = {table: len(cols[0]) for table, (_, cols) in tables}
        report = FlushReport(committed, batch.entries, rows, [f.ts_ns for f in batch.fills], len(batch.dead))
        self._batch = Batch()
        self.stats.entries += batch.entries
        self.stats.dead += len(batch.dead)
        self.stats.batches += 1
        for table, n in rows.items():
            self.stats.rows[table] += n
        if self._on_commit is not None:
            self._on_commit(report)
        return report

    def discover(self) -> list[str]:
        """Find the tape, the OMS's record, the algo journal and every account journal stream, creating the
        consumer group where missing; returns new streams."""
        found = [self._tape, self._records, self._algos]
        found += sorted(
            k.decode()
            for k in self._redis.scan_iter(match=f"{_escape_glob(self._journal_head)}*", count=1000, _type="STREAM")
        )
        new = [k for k in found if k not in self._cursors]
        for key in new:
            try:
                self._redis.xgroup_create(key, self.settings.group, id="0", mkstream=True)
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
            self._cursors[key] = _PENDING
        self._last_discover = time.monotonic()
        return new

    def claim(self) -> list[Chunk]:
        """Take over entries pending with any consumer for longer than `claim_idle_s` (XAUTOCLAIM, a sink that died
        under another name): they are delivered to this consumer and returned, to be added to the batch."""
        idle_ms = int(self.settings.claim_idle_s * 1000)
        chunks = []
        for key in list(self._cursors):
            start = "0-0"
            while True:
                # [next start, [(id, fields)], [deleted ids] (Redis >= 7)]. Not JUSTID: redis-py then drops the cursor.
                reply = self._redis.xautoclaim(
                    key, self.settings.group, self.settings.consumer, idle_ms, start_id=start, count=1000
                )
                ids, recs, bad = [], [], []
                for sid, fields in reply[1]:
                    data = fields.get(RECORD_FIELD) if fields else None
                    if data is None or len(fields) != 1:
                        bad.append(sid)
                    else:
                        ids.append(sid)
                        recs.append(data)
                if ids or bad:
                    chunks.append(Chunk(key, ids, b"".join(recs), bad))
                    self.stats.claimed += len(ids) + len(bad)
                nxt = _text(reply[0])
                if nxt == "0-0":
                    break
                start = nxt
        self._last_claim = time.monotonic()
        if chunks:
            log.info("claimed %d entries pending with other consumers", sum(len(c.ids) + len(c.bad) for c in chunks))
        return chunks

    # -- internals --

    def _consume(self, stop: threading.Event, until_idle: bool) -> None:
        """The reading thread fills a queue; this thread batches, inserts and acknowledges (module doc)."""
        items: queue.Queue[Any] = queue.Queue(self._QUEUE)
        stop_reader = threading.Event()
        reader = threading.Thread(target=self._reader, args=(items, stop_reader), name="sink-reader", daemon=True)
        reader.start()
        try:
            while not stop.is_set():
                try:
                    item = items.get(timeout=self._idle_wait())
                except queue.Empty:
                    item = None
                if isinstance(item, _Failure):
                    raise item.exc
                if item is _IDLE:
                    if until_idle:
                        break
                elif item is not None:
                    self._take(item)
                if self._due():
                    self._flush_retrying(stop)
        finally:
            stop_reader.set()
            while reader.is_alive():  # the reader may be blocked on a full queue
                with contextlib.suppress(queue.Empty):
                    item = items.get(timeout=0.05)
                    if isinstance(item, Chunk):
                        self._take(item)
            while True:  # what it read ahead is delivered to this consumer: commit it too
                try:
                    item = items.get_nowait()
                except queue.Empty:
                    break
                if isinstance(item, Chunk):
                    self._take(item)
        self._flush_retrying(stop, final=True)

    def _reader(self, items: queue.Queue[Any], stop: threading.Event) -> None:
        def put(item: object) -> bool:
            while not stop.is_set():
                try:
                    items.put(item, timeout=0.05)
                    return True
                except queue.Full:
                    continue
            return False

        try:
            while not stop.is_set():
                for chunk in self._maintain():
                    if not put(chunk):
                        return
                chunks, idle = self._fetch()
                for chunk in chunks:
                    if not put(chunk):
                        return
                if idle:
                    put(_IDLE)
                stop.wait(self.settings.poll_interval_s)  # busy or not: each fetch takes what came in meanwhile
        except BaseException as exc:  # handed to the consuming thread, which raises it
            put(_Failure(exc))

    def _maintain(self) -> list[Chunk]:
        """Discover new streams and claim abandoned entries when their intervals are due."""
        now = time.monotonic()
        if now - self._last_discover >= self.settings.discover_interval_s:
            self.discover()
        if now - self._last_claim >= self.settings.claim_idle_s / 2:
            return self.claim()
        return []

    def _fetch(self) -> tuple[list[Chunk], bool]:
        """One EVALSHA reading every stream; (chunks read, True when nothing was undelivered and nothing pending)."""
        if not self._cursors:
            self.discover()
        keys = list(self._cursors)
        backlog_done = all(c == _NEW for c in self._cursors.values())
        per_stream = max(100, self.settings.read_rows // len(keys))
        args = [self.settings.group, self.settings.consumer, per_stream, *(self._cursors[k] for k in keys)]
        try:
            out = self._read(keys=keys, args=args)
        except redis.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            log.warning("consumer group %s missing on a stream, creating it again", self.settings.group)
            self._cursors.clear()
            self.discover()
            return [], False
        chunks = []
        for key, (ids_blob, recs, bad_blob) in zip(keys, out, strict=True):
            ids = ids_blob.split() if ids_blob else []
            bad = bad_blob.split() if bad_blob else []
            if not ids and not bad:
                self._cursors[key] = _NEW  # this consumer's pending backlog is read (or was): now new entries
                continue
            if self._cursors[key] != _NEW:
                last = max((ids[-1] if ids else b"0-0", bad[-1] if bad else b"0-0"), key=_id_key)
                self._cursors[key] = last.decode()
            chunks.append(Chunk(key, ids, recs, bad))
        return chunks, backlog_done and not chunks

    def _due(self) -> bool:
        b = self._batch
        if b.entries == 0:
            return False
        if b.entries >= self.settings.batch_rows:
            return True
        return time.monotonic_ns() - b.first_ns >= self.settings.batch_interval_s * 1e9

    def _idle_wait(self) -> float:
        if self._batch.entries == 0:
            return 0.1
        left = self.settings.batch_interval_s - (time.monotonic_ns() - self._batch.first_ns) / 1e9
        return max(left, 0.0)

    def _flush_retrying(self, stop: threading.Event, final: bool = False) -> None:
        """Flush; on an insert error keep the batch and retry with a growing pause (until `stop`, or three times
        for the last flush, which then raises)."""
        pause, failures = 0.1, 0
        while True:
            try:
                self.flush()
                return
            except AnalyticsError as exc:
                self.stats.insert_errors += 1
                failures += 1
                log.error("%s; retrying in %.1f s (nothing acknowledged)", exc, pause)
                if final and failures >= 3:
                    raise
                if stop.is_set() and not final:
                    return
                time.sleep(pause)
                pause = min(pause * 2, 5.0)

    def _take(self, chunk: Chunk) -> None:
        """Decode one stream's read and add it to the batch."""
        key, ids, recs, bad = chunk
        b = self._batch
        if b.entries == 0:
            b.first_ns = time.monotonic_ns()
        b.entries += len(ids) + len(bad)
        b.acks.setdefault(key, []).extend([*ids, *bad])
        for sid in bad:
            b.dead.append((key, sid, "no record field 'r' (or the entry was deleted while pending)"))
        if not ids:
            return
        kind = {self._tape: "tape", self._records: "records", self._algos: "algos"}.get(key, "journal")
        decoder = {"tape": self._tape_decoder, "records": self._records_decoder, "algos": self._algos_decoder}.get(
            kind, self._journal_decoder
        )
        header = b"\xdd" + len(ids).to_bytes(4, "big")  # msgpack array32 header over the concatenated records
        try:
            records = decoder.decode(header + recs)
        except msgspec.DecodeError:
            records = self._decode_one_by_one(key, ids, kind)
        scale = self._scale
        tape = kind == "tape"
        src = "records" if kind == "records" else ""
        if tape:
            for sid, rec in zip(ids, records, strict=True):
                if rec is None:
                    continue
                if rec.symbol not in scale:
                    b.dead.append((key, sid, f"unknown instrument {rec.symbol!r}"))
                elif type(rec) is TradePrinted:
                    b.trades.append(rec)
                    b.trade_ids.append(sid)
                else:
                    b.quotes.append(rec)
                    b.quote_ids.append(sid)
            return
        if kind == "algos":
            self._take_algos(key, ids, records)
            return
        for sid, rec in zip(ids, records, strict=True):
            t = type(rec)
            if t is OrderFilled:
                if rec.symbol in scale:
                    b.fills.append(rec)
                    b.fill_ids.append(sid)
                else:
                    b.dead.append((key, sid, f"unknown instrument {rec.symbol!r}"))
            elif t is OperatorAction:
                b.actions.append(rec)
                b.action_ids.append(sid)
            elif t in ACCOUNT_CHANGES:
                b.changes.append(rec)
                b.change_ids.append(sid)
            elif t in ORDER_EVENTS:
                if t is OrderRejected or rec.symbol in scale:
                    b.orders.append(rec)
                    b.order_ids.append(sid)
                    b.order_srcs.append(src)
                else:
                    b.dead.append((key, sid, f"unknown instrument {rec.symbol!r}"))
            # anything else (None: undecodable, already dead-lettered; marks, quotes, allowances): acknowledged, no row

    def _take_algos(self, key: str, ids: list[bytes], records: list[Any]) -> None:
        """Add the algo journal's records that have rows (`PARENT_RECORDS`) to the batch; a parent command naming an
        unknown instrument becomes a dead letter; the engine's other records are acknowledged without a row."""
        b = self._batch
        for sid, rec in zip(ids, records, strict=True):
            if rec is None or not isinstance(rec, PARENT_RECORDS):
                continue  # undecodable (already dead-lettered) or a working record of the engine: no row
            if isinstance(rec, PARENT_SUBMITS) and rec.symbol not in self._scale:
                b.dead.append((key, sid, f"unknown instrument {rec.symbol!r}"))
                continue
            b.parents.append(rec)
            b.parent_ids.append(sid)

    def _decode_one_by_one(self, key: str, ids: list[bytes], kind: str) -> list[Any]:
        """The slow path after a read failed to decode as a whole: each entry alone; bad ones become dead letters."""
        decoder = {"tape": self._one_tape, "records": self._one_record, "algos": self._one_algo}.get(
            kind, self._one_journal
        )
        pipe = self._redis.pipeline(transaction=False)
        for sid in ids:
            pipe.xrange(key, sid, sid)
        out: list[Any] = []
        for sid, found in zip(ids, pipe.execute(), strict=True):
            data = found[0][1].get(RECORD_FIELD) if found else None
            try:
                if data is None:
                    raise msgspec.DecodeError("the entry is gone")
                out.append(decoder.decode(data))
            except msgspec.DecodeError as exc:
                self._batch.dead.append((key, sid, f"does not decode: {exc}"))
                out.append(None)
        return out


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _id_key(sid: bytes) -> tuple[int, int]:
    ms, _, seq = sid.partition(b"-")
    return int(ms), int(seq)


def _escape_glob(text: str) -> str:
    out = []
    for ch in text:
        out.append("\\" + ch if ch in "*?[]\\" else ch)
    return "".join(out)
