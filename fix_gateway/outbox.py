"""Each FIX session's way out: its own queue and sender thread, and the inline send of a callback's own answers.

Each session's outbox is drained by its own sender thread into `Session.sendToTarget` (which releases the GIL). The
answers to a session's own message skip that hop when its outbox is empty: the callback reserves the session's sender
under the core's lock and sends them itself after releasing it (`Replies`), so they still leave in the order the engine
produced them. A counterparty that stops reading therefore blocks only its own sender (or its own reader thread) and
grows only its own outbox; the lock and every other session go on. A report for a session that is not logged on is
stored in its FileStore and delivered by resend at its next logon.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any

import quickfix as fix

from oms.runtime.metrics import StageClock

__all__ = ["Outbox", "Replies", "send"]

log = logging.getLogger("oms.fix")


class Outbox:
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


class Replies:
    """What one callback sends: its own session's answers inline when that session has nothing queued, the rest
    (and everything once one message had to queue) through the outboxes."""

    def __init__(self, current: str, outboxes: dict[str, Outbox]) -> None:
        self._current = current
        self._outboxes = outboxes
        self._inline: list[tuple[Any, StageClock | None]] = []
        self._reserved: Outbox | None = None
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
