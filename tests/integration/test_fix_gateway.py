"""The FIX gateway over loopback: real QuickFIX initiators (and a bare socket for garbled input) against the real
QuickFIX acceptor in front of the OMS core (accounts in process, native book)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import pytest
import quickfix as fix

from fix_gateway import tags as T
from fix_gateway.client import SOH, FixClient, Received
from fix_gateway.gateway import FixGateway
from fix_gateway.settings import SessionSpec
from oms.apps.serve import DEFAULT_CONFIG, LoadedConfig, load_config, local_engine
from oms.core.engine import OrderManager
from oms.core.model.enums import OrdType, Side
from oms.core.model.instruments import parse_price
from oms.core.model.messages import Message, OrderAccepted, OrderFilled, SubmitOrder, TradePrinted
from oms.core.orders import OrderView
from oms.infra.redis.server import free_port
from oms.runtime.sequencer import Reports, Sequencer
from risk.throttle import SessionThrottle
from tests.integration.fix_raw import RawSession
from tests.stubs import HeldWrites

pytestmark = pytest.mark.integration

PASSWORDS = {"CLIENT42": "client42-dev", "CLIENT44": "client44-dev", "DROPCOPY": "dropcopy-dev"}
VERSION_OF = {"CLIENT42": "FIX.4.2", "CLIENT44": "FIX.4.4", "DROPCOPY": "FIX.4.4"}
FILL = {"CLIENT42": ("1", "2"), "CLIENT44": ("F", "F")}  # ExecType of a partial fill, of a full fill


class MemoryMarks:
    """InboundMarks in memory, what a process that dies would have left in Redis."""

    def __init__(self) -> None:
        self.saved: dict[str, int] = {}

    def load(self) -> dict[str, int]:
        return dict(self.saved)

    def save(self, session: str, seq: int) -> None:
        self.saved[session] = seq

    def flush(self) -> None:
        pass


@dataclass
class Env:
    loaded: LoadedConfig
    specs: list[SessionSpec]
    port: int
    root: Path
    generation: int = 1
    gateway: FixGateway | None = None
    clients: list[FixClient] = field(default_factory=list)

    def start_gateway(self, generation: int = 1, marks: MemoryMarks | None = None) -> FixGateway:
        self.generation = generation
        engine = local_engine(self.loaded, generation)
        self.gateway = FixGateway(
            Sequencer(engine),
            self.loaded.instruments,
            self.specs,
            self.port,
            self.root / "gw",
            generation,
            marks=marks,
        )
        self.gateway.start()
        return self.gateway

    def client(self, sender: str, password: str | None = "", wait: float = 10.0) -> FixClient:
        pw = PASSWORDS[sender] if password == "" else password
        c = FixClient(VERSION_OF[sender], sender, self.port, self.root / sender, password=pw)
        self.clients.append(c)
        return c.start(wait=wait)

    @property
    def engine(self) -> OrderManager:
        assert self.gateway is not None
        return self.gateway.engine


def stop_all(clients: list[FixClient]) -> None:
    """Stop clients side by side: each QuickFIX initiator takes about a second to stop."""
    threads = [threading.Thread(target=c.stop) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    loaded = load_config(DEFAULT_CONFIG)
    e = Env(loaded, loaded.fix_sessions, free_port(), tmp_path)
    e.start_gateway()
    yield e
    stop_all(e.clients)
    if e.gateway is not None:
        e.gateway.stop()


@pytest.fixture(params=["CLIENT42", "CLIENT44"])
def pair(request: pytest.FixtureRequest, env: Env) -> tuple[FixClient, FixClient, str]:
    """(the client under test, a counterparty on the other FIX version, the tested client's CompID)."""
    me = request.param
    other = "CLIENT44" if me == "CLIENT42" else "CLIENT42"
    return env.client(me), env.client(other), me


def test_new_order_is_acknowledged_with_order_id_and_quantities(pair: tuple[FixClient, FixClient, str]) -> None:
    c, _, me = pair

    c.new_order("n1", "AAPL", "1", "100", "150.25")
    (ack,) = c.expect(1)

    assert (ack.msg_type, ack[T.EXEC_TYPE], ack[T.ORD_STATUS]) == ("8", "0", "0")
    assert ack[T.CL_ORD_ID] == "n1" and ack[T.ORDER_ID].isdigit()
    assert (ack[T.LEAVES_QTY], ack[T.CUM_QTY], ack[T.AVG_PX], ack[T.PRICE]) == ("100", "0", "0", "150.25")
    assert ack[T.ACCOUNT] == ("ACC1" if me == "CLIENT42" else "ACC2")
    assert (T.EXEC_TRANS_TYPE in ack) == (me == "CLIENT42")


def test_partial_then_full_fill_against_resting_liquidity(pair: tuple[FixClient, FixClient, str]) -> None:
    c, other, me = pair
    full = FILL[me][1]
    other_partial = FILL["CLIENT44" if me == "CLIENT42" else "CLIENT42"][0]
    other.new_order("r1", "AAPL", "2", "100", "150")
    other.expect(1)

    c.new_order("t1", "AAPL", "1", "60", "150.05")
    ack, fill = c.expect(2)
    c.new_order("t2", "AAPL", "1", "40", "150")
    _, fill2 = c.expect(2)
    resting = other.expect(2)

    assert ack[T.EXEC_TYPE] == "0"
    assert (fill[T.EXEC_TYPE], fill[T.ORD_STATUS], fill[T.LAST_QTY], fill[T.LAST_PX]) == (full, "2", "60", "150")
    assert (fill[T.CUM_QTY], fill[T.LEAVES_QTY], fill[T.AVG_PX]) == ("60", "0", "150")
    assert (fill2[T.ORD_STATUS], fill2[T.LAST_QTY]) == ("2", "40")
    assert [(m[T.ORD_STATUS], m[T.CUM_QTY], m[T.LEAVES_QTY]) for m in resting] == [("1", "60", "40"), ("2", "100", "0")]
    assert resting[0][T.EXEC_TYPE] == other_partial
    assert fill[T.EXEC_ID] != fill2[T.EXEC_ID]
    if me == "CLIENT44":
        assert fill[T.LAST_LIQUIDITY_IND] == "2"  # took liquidity


def test_average_price_is_exact_over_fills_at_two_prices(pair: tuple[FixClient, FixClient, str]) -> None:
    c, other, _ = pair
    other.new_order("r1", "AAPL", "2", "1", "150")
    other.new_order("r2", "AAPL", "2", "2", "150.01")
    other.expect(2)

    c.new_order("t1", "AAPL", "1", "3", "150.01")
    _, _, last = c.expect(3)

    assert last[T.AVG_PX] == "150.0066666667"  # (150 + 2 * 150.01) / 3 to 6 digits past the price precision (4)
    assert last[T.CUM_QTY] == "3"


def test_cancel_is_confirmed_and_a_second_cancel_is_refused(pair: tuple[FixClient, FixClient, str]) -> None:
    c, _, _ = pair
    c.new_order("o1", "MSFT", "1", "10", "300")
    c.expect(1)

    c.cancel("o2", "o1", "MSFT", "1")
    (done,) = c.expect(1)
    c.cancel("o3", "o1", "MSFT", "1")
    (refused,) = c.expect(1)

    assert (done[T.EXEC_TYPE], done[T.ORD_STATUS], done[T.CL_ORD_ID], done[T.ORIG_CL_ORD_ID]) == ("4", "4", "o2", "o1")
    assert done[T.LEAVES_QTY] == "0"
    assert refused.msg_type == "9"
    assert (refused[T.CXL_REJ_RESPONSE_TO], refused[T.CXL_REJ_REASON], refused[T.ORD_STATUS]) == ("1", "0", "4")


def test_cancel_of_an_unknown_order_is_refused_as_unknown(pair: tuple[FixClient, FixClient, str]) -> None:
    c, _, _ = pair

    c.cancel("x2", "never-sent", "MSFT", "1")
    (refused,) = c.expect(1)

    assert (refused.msg_type, refused[T.CXL_REJ_REASON], refused[T.ORDER_ID]) == ("9", "1", "NONE")


def test_replace_down_keeps_priority_and_replace_up_loses_it(pair: tuple[FixClient, FixClient, str]) -> None:
    c, other, me = pair
    c.new_order("a", "AAPL", "2", "100", "150")
    c.new_order("b", "AAPL", "2", "100", "150")
    c.expect(2)

    c.replace("a2", "a", "AAPL", "2", "90", "150")
    (down,) = c.expect(1)
    other.new_order("hit1", "AAPL", "1", "10", "150")
    other.expect(2)
    (first_fill,) = c.expect(1)
    c.replace("a3", "a2", "AAPL", "2", "200", "150")
    (up,) = c.expect(1)
    other.new_order("hit2", "AAPL", "1", "10", "150")
    other.expect(2)
    (second_fill,) = c.expect(1)

    assert (down[T.EXEC_TYPE], down[T.ORIG_CL_ORD_ID], down[T.ORDER_QTY]) == ("5", "a", "90")
    assert down[T.ORD_STATUS] == ("5" if me == "CLIENT42" else "0")
    assert first_fill[T.CL_ORD_ID] == "a2"  # still first in the queue
    assert up[T.LEAVES_QTY] == "190"
    assert second_fill[T.CL_ORD_ID] == "b"  # a3 went to the back


def test_replace_that_changes_the_side_is_refused(pair: tuple[FixClient, FixClient, str]) -> None:
    c, _, _ = pair
    c.new_order("s", "AAPL", "2", "10", "150")
    c.expect(1)

    c.replace("s2", "s", "AAPL", "1", "10", "150")
    (refused,) = c.expect(1)

    assert (refused.msg_type, refused[T.CXL_REJ_RESPONSE_TO]) == ("9", "2")
    assert "side" in refused[T.TEXT]


def test_risk_reject_carries_reason_and_text(pair: tuple[FixClient, FixClient, str]) -> None:
    c, _, _ = pair

    c.new_order("big", "AAPL", "1", "100", "250", account="TIGHT1")  # 25,000 over TIGHT1's 20,000 per order
    (rej,) = c.expect(1)

    assert (rej[T.EXEC_TYPE], rej[T.ORD_STATUS], rej[T.ORD_REJ_REASON]) == ("8", "8", "3")
    assert rej[T.TEXT] == "order notional above the account's maximum"
    assert rej[T.ORDER_ID] != "NONE"  # risk refused an order the OMS had numbered


@pytest.mark.parametrize(
    ("symbol", "qty", "price", "account", "reason42", "reason44", "text"),
    [
        ("NOPE", "1", "1", None, "1", "1", "unknown symbol"),
        ("AAPL", "1.5", "150", None, "0", "13", "quantity not on the lot grid"),
        ("AAPL", "10", "150.001", None, "0", "99", "price not on the tick grid"),
        ("AAPL", "10", "150", "ALGO1", "0", "15", "not traded on this session"),
    ],
)
def test_bad_order_values_are_rejected_with_a_specific_reason(
    pair: tuple[FixClient, FixClient, str], symbol: str, qty: str, price: str, account: str | None,
    reason42: str, reason44: str, text: str,
) -> None:  # fmt: skip
    c, _, me = pair

    c.new_order("bad", symbol, "1", qty, price, account=account)
    (rej,) = c.expect(1)

    assert (rej[T.ORD_STATUS], rej[T.ORDER_ID]) == ("8", "NONE")
    assert rej[T.ORD_REJ_REASON] == (reason42 if me == "CLIENT42" else reason44)
    assert text in rej[T.TEXT]


def test_status_request_reports_the_current_state(pair: tuple[FixClient, FixClient, str], env: Env) -> None:
    c, other, me = pair
    c.new_order("s1", "AAPL", "1", "50", "150")
    other.new_order("hit", "AAPL", "2", "20", "150")
    c.expect(2)
    other.expect(2)

    c.status("s1", "AAPL", "1")
    (st,) = c.expect(1)
    c.status("nobody", "AAPL", "1")
    (unknown,) = c.expect(1)

    assert (st[T.ORD_STATUS], st[T.CUM_QTY], st[T.LEAVES_QTY]) == ("1", "20", "30")
    if me == "CLIENT42":
        assert (st[T.EXEC_TRANS_TYPE], st[T.EXEC_TYPE]) == ("3", "1")
    else:
        assert st[T.EXEC_TYPE] == "I"
    assert (unknown[T.ORD_STATUS], unknown[T.ORD_REJ_REASON]) == ("8", "5")


def test_mass_cancel_cancels_every_working_order_of_the_session(env: Env) -> None:
    c44, c42 = env.client("CLIENT44"), env.client("CLIENT42")
    for i, symbol in enumerate(["AAPL", "AAPL", "MSFT"]):
        c44.new_order(f"m{i}", symbol, "1", "10", "100")
    c42.new_order("theirs", "AAPL", "1", "10", "100")
    c44.expect(3)
    c42.expect(1)

    c44.send("q", {T.CL_ORD_ID: "mc1", T.MASS_CANCEL_REQUEST_TYPE: "1", T.SYMBOL: "AAPL", 60: "20260101-00:00:00"})
    report, *cancels = c44.expect(3)
    c44.send("q", {T.CL_ORD_ID: "mc2", T.MASS_CANCEL_REQUEST_TYPE: "7", 60: "20260101-00:00:00"})
    report_all, last = c44.expect(2)

    assert (report.msg_type, report[T.MASS_CANCEL_RESPONSE], report[T.TOTAL_AFFECTED_ORDERS]) == ("r", "1", "2")
    assert sorted(m[T.CL_ORD_ID] for m in cancels) == ["m0", "m1"]
    assert all(m[T.ORD_STATUS] == "4" for m in [*cancels, last])
    assert (report_all[T.TOTAL_AFFECTED_ORDERS], last[T.CL_ORD_ID]) == ("1", "m2")
    assert c42.quiet()  # the other session's order is untouched
    assert [o.cl_ord_id for o in env.engine.working()] == ["theirs"]


def test_mass_cancel_of_an_unsupported_scope_is_rejected(env: Env) -> None:
    c44 = env.client("CLIENT44")

    c44.send("q", {T.CL_ORD_ID: "mc", T.MASS_CANCEL_REQUEST_TYPE: "3", 60: "20260101-00:00:00"})
    (report,) = c44.expect(1)

    assert (report[T.MASS_CANCEL_RESPONSE], report[T.MASS_CANCEL_REJECT_REASON]) == ("0", "0")


def test_duplicate_cl_ord_id_is_rejected_and_a_poss_resend_books_nothing(
    pair: tuple[FixClient, FixClient, str], env: Env
) -> None:
    c, _, _ = pair
    c.new_order("dup", "AAPL", "1", "10", "150")
    c.expect(1)

    c.new_order("dup", "AAPL", "1", "10", "150")
    (rej,) = c.expect(1)
    c.send(
        "D",
        [(T.CL_ORD_ID, "dup"), (T.HANDL_INST, "1"), (T.SYMBOL, "AAPL"), (T.SIDE, "1"), (T.ORDER_QTY, "10"),
         (T.ORD_TYPE, "2"), (T.PRICE, "150"), (T.TRANSACT_TIME, "20260101-00:00:00"), (T.POSS_RESEND, "Y")],
    )  # fmt: skip
    (resent,) = c.expect(1)

    assert (rej[T.ORD_STATUS], rej[T.ORD_REJ_REASON]) == ("8", "6")
    assert resent[T.ORD_STATUS] == "0" and resent[T.ORDER_ID] != "NONE"
    assert len(env.engine.orders) == 1


def test_unsupported_message_gets_a_business_message_reject(pair: tuple[FixClient, FixClient, str]) -> None:
    c, _, _ = pair

    c.send("c", {320: "req1", 321: "0"})  # SecurityDefinitionRequest
    (rej,) = c.expect(1)

    assert (rej.msg_type, rej[T.REF_MSG_TYPE], rej[T.BUSINESS_REJECT_REASON]) == ("j", "c", "3")


def test_drop_copy_receives_every_execution_report_and_sends_nothing(env: Env) -> None:
    c42, c44, dc = env.client("CLIENT42"), env.client("CLIENT44"), env.client("DROPCOPY")
    c42.new_order("d1", "AAPL", "2", "10", "150")
    c42.expect(1)  # resting before the other session's order arrives
    c44.new_order("d2", "AAPL", "1", "10", "150")
    c44.expect(2)
    c42.expect(1)

    copies = dc.expect(4)
    dc.new_order("x", "AAPL", "1", "1", "150")
    (rej,) = dc.expect(1)

    assert all(m[T.COPY_MSG_INDICATOR] == "Y" and m.msg_type == "8" for m in copies)
    assert sorted((m[T.CL_ORD_ID], m[T.ORD_STATUS]) for m in copies) == [
        ("d1", "0"), ("d1", "2"), ("d2", "0"), ("d2", "2"),
    ]  # fmt: skip
    assert (rej.msg_type, rej[T.REF_MSG_TYPE]) == ("j", "D")
    assert "read-only" in rej[T.TEXT]
    assert [o.cl_ord_id for o in env.engine.orders.values()] == ["d1", "d2"]


def test_logon_with_a_wrong_password_is_refused(env: Env) -> None:
    with pytest.raises(TimeoutError):
        env.client("CLIENT44", password="wrong", wait=3)
    logout = env.clients[-1].next_admin("5")

    assert "invalid password" in logout.get(T.TEXT, "")


def test_restart_continues_sequence_numbers_and_resends_missed_reports(env: Env) -> None:
    c42, c44 = env.client("CLIENT42"), env.client("CLIENT44")
    c42.new_order("rest", "AAPL", "2", "10", "150")
    (ack,) = c42.expect(1)
    c42.stop()
    c44.new_order("take", "AAPL", "1", "10", "150")
    _, took = c44.expect(2)  # CLIENT42's fill report is stored while it is away
    stop_all(env.clients)
    env.clients.clear()
    assert env.gateway is not None
    env.gateway.stop()

    env.start_gateway(generation=2)
    c42b, c44b = env.client("CLIENT42"), env.client("CLIENT44")
    (missed,) = c42b.expect(1)
    c44b.new_order("after", "AAPL", "1", "1", "150")
    (ack2,) = c44b.expect(1)

    assert (missed[T.CL_ORD_ID], missed[T.ORD_STATUS], missed[T.POSS_DUP_FLAG]) == ("rest", "2", "Y")
    assert missed[T.ORDER_ID] == ack[T.ORDER_ID]
    assert int(ack2[T.MSG_SEQ_NUM]) > int(took[T.MSG_SEQ_NUM])  # the sequence continued across the restart
    assert int(ack2[T.ORDER_ID]) > int(ack[T.ORDER_ID])  # this start's ids are new ones


def test_messages_counted_but_never_answered_before_a_crash_are_asked_for_again(env: Env) -> None:
    """QuickFIX counts a message in before the core runs it: a process killed before its answers left would leave
    it counted and lost. Here the answers to CLIENT44's second and third orders are taken as lost (their mark is
    set back, as a kill -9 would have left it, and the new core never ran them): the restarted gateway asks for
    them again and the client gets their acks."""
    assert env.gateway is not None
    env.gateway.stop()
    marks = MemoryMarks()
    env.start_gateway(marks=marks)
    name = "FIX.4.4:OMS->CLIENT44"
    c44 = env.client("CLIENT44")
    for cl in ("m1", "m2", "m3"):  # MsgSeqNum 2, 3, 4
        c44.new_order(cl, "AAPL", "1", "10", "149")
    c44.expect(3)
    deadline = time.monotonic() + 5
    while marks.saved.get(name) != 4:  # every answer is with QuickFIX
        assert time.monotonic() < deadline, marks.saved
        time.sleep(0.01)
    stop_all(env.clients)
    env.clients.clear()
    env.gateway.stop(cancel_working=False)
    marks.saved[name] = 2  # as if the process had died with the answers to 3 and 4 still queued

    env.start_gateway(generation=2, marks=marks)  # a core that never ran them (no journal here)
    session = fix.Session.lookupSession(fix.SessionID("FIX.4.4", "OMS", "CLIENT44"))
    expected = session.getExpectedTargetNum()
    again = env.client("CLIENT44")
    answers = again.expect(2, timeout=10)

    assert expected == 3
    assert sorted(a[T.CL_ORD_ID] for a in answers) == ["m2", "m3"] and {a[T.ORD_STATUS] for a in answers} == {"0"}


def test_a_clean_stop_leaves_nothing_to_ask_for_again(env: Env) -> None:
    assert env.gateway is not None
    env.gateway.stop()
    marks = MemoryMarks()
    env.start_gateway(marks=marks)
    c44 = env.client("CLIENT44")
    c44.new_order("c1", "AAPL", "1", "10", "149")
    c44.expect(1)
    stop_all(env.clients)
    env.clients.clear()
    env.gateway.stop()

    env.start_gateway(generation=2, marks=marks)
    session = fix.Session.lookupSession(fix.SessionID("FIX.4.4", "OMS", "CLIENT44"))

    assert marks.saved["FIX.4.4:OMS->CLIENT44"] == session.getExpectedTargetNum() - 1


def test_reports_a_session_never_got_before_a_stop_are_sent_at_the_next_start(env: Env) -> None:
    """CLIENT44's resting order is filled by another channel's order (a REST order, say); the fill is journaled but
    the process dies before QuickFIX stored its report. The next start replays the journal (`restore`) and sends
    the session what its store lacks: the client gets the fill at logon, by resend (PossDupFlag), and nothing it
    already had (its ack); the drop copy gets its copy. A second pass finds nothing owed."""
    assert env.gateway is not None
    journal: list[Message] = []  # every order event, as the account journals hold them (acceptances name the session)
    first = env.gateway.engine

    def journaled(steps: Reports) -> None:
        for e, _ in steps:
            if isinstance(e, OrderAccepted):
                journal.append(msgspec.structs.replace(e, session=first.session_of[e.order_id]))
            elif not isinstance(e, TradePrinted):
                journal.append(e)

    env.gateway._host.subscribe(journaled)
    c44 = env.client("CLIENT44")
    c44.new_order("r1", "AAPL", "1", "10", "149")
    c44.expect(1)
    stop_all(env.clients)
    env.clients.clear()
    env.gateway.stop(cancel_working=False)  # from here on the sessions hear nothing: the process is dying
    aapl = env.loaded.instruments.by_symbol("AAPL")
    assert aapl is not None
    sell = SubmitOrder("ACC1", "rest-1", "AAPL", Side.SELL, OrdType.LIMIT, 10, parse_price(aapl, "149"), session="rest")
    env.gateway._host.run(lambda engine: engine.submit(sell, time.time_ns()))
    (fill,) = [e for e in journal if isinstance(e, OrderFilled) and e.cl_ord_id == "r1"]

    gateway = env.start_gateway(generation=2)
    history: list[tuple[Message, OrderView]] = []
    gateway._host.run(lambda engine: engine.restore(journal, lambda e, view: history.append((e, view))))
    owed = gateway.send_owed(history)
    again, copies = env.client("CLIENT44"), env.client("DROPCOPY")
    (got,) = again.expect(1, timeout=10)
    acked, copy = copies.expect(2, timeout=10)  # it never logged on: all it was sent comes at its first logon

    assert owed == 2  # the client's report and the drop copy's
    assert (acked[T.EXEC_TYPE], copy[T.EXEC_ID]) == ("0", str(fill.exec_id))
    assert (got[T.EXEC_ID], got[T.CL_ORD_ID], got[T.ORD_STATUS]) == (str(fill.exec_id), "r1", "2")
    assert got[T.LAST_QTY] == "10"
    assert got[T.POSS_DUP_FLAG] == "Y"
    assert gateway.send_owed(history) == 0  # the store holds it now
    assert again.quiet(0.5)


def test_stop_cancels_working_orders_and_reports_it(env: Env) -> None:
    c42 = env.client("CLIENT42")
    c42.new_order("w", "AAPL", "1", "10", "150")
    c42.expect(1)

    assert env.gateway is not None
    env.gateway.stop()
    (done,) = c42.expect(1)

    assert (done[T.ORD_STATUS], done[T.CL_ORD_ID]) == ("4", "w")
    assert "shutdown" in done[T.TEXT]


NOS = f"11=g1{SOH}21=1{SOH}55=AAPL{SOH}54=1{SOH}38=10{SOH}40=2{SOH}44=150{SOH}60=20260101-00:00:00{SOH}"


@pytest.mark.parametrize(
    ("fields", "reject_reason"),
    [
        (NOS.replace(f"54=1{SOH}", ""), "1"),  # missing required tag
        (NOS + f"9999=x{SOH}", None),  # tag unknown to the dictionary
        (NOS.replace("54=1", "54=Z"), "5"),  # value not in the enumeration
    ],
    ids=["missing-tag", "unknown-tag", "bad-enum"],
)
def test_invalid_message_gets_a_session_reject_and_books_nothing(
    env: Env, fields: str, reject_reason: str | None
) -> None:
    c44 = env.client("CLIENT44")
    raw = RawSession(env.port, "FIX.4.2", "CLIENT42", password=PASSWORDS["CLIENT42"])
    raw.logon()

    raw.send("D", fields)
    rej = raw.read("3")
    c44.new_order("alive", "AAPL", "1", "1", "150")
    (ack,) = c44.expect(1)

    if reject_reason is not None:
        assert rej[373] == reject_reason
    assert rej[45] == "2"  # RefSeqNum: the offending message
    assert ack[T.EXEC_TYPE] == "0"
    assert [o.cl_ord_id for o in env.engine.orders.values()] == ["alive"]
    raw.close()


@pytest.mark.parametrize(
    ("fields", "tag", "text"),
    [
        (NOS.replace("11=g1", "11=" + "x" * 100_000), "11", "ClOrdID (11) longer than 64 characters"),
        (NOS.replace("11=g1", "11=g\x7f1"), "11", "ClOrdID (11) must be printable ASCII without spaces"),
        (NOS.replace("11=g1", "11=g 1"), "11", "ClOrdID (11) must be printable ASCII without spaces"),
        (NOS + f"1={'A' * 65}{SOH}", "1", "Account (1) longer than 64 characters"),
        (NOS + f"58={'t' * 257}{SOH}", "58", "Text (58) longer than 256 characters"),
    ],
    ids=["huge-clordid", "control-char-clordid", "space-in-clordid", "long-account", "long-text"],
)
def test_a_field_beyond_its_bounds_gets_a_session_reject_naming_it_and_books_nothing(
    env: Env, fields: str, tag: str, text: str
) -> None:
    raw = RawSession(env.port, "FIX.4.2", "CLIENT42", password=PASSWORDS["CLIENT42"])
    raw.logon()

    raw.send("D", fields)
    rej = raw.read("3")
    raw.send("D", NOS)  # the session goes on
    ack = raw.read("8")

    assert (rej[45], rej[371], rej[372], rej[373], rej[58]) == ("2", tag, "D", "5", text)
    assert ack[150] == "0" and [o.cl_ord_id for o in env.engine.orders.values()] == ["g1"]
    raw.close()


def test_an_order_or_replace_without_order_qty_is_rejected_as_an_invalid_quantity(
    pair: tuple[FixClient, FixClient, str],
) -> None:
    c, _, _ = pair
    c.send(T.MT_NEW_ORDER_SINGLE, {T.CL_ORD_ID: "q0", T.HANDL_INST: "1", T.SYMBOL: "AAPL", T.SIDE: "1",
                                   T.ORD_TYPE: "2", T.PRICE: "150", T.TRANSACT_TIME: "20260101-00:00:00"})  # fmt: skip
    (rej,) = c.expect(1)
    c.new_order("q1", "AAPL", "1", "10", "149")
    c.expect(1)
    c.send(T.MT_ORDER_CANCEL_REPLACE_REQUEST, {T.CL_ORD_ID: "r1", T.ORIG_CL_ORD_ID: "q1", T.HANDL_INST: "1",
                                               T.SYMBOL: "AAPL", T.SIDE: "1", T.ORD_TYPE: "2", T.PRICE: "150",
                                               T.TRANSACT_TIME: "20260101-00:00:00"})  # fmt: skip
    (cxl_rej,) = c.expect(1)

    assert (rej.msg_type, rej[T.EXEC_TYPE], rej[T.ORD_STATUS], rej[T.CL_ORD_ID]) == ("8", "8", "8", "q0")
    assert rej[T.TEXT] == "invalid quantity: OrderQty (38) is required"
    assert (cxl_rej.msg_type, cxl_rej[T.CL_ORD_ID], cxl_rej[T.ORIG_CL_ORD_ID]) == ("9", "r1", "q1")
    assert cxl_rej[T.TEXT] == "invalid quantity: OrderQty (38) is required"


def test_a_field_the_oms_needs_that_is_missing_gets_a_session_reject_not_an_internal_error(env: Env) -> None:
    c = env.client("CLIENT44")
    msg = fix.Message()
    msg.getHeader().setField(T.BEGIN_STRING, "FIX.4.4")
    msg.getHeader().setField(T.MSG_TYPE, T.MT_ORDER_STATUS_REQUEST)
    msg.getHeader().setField(T.MSG_SEQ_NUM, "7")
    assert env.gateway is not None
    env.gateway.on_error(msg, fix.SessionID("FIX.4.4", "OMS", "CLIENT44"), fix.FieldNotFound(T.CL_ORD_ID))

    rej = c.next_admin("3")
    assert (rej[45], rej[371], rej[372], rej[373], rej[58]) == ("7", "11", "H", "1", "Required tag missing: 11")


@pytest.mark.parametrize("garble", [{"checksum": 1}, {"body_length": 5}], ids=["bad-checksum", "bad-body-length"])
def test_garbled_message_is_ignored_and_the_session_stays_up(env: Env, garble: dict[str, int]) -> None:
    raw = RawSession(env.port, "FIX.4.2", "CLIENT42", password=PASSWORDS["CLIENT42"])
    raw.logon()

    raw.send("D", NOS, **garble)  # FIX: a garbled message is discarded without reply or sequence change
    raw.send("1", f"112=still-there{SOH}")  # TestRequest with the sequence number the garbled one had
    beat = raw.read("0")

    assert beat[112] == "still-there"
    assert not env.engine.orders
    raw.close()


def test_a_counterparty_that_stops_reading_does_not_stall_the_others(env: Env) -> None:
    raw = RawSession(env.port, "FIX.4.2", "CLIENT42", rcvbuf=4096, password=PASSWORDS["CLIENT42"])
    raw.logon()
    for i in range(3000):  # acks pile up unread on this session until its socket and QuickFIX's send block
        raw.send("D", NOS.replace("11=g1", f"11=s{i}").replace("44=150", "44=100"))
    c44 = env.client("CLIENT44")

    started = time.monotonic()
    for i in range(20):
        c44.new_order(f"live{i}", "MSFT", "1", "1", "300")
    acks = c44.expect(20, timeout=30)

    assert all(m[T.EXEC_TYPE] == "0" for m in acks)
    assert len(env.engine.working("FIX.4.4:OMS->CLIENT44")) == 20
    print(f"20 acks on the live session in {time.monotonic() - started:.2f} s")
    raw.close()  # the stuck session's own reader waits on its blocked send; stop() must not hang on it either


def test_a_connection_keeps_one_python_thread_state_from_its_first_order_to_its_logout(env: Env) -> None:
    """QuickFIX calls Python from each connection's own thread: that thread keeps one Python thread state, so its
    thread-locals (here, its metrics shard) last across its messages instead of being made and dropped at each one,
    and it gives the state back at logout (the shard is retired, its counts kept)."""
    assert env.gateway is not None
    metrics = env.gateway.host.metrics
    c = env.client("CLIENT44")
    c.new_order("ts0", "MSFT", "1", "1", "300")
    c.expect(1)
    counted = metrics.snapshot().orders_in["fix"]  # a scrape folds the shards of threads already gone
    for i in range(1, 21):
        c.new_order(f"ts{i}", "MSFT", "1", "1", "300")
    c.expect(20)
    ended = len(metrics._ended)  # shards whose thread state went since, not folded yet

    c.stop()
    deadline = time.monotonic() + 5.0
    while len(metrics._ended) == ended and time.monotonic() < deadline:
        time.sleep(0.01)

    assert ended == 0
    assert len(metrics._ended) == 1
    assert metrics.snapshot().orders_in["fix"] == counted + 20


def test_a_fix_client_keeps_one_python_thread_state_for_what_it_receives(env: Env) -> None:
    """The initiator's side of the same: `FixClient`'s callbacks on QuickFIX's thread see their thread-locals kept."""
    local, fresh, got = threading.local(), [], []

    def arrived(msg: Received) -> None:
        got.append(msg)
        if not getattr(local, "seen", False):
            local.seen = True
            fresh.append(msg[T.CL_ORD_ID])

    c = FixClient("FIX.4.4", "CLIENT44", env.port, env.root / "tsc", password=PASSWORDS["CLIENT44"], on_app=arrived)
    env.clients.append(c)
    c.start()
    for i in range(20):
        c.new_order(f"tc{i}", "MSFT", "1", "1", "300")
    deadline = time.monotonic() + 10.0
    while len(got) < 20 and time.monotonic() < deadline:
        time.sleep(0.01)

    assert [m[T.CL_ORD_ID] for m in got] == [f"tc{i}" for i in range(20)]
    assert fresh == ["tc0"]


def test_received_messages_parse_every_field() -> None:
    msg = Received.parse(f"8=FIX.4.4{SOH}35=8{SOH}11=a{SOH}")

    assert (msg.msg_type, msg[11]) == ("8", "a")


def test_a_session_over_its_message_rate_is_refused_and_the_other_sessions_are_not(env: Env) -> None:
    assert env.gateway is not None
    env.gateway.stop()
    env.port = free_port()  # the first gateway's port may linger in TIME_WAIT
    engine = local_engine(env.loaded, 2)
    env.gateway = FixGateway(
        Sequencer(engine), env.loaded.instruments, env.specs, env.port, env.root / "gw2", 2,
        throttle=SessionThrottle(3, 60_000_000_000),
    )  # fmt: skip
    env.gateway.start()
    c42, c44 = env.client("CLIENT42"), env.client("CLIENT44")

    for i in range(3):
        c42.new_order(f"t{i}", "AAPL", "1", "10", "150")
    acks = c42.expect(3)
    c42.new_order("t3", "AAPL", "1", "10", "150")
    (refused,) = c42.expect(1)
    c42.cancel("x0", "t0", "AAPL", "1", "10")
    (cancel_refused,) = c42.expect(1)
    c44.new_order("u0", "AAPL", "2", "10", "151")
    (other,) = c44.expect(1)

    assert [a[T.EXEC_TYPE] for a in acks] == ["0", "0", "0"]
    assert (refused[T.CL_ORD_ID], refused[T.EXEC_TYPE], refused[T.ORD_REJ_REASON]) == ("t3", "8", "3")
    assert refused[T.TEXT] == "session message rate limit exceeded"
    assert (cancel_refused.msg_type, cancel_refused[T.CL_ORD_ID]) == ("9", "x0")
    assert cancel_refused[T.TEXT] == "session message rate limit exceeded"
    assert other[T.EXEC_TYPE] == "0"
    assert len(engine.working()) == 4  # nothing booked for the refused messages


@contextlib.contextmanager
def sequenced(env: Env, host: Sequencer, generation: int, release: threading.Event, **kwargs: Any) -> Iterator[None]:
    """The env's gateway replaced by one over `host` on its own thread (the deployed path: the reader threads only
    hand messages over); on the way out `release` is set (what the test held up goes on), then both stop."""
    assert env.gateway is not None
    env.gateway.stop()
    env.port = free_port()
    host.start()
    try:
        env.gateway = FixGateway(host, env.loaded.instruments, env.specs, env.port, env.root / f"gw{generation}",
                                 generation, **kwargs)  # fmt: skip
        env.gateway.start()
        yield
    finally:
        release.set()
        if env.gateway is not None:
            env.gateway.stop()
        env.gateway = None
        host.stop()


def test_past_the_sequencers_queue_bound_new_orders_are_shed_at_once_and_cancels_are_not(env: Env) -> None:
    host = Sequencer(local_engine(env.loaded, 3))
    release = threading.Event()
    with sequenced(env, host, 3, release, max_waiting=2):
        c = env.client("CLIENT44")
        c.new_order("a0", "AAPL", "1", "10", "150")
        (first,) = c.expect(1)
        host.post(lambda engine: release.wait(10), pytest.fail)  # the sequencer is stuck on a slow step
        time.sleep(0.1)

        for i in range(1, 6):
            c.new_order(f"a{i}", "AAPL", "1", "10", "150")
        shed = c.expect(2)  # answered at once: three wait for the sequencer, the bound is two
        c.cancel("x0", "a0", "AAPL", "1", "10")  # a cancel is never shed
        time.sleep(0.1)
        release.set()
        later = c.expect(4)

    assert first[T.EXEC_TYPE] == "0"
    assert [(m[T.CL_ORD_ID], m[T.EXEC_TYPE], m[T.ORD_REJ_REASON]) for m in shed] == [("a4", "8", "0"), ("a5", "8", "0")]
    assert all(m[T.TEXT] == "system busy: order not accepted, send it again later" for m in shed)
    assert [(m[T.CL_ORD_ID], m[T.EXEC_TYPE]) for m in later] == [("a1", "0"), ("a2", "0"), ("a3", "0"), ("x0", "4")]


def test_while_the_write_ahead_lags_new_orders_are_shed_at_once_and_cancels_are_not(env: Env) -> None:
    """The sequencer's queue is empty, but the batch before is still waiting for its write-ahead: a new order's
    answer would wait behind it, past the 50 ms bound (OVERLOAD in fix_gateway.handlers), so it is refused at once,
    long before the journal counts as unavailable (MAX_JOURNAL_STALL_S)."""
    held = HeldWrites(hold=False)
    host = Sequencer(local_engine(env.loaded, 4), seal=held.seal)
    with sequenced(env, host, 4, held.release):
        c = env.client("CLIENT44")
        c.new_order("w0", "AAPL", "1", "10", "150")
        (first,) = c.expect(1)
        held.hold.set()
        c.new_order("w1", "AAPL", "1", "10", "150")  # taken: its batch waits for the slow write
        time.sleep(0.2)
        c.new_order("w2", "AAPL", "1", "10", "150")
        (shed,) = c.expect(1)  # answered while w1 still waits
        c.cancel("x0", "w0", "AAPL", "1", "10")  # a cancel is never shed: it waits for the write
        time.sleep(0.1)
        held.release.set()
        later = c.expect(2)

    assert first[T.EXEC_TYPE] == "0"
    assert (shed[T.CL_ORD_ID], shed[T.EXEC_TYPE], shed[T.ORD_REJ_REASON]) == ("w2", "8", "0")
    assert shed[T.TEXT] == "system busy: order not accepted, send it again later"
    assert [(m[T.CL_ORD_ID], m[T.EXEC_TYPE]) for m in later] == [("w1", "0"), ("x0", "4")]
