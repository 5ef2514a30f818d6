"""Sequencer: the one owner of the OrderManager; every adapter (FIX, REST, algos, venues that answer later) drives
the core through it and hears of every step from it.

Today it sequences commands with a lock taken on the caller's thread: whoever drives the engine holds the lock, and
after each step the host hands that step's reports (every event, with the order's view right after it, see
`OrderManager.take_reports`) to every subscriber, in order, still under the lock. So each adapter hears about every
event once, whichever adapter's command caused it: a REST order that fills against a FIX client's resting order reaches
the FIX session, and the FIX gateway never drains reports that another adapter needs. A venue that answers later is
started with `apply_venue`: its translation of each answer runs in the same sequence (the Venue port's contract,
`oms.core.engine.Venue`), so it never takes the lock itself.

The host also counts what it publishes into the process's hot-path metrics (`oms.runtime.metrics`): acks, fills by venue
and rejects by reason, whichever adapter's order they belong to. Adapters that time their orders reach the same metrics
as `host.metrics` (`host.metrics.clock("rest")`, passed to `OrderManager.submit`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TypeVar

from oms.core.engine import OrderManager, VenueStep
from oms.core.model.messages import Message
from oms.core.orders import OrderView
from oms.runtime.metrics import METRICS, HotPathMetrics

__all__ = ["Reports", "Sequencer"]

log = logging.getLogger(__name__)
T = TypeVar("T")
Reports = list[tuple[Message, OrderView | None]]


class Sequencer:
    """An OrderManager, the lock that puts its steps in one order, and the subscribers its reports go to."""

    def __init__(
        self, engine: OrderManager, lock: threading.RLock | None = None, metrics: HotPathMetrics = METRICS
    ) -> None:
        """`metrics`: where the published reports are counted and the adapters' orders timed (the process's)."""
        self.engine = engine
        self.lock = lock if lock is not None else threading.RLock()
        self.metrics = metrics
        self._subscribers: list[Callable[[Reports], None]] = []
        self._names: dict[Callable[[Reports], None], str] = {}
        self._publishing = False

    def subscribe(self, subscriber: Callable[[Reports], None], name: str | None = None) -> None:
        """Call `subscriber` with the reports of every step from now on (under the lock, on the driving thread).
        `name` labels its failures in the log and in `oms_subscriber_errors` (default: its qualified name)."""
        with self.lock:
            self._subscribers.append(subscriber)
            self._names[subscriber] = name or getattr(subscriber, "__qualname__", repr(subscriber))

    def unsubscribe(self, subscriber: Callable[[Reports], None]) -> None:
        with self.lock:
            self._subscribers.remove(subscriber)
            self._names.pop(subscriber, None)

    def run(self, step: Callable[[OrderManager], T]) -> T:
        """`step(engine)` under the lock, then its reports to every subscriber; returns what `step` returned."""
        with self.lock:
            result = step(self.engine)
            self.publish()
            return result

    def publish(self) -> None:
        """Hand the reports queued since the last call to every subscriber; call with the lock held. What a
        subscriber does to the engine in its callback (an algo's next child) is published by the same call, after
        the reports that caused it; a publish from inside a subscriber returns at once for that reason.

        Subscribers are isolated: one that raises is logged (with its traceback, here only) and counted in
        `oms_subscriber_errors`; the others still get the reports, and the step that caused them stands."""
        if self._publishing:
            return
        self._publishing = True
        try:
            while reports := self.engine.take_reports():
                self.metrics.count_reports(reports)
                for subscriber in list(self._subscribers):
                    try:
                        subscriber(reports)
                    except Exception:
                        name = self._names.get(subscriber, repr(subscriber))
                        log.exception("report subscriber %s failed on %d reports", name, len(reports))
                        self.metrics.subscriber_failed(name)
        finally:
            self._publishing = False

    def apply_venue(self, step: VenueStep) -> None:
        """The `apply` every venue is started with (the Venue port, `oms.core.engine.Venue`): run the venue's
        translation `step()` in sequence, then apply and publish the events it returned. Call it from the venue's own
        threads, never from inside a step; it returns once the events are published. A step that returns nothing
        leaves the engine and its gate alone."""
        with self.lock:  # the step reads the venue's maps of orders the engine's steps also change
            events = step()
            if events:
                self.on_venue_events(events)

    def on_venue_events(self, events: list[Message]) -> None:
        """Events a venue reported on its own (acks, fills, cancels of orders it holds), applied and published;
        a venue with state of its own hands its translation over with `apply_venue` instead."""
        self.run(lambda engine: engine.on_venue_events(events))
