"""Reading an embedded store while the OMS runs: queries through the process that holds it.

An embedded chDB store admits one process at a time, and while `oms serve` runs, its ClickHouse sink holds the store.
So the sink also answers read queries on a Unix socket in the store's directory, `query.sock` (`QueryServer`, mode
0600: only the OMS's own user can connect, the user who can read the store's files anyway). `connect_for_reading`
opens the store directly when it can, and otherwise, when that socket answers, returns a `RemoteClient` that sends
each query there: `oms report` and `oms sql` work the same whether the OMS runs or not. A ClickHouse server needs
none of this (every process connects to it).

Only reading: a statement must be one SELECT, WITH, SHOW, DESCRIBE, EXPLAIN or EXISTS (no `;` inside, no INTO
OUTFILE); anything else is refused before it reaches ClickHouse. One request per connection: the request and the
answer are one JSON document each (`{"sql", "params", "database"}` -> `{"columns", "rows"}` or `{"error"}`), the
request ended by the client's shutdown of its sending side. The holder serves the one database its sink writes.
Answers are capped (`MAX_ROWS`); a query runs at most `MAX_SECONDS`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import logging
import os
import re
import socket
import threading
import uuid
from pathlib import Path
from typing import Any, NamedTuple

import msgspec
from clickhouse_connect.driver.exceptions import DatabaseError
from clickhouse_connect.driver.exceptions import Error as ClickHouseDriverError

from oms.infra.clickhouse.clickhouse import AnalyticsError, AnalyticsUnavailable, Client, connect, error_message

__all__ = ["MAX_ROWS", "QueryServer", "RemoteClient", "check_read_only", "connect_for_reading", "socket_path"]

log = logging.getLogger("oms.infra.clickhouse.query")

SOCKET_NAME = "query.sock"
MAX_ROWS = 1_000_000
MAX_SECONDS = 60
MAX_REQUEST = 1 << 20  # bytes of SQL and parameters
_READING = re.compile(r"^\s*(SELECT|WITH|SHOW|DESCRIBE|DESC|EXPLAIN|EXISTS)\b", re.I)
_OUTFILE = re.compile(r"\bINTO\s+OUTFILE\b", re.I)
_COMMENTS = re.compile(r"--[^\n]*|/\*.*?\*/", re.S)


class _Request(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    sql: str
    params: dict[str, Any] = {}
    database: str = ""  # '' for the holder's own


class _Answer(msgspec.Struct, frozen=True):
    columns: list[str] = []
    rows: list[list[Any]] = []
    error: str | None = None


def _enc(value: Any) -> Any:
    """JSON for ClickHouse values msgspec does not encode itself."""
    if isinstance(value, decimal.Decimal | uuid.UUID | dt.date):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    raise NotImplementedError(f"cannot encode {type(value).__name__}")


_encoder = msgspec.json.Encoder(enc_hook=_enc)


def socket_path(dsn: str) -> Path | None:
    """Where the holder of the embedded store at `dsn` answers queries; None for a server DSN."""
    if not dsn.startswith("chdb:"):
        return None
    path = dsn.split("://", 1)[-1]
    return Path(path) / SOCKET_NAME if path else None


def check_read_only(sql: str) -> None:
    """Raise AnalyticsError unless `sql` is one reading statement (see the module doc); comments are ignored."""
    text = _COMMENTS.sub(" ", sql).strip().rstrip(";").strip()
    if not _READING.match(text) or ";" in text or _OUTFILE.search(text):
        raise AnalyticsError(
            "only one reading statement is taken (SELECT, WITH, SHOW, DESCRIBE, EXPLAIN, EXISTS; no ';' inside, "
            "no INTO OUTFILE)"
        )


class QueryServer:
    """Answers read queries on `path` with `client` (shared with the sink: clickhouse-connect serializes its
    queries on the embedded store), one connection at a time, on a thread of its own."""

    def __init__(self, client: Client, path: Path) -> None:
        self._client = client
        self.path = path
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def start(self) -> QueryServer:
        """Listen on `path` (a stale socket file from a process that died is replaced); raises OSError."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            sock.bind(str(self.path))
        finally:
            os.umask(old)
        sock.listen(8)
        sock.settimeout(0.2)
        self._sock = sock
        self._thread = threading.Thread(target=self._serve, name="analytics-queries", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop answering and remove the socket file. Safe to call twice."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()

    def _serve(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                try:
                    conn.settimeout(MAX_SECONDS + 5)
                    conn.sendall(_encoder.encode(self._answer(_receive(conn))))
                except OSError as exc:  # the client went away: its loss, nothing to clean up
                    log.info("analytics query: client gone (%s)", exc)

    def _answer(self, raw: bytes) -> _Answer:
        try:
            request = msgspec.json.decode(raw, type=_Request)
        except msgspec.DecodeError as exc:
            return _Answer(error=f"bad request: {exc}")
        if request.database and request.database != self._client.database:
            return _Answer(error=f"the holder of this store serves database {self._client.database}, not "
                                 f"{request.database} (UNKNOWN_DATABASE)")  # fmt: skip
        try:
            check_read_only(request.sql)
            result = self._client.query(
                request.sql, parameters=request.params or None, settings={"max_execution_time": MAX_SECONDS}
            )
        except AnalyticsError as exc:
            return _Answer(error=str(exc))
        except ClickHouseDriverError as exc:
            return _Answer(error=error_message(exc))
        rows = result.result_rows
        if len(rows) > MAX_ROWS:
            return _Answer(error=f"the answer has {len(rows)} rows, over {MAX_ROWS}: narrow the query")
        return _Answer(list(result.column_names), [list(r) for r in rows])


def _receive(conn: socket.socket) -> bytes:
    chunks, size = [], 0
    while chunk := conn.recv(65536):
        size += len(chunk)
        if size > MAX_REQUEST:
            return b""  # decodes as a bad request
        chunks.append(chunk)
    return b"".join(chunks)


class RemoteResult(NamedTuple):
    column_names: tuple[str, ...]
    result_rows: list[tuple[Any, ...]]


class RemoteClient:
    """The part of a clickhouse-connect client the reports use (`query`, `database`, `close`), sending each query
    to the `QueryServer` at `path`. A refused or failed query raises clickhouse-connect's DatabaseError with
    ClickHouse's one-line message, as a direct client would."""

    def __init__(self, path: Path, database: str) -> None:
        self.path = path
        self.database = database

    def query(self, sql: str, parameters: dict[str, Any] | None = None, **_: Any) -> RemoteResult:
        request = _encoder.encode(_Request(sql, parameters or {}, self.database))
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(MAX_SECONDS + 10)
            sock.connect(str(self.path))
            sock.sendall(request)
            sock.shutdown(socket.SHUT_WR)
            answer = msgspec.json.decode(_receive_all(sock), type=_Answer)
        if answer.error is not None:
            raise DatabaseError(answer.error)
        return RemoteResult(tuple(answer.columns), [tuple(r) for r in answer.rows])

    def close(self) -> None:
        """Nothing held between queries."""


def _receive_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


def connect_for_reading(dsn: str, database: str = "oms") -> Client | RemoteClient:
    """A client to read `database` at `dsn`: a direct one when the store can be opened, else (an embedded store that
    another process holds) one through that process's `QueryServer`. Raises AnalyticsUnavailable when neither
    works, with the reason."""
    try:
        return connect(dsn, database)
    except AnalyticsUnavailable as exc:
        path = socket_path(dsn)
        if path is None or "open in another process" not in str(exc):
            raise
        if not path.exists():
            raise AnalyticsUnavailable(f"{exc}; its holder answers no queries ({path} does not exist)") from None
        return RemoteClient(path, database)
