"""`oms bench all`: every benchmark in one run, then the report that sets them side by side.

Runs book, risk, fix, sink and rest in turn (each writes its own `<out_dir>/<name>.json`), with a progress bar on
stderr, then `bench.report.render_report` writes `<out_dir>/REPORT.md` (one table: every figure beside its
same-run baseline and the ratio; the machine; the failures) and a `<name>_latency.png` HDR percentile plot per
benchmark. A benchmark that fails does not stop the others: the report shows it as failed with its error and
traceback, and `exit_code` of the run is 1.

`scale` shrinks (or grows) every benchmark's counts and durations: `scale=0.01` is a run of about a minute that
still exercises every benchmark end to end and verifies it (the structural parameters, such as accounts, actors,
connections or windows, stay as they are).
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from bench.report import ORDER, Outcome, machine_info, render_report

__all__ = ["AllBenchParams", "chosen_benchmarks", "exit_code", "render_report", "run", "scaled_params", "summary"]

#: Fields scaled by `AllBenchParams.scale`, with the least each may become (so a quick run still means something).
SCALED: dict[str, dict[str, float]] = {
    "serve": {"seconds": 1.0, "drain": 3.0, "warmup_seconds": 1.0},
    "book": {"ops": 2_000, "ref_ops": 500, "latency_calls": 1_000},
    "risk": {
        "checks": 500,
        "strict_calls": 20,
        "strict_orders": 200,
        "baseline_calls": 20,
        "baseline_pipelined": 40,
        "warmup": 3,
    },
    "fix": {"orders": 50, "fills": 20, "pipelined": 200, "warmup": 10, "pings": 50},
    "sink": {"fills": 2_000, "paced_s": 1.0},
    "rest": {"orders": 50, "concurrent": 200, "warmup": 10},
}
QUICK_SCALE = 0.01
DESCRIPTIONS = {
    "serve": "the deployed oms serve under open-loop FIX load vs bare and durable-bare QuickFIX (the headline)",
    "book": "matching engine, native vs the Python reference",
    "risk": "pre-trade risk in process, strict Ray actor round trip, bare Ray baseline",
    "fix": "FIX gateway alone over an in-process core (component view) vs a bare QuickFIX acceptor and raw TCP",
    "sink": "Redis journal -> ClickHouse sink, throughput and fill-to-visible delay (open loop)",
    "rest": "REST API vs a bare uvicorn app",
}


@dataclass(frozen=True)
class AllBenchParams:
    scale: float = 1.0  # times each benchmark's default counts and durations; 0.01: a quick run of about a minute
    benchmarks: str = ",".join(ORDER)  # which, comma-separated, run in this order


def chosen_benchmarks(p: AllBenchParams) -> list[str]:
    """The benchmarks `p` names, in its order; ValueError for an unknown or repeated name or a scale <= 0."""
    names = [n.strip() for n in p.benchmarks.split(",") if n.strip()]
    unknown = [n for n in names if n not in ORDER]
    if unknown or not names:
        raise ValueError(f"benchmarks must be a comma-separated list of {', '.join(ORDER)}; got {p.benchmarks!r}")
    if len(set(names)) != len(names):
        raise ValueError(f"benchmarks names one twice: {p.benchmarks!r}")
    if not p.scale > 0:
        raise ValueError(f"scale must be > 0, not {p.scale!r}")
    return names


def _params_type(module: Any) -> type:
    types = [
        v
        for k, v in vars(module).items()
        if k.endswith("BenchParams") and dataclasses.is_dataclass(v) and v.__module__ == module.__name__
    ]
    if len(types) != 1:
        raise TypeError(f"{module.__name__} should define one *BenchParams dataclass, has {len(types)}")
    return types[0]


def scaled_params(name: str, scale: float) -> Any:
    """The default parameters of benchmark `name`, its SCALED fields multiplied by `scale` (never below their
    floor); a field the benchmark's parameters do not have is left out."""
    params = _params_type(importlib.import_module(f"bench.{name}"))()
    if scale == 1.0:
        return params
    fields = {f.name for f in dataclasses.fields(params)}
    changes: dict[str, int | float | str] = {}
    for field, floor in SCALED[name].items():
        if field not in fields:
            continue
        value = getattr(params, field)
        scaled = max(floor, value * scale)
        changes[field] = round(scaled) if isinstance(value, int) else float(scaled)
    if name == "serve" and scale < 1.0:  # a quick run: the headline rate and one below it, one session
        changes["rates"] = f"200,{params.headline_rate:g}"
        changes["sessions"] = "1"
    if name == "book":  # the reference runs a prefix of the native stream
        ops = changes.get("ops", params.ops)
        changes["ref_ops"] = min(int(changes.get("ref_ops", params.ref_ops)), int(ops))
    return dataclasses.replace(params, **changes)


def run(
    p: AllBenchParams,
    out_dir: str = "bench/results",
    progress: Callable[[str], None] | None = None,
    params: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Run the chosen benchmarks in turn, then write `<out_dir>/REPORT.md` and the plots; returns what ran, how it
    ended, each result and where the report is. `params` gives a benchmark explicit parameters instead of the
    scaled defaults. A benchmark's exception is recorded and the next one runs; KeyboardInterrupt stops the run
    after writing the report of what finished. Lines go to `progress` (default: stderr, under the bar)."""
    names = chosen_benchmarks(p)
    given = dict(params or {})
    bad = [n for n in given if n not in names]
    if bad:
        raise ValueError(f"params given for benchmarks not in this run: {', '.join(bad)}")
    machine = {**machine_info(), "scale": p.scale}
    outcomes: dict[str, Outcome] = {}
    results: dict[str, dict[str, Any]] = {}
    bar = tqdm(total=len(names), desc="oms bench all", file=sys.stderr, disable=False,
               bar_format="{desc}: {n_fmt}/{total_fmt} benchmarks |{bar}| {elapsed}{postfix}")  # fmt: skip

    def say(line: str) -> None:
        if progress is not None:
            progress(line)
        else:
            tqdm.write(line, file=sys.stderr)

    interrupted: KeyboardInterrupt | None = None
    started = time.perf_counter()
    try:
        for i, name in enumerate(names, 1):
            bar.set_postfix_str(name)
            say(f"[{i}/{len(names)}] {name}: {DESCRIPTIONS[name]} ...")
            t0 = time.perf_counter()
            try:  # importing is part of it: a benchmark that cannot even load fails alone
                module = importlib.import_module(f"bench.{name}")
                chosen = given.get(name) or scaled_params(name, p.scale)
                results[name] = module.run(chosen, out_dir=out_dir, progress=lambda m: say(f"    {m}"))
                outcomes[name] = Outcome("ok", time.perf_counter() - t0)
                say(f"    {name}: done in {outcomes[name].seconds:.2f} s")
            except KeyboardInterrupt as exc:
                outcomes[name] = Outcome.from_exception(exc, time.perf_counter() - t0)
                interrupted = exc
                break
            except Exception as exc:  # recorded, reported and turned into the exit code; the others still run
                outcomes[name] = Outcome.from_exception(exc, time.perf_counter() - t0)
                say(f"    {name}: FAILED after {outcomes[name].seconds:.1f} s: {outcomes[name].error}")
            bar.update(1)
    finally:
        bar.set_postfix_str("report")
        bar.close()
    machine["loadavg_before"] = machine["loadavg"]
    machine["loadavg_after"] = list(os.getloadavg())
    say("writing the report and the plots ...")
    report = render_report(out_dir, outcomes, machine)
    if interrupted is not None:
        raise interrupted
    plots = [str(Path(out_dir) / f"{n}_latency.png") for n in results if (Path(out_dir) / f"{n}_latency.png").exists()]
    return {
        "name": "all",
        "out_dir": str(out_dir),
        "report": str(report),
        "plots": plots,
        "seconds": time.perf_counter() - started,
        "outcomes": {n: dataclasses.asdict(o) for n, o in outcomes.items()},
        "results": results,
        "failed": [n for n, o in outcomes.items() if o.status != "ok"],
        "scale": p.scale,
    }


def summary(r: dict[str, Any]) -> str:
    """Each benchmark's own summary (or its failure), then where the report, the JSON and the plots are."""
    parts: list[str] = []
    for name, o in r["outcomes"].items():
        if o["status"] == "ok":
            try:
                text = importlib.import_module(f"bench.{name}").summary(r["results"][name])
            except Exception as exc:  # the report is written already; one summary must not hide the rest
                text = f"(no summary: {type(exc).__name__}: {exc}; the figures are in the report)"
            parts += [f"== {name} ({o['seconds']:.2f} s)", text, ""]
        else:
            parts += [f"== {name} FAILED after {o['seconds']:.1f} s: {o['error']}", ""]
    out = Path(r["out_dir"])
    written = [str(out / f"{n}.json") for n in r["results"]]
    parts += [
        f"report: {r['report']}",
        f"results: {', '.join(written) if written else 'none'}",
        f"plots: {', '.join(r['plots']) if r['plots'] else 'none'}",
    ]
    if r["failed"]:
        parts.append(f"FAILED: {', '.join(r['failed'])} (errors and tracebacks in {r['report']})")
    return "\n".join(parts)


def exit_code(r: dict[str, Any]) -> int:
    """0 when every benchmark of the run succeeded, else 1."""
    return 1 if r["failed"] else 0
