"""No process of a local Ray cluster outlives the OMS that started it, however the OMS ends.

Ray's GCS and raylet are the OMS's children, but the raylet's own children (the dashboard and runtime-env agents,
the workers) are not, and some ignore SIGTERM: after a SIGKILL of the OMS they stay. So the processes of a cluster
the OMS starts carry a mark in their environment (`ENV` = a value unique to that start: set while `ray.init` starts
the GCS and raylet, inherited by what they start), and a reaper process (`python -m oms.infra.ray.reaper <mark>`)
watches the OMS. Each second it adds to what it notes of the cluster: every process with the mark and every process
below one (a process that renames itself, as Ray's agents do, may overwrite the environment it shows). When its
parent is gone (the OMS died, its orphans adopted elsewhere) or it is told to stop (SIGTERM, after a clean
`ray.shutdown`), it SIGKILLs every process of the cluster, noted or found now (a noted pid counts only while its
start time is the same), then exits. It runs in its own session, so a terminal's Ctrl-C reaches the OMS (which
stops cleanly) and not the reaper.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

from oms.runtime.signals import StopSignal

__all__ = ["ENV", "Reaper", "cluster", "reap"]

ENV = "OMS_RAY_CLUSTER"


Proc = tuple[int, int]  # (pid, start time in clock ticks since boot): one process, never a later one with its pid


def cluster(mark: str) -> set[Proc]:
    """Every process (but this one) whose environment has `ENV` = `mark`, and every process below one of them."""
    needle = f"{ENV}={mark}".encode()
    children: dict[int, list[Proc]] = {}
    found: set[Proc] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            proc = (int(entry.name), int(fields[19]))  # stat fields 4 (ppid) and 22 (starttime)
            children.setdefault(int(fields[1]), []).append(proc)
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                found.add(proc)
        except (OSError, IndexError, ValueError):  # gone meanwhile, or not ours to read
            continue
    todo = list(found)
    while todo:
        for child in children.get(todo.pop()[0], []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _start_time(pid: int) -> int | None:
    """The start time of process `pid`; None when there is none running (a zombie has ended)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return None if fields[0] == "Z" else int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


def reap(mark: str, noted: Iterable[Proc] = (), passes: int = 5) -> int:
    """SIGKILL every process of the cluster `mark` names, and every one of `noted` still running, again until
    none is left (at most `passes` times); how many were."""
    killed = 0
    for _ in range(passes):
        targets = {p for p in cluster(mark) | set(noted) if _start_time(p[0]) == p[1]}
        if not targets:
            break
        for pid, _ in targets:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass  # ended by itself meanwhile: what reaping wants
        noted = ()
        time.sleep(0.1)
    return killed


class Reaper:
    """The reaper process of one cluster start (see the module text)."""

    def __init__(self) -> None:
        self.mark = f"{os.getpid()}-{time.time_ns()}"
        env = {k: v for k, v in os.environ.items() if k != ENV}
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "oms.infra.ray.reaper", self.mark], env=env, start_new_session=True,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        )  # fmt: skip

    def marking(self) -> _Marking:
        """`with reaper.marking(): ray.init(...)`: the processes started meanwhile carry the mark."""
        return _Marking(self.mark)

    def stop(self) -> None:
        """Reap what is left of the cluster now (after `ray.shutdown`), and end the reaper."""
        self._proc.terminate()
        self._proc.wait(timeout=30)


class _Marking:
    def __init__(self, mark: str) -> None:
        self._mark = mark

    def __enter__(self) -> None:
        os.environ[ENV] = self._mark

    def __exit__(self, *exc: object) -> None:
        os.environ.pop(ENV, None)


def main(argv: list[str]) -> int:
    (mark,) = argv
    parent = os.getppid()
    told = StopSignal([signal.SIGTERM])
    noted: set[Proc] = set()
    while os.getppid() == parent and not told.wait(1.0):
        # added to, not replaced: a look taken as the OMS dies may miss what its death already orphaned
        noted = {p for p in noted if _start_time(p[0]) == p[1]} | cluster(mark)
    reap(mark, noted)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
