"""Open-loop FIX load from raw sockets, run as its own process by `oms bench serve`.

    python -m bench.fix_load --port P --sessions BENCH1,BENCH2 --rate 1000 --seconds 5 [--prime] [--mix cross]

Each session is a plain TCP connection speaking FIX 4.4 to `TargetCompID=OMS`; its Logon carries ResetSeqNumFlag
(141=Y), so every run starts at sequence number 1 whatever the server's store holds. Messages are due at fixed
times, message i at start + i / rate, the sessions in turn; a message is sent when it is due, whether or not earlier
ones were answered (open loop). Each session alternates a NewOrderSingle (a buy limit just below the market, which
rests) and the OrderCancelRequest of that order, so half the messages are orders and half cancels and the books stay
empty. With `--mix cross` each session alternates instead a sell limit at `--price` on its account (which rests)
and a buy limit at the same price on its crossing account (`--cross-accounts`), which trades with it: every other
message is an order that fills, and every message moves an account. With `--mix replace` each session alternates
a resting buy (as in the cancel mix) and an OrderCancelReplaceRequest of it to twice its quantity at the same price
(the replaced orders rest to the end of the run). Every answer is timed from its message's due
time, not from when it was actually sent: a stall in the server (or in this client) shows in the latency of every
message behind it, so coordinated omission hides nothing.

Answers: an ExecutionReport New (150=0) answers a resting order, Canceled (150=4) a cancel, Replaced (150=5) a replace,
the first Trade (150=F, or 1/2) a crossing order (kind `fill`); a Rejected ExecutionReport (150=8), an OrderCancelReject
(35=9), a session Reject (35=3) or a BusinessMessageReject (35=j) answers its message as refused, and so does a Canceled
crossing order (nothing to trade with). Whatever is unanswered when the drain ends is counted as such. With `--prime`, a
first session (`--prime-session`) makes one trade at `--prime-price` between two accounts before the load, so that the
market has a reference price.

Output: one JSON line on stdout: per kind (`new`, and `cancel`, `fill` or `replace`): answered, refused, unanswered and
the HDR histogram of the answered latencies (nanoseconds, base64); `sent`, `late_p99_us` (how far behind its due time
the worst sends were: the client's own lag), `seconds`.
"""

from __future__ import annotations

import argparse
import json
import selectors
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from hdrh.histogram import HdrHistogram

SOH = "\x01"
PASSWORD = "bench"  # the LogonPassword of bench.serve's sessions
NEW, CANCEL, FILL, REPLACE = "new", "cancel", "fill", "replace"
MIXES = {"cancel": (NEW, CANCEL), "cross": (NEW, FILL), "replace": (NEW, REPLACE)}  # the kinds each mix sends
_TRAILER = b"\x0110="


def utc_now() -> str:
    """SendingTime/TransactTime: UTC with milliseconds."""
    ns = time.time_ns()
    return time.strftime("%Y%m%d-%H:%M:%S", time.gmtime(ns // 1_000_000_000)) + f".{ns // 1_000_000 % 1000:03d}"


def frame(body: str) -> bytes:
    """A FIX 4.4 message around `body` (SOH-terminated fields from MsgType on): BodyLength and CheckSum added."""
    head = f"8=FIX.4.4{SOH}9={len(body)}{SOH}".encode()
    raw = head + body.encode()
    return raw + b"10=%03d\x01" % (sum(raw) % 256)


def split_messages(buffer: bytes) -> tuple[list[bytes], bytes]:
    """The complete messages at the start of `buffer` and what is left of it."""
    out = []
    while True:
        end = buffer.find(_TRAILER)
        if end < 0:
            return out, buffer
        stop = buffer.find(b"\x01", end + 4)
        if stop < 0:
            return out, buffer
        out.append(buffer[: stop + 1])
        buffer = buffer[stop + 1 :]


def fields(raw: bytes) -> dict[str, str]:
    """Tag -> value of one message (the last of a repeated tag wins: none that matter here repeat)."""
    return dict(f.split("=", 1) for f in raw.decode("latin-1").split(SOH) if "=" in f)


@dataclass
class Kind:
    """What one kind of message got back."""

    hist: HdrHistogram = field(default_factory=lambda: HdrHistogram(1, 120_000_000_000, 3))
    answered: int = 0
    refused: int = 0

    def record(self, latency_ns: int, refused: bool) -> None:
        self.hist.record_value(max(latency_ns, 1))
        if refused:
            self.refused += 1
        else:
            self.answered += 1


class Session:
    """One FIX session over a socket: the next sequence number, what is waiting to be sent, what came in."""

    def __init__(self, port: int, sender: str, account: str, cross_account: str = "") -> None:
        self.sender, self.account, self.cross_account = sender, account, cross_account
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.seq = 1
        self.inbox = b""
        self.outbox = b""
        self.last_order = ""  # the ClOrdID the next cancel cancels
        self.sent = 0

    def message(self, msg_type: str, body: str) -> bytes:
        raw = frame(f"35={msg_type}{SOH}34={self.seq}{SOH}49={self.sender}{SOH}52={utc_now()}{SOH}56=OMS{SOH}{body}")
        self.seq += 1
        return raw

    def logon(self) -> None:
        """Log on with sequence numbers reset; raises unless the server answers with a Logon."""
        self.sock.sendall(self.message("A", f"98=0{SOH}108=30{SOH}141=Y{SOH}554={PASSWORD}{SOH}"))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError(f"{self.sender}: the server closed the connection at logon")
            messages, self.inbox = split_messages(self.inbox + chunk)
            for raw in messages:
                f = fields(raw)
                if f.get("35") == "A":
                    self.sock.setblocking(False)
                    return
                if f.get("35") == "5":
                    raise ConnectionError(f"{self.sender}: logon refused: {f.get('58', '')}")
        raise TimeoutError(f"{self.sender}: no Logon answer within 10 s")

    def flush(self) -> None:
        """Send what the socket takes now; the rest waits for the next call (never blocks)."""
        if self.outbox:
            try:
                n = self.sock.send(self.outbox)
            except BlockingIOError:
                return
            self.outbox = self.outbox[n:]

    def read(self) -> Iterator[dict[str, str]]:
        """The messages that have arrived (never blocks)."""
        try:
            chunk = self.sock.recv(1 << 20)
        except BlockingIOError:
            return
        if not chunk:
            raise ConnectionError(f"{self.sender}: the server closed the connection")
        messages, self.inbox = split_messages(self.inbox + chunk)
        for raw in messages:
            yield fields(raw)


class Load:
    """The schedule, the sessions and what came back."""

    def __init__(
        self, port: int, senders: list[str], accounts: list[str], symbol: str, price: str, run: str,
        cross_accounts: list[str] | None = None, mix: str = "cancel",
    ) -> None:  # fmt: skip
        """`cross_accounts`: the crossing account of each session (the cross mix); `mix`: the cancel, cross or
        replace mix (cross needs `cross_accounts`)."""
        crossing = cross_accounts or [""] * len(senders)
        self.sessions = [Session(port, s, a, x) for s, a, x in zip(senders, accounts, crossing, strict=True)]
        self.symbol, self.price, self.run = symbol, price, run
        self.cross = mix == "cross"
        self.second = MIXES[mix][1]  # what follows each resting order (the cancel and replace mixes)
        self.kinds = {kind: Kind() for kind in MIXES[mix]}
        self.due: dict[str, tuple[str, int]] = {}  # ClOrdID -> (kind, due ns)
        self.by_seq: dict[tuple[str, int], str] = {}  # (sender, MsgSeqNum) -> ClOrdID
        self.late = HdrHistogram(1, 120_000_000_000, 3)

    def send(self, s: Session, due_ns: int) -> None:
        """The session's next message: a new order, or the cancel (or replace) of its last one (the cross mix: a sell
        that rests, or a buy that crosses it)."""
        s.sent += 1
        now = utc_now()
        if self.cross:
            crossing = s.sent % 2 == 0
            cl = f"{self.run}-{s.sender}-{'x' if crossing else 'o'}{s.sent}"
            account, side = (s.cross_account, "1") if crossing else (s.account, "2")
            body = (f"11={cl}{SOH}1={account}{SOH}55={self.symbol}{SOH}54={side}{SOH}60={now}{SOH}38=1{SOH}40=2{SOH}"
                    f"44={self.price}{SOH}59=0{SOH}")  # fmt: skip
            self.due[cl] = (FILL if crossing else NEW, due_ns)
            msg_type = "D"
        elif s.last_order:  # its cancel, or its replace to twice the quantity at the same price
            replace = self.second == REPLACE
            cl = f"{self.run}-{s.sender}-{'r' if replace else 'c'}{s.sent}"
            body = f"11={cl}{SOH}41={s.last_order}{SOH}1={s.account}{SOH}55={self.symbol}{SOH}54=1{SOH}60={now}{SOH}"
            body += f"38=2{SOH}40=2{SOH}44={self.price}{SOH}59=0{SOH}" if replace else f"38=1{SOH}"
            self.due[cl] = (self.second, due_ns)
            s.last_order = ""
            msg_type = "G" if replace else "F"
        else:
            cl = f"{self.run}-{s.sender}-o{s.sent}"
            body = (f"11={cl}{SOH}1={s.account}{SOH}55={self.symbol}{SOH}54=1{SOH}60={now}{SOH}38=1{SOH}40=2{SOH}"
                    f"44={self.price}{SOH}59=0{SOH}")  # fmt: skip
            self.due[cl] = (NEW, due_ns)
            s.last_order = cl
            msg_type = "D"
        self.by_seq[(s.sender, s.seq)] = cl
        s.outbox += s.message(msg_type, body)
        s.flush()
        self.late.record_value(max(time.perf_counter_ns() - due_ns, 1))

    def on_message(self, s: Session, f: dict[str, str], now_ns: int) -> None:
        msg_type = f.get("35")
        if msg_type == "1":  # TestRequest: answer it, or the server logs the session out
            s.outbox += s.message("0", f"112={f.get('112', '')}{SOH}")
            return
        if msg_type == "8":
            cl, exec_type = f.get("11", ""), f.get("150")
            expected = self.due.get(cl, (NEW, 0))[0]
            if expected == FILL:  # a crossing order: its first trade; a Canceled one found nothing to trade with
                if exec_type not in ("F", "1", "2", "4", "8"):
                    return
                refused = exec_type in ("4", "8")
            elif exec_type not in ("0", "4", "5", "8"):
                return  # PendingNew, PendingCancel, PendingReplace, fills: not the answer timed here
            else:
                refused = exec_type == "8"
        elif msg_type == "9":
            cl, refused = f.get("11", ""), True
        elif msg_type in ("3", "j"):
            cl, refused = self.by_seq.get((s.sender, int(f.get("45", "0"))), ""), True
        else:
            return
        entry = self.due.pop(cl, None)
        if entry is not None:
            kind, due_ns = entry
            self.kinds[kind].record(now_ns - due_ns, refused)

    def run_for(self, rate: float, seconds: float, drain_s: float) -> dict[str, object]:
        total = max(int(rate * seconds), 2 * len(self.sessions))
        interval = 1e9 / rate
        # select(2) takes its timeout in microseconds; epoll, the default, rounds up to whole milliseconds, which
        # would make every send up to a millisecond late and show in every latency timed from a due time
        sel = selectors.SelectSelector()
        for s in self.sessions:
            sel.register(s.sock, selectors.EVENT_READ, s)
        start = time.perf_counter_ns() + 50_000_000
        i = 0
        drain_until = None
        while True:
            now = time.perf_counter_ns()
            while i < total and start + int(i * interval) <= now:
                self.send(self.sessions[i % len(self.sessions)], start + int(i * interval))
                i += 1
            if i >= total:
                if drain_until is None:
                    drain_until = now + int(drain_s * 1e9)
                if not self.due or now >= drain_until:
                    break
                wait = 0.005
            else:
                wait = max((start + int(i * interval) - now) / 1e9, 0.0)
            for key, _ in sel.select(wait):
                s = key.data
                got = time.perf_counter_ns()
                for f in s.read():
                    self.on_message(s, f, got)
            for s in self.sessions:
                s.flush()
        elapsed = (time.perf_counter_ns() - start) / 1e9
        out: dict[str, object] = {"sent": i, "seconds": round(elapsed, 3), "rate": rate,
                                  "late_p99_us": self.late.get_value_at_percentile(99) / 1e3}  # fmt: skip
        for name, kind in self.kinds.items():
            unanswered = sum(1 for k, _ in self.due.values() if k == name)
            out[name] = {"answered": kind.answered, "refused": kind.refused, "unanswered": unanswered,
                         "hdr": kind.hist.encode().decode()}  # fmt: skip
        return out

    def close(self) -> None:
        for s in self.sessions:
            try:
                s.sock.setblocking(True)
                s.sock.sendall(s.message("5", ""))
            except OSError:
                pass  # the session is gone already: nothing to log out of
            s.sock.close()


def prime(port: int, sender: str, accounts: tuple[str, str], symbol: str, price: str, run: str) -> None:
    """One trade of 1 at `price` between `accounts` (a sell, then a buy), so the market has a reference price."""
    s = Session(port, sender, accounts[0])
    s.logon()
    s.sock.setblocking(True)
    s.sock.settimeout(10)
    for n, (side, account) in enumerate((("2", accounts[0]), ("1", accounts[1]))):
        body = (f"11={run}-prime-{n}{SOH}1={account}{SOH}55={symbol}{SOH}54={side}{SOH}60={utc_now()}{SOH}38=1{SOH}"
                f"40=2{SOH}44={price}{SOH}59=0{SOH}")  # fmt: skip
        s.sock.sendall(s.message("D", body))
    fills = 0
    deadline = time.monotonic() + 10
    while fills < 2 and time.monotonic() < deadline:
        chunk = s.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the priming session")
        messages, s.inbox = split_messages(s.inbox + chunk)
        for raw in messages:
            f = fields(raw)
            if f.get("35") == "8" and f.get("150") in ("F", "2"):
                fills += 1
            elif f.get("35") == "8" and f.get("150") == "8":
                raise RuntimeError(f"priming order rejected: {f.get('58', '')}")
    if fills < 2:
        raise TimeoutError("the priming trade did not happen within 10 s")
    s.sock.sendall(s.message("5", ""))
    s.sock.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.fix_load", description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--sessions", required=True, help="SenderCompIDs, comma-separated")
    p.add_argument("--accounts", required=True, help="the account of each session, comma-separated")
    p.add_argument("--rate", type=float, required=True, help="messages per second over all sessions")
    p.add_argument("--seconds", type=float, required=True)
    p.add_argument("--drain", type=float, default=10.0, help="seconds to wait for answers after the last send")
    p.add_argument("--symbol", default="AAPL")
    p.add_argument("--price", default="149", help="within the reserved allowance's band around the primed price")
    p.add_argument("--run", default="r", help="prefix of every ClOrdID")
    p.add_argument("--prime", action="store_true")
    p.add_argument("--prime-session", default="BENCHP")
    p.add_argument("--prime-accounts", default="BENCHP1,BENCHP2")
    p.add_argument("--prime-price", default="150")
    p.add_argument("--mix", choices=sorted(MIXES), default="cancel",
                   help="orders and cancels, orders that cross, or orders and replaces")  # fmt: skip
    p.add_argument("--cross-accounts", default="", help="the cross mix: each session's crossing account")
    args = p.parse_args(argv)
    if args.prime:
        a, b = args.prime_accounts.split(",")
        prime(args.port, args.prime_session, (a, b), args.symbol, args.prime_price, args.run)
    cross = args.cross_accounts.split(",") if args.mix == "cross" else None
    load = Load(args.port, args.sessions.split(","), args.accounts.split(","), args.symbol, args.price, args.run, cross,
                args.mix)  # fmt: skip
    try:
        for s in load.sessions:
            s.logon()
        result = load.run_for(args.rate, args.seconds, args.drain)
    finally:
        load.close()
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
