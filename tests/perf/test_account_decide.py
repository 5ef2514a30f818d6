"""Micro-benchmarks of `AccountState.decide`, the pre-trade check, on the ACC1 account of configs/accounts.toml.

`decide` changes nothing, so the same order is decided again and again; after timing, each benchmark checks the
decision and that the account's state hash is what it was. The times are reported, never asserted. See the figures
with `pytest tests/perf --benchmark-only`; a plain `pytest` runs these briefly (bounded rounds) and
`--benchmark-disable` runs each target once, still checked.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from oms.core.accounts import AccountState
from oms.core.model.enums import OrdType, RejectReason, Side
from oms.core.model.instruments import InstrumentRegistry
from oms.core.model.messages import OrderAccepted, OrderRejected, SubmitOrder
from risk.limits import load_risk_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
INSTRUMENTS = InstrumentRegistry.load(CONFIGS / "instruments.toml")
LIMITS = load_risk_config(CONFIGS / "accounts.toml", INSTRUMENTS).limits_for("ACC1")
PX = 1_500_000  # AAPL 150.00


@pytest.mark.parametrize(
    ("qty", "reason"),
    [(100, RejectReason.NONE), (20_000, RejectReason.MAX_ORDER_QTY)],  # within the limits; above max_order_qty
    ids=["accepted", "rejected"],
)
def test_decide_a_limit_order(benchmark: BenchmarkFixture, qty: int, reason: RejectReason) -> None:
    assert LIMITS is not None
    state = AccountState("ACC1", LIMITS, INSTRUMENTS)
    state.mark("AAPL", PX, ts_ns=1)
    before = state.state_hash()
    cmd = SubmitOrder("ACC1", "c1", "AAPL", Side.BUY, OrdType.LIMIT, qty, PX)

    decision = benchmark.pedantic(state.decide, args=(cmd, 1, 10), rounds=200, iterations=100, warmup_rounds=5)

    if reason is RejectReason.NONE:
        assert isinstance(decision, OrderAccepted) and (decision.order_id, decision.qty) == (1, qty)
    else:
        assert isinstance(decision, OrderRejected) and decision.reason is reason
    assert state.state_hash() == before  # deciding held nothing and counted nothing
