"""`oms bench book` with tiny counts: the JSON has the contract's fields, the distributions, and the run verified
itself."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.book import BookBenchParams, run, summary
from bench.report import decode_histogram

pytestmark = pytest.mark.integration

TINY = BookBenchParams(ops=5_000, ref_ops=1_000, latency_calls=2_000, batch=1_024)


def test_a_tiny_run_writes_the_contract_fields_and_both_distributions(tmp_path: Path) -> None:
    result = run(TINY, out_dir=str(tmp_path), progress=lambda _: None)

    written = json.loads((tmp_path / "book.json").read_text())
    assert written == json.loads(json.dumps(result))
    assert (written["name"], written["unit"], written["count"]) == ("book", "ops/s", TINY.ops)
    base = written["baseline"]
    for r in (written, base):
        assert r["ops_per_sec"] > 0 and 0 < r["p50"] <= r["p99"] <= r["p999"] <= r["max"]
        assert r["load"] == r["latency"]["load"] == "closed" and "hdr" not in r
    native, ref = decode_histogram(written["latency"]), decode_histogram(base["latency"])
    assert native is not None and native.get_total_count() == TINY.latency_calls
    assert ref is not None and ref.get_total_count() == TINY.latency_calls // 10
    assert written["verified"]["commands"] == TINY.ref_ops
    assert "verified: identical events" in summary(written)
