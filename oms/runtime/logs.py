"""Structured logs: one JSON object per line, with the order's correlation fields.

Each line holds `ts` (UTC, ISO 8601, microseconds), `level`, `logger` and `msg`, then the correlation fields
`session`, `account`, `cl_ord_id`, `orig_cl_ord_id`, `order_id`, `exec_id` when the record has them, then any other
field given with `extra=` (or to `EventLog.info`), and `exc` / `stack` when the record carries them:

    {"ts":"2026-11-21T10:15:30.123456Z","level":"INFO","logger":"oms.fix","msg":"order acked",
     "session":"FIX.4.4:OMS->CLIENT44","account":"ACC2","cl_ord_id":"n1","order_id":1000000001,"symbol":"AAPL"}

`configure_logging(target, level)` sends the `oms` loggers' records there. The thread that logs only puts the
record on a queue; a writer thread formats and writes them, in batches, so neither JSON encoding nor file I/O
happens on QuickFIX's thread. (Formatting is deferred too: a record's `%` arguments are rendered when written,
which is why the hot path passes immutable values.)

`EventLog` is for the order lifecycle on the hot path: when its logger is not enabled for INFO it costs one level
check (~0.1 µs); when it is, it builds the record without the standard LogRecord's caller lookup and thread and
process names (about a third of what `logger.info(..., extra=...)` costs) and hands it to the logger's handlers like
any other record. The writer thread takes the GIL while it formats (a few µs a record), so it writes after every
BATCH records: the write releases the GIL, and QuickFIX's threads never wait long for it.
"""

from __future__ import annotations

import logging
import os
import queue
import sys
import threading
import time
from pathlib import Path
from typing import Any, TextIO

import msgspec

from oms.core.model.messages import (
    CancelRejected,
    Message,
    OrderAccepted,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderReplaced,
)

__all__ = [
    "CORRELATION_FIELDS",
    "DEFAULT_LOG_PATH",
    "EventLog",
    "JsonFormatter",
    "JsonLogging",
    "configure_logging",
    "log_order_event",
    "orders_log",
]

DEFAULT_LOG_PATH = Path(__file__).resolve().parents[2] / "var" / "log" / "oms.jsonl"
CORRELATION_FIELDS = ("session", "account", "cl_ord_id", "orig_cl_ord_id", "order_id", "exec_id")
# every attribute a standard LogRecord has: the rest of a record's attributes are fields given with `extra=`
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime", "taskName"}
_encoder = msgspec.json.Encoder(enc_hook=str)


_last_second: tuple[int, str] = (-1, "")  # the last whole second formatted, and its text


def _iso_utc(created: float) -> str:
    global _last_second
    seconds = int(created)
    micros = min(int((created - seconds) * 1_000_000), 999_999)
    last = _last_second  # one read: another thread may replace it meanwhile
    if last[0] != seconds:
        last = _last_second = (seconds, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)))
    return f"{last[1]}.{micros:06d}Z"


class JsonFormatter(logging.Formatter):
    """A record as one line of JSON (see the module text for the fields and their order)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": _iso_utc(record.created),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = record.__dict__
        for key in CORRELATION_FIELDS:
            if key in fields:
                out[key] = fields[key]
        for key, value in fields.items():
            if key not in _STANDARD and key not in out and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exc"] = record.exc_text
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return _encoder.encode(out).decode()


# every attribute of an INFO record, without caller, thread or process information (formatters read the record's
# __dict__, so each must be there)
_EVENT_DEFAULTS = {
    **logging.LogRecord("", logging.INFO, "", 0, "", None, None).__dict__,
    "thread": None,
    "threadName": None,
    "process": None,
    "processName": None,
    "module": "",
    "funcName": "",
}
_START = logging._startTime  # type: ignore[attr-defined]


class EventLog:
    """INFO records of one logger, cheap enough for the hot path (see the module text)."""

    __slots__ = ("_logger", "_name")

    def __init__(self, logger: logging.Logger | str) -> None:
        self._logger = logging.getLogger(logger) if isinstance(logger, str) else logger
        self._name = self._logger.name

    def enabled(self) -> bool:
        """Whether `info` would log anything: check before building costly fields."""
        return self._logger.isEnabledFor(logging.INFO)

    def info(self, msg: str, /, **fields: Any) -> None:
        """Log `msg` at INFO with `fields` as the record's attributes (like `extra=`); nothing below INFO.
        Field names of the standard LogRecord attributes (name, msg, created...) are not allowed."""
        logger = self._logger
        if not logger.isEnabledFor(logging.INFO):
            return
        created = time.time()
        attrs = _EVENT_DEFAULTS.copy()
        attrs["name"] = self._name
        attrs["msg"] = msg
        attrs["created"] = created
        attrs["msecs"] = (created - int(created)) * 1000
        attrs["relativeCreated"] = (created - _START) * 1000
        attrs.update(fields)
        record = logging.LogRecord.__new__(logging.LogRecord)
        record.__dict__ = attrs
        logger.handle(record)


_STOP = object()
# The writer wakes at most once per GATHER_S while records keep coming (not once per record: each wake-up is a
# context switch and a GIL hand-off on a small machine), and formats at most BATCH records per write: it holds the
# GIL while it formats, and the write (a system call, which releases it) hands it back to QuickFIX's threads.
GATHER_S = 0.005
BATCH = 16


class _QueueHandler(logging.Handler):
    """Puts records on the writer's queue as they are: no formatting, no copy, no lock on the logging thread."""

    def __init__(self, q: queue.SimpleQueue[Any], level: int) -> None:
        super().__init__(level)
        self._queue = q

    def handle(self, record: logging.LogRecord) -> bool:  # type: ignore[override]
        if self.filters and not self.filter(record):
            return False
        self._queue.put(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        self._queue.put(record)


class JsonLogging:
    """What `configure_logging` set up: `close()` writes what is queued, detaches and closes (safe twice)."""

    def __init__(self, logger: logging.Logger, stream: TextIO, path: Path | None, level: int) -> None:
        self.path = path
        self._logger = logger
        self._stream = stream
        self._owns_stream = path is not None
        self._previous_level = logger.level
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._formatter = JsonFormatter()
        self.handler = _QueueHandler(self._queue, level)
        self._writer = threading.Thread(target=self._write, name="oms-log-writer", daemon=True)
        self._writer.start()
        logger.addHandler(self.handler)
        logger.setLevel(level)

    def close(self, timeout: float = 10.0) -> None:
        """Stop taking records, write every record already queued, close the file (if `configure_logging` opened
        it) and restore the logger's level."""
        if self.handler not in self._logger.handlers:
            return
        self._logger.removeHandler(self.handler)
        self._logger.setLevel(self._previous_level)
        self._queue.put(_STOP)
        self._writer.join(timeout)
        if self._owns_stream:
            self._stream.close()

    def __enter__(self) -> JsonLogging:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write(self) -> None:
        """Wait for a record, let more gather, write everything queued BATCH records at a time; until `close`."""
        q, stop = self._queue, False
        while not stop:
            batch = [q.get()]  # idle: blocked here, no wake-ups
            time.sleep(GATHER_S)
            while batch:
                while len(batch) < BATCH and not q.empty():
                    batch.append(q.get_nowait())  # this thread alone takes from the queue
                stop = stop or _STOP in batch
                lines = [self._line(record) for record in batch if record is not _STOP]
                if lines:
                    self._emit("".join(lines), len(lines))
                batch = [] if q.empty() else [q.get_nowait()]

    def _emit(self, text: str, count: int) -> None:
        try:
            self._stream.write(text)
            self._stream.flush()
        except (OSError, ValueError) as exc:  # disk full, stream closed under us: say so where someone looks
            print(f"oms logs: {count} lines not written: {exc}", file=sys.stderr)

    def _line(self, record: logging.LogRecord) -> str:
        try:
            return self._formatter.format(record) + "\n"
        except Exception as exc:  # a field that cannot be encoded must not lose the record
            out = {
                "ts": _iso_utc(time.time()),
                "level": "ERROR",
                "logger": "oms.runtime.logs",
                "msg": f"record could not be formatted: {exc!r}",
                "record": repr(record.__dict__.get("msg")),
            }
            return _encoder.encode(out).decode() + "\n"


def configure_logging(
    target: str | os.PathLike[str] | TextIO = DEFAULT_LOG_PATH,
    level: int | str = logging.INFO,
    logger: str = "oms",
) -> JsonLogging:
    """Write the records of `logger` and its children (every `oms.*` logger) at `level` and above as JSON lines to
    `target`: a path (appended to; its directory is created) or an open text stream (left open). Returns the handle
    whose `close()` undoes this. Raises OSError when the file cannot be opened, ValueError for an unknown level."""
    numeric = logging.getLevelName(level.upper()) if isinstance(level, str) else level
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}")
    if isinstance(target, (str, os.PathLike)):
        path = Path(target)
        path.parent.mkdir(parents=True, exist_ok=True)
        stream: TextIO = path.open("a", encoding="utf-8")
        return JsonLogging(logging.getLogger(logger), stream, path, numeric)
    return JsonLogging(logging.getLogger(logger), target, None, numeric)


#: the order lifecycle of every channel (FIX, REST, algos, venues), one line per event (`log_order_event`)
orders_log = EventLog(logging.getLogger("oms.orders"))
_LIFECYCLE = {
    OrderAccepted: "order acked",
    OrderRejected: "order rejected",
    OrderFilled: "order filled",
    OrderCanceled: "order canceled",
    OrderReplaced: "order replaced",
    OrderExpired: "order expired",
    CancelRejected: "cancel rejected",
}


def log_order_event(event: Message, session: str, log: EventLog = orders_log) -> None:
    """The lifecycle line of one event (INFO; acked, rejected with reason, filled, canceled, replaced, expired,
    cancel rejected) with the session that owns the order (the FIX session, `REST:<key id>`, `ALGO`); nothing for
    other events. Check `log.enabled()` first on the hot path."""
    what = _LIFECYCLE.get(type(event))
    if what is None:
        return
    fields: dict[str, Any] = {
        "session": session,
        "account": event.account,  # type: ignore[union-attr]
        "cl_ord_id": event.cl_ord_id,  # type: ignore[union-attr]
        "order_id": event.order_id,  # type: ignore[union-attr]
        "symbol": event.symbol,  # type: ignore[union-attr]
    }
    match event:
        case OrderRejected() | CancelRejected():
            fields["reason"] = event.reason.name.lower()
            fields["text"] = event.text
        case OrderFilled():
            fields["exec_id"] = event.exec_id
            fields["venue"] = event.venue
            fields["qty"] = event.qty
            fields["price"] = event.price
        case OrderCanceled():
            fields["reason"] = event.reason.name.lower()
            if event.orig_cl_ord_id:
                fields["orig_cl_ord_id"] = event.orig_cl_ord_id
        case OrderReplaced():
            fields["orig_cl_ord_id"] = event.orig_cl_ord_id
        case OrderAccepted():
            fields["venue"] = event.venue
            if event.parent_id:
                fields["parent_id"] = event.parent_id
    log.info(what, **fields)
