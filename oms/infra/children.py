"""Child processes the OMS starts (its managed Redis, the ClickHouse sink) end with it, even when it is killed."""

from __future__ import annotations

import ctypes
import os
import signal
import sys

__all__ = ["die_with_parent"]


def die_with_parent(parent_pid: int) -> None:  # pragma: no cover - runs in the child between fork and exec
    """For `subprocess.Popen(preexec_fn=...)`: the child gets SIGTERM when the thread that forked it dies (Linux's
    PR_SET_PDEATHSIG), so a SIGKILL-ed OMS leaves no orphan; it exits at once when that parent is already gone.
    Fork from a thread that lives as long as the child should."""
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os._exit(1)
