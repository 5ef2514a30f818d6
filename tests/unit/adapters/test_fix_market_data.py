"""The market data messages' pure parts: times to the nanosecond, match ids from a venue's MDEntryIDs, the
NoMDEntries group read back from what the codec writes, for both FIX versions."""

from __future__ import annotations

import pytest

from fix_gateway import tags as T
from fix_gateway.market_data import MAX_MATCH_ID, MdCodec, Print, Top, entries, fields, match_id, md_time, parse_md_time
from oms.apps.serve import DEFAULT_CONFIG
from oms.core.model.instruments import InstrumentRegistry

MSFT = InstrumentRegistry.load(DEFAULT_CONFIG.parent / "instruments.toml").by_symbol("MSFT")
BOTH = frozenset({T.MD_BID, T.MD_OFFER, T.MD_TRADE})


def test_entry_times_round_trip_to_the_nanosecond() -> None:
    ts = 1_767_225_600_123_456_789  # 2026-01-01T00:00:00.123456789Z

    date, clock = md_time(ts)

    assert (date, clock) == ("20260101", "00:00:00.123456789")
    assert parse_md_time(date, clock, 0) == ts
    assert parse_md_time(date, "00:00:00.5", 0) == ts - 123_456_789 + 500_000_000


def test_an_entry_without_a_date_is_today_and_without_a_time_is_now() -> None:
    now = 1_767_225_600_000_000_000 + 3_600 * 10**9  # 01:00 on 2026-01-01

    assert parse_md_time(None, "00:30:00", now) == now - 1_800 * 10**9
    assert parse_md_time("20251231", None, now) == now


@pytest.mark.parametrize("clock", ["25:00:00", "00:00:00.1234567891", "noon"])
def test_a_malformed_entry_time_is_refused(clock: str) -> None:
    with pytest.raises(ValueError):
        parse_md_time("20260101", clock, 0)


def test_a_numeric_mdentryid_is_the_match_id_and_any_other_a_stable_63_bit_hash() -> None:
    assert match_id("10000000006") == 10_000_000_006
    assert match_id(str(MAX_MATCH_ID)) == MAX_MATCH_ID
    for text in ("T-17", str(MAX_MATCH_ID + 1), "٣"):  # letters, past 63 bits, a non-ASCII digit
        assert match_id(text) == match_id(text) and 0 <= match_id(text) <= MAX_MATCH_ID
    assert match_id("T-17") != match_id("T-18")


@pytest.mark.parametrize("begin_string", ["FIX.4.2", "FIX.4.4"])
def test_an_update_puts_prints_first_then_the_sides_that_changed(begin_string: str) -> None:
    assert MSFT is not None
    before, after = Top(299_0000, 10, 301_0000, 100), Top(299_0000, 10, 301_0000, 70)
    change = ("MSFT", MSFT, [Print("42", 301_0000, 30, 5)], before, after, 6)

    msg = MdCodec(begin_string).update("r1", [change], BOTH)
    got = entries(fields(msg.toString()), T.MD_UPDATE_ACTION)
    only_quotes = MdCodec(begin_string).update("r1", [change], frozenset({T.MD_BID}))

    assert [(e[279], e[269], e.get(278), e[55], e[270], e[271]) for e in got] == [
        ("0", "2", "42", "MSFT", "301", "30"),
        ("1", "1", None, "MSFT", "301", "70"),  # the same price, less size: a change
    ]
    assert only_quotes is None  # the bid did not change and no trade was asked for


def test_an_emptied_side_is_deleted_and_a_new_price_is_new() -> None:
    assert MSFT is not None
    change = ("MSFT", MSFT, [], Top(299_0000, 10, 301_0000, 5), Top(300_0000, 1, 0, 0), 6)

    msg = MdCodec("FIX.4.4").update("r1", [change], BOTH)

    assert [(e[279], e[269], e.get(270)) for e in entries(fields(msg.toString()), 279)] == [
        ("0", "0", "300"),
        ("2", "1", None),
    ]


def test_a_snapshot_lists_the_sides_asked_for_that_are_not_empty() -> None:
    assert MSFT is not None
    codec = MdCodec("FIX.4.2")

    both = codec.snapshot("r1", "MSFT", MSFT, Top(299_0000, 10, 0, 0), BOTH, 0)
    empty = codec.snapshot("r1", "MSFT", MSFT, Top(0, 0, 0, 0), BOTH, 0)

    assert [(e[269], e[270], e[271]) for e in entries(fields(both.toString()), 269)] == [("0", "299", "10")]
    assert entries(fields(empty.toString()), 269) == [] and "\x01268=0\x01" in empty.toString()


def test_a_group_whose_count_does_not_match_its_entries_is_refused() -> None:
    with pytest.raises(ValueError, match="NoMDEntries 2 but 1 entries"):
        entries([(T.NO_MD_ENTRIES, "2"), (279, "0"), (269, "0")], 279)
