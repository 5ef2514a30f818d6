"""The durable journal: one Redis stream per account, plus that account's latest state snapshot.

Keys (`prefix` defaults to `oms`):

- `oms:journal:{account}`: a Redis stream. Each entry holds exactly one field, `r`, whose value is one record
  encoded as msgpack by msgspec (for the OMS: a `Command` or `Event` from `oms.core.model.messages`, tagged, so the
  reader decodes the union), sealed into the account's hash chain (below). Entry ids are Redis's own
  (`<ms>-<seq>`), strictly increasing, and are the record's position. Entries are only ever appended (XADD); with
  `stream_maxlen` set, old entries are trimmed from the front (XADD MAXLEN ~); nothing is ever deleted from the
  middle.
- `oms:snapshot:{account}`: a hash, written in one HSET, with fields `data` (the snapshot, msgpack or the
  caller's own bytes), `upto` (the id of the last stream entry the snapshot includes), `seq` (how many entries the
  stream had received up to and including `upto`, used to detect trimming past the snapshot), `chain` (hex of the
  chain hash of the record at `upto`, empty when that record carries none) and `ts` (wall-clock ns when it was
  written).

The hash chain (checked by `oms.infra.redis.audit`): a record must encode as a msgpack map (a msgspec Struct that is not
`array_like`, or a dict). `seal` adds one last key to that map, `#chain`, whose value is 41 bytes: a version byte
(1), `seq` (8 bytes, big-endian: the record's 1-based position in the stream, i.e. the stream's `entries-added`
counter once it is added), `prev` (16 bytes: the hash of the record before it in the stream, or `genesis(key)` for
the first) and `hash` (16 bytes: BLAKE2b-128 of every stored byte before it, `prev` included). Decoders of the
record type ignore the extra key (msgspec skips unknown map keys), so the ClickHouse sink and any other reader of
the `r` field keep working; `read` strips it. The writer keeps each stream's chain head (last `seq` and `hash`, and
the id of its last entry) in memory and reads it from the stream's last entry on its first append; the append
script refuses a batch when the stream's last entry is not the one the writer knows (another writer appended
meanwhile), replying with the stream's real head, and the writer seals again, so concurrent writers still produce
one unbroken chain. docs/journal.md says what `oms audit verify` then promises, and what it cannot see.

Promises:

- `append` / `append_many` return only after Redis has answered, so a record whose append returned is as durable
  as the server's `appendfsync` makes it: `always` - on disk, survives a machine crash; `everysec` - survives a crash
  of the Redis process, a machine crash may lose up to ~1 s of them; `no` - survives a process crash, the OS decides
  when it reaches the disk. Callers send an ack or report only after the append of the record behind it returned.
- `append_many` (and `append_accounts`, the same for several accounts' streams at once) is one round trip (one
  EVALSHA of a short Lua script doing the XADDs; Redis runs a script atomically) and all-or-nothing: records are
  encoded before anything is sent, a record that cannot be encoded sends nothing, and no other client's entries
  land between the batch's entries. (Like MULTI/EXEC, a script has no
  rollback; the only failure an XADD can have half-way is running out of memory under a `maxmemory` limit, which
  the managed server does not set.)
- `read` yields every entry after the given id in order; an entry that does not decode raises `CorruptRecord` with
  its account and stream id. Nothing is skipped silently.
- `recover` restores the snapshot (if any) and applies every record after it; it raises `JournalGap` when records
  that the snapshot does not cover were trimmed or deleted, or when the snapshot claims records the stream lacks.
- No automatic retries (see `oms.infra.redis.server.make_client`): a failed append raises, and the caller must treat the
  record as possibly written (the writer forgets its chain head and reads it again before the next append).
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Generic, NamedTuple, TypeVar

import msgspec
import redis

__all__ = [
    "CHAIN_KEY",
    "DIGEST_SIZE",
    "RECORD_FIELD",
    "ChainHead",
    "ChainLink",
    "CorruptRecord",
    "CorruptSnapshot",
    "Journal",
    "JournalError",
    "JournalGap",
    "Recovery",
    "SnapshotRegression",
    "chain_hash",
    "genesis",
    "journal_key",
    "link_of",
    "parse_id",
    "seal",
    "snapshot_key",
    "unseal",
]

R = TypeVar("R")
S = TypeVar("S")

RECORD_FIELD = b"r"

# One EVALSHA per batch, whatever number of streams it covers: a single command, so one round trip, and Redis runs
# a script atomically (nothing interleaves, and the batch is all or nothing across its streams). Measured faster
# than MULTI + n XADD + EXEC through redis-py (~240 vs ~330 us p50 for 10 records).
# KEYS: each stream, then the write-ahead stream to trim with it (the stream itself when there is none).
# ARGV[1] is the MAXLEN (0: no trimming), ARGV[2] the number of streams n, then per stream i: ARGV[3i] the id of its
# last entry as the writer knows it ('' for none), ARGV[3i+1] the first id to keep in its write-ahead stream ('' for
# none), ARGV[3i+2] how many records it gets; then every stream's sealed records, in order.
# When a stream's last entry is another (another writer appended, the stream was recreated or its tail deleted),
# nothing at all is written and the reply is {0, {{i, entries-added, last id or '', the last entry's `r` or nil},
# ...}} for each such stream: what the writer needs to re-seal. Otherwise it is {1, {ids of stream 1, ...}}. The
# guard (XREVRANGE COUNT 1) costs ~5 us of server time per stream, XINFO STREAM would cost ~10 us.
_APPEND_LUA = """
local n = tonumber(ARGV[2])
local stale = {}
for i = 1, n do
    local key = KEYS[2 * i - 1]
    local top = redis.call('XREVRANGE', key, '+', '-', 'COUNT', 1)[1]
    local last = top and top[1] or ''
    if last ~= ARGV[3 * i] then
        local added, r = 0, false
        if redis.call('EXISTS', key) == 1 then
            local info = redis.call('XINFO', 'STREAM', key)
            for j = 1, #info, 2 do
                if info[j] == 'entries-added' then added = info[j + 1] end
            end
        end
        if top then
            for j = 1, #top[2], 2 do
                if top[2][j] == 'r' then r = top[2][j + 1] end
            end
        end
        stale[#stale + 1] = {i, added, last, r}
    end
end
if #stale > 0 then
    return {0, stale}
end
local maxlen = tonumber(ARGV[1])
local pos = 3 + 3 * n
local out = {}
for i = 1, n do
    local key = KEYS[2 * i - 1]
    local ids = {}
    for j = 1, tonumber(ARGV[3 * i + 2]) do
        if maxlen > 0 then
            ids[j] = redis.call('XADD', key, 'MAXLEN', '~', maxlen, '*', 'r', ARGV[pos])
        else
            ids[j] = redis.call('XADD', key, '*', 'r', ARGV[pos])
        end
        pos = pos + 1
    end
    if ARGV[3 * i + 1] ~= '' then
        redis.call('XTRIM', KEYS[2 * i], 'MINID', ARGV[3 * i + 1])
    end
    out[i] = ids
end
return {1, out}
"""
_STALE_RETRIES = 64  # re-seal this many times when other writers keep appending, then give up

# -- THE HASH CHAIN (pure) --

CHAIN_KEY = "#chain"
"""The map key `seal` adds to a record: no msgspec Struct field can be named so."""
DIGEST_SIZE = 16  # BLAKE2b-128: tamper evidence needs second-preimage resistance, 128 bits is plenty
_CHAIN_VERSION = 1
# fixstr "#chain", then bin8 of 41 bytes: version (1), seq (8), prev (16), hash (16)
_TRAILER = b"\xa6" + CHAIN_KEY.encode() + b"\xc4" + bytes((1 + 8 + 2 * DIGEST_SIZE, _CHAIN_VERSION))
_TRAILER_SIZE = len(_TRAILER) + 8 + 2 * DIGEST_SIZE
_SEQ_END = 1 << 64
_RECORD_HASH = hashlib.blake2b(digest_size=DIGEST_SIZE, person=b"oms-journal-1")
_GENESIS_HASH = hashlib.blake2b(digest_size=DIGEST_SIZE, person=b"oms-genesis-1")


class ChainLink(NamedTuple):
    """What a sealed record carries: its position in the stream, the hash before it, and its own hash."""

    seq: int
    prev: bytes
    hash: bytes


class ChainHead(NamedTuple):
    """Where a stream's chain ends: the seq of its last record (0: none yet) and the hash the next one chains to."""

    seq: int
    hash: bytes


def genesis(stream_key: str) -> bytes:
    """The `prev` of a stream's first record: a hash of the stream's key, so a chain copied to another stream fails."""
    h = _GENESIS_HASH.copy()
    h.update(stream_key.encode())
    return h.digest()


def chain_hash(sealed_prefix: bytes) -> bytes:
    """BLAKE2b-128 (personalised) of everything a sealed record stores before its hash."""
    h = _RECORD_HASH.copy()
    h.update(sealed_prefix)
    return h.digest()


def _map_header(count: int) -> bytes:
    if count < 16:
        return bytes((0x80 | count,))
    if count < 0x10000:
        return b"\xde" + count.to_bytes(2, "big")
    return b"\xdf" + count.to_bytes(4, "big")


def _map_count(data: bytes) -> tuple[int, int]:
    """(number of keys, header length) of a msgpack map; raises ValueError for anything else."""
    if not data:
        raise ValueError("an empty record is not a msgpack map")
    first = data[0]
    if first & 0xF0 == 0x80:
        return first & 0x0F, 1
    if first == 0xDE and len(data) >= 3:
        return int.from_bytes(data[1:3], "big"), 3
    if first == 0xDF and len(data) >= 5:
        return int.from_bytes(data[1:5], "big"), 5
    raise ValueError(
        f"a journal record must encode as a msgpack map to carry the hash chain (a msgspec Struct that is not "
        f"array_like, or a dict), not one starting with byte 0x{first:02x}"
    )


def seal(record: bytes, seq: int, prev: bytes) -> bytes:
    """`record` (a msgpack map) with the `#chain` key added last: version, `seq`, `prev` and the hash of it all.

    Raises ValueError when `record` is not a msgpack map, `seq` is not in 1..2**64-1 or `prev` is not 16 bytes.
    """
    if not 0 < seq < _SEQ_END or len(prev) != DIGEST_SIZE:
        raise ValueError(f"chain seq must be in 1..2**64-1 (not {seq}) and prev {DIGEST_SIZE} bytes (not {len(prev)})")
    first = record[0] if record else 0
    if 0x80 <= first < 0x8F:  # the common case, a fixmap that stays one: its header is one byte
        parts = (bytes((first + 1,)), memoryview(record)[1:], _TRAILER, seq.to_bytes(8, "big"), prev)
    else:
        count, header = _map_count(record)
        parts = (_map_header(count + 1), memoryview(record)[header:], _TRAILER, seq.to_bytes(8, "big"), prev)
    prefix = b"".join(parts)
    h = _RECORD_HASH.copy()
    h.update(prefix)
    return prefix + h.digest()


def link_of(stored: bytes) -> ChainLink | None:
    """The link a stored record carries, or None when it carries none (not sealed, or its trailer is damaged).

    Says nothing about whether the hash matches: compare `chain_hash(stored[:-16])` with `link.hash` for that.
    """
    start = len(stored) - _TRAILER_SIZE
    if start < 1 or stored[start : start + len(_TRAILER)] != _TRAILER:
        return None
    at = start + len(_TRAILER)
    return ChainLink(
        int.from_bytes(stored[at : at + 8], "big"),
        bytes(stored[at + 8 : at + 8 + DIGEST_SIZE]),
        bytes(stored[at + 8 + DIGEST_SIZE :]),
    )


def unseal(stored: bytes) -> bytes:
    """The record as it was before `seal`: the `#chain` key removed. Bytes without a chain trailer come back as is."""
    if link_of(stored) is None:
        return stored
    try:
        count, header = _map_count(stored)
    except ValueError:
        return stored
    if count < 1:
        return stored
    return _map_header(count - 1) + stored[header : len(stored) - _TRAILER_SIZE]


def _head_after(stream_key: str, added: int, last: bytes | None) -> ChainHead:
    """The chain head of a stream that received `added` entries, the last one still there holding `last`.

    When the last entry carries no link (a stream written before the chain, or a foreign entry), the chain restarts
    from the stream's genesis hash; `oms.infra.redis.audit` reports such entries.
    """
    link = link_of(last) if last is not None else None
    return ChainHead(added, link.hash if link is not None else genesis(stream_key))


_ID = re.compile(r"^\d+-\d+$")


class JournalError(RuntimeError):
    """Base of the journal's own errors (Redis I/O errors surface as redis-py's exceptions)."""


class CorruptRecord(JournalError):
    """A stream entry that is not a decodable record. Names the account and the stream id."""

    def __init__(self, account: str, stream_id: str, reason: str) -> None:
        super().__init__(f"corrupt journal record {stream_id} of account {account!r}: {reason}")
        self.account = account
        self.stream_id = stream_id


class CorruptSnapshot(JournalError):
    """A snapshot hash with missing fields or data that does not decode."""


class JournalGap(JournalError):
    """Records needed to rebuild an account are gone (trimmed/deleted past the snapshot, or never written)."""


class SnapshotRegression(JournalError):
    """A snapshot older than the one stored (by `upto`), or one that claims records the stream does not have."""


class Recovery(NamedTuple, Generic[S]):
    """What `Journal.recover_at` rebuilt: the state, the id of the last record in it, and how many were replayed."""

    state: S
    last_id: str
    replayed: int


def journal_key(account: str, prefix: str = "oms") -> str:
    return f"{prefix}:journal:{account}"


def snapshot_key(account: str, prefix: str = "oms") -> str:
    return f"{prefix}:snapshot:{account}"


def parse_id(stream_id: str | bytes) -> tuple[int, int]:
    """A stream id `<ms>-<seq>` as (ms, seq), which orders ids; ValueError for anything else."""
    text = stream_id.decode() if isinstance(stream_id, bytes) else stream_id
    if not _ID.match(text):
        raise ValueError(f"not a stream id: {text!r} (expected '<ms>-<seq>')")
    ms, seq = text.split("-")
    return int(ms), int(seq)


def _next_id(stream_id: str) -> str:
    """The smallest stream id after `stream_id`: trimming MINID there deletes it and everything before."""
    ms, seq = parse_id(stream_id)
    return f"{ms}-{seq + 1}"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class Journal(Generic[R]):
    """Per-account append-only record streams and snapshots over a synchronous redis-py client.

    `record_type` is any type msgspec can decode msgpack into (a Struct, a tagged union of Structs, ...); records
    given to `append` are encoded with msgspec's msgpack encoder. `snapshot_type`, when given, is what
    `load_snapshot` decodes into; without it `load_snapshot` returns the raw bytes. The client must return bytes
    (`decode_responses=False`); a client that decodes responses is rejected, since msgpack is not text.

    Records must encode as msgpack maps (see the module doc: each is sealed into its stream's hash chain). One
    `Journal` should be the only writer of its streams (an account shard); other writers are tolerated (the append
    script notices them and the chain stays whole), at the price of a re-read and a re-seal each time.
    """

    def __init__(
        self,
        client: redis.Redis,
        record_type: Any,
        *,
        snapshot_type: Any = None,
        stream_maxlen: int | None = None,
        batch: int = 1000,
        prefix: str = "oms",
        enc_hook: Callable[[Any], Any] | None = None,
        dec_hook: Callable[[type, Any], Any] | None = None,
    ) -> None:
        if client.get_connection_kwargs().get("decode_responses"):
            raise ValueError("the journal needs a redis client with decode_responses=False (records are msgpack)")
        if stream_maxlen is not None and stream_maxlen < 1:
            raise ValueError(f"stream_maxlen must be None or >= 1, not {stream_maxlen}")
        if batch < 1:
            raise ValueError(f"batch must be >= 1, not {batch}")
        self._client = client
        self._encoder = msgspec.msgpack.Encoder(enc_hook=enc_hook)
        self._decoder: msgspec.msgpack.Decoder[Any] = msgspec.msgpack.Decoder(record_type, dec_hook=dec_hook)
        self._snapshot_decoder: msgspec.msgpack.Decoder[Any] | None = (
            msgspec.msgpack.Decoder(snapshot_type, dec_hook=dec_hook) if snapshot_type is not None else None
        )
        self._maxlen = stream_maxlen
        self._append_script = client.register_script(_APPEND_LUA)
        self._batch = batch
        self._prefix = prefix
        self._heads: dict[str, tuple[ChainHead, str]] = {}  # stream key -> (chain head, last entry id) as written

    # -- COMMANDS --

    def append(self, account: str, record: R) -> str:
        """XADD one record, sealed into the account's chain, to its stream; returns its id once Redis has answered."""
        return self._append([(self._key(account), [self._encoder.encode(record)], None)])[0][0]

    def append_many(self, account: str, records: Iterable[R], settles: tuple[str, str] | None = None) -> list[str]:
        """Append records in order in one round trip, all or nothing (see module doc); returns their stream ids.

        `settles` = (key, entry id) of a write-ahead stream (`ReportLog`): in the same script, every entry of it up
        to and including that id is deleted, so an entry is either still there or in this journal, never both."""
        return self.append_accounts([(account, records, settles)])[0]

    def append_accounts(self, batches: Iterable[tuple[str, Iterable[R], tuple[str, str] | None]]) -> list[list[str]]:
        """`append_many` for several accounts, each (account, records, settles), in one round trip and all or
        nothing across them; returns each account's stream ids, in the order given. An account appears once."""
        encoded = [
            (self._key(account), [self._encoder.encode(r) for r in records], settles)
            for account, records, settles in batches
        ]
        items = [
            (key, datas, None if settles is None else (settles[0], _next_id(settles[1])))
            for key, datas, settles in encoded
            if datas
        ]
        written = iter(self._append(items) if items else [])
        return [next(written) if datas else [] for _, datas, _ in encoded]

    def save_snapshot(self, account: str, snapshot: bytes | Any, upto_id: str) -> None:
        """Store the account's snapshot covering every record up to and including `upto_id`, replacing the old one.

        `snapshot` is bytes (stored as is) or anything msgspec encodes. Written in one HSET, so readers see the old
        snapshot or the new one, never a mix. Raises `SnapshotRegression` when the stored snapshot is newer, or when
        `upto_id` is past the last record of the stream. Costs a few round trips plus O(records after `upto_id`):
        take snapshots right after an append, and rarely. The chain hash of the record at `upto_id` is stored
        beside it (`chain`), so the chain still verifies from the first retained record once the stream is trimmed.
        """
        upto = parse_id(upto_id)
        data = (
            bytes(snapshot) if isinstance(snapshot, bytes | bytearray | memoryview) else self._encoder.encode(snapshot)
        )
        jkey, skey = self._key(account), self._snap_key(account)

        def write(pipe: redis.client.Pipeline) -> None:
            current = pipe.hget(skey, "upto")
            if current is not None and parse_id(current) > upto:
                raise SnapshotRegression(
                    f"account {account!r} has a snapshot up to {_text(current)}, newer than {upto_id}"
                )
            info = self._stream_info(pipe, jkey)
            last = parse_id(info["last-generated-id"]) if info else (0, 0)
            if upto > last:
                raise SnapshotRegression(
                    f"snapshot of account {account!r} up to {upto_id} is past the journal's last record "
                    f"{last[0]}-{last[1]}"
                )
            later = len(pipe.xrange(jkey, f"({upto_id}", "+")) if info else 0
            seq = int(info["entries-added"]) - later if info else 0
            at = pipe.xrange(jkey, upto_id, upto_id) if info and upto > (0, 0) else []
            link = link_of(at[0][1].get(RECORD_FIELD, b"")) if at else None
            chain = link.hash.hex() if link is not None else ""
            pipe.multi()
            pipe.hset(skey, mapping={"data": data, "upto": upto_id, "seq": seq, "chain": chain, "ts": time.time_ns()})

        self._client.transaction(write, jkey, skey)

    # -- QUERIES --

    def read(self, account: str, after_id: str = "0-0") -> Iterator[tuple[str, R]]:
        """Every record after `after_id` (exclusive), oldest first, fetched `batch` at a time (XRANGE COUNT).

        Raises `CorruptRecord` at the first entry that has no `r` field or does not decode as `record_type`.
        """
        parse_id(after_id)
        key = self._key(account)
        cursor = after_id
        while True:
            entries = self._client.xrange(key, f"({cursor}", "+", count=self._batch)
            for raw_id, fields in entries:
                sid = _text(raw_id)
                yield sid, self._decode(account, sid, fields)
            if len(entries) < self._batch:
                return
            cursor = _text(entries[-1][0])

    def load_snapshot(self, account: str) -> tuple[Any, str] | None:
        """(snapshot, upto_id) of the account, or None if it has none. Raises `CorruptSnapshot`."""
        found = self._load_snapshot(account)
        return None if found is None else (found[0], found[1])

    def recover(
        self,
        account: str,
        restore: Callable[[Any], S],
        fresh: Callable[[], S],
        apply: Callable[[S, R], None],
    ) -> S:
        """The account's state: `restore(snapshot)` (or `fresh()`), then `apply(state, r)` for each newer record r."""
        return self.recover_at(account, restore, fresh, apply).state

    def recover_at(
        self,
        account: str,
        restore: Callable[[Any], S],
        fresh: Callable[[], S],
        apply: Callable[[S, R], None],
    ) -> Recovery[S]:
        """`recover`, also telling the id of the last record in the state (`0-0` when none) and how many it replayed.

        Raises `JournalGap` when a record after the snapshot was trimmed or deleted, or when the snapshot covers
        records the stream does not hold; `CorruptRecord` / `CorruptSnapshot` when something does not decode.
        """
        found = self._load_snapshot(account)
        info = self._stream_info(self._client, self._key(account))
        if found is None:
            after, covered = "0-0", 0
        else:
            after, covered = found[1], found[2]
        if info is not None:
            removed = int(info["entries-added"]) - int(info["length"])
            if removed > covered or parse_id(info["max-deleted-entry-id"]) > parse_id(after):
                raise JournalGap(
                    f"journal of account {account!r} lost records after {after}: {removed} entries were trimmed or "
                    f"deleted but the snapshot covers only {covered}"
                )
            last = parse_id(info["last-generated-id"])
        else:
            last = (0, 0)
        if parse_id(after) > last:
            raise JournalGap(
                f"snapshot of account {account!r} covers records up to {after} "
                f"but the journal ends at {last[0]}-{last[1]}"
            )
        state = fresh() if found is None else restore(found[0])
        replayed = 0
        for sid, record in self.read(account, after):
            apply(state, record)
            after = sid
            replayed += 1
        return Recovery(state, after, replayed)

    def accounts(self) -> list[str]:
        """Every account that has a journal stream, sorted (SCAN, so safe on a large keyspace)."""
        head = f"{self._prefix}:journal:"
        found = {
            _text(key)[len(head) :]
            for key in self._client.scan_iter(match=f"{_escape_glob(head)}*", count=1000, _type="STREAM")
        }
        return sorted(found)

    def length(self, account: str) -> int:
        """Number of records currently in the account's stream (XLEN)."""
        return int(self._client.xlen(self._key(account)))

    # -- internals --

    def _key(self, account: str) -> str:
        if not account:
            raise ValueError("account must be a non-empty string")
        return journal_key(account, self._prefix)

    def _snap_key(self, account: str) -> str:
        if not account:
            raise ValueError("account must be a non-empty string")
        return snapshot_key(account, self._prefix)

    def _append(self, items: list[tuple[str, list[bytes], tuple[str, str] | None]]) -> list[list[str]]:
        """Seal each (stream, datas, trim) onto its stream's chain and append them all in one script call,
        re-sealing the streams it found stale; `trim` = (write-ahead stream, first id to keep) is trimmed with it."""
        known: dict[str, tuple[ChainHead, str]] = {}
        for key, _, _ in items:  # put back only after a success: a failed append may have written
            head = self._heads.pop(key, None)
            known[key] = head if head is not None else self._head_of(key)
        for _ in range(_STALE_RETRIES):
            keys: list[str] = []
            args: list[Any] = [self._maxlen or 0, len(items)]
            sealed: list[bytes] = []
            ends: list[ChainHead] = []
            for key, datas, trim in items:
                (seq, prev), last_id = known[key]
                for data in datas:
                    seq += 1
                    data = seal(data, seq, prev)
                    prev = data[-DIGEST_SIZE:]
                    sealed.append(data)
                ends.append(ChainHead(seq, prev))
                keys += [key, key if trim is None else trim[0]]
                args += [last_id, "" if trim is None else trim[1], len(datas)]
            written, reply = self._append_script(keys=keys, args=[*args, *sealed])
            if written == 0:  # stale: {i, entries-added, last id, last r} per stream
                for i, added, last, r in reply:
                    key = items[int(i) - 1][0]
                    known[key] = (_head_after(key, int(added), r), _text(last))
                continue
            out = []
            for (key, _, _), end, sids in zip(items, ends, reply, strict=True):
                ids = [_text(sid) for sid in sids]
                self._heads[key] = (end, ids[-1])
                out.append(ids)
            return out
        streams = ", ".join(k for k, _, _ in items)
        raise JournalError(f"{streams}: other writers kept appending; gave up after {_STALE_RETRIES} attempts")

    def _head_of(self, key: str) -> tuple[ChainHead, str]:
        """The stream's chain head and last entry id, read from its last entry."""
        info = self._stream_info(self._client, key)
        if info is None:
            return ChainHead(0, genesis(key)), ""
        top = info.get("last-entry")
        last_id, last = (_text(top[0]), top[1].get(RECORD_FIELD)) if top else ("", None)
        return _head_after(key, int(info["entries-added"]), last), last_id

    def _decode(self, account: str, sid: str, fields: dict[bytes, bytes]) -> R:
        data = fields.get(RECORD_FIELD)
        if data is None:
            raise CorruptRecord(account, sid, f"no field 'r' (fields: {sorted(_text(f) for f in fields)})")
        try:
            return self._decoder.decode(unseal(data))  # type: ignore[no-any-return]
        except msgspec.DecodeError as exc:
            raise CorruptRecord(account, sid, str(exc)) from exc

    def _load_snapshot(self, account: str) -> tuple[Any, str, int] | None:
        raw = self._client.hgetall(self._snap_key(account))
        if not raw:
            return None
        try:
            data, upto, seq = raw[b"data"], _text(raw[b"upto"]), int(raw[b"seq"])
            parse_id(upto)
        except (KeyError, ValueError) as exc:
            raise CorruptSnapshot(f"snapshot of account {account!r} is malformed: {exc!r}") from exc
        if self._snapshot_decoder is None:
            return data, upto, seq
        try:
            return self._snapshot_decoder.decode(data), upto, seq
        except msgspec.DecodeError as exc:
            raise CorruptSnapshot(f"snapshot of account {account!r} up to {upto} does not decode: {exc}") from exc

    @staticmethod
    def _stream_info(client: redis.Redis | redis.client.Pipeline, key: str) -> dict[str, Any] | None:
        """XINFO STREAM as a dict, or None when the stream does not exist."""
        try:
            info = client.xinfo_stream(key)
        except redis.ResponseError as exc:
            if "no such key" in str(exc).lower():
                return None
            raise
        return {_text(k): v for k, v in info.items()}


def _escape_glob(text: str) -> str:
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)
