"""The front door's native relay on socket pairs: bytes both ways in order, a side that stops reading, the size limit,
and how a pair ends."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from fix_gateway._relay import Relay, StreamCheck
from tests.integration.fix_raw import frame

SOH = "\x01"
ORDER = frame("FIX.4.4", f"35=D{SOH}34=2{SOH}49=CLIENT44{SOH}52=20260101-00:00:00{SOH}56=OMS{SOH}11=a{SOH}")


OPEN: list[socket.socket] = []  # the test's ends of its pairs, closed after it


@pytest.fixture
def relay() -> Iterator[Relay]:
    r = Relay(4096)
    thread = threading.Thread(target=r.run, daemon=True)
    thread.start()
    yield r
    r.stop()
    thread.join(5)
    while OPEN:
        OPEN.pop().close()
    assert not thread.is_alive()


def pair(relay: Relay, to_far: bytes = b"") -> tuple[socket.socket, socket.socket, int]:
    """(the counterparty's end, QuickFIX's end, the pair's id) of a new relayed pair."""
    client, near = socket.socketpair()
    far, acceptor = socket.socketpair()
    for s in (client, acceptor):
        s.settimeout(5)
        OPEN.append(s)
    return client, acceptor, relay.add(near.detach(), far.detach(), to_far, StreamCheck(4096))


def read_exactly(sock: socket.socket, n: int) -> bytes:
    out = bytearray()
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        assert chunk, f"closed after {len(out)} of {n} bytes"
        out += chunk
    return bytes(out)


def ended(relay: Relay, seconds: float = 5.0) -> list[tuple[int, str]]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        out = relay.ended()
        if out:
            return out
        time.sleep(0.01)
    return []


def test_what_quickfix_has_not_had_goes_first_then_bytes_flow_both_ways(relay: Relay) -> None:
    client, acceptor, _ = pair(relay, to_far=b"LOGON")
    client.sendall(ORDER)

    assert read_exactly(acceptor, 5 + len(ORDER)) == b"LOGON" + ORDER
    acceptor.sendall(b"report")
    assert read_exactly(client, 6) == b"report"


def test_a_counterparty_that_stops_reading_gets_every_byte_in_order_once_it_reads_again(relay: Relay) -> None:
    client, acceptor, _ = pair(relay)
    data = os.urandom(3_000_000)
    writer = threading.Thread(target=acceptor.sendall, args=(data,))
    writer.start()
    time.sleep(0.2)  # the writer fills every buffer on the way and waits

    assert read_exactly(client, len(data)) == data
    writer.join(5)
    client.sendall(ORDER)  # the other way still goes
    assert read_exactly(acceptor, len(ORDER)) == ORDER


def test_a_read_with_a_body_over_the_limit_never_reaches_quickfix_and_ends_the_pair(relay: Relay) -> None:
    client, acceptor, pair_id = pair(relay)
    client.sendall(ORDER + b"8=FIX.4.4\x019=4097\x01")

    assert ended(relay) == [(pair_id, "BodyLength 4097 over the limit of 4096 bytes")]
    assert acceptor.recv(100) == b""  # closed, and the read that broke the limit (with the order) was not sent
    assert client.recv(100) == b""


def test_quickfix_closing_ends_the_pair_after_what_it_sent(relay: Relay) -> None:
    client, acceptor, pair_id = pair(relay)
    acceptor.sendall(b"logout")
    acceptor.close()

    assert read_exactly(client, 6) == b"logout" and client.recv(10) == b""
    assert ended(relay) == [(pair_id, "")]


def test_the_counterparty_leaving_ends_the_pair(relay: Relay) -> None:
    client, acceptor, pair_id = pair(relay)
    client.close()

    assert acceptor.recv(10) == b""
    assert ended(relay) == [(pair_id, "")]
