"""The views of the schema (`08_views.sql`) against the raw records of the seeded world of `test_tca`."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from decimal import Decimal

import pytest

from oms.core.model.messages import OrderCanceled, OrderReplaced
from oms.infra.clickhouse.clickhouse import Client, apply_schema, connect
from tests.unit.infra.test_tca import SCALE, Book, load, simulate


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Client, Book]]:
    client = connect(f"chdb://{tmp_path_factory.mktemp('views')}/store", "v")
    apply_schema(client)
    market, book = simulate(seed=11)
    load(client, market, book)
    yield client, book
    client.close()


def _qty(symbol: str, units: int) -> Decimal:
    return Decimal(units).scaleb(-len(str(SCALE[symbol].qty_div)) + 1)


def test_order_state_says_what_filled_and_how_each_order_ended(world: tuple[Client, Book]) -> None:
    ch, book = world
    want = {}
    for acc in book.accepted:
        fills = [f for f in book.fills if f.order_id == acc.order_id]
        others = [o for o in book.other if o.order_id == acc.order_id]
        replaced = [o for o in others if isinstance(o, OrderReplaced)]
        qty = _qty(acc.symbol, replaced[-1].qty if replaced else acc.qty)
        filled = sum((_qty(f.symbol, f.qty) for f in fills), Decimal(0))
        if any(isinstance(o, OrderCanceled) for o in others):
            status = "canceled"
        else:
            status = "filled" if filled >= qty else "partially_filled" if filled else "replaced" if replaced else "new"
        want[acc.order_id] = (qty, filled, status)

    rows = ch.query("SELECT order_id, order_qty, filled_qty, status FROM order_state").result_rows

    assert {r[0]: r[1:] for r in rows} == want
    assert {"filled", "canceled"} <= {s for _, _, s in want.values()}


def test_order_history_holds_every_event_and_fill_once(world: tuple[Client, Book]) -> None:
    ch, book = world
    want = Counter(e.order_id for e in (*book.accepted, *book.other, *book.fills))

    rows = ch.query("SELECT order_id, count() FROM order_history GROUP BY order_id").result_rows

    assert dict(rows) == dict(want)


def test_executions_daily_sums_exactly(world: tuple[Client, Book]) -> None:
    ch, book = world
    price = {f.exec_id: Decimal(f.price).scaleb(-len(str(SCALE[f.symbol].price_div)) + 1) for f in book.fills}
    notional = sum(_qty(f.symbol, f.qty) * price[f.exec_id] for f in book.fills)

    ((got, fills),) = ch.query("SELECT sum(notional), sum(fills) FROM executions_daily").result_rows

    assert (got, fills) == (notional, len(book.fills))
