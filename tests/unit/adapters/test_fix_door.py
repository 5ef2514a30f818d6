"""The front door's pure parts: framing and its limit, the Logon it looks for, who it admits, and the log masking."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fix_gateway._relay import StreamCheck
from fix_gateway.door import Door, DoorSettings, FrameError, Framer, logon_fields
from fix_gateway.quickfix_log import mask
from tests.integration.fix_raw import frame

SOH = "\x01"
LOGON = frame("FIX.4.4", f"35=A{SOH}34=1{SOH}49=CLIENT44{SOH}52=20260101-00:00:00{SOH}56=OMS{SOH}554=pw{SOH}")
ORDER = frame("FIX.4.4", f"35=D{SOH}34=2{SOH}49=CLIENT44{SOH}52=20260101-00:00:00{SOH}56=OMS{SOH}11=a{SOH}")


@given(st.lists(st.integers(1, 40), max_size=30))
def test_messages_come_out_whole_however_the_stream_is_cut(cuts: list[int]) -> None:
    stream = LOGON + ORDER + ORDER
    framer, out, at = Framer(4096), [], 0
    for n in cuts:
        out += framer.feed(stream[at : at + n])
        at += n
    out += framer.feed(stream[at:])

    assert out == [LOGON, ORDER, ORDER] and framer.held() == b""


def test_a_body_over_the_limit_is_refused_at_its_header() -> None:
    with pytest.raises(FrameError, match="BodyLength 67108864 over the limit of 4096 bytes"):
        Framer(4096).feed(b"8=FIX.4.4\x019=67108864\x01")


def test_bytes_that_are_not_fix_are_refused_before_logon_and_skipped_after() -> None:
    with pytest.raises(FrameError, match="not a FIX message"):
        Framer(4096).feed(b"GET / HTTP/1.1\r\n\r\n")
    after_logon = StreamCheck(4096)
    after_logon.feed(b"garbage" + ORDER + b"8=FIX.4.4\x019=1234567890\x01")  # ten digits: not a header, skipped

    with pytest.raises(ValueError, match="BodyLength 4097 over the limit of 4096 bytes"):
        after_logon.feed(b"junk" + ORDER + b"8=FIX.4.4\x019=4097\x01")


HUGE = b"8=FIX.4.4\x019=4097\x01"


@given(
    st.lists(st.sampled_from([ORDER, b"junk 9=1\x01", b"8=FIX.4.4\x019=\x01", b"8=FIX.4"]), max_size=6),
    st.lists(st.integers(1, 60), max_size=30),
)
def test_after_logon_the_limit_holds_at_the_header_however_the_stream_is_cut(
    parts: list[bytes], cuts: list[int]
) -> None:
    """Messages under the limit (one carrying an oversized header in its body), garbage and broken headers pass; the
    read that completes an oversized header fails, whatever came before and wherever the reads end."""
    inside = frame("FIX.4.4", f"35=D{SOH}58={HUGE.decode()}{SOH}")
    stream = b"".join(parts) + inside + HUGE + b"x" * 50
    fails_at = len(stream) - 50  # the byte after HUGE's last SOH
    check, at = StreamCheck(4096), 0
    for n in [*cuts, len(stream)]:
        chunk = stream[at : at + n]
        if at + len(chunk) >= fails_at:
            with pytest.raises(ValueError, match="BodyLength 4097"):
                check.feed(chunk)
            return
        check.feed(chunk)
        at += len(chunk)


def test_the_logon_is_recognised_by_its_msgtype_only() -> None:
    assert logon_fields(LOGON) == ("FIX.4.4", "CLIENT44", "OMS")
    assert logon_fields(ORDER) is None


def test_the_door_admits_by_allow_list_and_counts() -> None:
    sessions = {"FIX.4.4:DROPCOPY->OMS": ("10.9.9.9",)}
    allow = ("10.0.0.0/8", "127.0.0.1")
    limits = {"max_connections": 3, "max_connections_per_source": 2}
    door = Door(DoorSettings("127.0.0.1", 1, 2, allow, sessions=sessions, **limits))

    assert door.admit("192.168.1.1") == "address not in the allow list"
    door.opened("10.1.1.1")
    door.opened("10.1.1.1")
    assert "max_connections_per_source" in door.admit("10.1.1.1")
    door.opened("127.0.0.1")
    assert "max_connections" in door.admit("10.2.2.2")
    door.closed("10.1.1.1")
    assert door.admit("10.2.2.2") == ""
    assert "AllowedRemoteAddresses" in door.session_refusal("FIX.4.4:DROPCOPY->OMS", "127.0.0.1")
    assert door.session_refusal("FIX.4.4:DROPCOPY->OMS", "10.9.9.9") == ""
    assert door.session_refusal("FIX.4.4:CLIENT44->OMS", "127.0.0.1") == ""


def test_logon_credentials_are_masked_and_other_messages_left_alone() -> None:
    logon42 = f"8=FIX.4.2{SOH}9=70{SOH}35=A{SOH}49=C{SOH}95=6{SOH}96=secret{SOH}554=secret{SOH}10=000{SOH}"
    order = f"8=FIX.4.4{SOH}9=9{SOH}35=D{SOH}96=data{SOH}10=000{SOH}"

    assert "secret" not in mask(logon42) and f"{SOH}96=********{SOH}554=********{SOH}" in mask(logon42)
    assert mask(order) == order
