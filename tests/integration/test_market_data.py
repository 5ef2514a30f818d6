"""Market data of an external venue: the exchange simulator publishes its books' top and trades over FIX
(MarketDataRequest, snapshots, incremental updates, rejects), and the OMS's FIX venue adapter subscribes at each
logon and puts what comes back on the market tape (a real Redis stream). Every party runs for real over loopback:
the simulator, QuickFIX initiators of its members, raw sockets for what QuickFIX would never send."""

from __future__ import annotations

import calendar
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fix_gateway import tags as T
from fix_gateway.client import SOH, FixClient, Received
from fix_gateway.market_data import MdCodec
from fix_gateway.venue import FixVenue
from oms.apps.exchange_sim import ExchangeSim
from oms.apps.serve import DEFAULT_CONFIG, build_venues, id_bases, load_config, local_engine
from oms.apps.venues import feed_market_data
from oms.core.model.enums import Side
from oms.core.model.messages import TradePrinted
from oms.infra.clickhouse.tape import Quote, Tape, TapeRecord, TapeWriter, tape_decoder
from oms.infra.redis.server import ManagedRedis, free_port, make_client
from oms.runtime.sequencer import Sequencer
from tests.integration.fix_raw import RawSession
from tests.integration.test_fix_venue import write_sim_config

pytestmark = pytest.mark.integration

CONFIGS = DEFAULT_CONFIG.parent
UNITS = 10_000  # MSFT's price precision is 4: 300 is 3_000_000 units
BOTH = (T.MD_BID, T.MD_OFFER, T.MD_TRADE)


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


# -- THE OMS'S SIDE: the FIX venue adapter puts the venue's market data on the tape --


class Routed:
    """An OMS core (in-process accounts) routing MSFT to the simulator over its FIX venue adapter, the adapter's
    market data going to a tape of its own on the real Redis."""

    def __init__(self, root: Path, sim: ExchangeSim, redis_url: str, market_data: bool = True) -> None:
        config = root / "oms.toml"
        config.write_text(
            f"""
instruments = "{CONFIGS / "instruments.toml"}"
accounts = "{CONFIGS / "accounts.toml"}"
[fix]
settings = "{CONFIGS / "fix" / "acceptor.cfg"}"
[venues]
routes = {{ "MSFT" = "EXCH" }}
[venues.fix.EXCH]
port = {sim.port}
account = "OMS"
data_dir = "{root / "venues"}"
market_data = {"true" if market_data else "false"}
"""
        )
        loaded = load_config(config)
        self.venues = build_venues(loaded, id_bases(1)[1])
        self.host = Sequencer(local_engine(loaded, 1, self.venues))
        self.client = make_client(redis_url)
        self.tape = Tape(self.client, prefix=f"test-{uuid.uuid4().hex[:8]}")
        self.writer = TapeWriter(self.tape)
        self.fed = feed_market_data(self.venues, loaded.config.venues, loaded.instruments, self.writer)
        venue = self.venues["EXCH"]
        assert isinstance(venue, FixVenue)
        self.venue = venue
        venue.start(self.host.apply_venue, wait=10.0)

    def records(self) -> list[TapeRecord]:
        return [tape_decoder.decode(fields[b"r"]) for _, fields in self.client.xrange(self.tape.key)]

    def wait_for(self, found: Callable[[list[TapeRecord]], bool], seconds: float = 10.0) -> list[TapeRecord]:
        deadline = time.monotonic() + seconds
        while not found(records := self.records()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"not on the tape within {seconds} s: {records}")
            time.sleep(0.02)
        return records

    def stop(self) -> None:
        self.venue.stop()
        self.writer.stop()
        self.client.delete(self.tape.key)
        self.client.close()


@pytest.fixture
def routed(sim: ExchangeSim, tmp_path: Path, redis_server: ManagedRedis) -> Iterator[Routed]:
    r = Routed(tmp_path, sim, redis_server.url)
    yield r
    r.stop()


def test_the_venue_adapter_puts_the_venues_quotes_and_prints_on_the_tape(routed: Routed, members: Members) -> None:
    maker, member = members("MAKER"), members("MEMBER42")
    maker.new_order("o1", "MSFT", "2", "100", "301")
    maker.new_order("o2", "MSFT", "1", "50", "299")
    maker.expect(2)
    routed.wait_for(lambda rs: Quote("EXCH", "MSFT", 299 * UNITS, 50, 301 * UNITS, 100, 0) in [_untimed(r) for r in rs])
    before = time.time_ns()
    member.new_order("b1", "MSFT", "1", "30", "301")
    member.expect(2)
    records = routed.wait_for(lambda rs: any(isinstance(r, TradePrinted) for r in rs))
    records = routed.wait_for(lambda rs: _untimed(rs[-1]) == Quote("EXCH", "MSFT", 299 * UNITS, 50, 301 * UNITS, 70, 0))

    assert routed.fed == ["EXCH"]
    (trade,) = [r for r in records if isinstance(r, TradePrinted)]
    assert (trade.venue, trade.symbol, trade.price, trade.qty, trade.aggressor_side) == ("EXCH", "MSFT", 301 * UNITS,
                                                                                         30, Side.BUY)  # fmt: skip
    assert trade.match_id >= id_bases(1)[1] and before - 10**6 <= trade.ts_ns <= time.time_ns()
    assert all(r.venue == "EXCH" and r.symbol == "MSFT" for r in records)  # only what is routed there
    quotes = [r for r in records if isinstance(r, Quote)]
    assert all(q.ts_ns <= trade.ts_ns for q in quotes[:-1]) and quotes[-1].ts_ns >= trade.ts_ns


def test_after_a_venue_restart_the_adapter_subscribes_again_and_each_print_reaches_the_tape_once(
    sim: ExchangeSim, routed: Routed, tmp_path: Path
) -> None:
    sim_port = sim.port
    first = routed.wait_for(lambda rs: len(rs) >= 1)  # the snapshot of the empty book
    sim.stop()
    assert _wait(lambda: not routed.venue.connected, 10)
    restarted = ExchangeSim.start(write_sim_config(tmp_path, sim_port))
    try:
        assert routed.venue.wait_connected(10)
        records = routed.wait_for(lambda rs: len(rs) >= 2)  # a snapshot again, under a new MDReqID
        maker = FixClient("FIX.4.4", "MAKER", sim_port, tmp_path / "maker2", target="EXCH").start()
        member = FixClient("FIX.4.2", "MEMBER42", sim_port, tmp_path / "member2", target="EXCH").start()
        try:
            maker.new_order("o1", "MSFT", "2", "10", "300")
            maker.next()
            member.new_order("b1", "MSFT", "1", "10", "300")
            member.expect(2)
            records = routed.wait_for(lambda rs: any(isinstance(r, TradePrinted) for r in rs))
            time.sleep(0.3)  # anything sent twice would be here by now
            records = routed.records()
        finally:
            maker.stop()
            member.stop()
    finally:
        restarted.stop()

    assert first == [Quote("EXCH", "MSFT", 0, 0, 0, 0, first[0].ts_ns)]
    assert records[1] == Quote("EXCH", "MSFT", 0, 0, 0, 0, records[1].ts_ns) and records[1].ts_ns > first[0].ts_ns
    trades = [r for r in records if isinstance(r, TradePrinted)]
    assert [(t.price, t.qty, t.aggressor_side) for t in trades] == [(300 * UNITS, 10, Side.BUY)]
    assert trades[0].match_id >= id_bases(2)[1]  # the restarted venue's ids: unique across its restarts


def test_a_venue_with_market_data_turned_off_is_not_subscribed(
    sim: ExchangeSim, members: Members, tmp_path: Path, redis_server: ManagedRedis
) -> None:
    r = Routed(tmp_path, sim, redis_server.url, market_data=False)
    try:
        maker = members("MAKER")
        maker.new_order("o1", "MSFT", "2", "100", "301")
        maker.next()
        time.sleep(0.5)  # a subscription would have brought the snapshot and the update by now
        connected, records = r.venue.connected, r.records()
    finally:
        r.stop()

    assert connected and r.fed == [] and records == []


def _untimed(record: TapeRecord) -> TapeRecord:
    return Quote(**{**_fields(record), "ts_ns": 0}) if isinstance(record, Quote) else record


def _fields(q: Quote) -> dict[str, object]:
    return {f: getattr(q, f) for f in q.__struct_fields__}


def _wait(cond: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True
