from __future__ import annotations

import hashlib
import threading
import uuid
from pathlib import Path

import msgspec
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oms.infra.redis.audit import verify
from oms.infra.redis.journal import (
    CorruptRecord,
    CorruptSnapshot,
    Journal,
    JournalGap,
    SnapshotRegression,
    chain_hash,
    genesis,
    journal_key,
    link_of,
    snapshot_key,
    unseal,
)
from oms.infra.redis.server import ManagedRedis, make_client

pytestmark = pytest.mark.integration


class Added(msgspec.Struct, frozen=True, tag="added"):
    n: int


class Noted(msgspec.Struct, frozen=True, tag="noted"):
    text: str


Record = Added | Noted
_encode = msgspec.msgpack.Encoder().encode


class Tally(msgspec.Struct):
    """A tiny account-like state: folds records into a sum, a count and a hash chain over every record."""

    total: int = 0
    count: int = 0
    digest: bytes = b""

    def state_hash(self) -> str:
        return hashlib.sha256(_encode(self)).hexdigest()


def apply(state: Tally, record: Record) -> None:
    match record:
        case Added(n=n):
            state.total += n
        case Noted():
            pass
    state.count += 1
    state.digest = hashlib.blake2b(state.digest + _encode(record), digest_size=16).digest()


def fold(records: list[Record]) -> Tally:
    state = Tally()
    for record in records:
        apply(state, record)
    return state


def _records(n: int, start: int = 0) -> list[Record]:
    return [Added(i) if i % 3 else Noted(f"note {i}") for i in range(start, start + n)]


@pytest.fixture
def journal(redis_client: redis.Redis) -> Journal[Record]:
    return Journal(redis_client, Record, snapshot_type=Tally, batch=7)


def _id(stream_id: str) -> tuple[int, int]:
    ms, seq = stream_id.split("-")
    return int(ms), int(seq)


# -- append / read --


def test_appended_records_read_back_in_order_with_increasing_ids(journal: Journal[Record], account: str) -> None:
    records = _records(30)  # batch=7: several XRANGE pages, the last one partial
    ids = [journal.append(account, r) for r in records]

    read = list(journal.read(account))

    assert [sid for sid, _ in read] == ids
    assert [r for _, r in read] == records
    assert [_id(i) for i in ids] == sorted(_id(i) for i in ids)
    assert journal.length(account) == 30


def test_read_after_an_id_is_exclusive_and_an_unknown_account_reads_empty(
    journal: Journal[Record], account: str
) -> None:
    ids = journal.append_many(account, _records(14))  # exactly two pages of 7

    assert [r for _, r in journal.read(account, after_id=ids[6])] == _records(7, start=7)
    assert list(journal.read(account, after_id=ids[-1])) == []
    assert list(journal.read(account + "-none")) == []


def test_read_rejects_a_malformed_after_id(journal: Journal[Record], account: str) -> None:
    with pytest.raises(ValueError, match="not a stream id"):
        list(journal.read(account, after_id="latest"))


def test_records_are_msgpack_in_field_r_of_each_entry_sealed_into_the_chain(
    journal: Journal[Record], redis_client: redis.Redis, account: str
) -> None:
    journal.append(account, Added(5))
    journal.append(account, Noted("x"))

    [(_, first), (_, second)] = redis_client.xrange(journal_key(account))

    assert set(first) == set(second) == {b"r"}
    assert msgspec.msgpack.decode(first[b"r"], type=Record) == Added(5)  # the chain key is an unknown field
    assert unseal(first[b"r"]) == _encode(Added(5))
    one, two = link_of(first[b"r"]), link_of(second[b"r"])
    assert one is not None and two is not None
    assert (one.seq, one.prev) == (1, genesis(journal_key(account)))
    assert (two.seq, two.prev) == (2, one.hash)
    assert two.hash == chain_hash(second[b"r"][:-16])


def test_append_many_is_one_transaction_that_no_other_writer_interleaves(
    redis_server: ManagedRedis, account: str
) -> None:
    batches: dict[int, list[str]] = {}

    def writer(w: int) -> None:
        client = make_client(redis_server.url)
        journal: Journal[Record] = Journal(client, Record)
        for b in range(20):
            batches[w * 100 + b] = journal.append_many(account, [Added(w * 1000 + b * 10 + i) for i in range(10)])
        client.close()

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    client = make_client(redis_server.url)
    stream = [sid for sid, _ in Journal(client, Record).read(account)]
    report = verify(client, account)
    client.close()
    assert len(stream) == 600
    assert report.ok, report.first_problem  # the writers re-sealed whenever another got in first: one chain
    for ids in batches.values():
        start = stream.index(ids[0])
        assert stream[start : start + 10] == ids


def test_append_many_with_an_unencodable_record_writes_nothing(journal: Journal[Record], account: str) -> None:
    journal.append(account, Added(1))

    with pytest.raises(TypeError):
        journal.append_many(account, [Added(2), object(), Added(3)])  # type: ignore[list-item]

    assert [r for _, r in journal.read(account)] == [Added(1)]
    assert journal.append_many(account, []) == []


def test_accounts_lists_every_account_with_a_journal(redis_client: redis.Redis, account: str) -> None:
    journal: Journal[Record] = Journal(redis_client, Record, prefix=f"p{account}")
    for name in ("B", "A", "C:x"):
        journal.append(name, Added(1))
    journal.save_snapshot("A", Tally(), "0-0")

    assert journal.accounts() == ["A", "B", "C:x"]


def test_a_client_that_decodes_responses_is_rejected(redis_server: ManagedRedis) -> None:
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    with pytest.raises(ValueError, match="decode_responses=False"):
        Journal(client, Record)
    client.close()


# -- corruption --


def test_a_record_that_does_not_decode_raises_naming_its_stream_id(
    journal: Journal[Record], redis_client: redis.Redis, account: str
) -> None:
    journal.append(account, Added(1))
    bad = redis_client.xadd(journal_key(account), {b"r": b"\xc1garbage"}).decode()
    journal.append(account, Added(2))

    read = journal.read(account)
    assert next(read)[1] == Added(1)
    with pytest.raises(CorruptRecord, match=f"{bad} of account '{account}'") as info:
        next(read)
    assert info.value.stream_id == bad
    with pytest.raises(CorruptRecord, match=bad):
        journal.recover(account, lambda s: s, Tally, apply)


def test_an_entry_without_field_r_or_of_another_type_is_corrupt(
    journal: Journal[Record], redis_client: redis.Redis, account: str
) -> None:
    no_r = redis_client.xadd(journal_key(account), {b"x": b"1"}).decode()
    with pytest.raises(CorruptRecord, match=f"{no_r}.*no field 'r'"):
        list(journal.read(account))

    other = account + "-other"
    wrong = redis_client.xadd(journal_key(other), {b"r": _encode({"type": "unknown"})}).decode()
    with pytest.raises(CorruptRecord, match=wrong):
        list(journal.read(other))


def test_a_snapshot_that_does_not_decode_raises(
    journal: Journal[Record], redis_client: redis.Redis, account: str
) -> None:
    journal.append(account, Added(1))
    journal.save_snapshot(account, b"\xc1not msgpack", "0-0")

    with pytest.raises(CorruptSnapshot, match=account):
        journal.load_snapshot(account)

    redis_client.hdel(snapshot_key(account), "upto")
    with pytest.raises(CorruptSnapshot, match="malformed"):
        journal.recover(account, lambda s: s, Tally, apply)


# -- snapshots and recovery --


def test_recover_without_snapshot_folds_every_record(journal: Journal[Record], account: str) -> None:
    records = _records(25)
    journal.append_many(account, records)

    recovery = journal.recover_at(account, lambda s: s, Tally, apply)

    assert recovery.state == fold(records)
    assert recovery.replayed == 25
    assert journal.load_snapshot(account) is None
    assert journal.recover(account + "-none", lambda s: s, Tally, apply) == Tally()


def test_snapshot_plus_replay_equals_full_replay(journal: Journal[Record], account: str) -> None:
    records = _records(40)
    ids = journal.append_many(account, records[:25])
    journal.save_snapshot(account, fold(records[:25]), ids[-1])
    last = journal.append_many(account, records[25:])[-1]

    recovery = journal.recover_at(account, lambda s: s, Tally, apply)

    assert recovery.state.state_hash() == fold(records).state_hash()
    assert recovery.replayed == 15
    assert recovery.last_id == last
    snapshot, upto = journal.load_snapshot(account)  # type: ignore[misc]
    assert (snapshot, upto) == (fold(records[:25]), ids[-1])


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(1, 30), data=st.data())
def test_snapshot_at_any_point_then_replay_equals_full_replay(
    journal: Journal[Record], account: str, n: int, data: st.DataObject
) -> None:
    name = f"{account}-{uuid.uuid4().hex}"  # hypothesis reruns examples: a fresh stream each time
    records = _records(n)
    ids = journal.append_many(name, records)
    cut = data.draw(st.integers(0, n))
    journal.save_snapshot(name, fold(records[:cut]), ids[cut - 1] if cut else "0-0")

    assert journal.recover(name, lambda s: s, Tally, apply).state_hash() == fold(records).state_hash()


def test_snapshot_bytes_are_stored_as_given_with_upto_and_ts(redis_client: redis.Redis, account: str) -> None:
    journal: Journal[Record] = Journal(redis_client, Record)  # no snapshot_type: raw bytes back
    sid = journal.append(account, Added(1))
    journal.save_snapshot(account, b"opaque", sid)

    assert journal.load_snapshot(account) == (b"opaque", sid)
    stored = redis_client.hgetall(snapshot_key(account))
    assert set(stored) == {b"data", b"upto", b"seq", b"chain", b"ts"}
    assert stored[b"seq"] == b"1"
    [(_, fields)] = redis_client.xrange(journal_key(account))
    link = link_of(fields[b"r"])
    assert link is not None and stored[b"chain"] == link.hash.hex().encode()


def test_an_older_snapshot_or_one_past_the_journal_end_is_refused(journal: Journal[Record], account: str) -> None:
    ids = journal.append_many(account, _records(3))
    journal.save_snapshot(account, fold(_records(2)), ids[1])

    with pytest.raises(SnapshotRegression, match="newer"):
        journal.save_snapshot(account, fold(_records(1)), ids[0])
    with pytest.raises(SnapshotRegression, match="past the journal"):
        journal.save_snapshot(account, fold(_records(4)), "99999999999999-0")
    assert journal.load_snapshot(account) == (fold(_records(2)), ids[1])


def test_trimming_covered_by_the_snapshot_recovers_and_trimming_past_it_is_a_gap(
    redis_client: redis.Redis, account: str
) -> None:
    journal: Journal[Record] = Journal(redis_client, Record, snapshot_type=Tally)
    records = _records(20)
    ids = journal.append_many(account, records)
    journal.save_snapshot(account, fold(records[:15]), ids[14])
    redis_client.xtrim(journal_key(account), maxlen=5, approximate=False)  # drops exactly the 15 covered

    assert journal.recover(account, lambda s: s, Tally, apply) == fold(records)

    redis_client.xtrim(journal_key(account), maxlen=4, approximate=False)  # drops one the snapshot lacks
    with pytest.raises(JournalGap, match="trimmed or deleted"):
        journal.recover(account, lambda s: s, Tally, apply)


def test_a_deleted_record_without_snapshot_is_a_gap(
    journal: Journal[Record], redis_client: redis.Redis, account: str
) -> None:
    ids = journal.append_many(account, _records(3))
    redis_client.xdel(journal_key(account), ids[1])

    with pytest.raises(JournalGap):
        journal.recover(account, lambda s: s, Tally, apply)


def test_stream_maxlen_trims_old_records(redis_client: redis.Redis, account: str) -> None:
    journal: Journal[Record] = Journal(redis_client, Record, stream_maxlen=10)
    for i in range(0, 1000, 10):
        journal.append_many(account, _records(10, start=i))

    assert 10 <= journal.length(account) < 1000  # approximate trimming keeps whole radix nodes


# -- crash --


def test_every_acknowledged_record_survives_sigkill_of_redis_with_appendfsync_always(tmp_path: Path) -> None:
    records = _records(200)
    server = ManagedRedis(tmp_path, appendfsync="always").start()
    client = make_client(server.url)
    journal: Journal[Record] = Journal(client, Record, snapshot_type=Tally)
    acked = [journal.append("ACC", r) for r in records[:100]]
    acked += journal.append_many("ACC", records[100:])
    journal.save_snapshot("ACC", fold(records[:150]), acked[149])
    client.close()

    server.kill()
    server.stop()

    with ManagedRedis(tmp_path, appendfsync="always") as restarted:
        client = make_client(restarted.url)
        journal = Journal(client, Record, snapshot_type=Tally)
        assert [sid for sid, _ in journal.read("ACC")] == acked
        assert journal.recover("ACC", lambda s: s, Tally, apply).state_hash() == fold(records).state_hash()
        client.close()
