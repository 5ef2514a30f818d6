"""`oms bench serve`: the deployed OMS (`oms serve`, default configuration) under open-loop FIX load, beside two
bare QuickFIX acceptors measured in the same run by the same client.

The servers, each a process of its own started afresh in a run directory:

- `oms`: `oms serve` with the default configuration (`configs/dev.toml`: a managed redis-server with appendfsync
  always, Ray with the account actors in reserved mode, the ClickHouse sink on chDB, the algo engine, the REST API,
  the FIX acceptor). The only additions are the benchmark's FIX sessions (`BENCH1`..`BENCH4`, FIX 4.4, one account
  each, `BENCHn`) and the priming session; the benchmark's accounts take the default limits except the order rate
  and open-order counts, and the session throttle is lifted, so that the figures show the OMS, not its limits.
- `bare` (the baseline): a QuickFIX acceptor with the same session settings answering each NewOrderSingle with an
  ExecutionReport New and each cancel with a Canceled, from memory (`bench.fix_server bare`).
- `durable` (the durable baseline): the same, after one XADD per message to a redis-server with appendfsync always
  (`bench.fix_server durable`): what any durable acknowledgement costs on this machine.

The client (`bench.fix_load`, a process of its own) sends at fixed offered rates, from 1 and from 4 sessions,
alternating a NewOrderSingle (a buy that rests below the market) and its cancel, and times each answer from the
message's due time (open loop: no coordinated omission). Each sweep (a server, a number of sessions) starts a fresh
server and warms it up untimed; rates then go up to `headline_rate` whatever happens, and past it until the server
is past capacity (its p99 over `stop_p99_ms`, or a message left unanswered); the rows keep every step.

Figures per server, sessions and rate: NOS -> New and Cancel -> Canceled p50/p99/p99.9/max, refused and unanswered
counts, the client's own send lag, the CPU time of the server's whole process tree (redis-server, Ray's processes
and workers, the sink included) per message, also split by process (`cpu_us_per_msg_by_process`, `process_kind`;
printed under its row when there is more than the server), and for `oms serve` the mean time its orders spent in each
hot-path stage (`stages_mean_us`, from its `/metrics`: in_to_risk, risk_to_venue, venue_to_ack, in_to_ack, and
venue_to_ack split into venue_to_sealed, sealed_to_durable, durable_to_ack; `oms.runtime.metrics`), also printed under
its row.
`mix` `cross` (`oms bench serve --mix cross`, written to `serve_cross.json`) sends instead, from each session, a sell
that rests (on `BENCHn`) and a buy at its price on a second account (`BENCHnX`) that trades with it, timing the
buy's NOS -> first Trade (kind `fill`) in place of the cancel's: the post-trade path (fills, trade prints, the
positions the actors keep) under the same load; the bare servers match such a buy against the sell in memory. Its
accounts' position, notional and cash limits are raised so that the positions the run builds up stay within them.
`mix` `replace` (`serve_replace.json`) follows each resting buy with an OrderCancelReplaceRequest of it to twice its
quantity at the same price, timing Replace -> Replaced (kind `replace`) in place of the cancel's; the replaced orders
rest to the end of the sweep, so its accounts take the cross mix's raised limits; the bare servers answer a replace
with Replaced from memory.
`sustained_ops_per_sec`: the highest rate whose p99 stayed under 10 ms for both kinds with every message answered (1
session). `overload`: a last step against `oms serve` from 1 session at twice its sustained rate (a row marked
`overload`), and whether every message of it was answered, accepted or refused, within 100 ms. The top-level
fields are the OMS's NOS -> New at `headline_rate` from 1 session, `baseline` and `durable_baseline` the same for the
bare servers.
`rounds` (`--rounds 3`): every sweep runs that many times, a different server first each round; each row is then
the round whose NOS -> New p50 is the median of that server, sessions and rate (`rounds_new_p50`, `rounds_new_p99`:
every round's, in order), and `round_rows` keeps every round's rows. The host's noise moves whole sweeps (every
stage of every message slower for minutes), so one round can put a server at twice its usual latency; the median of
alternating rounds compares each server with its baselines under the same spread of conditions.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.paths import CONFIGS
from bench.report import latency_fields, write_result
from bench.result_file import decode_histogram
from oms.apps.run_config import embedded_config, write_config
from oms.infra.redis.server import free_port

__all__ = ["ServeBenchParams", "run", "summary"]

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = CONFIGS / "dev.toml"
SERVERS = ("oms", "bare", "durable")
SUSTAINED_P99_US = 10_000.0
OVERLOAD_MAX_US = 100_000.0  # past capacity (twice the sustained rate) every message is answered within this
PRIME_SESSION, PRIME_ACCOUNTS = "BENCHP", ("BENCHP1", "BENCHP2")
BENCH_ACCOUNT_LIMITS = {"orders_per_window": 1_000_000, "max_open_orders": 1_000_000}
BENCH_LOGON = "LogonPassword=bench"  # what bench.fix_load's sessions log on with
BENCH_SESSION_MESSAGES = 1_000_000  # the session throttle's messages per window
# the cross mix: every pair of messages moves each of two accounts by one more lot, for the whole run
BENCH_CROSS_LIMITS = {
    **BENCH_ACCOUNT_LIMITS, "start_cash": "1000000000", "credit_limit": "1000000000", "max_position": "100000000",
    "max_gross_notional": "4000000000", "max_net_notional": "4000000000",
}  # fmt: skip
MIXES = {"cancel": "cancel", "cross": "fill", "replace": "replace"}  # each mix's second kind of message, beside `new`


@dataclass(frozen=True)
class ServeBenchParams:
    rates: str = "25,200,500,800,1000,1600,3000,10000"  # offered messages per second (orders and cancels), in order
    sessions: str = "1,4"  # how many FIX sessions share each rate
    seconds: float = 5.0  # how long each rate is offered
    drain: float = 10.0  # how long answers are waited for after the last send
    warmup_seconds: float = 3.0  # an untimed run at `warmup_rate` first (Ray workers, allowances, caches)
    warmup_rate: float = 200.0
    stop_p99_ms: float = 100.0  # past this p99 (or with a message unanswered) a server is not driven faster
    headline_rate: float = 1000.0  # the rate of the top-level figures
    servers: str = ",".join(SERVERS)  # which servers, in this order
    mix: str = "cancel"  # "cancel": orders and their cancels; "cross": orders that rest and orders that trade with
    # them; "replace": orders and a replace of each
    rounds: int = 1  # every sweep this many times, the servers taken in turn; each row is the round with the median p50


def _rates(p: ServeBenchParams) -> list[float]:
    return [float(r) for r in p.rates.split(",") if r.strip()]


# -- the servers --


def write_run_configs(
    run_dir: Path, fix_port: int, api_port: int, config: Path = DEFAULT_CONFIG, mix: str = "cancel"
) -> Path:
    """The default configuration with the benchmark's sessions and accounts added, its files in `run_dir`."""
    raw = embedded_config(config, run_dir, fix_port, api_port)
    sessions = Path(raw["fix"]["settings"]).read_text()
    for n in range(1, 5):
        sessions += (f"\n[SESSION]\nBeginString=FIX.4.4\nTargetCompID=BENCH{n}\nAccounts=BENCH{n},BENCH{n}X\n"
                     f"{BENCH_LOGON}\n")  # fmt: skip
    sessions += f"\n[SESSION]\nBeginString=FIX.4.4\nTargetCompID={PRIME_SESSION}\nAccounts={','.join(PRIME_ACCOUNTS)}\n"
    sessions += f"{BENCH_LOGON}\n"
    raw["fix"]["settings"] = str(write_text(run_dir / "acceptor.cfg", sessions))
    accounts = tomllib.loads(Path(raw["accounts"]).read_text())
    limits = BENCH_ACCOUNT_LIMITS if mix == "cancel" else BENCH_CROSS_LIMITS  # replaced orders rest to the end too
    for name in [*(f"BENCH{n}{x}" for n in range(1, 5) for x in ("", "X")), *PRIME_ACCOUNTS]:
        accounts.setdefault("accounts", {})[name] = dict(limits)
    accounts.setdefault("session", {})["messages_per_window"] = BENCH_SESSION_MESSAGES
    raw["accounts"] = str(write_config(accounts, run_dir / "accounts.toml"))
    return write_config(raw, run_dir / "oms.toml")


def write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


class Server:
    """One server process; `ready` once it accepts FIX connections. `api_port`: where `oms serve` answers
    `GET /metrics` (None for the bare servers, which have no stages to report)."""

    def __init__(self, kind: str, config: Path, run_dir: Path, fix_port: int, api_port: int | None = None) -> None:
        self.kind, self.port, self.api_port = kind, fix_port, api_port
        if kind == "oms":
            cmd = [sys.executable, "-m", "oms", "serve", "--config", str(config), "--log", str(run_dir / "oms.jsonl")]
        else:
            cmd = [sys.executable, "-m", "bench.fix_server", kind, "--config", str(config), "--port", str(fix_port),
                   "--dir", str(run_dir / kind)]  # fmt: skip
        self.log = open(run_dir / f"{kind}.out", "w")  # noqa: SIM115 - kept open for the process's lifetime
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.log, text=True, cwd=ROOT)
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                self.stop()
                raise RuntimeError(f"{kind} server exited at start: see {run_dir / f'{kind}.out'}")
            if line.startswith("ready"):
                return
        self.stop()
        raise RuntimeError(f"{kind} server not ready within 120 s")

    def stages(self) -> dict[str, tuple[float, int]]:
        """(seconds, orders) so far in each hot-path stage of `oms serve` (its `oms_stage_seconds` histogram)."""
        if self.api_port is None:
            return {}
        with urllib.request.urlopen(f"http://127.0.0.1:{self.api_port}/metrics", timeout=30) as answer:
            text = answer.read().decode()
        found: dict[str, list[float]] = {}
        for m in re.finditer(r'^oms_stage_seconds_(sum|count)\{stage="(\w+)"\} (\S+)$', text, re.MULTILINE):
            found.setdefault(m[2], [0.0, 0.0])[m[1] == "count"] = float(m[3])
        return {stage: (total, int(n)) for stage, (total, n) in found.items()}

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time (user + system) so far of the server and every process below it, by kind (`process_kind`)."""
        return tree_cpu_seconds(self.proc.pid)

    def stop(self) -> None:
        """SIGTERM (the server stops cleanly), SIGKILL after a minute; its output pipe read to the end and closed."""
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate(timeout=30)
        self.log.close()


def process_kind(is_root: bool, name: str) -> str:
    """What a process of a server's tree is, for the CPU split: `server` (the process the benchmark started),
    `redis`, `door` (the FIX front door), `sink` (the analytics sink), `account actors` (Ray's AccountShard workers),
    `ray` (Ray's own processes: GCS, raylet, agents, log monitor, idle workers, the reaper) or `other`. `name` is the
    process's command line (its title, for a process that renamed itself)."""
    if is_root:
        return "server"
    if "redis-server" in name:
        return "redis"
    if "fix_gateway.door" in name:
        return "door"
    if "oms.infra.clickhouse.service" in name:
        return "sink"
    if name.startswith("ray::AccountShard"):
        return "account actors"
    if name.startswith("ray::") or "/ray/" in name or "oms.infra.ray.reaper" in name:
        return "ray"
    return "other"


def tree_cpu_seconds(pid: int) -> dict[str, float]:
    """User + system CPU seconds of `pid` and its descendants, by `process_kind`, read from /proc (processes that
    ended are gone)."""
    children: dict[int, list[int]] = {}
    cpu: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue  # ended while we looked
        fields = stat[stat.rindex(")") + 2 :].split()
        child, parent = int(entry), int(fields[1])
        children.setdefault(parent, []).append(child)
        cpu[child] = (int(fields[11]) + int(fields[12])) / tick
    by_kind: dict[str, float] = {}
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                name = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            name = ""  # ended while we looked: its CPU is counted, under `other`
        kind = process_kind(p == pid, name)
        by_kind[kind] = by_kind.get(kind, 0.0) + cpu.get(p, 0.0)
        todo.extend(children.get(p, []))
    return by_kind


# -- one load step --


def load_step(server: Server, sessions: int, rate: float, p: ServeBenchParams, run: str, prime: bool) -> dict:
    """Offer `rate` messages/s from `sessions` sessions to `server`; the client's figures and the server's CPU."""
    names = [f"BENCH{n}" for n in range(1, sessions + 1)]
    cmd = [sys.executable, "-m", "bench.fix_load", "--port", str(server.port), "--sessions", ",".join(names),
           "--accounts", ",".join(names), "--rate", str(rate), "--seconds", str(p.seconds), "--drain", str(p.drain),
           "--run", run]  # fmt: skip
    if prime:
        cmd += ["--prime", "--prime-session", PRIME_SESSION, "--prime-accounts", ",".join(PRIME_ACCOUNTS)]
    if p.mix == "cross":
        cmd += ["--mix", "cross", "--cross-accounts", ",".join(f"{n}X" for n in names)]
    elif p.mix != "cancel":
        cmd += ["--mix", p.mix]
    cpu0, stages0 = server.cpu_seconds(), server.stages()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=p.seconds + p.drain + 120)
    cpu1, stages = server.cpu_seconds(), server.stages()
    if done.returncode != 0:
        raise RuntimeError(f"load at {rate:g} msg/s on {server.kind} failed: {done.stderr.strip()[-2000:]}")
    got = json.loads(done.stdout.strip().splitlines()[-1])
    row: dict[str, Any] = {"server": server.kind, "sessions": sessions, "rate": rate, "sent": got["sent"],
                           "seconds": got["seconds"], "client_late_p99_us": got["late_p99_us"]}  # fmt: skip
    for kind in ("new", MIXES[p.mix]):
        k = got[kind]
        hist = decode_histogram(k)
        if hist is None:
            raise RuntimeError(f"load at {rate:g} msg/s on {server.kind}: no {kind} histogram in the client's output")
        row[kind] = {**latency_fields(hist, load="open"), "answered": k["answered"], "refused": k["refused"],
                     "unanswered": k["unanswered"]}  # fmt: skip
    sent = max(got["sent"], 1)
    split = {kind: (seconds - cpu0.get(kind, 0.0)) * 1e6 / sent for kind, seconds in cpu1.items()}
    row["cpu_us_per_msg"] = sum(split.values())
    row["cpu_us_per_msg_by_process"] = dict(sorted(split.items(), key=lambda kv: -kv[1]))
    if stages:  # the mean of each stage over the step's orders (cancels have no stages)
        row["stages_mean_us"] = {
            stage: (total - stages0[stage][0]) * 1e6 / (n - stages0[stage][1])
            for stage, (total, n) in stages.items()
            if n > stages0.get(stage, (0.0, 0))[1]
        }
    return row


def second(row: dict) -> str:
    """The row's second kind of message beside `new`: `cancel`, `fill` (the cross mix) or `replace`."""
    return next((kind for kind in MIXES.values() if kind in row), "cancel")


def past_capacity(row: dict, p: ServeBenchParams) -> bool:
    other = row[second(row)]
    worst = max(row["new"]["p99"], other["p99"])
    return worst > p.stop_p99_ms * 1000 or row["new"]["unanswered"] + other["unanswered"] > 0


def sustained(row: dict) -> bool:
    """Every message answered (none refused) and p99 under 10 ms for both kinds."""
    kinds = ("new", second(row))
    answered = all(row[k]["unanswered"] == 0 and row[k]["refused"] == 0 for k in kinds)
    return answered and max(row[k]["p99"] for k in kinds) < SUSTAINED_P99_US


def measure_server(
    kind: str, run_dir: Path, sessions: int, p: ServeBenchParams, progress: Any = None, round_no: int = 0
) -> list[dict]:
    """The sweep from `sessions` sessions against a fresh `kind` server (so no backlog of an earlier sweep is left
    behind): an untimed warm-up, then each rate in turn, up to the headline rate whatever happens and past it
    until the server is past capacity. Each row says its `round`."""
    fix_port = free_port()
    where = run_dir / f"{kind}-{sessions}-{round_no}"
    api_port = free_port()
    config = write_run_configs(where, fix_port, api_port, mix=p.mix)
    server = Server(kind, config, where, fix_port, api_port if kind == "oms" else None)
    rows: list[dict] = []
    try:
        warmup = ServeBenchParams(seconds=p.warmup_seconds, drain=p.drain, mix=p.mix)
        load_step(server, sessions, p.warmup_rate, warmup, f"{kind[0]}w", prime=kind == "oms")
        for n, rate in enumerate(_rates(p)):
            row = load_step(server, sessions, rate, p, f"{kind[0]}{sessions}x{n}", prime=False)
            row["round"] = round_no
            rows.append(row)
            if progress is not None:
                progress(row)
            if rate >= p.headline_rate and past_capacity(row, p):
                break
        held = _sustained_rate(rows, kind) if kind == "oms" and sessions == 1 else 0.0
        if held:  # the overload check: twice the sustained rate
            row = load_step(server, sessions, 2 * held, p, f"{kind[0]}{sessions}xo", prime=False)
            row["overload"] = True
            row["round"] = round_no
            rows.append(row)
            if progress is not None:
                progress(row)
    finally:
        server.stop()
    return rows


def median_rows(rows: list[dict]) -> list[dict]:
    """One row per server, sessions, rate and step kind (the overload step apart), in the order they first came:
    of the rounds that ran it, the one whose NOS -> New p50 is the median (the lower one of an even count), with
    `rounds_new_p50` and `rounds_new_p99` listing every round's, in round order. The host's noise moves whole sweeps
    (every stage of every message slower for minutes), so a figure is taken from the middle round, not from
    whichever round was luckiest or unluckiest."""
    groups: dict[tuple[Any, ...], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["server"], r["sessions"], r["rate"], bool(r.get("overload"))), []).append(r)
    out = []
    for group in groups.values():
        ranked = sorted(group, key=lambda r: r["new"]["p50"])
        row = dict(ranked[(len(ranked) - 1) // 2])
        row["rounds_new_p50"] = [r["new"]["p50"] for r in group]
        row["rounds_new_p99"] = [r["new"]["p99"] for r in group]
        out.append(row)
    return out


def overload(rows: list[dict], server: str = "oms") -> dict[str, Any] | None:
    """The overload step of `server` (1 session, twice its sustained rate): whether every message was answered,
    accepted or refused, within OVERLOAD_MAX_US. Of several (rounds that sustained different rates), the one at
    twice the sustained rate of `rows`, else the one most rounds ran."""
    steps = [r for r in rows if r["server"] == server and r.get("overload")]
    if not steps:
        return None
    held = _sustained_rate(rows, server)
    row = next((r for r in steps if r["rate"] == 2 * held), None) or max(
        steps, key=lambda r: len(r.get("rounds_new_p50", ())))  # fmt: skip
    other = row[second(row)]
    worst = max(row["new"]["max"], other["max"])
    unanswered = row["new"]["unanswered"] + other["unanswered"]
    return {"rate": row["rate"], "max_us": worst, "refused": row["new"]["refused"] + other["refused"],
            "unanswered": unanswered, "within_bound": unanswered == 0 and worst <= OVERLOAD_MAX_US}  # fmt: skip


def _ladder(rows: list[dict], server: str) -> list[dict]:
    """`server`'s rows at the offered rates from 1 session (the overload step left out)."""
    return [r for r in rows if r["server"] == server and r["sessions"] == 1 and not r.get("overload")]


def _pick(rows: list[dict], server: str, rate: float) -> dict | None:
    return next((r for r in _ladder(rows, server) if r["rate"] == rate), None)


def _sustained_rate(rows: list[dict], server: str) -> float:
    return max((r["rate"] for r in _ladder(rows, server) if sustained(r)), default=0.0)


def _headline(rows: list[dict], server: str, p: ServeBenchParams) -> dict[str, Any]:
    row = _pick(rows, server, p.headline_rate)
    if row is None:
        raise RuntimeError(f"{server}: no 1-session row at the headline rate {p.headline_rate:g} msg/s")
    out = {k: row["new"][k] for k in ("unit", "count", "p50", "p99", "p999", "max", "load", "hdr")}
    out[second(row)] = {k: row[second(row)][k] for k in ("count", "p50", "p99", "p999", "max")}
    out["ops_per_sec"] = _sustained_rate(rows, server)
    out["cpu_us_per_order"] = row["cpu_us_per_msg"]
    return out


def run(
    p: ServeBenchParams | None = None, out_dir: str = "bench/results", progress: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Run the sweeps against every server and write `<out_dir>/serve.json` (`serve_cross.json` for the cross
    mix); returns the result. A line per step goes to `progress` (default: stderr)."""
    say = progress or (lambda line: print(line, file=sys.stderr))
    p = p or ServeBenchParams()
    kinds = [k.strip() for k in p.servers.split(",") if k.strip()]
    unknown = sorted(set(kinds) - set(SERVERS))
    if unknown or "oms" not in kinds:
        raise ValueError(f"servers must include oms and be among {', '.join(SERVERS)} (got {p.servers!r})")
    if p.mix not in MIXES:
        raise ValueError(f"mix must be one of {', '.join(MIXES)} (got {p.mix!r})")
    if p.rounds < 1:
        raise ValueError(f"rounds must be at least 1 (got {p.rounds})")
    measured: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="oms-bench-serve-") as tmp:
        for n in range(p.rounds):
            for kind in kinds[n % len(kinds) :] + kinds[: n % len(kinds)]:  # each server first in turn
                for sessions in [int(s) for s in p.sessions.split(",") if s.strip()]:
                    measured += measure_server(kind, Path(tmp), sessions, p, lambda r: say(_row_line(r)), n)
    rows = median_rows(measured) if p.rounds > 1 else measured
    name = "serve" if p.mix == "cancel" else f"serve_{p.mix}"
    result: dict[str, Any] = {"name": name, **_headline(rows, "oms", p), "headline_rate": p.headline_rate, "mix": p.mix}
    if "bare" in kinds:
        result["baseline"] = _headline(rows, "bare", p)
    if "durable" in kinds:
        result["durable_baseline"] = _headline(rows, "durable", p)
    result["sustained_ops_per_sec"] = {k: _sustained_rate(rows, k) for k in kinds}
    result["overload"] = overload(rows)
    result["rows"] = rows
    if p.rounds > 1:
        result["round_rows"] = measured
    result["params"] = p.__dict__
    result["machine"] = {"cpus": os.cpu_count(), "host": socket.gethostname()}
    write_result(name, result, out_dir)
    return result


def _row_line(r: dict) -> str:
    step = " (overload)" if r.get("overload") else ""
    kind = second(r)
    line = (f"{r['server']:8} {r['sessions']} session(s) {r['rate']:>8g} msg/s{step}: "
            f"new p50 {r['new']['p50']:9.0f} p99 {r['new']['p99']:9.0f} us, "
            f"{kind} p50 {r[kind]['p50']:9.0f} p99 {r[kind]['p99']:9.0f} us, "
            f"unanswered {r['new']['unanswered'] + r[kind]['unanswered']}, "
            f"refused {r['new']['refused'] + r[kind]['refused']}, "
            f"cpu {r['cpu_us_per_msg']:.0f} us/msg")  # fmt: skip
    if "rounds_new_p50" in r:
        line += f" (median round; new p50 by round {'/'.join(f'{v:.0f}' for v in r['rounds_new_p50'])} us)"
    elif r.get("round"):
        line += f" (round {r['round'] + 1})"
    return line


def _stages_line(r: dict) -> str:
    return "    stages (mean us): " + ", ".join(f"{k} {v:.0f}" for k, v in r["stages_mean_us"].items())


def _cpu_line(r: dict) -> str:
    return "    cpu by process (us/msg): " + ", ".join(
        f"{k} {v:.0f}" for k, v in r["cpu_us_per_msg_by_process"].items())  # fmt: skip


def summary(result: dict[str, Any]) -> str:
    mix = {"cross": ", orders that cross", "replace": ", orders and their replaces"}.get(result.get("mix", ""), "")
    lines = [f"oms bench serve: open-loop FIX load on `oms serve` (default config) and two bare FIX acceptors{mix}"]
    for r in result["rows"]:
        lines.append(_row_line(r))
        if r.get("stages_mean_us"):
            lines.append(_stages_line(r))
        if len(r.get("cpu_us_per_msg_by_process", ())) > 1:
            lines.append(_cpu_line(r))
    lines.append("sustained (p99 < 10 ms, all answered, 1 session): " + ", ".join(
        f"{k} {v:g} msg/s" for k, v in result["sustained_ops_per_sec"].items()))  # fmt: skip
    if (o := result.get("overload")) is not None:
        lines.append(f"overload (oms, 1 session, twice the sustained rate, {o['rate']:g} msg/s): "
                     f"max {o['max_us'] / 1000:.1f} ms, {o['refused']} refused, {o['unanswered']} unanswered: "
                     f"{'within' if o['within_bound'] else 'NOT within'} {OVERLOAD_MAX_US / 1000:g} ms")  # fmt: skip
    return "\n".join(lines)
