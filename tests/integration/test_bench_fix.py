"""`oms bench fix` end to end with tiny counts: the JSON has the contract's fields and the run verified itself."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.fix import FixBenchParams, run
from oms.apps.cli import main

pytestmark = pytest.mark.integration

LATENCY = ("unit", "count", "p50", "p99", "p999", "max")
TINY = FixBenchParams(orders=50, fills=30, pipelined=200, window=16, warmup=10, pings=50)


def test_a_tiny_run_writes_the_contract_fields_and_verifies_itself(tmp_path: Path) -> None:
    result = run(TINY, out_dir=str(tmp_path), progress=lambda _: None)

    written = json.loads((tmp_path / "fix.json").read_text())
    assert written == json.loads(json.dumps(result))
    assert (written["name"], written["count"], written["fill"]["count"]) == ("fix", TINY.orders, TINY.fills)
    for fields in (written, written["fill"], written["baseline"], written["floor"]):
        assert all(k in fields for k in LATENCY)
        assert 0 < fields["p50"] <= fields["p99"] <= fields["max"]
    assert written["ops_per_sec"] > 0 and written["baseline"]["ops_per_sec"] > 0
    assert written["ratio"]["p50"] == pytest.approx(written["p50"] / written["baseline"]["p50"])
    assert written["verified"] is True
    assert (written["baseline"]["name"], written["floor"]["name"]) == ("bare_quickfix", "raw_tcp")
    assert all(s["load"] == "closed" and s["hdr"] for s in (written, written["fill"], written["baseline"]))


def test_the_command_line_names_the_benchmark(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["bench", "fix", "--help"])

    assert exc.value.code == 0
    assert "bare QuickFIX" in capsys.readouterr().out
