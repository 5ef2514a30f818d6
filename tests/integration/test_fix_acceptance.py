"""QuickFIX's own session acceptance definitions, FIX 4.2 and 4.4 (`quickfix_at/`, from the QuickFIX repository
under its licence, `quickfix_at/LICENSE`), run against the OMS's acceptor: a conformance suite of our own.

A definition is a script: `iCONNECT`, `I<message>` (sent after `<TIME>` and BodyLength/CheckSum are filled in),
`E<message>` (the next message the acceptor must send, compared field by field in order; SendingTime, CheckSum and
the like by the patterns of `fields.fmt`), `eDISCONNECT` (the acceptor must close the connection), `iDISCONNECT`.
This runner does what QuickFIX's Ruby one does, against the OMS's gateway with the definitions' session settings
(`ResetOnLogon=Y`, SenderCompID ISLD, TargetCompID TW42 / TW44), adapted in two ways only, both where the
definitions assume QuickFIX's echo application and its open sessions:
- every Logon the counterparty sends gets the session's password (Password 554 in 4.4, RawData 96 in 4.2: every
  OMS session authenticates);
- where the echo application sends a NewOrderSingle back, the OMS answers with an ExecutionReport for the same
  ClOrdID, and where it echoes anything else it answers with a BusinessMessageReject: such an expected message is
  checked for its type, its header (MsgSeqNum, CompIDs, PossDupFlag, OrigSendingTime) and its ClOrdID only;
- where the echo application ignores a NewOrderSingle sent again with PossResend (97=Y) under a ClOrdID it has seen,
  the OMS answers with that ClOrdID's state (an ExecutionReport, nothing booked twice): the runner takes that
  report before comparing the next expected message.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fix_gateway.gateway import FixGateway
from fix_gateway.settings import load_sessions
from oms.apps.serve import DEFAULT_CONFIG, load_config, local_engine
from oms.infra.redis.server import free_port
from oms.runtime.sequencer import Sequencer

pytestmark = pytest.mark.integration

HERE = Path(__file__).parent / "quickfix_at"
SOH = "\x01"
PASSWORD = "at-secret"
WAIT_S = 10.0
ADMIN = {"0", "1", "2", "3", "4", "5", "A"}
SESSIONS = f"""[DEFAULT]
ConnectionType=acceptor
SenderCompID=ISLD
StartTime=00:00:00
EndTime=00:00:00
HeartBtInt=30
UseDataDictionary=Y
ResetOnLogon=Y
CheckLatency=Y
MaxLatency=120
LogonPassword={PASSWORD}
[SESSION]
BeginString=FIX.4.2
TargetCompID=TW42
Accounts=ACC1
[SESSION]
BeginString=FIX.4.4
TargetCompID=TW44
Accounts=ACC1
"""
PATTERNS = {
    int(tag): re.compile(pattern)
    for tag, _, pattern in (line.partition("=") for line in (HERE / "fields.fmt").read_text().splitlines() if line)
}
DEFINITIONS = sorted((HERE / "fix42").glob("*.def")) + sorted((HERE / "fix44").glob("*.def"))


@pytest.fixture(scope="module")
def acceptor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    root = tmp_path_factory.mktemp("at")
    (root / "at.cfg").write_text(SESSIONS)
    loaded = load_config(DEFAULT_CONFIG)
    specs = load_sessions(root / "at.cfg", loaded.risk.accounts)
    port = free_port()
    gateway = FixGateway(Sequencer(local_engine(loaded, 1)), loaded.instruments, specs, port, root / "gw", 1)
    gateway.start()
    yield port
    gateway.stop(cancel_working=False)


def timeify(line: str) -> str:
    """`<TIME>` and `<TIME+n>` / `<TIME-n>` as UTC timestamps (seconds), as QuickFIX's runner writes them."""
    now = time.time()

    def stamp(m: re.Match[str]) -> str:
        offset = int(m.group(1) or 0)
        return time.strftime("%Y%m%d-%H:%M:%S", time.gmtime(now + offset))

    return re.sub(r"<TIME([+-]\d+)?>", stamp, line)


def fixify(message: str) -> str:
    """BodyLength and CheckSum filled in unless the line gives them (a definition may give wrong ones on purpose)."""
    if not message.startswith("8="):
        return message
    has_length = re.search(f"{SOH}9=.*?{SOH}", message) is not None
    head, _, rest = message.partition(SOH)
    head += SOH
    trailer = re.search(f"{SOH}10=[^{SOH}]*{SOH}$", SOH + rest)
    if trailer is not None:
        rest = rest[: len(rest) - len(trailer.group(0)) + 1]
    length = "" if has_length else f"9={len(rest)}{SOH}"
    if trailer is not None:
        checksum = trailer.group(0)[1:]
    else:
        checksum = f"10={sum((head + length + rest).encode('latin-1')) % 256:03d}{SOH}"
    return head + length + rest + checksum


def with_password(message: str) -> str:
    """A Logon the counterparty sends, with the session's password added before its CheckSum (and a BodyLength the
    line gives grown by as much)."""
    if f"{SOH}35=A{SOH}" not in message:
        return message
    if message.startswith("8=FIX.4.4"):
        credential = f"554={PASSWORD}{SOH}"
    else:
        credential = f"95={len(PASSWORD)}{SOH}96={PASSWORD}{SOH}"
    trailer = message.rfind(f"{SOH}10=")
    if trailer >= 0:
        message = message[: trailer + 1] + credential + message[trailer + 1 :]
    else:
        message += credential
    return re.sub(
        f"^(8=[^{SOH}]*{SOH}9=)(\\d+)", lambda m: m.group(1) + str(int(m.group(2)) + len(credential)), message
    )


def fields(message: str) -> list[tuple[str, str]]:
    return [tuple(f.split("=", 1)) for f in message.split(SOH) if f]  # type: ignore[misc]


def compare(expected: str, actual: str) -> str:
    """Why `actual` is not `expected` (QuickFIX's Comparator: same fields in the same order, values equal or
    matching the tag's pattern); empty when it is. An echoed application message is compared as the module
    docstring says."""
    want, got = fields(expected), fields(actual)
    want_type = dict(want).get("35")
    if want_type not in ADMIN:
        got_type = dict(got).get("35")
        allowed = {"8"} if want_type == "D" else {"j"}
        if got_type not in allowed:
            return f"expected {sorted(allowed)} for the echoed {want_type}, got {got_type}: {actual}"
        header = {"34", "49", "56", "43"}  # an echo's PossResend (97) is the client's own, echoed
        for tag, value in want:
            if tag in header and dict(got).get(tag) != value:
                return f"field {tag}: expected {value}, got {dict(got).get(tag)}: {actual}"
        if want_type == "D" and dict(got).get("11") != dict(want).get("11"):
            return f"ClOrdID {dict(got).get('11')} instead of {dict(want).get('11')}"
        if "122" in dict(want) and "122" not in dict(got):
            return f"OrigSendingTime missing: {actual}"
        return ""
    if len(want) != len(got):
        return f"{len(got)} fields instead of {len(want)}: {actual!r} vs {expected!r}"
    for (wt, wv), (gt, gv) in zip(want, got, strict=True):
        if wt != gt:
            return f"field {gt} where {wt} was expected: {actual!r}"
        pattern = PATTERNS.get(int(wt))
        if (pattern is None and wv != gv) or (pattern is not None and not pattern.search(gv)):
            return f"field {wt}: {gv!r} instead of {wv!r}: {actual!r}"
    return ""


class Connection:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT_S)
        self.buffer = b""

    def next_message(self) -> str | None:
        """The next whole message, or None when the acceptor closed the connection first."""
        deadline = time.monotonic() + WAIT_S
        while True:
            m = re.search(rb"8=FIX[^\x01]*\x019=(\d+)\x01", self.buffer)
            if m is not None:
                end = m.end() + int(m.group(1)) + 7
                if len(self.buffer) >= end:
                    raw, self.buffer = self.buffer[m.start() : end], self.buffer[end:]
                    return raw.decode("latin-1")
            if time.monotonic() > deadline:
                raise TimeoutError("no message within the wait")
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                return None
            if not chunk:
                return None
            self.buffer += chunk

    def closed(self) -> bool:
        """True once the acceptor has closed the connection (within the wait), whatever it sent before."""
        try:
            while (message := self.next_message()) is not None:
                del message
        except TimeoutError:
            return False
        return True


def _shifted(message: str, by: int) -> str:
    """`message` with its MsgSeqNum `by` higher."""
    return re.sub(f"{SOH}34=(\\d+){SOH}", lambda m: f"{SOH}34={int(m.group(1)) + by}{SOH}", message, count=1)


def _status_of(message: str, cl_ord_ids: set[str]) -> bool:
    """True for an ExecutionReport about one of `cl_ord_ids`."""
    values = dict(fields(message))
    return values.get("35") == "8" and values.get("11") in cl_ord_ids


def run(path: Path, port: int) -> None:
    """Play the definition at `path`; raises AssertionError naming the line that did not hold."""
    connections: dict[int, Connection] = {}
    resent: set[str] = set()  # ClOrdIDs sent again with PossResend: their status report may come first
    sent: set[str] = set()
    extra: dict[int, int] = {}  # per connection: messages the OMS sent that the definition does not expect
    try:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            line = line.rstrip("\r\n")
            if not line or line.startswith("#"):
                continue
            cid = 1
            if re.match(r"^[IEie]\d,", line):
                cid, line = int(line[1]), line[0] + line[3:]
            kind, body = line[0], line[1:]
            where = f"{path.parent.name}/{path.name}:{number}"
            if kind == "i" and body == "CONNECT":
                if cid in connections:  # the acceptor closed the last one (eDISCONNECT)
                    connections.pop(cid).sock.close()
                connections[cid] = Connection(port)
            elif kind == "i" and body == "DISCONNECT":
                connections.pop(cid).sock.close()
            elif kind == "e" and body == "DISCONNECT":
                assert connections[cid].closed(), f"{where}: the acceptor kept the connection open"
            elif kind == "e" and body == "CONNECT":
                pass  # an acceptor connects nowhere
            elif kind == "I":
                message = fixify(with_password(timeify(body)))
                values = dict(fields(message))
                if values.get("35") == "D" and "11" in values:
                    if values.get("97") == "Y" and values["11"] in sent:
                        resent.add(values["11"])
                    sent.add(values["11"])
                connections[cid].sock.sendall(message.encode("latin-1"))
            elif kind == "E":
                expected = fixify(timeify(body))
                try:
                    actual = connections[cid].next_message()
                except TimeoutError:
                    raise AssertionError(f"{where}: nothing arrived; expected {expected!r}") from None
                while actual is not None and _status_of(actual, resent) and not _status_of(expected, resent):
                    actual = connections[cid].next_message()
                    extra[cid] = extra.get(cid, 0) + 1
                if extra.get(cid):  # those reports took sequence numbers the definition did not count
                    expected = _shifted(expected, extra[cid])
                assert actual is not None, f"{where}: the connection closed; expected {expected!r}"
                problem = compare(expected, actual)
                assert not problem, f"{where}: {problem}"
            else:
                raise AssertionError(f"{where}: cannot read {line!r}")
    finally:
        for c in connections.values():
            c.sock.close()


@pytest.mark.parametrize("path", DEFINITIONS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_quickfix_acceptance_definition(acceptor: int, path: Path) -> None:
    run(path, acceptor)
