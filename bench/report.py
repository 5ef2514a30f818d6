"""The report that sets the benchmarks side by side: `render_report(out_dir)` reads the JSON of every benchmark and
writes `<out_dir>/REPORT.md`: one table with a row per figure (p50/p99/p99.9 latency and throughput, `bench.figures`),
each beside its same-run baseline and the ratio, the machine, the failures, and HDR percentile plots (`bench.plots`)
of every latency distribution it finds.

The result files themselves (`write_result`, `latency_fields`, the `hdr` distribution) are `bench.result_file`'s;
they are importable from here too.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
import traceback
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from hdrh.histogram import HdrHistogram

from bench.figures import NONE, figures, lookup
from bench.result_file import decode_histogram, latency_fields, write_result

__all__ = [
    "ORDER",
    "REPORT",
    "Outcome",
    "PlotSpec",
    "decode_histogram",
    "figures",
    "latency_fields",
    "load_results",
    "machine_info",
    "plot_spec",
    "render_markdown",
    "render_report",
    "write_plot",
    "write_result",
]

#: The benchmarks `oms bench all` runs, in its order; the report lists them in this order, any others after.
ORDER = ("serve", "book", "risk", "fix", "sink", "rest")
REPORT = "REPORT.md"


# -- THE PLOTS --


@dataclass(frozen=True)
class PlotSpec:
    """What one benchmark's latency plot shows: its main distribution, its baseline, and other curves."""

    title: str
    measured: tuple[str, Mapping[str, Any]]
    baseline: tuple[str, Mapping[str, Any]] | None = None
    others: tuple[tuple[str, Mapping[str, Any]], ...] = ()


def _with_hdr(*named: tuple[str, object]) -> list[tuple[str, Mapping[str, Any]]]:
    return [(label, s) for label, s in named if isinstance(s, Mapping) and isinstance(s.get("hdr"), str)]


def plot_spec(name: str, r: Mapping[str, Any]) -> PlotSpec | None:
    """The curves of a benchmark's latency plot, from the distributions its JSON keeps; None when it keeps none."""
    base = r.get("baseline")
    title, main, baseline, others = name, [], [], []
    if name == "book":
        title = "book: single-call latency, native vs reference engine"
        main = _with_hdr(("native engine", r.get("latency") or r))
        baseline = _with_hdr(("reference engine", lookup(r, "baseline", "latency") or base))
    elif name == "risk":
        title = "risk: strict account actor round trip vs bare Ray call"
        main = _with_hdr(("strict round trip", r.get("strict")))
        baseline = _with_hdr(("bare Ray actor call", base))
        others = _with_hdr(("in-process decide", r), ("reserved mode", r.get("reserved")))
    elif name == "serve":
        rate = r.get("headline_rate")
        title = f"serve: oms serve under open-loop FIX load ({rate:g} msg/s, 1 session) vs bare QuickFIX" if rate else (
            "serve: oms serve under open-loop FIX load vs bare QuickFIX")
        main = _with_hdr(("oms serve, NOS -> New", r))
        baseline = _with_hdr(("bare QuickFIX, NOS -> New", base))
        others = _with_hdr(("durable bare (XADD, fsync), NOS -> New", r.get("durable_baseline")))
    elif name == "fix":
        title = "fix (gateway only, in-process core): NewOrderSingle -> ExecutionReport, OMS gateway vs bare QuickFIX"
        main = _with_hdr(("OMS gateway, ER(New)", r))
        baseline = _with_hdr(("bare QuickFIX, ER(New)", base))
        others = _with_hdr(("OMS gateway, ER(Fill)", r.get("fill")), ("raw TCP ping-pong", r.get("floor")))
    elif name == "sink":
        rate = lookup(r, "visible", "rate")
        title = f"sink: fill journaled -> visible in ClickHouse (open loop{f', {rate:,} fills/s' if rate else ''})"
        main = _with_hdr(("fill -> visible", r.get("visible") or r))
    elif name == "rest":
        title = "rest: POST /v1/orders -> 201, OMS vs bare uvicorn"
        main = _with_hdr(("OMS REST API", r))
        baseline = _with_hdr(("bare uvicorn app", base))
    else:
        title = f"{name}: latency"
        main = _with_hdr((name, r))
        baseline = _with_hdr(("baseline", base))
    if not main:
        main, others = others[:1], others[1:]
    if not main:
        return None
    return PlotSpec(title, main[0], baseline[0] if baseline else None, tuple(others))


def write_plot(spec: PlotSpec, path: Path) -> Path:
    """Draw `spec` as an HDR percentile plot PNG at `path`."""
    from bench.plots import plot_latency

    def hist(section: Mapping[str, Any]) -> HdrHistogram:
        h = decode_histogram(section)
        assert h is not None  # plot_spec keeps only sections with a distribution
        return h

    label, section = spec.measured
    base = spec.baseline
    return plot_latency(
        hist(section),
        path,
        spec.title,
        baseline=hist(base[1]) if base else None,
        label=label,
        baseline_label=base[0] if base else "baseline",
        others=[(lbl, hist(s)) for lbl, s in spec.others],
    )


# -- THE REPORT --


@dataclass(frozen=True)
class Outcome:
    """How one benchmark of a run ended: `ok`, or `failed` with its error (and traceback)."""

    status: Literal["ok", "failed"]
    seconds: float
    error: str | None = None
    trace: str | None = None

    @classmethod
    def from_exception(cls, exc: BaseException, seconds: float) -> Outcome:
        trace = "".join(traceback.format_exception(exc))
        return cls("failed", seconds, f"{type(exc).__name__}: {exc}", trace)


def machine_info(root: Path | None = None) -> dict[str, Any]:
    """Where and when: CPU model and cores, memory, OS, Python, load averages, UTC date, and the git commit of
    `root` (default: this repository) when git can tell."""
    cpu = _proc_field("/proc/cpuinfo", "model name")
    mem_kb = _proc_field("/proc/meminfo", "MemTotal")  # "24576000 kB"
    meminfo = f"{int(mem_kb.split()[0]) / 1024 / 1024:.1f} GiB" if mem_kb else None
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "cpu": cpu or platform.processor() or None,
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "memory": meminfo,
        "os": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "loadavg": list(os.getloadavg()),
        "commit": _git_commit(root or Path(__file__).resolve().parents[1]),
    }


def _proc_field(path: str, key: str) -> str | None:
    """The value of the first `key: value` line of a /proc file; None where there is no such file (not Linux)."""
    try:
        with open(path) as f:
            return next((line.split(":", 1)[1].strip() for line in f if line.split(":", 1)[0].strip() == key), None)
    except OSError:
        return None


def _git_commit(root: Path) -> str | None:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                              timeout=10)  # fmt: skip
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    if head.returncode != 0:
        return None
    return head.stdout.strip() + (" (with uncommitted changes)" if dirty.stdout.strip() else "")


def _unit(unit: str) -> str:
    return "µs" if unit == "us" else unit


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return NONE
    if unit != "us":
        return f"{value:,.0f}"
    if value < 10:
        return f"{value:.2f}"
    if value < 1000:
        return f"{value:.1f}"
    return f"{value:,.0f}"


def _cell(text: object, limit: int = 400) -> str:
    s = " ".join(str(text).split())
    if len(s) > limit:
        s = s[: limit - 1] + "…"
    return s.replace("|", "\\|")


def render_markdown(
    results: Mapping[str, Mapping[str, Any]],
    outcomes: Mapping[str, Outcome],
    machine: Mapping[str, Any],
    plots: Mapping[str, str],
    notes: Mapping[str, str] | None = None,
    names: Sequence[str] | None = None,
) -> str:
    """The report as Markdown (pure): `results` by benchmark, how each ran (`outcomes`; a benchmark with a result
    and no outcome counts as ok), the machine, plot file names relative to the report, and notes per benchmark
    (such as a plot that could not be drawn). `names` fixes which benchmarks and their order; a name with neither
    result nor outcome is listed as not run."""
    names = list(names) if names is not None else _ordered([*results, *outcomes])
    notes = notes or {}
    lines = ["# Benchmark report", ""]
    m = machine
    lines += [
        f"- date: {m.get('date', NONE)}",
        f"- machine: {m.get('cpu') or 'CPU model unknown'}, {m.get('cores', NONE)} cores"
        f" ({m.get('usable_cores', NONE)} usable), {m.get('memory') or 'memory unknown'}",
        f"- system: {m.get('os', NONE)}; {m.get('python', NONE)}",
        f"- commit: {m.get('commit') or 'unknown'}",
    ]
    if "loadavg_before" in m:
        before, after = m["loadavg_before"], m.get("loadavg_after")
        lines.append(
            f"- 1-minute load average: {before[0]:.2f} before"
            + (f", {after[0]:.2f} after" if after else "")
            + " (anything else running skews every figure)"
        )
    if "scale" in m:
        lines.append(f"- scale: {m['scale']:g} of each benchmark's default counts and durations")
    lines += [
        "",
        "Each figure is beside the baseline measured in the same run, where the benchmark has one "
        f"({NONE} where it has none). Ratio = figure / baseline: below 1 is faster for latency, above 1 is more for "
        "throughput. Load: `closed` = one request at a time, each sent when the previous "
        "answer arrived (service times; coordinated omission is inherent to a closed loop and not corrected); "
        "`open` = requests at a fixed rate, each timed from its scheduled send time (corrected for coordinated "
        "omission). n = samples behind a percentile, or items behind a rate.",
        "",
        "| benchmark | figure | load | n | value | unit | baseline (same run) | baseline value | ratio |",
        "|---|---|---|---:|---:|---|---|---:|---:|",
    ]
    failures: list[tuple[str, Outcome]] = []
    unresolved = False
    for name in names:
        outcome = outcomes.get(name)
        if outcome is not None and outcome.status != "ok":
            failures.append((name, outcome))
            lines.append(
                f"| {name} | **FAILED** after {outcome.seconds:.1f} s: {_cell(outcome.error)} "
                f"| {NONE} | {NONE} | {NONE} | | {NONE} | {NONE} | {NONE} |"
            )
            continue
        result = results.get(name)
        if result is None:
            lines.append(f"| {name} | not run | {NONE} | {NONE} | {NONE} | | {NONE} | {NONE} | {NONE} |")
            continue
        rows = figures(name, result)
        if not rows:
            lines.append(f"| {name} | no figure this report knows how to read | {NONE} | {NONE} | {NONE} | | {NONE} "
                         f"| {NONE} | {NONE} |")  # fmt: skip
        for f in rows:
            ratio = f.ratio
            mark = "" if f.resolved else " †"
            unresolved = unresolved or not f.resolved
            lines.append(
                f"| {name} | {_cell(f.what)} | {f.load} | {f'{f.count:,}' if isinstance(f.count, int) else NONE} "
                f"| {_fmt(f.value, f.unit)}{mark} | {_unit(f.unit)} | {_cell(f.baseline_what or NONE)} "
                f"| {_fmt(f.baseline, f.unit)} | {f'{ratio:.2f}' if ratio is not None else NONE} |"
            )
    if unresolved:
        lines += ["", "† fewer samples than this percentile needs (n < 1/(1-p)): the value is the largest sample."]
    ran = [(n, outcomes[n]) for n in names if n in outcomes]
    if ran:
        lines += ["", "Run: " + "; ".join(f"{n} {o.status} in {o.seconds:.2f} s" for n, o in ran) + "."]
    lines += ["", "## Latency distributions", ""]
    lines.append(
        "HDR percentile plots: latency against percentile on a 1/(1-p) axis, so the tail (99%, 99.9%, ...) gets as "
        "much room as the median; the baseline is dashed. The distributions are in each JSON file (`hdr`: "
        "HdrHistogram's base64 encoding, nanoseconds)."
    )
    lines.append("")
    for name in names:
        if name in plots:
            lines += [f"### {name}", "", f"[{plots[name]}]({plots[name]})", "", f"![{name} latency]({plots[name]})", ""]
        elif name in results and (name not in outcomes or outcomes[name].status == "ok"):
            lines += [f"### {name}", "", notes.get(name, "no latency distribution recorded: no plot"), ""]
    if failures:
        lines += ["## Failures", ""]
        for name, o in failures:
            lines += [f"### {name}", "", f"{_cell(o.error, 2000)}", ""]
            if o.trace:
                lines += ["```", o.trace.rstrip(), "```", ""]
    lines += ["## Files", ""]
    lines += [f"- [{n}.json]({n}.json)" for n in names if n in results]
    return "\n".join(lines).rstrip() + "\n"


def _ordered(names: Iterable[str]) -> list[str]:
    unique = dict.fromkeys(names)
    return [n for n in ORDER if n in unique] + sorted(n for n in unique if n not in ORDER)


def load_results(out_dir: Path, names: Iterable[str] | None = None) -> tuple[dict[str, dict], dict[str, Outcome]]:
    """The results in `out_dir` (`<name>.json`; every JSON there with a `name` when `names` is None); a file that
    cannot be read or parsed becomes a failed outcome naming the problem."""
    results: dict[str, dict] = {}
    broken: dict[str, Outcome] = {}
    paths = (
        [out_dir / f"{n}.json" for n in names]
        if names is not None
        else sorted(p for p in out_dir.glob("*.json") if p.is_file())
    )
    for path in paths:
        if not path.exists():
            continue
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            broken[path.stem] = Outcome("failed", 0.0, f"unreadable result {path.name}: {exc}")
            continue
        if isinstance(data, dict) and (names is not None or "name" in data):
            results[path.stem] = data
    return results, broken


def render_report(
    out_dir: str | Path = "bench/results",
    outcomes: Mapping[str, Outcome] | None = None,
    machine: Mapping[str, Any] | None = None,
) -> Path:
    """Write `<out_dir>/REPORT.md` and a `<name>_latency.png` per benchmark whose JSON keeps a distribution.

    With `outcomes` (what `oms bench all` just ran), the report covers exactly those benchmarks, and a failed one
    shows its error, never an older JSON's figures; without, it covers every result JSON in `out_dir`. A plot that
    cannot be drawn is a note in the report, not an error."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = _ordered(outcomes) if outcomes is not None else None
    ok = [n for n in names if outcomes[n].status == "ok"] if names is not None and outcomes is not None else None
    results, broken = load_results(out, ok)
    all_outcomes = {**(outcomes or {}), **broken}
    if names is not None:
        for n in ok or []:
            if n not in results and n not in broken:
                all_outcomes[n] = Outcome("failed", all_outcomes[n].seconds, f"it ran but {n}.json is missing")
    plots: dict[str, str] = {}
    notes: dict[str, str] = {}
    for name in names or []:  # this run's plots only: none of an earlier run survives beside a failure
        (out / f"{name}_latency.png").unlink(missing_ok=True)
    for name, result in results.items():
        try:
            spec = plot_spec(name, result)
            if spec is None:
                continue
            path = write_plot(spec, out / f"{name}_latency.png")
            plots[name] = path.name
        except Exception as exc:  # one bad distribution must not cost the whole report; the note says why
            notes[name] = f"plot failed: {type(exc).__name__}: {exc}"
    text = render_markdown(results, all_outcomes, machine or machine_info(), plots, notes, names)
    path = out / REPORT
    path.write_text(text)
    return path
