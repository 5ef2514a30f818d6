"""What the demo shows of a run: latency percentiles, positions and P&L, stage counts, the audit trail and the
ClickHouse reports."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from hdrh.histogram import HdrHistogram

from oms.apps.demo.steps import DemoFailed, step

__all__ = ["analytics_summary", "audit", "percentiles", "positions_table", "stage_counts"]


def percentiles(h: HdrHistogram) -> str:
    """Count, p50, p99 and max of `h` (nanoseconds), in microseconds."""
    p50, p99, top = (v / 1e3 for v in (h.get_value_at_percentile(50), h.get_value_at_percentile(99), h.get_max_value()))
    return f"n {h.get_total_count()}: p50 {p50:.0f} us, p99 {p99:.0f} us, max {top:.0f} us"


def positions_table(summaries: dict[str, dict[str, Any]]) -> str:
    """Accounts' cash, P&L and positions as an aligned text table."""
    rows = [("account", "cash", "realized P&L", "unrealized P&L", "positions")]
    for account, s in summaries.items():
        held = ", ".join(f"{p['symbol']} {p['qty']}" for p in s["positions"] if Decimal(p["qty"])) or "flat"
        rows.append((account, s["cash"], s["realized_pnl"], s["unrealized_pnl"], held))
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  " + "  ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=True)) for r in rows)


def stage_counts(metrics_text: str) -> dict[str, float]:
    """Observation counts of every histogram labelled by `stage` in a Prometheus exposition."""
    counts: dict[str, float] = {}
    for line in metrics_text.splitlines():
        name, _, rest = line.partition("{")
        if name.endswith("_count") and 'stage="' in rest:
            labels, _, value = rest.rpartition("}")
            counts[f"{name[: -len('_count')]}{{{labels}}}"] = float(value)
    return counts


# -- after the day --


def audit(redis_url: str) -> None:
    """Check the hash chain of every journal stream (what `oms audit verify` does)."""
    from oms.infra.redis.audit import verify
    from oms.infra.redis.server import make_client

    with step("audit trail: each journal record carries the hash of the one before (oms audit verify)"):
        client = make_client(redis_url)
        try:
            report = verify(client)
        finally:
            client.close()
        if not report.ok:
            raise DemoFailed(f"journal chain broken: {report.first_problem}")
        print(f"  {report.records} records in {len(report.streams)} streams: every chain intact")


def analytics_summary(run_dir: Path, start_ns: int) -> None:
    """The TCA summary and the best-execution table of the run, from its ClickHouse store."""
    from oms.infra.clickhouse.clickhouse import connect
    from oms.infra.clickhouse.reports import best_execution, render, tca_orders, tca_summary
    from oms.infra.clickhouse.settings import load_analytics_settings

    settings = load_analytics_settings(run_dir / "oms.toml")  # the run's fees, MICs and arrival bound
    ch = connect(f"chdb://{run_dir / 'clickhouse'}")
    try:
        with step("TCA summary per account, symbol and side (ClickHouse: bps from totals, positive = cost)"):
            print(render(tca_summary(tca_orders(ch, start_ns=start_ns, settings=settings))))
        with step("best execution: top venues per instrument class (ClickHouse, RTS 28 table 1)"):
            print(render(best_execution(ch, start_ns=start_ns, settings=settings)))
    finally:
        ch.close()
