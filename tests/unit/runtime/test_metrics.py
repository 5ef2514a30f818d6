"""Hot-path metrics: stage histograms from a clock's stamps, counters, per-thread shards summed exactly, and the
Prometheus exposition (also on the REST API's page)."""

from __future__ import annotations

import gc
import threading

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from oms.adapters.api.metrics import ApiMetrics
from oms.core.model.enums import OrdType, RejectReason, Side, TimeInForce
from oms.core.model.messages import OrderAccepted, OrderFilled, OrderRejected, TradePrinted
from oms.runtime.metrics import BUCKETS_NS, STAGES, HotPathMetrics, StageClock, render


def stamped(metrics: HotPathMetrics, t_in: int, risk: int = 0, venue: int = 0, ack: int = 0) -> StageClock:
    """A clock with the given stamps (ns), recorded as `acked` would."""
    clock = metrics.clock("fix")
    clock.t_in, clock.t_risk, clock.t_venue, clock.t_ack = t_in, risk, venue, ack
    metrics.record(clock)
    return clock


def bucket_of(ns: int) -> int:
    """The index of the first bound >= ns (the last index is +Inf)."""
    return next((i for i, bound in enumerate(BUCKETS_NS) if ns <= bound), len(BUCKETS_NS))


def accepted(order_id: int) -> OrderAccepted:
    return OrderAccepted(order_id, f"c{order_id}", "ACC1", "AAPL", Side.BUY, OrdType.LIMIT, TimeInForce.DAY, 10, 100, 1)


def filled(order_id: int, venue: str) -> OrderFilled:
    cl = f"c{order_id}"
    return OrderFilled(order_id, cl, "ACC1", "AAPL", 7, Side.BUY, 10, 100, 0, 10, 1000, True, 1, None, venue)


def test_each_stage_lands_in_the_bucket_of_its_duration_bounds_inclusive() -> None:
    m = HotPathMetrics()

    stamped(m, t_in=1_000, risk=4_000, venue=104_000, ack=1_104_001)  # 3 us, 100 us (a bound), 1.000001 ms
    snap = m.snapshot()

    expected = {"in_to_risk": 3_000, "risk_to_venue": 100_000, "venue_to_ack": 1_000_001, "in_to_ack": 1_103_001}
    for stage, ns in expected.items():
        buckets = snap.stage_buckets[stage]
        assert buckets[bucket_of(ns)] == 1 and sum(buckets) == 1, stage
        assert snap.stage_sums_ns[stage] == ns
    assert BUCKETS_NS[bucket_of(100_000)] == 100_000  # exactly on a bound: that bucket, not the next
    assert BUCKETS_NS[bucket_of(1_000_001)] == 2_000_000


def test_a_stage_is_recorded_only_when_both_its_ends_are_stamped() -> None:
    m = HotPathMetrics()

    stamped(m, t_in=1, risk=2_001, ack=9_001)  # a risk reject: no venue
    stamped(m, t_in=1, ack=5_001)  # refused by the codec: only the total
    snap = m.snapshot()

    assert [snap.stage_count(s) for s in STAGES] == [1, 0, 0, 2, 0, 0, 0]


def test_a_committed_answer_splits_venue_to_ack_in_three() -> None:
    m = HotPathMetrics()
    clock = m.clock("fix")
    clock.t_in, clock.t_risk, clock.t_venue, clock.t_sealed, clock.t_durable, clock.t_ack = (
        1_000, 4_000, 104_000, 154_000, 754_000, 904_000
    )
    m.record(clock)
    no_seal = stamped(m, t_in=1_000, risk=4_000, venue=104_000, ack=904_000)  # a REST answer: not split
    snap = m.snapshot()

    split = {"venue_to_sealed": 50_000, "sealed_to_durable": 600_000, "durable_to_ack": 150_000}
    assert {stage: snap.stage_sums_ns[stage] for stage in split} == split
    assert sum(split.values()) == clock.t_ack - clock.t_venue == 800_000
    assert snap.stage_count("venue_to_ack") == 2 and no_seal.t_sealed == 0
    assert all(snap.stage_count(stage) == 1 for stage in split)


def test_a_clock_records_once_whether_acked_or_done_and_however_often() -> None:
    m = HotPathMetrics()
    algo_child = m.clock("algo")
    algo_child.risk_decided()
    algo_child.venue_done()
    fix_order = m.clock("fix")
    fix_order.risk_decided()
    fix_order.venue_done()

    algo_child.done()
    algo_child.done()
    fix_order.acked()
    fix_order.acked()
    fix_order.done()
    snap = m.snapshot()

    assert [snap.stage_count(s) for s in STAGES] == [2, 2, 1, 1, 0, 0, 0]
    assert 0 < algo_child.t_in <= algo_child.t_risk <= algo_child.t_venue and algo_child.t_ack == 0
    assert fix_order.t_venue <= fix_order.t_ack
    assert snap.orders_in == {"algo": 1, "fix": 1}


def test_reports_count_acks_fills_by_venue_and_rejects_by_reason() -> None:
    m = HotPathMetrics()
    reject = OrderRejected(3, "c3", "ACC1", "AAPL", RejectReason.CREDIT_LIMIT, "credit", 1)
    tape = TradePrinted("INTERNAL", "AAPL", 1, 100, 10, Side.BUY, 1)

    m.count_reports([(accepted(1), None), (filled(1, "INTERNAL"), None), (filled(2, "EXCH"), None), (tape, None)])
    m.count_reports([(reject, None), (accepted(4), None), (filled(4, "INTERNAL"), None)])
    m.reject(RejectReason.INVALID_PRICE)
    m.reject("invalid_request")
    m.order_in("rest")
    snap = m.snapshot()

    assert snap.acks == 2
    assert snap.fills == {"INTERNAL": 2, "EXCH": 1}
    assert snap.rejects == {"credit_limit": 1, "invalid_price": 1, "invalid_request": 1}
    assert snap.orders_in == {"rest": 1}


def test_threads_recording_at_once_lose_no_count_and_ended_threads_keep_theirs() -> None:
    m = HotPathMetrics()
    per_thread, threads = 20_000, 4
    start = threading.Barrier(threads)

    def work() -> None:
        start.wait()
        for _ in range(per_thread):
            clock = m.clock("fix")
            clock.risk_decided()
            clock.acked()
            m.count_reports([(accepted(1), None)])

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    gc.collect()
    first, second = m.snapshot(), m.snapshot()

    total = per_thread * threads
    assert first == second  # the ended threads' shards were folded in once, not counted again
    assert first.orders_in == {"fix": total} and first.acks == total
    assert first.stage_count("in_to_risk") == first.stage_count("in_to_ack") == total
    assert len(m._live) == 0  # every worker ended: nothing left to sum per thread


def test_exposition_has_every_stage_with_cumulative_buckets_count_and_sum() -> None:
    m = HotPathMetrics()
    registry = CollectorRegistry()
    registry.register(m)  # type: ignore[arg-type]
    stamped(m, t_in=0, risk=10_000, venue=30_000, ack=130_000)
    stamped(m, t_in=0, risk=3_000_000, ack=4_000_000)
    m.count_reports([(accepted(1), None), (filled(1, "INTERNAL"), None)])

    families = {f.name: f for f in text_string_to_metric_families(render(registry).decode())}

    samples = families["oms_stage_seconds"].samples
    count = {s.labels["stage"]: s.value for s in samples if s.name == "oms_stage_seconds_count"}
    total = {s.labels["stage"]: s.value for s in samples if s.name == "oms_stage_seconds_sum"}
    assert count == {"in_to_risk": 2, "risk_to_venue": 1, "venue_to_ack": 1, "in_to_ack": 2, "venue_to_sealed": 0,
                     "sealed_to_durable": 0, "durable_to_ack": 0}  # fmt: skip
    assert total["in_to_ack"] == pytest.approx(4.13e-3)
    risk = [(float(s.labels["le"]), s.value) for s in samples
            if s.name == "oms_stage_seconds_bucket" and s.labels["stage"] == "in_to_risk"]  # fmt: skip
    assert len(risk) == len(BUCKETS_NS) + 1 and risk[-1] == (float("inf"), 2)
    assert [v for _, v in risk] == sorted(v for _, v in risk)  # cumulative
    assert dict(risk)[1e-5] == 1 and dict(risk)[2e-3] == 1 and dict(risk)[5e-3] == 2
    orders = {s.labels["channel"]: s.value for s in families["oms_orders_in"].samples}
    assert orders == {"algo": 0, "fix": 2, "rest": 0}
    assert families["oms_acks"].samples[0].value == 1
    assert [(s.labels["venue"], s.value) for s in families["oms_fills"].samples] == [("INTERNAL", 1)]


def test_the_api_metrics_page_renders_its_own_counters_then_the_hot_path() -> None:
    m = HotPathMetrics()
    registry = CollectorRegistry()
    registry.register(m)  # type: ignore[arg-type]
    stamped(m, t_in=0, risk=1_000, venue=2_000, ack=3_000)
    api = ApiMetrics(hot_path=registry)
    api.orders_in.inc()

    names = {f.name for f in text_string_to_metric_families(api.render().decode())}

    assert {"oms_api_orders_in", "oms_api_submit_ack_seconds", "oms_stage_seconds", "oms_orders_in"} <= names
    assert "oms_stage_seconds" not in {
        f.name for f in text_string_to_metric_families(ApiMetrics(hot_path=None).render().decode())
    }
