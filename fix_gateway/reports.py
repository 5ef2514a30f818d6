"""The report fan-out: what every step of the core did, to the FIX sessions it concerns.

The gateway subscribes to the sequencer (`oms.runtime.sequencer.Sequencer`), so each step's reports reach it whichever
adapter's step it was (a REST order that fills a FIX client's resting order, a venue's fill). Each event goes to the
outbox of the FIX session that owns its order, with a copy of every ExecutionReport to each drop-copy session. What a
batch of steps sends is held until the sequencer has committed the batch's write-ahead (`after_commit`), so no
client sees an ack that is not durable; each session's outbox then sends it from its own thread
(`fix_gateway.outbox`), so a slow counterparty holds up only itself.

OBSERVABILITY
Each NewOrderSingle starts a `StageClock` (`oms.runtime.metrics`, counted as an order in on channel `fix`) that the
engine stamps at the risk decision and after the venue, and that the first report answering the order carries to
QuickFIX: stamped when its batch is sealed and when the batch is durable, and once `sendToTarget` returned, its
stages go into the histograms. For a venue that answers later the clock waits, by order id, for the venue's first
word. Each order received is logged at INFO on `oms.fix` with session, account and ClOrdID; what happens to it next
(acked, rejected with reason, filled, canceled, replaced, expired) is logged by the sequencer on `oms.orders` for
every channel alike (`oms.runtime.logs`).

IDS
OrderID is the OMS's order id (unique across restarts: each start has its own id range, see `OmsApp`). A fill's
ExecID is its execution id (the venue's, also per-start); every other ExecutionReport's ExecID is
`<generation>.<n>`, which never collides with a fill's (that one has no dot). Resent reports come from the
FileStore byte for byte, so ids are stable across restarts.
"""

from __future__ import annotations

import functools
import itertools
import logging
import time
from collections.abc import Callable
from typing import Any

from fix_gateway.codec import Codec
from fix_gateway.fields import Draft
from fix_gateway.outbox import Outbox
from oms.core.model.messages import (
    CancelRejected,
    Message,
    OrderFilled,
    TradePrinted,
)
from oms.core.orders import Order, OrderView
from oms.runtime.logs import EventLog
from oms.runtime.metrics import StageClock
from oms.runtime.sequencer import Reports, Sequencer

__all__ = ["ReportRouter", "events_log"]

events_log = EventLog(logging.getLogger("oms.fix"))

DROP_COPY_LINGER_S = 0.05  # a drop copy's outbox sends its copies in batches (`fix_gateway.outbox`, BATCHES)
AWAITING_MAX = 100_000  # clocks of orders waiting for a venue's first answer; the oldest go beyond this


class ReportRouter:
    """Sends the core's reports to the FIX sessions (`codecs`, by session name) that own their orders, through each
    session's outbox, once the batch that produced them is committed."""

    def __init__(
        self, host: Sequencer, codecs: dict[str, Codec], generation: int,
        on_mark: Callable[[str, int], None] | None = None,
    ) -> None:  # fmt: skip
        """`generation` makes this start's report ids unique: pass a number no earlier start used. `on_mark(session,
        seq)`: every answer to that session's messages up to MsgSeqNum `seq` is with QuickFIX (`mark`)."""
        self._host = host
        self._engine = host.engine
        self._codecs = codecs
        self._drop_copies = [name for name, codec in codecs.items() if codec.spec.drop_copy]
        self._generation = generation
        self._report_seq = itertools.count(1)
        self._outboxes: dict[str, Outbox] = {}
        self._held: list[tuple[str, Any, StageClock | None]] = []  # sent by the batch running, not yet committed
        self._marks: dict[str, int] = {}  # the running batch's last answered MsgSeqNum, per session
        self._on_mark = on_mark
        self._current: tuple[str, str] | None = None  # (session, Side) of the message being answered
        self._timing: tuple[StageClock, str] | None = None  # the clock and ClOrdID of the order being answered
        self._awaiting: dict[int, StageClock] = {}  # by order id: orders at a venue that answers later

    # -- LIFECYCLE --

    def open(self, session_ids: dict[str, Any]) -> None:
        """Start a sender for each session (`session_ids`, QuickFIX's, by name) and hear every step from now on."""
        on_mark = self._on_mark
        linger = {name: functools.partial(time.sleep, DROP_COPY_LINGER_S) for name in self._drop_copies}
        self._outboxes = {
            name: Outbox(sid, name, None if on_mark is None else functools.partial(on_mark, name), linger.get(name))
            for name, sid in session_ids.items()
        }
        self._host.subscribe(self._on_reports, "fix")
        self._host.after_commit(self._seal)

    def close(self) -> list[Outbox]:
        """Hear no more steps (reports of venues that answer late are booked but not sent from here on), then send
        what each outbox holds, 2 s at most each. Returns the outboxes still sending: a counterparty that stopped
        reading holds its sender until its connection is closed; close them after that."""
        with self._host.lock:
            self._host.unsubscribe(self._on_reports)
            self._host.remove_after_commit(self._seal)
            self._host.wait_committed()  # every batch sealed so far is in the outboxes
            outboxes, self._outboxes = self._outboxes, {}
            self._awaiting.clear()
        return [outbox for outbox in outboxes.values() if not outbox.close(timeout=2.0)]

    # -- ANSWERING A SESSION'S MESSAGE (on the sequence) --

    def send(self, msg: Any, name: str, clock: StageClock | None = None) -> None:
        """Send `msg` to session `name` once the running batch is committed; `clock` is stamped acked once
        QuickFIX has it."""
        self._held.append((name, msg, clock))

    def mark(self, name: str, seq: int) -> None:
        """On the sequence: the message MsgSeqNum `seq` of session `name` has been answered by the running step.
        Once the batch is durable and those answers are with QuickFIX, `on_mark` hears of it."""
        if self._on_mark is not None:
            self._marks[name] = seq

    def send_now(self, msg: Any, name: str) -> None:
        """Send `msg` (an answer that records nothing: a business reject, a shed order) to session `name` now,
        from any thread."""
        outbox = self._outboxes.get(name)
        if outbox is not None:
            outbox.put(msg)

    def publish(self, current: str, side: str, timing: tuple[StageClock, str] | None = None) -> None:
        """Publish the step just taken for session `current` (`side`: the Side of its message, for reports of
        commands refused before they became orders): its answers, and everything it caused elsewhere. `timing`, the
        clock and ClOrdID of an order just submitted, goes with the first report that answers the order, or waits
        for the venue's first answer when nothing did."""
        self._current, self._timing = (current, side), timing
        try:
            self._host.publish()
            if self._timing is not None:  # nothing answered it yet: a venue that answers later has it
                clock, cl_ord_id = self._timing
                self._await(current, cl_ord_id, clock)
        finally:
            self._current = self._timing = None

    def report_id(self) -> str:
        """The ExecID of a report that is not a fill: `<generation>.<n>`."""
        return f"{self._generation}.{next(self._report_seq)}"

    def _seal(self) -> Callable[[], None] | None:
        """What the batch just run sent, to hand to the sessions' outboxes (in order) once the batch is durable."""
        if not self._held and not self._marks:
            return None
        held, self._held = self._held, []
        marks, self._marks = self._marks, {}
        outboxes = self._outboxes
        clocks = [clock for _, _, clock in held if clock is not None]
        for clock in clocks:
            clock.sealed()

        def release() -> None:
            for clock in clocks:
                clock.durable()
            for name, msg, clock in held:
                outbox = outboxes.get(name)
                if outbox is not None:
                    outbox.put(msg, clock)
            for name, seq in marks.items():  # after the batch's answers, in each session's queue
                outbox = outboxes.get(name)
                if outbox is not None:
                    outbox.mark(seq)

        return release

    # -- FAN-OUT --

    def _on_reports(self, reports: Reports) -> None:
        """Send each event of a step (any adapter's) to the FIX session that owns its order, with a copy of every
        ExecutionReport to each drop-copy session. An event of a command refused before it became an order goes
        to the session being answered (`_current`), if any: without one it is another adapter's."""
        engine = self._engine
        current, side = self._current or ("", "1")
        timing, awaiting = self._timing, self._awaiting
        for event, view in reports:
            if isinstance(event, TradePrinted):
                continue
            order_id = event.order_id
            name = engine.session_of.get(order_id, current) if order_id else current
            codec = self._codecs.get(name)
            if codec is None:  # another adapter's order
                continue
            order = engine.orders.get(order_id)
            exec_id = str(event.exec_id) if isinstance(event, OrderFilled) else self.report_id()
            msg = codec.report(event, view, order, exec_id, side)
            if msg is None:
                continue
            clock = None
            if timing is not None and name == current and event.cl_ord_id == timing[1]:  # type: ignore[union-attr]
                clock, timing, self._timing = timing[0], None, None  # the first answer to the order in hand
            elif awaiting and order_id in awaiting:
                clock = awaiting.pop(order_id)
            self.send(msg, name, clock)
            if not isinstance(event, CancelRejected):
                self._copy(msg, codec, event, view, order, exec_id, side)

    def _copy(
        self, msg: Draft, codec: Codec, event: Message, view: OrderView | None, order: Order | None, exec_id: str,
        side: str,
    ) -> None:
        """A copy of the report `msg` (which `codec` made) to every drop-copy session: the same draft where the
        session speaks the same FIX version, else its own codec's report of the event."""
        for name in self._drop_copies:
            drop = self._codecs[name]
            copy = msg.copy() if type(drop) is type(codec) else drop.report(event, view, order, exec_id, side)
            if copy is not None:
                drop.mark_copy(copy)
                self.send(copy, name)

    def _await(self, name: str, cl_ord_id: str, clock: StageClock) -> None:
        """Keep `clock` until the venue's first answer about the order `cl_ord_id` names, if it is still open."""
        order = self._engine.find(name, cl_ord_id)
        if order is None or order.is_terminal:
            return
        awaiting = self._awaiting
        if len(awaiting) >= AWAITING_MAX:  # a venue that never answers must not grow this without end
            del awaiting[next(iter(awaiting))]
        awaiting[order.order_id] = clock

