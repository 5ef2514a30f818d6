"""Schema versions (`apply_schema`): each migration once and in order, a store made by an earlier version brought up to
date with its rows kept, and a store written by a newer version refused."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from oms.infra.clickhouse.clickhouse import AnalyticsError, Client, apply_schema, connect, schema_statements

FIRST_RELEASE = 4  # the versions an OMS without schema_migrations had: CREATE TABLE IF NOT EXISTS only


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"chdb://{tmp_path_factory.mktemp('schema')}/store"


@pytest.fixture
def db(store: str, request: pytest.FixtureRequest) -> Iterator[Client]:
    client = connect(store, request.node.name.replace("test_", "s_")[:40])
    yield client
    client.close()


def _versions(client: Client) -> list[int]:
    return [v for (v,) in client.query("SELECT version FROM schema_migrations FINAL ORDER BY version").result_rows]


def test_a_new_database_gets_every_migration_once_in_order(db: Client) -> None:
    every = schema_statements()

    first = apply_schema(db)
    again = apply_schema(db)

    assert first == [name for _, name, _ in every] and again == []
    assert _versions(db) == [v for v, _, _ in every] == sorted(v for v, _, _ in every)


def test_a_store_from_before_versions_is_brought_up_to_date_and_keeps_its_rows(db: Client) -> None:
    for version, _, statement in schema_statements():
        if version <= FIRST_RELEASE:
            db.command(statement)
    db.command("INSERT INTO orders (event, order_id, cl_ord_id, account, symbol, price, ts_ns, src_ms, src_seq) "
               "VALUES ('accepted', 7, 'c7', 'ACC1', 'AAPL', 2099.68, 1, 5, 0)")  # fmt: skip
    db.command("INSERT INTO executions (exec_id, order_id, account, symbol, qty, price, leaves_qty, cum_qty, ts_ns, "
               "src_ms, src_seq) VALUES (1, 7, 'ACC1', 'AAPL', 0.3, 2049.67, 0, 0.3, 1, 6, 0), "
               "(2, 7, 'ACC1', 'AAPL', 0.7, 50.01, 0, 1, 2, 7, 0)")  # fmt: skip

    applied = apply_schema(db)

    assert len(applied) == len(schema_statements())  # the first ones again (harmless), then the new ones
    rows = db.query("SELECT cl_ord_id, price, session, venue, parent_id, src FROM orders FINAL").result_rows
    assert rows == [("c7", Decimal("2099.68"), "", "", "", "")]
    money = db.query("SELECT sum(price), sum(qty) FROM executions FINAL").result_rows
    assert money == [(Decimal("2099.68"), Decimal("1"))]  # the Float64 rows converted exactly (as floats: ...003)
    assert db.query("SELECT count() FROM operator_actions").result_rows == [(0,)]


def test_a_database_written_by_a_newer_version_is_refused(db: Client) -> None:
    apply_schema(db)
    db.insert("schema_migrations", [[999, "999_future.sql", 0]], column_names=["version", "file", "applied_ns"])

    with pytest.raises(AnalyticsError, match=r"records schema version 999, newer than this OMS's \d+"):
        apply_schema(db)


def test_every_schema_file_is_a_numbered_migration() -> None:
    names = sorted(p.name for p in Path(schema_statements.__code__.co_filename).parent.glob("sql/schema/*.sql"))
    assert [name for _, name, _ in schema_statements()] == names
