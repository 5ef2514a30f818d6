"""ClickHouse through clickhouse-connect: embedded chDB (`chdb:///abs/path`) or a server (`http://host:8123`).

The same client API, schema and SQL run on both. `connect` returns a client whose default database exists;
`apply_schema` brings the database's schema to this version of the OMS.

SCHEMA VERSIONS
The schema is a list of migrations, `sql/schema/NN_<what>.sql` (one statement, or several each ending with `;` at
the end of a line), applied in the order of NN (the version) and recorded in the table `schema_migrations` (version,
file, when). `apply_schema` applies the ones a database has not recorded yet, each once, so a store made by an
earlier version gets the later ones at the next start. Every migration is written to be harmless when run again
(`CREATE ... IF NOT EXISTS`, `ADD COLUMN IF NOT EXISTS`, a type change that keeps the values): a crash between a
migration and its record only repeats it. A database recording a version this OMS does not have (written by a newer
OMS) is refused rather than guessed at.

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
import time
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
    "migration_statements",
    "schema_statements",
    "schema_version",
]

SQL_DIR = Path(__file__).parent / "sql"
SCHEMA_DIR = SQL_DIR / "schema"
TABLES = ("orders", "executions", "market_trades", "quotes", "operator_actions", "parents", "account_changes")
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


_MIGRATIONS_TABLE = """CREATE TABLE IF NOT EXISTS schema_migrations
(
    version    UInt32,
    file       String,
    applied_ns Int64
)
ENGINE = ReplacingMergeTree
ORDER BY version"""
_VERSIONED = re.compile(r"^(\d+)_[a-z0-9_]+\.sql$")


def schema_statements() -> list[tuple[int, str, str]]:
    """(version, file name, text) of every migration in `SCHEMA_DIR`, by version. A file holds one statement, or
    several each ending with `;` at the end of a line (`migration_statements`). Raises AnalyticsError for a file not
    named `NN_<what>.sql` or two files with one version."""
    out: dict[int, tuple[int, str, str]] = {}
    for path in SCHEMA_DIR.glob("*.sql"):
        found = _VERSIONED.match(path.name)
        if found is None:
            raise AnalyticsError(f"schema file {path.name}: not named <version>_<what>.sql")
        version = int(found.group(1))
        if version in out:
            raise AnalyticsError(f"schema files {out[version][1]} and {path.name} have the same version {version}")
        out[version] = (version, path.name, path.read_text())
    return [out[v] for v in sorted(out)]


def migration_statements(text: str) -> list[str]:
    """The statements of one migration file, in order: its `--` comment lines dropped, split at each `;` that ends
    a line."""
    body = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    return [part.strip() for part in re.split(r";[ \t]*(?:\n|$)", body) if part.strip()]


def schema_version(client: Client) -> int:
    """The highest migration the client's database has recorded (0 for none)."""
    client.command(_MIGRATIONS_TABLE)
    return int(client.command("SELECT max(version) FROM schema_migrations FINAL") or 0)


def apply_schema(client: Client) -> list[str]:
    """Apply, in order, every migration the client's database has not recorded, and record each; returns the file
    names applied (none when the schema is current). Raises AnalyticsError naming the file when a migration fails
    (the ones before it stay applied and recorded), and when the database records a version newer than this OMS's
    last migration."""
    statements = schema_statements()
    try:
        client.command(_MIGRATIONS_TABLE)
        done = {int(v) for (v,) in client.query("SELECT version FROM schema_migrations FINAL").result_rows}
    except ClickHouseDriverError as exc:
        raise AnalyticsError(f"schema_migrations: {error_message(exc)}") from None
    known = statements[-1][0] if statements else 0
    if done and max(done) > known:
        raise AnalyticsError(
            f"the database records schema version {max(done)}, newer than this OMS's {known}: it was written by a "
            "newer version of the OMS"
        )
    applied = []
    for version, name, statement in statements:
        if version in done:
            continue
        try:
            for one in migration_statements(statement):
                client.command(one)
            client.insert("schema_migrations", [[version, name, time.time_ns()]],
                          column_names=["version", "file", "applied_ns"])  # fmt: skip
        except ClickHouseDriverError as exc:
            raise AnalyticsError(f"schema file {name}: {error_message(exc)}") from None
        applied.append(name)
    return applied
