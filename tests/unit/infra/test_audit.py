"""The journal's hash chain, pure: sealing records, and `StreamAudit` over hand-built streams."""

from __future__ import annotations

import argparse
from pathlib import Path

import msgspec
import pytest

from oms.apps.audit import load_redis_settings, parse_pin
from oms.core.model.instruments import ConfigError
from oms.infra.redis.audit import (
    Anchor,
    AuditReport,
    Fault,
    StreamAudit,
    StreamReport,
    check_stream,
)
from oms.infra.redis.journal import DIGEST_SIZE, chain_hash, genesis, link_of, seal, unseal

KEY = "oms:journal:ACC1"


class Rec(msgspec.Struct, frozen=True, tag="rec"):
    n: int
    text: str = ""


class Wide(msgspec.Struct, frozen=True, tag="wide"):  # 15 fields + the tag: a map16 once the chain key is added
    a: int = 0
    b: int = 0
    c: int = 0
    d: int = 0
    e: int = 0
    f: int = 0
    g: int = 0
    h: int = 0
    i: int = 0
    j: int = 0
    k: int = 0
    m: int = 0
    o: int = 0
    p: int = 0


class Pair(msgspec.Struct, frozen=True, array_like=True):
    x: int
    y: int


_encode = msgspec.msgpack.Encoder().encode
Entries = list[tuple[str, dict[bytes, bytes]]]


def build(n: int, key: str = KEY, start: int = 1) -> Entries:
    """A stream of `n` sealed records with seqs `start`.., chained from the genesis hash of `key`."""
    prev = genesis(key)
    entries: Entries = []
    for seq in range(start, start + n):
        data = seal(_encode(Rec(seq)), seq, prev)
        prev = data[-DIGEST_SIZE:]
        entries.append((f"{1000 + seq}-0", {b"r": data}))
    return entries


def anchor_at(entries: Entries, index: int) -> Anchor:
    """What a snapshot taken right after entries[index] records."""
    entry_id, fields = entries[index]
    link = link_of(fields[b"r"])
    assert link is not None
    return Anchor(entry_id, link.seq, link.hash)


def faults(report: StreamReport) -> list[tuple[str, Fault]]:
    return [(p.entry_id, p.fault) for p in report.problems]


# -- sealing --


@pytest.mark.parametrize(
    "record",
    [Rec(1), Rec(2, "x" * 300), Wide(), {"k": 1}, {str(i): i for i in range(15)}, {str(i): i for i in range(70_000)}],
)
def test_a_sealed_record_unseals_to_its_own_bytes_and_still_decodes(record: object) -> None:
    plain = _encode(record)

    sealed = seal(plain, 7, genesis(KEY))

    assert unseal(sealed) == plain
    if isinstance(record, msgspec.Struct):  # Struct decoders skip the chain key as an unknown field
        assert msgspec.msgpack.decode(sealed, type=type(record)) == record
    else:  # a dict shows it: the journal's read unseals first
        assert msgspec.msgpack.decode(sealed) == {**record, "#chain": sealed[-41:]}  # type: ignore[dict-item]
    link = link_of(sealed)
    assert link is not None
    assert (link.seq, link.prev) == (7, genesis(KEY))
    assert link.hash == chain_hash(sealed[:-DIGEST_SIZE])


def test_a_record_that_is_not_a_map_cannot_be_sealed() -> None:
    with pytest.raises(ValueError, match="msgpack map"):
        seal(_encode(Pair(1, 2)), 1, genesis(KEY))
    with pytest.raises(ValueError, match="msgpack map"):
        seal(_encode(5), 1, genesis(KEY))
    with pytest.raises(ValueError, match="seq"):
        seal(_encode(Rec(1)), 0, genesis(KEY))
    with pytest.raises(ValueError, match="prev"):
        seal(_encode(Rec(1)), 1, b"short")


def test_bytes_without_a_chain_have_no_link_and_unseal_unchanged() -> None:
    plain = _encode(Rec(1))

    assert link_of(plain) is None
    assert unseal(plain) == plain
    assert link_of(b"") is None


def test_every_single_byte_change_of_a_sealed_record_is_detected() -> None:
    sealed = seal(_encode(Rec(3, "abc")), 3, genesis(KEY))

    for i in range(len(sealed)):
        changed = bytearray(sealed)
        changed[i] ^= 0x01
        link = link_of(bytes(changed))
        assert link is None or chain_hash(bytes(changed[:-DIGEST_SIZE])) != link.hash, i


def test_each_stream_has_its_own_genesis() -> None:
    assert genesis("oms:journal:A") != genesis("oms:journal:B")
    assert len(genesis(KEY)) == DIGEST_SIZE


# -- StreamAudit --


def test_an_intact_stream_has_no_problem_and_reports_its_head() -> None:
    entries = build(5)

    report = check_stream(KEY, entries, added=5)

    assert report.ok and report.problems == []
    assert (report.records, report.first_seq, report.last_seq) == (5, 1, 5)
    assert (report.first_id, report.last_id) == ("1001-0", "1005-0")
    link = link_of(entries[-1][1][b"r"])
    assert link is not None and report.head == link.hash.hex()
    assert report.describe().endswith(f"head {KEY}@5={report.head}: ok")


def test_an_altered_record_is_the_one_named_and_the_only_problem() -> None:
    entries = build(5)
    data = bytearray(entries[2][1][b"r"])
    data[data.index(b"\xa1n") + 2] ^= 0x7F  # Rec(3).n becomes another number
    entries[2] = (entries[2][0], {b"r": bytes(data)})

    report = check_stream(KEY, entries, added=5)

    assert faults(report) == [("1003-0", Fault.ALTERED)]
    assert "do not match the hash" in report.problems[0].detail


def test_a_record_replaced_with_a_recomputed_hash_breaks_the_link_to_the_next() -> None:
    entries = build(5)
    link = link_of(entries[2][1][b"r"])
    assert link is not None
    forged = seal(_encode(Rec(999)), link.seq, link.prev)  # self-consistent, but not what record 4 chained to
    entries[2] = (entries[2][0], {b"r": forged})

    report = check_stream(KEY, entries, added=5)

    assert faults(report) == [("1004-0", Fault.ALTERED)]
    assert "does not chain from seq 3 (entry 1003-0)" in report.problems[0].detail


def test_a_removed_record_is_named_by_the_record_after_the_gap() -> None:
    entries = build(6)
    del entries[2]

    report = check_stream(KEY, entries, added=6, max_deleted_id="1003-0")

    assert faults(report) == [("1004-0", Fault.REMOVED)]
    assert "seq jumps from 2 (entry 1002-0) to 4: 1 record missing" in report.problems[0].detail
    assert "XDEL" in report.problems[0].detail


def test_records_removed_from_the_end_are_caught_by_the_stream_counter() -> None:
    entries = build(6)[:4]

    report = check_stream(KEY, entries, added=6)

    assert faults(report) == [("1004-0", Fault.REMOVED)]
    assert "2 removed from the end, after 1004-0" in report.problems[0].detail


def test_two_swapped_records_are_reported_as_reordered_at_the_first() -> None:
    entries = build(5)
    ids = [entry_id for entry_id, _ in entries]
    datas = [fields for _, fields in entries]
    datas[1], datas[2] = datas[2], datas[1]  # ids stay in order, contents swapped

    report = check_stream(KEY, list(zip(ids, datas, strict=True)), added=5)

    assert faults(report) == [("1002-0", Fault.REORDERED), ("1003-0", Fault.REORDERED)]
    assert "seq 2 comes later, at 1003-0" in report.problems[0].detail


def test_a_record_without_a_chain_is_unchained_before_or_inside_the_chain() -> None:
    legacy: Entries = [("999-0", {b"r": _encode(Rec(0))})]
    inside = build(3)
    inside.insert(2, ("1002-5", {b"r": _encode(Rec(0))}))

    before = check_stream(KEY, legacy + build(2, start=2), added=3)
    within = check_stream(KEY, inside, added=4)

    assert faults(before) == [("999-0", Fault.UNCHAINED)]
    assert "before the journal had one" in before.problems[0].detail
    assert faults(within)[0] == ("1002-5", Fault.UNCHAINED)


def test_an_entry_with_other_fields_is_malformed() -> None:
    entries = build(3)
    entries[1] = (entries[1][0], {**entries[1][1], b"x": b"1"})

    report = check_stream(KEY, entries, added=3)

    assert faults(report)[0] == ("1002-0", Fault.MALFORMED)


def test_a_trimmed_front_covered_by_the_snapshot_is_not_a_fault() -> None:
    entries = build(10)
    anchor = anchor_at(entries, 5)  # snapshot up to seq 6

    exact = check_stream(KEY, entries[6:], added=10, anchor=anchor)  # trimmed right up to the snapshot
    less = check_stream(KEY, entries[3:], added=10, anchor=anchor)  # trimmed less than it covers

    assert exact.ok and exact.trimmed == 6 and exact.first_seq == 7
    assert less.ok and less.trimmed == 3
    assert "3 earlier trimmed, covered by the snapshot up to 1006-0" in less.describe()


def test_a_trimmed_front_the_snapshot_does_not_cover_is_removed() -> None:
    entries = build(10)

    no_snapshot = check_stream(KEY, entries[4:], added=10)
    short = check_stream(KEY, entries[4:], added=10, anchor=anchor_at(entries, 1))

    assert faults(no_snapshot) == [("1005-0", Fault.REMOVED)]
    assert "records 1..4 are gone and no snapshot covers them" in no_snapshot.problems[0].detail
    assert "the snapshot covers only 2" in short.problems[0].detail


def test_the_first_record_after_a_trim_must_chain_from_the_snapshot_hash() -> None:
    entries = build(10)
    anchor = anchor_at(entries, 5)
    wrong = Anchor(anchor.upto, anchor.seq, b"\x00" * DIGEST_SIZE)

    report = check_stream(KEY, entries[6:], added=10, anchor=wrong)

    assert faults(report) == [("1007-0", Fault.ALTERED)]


def test_a_chain_rebuilt_from_an_altered_record_on_disagrees_with_the_snapshot() -> None:
    entries = build(8)
    anchor = anchor_at(entries, 5)
    prev = link_of(entries[1][1][b"r"]).hash  # type: ignore[union-attr]
    for i in range(2, 8):  # alter record 3 and reseal everything after it: a self-consistent forgery
        data = seal(_encode(Rec(1000 + i)), i + 1, prev)
        prev = data[-DIGEST_SIZE:]
        entries[i] = (entries[i][0], {b"r": data})

    report = check_stream(KEY, entries, added=8, anchor=anchor)

    assert faults(report) == [("1006-0", Fault.ALTERED)]
    assert "the snapshot recorded" in report.problems[0].detail


def test_a_snapshot_entry_id_that_differs_is_a_rewrite() -> None:
    entries = build(4)
    anchor = anchor_at(entries, 1)

    report = check_stream(KEY, entries, added=4, anchor=Anchor("1500-0", anchor.seq, anchor.chain))

    assert faults(report) == [("1002-0", Fault.REWRITTEN)]


def test_a_hash_pinned_outside_the_journal_catches_a_recomputed_chain_and_a_shorter_stream() -> None:
    entries = build(8)
    pinned = link_of(entries[5][1][b"r"])
    assert pinned is not None
    prev = link_of(entries[3][1][b"r"]).hash  # type: ignore[union-attr]
    for i in range(4, 8):  # a self-consistent forgery from record 5 on
        data = seal(_encode(Rec(-i)), i + 1, prev)
        prev = data[-DIGEST_SIZE:]
        entries[i] = (entries[i][0], {b"r": data})

    forged = check_stream(KEY, entries, added=8)
    caught = check_stream(KEY, entries, added=8, pins={6: pinned.hash})
    short = check_stream(KEY, build(4), added=4, pins={6: pinned.hash})

    assert forged.ok  # nothing inside the journal contradicts it
    assert faults(caught) == [("1006-0", Fault.ALTERED)]
    assert faults(short) == [("1004-0", Fault.REMOVED)]
    assert "seq 6, recorded outside the journal, is gone" in short.problems[0].detail


def test_a_pin_parses_from_the_head_a_report_prints() -> None:
    digest = "ab" * DIGEST_SIZE

    assert parse_pin(f"{KEY}@12={digest}") == (KEY, 12, bytes.fromhex(digest))
    for bad in (f"{KEY}@x={digest}", f"{KEY}@12=abc", f"{KEY}@0={digest}", f"other@12={digest}", "nothing"):
        with pytest.raises(argparse.ArgumentTypeError, match="STREAM@SEQ=HASH"):
            parse_pin(bad)


def test_a_stream_shorter_than_its_snapshot_is_truncated() -> None:
    entries = build(6)
    anchor = anchor_at(entries, 4)

    report = check_stream(KEY, entries[:3], added=3, anchor=anchor)  # rebuilt: counter matches, snapshot does not

    assert faults(report) == [("1005-0", Fault.REMOVED)]
    assert "covers up to seq 5 (entry 1005-0) but the stream ends at seq 3" in report.problems[0].detail


def test_a_counter_below_the_last_seq_means_the_stream_was_recreated() -> None:
    report = check_stream(KEY, build(5)[2:], added=3, anchor=None)

    assert (Fault.REWRITTEN in {p.fault for p in report.problems}) and not report.ok


def test_a_chain_copied_from_another_stream_does_not_start_this_one() -> None:
    report = check_stream(KEY, build(3, key="oms:journal:OTHER"), added=3)

    assert faults(report) == [("1001-0", Fault.ALTERED)]


def test_an_xdel_that_leaves_no_gap_in_the_chain_is_still_reported() -> None:
    entries = build(5)
    anchor = anchor_at(entries, 2)

    report = check_stream(KEY, entries[1:], added=5, max_deleted_id="1001-0", anchor=anchor)  # looks trimmed

    assert faults(report) == [("1001-0", Fault.REMOVED)]
    assert "XDEL" in report.problems[0].detail


def test_an_emptied_stream_and_a_missing_stream_with_a_snapshot_are_removed() -> None:
    emptied = check_stream(KEY, [], added=4, max_deleted_id="1004-0")
    gone = StreamAudit(KEY, Anchor("1004-0", 4, b"\x01" * DIGEST_SIZE)).finish(0)

    assert emptied.problems[0].fault == Fault.REMOVED
    assert faults(gone) == [("1004-0", Fault.REMOVED)]


def test_problems_past_the_limit_are_counted_not_listed() -> None:
    entries = build(30)
    bad = [(entry_id, {b"r": fields[b"r"][:-1] + b"\x00"}) for entry_id, fields in entries]

    audit = StreamAudit(KEY, max_problems=4)
    for entry_id, fields in bad:
        audit.feed(entry_id, fields)
    report = audit.finish(30)

    assert len(report.problems) == 4 and report.more_problems > 0


def test_the_first_problem_of_a_report_is_that_of_the_first_bad_stream() -> None:
    good = check_stream("oms:journal:A", build(2, key="oms:journal:A"), added=2)
    bad = check_stream("oms:journal:B", build(3, key="oms:journal:B")[1:], added=3)

    report = AuditReport([good, bad])

    assert not report.ok and report.records == 4
    assert report.first_problem is not None and report.first_problem.stream == "oms:journal:B"
    assert str(report.first_problem).startswith("oms:journal:B 1002-0: removed: ")


# -- configuration --


def test_redis_settings_come_from_the_config_with_the_data_dir_relative_to_it(tmp_path: Path) -> None:
    config = tmp_path / "oms.toml"
    config.write_text('[redis]\ndata_dir = "../var/redis"\n[fix]\nport = 1\n')

    settings = load_redis_settings(config)

    assert settings.url is None and Path(settings.data_dir) == (tmp_path / "../var/redis").resolve()


def test_a_bad_redis_table_or_a_missing_config_fails_naming_the_file(tmp_path: Path) -> None:
    config = tmp_path / "oms.toml"
    config.write_text('[redis]\ndata_dri = "x"\n')

    with pytest.raises(ConfigError, match=r"oms\.toml: redis: .*data_dri"):
        load_redis_settings(config)
    with pytest.raises(ConfigError, match=r"missing\.toml"):
        load_redis_settings(tmp_path / "missing.toml")
