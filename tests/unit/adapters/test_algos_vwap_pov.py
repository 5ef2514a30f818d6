"""VWAP follows its volume profile; POV stays within its band of the market volume printed by others."""

from __future__ import annotations

import pytest

from oms.adapters.algos import AlgoRejectReason, ParentRejected, ParentStatus, SubmitPov, SubmitVwap
from oms.apps.sim import SimMarket
from oms.core.model.enums import Side

S = 1_000_000_000


def children_of(m: SimMarket, parent_id: str) -> list:
    engine = m.host.engine
    return [
        o for oid, o in engine.orders.items()
        if engine.session_of[oid] == "ALGO" and o.cl_ord_id.startswith(parent_id + ".")
    ]  # fmt: skip


def child_times(m: SimMarket, parent_id: str, until_ns: int) -> dict[int, int]:
    """Step the market to `until_ns`; {time a child appeared: its qty}."""
    seen: dict[int, int] = {}
    count = 0
    while m.now + m.step_ns <= until_ns:
        m.step()
        kids = children_of(m, parent_id)
        for k in kids[count:]:
            seen[m.now] = seen.get(m.now, 0) + k.qty
        count = len(kids)
    return seen


# -- VWAP --


@pytest.mark.parametrize(
    ("qty", "profile"),
    [(1000, [1, 3, 0, 2, 4]), (997, [5, 20, 30, 25, 20]), (4321, [7, 1, 1, 1, 9, 13, 2, 2])],
)
def test_vwap_child_quantities_follow_the_profile_bucket_by_bucket(qty, profile):
    m = SimMarket(seed=2)
    n = len(profile)
    m.algos.submit(SubmitVwap("V1", "ALGO1", "AAPL", Side.BUY, qty, 10 * S, (10 + 10 * n) * S, profile))

    seen = child_times(m, "V1", (20 + 10 * n) * S)

    view = m.algos.view("V1")
    assert (view.status, view.cum_qty) == (ParentStatus.FILLED, qty)
    total = sum(profile)
    for b, w in enumerate(profile):
        at = (10 + 10 * b) * S
        ideal = qty * w / total
        assert abs(seen.get(at, 0) - ideal) <= 1, (b, seen.get(at, 0), ideal)  # within one lot (AAPL lot = 1)
    assert set(seen) <= {(10 + 10 * b) * S for b in range(n)}  # children only at bucket starts
    assert view.cum_notional == sum(k.cum_notional for k in children_of(m, "V1"))


def test_vwap_takes_a_configured_profile_by_name_and_rejects_an_unknown_one():
    m = SimMarket(seed=0, profiles={"u-shape": [4, 1, 1, 4]})

    accepted = m.algos.submit(SubmitVwap("V2", "ALGO1", "AAPL", Side.SELL, 100, S, 41 * S, profile_name="u-shape"))
    (rejected,) = m.algos.submit(SubmitVwap("V3", "ALGO1", "AAPL", Side.SELL, 100, S, 41 * S, profile_name="nope"))
    seen = child_times(m, "V2", 50 * S)

    assert accepted and rejected.reason is AlgoRejectReason.UNKNOWN_PROFILE
    assert list(seen.values()) == [40, 10, 10, 40]
    assert m.algos.parent("V2").cmd.profile == [4, 1, 1, 4]  # journaled with the profile itself


@pytest.mark.parametrize("profile", [[], [1, -1], [0, 0]])
def test_vwap_with_a_bad_profile_is_rejected(profile):
    m = SimMarket(seed=0)

    (event,) = m.algos.submit(SubmitVwap("V4", "ALGO1", "AAPL", Side.BUY, 100, S, 2 * S, profile))

    assert isinstance(event, ParentRejected) and event.reason is AlgoRejectReason.INVALID_PROFILE


# -- POV --


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pov_stays_within_its_band_of_the_volume_others_printed(seed):
    rate_bp, min_clip, max_clip = 1000, 10, 100
    m = SimMarket(seed=seed, noise_qty=200)  # each print asks at most 20 of us: below max_clip
    m.algos.submit(SubmitPov("P1", "ALGO1", "AAPL", Side.BUY, 500, rate_bp, min_clip, max_clip, start_ns=5 * S))
    steps = 0
    while m.algos.view("P1").status is not ParentStatus.FILLED:
        m.step()
        steps += 1
        assert steps < 1000
        kids = children_of(m, "P1")
        own = sum(k.cum_qty for k in kids)
        others = sum(p.qty for p in m.tape.prints if p.ts_ns >= 5 * S) - own  # independent of the engine
        target = min(500, rate_bp * others // 10_000)
        view = m.algos.view("P1")
        assert view.cum_qty == own
        assert m.algos.parent("P1").market_volume == others
        if view.status is not ParentStatus.FILLED:
            assert target - min_clip < view.cum_qty <= target, (m.now, view.cum_qty, target)
        assert all(min_clip <= k.qty <= max_clip or k.qty == 500 - (own - k.cum_qty) for k in kids)
    assert m.algos.view("P1").cum_qty == 500


def test_pov_sends_nothing_before_start_and_expires_at_its_end():
    m = SimMarket(seed=0)
    m.algos.submit(SubmitPov("P2", "ALGO1", "AAPL", Side.SELL, 100_000, 500, 10, 100, 10 * S, 30 * S))

    m.run_until(9 * S)
    assert children_of(m, "P2") == []
    m.run_until(31 * S)

    view = m.algos.view("P2")
    assert view.status is ParentStatus.EXPIRED and 0 < view.cum_qty < 100_000


@pytest.mark.parametrize(
    ("rate", "lo", "hi", "reason"),
    [(0, 1, 2, AlgoRejectReason.INVALID_RATE), (10_001, 1, 2, AlgoRejectReason.INVALID_RATE),
     (100, 0, 2, AlgoRejectReason.INVALID_CLIP), (100, 3, 2, AlgoRejectReason.INVALID_CLIP)],
)  # fmt: skip
def test_pov_with_a_bad_rate_or_clips_is_rejected(rate, lo, hi, reason):
    m = SimMarket(seed=0)

    (event,) = m.algos.submit(SubmitPov("P3", "ALGO1", "AAPL", Side.BUY, 100, rate, lo, hi))

    assert event.reason is reason
