"""A QuickFIX initiator for one session: what the demo, the benchmark and the tests trade through.

Received application messages queue up as `Received` (MsgType plus every field as text); session-level Rejects,
Logouts and Logons are kept too, so callers can check what the session layer said.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import quickfix as fix

from fix_gateway import tags as T
from fix_gateway import threadstate
from fix_gateway.application import QuietApplication
from fix_gateway.settings import dictionary_path

__all__ = ["FixClient", "Received"]

SOH = "\x01"
_HEADER_TAGS = frozenset({T.POSS_DUP_FLAG, T.POSS_RESEND})


class Received(dict[int, str]):
    """One message as {tag: value} (the last value of a repeated tag); `msg_type` is its MsgType, `received_ns`
    the `time.perf_counter_ns()` at which the initiator's callback got it, `raw` the message as it came (SOH
    separated: repeating groups are read from it, `fix_gateway.market_data.fields`)."""

    received_ns: int = 0
    raw: str = ""

    @property
    def msg_type(self) -> str:
        return self[T.MSG_TYPE]

    @classmethod
    def parse(cls, raw: str) -> Received:
        out = cls()
        for part in raw.split(SOH):
            tag, sep, value = part.partition("=")
            if sep and tag.isdigit():
                out[int(tag)] = value
        out.raw = raw
        return out


class _App(QuietApplication):
    def __init__(self, client: FixClient) -> None:
        super().__init__()
        self._client = client

    def onLogon(self, session_id: Any) -> None:
        self._client.logged_on.set()
        if self._client.on_synced is not None:
            threading.Thread(target=self._client.sync, name="fix-sync", daemon=True).start()

    def onLogout(self, session_id: Any) -> None:
        self._client.logged_on.clear()
        threadstate.release()

    def toAdmin(self, message: Any, session_id: Any) -> None:
        header = message.getHeader()
        password = self._client.password
        if header.getField(T.MSG_TYPE) == T.MT_LOGON and password is not None:
            if header.getField(T.BEGIN_STRING) == "FIX.4.2":  # its Logon has no Password: RawData carries it
                message.setField(T.RAW_DATA_LENGTH, str(len(password.encode())))
                message.setField(T.RAW_DATA, password)
            else:
                message.setField(T.PASSWORD, password)

    def fromAdmin(self, message: Any, session_id: Any) -> None:
        msg = Received.parse(message.toString())
        client = self._client
        if msg.msg_type == T.MT_HEARTBEAT and msg.get(T.TEST_REQ_ID) == client.sync_id and client.on_synced:
            client.synced.set()
            client.on_synced()
        client.admin.put(msg)

    def fromApp(self, message: Any, session_id: Any) -> None:
        now = time.perf_counter_ns()
        threadstate.hold()  # QuickFIX's thread keeps its Python thread state until the logout
        msg = Received.parse(message.toString())
        msg.received_ns = now
        if self._client.on_app is not None:
            self._client.on_app(msg)
        else:
            self._client.inbox.put(msg)


class FixClient:
    """An initiator session `sender -> target` on `begin_string`, connecting to 127.0.0.1:`port`."""

    def __init__(
        self,
        begin_string: str,
        sender: str,
        port: int,
        data_dir: str | Path,
        target: str = "OMS",
        password: str | None = None,
        host: str = "127.0.0.1",
        heartbeat: int = 30,
        on_app: Callable[[Received], None] | None = None,
        on_synced: Callable[[], None] | None = None,
    ) -> None:
        """Sequence numbers and sent messages are kept under `data_dir` (a FileStore), so a restarted client
        continues its session and asks for what it missed. Application messages go to `on_app` (called on
        QuickFIX's thread, in order) when given, else to `inbox`.

        With `on_synced`, each logon sends a TestRequest, and `on_synced` is called (on QuickFIX's thread) when
        its Heartbeat comes back: the counterparty's messages are handled in sequence, so by then every message it
        sent before (its resend of what this session missed included) has gone to `on_app`."""
        self.begin_string = begin_string
        self.password = password
        self.on_app = on_app
        self.on_synced = on_synced
        self.sync_id = ""
        self.synced = threading.Event()  # set when the last logon's TestRequest was answered
        self._syncs = itertools.count(1)
        self.inbox: queue.Queue[Received] = queue.Queue()
        self.admin: queue.Queue[Received] = queue.Queue()
        self.logged_on = threading.Event()
        self.session_id = fix.SessionID(begin_string, sender, target)
        data = Path(data_dir)
        (data / "store").mkdir(parents=True, exist_ok=True)
        (data / "log").mkdir(parents=True, exist_ok=True)
        settings = fix.SessionSettings()
        d = fix.Dictionary()
        for key, value in {
            "ConnectionType": "initiator", "SocketConnectHost": host, "SocketConnectPort": str(port),
            "HeartBtInt": str(heartbeat), "ReconnectInterval": "1", "StartTime": "00:00:00", "EndTime": "00:00:00",
            "UseDataDictionary": "Y", "DataDictionary": str(dictionary_path(begin_string)), "SocketNodelay": "Y",
            "FileStorePath": str(data / "store"), "FileLogPath": str(data / "log"), "ResetOnLogon": "N",
        }.items():  # fmt: skip
            d.setString(key, value)
        settings.set(self.session_id, d)
        # QuickFIX keeps references to these (not copies): they must live as long as the initiator
        self._app = _App(self)
        self._settings = settings
        self._store: Any = fix.FileStoreFactory(settings)
        self._initiator: Any = fix.SocketInitiator(self._app, self._store, settings)

    def start(self, wait: float = 10.0) -> FixClient:
        """Connect and log on; raises TimeoutError when the logon is not answered within `wait` seconds."""
        self._initiator.start()
        if wait and not self.logged_on.wait(wait):
            raise TimeoutError(f"{self.session_id.toString()}: no logon within {wait} s")
        return self

    def stop(self) -> None:
        """Log out, disconnect and release the session (its id may be used again); safe to call twice."""
        if self._initiator is None:
            return
        session = fix.Session.lookupSession(self.session_id)
        if session is not None and session.isLoggedOn():
            session.logout()  # QuickFIX's own stop() sleeps whole seconds waiting for the answer
            _wait_until(lambda: not self.logged_on.is_set(), 5.0)
        self._initiator.stop(True)
        # dropping the initiator unregisters its session from QuickFIX's process-wide registry; it must go
        # before the store factory its destructor still uses
        self._initiator = None
        self._store = None
        self.logged_on.clear()

    # -- SENDING --

    def sync(self) -> None:
        """After a logon: send a TestRequest whose Heartbeat answer calls `on_synced`, again each second until one
        is answered or the session logs out (the counterparty's resend may gap-fill over a TestRequest sent while
        it was asking for one, and a TestRequest gap-filled over is never answered)."""
        self.synced.clear()
        while self.logged_on.is_set() and not self.synced.is_set():
            self._ask_sync()
            self.synced.wait(1.0)

    def _ask_sync(self) -> None:
        self.sync_id = f"SYNC-{time.time_ns()}-{next(self._syncs)}"  # an earlier one unanswered no longer counts
        msg = fix.Message()
        msg.getHeader().setField(T.BEGIN_STRING, self.begin_string)
        msg.getHeader().setField(T.MSG_TYPE, T.MT_TEST_REQUEST)
        msg.setField(T.TEST_REQ_ID, self.sync_id)
        fix.Session.sendToTarget(msg, self.session_id)  # False when logged out again: the next logon asks anew

    def send(self, msg_type: str, fields: dict[int, str] | list[tuple[int, str]]) -> None:
        """Send an application message built from `fields` (in order; PossDupFlag and PossResend go to the
        header)."""
        msg = fix.Message()
        header = msg.getHeader()
        header.setField(T.BEGIN_STRING, self.begin_string)
        header.setField(T.MSG_TYPE, msg_type)
        for tag, value in fields.items() if isinstance(fields, dict) else fields:
            (header if tag in _HEADER_TAGS else msg).setField(tag, value)
        self.send_message(msg)

    def send_message(self, msg: Any) -> None:
        """Send a message the caller built whole (one with repeating groups, say); its header gets this session's
        CompIDs. Raises ConnectionError when the session is not logged on."""
        if not fix.Session.sendToTarget(msg, self.session_id):
            raise ConnectionError(f"{self.session_id.toString()}: not logged on")

    def new_order(
        self, cl_ord_id: str, symbol: str, side: str, qty: str, price: str | None = None, ord_type: str = "2",
        tif: str = "0", account: str | None = None, extra: dict[int, str] | None = None,
    ) -> None:  # fmt: skip
        """NewOrderSingle; `side` and `ord_type` are FIX values ("1" buy, "2" sell; "1" market, "2" limit)."""
        fields = {T.CL_ORD_ID: cl_ord_id, T.HANDL_INST: "1", T.SYMBOL: symbol, T.SIDE: side, T.ORDER_QTY: qty,
                  T.ORD_TYPE: ord_type, T.TIME_IN_FORCE: tif, T.TRANSACT_TIME: _now()}  # fmt: skip
        if price is not None:
            fields[T.PRICE] = price
        if account is not None:
            fields[T.ACCOUNT] = account
        fields.update(extra or {})
        self.send(T.MT_NEW_ORDER_SINGLE, fields)

    def cancel(self, cl_ord_id: str, orig: str, symbol: str, side: str, qty: str = "1") -> None:
        """OrderCancelRequest for the order `orig` names."""
        self.send(
            T.MT_ORDER_CANCEL_REQUEST,
            {T.CL_ORD_ID: cl_ord_id, T.ORIG_CL_ORD_ID: orig, T.SYMBOL: symbol, T.SIDE: side, T.ORDER_QTY: qty,
             T.TRANSACT_TIME: _now()},
        )  # fmt: skip

    def replace(
        self, cl_ord_id: str, orig: str, symbol: str, side: str, qty: str, price: str | None, ord_type: str = "2"
    ) -> None:
        """OrderCancelReplaceRequest: new total `qty` and `price` for the order `orig` names."""
        fields = {T.CL_ORD_ID: cl_ord_id, T.ORIG_CL_ORD_ID: orig, T.HANDL_INST: "1", T.SYMBOL: symbol, T.SIDE: side,
                  T.ORDER_QTY: qty, T.ORD_TYPE: ord_type, T.TRANSACT_TIME: _now()}  # fmt: skip
        if price is not None:
            fields[T.PRICE] = price
        self.send(T.MT_ORDER_CANCEL_REPLACE_REQUEST, fields)

    def status(self, cl_ord_id: str, symbol: str, side: str) -> None:
        """OrderStatusRequest."""
        self.send(T.MT_ORDER_STATUS_REQUEST, {T.CL_ORD_ID: cl_ord_id, T.SYMBOL: symbol, T.SIDE: side})

    # -- RECEIVING --

    def next(self, timeout: float = 5.0) -> Received:
        """The next application message; raises TimeoutError when none comes within `timeout` seconds."""
        try:
            return self.inbox.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"{self.session_id.toString()}: nothing received in {timeout} s") from None

    def expect(self, n: int, timeout: float = 5.0) -> list[Received]:
        """The next `n` application messages."""
        return [self.next(timeout) for _ in range(n)]

    def next_admin(self, msg_type: str, timeout: float = 5.0) -> Received:
        """The next session-level message of `msg_type` (e.g. "3" Reject), skipping others."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                msg = self.admin.get(timeout=left)
            except queue.Empty:
                break
            if msg.msg_type == msg_type:
                return msg
        raise TimeoutError(f"{self.session_id.toString()}: no MsgType {msg_type} in {timeout} s")

    def quiet(self, wait: float = 0.3) -> bool:
        """True when no application message arrives within `wait` seconds (one that does is consumed)."""
        try:
            self.inbox.get(timeout=wait)
        except queue.Empty:
            return True
        return False


def _wait_until(done: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def _now() -> str:
    from fix_gateway.codec import utc_timestamp

    return utc_timestamp(time.time_ns())
