"""The FIX gateway's inbound marks in Redis (`fix_gateway.gateway.InboundMarks`): one hash, `oms:fix:inbound`,
session name -> the last counterparty MsgSeqNum whose answers QuickFIX holds.

`save` only notes the value; a thread of its own writes what changed (one HSET for every session that moved) at most
every `interval_s` (50 ms), so the gateway's sender never waits for Redis and the journal's Redis, which fsyncs every
write, gets at most 20 more writes a second. A mark that lags, or is lost with the process or
with Redis, errs on the safe side: the counterparty is asked to resend messages the OMS already answered, and those
come back as PossDup, answered from the order's state. A mark never runs ahead of an answer.
"""

from __future__ import annotations

import logging
import threading
import time

import redis

__all__ = ["KEY", "RedisInboundMarks"]

log = logging.getLogger("oms.fix")

KEY = "oms:fix:inbound"


class RedisInboundMarks:
    """InboundMarks kept in Redis through `client`, written by a thread of its own every `interval_s` at most."""

    def __init__(self, client: redis.Redis, interval_s: float = 0.05) -> None:
        self._client = client
        self._interval_s = interval_s
        self._pending: dict[str, int] = {}
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()  # one write at a time: a later one never lands before an earlier one
        self._wake = threading.Event()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="fix-marks", daemon=True)
        self._thread.start()

    def load(self) -> dict[str, int]:
        """Every session's mark in Redis; raises redis.RedisError when Redis does not answer."""
        return {k.decode(): int(v) for k, v in self._client.hgetall(KEY).items()}

    def save(self, session: str, seq: int) -> None:
        with self._lock:
            self._pending[session] = seq
        self._wake.set()

    def flush(self) -> None:
        """Write what is pending now; a failure is logged (the marks then lag, which is safe)."""
        self._write()

    def close(self) -> None:
        """Write what is pending and stop the thread."""
        self._stop = True
        self._wake.set()
        self._thread.join(5.0)
        self._write()
        self._client.close()

    def _run(self) -> None:
        while not self._stop:
            self._wake.wait()
            self._wake.clear()
            self._write()
            if not self._stop:
                time.sleep(self._interval_s)

    def _write(self) -> None:
        with self._write_lock:
            with self._lock:
                batch, self._pending = self._pending, {}
            if not batch:
                return
            try:
                self._client.hset(KEY, mapping=batch)  # type: ignore[arg-type]
            except redis.RedisError as exc:
                log.warning("FIX inbound marks not written (%s): they lag until Redis answers", exc)
                with self._lock:  # keep them unless a later mark came meanwhile
                    self._pending = {**batch, **self._pending}
