"""Sequencer: every adapter hears every step's reports once, in order, whoever drove the step."""

from __future__ import annotations

import threading
import time

import pytest

from oms.core.engine import OrderManager
from oms.core.model.enums import CancelReason, OrdStatus, RejectReason, Side
from oms.core.model.messages import Message, OrderAccepted, OrderCanceled, OrderFilled, TradePrinted
from oms.core.venues.internal import InternalVenue
from oms.runtime.metrics import HotPathMetrics
from oms.runtime.sequencer import MAX_JOURNAL_STALL_S, Reports, Sequencer
from tests.stubs import HeldWrites, RecordingGate
from tests.unit.core.test_engine import INSTRUMENTS, new


def make_host() -> Sequencer:
    venue = InternalVenue(INSTRUMENTS)
    return Sequencer(OrderManager(INSTRUMENTS, RecordingGate(), lambda symbol: venue))


def test_every_subscriber_gets_each_step_once_with_the_views_it_left() -> None:
    host = make_host()
    seen_a: list[Reports] = []
    seen_b: list[Reports] = []
    host.subscribe(seen_a.append)
    host.subscribe(seen_b.append)

    host.run(lambda e: e.submit(new("s1", Side.SELL, 60, account="ACC2", session="FIX"), 1))
    host.run(lambda e: e.submit(new("b1", Side.BUY, 100, session="REST"), 2))

    assert seen_a == seen_b and len(seen_a) == 2
    step = seen_a[1]
    assert [type(e) for e, _ in step] == [OrderAccepted, OrderFilled, OrderFilled, TradePrinted]
    views = {e.order_id: v for e, v in step if isinstance(e, OrderFilled)}
    assert views[1] is not None and views[1].status is OrdStatus.FILLED  # the other adapter's order
    assert views[2] is not None and (views[2].status, views[2].cum_qty) == (OrdStatus.PARTIALLY_FILLED, 60)


def test_a_steps_write_may_start_after_its_decisions_and_before_its_reports_are_published() -> None:
    venue = InternalVenue(INSTRUMENTS)
    calls: list[str] = []
    host = Sequencer(OrderManager(INSTRUMENTS, RecordingGate(), lambda symbol: venue),
                     start_write=lambda: calls.append("start write"))  # fmt: skip
    host.subscribe(lambda reports: calls.append(f"published {len(reports)}"))

    host.run(lambda e: e.submit(new("w1"), 1))

    assert calls == ["start write", "published 1"]


def test_run_returns_the_steps_result_and_publish_without_reports_calls_no_one() -> None:
    host = make_host()
    calls: list[Reports] = []
    host.subscribe(calls.append)

    events = host.run(lambda e: e.submit(new("c1"), 1))
    with host.lock:
        host.publish()

    assert [type(e) for e in events] == [OrderAccepted] and len(calls) == 1


def test_an_unsubscribed_adapter_hears_nothing_more() -> None:
    host = make_host()
    calls: list[Reports] = []
    host.subscribe(calls.append)
    host.unsubscribe(calls.append)

    host.run(lambda e: e.submit(new("c1"), 1))

    assert calls == []


def test_what_a_subscriber_does_in_its_callback_is_published_in_the_same_step() -> None:
    host = make_host()
    seen: list[list[str]] = []

    def refill(reports: Reports) -> None:  # like an iceberg algo: a fill of c1 sends the next child
        if any(isinstance(e, OrderFilled) and e.cl_ord_id == "c1" for e, _ in reports):
            host.run(lambda e: e.submit(new("c2", Side.SELL, 10, session="ALGO"), 3))

    host.subscribe(refill)
    host.subscribe(lambda reports: seen.append([type(e).__name__ for e, _ in reports]))
    host.run(lambda e: e.submit(new("c1", Side.SELL, 10, session="ALGO"), 1))
    host.run(lambda e: e.submit(new("b1", Side.BUY, 10, account="ACC2", session="FIX"), 2))

    assert seen == [
        ["OrderAccepted"],
        ["OrderAccepted", "OrderFilled", "OrderFilled", "TradePrinted"],
        ["OrderAccepted"],  # c2, within the second step's publish
    ]


def test_the_host_counts_acks_fills_and_rejects_of_every_step_it_publishes() -> None:
    venue = InternalVenue(INSTRUMENTS)
    metrics = HotPathMetrics()
    host = Sequencer(OrderManager(INSTRUMENTS, RecordingGate(), lambda symbol: venue), metrics=metrics)

    host.run(lambda e: e.submit(new("s1", Side.SELL, 60, account="ACC2", session="FIX"), 1))
    host.run(lambda e: e.submit(new("b1", Side.BUY, 100, session="REST"), 2))
    host.run(lambda e: e.submit(new("b1", Side.BUY, 100, session="REST"), 3))  # duplicate ClOrdID
    snap = metrics.snapshot()

    assert host.metrics is metrics
    assert (snap.acks, snap.fills, snap.rejects) == (2, {"INTERNAL": 2}, {"duplicate_cl_ord_id": 1})


def test_a_venues_step_runs_in_sequence_and_what_it_returns_reaches_every_subscriber() -> None:
    host = make_host()
    (ack,) = host.run(lambda e: e.submit(new("c1", session="FIX"), 1))
    heard: list[Reports] = []
    host.subscribe(heard.append)
    taken_meanwhile: list[bool] = []

    def step() -> list[Message]:  # like a FIX venue translating the venue's own cancel
        other = threading.Thread(target=lambda: taken_meanwhile.append(host.lock.acquire(blocking=False)))
        other.start()
        other.join()
        return [OrderCanceled(ack.order_id, "c1", "ACC1", "AAPL", CancelReason.VENUE, 100, 2)]

    host.apply_venue(step)
    host.apply_venue(list)  # a step with nothing to say publishes nothing

    assert taken_meanwhile == [False]  # no other step could run while the venue's did
    assert [[type(e) for e, _ in reports] for reports in heard] == [[OrderCanceled]]
    order = host.engine.find("FIX", "c1")
    assert order is not None and order.status is OrdStatus.CANCELED


def test_a_failing_subscriber_is_logged_and_counted_and_the_others_and_the_step_go_on(caplog) -> None:
    metrics = HotPathMetrics()
    venue = InternalVenue(INSTRUMENTS)
    host = Sequencer(OrderManager(INSTRUMENTS, RecordingGate(), lambda symbol: venue), metrics=metrics)
    seen: list[Reports] = []

    def broken(reports: Reports) -> None:
        raise ValueError("cannot encode this record")

    host.subscribe(broken, name="algo engine")
    host.subscribe(seen.append)
    with caplog.at_level("ERROR", logger="oms.runtime.sequencer"):
        first = host.run(lambda e: e.submit(new("c1"), 1))
        second = host.run(lambda e: e.submit(new("c2"), 2))

    assert [type(e) for e in first + second] == [OrderAccepted, OrderAccepted]
    assert len(seen) == 2 and host.engine.orders[2].status is OrdStatus.NEW
    assert metrics.snapshot().subscriber_errors == {"algo engine": 2}
    assert caplog.text.count("report subscriber algo engine failed") == 2 and "cannot encode" in caplog.text


# -- the sequencer's thread: batches, group commit, errors --


def started(seal=None) -> Sequencer:  # type: ignore[no-untyped-def]
    venue = InternalVenue(INSTRUMENTS)
    host = Sequencer(OrderManager(INSTRUMENTS, RecordingGate(), lambda symbol: venue), metrics=HotPathMetrics(),
                     seal=seal)  # fmt: skip
    host.start()
    return host


def test_steps_handed_over_while_one_runs_are_taken_as_one_batch_in_order() -> None:
    host = started()
    try:
        gate = threading.Event()
        ran: list[int] = []
        host.post(lambda e: gate.wait(5), pytest.fail)
        for i in range(20):
            host.post(lambda e, i=i: ran.append(i), pytest.fail)
        assert host.waiting() >= 20
        gate.set()
        host.run(lambda e: None)
        assert ran == list(range(20))
        snap = host.metrics.snapshot()
        assert snap.batched_steps == 22 and snap.batches <= 3  # the blocker, the twenty (+ the run, maybe apart)
    finally:
        host.stop()


def test_nothing_is_released_and_no_caller_answered_before_the_batch_is_written() -> None:
    writing = threading.Event()
    written = threading.Event()
    released: list[str] = []

    def seal():  # type: ignore[no-untyped-def]
        def write() -> None:
            writing.set()
            assert written.wait(5)

        return write

    host = started(seal)
    host.after_commit(lambda: (lambda: released.append("sent")))
    try:
        answer: list[object] = []
        caller = threading.Thread(target=lambda: answer.append(host.run(lambda e: e.submit(new("c1"), 1))))
        caller.start()
        assert writing.wait(5)
        time.sleep(0.05)
        assert released == [] and answer == []  # the step ran; its batch is not durable yet
        written.set()
        caller.join(5)
        assert released == ["sent"] and [type(e) for e in answer[0]] == [OrderAccepted]  # type: ignore[index]
    finally:
        written.set()
        host.stop()


def test_a_write_that_fails_is_retried_and_releases_nothing_until_it_lands() -> None:
    attempts: list[int] = []
    released: list[int] = []

    def seal():  # type: ignore[no-untyped-def]
        def write() -> None:
            attempts.append(1)
            if len(attempts) < 3:
                raise ConnectionError("redis gone")

        return write

    host = started(seal)
    host.after_commit(lambda: (lambda: released.append(len(attempts))))
    try:
        host.run(lambda e: e.submit(new("c1"), 1))
        assert released == [3]  # released once, after the third attempt
        assert host.metrics.snapshot().commit_failures == 2
    finally:
        host.stop()


def test_a_posted_step_that_raises_goes_to_its_handler_and_the_rest_of_the_batch_runs() -> None:
    host = started()
    try:
        errors: list[Exception] = []

        def boom(engine: OrderManager) -> None:
            engine.submit(new("c1"), 1)
            raise ValueError("bad message")

        host.post(boom, errors.append)
        events = host.run(lambda e: e.submit(new("c2"), 2))
        assert [str(e) for e in errors] == ["bad message"]
        assert [type(e) for e in events] == [OrderAccepted]
        with pytest.raises(KeyError):
            host.run(lambda e: {}["missing"])  # run raises the step's error in the caller
    finally:
        host.stop()


def test_a_thread_holding_the_lock_runs_its_step_inline_and_writes_after_every_earlier_batch() -> None:
    order: list[str] = []
    sealed: list[int] = []

    def seal():  # type: ignore[no-untyped-def]
        n = len(sealed)
        sealed.append(n)

        def write() -> None:
            time.sleep(0.2 if n == 0 else 0)
            order.append(f"write {n}")

        return write

    host = started(seal)
    try:
        host.post(lambda e: e.submit(new("c1"), 1), pytest.fail)
        time.sleep(0.05)  # the batch is sealed; its write is under way
        with host.lock:
            host.run(lambda e: order.append("inline step"))
        assert order == ["inline step", "write 0", "write 1"]  # the log keeps the order of the batches
    finally:
        host.stop()


def test_a_step_posted_later_from_a_write_runs_on_the_sequencer_even_when_the_write_runs_inline() -> None:
    """A write's callback (the reserved gate's `settle_ready`) may run on a thread committing its batch inline, under
    the lock: a step it ran there would wait for that very commit. `post_later` queues it for the sequencer."""
    ran: list[str] = []
    host: Sequencer | None = None

    def seal():  # type: ignore[no-untyped-def]
        def write() -> None:
            assert host is not None
            host.post_later(lambda e: ran.append(threading.current_thread().name), pytest.fail)

        return write

    host = started(seal)
    try:
        done = threading.Event()

        def inline() -> None:
            with host.lock:
                host.run(lambda e: None)  # inline: its batch is sealed and written on this thread
            done.set()

        threading.Thread(target=inline, name="api").start()
        assert done.wait(5), "the inline step's commit waited for the step its write posted"
        deadline = time.monotonic() + 5
        while not ran and time.monotonic() < deadline:
            time.sleep(0.01)
        assert ran and set(ran) == {"sequencer"}
    finally:
        host.stop()


def test_the_expected_wait_grows_with_the_steps_waiting_and_their_recent_cost() -> None:
    host = started()
    try:
        assert host.expected_wait_s() == 0.0
        for _ in range(5):
            host.run(lambda e: time.sleep(0.01))  # each batch a 10 ms step
        release = threading.Event()
        host.post(lambda e: release.wait(5), pytest.fail)
        time.sleep(0.05)
        for _ in range(10):
            host.post(lambda e: None, pytest.fail)
        waiting = host.expected_wait_s()
        release.set()
        host.run(lambda e: None)
        assert host.waiting() == 0
        assert 10 * 0.001 < waiting < 10 * 0.011  # ten steps at a few ms each (the average moves slowly)
    finally:
        host.stop()


def test_the_commit_lag_is_the_age_of_the_oldest_batch_waiting_for_its_write_and_overloads_the_sequencer() -> None:
    held = HeldWrites()
    writing, written = held.writing, held.release
    host = started(held.seal)
    try:
        assert host.commit_lag_s() == 0.0 and host.lag_s() == 0.0
        host.post(lambda e: e.submit(new("c1"), 1), pytest.fail)
        assert writing.wait(5)
        time.sleep(0.1)
        host.post(lambda e: e.submit(new("c2"), 2), pytest.fail)  # sealed too, behind the stalled write
        time.sleep(0.05)
        lag, total, busy = host.commit_lag_s(), host.lag_s(), host.overloaded()
        written.set()
        host.wait_committed()
        assert 0.15 <= lag < 5 and total >= lag  # the first batch's age, not the second's
        assert busy  # past MAX_DELAY_S: new orders are refused
        assert host.commit_lag_s() == 0.0 and host.outstanding() == 0 and not host.overloaded()
    finally:
        written.set()
        host.stop()


def test_a_stalled_write_shows_how_long_it_has_stalled_and_a_caller_may_stop_waiting_for_it() -> None:
    held = HeldWrites()
    writing, written = held.writing, held.release
    host = started(held.seal)
    try:
        assert host.journal_stalled_s() == 0.0 and host.readiness()["journal"] == "ok"
        host.post(lambda e: e.submit(new("c1"), 1), pytest.fail)
        assert writing.wait(5)
        time.sleep(0.05)
        assert host.journal_stalled_s() >= 0.05 and host.stalled() is RejectReason.NONE
        time.sleep(MAX_JOURNAL_STALL_S)
        assert host.stalled() is RejectReason.JOURNAL_UNAVAILABLE  # new orders are refused at the door
        with pytest.raises(TimeoutError):  # the step runs; its answer waits for the write
            host.run(lambda e: e.find("S1", "c1") is not None, timeout=0.05)
        written.set()
        assert host.run(lambda e: e.find("S1", "c1") is not None, timeout=5)
        assert host.journal_stalled_s() == 0.0 and host.stalled() is RejectReason.NONE
    finally:
        written.set()
        host.stop()


def test_a_batch_that_waits_on_something_shows_how_long_the_sequencer_has_been_on_it() -> None:
    host = started()
    try:
        gate, began = threading.Event(), threading.Event()
        assert host.busy_s() == 0.0
        host.post(lambda e: (began.set(), gate.wait(5)), pytest.fail)
        assert began.wait(5)
        since = time.monotonic()  # the batch began before this
        time.sleep(0.05)
        elapsed = time.monotonic() - since  # read before busy_s reads its clock
        assert host.busy_s() >= elapsed >= 0.05
        assert host.readiness()["sequencer"] == "ok"  # not yet past MAX_JOURNAL_STALL_S
        gate.set()
        host.run(lambda e: None)
        assert host.busy_s() == 0.0
    finally:
        host.stop()
