"""`oms bench all` end to end at the quick scale: every benchmark's JSON, the plots and REPORT.md from one run."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import pytest

from bench.all import QUICK_SCALE, AllBenchParams, exit_code, run, summary
from bench.report import ORDER, REPORT
from bench.sink import SinkBenchParams

pytestmark = pytest.mark.integration

LATENCY = ("unit", "count", "p50", "p99", "p999", "max", "load", "hdr")


def assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", f"{path} is not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    assert width > 100 and height > 100


def assert_latency(section: dict[str, Any], load: str) -> None:
    assert all(k in section for k in LATENCY), section.keys()
    assert section["unit"] == "us" and section["load"] == load and section["count"] > 0
    assert 0 < section["p50"] <= section["p99"] <= section["p999"] <= section["max"]


def test_one_quick_run_writes_every_json_the_plots_and_the_report(tmp_path: Path) -> None:
    lines: list[str] = []

    result = run(AllBenchParams(scale=QUICK_SCALE), out_dir=str(tmp_path), progress=lines.append)

    assert result["failed"] == [], summary(result)
    assert exit_code(result) == 0 and list(result["outcomes"]) == list(ORDER)
    assert all(any(line.startswith(f"[{i}/{len(ORDER)}] {name}:") for line in lines) for i, name in enumerate(ORDER, 1))
    written = {name: json.loads((tmp_path / f"{name}.json").read_text()) for name in ORDER}
    for name, r in written.items():
        assert r["name"] == name and {"unit", "count"} <= r.keys()
        assert {"p50", "p99", "p999", "max"} <= r.keys() or "ops_per_sec" in r
    serve, book, risk, fix, sink, rest = (written[n] for n in ORDER)
    for section in (serve, serve["baseline"], serve["durable_baseline"], serve["cancel"]):
        assert 0 < section["p50"] <= section["p99"] <= section["p999"] <= section["max"]
    assert serve["load"] == "open" and {r["rate"] for r in serve["rows"] if not r.get("overload")} == {200.0, 1000.0}
    assert serve["overload"] is None or serve["overload"]["rate"] == 2 * serve["sustained_ops_per_sec"]["oms"]
    assert_latency(book["latency"], "closed")
    assert_latency(book["baseline"]["latency"], "closed")
    assert book["ops_per_sec"] > 0 and book["baseline"]["ops_per_sec"] > 0
    for section in (risk, risk["strict"], risk["baseline"], fix, fix["fill"], fix["floor"], rest):
        assert_latency(section, "closed")
    for r in (fix, rest):
        assert_latency(r["baseline"], "closed")
        assert r["baseline"]["name"] and r["ops_per_sec"] > 0 and r["baseline"]["ops_per_sec"] > 0
    assert_latency(sink["visible"], "open")
    assert sink["load"] == "open" and sink["ops_per_sec"] > 0
    assert sink["visible"]["timed_from"] == "scheduled append time"

    report = (tmp_path / REPORT).read_text()
    table = [line for line in report.splitlines() if line.startswith("| ") and not line.startswith("| benchmark")]
    for name in ORDER:
        rows = [line for line in table if line.startswith(f"| {name} |")]
        assert len(rows) >= 2, f"{name} has no rows in the table"
        assert not any("FAILED" in line for line in rows)
        assert_png(tmp_path / f"{name}_latency.png")
        assert f"![{name} latency]({name}_latency.png)" in report
    assert "| fix | NewOrderSingle -> ExecutionReport(New) via the OMS gateway, p50 | closed |" in report
    assert "| serve | oms serve NOS -> New at 1000 msg/s, p50 | open |" in report and "durable bare" in report
    assert "bare QuickFIX acceptor" in report and "bare uvicorn app" in report and "bare Ray actor call" in report
    assert "| sink | fill journaled -> visible in ClickHouse" in report and "| open |" in report
    assert "cores" in report and "CPython" in report
    assert str(tmp_path / REPORT) in summary(result)


def test_a_failing_benchmark_is_reported_the_others_still_run_and_the_exit_code_says_so(tmp_path: Path) -> None:
    (tmp_path / "sink.json").write_text(json.dumps({"name": "sink", "unit": "fills/s", "count": 1,
                                                    "ops_per_sec": 12345678.9}))  # fmt: skip
    params = AllBenchParams(scale=QUICK_SCALE, benchmarks="sink,book")

    result = run(params, out_dir=str(tmp_path), progress=lambda _: None,
                 params={"sink": SinkBenchParams(appendfsync="sometimes")})  # fmt: skip

    assert result["failed"] == ["sink"] and exit_code(result) == 1
    assert result["outcomes"]["book"]["status"] == "ok" and (tmp_path / "book.json").exists()
    report = (tmp_path / REPORT).read_text()
    sink_rows = [line for line in report.splitlines() if line.startswith("| sink |")]
    assert len(sink_rows) == 1 and "**FAILED**" in sink_rows[0] and "appendfsync must be" in sink_rows[0]
    assert "12,345,679" not in report  # an earlier run's figure never stands in for a failed benchmark
    assert "| book | batch API" in report and "FAILED: sink" in summary(result)
    assert_png(tmp_path / "book_latency.png")


def test_the_command_line_offers_it(capsys: pytest.CaptureFixture[str]) -> None:
    from oms.apps.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["bench", "all", "--help"])

    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--scale" in out and "REPORT.md" in out
