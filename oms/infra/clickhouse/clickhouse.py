"""ClickHouse through clickhouse-connect: embedded chDB (`chdb:///abs/path`) or a server (`http://host:8123`).

The same client API, schema and SQL run on both. `connect` returns a client whose default database exists;
`apply_schema` creates the tables from `sql/schema/*.sql` (idempotent: `CREATE TABLE IF NOT EXISTS`).

Embedded chDB has two rules the caller must know: a process can have only one store path open at a time (close every
client before opening another path), and a store can be open in only one process at a time. Breaking either gives
`AnalyticsUnavailable` with a one-line explanation, never a traceback from the engine.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import Error as ClickHouseDriverError

__all__ = [
    "SCHEMA_DIR",
    "SQL_DIR",
    "TABLES",
    "AnalyticsError",
    "AnalyticsUnavailable",
    "Client",
    "MissingTable",
    "apply_schema",
    "connect",
    "describe",
    "error_message",
    "schema_statements",
]

SQL_DIR = Path(__file__).parent / "sql"
SCHEMA_DIR = SQL_DIR / "schema"
TABLES = ("orders", "executions", "market_trades", "quotes")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CODE = re.compile(r"Code: (\d+)\. DB::Exception: (.*?)(?:\. \(([A-Z_]+)\))?(?: \(version [^)]*\))?\s*$", re.S)


class AnalyticsError(RuntimeError):
    """An analytics failure the caller shows as one line (no traceback): the message says what and where."""


class AnalyticsUnavailable(AnalyticsError):
    """ClickHouse cannot be reached or opened (server down, embedded store in use by another process, ...)."""


class MissingTable(AnalyticsError):
    """A query named a table the database lacks (the schema was never applied there)."""


def describe(dsn: str) -> str:
    """The DSN without any password, for messages."""
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


def error_message(exc: BaseException) -> str:
    """The first meaningful line of a ClickHouse error: `<message> (<CODE_NAME>)`, without the stack trace."""
    text = str(exc)
    found = _CODE.search(text)
    if found is None:
        return text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    message = found.group(2).strip().splitlines()[0]
    return f"{message} ({found.group(3)})" if found.group(3) else message


@contextlib.contextmanager
def _native_stderr_held() -> Iterator[None]:
    """Hold what native code writes to fd 2 meanwhile: chDB prints its own error there before raising, which would
    turn our one-line message into two. What was held is written out again only if no exception is raised."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        held.seek(0)
        text = held.read()
    if text:
        os.write(2, text)


def _open(dsn: str, database: str | None) -> Client:
    kwargs: dict[str, Any] = {"dsn": dsn}
    if database is not None:
        kwargs["database"] = database
    if dsn.startswith("chdb:"):
        path = urlsplit(dsn).path
        if path:
            Path(path).mkdir(parents=True, exist_ok=True)
    else:
        kwargs["connect_timeout"] = 5
    try:
        if dsn.startswith("chdb:"):
            with _native_stderr_held():
                return clickhouse_connect.get_client(**kwargs)
        return clickhouse_connect.get_client(**kwargs)
    except ClickHouseDriverError as exc:
        text = str(exc)
        where = describe(dsn)
        if "Error initializing EmbeddedServer" in text:
            raise AnalyticsUnavailable(
                f"the embedded ClickHouse store {where} is open in another process (an embedded chDB store admits one "
                "process at a time): stop that process (e.g. the sink of `oms serve`) or use a ClickHouse server URL"
            ) from None
        if "already initialized with path" in text:
            raise AnalyticsUnavailable(
                f"this process already has another embedded ClickHouse store open; close its clients before opening "
                f"{where}"
            ) from None
        raise AnalyticsUnavailable(f"ClickHouse at {where} does not answer: {error_message(exc)}") from None
    except OSError as exc:
        raise AnalyticsUnavailable(f"ClickHouse at {describe(dsn)} cannot be opened: {exc}") from None


def connect(dsn: str, database: str = "oms") -> Client:
    """A clickhouse-connect client on `dsn` whose default database is `database`, created if missing.

    Raises ValueError for a database name that is not a plain identifier, `AnalyticsUnavailable` when ClickHouse
    cannot be reached or the embedded store cannot be opened. The caller closes the client.
    """
    if not _IDENT.match(database):
        raise ValueError(f"database name {database!r} must be a plain identifier ([A-Za-z_][A-Za-z0-9_]*)")
    client = _open(dsn, None)
    try:
        client.command(f"CREATE DATABASE IF NOT EXISTS {database}")
    except ClickHouseDriverError as exc:
        raise AnalyticsUnavailable(
            f"ClickHouse at {describe(dsn)}: cannot create database {database}: {error_message(exc)}"
        ) from None
    finally:
        client.close()
    return _open(dsn, database)


def schema_statements() -> list[tuple[str, str]]:
    """(file name, statement) of every schema file, in file-name order; each file holds one statement."""
    return [(path.name, path.read_text()) for path in sorted(SCHEMA_DIR.glob("*.sql"))]


def apply_schema(client: Client) -> list[str]:
    """Create every table that does not exist yet in the client's database (idempotent); returns the file names."""
    applied = []
    for name, statement in schema_statements():
        try:
            client.command(statement)
        except ClickHouseDriverError as exc:
            raise AnalyticsError(f"schema file {name}: {error_message(exc)}") from None
        applied.append(name)
    return applied
