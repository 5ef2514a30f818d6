"""Reserved mode over Ray: RayAllowanceGate with reserved accounts, against AccountShard actors journaling to a real
Redis.

The safety property runs random order, fill, cancel, replace, print and operator sequences through the gate and,
beside it, a strict mirror (an AccountState fed the same history without the allowance events): no order the gate
accepts is one the mirror rejects, a fallback is the mirror's own decision, and at the end the account equals the
mirror and every journaled decision equals a strict decision on the journal's own history.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from oms.core.accounts import AccountEvent, AccountSnapshot, AccountState, AllowanceRequest, AllowanceSpent, Marked
from oms.core.engine import OrderManager, Unsettled
from oms.core.model.enums import CancelReason, OrdType, RejectReason, RiskMode, Side, TradingState
from oms.core.model.enums import TimeInForce as T
from oms.core.model.instruments import InstrumentRegistry
from oms.core.model.messages import (
    OrderAccepted,
    OrderCanceled,
    OrderFilled,
    OrderRejected,
    OrderReplaced,
    ReplaceOrder,
    SubmitOrder,
    TradePrinted,
)
from oms.core.venues.internal import InternalVenue
from oms.infra.ray.actors import RayAllowanceGate, ShardConfig, account_actor_class, build_gate
from oms.infra.redis.journal import Journal
from oms.infra.redis.reportlog import ReportLog
from oms.infra.redis.server import ManagedRedis, make_client
from risk.limits import LimitsSpec, SymbolSpec, load_risk_config, resolve_limits

pytestmark = pytest.mark.integration

ROOT = Path(__file__).parents[2]
CONFIGS = ROOT / "configs"
REG = InstrumentRegistry.load(CONFIGS / "instruments.toml")
PX = 1_500_000  # AAPL 150.00
Wal = ReportLog[AccountEvent]
SMALL = AllowanceRequest(orders=8, credit_share_bp=5_000, qty_share_bp=5_000, band_share_bp=5_000)


def _wait(ref: Any) -> Any:
    import ray

    return ray.get(ref, timeout=60)


def _restart(actor: Any) -> None:
    """Kill `actor` and wait until Ray has restarted it (a new process answers)."""
    import ray

    old_pid = _wait(actor.pid.remote())
    ray.kill(actor, no_restart=False)
    deadline = time.monotonic() + 60
    while True:  # calls fail, or still reach the dying process, until the restarted one answers
        try:
            if ray.get(actor.pid.remote(), timeout=30) != old_pid:
                return
        except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError):
            pass
        assert time.monotonic() < deadline, "the actor was not restarted within 60 s"
        time.sleep(0.2)


@pytest.fixture
def config(redis_server: ManagedRedis) -> ShardConfig:
    return ShardConfig(redis_server.url, str(CONFIGS / "instruments.toml"), str(CONFIGS / "accounts.toml"), 25)


@pytest.fixture
def actor(config: ShardConfig, fresh_redis: Any, ray_cluster: None) -> Iterator[Any]:
    """One actor hosting ACC1, ACC2 and ALGO1 (ALGO1 is configured reserved, the others strict)."""
    import ray

    handle = account_actor_class().options(name=f"acct-{uuid.uuid4().hex[:8]}", namespace="oms")
    a = handle.remote(["ACC1", "ACC2", "ALGO1"], config)
    _wait(a.accounts.remote())
    yield a
    ray.kill(a, no_restart=True)


@pytest.fixture
def wal(redis_server: ManagedRedis) -> ReportLog[AccountEvent]:
    """The gate's write-ahead log on the actors' Redis."""
    return ReportLog(make_client(redis_server.url), AccountEvent)


def order(account: str, cl: str, side: Side = Side.BUY, qty: int = 10, price: int | None = PX) -> SubmitOrder:
    ord_type = OrdType.LIMIT if price is not None else OrdType.MARKET
    return SubmitOrder(account, cl, "AAPL", side, ord_type, qty, price, tif=T.GTC, session=account)


def warm_up(gate: RayAllowanceGate, account: str = "ALGO1") -> None:
    """A trade print (the call that takes it to the actor, without waiting, also brings the reserved account its
    first grant: the account's next decision waits for it), then one order, decided locally."""
    gate.on_events([TradePrinted("SIM", "AAPL", 1, PX, 1, Side.BUY, 1)])
    assert isinstance(gate.decide(order(account, "warm"), 1, 2), OrderAccepted)
    assert (gate.local_accepts, gate.fallbacks) == (1, 0)


# -- the gate: per-account modes, local decisions, reports --


def test_build_gate_takes_each_accounts_mode_from_the_configuration(actor: Any, wal: Wal) -> None:
    risk = load_risk_config(CONFIGS / "accounts.toml", REG)

    gate = build_gate({"ACC1": actor, "TIGHT1": actor, "ALGO1": actor}, risk, REG, wal)

    assert risk.accounts["ALGO1"].risk_mode is RiskMode.RESERVED
    assert risk.accounts["TIGHT1"].risk_mode is RiskMode.STRICT
    assert gate.reserved_accounts() == ["ACC1", "ALGO1"] and gate.accounts() == ["ACC1", "ALGO1", "TIGHT1"]


def test_reserved_orders_are_decided_locally_and_journaled_before_the_next_call(
    actor: Any, wal: Wal, redis_server
) -> None:
    gate = RayAllowanceGate(
        {"ALGO1": actor, "ACC1": actor}, REG, reserved=["ALGO1"], log=wal, request=SMALL, low_orders=0
    )
    warm_up(gate)

    local = [gate.decide(order("ALGO1", f"r{i}"), 10 + i, 10 + i) for i in range(5)]
    strict = gate.decide(order("ACC1", "s1"), 20, 20)  # a strict account: a round trip, reports travel ahead of it

    assert all(isinstance(d, OrderAccepted) for d in local) and isinstance(strict, OrderAccepted)
    assert gate.local_accepts == 6 and gate.fallbacks == 1
    journal = Journal(make_client(redis_server.url), AccountEvent)
    records = [r for _, r in journal.read("ALGO1")]
    assert [r for r in records if isinstance(r, OrderAccepted)] == [
        next(r for r in records if isinstance(r, OrderAccepted) and r.cl_ord_id == "warm"),
        *local,
    ]
    assert sum(isinstance(r, AllowanceSpent) for r in records) == 6
    summary = _wait(actor.summary.remote("ALGO1"))
    assert summary["working_orders"] == [1, 10, 11, 12, 13, 14]
    assert _wait(actor.state_hash.remote("ALGO1")) == _wait(actor.replayed_hash.remote("ALGO1"))


def test_closing_the_gate_returns_the_allowances_and_journals_every_local_decision(
    actor: Any, wal: Wal, redis_server
) -> None:
    gate = RayAllowanceGate({"ALGO1": actor}, REG, reserved=["ALGO1"], log=wal, request=SMALL, batch=1)
    warm_up(gate)
    gate.decide(order("ALGO1", "l2"), 3, 3)  # batch 1: sent at the next post-trade step, without waiting
    gate.on_events([])
    gate.decide(order("ALGO1", "l3"), 4, 4)  # still queued

    gate.close()

    records = [r for _, r in Journal(make_client(redis_server.url), AccountEvent).read("ALGO1")]
    assert [r.order_id for r in records if isinstance(r, OrderAccepted)] == [1, 3, 4]
    assert type(records[-1]).__name__ == "AllowanceReturned"
    assert _wait(actor.summary.remote("ALGO1"))["allowance_id"] == 0
    assert gate.reserved_accounts() == [] and gate.allowance_left("ALGO1") is None
    assert isinstance(gate.decide(order("ALGO1", "after"), 5, 5), OrderAccepted) and gate.fallbacks == 1


def test_a_low_allowance_is_topped_up_without_waiting(actor: Any, wal: Wal) -> None:
    request = msgspec.structs.replace(SMALL, orders=40)
    gate = RayAllowanceGate({"ALGO1": actor}, REG, reserved=["ALGO1"], log=wal, request=request, low_orders=20)
    warm_up(gate)
    for i in range(19):  # 40 tokens: down to 20, low
        gate.decide(order("ALGO1", f"a{i}"), 10 + i, 10 + i)
    gate.on_events([])  # the post-trade step asks for a top-up, without waiting for it
    while gate.top_ups == 0 and gate.local_accepts < 39:  # the answer is added at a decision once it is back
        time.sleep(0.02)
        n = 100 + gate.local_accepts
        assert isinstance(gate.decide(order("ALGO1", f"t{n}"), n, n), OrderAccepted)

    assert gate.top_ups == 1
    assert gate.fallbacks == 0  # never short of tokens: every order was local
    left = gate.allowance_left("ALGO1")
    assert left is not None and left[0] > 0
    gate.flush()
    allowance = _wait(actor.snapshot.remote("ALGO1")).allowance
    assert allowance is not None and allowance.orders == left[0]  # the account's view: the gate's, all reported


def test_orders_the_allowance_cannot_cover_are_decided_by_the_actor(actor: Any, wal: Wal) -> None:
    gate = RayAllowanceGate({"ALGO1": actor}, REG, reserved=["ALGO1"], log=wal, request=SMALL)
    warm_up(gate)

    too_big = gate.decide(order("ALGO1", "big", qty=20_000), 10, 10)  # above max_order_qty
    stop = gate.decide(SubmitOrder("ALGO1", "stop", "AAPL", Side.BUY, OrdType.STOP, 5, None, stop_price=PX), 11, 11)
    duplicate = gate.decide(order("ALGO1", "warm"), 12, 12)

    assert isinstance(too_big, OrderRejected) and too_big.reason is RejectReason.MAX_ORDER_QTY
    assert isinstance(stop, OrderAccepted)
    assert isinstance(duplicate, OrderRejected) and duplicate.reason is RejectReason.DUPLICATE_CL_ORD_ID
    assert (gate.local_accepts, gate.local_rejects, gate.fallbacks) == (1, 1, 2)  # a sure reject is local too


# -- revocation --


def test_a_kill_switch_through_the_engine_revokes_at_once_and_cancels_local_accepts(actor: Any, wal: Wal) -> None:
    gate = RayAllowanceGate({"ALGO1": actor}, REG, reserved=["ALGO1"], log=wal, request=SMALL)
    venue = InternalVenue(REG)
    oms = OrderManager(REG, gate, lambda symbol: venue)
    gate.on_events([TradePrinted("SIM", "AAPL", 1, PX, 1, Side.BUY, 1)])  # brings the grant
    oms.submit(order("ALGO1", "w"), 2)
    oms.submit(order("ALGO1", "l1"), 3)  # local, its report still queued
    assert gate.local_accepts == 2

    canceled = oms.kill_switch("ALGO1", True, 4)
    (rejected,) = oms.submit(order("ALGO1", "l2"), 5)

    assert sorted(c.cl_ord_id for c in canceled) == ["l1", "w"]
    assert gate.allowance_left("ALGO1") is None
    assert isinstance(rejected, OrderRejected) and rejected.reason is RejectReason.KILL_SWITCH
    assert gate.local_accepts == 2 and gate.fallbacks == 1
    summary = _wait(actor.summary.remote("ALGO1"))
    assert (summary["kill_switch"], summary["working_orders"], summary["exposure"]) == (True, [], 0)
    assert summary["allowance_id"] == 0


@pytest.mark.parametrize(
    "change",
    [
        lambda gate, limits: gate.set_limits("ALGO1", msgspec.structs.replace(limits, max_order_notional=1), 10),
        lambda gate, limits: gate.set_trading_state("ALGO1", TradingState.REDUCING, 10),
        lambda gate, limits: gate.revoke_allowance("ALGO1", 10),
        lambda gate, limits: gate.start_day("ALGO1", 10),
    ],
    ids=["limits", "trading-state", "revoke", "day"],
)
def test_operator_changes_through_the_gate_revoke_the_allowance_at_once(actor: Any, wal: Wal, change: Any) -> None:
    gate = RayAllowanceGate({"ALGO1": actor}, REG, reserved=["ALGO1"], log=wal, request=SMALL)
    warm_up(gate)
    gate.decide(order("ALGO1", "queued"), 5, 5)
    limits = load_risk_config(CONFIGS / "accounts.toml", REG).accounts["ALGO1"]

    change(gate, limits)
    after = gate.decide(order("ALGO1", "next"), 11, 11)

    assert gate.fallbacks == 1  # the very next order went to the actor
    state = _wait(actor.snapshot.remote("ALGO1"))
    assert 5 in {o.order_id for o in state.orders}  # the queued report landed before the change
    if state.limits.max_order_notional == 1:
        assert isinstance(after, OrderRejected) and after.reason is RejectReason.MAX_ORDER_NOTIONAL
    elif state.trading_state is TradingState.REDUCING:
        assert isinstance(after, OrderRejected) and after.reason is RejectReason.REDUCE_ONLY
    else:
        assert isinstance(after, OrderAccepted) and gate.allowance_left("ALGO1") is not None  # granted anew
    assert _wait(actor.state_hash.remote("ALGO1")) == _wait(actor.replayed_hash.remote("ALGO1"))


def test_a_print_that_voids_the_grant_brings_a_fresh_one_in_the_same_call(actor: Any, wal: Wal) -> None:
    gate = RayAllowanceGate({"ALGO1": actor}, REG, reserved=["ALGO1"], log=wal, request=SMALL)
    warm_up(gate)
    first = _wait(actor.summary.remote("ALGO1"))["allowance_id"]

    gate.on_events([TradePrinted("SIM", "AAPL", 2, PX * 110 // 100, 1, Side.BUY, 5)])  # beyond the band

    assert gate.allowance_left("ALGO1") is not None
    assert _wait(actor.summary.remote("ALGO1"))["allowance_id"] == first + 1
    decision = gate.decide(order("ALGO1", "new", price=PX * 110 // 100), 6, 6)
    assert isinstance(decision, OrderAccepted) and gate.local_accepts == 2


def test_an_actor_that_missed_prints_catches_up_before_it_decides(config, fresh_redis, ray_cluster) -> None:
    import ray

    cls = account_actor_class()
    busy, idle = cls.remote(["ACC1"], config), cls.remote(["ACC2"], config)
    try:
        _wait(idle.apply_batch.remote([Marked("ACC2", "AAPL", PX, 1)]))  # ACC2 knows AAPL at 150.00, holds nothing
        gate = RayAllowanceGate({"ACC1": busy, "ACC2": idle})
        assert isinstance(gate.decide(order("ACC1", "b1"), 1, 2), OrderAccepted)  # ACC1 now trades AAPL
        gate.on_events([TradePrinted("SIM", "AAPL", 2, PX * 130 // 100, 1, Side.BUY, 3)])  # only to ACC1's actor

        at_new_price = gate.decide(order("ACC2", "s1", Side.SELL, price=PX * 129 // 100), 2, 4)

        assert isinstance(at_new_price, OrderAccepted)  # 30 % above what ACC2 knew: it caught up first
        assert _wait(idle.snapshot.remote("ACC2")).marks.last["AAPL"] == PX * 130 // 100
    finally:
        ray.kill(busy, no_restart=True)
        ray.kill(idle, no_restart=True)


# -- recovery --


def test_an_actor_restart_with_reserved_accounts_keeps_the_state_hash(actor: Any, wal: Wal) -> None:
    gate = RayAllowanceGate(
        {"ACC1": actor, "ALGO1": actor}, REG, reserved=["ALGO1"], log=wal, request=SMALL, low_orders=2
    )
    venue = InternalVenue(REG)
    oms = OrderManager(REG, gate, lambda symbol: venue)
    gate.on_events([TradePrinted("SIM", "AAPL", 1, PX, 1, Side.BUY, 1)])
    filled: dict[str, int] = {"ACC1": 0, "ALGO1": 0}

    def trade(tag: str, n: int) -> None:
        for i in range(n):
            now = time.time_ns()
            events = oms.submit(order("ALGO1", f"b{tag}{i}"), now) + oms.submit(
                order("ACC1", f"s{tag}{i}", Side.SELL), now + 1
            )  # the strict sell crosses the locally accepted buy
            for e in events:
                if isinstance(e, OrderFilled):
                    filled[e.account] += e.qty

    trade("before", 6)
    assert gate.local_accepts >= 4
    before = {a: _wait(actor.state_hash.remote(a)) for a in ("ACC1", "ALGO1")}
    _restart(actor)
    after = {a: _wait(actor.state_hash.remote(a)) for a in ("ACC1", "ALGO1")}
    assert after == before == {a: _wait(actor.replayed_hash.remote(a)) for a in ("ACC1", "ALGO1")}

    trade("after", 6)

    positions = {a: _wait(actor.summary.remote(a))["positions"]["AAPL"]["qty"] for a in ("ACC1", "ALGO1")}
    assert positions == {"ALGO1": filled["ALGO1"], "ACC1": -filled["ACC1"]} == {"ALGO1": 120, "ACC1": -120}
    for a in ("ACC1", "ALGO1"):
        assert _wait(actor.state_hash.remote(a)) == _wait(actor.replayed_hash.remote(a))


def test_a_replace_the_allowance_covers_is_decided_without_the_actor_and_survives_its_restart(
    actor: Any, wal: Wal, redis_server: ManagedRedis
) -> None:
    gate = RayAllowanceGate({"ALGO1": actor}, REG, reserved=["ALGO1"], log=wal, request=SMALL, low_orders=0)
    venue = InternalVenue(REG)
    oms = OrderManager(REG, gate, lambda symbol: venue)
    gate.on_events([TradePrinted("SIM", "AAPL", 1, PX, 1, Side.BUY, 1)])
    now = time.time_ns()
    (accepted,) = oms.submit(order("ALGO1", "b1", qty=10, price=PX - 1_000), now)  # rests: nothing to cross
    assert isinstance(accepted, OrderAccepted) and gate.local_accepts == 1
    gate.flush()
    held = _wait(actor.summary.remote("ALGO1"))["exposure"]

    events = oms.replace(ReplaceOrder("ALGO1", "b2", "b1", "AAPL", Side.BUY, 30, PX - 2_000, session="ALGO1"), now + 1)

    assert [type(e) for e in events] == [OrderReplaced]
    assert (gate.local_replaces, gate.replace_checks, gate.fallbacks) == (1, 0, 0)  # the actor was not asked
    gate.flush()
    summary = _wait(actor.summary.remote("ALGO1"))
    assert summary["working_orders"] == [accepted.order_id]
    assert summary["exposure"] * 10 * (PX - 1_000) == held * 30 * (PX - 2_000)  # held at the new terms
    journal = Journal(make_client(redis_server.url), AccountEvent)
    records = [r for _, r in journal.read("ALGO1")]
    spends = [r for r in records if isinstance(r, AllowanceSpent)]
    assert [(s.order_id, s.qty) for s in spends] == [(accepted.order_id, 10), (accepted.order_id, 30)]
    assert [r.cl_ord_id for r in records if isinstance(r, OrderReplaced)] == ["b2"]

    _restart(actor)

    assert _wait(actor.state_hash.remote("ALGO1")) == _wait(actor.replayed_hash.remote("ALGO1"))
    assert _wait(actor.summary.remote("ALGO1"))["exposure"] == summary["exposure"]
    gate.close()


def queueing_gate(actor: Any, wal: Wal) -> RayAllowanceGate:
    """ALGO1 reserved, written ahead to `wal`, its reports queued until asked for (no top-ups either: asking for one
    sends the queued reports first)."""
    return RayAllowanceGate(
        {"ALGO1": actor}, REG, reserved=["ALGO1"], log=wal, request=SMALL, batch=1000, flush_after_ns=10**15,
        low_orders=0,
    )


def test_acceptances_whose_reports_die_with_the_actor_come_back_from_the_log(
    actor: Any, wal: Wal, redis_server: ManagedRedis
) -> None:
    gate = queueing_gate(actor, wal)
    warm_up(gate)
    acked = [1]
    for i in range(2, 7):
        assert isinstance(gate.decide(order("ALGO1", f"q{i}"), i, 10 + i), OrderAccepted)
        acked.append(i)
    assert gate.local_accepts == 6 and wal.length("ALGO1") >= 5  # the reports are still queued in the gate
    canceled = [OrderCanceled(i, f"q{i}", "ALGO1", "AAPL", CancelReason.USER, 10, 20 + i) for i in (3, 5)]
    gate.on_events(canceled[:1])
    gate.on_events(canceled[1:])  # the cancels are written ahead and queued too, asking the actor nothing
    assert wal.length("ALGO1") >= 7

    _restart(actor)  # the new actor finds them in the log
    journal = Journal(make_client(redis_server.url), AccountEvent)
    records = [r for _, r in journal.read("ALGO1")]
    assert [r.order_id for r in records if isinstance(r, OrderAccepted)] == acked
    assert [r.order_id for r in records if isinstance(r, OrderCanceled)] == [3, 5]
    assert wal.length("ALGO1") == 0

    gate.close()  # the same reports arrive now, behind the recovery: skipped, not applied twice
    records = [r for _, r in journal.read("ALGO1")]
    assert [r.order_id for r in records if isinstance(r, OrderAccepted)] == acked
    assert [r.order_id for r in records if isinstance(r, OrderCanceled)] == [3, 5]
    assert _wait(actor.state_hash.remote("ALGO1")) == _wait(actor.replayed_hash.remote("ALGO1"))
    assert _wait(actor.summary.remote("ALGO1"))["working_orders"] == [1, 2, 4, 6]



def test_a_replace_joined_to_its_spend_comes_back_from_the_log_once_when_its_report_dies_with_the_actor(
    actor: Any, wal: Wal, redis_server: ManagedRedis
) -> None:
    gate = RayAllowanceGate(
        {"ALGO1": actor}, REG, reserved=["ALGO1"], log=wal, request=SMALL, batch=1000, flush_after_ns=10**15,
        low_orders=0, group_commit=True,
    )  # fmt: skip
    venue = InternalVenue(REG)
    oms = OrderManager(REG, gate, lambda symbol: venue)
    gate.on_events([TradePrinted("SIM", "AAPL", 1, PX, 1, Side.BUY, 1)])
    now = time.time_ns()

    def step(events: list[Any]) -> list[Any]:  # as the sequencer ends a batch: its entries written
        write = gate.seal()
        if write is not None:
            write()
        return events

    (accepted,) = step(oms.submit(order("ALGO1", "b1", qty=10, price=PX - 1_000), now))
    replaced = step(oms.replace(ReplaceOrder("ALGO1", "b2", "b1", "AAPL", Side.BUY, 30, PX - 2_000, session="ALGO1"),
                                now + 1))  # fmt: skip
    assert [type(e) for e in replaced] == [OrderReplaced]
    assert (gate.local_accepts, gate.local_replaces, gate.replaces_joined, gate.replace_checks) == (1, 1, 1, 0)
    assert [[type(r) for r in records] for _, records in wal.pending("ALGO1")[0][-1:]] == [
        [AllowanceSpent, OrderReplaced]
    ]  # one entry: journaled together or not at all

    _restart(actor)  # the reports are still queued in the gate: the new actor finds both entries in the log
    journal = Journal(make_client(redis_server.url), AccountEvent)
    records = [r for _, r in journal.read("ALGO1")]
    assert [r.cl_ord_id for r in records if isinstance(r, OrderReplaced)] == ["b2"]
    exposure = _wait(actor.summary.remote("ALGO1"))["exposure"]

    gate.close()  # the same reports arrive now, behind the recovery: skipped, the replace not applied twice
    records = [r for _, r in journal.read("ALGO1")]
    assert [r.cl_ord_id for r in records if isinstance(r, OrderReplaced)] == ["b2"]
    assert [r.order_id for r in records if isinstance(r, OrderAccepted)] == [accepted.order_id]
    assert _wait(actor.summary.remote("ALGO1"))["exposure"] == exposure
    assert _wait(actor.state_hash.remote("ALGO1")) == _wait(actor.replayed_hash.remote("ALGO1"))


@pytest.mark.parametrize("dies", ["before_taking_them", "after_journaling_them"])
def test_fills_whose_settle_dies_with_the_actor_come_back_from_the_log_once(
    actor: Any, wal: Wal, redis_server: ManagedRedis, dies: str
) -> None:
    """The actor dies during the call that settles fills (before it took them, or after it journaled them and before
    it answered): the gate had written them ahead, so the engine goes on (`Unsettled`) and the rebuilt account has
    each fill exactly once."""
    gate = queueing_gate(actor, wal)
    warm_up(gate)
    assert isinstance(gate.decide(order("ALGO1", "q2"), 2, 12), OrderAccepted)
    settle = gate._host.gate_settle  # type: ignore[attr-defined]

    def dying(reports, call, marks=()):  # type: ignore[no-untyped-def]
        if dies == "after_journaling_them":
            settle(reports, call, marks)
        raise ConnectionError("the actor died mid-call")

    gate._host.gate_settle = dying  # type: ignore[attr-defined]
    fills = [OrderFilled(2, "q2", "ALGO1", "AAPL", 900 + n, Side.BUY, 4, PX, 6 - 4 * n, 4 + 4 * n, (4 + 4 * n) * PX,
                         True, 30 + n) for n in range(2)]  # fmt: skip
    with pytest.raises(Unsettled):
        gate.on_events(fills[:1])
    assert gate.allowance_left("ALGO1") is None  # its next orders go to the rebuilt actor
    gate._host.gate_settle = settle  # type: ignore[attr-defined]

    _restart(actor)
    journal = Journal(make_client(redis_server.url), AccountEvent)
    assert [r.exec_id for _, r in journal.read("ALGO1") if isinstance(r, OrderFilled)] == [900]
    assert wal.length("ALGO1") == 0
    gate.on_events(fills[1:])  # the next fill: settled as usual
    gate.close()
    assert [r.exec_id for _, r in journal.read("ALGO1") if isinstance(r, OrderFilled)] == [900, 901]
    assert _wait(actor.state_hash.remote("ALGO1")) == _wait(actor.replayed_hash.remote("ALGO1"))
    summary = _wait(actor.summary.remote("ALGO1"))
    assert summary["working_orders"] == [1, 2] and summary["positions"]["AAPL"]["qty"] == 8



def test_fills_whose_journal_append_fails_are_not_dropped_from_the_log_by_a_later_call(
    actor: Any, wal: Wal, redis_server: ManagedRedis
) -> None:
    """Redis dies while the actor journals a settle's fills (they are in the log: the gate wrote them ahead), and is
    back before the gate asks for the rebuild: the next call that journals reports of later log entries (and deletes
    the log up to them) must not delete the fills' entry before they are journaled."""
    gate = queueing_gate(actor, wal)
    warm_up(gate)
    assert isinstance(gate.decide(order("ALGO1", "q2"), 2, 12), OrderAccepted)
    settle = gate._host.gate_settle  # type: ignore[attr-defined]

    def journal_dies(reports, call, marks=()):  # type: ignore[no-untyped-def]
        redis_server.kill()  # after the gate's write-ahead, before the actor's append
        try:
            return settle(reports, call, marks)
        finally:
            redis_server.revive()

    gate._host.gate_settle = journal_dies  # type: ignore[attr-defined]
    fill = OrderFilled(2, "q2", "ALGO1", "AAPL", 900, Side.BUY, 4, PX, 6, 4, 4 * PX, True, 30)
    with pytest.raises(Unsettled):
        gate.on_events([fill])
    gate._host.gate_settle = settle  # type: ignore[attr-defined]
    # later orders of the account's before the rebuild (which the runtime asks for within 50 ms): decided by the
    # actor, none locally under a fresh grant whose report would delete the log up to its own entry
    assert isinstance(gate.decide(order("ALGO1", "q3"), 3, 40), OrderAccepted)
    assert isinstance(gate.decide(order("ALGO1", "q4"), 4, 41), OrderAccepted)
    gate.resync()
    assert not gate.unsynced
    assert isinstance(gate.decide(order("ALGO1", "q5"), 5, 42), OrderAccepted)  # locally again, once rebuilt
    gate.close()

    journal = Journal(make_client(redis_server.url), AccountEvent)
    records = [r for _, r in journal.read("ALGO1")]
    assert [r.exec_id for r in records if isinstance(r, OrderFilled)] == [900]
    assert sorted(r.order_id for r in records if isinstance(r, OrderAccepted)) == [1, 2, 3, 4, 5]
    assert wal.length("ALGO1") == 0
    assert _wait(actor.state_hash.remote("ALGO1")) == _wait(actor.replayed_hash.remote("ALGO1"))
    assert _wait(actor.summary.remote("ALGO1"))["positions"]["AAPL"]["qty"] == 4


def test_fills_whose_write_ahead_waited_for_redis_are_journaled_before_a_later_settle_deletes_the_log(
    actor: Any, wal: Wal, redis_server: ManagedRedis
) -> None:
    """Redis is down when a fill is settled: its entry waits in the gate, written with the next settle's entry of
    the same account. That settle deletes the log up to its own entry once journaled: the earlier fill's entry must
    be journaled first (the account is rebuilt before the call), once."""
    gate = queueing_gate(actor, wal)
    warm_up(gate)
    assert isinstance(gate.decide(order("ALGO1", "q2"), 2, 12), OrderAccepted)
    fills = [OrderFilled(2, "q2", "ALGO1", "AAPL", 900 + n, Side.BUY, 4, PX, 6 - 4 * n, 4 + 4 * n, (4 + 4 * n) * PX,
                         True, 30 + n) for n in range(2)]  # fmt: skip
    redis_server.kill()
    try:
        with pytest.raises(Unsettled):
            gate.on_events(fills[:1])
    finally:
        redis_server.revive()
    gate.on_events(fills[1:])
    gate.close()

    journal = Journal(make_client(redis_server.url), AccountEvent)
    records = [r for _, r in journal.read("ALGO1")]
    assert [r.exec_id for r in records if isinstance(r, OrderFilled)] == [900, 901]
    assert [r.order_id for r in records if isinstance(r, OrderAccepted)] == [1, 2]
    assert wal.length("ALGO1") == 0
    assert _wait(actor.state_hash.remote("ALGO1")) == _wait(actor.replayed_hash.remote("ALGO1"))
    assert _wait(actor.summary.remote("ALGO1"))["positions"]["AAPL"]["qty"] == 8


def test_a_record_the_log_holds_twice_is_journaled_once_when_the_account_is_rebuilt(
    actor: Any, wal: Wal, redis_server: ManagedRedis
) -> None:
    """A write retried after its answer was lost (Redis killed between its fsync and its reply) leaves its entries
    twice: the rebuilt account applies each record once."""
    gate = queueing_gate(actor, wal)
    warm_up(gate)
    assert isinstance(gate.decide(order("ALGO1", "q2"), 2, 12), OrderAccepted)
    entries, _ = wal.pending("ALGO1")
    wal.write_many([("ALGO1", records) for _, records in entries])  # the same records again

    _restart(actor)

    journal = Journal(make_client(redis_server.url), AccountEvent)
    accepted = [r.order_id for _, r in journal.read("ALGO1") if isinstance(r, OrderAccepted)]
    assert accepted == [1, 2] and wal.length("ALGO1") == 0
    assert _wait(actor.state_hash.remote("ALGO1")) == _wait(actor.replayed_hash.remote("ALGO1"))


# -- the safety property --

SPEC = LimitsSpec(
    start_cash="30000",
    credit_limit="10000",
    max_order_notional="20000",
    max_gross_notional="100000",
    max_net_notional="60000",
    max_position="300",
    max_open_orders=8,
    orders_per_window=6,
    window_ms=10,
    collar_pct="10",
    drawdown_warn_pct="1",
    drawdown_reduce_pct="3",
    drawdown_halt_pct="6",
    risk_mode=RiskMode.RESERVED,
    symbols={"AAPL": SymbolSpec(max_position="1000")},
)
SPECS = [  # credit binds first; gross (then position) binds first; net binds first; roomy
    SPEC,
    msgspec.structs.replace(
        SPEC, credit_limit="100000", max_gross_notional="20000", max_position="80", orders_per_window=3
    ),
    msgspec.structs.replace(SPEC, credit_limit="100000", max_net_notional="15000"),
    msgspec.structs.replace(SPEC, orders_per_window=40, max_open_orders=30),  # roomy: allowances run low, top up
]
LIMITS = [resolve_limits(s, REG) for s in SPECS]
SYMBOLS = ("AAPL", "BTC-USD")
PRICES = {"AAPL": st.integers(900, 1100).map(lambda p: p * 1000), "BTC-USD": st.integers(90, 110).map(lambda p: p * 50)}
QTYS = {"AAPL": st.integers(1, 120), "BTC-USD": st.integers(1, 200)}
OPS = st.sampled_from(
    ["submit"] * 6 + ["fill"] * 3 + ["cancel", "replace", "print", "admin", "flush", "give_back"] + ["idle"] * 3
)
REQUESTS = st.builds(
    AllowanceRequest,
    orders=st.integers(1, 12),
    credit_share_bp=st.sampled_from([2_500, 5_000, 10_000]),
    qty_share_bp=st.sampled_from([2_500, 5_000, 10_000]),
    band_share_bp=st.sampled_from([2_500, 5_000, 10_000]),
)
EXAMPLES = 15
ACCOUNTS_PER_LIMITS = 80  # fresh accounts per starting limits: examples, plus what a failure's shrinking replays


def _toml_table(name: str, spec: LimitsSpec) -> list[str]:
    raw = msgspec.to_builtins(spec)
    symbols = raw.pop("symbols", {})
    lines = [f"[accounts.{name}]", *(f"{k} = {json.dumps(v)}" for k, v in raw.items())]
    for sym, table in symbols.items():
        lines += [f'[accounts.{name}.symbols."{sym}"]', *(f"{k} = {json.dumps(v)}" for k, v in table.items())]
    return lines


@pytest.fixture(scope="module")
def property_host(
    redis_server: ManagedRedis, ray_cluster: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Any, list[Iterator[str]], Journal[AccountEvent]]]:
    """One actor hosting a fresh account for each example: `pools[k]` yields accounts that start with LIMITS[k]."""
    import ray

    prefix = f"P{uuid.uuid4().hex[:6]}"
    names = [[f"{prefix}-{k}-{i}" for i in range(ACCOUNTS_PER_LIMITS)] for k in range(len(SPECS))]
    path = tmp_path_factory.mktemp("risk") / "accounts.toml"
    lines: list[str] = []
    for k, pool in enumerate(names):
        for name in pool:
            lines += _toml_table(name, SPECS[k])
    path.write_text("\n".join(lines) + "\n")
    config = ShardConfig(redis_server.url, str(CONFIGS / "instruments.toml"), str(path), 10)
    host = account_actor_class().remote([n for pool in names for n in pool], config)
    _wait(host.accounts.remote())
    client = make_client(redis_server.url)
    yield host, [iter(pool) for pool in names], Journal(client, AccountEvent), ReportLog(client, AccountEvent)
    ray.kill(host, no_restart=True)


def comparable(snap: AccountSnapshot, tape: dict[str, int]) -> AccountSnapshot:
    """The state without the allowance, marked to the tape: strict mode's state has no allowance, and the actor
    marks an account in a symbol it holds nothing in only when it next orders (its reference does not matter
    until then)."""
    state = AccountState.restore(msgspec.structs.replace(snap, allowance=None, grant_seq=0), REG)
    for sym, px in tape.items():
        if state.reference_price(sym) != px:
            state.mark(sym, px)
    return state.snapshot()


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_reserved_over_ray_never_accepts_what_strict_rejects(property_host: Any, data: st.DataObject) -> None:
    actor, pools, journal, wal = property_host
    first = limits_at = data.draw(st.integers(0, len(LIMITS) - 1))
    acc = next(pools[limits_at], None)
    assert acc is not None, "out of fresh accounts: raise ACCOUNTS_PER_LIMITS"
    mirror = AccountState(acc, LIMITS[limits_at], REG)
    gate = RayAllowanceGate({acc: actor}, REG, [acc], data.draw(REQUESTS), batch=data.draw(st.integers(1, 4)),
                     low_orders=data.draw(st.sampled_from([0, 1, 3, 6])),
                     flush_after_ns=data.draw(st.sampled_from([None, 0, 1_000_000])),
                     log=wal)  # fmt: skip
    ts, next_id, exec_id = 0, 1, 1
    tape: dict[str, int] = {}
    sent: dict[int, SubmitOrder] = {}

    def both(event: Any, price: int | None = None) -> None:
        """`event` to the gate and the mirror; with `price`, the venue's trade print follows it, as a venue's does."""
        events: list[Any] = [event]
        mirror.apply(event)
        if price is not None:
            sym = event.symbol
            events.append(TradePrinted("SIM", sym, exec_id, price, 1, Side.BUY, ts))
            tape[sym] = price
            if mirror.reference_price(sym) != price:
                mirror.mark(sym, price, ts)
        gate.on_events(events)

    def print_(sym: str, price: int) -> None:
        nonlocal exec_id
        gate.on_events([TradePrinted("SIM", sym, exec_id, price, 1, Side.BUY, ts)])
        exec_id += 1
        tape[sym] = price
        if mirror.reference_price(sym) != price:
            mirror.mark(sym, price, ts)

    for sym in SYMBOLS:
        print_(sym, data.draw(PRICES[sym]))
    for _ in range(data.draw(st.integers(10, 40))):
        ts += data.draw(st.sampled_from([0, 0, 1, 1, 50_000, 200_000, 1_000_000, 15_000_000]))
        op = data.draw(OPS)
        working = mirror.working_orders()
        if op == "submit":
            sym = data.draw(st.sampled_from(SYMBOLS))
            ord_type = data.draw(st.sampled_from([OrdType.LIMIT, OrdType.LIMIT, OrdType.MARKET, OrdType.STOP]))
            price = data.draw(PRICES[sym]) if ord_type is OrdType.LIMIT else None
            stop = data.draw(PRICES[sym]) if ord_type is OrdType.STOP else None
            cl = f"c{next_id}" if data.draw(st.integers(0, 9)) else f"c{data.draw(st.integers(1, next_id))}"
            cmd = SubmitOrder(acc, cl, sym, data.draw(st.sampled_from(Side)), ord_type, data.draw(QTYS[sym]), price,
                              stop_price=stop)  # fmt: skip
            strict = mirror.decide(cmd, next_id, ts)
            before = gate.local_accepts
            reserved = gate.decide(cmd, next_id, ts)
            if isinstance(reserved, OrderAccepted):
                assert isinstance(strict, OrderAccepted), (cmd, strict)
            assert reserved == strict, (gate.local_accepts > before, cmd)  # a fallback is the actor's strict answer
            mirror.apply(reserved)
            sent[next_id] = cmd
            next_id += 1
        elif op == "fill" and working:
            o = mirror.open_order(data.draw(st.sampled_from(working)))
            assert o is not None
            qty = data.draw(st.integers(1, o.leaves))
            price = o.price if o.price is not None and data.draw(st.booleans()) else data.draw(PRICES[o.symbol])
            cum = o.qty - o.leaves + qty
            both(OrderFilled(o.order_id, o.cl_ord_id, acc, o.symbol, exec_id, o.side, qty, price, o.leaves - qty, cum,
                             cum * price, True, ts), price)  # fmt: skip
            exec_id += 1
        elif op == "cancel" and working:
            o = mirror.open_order(data.draw(st.sampled_from(working)))
            assert o is not None
            both(OrderCanceled(o.order_id, o.cl_ord_id, acc, o.symbol, CancelReason.USER, o.leaves, ts))
        elif op == "replace" and working:
            o = mirror.open_order(data.draw(st.sampled_from(working)))
            assert o is not None
            filled = o.qty - o.leaves
            qty = filled + data.draw(st.integers(1, 100))
            price = o.price if o.price is None else data.draw(PRICES[o.symbol])
            cmd_r = ReplaceOrder(acc, f"r{next_id}", o.cl_ord_id, o.symbol, o.side, qty, price)
            reason = gate.decide_replace(cmd_r, o.order_id, ts, o.ord_type)
            assert reason == mirror.decide_replace(cmd_r, o.order_id, ts)  # accepted here or by the actor: as strict
            if reason is RejectReason.NONE:
                both(OrderReplaced(o.order_id, cmd_r.cl_ord_id, o.cl_ord_id, acc, o.symbol, qty, price, qty - filled,
                                   ts))  # fmt: skip
            next_id += 1
        elif op == "print":
            sym = data.draw(st.sampled_from(SYMBOLS))
            print_(sym, data.draw(PRICES[sym]))
        elif op == "admin":
            which = data.draw(st.integers(0, 4))
            if which == 0:
                on = data.draw(st.booleans())
                gate.set_kill_switch(acc, on, ts)
                mirror.set_kill_switch(on, ts)
            elif which == 1:
                trading = data.draw(st.sampled_from(TradingState))
                gate.set_trading_state(acc, trading, ts)
                mirror.set_trading_state(trading, ts)
            elif which == 2:
                limits_at = (limits_at + 1) % len(LIMITS)
                gate.set_limits(acc, LIMITS[limits_at], ts)
                mirror.set_limits(LIMITS[limits_at], ts)
            elif which == 3:
                gate.start_day(acc, ts)
                mirror.start_day(ts)
            else:
                gate.revoke_allowance(acc, ts)
            assert gate.allowance_left(acc) is None  # revoked at once
        elif op == "flush":
            gate.flush()
        elif op == "give_back":
            gate.give_back(acc)
        elif op == "idle":  # a step with nothing to settle: top-ups are asked for; give them time to come back
            gate.on_events([])
            time.sleep(0.003)

    event(f"local accepts: {min(gate.local_accepts, 5)}{'+' if gate.local_accepts >= 5 else ''}")
    event(f"top-ups: {min(gate.top_ups, 1)}{'+' if gate.top_ups >= 1 else ''}")
    gate.flush()  # fire-and-forget; the calls below come after it from the same caller
    snap = _wait(actor.snapshot.remote(acc))
    assert comparable(snap, tape) == comparable(mirror.snapshot(), tape)
    assert _wait(actor.state_hash.remote(acc)) == _wait(actor.replayed_hash.remote(acc))
    # every journaled decision is a strict decision on the journal's own history
    replica = AccountState(acc, LIMITS[first], REG)
    for _, record in journal.read(acc):
        if type(record).__name__.startswith("Allowance"):
            continue
        if isinstance(record, OrderAccepted | OrderRejected) and record.order_id in sent:
            assert replica.decide(sent[record.order_id], record.order_id, record.ts_ns) == record
        replica.apply(record)
    assert replica.state_hash() == AccountState.restore(msgspec.structs.replace(snap, allowance=None, grant_seq=0),
                                                        REG).state_hash()  # fmt: skip
