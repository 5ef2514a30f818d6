"""Sequencer: the one owner of the OrderManager; every adapter (FIX, REST, algos, venues that answer later) drives
the core through it and hears of every step from it.

COMMANDS. An adapter hands the sequencer a step, a function of the engine: `post` (the FIX gateway: fire and forget;
a failure goes to the step's `on_error`) or `run` (wait for the step's result). Once `start`ed, one thread runs the
steps in the order they were handed over, taking whatever is queued as one batch; before `start` (tests, tools) and
for a step handed over from inside a step, `run` and `post` run it at once on the caller's thread. So no adapter
thread ever drives the engine itself, and a reader thread never waits for another session's work.

REPORTS. After each step the sequencer hands that step's reports (every event, with the order's view right after it,
see `OrderManager.take_reports`) to every subscriber, in order. So each adapter hears about every event once,
whichever adapter's command caused it: a REST order that fills against a FIX client's resting order reaches the FIX
session. Subscribers are isolated: one that raises is logged and counted (`oms_subscriber_errors`), the others still
get the reports.

GROUP COMMIT. When a batch's steps have run, the sequencer seals it: `seal` (the reserved gate's,
`oms.core.reserved.AllowanceGate.seal`, then any `add_seal`-ed, such as the OMS's own record of refusals,
`oms.infra.redis.records`) gives the batch's write-ahead records as one write each (one Redis round trip,
one fsync for every order in it), and each adapter's `after_commit` hook gives what the batch's reports made it
send. A committer thread runs the write, then the adapters' releases, then answers the callers of `run`, batch
after batch in order, while the sequencer goes on with the next batch. So a report a client sees is durable, the
sequencer never waits for Redis, and under load one fsync covers many orders. While no write is outstanding, a
write may start before its batch is sealed (`start_write`, called before a step's reports are published): a lone
order's fsync then runs while its reports are encoded and handed to the committer. While a write fails (Redis
unreachable) the committer retries it and releases nothing after it.

`lock` is held while a batch runs. Readers on other threads (REST queries, the gateway's stop) take it to see the
engine between batches; a step is never run while another thread holds it.

A venue that answers later is started with `apply_venue`: its translation of each answer runs as a step (the Venue
port's contract, `oms.core.engine.Venue`). The sequencer also counts what it publishes into the process's hot-path
metrics (`oms.runtime.metrics`): acks, fills by venue and rejects by reason, whichever adapter's order they belong
to; adapters that time their orders reach the same metrics as `host.metrics`. And it logs each order event, whichever
channel's, as one JSON line on `oms.orders` (`oms.runtime.logs.log_order_event`) when INFO is on.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, NamedTuple, TypeVar

from oms.core.engine import OrderManager, VenueStep
from oms.core.model.enums import RejectReason
from oms.core.model.messages import Message
from oms.core.orders import OrderView
from oms.runtime.logs import log_order_event, orders_log
from oms.runtime.metrics import METRICS, HotPathMetrics

__all__ = ["MAX_BATCH", "MAX_DELAY_S", "MAX_JOURNAL_STALL_S", "MAX_WAITING", "Reports", "Sequencer"]

log = logging.getLogger(__name__)
T = TypeVar("T")
Reports = list[tuple[Message, OrderView | None]]
Step = Callable[[OrderManager], Any]
OnError = Callable[[Exception], None]
Seal = Callable[[], Callable[[], None] | None]  # called on the sequence as a batch ends; what to run once it is durable
MAX_BATCH = 256  # steps taken from the queue as one batch, at most
#: a write-ahead the committer has been on for this long means the journal is stalled or gone: the adapters refuse
#: new orders, cancels and replaces at once (JOURNAL_UNAVAILABLE) instead of holding their answers until it returns
MAX_JOURNAL_STALL_S = 1.0
#: past capacity (`Sequencer.overloaded`): the wait ahead of a new order's answer, and the commands waiting for the
#: sequencer, past which the adapters refuse new orders at once (SYSTEM_BUSY)
MAX_DELAY_S = 0.05
MAX_WAITING = 2_000
_SMOOTHING = 0.05  # weight of the latest batch in the sequencer's time per step
_RETRY_S = (0.001, 0.01, 0.1, 0.5)  # waits between attempts of a commit that failed, the last one repeated


class Sequencer:
    """An OrderManager, the thread that runs its steps in one order, and the subscribers its reports go to."""

    def __init__(
        self,
        engine: OrderManager,
        lock: threading.RLock | None = None,
        metrics: HotPathMetrics = METRICS,
        seal: Seal | None = None,
        start_write: Callable[[], None] | None = None,
    ) -> None:
        """`metrics`: where the published reports are counted and the adapters' orders timed (the process's).
        `seal`: called once per batch on the sequence; returns the write that makes the batch's write-ahead records
        durable (raising when it could not), or None when the batch has none. `start_write`: called on the sequence
        before each publish, where the decisions of a step are made and its reports not yet encoded: the seal's
        write may be started there (`AllowanceGate.start_write`), so that its fsync runs while the reports are
        published and the batch sealed; it must not raise."""
        self.engine = engine
        self.lock = lock if lock is not None else threading.RLock()
        self.metrics = metrics
        self._seals: list[Seal] = [] if seal is None else [seal]
        self._start_write = start_write
        self._subscribers: list[Callable[[Reports], None]] = []
        self._names: dict[Callable[[Reports], None], str] = {}
        self._after: list[Seal] = []
        self._publishing = False
        self._depth = 0  # steps running on the sequence right now (a step may run another inline)
        self._queue: queue.SimpleQueue[tuple[Step, OnError | None, Future[Any] | None] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._ident = 0
        self._commits: queue.SimpleQueue[_Commit | None] = queue.SimpleQueue()
        self._committer: threading.Thread | None = None
        self._sealed = 0  # batches sealed
        self._sealed_at: deque[float] = deque()  # monotonic time each batch sealed and not yet committed was sealed
        self._committed = 0  # batches whose writes and releases are done
        self._progress = threading.Condition(threading.Lock())
        self._step_s = 0.0  # recent time per step of the sequencer's batches (moving average)
        self._writing_since: float | None = None  # monotonic time the committer began the write it is still on
        self._batch_since: float | None = None  # monotonic time the sequencer began the batch it is still on

    # -- LIFECYCLE --

    def start(self) -> None:
        """Run every step handed over from now on on the sequencer's own thread."""
        if self._thread is not None:
            return
        self._committer = threading.Thread(target=self._commit_loop, name="committer", daemon=True)
        self._committer.start()
        self._thread = threading.Thread(target=self._loop, name="sequencer", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Run and commit what is queued, then stop the thread; later steps run on their caller's thread."""
        thread = self._thread
        if thread is None:
            return
        self._queue.put(None)
        thread.join(timeout_s)
        committer = self._committer
        assert committer is not None
        committer.join(timeout_s)
        if thread.is_alive() or committer.is_alive():
            log.error("the sequencer did not stop within %.0f s (a write-ahead still failing?)", timeout_s)
        self._thread = self._committer = None

    # -- SUBSCRIBERS --

    def subscribe(self, subscriber: Callable[[Reports], None], name: str | None = None) -> None:
        """Call `subscriber` with the reports of every step from now on (on the sequence, under the lock). `name`
        labels its failures in the log and in `oms_subscriber_errors` (default: its qualified name)."""
        with self.lock:
            self._subscribers.append(subscriber)
            self._names[subscriber] = name or getattr(subscriber, "__qualname__", repr(subscriber))

    def unsubscribe(self, subscriber: Callable[[Reports], None]) -> None:
        with self.lock:
            self._subscribers.remove(subscriber)
            self._names.pop(subscriber, None)

    def after_commit(self, hook: Seal) -> None:
        """Call `hook` when each batch is sealed (on the sequence, under the lock); it returns what releases what the
        batch's reports made the adapter send (or None), which runs once the batch's write-ahead is durable, on the
        committer's thread. A release that raises is logged and counted; the others still run. A release never calls
        `run` (the committer would wait for itself): it only hands what it holds to its adapter's own threads."""
        with self.lock:
            self._after.append(hook)

    def add_seal(self, seal: Seal) -> None:
        """Call `seal` too when each batch is sealed (on the sequence, under the lock): it returns a write the batch
        must make durable before anything it produced is released (or None). Writes run in the order their seals
        were added, after the one given at construction."""
        with self.lock:
            self._seals.append(seal)

    def remove_seal(self, seal: Seal) -> None:
        with self.lock:
            self._seals.remove(seal)

    def remove_after_commit(self, hook: Seal) -> None:
        with self.lock:
            self._after.remove(hook)

    def outstanding(self) -> int:
        """How many sealed batches have their write-ahead or releases still to do (0 when the committer is idle)."""
        with self._progress:
            return max(self._sealed - self._committed, 0)

    def wait_committed(self) -> None:
        """Return once every batch sealed so far is written and released (at once when none is outstanding)."""
        with self._progress:
            target = self._sealed
            while self._committed < target:
                self._progress.wait()

    # -- COMMANDS --

    def post(self, step: Step, on_error: OnError) -> None:
        """Run `step(engine)` in sequence without waiting for it; if it raises, `on_error(exc)` is called on the
        sequence (and if that raises too, it is logged)."""
        if self._thread is None or self._on_sequence():
            self._inline(step, on_error)
            return
        self._queue.put((step, on_error, None))

    def post_later(self, step: Step, on_error: OnError) -> None:
        """`post`, but never run here: queued for the sequencer's thread even when called from within a step or a
        commit (a write's callback, which may run on a thread that is committing a batch inline: a step run there
        would wait for that very commit). Dropped when no thread is running (the next step catches up)."""
        if self._thread is not None:
            self._queue.put((step, on_error, None))

    def run(self, step: Callable[[OrderManager], T], timeout: float | None = None) -> T:
        """`step(engine)` in sequence; returns what it returned (or raises what it raised) once its batch is
        committed and its reports published. Raises TimeoutError when that takes longer than `timeout` seconds (the
        journal stalled): the step still runs, and is committed when the journal answers."""
        if self._thread is None or self._on_sequence():
            return self._inline(step, None)
        done: Future[T] = Future()
        self._queue.put((step, None, done))
        return done.result(timeout)

    def waiting(self) -> int:
        """Steps handed over and not yet taken into a batch (for shedding load)."""
        return self._queue.qsize()

    def expected_wait_s(self) -> float:
        """How long a step handed over now would wait before it runs: the steps waiting times the recent time per
        step (for shedding load)."""
        return self._queue.qsize() * self._step_s

    def commit_lag_s(self) -> float:
        """How long the oldest batch sealed and not yet committed has waited for its write-ahead and releases; 0.0
        when every batch is committed. A step's answers wait at least that long behind it (for shedding load: a
        journal that slows down, or a committer that falls behind, shows here before the steps waiting grow)."""
        try:
            oldest = self._sealed_at[0]
        except IndexError:
            return 0.0
        return max(time.monotonic() - oldest, 0.0)

    def lag_s(self) -> float:
        """What a step handed over now can expect to wait before its answers are released, as far as the sequence
        can tell: `expected_wait_s` plus `commit_lag_s` (the adapters shed new orders on it)."""
        return self.expected_wait_s() + self.commit_lag_s()

    def overloaded(self, max_delay_s: float = MAX_DELAY_S, max_waiting: int = MAX_WAITING) -> bool:
        """Whether a new order should be refused at once (SYSTEM_BUSY) rather than taken: its answer would wait more
        than `max_delay_s` (`lag_s`), or more than `max_waiting` commands wait for the sequencer. Every adapter that
        takes new orders asks it first, so past capacity each is answered within about `max_delay_s`."""
        return self.lag_s() > max_delay_s or self._queue.qsize() > max_waiting

    def publish(self) -> None:
        """Hand the reports queued since the last call to every subscriber; call on the sequence (under the lock).
        What a subscriber does to the engine in its callback (an algo's next child) is published by the same call,
        after the reports that caused it; a publish from inside a subscriber returns at once for that reason.

        Subscribers are isolated: one that raises is logged (with its traceback, here only) and counted in
        `oms_subscriber_errors`; the others still get the reports, and the step that caused them stands."""
        if self._publishing:
            return
        if self._start_write is not None:
            self._start_write()
        self._publishing = True
        try:
            while reports := self.engine.take_reports():
                self.metrics.count_reports(reports)
                if orders_log.enabled():
                    session_of = self.engine.session_of
                    for event, _ in reports:
                        log_order_event(event, session_of.get(getattr(event, "order_id", 0), "")
                                        or getattr(event, "session", ""))  # fmt: skip
                for subscriber in list(self._subscribers):
                    try:
                        subscriber(reports)
                    except Exception:
                        name = self._names.get(subscriber, repr(subscriber))
                        log.exception("report subscriber %s failed on %d reports", name, len(reports))
                        self.metrics.subscriber_failed(name)
        finally:
            self._publishing = False

    def apply_venue(self, step: VenueStep) -> None:
        """The `apply` every venue is started with (the Venue port, `oms.core.engine.Venue`): run the venue's
        translation `step()` in sequence, then apply and publish the events it returned. Call it from the venue's own
        threads, never from inside a step; it returns once the events are published. A step that returns nothing
        leaves the engine and its gate alone."""

        def apply(engine: OrderManager) -> None:
            events = step()
            if events:
                engine.on_venue_events(events)

        self.run(apply)

    def on_venue_events(self, events: list[Message]) -> None:
        """Events a venue reported on its own (acks, fills, cancels of orders it holds), applied and published;
        a venue with state of its own hands its translation over with `apply_venue` instead."""
        self.run(lambda engine: engine.on_venue_events(events))

    # -- INTERNALS --

    def _on_sequence(self) -> bool:
        """True on the sequencer's thread, or on a thread holding the lock (a step run there cannot wait for the
        sequencer, which needs the lock)."""
        return threading.get_ident() == self._ident or self.lock._is_owned()  # type: ignore[attr-defined]

    def _inline(self, step: Callable[[OrderManager], T], on_error: OnError | None) -> T:
        """Run `step` on this thread, under the lock; the outermost step seals its batch and commits it here."""
        with self.lock:
            self._depth += 1
            try:
                result = self._step(step, on_error)
            finally:
                self._depth -= 1
            if self._depth == 0:
                self.wait_committed()  # the committer's batches first: the log keeps the order of the writes
                self._run_commit(self._seal_batch([]))
            return result  # type: ignore[no-any-return]

    def _step(self, step: Step, on_error: OnError | None) -> Any:
        """Run one step and publish what it did (what it did before it raised, too). Without `on_error` the
        exception is raised; with one it goes there."""
        try:
            result = step(self.engine)
        except Exception as exc:
            self._log_faults()
            self.publish()
            if on_error is None:
                raise
            try:
                on_error(exc)
            except Exception:
                log.exception("the error handler of a step failed; the step's error was %r", exc)
            self.publish()
            return None
        self._log_faults()
        self.publish()
        return result

    def _log_faults(self) -> None:
        """Log (with its traceback, here only) and count what a port of the core raised during the step."""
        for port, exc in self.engine.take_faults():
            log.error("the %s failed; the command was answered INTERNAL_ERROR", port, exc_info=exc)
            self.metrics.fault(port)

    def _loop(self) -> None:
        self._ident = threading.get_ident()
        q = self._queue
        stopping = False
        while not stopping:
            batch = [q.get()]
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(q.get_nowait())
                except queue.Empty:
                    break
            answers: list[tuple[Future[Any], Any, BaseException | None]] = []
            started = time.perf_counter()
            self._batch_since = time.monotonic()
            with self.lock:
                self._depth += 1
                try:
                    for item in batch:
                        if item is None:
                            stopping = True
                            continue
                        step, on_error, done = item
                        try:
                            result = self._step(step, on_error)
                        except Exception as exc:
                            answers.append((done, None, exc))  # type: ignore[arg-type]
                            continue
                        if done is not None:
                            answers.append((done, result, None))
                finally:
                    self._depth -= 1
                commit = self._seal_batch(answers)
            self._batch_since = None
            self._step_s += ((time.perf_counter() - started) / len(batch) - self._step_s) * _SMOOTHING
            self.metrics.batch(len(batch))
            self._commits.put(commit)
        self._commits.put(None)

    def _seal_batch(self, answers: list[tuple[Future[Any], Any, BaseException | None]]) -> _Commit:
        """What the batch just run must write before anything it produced is released (call under the lock)."""
        writes = [write for seal in self._seals if (write := seal()) is not None]
        releases: list[Callable[[], None]] = []
        for hook in self._after:
            try:
                release = hook()
            except Exception:
                log.exception("after-commit hook %r failed", hook)
                self.metrics.subscriber_failed(getattr(hook, "__qualname__", repr(hook)))
                continue
            if release is not None:
                releases.append(release)
        with self._progress:
            self._sealed += 1
            self._sealed_at.append(time.monotonic())
        return _Commit(writes, releases, answers)

    def readiness(self) -> dict[str, str]:
        """The checks the core answers itself, each "ok" or why not: the last run reconciled, order entry open, the
        journal's writes landing and the sequencer's batches ending (each within MAX_JOURNAL_STALL_S)."""
        engine = self.engine
        stalled, busy = self.journal_stalled_s(), self.busy_s()
        return {
            "reconciled": "ok" if engine.ready else "starting: the last run is not reconciled yet",
            "order_entry": "stopping: no new orders" if engine.closed else "ok",
            "journal": "ok" if stalled <= MAX_JOURNAL_STALL_S else f"a write has not landed for {stalled:.1f} s",
            "sequencer": "ok" if busy <= MAX_JOURNAL_STALL_S else f"on one batch for {busy:.1f} s",
        }

    def stalled(self) -> RejectReason:
        """Why a new command would wait far too long now: JOURNAL_UNAVAILABLE while the committer has been on one
        write for more than MAX_JOURNAL_STALL_S, SYSTEM_BUSY while the sequencer has been on one batch as long;
        NONE otherwise. The adapters refuse new orders at the door with it."""
        if self.journal_stalled_s() > MAX_JOURNAL_STALL_S:
            return RejectReason.JOURNAL_UNAVAILABLE
        if self.busy_s() > MAX_JOURNAL_STALL_S:
            return RejectReason.SYSTEM_BUSY
        return RejectReason.NONE

    def journal_stalled_s(self) -> float:
        """How long the committer has been on its current write (retrying it while the journal does not answer);
        0.0 when it is on none. A few milliseconds when Redis is well; seconds when it is stopped or gone."""
        since = self._writing_since
        return 0.0 if since is None else max(time.monotonic() - since, 0.0)

    def busy_s(self) -> float:
        """How long the sequencer has been on its current batch; 0.0 when idle. Microseconds to milliseconds when
        well; seconds when a step waits on something that does not answer (an account actor whose journal stalled)."""
        since = self._batch_since
        return 0.0 if since is None else max(time.monotonic() - since, 0.0)

    def _commit_loop(self) -> None:
        while (commit := self._commits.get()) is not None:
            self._run_commit(commit)

    def _run_commit(self, commit: _Commit) -> None:
        """Run the batch's writes in order (each retried until it lands, none run again once it has), then its
        releases, then answer its callers."""
        for write in commit.writes:
            attempt = 0
            self._writing_since = time.monotonic()
            while True:
                try:
                    write()
                    self._writing_since = None
                    break
                except Exception:
                    log.exception("a batch's write-ahead failed (attempt %d); nothing is released until it lands",
                                  attempt + 1)  # fmt: skip
                    self.metrics.commit_failed()
                    time.sleep(_RETRY_S[min(attempt, len(_RETRY_S) - 1)])
                    attempt += 1
        for release in commit.releases:
            try:
                release()
            except Exception:
                log.exception("releasing a batch's output failed: %r", release)
                self.metrics.subscriber_failed(getattr(release, "__qualname__", repr(release)))
        with self._progress:
            self._committed += 1
            self._sealed_at.popleft()
            self._progress.notify_all()
        for done, result, exc in commit.answers:
            if exc is None:
                done.set_result(result)
            else:
                done.set_exception(exc)


class _Commit(NamedTuple):
    """A sealed batch: its writes (write-ahead records, in seal order), its adapters' releases, its callers'
    answers."""

    writes: list[Callable[[], None]]
    releases: list[Callable[[], None]]
    answers: list[tuple[Future[Any], Any, BaseException | None]]
