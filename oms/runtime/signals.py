"""Stop signals as a flag the main thread polls.

A signal handler runs on the main thread between two bytecodes, also in the middle of another handler. One that
calls `threading.Event.set` takes the Event's lock, which is not reentrant: a second SIGTERM (the parent's death
signal and the parent's own stop, say) arriving while the first handler holds it blocks the main thread for good,
and the process never stops. `StopSignal`'s handler only appends to a list, which takes no lock.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterable
from types import FrameType

__all__ = ["StopSignal"]

POLL_S = 0.1  # how often `wait` looks at the flag: the longest a stop waits for it


class StopSignal:
    """From construction on, SIGTERM and SIGINT (or `signals`) set the flag instead of stopping the process."""

    def __init__(self, signals: Iterable[signal.Signals] = (signal.SIGTERM, signal.SIGINT)) -> None:
        self.received: list[int] = []  # the signals that came, in order
        for s in signals:
            signal.signal(s, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.received.append(signum)  # no lock: safe when it interrupts itself

    def is_set(self) -> bool:
        return bool(self.received)

    def wait(self, timeout: float | None = None) -> bool:
        """True once a stop signal came; False when `timeout` seconds passed first (None: no limit)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.received:
            left = POLL_S if deadline is None else min(POLL_S, deadline - time.monotonic())
            if left <= 0:
                return False
            time.sleep(left)
        return True
