"""The `oms` command."""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path

# On a small machine an idle BLAS thread pool spins on a core the OMS needs; nothing here does BLAS-sized work.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def _add_params(parser: argparse.ArgumentParser, params_type: type) -> None:
    """One `--flag` per field of a benchmark's parameter dataclass, defaulting to the field's default."""
    for f in dataclasses.fields(params_type):
        kind = type(f.default)
        flag = f"--{f.name.replace('_', '-')}"
        parser.add_argument(
            flag, type=kind, default=f.default, metavar=kind.__name__.upper(), help=f"(default: {f.default})"
        )


def _params(args: argparse.Namespace, params_type: type) -> object:
    return params_type(**{f.name: getattr(args, f.name) for f in dataclasses.fields(params_type)})


def _bench(args: argparse.Namespace) -> int:
    """Run the benchmark module `bench.<name>` (its `run` and `summary`) with the flags' parameters."""
    module = importlib.import_module(f"bench.{args.bench}")
    result = module.run(_params(args, args.params_type), out_dir=args.out_dir)
    print(module.summary(result))
    if hasattr(module, "exit_code"):  # `all`: its summary says what it wrote; 1 when a benchmark failed
        return int(module.exit_code(result))
    print(f"wrote {args.out_dir}/{result.get('name', args.bench)}.json")  # `serve --mix cross`: serve_cross
    return 0


def _serve(args: argparse.Namespace) -> int:
    from oms.apps.serve import OmsApp, tune_process
    from oms.core.model.instruments import ConfigError
    from oms.infra.clickhouse.clickhouse import AnalyticsError
    from oms.infra.redis.server import JournalUnavailable
    from oms.runtime.logs import configure_logging

    config = _config_to_serve(args.config, "dev.toml", "oms serve")
    if config is None:
        return 1
    os.umask(0o077)  # every file it writes (logs, FIX store, journal, ClickHouse) readable by its user only
    try:
        logs = configure_logging(args.log, args.log_level)
    except OSError as exc:
        print(f"oms serve: log {args.log}: {exc.strerror}", file=sys.stderr)
        return 1
    try:
        app = OmsApp.start(config, with_fix=True, with_analytics=True, with_api=True)
    except (ConfigError, JournalUnavailable, AnalyticsError, OSError) as exc:
        print(f"oms serve: {exc}", file=sys.stderr)
        logs.close()
        return 1
    tune_process()
    for line in app.describe():
        print(line)
    print(f"log       {args.log} (JSON lines, {args.log_level} and above)")
    _until_signal()  # handlers installed after start: ray.init replaces the driver's SIGTERM handler
    app.stop()
    logs.close()  # after the stop: the shutdown's cancels are logged too
    print("stopped", flush=True)
    return 0


def _config_to_serve(given: str | None, name: str, command: str) -> str | None:
    """The configuration a serving command runs on: `given`, else the default (`oms.apps.paths.serving_config`,
    which may first write the packaged defaults to ./configs and says so). None, after saying why on stderr, when
    the defaults cannot be written."""
    from oms.apps.paths import InitRefused, serving_config

    if given is not None:
        return given
    try:
        path, note = serving_config(name)
    except (InitRefused, OSError) as exc:
        print(f"{command}: no configuration given and the defaults cannot be written to ./configs ({exc}); "
              "pass --config or run `oms init DIR`", file=sys.stderr)  # fmt: skip
        return None
    if note is not None:
        print(f"{command}: {note}; edit them, or pass --config")
    return str(path)


def _init(args: argparse.Namespace) -> int:
    """`oms init DIR`: editable copies of the default configuration."""
    from oms.apps.paths import InitRefused, init_configs

    target = Path(args.dir)
    try:
        written = init_configs(target, force=args.force)
    except InitRefused as exc:
        print(f"oms init: would overwrite {exc} (--force overwrites)", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"oms init: {target}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    for path in written:
        print(f"wrote {path}")
    config = target / "dev.toml"
    print(f"check it: oms config check --config {config}")
    print(f"run it:   oms serve --config {config}   (its files go to {(target / '..' / 'var').resolve()}: the "
          "data_dir keys, relative to the file)")  # fmt: skip
    return 0


class _VersionAction(argparse.Action):
    """`--version`: the package's version and its dependencies' (`oms.apps.version`), computed only when asked."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=kwargs.get("help"))  # type: ignore[arg-type]

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        from oms.apps.version import version_lines

        print("\n".join(version_lines()))
        parser.exit()


def _until_signal() -> None:
    """Block until SIGINT or SIGTERM."""
    from oms.runtime.signals import StopSignal

    stop = StopSignal()
    print("ready (SIGINT or SIGTERM stops)", flush=True)
    stop.wait()


def _exchange_sim(args: argparse.Namespace) -> int:
    from oms.apps.exchange_sim import ExchangeSim
    from oms.core.model.instruments import ConfigError

    config = _config_to_serve(args.config, "exchange.toml", "oms exchange-sim")
    if config is None:
        return 1
    try:
        sim = ExchangeSim.start(config, args.port)
    except (ConfigError, OSError) as exc:
        print(f"oms exchange-sim: {exc}", file=sys.stderr)
        return 1
    members = ", ".join(f"{s.target_comp_id} ({s.begin_string}: {', '.join(s.accounts)})" for s in sim.sessions)
    print(f"venue     {sim.name}: native matching core, {len(sim.instruments)} instruments")
    print(f"fix       port {sim.port}: {members}")
    _until_signal()
    sim.stop()
    print("stopped", flush=True)
    return 0


DEFAULT_CONFIG_HELP = (
    "(default: configs/{name} of the checkout; installed: ./configs/{name}, written from the packaged defaults when "
    "missing)"
)


def build_parser() -> argparse.ArgumentParser:
    from bench.all import AllBenchParams
    from bench.book import BookBenchParams
    from bench.fix import FixBenchParams
    from bench.rest import RestBenchParams
    from bench.risk import RiskBenchParams
    from bench.serve import ServeBenchParams
    from bench.sink import SinkBenchParams
    from oms.apps.audit import add_audit_command
    from oms.apps.config_check import add_config_command
    from oms.apps.demo import add_demo_command
    from oms.apps.operator import add_operator_command
    from oms.apps.paths import work_dir
    from oms.apps.report import add_report_command, add_sql_command

    parser = argparse.ArgumentParser(prog="oms", description="Low-latency order management system with a FIX gateway.")
    parser.add_argument(
        "--version", action=_VersionAction, help="the package's version, then QuickFIX's, Ray's, chDB's, redis-server's"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    serve = commands.add_parser(
        "serve",
        help="run the OMS: Redis journal, account actors on Ray, ClickHouse sink, FIX acceptor; until SIGINT/SIGTERM",
        description="Starts everything the configuration names (a managed redis-server unless a URL is set, a local "
        "Ray cluster unless an address is set, one actor per group of accounts, the ClickHouse sink on embedded "
        "chDB unless a DSN is set, the FIX acceptor, the FIX venues symbols are routed to) and runs until SIGINT "
        "or SIGTERM; then cancels and reports working orders, logs the FIX sessions out and stops.",
    )
    serve.add_argument("--config", help=DEFAULT_CONFIG_HELP.format(name="dev.toml"))
    log = work_dir() / "var" / "log" / "oms.jsonl"
    serve.add_argument("--log", default=str(log), help="JSON lines log (default: var/log/oms.jsonl)")
    serve.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="(default: INFO)"
    )
    serve.set_defaults(func=_serve)

    sim = commands.add_parser(
        "exchange-sim",
        help="run a FIX venue on the native matching core (where the OMS routes over FIX); until SIGINT/SIGTERM",
        description="A FIX acceptor in front of the native matching core, one book per instrument: its members "
        "(the sessions of its settings file) trade with each other. Configure the OMS to route a symbol to it with "
        "[venues] routes and [venues.fix.<NAME>] in the OMS configuration.",
    )
    sim.add_argument("--config", help=DEFAULT_CONFIG_HELP.format(name="exchange.toml"))
    sim.add_argument("--port", type=int, default=None, help="listen here instead of the configured port")
    sim.set_defaults(func=_exchange_sim)

    add_report_command(commands)  # oms report tca|buckets|best-ex|routing
    add_sql_command(commands)  # oms sql "SELECT ..."
    add_demo_command(commands)
    add_audit_command(commands)  # oms audit verify
    add_config_command(commands)  # oms config check
    add_operator_command(commands)  # oms operator kill-switch|halt|reduce|resume|status

    init = commands.add_parser(
        "init",
        help="write editable copies of the default configuration into DIR (then `oms serve --config DIR/dev.toml`)",
        description="Copies every file of the default configuration (dev.toml, instruments, accounts, API keys, the "
        "exchange simulator's, fix/*.cfg) into DIR. Refuses to overwrite a file that exists unless --force. Data "
        "directories in them are relative to the file (../var/...): `oms init configs` in a working directory "
        "lays it out as the checkout is, and `oms serve` there finds ./configs/dev.toml by itself.",
    )
    init.add_argument("dir", metavar="DIR", help="where the files go (created)")
    init.add_argument("--force", action="store_true", help="overwrite files that exist")
    init.set_defaults(func=_init)

    bench = commands.add_parser("bench", help="run a benchmark and write bench/results/<name>.json")
    benches = bench.add_subparsers(dest="bench", metavar="BENCHMARK", required=True)
    for name, params_type, help_text, description in (
        (
            "serve",
            ServeBenchParams,
            "the deployed OMS: `oms serve` (default config) under open-loop FIX load vs bare and durable-bare QuickFIX",
            "Starts `oms serve` with the default configuration (Redis appendfsync always, Ray actors, sink, algos) "
            "and drives it with NewOrderSingles and cancels from raw FIX sessions at fixed offered rates (1 and 4 "
            "sessions; with --mix cross, resting sells and buys that trade with them instead), each answer timed "
            "from its due time; then the same against a bare QuickFIX acceptor and a "
            "durable bare one (one fsync'd Redis XADD per message). Reports p50/p99/p99.9/max per rate, the highest "
            "rate sustained with p99 < 10 ms, and CPU per message of each server's process tree.",
        ),
        (
            "book",
            BookBenchParams,
            "matching engine: native vs reference, batch throughput and single-call latency",
            "Mixed add/cancel/replace/marketable workload through the native matching engine, with the pure-Python "
            "reference engine as the same-run baseline. Fails if the two engines disagree.",
        ),
        (
            "risk",
            RiskBenchParams,
            "pre-trade risk: in-process check, reserved mode, strict Ray actor round trip and throughput, bare Ray",
            "AccountState decisions timed in process; the same checks through AccountShard actors journaling to a "
            "managed redis-server, one order per synchronous call and batched with calls in flight; a bare Ray actor "
            "call as the same-run baseline. Fails if any decision, journal or state disagrees with a replica.",
        ),
        (
            "fix",
            FixBenchParams,
            "FIX gateway: NOS->ER(New) and NOS->ER(Fill) latency, pipelined orders/s, bare QuickFIX and raw TCP",
            "A QuickFIX FIX 4.4 initiator in this process sends orders to the OMS's FIX gateway in another process, "
            "then to a bare QuickFIX acceptor (the same-run baseline); a raw TCP ping-pong gives the floor. Fails if "
            "any order is not acknowledged exactly once, or filled as it should be.",
        ),
        (
            "rest",
            RestBenchParams,
            "REST API: POST /v1/orders -> 201 latency and orders/s over loopback",
            "An ApiServer (uvicorn, uvloop) in its own process over the in-process core; this process sends orders "
            "over keep-alive HTTP connections, one at a time (latency) and over several at once (orders/s). Fails if "
            "any order is not acknowledged exactly once or the server did not book what was sent.",
        ),
        (
            "sink",
            SinkBenchParams,
            "ClickHouse sink: fills/s from the Redis journal into embedded chDB, fill-to-visible delay",
            "Journals fills into a managed redis-server, drains them through the sink's consumer group into an "
            "embedded chDB (fills/s), then measures the delay from a fill's journal append to its insert while a "
            "producer journals at a steady rate. Fails if ClickHouse does not hold every fill exactly once.",
        ),
        (
            "all",
            AllBenchParams,
            "every benchmark in turn, then REPORT.md (each figure beside its same-run baseline) and latency plots",
            "Runs book, risk, fix, sink and rest in turn with a progress bar on stderr (each writes its own JSON), "
            "then writes REPORT.md (one table: every figure beside its same-run baseline and the ratio; the machine) "
            "and an HDR percentile plot of each benchmark's latency (<name>_latency.png). --scale 0.01 is a quick "
            "run of about a minute. A benchmark that fails is reported with its error, the others still run, and "
            "the exit code is 1.",
        ),
    ):
        sub = benches.add_parser(name, help=help_text, description=description)
        _add_params(sub, params_type)
        goes = "the JSON files, plots and REPORT.md go" if name == "all" else f"{name}.json goes"
        sub.add_argument("--out-dir", default="bench/results", help=f"where {goes} (default: bench/results)")
        sub.set_defaults(func=_bench, params_type=params_type)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `oms` command line; returns the process exit code."""
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
