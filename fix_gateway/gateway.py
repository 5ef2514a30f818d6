"""The FIX acceptor in front of an OrderManager: its sessions, from logon to shutdown.

HOW CALLBACKS REACH THE CORE, AND WHY ONE SLOW COUNTERPARTY STALLS NO ONE
The gateway runs QuickFIX's `ThreadedSocketAcceptor`: each connection has its own reader thread, which calls
`fromApp` with that session's messages in order (`fix_gateway.application` routes them by BeginString and MsgType),
keeping one Python thread state from its first application message to its logout (`fix_gateway.threadstate`).
The reader thread copies the message and hands it to the sequencer (`oms.runtime.sequencer.Sequencer`: REST, algos
and venues that answer later are sequenced by the same one) without waiting; on the sequencer's thread a handler
(`fix_gateway.handlers`) decodes it and runs the command through the OrderManager, and the sequencer publishes the
step's reports to every adapter. The gateway's report fan-out (`fix_gateway.reports`) hands each one, once its batch
is committed, to the outbox of the FIX session it is for, whichever adapter's step caused it. Each session's outbox
has its own sender thread (`fix_gateway.outbox`), so a counterparty that stops reading blocks only itself, and a
reader thread never blocks on a socket.
(QuickFIX's single-threaded `SocketAcceptor` would avoid the sender threads, but its `stop()` races its own poll thread
over the socket server it deletes, which crashes a process that stops and restarts its acceptor.)

Modules: `handlers` (the application messages), `reports` (fan-out, timing, lifecycle log, ExecIDs), `outbox` (each
session's sender); this one holds the sessions: their settings, the Logon check, start and stop.
"""

from __future__ import annotations

import calendar
import hmac
import logging
import re
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

import quickfix as fix

from fix_gateway import tags as T
from fix_gateway.application import GatewayApplication
from fix_gateway.codec import Codec
from fix_gateway.fix42 import Fix42Codec
from fix_gateway.fix44 import Fix44Codec
from fix_gateway.handlers import OrderHandlers
from fix_gateway.quickfix_log import MaskingLogFactory
from fix_gateway.reports import ReportRouter
from fix_gateway.settings import SessionSpec, quickfix_settings
from oms.core.engine import OrderManager
from oms.core.model.enums import CancelReason
from oms.core.model.instruments import InstrumentRegistry
from oms.core.model.messages import (
    Message,
    OrderAccepted,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderReplaced,
)
from oms.core.orders import OrderView
from oms.runtime.sequencer import MAX_DELAY_S, MAX_WAITING, Sequencer
from risk.throttle import SessionThrottle

__all__ = ["FixGateway", "InboundMarks"]

log = logging.getLogger("oms.fix")

_CODECS: dict[str, type[Codec]] = {"FIX.4.2": Fix42Codec, "FIX.4.4": Fix44Codec}
_EXEC_TYPES = {OrderCanceled: "4", OrderReplaced: "5", OrderExpired: "C", OrderRejected: "8"}  # 4.2 and 4.4 alike
_REPORT_KEYS = re.compile("\x01(11|17|37|150)=([^\x01]*)")  # ClOrdID, ExecID, OrderID, ExecType


class InboundMarks(Protocol):
    """Where the gateway keeps, per session, the last counterparty MsgSeqNum whose answers are with QuickFIX (stored
    before sent), durably: see RESTARTS in `FixGateway`."""

    def load(self) -> dict[str, int]:
        """Every session's mark, as last saved (by any earlier run)."""
        ...

    def save(self, session: str, seq: int) -> None:
        """Record `seq` for `session`: cheap, from any thread; durable soon after (or at `flush`)."""
        ...

    def flush(self) -> None:
        """Make every mark saved so far durable."""
        ...


class FixGateway(OrderHandlers):
    """QuickFIX acceptor sessions translating to and from one OrderManager: the handlers of their messages
    (`OrderHandlers`), plus the sessions' Logon check and their start and stop.

    RESTARTS. QuickFIX counts a message in when its callback returns, before the core has run it; the answers then
    wait for the journal and for the session's sender. A process killed in between would leave the counterparty's
    message counted and never answered, and nobody would ask for it again. With `marks`, each session's last
    message whose answers QuickFIX holds is recorded as it happens (`InboundMarks`); at start the gateway sets each
    session's expected MsgSeqNum back to its mark + 1 when QuickFIX's store counted further, so QuickFIX asks the
    counterparty to resend the rest (ResendRequest). Those come back as PossDup: one already booked is answered with
    its status (`handlers`), one never run is run now. A clean stop records every session's count, so it resends
    nothing. The other way round, reports a session is owed for events journaled before the stop (another
    channel's order filling its resting order, an expiry) that QuickFIX never stored are sent at start
    (`send_owed`)."""

    def __init__(
        self,
        host: Sequencer,
        instruments: InstrumentRegistry,
        sessions: Iterable[SessionSpec],
        port: int,
        data_dir: str | Path,
        generation: int,
        clock: Callable[[], int] = time.time_ns,
        throttle: SessionThrottle | None = None,
        max_waiting: int = MAX_WAITING,
        max_delay_s: float = MAX_DELAY_S,
        behind_door: bool = False,
        marks: InboundMarks | None = None,
    ) -> None:
        """`generation` makes this start's report ids unique: pass a number no earlier start used. The gateway
        drives `host.engine` through the sequencer and reports what every step of any adapter did to its sessions.
        `throttle` limits each session's order messages (NewOrderSingle, cancel, replace) per sliding window: one
        over the limit is refused with SESSION_RATE (an ExecutionReport Rejected, or an OrderCancelReject) and books
        nothing. `max_waiting`, `max_delay_s`: how many commands may wait for the sequencer, and how long a new
        order's answer may expect to wait for it and the journal, before new orders are shed with SYSTEM_BUSY
        (`fix_gateway.handlers`, OVERLOAD). `behind_door`: the front door (`fix_gateway.door`) owns the public port,
        and sessions log on only from loopback. `marks`: see RESTARTS."""
        self._specs = {s.name: s for s in sessions}
        codecs = {name: _CODECS[s.begin_string](instruments, s) for name, s in self._specs.items()}
        self._marks = marks
        router = ReportRouter(host, codecs, generation, None if marks is None else marks.save)
        super().__init__(host, codecs, router, clock, throttle, max_waiting, max_delay_s)
        self._host = host
        self.port = port
        self._session_ids: dict[str, Any] = {
            name: fix.SessionID(s.begin_string, s.sender_comp_id, s.target_comp_id) for name, s in self._specs.items()
        }
        self._data_dir = Path(data_dir)
        self._behind_door = behind_door
        self._acceptor: Any = None
        self._application: Any = None
        self._factories: tuple[Any, ...] = ()

    # -- LIFECYCLE --

    def start(self) -> None:
        """Listen on `port`; returns once the acceptor is up (QuickFIX reads each connection on its own thread)."""
        settings = quickfix_settings(self._specs.values(), self.port, self._data_dir, self._behind_door)
        self._application = GatewayApplication(self)
        # QuickFIX keeps references to the factories (not copies): they must live as long as the acceptor
        self._factories = (settings, fix.FileStoreFactory(settings), MaskingLogFactory(settings))
        self._reports.open(self._session_ids)
        try:
            acceptor = fix.ThreadedSocketAcceptor(self._application, self._factories[1], settings, self._factories[2])
            acceptor.start()
        except (fix.ConfigError, fix.RuntimeError) as exc:
            self._reports.close()
            raise OSError(f"FIX acceptor on port {self.port}: {exc}") from exc
        self._acceptor = acceptor
        if self._marks is not None:
            self._resume_from_marks(self._marks.load())

    def _resume_from_marks(self, marks: dict[str, int]) -> None:
        """Set back each session whose store counted messages past its mark (see RESTARTS)."""
        for name, sid in self._session_ids.items():
            session = fix.Session.lookupSession(sid)
            mark = marks.get(name)
            if session is None or mark is None:
                continue
            expected = session.getExpectedTargetNum()
            if mark + 1 < expected:
                session.setNextTargetMsgSeqNum(mark + 1)
                log.warning("%s: messages %d to %d were counted but their answers never left: the counterparty is "
                            "asked to send them again", name, mark + 1, expected - 1)  # fmt: skip

    def send_owed(self, history: Iterable[tuple[Message, OrderView]]) -> int:
        """After a restart, before any counterparty logs on: send each session the ExecutionReports of journaled
        events of its orders (`history`: each event with its order as the event left it, as `OrderManager.restore`
        replays them) that its QuickFIX store does not hold, i.e. that never left before the stop; and each drop
        copy the copies it lacks. Only events since the store was created count (an earlier FIX day's store is
        gone). A fill counts as held when a stored report has its ExecID; another event when a stored report has
        its OrderID, ExecType and ClOrdID. Acceptances are left out: one whose answer never left is a message the
        counterparty is asked to send again (RESTARTS), answered with the order's status. The reports go through
        each session's outbox, before anything else it sends; the counterparty gets them at logon, by resend
        (PossDupFlag Y). Returns how many were sent."""
        owners = {name for name, codec in self._codecs.items() if not codec.spec.drop_copy}
        copies = [name for name in self._codecs if name not in owners]
        held = {name: self._stored_reports(name) for name in self._codecs}
        engine, sent = self.engine, 0
        for event, view in history:
            order_id = getattr(event, "order_id", 0)
            owner = engine.session_of.get(order_id)
            if isinstance(event, OrderAccepted) or owner not in owners:
                continue  # an acceptance (see above), or another adapter's order
            if isinstance(event, OrderFilled):
                exec_id = key = str(event.exec_id)
            else:
                exec_id = self._reports.report_id()
                key = (str(order_id), _EXEC_TYPES.get(type(event)), event.cl_ord_id)  # type: ignore[attr-defined]
            for name in (owner, *copies):
                created_ns, stored = held[name]
                if event.ts_ns < created_ns or key in stored:  # type: ignore[attr-defined]
                    continue
                codec = self._codecs[name]
                msg = codec.report(event, view, engine.orders.get(order_id), exec_id)
                if msg is None:
                    continue
                if name != owner:
                    codec.mark_copy(msg)
                self._reports.send_now(msg, name)
                sent += 1
        if sent:
            log.warning("%d reports of events journaled before the last stop had never left: sent now, delivered "
                        "at each client's logon by resend", sent)  # fmt: skip
        return sent

    def _stored_reports(self, name: str) -> tuple[int, set[object]]:
        """(when session `name`'s store was created, in ns; the ExecIDs and the (OrderID, ExecType, ClOrdID) of
        every ExecutionReport it holds)."""
        factory = fix.FileStoreFactory(self._factories[0])  # a reader of its own: QuickFIX's is not exposed
        store = factory.create(fix.UtcTimeStamp(), self._session_ids[name])
        try:
            created = store.getCreationTime()
            when = (created.getYear(), created.getMonth(), created.getDay(), created.getHour(), created.getMinute())
            created_ns = (calendar.timegm((*when, created.getSecond())) * 1_000_000_000) + created.getNanosecond()
            raw = fix.VectorString()
            last = store.getNextSenderMsgSeqNum() - 1
            if last >= 1:
                store.get(1, last, raw)
        finally:
            factory.destroy(store)
        stored: set[object] = set()
        for text in raw:
            if "\x0135=8\x01" not in text:
                continue
            fields = dict(_REPORT_KEYS.findall(text))
            stored.add(fields.get("17"))
            stored.add((fields.get("37"), fields.get("150"), fields.get("11")))
        return created_ns, stored

    def logged_on(self) -> tuple[int, int]:
        """(sessions logged on now, sessions configured)."""
        sessions = [fix.Session.lookupSession(sid) for sid in self._session_ids.values()] if self._acceptor else []
        return sum(1 for s in sessions if s is not None and s.isLoggedOn()), len(self._session_ids)

    def stop(self, cancel_working: bool = True) -> None:
        """Cancel every working order of the FIX sessions (reason SHUTDOWN: the book goes with the process), send
        those reports, log every session out and close the port. Safe to call twice."""
        if self._acceptor is None:
            return
        if cancel_working:

            def cancel_all(engine: OrderManager) -> None:
                now = self._clock()
                for name in self._specs:
                    engine.mass_cancel(name, None, now, CancelReason.SHUTDOWN)

            self._host.run(cancel_all)
            self._await_cancels(deadline=time.monotonic() + 5.0)
        # every report goes to QuickFIX (sent, or stored for resend) before logout, unless a counterparty that
        # stopped reading holds its sender: closing the connections below releases it
        stuck = self._reports.close()
        sessions = [fix.Session.lookupSession(sid) for sid in self._session_ids.values()]
        live = [s for s in sessions if s is not None and s.isLoggedOn()]
        for session in live:
            session.logout()  # QuickFIX's own stop() sleeps whole seconds waiting for the answers
        deadline = time.monotonic() + 5.0
        while any(s.isLoggedOn() for s in live) and time.monotonic() < deadline:
            time.sleep(0.005)
        self._acceptor.stop(True)
        for outbox in stuck:
            outbox.close()
        if self._marks is not None:  # everything counted was answered: a clean start resends nothing
            unsent = {outbox.session_id.toString() for outbox in stuck}  # those keep the marks they reached
            for name, sid in self._session_ids.items():
                session = fix.Session.lookupSession(sid)
                if session is not None and name not in unsent:
                    self._marks.save(name, session.getExpectedTargetNum() - 1)
            self._marks.flush()
        # dropping the acceptor unregisters its sessions from QuickFIX's process-wide registry; it must go
        # before the factories its destructor still uses
        self._acceptor = None
        self._factories = ()

    def _await_cancels(self, deadline: float) -> None:
        """Wait (until `deadline`, monotonic) for venues that answer later to confirm the shutdown cancels."""
        while time.monotonic() < deadline:
            with self.lock:
                if not any(self.engine.working(name) for name in self._specs):
                    return
            time.sleep(0.01)
        log.error("stopping with orders still working at a venue that did not confirm their cancel")

    # -- SESSION EVENTS (QuickFIX thread) --

    def check_logon(self, msg: Any, session_id: Any) -> None:
        """Refuse (fix.RejectLogon, a Logout with Text "invalid password") a Logon without the session's configured
        LogonPassword: in Password (554) in FIX 4.4, in RawData (96) in FIX 4.2, whose Logon has no Password."""
        spec = self._specs.get(session_id.toString())
        if spec is None or spec.password is None:
            return
        tag = T.PASSWORD if spec.begin_string == "FIX.4.4" else T.RAW_DATA
        given = msg.getField(tag) if msg.isSetField(tag) else ""
        if not hmac.compare_digest(given.encode(), spec.password.encode()):
            log.warning("logon refused: bad password", extra={"session": spec.name})
            raise fix.RejectLogon("invalid password")
