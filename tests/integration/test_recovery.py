"""Crash recovery: every acknowledged decision and fill survives a SIGKILL or an actor restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import tomllib
import uuid
from collections import Counter
from pathlib import Path

import pytest

from bench.fix_load import Session as FixLoadSession
from bench.fix_load import prime
from bench.serve import PRIME_ACCOUNTS, PRIME_SESSION, Server, write_run_configs
from oms.apps.run_config import write_config
from oms.core.accounts import AccountEvent, AllowanceSpent
from oms.core.engine import OrderManager
from oms.core.model.enums import CancelReason, OrdType, RejectReason, Side
from oms.core.model.enums import TimeInForce as T
from oms.core.model.instruments import InstrumentRegistry
from oms.core.model.messages import OrderAccepted, OrderCanceled, OrderFilled, SubmitOrder
from oms.core.venues.internal import InternalVenue
from oms.infra.ray.actors import AccountShard, RayAllowanceGate, ShardConfig, account_actor_class
from oms.infra.redis.journal import Journal
from oms.infra.redis.reportlog import ReportLog
from oms.infra.redis.server import ManagedRedis, free_port, make_client
from tests.integration.procs import descendants, gone_within

pytestmark = pytest.mark.integration

ROOT = Path(__file__).parents[2]
CONFIGS = ROOT / "configs"
PX = 1_500_000


@pytest.fixture
def config(redis_server: ManagedRedis) -> ShardConfig:
    return ShardConfig(redis_server.url, str(CONFIGS / "instruments.toml"), str(CONFIGS / "accounts.toml"), 25)


def _acked_then_killed(child: str, redis_url: str, n: int) -> list[str]:
    """Run `python -m tests.integration.<child> REDIS_URL CONFIGS`, collect the tokens of its `ACKED ...` lines until
    there are `n`, then SIGKILL it."""
    acked: list[str] = []
    with subprocess.Popen(
        [sys.executable, "-m", f"tests.integration.{child}", redis_url, str(CONFIGS)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    ) as proc:  # fmt: skip
        try:
            assert proc.stdout is not None and proc.stderr is not None
            deadline = time.monotonic() + 60
            while len(acked) < n and time.monotonic() < deadline:
                line = proc.stdout.readline()
                assert line, f"the child stopped: {proc.stderr.read()}"
                acked += line.split()[1:]
            assert len(acked) >= n, "the child did not get going"
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    return acked


def test_sigkill_mid_flow_loses_no_acknowledged_order_or_fill(config, fresh_redis, redis_server):
    acked = [
        (a, int(o)) for a, o in (tok.split(":") for tok in _acked_then_killed("recovery_child", redis_server.url, 60))
    ]

    host = AccountShard(["ACC1", "ACC2"], config)

    journal = Journal(fresh_redis, AccountEvent)
    for account in ("ACC1", "ACC2"):
        filled = {r.order_id for _, r in journal.read(account) if isinstance(r, OrderFilled)}
        mine = {oid for a, oid in acked if a == account}
        assert mine <= filled, f"acknowledged fills missing for {account}: {sorted(mine - filled)[:5]}"
        qty = host.summary(account)["positions"]["AAPL"]["qty"]
        assert qty == 10 * len(filled)  # at most one batch past the last acknowledgement
        assert len(filled) - len(mine) <= 1
        assert host.state_hash(account) == host.replayed_hash(account)


def test_sigkill_of_a_reserved_gate_loses_no_acknowledged_acceptance(config, fresh_redis, redis_server):
    acked = [int(tok) for tok in _acked_then_killed("reserved_child", redis_server.url, 100)]
    log = ReportLog(fresh_redis, AccountEvent)
    assert log.length("ALGO1") >= 50  # most acceptances had not been reported when the gate died

    host = AccountShard(["ALGO1"], config)  # rebuilds ALGO1: its journal, then the log

    accepted = [r.order_id for _, r in Journal(fresh_redis, AccountEvent).read("ALGO1") if isinstance(r, OrderAccepted)]
    assert len(accepted) == len(set(accepted))
    assert set(acked) <= set(accepted)
    assert len(accepted) - len(acked) <= 1  # at most the one written ahead while its ACKED line was on its way
    assert log.length("ALGO1") == 0
    assert host.state_hash("ALGO1") == host.replayed_hash("ALGO1")
    assert host.summary("ALGO1")["working_orders"] == sorted(accepted)


def test_orders_through_the_engine_survive_an_account_actor_restart(config, fresh_redis, ray_cluster):
    import ray

    instruments = InstrumentRegistry.load(CONFIGS / "instruments.toml")
    actor = (
        account_actor_class()
        .options(name=f"acct-{uuid.uuid4().hex[:8]}", namespace="oms")
        .remote(["ACC1", "ACC2"], config)
    )
    venue = InternalVenue(instruments)
    oms = OrderManager(instruments, RayAllowanceGate({"ACC1": actor, "ACC2": actor}), lambda symbol: venue)
    reported: Counter[tuple[str, Side]] = Counter()

    def trade(tag: str, n: int) -> None:
        for i in range(n):
            sell = SubmitOrder("ACC2", f"s{tag}{i}", "AAPL", Side.SELL, OrdType.LIMIT, 10, PX, tif=T.GTC, session="B")
            buy = SubmitOrder("ACC1", f"b{tag}{i}", "AAPL", Side.BUY, OrdType.LIMIT, 10, PX, tif=T.GTC, session="A")
            for event in oms.submit(sell, time.time_ns()) + oms.submit(buy, time.time_ns()):
                if isinstance(event, OrderFilled):
                    reported[(event.account, event.side)] += event.qty
                else:
                    assert not isinstance(event, OrderAccepted) or event.account in ("ACC1", "ACC2")

    trade("before", 5)
    old_pid = ray.get(actor.pid.remote())
    ray.kill(actor, no_restart=False)
    deadline = time.monotonic() + 60
    while True:
        try:
            if ray.get(actor.pid.remote(), timeout=30) != old_pid:
                break
        except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError):
            pass
        assert time.monotonic() < deadline, "the actor was not restarted within 60 s"
        time.sleep(0.2)
    trade("after", 5)

    long = ray.get(actor.summary.remote("ACC1"))["positions"]["AAPL"]["qty"]
    short = ray.get(actor.summary.remote("ACC2"))["positions"]["AAPL"]["qty"]
    assert (long, short) == (reported[("ACC1", Side.BUY)], -reported[("ACC2", Side.SELL)]) == (100, -100)
    for account in ("ACC1", "ACC2"):
        assert ray.get(actor.state_hash.remote(account)) == ray.get(actor.replayed_hash.remote(account))
    ray.kill(actor, no_restart=True)


def test_kill_switch_through_the_actor_cancels_working_orders_and_blocks_new_ones(config, fresh_redis, ray_cluster):
    import ray

    instruments = InstrumentRegistry.load(CONFIGS / "instruments.toml")
    actor = account_actor_class().options(name=f"acct-{uuid.uuid4().hex[:8]}", namespace="oms").remote(["ACC1"], config)
    venue = InternalVenue(instruments)
    oms = OrderManager(instruments, RayAllowanceGate({"ACC1": actor}), lambda symbol: venue)
    oms.submit(SubmitOrder("ACC1", "b1", "AAPL", Side.BUY, OrdType.LIMIT, 10, PX, tif=T.GTC), time.time_ns())

    (canceled,) = oms.kill_switch("ACC1", True, time.time_ns())
    (rejected,) = oms.submit(SubmitOrder("ACC1", "b2", "AAPL", Side.BUY, OrdType.LIMIT, 10, PX), time.time_ns())

    assert (canceled.order_id, canceled.reason) == (1, CancelReason.KILL_SWITCH)
    assert rejected.reason == RejectReason.KILL_SWITCH
    summary = ray.get(actor.summary.remote("ACC1"))
    assert (summary["kill_switch"], summary["working_orders"], summary["exposure"]) == (True, [], 0)
    ray.kill(actor, no_restart=True)


def test_sigkill_of_serve_under_group_commit_from_four_sessions_loses_no_acknowledged_order(
    tmp_path: Path, fresh_redis, redis_server: ManagedRedis
) -> None:
    """`oms serve` (its sequencer writing each batch's reserved acceptances ahead in one round trip) takes orders
    from four FIX sessions at once and is killed mid-flow: every order a client saw acknowledged (ExecType New) is
    in its account's journal once the account is rebuilt, exactly once."""
    fix_port, api_port = free_port(), free_port()
    config = write_run_configs(tmp_path, fix_port, api_port)
    raw = tomllib.loads(config.read_text())
    raw["redis"]["url"] = redis_server.url
    write_config(raw, config)
    server = Server("oms", config, tmp_path, fix_port, api_port)
    accounts = [f"BENCH{n}" for n in range(1, 5)]
    acked: dict[str, set[str]] = {a: set() for a in accounts}
    sessions: list[FixLoadSession] = []
    try:
        prime(fix_port, PRIME_SESSION, PRIME_ACCOUNTS, "AAPL", "150", "k")  # a reference price: reserved accepts
        sessions = [FixLoadSession(fix_port, account, account) for account in accounts]
        for s in sessions:
            s.logon()
        n = 0
        deadline = time.monotonic() + 60
        while sum(map(len, acked.values())) < 400 and time.monotonic() < deadline:
            for s in sessions:
                n += 1
                s.outbox += s.message("D", f"11=k{n}\x011={s.account}\x0155=AAPL\x0154=1\x0160=20260101-00:00:00\x01"
                                           f"38=1\x0140=2\x0144=149\x0159=1\x01")  # fmt: skip
                s.flush()
                for f in s.read():
                    if f.get("35") == "8" and f.get("150") == "0":
                        acked[s.account].add(f["11"])
            time.sleep(0.001)
    finally:
        below = descendants(server.proc.pid)
        os.kill(server.proc.pid, signal.SIGKILL)
        server.stop()  # reaps it and closes its pipes
        for s in sessions:
            s.sock.close()
    assert sum(map(len, acked.values())) >= 400, "the server did not acknowledge enough orders within 60 s"
    # as a restarted OMS would: its accounts are rebuilt once the killed one's actors are gone (its reaper ends them),
    # not while one may still be journaling a report it had taken
    assert not gone_within(below, 30), "the killed OMS's processes did not end within 30 s"

    host = AccountShard(accounts, ShardConfig(redis_server.url, raw["instruments"], raw["accounts"], 25))

    journal = Journal(fresh_redis, AccountEvent)
    local = sum(isinstance(r, AllowanceSpent) for a in accounts for _, r in journal.read(a))
    assert local >= 300  # most were accepted by the engine within allowances, written ahead batch by batch
    for account in accounts:
        accepted = [r.cl_ord_id for _, r in journal.read(account) if isinstance(r, OrderAccepted)]
        assert len(accepted) == len(set(accepted)), f"{account}: an acceptance journaled twice"
        missing = acked[account] - set(accepted)
        assert not missing, f"{account}: acknowledged orders missing from the journal: {sorted(missing)[:5]}"
        assert host.state_hash(account) == host.replayed_hash(account)


def test_sigterm_under_load_reports_every_order_it_booked(tmp_path: Path) -> None:
    """Two FIX sessions send orders without pause and `oms serve` gets SIGTERM meanwhile: every order the journal
    holds as accepted was acknowledged to its client and then canceled (reason SHUTDOWN) before the session closed;
    orders that came in after the stop began were refused; the accounts hold no working order afterwards."""
    fix_port, api_port = free_port(), free_port()
    config = write_run_configs(tmp_path, fix_port, api_port)
    raw = tomllib.loads(config.read_text())
    server = Server("oms", config, tmp_path, fix_port, api_port)
    accounts = ["BENCH1", "BENCH2"]
    seen: dict[str, list[str]] = {}  # ClOrdID -> the ExecTypes its client received, in order
    sessions: list[FixLoadSession] = []
    try:
        prime(fix_port, PRIME_SESSION, PRIME_ACCOUNTS, "AAPL", "150", "t")
        sessions = [FixLoadSession(fix_port, account, account) for account in accounts]
        for s in sessions:
            s.logon()
        open_ = set(accounts)
        n = 0
        started = time.monotonic()
        stopping = False
        while open_ and time.monotonic() < started + 90:
            for s in sessions:
                if s.account not in open_:
                    continue
                n += 1
                s.outbox += s.message("D", f"11=t{n}\x011={s.account}\x0155=AAPL\x0154=1\x0160=20260101-00:00:00\x01"
                                           f"38=1\x0140=2\x0144=149\x0159=1\x01")  # fmt: skip
                try:
                    s.flush()
                    for f in s.read():
                        if f.get("35") == "8":
                            seen.setdefault(f["11"], []).append(f["150"])
                        elif f.get("35") == "5":
                            open_.discard(s.account)
                except OSError:  # the server closed the connection
                    open_.discard(s.account)
            if not stopping and time.monotonic() > started + 1.5:
                server.proc.send_signal(signal.SIGTERM)
                stopping = True
            time.sleep(0.002)
        assert not open_, "the sessions were not logged out within 90 s of the stop"
    finally:
        server.stop()
        for s in sessions:
            s.sock.close()

    refused = [cl for cl, types in seen.items() if types == ["8"]]
    assert refused and len(seen) > len(refused)  # orders came in before and after the stop began
    with ManagedRedis(Path(raw["redis"]["data_dir"])) as redis_server:
        host = AccountShard(accounts, ShardConfig(redis_server.url, raw["instruments"], raw["accounts"]))
        journal = Journal(make_client(redis_server.url), AccountEvent)
        for account in accounts:
            assert host.summary(account)["working_orders"] == []
            for _, r in journal.read(account):
                if isinstance(r, OrderAccepted):
                    assert seen.get(r.cl_ord_id, [])[:1] == ["0"], f"{r.cl_ord_id}: booked, never acknowledged"
                    assert seen[r.cl_ord_id][-1] == "4", f"{r.cl_ord_id}: acknowledged, never canceled"
                elif isinstance(r, OrderCanceled):
                    assert r.reason is CancelReason.SHUTDOWN
