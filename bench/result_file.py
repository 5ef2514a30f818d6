"""One benchmark's result file: `write_result` writes `<out_dir>/<name>.json`, whose latency sections come from
`latency_fields`.

A latency section keeps the whole distribution (`hdr`: the HdrHistogram's base64 encoding, in nanoseconds) beside the
contract's percentiles and says how the load was driven (`load`):

- `closed`: one request at a time, each sent when the previous answer arrived. The figures are service times under
  that load; a stall delays the next request instead of piling requests up (coordinated omission), which is the
  nature of a closed loop, not something a correction can undo: read them as such.
- `open`: requests scheduled at a fixed rate, each latency measured from the request's scheduled time, so a stall
  counts against every request that was due during it (no coordinated omission).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from hdrh.histogram import HdrHistogram

__all__ = ["LOADS", "REQUIRED", "Load", "decode_histogram", "encode_histogram", "latency_fields", "write_result"]

REQUIRED = ("name", "unit", "count")
LOADS = ("closed", "open")

Load = Literal["closed", "open"]


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


def latency_fields(hist: HdrHistogram, load: Load = "closed") -> dict[str, Any]:
    """The contract's latency fields (microseconds) of a histogram of nanoseconds, how the load was driven
    (`closed` or `open`, see the module text; ValueError otherwise) and the whole distribution (`hdr`)."""
    if load not in LOADS:
        raise ValueError(f"load must be 'closed' or 'open', not {load!r}")
    q = hist.get_value_at_percentile
    return {
        "unit": "us",
        "count": hist.get_total_count(),
        "p50": q(50) / 1e3,
        "p99": q(99) / 1e3,
        "p999": q(99.9) / 1e3,
        "max": hist.get_max_value() / 1e3,
        "load": load,
        "hdr": encode_histogram(hist),
    }


def encode_histogram(hist: HdrHistogram) -> str:
    """The histogram in HdrHistogram's compressed base64 form (what its other-language tools read)."""
    return hist.encode().decode("ascii")


def decode_histogram(section: Mapping[str, Any] | None) -> HdrHistogram | None:
    """The histogram kept in a latency section's `hdr`; None when the section keeps none. A corrupt `hdr` raises
    ValueError naming the problem."""
    if not section or not isinstance(section.get("hdr"), str):
        return None
    try:
        return HdrHistogram.decode(section["hdr"].encode("ascii"))
    except Exception as exc:  # hdrh raises assorted errors on bad input; one clear error out
        raise ValueError(f"unreadable latency distribution (hdr): {type(exc).__name__}: {exc}") from exc
