"""Each FIX session's way out: its own queue and the thread that sends it.

Each session's outbox is drained by its own sender thread into `Session.sendToTarget` (which releases the GIL), in
the order the messages were put; a `Draft` (what the codecs build on the sequence) becomes a QuickFIX message here,
off the sequence. A counterparty that stops reading therefore blocks only its own sender and grows
only its own outbox; the sequencer, the reader threads and every other session go on. A report for a session that is
not logged on is stored in its FileStore and delivered by resend at its next logon.

BATCHES. An outbox made with `linger` (a drop copy's, which sleeps 50 ms: `fix_gateway.reports`) calls it after the
first message it is given, then sends everything queued by then: its thread wakes, and takes the GIL, a few times a
second instead of at every report, and not in the instant the client's sender answers the order.

MARKS. `mark(seq)` queues a note that every answer to the counterparty's messages up to MsgSeqNum `seq` has been put
before it; once the sender has handed those to QuickFIX (which stores each before sending it), it reports `seq` to
`on_mark`. So a mark never runs ahead of an answer that could still be lost with the process (`FixGateway`).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

import quickfix as fix

from fix_gateway.fields import Draft
from oms.runtime.metrics import StageClock

__all__ = ["Outbox", "send"]

log = logging.getLogger("oms.fix")


class Outbox:
    """One session's outbound queue and the thread that sends it, in order."""

    def __init__(
        self, session_id: Any, name: str, on_mark: Callable[[int], None] | None = None,
        linger: Callable[[], None] | None = None,
    ) -> None:  # fmt: skip
        """`on_mark(seq)` runs on the sender thread for each mark reached (see MARKS); `linger`: see BATCHES."""
        self.session_id = session_id
        self._on_mark = on_mark
        self._linger = linger
        self._queue: queue.SimpleQueue[tuple[Any, StageClock | None, int] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=f"fix-send {name}", daemon=True)
        self._thread.start()

    def put(self, msg: Any, clock: StageClock | None = None) -> None:
        """Queue `msg`; `clock` (the order's it answers) is stamped acked once QuickFIX has it."""
        self._queue.put((msg, clock, 0))

    def mark(self, seq: int) -> None:
        """Queue the mark `seq`: reported to `on_mark` once everything queued before it is with QuickFIX."""
        self._queue.put((None, None, seq))

    def pending(self) -> int:
        """Messages queued and not yet taken for sending (a lingering outbox's batch in hand is not counted)."""
        return self._queue.qsize()

    def close(self, timeout: float | None = None) -> bool:
        """Send everything queued so far, then stop the thread; False if it is still sending after `timeout` s
        (a counterparty that does not read: closing its connection releases the thread)."""
        self._queue.put(None)
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        get, linger = self._queue.get, self._linger
        while True:
            items = [get()]
            if linger is not None:
                linger()
                items += [get() for _ in range(self._queue.qsize())]  # this thread alone takes from the queue
            for item in items:
                if item is None:
                    return
                msg, clock, seq = item
                if msg is None:
                    if self._on_mark is not None:
                        self._on_mark(seq)
                elif send(msg, self.session_id) and clock is not None:
                    clock.acked()


def send(msg: Any, session_id: Any) -> bool:
    """Hand `msg` (a QuickFIX message or a `Draft`) to QuickFIX (sent now, or stored for resend when the session is not
    logged on); False when the session is gone."""
    if isinstance(msg, Draft):
        try:
            msg = msg.message()
        except ValueError:  # a value holding SOH would forge fields: never sent, logged with the draft
            log.exception("report not sent, a field holds the separator: %r", msg)
            return False
    try:
        fix.Session.sendToTarget(msg, session_id)
    except fix.SessionNotFound:  # the acceptor stopped while this was still queued
        log.error("report not sent, session gone: %s", msg.toString().replace("\x01", "|"))
        return False
    return True
