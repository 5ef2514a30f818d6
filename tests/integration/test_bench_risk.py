"""`oms bench risk` end to end with tiny counts: the JSON has the contract's fields and the run verified itself."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.risk import RiskBenchParams, run
from oms.apps.cli import main

pytestmark = pytest.mark.integration

LATENCY = ("unit", "count", "p50", "p99", "p999", "max")

TINY = RiskBenchParams(
    checks=500,
    strict_calls=20,
    strict_orders=600,
    reserved_orders=600,
    reserved_tokens=32,
    baseline_calls=20,
    baseline_pipelined=60,
    warmup=3,
    accounts=4,
    actors=2,
    batch=8,
    in_flight=2,
    working=4,
    retire_batch=16,
    appendfsync="everysec",
)


def test_a_tiny_run_writes_the_contract_fields_and_verifies_itself(tmp_path: Path) -> None:
    result = run(TINY, out_dir=str(tmp_path), progress=lambda _: None)

    written = json.loads((tmp_path / "risk.json").read_text())
    assert written == json.loads(json.dumps(result))
    assert written["name"] == "risk" and written["unit"] == "us" and written["count"] == TINY.checks
    reserved = written["reserved"]
    for fields in (written, written["in_process_apply"], written["strict"], written["baseline"], reserved,
                   reserved["with_step"]):  # fmt: skip
        assert all(k in fields for k in LATENCY), fields
        assert 0 < fields["p50"] <= fields["p99"] <= fields["p999"] <= fields["max"]
    assert written["strict"]["count"] == TINY.strict_calls and written["strict"]["appendfsync"] == "everysec"
    throughput = written["strict"]["throughput"]
    assert throughput["ops_per_sec"] > 0 and throughput["count"] == TINY.strict_orders
    assert {k: throughput[k] for k in ("batch", "in_flight", "accounts", "actors")} == {
        "batch": 8,
        "in_flight": 2,
        "accounts": 4,
        "actors": 2,
    }
    assert throughput["post_trade_events"] > 0  # the steady state was kept by retiring orders
    assert written["baseline"]["ops_per_sec"] > 0 and written["baseline"]["count"] == TINY.baseline_calls
    assert reserved["count"] == TINY.reserved_orders and reserved["tokens_per_grant"] == 32
    assert reserved["over_in_process_p50_us"] == pytest.approx(reserved["p50"] - written["p50"])
    assert 0 < reserved["local_share"] <= 1 and reserved["ops_per_sec"] > 0
    assert isinstance(written["targets"]["reserved_met"], bool)
    assert {"strict_p50_over_baseline_p50", "in_process_p50_over_target", "reserved_p50_over_in_process_p50"} <= (
        written["ratio"].keys()
    )

    verified = written["verified"]
    assert verified["in_process"]["decisions"] == TINY.checks
    assert verified["in_process"]["rejected"] == sum(verified["in_process"]["reject_reasons"].values())
    strict = verified["strict"]
    # every order sent was decided: warm-up and timed round trips, then the throughput run
    assert strict["decisions"] == TINY.warmup + TINY.strict_calls + TINY.strict_orders
    assert strict["accepted"] - strict["retired"] == strict["working"]
    assert strict["accounts_hash_equal_replay"] == TINY.accounts
    assert set(strict["reject_reasons"]) <= {"MAX_ORDER_QTY"}
    checked = verified["reserved"]
    # every reserved decision, warm-up included, is journaled and equals a strict replay of its account's journal
    total = TINY.warmup + TINY.reserved_orders
    assert checked["decisions"] == checked["journal_decisions_equal_strict_replay"] == total
    assert checked["local"] + checked["fallbacks"] == checked["decisions"]
    assert checked["local"] > checked["fallbacks"]  # mostly local: 32-token grants topped up at half
    assert checked["accepted"] - checked["retired"] == checked["working"]
    assert set(checked["reject_reasons"]) <= {"MAX_ORDER_QTY"}


def test_the_command_line_has_the_risk_benchmark_with_a_flag_per_parameter(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "risk", "--help"])

    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert all(f"--{name.replace('_', '-')}" in out for name in RiskBenchParams.__dataclass_fields__)
