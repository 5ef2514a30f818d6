"""The audit trail: checking the journal's hash chain (`oms audit verify` is its command, in `oms.apps.audit`).

Every record the journal appends is sealed into its stream's hash chain (`oms.infra.redis.journal.seal`): it carries its
1-based position `seq`, the hash of the record before it (`prev`) and its own BLAKE2b-128 hash over all it stores.
`verify` reads each journal stream (the accounts' `oms:journal:*`, the algo engine's `oms:algos:journal:*` and the
OMS's own record `oms:records:journal:*`) and reports, per stream, how many records it checked and every way the
stream departs from an intact chain, the first one first:

- `altered`: a record whose bytes do not match its hash, that does not chain from the record before it, or that
  disagrees with the hash its account's snapshot recorded for it;
- `removed`: records missing (a jump in `seq`; a front that no snapshot covers; a tail shorter than the stream's own
  `entries-added` counter or than the snapshot; entries deleted with XDEL, which the journal never does);
- `reordered`: a record after one with a higher `seq`, or a jump whose missing records come later;
- `unchained`: a record without a chain (written before the chain existed, or not by the journal);
- `malformed`: an entry without exactly the one field `r`, or a snapshot that does not parse;
- `rewritten`: the stream's counters or the snapshot's entry id contradict the chain (the stream was recreated).

A front trimmed by `stream_maxlen` is not a fault when the snapshot covers it: it is reported as `trimmed`. What a
chain without a secret key cannot show is in docs/journal.md ("The hash chain").

`StreamAudit` is the check itself, pure (entries in, report out); `verify` feeds it from Redis.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum

import msgspec
import redis

from oms.infra.redis.journal import (
    RECORD_FIELD,
    ChainLink,
    chain_hash,
    genesis,
    journal_key,
    link_of,
    snapshot_key,
)

__all__ = [
    "Anchor",
    "AuditReport",
    "Fault",
    "Problem",
    "StreamAudit",
    "StreamReport",
    "check_stream",
    "verify",
]

# the accounts' journals, the algo engine's (oms.core.algos.store), the OMS's own record (oms.infra.redis.records)
DEFAULT_PREFIXES = ("oms", "oms:algos", "oms:records")
MAX_PROBLEMS = 10  # per stream; the rest are counted
_NO_ID = "0-0"


class Fault(StrEnum):
    """What is wrong with a record or a stream (see the module doc)."""

    ALTERED = "altered"
    REMOVED = "removed"
    REORDERED = "reordered"
    UNCHAINED = "unchained"
    MALFORMED = "malformed"
    REWRITTEN = "rewritten"


class Problem(msgspec.Struct, frozen=True):
    """One departure from an intact chain: the stream, the entry it concerns, what is wrong."""

    stream: str
    entry_id: str  # the stream entry named; for a missing tail, the last entry left; "" when the stream is gone
    fault: Fault
    detail: str

    def __str__(self) -> str:
        return f"{self.stream} {self.entry_id or '(no entry)'}: {self.fault}: {self.detail}"


class Anchor(msgspec.Struct, frozen=True):
    """What an account's snapshot says about the chain: the entry it covers up to, that record's seq and hash."""

    upto: str
    seq: int
    chain: bytes | None  # None: the record at `upto` carried no chain when the snapshot was taken


class StreamReport(msgspec.Struct):
    """What `verify` found on one stream. `ok` when `problems` is empty."""

    stream: str
    exists: bool = True
    records: int = 0  # entries read and checked
    first_id: str | None = None
    last_id: str | None = None
    first_seq: int | None = None
    last_seq: int | None = None  # the highest seq seen
    head: str = ""  # hex of the chain hash of the record with the highest seq
    added: int = 0  # the stream's entries-added counter
    trimmed: int = 0  # records before the first one left, trimmed and covered by the snapshot
    snapshot: str | None = None  # the snapshot's `upto`, when there is one
    problems: list[Problem] = msgspec.field(default_factory=list)
    more_problems: int = 0  # problems past the first MAX_PROBLEMS, not listed

    @property
    def ok(self) -> bool:
        return not self.problems

    def describe(self) -> str:
        """One line: what was checked and the verdict."""
        parts = [f"{self.records} records" if self.exists else "no such stream"]
        if self.first_seq is not None:
            parts.append(f"seq {self.first_seq}..{self.last_seq}")
        if self.trimmed:
            parts.append(f"{self.trimmed} earlier trimmed, covered by the snapshot up to {self.snapshot}")
        if self.head:
            parts.append(f"head {self.stream}@{self.last_seq}={self.head}")
        count = len(self.problems) + self.more_problems
        verdict = "ok" if self.ok else f"{count} problem{'s' if count > 1 else ''}"
        return f"{self.stream}: {', '.join(parts)}: {verdict}"


class AuditReport(msgspec.Struct):
    """Every stream `verify` checked, in key order."""

    streams: list[StreamReport]

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.streams)

    @property
    def records(self) -> int:
        return sum(s.records for s in self.streams)

    @property
    def first_problem(self) -> Problem | None:
        """The first bad record of the first stream (by key) that has one."""
        for s in self.streams:
            if s.problems:
                return s.problems[0]
        return None


class _Gap(msgspec.Struct):
    lo: int  # first missing seq
    hi: int  # seq of the record after the gap
    before: str  # the entry before the gap
    index: int  # its problem in the list


class StreamAudit:
    """Checks one stream's entries, fed oldest first; `finish` gives the report. Pure: no I/O.

    Each record is checked on its own (its hash over its bytes) and against the record with the highest seq seen
    before it (consecutive seq, `prev` equal to that record's hash), so one removed record is one problem and two
    swapped records are two. The first record left must start the chain (seq 1 from the stream's genesis hash), or
    follow a front the snapshot covers.
    """

    def __init__(
        self,
        stream: str,
        anchor: Anchor | None = None,
        pins: Mapping[int, bytes] | None = None,
        max_problems: int = MAX_PROBLEMS,
    ) -> None:
        """`anchor`: what the stream's snapshot says; `pins`: seq -> hash recorded outside the journal (an earlier
        run's printed head), which the record with that seq must still carry."""
        self._report = StreamReport(stream, snapshot=anchor.upto if anchor is not None else None)
        self._anchor = anchor if anchor is not None and anchor.seq > 0 else None
        self._pins = dict(pins or {})
        self._max = max_problems
        self._top: ChainLink | None = None  # the record with the highest seq so far
        self._top_id = ""
        self._unchained = False  # an unchained record came before any chained one
        self._last_chained = False  # the latest entry carried a chain
        self._anchor_seen = False
        self._gap: _Gap | None = None  # the first seq jump, until its missing records show up later (reordered)

    # -- COMMANDS --

    def feed(self, entry_id: str, fields: Mapping[bytes, bytes]) -> None:
        """Check the next entry of the stream (its id and its fields, as XRANGE returns them)."""
        r = self._report
        r.records += 1
        if r.first_id is None:
            r.first_id = entry_id
        r.last_id = entry_id
        self._last_chained = False
        data = fields.get(RECORD_FIELD)
        if data is None or len(fields) != 1:
            names = sorted(f.decode(errors="replace") for f in fields)
            self._add(entry_id, Fault.MALFORMED, f"has fields {names}, not just 'r'")
            return
        link = link_of(data)
        if link is None:
            if self._top is None:
                self._unchained = True
                detail = "carries no hash chain (written before the journal had one, or not by the journal)"
            else:
                detail = "carries no hash chain inside the chain (added by another writer, or its chain was removed)"
            self._add(entry_id, Fault.UNCHAINED, detail)
            return
        self._last_chained = True
        if r.first_seq is None:
            r.first_seq = link.seq
        if chain_hash(data[: -len(link.hash)]) != link.hash:
            self._add(entry_id, Fault.ALTERED, f"seq {link.seq}: its bytes do not match the hash it carries")
            # Take it as the next record with the hash it claims: a record whose body alone was changed is then
            # one problem, not also a break in the chain at the record after it.
            seq = self._top.seq + 1 if self._top is not None else link.seq
            link = ChainLink(seq, link.prev, link.hash)
        elif self._top is None:
            self._start(entry_id, link)
        else:
            self._follow(entry_id, link)
        self._check_anchor(entry_id, link)
        pinned = self._pins.pop(link.seq, None)
        if pinned is not None and pinned != link.hash:
            self._add(
                entry_id,
                Fault.ALTERED,
                f"seq {link.seq} does not have the hash recorded for it outside the journal: "
                f"a record up to it was rewritten",
            )
        self._resolve_gap(entry_id, link)
        if self._top is None or link.seq > self._top.seq:
            self._top, self._top_id = link, entry_id

    def snapshot_malformed(self, snapshot_key: str, why: str) -> None:
        """The stream's snapshot hash does not parse (so it anchors nothing): a problem of its own."""
        self._add("", Fault.MALFORMED, f"snapshot {snapshot_key} does not parse: {why}")

    def finish(self, added: int, max_deleted_id: str = _NO_ID) -> StreamReport:
        """The report, after checking the end of the stream against its counters (XINFO STREAM `entries-added`
        and `max-deleted-entry-id`) and against the snapshot."""
        r, top, anchor = self._report, self._top, self._anchor
        r.added = added
        end = top.seq if top is not None else 0
        if top is not None:
            r.last_seq, r.head = top.seq, top.hash.hex()
            if self._last_chained and added > top.seq:
                self._add(
                    self._top_id,
                    Fault.REMOVED,
                    f"the stream received {added} records but the last one left carries seq {top.seq}: "
                    f"{added - top.seq} removed from the end, after {self._top_id}",
                )
            elif added < top.seq:
                self._add(
                    self._top_id,
                    Fault.REWRITTEN,
                    f"carries seq {top.seq} but the stream's counter says it received only {added} records: "
                    f"the stream was recreated",
                )
        elif added > 0 and r.records == 0 and (anchor is None or anchor.seq < added):
            self._add("", Fault.REMOVED, f"the stream received {added} records and holds none")
        if anchor is not None and not self._anchor_seen and anchor.seq > end:
            self._add(
                anchor.upto,
                Fault.REMOVED,
                f"the snapshot covers up to seq {anchor.seq} (entry {anchor.upto}) but the stream ends at seq {end}",
            )
        for seq in sorted(s for s in self._pins if s > end):
            detail = f"seq {seq}, recorded outside the journal, is gone: the stream ends at seq {end}"
            self._add(self._top_id, Fault.REMOVED, detail)
        if max_deleted_id != _NO_ID:
            note = f"entries were deleted with XDEL, the last at {max_deleted_id} (the journal never deletes)"
            removed = [i for i, p in enumerate(r.problems) if p.fault == Fault.REMOVED]
            if removed:
                p = r.problems[removed[0]]
                r.problems[removed[0]] = msgspec.structs.replace(p, detail=f"{p.detail}; {note}")
            else:
                self._add(max_deleted_id, Fault.REMOVED, note)
        return r

    # -- internals --

    def _add(self, entry_id: str, fault: Fault, detail: str) -> None:
        r = self._report
        if len(r.problems) < self._max:
            r.problems.append(Problem(r.stream, entry_id, fault, detail))
        else:
            r.more_problems += 1

    def _start(self, entry_id: str, link: ChainLink) -> None:
        """The first chained record of what the stream holds: the chain's start, or right after a covered front."""
        if link.seq == 1:
            if link.prev != genesis(self._report.stream):
                self._add(entry_id, Fault.ALTERED, "seq 1 does not start this stream's chain (copied or forged)")
            return
        missing, anchor = link.seq - 1, self._anchor
        if anchor is not None and anchor.seq >= missing:
            self._report.trimmed = missing
            if anchor.seq == missing and anchor.chain is not None and link.prev != anchor.chain:
                self._add(
                    entry_id,
                    Fault.ALTERED,
                    f"seq {link.seq} does not chain from the hash the snapshot holds for seq {missing} "
                    f"(entry {anchor.upto})",
                )
            return
        if self._unchained:
            return  # the chain starts after records written without one: reported at the first of them
        covered = "no snapshot covers them" if anchor is None else f"the snapshot covers only {anchor.seq}"
        detail = f"the first record left carries seq {link.seq}: records 1..{missing} are gone and {covered}"
        self._add(entry_id, Fault.REMOVED, detail)

    def _follow(self, entry_id: str, link: ChainLink) -> None:
        top = self._top
        assert top is not None
        if link.seq == top.seq + 1:
            if link.prev != top.hash:
                self._add(
                    entry_id,
                    Fault.ALTERED,
                    f"seq {link.seq} does not chain from seq {top.seq} (entry {self._top_id}): "
                    "one of the two was replaced",
                )
        elif link.seq > top.seq + 1:
            n = link.seq - top.seq - 1
            if self._gap is None and len(self._report.problems) < self._max:
                self._gap = _Gap(top.seq + 1, link.seq, self._top_id, len(self._report.problems))
            self._add(
                entry_id,
                Fault.REMOVED,
                f"seq jumps from {top.seq} (entry {self._top_id}) to {link.seq}: "
                f"{n} record{'s' if n > 1 else ''} missing before it",
            )
        else:
            self._add(entry_id, Fault.REORDERED, f"seq {link.seq} comes after seq {top.seq} (entry {self._top_id})")

    def _resolve_gap(self, entry_id: str, link: ChainLink) -> None:
        """A record whose seq falls in the first jump: that jump was a reordering, not a removal."""
        gap = self._gap
        if gap is None or not gap.lo <= link.seq < gap.hi:
            return
        detail = (
            f"seq jumps from {gap.lo - 1} (entry {gap.before}) to {gap.hi}; seq {link.seq} comes later, at {entry_id}"
        )
        p = self._report.problems[gap.index]
        self._report.problems[gap.index] = msgspec.structs.replace(p, fault=Fault.REORDERED, detail=detail)
        self._gap = None

    def _check_anchor(self, entry_id: str, link: ChainLink) -> None:
        anchor = self._anchor
        if anchor is None or link.seq != anchor.seq:
            return
        self._anchor_seen = True
        if entry_id != anchor.upto:
            self._add(
                entry_id,
                Fault.REWRITTEN,
                f"seq {link.seq} is entry {entry_id} but the snapshot says it was entry {anchor.upto}",
            )
        elif anchor.chain is not None and link.hash != anchor.chain:
            self._add(
                entry_id,
                Fault.ALTERED,
                f"seq {link.seq} does not have the hash the snapshot recorded for it: a record up to it was rewritten",
            )


def check_stream(
    stream: str,
    entries: Sequence[tuple[str, Mapping[bytes, bytes]]],
    added: int,
    *,
    max_deleted_id: str = _NO_ID,
    anchor: Anchor | None = None,
    pins: Mapping[int, bytes] | None = None,
) -> StreamReport:
    """`StreamAudit` over a whole list of entries at once (for tests and small streams)."""
    audit = StreamAudit(stream, anchor, pins)
    for entry_id, fields in entries:
        audit.feed(entry_id, fields)
    return audit.finish(added, max_deleted_id)


# -- READING REDIS --


def verify(
    client: redis.Redis,
    account: str | None = None,
    *,
    prefixes: Sequence[str] = DEFAULT_PREFIXES,
    pins: Mapping[str, Mapping[int, bytes]] | None = None,
    batch: int = 1000,
) -> AuditReport:
    """Check the chain of `account`'s journal stream (under `prefixes[0]`), or of every journal stream.

    Every stream is found by SCAN (streams `<prefix>:journal:*`, plus any `<prefix>:snapshot:*` whose stream is
    gone, plus the streams `pins` names). `pins` maps a stream key to seq -> hash recorded outside the journal (the
    heads an earlier run printed): the record with that seq must still carry that hash, unless trimmed away. Each
    stream is read with XRANGE in pages of `batch`, up to the last entry that existed when its check began, so a
    running OMS can be checked: records appended meanwhile are left for the next run. Only reads. Raises ValueError
    for a pin on a stream that `account` excludes; Redis errors propagate (redis-py's exceptions).
    """
    if batch < 1:
        raise ValueError(f"batch must be >= 1, not {batch}")
    pins = pins or {}
    if account is not None:
        if not account:
            raise ValueError("account must be a non-empty string")
        targets = [(journal_key(account, prefixes[0]), snapshot_key(account, prefixes[0]))]
        others = sorted(set(pins) - {targets[0][0]})
        if others:
            raise ValueError(f"a pin names {others[0]}, which --account {account} does not check")
    else:
        targets = _discover(client, prefixes, pins)
    return AuditReport([_verify_stream(client, key, snap, pins.get(key), batch) for key, snap in targets])


def _discover(client: redis.Redis, prefixes: Sequence[str], pinned: Iterable[str]) -> list[tuple[str, str]]:
    found: dict[str, str] = {}
    for key in pinned:
        prefix, _, name = key.partition(":journal:")
        found[key] = snapshot_key(name, prefix)
    for prefix in prefixes:
        for kind, type_ in (("journal", "STREAM"), ("snapshot", "HASH")):
            head = f"{prefix}:{kind}:"
            for raw in client.scan_iter(match=f"{_escape_glob(head)}*", count=1000, _type=type_):
                name = raw.decode()[len(head) :]
                found[journal_key(name, prefix)] = snapshot_key(name, prefix)
    return sorted(found.items())


def _verify_stream(
    client: redis.Redis, key: str, snap_key: str, pins: Mapping[int, bytes] | None, batch: int
) -> StreamReport:
    anchor, bad_snapshot = _anchor(client.hgetall(snap_key))
    try:
        info = {k.decode() if isinstance(k, bytes) else k: v for k, v in client.xinfo_stream(key).items()}
    except redis.ResponseError as exc:
        if "no such key" not in str(exc).lower():
            raise
        info = None
    audit = StreamAudit(key, anchor, pins)
    if bad_snapshot:
        audit.snapshot_malformed(snap_key, bad_snapshot)
    if info is None:
        report = audit.finish(0)
        report.exists = False
        return report
    end = _text(info["last-generated-id"])
    cursor = "-"
    while True:
        entries = client.xrange(key, cursor, end, count=batch)
        for raw_id, fields in entries:
            audit.feed(_text(raw_id), fields)
        if len(entries) < batch:
            break
        cursor = f"({_text(entries[-1][0])}"
    return audit.finish(int(info["entries-added"]), _text(info["max-deleted-entry-id"]))


def _anchor(raw: Mapping[bytes, bytes]) -> tuple[Anchor | None, str]:
    """(the snapshot's anchor or None, why it does not parse or "")."""
    if not raw:
        return None, ""
    try:
        upto, seq = raw[b"upto"].decode(), int(raw[b"seq"])
        chain = bytes.fromhex(raw.get(b"chain", b"").decode())
    except (KeyError, ValueError) as exc:
        return None, repr(exc)
    return Anchor(upto, seq, chain or None), ""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _escape_glob(text: str) -> str:
    out = []
    for ch in text:
        out.append("\\" + ch if ch in "*?[]\\" else ch)
    return "".join(out)
