"""StopSignal: stop signals as a flag, safe when a signal interrupts the handler of another."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

from oms.runtime.signals import StopSignal


def run(script: str) -> str:
    """`script` in a fresh interpreter (its signal handlers are its own); its stdout."""
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


def test_wait_returns_false_when_no_signal_came_within_the_timeout() -> None:
    stop = StopSignal(signals=())
    started = time.monotonic()

    assert stop.wait(0.2) is False and not stop.is_set()
    assert time.monotonic() - started >= 0.2


def test_two_stop_signals_back_to_back_are_both_taken_and_stop_the_wait() -> None:
    out = run("""
        import os, signal
        from oms.runtime.signals import StopSignal
        stop = StopSignal()
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGINT)
        print(stop.wait(5), stop.received == [signal.SIGTERM, signal.SIGINT])
    """)

    assert out == "True True"


def test_signals_that_interrupt_the_handler_never_wedge_the_process() -> None:
    # a timer signal every 100 us interrupts handlers in the middle; a handler that takes a lock
    # (threading.Event.set) wedges or crashes here
    out = run("""
        import signal
        from oms.runtime.signals import StopSignal
        stop = StopSignal([signal.SIGALRM])
        signal.setitimer(signal.ITIMER_REAL, 1e-4, 1e-4)
        waits = [stop.wait(5) for _ in range(500)]
        signal.setitimer(signal.ITIMER_REAL, 0)
        print(all(waits), len(stop.received) > 1)
    """)

    assert out == "True True"
