"""The FIX sessions' application messages: each one decoded, run as a command in the core's sequence and answered.

`GatewayApplication` routes each message here by (BeginString, MsgType), on the reader thread of its connection. The
reader thread copies the message and hands it to the sequencer (`oms.runtime.sequencer.Sequencer.post`) without
waiting, then reads the next one; on the sequencer's thread the handler decodes it and drives the OrderManager, and
the report fan-out (`fix_gateway.reports`) sends every answer to the session it is for once the batch is committed.
A failure there is answered with a BusinessMessageReject. A drop-copy session may send nothing: its messages get a
BusinessMessageReject.

OVERLOAD. A NewOrderSingle is refused on the reader thread with SYSTEM_BUSY (an ExecutionReport Rejected,
OrdRejReason 0, nothing booked) while its answer would wait longer than `max_delay_s` for the sequencer and the
journal, or while more than `max_waiting` commands wait for the sequencer (`Sequencer.overloaded`; the REST API
refuses new orders on the same bound). The wait is read off the order path as it is now (`Sequencer.lag_s`): the
commands waiting for the sequencer times its recent time per command, plus how long the oldest batch not yet
committed has waited for its write-ahead. So past capacity, and while the journal slows down (long before it counts
as unavailable, below), every order is still answered within about `max_delay_s` and the queues stay bounded.
Cancels, replaces and status requests are never shed: they take risk off, or only read.

JOURNAL DOWN. While the committer has been on one write-ahead for more than MAX_JOURNAL_STALL_S (Redis stopped,
gone, or too slow), a NewOrderSingle is refused on the reader thread with JOURNAL_UNAVAILABLE, and a cancel or
replace on the sequence with an OrderCancelReject (CxlRejReason 2, the same Text), sent at once rather than behind
the stalled write; nothing is booked. A NewOrderSingle that comes while the sequencer has been on one batch for as
long (a step waiting on an account actor whose journal stalled) is refused SYSTEM_BUSY the same way. What was taken
before the stall is answered once the write lands. Order entry resumes by itself when the journal answers again.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import quickfix as fix

from fix_gateway import tags as T
from fix_gateway.codec import Codec, Refusal
from fix_gateway.fields import Received
from fix_gateway.reports import ReportRouter, events_log
from oms.core.model.enums import RejectReason
from oms.core.model.messages import CancelOrder, CancelRejected, OrderRejected, ReplaceOrder, SubmitOrder
from oms.runtime.logs import log_order_event
from oms.runtime.metrics import StageClock
from oms.runtime.sequencer import MAX_DELAY_S, MAX_JOURNAL_STALL_S, MAX_WAITING, Sequencer
from risk.reasons import describe as reason_text
from risk.throttle import SessionThrottle

__all__ = ["OrderHandlers"]

log = logging.getLogger("oms.fix")

C = TypeVar("C", SubmitOrder, CancelOrder, ReplaceOrder)
Body = Callable[[Any, str], None]

_FAILURES = itertools.count(1)  # the references of failures logged server-side


class OrderHandlers:
    """One handler per application message the FIX sessions (`codecs`, by session name) may send, each answered
    through `reports`."""

    def __init__(
        self,
        host: Sequencer,
        codecs: dict[str, Codec],
        reports: ReportRouter,
        clock: Callable[[], int],
        throttle: SessionThrottle | None,
        max_waiting: int = MAX_WAITING,
        max_delay_s: float = MAX_DELAY_S,
    ) -> None:
        """`throttle` limits each session's order messages (NewOrderSingle, cancel, replace) per sliding window:
        one over the limit is refused with SESSION_RATE (an ExecutionReport Rejected, or an OrderCancelReject) and
        books nothing. `max_waiting`, `max_delay_s`: see OVERLOAD in the module text."""
        self.host = host
        self.engine = host.engine
        self.lock = host.lock
        self._metrics = host.metrics
        self._codecs = codecs
        self._reports = reports
        self._clock = clock
        self._throttle = throttle
        self._max_waiting = max_waiting
        self._max_delay_s = max_delay_s

    # -- ON THE READER THREAD: hand the message to the sequencer --

    def on_new_order(self, msg: Any, session_id: Any) -> None:
        """NewOrderSingle: an ExecutionReport (New, Rejected, fills) always answers it."""
        name = session_id.toString()
        host = self.host
        if not self._codecs[name].spec.drop_copy:
            reason = host.stalled()
            if reason is RejectReason.NONE and host.overloaded(self._max_delay_s, self._max_waiting):
                reason = RejectReason.SYSTEM_BUSY
            if reason is not RejectReason.NONE:
                return self._shed(msg, name, reason)
        clock = self._metrics.clock("fix")  # the order's time in starts now, on the reader thread
        self._post(lambda m, n: self._new_order(m, n, clock), msg, name)

    def on_cancel(self, msg: Any, session_id: Any) -> None:
        """OrderCancelRequest: a Canceled ExecutionReport or an OrderCancelReject answers it."""
        self._post(lambda m, n: self._cancel_or_replace(m, n, "cancel"), msg, session_id.toString())

    def on_replace(self, msg: Any, session_id: Any) -> None:
        """OrderCancelReplaceRequest: a Replaced ExecutionReport (and any fills) or an OrderCancelReject."""
        self._post(lambda m, n: self._cancel_or_replace(m, n, "replace"), msg, session_id.toString())

    def on_status(self, msg: Any, session_id: Any) -> None:
        """OrderStatusRequest: an ExecutionReport with the order's current status (Rejected when unknown)."""
        self._post(self._status, msg, session_id.toString())

    def on_mass_cancel(self, msg: Any, session_id: Any) -> None:
        """OrderMassCancelRequest (FIX 4.4): an OrderMassCancelReport, then a Canceled report per order."""
        self._post(self._mass_cancel, msg, session_id.toString())

    def on_bad_field(self, msg: Any, session_id: Any, tag: int, text: str) -> None:
        """A field out of its bounds (`fix_gateway.codec.field_problem`): Reject (3), SessionRejectReason 5 (value
        incorrect for this tag), RefTagID the field; nothing else is done with the message."""
        self._session_reject(msg, session_id.toString(), tag, T.SESSION_REJECT_VALUE_INCORRECT, text)

    def on_unsupported(self, msg: Any, session_id: Any) -> None:
        """Any other application message: BusinessMessageReject, Unsupported Message Type."""
        name = session_id.toString()
        msg_type = msg.getHeader().getField(T.MSG_TYPE)
        reason = T.BUSINESS_REJECT_UNSUPPORTED_MESSAGE_TYPE
        self._business_reject(msg, name, reason, f"MsgType {msg_type} not supported")

    def on_error(self, msg: Any, session_id: Any, exc: Exception) -> None:
        """A message that broke the gateway: logged with its content and answered, so it is never silently lost."""
        self._failed(msg, session_id.toString(), exc)

    def _post(self, body: Body, msg: Any, name: str) -> None:
        """Run `body(copy of msg, name)` in the core's sequence, then mark the message answered (`ReportRouter.mark`);
        a failure there is answered (`_failed`)."""
        copy = msg if isinstance(msg, Received) else fix.Message(msg)  # QuickFIX owns its message only until now
        header = msg.getHeader()
        seq = int(header.getField(T.MSG_SEQ_NUM)) if header.isSetField(T.MSG_SEQ_NUM) else 0  # 0: not a session's
        reports = self._reports

        def step(_: Any) -> None:
            try:
                body(copy, name)
            finally:
                if seq:
                    reports.mark(name, seq)

        self.host.post(step, lambda exc: self._failed(copy, name, exc))

    def _shed(self, msg: Any, name: str, reason: RejectReason) -> None:
        """Refuse a NewOrderSingle unseen (SYSTEM_BUSY, JOURNAL_UNAVAILABLE): answered from here, nothing booked."""
        account = msg.getField(T.ACCOUNT) if msg.isSetField(T.ACCOUNT) else ""
        event = OrderRejected(0, msg.getField(T.CL_ORD_ID), account, msg.getField(T.SYMBOL), reason,
                              reason_text(reason), self._clock())  # fmt: skip
        self._metrics.reject(reason)
        reports = self._reports
        reports.send_now(self._codecs[name].report(event, None, None, reports.report_id(), msg.getField(T.SIDE)), name)

    # -- ON THE SEQUENCE: decode, drive the engine, answer --

    def _new_order(self, msg: Any, name: str, clock: StageClock) -> None:
        codec = self._codec(name)
        if codec is None:
            return self._read_only(msg, name)
        side = msg.getField(T.SIDE)
        reports = self._reports
        now = self._clock()
        cl_ord_id = msg.getField(T.CL_ORD_ID)
        if _maybe_seen(msg):
            order = self.engine.find(name, cl_ord_id)
            if order is not None:  # already booked (in this run or an earlier one): its status, nothing booked
                reports.send(codec.status(order, reports.report_id(), None, now), name, clock)
                return None
        cmd = self._throttled(codec.new_order(msg, now), name, now)
        logging_on = events_log.enabled()
        if isinstance(cmd, Refusal):
            account = msg.getField(T.ACCOUNT) if msg.isSetField(T.ACCOUNT) else ""
            event = OrderRejected(0, cl_ord_id, account, msg.getField(T.SYMBOL), cmd.reason, cmd.text, now)
            self._metrics.reject(cmd.reason)
            if logging_on:
                events_log.info(
                    "order received", session=name, account=account, cl_ord_id=cl_ord_id, symbol=event.symbol
                )
                log_order_event(event, name)  # refused before the engine saw it: logged here
            reports.send(codec.report(event, None, None, reports.report_id(), side), name, clock)
            return None
        if logging_on:
            events_log.info("order received", session=name, account=cmd.account, cl_ord_id=cl_ord_id, symbol=cmd.symbol)
        self.engine.submit(cmd, now, clock)
        reports.publish(name, side, (clock, cl_ord_id))
        return None

    def _status(self, msg: Any, name: str) -> None:
        codec = self._codec(name)
        if codec is None:
            return self._read_only(msg, name)
        req_id = msg.getField(T.ORD_STATUS_REQ_ID) if msg.isSetField(T.ORD_STATUS_REQ_ID) else None
        reports = self._reports
        now = self._clock()
        cl_ord_id = msg.getField(T.CL_ORD_ID)
        order = self.engine.find(name, cl_ord_id)
        if order is None:
            symbol, side = msg.getField(T.SYMBOL), msg.getField(T.SIDE)
            reply = codec.unknown_status(cl_ord_id, symbol, side, reports.report_id(), req_id, now)
        else:
            reply = codec.status(order, reports.report_id(), req_id, now)
        reports.send(reply, name)
        return None

    def _mass_cancel(self, msg: Any, name: str) -> None:
        codec = self._codec(name)
        if codec is None:
            return self._read_only(msg, name)
        request_type = msg.getField(T.MASS_CANCEL_REQUEST_TYPE)
        symbol = msg.getField(T.SYMBOL) if msg.isSetField(T.SYMBOL) else None
        reports = self._reports
        now = self._clock()
        report_id = reports.report_id()
        if request_type not in (T.MASS_CANCEL_BY_SECURITY, T.MASS_CANCEL_ALL) or (
            request_type == T.MASS_CANCEL_BY_SECURITY and symbol is None
        ):
            text = "only MassCancelRequestType 1 (by security, with Symbol) and 7 (all orders) are supported"
            reports.send(codec.mass_cancel_report(msg, report_id, None, 0, text, now), name)
            return None
        scope = symbol if request_type == T.MASS_CANCEL_BY_SECURITY else None
        count = len(self.engine.working(name, scope))
        reports.send(codec.mass_cancel_report(msg, report_id, request_type, count, "", now), name)
        self.engine.mass_cancel(name, scope, now)
        reports.publish(name, "1")
        return None

    def _cancel_or_replace(self, msg: Any, name: str, response_to: str) -> None:
        codec = self._codec(name)
        if codec is None:
            return self._read_only(msg, name)
        side = msg.getField(T.SIDE)
        reports = self._reports
        now = self._clock()
        if _maybe_seen(msg):
            done = self.engine.find(name, msg.getField(T.CL_ORD_ID))
            if done is not None:  # this request was taken already: the order's status, nothing sent twice
                reports.send(codec.status(done, reports.report_id(), None, now), name)
                return None
        order = self.engine.find(name, msg.getField(T.ORIG_CL_ORD_ID))
        decoded = codec.cancel(msg, order, now) if response_to == "cancel" else codec.replace(msg, order, now)
        cmd = self._throttled(decoded, name, now)
        journal_down = self.host.journal_stalled_s() > MAX_JOURNAL_STALL_S
        if journal_down and not isinstance(cmd, Refusal):
            cmd = Refusal(RejectReason.JOURNAL_UNAVAILABLE, reason_text(RejectReason.JOURNAL_UNAVAILABLE))
        if isinstance(cmd, Refusal):
            event = CancelRejected(
                order.order_id if order is not None else 0, msg.getField(T.CL_ORD_ID),
                msg.getField(T.ORIG_CL_ORD_ID), order.account if order is not None else "",
                msg.getField(T.SYMBOL), cmd.reason, cmd.text, response_to, now,  # type: ignore[arg-type]
            )  # fmt: skip
            reply = codec.cancel_reject(event, order)
            if journal_down:  # a refusal needs no journal: it is not held behind the stalled write
                reports.send_now(reply, name)
            else:
                reports.send(reply, name)
            return None
        if response_to == "cancel":
            self.engine.cancel(cmd, now)  # type: ignore[arg-type]
        else:
            self.engine.replace(cmd, now)  # type: ignore[arg-type]
        reports.publish(name, side)
        return None

    def _failed(self, msg: Any, name: str, exc: Exception) -> None:
        """A field the OMS needs that is missing: Reject (3), SessionRejectReason 1, RefTagID the field. Anything
        else: the whole story (message, traceback) goes to the log under a reference; the client gets the reference
        and the kind of failure, never the exception's text (paths, hosts, another component's traceback)."""
        if isinstance(exc, fix.FieldNotFound):  # a field the OMS needs and the data dictionary does not require
            text = f"Required tag missing: {exc.field}"
            return self._session_reject(msg, name, exc.field, T.SESSION_REJECT_REQUIRED_TAG_MISSING, text)
        ref = f"E{next(_FAILURES)}"
        log.exception("failed to process %s from %s [%s]", msg.toString().replace("\x01", "|"), name, ref,
                      exc_info=exc)  # fmt: skip
        text = f"internal error ({type(exc).__name__}): not processed; logged as {ref}"
        self._business_reject(msg, name, T.BUSINESS_REJECT_APPLICATION_NOT_AVAILABLE, text)

    # -- INTERNALS --

    def _codec(self, name: str) -> Codec | None:
        """The session's codec; None for a drop-copy session (it sends nothing in)."""
        codec = self._codecs[name]
        return None if codec.spec.drop_copy else codec

    def _throttled(self, cmd: C | Refusal, name: str, now: int) -> C | Refusal:
        """`cmd`, or its refusal when it is an order message of session `name` beyond the session's
        rate limit; a refusal already stays as it is, and counts for nothing."""
        if self._throttle is None or isinstance(cmd, Refusal):
            return cmd
        reason = self._throttle.check(name, now)
        return cmd if reason == RejectReason.NONE else Refusal(reason, reason_text(reason))

    def _read_only(self, msg: Any, name: str) -> None:
        self._business_reject(msg, name, T.BUSINESS_REJECT_UNSUPPORTED_MESSAGE_TYPE, "drop-copy session is read-only")

    def _session_reject(self, msg: Any, name: str, tag: int, reason: str, text: str) -> None:
        header = msg.getHeader()
        reply = self._codecs[name].session_reject(
            header.getField(T.MSG_SEQ_NUM), header.getField(T.MSG_TYPE), tag, reason, text
        )
        self._reports.send_now(reply, name)

    def _business_reject(self, msg: Any, name: str, reason: str, text: str) -> None:
        header = msg.getHeader()
        reply = self._codecs[name].business_reject(
            header.getField(T.MSG_SEQ_NUM), header.getField(T.MSG_TYPE), reason, text
        )
        self._reports.send_now(reply, name)


def _maybe_seen(msg: Any) -> bool:
    """PossResend (the client sends it again under a new MsgSeqNum) or PossDupFlag (the same MsgSeqNum sent again,
    e.g. answering this side's ResendRequest after a restart): it may have been processed already."""
    header = msg.getHeader()
    return any(header.isSetField(tag) and header.getField(tag) == "Y" for tag in (T.POSS_RESEND, T.POSS_DUP_FLAG))
