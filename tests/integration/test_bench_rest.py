"""`oms bench rest` with tiny counts: the JSON has the contract's fields, the bare uvicorn baseline, and the run
verified itself."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.rest import RestBenchParams, run, summary

pytestmark = pytest.mark.integration

LATENCY = ("unit", "count", "p50", "p99", "p999", "max")
TINY = RestBenchParams(orders=50, concurrent=200, connections=4, warmup=10)


def test_a_tiny_run_writes_the_contract_fields_and_verifies_itself(tmp_path: Path) -> None:
    result = run(TINY, out_dir=str(tmp_path), progress=lambda _: None)

    written = json.loads((tmp_path / "rest.json").read_text())
    assert written == json.loads(json.dumps(result))
    assert (written["name"], written["unit"], written["count"]) == ("rest", "us", TINY.orders)
    assert all(k in written for k in LATENCY)
    assert 0 < written["p50"] <= written["p99"] <= written["p999"] <= written["max"]
    assert written["ops_per_sec"] > 0 and written["verified"] is True
    assert written["load"] == "closed" and written["hdr"]
    base = written["baseline"]
    assert base["name"] == "bare_uvicorn" and all(k in base for k in LATENCY) and base["count"] == TINY.orders
    assert 0 < base["p50"] <= base["p99"] <= base["max"] and base["ops_per_sec"] > 0
    assert written["ratio"]["p50"] == pytest.approx(written["p50"] / base["p50"])
    assert "orders/s" in summary(written) and "bare uvicorn" in summary(written)
