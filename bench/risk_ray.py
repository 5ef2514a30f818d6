"""The risk benchmark's Ray side: how it calls actors (synchronous round trips, pipelined calls) and the baseline,
a bare actor method returning its argument (`measure_baseline`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from hdrh.histogram import HdrHistogram

from bench.risk_workload import Item, RiskParams, new_histogram

__all__ = ["Echo", "measure_baseline", "pipeline", "sync_round_trips"]


class Echo:
    """The bare actor: one method that returns its argument."""

    def echo(self, x: object) -> object:
        return x


def sync_round_trips(call: Callable[[], object], n: int, warmup: int) -> HdrHistogram:
    """ns per synchronous `call()` (it submits and `ray.get`s), `warmup` untimed calls first."""
    for _ in range(warmup):
        call()
    hist, clock = new_histogram(), time.perf_counter_ns
    for _ in range(n):
        t0 = clock()
        call()
        hist.record_value(max(clock() - t0, 1))
    return hist


def pipeline(
    n_actors: int, in_flight: int, submit: Callable[[int], Any], on_result: Callable[[Any, Any], None]
) -> float:
    """Keep `in_flight` calls outstanding on each actor until `submit(k)` returns None for every actor; returns
    the seconds it took. `submit(k)` -> (ref, tag) | None; `on_result(tag, value)` sees every result (`ray.wait`,
    then `ray.get` of what is ready: never one blocking get after another)."""
    import ray

    pending: dict[Any, tuple[int, Any]] = {}
    t0 = time.perf_counter()
    for k in range(n_actors):
        for _ in range(in_flight):
            call = submit(k)
            if call is None:
                break
            pending[call[0]] = (k, call[1])
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        for ref, value in zip(ready, ray.get(ready), strict=True):
            k, tag = pending.pop(ref)
            on_result(tag, value)
            call = submit(k)
            if call is not None:
                pending[call[0]] = (k, call[1])
    return time.perf_counter() - t0


def measure_baseline(p: RiskParams, payload: list[Item]) -> tuple[HdrHistogram, float]:
    """(sync round trip ns, pipelined calls/s) of bare actors echoing `payload`."""
    import ray

    echo_cls = ray.remote(num_cpus=0)(Echo)
    actors = [echo_cls.remote() for _ in range(p.actors)]
    try:
        ray.get([a.echo.remote(None) for a in actors])
        first = actors[0]
        hist = sync_round_trips(lambda: ray.get(first.echo.remote(payload)), p.baseline_calls, p.warmup)
        left = [p.baseline_pipelined // p.actors + (k < p.baseline_pipelined % p.actors) for k in range(p.actors)]
        got = [0]

        def submit(k: int) -> Any:
            if left[k] == 0:
                return None
            left[k] -= 1
            return actors[k].echo.remote(payload), None

        def on_result(_tag: object, value: object) -> None:
            got[0] += 1
            assert value == payload

        elapsed = pipeline(p.actors, p.in_flight, submit, on_result)
        assert got[0] == p.baseline_pipelined
        return hist, p.baseline_pipelined / elapsed if elapsed else 0.0
    finally:
        for a in actors:
            ray.kill(a)
