"""Python thread states that last as long as the QuickFIX connection threads calling into Python.

QuickFIX calls the application and its log from threads of its own (a `ThreadedSocketAcceptor` reads each
connection on a thread of its own). For each such call SWIG makes a Python thread state and deletes it when the call
returns, so every message pays for a new one, and whatever is kept per thread (`threading.local`: the hot-path
metrics' shards, `oms.runtime.metrics`) starts empty at every message. `hold()` keeps the calling thread's state until
`release()` is called on the same thread; both do nothing on a thread where they have nothing to do, so they are safe
from any thread (a Python thread's state is its own, and a hold there only counts once more).

`FixGateway`'s application (and `FixClient`'s) holds on its first application message, which comes only after a
Logon was accepted, and releases at the session's logout, which QuickFIX reports on the connection's thread. A
connection whose end is reported on another thread (the acceptor's forced stop at shutdown) keeps its state until
the process ends: a few kilobytes, once per logged-on connection.
"""

from __future__ import annotations

import ctypes
import threading

__all__ = ["hold", "release"]

_local = threading.local()
_ensure = ctypes.pythonapi.PyGILState_Ensure
_ensure.restype = ctypes.c_int
_ensure.argtypes = []
_release = ctypes.pythonapi.PyGILState_Release
_release.restype = None
_release.argtypes = [ctypes.c_int]


def hold() -> None:
    """Keep the calling thread's Python thread state (and its thread-locals) past the callback it is in."""
    if not getattr(_local, "held", False):
        _local.state = _ensure()  # the GIL is held here: this only counts the state once more
        _local.held = True


def release() -> None:
    """Undo this thread's `hold()`: its state goes when the callback it is in returns. Nothing without a hold."""
    if getattr(_local, "held", False):
        _local.held = False
        _release(_local.state)
