"""`oms demo` as a user runs it: every scripted step gets its answer, the summary is printed, exit 0."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


def test_demo_runs_the_scripted_day_and_exits_0(tmp_path: Path) -> None:
    run = tmp_path / "demo"
    done = subprocess.run(
        [sys.executable, "-m", "oms", "demo", "--run-dir", str(run), "--twap-seconds", "6", "--probe-orders", "40"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip

    out = done.stdout
    assert done.returncode == 0, f"{out[-3000:]}\n{done.stderr[-3000:]}"
    for expected in (
        "CLIENT42 <- partial  s1 sell AAPL 100 @ 150.04 cum 100 leaves 200 (partially filled)",
        "CLIENT42 <- replaced s1r",
        "CLIENT42 <- canceled s1x",
        "CLIENT44 <- rejected r1 buy AAPL cum 0 leaves 0 (rejected) - order quantity above the account's maximum",
        "CLIENT42 <- fill     m1 buy MSFT 200 @ 300.05",
        "CLIENT44 <- canceled m2",
        "CLIENT44 <- rejected k1",
        "streams: every chain intact",
        'oms_stage_seconds{stage="in_to_ack"}',
        "== TCA summary",
        "== best execution",
    ):
        assert expected in out
    assert "EXCH" in out.split("== best execution")[1]
    assert (run / "latency.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
