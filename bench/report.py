"""Where benchmark results go and how they are written."""

from __future__ import annotations

import json
from pathlib import Path

from hdrh.histogram import HdrHistogram

REQUIRED = ("name", "unit", "count")


def write_result(name: str, result: dict, out_dir: str = "bench/results") -> Path:
    """Write `result` as `<out_dir>/<name>.json`; refuse a result that lacks the contract's fields."""
    missing = [k for k in REQUIRED if k not in result]
    if missing or not ("ops_per_sec" in result or {"p50", "p99", "p999", "max"} <= result.keys()):
        raise ValueError(
            f"benchmark result {name!r} lacks required fields: {missing or 'p50/p99/p999/max or ops_per_sec'}"
        )
    path = Path(out_dir) / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, sort_keys=False) + "\n")
    return path


def latency_fields(hist: HdrHistogram) -> dict[str, float | int | str]:
    """The contract's latency fields (microseconds) of a histogram of nanoseconds."""
    q = hist.get_value_at_percentile
    return {
        "unit": "us",
        "count": hist.get_total_count(),
        "p50": q(50) / 1e3,
        "p99": q(99) / 1e3,
        "p999": q(99.9) / 1e3,
        "max": hist.get_max_value() / 1e3,
    }
