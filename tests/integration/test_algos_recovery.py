"""Parents journaled to a real Redis and rebuilt: an OMS restart resumes a TWAP; an algo-engine restart finds its
working children again by ClOrdID; a child the restarted OMS no longer holds is treated as gone."""

from __future__ import annotations

import uuid

import pytest

from oms.adapters.algos import (
    AlgoEngine,
    CancelParent,
    ManualClock,
    ParentStatus,
    SubmitIceberg,
    SubmitTwap,
)
from oms.apps.serve import load_config, local_engine
from oms.apps.sim import SimMarket
from oms.core.algos.messages import ChildDone, ChildFilled, ChildSent
from oms.core.model.enums import OrdStatus, OrdType, Side, TimeInForce
from oms.core.model.messages import SubmitOrder
from oms.infra.redis.algo_store import RedisStore
from oms.runtime.sequencer import Sequencer

pytestmark = pytest.mark.integration

S = 1_000_000_000
MID = 1_500_000


@pytest.fixture
def store(redis_client) -> RedisStore:
    return RedisStore(redis_client, stream=f"test-{uuid.uuid4().hex[:12]}")


def algo_children(host: Sequencer, parent_id: str) -> list:
    engine = host.engine
    return [
        o for oid, o in engine.orders.items()
        if engine.session_of[oid] == "ALGO" and o.cl_ord_id.startswith(parent_id + ".")
    ]  # fmt: skip


def test_an_oms_restart_resumes_a_twap_from_the_journal(store, redis_client):
    twap = SubmitTwap("RT1", "ALGO1", "AAPL", Side.BUY, 6000, 60 * S, 660 * S, 10)
    first = SimMarket(seed=1, store=store)
    first.algos.submit(twap)
    first.run_until(250 * S)  # slices at 60, 120, 180 and 240 s
    before = first.algos.view("RT1")
    assert before.cum_qty == 2400
    del first  # the whole OMS goes: book, accounts, engine, algo engine

    second = SimMarket(seed=2, store=RedisStore(redis_client, stream=store._stream), start_ns=400 * S)
    assert second.algos.recover() == 1
    rebuilt = second.algos.view("RT1")

    # the slices due at 300 and 360 s while the OMS was down are caught up by one child at recovery
    kids = algo_children(second.host, "RT1")
    assert [(k.cl_ord_id, k.qty) for k in kids] == [("RT1.5", 1200)]
    assert rebuilt.cum_qty == 3600 and rebuilt.cum_notional == before.cum_notional + kids[0].cum_notional
    second.run_until(700 * S)

    view = second.algos.view("RT1")
    kids = algo_children(second.host, "RT1")
    assert (view.status, view.cum_qty) == (ParentStatus.FILLED, 6000)
    assert [k.qty for k in kids] == [1200, 600, 600, 600, 600]
    assert view.cum_notional == before.cum_notional + sum(k.cum_notional for k in kids)
    # and a third start rebuilds the finished parent exactly, sending nothing
    third = SimMarket(seed=3, store=RedisStore(redis_client, stream=store._stream), start_ns=800 * S)
    third.algos.recover()
    assert third.algos.view("RT1") == view and algo_children(third.host, "RT1") == []


def test_every_child_is_journaled_before_it_reaches_the_order_manager(store):
    m = SimMarket(seed=0, store=store)
    m.algos.submit(SubmitTwap("RT2", "ALGO1", "AAPL", Side.SELL, 300, 10 * S, 40 * S, 3))
    m.run_until(50 * S)

    records = list(store.read())
    sent = [r for r in records if isinstance(r, ChildSent)]
    fills = [r for r in records if isinstance(r, ChildFilled)]
    assert records[0] == SubmitTwap("RT2", "ALGO1", "AAPL", Side.SELL, 300, 10 * S, 40 * S, 3)
    assert [r.cl_ord_id for r in sent] == ["RT2.1", "RT2.2", "RT2.3"]
    assert all(records.index(s) < records.index(f) for s, f in zip(sent, fills, strict=True))
    assert sum(f.qty for f in fills) == 300 and store.length() == len(records)


def sell(host: Sequencer, cl: str, qty: int) -> None:
    cmd = SubmitOrder("ACC1", cl, "AAPL", Side.SELL, OrdType.LIMIT, qty, MID, tif=TimeInForce.IOC, session="C")
    host.run(lambda e: e.submit(cmd, S))


def test_an_algo_engine_restart_finds_its_working_child_by_cl_ord_id_and_its_fills_meanwhile(store, redis_client):
    loaded = load_config()
    host = Sequencer(local_engine(loaded))
    clock = ManualClock(S)
    old = AlgoEngine(host, loaded.instruments, clock, store)
    old.submit(SubmitIceberg("RI1", "ALGO1", "AAPL", Side.BUY, 300, 100, MID))
    sell(host, "a", 40)
    old.close()  # the algo engine stops; the OMS and its book go on
    sell(host, "b", 25)  # fills the child while nobody follows it

    new = AlgoEngine(host, loaded.instruments, clock, RedisStore(redis_client, stream=store._stream))
    new.recover()

    (child,) = algo_children(host, "RI1")
    assert new.view("RI1").cum_qty == 65 and child.cum_qty == 65  # the same child, still working
    sell(host, "c", 35)  # completes it: the recovered engine refills
    sell(host, "d", 100)
    sell(host, "e", 100)
    view = new.view("RI1")
    assert (view.status, view.cum_qty, view.cum_notional) == (ParentStatus.FILLED, 300, 300 * MID)
    assert [k.qty for k in algo_children(host, "RI1")] == [100, 100, 100]


def test_a_child_gone_with_the_restarted_book_is_recorded_lost_and_replaced(store, redis_client):
    loaded = load_config()
    host = Sequencer(local_engine(loaded))
    algos = AlgoEngine(host, loaded.instruments, ManualClock(S), store)
    algos.submit(SubmitIceberg("RI2", "ALGO1", "AAPL", Side.BUY, 300, 100, MID))
    sell(host, "a", 30)

    host2 = Sequencer(local_engine(loaded))  # a new OMS: the old book and its resting child are gone
    algos2 = AlgoEngine(host2, loaded.instruments, ManualClock(2 * S), RedisStore(redis_client, stream=store._stream))
    algos2.recover()

    (child,) = algo_children(host2, "RI2")
    assert (child.cl_ord_id, child.qty, child.status) == ("RI2.2", 100, OrdStatus.NEW)
    lost = [r for r in store.read() if isinstance(r, ChildDone) and r.outcome == "lost"]
    assert [r.cl_ord_id for r in lost] == ["RI2.1"]
    assert algos2.view("RI2").cum_qty == 30

    algos2.cancel(CancelParent("RI2"))
    assert algos2.view("RI2").status is ParentStatus.CANCELED
    assert host2.engine.working(session="ALGO") == []
