"""The figures of a benchmark's result: each measured latency percentile or rate, beside its same-run baseline.

`figures(name, result)` reads one result JSON (see `bench.result_file`) as the rows of the report's table; a
benchmark without its own reader gets the generic one (top-level latency and `ops_per_sec`, its `baseline`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["FIGURES", "NONE", "PERCENTILES", "Figure", "figures", "latency_figures", "lookup", "rate_figure"]

PERCENTILES = (("p50", "p50", 50.0), ("p99", "p99", 99.0), ("p999", "p99.9", 99.9))
NONE = "—"


@dataclass(frozen=True)
class Figure:
    """One measured figure, and the same-run baseline it is set beside (None where there is none)."""

    benchmark: str
    what: str
    unit: str  # "us" for latency, else a rate such as "orders/s"
    load: str  # closed | open | not stated, for latency; "—" for throughput
    count: int | None  # samples behind a latency percentile; orders/fills/commands behind a rate
    value: float
    baseline_what: str | None = None
    baseline: float | None = None
    percentile: float | None = None  # for a latency percentile: which one (50, 99, 99.9)

    @property
    def resolved(self) -> bool:
        """False for a percentile that `count` samples cannot resolve (fewer than 1/(1-p)): it is the maximum."""
        if self.percentile is None or self.count is None:
            return True
        return self.count >= 1 / (1 - self.percentile / 100) - 1e-9

    @property
    def ratio(self) -> float | None:
        """Figure over baseline: below 1 is faster (latency), above 1 is more (throughput)."""
        if self.baseline is None or self.baseline == 0:
            return None
        return self.value / self.baseline


def _is_latency(section: object) -> bool:
    return isinstance(section, Mapping) and all(isinstance(section.get(k), int | float) for k, _, _ in PERCENTILES)


def latency_figures(
    benchmark: str,
    what: str,
    section: Mapping[str, Any] | None,
    baseline_what: str | None = None,
    baseline: Mapping[str, Any] | None = None,
) -> list[Figure]:
    """p50, p99 and p99.9 of `section` beside those of `baseline`; nothing when `section` holds no latency."""
    if not _is_latency(section):
        return []
    assert section is not None
    base = baseline if _is_latency(baseline) else None
    return [
        Figure(
            benchmark,
            f"{what}, {label}",
            "us",
            str(section.get("load", "not stated")),
            section.get("count"),
            float(section[key]),
            baseline_what if base is not None else None,
            float(base[key]) if base is not None else None,
            pct,
        )
        for key, label, pct in PERCENTILES
    ]


def rate_figure(
    benchmark: str,
    what: str,
    unit: str,
    value: object,
    count: int | None = None,
    baseline_what: str | None = None,
    baseline: object = None,
) -> list[Figure]:
    """One throughput figure beside its baseline; nothing when `value` is not a number."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return []
    has_base = isinstance(baseline, int | float) and not isinstance(baseline, bool)
    return [
        Figure(
            benchmark,
            what,
            unit,
            NONE,
            count,
            float(value),
            baseline_what if has_base else None,
            float(baseline) if has_base else None,  # type: ignore[arg-type]
        )
    ]


def lookup(d: Mapping[str, Any] | None, *path: str) -> Any:
    """The value at `path` in nested mappings; None where a step is missing or not a mapping."""
    for key in path:
        if not isinstance(d, Mapping):
            return None
        d = d.get(key)
    return d


def _book(r: Mapping[str, Any]) -> list[Figure]:
    base = r.get("baseline") or {}
    lat, base_lat = r.get("latency") or r, base.get("latency") or base
    batch = lookup(r, "params", "batch")
    per_call = f", {batch:,} a call" if isinstance(batch, int) else ""
    return [
        *latency_figures("book", "single-call submit/cancel/replace, native engine", lat,
                         "reference engine (Python), same commands", base_lat),
        *rate_figure("book", f"batch API{per_call}, native engine", "commands/s", r.get("ops_per_sec"),
                     r.get("count"), "reference engine, same stream's prefix", base.get("ops_per_sec")),
    ]  # fmt: skip


def _risk(r: Mapping[str, Any]) -> list[Figure]:
    strict, base = r.get("strict") or {}, r.get("baseline") or {}
    thr = strict.get("throughput") or {}
    fsync = strict.get("appendfsync")
    journal = f", Redis journal appendfsync={fsync}" if fsync else ""
    shape = (
        f" ({thr['batch']} orders a call, {thr['in_flight']} calls in flight per actor)"
        if {"batch", "in_flight"} <= thr.keys()
        else ""
    )
    reserved = r.get("reserved")
    return [
        *latency_figures("risk", "AccountState.decide in process", r),
        *(
            latency_figures("risk", "reserved mode decision", reserved, "in-process decide, same run", r)
            if isinstance(reserved, Mapping)
            else []
        ),
        *latency_figures("risk", f"strict: account actor round trip{journal}", strict,
                         "bare Ray actor call, same payload", base),
        *rate_figure("risk", f"strict decisions/s{shape}", "decisions/s", thr.get("ops_per_sec"), thr.get("count"),
                     "bare Ray actor calls/s (one order a call)", base.get("ops_per_sec")),
        *(
            rate_figure("risk", "reserved mode decisions/s", "decisions/s", reserved.get("ops_per_sec"),
                        reserved.get("count"))
            if isinstance(reserved, Mapping)
            else []
        ),
    ]  # fmt: skip


def _fix(r: Mapping[str, Any]) -> list[Figure]:
    base = r.get("baseline") or {}
    window = lookup(r, "params", "window")
    in_flight = f", {window} in flight" if isinstance(window, int) else ""
    return [
        *latency_figures("fix", "NewOrderSingle -> ExecutionReport(New) via the OMS gateway", r,
                         "bare QuickFIX acceptor (fixed ExecutionReport)", base),
        *latency_figures("fix", "NewOrderSingle -> ExecutionReport(Fill) via the OMS gateway", r.get("fill")),
        *latency_figures("fix", "raw TCP ping-pong between two processes (the floor)", r.get("floor")),
        *rate_figure("fix", f"pipelined orders acknowledged{in_flight}", "orders/s", r.get("ops_per_sec"),
                     lookup(r, "params", "pipelined"), "bare QuickFIX acceptor, same pipelining",
                     base.get("ops_per_sec")),
    ]  # fmt: skip


def _sink(r: Mapping[str, Any]) -> list[Figure]:
    visible = r.get("visible") or r
    rate = visible.get("rate")
    at = f" at {rate:,} fills/s" if isinstance(rate, int | float) else ""
    return [
        *rate_figure("sink", "journal -> ClickHouse (chDB), draining a backlog", "fills/s", r.get("ops_per_sec"),
                     r.get("count")),
        *latency_figures("sink", f"fill journaled -> visible in ClickHouse{at}", visible),
    ]  # fmt: skip


def _rest(r: Mapping[str, Any]) -> list[Figure]:
    base = r.get("baseline") or {}
    conns = lookup(r, "params", "connections")
    over = f" over {conns} connections" if isinstance(conns, int) else ""
    return [
        *latency_figures("rest", "POST /v1/orders -> 201 acknowledged", r,
                         "bare uvicorn app (fixed 201, no OMS)", base),
        *rate_figure("rest", f"orders acknowledged{over}", "orders/s", r.get("ops_per_sec"),
                     lookup(r, "params", "concurrent"), "bare uvicorn app, same connections", base.get("ops_per_sec")),
    ]  # fmt: skip


def _generic(r: Mapping[str, Any]) -> list[Figure]:
    name = str(r.get("name", "?"))
    base = r.get("baseline") if isinstance(r.get("baseline"), Mapping) else None
    base_name = str(base.get("name", "baseline")) if base else None
    return [
        *latency_figures(name, "latency", r, base_name, base),
        *rate_figure(name, "throughput", str(r.get("unit", "ops/s")), r.get("ops_per_sec"), r.get("count"),
                     base_name, base.get("ops_per_sec") if base else None),
    ]  # fmt: skip


def _serve(r: Mapping[str, Any]) -> list[Figure]:
    base, durable = r.get("baseline"), r.get("durable_baseline")
    rate = r.get("headline_rate")
    at = f" at {rate:g} msg/s" if rate else ""
    sustained = r.get("sustained_ops_per_sec") or {}
    overload = r.get("overload") if isinstance(r.get("overload"), Mapping) else {}
    return [
        *latency_figures("serve", f"oms serve NOS -> New{at}", r, "bare QuickFIX", base),
        *latency_figures("serve", f"oms serve NOS -> New{at}", r, "durable bare (XADD + fsync)", durable),
        *latency_figures("serve", f"oms serve Cancel -> Canceled{at}", r.get("cancel"), "bare QuickFIX",
                         lookup(r, "baseline", "cancel")),
        *latency_figures("serve", f"oms serve Cancel -> Canceled{at}", r.get("cancel"), "durable bare",
                         lookup(r, "durable_baseline", "cancel")),
        *rate_figure("serve", "sustained with p99 < 10 ms (1 session)", "msg/s", sustained.get("oms"), None,
                     "bare QuickFIX", sustained.get("bare")),
        *rate_figure("serve", f"CPU per message{at} (whole process tree)", "us", r.get("cpu_us_per_order"), None,
                     "bare QuickFIX", lookup(r, "baseline", "cpu_us_per_order")),
        *rate_figure("serve", f"worst answer at twice the sustained rate ({overload.get('rate', 0):g} msg/s, bound "
                     "100 ms)", "us", overload.get("max_us")),
    ]  # fmt: skip


FIGURES: dict[str, Callable[[Mapping[str, Any]], list[Figure]]] = {
    "serve": _serve,
    "book": _book,
    "risk": _risk,
    "fix": _fix,
    "sink": _sink,
    "rest": _rest,
}


def figures(name: str, result: Mapping[str, Any]) -> list[Figure]:
    """Every figure of one benchmark's result, each with its same-run baseline where it has one. Missing sections
    (an older result, a figure a benchmark does not measure yet) give fewer rows, never an error."""
    return FIGURES.get(name, _generic)(result)
