"""The benchmark report: latency fields with their distribution, the figures table, the plots, the run's params."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hdrh.histogram import HdrHistogram

from bench.all import SCALED, AllBenchParams, chosen_benchmarks, scaled_params
from bench.figures import figures
from bench.plots import percentile_curve, plot_latency
from bench.report import REPORT, Outcome, plot_spec, render_markdown, render_report
from bench.result_file import decode_histogram, latency_fields
from bench.serve import process_kind, tree_cpu_seconds

MACHINE = {"date": "2026-01-02 03:04:05 UTC", "cpu": "Test CPU", "cores": 2, "usable_cores": 2, "python": "CPython"}


def hist(*values_us: float) -> HdrHistogram:
    h = HdrHistogram(1, 60_000_000_000, 3)
    for v in values_us:
        h.record_value(int(v * 1000))
    return h


def spread(base_us: float, n: int = 1000) -> HdrHistogram:
    """n samples rising from base_us to 10 * base_us."""
    return hist(*(base_us * (1 + 9 * i / n) for i in range(n)))


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) of a PNG; AssertionError when the file is not one."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def fix_result(with_hdr: bool = True) -> dict[str, Any]:
    def lat(base: float) -> dict[str, Any]:
        fields = latency_fields(spread(base))
        if not with_hdr:
            del fields["hdr"]
        return fields

    return {
        "name": "fix",
        **lat(300),
        "ops_per_sec": 2000.0,
        "fill": lat(400),
        "baseline": {"name": "bare_quickfix", **lat(200), "ops_per_sec": 4000.0},
        "floor": lat(60),
        "params": {"window": 64, "pipelined": 20_000},
    }


def risk_result(**extra: Any) -> dict[str, Any]:
    """A risk.json as the benchmark wrote it before it kept distributions: no `hdr`, no `load`."""

    def lat(p50: float) -> dict[str, Any]:
        return {"unit": "us", "count": 100, "p50": p50, "p99": 2 * p50, "p999": 3 * p50, "max": 4 * p50}

    return {
        "name": "risk",
        **lat(8.0),
        "strict": {**lat(1000.0), "appendfsync": "always", "throughput": {"ops_per_sec": 5000.0, "count": 600,
                                                                          "batch": 32, "in_flight": 4}},
        "baseline": {"name": "ray_actor_echo", **lat(500.0), "ops_per_sec": 2500.0},
        **extra,
    }  # fmt: skip


def write(out: Path, name: str, result: dict[str, Any]) -> None:
    (out / f"{name}.json").write_text(json.dumps(result))


# -- LATENCY FIELDS --


def test_latency_fields_keep_the_distribution_and_say_how_the_load_was_driven() -> None:
    h = spread(100)

    fields = latency_fields(h, load="open")

    assert {"unit", "count", "p50", "p99", "p999", "max", "load", "hdr"} <= fields.keys()
    assert fields["load"] == "open" and fields["unit"] == "us" and fields["count"] == 1000
    again = decode_histogram(json.loads(json.dumps(fields)))
    assert again is not None and again.get_total_count() == 1000
    assert again.get_value_at_percentile(99) / 1e3 == pytest.approx(fields["p99"])


def test_latency_fields_refuse_an_unknown_load() -> None:
    with pytest.raises(ValueError, match="load must be 'closed' or 'open'"):
        latency_fields(spread(1), load="bursty")  # type: ignore[arg-type]


def test_a_section_without_a_distribution_decodes_to_none_and_a_corrupt_one_is_a_clear_error() -> None:
    assert decode_histogram({"p50": 1.0}) is None
    assert decode_histogram(None) is None
    with pytest.raises(ValueError, match="unreadable latency distribution"):
        decode_histogram({"hdr": "not a histogram"})


# -- FIGURES --


def test_each_fix_figure_stands_beside_its_same_run_baseline_with_the_ratio() -> None:
    rows = figures("fix", fix_result())

    new = [f for f in rows if "ExecutionReport(New)" in f.what]
    assert [f.what.rsplit(", ", 1)[1] for f in new] == ["p50", "p99", "p99.9"]
    p50 = new[0]
    assert p50.baseline_what is not None and "bare QuickFIX" in p50.baseline_what
    assert p50.ratio == pytest.approx(p50.value / p50.baseline) and p50.load == "closed"
    rate = next(f for f in rows if f.unit == "orders/s")
    assert (rate.value, rate.baseline, rate.ratio) == (2000.0, 4000.0, 0.5)
    assert "64 in flight" in rate.what
    fill = [f for f in rows if "Fill" in f.what]
    assert len(fill) == 3 and all(f.baseline is None and f.ratio is None for f in fill)


def test_risk_without_reserved_or_distribution_gives_its_figures_and_no_plot() -> None:
    for result in (risk_result(), risk_result(reserved=None)):
        rows = figures("risk", result)

        strict = [f for f in rows if f.what.startswith("strict: account actor round trip")]
        assert len(strict) == 3 and strict[0].baseline == 500.0 and strict[0].ratio == pytest.approx(2.0)
        assert all(f.load == "not stated" for f in strict)
        assert not any("reserved" in f.what for f in rows)
        assert any(f.unit == "decisions/s" and f.ratio == pytest.approx(2.0) for f in rows)
        assert plot_spec("risk", result) is None


def test_risk_reserved_mode_is_set_beside_the_in_process_decision() -> None:
    reserved = {**latency_fields(spread(12)), "ops_per_sec": 50_000.0, "count": 1000}
    rows = figures("risk", risk_result(reserved=reserved))

    res = [f for f in rows if f.what.startswith("reserved mode decision, ")]
    assert len(res) == 3 and res[0].baseline == 8.0 and res[0].baseline_what == "in-process decide, same run"
    assert any(f.what == "reserved mode decisions/s" and f.value == 50_000.0 for f in rows)
    spec = plot_spec("risk", risk_result(reserved=reserved))
    assert spec is not None and spec.measured[0] == "reserved mode"


def test_a_benchmark_without_baseline_says_so_rather_than_inventing_one() -> None:
    sink = {"name": "sink", "unit": "fills/s", "count": 5000, "ops_per_sec": 90_000.0,
            "visible": {**latency_fields(spread(300_000), load="open"), "rate": 20_000}}  # fmt: skip

    rows = figures("sink", sink)

    assert [f.unit for f in rows] == ["fills/s", "us", "us", "us"]
    assert all(f.baseline is None and f.baseline_what is None for f in rows)
    assert rows[1].load == "open" and "20,000 fills/s" in rows[1].what
    text = render_markdown({"sink": sink}, {}, MACHINE, {})
    sink_rows = [line for line in text.splitlines() if line.startswith("| sink |")]
    assert len(sink_rows) == 4 and all(line.endswith("| — | — | — |") for line in sink_rows)


def test_a_percentile_too_few_samples_resolve_is_marked_as_the_maximum() -> None:
    rows = figures("risk", risk_result())  # 100 samples per latency section

    decide = [f for f in rows if f.what.startswith("AccountState.decide")]
    assert [f.resolved for f in decide] == [True, True, False]
    text = render_markdown({"risk": risk_result()}, {}, MACHINE, {})
    assert "| 24.0 † | µs |" in text and "| 16.0 | µs |" in text
    assert "† fewer samples than this percentile needs" in text


def test_an_unknown_benchmark_gets_its_top_level_figures() -> None:
    result = {"name": "queue", "unit": "msgs/s", "count": 10, "ops_per_sec": 100.0,
              "baseline": {"name": "deque", "ops_per_sec": 400.0}}  # fmt: skip

    (rate,) = figures("queue", result)

    assert (rate.unit, rate.baseline_what, rate.ratio) == ("msgs/s", "deque", 0.25)


# -- THE REPORT --


def test_the_report_has_one_table_the_machine_and_a_valid_plot_per_latency_benchmark(tmp_path: Path) -> None:
    write(tmp_path, "fix", fix_result())
    write(tmp_path, "risk", risk_result())

    path = render_report(tmp_path, machine=MACHINE)

    text = path.read_text()
    assert path == tmp_path / REPORT
    header = "| benchmark | figure | load | n | value | unit | baseline (same run) | baseline value | ratio |"
    assert text.count(header) == 1
    assert "Test CPU, 2 cores" in text and "2026-01-02" in text
    assert text.index("| risk |") < text.index("| fix |")  # the run's order, not the alphabet's
    assert "| fix | NewOrderSingle -> ExecutionReport(New) via the OMS gateway, p50 | closed |" in text
    assert "![fix latency](fix_latency.png)" in text
    width, height = png_size(tmp_path / "fix_latency.png")
    assert width > 100 and height > 100
    assert not (tmp_path / "risk_latency.png").exists()
    assert "no latency distribution recorded" in text.split("### risk", 1)[1]


def test_a_failed_benchmark_shows_its_error_and_never_an_older_result(tmp_path: Path) -> None:
    stale = fix_result()
    stale["p50"] = 98765.4
    write(tmp_path, "fix", stale)
    (tmp_path / "fix_latency.png").write_bytes(b"an older plot")
    try:
        raise RuntimeError("bench.fix_server oms did not start (said 'x|y')")
    except RuntimeError as exc:
        failed = Outcome.from_exception(exc, 1.5)
    write(tmp_path, "risk", risk_result())

    text = render_report(tmp_path, {"risk": Outcome("ok", 3.0), "fix": failed}, MACHINE).read_text()

    fix_rows = [line for line in text.splitlines() if line.startswith("| fix |")]
    assert len(fix_rows) == 1 and "**FAILED** after 1.5 s: RuntimeError: bench.fix_server" in fix_rows[0]
    assert "x\\|y" in fix_rows[0]  # a pipe in the error does not break the table
    assert "98,765" not in text and "98765" not in text
    assert not (tmp_path / "fix_latency.png").exists()
    failures = text.split("## Failures", 1)[1]
    assert "Traceback" in failures and "RuntimeError" in failures
    assert "| risk | AccountState.decide in process, p50 |" in text


def test_a_benchmark_that_ran_but_left_no_json_is_reported_failed(tmp_path: Path) -> None:
    text = render_report(tmp_path, {"book": Outcome("ok", 1.0)}, MACHINE).read_text()

    assert "**FAILED**" in text and "book.json is missing" in text


def test_an_unreadable_result_is_a_failed_row_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / "rest.json").write_text("{ not json")
    write(tmp_path, "fix", fix_result(with_hdr=False))

    text = render_report(tmp_path, machine=MACHINE).read_text()

    assert "| rest | **FAILED**" in text and "unreadable result rest.json" in text
    assert "| fix | NewOrderSingle" in text


def test_benchmarks_a_run_did_not_include_are_listed_as_not_run() -> None:
    text = render_markdown({}, {}, MACHINE, {}, names=["book", "sink"])

    assert "| book | not run |" in text and "| sink | not run |" in text


# -- PLOTS --


def test_the_percentile_curve_rises_to_the_maximum_on_the_tail_axis() -> None:
    h = spread(10, n=10_000)

    curve = percentile_curve(h)

    pcts, values = [p for p, _ in curve], [v for _, v in curve]
    assert pcts[0] == 0.0 and pcts == sorted(pcts) and pcts[-1] == pytest.approx(99.99)
    assert values == sorted(values) and values[-1] == pytest.approx(h.get_max_value() / 1e3)
    assert percentile_curve(HdrHistogram(1, 1000, 3)) == []


def test_plot_latency_draws_a_histogram_or_a_curve_with_its_baseline(tmp_path: Path) -> None:
    a = plot_latency(spread(5), tmp_path / "a.png", "hist", baseline=spread(2), others=[("floor", spread(1))])
    b = plot_latency([(0.0, 1.0), (50.0, 2.0), (99.0, 8.0)], tmp_path / "b.png", "curve")

    assert png_size(a)[0] > 100 and png_size(b)[0] > 100


def test_plot_latency_refuses_an_empty_series(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no samples"):
        plot_latency(HdrHistogram(1, 1000, 3), tmp_path / "x.png", "empty")
    with pytest.raises(ValueError, match=r"\[0, 100\)"):
        plot_latency([(0.0, 1.0), (100.0, 2.0)], tmp_path / "y.png", "bad")


# -- THE RUN'S PARAMETERS --


@pytest.mark.parametrize("name", sorted(SCALED))
def test_every_scaled_field_is_a_parameter_of_its_benchmark_and_shrinks(name: str) -> None:
    default = scaled_params(name, 1.0)
    quick = scaled_params(name, 0.01)

    for field, floor in SCALED[name].items():
        assert hasattr(default, field), f"bench.{name} has no parameter {field}"
        assert floor <= getattr(quick, field) <= getattr(default, field)
        assert type(getattr(quick, field)) is type(getattr(default, field))


def test_the_book_reference_prefix_never_exceeds_the_stream() -> None:
    quick = scaled_params("book", 0.0001)

    assert quick.ref_ops <= quick.ops


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (AllBenchParams(benchmarks="book,bogus"), "comma-separated list"),
        (AllBenchParams(benchmarks=""), "comma-separated list"),
        (AllBenchParams(benchmarks="book,book"), "twice"),
        (AllBenchParams(scale=0.0), "scale must be > 0"),
    ],
)
def test_bad_run_parameters_are_refused_by_name(params: AllBenchParams, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        chosen_benchmarks(params)


def test_serve_reports_its_worst_answer_at_twice_the_sustained_rate_when_it_measured_one() -> None:
    result: dict[str, Any] = {"name": "serve", **latency_fields(spread(800)), "headline_rate": 1000.0,
                              "sustained_ops_per_sec": {"oms": 1000.0, "bare": 3000.0}}  # fmt: skip
    assert not any("twice the sustained rate" in f.what for f in figures("serve", result))

    result["overload"] = {"rate": 2000.0, "max_us": 61_300.0, "refused": 0, "unanswered": 0, "within_bound": True}
    (worst,) = [f for f in figures("serve", result) if "twice the sustained rate" in f.what]
    assert "2000 msg/s" in worst.what and worst.value == 61_300.0 and worst.unit == "us"


@pytest.mark.parametrize(
    ("is_root", "name", "kind"),
    [
        (True, "python -m oms serve --config x", "server"),
        (False, "/usr/bin/redis-server 127.0.0.1:6379", "redis"),
        (False, 'python -m fix_gateway.door {"port":1}', "door"),
        (False, "python -m oms.infra.clickhouse.service --config x", "sink"),
        (False, "ray::AccountShard", "account actors"),
        (False, "ray::IDLE", "ray"),
        (False, "/site-packages/ray/core/src/ray/raylet/raylet --x", "ray"),
        (False, "python -m oms.infra.ray.reaper 1-2", "ray"),
        (False, "", "other"),
    ],
)
def test_the_cpu_split_names_each_process_of_a_servers_tree(is_root: bool, name: str, kind: str) -> None:
    assert process_kind(is_root, name) == kind


def test_the_cpu_split_of_a_tree_counts_its_children_and_nothing_else() -> None:
    busy = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass\ntime.sleep(30)"
    child = subprocess.Popen([sys.executable, "-c", busy])
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and tree_cpu_seconds(child.pid)["server"] < 0.3:
            time.sleep(0.05)
        split = tree_cpu_seconds(child.pid)
        mine = tree_cpu_seconds(os.getpid())
    finally:
        child.kill()
        child.wait()

    assert set(split) == {"server"} and split["server"] >= 0.3  # its own CPU, as the root of its tree
    assert mine["other"] >= split["server"]  # the same child, seen from its parent's tree
