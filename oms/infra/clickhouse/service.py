"""Running the sink: `SinkService` (a thread), `python -m oms.infra.clickhouse.service` (a process) and `SinkProcess`
(that process, started and stopped by `oms serve`)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path

import msgspec
import redis

from oms.core.model.instruments import ConfigError
from oms.infra.children import die_with_parent
from oms.infra.clickhouse.clickhouse import AnalyticsError, Client, apply_schema, connect, describe
from oms.infra.clickhouse.query import QueryServer, socket_path
from oms.infra.clickhouse.rows import Scale, scales
from oms.infra.clickhouse.settings import AnalyticsSettings, load_analytics_settings, load_config_instruments
from oms.infra.clickhouse.sink import Batch, FlushReport, Sink
from oms.infra.redis.server import make_client
from oms.runtime.signals import StopSignal

__all__ = ["SinkProcess", "SinkService", "main"]

log = logging.getLogger("oms.infra.clickhouse.sink")
# the package's default configuration (oms/configs, the checkout's configs/ when run from one); see oms.apps.paths
DEFAULT_CONFIG = Path(str(resources.files("oms").joinpath("configs", "dev.toml"))).resolve()

ORPHAN_STOP_S = 5.0  # how long an orphaned sink waits for its thread before it exits
REDIS_RETRY_S = 0.5  # the wait before the sink reads Redis again after it was out of reach


class SinkService:
    """A `Sink` on a thread of its own, with its own Redis and ClickHouse clients.

    `start()` connects to ClickHouse, applies the schema and starts the thread; it raises `AnalyticsError` (one
    line: ClickHouse unreachable, embedded store in use) and leaves nothing open. On an embedded store it also
    answers read queries from other processes while it holds the store (`oms.infra.clickhouse.query`). `stop()`
    commits what the sink holds, joins the thread and closes the clients; it is idempotent. `error` holds what
    ended the thread early.
    """

    def __init__(
        self,
        settings: AnalyticsSettings,
        redis_url: str,
        scale: dict[str, Scale],
        *,
        prefix: str = "oms",
        after_insert: Callable[[Batch], None] | None = None,
        on_commit: Callable[[FlushReport], None] | None = None,
    ) -> None:
        if settings.dsn is None:
            raise ValueError("AnalyticsSettings.dsn is not resolved: call settings.resolved(config_dir)")
        self.settings = settings
        self.redis_url = redis_url
        self._scale = scale
        self._prefix = prefix
        self._after_insert = after_insert
        self._on_commit = on_commit
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ch: Client | None = None
        self._redis: redis.Redis | None = None
        self._queries: QueryServer | None = None
        self.sink: Sink | None = None
        self.error: BaseException | None = None

    def start(self) -> SinkService:
        assert self.settings.dsn is not None
        self._ch = connect(self.settings.dsn, self.settings.database)
        try:
            apply_schema(self._ch)
            self._redis = make_client(self.redis_url)
            self.sink = Sink(
                self._redis, self._ch, self._scale, self.settings, prefix=self._prefix,
                after_insert=self._after_insert, on_commit=self._on_commit,
            )  # fmt: skip
            path = socket_path(self.settings.dsn)
            if path is not None:
                try:
                    self._queries = QueryServer(self._ch, path).start()
                except OSError as exc:  # e.g. a path over the 107 bytes a Unix socket may have: the sink still runs
                    log.warning("analytics: other processes cannot read the store while it runs: %s: %s", path, exc)
        except BaseException:
            self._close()
            raise
        self._thread = threading.Thread(target=self._run, name="analytics-sink", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 30.0, drain: bool = False) -> None:
        """Stop the thread (it commits what it read); with `drain`, then read and commit everything the streams
        hold (the OMS stopping: nothing more will be journaled)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
        try:
            if drain and self.sink is not None and self.error is None:
                self.sink.drain()
        finally:
            self._close()

    def _run(self) -> None:
        """The sink's loop. Redis out of reach (restarting, stopped) is waited out: the sink goes on from what it
        holds and what its consumer group still has pending when Redis answers again (rows are keyed, so one
        inserted twice is one row). Anything else stops it, in `error`."""
        assert self.sink is not None
        while not self._stop.is_set():
            try:
                self.sink.run(self._stop)
                return
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                log.warning("analytics sink: Redis out of reach (%s); trying again", exc)
                self._stop.wait(REDIS_RETRY_S)
            except BaseException as exc:  # the owner reads `error`; the log says it now
                self.error = exc
                log.exception("analytics sink stopped")
                return

    def _close(self) -> None:
        if self._queries is not None:
            self._queries.stop()
            self._queries = None
        if self._redis is not None:
            self._redis.close()
            self._redis = None
        if self._ch is not None:
            self._ch.close()
            self._ch = None


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m oms.infra.clickhouse.service`: run the sink in this process until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(
        prog="python -m oms.infra.clickhouse.service",
        description="Stream the journal and the tape from Redis into ClickHouse until SIGINT/SIGTERM.",
    )
    parser.add_argument("--config", default=str(DEFAULT_CONFIG), help="OMS config with an [analytics] table")
    parser.add_argument("--redis-url", required=True, help="redis://host:port/db of the journal")
    parser.add_argument("--dsn", help="override [analytics] dsn (chdb:///abs/path or http://host:8123)")
    parser.add_argument("--database", help="override [analytics] database")
    parser.add_argument("--consumer", help="override [analytics] consumer")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    parent = os.getppid()  # the OMS: should it die, even during start-up, this process is an orphan
    try:
        settings = load_analytics_settings(args.config)
        registry = load_config_instruments(args.config)
        overrides = {
            k: v for k, v in (("dsn", args.dsn), ("database", args.database), ("consumer", args.consumer)) if v
        }
        settings = msgspec.structs.replace(settings, **overrides)
        service = SinkService(settings, args.redis_url, scales(registry)).start()
    except (ConfigError, AnalyticsError, OSError) as exc:
        print(f"sink: {exc}", file=sys.stderr)
        return 1
    stop = StopSignal()
    assert settings.dsn is not None
    print(f"sink: {args.redis_url} -> {describe(settings.dsn)} database {settings.database}", flush=True)
    while not stop.wait(0.5):
        if service.error is not None:
            break
    if os.getppid() != parent:  # the OMS died (its death sent the SIGTERM): its Redis may be gone with it
        service.stop(timeout_s=ORPHAN_STOP_S)  # what it holds stays pending in Redis: the next start commits it
        print("sink: the OMS is gone; stopped without draining", file=sys.stderr, flush=True)
        os._exit(0)  # a thread still waiting on a Redis that is gone must not keep an orphan alive
    try:
        service.stop(drain=True)  # stopped by the OMS as it stops: everything journaled so far goes in
    except (AnalyticsError, redis.RedisError) as exc:
        print(f"sink: {exc}", file=sys.stderr)
        return 1
    if service.error is not None:
        print(f"sink: {service.error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())


class SinkProcess:
    """The sink in a process of its own (`python -m oms.infra.clickhouse.service`), as `oms serve` runs it: its Python
    work then never competes for the gateway's GIL."""

    def __init__(self, config_path: str | Path, redis_url: str, log_path: str | Path) -> None:
        """Its log (stderr) goes to `log_path`, appended."""
        self._args = [sys.executable, "-m", "oms.infra.clickhouse.service", "--config", str(config_path),
                      "--redis-url", redis_url]  # fmt: skip
        self.log_path = Path(log_path)
        self._proc: subprocess.Popen[str] | None = None
        self.where = ""

    def start(self, timeout_s: float = 60.0) -> SinkProcess:
        """Start it and wait until it has applied the schema and reads the streams; raises AnalyticsError with
        its one-line complaint when it stops or stays silent instead."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("a") as log_file:
            parent = os.getpid()  # it commits what it holds and stops when the OMS dies, even by SIGKILL
            self._proc = proc = subprocess.Popen(self._args, stdout=subprocess.PIPE, stderr=log_file, text=True,
                                                 preexec_fn=lambda: die_with_parent(parent))  # fmt: skip
        assert proc.stdout is not None
        ready = threading.Event()
        lines: list[str] = []

        def first_line() -> None:
            assert proc.stdout is not None
            lines.append(proc.stdout.readline())
            ready.set()

        threading.Thread(target=first_line, daemon=True).start()
        if not ready.wait(timeout_s) or not lines[0].startswith("sink:"):
            exited = proc.poll() is not None
            self.stop()
            err = self.log_path.read_text().strip().splitlines() if exited else []
            raise AnalyticsError(err[-1] if err else f"the analytics sink did not start within {timeout_s:.0f} s")
        self.where = lines[0].partition("->")[2].strip()  # "<ClickHouse> database <name>"
        return self

    @property
    def running(self) -> bool:
        """True while the sink's process is alive."""
        proc = self._proc
        return proc is not None and proc.poll() is None

    def stop(self, timeout_s: float = 60.0) -> int | None:
        """SIGTERM (it commits what it holds), then SIGKILL after `timeout_s`; its exit code. Safe to call twice."""
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                log.error("analytics sink did not stop within %.0f s: killed", timeout_s)
                proc.kill()
                proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        return proc.returncode
