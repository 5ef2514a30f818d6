"""`Received` reads an order message as QuickFIX does; a `Draft` becomes the QuickFIX message its fields say; the
reports' UTC timestamps; an outbox that lingers sends in batches."""

from __future__ import annotations

import threading

import pytest
import quickfix as fix
import quickfix44

from fix_gateway import tags as T
from fix_gateway.codec import utc_timestamp
from fix_gateway.fields import Draft, Received
from fix_gateway.outbox import Outbox, send

SOH = "\x01"


def new_order_single() -> fix.Message:
    msg = quickfix44.NewOrderSingle()
    header = msg.getHeader()
    for tag, value in ((49, "CLIENT44"), (56, "OMS"), (T.MSG_SEQ_NUM, "7"),
                       (T.POSS_DUP_FLAG, "Y")):  # fmt: skip
        header.setField(tag, value)
    for tag, value in ((T.CL_ORD_ID, "c=1"), (T.SYMBOL, "AAPL"), (T.SIDE, "1"), (T.ORDER_QTY, "100"),
                       (T.ORD_TYPE, "2"), (T.PRICE, "150.25"), (T.TEXT, "café")):  # fmt: skip
        msg.setField(tag, value)
    group = quickfix44.NewOrderSingle.NoPartyIDs()
    group.setField(448, "FIRST")
    msg.addGroup(group)
    group.setField(448, "SECOND")
    msg.addGroup(group)
    return msg


def test_received_answers_as_the_quickfix_message() -> None:
    msg = new_order_single()
    got = Received(msg.toString())
    for tag in (T.CL_ORD_ID, T.SYMBOL, T.SIDE, T.ORDER_QTY, T.ORD_TYPE, T.PRICE, T.TEXT):
        assert got.isSetField(tag) and got.getField(tag) == msg.getField(tag)
    for tag in (T.MSG_TYPE, T.MSG_SEQ_NUM, T.POSS_DUP_FLAG, 49):  # 49 SenderCompID
        assert got.getHeader().getField(tag) == msg.getHeader().getField(tag)
    assert got.getField(448) == "FIRST"  # a group member: its first occurrence
    assert got.toString() == msg.toString()


def test_received_missing_field_raises_field_not_found() -> None:
    got = Received(new_order_single().toString())
    assert not got.isSetField(T.STOP_PX)
    with pytest.raises(fix.FieldNotFound) as caught:
        got.getField(T.STOP_PX)
    assert caught.value.field == T.STOP_PX


def test_draft_becomes_the_message_its_fields_say() -> None:
    draft = Draft("FIX.4.4", T.MT_EXECUTION_REPORT)
    for tag, value in ((T.ORDER_ID, "1"), (T.CL_ORD_ID, "c=1"), (T.TEXT, "café"), (T.ORDER_ID, "2")):
        draft.setField(tag, value)
    assert draft.getField(T.ORDER_ID) == "2" and draft.isSetField(T.TEXT) and not draft.isSetField(T.PRICE)
    msg = draft.message()
    assert msg.getHeader().getField(T.BEGIN_STRING) == "FIX.4.4"
    assert msg.getHeader().getField(T.MSG_TYPE) == T.MT_EXECUTION_REPORT
    assert [msg.getField(t) for t in (T.ORDER_ID, T.CL_ORD_ID, T.TEXT)] == ["2", "c=1", "café"]
    wire = msg.toString()  # BodyLength and CheckSum are the real ones, not the draft's placeholders
    body = wire[wire.index(f"{SOH}35=") + 1 : wire.rindex(f"{SOH}10=") + 1]
    assert f"9={len(body.encode())}{SOH}" in wire
    assert wire.endswith(f"10={sum(wire[: wire.rindex('10=')].encode()) % 256:03d}{SOH}")
    copy = draft.copy()
    copy.setField(T.COPY_MSG_INDICATOR, "Y")
    assert not draft.isSetField(T.COPY_MSG_INDICATOR) and copy.message().getField(T.COPY_MSG_INDICATOR) == "Y"


def test_draft_refuses_a_value_holding_soh() -> None:
    draft = Draft("FIX.4.4", T.MT_EXECUTION_REPORT)
    draft.setField(T.TEXT, f"a{SOH}35=0")
    with pytest.raises(ValueError, match="holds SOH"):
        draft.message()


def test_utc_timestamps_across_seconds_and_back() -> None:
    t0 = 1_767_225_600_000_000_000  # 2026-01-01 00:00:00 UTC
    stamps = [t0 + 123_456_789, t0 + 999_999_999, t0 + 1_000_000_000, t0 + 1_000_000, 59 * 1_000_000_000 + t0]
    assert [utc_timestamp(t) for t in stamps] == [
        "20260101-00:00:00.123", "20260101-00:00:00.999", "20260101-00:00:01.000", "20260101-00:00:00.001",
        "20260101-00:00:59.000",
    ]  # fmt: skip


def test_a_draft_holding_soh_is_not_sent_and_the_sender_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    draft = Draft("FIX.4.4", T.MT_EXECUTION_REPORT)
    draft.setField(T.TEXT, f"a{SOH}35=0")
    assert send(draft, None) is False  # refused before QuickFIX is asked (no session is needed to see it)
    assert "holds the separator" in caplog.text


def test_an_outbox_with_a_linger_sends_what_was_queued_meanwhile_in_one_pass() -> None:
    """A drop copy's outbox (fix_gateway.outbox, BATCHES): after the first message it lingers, then takes everything
    queued by then at once, in order; marks stand in for messages (they need no session)."""
    lingering, go = threading.Event(), threading.Event()

    def linger() -> None:
        lingering.set()
        go.wait(5)

    reached: list[tuple[int, int]] = []

    def on_mark(seq: int) -> None:
        reached.append((seq, outbox.pending()))

    outbox = Outbox(fix.SessionID("FIX.4.4", "OMS", "DROPCOPY"), "DROPCOPY", on_mark, linger)
    outbox.mark(1)
    assert lingering.wait(5)
    outbox.mark(2)
    outbox.mark(3)
    go.set()

    assert outbox.close(timeout=5)
    assert reached == [(1, 0), (2, 0), (3, 0)]  # one at a time, 2 and 3 would still be queued when 1 is reached
