"""Pre-trade risk benchmark: the in-process check, the strict actor round trip, and Ray's bare actor call beside it.

Figures, all from one run:

- top level: `AccountState.decide` timed call by call in this process (`in_process_apply`: decide + apply),
  `time.perf_counter_ns` around each call (the timer's own cost included).
- `strict`: a synchronous `ray.get(actor.submit_batch.remote([order]))` through real `AccountShard` actors that
  journal every decision to a real `redis-server` (AOF, `appendfsync` as given) before answering; and
  `strict.throughput`: decisions per second with `batch` orders per call (`AccountShard.submit_packed`: the
  batch and its answers cross Ray as msgpack bytes) and `in_flight` calls outstanding per actor, spread over
  `accounts` accounts packed into `actors` actors; the orders are made before the clock starts.
- `reserved`: reserved mode over Ray: `RayAllowanceGate.decide` for reserved accounts (`BENCHR000`, ...) on their own
  AccountShard actors, timed call by call. Decisions are local within allowances the actors grant; reports go to the
  actors without waiting, top-ups are asked for at half (`reserved_tokens`), and an order the allowance cannot
  cover is a round trip (counted in `fallbacks`, timed like the others). Each local acceptance is written ahead to
  the Redis report log before `decide` returns (`oms.infra.redis.reportlog`, one XADD, `appendfsync` as given): the top
  figures are the decision without that write (its time, measured around it in the same call, subtracted),
  `durable` the whole call. After each decision the engine's
  post-trade step (`on_events`) runs untimed, with a batch of fills/cancels every `retire_batch` orders;
  `with_step` times decision + that step when it has no fills to carry; `ops_per_sec` is the whole run's orders
  per second, those synchronous post-trade steps (fills journaled before they return) included.
- `baseline`: a bare Ray actor method returning its argument (the same one-order payload): synchronous round trip
  and pipelined calls per second.

A fast wrong answer is not a result, so the run checks itself and fails (AssertionError) otherwise:

- in-process: a second `AccountState` per account, fed the same commands and events, makes the same decisions and
  ends with the same state hash;
- strict: every decision the actors returned equals the decision of an in-process replica fed the same orders and
  events in the same order; the working orders the actors report equal the accepts the harness counted minus those
  it retired; each account's journal holds exactly its decisions, events and marks; each account's `state_hash`
  equals the replica's and the actor's `replayed_hash` (a fresh rebuild from the journal).
- reserved: replaying each account's journal without its allowance events into a strict replica, every journaled
  decision equals the replica's decision of the same order (local accepts included: the safety property on this
  run) and the decision the gate returned; every decision is journaled once; working orders as counted; the
  actor's state without its allowance equals the replica's, and its `state_hash` its `replayed_hash`.

The bench accounts are generated (`BENCH000`, ...) into a temporary accounts file: `[defaults]` of
`configs/accounts.toml`, with limits widened so that decisions are accepts except the orders deliberately sized
above `max_order_qty` (`p_reject`). Orders are limit orders on AAPL and MSFT within 1 % of a fixed reference. In
both modes each account keeps about `working` orders working; older ones are filled or canceled (untimed in
process; through `apply_batch` calls in the strict throughput run, counted in its seconds).

This module runs the whole and writes `risk.json`; the parts are `bench.risk_workload` (parameters, accounts file,
order flow), `bench.risk_in_process`, `bench.risk_ray` (the bare-Ray baseline and how actors are called),
`bench.risk_strict` and `bench.risk_reserved`.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import cast

from bench.result_file import latency_fields, write_result
from bench.risk_in_process import measure_in_process
from bench.risk_ray import measure_baseline, sync_round_trips
from bench.risk_reserved import ReservedRun
from bench.risk_strict import StrictRun
from bench.risk_workload import INSTRUMENTS, OrderFlow, RiskParams, account_names, bench_accounts_toml, reserved_names
from oms.core.model.instruments import InstrumentRegistry
from oms.infra.ray.actors import ShardConfig
from oms.infra.ray.runtime import RaySettings, start_ray, stop_ray
from oms.infra.redis.server import AppendFsync, ManagedRedis
from risk.limits import load_risk_config

__all__ = ["TARGETS", "RiskBenchParams", "bench_accounts_toml", "run", "summary"]

TARGETS = {"in_process_p50_us": 2.0, "reserved_over_in_process_p50_us": 5.0, "strict_ops_per_sec": 20_000.0}


@dataclass(frozen=True)
class RiskBenchParams(RiskParams):
    """`oms bench risk`'s parameters: those of RiskParams, one `--flag` each. Declared in this module because
    `bench.all` takes a benchmark's parameters to be the one `*BenchParams` dataclass its own module defines."""


def _appendfsync(value: str) -> AppendFsync:
    if value not in ("always", "everysec", "no"):
        raise ValueError(f"appendfsync must be always, everysec or no, not {value!r}")
    return cast(AppendFsync, value)


def run(p: RiskBenchParams, out_dir: str = "bench/results", progress: Callable[[str], None] = print) -> dict:
    """Run the whole benchmark, write `<out_dir>/risk.json` and return what it wrote."""
    import ray

    if p.actors < 1 or p.accounts < p.actors or p.batch < 1 or p.in_flight < 1:
        raise ValueError("need accounts >= actors >= 1, batch >= 1, in_flight >= 1")
    _appendfsync(p.appendfsync)
    instruments = InstrumentRegistry.load(INSTRUMENTS)
    notes: list[str] = []
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="oms-bench-risk-") as tmp:
        risk_path = Path(tmp) / "accounts.toml"
        risk_path.write_text(bench_accounts_toml(account_names(p.accounts), reserved=reserved_names(p.accounts)))
        risk = load_risk_config(risk_path, instruments)

        progress(f"in-process: {p.checks:,} decisions over {p.accounts} accounts, each timed ...")
        decide_h, apply_h, in_verified = measure_in_process(p, risk, instruments)

        redis_server = ManagedRedis(Path(tmp) / "redis", appendfsync=_appendfsync(p.appendfsync))
        started_ray = not ray.is_initialized()
        strict: StrictRun | None = None
        reserved_run: ReservedRun | None = None
        try:
            redis_server.start()
            progress(f"redis-server on {redis_server.url} (appendfsync {p.appendfsync}); starting Ray ...")
            start_ray(RaySettings(num_cpus=2, object_store_mb=200))
            config = ShardConfig(redis_server.url, str(INSTRUMENTS), str(risk_path), p.snapshot_every)

            progress(f"baseline: {p.baseline_calls:,} bare actor round trips, {p.baseline_pipelined:,} pipelined ...")
            payload = [OrderFlow(risk, instruments, 0.0, p.seed).next(account_names(1)[0])]
            base_h, base_calls_per_sec = measure_baseline(p, payload)

            progress(f"strict: {p.actors} account actors for {p.accounts} accounts; {p.strict_calls:,} round trips ...")
            strict = StrictRun(p, config, risk, instruments)
            strict_h = sync_round_trips(strict.one, p.strict_calls, p.warmup)

            progress(
                f"strict throughput: {p.strict_orders:,} orders, {p.batch} a call, "
                f"{p.in_flight} calls in flight per actor ..."
            )
            orders, post_trade, elapsed = strict.throughput()
            progress("verifying the actors' decisions, journals and states ...")
            strict_verified = strict.verify(config, risk, instruments)
            strict.close()
            strict = None

            progress(
                f"reserved: {p.reserved_orders:,} decisions through the Ray gate over {p.accounts} reserved accounts "
                f"on {p.actors} actors ..."
            )
            reserved_run = ReservedRun(p, config, risk, instruments)
            reserved_h, durable_h, reserved_step_h, reserved_s = reserved_run.run()
            progress("verifying the reserved decisions against strict replays of the journals ...")
            reserved_verified = reserved_run.verify(config, risk, instruments)
        finally:
            if strict is not None:
                strict.close()
            if reserved_run is not None:
                reserved_run.close()
            if started_ray:
                stop_ray()
            redis_server.stop()

    top = latency_fields(decide_h)
    strict_lat = latency_fields(strict_h)
    base = latency_fields(base_h)
    ops = orders / elapsed if elapsed else 0.0
    res = latency_fields(reserved_h)
    reserved = {
        **res,
        "durable": latency_fields(durable_h),
        "with_step": latency_fields(reserved_step_h),
        "ops_per_sec": (p.warmup + p.reserved_orders) / reserved_s if reserved_s else 0.0,
        "over_in_process_p50_us": res["p50"] - top["p50"],
        "local_share": reserved_verified["local"] / reserved_verified["decisions"],
        "fallbacks": reserved_verified["fallbacks"],
        "top_ups": reserved_verified["top_ups"],
        "tokens_per_grant": p.reserved_tokens,
        "seconds": reserved_s,
        "accounts": p.accounts,
        "actors": p.actors,
    }
    result = {
        "name": "risk",
        **top,
        "in_process_apply": latency_fields(apply_h),
        "strict": {
            **strict_lat,
            "appendfsync": p.appendfsync,
            "throughput": {
                "ops_per_sec": ops,
                "count": orders,
                "seconds": elapsed,
                "post_trade_events": post_trade,
                "batch": p.batch,
                "in_flight": p.in_flight,
                "accounts": p.accounts,
                "actors": p.actors,
            },
        },
        "reserved": reserved,
        "baseline": {
            "name": "ray_actor_echo",
            **base,
            "ops_per_sec": base_calls_per_sec,
            "pipelined": {
                "calls_per_sec": base_calls_per_sec,
                "count": p.baseline_pipelined,
                "in_flight": p.in_flight,
                "actors": p.actors,
            },
        },
        "ratio": {
            "strict_p50_over_baseline_p50": strict_lat["p50"] / base["p50"],
            "strict_p50_minus_baseline_p50_us": strict_lat["p50"] - base["p50"],
            "strict_ops_per_sec_over_baseline_calls_per_sec": ops / base_calls_per_sec if base_calls_per_sec else None,
            "strict_p50_over_in_process_p50": strict_lat["p50"] / top["p50"],
            "in_process_p50_over_target": top["p50"] / TARGETS["in_process_p50_us"],
            "strict_ops_per_sec_over_target": ops / TARGETS["strict_ops_per_sec"],
            "reserved_p50_over_in_process_p50": res["p50"] / top["p50"],
            "strict_p50_over_reserved_p50": strict_lat["p50"] / res["p50"],
        },
        "targets": {
            **TARGETS,
            "in_process_met": top["p50"] <= TARGETS["in_process_p50_us"],
            "reserved_met": reserved["over_in_process_p50_us"] <= TARGETS["reserved_over_in_process_p50_us"],
            "strict_met": ops >= TARGETS["strict_ops_per_sec"],
        },
        "verified": {"in_process": in_verified, "strict": strict_verified, "reserved": reserved_verified},
        "machine": {
            "cpus": os.cpu_count(),
            "loadavg_1_5_15_before": load_before,
            "loadavg_1_5_15_after": os.getloadavg(),
        },
        "params": asdict(p),
        "notes": [
            "top-level p50/p99/p999/max: AccountState.decide in this process, microseconds, timer included; "
            "in_process_apply: decide + apply",
            "strict: ray.get(actor.submit_batch.remote([one order])) through AccountShard actors journaling each "
            "decision to redis-server before answering; throughput: decisions/s with batched (msgpack-packed) "
            "pipelined calls",
            "baseline: a bare Ray actor method returning the same one-order payload, same run",
            "reserved: RayAllowanceGate.decide for reserved accounts over AccountShard actors (local within "
            "allowances, fallbacks and top-ups included), less the write-ahead of each local acceptance to Redis; "
            "durable: the whole call, that write included; with_step adds the engine's post-trade step after each "
            "decision",
            *notes,
        ],
    }
    write_result("risk", result, out_dir)
    return result


def summary(r: dict) -> str:
    """A table of the measured figures and what was verified."""
    s, b, a, t = r["strict"], r["baseline"], r["in_process_apply"], r["strict"]["throughput"]
    res = r["reserved"]

    def row(label: str, d: dict) -> str:
        return f"{label:30s}" + "".join(f"{d[k]:>12.2f}" for k in ("p50", "p99", "p999", "max"))

    v_in, v_st, v_re = r["verified"]["in_process"], r["verified"]["strict"], r["verified"]["reserved"]
    m = r["machine"]
    return "\n".join(
        [
            f"{'latency (us)':30s}{'p50':>12s}{'p99':>12s}{'p999':>12s}{'max':>12s}",
            row("in-process decide", r),
            row("in-process decide+apply", a),
            row("reserved (Ray gate)", res),
            row(f"reserved + write-ahead ({s['appendfsync']})", res["durable"]),
            row("reserved + post-trade step", res["with_step"]),
            row(f"strict round trip ({s['appendfsync']})", s),
            row("baseline: bare Ray actor", b),
            f"{'throughput':30s}",
            f"{'strict decisions/s':30s}{t['ops_per_sec']:>12,.0f}  ({t['batch']} a call, {t['in_flight']} in flight "
            f"per actor, {t['accounts']} accounts on {t['actors']} actors, {t['post_trade_events']:,} fills/cancels "
            f"applied meanwhile)",
            f"{'baseline bare calls/s':30s}{b['ops_per_sec']:>12,.0f}  (one order a call, same pipelining)",
            f"targets: in-process p50 <= {r['targets']['in_process_p50_us']} us: "
            f"{'met' if r['targets']['in_process_met'] else 'not met'}; reserved p50 - in-process p50 = "
            f"{res['over_in_process_p50_us']:.2f} us <= {r['targets']['reserved_over_in_process_p50_us']} us: "
            f"{'met' if r['targets']['reserved_met'] else 'not met'}; strict >= "
            f"{r['targets']['strict_ops_per_sec']:,.0f}/s: {'met' if r['targets']['strict_met'] else 'not met'}; "
            f"strict p50 = {r['ratio']['strict_p50_over_baseline_p50']:.2f}x bare Ray",
            f"verified in-process: {v_in['decisions']:,} decisions ({v_in['rejected']:,} rejects, {v_in['fills']:,} "
            f"fills) equal a replica's, same final states",
            f"verified strict: {v_st['decisions']:,} actor decisions equal an in-process replica's; "
            f"{v_st['accepted']:,} accepts - {v_st['retired']:,} retired = {v_st['working']:,} working orders the "
            f"actors report; {v_st['journal_records']:,} journal "
            f"records as expected; state_hash = replayed_hash = replica's for {v_st['accounts_hash_equal_replay']} "
            f"accounts",
            f"verified reserved: {v_re['decisions']:,} decisions ({v_re['local']:,} local, {v_re['fallbacks']:,} "
            f"round trips, {v_re['top_ups']:,} top-ups) equal a strict replay of each journal; "
            f"{v_re['accepted']:,} accepts - {v_re['retired']:,} retired = {v_re['working']:,} working orders; "
            f"{v_re['written_ahead']:,} acceptances written ahead, every one settled by its journal",
            f"rejects (in-process, strict, reserved): {v_in['reject_reasons']}, {v_st['reject_reasons']}, "
            f"{v_re['reject_reasons']}",
            *(f"note: {n}" for n in r["notes"][4:]),
            f"machine: {m['cpus']} cpus, 1-min load average {m['loadavg_1_5_15_before'][0]:.2f} before, "
            f"{m['loadavg_1_5_15_after'][0]:.2f} after (anything else running skews the Ray figures)",
        ]
    )
