"""A grammar-based FIX fuzzer against the real `oms serve`: hypothesis writes well-framed FIX 4.4 messages of every
type a client may send (and some it may not), each field present or not, valid or hostile (empty, huge, negative,
exponents, 70 characters, punctuation), on one logged-on session.

The oracle, after every message: the session is alive (a TestRequest is answered), nothing said "internal error" or
carried a traceback, and the message got its answer (an ExecutionReport, OrderCancelReject or
OrderMassCancelReport naming its ClOrdID, or a Reject / BusinessMessageReject naming its MsgSeqNum). After the run:
every order it left working is canceled by a mass cancel and none stays pending, the accounts hold exactly the
working orders the OMS lists, and `oms audit verify` passes on the journal. The budget is bounded by count
(`MAX_EXAMPLES`); the counts are printed."""

from __future__ import annotations

import string
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fix_gateway.client import SOH, Received
from fix_gateway.codec import utc_timestamp
from tests.integration.fix_raw import RawSession
from tests.integration.test_fix_door import PASSWORDS, Served

pytestmark = pytest.mark.integration

MAX_EXAMPLES = 200
ADMIN = {"X-API-Key": "admin-dev-secret"}
ROOT = Path(__file__).parents[2]
PENDING = {"A", "6", "E"}

PRINTABLE = string.printable.replace("\x0b", "").replace("\x0c", "").replace("\r", "")
HOSTILE = st.sampled_from(
    ["", "0", "-1", "-0", "0.0", "1e30", "1E3", "NaN", "inf", "9" * 30, "1.0000000001", "x" * 70, " 1", "1 ",
     "0000000000001", "2147483648", "9223372036854775808", "150.005", "=", "\\", "'", "%s", "\x7f"]
) | st.text(alphabet=PRINTABLE, max_size=80)  # fmt: skip


def _valid(tag: str) -> st.SearchStrategy[str]:
    now = utc_timestamp(time.time_ns())
    return {
        "1": st.sampled_from(["ACC1", "ACC2", "TIGHT1", "NOPE"]),
        "11": st.sampled_from(list("ABCDEF")) | st.text(string.ascii_letters + string.digits, min_size=1, max_size=12),
        "41": st.sampled_from([*"ABCDEF", "unknown"]),
        "55": st.sampled_from(["AAPL", "AAPL", "AAPL", "MSFT", "NOPE"]),
        "54": st.sampled_from(["1", "2", "1", "2", "5", "9"]),
        "60": st.just(now),
        "38": st.sampled_from(["1", "10", "100", "1000000"]),
        "40": st.sampled_from(["2", "2", "2", "1", "3", "4", "P"]),
        "44": st.sampled_from(["149", "150", "150.01", "151", "149.5"]),
        "99": st.sampled_from(["148", "152"]),
        "59": st.sampled_from(["0", "1", "3", "4", "6", "7"]),
        "111": st.sampled_from(["10", "100"]),
        "126": st.sampled_from(["20990101-00:00:00", "19700101-00:00:00"]),
        "530": st.sampled_from(["1", "7", "9"]),
        "790": st.just("st1"),
        "21": st.just("1"),
    }[tag]


# (required, optional) fields of each message type; "Z" is no FIX message, "8" one a client may not send
TAGS = {
    "D": (["11", "55", "54", "60", "38", "40", "44"], ["1", "21", "99", "59", "111", "126"]),
    "F": (["41", "11", "55", "54", "60"], ["1", "38"]),
    "G": (["41", "11", "55", "54", "60", "38", "40"], ["1", "21", "44", "59"]),
    "H": (["11", "55", "54"], ["1", "790"]),
    "q": (["11", "530", "60"], ["55"]),
    "Z": (["11"], ["55"]),
    "8": (["11"], ["55"]),
}


@st.composite
def messages(draw: st.DrawFn) -> tuple[str, list[tuple[str, str]]]:
    """(MsgType, [(tag, value)]): the type's required fields and some optional ones, valid values; then, in two
    messages of five, one field given a hostile value or left out."""
    msg_type = draw(st.sampled_from(["D", "D", "D", "F", "G", "G", "H", "q", "Z", "8"]))
    required, optional = TAGS[msg_type]
    tags = required + [t for t in optional if draw(st.booleans())]
    fields = [(tag, draw(_valid(tag))) for tag in tags]
    mode = draw(st.sampled_from(["valid", "valid", "valid", "hostile", "missing"]))
    if mode != "valid":
        at = draw(st.integers(0, len(fields) - 1))
        if mode == "hostile":
            fields[at] = (fields[at][0], draw(HOSTILE))
        else:
            del fields[at]
    return msg_type, fields


class Fuzzed:
    """The fuzzer's session and what it saw."""

    def __init__(self, served: Served) -> None:
        self.served = served
        self.raw = RawSession(served.port, "FIX.4.4", "CLIENT44", password=PASSWORDS["CLIENT44"])
        self.raw.send("A", f"98=0{SOH}108=30{SOH}141=Y{SOH}554={PASSWORDS['CLIENT44']}{SOH}")
        assert self.raw.read("A").msg_type == "A"
        self.seen: list[Received] = []
        self.sent: Counter[str] = Counter()
        self.answers: Counter[str] = Counter()
        self.orders: dict[str, tuple[str, str]] = {}  # ClOrdID -> (symbol, side) of NewOrderSingles
        self.probe = 0

    def read_all(self, until: float) -> None:
        """Every message that arrives before `until` (monotonic) into `seen`."""
        while time.monotonic() < until:
            try:
                self.seen.append(self.raw.read_any(tuple("0123456789ABCDEFGHjqr5"), timeout=until - time.monotonic()))
            except TimeoutError:
                return

    def alive(self) -> None:
        """Raises unless a TestRequest is answered within 5 s; what came before it goes into `seen`."""
        self.probe += 1
        probe = f"fz{self.probe}"
        self.raw.send("1", f"112={probe}{SOH}")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            msg = self.raw.read_any(tuple("0123456789ABCDEFGHjqr5"), timeout=deadline - time.monotonic())
            if msg.msg_type == "0" and msg.get(112) == probe:
                return
            self.seen.append(msg)
        raise AssertionError("the session did not answer a TestRequest within 5 s")


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    served = Served(tmp_path_factory.mktemp("fuzz"))
    try:
        fuzzed = Fuzzed(served)
        yield fuzzed
        fuzzed.raw.close()
    finally:
        served.stop()


def _answered(f: Fuzzed, seq: int, cl_ord_id: str | None, deadline_s: float = 5.0) -> Received | None:
    """The answer to the message sent as `seq` (naming `cl_ord_id`), waiting up to `deadline_s`."""
    until = time.monotonic() + deadline_s
    while True:
        for msg in f.seen:
            if msg.get(45) == str(seq) and msg.msg_type in ("3", "j"):
                return msg
            if cl_ord_id and msg.get(11) == cl_ord_id and msg.msg_type in ("8", "9", "r"):
                return msg
        if time.monotonic() >= until:
            return None
        f.read_all(min(until, time.monotonic() + 0.2))


@settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])  # fmt: skip
@given(message=messages())
def test_every_message_gets_its_answer_and_the_session_lives(
    fuzzed: Fuzzed, message: tuple[str, list[tuple[str, str]]]
) -> None:
    msg_type, fields = message
    seq = fuzzed.raw.seq
    fuzzed.seen.clear()
    fuzzed.raw.send(msg_type, "".join(f"{tag}={value}{SOH}" for tag, value in fields))
    fuzzed.sent[msg_type] += 1
    fuzzed.alive()
    values = dict(fields)
    cl_ord_id = values.get("11")
    answer = _answered(fuzzed, seq, cl_ord_id)

    assert answer is not None, f"no answer to {msg_type} {fields}"
    fuzzed.answers[f"{answer.msg_type}{'/' + answer.get(39) if answer.msg_type == '8' else ''}"] += 1
    if msg_type == "D" and answer.msg_type == "8" and cl_ord_id:
        fuzzed.orders.setdefault(cl_ord_id, (values.get("55", ""), values.get("54", "")))
    bad = [m for m in fuzzed.seen if "internal error" in m.get(58, "") or "Traceback" in m.get(58, "")]
    assert not bad, bad
    assert not [m for m in fuzzed.seen if m.msg_type == "5"], "the session was logged out"


def test_after_the_fuzz_nothing_is_stuck_or_held_and_the_journal_verifies(
    fuzzed: Fuzzed, capsys: pytest.CaptureFixture[str]
) -> None:
    f = fuzzed
    f.seen.clear()
    f.raw.send("q", f"11=fzall{SOH}530=7{SOH}60={utc_timestamp(time.time_ns())}{SOH}")
    f.alive()
    f.read_all(time.monotonic() + 2)
    stuck = []
    for cl, (symbol, side) in f.orders.items():
        if symbol not in ("AAPL", "MSFT", "NOPE") or side not in ("1", "2", "5", "9"):
            continue
        f.seen.clear()
        f.raw.send("H", f"11={cl}{SOH}790=s-{cl}{SOH}55={symbol}{SOH}54={side}{SOH}")
        f.alive()
        f.read_all(time.monotonic() + 0.3)
        status = next((m for m in f.seen if m.msg_type == "8" and m.get(790) == f"s-{cl}"), None)
        if status is not None and status.get(39) in PENDING:
            stuck.append((cl, status.get(39)))
    api = next(line.split()[1] for line in f.served.lines if line.startswith("api "))
    ghosts = []
    for account in ("ACC1", "ACC2", "TIGHT1"):
        risk = httpx.get(f"{api}/v1/accounts/{account}/risk", headers=ADMIN, timeout=30).json()
        working = [
            o for status in ("new", "partially_filled", "replaced")
            for o in httpx.get(f"{api}/v1/orders", headers=ADMIN, timeout=30,
                               params={"account": account, "status": status, "limit": 1000}).json()
        ]  # fmt: skip
        if risk["working_orders"] != len(working) or working:
            ghosts.append((account, risk["working_orders"], len(working)))
    redis = next(line.split()[1] for line in f.served.lines if line.startswith("redis "))
    audit = subprocess.run([sys.executable, "-m", "oms", "audit", "verify", "--redis-url", redis],
                           capture_output=True, text=True, cwd=ROOT, timeout=120)  # fmt: skip
    with capsys.disabled():
        print(f"\nFIX fuzz: {sum(f.sent.values())} messages sent {dict(sorted(f.sent.items()))}; "
              f"answers {dict(sorted(f.answers.items()))}; {len(f.orders)} orders; stuck {len(stuck)}; "
              f"ghost accounts {len(ghosts)}; audit exit {audit.returncode}")  # fmt: skip

    assert sum(f.sent.values()) >= MAX_EXAMPLES // 2
    assert stuck == [] and ghosts == []
    assert audit.returncode == 0, audit.stdout[-2000:]
