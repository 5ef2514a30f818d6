"""`oms demo`: the whole OMS on embedded defaults, an exchange simulator with synthetic market flow, and a scripted
trading day over FIX and REST; then the accounts' positions and P&L, the TCA summary and the best-execution table
from ClickHouse, and a latency histogram.

Everything runs for real: a managed `redis-server`, a local Ray cluster with the account actors, the ClickHouse sink
on embedded chDB, the FIX acceptor and the REST API of `oms serve` (in this process), and `oms exchange-sim` (its own
process) that MSFT is routed to. Two market makers make the market: `MAKER`, a member of the simulator quoting MSFT
over FIX 4.4, and account MM1 quoting AAPL on the internal book over REST. Each step of the script waits for the
answer it expects and prints what came back; any other answer stops the demo with the step's name and exit code 1.
A run keeps its files (configs, journal, ClickHouse store, FIX logs, the PNG) in one directory, recreated each run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

from oms.apps.demo.configs import DemoParams, exchange_sim, write_configs
from oms.apps.demo.day import TradingDay
from oms.apps.demo.results import analytics_summary, audit
from oms.apps.demo.steps import DemoFailed, step
from oms.apps.serve import OmsApp, tune_process
from oms.runtime.logs import configure_logging

__all__ = ["add_demo_command", "run_demo"]


def run_demo(params: DemoParams) -> int:
    """Run the demo; 0 when every step got the answer it expects, 1 (the failed step named on stderr) otherwise."""
    from oms.core.model.instruments import ConfigError
    from oms.infra.clickhouse.clickhouse import AnalyticsError
    from oms.infra.redis.server import JournalUnavailable

    start_ns = time.time_ns()
    run = params.run_dir.resolve()
    params = DemoParams(**{**params.__dict__, "run_dir": run})
    try:
        if run.exists():
            shutil.rmtree(run)
        run.mkdir(parents=True)
        print(f"oms demo: every part on embedded defaults; this run's files are in {run}")
        os.umask(0o077)  # as `oms serve` does: every file of the run readable by its user only
        oms_config, exchange_config, ports = write_configs(params)
        print("\n== start: oms exchange-sim (its own process), then the OMS")
        logs = configure_logging(run / "log" / "oms.jsonl")
        with logs, exchange_sim(exchange_config, run / "exchange-sim.log"):
            app = OmsApp.start(oms_config, with_fix=True, with_analytics=True, with_api=True)
            tune_process()  # as `oms serve` does
            try:
                for line in app.describe():
                    print(f"  {line}")
                day = TradingDay(app, ports, params)
                day.run()
                audit(app.redis_url)
            finally:
                print("\n== stop: working orders canceled, the journal committed to ClickHouse")
                app.stop()
        analytics_summary(run, start_ns)
        with step("latency histogram"):
            from bench.plots import plot_latency

            png = run / "latency.png"
            plot_latency(
                day.ack_latency,
                png,
                "oms demo: FIX 4.2 latency, timed from when each request was due",
                label="NewOrderSingle -> New",
                baseline=day.cancel_latency,
                baseline_label="cancel -> Canceled",
                others=[("REST POST /v1/orders -> 201 (MM1 quotes)", day.aapl.latency)],
            )
            print(f"  wrote {png}")
    except (DemoFailed, ConfigError, JournalUnavailable, AnalyticsError, OSError) as exc:
        print(f"oms demo: FAILED: {exc}", file=sys.stderr)
        return 1
    print(
        f"\noms demo: done in {(time.time_ns() - start_ns) / 1e9:.0f} s; every report of this run: "
        f"oms report tca|tca-parents|buckets|best-ex|routing --config {run / 'oms.toml'}; any question: "
        f"oms sql --config {run / 'oms.toml'} \"SELECT ...\"; the desk page ({day.api}/desk/, key "
        f"admin-dev-secret) is served while `oms demo --hold SECONDS` holds or `oms serve` runs"
    )
    return 0


def add_demo_command(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register `oms demo`."""
    d = DemoParams()
    demo = commands.add_parser(
        "demo",
        help="start everything on embedded defaults plus an exchange simulator, run a scripted trading day over FIX "
        "and REST, print positions, P&L, TCA and best execution; exit 0 when every step worked",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument("--config", type=Path, default=d.config, help="(default: configs/dev.toml)")
    demo.add_argument(
        "--exchange-config", type=Path, default=d.exchange_config, help="(default: configs/exchange.toml)"
    )
    demo.add_argument("--run-dir", type=Path, default=d.run_dir, help="where the run's files go (default: var/demo)")
    demo.add_argument("--hold", type=float, default=d.hold_s, dest="hold_s", metavar="SECONDS",
                      help="keep serving this long after the script, e.g. to curl /metrics (default: 0)")  # fmt: skip
    demo.add_argument("--seed", type=int, default=d.seed, help="of the market makers' random walks (default: 7)")
    demo.add_argument("--twap-seconds", type=float, default=d.twap_s, dest="twap_s", help="(default: 16)")
    demo.add_argument("--probe-orders", type=int, default=d.probe_orders, help="(default: 150)")
    demo.set_defaults(
        func=lambda args: run_demo(
            DemoParams(
                args.config, args.exchange_config, args.run_dir, args.hold_s, args.seed, args.twap_s, args.probe_orders
            )
        )
    )
