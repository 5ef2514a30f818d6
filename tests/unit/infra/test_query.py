"""Reading the embedded store through the process that holds it (`oms.infra.clickhouse.query`): the same answers as a
direct client, only reading statements, ClickHouse's errors passed on, and a socket only the owner can use."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from clickhouse_connect.driver.exceptions import DatabaseError

from oms.infra.clickhouse.clickhouse import AnalyticsError, Client, MissingTable, apply_schema, connect
from oms.infra.clickhouse.query import QueryServer, RemoteClient, check_read_only, socket_path
from oms.infra.clickhouse.reports import tca_orders
from tests.unit.infra.test_tca import SETTINGS, load, simulate


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Client, RemoteClient]]:
    store = tmp_path_factory.mktemp("query") / "store"
    client = connect(f"chdb://{store}", "q")
    apply_schema(client)
    load(client, *simulate())
    path = socket_path(f"chdb://{store}")
    assert path is not None
    server = QueryServer(client, path).start()
    yield client, RemoteClient(path, "q")
    server.stop()
    client.close()


def test_a_report_through_the_holder_equals_the_report_read_directly(served: tuple[Client, RemoteClient]) -> None:
    direct, remote = served

    assert tca_orders(remote, settings=SETTINGS).records() == tca_orders(direct, settings=SETTINGS).records()


def test_only_the_owner_may_connect(served: tuple[Client, RemoteClient]) -> None:
    _, remote = served
    assert stat.S_IMODE(Path(remote.path).stat().st_mode) == 0o600


@pytest.mark.parametrize(
    "sql",
    ["INSERT INTO orders (event) VALUES ('x')", "SELECT 1; DROP TABLE orders", "SELECT 1 INTO OUTFILE '/tmp/x'",
     "ALTER TABLE orders DELETE WHERE 1", "  drop table orders"],
)  # fmt: skip
def test_anything_but_one_reading_statement_is_refused_before_clickhouse(
    served: tuple[Client, RemoteClient], sql: str
) -> None:
    direct, remote = served
    before = direct.query("SELECT count() FROM orders").result_rows
    with pytest.raises(AnalyticsError, match="only one reading statement"):
        check_read_only(sql)
    with pytest.raises(DatabaseError, match="only one reading statement"):
        remote.query(sql)
    assert direct.query("SELECT count() FROM orders").result_rows == before


def test_reading_statements_with_comments_parameters_and_ctes_are_taken(served: tuple[Client, RemoteClient]) -> None:
    _, remote = served
    sql = "-- how many\nWITH n AS (SELECT count() AS c FROM executions FINAL) SELECT c + {k:Int64} AS x FROM n;"

    result = remote.query(sql, parameters={"k": 1})

    assert result.column_names == ("x",) and result.result_rows[0][0] > 1


def test_clickhouse_errors_come_back_as_its_one_line_message(served: tuple[Client, RemoteClient]) -> None:
    _, remote = served
    with pytest.raises(DatabaseError, match="UNKNOWN_TABLE"):
        remote.query("SELECT * FROM no_such_table")
    empty = RemoteClient(remote.path, "nodb")
    with pytest.raises(MissingTable):
        tca_orders(empty, settings=SETTINGS)
