"""Hot-path metrics of the process, for Prometheus: orders in by channel, rejects by reason, acks, fills by venue,
and how long each order spends in each stage of the hot path.

STAGES
An adapter starts a `StageClock` when an order arrives (gateway in); the OrderManager stamps it when the risk
decision is made and when the venue has done its part (matched by the native book, or sent to a FIX venue);
the adapter stamps it when the answer leaves (the ExecutionReport handed to QuickFIX, the HTTP response). The
clock's stages then go into the histogram `oms_stage_seconds{stage=...}`:

    in_to_risk     gateway in -> risk decided (decode, ClOrdID checks, the risk gate: a Ray round trip in strict mode)
    risk_to_venue  risk decided -> venue done
    venue_to_ack   venue done -> ack out (for a FIX venue this includes the venue's own answer)
    in_to_ack      gateway in -> ack out

and, for a FIX session's answer, `venue_to_ack` in three (the gateway stamps the answer when the sequencer seals
its batch and when the batch's write-ahead is durable, `oms.runtime.sequencer`):

    venue_to_sealed    venue done -> batch sealed (the reports built by every subscriber, the batch's other steps)
    sealed_to_durable  batch sealed -> its write-ahead durable (the hand-over to the committer, any earlier batch's
                       write still running, Redis's round trip and fsync)
    durable_to_ack     durable -> ack out (the hand-over to the session's sender, QuickFIX's send)

A stage is recorded only when both of its ends were stamped: a risk reject has no venue stage, a codec refusal
only `in_to_ack`, a REST answer none of the last three.

COST
The threads that record are the ones carrying orders (QuickFIX's, the REST loop, the engine's callers), so
recording takes no lock: each thread counts into a shard of its own (found through a `threading.local`), and a
scrape sums the shards. Timestamps are `time.perf_counter_ns()`; a stage's bucket is a `bisect` over integer
nanosecond bounds. A timed order costs about 3 µs of Python in all (its clock, four stamps, seven stages recorded
at once when it is acked, its reports counted), where prometheus_client's own `Histogram.observe` costs about as
much per observation and takes a lock. The shard of a thread that ended is folded into the totals at the next
scrape, so counts never go down.

`METRICS` is the process's instance and `REGISTRY` the CollectorRegistry that exposes it (the REST API's
`/metrics` renders it beside its own counters); tests make their own `HotPathMetrics`.

STATE
The rest of what `/metrics` shows is read when Prometheus scrapes, never on the order path: each collector below
calls functions the composition root (`oms.apps.monitoring`) gives it, and turns what they answer into gauges. A
collector is made of parts, each one source (the FIX sessions, the journal, Redis, the sink's lag, the accounts...);
a part whose source raises is logged and counted in `oms_scrape_errors{collector=...}`, its families are left out of
that scrape, and every other family is still exposed. `REGISTRY` also holds prometheus_client's `ProcessCollector`
(`oms_process_*`: CPU seconds, resident memory, open and maximum file descriptors, start time), read from /proc at
each scrape.
"""

from __future__ import annotations

import logging
import threading
import weakref
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Mapping
from time import perf_counter, perf_counter_ns

import msgspec
from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

from oms.core.model.enums import RejectReason, TradingState
from oms.core.model.messages import Message, OrderAccepted, OrderFilled, OrderRejected
from oms.core.orders import OrderView

__all__ = [
    "BUCKETS_NS",
    "CHANNELS",
    "METRICS",
    "REGISTRY",
    "SCRAPE_ERRORS",
    "STAGES",
    "AccountFlags",
    "AccountGauges",
    "FixSessionGauges",
    "HotPathMetrics",
    "JournalGauges",
    "RedisGauges",
    "ScrapeErrors",
    "SinkGauges",
    "Snapshot",
    "StageClock",
    "StateCollector",
    "StreamLag",
    "VenueGauges",
    "render",
]

log = logging.getLogger(__name__)

STAGES = (
    "in_to_risk", "risk_to_venue", "venue_to_ack", "in_to_ack",
    "venue_to_sealed", "sealed_to_durable", "durable_to_ack",
)  # fmt: skip
CHANNELS = ("fix", "rest", "algo")
_US, _MS, _S = 1_000, 1_000_000, 1_000_000_000
#: Upper bounds (inclusive, ns) of the stage histograms' buckets; one more bucket (+Inf) holds the rest. Fine at the
#: bottom: a stage in process takes microseconds, a Ray round trip or a FIX venue's answer milliseconds.
BUCKETS_NS: tuple[int, ...] = (
    *(n * _US for n in (1, 2, 5, 10, 15, 20, 30, 50, 75, 100, 150, 200, 300, 500, 750)),
    *(n * _MS for n in (1, 2, 5, 10, 25, 50, 100, 250, 500)),
    *(n * _S for n in (1, 2, 5, 10)),
)
_REASONS = {r: r.name.lower() for r in RejectReason}


class Snapshot(msgspec.Struct, frozen=True):
    """Totals at one moment. `stage_buckets[stage]` counts per bucket (not cumulative), the last one +Inf."""

    orders_in: dict[str, int]
    rejects: dict[str, int]
    acks: int
    fills: dict[str, int]
    stage_buckets: dict[str, list[int]]
    stage_sums_ns: dict[str, int]
    subscriber_errors: dict[str, int] = {}
    batches: int = 0
    batched_steps: int = 0
    commit_failures: int = 0
    faults: dict[str, int] = {}

    def stage_count(self, stage: str) -> int:
        """How many orders have a recorded `stage`."""
        return sum(self.stage_buckets[stage])


class _Shard:
    """One thread's counts; only that thread writes them."""

    __slots__ = ("__weakref__", "acks", "batched_steps", "batches", "buckets", "commit_failures", "faults", "fills",
                 "orders_in", "rejects", "subscriber_errors", "sums")  # fmt: skip

    def __init__(self) -> None:
        self.orders_in: dict[str, int] = {}
        self.rejects: dict[str, int] = {}
        self.acks = 0
        self.fills: dict[str, int] = {}
        self.subscriber_errors: dict[str, int] = {}
        self.batches = self.batched_steps = self.commit_failures = 0
        self.faults: dict[str, int] = {}
        self.buckets = [[0] * (len(BUCKETS_NS) + 1) for _ in STAGES]
        self.sums = [0] * len(STAGES)

    def add(self, other: _Shard) -> None:
        """Add `other`'s counts (copied first: its thread may be writing them)."""
        for mine, theirs in ((self.orders_in, other.orders_in), (self.rejects, other.rejects),
                             (self.fills, other.fills), (self.subscriber_errors, other.subscriber_errors),
                             (self.faults, other.faults)):  # fmt: skip
            for key, n in theirs.copy().items():
                mine[key] = mine.get(key, 0) + n
        self.acks += other.acks
        self.batches += other.batches
        self.batched_steps += other.batched_steps
        self.commit_failures += other.commit_failures
        for mine_b, theirs_b in zip(self.buckets, other.buckets, strict=True):
            for i, n in enumerate(list(theirs_b)):
                mine_b[i] += n
        for i, n in enumerate(list(other.sums)):
            self.sums[i] += n


class _Owner:
    """Lives in a thread's locals beside its shard: when the thread ends, so does this, which retires the shard."""

    __slots__ = ("__weakref__",)


class HotPathMetrics:
    """Counters and stage histograms of the hot path, recorded per thread without locks; a Prometheus collector."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._lock = threading.Lock()  # shard registration and scrapes only: never taken by a recording call
        self._live: dict[int, tuple[_Shard, weakref.ref[_Owner]]] = {}  # by id(shard)
        self._ended: list[_Shard] = []  # shards whose thread ended, not yet folded into `_retired`
        self._retired = _Shard()

    # -- RECORDING (any thread, no lock) --

    def clock(self, channel: str) -> StageClock:
        """Count an order arriving on `channel` (fix, rest, algo) and start its clock: now is its gateway in."""
        try:
            shard = self._local.shard
        except AttributeError:
            shard = self._register()
        shard.orders_in[channel] = shard.orders_in.get(channel, 0) + 1
        return StageClock(self)

    def order_in(self, channel: str) -> None:
        """Count an order arriving on `channel` without timing it."""
        shard = self._shard()
        shard.orders_in[channel] = shard.orders_in.get(channel, 0) + 1

    def reject(self, reason: RejectReason | str) -> None:
        """Count an order refused before the engine saw it (a FIX codec refusal, a REST validation error); the
        engine's own rejects are counted from its reports (`count_reports`)."""
        label = reason if isinstance(reason, str) else _REASONS[reason]
        shard = self._shard()
        shard.rejects[label] = shard.rejects.get(label, 0) + 1

    def subscriber_failed(self, subscriber: str) -> None:
        """Count a report subscriber (an adapter) that raised while handling one step's reports."""
        shard = self._shard()
        shard.subscriber_errors[subscriber] = shard.subscriber_errors.get(subscriber, 0) + 1

    def batch(self, steps: int) -> None:
        """Count one batch of the sequencer and the steps it took."""
        shard = self._shard()
        shard.batches += 1
        shard.batched_steps += steps

    def fault(self, port: str) -> None:
        """Count a command a port of the core (the risk gate, a venue) broke (`OrderManager.take_faults`)."""
        shard = self._shard()
        shard.faults[port] = shard.faults.get(port, 0) + 1

    def commit_failed(self) -> None:
        """Count a batch's write-ahead that failed (and is retried)."""
        self._shard().commit_failures += 1

    def count_reports(self, reports: Iterable[tuple[Message, OrderView | None]]) -> None:
        """Count the acks, fills (by venue) and rejects (by reason) among one step's reports."""
        shard = self._shard()
        for event, _ in reports:
            kind = type(event)
            if kind is OrderAccepted:
                shard.acks += 1
            elif kind is OrderFilled:
                venue = event.venue  # type: ignore[union-attr]
                shard.fills[venue] = shard.fills.get(venue, 0) + 1
            elif kind is OrderRejected:
                label = _REASONS[event.reason]  # type: ignore[union-attr]
                shard.rejects[label] = shard.rejects.get(label, 0) + 1

    def record(self, clock: StageClock) -> None:
        """Put each stage of `clock` whose two ends are stamped into its histogram."""
        try:
            shard = self._local.shard
        except AttributeError:
            shard = self._register()
        buckets, sums = shard.buckets, shard.sums
        t_in, t_risk, t_venue, t_ack = clock.t_in, clock.t_risk, clock.t_venue, clock.t_ack
        if t_risk:
            d = t_risk - t_in
            buckets[0][bisect_left(BUCKETS_NS, d)] += 1
            sums[0] += d
            if t_venue:
                d = t_venue - t_risk
                buckets[1][bisect_left(BUCKETS_NS, d)] += 1
                sums[1] += d
        if t_ack:
            if t_venue:
                d = t_ack - t_venue
                buckets[2][bisect_left(BUCKETS_NS, d)] += 1
                sums[2] += d
                t_sealed, t_durable = clock.t_sealed, clock.t_durable
                if t_sealed and t_durable:
                    for i, d in ((4, t_sealed - t_venue), (5, t_durable - t_sealed), (6, t_ack - t_durable)):
                        buckets[i][bisect_left(BUCKETS_NS, d)] += 1
                        sums[i] += d
            d = t_ack - t_in
            buckets[3][bisect_left(BUCKETS_NS, d)] += 1
            sums[3] += d

    # -- READING --

    def snapshot(self) -> Snapshot:
        """The totals over every thread, ended ones included."""
        total = _Shard()
        with self._lock:
            while self._ended:
                shard = self._ended.pop()
                self._live.pop(id(shard), None)
                self._retired.add(shard)
            total.add(self._retired)
            shards = [shard for shard, _ in self._live.values()]
        for shard in shards:
            total.add(shard)
        return Snapshot(
            dict(total.orders_in),
            dict(total.rejects),
            total.acks,
            dict(total.fills),
            dict(zip(STAGES, total.buckets, strict=True)),
            dict(zip(STAGES, total.sums, strict=True)),
            dict(total.subscriber_errors),
            total.batches,
            total.batched_steps,
            total.commit_failures,
            dict(total.faults),
        )

    def collect(self) -> Iterator[Metric]:
        """The Prometheus metric families (called by a CollectorRegistry on each scrape)."""
        snap = self.snapshot()
        orders = CounterMetricFamily("oms_orders_in", "orders received, by channel", labels=["channel"])
        for channel in sorted({*CHANNELS, *snap.orders_in}):
            orders.add_metric([channel], snap.orders_in.get(channel, 0))
        yield orders
        rejects = CounterMetricFamily("oms_rejects", "orders rejected, by reason", labels=["reason"])
        for reason, n in sorted(snap.rejects.items()):
            rejects.add_metric([reason], n)
        yield rejects
        yield CounterMetricFamily("oms_acks", "orders accepted (ExecType New)", value=snap.acks)
        fills = CounterMetricFamily("oms_fills", "executions, by venue", labels=["venue"])
        for venue, n in sorted(snap.fills.items()):
            fills.add_metric([venue], n)
        yield fills
        failed = CounterMetricFamily(
            "oms_subscriber_errors", "steps whose reports an adapter failed to handle, by adapter",
            labels=["subscriber"],
        )
        for subscriber, n in sorted(snap.subscriber_errors.items()):
            failed.add_metric([subscriber], n)
        yield failed
        faults = CounterMetricFamily(
            "oms_faults", "commands a port of the core raised on (answered INTERNAL_ERROR), by port", labels=["port"]
        )
        for port, n in sorted(snap.faults.items()):
            faults.add_metric([port], n)
        yield faults
        yield CounterMetricFamily("oms_sequencer_batches", "batches the sequencer ran", value=snap.batches)
        yield CounterMetricFamily(
            "oms_sequencer_steps", "steps the sequencer ran in batches (over oms_sequencer_batches: the mean batch)",
            value=snap.batched_steps,
        )
        yield CounterMetricFamily(
            "oms_commit_failures", "batch write-aheads that failed and were retried", value=snap.commit_failures
        )
        stages = HistogramMetricFamily(
            "oms_stage_seconds",
            "time of each order in each hot-path stage: in_to_risk, risk_to_venue, venue_to_ack, in_to_ack; for FIX "
            "answers venue_to_ack as venue_to_sealed, sealed_to_durable, durable_to_ack",
            labels=["stage"],
        )
        for stage in STAGES:
            counts = snap.stage_buckets[stage]
            cumulative, running = [], 0
            for bound, n in zip((*BUCKETS_NS, None), counts, strict=True):
                running += n
                cumulative.append(("+Inf" if bound is None else floatToGoString(bound / 1e9), running))
            stages.add_metric([stage], cumulative, sum_value=snap.stage_sums_ns[stage] / 1e9)
        yield stages

    # -- INTERNALS --

    def _shard(self) -> _Shard:
        try:
            return self._local.shard  # type: ignore[no-any-return]
        except AttributeError:
            return self._register()

    def _register(self) -> _Shard:
        """A shard for the calling thread, retired when the thread's locals go (at its end)."""
        shard, owner = _Shard(), _Owner()
        ended = self._ended
        ref = weakref.ref(owner, lambda _: ended.append(shard))
        with self._lock:
            self._live[id(shard)] = (shard, ref)
        self._local.shard, self._local.owner = shard, owner
        return shard


class StageClock:
    """One order's perf_counter_ns stamps on the hot path; its stages are recorded once, when the answer goes out
    (`acked`) or when none will (`done`). Stamps are 0 until made."""

    __slots__ = ("_metrics", "t_ack", "t_durable", "t_in", "t_risk", "t_sealed", "t_venue")

    def __init__(self, metrics: HotPathMetrics) -> None:
        self._metrics: HotPathMetrics | None = metrics
        self.t_in = perf_counter_ns()
        self.t_risk = 0
        self.t_venue = 0
        self.t_sealed = 0
        self.t_durable = 0
        self.t_ack = 0

    def risk_decided(self) -> None:
        self.t_risk = perf_counter_ns()

    def venue_done(self) -> None:
        self.t_venue = perf_counter_ns()

    def sealed(self) -> None:
        """The batch holding the answer was sealed."""
        self.t_sealed = perf_counter_ns()

    def durable(self) -> None:
        """The batch's write-ahead is durable: the answer is released to its sender."""
        self.t_durable = perf_counter_ns()

    def acked(self) -> None:
        """The answer left: record every stage (once)."""
        metrics = self._metrics
        if metrics is not None:
            self._metrics = None
            self.t_ack = perf_counter_ns()
            metrics.record(self)

    def done(self) -> None:
        """No answer will leave for this order (an algo's child): record the stages so far (once)."""
        metrics = self._metrics
        if metrics is not None:
            self._metrics = None
            metrics.record(self)


# -- STATE AT SCRAPE TIME --

Part = Callable[[], Iterable[Metric]]


class ScrapeErrors:
    """How many times each collector part failed to read its source; a collector of its own (`oms_scrape_errors`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}

    def failed(self, part: str) -> None:
        """Count one failure of `part`."""
        with self._lock:
            self._counts[part] = self._counts.get(part, 0) + 1

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "oms_scrape_errors", "scrapes in which a metrics source failed and its families were left out, by source",
            labels=["collector"],
        )  # fmt: skip
        for part, n in sorted(self.counts().items()):
            family.add_metric([part], n)
        yield family


SCRAPE_ERRORS = ScrapeErrors()


class StateCollector:
    """A Prometheus collector of named parts, each a function returning metric families, called at each scrape.

    A part that raises is logged (with its traceback on the first failure in a row, in one line after that) and
    counted in `errors`; its families are left out of that scrape and the other parts' are still exposed: a source
    that is down never breaks the scrape. `describe` names nothing, so registering reads no source."""

    def __init__(self, parts: Mapping[str, Part], errors: ScrapeErrors = SCRAPE_ERRORS) -> None:
        self._parts = dict(parts)
        self._errors = errors
        self._failing: set[str] = set()

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        out: list[Metric] = []
        for name, part in self._parts.items():
            try:
                families = list(part())
            except Exception as exc:
                self._errors.failed(name)
                if name in self._failing:
                    log.warning("metrics: %s failed again (%s: %s); left out of this scrape", name,
                                type(exc).__name__, exc)  # fmt: skip
                else:
                    self._failing.add(name)
                    log.warning("metrics: %s failed; left out of this scrape", name, exc_info=True)
                continue
            self._failing.discard(name)
            out.extend(families)
        return iter(out)


def _flag(value: bool) -> int:
    return 1 if value else 0


class FixSessionGauges(StateCollector):
    """The FIX acceptor's sessions: how many are configured and whether each is logged on (and the front door's
    process, when there is one)."""

    def __init__(
        self,
        states: Callable[[], Mapping[str, bool]],
        door_running: Callable[[], bool] | None = None,
        errors: ScrapeErrors = SCRAPE_ERRORS,
    ) -> None:
        """`states()`: each configured session's name -> logged on now. `door_running()`: the FIX front door's
        process is alive (None: no door)."""
        parts: dict[str, Part] = {"fix_sessions": lambda: self._sessions(states())}
        if door_running is not None:
            parts["fix_door"] = lambda: [
                GaugeMetricFamily("oms_fix_door_up", "1 while the FIX front door runs", value=_flag(door_running()))
            ]
        super().__init__(parts, errors)

    @staticmethod
    def _sessions(states: Mapping[str, bool]) -> list[Metric]:
        configured = GaugeMetricFamily("oms_fix_sessions_configured", "FIX client sessions configured",
                                       value=len(states))  # fmt: skip
        on = GaugeMetricFamily(
            "oms_fix_session_logged_on", "1 while the FIX client session is logged on, 0 otherwise", labels=["session"]
        )
        for name, logged_on in sorted(states.items()):
            on.add_metric([name], _flag(logged_on))
        return [configured, on]


class JournalGauges(StateCollector):
    """The sequencer's write-ahead: how long the committer has been on its current write, how many sealed batches
    are not yet committed and how long the oldest of them has waited, how long the sequencer has been on its current
    batch and how many steps wait for it."""

    def __init__(
        self,
        stalled_s: Callable[[], float],
        outstanding: Callable[[], int],
        commit_lag_s: Callable[[], float],
        busy_s: Callable[[], float],
        waiting: Callable[[], int],
        errors: ScrapeErrors = SCRAPE_ERRORS,
    ) -> None:
        """The functions are the sequencer's (`Sequencer.journal_stalled_s`, batches sealed minus committed,
        `Sequencer.commit_lag_s`, `Sequencer.busy_s`, `Sequencer.waiting`); each is a few attribute reads, taking no
        lock."""

        def journal() -> list[Metric]:
            return [
                GaugeMetricFamily(
                    "oms_journal_stalled_seconds",
                    "seconds the committer has been on its current write-ahead (0 when none); above 1 new orders are "
                    "refused journal_unavailable",
                    value=stalled_s(),
                ),
                GaugeMetricFamily(
                    "oms_journal_outstanding_batches",
                    "batches the sequencer sealed whose write-ahead and releases are not done yet",
                    value=outstanding(),
                ),
                GaugeMetricFamily(
                    "oms_journal_commit_lag_seconds",
                    "seconds the oldest of those batches has waited (0 when none); above 0.05 new orders (FIX and "
                    "REST) are refused system_busy",
                    value=commit_lag_s(),
                ),
                GaugeMetricFamily(
                    "oms_sequencer_busy_seconds",
                    "seconds the sequencer has been on its current batch (0 when idle); above 1 new orders are "
                    "refused system_busy",
                    value=busy_s(),
                ),
                GaugeMetricFamily(
                    "oms_sequencer_waiting_steps", "commands handed to the sequencer and not yet run", value=waiting()
                ),
            ]

        super().__init__({"journal": journal}, errors)


class RedisGauges(StateCollector):
    """Whether Redis (the journal) answers a PING, and how long the answer took."""

    def __init__(self, ping: Callable[[], object], errors: ScrapeErrors = SCRAPE_ERRORS) -> None:
        """`ping()` returns when Redis answered and raises when it did not (within its own timeout)."""

        def redis() -> list[Metric]:
            started = perf_counter()
            try:
                ping()
            except Exception as exc:
                log.debug("metrics: redis did not answer: %s", exc)
                return [GaugeMetricFamily("oms_redis_up", _REDIS_UP, value=0)]
            took = perf_counter() - started
            return [
                GaugeMetricFamily("oms_redis_up", _REDIS_UP, value=1),
                GaugeMetricFamily("oms_redis_ping_seconds", "time of the scrape's PING to Redis", value=took),
            ]

        super().__init__({"redis": redis}, errors)


_REDIS_UP = "1 when Redis (the journal) answered the scrape's PING, 0 when it did not"


class StreamLag(msgspec.Struct, frozen=True):
    """How far the analytics sink is behind on one stream: entries its consumer group has not been delivered yet,
    entries delivered to it and not yet acknowledged (read, not yet committed to ClickHouse), and the age of the
    oldest entry not yet acknowledged (0.0 when none)."""

    undelivered: int
    pending: int
    oldest_age_s: float


class SinkGauges(StateCollector):
    """The ClickHouse sink: its process alive, and how far it is behind on each stream it reads."""

    def __init__(
        self,
        running: Callable[[], bool],
        lag: Callable[[], Mapping[str, StreamLag]] | None,
        errors: ScrapeErrors = SCRAPE_ERRORS,
    ) -> None:
        """`running()`: the sink's process is alive. `lag()`: stream -> its `StreamLag` (measured in Redis, where
        the sink's consumer group is; `oms.infra.clickhouse.lag`); None: not measured."""
        parts: dict[str, Part] = {
            "sink": lambda: [
                GaugeMetricFamily("oms_sink_up", "1 while the ClickHouse sink process runs", value=_flag(running()))
            ],
        }
        if lag is not None:
            parts["sink_lag"] = lambda: self._lag(lag())
        super().__init__(parts, errors)

    @staticmethod
    def _lag(streams: Mapping[str, StreamLag]) -> list[Metric]:
        entries = GaugeMetricFamily(
            "oms_sink_lag_entries",
            "journal entries the ClickHouse sink has not acknowledged yet (not delivered to it, or read and not yet "
            "committed), by stream",
            labels=["stream"],
        )
        pending = GaugeMetricFamily(
            "oms_sink_pending_entries", "entries read by the ClickHouse sink and not yet committed, by stream",
            labels=["stream"],
        )  # fmt: skip
        age = GaugeMetricFamily(
            "oms_sink_lag_seconds",
            "age of the oldest entry the ClickHouse sink has not acknowledged (0 when none), by stream",
            labels=["stream"],
        )
        for stream, lag in sorted(streams.items()):
            entries.add_metric([stream], lag.undelivered + lag.pending)
            pending.add_metric([stream], lag.pending)
            age.add_metric([stream], lag.oldest_age_s)
        return [entries, pending, age]


class AccountFlags(msgspec.Struct, frozen=True):
    """What an operator watches of one account: its kill switch and its trading state (a `TradingState` value)."""

    kill_switch: bool
    trading_state: str


_STATES = tuple(s.value for s in TradingState)


class AccountGauges(StateCollector):
    """Each account's kill switch (0/1) and trading state (one series per state, 1 for the account's)."""

    def __init__(self, read: Callable[[], Mapping[str, AccountFlags]], errors: ScrapeErrors = SCRAPE_ERRORS) -> None:
        """`read()`: every account's flags, read where the account's state lives (raises when that does not answer
        in time: the families are then left out of the scrape)."""
        super().__init__({"accounts": lambda: self._accounts(read())}, errors)

    @staticmethod
    def _accounts(accounts: Mapping[str, AccountFlags]) -> list[Metric]:
        kill = GaugeMetricFamily(
            "oms_account_kill_switch", "1 while the account's kill switch is engaged (no new orders)",
            labels=["account"],
        )  # fmt: skip
        state = GaugeMetricFamily(
            "oms_account_trading_state",
            f"1 for the account's trading state ({', '.join(_STATES)}), 0 for the others",
            labels=["account", "state"],
        )
        for account, flags in sorted(accounts.items()):
            kill.add_metric([account], _flag(flags.kill_switch))
            for value in dict.fromkeys((*_STATES, flags.trading_state)):
                state.add_metric([account, value], _flag(value == flags.trading_state))
        return [kill, state]


class VenueGauges(StateCollector):
    """Whether each venue orders are routed to is connected (the internal book always is)."""

    def __init__(self, connected: Callable[[], Mapping[str, bool]], errors: ScrapeErrors = SCRAPE_ERRORS) -> None:
        def venues() -> list[Metric]:
            family = GaugeMetricFamily(
                "oms_venue_connected", "1 while the venue is logged on (orders routed to it are taken)",
                labels=["venue"],
            )  # fmt: skip
            for name, up in sorted(connected().items()):
                family.add_metric([name], _flag(up))
            return [family]

        super().__init__({"venues": venues}, errors)


METRICS = HotPathMetrics()
REGISTRY = CollectorRegistry(auto_describe=True)
REGISTRY.register(METRICS)  # type: ignore[arg-type]
REGISTRY.register(SCRAPE_ERRORS)  # type: ignore[arg-type]
# CPU seconds, resident and virtual memory, open and maximum fds, start time: from /proc/self at each scrape
ProcessCollector(namespace="oms", registry=REGISTRY)


def render(registry: CollectorRegistry = REGISTRY) -> bytes:
    """The Prometheus text exposition of `registry` (the process's hot-path metrics by default)."""
    return generate_latest(registry)
