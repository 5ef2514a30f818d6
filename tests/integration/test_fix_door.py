"""The FIX port of the real `oms serve` as an attacker meets it: the front door's limits, every session's password,
nothing listening off loopback, TLS with client certificates, and no credential on disk."""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
import socket
import ssl
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from fix_gateway import tags as T
from fix_gateway.client import SOH, FixClient, Received
from fix_gateway.codec import utc_timestamp
from fix_gateway.door import DoorProcess, DoorSettings, DoorTls
from oms.infra.redis.server import free_port
from tests.integration.fix_raw import RawSession, frame
from tests.integration.procs import listening
from tests.integration.test_serve import read_until_ready

pytestmark = pytest.mark.integration

CONFIGS = Path(__file__).parents[2] / "configs"
LIMITS = "max_connections_per_source = 4\nlogon_timeout_s = 2.0\nmax_message_bytes = 4096\n"
PASSWORDS = {"CLIENT42": "client42-dev", "CLIENT44": "client44-dev", "DROPCOPY": "dropcopy-dev"}


class Served:
    """A running `oms serve` whose files are all under `root`."""

    def __init__(
        self, root: Path, fix_extra: str = "", acceptor_default: str = "", acceptor_tail: str = "",
        edit: Callable[[str], str] = str,
    ) -> None:  # fmt: skip
        """`fix_extra`: lines for the [fix] table; `acceptor_default`, `acceptor_tail`: lines for acceptor.cfg's
        [DEFAULT] and its last session; `edit`: any other change to dev.toml."""
        self.root = root
        target = root / "configs"
        shutil.copytree(CONFIGS, target)
        self.port = free_port()
        dev = target / "dev.toml"
        dev.write_text(
            edit(
                dev.read_text()
                .replace('data_dir = "../var/redis"', f'data_dir = "{root / "redis"}"')
                .replace('data_dir = "../var/fix"', f'data_dir = "{root / "fix"}"')
                .replace("port = 9878", f"port = {self.port}\n{fix_extra}")
                .replace("port = 8080", f"port = {free_port()}")
            )
        )
        acceptor = target / "fix" / "acceptor.cfg"
        acceptor.write_text(
            acceptor.read_text().replace("[DEFAULT]\n", f"[DEFAULT]\n{acceptor_default}", 1) + acceptor_tail
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "oms", "serve", "--config", str(dev), "--log", str(root / "log" / "oms.jsonl")],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.lines = read_until_ready(self.proc)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.communicate(timeout=120)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    s = Served(tmp_path_factory.mktemp("door"), fix_extra=LIMITS)
    yield s
    s.stop()


def connect(port: int, host: str = "127.0.0.1") -> socket.socket:
    sock = socket.create_connection((host, port), timeout=5)
    sock.settimeout(5)
    return sock


def closed_within(sock: socket.socket, seconds: float) -> bool:
    """True when the server closes `sock` (end of stream, reset, a TLS alert) within `seconds`, whatever it sends
    first."""
    sock.settimeout(0.2)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if not sock.recv(65536):
                return True
        except TimeoutError:
            continue
        except OSError:  # reset, broken pipe, ssl.SSLError
            return True
    return False


def session(served: Served, sender: str, password: str | None) -> RawSession:
    """A raw session of `sender` (its own FIX version) that logs on with `password`."""
    begin_string = "FIX.4.2" if sender == "CLIENT42" else "FIX.4.4"
    return RawSession(served.port, begin_string, sender, password=password or "")


def test_a_64_mb_body_before_logon_is_refused_at_its_header(served: Served) -> None:
    with connect(served.port) as sock:
        sock.sendall(f"8=FIX.4.4{SOH}9=67108864{SOH}35=A{SOH}".encode())

        assert closed_within(sock, 3)


def test_a_connection_that_never_logs_on_is_closed_after_the_logon_timeout(served: Served) -> None:
    quiet = [connect(served.port) for _ in range(3)]

    assert all(closed_within(s, 5) for s in quiet)
    for s in quiet:
        s.close()


def test_connections_from_one_source_are_capped(served: Served) -> None:
    first = [connect(served.port) for _ in range(4)]
    time.sleep(0.2)  # the door has counted them
    fifth = connect(served.port)

    assert closed_within(fifth, 0.5)
    assert not any(closed_within(s, 0.05) for s in first)  # the first four still wait for their Logon
    for s in [*first, fifth]:
        s.close()


def test_a_first_message_that_is_not_a_logon_is_refused(served: Served) -> None:
    with connect(served.port) as sock:
        sock.sendall(frame("FIX.4.4", f"35=0{SOH}34=1{SOH}49=CLIENT44{SOH}52=20260101-00:00:00{SOH}56=OMS{SOH}"))

        assert closed_within(sock, 3)


def test_a_message_over_the_limit_after_logon_ends_the_connection_and_the_session_logs_on_again(
    served: Served,
) -> None:
    raw = RawSession(served.port, "FIX.4.4", "CLIENT44", password=PASSWORDS["CLIENT44"])
    raw.logon()
    raw.send("D", f"11={'x' * 5000}{SOH}")

    assert closed_within(raw.sock, 3)
    raw.close()
    again = RawSession(served.port, "FIX.4.4", "CLIENT44", password=PASSWORDS["CLIENT44"])
    again.seq = 2  # the oversized message never reached QuickFIX: it expects 2
    assert again.logon().msg_type == "A"
    again.close()


@pytest.mark.parametrize(("sender", "given"), [("CLIENT42", None), ("CLIENT42", "wrong"), ("DROPCOPY", None)])
def test_every_session_needs_its_password(served: Served, sender: str, given: str | None) -> None:
    """CLIENT42 (FIX 4.2: the password travels in RawData) and the drop copy logged on with no credential before."""
    raw = session(served, sender, given)

    logout = raw.logon()

    assert logout.msg_type == "5" and "invalid password" in logout.get(T.TEXT, "")
    raw.close()


def test_the_fix_port_and_the_acceptor_behind_it_take_no_connection_from_off_the_machine(served: Served) -> None:
    outside = off_loopback_address()
    if outside is None:
        pytest.skip("this machine has no IPv4 address off loopback to connect from")
    heard = listening([served.proc.pid])
    behind = [port for ip, port in heard if ip.is_unspecified]  # QuickFIX binds every address

    assert behind, heard
    for port in behind:
        connect(port).close()  # from loopback (the door): fine
        with pytest.raises(OSError):  # TimeoutError: the kernel drops the SYN
            socket.create_connection((outside, port), timeout=1.5).close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((outside, served.port), timeout=1.5).close()


def off_loopback_address() -> str | None:
    """An IPv4 address of this machine off loopback (the one its default route leaves from, or one its name
    resolves to), or None."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.123", 9))  # no packet is sent: this only picks the route
        candidates = [probe.getsockname()[0]]
    except OSError:
        candidates = []
    finally:
        probe.close()
    candidates += socket.gethostbyname_ex(socket.gethostname())[2]
    return next((a for a in candidates if not ipaddress.ip_address(a).is_loopback), None)


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _cert(subject: str, key: ec.EllipticCurvePrivateKey, issuer: str, issuer_key: ec.EllipticCurvePrivateKey,
          ca: bool = False, san: str | None = None) -> x509.Certificate:  # fmt: skip
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(san))]), False)
    return builder.sign(issuer_key, hashes.SHA256())


def _write(path: Path, obj: x509.Certificate | ec.EllipticCurvePrivateKey) -> Path:
    if isinstance(obj, x509.Certificate):
        path.write_bytes(obj.public_bytes(serialization.Encoding.PEM))
    else:
        path.write_bytes(obj.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))  # fmt: skip
    return path


@pytest.fixture(scope="module")
def tls_served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, Path]]:
    """TLS with client certificates required, the door open to 127.0.0.1 only, DROPCOPY only from 10.9.9.9."""
    pki = tmp_path_factory.mktemp("pki")
    ca_key, server_key, client_key = _key(), _key(), _key()
    ca = _cert("test CA", ca_key, "test CA", ca_key, ca=True)
    _write(pki / "ca.pem", ca)
    _write(pki / "server.pem", _cert("oms", server_key, "test CA", ca_key, san="127.0.0.1"))
    _write(pki / "server.key", server_key)
    _write(pki / "client.pem", _cert("CLIENT44", client_key, "test CA", ca_key))
    _write(pki / "client.key", client_key)
    tls = (f"ServerCertificateFile={pki / 'server.pem'}\nServerCertificateKeyFile={pki / 'server.key'}\n"
           f"CertificationAuthoritiesFile={pki / 'ca.pem'}\nCertificateVerifyLevel=1\n")  # fmt: skip
    root = tmp_path_factory.mktemp("tls")
    s = Served(root, 'allow = ["127.0.0.1"]\n', tls, acceptor_tail="AllowedRemoteAddresses=10.9.9.9\n")  # DROPCOPY's
    yield s, pki
    s.stop()


def _tls_socket(port: int, pki: Path, with_cert: bool) -> ssl.SSLSocket:
    context = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    if with_cert:
        context.load_cert_chain(str(pki / "client.pem"), str(pki / "client.key"))
    return context.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=5), server_hostname="127.0.0.1")


def test_tls_with_a_client_certificate_logs_on_and_trades(tls_served: tuple[Served, Path]) -> None:
    served, pki = tls_served
    assert any("(TLS)" in line for line in served.lines)
    tls = _tls_socket(served.port, pki, with_cert=True)
    raw = RawSession(served.port, "FIX.4.4", "CLIENT44", password=PASSWORDS["CLIENT44"], sock=tls)
    assert raw.logon().msg_type == "A"
    raw.send("D", f"11=tls1{SOH}1=ACC2{SOH}55=AAPL{SOH}54=1{SOH}60={utc()}{SOH}38=10{SOH}40=2{SOH}44=149{SOH}59=0{SOH}")

    report = raw.read("8")

    assert report.get(T.CL_ORD_ID) == "tls1" and report.get(T.ORD_STATUS) == "0"
    raw.close()


def test_tls_without_a_client_certificate_or_without_tls_is_refused(tls_served: tuple[Served, Path]) -> None:
    served, pki = tls_served
    try:
        sock = _tls_socket(served.port, pki, with_cert=False)
        sock.sendall(b"8=FIX.4.4\x01")  # TLS 1.3: the server refuses the missing certificate after the handshake
        refused = closed_within(sock, 3)
        sock.close()
    except ssl.SSLError:
        refused = True
    assert refused
    plain = connect(served.port)
    plain.sendall(frame("FIX.4.4", f"35=A{SOH}34=1{SOH}49=CLIENT44{SOH}52={utc()}{SOH}56=OMS{SOH}98=0{SOH}108=30{SOH}"))
    assert closed_within(plain, 3)
    plain.close()


def utc() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y%m%d-%H:%M:%S.%f")[:-3]


def test_no_credential_reaches_disk_and_every_file_is_private(tmp_path: Path) -> None:
    served = Served(tmp_path)
    try:
        client = FixClient("FIX.4.2", "CLIENT42", served.port, tmp_path / "client", password=PASSWORDS["CLIENT42"])
        client.start()
        client.stop()
        for sender, wrong in (("CLIENT44", "wrong-secret-44"), ("CLIENT42", "wrong-secret-42")):
            raw = session(served, sender, wrong)
            assert raw.logon().msg_type == "5"
            raw.close()
    finally:
        served.stop()
    secrets = [*PASSWORDS.values(), "wrong-secret-44", "wrong-secret-42"]
    written = [p for p in tmp_path.rglob("*") if p.is_file() and "configs" not in p.parts and "client" not in p.parts]

    assert any("messages" in p.name for p in written)  # QuickFIX's message logs are there, masked
    leaked = [(p, s) for p in written for s in secrets if s.encode() in p.read_bytes()]
    assert leaked == []
    readable = [p for p in written if stat.S_IMODE(os.stat(p).st_mode) & 0o077]
    assert readable == []


def test_the_allow_list_of_a_session_is_enforced_by_the_door(tls_served: tuple[Served, Path]) -> None:
    """DROPCOPY may log on only from 10.9.9.9: from here, with the right password, its Logon goes nowhere."""
    served, pki = tls_served
    raw = RawSession(served.port, "FIX.4.4", "DROPCOPY", password=PASSWORDS["DROPCOPY"],
                     sock=_tls_socket(served.port, pki, with_cert=True))  # fmt: skip
    raw.send_logon()

    assert closed_within(raw.sock, 3)
    raw.close()


def _stale(raw: RawSession, msg_type: str, fields: str, seconds: float) -> None:
    """Send `msg_type` as `raw`'s next message with a SendingTime `seconds` in the past."""
    body = raw.body(msg_type, fields)
    old = utc_timestamp(time.time_ns() - int(seconds * 1e9))
    body = body.replace(body.split(f"{SOH}52=")[1].split(SOH)[0], old, 1)
    raw.sock.sendall(frame(raw.begin_string, body))
    raw.seq += 1


def test_a_logon_sent_in_2001_is_refused(served: Served) -> None:
    """CheckLatency=Y, MaxLatency=120: a replayed or stale Logon does not log on."""
    raw = session(served, "CLIENT44", PASSWORDS["CLIENT44"])
    raw.seq = 50  # whatever the session expects: the Logon is refused before its sequence number counts
    _stale(raw, "A", f"98=0{SOH}108=30{SOH}554={PASSWORDS['CLIENT44']}{SOH}", 25 * 365 * 86400)

    with pytest.raises((ConnectionError, TimeoutError)):
        raw.read("A", timeout=3)
    raw.close()


def test_a_message_two_minutes_old_is_rejected_with_sending_time_accuracy(served: Served) -> None:
    raw = session(served, "CLIENT44", PASSWORDS["CLIENT44"])
    raw.send("A", f"98=0{SOH}108=30{SOH}141=Y{SOH}554={PASSWORDS['CLIENT44']}{SOH}")
    raw.read("A")
    _stale(raw, "0", "", 125)

    answer = raw.read_any(("3", "5"))

    assert answer.get(T.SESSION_REJECT_REASON) == "10" or "SendingTime" in answer.get(T.TEXT, ""), answer
    raw.close()


HUGE = "9" * 30  # far beyond 2**62 units, the bound REST applies too


@pytest.mark.parametrize(
    ("qty", "price", "ord_type", "extra", "text"),
    [
        (HUGE, "149", "2", {}, "qty"),
        ("10", HUGE, "2", {}, "price"),
        ("10", "1e30", "2", {}, "format"),  # not a FIX Price at all: the session rejects it
        ("10", "149", "4", {T.STOP_PX: HUGE}, "price"),
        ("10", "149", "2", {T.MAX_FLOOR: HUGE}, "qty"),
    ],
)
def test_numbers_beyond_the_bounds_get_a_rejected_report_and_the_session_goes_on(
    served: Served, tmp_path: Path, qty: str, price: str, ord_type: str, extra: dict[int, str], text: str
) -> None:
    client = FixClient("FIX.4.2", "CLIENT42", served.port, tmp_path / "c42", password=PASSWORDS["CLIENT42"]).start()
    big, fine = f"big-{tmp_path.name}", f"fine-{tmp_path.name}"  # earlier cases' reports may be resent first
    try:
        client.new_order(big, "AAPL", "1", qty, price, ord_type=ord_type, account="ACC1", extra=extra)
        report = client.next_admin("3") if text == "format" else _report_for(client, big)
        client.new_order(fine, "AAPL", "1", "10", "100", account="ACC1")
        after = _report_for(client, fine)
    finally:
        client.stop()

    if text == "format":  # Reject, SessionRejectReason 6: incorrect data format
        assert report.get(T.SESSION_REJECT_REASON) == "6" and report.get(T.REF_TAG_ID) == str(T.PRICE), report
    else:
        assert report.msg_type == "8" and report.get(T.ORD_STATUS) == "8" and text in report.get(T.TEXT, ""), report
    assert "Traceback" not in report.get(T.TEXT, "") and len(report.get(T.TEXT, "")) < 200
    assert after.get(T.ORD_STATUS) in ("0", "8")


def _report_for(client: FixClient, cl_ord_id: str) -> Received:
    """The first ExecutionReport for `cl_ord_id` that is not a resend."""
    while True:
        msg = client.next()
        if msg.get(T.CL_ORD_ID) == cl_ord_id and msg.get(T.POSS_DUP_FLAG) != "Y":
            return msg


def test_a_venue_reached_over_tls_with_a_client_certificate(tls_served: tuple[Served, Path], tmp_path: Path) -> None:
    """The exchange simulator behind a TLS door that wants a client certificate; the OMS's EXCH venue configured
    with `[venues.fix.EXCH.tls]`: its initiator logs on through its tunnel and a routed order is acknowledged."""
    _, pki = tls_served  # the certificates only
    sim_port, tls_port = free_port(), free_port()
    exchange = tmp_path / "exchange.toml"
    shutil.copytree(CONFIGS, tmp_path / "configs")
    exchange = tmp_path / "configs" / "exchange.toml"
    exchange.write_text(
        exchange.read_text()
        .replace("port = 9879", f"port = {sim_port}")
        .replace('data_dir = "../var/exchange"', f'data_dir = "{tmp_path / "exchange"}"')
    )
    sim = subprocess.Popen([sys.executable, "-m", "oms", "exchange-sim", "--config", str(exchange)],
                           stdout=subprocess.PIPE, text=True)  # fmt: skip
    door = None
    served = None
    try:
        read_until_ready(sim)
        tls = DoorTls(str(pki / "server.pem"), str(pki / "server.key"), str(pki / "ca.pem"))
        door = DoorProcess(DoorSettings("127.0.0.1", tls_port, sim_port, tls=tls), tmp_path / "door.log").start()
        venue_tls = (f'[venues.fix.EXCH.tls]\nca = "{pki / "ca.pem"}"\ncert = "{pki / "client.pem"}"\n'
                     f'key = "{pki / "client.key"}"\n\n[fix]\n')  # fmt: skip
        served = Served(tmp_path / "oms", edit=lambda text: (
            text.replace('# routes = { "MSFT" = "EXCH" }', 'routes = { "MSFT" = "EXCH" }')
            .replace("port = 9879", f"port = {tls_port}")
            .replace('data_dir = "../var/venues"', f'data_dir = "{tmp_path / "venues"}"')
            .replace("\n[fix]\n", "\n" + venue_tls, 1)
        ))  # fmt: skip
        api = next(line.split()[1] for line in served.lines if line.startswith("api "))
        deadline = time.monotonic() + 30
        while httpx.get(f"{api}/readyz", timeout=10).json()["checks"].get("venue EXCH") != "ok":
            assert time.monotonic() < deadline, "the venue did not log on through its TLS tunnel"
            time.sleep(0.2)
        client = FixClient("FIX.4.2", "CLIENT42", served.port, tmp_path / "c42", password=PASSWORDS["CLIENT42"])
        client.start()
        try:
            client.new_order("tls-v1", "MSFT", "1", "20", "300", account="ACC1")
            ack = _report_for(client, "tls-v1")
        finally:
            client.stop()
    finally:
        if served is not None:
            served.stop()
        if door is not None:
            door.stop()
        sim.terminate()
        sim.communicate(timeout=60)

    assert any("over TLS" in line and "EXCH" in line for line in served.lines)
    assert ack.get(T.ORD_STATUS) == "0", ack
    assert "FIX.4.4:OMS->EXCH logged on from 127.0.0.1" in (tmp_path / "door.log").read_text()
