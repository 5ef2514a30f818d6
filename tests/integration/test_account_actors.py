"""Account hosts against a real Redis journal, in-process and as Ray actors that are killed and restarted."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from oms.core.accounts import AccountEvent
from oms.core.model.enums import CancelReason, OrdType, RejectReason, Side
from oms.core.model.enums import TimeInForce as T
from oms.core.model.messages import OrderAccepted, OrderCanceled, OrderFilled, OrderRejected, SubmitOrder
from oms.infra.ray.actors import AccountShard, ShardConfig, UnknownAccount, account_actor_class
from oms.infra.redis.journal import Journal
from oms.infra.redis.server import ManagedRedis, make_client

pytestmark = pytest.mark.integration

CONFIGS = Path(__file__).parents[2] / "configs"
PX = 1_500_000  # AAPL 150.00


@pytest.fixture
def config(redis_server: ManagedRedis) -> ShardConfig:
    # a key prefix per test keeps tests apart on the shared server: accounts are the configured names
    return ShardConfig(
        redis_url=redis_server.url,
        instruments_path=str(CONFIGS / "instruments.toml"),
        risk_path=str(CONFIGS / "accounts.toml"),
        snapshot_every=7,
    )


def order(cl: str, side: Side, qty: int, price: int | None = PX, account: str = "ACC1") -> SubmitOrder:
    ord_type = OrdType.LIMIT if price else OrdType.MARKET
    return SubmitOrder(account, cl, "AAPL", side, ord_type, qty, price, tif=T.GTC)


def fill(order_id: int, cl: str, side: Side, qty: int, cum: int, leaves: int, account: str = "ACC1") -> OrderFilled:
    return OrderFilled(order_id, cl, account, "AAPL", order_id * 100 + cum, side, qty, PX, leaves, cum, cum * PX, True,
                       time.time_ns())  # fmt: skip


def flow(host) -> None:
    """Accepts, a reject, partial and full fills, a cancel, a mark: every kind of account event."""
    call = (lambda m, *a: m.remote(*a)) if hasattr(host, "_actor_id") else (lambda m, *a: m(*a))
    get = _ray_get if hasattr(host, "_actor_id") else (lambda x: x)
    now = time.time_ns()
    decisions = get(call(host.submit_batch, [(order("b1", Side.BUY, 100), 1, now), (order("b2", Side.BUY, 50), 2, now),
                                             (order("big", Side.BUY, 10**9), 3, now)]))  # fmt: skip
    assert [type(d) for d in decisions] == [OrderAccepted, OrderAccepted, OrderRejected]
    get(call(host.apply_batch, [fill(1, "b1", Side.BUY, 40, 40, 60), fill(1, "b1", Side.BUY, 60, 100, 0)]))
    get(call(host.apply_batch, [OrderCanceled(2, "b2", "ACC1", "AAPL", CancelReason.USER, 50, now)]))
    get(call(host.mark, "AAPL", PX + 5000, now))


def _ray_get(ref):
    import ray

    return ray.get(ref, timeout=60)


def test_every_decision_is_in_the_journal_when_the_call_returns(config, fresh_redis, redis_server):
    host = AccountShard(["ACC1"], config)

    decisions = host.submit_batch([(order("b1", Side.BUY, 100), 1, 1)])

    journal = Journal(make_client(redis_server.url), AccountEvent)
    assert [r for _, r in journal.read("ACC1")] == decisions


def test_a_new_host_rebuilds_the_same_state_from_snapshot_and_journal(config, fresh_redis):
    host = AccountShard(["ACC1"], config)
    flow(host)
    before = host.state_hash("ACC1")

    again = AccountShard(["ACC1"], config)

    assert again.state_hash("ACC1") == before == host.replayed_hash("ACC1")
    assert again.summary("ACC1")["positions"]["AAPL"]["qty"] == 100


def test_unknown_account_is_rejected_not_raised(config, fresh_redis):
    host = AccountShard(["ACC1"], config)

    (rej,) = host.submit_batch([(order("x", Side.BUY, 10, account="NOBODY"), 1, 1)])

    assert (type(rej), rej.reason) == (OrderRejected, RejectReason.UNKNOWN_ACCOUNT)


def test_a_host_refuses_accounts_without_limits(config, fresh_redis):
    with pytest.raises(UnknownAccount, match="NOBODY"):
        AccountShard(["NOBODY"], config)


def test_kill_switch_blocks_new_orders_and_lists_working_ones(config, fresh_redis):
    host = AccountShard(["ACC1"], config)
    host.submit_batch([(order("b1", Side.BUY, 10), 1, 1)])

    working = host.set_kill_switch("ACC1", True, 2)
    (rej,) = host.submit_batch([(order("b2", Side.BUY, 10), 2, 3)])

    assert working == [1]
    assert rej.reason == RejectReason.KILL_SWITCH


def test_a_killed_account_actor_is_restarted_by_ray_with_the_same_state(config, fresh_redis, ray_cluster):
    import ray

    actor = account_actor_class().options(name=f"acct-{uuid.uuid4().hex[:8]}", namespace="oms").remote(["ACC1"], config)
    flow(actor)
    before = ray.get(actor.state_hash.remote("ACC1"))
    old_pid = ray.get(actor.pid.remote())

    ray.kill(actor, no_restart=False)
    deadline = time.monotonic() + 60
    while True:  # calls fail, or still reach the dying process, until the restarted one answers
        try:
            if ray.get(actor.pid.remote(), timeout=30) != old_pid:
                break
        except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError):
            pass
        assert time.monotonic() < deadline, "the actor was not restarted within 60 s"
        time.sleep(0.2)
    after = ray.get(actor.state_hash.remote("ACC1"))

    assert after == before == ray.get(actor.replayed_hash.remote("ACC1"))
    decisions = ray.get(actor.submit_batch.remote([(order("b3", Side.SELL, 100), 4, time.time_ns())]))
    assert [type(d) for d in decisions] == [OrderAccepted]
    ray.kill(actor, no_restart=True)


def test_an_in_process_gate_over_a_host_is_drained_before_an_operator_change(config, fresh_redis, redis_server):
    from oms.core.accounts import AllowanceRequest, AllowanceSpent
    from oms.core.model.instruments import InstrumentRegistry
    from oms.infra.ray.actors import AllowanceGate

    host = AccountShard(["ALGO1"], config)
    gate = AllowanceGate(host, InstrumentRegistry.load(CONFIGS / "instruments.toml"), ["ALGO1"], AllowanceRequest(8))
    host.mark("AAPL", PX, 1)  # ALGO1 holds nothing in AAPL yet: the print only moves the host's tape
    assert isinstance(gate.decide(order("w", Side.BUY, 10, account="ALGO1"), 1, 2), OrderAccepted)  # strict + grant
    assert isinstance(gate.decide(order("l1", Side.BUY, 10, account="ALGO1"), 2, 3), OrderAccepted)  # local, queued
    assert (gate.fallbacks, gate.local_accepts) == (1, 1)

    working = host.set_kill_switch("ALGO1", True, 4)

    assert working == [1, 2] and gate.allowance_left("ALGO1") is None
    records = [r for _, r in Journal(make_client(redis_server.url), AccountEvent).read("ALGO1")]
    assert [type(r).__name__ for r in records][-3:] == ["AllowanceSpent", "OrderAccepted", "KillSwitchSet"]
    assert isinstance(records[-3], AllowanceSpent) and records[-3].order_id == 2
    rejected = gate.decide(order("l2", Side.BUY, 10, account="ALGO1"), 3, 5)
    assert isinstance(rejected, OrderRejected) and rejected.reason is RejectReason.KILL_SWITCH
    assert host.state_hash("ALGO1") == host.replayed_hash("ALGO1")


def test_a_snapshot_that_cannot_be_saved_fails_no_call_and_loses_nothing(config, fresh_redis, redis_server, caplog):
    """The journal append is what makes a call durable; the snapshot after it only shortens the next rebuild. One
    that fails (here, as for a state the journal's integers cannot hold) is logged, and the call still answers."""
    host = AccountShard(["ACC1"], config)

    def broken(*args: object) -> None:
        raise OverflowError("can't serialize ints < -2**63 or > 2**64 - 1")

    host._journal.save_snapshot = broken  # type: ignore[method-assign]
    flow(host)  # more events than snapshot_every: a snapshot falls due and fails

    assert "its snapshot" in caplog.text and "OverflowError" in caplog.text
    again = AccountShard(["ACC1"], config)
    assert again.state_hash("ACC1") == host.state_hash("ACC1") == host.replayed_hash("ACC1")
    assert again.summary("ACC1")["positions"]["AAPL"]["qty"] == 100
