"""`oms bench sink` end to end with tiny counts: the JSON has the contract's fields and the run verified itself."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.sink import SinkBenchParams, run
from oms.apps.cli import main

pytestmark = pytest.mark.integration

LATENCY = ("unit", "count", "p50", "p99", "p999", "max")
TINY = SinkBenchParams(fills=3_000, accounts=3, chunk=500, batch_rows=1_000, batch_interval_s=0.2, paced_rate=1_000,
                       paced_s=1.0)  # fmt: skip


def test_a_tiny_run_writes_the_contract_fields_and_verifies_itself(tmp_path: Path) -> None:
    result = run(TINY, out_dir=str(tmp_path), progress=lambda _: None)

    written = json.loads((tmp_path / "sink.json").read_text())
    assert written == json.loads(json.dumps(result))
    assert (written["name"], written["unit"], written["count"]) == ("sink", "fills/s", TINY.fills)
    assert written["ops_per_sec"] > 0
    visible = written["visible"]
    assert all(k in visible for k in LATENCY) and visible["unit"] == "us"
    assert visible["count"] == round(TINY.paced_rate * TINY.paced_s)
    assert 0 < visible["p50"] <= visible["p99"] <= visible["p999"] <= visible["max"]
    assert [written[k] for k in ("p50", "p99", "p999", "max")] == [visible[k] for k in ("p50", "p99", "p999", "max")]
    assert written["verified"] is True and written["params"]["fills"] == TINY.fills
    assert written["load"] == visible["load"] == "open" and visible["timed_from"] == "scheduled append time"


def test_the_command_line_names_the_benchmark(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["bench", "sink", "--help"])

    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "fills/s" in out and "--paced-rate" in out
