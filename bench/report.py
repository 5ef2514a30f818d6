"""Where benchmark results go, how they are written, and the report that sets them side by side.

Each benchmark writes `<out_dir>/<name>.json` (`write_result`); its latency sections come from `latency_fields`,
which keeps the whole distribution (`hdr`: the HdrHistogram's base64 encoding, in nanoseconds) beside the
contract's percentiles and says how the load was driven (`load`):

- `closed`: one request at a time, each sent when the previous answer arrived. The figures are service times under
  that load; a stall delays the next request instead of piling requests up (coordinated omission), which is the
  nature of a closed loop, not something a correction can undo: read them as such.
- `open`: requests scheduled at a fixed rate, each latency measured from the request's scheduled time, so a stall
  counts against every request that was due during it (no coordinated omission).

`render_report(out_dir)` reads the JSON of every benchmark and writes `<out_dir>/REPORT.md`: one table with a row per
figure (p50/p99/p99.9 latency and throughput), each beside its same-run baseline and the ratio, the machine, the
failures, and HDR percentile plots (`bench.plots`) of every latency distribution it finds.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from hdrh.histogram import HdrHistogram

REQUIRED = ("name", "unit", "count")
LOADS = ("closed", "open")
#: The benchmarks `oms bench all` runs, in its order; the report lists them in this order, any others after.
ORDER = ("book", "risk", "fix", "sink", "rest")
PERCENTILES = (("p50", "p50", 50.0), ("p99", "p99", 99.0), ("p999", "p99.9", 99.9))
NONE = "—"
REPORT = "REPORT.md"

Load = Literal["closed", "open"]


def write_result(name: str, result: dict, out_dir: str = "bench/results") -> Path:
    """Write `result` as `<out_dir>/<name>.json`; refuse a result that lacks the contract's fields."""
    missing = [k for k in REQUIRED if k not in result]
    if missing or not ("ops_per_sec" in result or {"p50", "p99", "p999", "max"} <= result.keys()):
        raise ValueError(
            f"benchmark result {name!r} lacks required fields: {missing or 'p50/p99/p999/max or ops_per_sec'}"
        )
    path = Path(out_dir) / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, sort_keys=False) + "\n")
    return path


def latency_fields(hist: HdrHistogram, load: Load = "closed") -> dict[str, Any]:
    """The contract's latency fields (microseconds) of a histogram of nanoseconds, how the load was driven
    (`closed` or `open`, see the module text; ValueError otherwise) and the whole distribution (`hdr`)."""
    if load not in LOADS:
        raise ValueError(f"load must be 'closed' or 'open', not {load!r}")
    q = hist.get_value_at_percentile
    return {
        "unit": "us",
        "count": hist.get_total_count(),
        "p50": q(50) / 1e3,
        "p99": q(99) / 1e3,
        "p999": q(99.9) / 1e3,
        "max": hist.get_max_value() / 1e3,
        "load": load,
        "hdr": encode_histogram(hist),
    }


def encode_histogram(hist: HdrHistogram) -> str:
    """The histogram in HdrHistogram's compressed base64 form (what its other-language tools read)."""
    return hist.encode().decode("ascii")


def decode_histogram(section: Mapping[str, Any] | None) -> HdrHistogram | None:
    """The histogram kept in a latency section's `hdr`; None when the section keeps none. A corrupt `hdr` raises
    ValueError naming the problem."""
    if not section or not isinstance(section.get("hdr"), str):
        return None
    try:
        return HdrHistogram.decode(section["hdr"].encode("ascii"))
    except Exception as exc:  # hdrh raises assorted errors on bad input; one clear error out
        raise ValueError(f"unreadable latency distribution (hdr): {type(exc).__name__}: {exc}") from exc


# -- THE FIGURES --


@dataclass(frozen=True)
class Figure:
    """One measured figure, and the same-run baseline it is set beside (None where there is none)."""

    benchmark: str
    what: str
    unit: str  # "us" for latency, else a rate such as "orders/s"
    load: str  # closed | open | not stated, for latency; "—" for throughput
    count: int | None  # samples behind a latency percentile; orders/fills/commands behind a rate
    value: float
    baseline_what: str | None = None
    baseline: float | None = None
    percentile: float | None = None  # for a latency percentile: which one (50, 99, 99.9)

    @property
    def resolved(self) -> bool:
        """False for a percentile that `count` samples cannot resolve (fewer than 1/(1-p)): it is the maximum."""
        if self.percentile is None or self.count is None:
            return True
        return self.count >= 1 / (1 - self.percentile / 100) - 1e-9

    @property
    def ratio(self) -> float | None:
        """Figure over baseline: below 1 is faster (latency), above 1 is more (throughput)."""
        if self.baseline is None or self.baseline == 0:
            return None
        return self.value / self.baseline


def _is_latency(section: object) -> bool:
    return isinstance(section, Mapping) and all(isinstance(section.get(k), int | float) for k, _, _ in PERCENTILES)


def latency_figures(
    benchmark: str,
    what: str,
    section: Mapping[str, Any] | None,
    baseline_what: str | None = None,
    baseline: Mapping[str, Any] | None = None,
) -> list[Figure]:
    """p50, p99 and p99.9 of `section` beside those of `baseline`; nothing when `section` holds no latency."""
    if not _is_latency(section):
        return []
    assert section is not None
    base = baseline if _is_latency(baseline) else None
    return [
        Figure(
            benchmark,
            f"{what}, {label}",
            "us",
            str(section.get("load", "not stated")),
            section.get("count"),
            float(section[key]),
            baseline_what if base is not None else None,
            float(base[key]) if base is not None else None,
            pct,
        )
        for key, label, pct in PERCENTILES
    ]


def rate_figure(
    benchmark: str,
    what: str,
    unit: str,
    value: object,
    count: int | None = None,
    baseline_what: str | None = None,
    baseline: object = None,
) -> list[Figure]:
    """One throughput figure beside its baseline; nothing when `value` is not a number."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return []
    has_base = isinstance(baseline, int | float) and not isinstance(baseline, bool)
    return [
        Figure(
            benchmark,
            what,
            unit,
            NONE,
            count,
            float(value),
            baseline_what if has_base else None,
            float(baseline) if has_base else None,  # type: ignore[arg-type]
        )
    ]


def _get(d: Mapping[str, Any] | None, *path: str) -> Any:
    for key in path:
        if not isinstance(d, Mapping):
            return None
        d = d.get(key)
    return d


def _book(r: Mapping[str, Any]) -> list[Figure]:
    base = r.get("baseline") or {}
    lat, base_lat = r.get("latency") or r, base.get("latency") or base
    batch = _get(r, "params", "batch")
    per_call = f", {batch:,} a call" if isinstance(batch, int) else ""
    return [
        *latency_figures("book", "single-call submit/cancel/replace, native engine", lat,
                         "reference engine (Python), same commands", base_lat),
        *rate_figure("book", f"batch API{per_call}, native engine", "commands/s", r.get("ops_per_sec"),
                     r.get("count"), "reference engine, same stream's prefix", base.get("ops_per_sec")),
    ]  # fmt: skip


def _risk(r: Mapping[str, Any]) -> list[Figure]:
    strict, base = r.get("strict") or {}, r.get("baseline") or {}
    thr = strict.get("throughput") or {}
    fsync = strict.get("appendfsync")
    journal = f", Redis journal appendfsync={fsync}" if fsync else ""
    shape = (
        f" ({thr['batch']} orders a call, {thr['in_flight']} calls in flight per actor)"
        if {"batch", "in_flight"} <= thr.keys()
        else ""
    )
    reserved = r.get("reserved")
    return [
        *latency_figures("risk", "AccountState.decide in process", r),
        *(
            latency_figures("risk", "reserved mode decision", reserved, "in-process decide, same run", r)
            if isinstance(reserved, Mapping)
            else []
        ),
        *latency_figures("risk", f"strict: account actor round trip{journal}", strict,
                         "bare Ray actor call, same payload", base),
        *rate_figure("risk", f"strict decisions/s{shape}", "decisions/s", thr.get("ops_per_sec"), thr.get("count"),
                     "bare Ray actor calls/s (one order a call)", base.get("ops_per_sec")),
        *(
            rate_figure("risk", "reserved mode decisions/s", "decisions/s", reserved.get("ops_per_sec"),
                        reserved.get("count"))
            if isinstance(reserved, Mapping)
            else []
        ),
    ]  # fmt: skip


def _fix(r: Mapping[str, Any]) -> list[Figure]:
    base = r.get("baseline") or {}
    window = _get(r, "params", "window")
    in_flight = f", {window} in flight" if isinstance(window, int) else ""
    return [
        *latency_figures("fix", "NewOrderSingle -> ExecutionReport(New) via the OMS gateway", r,
                         "bare QuickFIX acceptor (fixed ExecutionReport)", base),
        *latency_figures("fix", "NewOrderSingle -> ExecutionReport(Fill) via the OMS gateway", r.get("fill")),
        *latency_figures("fix", "raw TCP ping-pong between two processes (the floor)", r.get("floor")),
        *rate_figure("fix", f"pipelined orders acknowledged{in_flight}", "orders/s", r.get("ops_per_sec"),
                     _get(r, "params", "pipelined"), "bare QuickFIX acceptor, same pipelining",
                     base.get("ops_per_sec")),
    ]  # fmt: skip


def _sink(r: Mapping[str, Any]) -> list[Figure]:
    visible = r.get("visible") or r
    rate = visible.get("rate")
    at = f" at {rate:,} fills/s" if isinstance(rate, int | float) else ""
    return [
        *rate_figure("sink", "journal -> ClickHouse (chDB), draining a backlog", "fills/s", r.get("ops_per_sec"),
                     r.get("count")),
        *latency_figures("sink", f"fill journaled -> visible in ClickHouse{at}", visible),
    ]  # fmt: skip


def _rest(r: Mapping[str, Any]) -> list[Figure]:
    base = r.get("baseline") or {}
    conns = _get(r, "params", "connections")
    over = f" over {conns} connections" if isinstance(conns, int) else ""
    return [
        *latency_figures("rest", "POST /v1/orders -> 201 acknowledged", r,
                         "bare uvicorn app (fixed 201, no OMS)", base),
        *rate_figure("rest", f"orders acknowledged{over}", "orders/s", r.get("ops_per_sec"),
                     _get(r, "params", "concurrent"), "bare uvicorn app, same connections", base.get("ops_per_sec")),
    ]  # fmt: skip


def _generic(r: Mapping[str, Any]) -> list[Figure]:
    name = str(r.get("name", "?"))
    base = r.get("baseline") if isinstance(r.get("baseline"), Mapping) else None
    base_name = str(base.get("name", "baseline")) if base else None
    return [
        *latency_figures(name, "latency", r, base_name, base),
        *rate_figure(name, "throughput", str(r.get("unit", "ops/s")), r.get("ops_per_sec"), r.get("count"),
                     base_name, base.get("ops_per_sec") if base else None),
    ]  # fmt: skip


FIGURES: dict[str, Callable[[Mapping[str, Any]], list[Figure]]] = {
    "book": _book,
    "risk": _risk,
    "fix": _fix,
    "sink": _sink,
    "rest": _rest,
}


def figures(name: str, result: Mapping[str, Any]) -> list[Figure]:
    """Every figure of one benchmark's result, each with its same-run baseline where it has one. Missing sections
    (an older result, a figure a benchmark does not measure yet) give fewer rows, never an error."""
    return FIGURES.get(name, _generic)(result)


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
        baseline = _with_hdr(("reference engine", _get(r, "baseline", "latency") or base))
    elif name == "risk":
        title = "risk: strict account actor round trip vs bare Ray call"
        main = _with_hdr(("strict round trip", r.get("strict")))
        baseline = _with_hdr(("bare Ray actor call", base))
        others = _with_hdr(("in-process decide", r), ("reserved mode", r.get("reserved")))
    elif name == "fix":
        title = "fix: NewOrderSingle -> ExecutionReport, OMS gateway vs bare QuickFIX"
        main = _with_hdr(("OMS gateway, ER(New)", r))
        baseline = _with_hdr(("bare QuickFIX, ER(New)", base))
        others = _with_hdr(("OMS gateway, ER(Fill)", r.get("fill")), ("raw TCP ping-pong", r.get("floor")))
    elif name == "sink":
        rate = _get(r, "visible", "rate")
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
