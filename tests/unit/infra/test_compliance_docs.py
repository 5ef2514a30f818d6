"""The SQL examples of docs/compliance.md run as written on a store with the schema and data (the seeded world of
`test_tca`): each statement executes, and the order-history example comes back in time order."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from oms.infra.clickhouse.clickhouse import Client, apply_schema, connect
from tests.unit.infra.test_tca import load, simulate

DOC = Path(__file__).resolve().parents[3] / "docs" / "compliance.md"


def _statements() -> list[str]:
    blocks = re.findall(r"```sql\n(.*?)```", DOC.read_text(), re.S)
    out = []
    for block in blocks:
        text = "\n".join(line for line in block.splitlines() if not line.lstrip().startswith("--"))
        out += [s.strip() for s in text.split(";") if s.strip() and not s.strip().upper().startswith("CREATE")]
    return out


@pytest.fixture(scope="module")
def ch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    client = connect(f"chdb://{tmp_path_factory.mktemp('docs')}/store", "oms")
    apply_schema(client)
    market, book = simulate()
    load(client, market, book)
    yield client
    client.close()


def test_the_docs_have_sql_examples() -> None:
    assert len(_statements()) >= 5


@pytest.mark.parametrize("statement", _statements(), ids=lambda s: s.split("\n")[0][:40])
def test_each_sql_example_runs(ch: Client, statement: str) -> None:
    ch.query(statement)


def test_the_order_history_example_is_in_time_order(ch: Client) -> None:
    (history,) = [s for s in _statements() if "UNION ALL" in s]
    filled = ch.query("SELECT order_id FROM executions FINAL GROUP BY order_id HAVING count() > 1 LIMIT 1")
    order_id = filled.result_rows[0][0]

    rows = ch.query(history.replace("order_id = 42", f"order_id = {order_id}")).result_rows

    assert len(rows) >= 3 and [r[0] for r in rows] == sorted(r[0] for r in rows)
