"""The risk benchmark in process: `AccountState.decide` timed call by call, checked against a replica.

Each account keeps about `working` orders working; older ones are filled or canceled untimed. A second
`AccountState` per account, fed the same commands and events, must make the same decisions and end with the same
state hash (see `bench.risk`).
"""

from __future__ import annotations

import gc
import random
import time
from collections import Counter, deque
from typing import Any

from hdrh.histogram import HdrHistogram

from bench.risk_workload import REFERENCE, Decision, Entry, OrderFlow, RiskParams, account_names, new_histogram, retire
from oms.core.accounts import AccountState
from oms.core.model.instruments import InstrumentRegistry
from oms.core.model.messages import OrderAccepted, OrderFilled, OrderRejected
from risk.limits import RiskConfig

__all__ = ["measure_in_process"]


def measure_in_process(
    p: RiskParams, risk: RiskConfig, instruments: InstrumentRegistry
) -> tuple[HdrHistogram, HdrHistogram, dict[str, Any]]:
    """(decide ns, decide + apply ns, verified counts) over `p.checks` orders spread over the accounts."""
    accounts = account_names(p.accounts)
    flow = OrderFlow(risk, instruments, p.p_reject, p.seed)
    items = [flow.next(accounts[i % len(accounts)]) for i in range(p.checks)]
    start = items[0][2] - 1 if items else 0
    states: dict[str, AccountState] = {}
    fed: dict[str, list[Entry]] = {}
    decided: dict[str, list[Decision]] = {a: [] for a in accounts}
    working: dict[str, deque[OrderAccepted]] = {a: deque() for a in accounts}
    for a in accounts:
        limits = risk.limits_for(a)
        assert limits is not None
        states[a] = AccountState(a, limits, instruments)
        fed[a] = [states[a].mark(sym, px, start) for sym, px in REFERENCE.items()]
    rng = random.Random(p.seed + 1)
    decide_h, apply_h = new_histogram(), new_histogram()
    clock = time.perf_counter_ns
    fills = 0
    gc.collect()
    gc.freeze()  # the pre-built workload is the harness's, not the accounts': keep the collector off it
    try:
        for item in items:
            cmd, order_id, now = item
            state = states[cmd.account]
            t0 = clock()
            d = state.decide(cmd, order_id, now)
            t1 = clock()
            state.apply(d)
            t2 = clock()
            decide_h.record_value(max(t1 - t0, 1))
            apply_h.record_value(max(t2 - t0, 1))
            fed[cmd.account].append(item)
            decided[cmd.account].append(d)
            if type(d) is OrderAccepted:
                ring = working[cmd.account]
                ring.append(d)
                if len(ring) > p.working:  # the venue's answer to the oldest working order (untimed)
                    event = retire(ring.popleft(), rng.random() < p.p_fill, now)
                    fills += type(event) is OrderFilled
                    state.apply(event)
                    fed[cmd.account].append(event)
    finally:
        gc.unfreeze()
    counts = _verify_in_process(fed, decided, states, risk, instruments)
    return decide_h, apply_h, {**counts, "fills": fills}


def _verify_in_process(
    fed: dict[str, list[Entry]],
    decided: dict[str, list[Decision]],
    states: dict[str, AccountState],
    risk: RiskConfig,
    instruments: InstrumentRegistry,
) -> dict[str, Any]:
    """A second AccountState per account fed the same entries: same decisions, same final state hash."""
    accepted = 0
    reasons: Counter[str] = Counter()
    for account, entries in fed.items():
        limits = risk.limits_for(account)
        assert limits is not None
        replica = AccountState(account, limits, instruments)
        again: list[Decision] = []
        for e in entries:
            if isinstance(e, tuple):
                d = replica.decide(*e)
                replica.apply(d)
                again.append(d)
            else:
                replica.apply(e)
        if again != decided[account]:
            pairs = zip(again, decided[account], strict=False)
            first = next((i for i, (x, y) in enumerate(pairs) if x != y), min(len(again), len(decided[account])))
            raise AssertionError(f"in-process {account}: decisions differ on replay from decision {first}")
        if replica.state_hash() != states[account].state_hash():
            raise AssertionError(f"in-process {account}: replica ends in another state")
        accepted += sum(type(d) is OrderAccepted for d in again)
        reasons.update(d.reason.name for d in again if type(d) is OrderRejected)
    rejected = sum(reasons.values())
    return {
        "decisions": accepted + rejected,
        "accepted": accepted,
        "rejected": rejected,
        "reject_reasons": dict(reasons),
    }
