"""AlgoEngine: parent orders over an Sequencer. Parent commands in, child orders out, parent events back.

Children are ordinary `SubmitOrder`s (and `CancelOrder`s) into the host's OrderManager on the engine's own session
(`ALGO` by default), so they pass the same risk checks and venues as any order. The engine follows them through the
host's reports (`host.subscribe`): each child event is turned into a journal record (`ChildFilled`, `ChildDone`,
...), applied to its parent, and the parent is evaluated again, all in the step that produced the event, under
the host's lock. That is how an iceberg refills and an OCO leg is canceled before any other command can reach the
book.

Events that the engine's own engine calls return are handled at once and recognised (by identity) when the host
publishes them later, so nothing is applied twice. Children the engine sends from inside a subscriber callback are
published by the same `Sequencer.publish`, after the reports that caused them.

Time comes from the injected `clock` (integer ns): `on_timer(now_ns)` (alias `advance`) runs due slices; the
callbacks stamp children with `clock()`. Nothing sleeps.

Journal: every accepted parent command and every record is appended to the store before the action it describes
(a `ChildSent` before the child goes out), in batches of one round trip. `recover()` replays the store, finds the
children still working by ClOrdID (`OrderManager.find`), treats the others as gone (`ChildDone` "lost": the internal
book does not survive an OMS restart), and resumes every parent's schedule.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable

import msgspec

from oms.core.algos.messages import (
    AlgoEvent,
    AlgoRecord,
    AlgoRejectReason,
    CancelFailed,
    CancelParent,
    CancelParentRejected,
    CancelSent,
    ChildDone,
    ChildFilled,
    ChildRejected,
    ChildSent,
    OcoBreach,
    ParentAccepted,
    ParentClosing,
    ParentDone,
    ParentRejected,
    ParentUpdated,
    StopTriggered,
    SubmitBracket,
    SubmitIceberg,
    SubmitParent,
    SubmitPov,
    SubmitTwap,
    SubmitVwap,
    VolumeObserved,
)
from oms.core.algos.parents import (
    Action,
    BracketParent,
    CancelChild,
    Child,
    Close,
    NewChild,
    Parent,
    ParentView,
    make_parent,
    validate,
)
from oms.core.algos.store import AlgoStore
from oms.core.engine import OrderManager
from oms.core.model.enums import RejectReason
from oms.core.model.instruments import InstrumentRegistry
from oms.core.model.messages import (
    CancelOrder,
    CancelRejected,
    Message,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    SubmitOrder,
    TradePrinted,
)
from oms.runtime.sequencer import Reports, Sequencer

__all__ = ["AlgoEngine", "ManualClock"]

log = logging.getLogger(__name__)

_SUBMITS = (SubmitTwap, SubmitVwap, SubmitPov, SubmitIceberg, SubmitBracket)
_MAX_ROUNDS = 100_000  # evaluations in one drive: far beyond any schedule; more means a parent that never settles


class ManualClock:
    """A clock that moves only when told: simulated time for tests and backtests."""

    def __init__(self, now_ns: int = 0) -> None:
        self.now_ns = now_ns

    def __call__(self) -> int:
        return self.now_ns

    def set(self, now_ns: int) -> None:
        self.now_ns = now_ns


class AlgoEngine:
    """Parents (TWAP, VWAP, POV, iceberg, bracket/OCO) driving child orders through `host`."""

    def __init__(
        self,
        host: Sequencer,
        instruments: InstrumentRegistry,
        clock: Callable[[], int] = time.time_ns,
        store: AlgoStore | None = None,
        session: str = "ALGO",
        profiles: dict[str, list[int]] | None = None,
        max_child_rejects: int = 3,
    ) -> None:
        """`profiles`: named intraday volume profiles (bucket weights) that a SubmitVwap may name."""
        self.session = session
        self._host = host
        self._instruments = instruments
        self._clock = clock
        self._store = store
        self._profiles = profiles or {}
        self._max_rejects = max_child_rejects
        self._parents: dict[str, Parent] = {}
        self._active: dict[str, Parent] = {}
        self._by_oid: dict[int, tuple[Parent, str]] = {}  # working child's order id -> (parent, child ClOrdID)
        self._handled: dict[int, Message] = {}  # id(event) -> event, for events handled before they are published
        self._submitting: tuple[Parent, str] | None = None
        self._buffer: list[AlgoRecord] = []
        self._last_view: dict[str, ParentView] = {}
        self._outbox: list[AlgoEvent] = []
        self._call_events: list[AlgoEvent] | None = None  # what the current public call returns
        self._listeners: list[Callable[[AlgoEvent], None]] = []
        host.subscribe(self._on_reports)

    # -- COMMANDS --

    def submit(self, cmd: SubmitParent) -> list[AlgoEvent]:
        """Accept (journaled, then its first children sent) or reject a parent; returns the events it caused."""
        return self._call(lambda engine, now: self._submit(engine, cmd, now), cmd.ts_ns or None)

    def cancel(self, cmd: CancelParent) -> list[AlgoEvent]:
        """Cancel a parent: its working children are canceled, nothing new is sent; returns the events caused."""
        return self._call(lambda engine, now: self._cancel(engine, cmd, now), cmd.ts_ns or None)

    def on_timer(self, now_ns: int | None = None) -> list[AlgoEvent]:
        """Run whatever is due at `now_ns` (the clock's time when None) for every working parent."""
        return self._call(lambda engine, now: self._drive(engine, list(self._active.values()), now), now_ns)

    advance = on_timer

    def recover(self) -> int:
        """Rebuild every parent from the store and resume the working ones; returns how many parents it read.

        Call once, before any submit. A working child is looked up by its ClOrdID on the engine's session: found
        (the OMS rebuilds every journaled order at its start), it is followed again (fills it got meanwhile are
        taken from the order; an internal-book child the start cancels, reason RESTART, returns its quantity to the
        schedule); not found (never journaled as accepted), it is recorded as lost and its quantity returns to the
        schedule.
        """
        if self._store is None:
            raise RuntimeError("recover needs a store")
        return self._host.run(self._recover)

    def close(self) -> None:
        """Stop following the host (parents stay as they are; nothing is canceled)."""
        self._host.unsubscribe(self._on_reports)

    def subscribe(self, listener: Callable[[AlgoEvent], None]) -> None:
        """Call `listener` with every parent event from now on (under the host's lock: it must not drive the
        host)."""
        self._listeners.append(listener)

    def unsubscribe(self, listener: Callable[[AlgoEvent], None]) -> None:
        """Stop calling `listener` (one registered by `subscribe`)."""
        self._listeners.remove(listener)

    # -- QUERIES --

    def view(self, parent_id: str) -> ParentView | None:
        parent = self._parents.get(parent_id)
        return None if parent is None else parent.view()

    def views(self, working_only: bool = False) -> list[ParentView]:
        parents = self._active if working_only else self._parents
        return [p.view() for p in parents.values()]

    def parent(self, parent_id: str) -> Parent | None:
        """The parent's state machine (read it; never call its `apply`)."""
        return self._parents.get(parent_id)

    def take_events(self) -> list[AlgoEvent]:
        """Every parent event since the last call, in order; empties the outbox."""
        events, self._outbox = self._outbox, []
        return events

    # -- steps (run under the host's lock) --

    def _call(self, step: Callable[[OrderManager, int], object], now_ns: int | None) -> list[AlgoEvent]:
        def run(engine: OrderManager) -> list[AlgoEvent]:
            self._call_events = events = []
            try:
                step(engine, self._clock() if now_ns is None else now_ns)
            finally:
                self._call_events = None
            return events

        return self._host.run(run)

    def _submit(self, engine: OrderManager, cmd: SubmitParent, now: int) -> None:
        if cmd.parent_id in self._parents or not cmd.parent_id:
            why = "empty" if not cmd.parent_id else "already used"
            self._emit(ParentRejected(cmd.parent_id, AlgoRejectReason.DUPLICATE_PARENT_ID, f"parent id {why}", now))
            return
        if isinstance(cmd, SubmitVwap) and not cmd.profile and cmd.profile_name:
            profile = self._profiles.get(cmd.profile_name)
            if profile is None:
                text = f"no profile {cmd.profile_name!r} (known: {', '.join(sorted(self._profiles))})"
                self._emit(ParentRejected(cmd.parent_id, AlgoRejectReason.UNKNOWN_PROFILE, text, now))
                return
            cmd = msgspec.structs.replace(cmd, profile=list(profile))
        inst = self._instruments.by_symbol(cmd.symbol)
        reason, text = validate(cmd, inst)
        if reason != AlgoRejectReason.NONE:
            self._emit(ParentRejected(cmd.parent_id, reason, text, now))
            return
        assert inst is not None
        parent = make_parent(cmd, inst, self._max_rejects)
        self._buffer.append(cmd)
        try:
            self._flush()  # the command is durable before anything acts on it
        except Exception:  # the store refused it: the parent never starts, and nothing it cannot store stays queued
            self._buffer.remove(cmd)
            log.exception("parent %s not journaled", cmd.parent_id)
            text = "the parent could not be journaled and was not started"
            self._emit(ParentRejected(cmd.parent_id, AlgoRejectReason.JOURNAL_UNAVAILABLE, text, now))
            return
        self._parents[cmd.parent_id] = self._active[cmd.parent_id] = parent
        self._emit(ParentAccepted(cmd.parent_id, parent.kind, cmd.account, cmd.symbol, cmd.side, cmd.qty, now))
        self._drive(engine, [parent], now)

    def _cancel(self, engine: OrderManager, cmd: CancelParent, now: int) -> None:
        parent = self._parents.get(cmd.parent_id)
        if parent is None:
            reason, text = AlgoRejectReason.UNKNOWN_PARENT, "no such parent"
        elif parent.is_terminal or parent.closing is not None:
            reason, text = AlgoRejectReason.PARENT_DONE, f"parent is {parent.status.name}"
        else:
            self._record(parent, cmd)
            self._drive(engine, [parent], now)
            return
        self._emit(CancelParentRejected(cmd.parent_id, reason, text, now))

    def _recover(self, engine: OrderManager) -> int:
        assert self._store is not None
        read = 0
        for rec in self._store.read():
            if isinstance(rec, _SUBMITS):
                inst = self._instruments.by_symbol(rec.symbol)
                if inst is None:
                    log.error("algo journal: parent %s names unknown symbol %s; skipped", rec.parent_id, rec.symbol)
                    continue
                self._parents[rec.parent_id] = make_parent(rec, inst, self._max_rejects)
                read += 1
                continue
            parent = self._parents.get(rec.parent_id)
            if parent is not None:
                parent.apply(rec)
        now = self._clock()
        for parent in self._parents.values():
            if parent.is_terminal:
                continue
            self._active[parent.parent_id] = parent
            for child in parent.working():
                self._relink(engine, parent, child, now)
            if isinstance(parent, BracketParent) and parent.breached():
                self._breach(parent, now)
        self._flush()
        self._drive(engine, list(self._active.values()), now)
        return read

    def _relink(self, engine: OrderManager, parent: Parent, child: Child, now: int) -> None:
        order = engine.find(self.session, child.cl_ord_id)
        pid = parent.parent_id
        if order is None:
            text = "not found after a restart: the venue no longer holds it"
            self._record(parent, ChildDone(pid, child.cl_ord_id, "lost", 0, text, now))
            return
        if order.cum_qty > child.cum_qty:
            diff = order.cum_qty - child.cum_qty
            self._record(parent, ChildFilled(pid, child.cl_ord_id, diff, order.cum_notional - child.cum_notional, 0,
                                             now))  # fmt: skip
        if order.is_terminal:
            if not child.done:
                self._record(parent, ChildDone(pid, child.cl_ord_id, order.status.value, 0, "found ended", now))
            return
        self._by_oid[order.order_id] = (parent, child.cl_ord_id)
        if child.cancel_requested:  # the cancel may not have reached the venue: let the parent send it again
            self._record(parent, CancelFailed(pid, child.cl_ord_id, RejectReason.NONE, now))

    # -- driving parents --

    def _drive(self, engine: OrderManager, parents: Iterable[Parent], now: int) -> None:
        """Evaluate `parents` and act until none has anything left to do; then journal and report."""
        work = list(dict.fromkeys(parents))
        touched = set(work)
        rounds = 0
        while work:
            rounds += 1
            if rounds > _MAX_ROUNDS:
                raise RuntimeError(f"algo parents did not settle after {_MAX_ROUNDS} evaluations")
            parent = work.pop(0)
            actions = parent.evaluate(now)
            if not actions:
                continue
            more = {parent}
            for action in actions:
                more |= self._act(engine, parent, action, now)
            for p in more:
                if p not in work:
                    work.append(p)
            touched |= more
        self._flush()
        self._report(touched, now)

    def _act(self, engine: OrderManager, parent: Parent, action: Action, now: int) -> set[Parent]:
        pid = parent.parent_id
        match action:
            case Close(status, text):
                self._record(parent, ParentClosing(pid, status, text, now))
                return {parent}
            case CancelChild(cl):
                child = parent.children[cl]
                cancel_cl = parent.next_cl_ord_id()
                self._record(parent, CancelSent(pid, cl, cancel_cl, now))
                self._flush()
                cmd = CancelOrder(parent.account, cancel_cl, cl, parent.symbol, child.side, now, self.session)
                return self._ingest(self._handle(engine.cancel(cmd, now)), now)
            case NewChild():
                a = action
                cl = parent.next_cl_ord_id()
                rec = ChildSent(pid, cl, a.role, a.side, a.ord_type, a.tif, a.qty, a.price, a.stop_price, a.slot, now)
                self._record(parent, rec)
                self._flush()  # journaled before it reaches the OrderManager
                cmd = SubmitOrder(
                    parent.account, cl, parent.symbol, a.side, a.ord_type, a.qty, a.price, a.stop_price, a.tif,
                    ts_ns=now, session=self.session, parent_id=pid,
                )  # fmt: skip
                self._submitting = (parent, cl)
                try:
                    clock = self._host.metrics.clock("algo")
                    events = self._handle(engine.submit(cmd, now, clock))
                    clock.done()
                    order = engine.find(self.session, cl)
                    if order is not None and order.order_id not in self._by_oid:
                        self._by_oid[order.order_id] = (parent, cl)
                    return self._ingest(events, now)
                finally:
                    self._submitting = None
        raise AssertionError(f"unknown action {action!r}")

    def _handle(self, events: list[Message]) -> list[Message]:
        """Mark events this engine handles now, so that their publication later is skipped."""
        for e in events:
            self._handled[id(e)] = e
        return events

    def _on_reports(self, reports: Reports) -> None:
        """Every step's reports from the host (under its lock): follow children, watch the tape, act at once."""
        handled = self._handled
        events = [e for e, _ in reports if handled.pop(id(e), None) is not e]
        if not events:
            return
        now = self._clock()
        touched = self._ingest(events, now)
        if touched:
            self._drive(self._host.engine, touched, now)
        else:
            self._flush()

    def _ingest(self, events: list[Message], now: int) -> set[Parent]:
        """Turn child events and prints into records on their parents; returns the parents touched."""
        touched: set[Parent] = set()
        printed: dict[str, int] = defaultdict(int)
        own: dict[str, int] = defaultdict(int)
        own_ids: set[int] = set()
        for e in events:
            match e:
                case TradePrinted():
                    printed[e.symbol] += e.qty
                    for p in self._active.values():
                        if p.symbol == e.symbol and p.observe_print(e.price):
                            self._record(p, StopTriggered(p.parent_id, e.price, now))
                            touched.add(p)
                case OrderFilled():
                    hit = self._by_oid.get(e.order_id)
                    if hit is None:
                        continue
                    p, cl = hit
                    own_ids.add(e.order_id)
                    if e.aggressor or (e.contra_order_id not in own_ids and e.contra_order_id not in self._by_oid):
                        own[e.symbol] += e.qty  # a match between two children is one print
                    if e.leaves_qty == 0:
                        del self._by_oid[e.order_id]
                    self._record(p, ChildFilled(p.parent_id, cl, e.qty, e.qty * e.price, e.exec_id, now))
                    if isinstance(p, BracketParent) and p.breached():
                        self._breach(p, now)
                    touched.add(p)
                case OrderCanceled() | OrderExpired() | OrderRejected():
                    hit = self._by_oid.pop(e.order_id, None)
                    sub = self._submitting
                    if hit is None and isinstance(e, OrderRejected) and sub is not None and e.cl_ord_id == sub[1]:
                        hit = sub  # refused before it got an order id (order_id 0)
                    if hit is None:
                        continue
                    p, cl = hit
                    self._record(p, self._child_done(p.parent_id, cl, e, now))
                    if isinstance(e, OrderRejected):
                        self._emit(ChildRejected(p.parent_id, cl, e.reason, e.text, now))
                    touched.add(p)
                case CancelRejected(response_to="cancel"):
                    hit = self._by_oid.get(e.order_id)
                    if hit is not None and hit[0].children[hit[1]].cancel_requested:
                        p, cl = hit
                        self._record(p, CancelFailed(p.parent_id, cl, e.reason, now))
                        touched.add(p)
        for symbol, qty in printed.items():
            others = qty - own[symbol]
            if others <= 0:
                continue
            for p in self._active.values():
                if p.symbol == symbol and p.wants_volume(now):
                    self._record(p, VolumeObserved(p.parent_id, others, now))
                    touched.add(p)
        return touched

    @staticmethod
    def _child_done(pid: str, cl: str, e: OrderCanceled | OrderExpired | OrderRejected, now: int) -> ChildDone:
        match e:
            case OrderCanceled():
                return ChildDone(pid, cl, "canceled", int(e.reason), e.reason.name, now)
            case OrderExpired():
                return ChildDone(pid, cl, "expired", 0, "", now)
            case OrderRejected():
                return ChildDone(pid, cl, "rejected", int(e.reason), e.text, now)

    def _breach(self, parent: BracketParent, now: int) -> None:
        if parent.breach_reported:
            return
        parent.breach_reported = True
        tp, sl = parent.leg("tp"), parent.leg("sl")
        breach = OcoBreach(
            parent.parent_id, tp[0].cl_ord_id, sl[0].cl_ord_id, sum(c.cum_qty for c in tp),
            sum(c.cum_qty for c in sl), now,
        )  # fmt: skip
        log.error("OCO BREACH: both legs of parent %s executed: %s", parent.parent_id, breach)
        self._emit(breach)

    # -- records and events --

    def _record(self, parent: Parent, rec: AlgoRecord) -> None:
        parent.apply(rec)  # type: ignore[arg-type]
        self._buffer.append(rec)

    def _flush(self) -> None:
        if self._buffer:
            if self._store is not None:
                self._store.append(self._buffer)
            self._buffer = []

    def _report(self, parents: Iterable[Parent], now: int) -> None:
        for p in parents:
            view = p.view()
            if self._last_view.get(p.parent_id) == view:
                continue
            self._last_view[p.parent_id] = view
            self._emit(ParentUpdated(
                p.parent_id, view.status, view.qty, view.cum_qty, view.cum_notional, view.leaves_qty,
                view.working_qty, now,
            ))  # fmt: skip
            if view.status.is_terminal and self._active.pop(p.parent_id, None) is not None:
                self._emit(ParentDone(p.parent_id, view.status, view.cum_qty, view.cum_notional, view.text, now))

    def _emit(self, event: AlgoEvent) -> None:
        self._outbox.append(event)
        if self._call_events is not None:
            self._call_events.append(event)
        for listener in self._listeners:
            listener(event)
