"""The FIX front door: the only listener a counterparty reaches; QuickFIX's acceptor sits behind it on loopback.

WHY A DOOR
QuickFIX's socket acceptor binds every address (it has no bind-address key), reads a message of any BodyLength into
memory before Logon, keeps a connection that never logs on open for ever (one thread each), and this build of it has
no TLS. The door, a process of its own (`python -m fix_gateway.door`, started by `oms serve`), owns the public
port and lets a connection through to QuickFIX only when:
- it comes from an address of the `[fix]` table's `allow` list (any, when empty) and of the session's own
  `AllowedRemoteAddresses` (QuickFIX's key, enforced here because QuickFIX only ever sees the door's address);
- the source has fewer than `max_connections_per_source` connections open, and the door fewer than
  `max_connections`;
- its first message, complete within `logon_timeout_s`, is a well-framed Logon (35=A) of FIX.4.2 or FIX.4.4 no
  larger than `max_message_bytes`;
- with `[fix.tls]`, the TLS handshake succeeded (and the client certificate verified, when `client_ca` is set).
A connection refused before its Logon is closed without an answer (FIX session rules: a first message that is not a
valid Logon is answered by disconnecting), and the door logs why. After Logon every byte is relayed as it comes, both
ways; a message whose BodyLength exceeds `max_message_bytes` closes the connection (logged), so no message larger
than the limit ever reaches QuickFIX. Password checks, sequence numbers and everything else of the session stay
QuickFIX's and the gateway's.

After Logon the door has nothing left to decide but the size limit, so without TLS it hands both sockets to its
native relay (`fix_gateway._relay`: one epoll loop in C on a thread of its own, the size check included) and no
Python runs per message: the door's callbacks took CPU from the OMS's threads on the same cores and added to every
message's latency, both ways. With TLS the door's event loop relays (the TLS layer is Python's).

QuickFIX's own listener (on a port the door alone knows) accepts only loopback sources: `loopback_only` attaches a
socket filter to it in the kernel, so nobody off the machine can reach it even though it is bound to every address.

THE TUNNEL (the other way)
A venue reached over TLS gets the mirror image (`python -m fix_gateway.door --tunnel`): it listens on a loopback
port for the venue's QuickFIX initiator and opens, for each connection, a TLS connection to the venue (its
certificate checked against `ca` and `server_name`, with a client certificate when `cert` is set), relaying both
ways. A venue that cannot be reached or fails the check closes the initiator's connection: QuickFIX reconnects.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import ipaddress
import logging
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any

import msgspec

from fix_gateway._relay import Relay, StreamCheck

__all__ = [
    "DoorProcess", "DoorSettings", "DoorTls", "FrameError", "Framer", "TunnelSettings", "free_loopback_port",
    "loopback_only", "main",
]  # fmt: skip

log = logging.getLogger("oms.fix.door")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class DoorTls(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """TLS on the door's port, from QuickFIX's keys in the acceptor settings' [DEFAULT] (`ServerCertificateFile`,
    `ServerCertificateKeyFile`, `CertificationAuthoritiesFile` with `CertificateVerifyLevel` 1, `SSLCipherSuite`)."""

    cert: str  # the server certificate chain (PEM)
    key: str  # its private key (PEM)
    client_ca: str | None = None  # when set, a client certificate signed by this CA (PEM) is required
    ciphers: str | None = None  # OpenSSL cipher list for TLS 1.2 (QuickFIX's SSLCipherSuite)


class DoorSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What the door enforces: see the module docstring. `sessions` maps a client's (BeginString, its SenderCompID,
    our CompID) to the networks its `AllowedRemoteAddresses` names (no entry: any)."""

    host: str
    port: int
    upstream_port: int
    allow: tuple[str, ...] = ()
    max_connections: Annotated[int, msgspec.Meta(ge=1)] = 64
    max_connections_per_source: Annotated[int, msgspec.Meta(ge=1)] = 8
    logon_timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 10.0
    max_message_bytes: Annotated[int, msgspec.Meta(ge=256)] = 65536
    tls: DoorTls | None = None
    sessions: dict[str, tuple[str, ...]] = {}


class TunnelSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A TLS tunnel to a venue: listen on 127.0.0.1:`listen_port`, connect to `host`:`port` over TLS."""

    listen_port: int
    host: str
    port: int
    ca: str | None = None  # CA file (PEM) the venue's certificate must chain to; None: the system's
    cert: str | None = None  # client certificate chain (PEM), when the venue asks for one
    key: str | None = None
    server_name: str | None = None  # the name (or address) the certificate must carry; None: `host`


def networks(entries: Iterable[str], where: str) -> tuple[Network, ...]:
    """Each of `entries` (an address or a CIDR network) parsed; raises ValueError naming `where` and the entry."""
    out = []
    for entry in entries:
        try:
            out.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{where}: {entry!r} is not an IP address or network") from None
    return tuple(out)


def session_key(begin_string: str, sender: str, target: str) -> str:
    """The key of `DoorSettings.sessions` for a Logon from `sender` to `target` in `begin_string`."""
    return f"{begin_string}:{sender}->{target}"


# -- FRAMING (pure) --


class FrameError(Exception):
    """The byte stream breaks a rule the door enforces; the text says which."""


_HEAD = re.compile(rb"8=(FIX\.4\.[0-9])\x019=([0-9]{1,9})\x01")
_HEAD_MAX = 24  # "8=FIX.4.4" SOH "9=" up to 9 digits SOH
_TRAILER = 7  # "10=" 3 digits SOH


class Framer:
    """Finds message boundaries in a FIX byte stream before Logon, as it arrives, and enforces the size limit.

    `feed` takes the next bytes and returns the messages they complete (whole, as bytes). Bytes that cannot start a
    message where one must start raise FrameError; so does a BodyLength over `limit`, at once, before the body
    arrives. At most one message's bytes (up to the limit) are ever held. (After Logon the stream is only checked,
    by `StreamCheck`, which skips what is not a message and leaves it to QuickFIX.)"""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._buf = bytearray()

    def held(self) -> bytes:
        """The bytes of a message not yet complete."""
        return bytes(self._buf)

    def feed(self, data: bytes) -> list[bytes]:
        buf = self._buf
        buf += data
        out: list[bytes] = []
        while buf:
            m = _HEAD.match(buf)
            if m is None:
                if len(buf) < _HEAD_MAX and _could_start(buf):
                    break  # a header still arriving
                raise FrameError("not a FIX message")
            length = int(m.group(2))
            if length > self.limit:
                raise FrameError(f"BodyLength {length} over the limit of {self.limit} bytes")
            total = m.end() + length + _TRAILER
            if len(buf) < total:
                break
            out.append(bytes(buf[:total]))
            del buf[:total]
        return out


def _could_start(buf: bytearray) -> bool:
    """True when `buf` may be the beginning of a header (`8=FIX.4.x` SOH `9=`...)."""
    probe = b"8=FIX.4.4\x019="
    n = min(len(buf), len(probe))
    head = bytes(buf[:n])
    return head == probe[:n] or (n >= 8 and head[:8] == probe[:8] and (n < 9 or head[8:9].isdigit()))


def logon_fields(message: bytes) -> tuple[str, str, str] | None:
    """(BeginString, SenderCompID, TargetCompID) of a message whose MsgType (35, the third field) is Logon; None for
    any other message."""
    m = _HEAD.match(message)
    if m is None or not message.startswith(b"35=A\x01", m.end()):
        return None
    fields = dict(f.split(b"=", 1) for f in message[m.end() :].split(b"\x01") if b"=" in f)
    sender, target = fields.get(b"49"), fields.get(b"56")
    if not sender or not target:
        return None
    return m.group(1).decode(), sender.decode("latin-1"), target.decode("latin-1")


def free_loopback_port() -> int:
    """A TCP port free on 127.0.0.1 now (the system's pick)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- THE KERNEL FILTER ON QUICKFIX'S LISTENER --

_SO_ATTACH_FILTER = 26
_SKF_NET_OFF = -0x100000


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(_SockFilter))]


def loopback_only(port: int) -> None:
    """Attach a classic BPF socket filter to this process's IPv4 TCP listener on `port` so the kernel drops every
    packet whose source is not in 127.0.0.0/8 (connections from elsewhere never complete the handshake; sockets it
    accepts inherit the filter). Raises OSError when no such listener is open here."""
    fd = _listener_fd(port)
    program = (_SockFilter * 5)(
        _SockFilter(0x20, 0, 0, (_SKF_NET_OFF + 12) & 0xFFFFFFFF),  # A = IPv4 source address
        _SockFilter(0x54, 0, 0, 0xFF000000),  # A &= 255.0.0.0
        _SockFilter(0x15, 0, 1, 0x7F000000),  # A == 127.0.0.0 ?
        _SockFilter(0x06, 0, 0, 0xFFFFFFFF),  # accept the whole packet
        _SockFilter(0x06, 0, 0, 0),  # drop it
    )
    prog = _SockFprog(len(program), program)
    sock = socket.socket(fileno=os.dup(fd))
    try:
        sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, bytes(prog))  # type: ignore[call-overload]
    finally:
        sock.close()


def _listener_fd(port: int) -> int:
    """The file descriptor of this process's listening IPv4 TCP socket on `port`."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        parts = line.split()
        if parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:  # state LISTEN
            inodes.add(parts[9])
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/self/fd/{name}")
            if target.startswith("socket:[") and target[8:-1] in inodes:
                return int(name)
    raise OSError(f"no TCP listener on port {port} in this process")


# -- THE RELAY --


class _Upstream(asyncio.Protocol):
    """The far side of one relayed connection (QuickFIX behind the door, or the venue at the end of the tunnel):
    what it sends goes to the near side as it comes."""

    def __init__(self, conn: _Near) -> None:
        self.conn = conn
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        client = self.conn.transport
        if client is not None and not client.is_closing():
            client.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.conn.close("")  # the far side ended it (QuickFIX's Logout or refused Logon: it logged why)

    def pause_writing(self) -> None:  # QuickFIX stopped reading: stop reading the client
        if self.conn.transport is not None:
            self.conn.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.conn.transport is not None:
            self.conn.transport.resume_reading()


class _Near(asyncio.Protocol):
    """The near side of a relayed connection (a counterparty at the door, an initiator in the tunnel): what it
    sends goes to the far side (`upstream`), held in `pending` until that is connected; each side's flow control
    pauses the other."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.upstream: _Upstream | None = None
        self.pending: list[bytes] = []
        self._closed = False

    def close(self, why: str) -> None:
        raise NotImplementedError

    def forward(self, data: bytes) -> None:
        """`data` to the far side, or held until it is connected."""
        if self.upstream is not None and self.upstream.transport is not None:
            self.upstream.transport.write(data)
        else:
            self.pending.append(data)

    def attach(self, upstream: _Upstream) -> None:
        """The far side is connected: what was held goes first."""
        self.upstream = upstream
        if upstream.transport is not None and self.pending:
            upstream.transport.write(b"".join(self.pending))
        self.pending = []

    def pause_writing(self) -> None:  # the near side stopped reading: stop reading the far side
        if self.upstream is not None and self.upstream.transport is not None:
            self.upstream.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.upstream is not None and self.upstream.transport is not None:
            self.upstream.transport.resume_reading()

    def _close_both(self, abort: bool) -> None:
        if self.transport is not None:
            if abort:
                self.transport.abort()
            else:
                self.transport.close()
        if self.upstream is not None and self.upstream.transport is not None:
            self.upstream.transport.close()


class _Client(_Near):
    """One counterparty connection, from accept to close. Before Logon it is read here (`Framer`); after it, its
    bytes are checked (`StreamCheck`) and relayed: by the door's native relay when there is one (no TLS), so from then
    on the relay owns the connection and tells the door when it ends; else here."""

    def __init__(self, door: Door) -> None:
        super().__init__()
        self.door = door
        self.framer = Framer(door.settings.max_message_bytes)
        self.check = StreamCheck(door.settings.max_message_bytes)
        self.source = "?"
        self.session = ""
        self.relayed = False  # the native relay owns the sockets
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self.source = peer[0] if peer else "?"
        refusal = self.door.admit(self.source)
        if refusal:
            log.warning("connection from %s refused: %s", self.source, refusal)
            self._closed = True
            transport.abort()
            return
        self.door.opened(self.source)
        loop = asyncio.get_running_loop()
        self._deadline = loop.call_later(self.door.settings.logon_timeout_s, self._late)

    def _late(self) -> None:
        self.close(f"no Logon within {self.door.settings.logon_timeout_s:g} s")

    def data_received(self, data: bytes) -> None:
        if self.upstream is not None or self.session:
            try:
                self.check.feed(data)
            except ValueError as exc:
                self.close(str(exc))
                return
            self.forward(data)
            return
        try:
            messages = self.framer.feed(data)
        except FrameError as exc:
            self.close(f"before Logon: {exc}")
            return
        if not messages:
            return
        logon = logon_fields(messages[0])
        if logon is None:
            self.close("the first message is not a Logon")
            return
        key = session_key(*logon)
        refusal = self.door.session_refusal(key, self.source)
        if refusal:
            self.close(refusal)
            return
        self.session = key
        held = self.framer.held()
        self.check.feed(held)  # the start of the next message, under the limit: the framer let it through
        self.pending = [*messages, held]
        relay = self.door.relay
        asyncio.get_running_loop().create_task(self._connect() if relay is None else self._hand_over(relay))

    async def _hand_over(self, relay: Relay) -> None:
        """Connect to QuickFIX and give both sockets, with what QuickFIX has not had yet, to the native relay."""
        loop = asyncio.get_running_loop()
        upstream = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        upstream.setblocking(False)
        try:
            await loop.sock_connect(upstream, ("127.0.0.1", self.door.settings.upstream_port))
        except OSError as exc:
            upstream.close()
            self.close(f"the acceptor behind the door is unreachable ({exc.strerror})")
            return
        if self._closed or self.transport is None:
            upstream.close()
            return
        upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        near = os.dup(self.transport.get_extra_info("socket").fileno())
        self.door.relayed[relay.add(near, upstream.detach(), b"".join(self.pending), self.check)] = self
        self.pending = []
        self.relayed = True
        self.transport.close()  # the door's copy of the socket: the relay holds its own
        self._logged_on()

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, upstream = await loop.create_connection(
                lambda: _Upstream(self), "127.0.0.1", self.door.settings.upstream_port
            )
        except OSError as exc:
            self.close(f"the acceptor behind the door is unreachable ({exc.strerror})")
            return
        if self._closed:
            if upstream.transport is not None:
                upstream.transport.close()
            return
        assert upstream.transport is not None
        sock = upstream.transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.attach(upstream)
        self._logged_on()

    def _logged_on(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        log.info("%s logged on from %s", self.session, self.source)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.relayed:  # a relayed connection goes on without the door's transport
            self.close("")

    def close(self, why: str) -> None:
        """End both sides; `why` (logged) is empty for a client that simply left."""
        if self._closed:
            return
        self._closed = True
        if self.session and not why:
            log.info("%s from %s ended", self.session, self.source)
        if why:
            log.warning(
                "connection from %s%s closed: %s", self.source, f" ({self.session})" if self.session else "", why
            )
        if self._deadline is not None:
            self._deadline.cancel()
        if not self.relayed:  # the relay closed its sockets before it said the pair ended
            self._close_both(abort=bool(why))
        self.door.closed(self.source)


class _Tunneled(_Near):
    """One initiator connection through the tunnel: bytes relayed as they come, both ways, to a TLS connection."""

    def __init__(self, tunnel: TunnelSettings, context: ssl.SSLContext) -> None:
        super().__init__()
        self.tunnel, self.context = tunnel, context

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        t = self.tunnel
        loop = asyncio.get_running_loop()
        try:
            _, remote = await loop.create_connection(
                lambda: _Upstream(self), t.host, t.port, ssl=self.context, server_hostname=t.server_name or t.host,
                ssl_handshake_timeout=10.0,
            )  # fmt: skip
        except (OSError, ssl.SSLError) as exc:
            self.close(f"TLS to {t.host}:{t.port} failed: {exc}")
            return
        if self._closed:
            if remote.transport is not None:
                remote.transport.close()
            return
        log.info("tunnel to %s:%d open", t.host, t.port)
        self.attach(remote)  # what the initiator sent while TLS was set up goes first

    def data_received(self, data: bytes) -> None:
        self.forward(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.close("")

    def close(self, why: str) -> None:
        if self._closed:
            return
        self._closed = True
        if why:
            log.warning("%s", why)
        self._close_both(abort=False)


def tunnel_context(t: TunnelSettings) -> ssl.SSLContext:
    """A client context: the venue's certificate verified (against `ca` when set), TLS 1.2 or later, the client
    certificate when set."""
    context = ssl.create_default_context(cafile=t.ca)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if t.cert:
        context.load_cert_chain(t.cert, t.key)
    return context


async def serve_tunnel(t: TunnelSettings, ready: Any = None) -> None:
    """Listen on 127.0.0.1:`t.listen_port` until cancelled; `ready()` is called once listening."""
    context = tunnel_context(t)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Tunneled(t, context), "127.0.0.1", t.listen_port, reuse_address=True)
    if ready is not None:
        ready()
    async with server:
        await server.serve_forever()


class Door:
    """The listening side: who is let in (counts per source), and the server."""

    def __init__(self, settings: DoorSettings) -> None:
        self.settings = settings
        self._allow = networks(settings.allow, "[fix] allow")
        self._sessions = {k: networks(v, f"{k} AllowedRemoteAddresses") for k, v in settings.sessions.items()}
        self._open: Counter[str] = Counter()
        self.relay: Relay | None = None  # while serving without TLS: relays every connection after its Logon
        self.relayed: dict[int, _Client] = {}  # by the relay's pair id

    def admit(self, source: str) -> str:
        """Why a connection from `source` is refused now; empty when it is let in."""
        s = self.settings
        if self._allow and not _within(source, self._allow):
            return "address not in the allow list"
        if sum(self._open.values()) >= s.max_connections:
            return f"{s.max_connections} connections open (max_connections)"
        if self._open[source] >= s.max_connections_per_source:
            return f"{s.max_connections_per_source} connections open from it (max_connections_per_source)"
        return ""

    def session_refusal(self, key: str, source: str) -> str:
        """Why a Logon for session `key` from `source` is refused; empty when it goes through."""
        allowed = self._sessions.get(key)
        if allowed is not None and not _within(source, allowed):
            return f"address not in {key}'s AllowedRemoteAddresses"
        return ""

    def opened(self, source: str) -> None:
        self._open[source] += 1

    def closed(self, source: str) -> None:
        if self._open[source] > 0:
            self._open[source] -= 1
        if not self._open[source]:
            del self._open[source]

    async def serve(self, ready: Any = None) -> None:
        """Listen until cancelled; `ready()` is called once listening."""
        loop = asyncio.get_running_loop()
        context = _tls_context(self.settings.tls) if self.settings.tls is not None else None
        server = await loop.create_server(
            lambda: _Client(self), self.settings.host, self.settings.port, ssl=context, reuse_address=True,
            backlog=128, ssl_handshake_timeout=self.settings.logon_timeout_s if context is not None else None,
        )  # fmt: skip
        for sock in server.sockets:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if context is None:
            self.relay = Relay(self.settings.max_message_bytes)
            threading.Thread(target=self.relay.run, name="door relay", daemon=True).start()
            loop.add_reader(self.relay.ended_fd, self._relay_ended)
        if ready is not None:
            ready()
        try:
            async with server:
                await server.serve_forever()
        finally:
            if self.relay is not None:
                loop.remove_reader(self.relay.ended_fd)
                self.relay.stop()

    def _relay_ended(self) -> None:
        assert self.relay is not None
        for pair, why in self.relay.ended():
            client = self.relayed.pop(pair, None)
            if client is not None:
                client.close(why)


def _within(source: str, nets: tuple[Network, ...]) -> bool:
    try:
        addr = ipaddress.ip_address(source)
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return any(addr in net for net in nets)


def _tls_context(tls: DoorTls) -> ssl.SSLContext:
    """A server context: TLS 1.2 or later, the certificate chain and key, client certificates required when
    `client_ca` is set."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(tls.cert, tls.key)
    if tls.ciphers:
        context.set_ciphers(tls.ciphers)
    if tls.client_ca:
        context.load_verify_locations(tls.client_ca)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


class DoorProcess:
    """The door in a process of its own (`python -m fix_gateway.door`), as `oms serve` runs it: its relaying never
    competes for the gateway's GIL, and it ends when the process that started it does, even by SIGKILL."""

    def __init__(self, settings: DoorSettings | TunnelSettings, log_path: str | Path) -> None:
        """The door, or with TunnelSettings a tunnel. Its log (stderr: every refused connection, every logon with its
        source) goes to `log_path`, appended. Raises ValueError when the TLS files cannot be loaded (checked here,
        before anything starts)."""
        try:
            if isinstance(settings, TunnelSettings):
                tunnel_context(settings)
            elif settings.tls is not None:
                _tls_context(settings.tls)
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"FIX TLS: {exc}") from None
        self.settings = settings
        self.log_path = Path(log_path)
        self._proc: subprocess.Popen[str] | None = None

    def start(self, timeout_s: float = 15.0) -> DoorProcess:
        """Start it and wait until it listens; raises OSError with its complaint when it stops or stays silent."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        args = [sys.executable, "-m", "fix_gateway.door", msgspec.json.encode(self.settings).decode(),
                "--parent", str(os.getpid())]  # fmt: skip
        if isinstance(self.settings, TunnelSettings):
            args.append("--tunnel")
        with self.log_path.open("a") as log_file:
            self._proc = proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=log_file, text=True)
        assert proc.stdout is not None
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.append(proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
        reader.start()
        reader.join(timeout_s)
        if not lines or not lines[0].startswith("door: listening"):
            exited = proc.poll() is not None
            self.stop()
            err = self.log_path.read_text().strip().splitlines() if exited else []
            what = "tunnel" if isinstance(self.settings, TunnelSettings) else "front door"
            raise OSError(err[-1] if err else f"the FIX {what} did not start within {timeout_s:.0f} s")
        return self

    @property
    def running(self) -> bool:
        """True while the door's process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def stop(self, timeout_s: float = 5.0) -> None:
        """SIGTERM (every connection closes), then SIGKILL after `timeout_s`. Safe to call twice."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def main(argv: list[str] | None = None) -> int:
    """`python -m fix_gateway.door SETTINGS_JSON`: listen, print `door: listening HOST:PORT` once up, relay until
    SIGTERM or until the parent process dies."""
    parser = argparse.ArgumentParser(prog="python -m fix_gateway.door")
    parser.add_argument("settings", help="DoorSettings (TunnelSettings with --tunnel) as JSON")
    parser.add_argument("--tunnel", action="store_true", help="a TLS tunnel to a venue instead of the door")
    parser.add_argument("--parent", type=int, default=0, help="exit when this process is gone (default: the parent)")
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s door: %(message)s")
    try:
        if args.tunnel:
            tunnel = msgspec.json.decode(args.settings, type=TunnelSettings)
            where = f"127.0.0.1:{tunnel.listen_port}"
            serve = lambda ready: serve_tunnel(tunnel, ready)  # noqa: E731
        else:
            settings = msgspec.json.decode(args.settings, type=DoorSettings)
            door = Door(settings)
            where = f"{settings.host}:{settings.port}"
            serve = door.serve
    except (msgspec.ValidationError, msgspec.DecodeError, ValueError) as exc:
        print(f"fix door: {exc}", file=sys.stderr)
        return 2
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency; plain asyncio does the same, slower
        pass
    parent = args.parent or os.getppid()
    if sys.platform == "linux":  # SIGTERM when the parent dies, even by SIGKILL
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:
        return 1

    async def run() -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
        watch = loop.create_task(_watch_parent(parent, task))
        try:
            await serve(lambda: print(f"door: listening {where}", flush=True))
        finally:
            watch.cancel()

    try:
        asyncio.run(run())
    except asyncio.CancelledError:
        return 0
    except OSError as exc:
        print(f"fix door: cannot listen on {where}: {exc.strerror}", file=sys.stderr)
        return 1
    return 0


async def _watch_parent(parent: int, task: asyncio.Task[Any]) -> None:
    """Cancel `task` once the process that started the door is gone."""
    while os.getppid() == parent:
        await asyncio.sleep(0.5)
    task.cancel()


if __name__ == "__main__":
    sys.exit(main())
