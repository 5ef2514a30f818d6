"""Starting and stopping the OMS core from its configuration.

`OmsApp.start` loads and validates every configuration file first, then starts, in order: Redis (managed, or the
configured URL), Ray (local, or the configured cluster), the account actors, the OrderManager with its venues and
its Sequencer (the lock and report fan-out every adapter shares), (when asked) the ClickHouse sink and the market
tape, the algo engine (parents recovered from their journal, schedules on a timer thread), (when asked) the FIX
acceptor, then every venue through the Venue port (each built by its kind in `oms.apps.venues`). Each start takes
the next number of the Redis counter `oms:generation`, which gives it its own OrderID and ExecID ranges
(`id_bases`).
Anything that fails stops what was already started and raises an error whose message names what is wrong, so
nothing is left half-started. `stop` undoes `start` in reverse order and may be called more than once.
"""

from __future__ import annotations

import gc
import logging
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from fix_gateway.door import DoorProcess, loopback_only
from fix_gateway.settings import FixSettings, SessionSpec, load_sessions
from oms.adapters.api.settings import ApiSettings
from oms.apps.paths import packaged_configs
from oms.apps.venues import INTERNAL, VENUE_KINDS, VenueSettings, feed_market_data
from oms.core.accounts import AccountEvent
from oms.core.engine import OrderManager, Venue
from oms.core.model.enums import CancelReason
from oms.core.model.instruments import ConfigError, InstrumentRegistry, read_toml
from oms.core.model.messages import Message, OrderCanceled
from oms.core.orders import OrderView
from oms.core.venues.internal import InternalVenue
from oms.infra.clickhouse.settings import AnalyticsSettings
from oms.infra.ray.actors import RayAllowanceGate, ShardConfig, account_actor_class, build_gate
from oms.infra.ray.runtime import RaySettings, start_ray, stop_ray
from oms.infra.redis.fixmarks import RedisInboundMarks
from oms.infra.redis.history import order_history
from oms.infra.redis.records import RecordLog
from oms.infra.redis.reportlog import ReportLog
from oms.infra.redis.server import ManagedRedis, RedisSettings, connect, make_client
from oms.runtime.schedule import ScheduleSettings, next_close
from oms.runtime.sequencer import Sequencer
from risk.limits import RiskConfig, load_risk_config
from risk.throttle import SessionThrottle

if TYPE_CHECKING:
    from fix_gateway.gateway import FixGateway
    from oms.adapters.algos.engine import AlgoEngine
    from oms.adapters.api.server import ApiServer
    from oms.apps.monitoring import AppMetrics
    from oms.core.algos.profiles import ProfileSource
    from oms.core.reserved import LocalShard
    from oms.infra.clickhouse.service import SinkProcess
    from oms.infra.clickhouse.tape import MarketFeed, TapeWriter

log = logging.getLogger(__name__)

DEFAULT_CONFIG = packaged_configs() / "dev.toml"  # the checkout's configs/ when run from one (oms.apps.paths)
ALGO_TIMER_S = 0.5  # how often due algo slices are looked for
STOP_CANCEL_S = 5.0  # how long a stop waits for venues to confirm the cancels of their working orders
REPORT_FLUSH_S = 0.05  # how long a reserved decision may wait for the next order before it is reported
REDIS_WATCH_S = 0.2  # how often the managed Redis is checked for life
READY_PROBE_S = 1.0  # how long each readiness probe (Redis, the actors) may take before it counts as failed


def _log_settle_error(exc: BaseException) -> None:
    log.error("sending post-trade events to the account actors failed", exc_info=exc)


class OmsConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The whole configuration file (see `configs/dev.toml`)."""

    instruments: str = "instruments.toml"
    accounts: str = "accounts.toml"
    redis: RedisSettings = RedisSettings()
    ray: RaySettings = RaySettings()
    venues: VenueSettings = VenueSettings()
    fix: FixSettings = FixSettings()
    analytics: AnalyticsSettings = AnalyticsSettings()
    api: ApiSettings = ApiSettings()
    schedule: ScheduleSettings = ScheduleSettings()


class LoadedConfig(msgspec.Struct, frozen=True):
    """A validated configuration with its files resolved and parsed."""

    path: Path
    config: OmsConfig
    instruments_path: Path
    accounts_path: Path
    instruments: InstrumentRegistry
    risk: RiskConfig
    fix_sessions: list[SessionSpec]


def load_config(path: str | PathLike[str] = DEFAULT_CONFIG) -> LoadedConfig:
    """Read and validate `path` and the files it names; raises ConfigError naming the file and the field."""
    path = Path(path)
    try:
        config = msgspec.convert(read_toml(path), OmsConfig)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    base = path.parent
    if config.redis.url is None and not Path(config.redis.data_dir).is_absolute():
        config = msgspec.structs.replace(
            config, redis=msgspec.structs.replace(config.redis, data_dir=str(base / config.redis.data_dir))
        )
    config = msgspec.structs.replace(
        config,
        fix=msgspec.structs.replace(
            config.fix, settings=str(base / config.fix.settings), data_dir=str(base / config.fix.data_dir)
        ),
    )
    config = msgspec.structs.replace(
        config,
        analytics=config.analytics.resolved(base),
        api=msgspec.structs.replace(config.api, keys=str(base / config.api.keys)),
    )
    instruments_path, accounts_path = base / config.instruments, base / config.accounts
    instruments = InstrumentRegistry.load(instruments_path)
    risk = load_risk_config(accounts_path, instruments)
    unknown = sorted({*config.venues.routes} - {i.symbol for i in instruments})
    if unknown:
        raise ConfigError(f"{path}: venues.routes: unknown symbol {unknown[0]!r}")
    config = msgspec.structs.replace(config, venues=config.venues.resolved(path))
    try:
        config.schedule.zone()
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    fix_sessions = load_sessions(config.fix.settings, risk.accounts)
    config.fix.door(fix_sessions, 0)  # raises ConfigError for a bad allow list or TLS key
    return LoadedConfig(path, config, instruments_path, accounts_path, instruments, risk, fix_sessions)


def api_profiles(settings: ApiSettings) -> ProfileSource | None:
    """Where the API's VWAP `history` profiles come from: ClickHouse at `settings.profile_dsn`, or none."""
    if not settings.profile_dsn:
        return None
    from oms.infra.clickhouse.profile import ClickHouseProfiles

    return ClickHouseProfiles(
        settings.profile_dsn, settings.profile_database, settings.profile_lookback_days, settings.profile_min_days
    )


#: a thread that has work (the sequencer, the committer, a reader, a session's sender) waits for the GIL at most this
#: long while another runs Python; CPython's default is 5 ms
SWITCH_INTERVAL_S = 0.0002
#: collections of generation 0 after this many allocations, of 1 and 2 after this many of the younger one: the order
#: path allocates short-lived messages (freed by reference counting), and a pass over the old generation of a large
#: heap stalls every session for tens of milliseconds
GC_THRESHOLDS = (50_000, 20, 100)


def tune_process() -> None:
    """Tune this process for the order path once the app has started: the GIL's switch interval, and the garbage
    collector (what start-up built is frozen out of its way; collections come less often)."""
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


class OmsApp:
    """The running core: journal, account actors, engine and venues."""

    def __init__(self, loaded: LoadedConfig) -> None:
        self.loaded = loaded
        self.redis_url = ""
        self.engine: OrderManager | None = None
        self.gateway: FixGateway | None = None
        self.door: DoorProcess | None = None
        self._fix_marks: RedisInboundMarks | None = None
        # the order events the start replayed, until the FIX gateway has sent what it owes and the API has its times
        self._replayed: list[tuple[Message, OrderView]] = []
        self.venues: dict[str, Venue] = {}
        self.book: InternalVenue | None = None  # the INTERNAL venue, whose books the market tape reads
        self.host: Sequencer | None = None
        self.gate: RayAllowanceGate | None = None
        self.algos: AlgoEngine | None = None
        self.records: RecordLog | None = None
        self.api: ApiServer | None = None
        self.metrics: AppMetrics | None = None  # the state gauges /metrics shows beside the hot path
        self._by_account: dict[str, object] = {}
        self._timer: threading.Thread | None = None
        self._timer_stop = threading.Event()
        self.sink: SinkProcess | None = None
        self.market_feed: MarketFeed | None = None
        self.venue_tape: TapeWriter | None = None  # external venues' market data onto the tape
        self._fed: list[str] = []  # the venues whose market data goes to the tape
        self.lock = threading.RLock()  # the engine's: held by every adapter while it drives the engine
        self.generation = 0
        self._managed: ManagedRedis | None = None
        self._watchdog: threading.Thread | None = None
        self._watch_done = threading.Event()  # set once the managed Redis is stopped: the watchdog may end
        self._stopping = False
        self._actors: list[object] = []
        self._ray_started = False

    @classmethod
    def start(
        cls,
        path: str | PathLike[str] = DEFAULT_CONFIG,
        with_fix: bool = False,
        with_analytics: bool = False,
        with_api: bool = False,
    ) -> OmsApp:
        """Validate the configuration, then start everything: the FIX acceptor too when `with_fix`, the ClickHouse
        sink (its own process) and the market tape when `with_analytics`, the REST API when `with_api`. On any
        failure stop what started and raise."""
        app = cls(load_config(path))
        # held until the listeners are up: Ray, starting first, picks ports of its own and must not take these
        held = [reserve_port(app.loaded.config.fix.port, "FIX acceptor")] if with_fix else []
        try:
            if with_api:
                held.append(reserve_port(app.loaded.config.api.port, "REST API"))
            app._start()
            if with_analytics:
                app._start_analytics()
            app._start_algos()
            if with_fix:
                app._start_fix()
            if with_api:
                app._start_api()
            app._replayed = []
            app._start_venues()
            app._reconcile()
            app._start_metrics()
        except BaseException:
            app.stop()
            raise
        finally:
            for sock in held:
                sock.close()
        return app

    def describe(self) -> list[str]:
        """What runs and where it listens, a line each."""
        accounts = ", ".join(sorted(self.loaded.risk.accounts))
        lines = [f"redis     {self.redis_url}", f"accounts  {accounts} (Ray actors)"]
        if self.gateway is not None:
            sessions = ", ".join(s.name for s in self.loaded.fix_sessions)
            fix = self.loaded.config.fix
            tls = " (TLS)" if self.door is not None and self.door.settings.tls is not None else ""
            lines.append(f"fix       port {fix.port} on {fix.host}{tls}: {sessions}")
        if self.api is not None:
            lines.append(f"api       {self.api.url} (REST + WebSocket under /v1; keys: {self.loaded.config.api.keys})")
        if self.sink is not None:
            lines.append(f"analytics {self.sink.where} (fills, orders and the tape, from the journal)")
        for name, _, table in self.loaded.config.venues.tables():
            if name in self.venues:
                tape = " (market data to the tape)" if name in self._fed else ""
                lines.append(f"venue     {name}: {table.describe()}{tape}")
        return lines

    def _start(self) -> None:
        cfg = self.loaded.config
        client, self._managed = connect(cfg.redis)
        self.generation = int(client.incr("oms:generation"))
        client.close()
        if self._managed is not None:
            self._watchdog = threading.Thread(target=self._watch_redis, name="redis-watchdog", daemon=True)
            self._watchdog.start()
        self.redis_url = self._managed.url if self._managed is not None else str(cfg.redis.url)
        self._ray_started = start_ray(cfg.ray)  # a cluster this process already joined is not ours to stop
        import ray  # after start_ray: it sets what Ray reads at its first import

        accounts = sorted(self.loaded.risk.accounts)
        host = ShardConfig(
            self.redis_url, str(self.loaded.instruments_path), str(self.loaded.accounts_path), cfg.redis.snapshot_every
        )
        actor_class = account_actor_class()
        by_account: dict[str, object] = {}
        per = cfg.ray.accounts_per_actor
        for i in range(0, len(accounts), per):
            group = accounts[i : i + per]
            name = f"accounts-{i // per}-{uuid.uuid4().hex[:6]}"
            actor = actor_class.options(name=name, namespace=cfg.ray.namespace).remote(group, host)
            self._actors.append(actor)
            by_account.update(dict.fromkeys(group, actor))
        self._by_account = by_account
        ray.get([a.accounts.remote() for a in self._actors])  # every actor has rebuilt its accounts
        first_order_id, exec_base = id_bases(self.generation)
        self.book = InternalVenue(self.loaded.instruments, exec_id_base=exec_base)
        self.venues = build_venues(self.loaded, exec_base, self.book)
        log = ReportLog(make_client(self.redis_url), AccountEvent)  # each local acceptance, before its ack leaves
        # strict or reserved; the reserved acceptances of a batch are written ahead together, when the batch ends
        self.gate = build_gate(by_account, self.loaded.risk, self.loaded.instruments, log, group_commit=True)
        self.engine = OrderManager(
            self.loaded.instruments, self.gate, router(self.loaded, self.venues), first_order_id, ready=False
        )
        self.host = Sequencer(self.engine, self.lock, seal=self.gate.seal, start_write=self.gate.start_write)
        self.gate.wait_written = self.host.wait_committed
        host, gate = self.host, self.gate
        # post-trade events go to their actors as soon as their write-ahead lands, not at the next batch or timer
        gate.settle_ready = lambda: host.post_later(lambda _: gate.flush_written(), _log_settle_error)
        self.records = RecordLog(make_client(self.redis_url))  # refusals and operator actions, no account's
        self.host.subscribe(self.records.on_reports, "records")
        self.host.add_seal(self.records.seal)
        self.host.start()
        reader = make_client(self.redis_url)
        history = self._replayed
        try:  # the orders of every earlier run, as their journals left them
            skipped = self.host.run(
                lambda engine: engine.restore(order_history(reader, accounts), lambda e, v: history.append((e, v)))
            )
        finally:
            reader.close()
        if skipped:
            log.warning("order history: %d journaled events name no order whose acceptance is journaled", skipped)

    def _watch_redis(self) -> None:
        """Start the managed Redis again whenever it dies (until the stop begins). A server this thread started
        lives only as long as this thread (see `oms.infra.redis.server`), so it ends only after the stop has shut
        Redis down."""
        managed = self._managed
        assert managed is not None
        while not self._watch_done.wait(REDIS_WATCH_S):
            if self._stopping:
                continue
            try:
                code = managed.revive()
            except Exception:
                log.exception("the managed redis-server died and did not start again; retrying")
                continue
            if code is not None:
                log.error("the managed redis-server died (exit code %s) and was started again on %s; writes wait "
                          "for it meanwhile and then resume", code, managed.url)  # fmt: skip

    def _reconcile(self) -> None:
        """Settle what the last run left working (`OrderManager.recover`): the internal book's orders are canceled
        (reason RESTART), journaled and reported; an external venue's stay working, its again. Then orders are
        taken."""
        assert self.host is not None and self.engine is not None
        working = len(self.engine.working())
        events = self.host.run(lambda engine: engine.recover(time.time_ns()))
        canceled = sum(1 for e in events if isinstance(e, OrderCanceled) and e.reason is CancelReason.RESTART)
        log.info("reconciled: %d orders known from the journal, %d working at the last stop: %d canceled (restart), "
                 "%d back at their venue", len(self.engine.orders), working, canceled, working - canceled)  # fmt: skip

    def readiness(self) -> dict[str, str]:
        """What `/readyz` reports, each check "ok" or why not: the core's own (reconciled, order entry open, the
        journal's writes landing), Redis answering, every account actor answering, the ClickHouse sink running, every
        routed venue logged on; `fix_sessions` says how many clients are logged on (never a reason to be unready)."""
        host = self.host
        if host is None:
            return {"started": "stopped"}
        checks = host.readiness()
        checks["redis"] = _probe(self._redis_answers)
        checks["accounts"] = _probe(self._actors_answer)
        if self.sink is not None:
            checks["sink"] = "ok" if self.sink.running else "the ClickHouse sink process is not running"
        for name, venue in self.venues.items():
            connected = getattr(venue, "connected", True)
            checks[f"venue {name}"] = "ok" if connected else "not logged on (orders routed to it are rejected)"
        if self.door is not None:
            checks["fix_door"] = "ok" if self.door.running else "the FIX front door process is not running"
        if self.gateway is not None:
            on, total = self.gateway.logged_on()
            checks["fix_sessions"] = "ok" if on == total else f"ok ({on} of {total} logged on)"
        return checks

    def _redis_answers(self) -> None:
        client = make_client(self.redis_url, READY_PROBE_S)
        try:
            client.ping()
        finally:
            client.close()

    def _actors_answer(self) -> None:
        import ray

        ray.get([actor.accounts.remote() for actor in self._actors], timeout=READY_PROBE_S)

    def _close_order_entry(self, deadline_s: float = STOP_CANCEL_S) -> None:
        """Refuse new orders from now on and withdraw every working order; wait (up to `deadline_s`) for venues that
        answer later to confirm. Orders still working then are logged one by one with their venue."""
        if self.host is None or self.engine is None or self.engine.closed:
            return
        self.host.run(lambda engine: engine.close(time.time_ns()))
        deadline = time.monotonic() + deadline_s
        while True:
            with self.lock:
                working = [(o.order_id, o.cl_ord_id, o.account, o.symbol) for o in self.engine.working()]
            if not working or time.monotonic() >= deadline:
                break
            time.sleep(0.01)
        for order_id, cl_ord_id, account, symbol in working:
            log.error("stopping with order %d (%s, account %s) still working at %s: its venue did not confirm the "
                      "cancel", order_id, cl_ord_id, account, self.loaded.config.venues.venue_of(symbol))  # fmt: skip

    def _start_analytics(self) -> None:
        from oms.infra.clickhouse.service import SinkProcess
        from oms.infra.clickhouse.tape import MarketFeed, Tape, TapeWriter

        store = self.loaded.path.parent / self.loaded.config.analytics.data_dir
        log_path = store.parent / "log" / "analytics-sink.log"  # beside the embedded store: var/log
        self.sink = SinkProcess(self.loaded.path, self.redis_url, log_path).start()
        assert self.book is not None
        cfg = self.loaded.config.venues
        symbols = [i.symbol for i in self.loaded.instruments if cfg.venue_of(i.symbol) == INTERNAL]
        feed = MarketFeed(Tape(make_client(self.redis_url)), self.book, self.loaded.instruments, symbols)
        assert self.host is not None
        self.host.subscribe(lambda reports: feed.on_events([event for event, _ in reports]))
        self.market_feed = feed
        writer = TapeWriter(Tape(make_client(self.redis_url)))  # external venues' quotes and prints
        self._fed = feed_market_data(self.venues, cfg, self.loaded.instruments, writer)
        if self._fed:
            self.venue_tape = writer
        else:
            writer.stop()

    def _start_algos(self) -> None:
        """The algo engine over the host: parents journaled to Redis and recovered, schedules on a timer thread."""
        from oms.adapters.algos.engine import AlgoEngine
        from oms.infra.redis.algo_store import RedisStore

        assert self.host is not None
        self.algos = AlgoEngine(self.host, self.loaded.instruments, store=RedisStore(make_client(self.redis_url)))
        self.algos.recover()
        self._timer_stop.clear()
        self._timer = threading.Thread(target=self._run_timers, name="algo-timer", daemon=True)
        self._timer.start()

    def _run_timers(self) -> None:
        """Every REPORT_FLUSH_S: queued reserved reports to the actors, GTD orders whose time has come expired, DAY
        orders expired at the day's close; due algo slices every ALGO_TIMER_S. Each runs in the core's sequence."""
        assert self.algos is not None and self.host is not None and self.engine is not None
        next_algo = time.monotonic() + ALGO_TIMER_S
        gate, host, engine = self.gate, self.host, self.engine
        assert gate is not None
        schedule = self.loaded.config.schedule
        close = next_close(schedule, time.time_ns())
        while not self._timer_stop.wait(REPORT_FLUSH_S):
            host.run(lambda _: gate.flush_written())  # reserved decisions reach their actors while idle too
            now = time.time_ns()
            due = engine.next_expiry()
            if due is not None and due <= now:
                host.run(lambda e, now=now: e.expire_due(now))  # type: ignore[misc]
            if now >= close:
                host.run(lambda e, now=now: e.end_of_day(now))  # type: ignore[misc]
                close = next_close(schedule, now)
            if time.monotonic() >= next_algo:
                next_algo += ALGO_TIMER_S
                self.algos.on_timer()

    def _start_api(self) -> None:
        from oms.adapters.api.accounts import SummaryAccountView
        from oms.adapters.api.server import ApiServer
        from oms.infra.ray.actors import summary_reader
        from oms.infra.redis.idempotency import RedisIdempotency
        from oms.infra.redis.nonces import RedisNonces

        assert self.host is not None and self.records is not None
        settings = self.loaded.config.api
        view = SummaryAccountView(sorted(self._by_account), summary_reader(self._by_account), self.loaded.instruments)
        client = make_client(self.redis_url)  # a restart forgets no nonce and no Idempotency-Key
        nonces = RedisNonces(client, 2 * settings.max_clock_skew_s)
        ttl = settings.idempotency_ttl_s
        idempotency = RedisIdempotency(client, "order", ttl), RedisIdempotency(client, "parent", ttl)
        api = ApiServer(
            self.host, view, settings, self.loaded.instruments, algos=self.algos, profiles=api_profiles(settings),
            nonces=nonces, idempotency=idempotency, readiness=self.readiness, record=self.records.add,
        )  # fmt: skip
        for event, order in self._replayed:  # earlier runs' orders keep the times they had
            api.desk.replayed(event, order)
        self.api = api.start()

    def _start_metrics(self) -> None:
        """The gauges of every part that runs (`oms.apps.monitoring`), read at each scrape of `/metrics`."""
        from oms.apps.monitoring import AppMetrics

        assert self.host is not None
        sessions = self.loaded.fix_sessions if self.gateway is not None else None
        self.metrics = AppMetrics(
            self.host, self.redis_url, self.venues, self._by_account, sessions, self.door, self.sink,
            self.loaded.config.analytics.group,
        ).register()  # fmt: skip

    def _start_venues(self) -> None:
        """Start every venue through the Venue port (an external one connects, and keeps reconnecting on its own);
        what they answer later reaches the core through the sequencer, and the FIX sessions when the acceptor runs."""
        assert self.host is not None
        for venue in self.venues.values():
            venue.start(self.host.apply_venue)

    def _start_fix(self) -> None:
        from fix_gateway.gateway import FixGateway

        assert self.engine is not None
        fix = self.loaded.config.fix
        assert self.host is not None
        limits = self.loaded.risk.session
        inner = reserve_port(0, "FIX acceptor behind the door")  # QuickFIX binds every address: see loopback_only
        port = inner.getsockname()[1]
        door = DoorProcess(fix.door(self.loaded.fix_sessions, port), Path(fix.data_dir) / "door.log")
        self._fix_marks = RedisInboundMarks(make_client(self.redis_url))
        gateway = FixGateway(
            self.host, self.loaded.instruments, self.loaded.fix_sessions, port, fix.data_dir, self.generation,
            throttle=SessionThrottle(limits.messages_per_window, limits.window_ns), behind_door=True,
            marks=self._fix_marks,
        )  # fmt: skip
        try:
            gateway.start()
        finally:
            inner.close()
        self.gateway = gateway
        gateway.send_owed(self._replayed)  # before the door opens: no session is logged on
        loopback_only(port)
        self.door = door.start()

    def stop(self) -> None:
        """Stop taking new orders on every channel and cancel every working order (FIX, REST, algo children, at any
        venue), journaled and reported; then stop the REST API, the algo engine, the FIX acceptor, the venues, the
        market tape, the ClickHouse sink (it commits what it holds), the actors, Ray (if this app started it) and the
        managed Redis. Safe to call twice."""
        self._stopping = True  # the managed Redis is not started again from here on
        if self.metrics is not None:
            self.metrics.close()
            self.metrics = None
        self._close_order_entry()
        if self.api is not None:
            self.api.stop()
            self.api = None
        if self._timer is not None:  # parents stay journaled and resume at the next start
            self._timer_stop.set()
            self._timer.join()
            self._timer = None
        if self.algos is not None:
            self.algos.close()
            self.algos = None
        if self.gateway is not None:
            self.gateway.stop()
            self.gateway = None
        if self._fix_marks is not None:
            self._fix_marks.close()
            self._fix_marks = None
        if self.door is not None:  # after the gateway's last reports and Logouts: they go out through it
            self.door.stop()
            self.door = None
        for venue in self.venues.values():
            venue.stop()
        self.venues, self.book = {}, None
        if self.host is not None:  # what is queued runs and is committed; from here on steps run inline
            self.host.stop()
        if self.records is not None:  # after the sequencer's last batch: nothing is sealed with it any more
            if self.host is not None:
                self.host.unsubscribe(self.records.on_reports)
                self.host.remove_seal(self.records.seal)
            self.records.close()
            self.records = None
        if self.gate is not None:  # allowances back, every queued report journaled: before the sink drains
            gate, self.gate = self.gate, None
            try:
                with self.lock:
                    gate.close()
            except Exception:  # an actor gone: the rest must still stop; what it lost is in the log
                log.exception("returning the reserved allowances failed; queued decisions may be unjournaled")
        if self.market_feed is not None:
            self.market_feed.stop()
            self.market_feed = None
        if self.venue_tape is not None:  # after the venues: their feeds have handed it everything
            self.venue_tape.stop()
            self.venue_tape = None
        if self.sink is not None:  # after everything that journals: it commits what it holds as it stops
            self.sink.stop()
            self.sink = None
        if self._actors:
            import ray

            for actor in self._actors:
                ray.kill(actor, no_restart=True)
            self._actors = []
        if self._ray_started:
            stop_ray()
            self._ray_started = False
        if self._managed is not None:
            self._managed.stop()
            self._managed = None
        self._watch_done.set()
        if self._watchdog is not None:
            self._watchdog.join()
            self._watchdog = None
        self.engine = None
        self.host = None


def _probe(call: Callable[[], object]) -> str:
    """ "ok" when `call()` returns, else what it raised, in one line."""
    try:
        call()
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'no answer'}"[:200]
    return "ok"


def check_port_free(port: int, what: str) -> None:
    """Raise OSError naming `what` and `port` when something already listens there."""
    reserve_port(port, what).close()


def reserve_port(port: int, what: str) -> socket.socket:
    """A socket bound to `port` (SO_REUSEADDR, not listening): while it is open the system gives the port to no one
    asking for any free port, and a listener with SO_REUSEADDR (QuickFIX's, uvicorn's) can still take it. Raises
    OSError naming `what` and `port` when something already listens there."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("0.0.0.0", port))
    except OSError as exc:
        s.close()
        raise OSError(f"{what}: port {port} is busy ({exc.strerror})") from None
    return s


ORDER_IDS_PER_START = 10**9
EXEC_IDS_PER_START = 10**10


def id_bases(generation: int) -> tuple[int, int]:
    """(first order id, execution id base) of start number `generation`: each start has its own id ranges, so
    OrderIDs and ExecIDs stay unique across restarts."""
    return generation * ORDER_IDS_PER_START + 1, generation * EXEC_IDS_PER_START


def local_accounts(loaded: LoadedConfig) -> LocalShard:
    """Every configured account's state in this process, without a journal."""
    from oms.core.accounts import AccountState
    from oms.core.reserved import LocalShard

    return LocalShard(
        AccountState(a, loaded.risk.limits_for(a), loaded.instruments) for a in sorted(loaded.risk.accounts)
    )


def local_engine(
    loaded: LoadedConfig,
    generation: int = 1,
    venues: dict[str, Venue] | None = None,
    accounts: LocalShard | None = None,
) -> OrderManager:
    """An OrderManager whose accounts live in this process (`accounts`, or `local_accounts`' when None), without a
    journal: every account in reserved mode, routing to `venues` (`build_venues`' when None; the caller starts and
    stops them, `Venue.start` and `Venue.stop`). For benchmarks and tests of the adapters; `OmsApp` is the journaled,
    actor-backed core."""
    from oms.core.reserved import AllowanceGate

    host = local_accounts(loaded) if accounts is None else accounts
    first_order_id, exec_base = id_bases(generation)
    gate = AllowanceGate(host, loaded.instruments, sorted(loaded.risk.accounts))
    venues = build_venues(loaded, exec_base) if venues is None else venues
    return OrderManager(loaded.instruments, gate, router(loaded, venues), first_order_id)


EXEC_IDS_PER_VENUE = 10**9


def build_venues(loaded: LoadedConfig, exec_id_base: int, internal: InternalVenue | None = None) -> dict[str, Venue]:
    """The venues by name, not started: INTERNAL (`internal`, or a new one when None) and every venue some symbol is
    routed to, built by its kind in `VENUE_KINDS`; each with its own execution id range inside this start's."""
    if internal is None:
        internal = InternalVenue(loaded.instruments, exec_id_base=exec_id_base)
    venues: dict[str, Venue] = {INTERNAL: internal}
    for n, (name, kind, table) in enumerate(loaded.config.venues.routed(), 1):
        venues[name] = VENUE_KINDS[kind].build(name, loaded.instruments, table, exec_id_base + n * EXEC_IDS_PER_VENUE)
    return venues


def router(loaded: LoadedConfig, venues: dict[str, Venue]) -> Callable[[str], Venue]:
    """`venue_for(symbol)` of the configured routes over `venues`."""
    cfg = loaded.config.venues
    table = {i.symbol: venues[cfg.venue_of(i.symbol)] for i in loaded.instruments}
    return table.__getitem__
