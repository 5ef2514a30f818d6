"""The risk benchmark in strict mode: real `AccountShard` actors journaling every decision to Redis before they
answer, one order a synchronous call (`StrictRun.one`) and batched, pipelined calls (`StrictRun.throughput`);
`StrictRun.verify` checks every answer, working order, journal and state (see `bench.risk`)."""

from __future__ import annotations

import random
import time
from collections import Counter, deque
from typing import Any

from bench.risk_ray import pipeline
from bench.risk_workload import (
    REFERENCE,
    Decision,
    Entry,
    Item,
    OrderFlow,
    RiskParams,
    account_names,
    retire,
)
from oms.core.accounts import AccountEvent, AccountState
from oms.core.model.instruments import InstrumentRegistry
from oms.core.model.messages import OrderAccepted, OrderRejected
from oms.infra.ray.actors import ShardConfig, account_actor_class, pack, unpack_decisions
from oms.infra.redis.journal import Journal
from oms.infra.redis.server import make_client
from risk.limits import RiskConfig

__all__ = ["StrictRun"]


class StrictRun:
    """Account actors on a real journal, and what the harness sent them and heard back.

    In the throughput run each actor's accounts keep about `working` orders working: once an actor has more than
    that (per account) plus `retire_batch`, the harness retires its oldest `retire_batch` accepted orders with one
    `apply_batch` call (a full fill with probability `p_fill`, else a cancel), in the same pipeline as the
    decisions. So the state and the snapshots stay the same size however many orders run.
    """

    def __init__(self, p: RiskParams, config: ShardConfig, risk: RiskConfig, instruments: InstrumentRegistry):
        import ray

        self._ray = ray
        self.p = p
        self.accounts = account_names(p.accounts)
        self.owner = {a: i % p.actors for i, a in enumerate(self.accounts)}
        host_cls = account_actor_class()
        self.actors = [
            host_cls.remote([a for a in self.accounts if self.owner[a] == k], config) for k in range(p.actors)
        ]
        ray.get([a.accounts.remote() for a in self.actors])  # every actor is up and has recovered its accounts
        ray.get([a.mark.remote(sym, px, time.time_ns()) for a in self.actors for sym, px in REFERENCE.items()])
        self.flow = OrderFlow(risk, instruments, p.p_reject, p.seed + 2)
        self.sent: dict[str, list[Entry]] = {a: [] for a in self.accounts}  # in each actor's execution order
        self.answers: dict[int, Decision] = {}
        self.live: list[deque[OrderAccepted]] = [deque() for _ in range(p.actors)]  # accepted, not yet retired
        self.accepted = self.retired = 0
        self._rng = random.Random(p.seed + 3)
        self._next = 0

    def next_item(self, accounts: list[str] | None = None) -> Item:
        pool = self.accounts if accounts is None else accounts
        self._next += 1
        item = self.flow.next(pool[self._next % len(pool)])
        self.sent[item[0].account].append(item)
        return item

    def record(self, items: list[Item], decisions: list[Decision]) -> None:
        """Keep the decisions that came back for `items` (the accepted ones become retirable)."""
        if len(decisions) != len(items):
            raise AssertionError(f"{len(items)} orders sent, {len(decisions)} decisions back")
        for (cmd, order_id, _), d in zip(items, decisions, strict=True):
            self.answers[order_id] = d
            if type(d) is OrderAccepted:
                self.accepted += 1
                self.live[self.owner[cmd.account]].append(d)

    def one(self) -> None:
        """One synchronous round trip with one order."""
        item = self.next_item()
        actor = self.actors[self.owner[item[0].account]]
        self.record([item], self._ray.get(actor.submit_batch.remote([item])))

    def throughput(self) -> tuple[int, int, float]:
        """(orders, post-trade events, seconds) of `strict_orders` orders in batches of `batch`, `in_flight` calls
        outstanding per actor. The orders are made before the clock starts; what the harness does with the answers
        (and the fills and cancels it sends) runs on the clock."""
        p = self.p
        per_actor = [[a for a in self.accounts if self.owner[a] == k] for k in range(p.actors)]
        counts = [p.strict_orders // p.actors + (k < p.strict_orders % p.actors) for k in range(p.actors)]
        queued = [deque(self.flow.next(per_actor[k][i % len(per_actor[k])]) for i in range(counts[k]))
                  for k in range(p.actors)]  # fmt: skip
        last_now = [0] * p.actors
        events_sent = [0]

        def submit(k: int) -> Any:
            live, todo = self.live[k], queued[k]
            if p.retire_batch and todo and len(live) > p.working * len(per_actor[k]) + p.retire_batch:
                now = last_now[k]
                events = [retire(live.popleft(), self._rng.random() < p.p_fill, now) for _ in range(p.retire_batch)]
                for e in events:
                    self.sent[e.account].append(e)
                events_sent[0] += len(events)
                self.retired += len(events)
                return self.actors[k].apply_batch.remote(pack(events)), None
            if not todo:
                return None
            items = [todo.popleft() for _ in range(min(p.batch, len(todo)))]
            for item in items:
                self.sent[item[0].account].append(item)
            last_now[k] = items[-1][2]
            return self.actors[k].submit_packed.remote(pack(items)), items

        def on_result(items: list[Item] | None, value: Any) -> None:
            if items is not None:
                self.record(items, unpack_decisions(value))

        elapsed = pipeline(p.actors, p.in_flight, submit, on_result)
        return p.strict_orders, events_sent[0], elapsed

    def verify(self, config: ShardConfig, risk: RiskConfig, instruments: InstrumentRegistry) -> dict[str, Any]:
        """Replica decisions, working-order counts, journal lengths and replayed hashes (see the module doc)."""
        ray = self._ray
        journal = Journal(make_client(config.redis_url), AccountEvent)
        decisions = journaled = working = 0
        reasons: Counter[str] = Counter()
        for account in self.accounts:
            limits = risk.limits_for(account)
            assert limits is not None
            replica = AccountState(account, limits, instruments)
            records = 0
            for entry in self.sent[account]:
                records += 1
                if not isinstance(entry, tuple):
                    replica.apply(entry)
                    continue
                cmd, order_id, now = entry
                ref = REFERENCE[cmd.symbol]
                if replica.reference_price(cmd.symbol) != ref:  # what the host does with the mark it was given
                    replica.mark(cmd.symbol, ref, now)
                    records += 1
                d = replica.decide(cmd, order_id, now)
                replica.apply(d)
                decisions += 1
                if type(d) is OrderRejected:
                    reasons[d.reason.name] += 1
                if self.answers.get(order_id) != d:
                    raise AssertionError(
                        f"strict {account}: order {order_id}: actor said {self.answers.get(order_id)!r}, "
                        f"the in-process replica {d!r}"
                    )
            actor = self.actors[self.owner[account]]
            summary, live, replayed = ray.get(
                [actor.summary.remote(account), actor.state_hash.remote(account), actor.replayed_hash.remote(account)]
            )
            if not live == replayed == replica.state_hash():
                raise AssertionError(f"strict {account}: state {live}, replayed {replayed}, replica differs")
            length = journal.length(account)
            if length != records:
                raise AssertionError(f"strict {account}: journal holds {length} records, expected {records}")
            journaled += length
            working += len(summary["working_orders"])
        if decisions != len(self.answers):
            raise AssertionError(f"{len(self.answers)} decisions came back for {decisions} orders sent")
        if working != self.accepted - self.retired:
            raise AssertionError(
                f"actors report {working} working orders, the harness counted {self.accepted} accepts "
                f"and retired {self.retired}"
            )
        return {
            "decisions": decisions,
            "accepted": self.accepted,
            "rejected": decisions - self.accepted,
            "reject_reasons": dict(reasons),
            "retired": self.retired,
            "working": working,
            "journal_records": journaled,
            "accounts_hash_equal_replay": len(self.accounts),
        }

    def close(self) -> None:
        for a in self.actors:
            self._ray.kill(a, no_restart=True)
