"""`oms bench serve` end to end on a short sweep: the real `oms serve` and both bare acceptors, the contract's
fields, and the overload step at twice the sustained rate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.serve import ServeBenchParams, run, summary
from oms.apps.cli import build_parser
from oms.runtime.metrics import STAGES

pytestmark = pytest.mark.integration

LATENCY = ("unit", "count", "p50", "p99", "p999", "max")


def test_a_short_sweep_writes_the_contract_and_answers_every_message(tmp_path: Path) -> None:
    params = ServeBenchParams(rates="40,100", sessions="1,2", seconds=1.0, drain=10.0, warmup_seconds=1.0,
                              warmup_rate=40.0, headline_rate=100.0)  # fmt: skip

    result = run(params, out_dir=str(tmp_path), progress=lambda _line: None)

    written = json.loads((tmp_path / "serve.json").read_text())
    assert written["name"] == "serve" and written["load"] == "open"
    for section in (written, written["baseline"], written["durable_baseline"]):
        assert all(isinstance(section[k], int | float) for k in LATENCY if k != "unit"), section
        assert section["unit"] == "us" and section["count"] == 50  # 100 msg/s for 1 s: 50 orders, 50 cancels
        assert section["cpu_us_per_order"] > 0 and "ops_per_sec" in section
    assert set(written["sustained_ops_per_sec"]) == {"oms", "bare", "durable"}
    rows = written["rows"]
    assert {(r["server"], r["sessions"], r["rate"]) for r in rows if not r.get("overload")} == {
        (s, n, r) for s in ("oms", "bare", "durable") for n in (1, 2) for r in (40.0, 100.0)
    }
    held = written["sustained_ops_per_sec"]["oms"]  # what the host allowed: the test asserts no latency
    overload = [(r["server"], r["sessions"], r["rate"]) for r in rows if r.get("overload")]
    assert overload == ([("oms", 1, 2 * held)] if held else [])  # twice the sustained rate, oms from 1 session
    if held:
        o = written["overload"]
        assert o["rate"] == 2 * held and o["within_bound"] == (o["unanswered"] == 0 and o["max_us"] <= 100_000)
        assert "overload" in summary(result)
    for row in rows:  # far below every server's capacity: each message is answered, none refused
        for kind in ("new", "cancel"):
            k = row[kind]
            assert (k["answered"], k["refused"], k["unanswered"]) == (row["sent"] // 2, 0, 0), (row["server"], kind)
    for row in rows:  # the OMS says where its orders spent their time; the bare servers have no stages
        stages = row.get("stages_mean_us")
        if row["server"] == "oms":
            assert stages is not None and set(stages) == set(STAGES)
            assert all(v > 0 for v in stages.values())
            split = stages["venue_to_sealed"] + stages["sealed_to_durable"] + stages["durable_to_ack"]
            assert split == pytest.approx(stages["venue_to_ack"])  # every answer went through a commit
        else:
            assert stages is None
    kinds = {"oms": {"server", "redis", "door", "sink", "account actors", "ray"}, "durable": {"server", "redis"},
             "bare": {"server"}}  # fmt: skip
    for row in rows:  # the CPU per message, split by the processes of the server's tree
        split = row["cpu_us_per_msg_by_process"]
        assert kinds[row["server"]] <= set(split), (row["server"], split)
        assert sum(split.values()) == pytest.approx(row["cpu_us_per_msg"])
    assert "sustained" in summary(result) and "cpu by process" in summary(result)


def test_the_cross_mix_times_each_crossing_order_to_its_trade(tmp_path: Path) -> None:
    params = ServeBenchParams(rates="40", sessions="1", seconds=1.0, drain=10.0, warmup_seconds=1.0, warmup_rate=40.0,
                              headline_rate=40.0, servers="oms,bare", mix="cross")  # fmt: skip

    result = run(params, out_dir=str(tmp_path), progress=lambda _line: None)

    written = json.loads((tmp_path / "serve_cross.json").read_text())
    assert written["name"] == "serve_cross" and written["mix"] == "cross" and not (tmp_path / "serve.json").exists()
    for section in (written, written["baseline"]):
        assert section["count"] == 20 and section["fill"]["count"] == 20  # 40 msg/s for 1 s: 20 rest, 20 cross
    for row in written["rows"]:  # each resting sell answered New, each crossing buy a Trade: none refused
        for kind in ("new", "fill"):
            k = row[kind]
            assert (k["answered"], k["refused"], k["unanswered"]) == (row["sent"] // 2, 0, 0), (row["server"], kind)
        assert "cancel" not in row
    assert "orders that cross" in summary(result) and " fill p50 " in summary(result)


def test_the_replace_mix_times_each_replace_to_its_replaced(tmp_path: Path) -> None:
    params = ServeBenchParams(rates="40", sessions="1", seconds=1.0, drain=10.0, warmup_seconds=1.0, warmup_rate=40.0,
                              headline_rate=40.0, servers="oms,bare", mix="replace")  # fmt: skip

    result = run(params, out_dir=str(tmp_path), progress=lambda _line: None)

    written = json.loads((tmp_path / "serve_replace.json").read_text())
    assert written["name"] == "serve_replace" and written["mix"] == "replace"
    for section in (written, written["baseline"]):
        assert section["count"] == 20 and section["replace"]["count"] == 20  # 40 msg/s for 1 s: 20 orders, 20 replaces
    for row in written["rows"]:  # each order answered New, each replace Replaced: none refused
        for kind in ("new", "replace"):
            k = row[kind]
            assert (k["answered"], k["refused"], k["unanswered"]) == (row["sent"] // 2, 0, 0), (row["server"], kind)
        assert "cancel" not in row
    assert "orders and their replaces" in summary(result) and " replace p50 " in summary(result)


def test_rounds_run_every_sweep_again_the_servers_in_turn_and_report_the_median_round(tmp_path: Path) -> None:
    params = ServeBenchParams(rates="40", sessions="1", seconds=1.0, drain=10.0, warmup_seconds=1.0, warmup_rate=40.0,
                              headline_rate=40.0, servers="oms,bare", rounds=2)  # fmt: skip

    result = run(params, out_dir=str(tmp_path), progress=lambda _line: None)

    written = json.loads((tmp_path / "serve.json").read_text())
    timed = [r for r in written["round_rows"] if not r.get("overload")]
    assert [(r["server"], r["round"]) for r in timed] == [("oms", 0), ("bare", 0), ("bare", 1), ("oms", 1)]  # in turn
    rows = [r for r in written["rows"] if not r.get("overload")]
    assert [(r["server"], len(r["rounds_new_p50"])) for r in rows] == [("oms", 2), ("bare", 2)]
    for r in rows:
        assert r["new"]["p50"] == min(r["rounds_new_p50"])  # the lower middle of two rounds
    assert written["p50"] == rows[0]["new"]["p50"] and written["baseline"]["p50"] == rows[1]["new"]["p50"]
    assert "median round" in summary(result)


def test_the_command_line_offers_it(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["bench", "serve", "--help"])
    out = capsys.readouterr().out
    assert "--rates" in out and "--sessions" in out and "--mix" in out and "--rounds" in out and "oms serve" in out
