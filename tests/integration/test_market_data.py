"""Market data of an external venue: the exchange simulator publishes its books' top and trades over FIX
(MarketDataRequest, snapshots, incremental updates, rejects). Every party runs for real over loopback: the
simulator, QuickFIX initiators of its members, raw sockets for what QuickFIX would never send."""

from __future__ import annotations

import calendar
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fix_gateway import tags as T
from fix_gateway.client import SOH, FixClient, Received
from fix_gateway.market_data import MdCodec
from oms.apps.exchange_sim import DEFAULT_EXCHANGE_CONFIG, ExchangeSim
from oms.apps.serve import DEFAULT_CONFIG
from oms.infra.redis.server import free_port
from tests.integration.fix_raw import RawSession

pytestmark = pytest.mark.integration

CONFIGS = DEFAULT_CONFIG.parent
BOTH = (T.MD_BID, T.MD_OFFER, T.MD_TRADE)


def write_sim_config(root: Path, port: int) -> Path:
    path = root / "exchange.toml"
    path.write_text(
        f"""
instruments = "{CONFIGS / "instruments.toml"}"
[fix]
port = {port}
settings = "{DEFAULT_EXCHANGE_CONFIG.parent / "fix" / "exchange.cfg"}"
data_dir = "{root / "sim"}"
"""
    )
    return path


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[ExchangeSim]:
    s = ExchangeSim.start(write_sim_config(tmp_path, free_port()))
    yield s
    s.stop()


class Members:
    """The simulator's members as QuickFIX initiators, all stopped at the end."""

    def __init__(self, root: Path, port: int) -> None:
        self.root, self.port = root, port
        self.clients: list[FixClient] = []

    def __call__(self, sender: str) -> FixClient:
        begin_string = "FIX.4.2" if sender == "MEMBER42" else "FIX.4.4"
        c = FixClient(begin_string, sender, self.port, self.root / sender, target="EXCH")
        self.clients.append(c)
        return c.start()

    def stop(self) -> None:
        for c in self.clients:
            c.stop()


@pytest.fixture
def members(sim: ExchangeSim, tmp_path: Path) -> Iterator[Members]:
    m = Members(tmp_path, sim.port)
    yield m
    m.stop()


def subscribe(c: FixClient, req_id: str, symbols: list[str], kind: str = T.SUBSCRIBE_UPDATES,
              types: tuple[str, ...] = BOTH) -> None:  # fmt: skip
    c.send_message(MdCodec(c.begin_string).request(req_id, kind, symbols, types))


def group(msg: Received, delimiter: int) -> list[dict[int, str]]:
    """The NoMDEntries entries of `msg`, read from its raw text (each begins with `delimiter`)."""
    pairs = [(int(t), v) for t, _, v in (f.partition("=") for f in msg.raw.split(SOH) if f)]
    start = next(i for i, (t, _) in enumerate(pairs) if t == T.NO_MD_ENTRIES)
    out: list[dict[int, str]] = []
    for tag, value in pairs[start + 1 :]:
        if tag == delimiter:
            out.append({})
        if tag == 10:
            break
        out[-1][tag] = value
    assert len(out) == int(pairs[start][1])
    return out


def entry_ns(entry: dict[int, str]) -> int:
    """MDEntryDate + MDEntryTime (UTC, nanoseconds) as ns since the epoch."""
    day = time.strptime(entry[T.MD_ENTRY_DATE] + "-" + entry[T.MD_ENTRY_TIME][:8], "%Y%m%d-%H:%M:%S")
    return calendar.timegm(day) * 10**9 + int(entry[T.MD_ENTRY_TIME][9:].ljust(9, "0"))


@pytest.mark.parametrize("subscriber,other", [("MAKER", "MEMBER42"), ("MEMBER42", "MAKER")])
def test_a_subscriber_gets_a_snapshot_then_an_update_when_an_order_rests_and_each_print_once(
    members: Members, subscriber: str, other: str
) -> None:
    them, me = members(other), members(subscriber)
    them.new_order("o1", "MSFT", "2", "100", "301")
    them.next()

    subscribe(me, "r1", ["MSFT", "AAPL"])
    msft, aapl = me.expect(2)
    them.new_order("o2", "MSFT", "1", "10", "299")
    (rested,) = me.expect(1)
    before = time.time_ns()
    me.new_order("m1", "MSFT", "1", "10", "301")
    got = me.expect(3)  # the reports and the update leave on their own threads: in either order
    after = time.time_ns()
    ack, fill = [m for m in got if m.msg_type == "8"]
    (crossed,) = [m for m in got if m.msg_type != "8"]

    assert (msft.msg_type, msft[T.MD_REQ_ID], msft[T.SYMBOL]) == ("W", "r1", "MSFT")
    assert [(e[T.MD_ENTRY_TYPE], e[T.MD_ENTRY_PX], e[T.MD_ENTRY_SIZE]) for e in group(msft, 269)] == [
        ("1", "301", "100")
    ]
    assert (aapl.msg_type, aapl[T.SYMBOL], aapl[T.NO_MD_ENTRIES]) == ("W", "AAPL", "0")  # an empty book
    assert (rested.msg_type, rested[T.MD_REQ_ID]) == ("X", "r1")
    assert [(e[279], e[269], e[55], e[270], e[271]) for e in group(rested, 279)] == [("0", "0", "MSFT", "299", "10")]
    assert (ack[T.EXEC_TYPE], fill[T.LAST_QTY]) == ("0", "10")
    trade, offer = group(crossed, 279)
    assert (crossed.msg_type, trade[279], trade[269], trade[55], trade[270], trade[271]) == ("X", "0", "2", "MSFT",
                                                                                            "301", "10")  # fmt: skip
    assert trade[T.MD_ENTRY_ID].isdigit() and before - 10**6 <= entry_ns(trade) <= after
    assert (offer[279], offer[269], offer[270], offer[271]) == ("1", "1", "301", "90")  # same price, less size
    assert me.quiet(0.3)  # each print once, nothing else


def test_an_emptied_side_is_deleted_and_an_unsubscribed_request_hears_no_more(members: Members) -> None:
    maker, member = members("MAKER"), members("MEMBER42")
    subscribe(member, "r1", ["MSFT"])
    (empty,) = member.expect(1)
    maker.new_order("o1", "MSFT", "2", "5", "301")
    maker.next()
    (new,) = member.expect(1)
    maker.cancel("x1", "o1", "MSFT", "2", "5")
    maker.next()
    (deleted,) = member.expect(1)

    subscribe(member, "r1", ["MSFT"], kind=T.UNSUBSCRIBE)
    subscribe(member, "zz", ["MSFT"], kind=T.UNSUBSCRIBE)  # answered after the first: it has been taken
    (marker,) = member.expect(1)
    maker.new_order("o2", "MSFT", "2", "5", "302")
    maker.next()

    assert empty[T.NO_MD_ENTRIES] == "0"
    assert [(e[279], e[269], e[270]) for e in group(new, 279)] == [("0", "1", "301")]
    assert [(e[279], e[269]) for e in group(deleted, 279)] == [("2", "1")] and T.MD_ENTRY_PX not in deleted
    assert (marker.msg_type, marker[T.MD_REQ_ID]) == ("Y", "zz")
    assert member.quiet(0.3)


def test_an_unknown_symbol_or_an_unsupported_request_gets_a_request_reject_with_its_reason(members: Members) -> None:
    maker, member = members("MAKER"), members("MEMBER42")
    subscribe(maker, "r1", ["MSFT", "NOPE"])
    subscribe(maker, "r2", ["MSFT"], types=(T.MD_BID, "4"))
    depth = MdCodec("FIX.4.4").request("r3", T.SUBSCRIBE_UPDATES, ["MSFT"], BOTH)
    depth.setField(T.MARKET_DEPTH, "0")
    maker.send_message(depth)
    full = MdCodec("FIX.4.2").request("r4", T.SUBSCRIBE_UPDATES, ["MSFT"], BOTH)
    full.setField(T.MD_UPDATE_TYPE, "0")
    member.send_message(full)
    subscribe(maker, "r5", ["MSFT"])
    unknown, entry_type, market_depth, snapshot = maker.expect(4)
    subscribe(maker, "r5", ["AAPL"])  # the same MDReqID while the first lives
    subscribe(maker, "r6", ["MSFT"], kind=T.UNSUBSCRIBE)
    dup, not_live = maker.expect(2)
    (update_type,) = member.expect(1)

    for msg, req_id, reason in ((unknown, "r1", "0"), (entry_type, "r2", "8"), (market_depth, "r3", "5"),
                                (update_type, "r4", "6"), (dup, "r5", "1")):  # fmt: skip
        assert (msg.msg_type, msg[T.MD_REQ_ID], msg[T.MD_REQ_REJ_REASON]) == ("Y", req_id, reason), dict(msg)
    assert unknown[T.TEXT] == "unknown symbol 'NOPE'"
    assert entry_type[T.TEXT] == "MDEntryType '4' not supported (0 bid, 1 offer, 2 trade)"
    assert market_depth[T.TEXT] == "MarketDepth '0' not supported: only 1 (top of book)"
    assert (snapshot.msg_type, snapshot[T.MD_REQ_ID]) == ("W", "r5")
    assert (not_live.msg_type, not_live[T.MD_REQ_ID], not_live[T.TEXT]) == ("Y", "r6", "no subscription 'r6'")
    assert T.MD_REQ_REJ_REASON not in not_live


def test_a_request_the_simulator_cannot_read_gets_a_session_reject(sim: ExchangeSim) -> None:
    raw = RawSession(sim.port, "FIX.4.4", "MAKER", target="EXCH")
    try:
        assert raw.logon().msg_type == "A"
        types = f"267=1{SOH}269=0{SOH}146=1{SOH}55=MSFT{SOH}"
        raw.send("V", f"262=a{SOH}263=1{SOH}264=1{SOH}{types}")  # MDUpdateType is required with 263=1
        no_update_type = raw.read("3")
        raw.send("V", f"262=b{SOH}263=1{SOH}{types}")  # no MarketDepth: the dictionary's check
        no_depth = raw.read("3")
        raw.send("V", f"262=c d{SOH}263=1{SOH}264=1{SOH}265=1{SOH}{types}")
        bad_id = raw.read("3")
        raw.send("V", f"262=e{SOH}263=1{SOH}264=1{SOH}265=1{SOH}267=1{SOH}269=0{SOH}146=1{SOH}48=X1{SOH}22=8{SOH}")
        no_symbol = raw.read("3")
        raw.send("V", f"262=f{SOH}263=1{SOH}264=1{SOH}265=1{SOH}{types}")  # the session lives on
        snapshot = raw.read("W")
    finally:
        raw.close()

    for reject, seq, tag, reason in ((no_update_type, "2", "265", "1"), (no_depth, "3", "264", "1"),
                                     (bad_id, "4", "262", "5"), (no_symbol, "5", "55", "1")):  # fmt: skip
        assert (reject[T.REF_SEQ_NUM], reject[T.REF_TAG_ID], reject[T.SESSION_REJECT_REASON]) == (seq, tag, reason)
    assert no_update_type[T.REF_MSG_TYPE] == "V" and bad_id[T.TEXT].startswith("MDReqID (262) must be")
    assert (snapshot[T.MD_REQ_ID], snapshot[T.SYMBOL]) == ("f", "MSFT")


def test_a_new_logon_ends_the_subscriptions_of_the_last_one(members: Members, tmp_path: Path) -> None:
    maker, member = members("MAKER"), members("MEMBER42")
    subscribe(member, "r1", ["MSFT"])
    member.expect(1)
    member.stop()
    again = members("MEMBER42")  # the same session, logged on again (its store continues the sequence)

    maker.new_order("o1", "MSFT", "2", "5", "301")
    maker.next()
    quiet = again.quiet(0.3)
    subscribe(again, "r1", ["MSFT"])  # the MDReqID is free again
    (snapshot,) = again.expect(1)

    assert quiet
    assert (snapshot.msg_type, snapshot[T.MD_REQ_ID], snapshot[T.NO_MD_ENTRIES]) == ("W", "r1", "1")
