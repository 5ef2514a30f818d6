"""A bare-socket FIX session for feeding the gateway bytes QuickFIX's own initiator would never send."""

from __future__ import annotations

import socket
import time

from fix_gateway.client import SOH, Received
from fix_gateway.codec import utc_timestamp


def frame(begin_string: str, body: str, *, body_length: int | None = None, checksum: int | None = None) -> bytes:
    """A FIX message around `body` (fields joined by SOH, ending in SOH), with a correct BodyLength and CheckSum
    unless told otherwise."""
    head = f"8={begin_string}{SOH}9={len(body) if body_length is None else body_length}{SOH}"
    total = sum((head + body).encode()) % 256 if checksum is None else checksum
    return f"{head}{body}10={total:03d}{SOH}".encode()


class RawSession:
    """Logs on as `sender` and sends hand-made messages; `seq` is the next outgoing MsgSeqNum."""

    def __init__(
        self,
        port: int,
        begin_string: str,
        sender: str,
        target: str = "OMS",
        rcvbuf: int = 0,
        password: str = "",
        sock: socket.socket | None = None,
    ) -> None:
        """`password`: the session's LogonPassword, sent in RawData (96) in FIX 4.2 and Password (554) in 4.4.
        `sock`: a connected socket to use (a TLS one, say) instead of connecting to `port`."""
        self.begin_string, self.sender, self.target, self.password = begin_string, sender, target, password
        if sock is None:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            if rcvbuf:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            sock.connect(("127.0.0.1", port))
        self.sock = sock
        self.sock.settimeout(5)
        self.seq = 1
        self._buffer = b""

    def body(self, msg_type: str, fields: str, seq: int | None = None) -> str:
        """Header and `fields` (text with SOH-terminated fields) for the next message."""
        n = self.seq if seq is None else seq
        return (
            f"35={msg_type}{SOH}34={n}{SOH}49={self.sender}{SOH}52={utc_timestamp(time.time_ns())}{SOH}"
            f"56={self.target}{SOH}{fields}"
        )

    def send(self, msg_type: str, fields: str, **frame_args: int) -> None:
        """Send one message; the sequence number advances only for a well-formed one."""
        self.sock.sendall(frame(self.begin_string, self.body(msg_type, fields), **frame_args))
        if not frame_args:
            self.seq += 1

    def logon(self) -> Received:
        """Send a Logon (with the password, when given) and return the answer: a Logon, or a Logout."""
        self.send_logon()
        return self.read_any(("A", "5"))

    def send_logon(self) -> None:
        secret = self.password
        if self.begin_string == "FIX.4.2":
            credential = f"95={len(secret.encode())}{SOH}96={secret}{SOH}" if secret else ""
        else:
            credential = f"554={secret}{SOH}" if secret else ""
        self.send("A", f"98=0{SOH}108=30{SOH}{credential}")

    def read(self, msg_type: str, timeout: float = 5.0) -> Received:
        """The next message of `msg_type`, skipping others."""
        return self.read_any((msg_type,), timeout)

    def read_any(self, msg_types: tuple[str, ...], timeout: float = 5.0) -> Received:
        """The next message of one of `msg_types`, skipping others."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            end = self._buffer.find(b"\x0110=")
            if end >= 0 and self._buffer.find(b"\x01", end + 1) >= 0:
                stop = self._buffer.find(b"\x01", end + 1) + 1
                raw, self._buffer = self._buffer[:stop], self._buffer[stop:]
                msg = Received.parse(raw.decode())
                if msg.msg_type in msg_types:
                    return msg
                continue
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the gateway closed the connection")
            self._buffer += chunk
        raise TimeoutError(f"no MsgType {'/'.join(msg_types)} within {timeout} s")

    def close(self) -> None:
        self.sock.close()
