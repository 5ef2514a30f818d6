"""The risk benchmark in reserved mode: `RayAllowanceGate.decide` over AccountShard actors, each local acceptance
written ahead to the Redis report log, timed call by call (`ReservedRun.run`); `ReservedRun.verify` replays each
journal into a strict replica (see `bench.risk`)."""

from __future__ import annotations

import gc
import random
import time
from collections import Counter, deque
from collections.abc import Sequence
from typing import Any

import msgspec
from hdrh.histogram import HdrHistogram

from bench.risk_workload import REFERENCE, Decision, OrderFlow, RiskParams, new_histogram, reserved_names, retire
from oms.core.accounts import AccountEvent, AccountState, AllowanceRequest
from oms.core.model.enums import Side
from oms.core.model.instruments import InstrumentRegistry
from oms.core.model.messages import OrderAccepted, OrderCanceled, OrderFilled, OrderRejected, SubmitOrder, TradePrinted
from oms.infra.ray.actors import RayAllowanceGate, ShardConfig, account_actor_class
from oms.infra.redis.journal import Journal
from oms.infra.redis.reportlog import ReportLog
from oms.infra.redis.server import make_client
from risk.limits import RiskConfig

__all__ = ["ReservedRun"]


class _TimedLog(ReportLog[AccountEvent]):
    """The gate's write-ahead log, timing each write: a decision's own time is its time without it."""

    def __init__(self, client: Any) -> None:
        super().__init__(client, AccountEvent)
        self.last_ns = 0
        self.writes = 0

    def write(self, account: str, records: Sequence[AccountEvent]) -> str:
        t0 = time.perf_counter_ns()
        wal = super().write(account, records)
        self.last_ns = time.perf_counter_ns() - t0
        self.writes += 1
        return wal


class ReservedRun:
    """Reserved accounts on AccountShard actors of their own, behind an `RayAllowanceGate`, and what the harness saw.

    The first trade print per symbol goes through the gate (as the engine's post-trade step would carry it) and
    brings every account its first grant in the same calls. Each account then keeps about `working` orders working:
    once more than that (per account) plus `retire_batch` are live, the oldest `retire_batch` are filled or canceled
    in one post-trade step, the only synchronous calls besides fallbacks.
    """

    def __init__(self, p: RiskParams, config: ShardConfig, risk: RiskConfig, instruments: InstrumentRegistry):
        import ray

        self._ray = ray
        self.p = p
        self.accounts = reserved_names(p.accounts)
        owner = {a: i % p.actors for i, a in enumerate(self.accounts)}
        host_cls = account_actor_class()
        self.actors = [host_cls.remote([a for a in self.accounts if owner[a] == k], config) for k in range(p.actors)]
        ray.get([a.accounts.remote() for a in self.actors])
        self.actor_of = {a: self.actors[owner[a]] for a in self.accounts}
        request = AllowanceRequest(orders=p.reserved_tokens)
        self.log = _TimedLog(make_client(config.redis_url))
        self.gate = RayAllowanceGate(
            self.actor_of, instruments, self.accounts, request, low_orders=p.reserved_tokens // 2, log=self.log
        )
        now = time.time_ns()
        self.gate.on_events([TradePrinted("BENCH", s, 0, px, 1, Side.BUY, now) for s, px in REFERENCE.items()])
        self.flow = OrderFlow(risk, instruments, p.p_reject, p.seed + 4)
        self.sent: dict[int, SubmitOrder] = {}
        self.answers: dict[int, Decision] = {}
        self.live: deque[OrderAccepted] = deque()
        self.retired = 0
        self._rng = random.Random(p.seed + 5)

    def run(self) -> tuple[HdrHistogram, HdrHistogram, HdrHistogram, float]:
        """(decide ns without the write-ahead, decide ns, decide + empty post-trade step ns, seconds) of `warmup` +
        `reserved_orders` orders spread over the accounts (the warm-up ones untimed)."""
        p, gate, flow, log = self.p, self.gate, self.flow, self.log
        decide_h, durable_h, step_h, clock = new_histogram(), new_histogram(), new_histogram(), time.perf_counter_ns
        n = len(self.accounts)
        items = [flow.next(self.accounts[i % n]) for i in range(p.warmup + p.reserved_orders)]
        room = p.working * n + p.retire_batch
        gc.collect()
        gc.freeze()
        t_start = time.perf_counter()
        try:
            for i, (cmd, order_id, now) in enumerate(items):
                log.last_ns = 0
                t0 = clock()
                d = gate.decide(cmd, order_id, now)
                t1 = clock()
                wrote = log.last_ns
                self.sent[order_id] = cmd
                self.answers[order_id] = d
                if type(d) is OrderAccepted:
                    self.live.append(d)
                post: list[OrderFilled | OrderCanceled] = []
                if p.retire_batch and len(self.live) > room:
                    post = [
                        retire(self.live.popleft(), self._rng.random() < p.p_fill, now) for _ in range(p.retire_batch)
                    ]
                    self.retired += len(post)
                gate.on_events(post)
                t2 = clock()
                if i >= p.warmup:
                    decide_h.record_value(max(t1 - t0 - wrote, 1))
                    durable_h.record_value(max(t1 - t0, 1))
                    if not post:
                        step_h.record_value(max(t2 - t0, 1))
        finally:
            gc.unfreeze()
        return decide_h, durable_h, step_h, time.perf_counter() - t_start

    def verify(self, config: ShardConfig, risk: RiskConfig, instruments: InstrumentRegistry) -> dict[str, Any]:
        """Journal replays against strict replicas, decisions, working orders and hashes (see the module doc)."""
        ray = self._ray
        self.gate.close()  # every allowance returned, every report journaled
        journal = Journal(make_client(config.redis_url), AccountEvent)
        decisions = working = records = accepted = 0
        reasons: Counter[str] = Counter()
        for account in self.accounts:
            actor = self.actor_of[account]
            snap, live, replayed, summary = ray.get([
                actor.snapshot.remote(account), actor.state_hash.remote(account),
                actor.replayed_hash.remote(account), actor.summary.remote(account),
            ])  # fmt: skip
            if live != replayed:
                raise AssertionError(f"reserved {account}: state {live}, replayed from its journal {replayed}")
            limits = risk.limits_for(account)
            assert limits is not None
            replica = AccountState(account, limits, instruments)
            for _, record in journal.read(account):
                records += 1
                if type(record).__name__.startswith("Allowance"):
                    continue
                if isinstance(record, OrderAccepted | OrderRejected) and record.order_id in self.sent:
                    strict = replica.decide(self.sent[record.order_id], record.order_id, record.ts_ns)
                    if strict != record or self.answers.get(record.order_id) != record:
                        raise AssertionError(
                            f"reserved {account}: order {record.order_id}: journal {record!r}, gate "
                            f"{self.answers.get(record.order_id)!r}, strict replica {strict!r}"
                        )
                    decisions += 1
                    accepted += type(record) is OrderAccepted
                    if type(record) is OrderRejected:
                        reasons[record.reason.name] += 1
                replica.apply(record)
            bare = AccountState.restore(msgspec.structs.replace(snap, allowance=None, grant_seq=0), instruments)
            if bare.state_hash() != replica.state_hash():
                raise AssertionError(f"reserved {account}: the actor's state is not the strict replica's")
            working += len(summary["working_orders"])
        if decisions != len(self.answers):
            raise AssertionError(f"{len(self.answers)} reserved decisions made, {decisions} journaled")
        left = {a: n for a in self.accounts if (n := self.log.length(a))}
        if left:
            raise AssertionError(f"write-ahead entries not settled by the journal: {left}")
        if working != accepted - self.retired:
            raise AssertionError(f"actors report {working} working orders, expected {accepted} - {self.retired}")
        g = self.gate
        return {
            "decisions": decisions,
            "accepted": accepted,
            "rejected": decisions - accepted,
            "reject_reasons": dict(reasons),
            "local": g.local_accepts + g.local_rejects,
            "local_rejects": g.local_rejects,
            "fallbacks": g.fallbacks,
            "top_ups": g.top_ups,
            "written_ahead": self.log.writes,
            "retired": self.retired,
            "working": working,
            "journal_records": records,
            "journal_decisions_equal_strict_replay": decisions,
        }

    def close(self) -> None:
        for a in self.actors:
            self._ray.kill(a, no_restart=True)
