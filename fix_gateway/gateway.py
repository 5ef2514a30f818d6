"""The FIX acceptor in front of an OrderManager.

HOW CALLBACKS REACH THE CORE, AND WHY ONE SLOW COUNTERPARTY STALLS NO ONE
The gateway runs QuickFIX's `ThreadedSocketAcceptor`: each connection has its own reader thread, which calls
`fromApp` with that session's messages in order. A callback decodes the message and runs the command through the
OrderManager under the engine host's lock (`oms.runtime.sequencer.Sequencer`: REST, algos and venues that answer later
take the same lock), then the host publishes the step's reports to every adapter; the gateway hands each one to the
outbox of the FIX session it is for, whichever adapter's step caused it. Each session's outbox is drained by its own
sender thread into `Session.sendToTarget` (which releases the GIL). The answers to a session's own message skip that hop
when its outbox is empty: the callback reserves the session's sender under the gateway lock and sends them itself after
releasing it, so they still leave in the order the engine produced them. A counterparty that stops reading therefore
blocks only its own sender (or its own reader thread) and grows only its own outbox; the lock and every other session go
on. A report for a session that is not logged on is stored in its FileStore and delivered by resend at its next logon.
(QuickFIX's single-threaded `SocketAcceptor` would avoid the sender threads, but its `stop()` races its own poll thread
over the socket server it deletes, which crashes a process that stops and restarts its acceptor.)

OBSERVABILITY
Each NewOrderSingle starts a `StageClock` (`oms.runtime.metrics`, counted as an order in on channel `fix`) that the
engine stamps at the risk decision and after the venue, and that the first report answering the order carries to
QuickFIX: once `sendToTarget` returned, its stages go into the histograms. For a venue that answers later the clock
waits, by order id, for the venue's first word. The order lifecycle (received, acked, rejected with reason, filled,
canceled, replaced, expired) is logged at INFO on `oms.fix` with session, account, ClOrdID and OrderID
(`oms.runtime.logs.EventLog`: one level check when INFO is off).

IDS
OrderID is the OMS's order id (unique across restarts: each start has its own id range, see `OmsApp`). A fill's
ExecID is its execution id (the venue's, also per-start); every other ExecutionReport's ExecID is
`<generation>.<n>`, which never collides with a fill's (that one has no dot). Resent reports come from the
FileStore byte for byte, so ids are stable across restarts.
"""

from __future__ import annotations

import hmac
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import quickfix as fix

from fix_gateway import tags as T
from fix_gateway.application import GatewayApplication
from fix_gateway.codec import Codec, Refusal
from fix_gateway.fix42 import Fix42Codec
from fix_gateway.fix44 import Fix44Codec
from fix_gateway.settings import SessionSpec, quickfix_settings
from oms.core.model.enums import CancelReason, RejectReason
from oms.core.model.instruments import InstrumentRegistry
from oms.core.model.messages import (
    CancelRejected,
    Message,
    OrderAccepted,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderReplaced,
    TradePrinted,
)
from oms.core.orders import OrderView
from oms.runtime.logs import EventLog
from oms.runtime.metrics import StageClock
from oms.runtime.sequencer import Reports, Sequencer
from risk.reasons import describe as reason_text
from risk.throttle import SessionThrottle

__all__ = ["FixGateway"]

log = logging.getLogger("oms.fix")
events_log = EventLog(log)

_CODECS: dict[str, type[Codec]] = {"FIX.4.2": Fix42Codec, "FIX.4.4": Fix44Codec}
_LIFECYCLE = {
    OrderAccepted: "order acked",
    OrderRejected: "order rejected",
    OrderFilled: "order filled",
    OrderCanceled: "order canceled",
    OrderReplaced: "order replaced",
    OrderExpired: "order expired",
    CancelRejected: "cancel rejected",
}
AWAITING_MAX = 100_000  # clocks of orders waiting for a venue's first answer; the oldest go beyond this


class _Outbox:
    """One session's outbound queue and the thread that sends it, in order. `pending` counts messages queued or
    reserved for an inline send and not yet sent; an inline send is allowed only when nothing is pending."""

    def __init__(self, session_id: Any, name: str) -> None:
        self.session_id = session_id
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._count = threading.Lock()  # guards `pending`; never held across I/O
        self._sending = threading.Lock()  # held by whoever is sending to this session
        self.pending = 0
        self._thread = threading.Thread(target=self._run, name=f"fix-send {name}", daemon=True)
        self._thread.start()

    def put(self, msg: Any, clock: StageClock | None = None) -> None:
        """Queue `msg`; `clock` (the order's it answers) is stamped acked once QuickFIX has it."""
        with self._count:
            self.pending += 1
        self._queue.put((msg, clock))

    def reserve(self) -> bool:
        """Take the sender for an inline send, if nothing is queued ahead; `release` gives it back."""
        with self._count:
            if self.pending:
                return False
            self.pending += 1
        self._sending.acquire()  # free: nothing is pending, so the sender thread is idle
        return True

    def release(self) -> None:
        self._sending.release()
        with self._count:
            self.pending -= 1

    def close(self, timeout: float | None = None) -> bool:
        """Send everything queued so far, then stop the thread; False if it is still sending after `timeout` s
        (a counterparty that does not read: closing its connection releases the thread)."""
        self._queue.put(None)
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            msg, clock = item
            with self._sending:
                sent = send(msg, self.session_id)
            if sent and clock is not None:
                clock.acked()
            with self._count:
                self.pending -= 1


def send(msg: Any, session_id: Any) -> bool:
    """Hand `msg` to QuickFIX (sent now, or stored for resend when the session is not logged on); False when the
    session is gone."""
    try:
        fix.Session.sendToTarget(msg, session_id)
    except fix.SessionNotFound:  # the acceptor stopped while this was still queued
        log.error("report not sent, session gone: %s", msg.toString().replace("\x01", "|"))
        return False
    return True


class _Replies:
    """What one callback sends: its own session's answers inline when that session has nothing queued, the rest
    (and everything once one message had to queue) through the outboxes."""

    def __init__(self, current: str, outboxes: dict[str, _Outbox]) -> None:
        self._current = current
        self._outboxes = outboxes
        self._inline: list[tuple[Any, StageClock | None]] = []
        self._reserved: _Outbox | None = None
        self._decided = False

    def send(self, name: str, msg: Any, clock: StageClock | None = None) -> None:
        outbox = self._outboxes[name]
        if name == self._current:
            if not self._decided:
                self._decided = True
                self._reserved = outbox if outbox.reserve() else None
            if self._reserved is not None:
                self._inline.append((msg, clock))
                return
        outbox.put(msg, clock)

    def flush(self) -> None:
        """Send the inline answers (stamping the clock an answer carries once QuickFIX has it); call after
        releasing the gateway lock."""
        if self._reserved is None:
            return
        try:
            session_id = self._reserved.session_id
            for msg, clock in self._inline:
                if send(msg, session_id) and clock is not None:
                    clock.acked()
        finally:
            self._reserved.release()


class FixGateway:
    """QuickFIX acceptor sessions translating to and from one OrderManager."""

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
    ) -> None:
        """`generation` makes this start's report ids unique: pass a number no earlier start used. The gateway
        drives `host.engine` under `host.lock` and reports what every step of any adapter did to its sessions.
        `throttle` limits each session's order messages (NewOrderSingle, cancel, replace) per sliding window: one
        over the limit is refused with SESSION_RATE (an ExecutionReport Rejected, or an OrderCancelReject) and books
        nothing."""
        self._host = host
        self._throttle = throttle
        self.engine = host.engine
        self.port = port
        self.lock = host.lock
        self._current: tuple[str, str] | None = None  # (session, Side) of the message being answered
        self._metrics = host.metrics
        self._timing: tuple[StageClock, str] | None = None  # the clock and ClOrdID of the order being answered
        self._awaiting: dict[int, StageClock] = {}  # by order id: orders at a venue that answers later
        self._instruments = instruments
        self._specs = {s.name: s for s in sessions}
        self._codecs = {name: _CODECS[s.begin_string](instruments, s) for name, s in self._specs.items()}
        self._drop_copies = [name for name, s in self._specs.items() if s.drop_copy]
        self._session_ids: dict[str, Any] = {
            name: fix.SessionID(s.begin_string, s.sender_comp_id, s.target_comp_id) for name, s in self._specs.items()
        }
        self._data_dir = Path(data_dir)
        self._generation = generation
        self._report_seq = itertools.count(1)
        self._clock = clock
        self._acceptor: Any = None
        self._application: Any = None
        self._outboxes: dict[str, _Outbox] = {}
        self._replies: _Replies | None = None  # set only while a callback holds the lock
        self._factories: tuple[Any, ...] = ()

    # -- LIFECYCLE --

    def start(self) -> None:
        """Listen on `port`; returns once the acceptor is up (QuickFIX reads each connection on its own thread)."""
        settings = quickfix_settings(self._specs.values(), self.port, self._data_dir)
        self._application = GatewayApplication(self)
        # QuickFIX keeps references to the factories (not copies): they must live as long as the acceptor
        self._factories = (settings, fix.FileStoreFactory(settings), fix.FileLogFactory(settings))
        self._outboxes = {name: _Outbox(sid, name) for name, sid in self._session_ids.items()}
        self._host.subscribe(self._on_reports)
        try:
            acceptor = fix.ThreadedSocketAcceptor(self._application, self._factories[1], settings, self._factories[2])
            acceptor.start()
        except (fix.ConfigError, fix.RuntimeError) as exc:
            self._host.unsubscribe(self._on_reports)
            self._close_outboxes()
            raise OSError(f"FIX acceptor on port {self.port}: {exc}") from exc
        self._acceptor = acceptor

    def stop(self, cancel_working: bool = True) -> None:
        """Cancel every working order of the FIX sessions (reason SHUTDOWN: the book goes with the process), send
        those reports, log every session out and close the port. Safe to call twice."""
        if self._acceptor is None:
            return
        if cancel_working:
            with self.lock:
                now = self._clock()
                for name in self._specs:
                    self.engine.mass_cancel(name, None, now, CancelReason.SHUTDOWN)
                self._host.publish()
            self._await_cancels(deadline=time.monotonic() + 5.0)
        # every report goes to QuickFIX (sent, or stored for resend) before logout, unless a counterparty that
        # stopped reading holds its sender: closing the connections below releases it
        with self.lock:  # from here on, reports of venues that answer late are booked but not sent
            self._host.unsubscribe(self._on_reports)
            outboxes, self._outboxes = self._outboxes, {}
        stuck = [o for o in outboxes.values() if not o.close(timeout=2.0)]
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
        self._awaiting.clear()
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
        """Refuse (fix.RejectLogon) a Logon without the session's configured Password."""
        spec = self._specs.get(session_id.toString())
        if spec is None or spec.password is None:
            return
        given = msg.getField(T.PASSWORD) if msg.isSetField(T.PASSWORD) else ""
        if not hmac.compare_digest(given.encode(), spec.password.encode()):
            log.warning("logon refused: bad password", extra={"session": spec.name})
            raise fix.RejectLogon("invalid password")

    # -- APPLICATION MESSAGES (QuickFIX thread) --

    def on_new_order(self, msg: Any, session_id: Any) -> None:
        """NewOrderSingle: an ExecutionReport (New, Rejected, fills) always answers it."""
        name, codec = self._session(session_id)
        if codec is None:
            return self._read_only(msg, session_id)
        clock = self._metrics.clock("fix")
        side = msg.getField(T.SIDE)
        with self._answering(name):
            now = self._clock()
            cl_ord_id = msg.getField(T.CL_ORD_ID)
            if _poss_resend(msg):
                order = self.engine.find(name, cl_ord_id)
                if order is not None:  # already booked: answer with its status, book nothing
                    self._send(codec.status(order, self._report_id(), None, now), name, clock)
                    return None
            cmd = codec.new_order(msg, now)
            if self._throttle is not None and not isinstance(cmd, Refusal):
                reason = self._throttle.check(name, now)
                if reason != RejectReason.NONE:
                    cmd = Refusal(reason, reason_text(reason))
            logging_on = events_log.enabled()
            if isinstance(cmd, Refusal):
                account = msg.getField(T.ACCOUNT) if msg.isSetField(T.ACCOUNT) else ""
                event = OrderRejected(0, cl_ord_id, account, msg.getField(T.SYMBOL), cmd.reason, cmd.text, now)
                self._metrics.reject(cmd.reason)
                if logging_on:
                    events_log.info(
                        "order received", session=name, account=account, cl_ord_id=cl_ord_id, symbol=event.symbol
                    )
                    self._log_event(event, name)
                self._send(codec.report(event, None, None, self._report_id(), side), name, clock)
                return None
            if logging_on:
                events_log.info(
                    "order received", session=name, account=cmd.account, cl_ord_id=cl_ord_id, symbol=cmd.symbol
                )
            self._timing = (clock, cl_ord_id)
            try:
                self.engine.submit(cmd, now, clock)
                self._publish(name, side)
                if self._timing is not None:  # nothing answered it yet: a venue that answers later has it
                    self._await(name, cl_ord_id, clock)
            finally:
                self._timing = None
        return None

    def on_cancel(self, msg: Any, session_id: Any) -> None:
        """OrderCancelRequest: a Canceled ExecutionReport or an OrderCancelReject answers it."""
        self._cancel_or_replace(msg, session_id, "cancel")

    def on_replace(self, msg: Any, session_id: Any) -> None:
        """OrderCancelReplaceRequest: a Replaced ExecutionReport (and any fills) or an OrderCancelReject."""
        self._cancel_or_replace(msg, session_id, "replace")

    def on_status(self, msg: Any, session_id: Any) -> None:
        """OrderStatusRequest: an ExecutionReport with the order's current status (Rejected when unknown)."""
        name, codec = self._session(session_id)
        if codec is None:
            return self._read_only(msg, session_id)
        req_id = msg.getField(T.ORD_STATUS_REQ_ID) if msg.isSetField(T.ORD_STATUS_REQ_ID) else None
        with self._answering(name):
            now = self._clock()
            cl_ord_id = msg.getField(T.CL_ORD_ID)
            order = self.engine.find(name, cl_ord_id)
            if order is None:
                reply = codec.unknown_status(
                    cl_ord_id, msg.getField(T.SYMBOL), msg.getField(T.SIDE), self._report_id(), now
                )
            else:
                reply = codec.status(order, self._report_id(), req_id, now)
            self._send(reply, name)
        return None

    def on_mass_cancel(self, msg: Any, session_id: Any) -> None:
        """OrderMassCancelRequest (FIX 4.4): an OrderMassCancelReport, then a Canceled report per order."""
        name, codec = self._session(session_id)
        if codec is None:
            return self._read_only(msg, session_id)
        request_type = msg.getField(T.MASS_CANCEL_REQUEST_TYPE)
        symbol = msg.getField(T.SYMBOL) if msg.isSetField(T.SYMBOL) else None
        with self._answering(name):
            now = self._clock()
            report_id = self._report_id()
            if request_type not in (T.MASS_CANCEL_BY_SECURITY, T.MASS_CANCEL_ALL) or (
                request_type == T.MASS_CANCEL_BY_SECURITY and symbol is None
            ):
                text = "only MassCancelRequestType 1 (by security, with Symbol) and 7 (all orders) are supported"
                self._send(codec.mass_cancel_report(msg, report_id, None, 0, text, now), name)
                return None
            scope = symbol if request_type == T.MASS_CANCEL_BY_SECURITY else None
            count = len(self.engine.working(name, scope))
            self._send(codec.mass_cancel_report(msg, report_id, request_type, count, "", now), name)
            self.engine.mass_cancel(name, scope, now)
            self._publish(name, "1")
        return None

    def on_unsupported(self, msg: Any, session_id: Any) -> None:
        """Any other application message: BusinessMessageReject, Unsupported Message Type."""
        name, _ = self._session(session_id)
        msg_type = msg.getHeader().getField(T.MSG_TYPE)
        reason = T.BUSINESS_REJECT_UNSUPPORTED_MESSAGE_TYPE
        self._business_reject(msg, name, reason, f"MsgType {msg_type} not supported")

    def on_error(self, msg: Any, session_id: Any, exc: Exception) -> None:
        """A message that broke the gateway: logged with its content and answered, so it is never silently lost."""
        name = session_id.toString()
        log.exception("failed to process %s from %s", msg.toString().replace("\x01", "|"), name, exc_info=exc)
        self._business_reject(msg, name, T.BUSINESS_REJECT_APPLICATION_NOT_AVAILABLE, f"internal error: {exc}")

    # -- REPORTS --

    def _publish(self, current: str, side: str) -> None:
        """Publish the step just taken for session `current`: its answers, and everything it caused elsewhere."""
        self._current = (current, side)
        try:
            self._host.publish()
        finally:
            self._current = None

    def _on_reports(self, reports: Reports) -> None:
        """Send each event of a step (any adapter's) to the FIX session that owns its order, with a copy of every
        ExecutionReport to each drop-copy session. An event of a command refused before it became an order goes
        to the session being answered (`_current`), if any: without one it is another adapter's."""
        engine = self.engine
        current, side = self._current or ("", "1")
        timing, awaiting = self._timing, self._awaiting
        logging_on = events_log.enabled()
        for event, view in reports:
            if isinstance(event, TradePrinted):
                continue
            order_id = event.order_id
            name = engine.session_of.get(order_id, current) if order_id else current
            codec = self._codecs.get(name)
            if codec is None:  # another adapter's order
                continue
            order = engine.orders.get(order_id)
            exec_id = str(event.exec_id) if isinstance(event, OrderFilled) else self._report_id()
            msg = codec.report(event, view, order, exec_id, side)
            if msg is None:
                continue
            clock = None
            if timing is not None and name == current and event.cl_ord_id == timing[1]:  # type: ignore[union-attr]
                clock, timing, self._timing = timing[0], None, None  # the first answer to the order in hand
            elif awaiting and order_id in awaiting:
                clock = awaiting.pop(order_id)
            self._send(msg, name, clock)
            if logging_on:
                self._log_event(event, name)
            if not isinstance(event, CancelRejected):
                self._copy(event, view, order, exec_id, side)

    def _copy(self, event: Message, view: OrderView | None, order: Any, exec_id: str, side: str) -> None:
        for name in self._drop_copies:
            codec = self._codecs[name]
            msg = codec.report(event, view, order, exec_id, side)
            if msg is not None:
                codec.mark_copy(msg)
                self._send(msg, name)

    def _send(self, msg: Any, name: str, clock: StageClock | None = None) -> None:
        if self._replies is not None:
            self._replies.send(name, msg, clock)
        else:
            self._outboxes[name].put(msg, clock)

    def _await(self, name: str, cl_ord_id: str, clock: StageClock) -> None:
        """Keep `clock` until the venue's first answer about the order `cl_ord_id` names, if it is still open."""
        order = self.engine.find(name, cl_ord_id)
        if order is None or order.is_terminal:
            return
        awaiting = self._awaiting
        if len(awaiting) >= AWAITING_MAX:  # a venue that never answers must not grow this without end
            del awaiting[next(iter(awaiting))]
        awaiting[order.order_id] = clock

    @staticmethod
    def _log_event(event: Message, name: str) -> None:
        """The lifecycle line of one event for a FIX session (INFO on `oms.fix`)."""
        what = _LIFECYCLE.get(type(event))
        if what is None:
            return
        fields: dict[str, Any] = {
            "session": name,
            "account": event.account,  # type: ignore[union-attr]
            "cl_ord_id": event.cl_ord_id,  # type: ignore[union-attr]
            "order_id": event.order_id,  # type: ignore[union-attr]
            "symbol": event.symbol,  # type: ignore[union-attr]
        }
        match event:
            case OrderRejected() | CancelRejected():
                fields["reason"] = event.reason.name.lower()
                fields["text"] = event.text
            case OrderFilled():
                fields["exec_id"] = event.exec_id
                fields["venue"] = event.venue
            case OrderCanceled():
                fields["reason"] = event.reason.name.lower()
                if event.orig_cl_ord_id:
                    fields["orig_cl_ord_id"] = event.orig_cl_ord_id
            case OrderReplaced():
                fields["orig_cl_ord_id"] = event.orig_cl_ord_id
        events_log.info(what, **fields)

    @contextmanager
    def _answering(self, current: str) -> Iterator[None]:
        """Hold the gateway lock while answering a message of session `current`; its answers leave after."""
        replies = _Replies(current, self._outboxes)
        try:
            with self.lock:
                self._replies = replies
                try:
                    yield
                finally:
                    self._replies = None
        finally:
            replies.flush()

    def _close_outboxes(self) -> None:
        for outbox in self._outboxes.values():
            outbox.close(timeout=2.0)
        self._outboxes = {}

    def _report_id(self) -> str:
        return f"{self._generation}.{next(self._report_seq)}"

    # -- INTERNALS --

    def _session(self, session_id: Any) -> tuple[str, Codec | None]:
        """The session's name and codec; no codec for a drop-copy session (it sends nothing in)."""
        name = session_id.toString()
        return name, None if name in self._drop_copies else self._codecs[name]

    def _cancel_or_replace(self, msg: Any, session_id: Any, response_to: str) -> None:
        name, codec = self._session(session_id)
        if codec is None:
            return self._read_only(msg, session_id)
        side = msg.getField(T.SIDE)
        with self._answering(name):
            now = self._clock()
            order = self.engine.find(name, msg.getField(T.ORIG_CL_ORD_ID))
            cmd = codec.cancel(msg, order, now) if response_to == "cancel" else codec.replace(msg, order, now)
            if self._throttle is not None and not isinstance(cmd, Refusal):
                reason = self._throttle.check(name, now)
                if reason != RejectReason.NONE:
                    cmd = Refusal(reason, reason_text(reason))
            if isinstance(cmd, Refusal):
                event = CancelRejected(
                    order.order_id if order is not None else 0, msg.getField(T.CL_ORD_ID),
                    msg.getField(T.ORIG_CL_ORD_ID), order.account if order is not None else "",
                    msg.getField(T.SYMBOL), cmd.reason, cmd.text, response_to, now,  # type: ignore[arg-type]
                )  # fmt: skip
                self._send(codec.cancel_reject(event, order), name)
                return None
            if response_to == "cancel":
                self.engine.cancel(cmd, now)  # type: ignore[arg-type]
            else:
                self.engine.replace(cmd, now)  # type: ignore[arg-type]
            self._publish(name, side)
        return None

    def _read_only(self, msg: Any, session_id: Any) -> None:
        self._business_reject(
            msg, session_id.toString(), T.BUSINESS_REJECT_UNSUPPORTED_MESSAGE_TYPE, "drop-copy session is read-only"
        )

    def _business_reject(self, msg: Any, name: str, reason: str, text: str) -> None:
        header = msg.getHeader()
        reply = self._codecs[name].business_reject(
            header.getField(T.MSG_SEQ_NUM), header.getField(T.MSG_TYPE), reason, text
        )
        with self._answering(name):
            self._send(reply, name)


def _poss_resend(msg: Any) -> bool:
    header = msg.getHeader()
    return header.isSetField(T.POSS_RESEND) and header.getField(T.POSS_RESEND) == "Y"
