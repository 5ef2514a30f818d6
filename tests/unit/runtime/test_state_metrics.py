"""The state collectors `/metrics` reads at scrape time: each turns what its source answers into gauges, and a source
that fails is logged, counted in `oms_scrape_errors` and left out of that scrape without breaking it."""

from __future__ import annotations

import logging
import time

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from oms.runtime.metrics import (
    REGISTRY,
    AccountFlags,
    AccountGauges,
    FixSessionGauges,
    JournalGauges,
    RedisGauges,
    ScrapeErrors,
    SinkGauges,
    StateCollector,
    StreamLag,
    VenueGauges,
)
from oms.runtime.sequencer import Sequencer
from tests.stubs import HeldWrites
from tests.unit.core.test_engine import new
from tests.unit.runtime.test_sequencer import started

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(*collectors: object, registry: CollectorRegistry | None = None) -> Samples:
    """Each sample's value by (name, its labels sorted), of a registry holding `collectors`."""
    if registry is None:
        registry = CollectorRegistry()
        for collector in collectors:
            registry.register(collector)  # type: ignore[arg-type]
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(generate_latest(registry).decode())
        for s in family.samples
    }


def names(samples: Samples) -> set[str]:
    return {name for name, _ in samples}


def boom() -> dict[str, bool]:
    raise ConnectionError("no answer")


def test_fix_sessions_show_each_sessions_logon_and_how_many_are_configured() -> None:
    states = {"FIX.4.2:OMS->A": True, "FIX.4.4:OMS->B": False}

    samples = scrape(FixSessionGauges(lambda: states, lambda: True))

    assert samples[("oms_fix_session_logged_on", (("session", "FIX.4.2:OMS->A"),))] == 1
    assert samples[("oms_fix_session_logged_on", (("session", "FIX.4.4:OMS->B"),))] == 0
    assert samples[("oms_fix_sessions_configured", ())] == 2 and samples[("oms_fix_door_up", ())] == 1
    assert "oms_fix_door_up" not in names(scrape(FixSessionGauges(lambda: states)))


def test_a_stalled_write_ahead_shows_in_the_journal_gauges_and_clears_once_it_lands() -> None:
    held = HeldWrites()
    writing, written = held.writing, held.release
    host = started(held.seal)
    gauges = journal_gauges(host)
    try:
        idle = scrape(gauges)
        host.post(lambda e: e.submit(new("c1"), 1), pytest.fail)
        assert writing.wait(5)
        time.sleep(0.1)
        stalled = scrape(gauges)
        written.set()
        host.wait_committed()
        after = scrape(gauges)
    finally:
        written.set()
        host.stop()

    assert idle[("oms_journal_stalled_seconds", ())] == 0 and idle[("oms_journal_outstanding_batches", ())] == 0
    assert stalled[("oms_journal_stalled_seconds", ())] >= 0.1
    assert stalled[("oms_journal_outstanding_batches", ())] == 1
    assert idle[("oms_journal_commit_lag_seconds", ())] == 0 and stalled[("oms_journal_commit_lag_seconds", ())] >= 0.1
    assert after[("oms_journal_commit_lag_seconds", ())] == 0
    assert after[("oms_journal_stalled_seconds", ())] == 0 and after[("oms_journal_outstanding_batches", ())] == 0
    assert after[("oms_sequencer_busy_seconds", ())] == 0 and after[("oms_sequencer_waiting_steps", ())] == 0


def journal_gauges(host: Sequencer) -> JournalGauges:
    from oms.apps.monitoring import outstanding_batches

    return JournalGauges(
        host.journal_stalled_s, outstanding_batches(host), host.commit_lag_s, host.busy_s, host.waiting
    )


def test_redis_that_answers_is_up_with_its_ping_time_and_one_that_does_not_is_down_without_an_error() -> None:
    errors = ScrapeErrors()

    up = scrape(RedisGauges(lambda: True, errors))
    down = scrape(RedisGauges(boom, errors))

    assert up[("oms_redis_up", ())] == 1 and 0 <= up[("oms_redis_ping_seconds", ())] < 1
    assert down[("oms_redis_up", ())] == 0 and "oms_redis_ping_seconds" not in names(down)
    assert errors.counts() == {}  # Redis being down is the answer, not a failure to read it


def test_the_sink_shows_its_process_and_each_streams_lag() -> None:
    lag = {"oms:journal:ACC1": StreamLag(3, 2, 1.5), "oms:tape": StreamLag(0, 0, 0.0)}

    samples = scrape(SinkGauges(lambda: False, lambda: lag))

    assert samples[("oms_sink_up", ())] == 0
    assert samples[("oms_sink_lag_entries", (("stream", "oms:journal:ACC1"),))] == 5
    assert samples[("oms_sink_pending_entries", (("stream", "oms:journal:ACC1"),))] == 2
    assert samples[("oms_sink_lag_seconds", (("stream", "oms:journal:ACC1"),))] == 1.5
    assert samples[("oms_sink_lag_entries", (("stream", "oms:tape"),))] == 0
    assert "oms_sink_lag_entries" not in names(scrape(SinkGauges(lambda: True, None)))


def test_a_failing_source_is_left_out_counted_and_logged_and_the_rest_of_the_scrape_stands(
    caplog: pytest.LogCaptureFixture,
) -> None:
    errors = ScrapeErrors()
    registry = CollectorRegistry()
    registry.register(SinkGauges(lambda: True, boom, errors))  # type: ignore[arg-type]
    registry.register(VenueGauges(lambda: {"INTERNAL": True}, errors))  # type: ignore[arg-type]
    registry.register(errors)  # type: ignore[arg-type]  # after the parts: it shows this scrape's failures

    with caplog.at_level(logging.WARNING, "oms.runtime.metrics"):
        first = scrape(registry=registry)
        second = scrape(registry=registry)

    assert first[("oms_sink_up", ())] == 1 and first[("oms_venue_connected", (("venue", "INTERNAL"),))] == 1
    assert not {"oms_sink_lag_entries", "oms_sink_lag_seconds"} & names(first)
    assert first[("oms_scrape_errors_total", (("collector", "sink_lag"),))] == 1
    assert second[("oms_scrape_errors_total", (("collector", "sink_lag"),))] == 2
    failures = [r for r in caplog.records if "sink_lag" in r.getMessage()]
    assert len(failures) == 2 and failures[0].exc_info is not None and failures[1].exc_info is None
    assert "ConnectionError: no answer" in failures[1].getMessage()


def test_a_source_that_recovers_is_exposed_again_and_logs_its_next_failure_in_full(
    caplog: pytest.LogCaptureFixture,
) -> None:
    answers: list[bool] = [False, True, False]

    def part() -> list:  # type: ignore[type-arg]
        if not answers.pop(0):
            raise OSError("down")
        return []

    collector = StateCollector({"part": part}, ScrapeErrors())
    with caplog.at_level(logging.WARNING, "oms.runtime.metrics"):
        for _ in range(3):
            list(collector.collect())

    assert [r.exc_info is not None for r in caplog.records] == [True, True]


def test_accounts_show_their_kill_switch_and_one_trading_state_each() -> None:
    flags = {"ACC1": AccountFlags(True, "halted"), "ACC2": AccountFlags(False, "active")}

    samples = scrape(AccountGauges(lambda: flags))

    assert samples[("oms_account_kill_switch", (("account", "ACC1"),))] == 1
    assert samples[("oms_account_kill_switch", (("account", "ACC2"),))] == 0
    states = {k: v for (n, k), v in samples.items() if n == "oms_account_trading_state"}
    assert states == {
        (("account", "ACC1"), ("state", "active")): 0, (("account", "ACC1"), ("state", "reducing")): 0,
        (("account", "ACC1"), ("state", "halted")): 1, (("account", "ACC2"), ("state", "active")): 1,
        (("account", "ACC2"), ("state", "reducing")): 0, (("account", "ACC2"), ("state", "halted")): 0,
    }  # fmt: skip


def test_registering_a_collector_reads_no_source() -> None:
    calls: list[str] = []

    def read() -> dict[str, bool]:
        calls.append("read")
        return {}

    CollectorRegistry(auto_describe=True).register(FixSessionGauges(read))  # type: ignore[arg-type]

    assert calls == []


def test_the_process_registry_shows_the_processs_cpu_memory_fds_and_start_time() -> None:
    samples = scrape(registry=REGISTRY)

    assert samples[("oms_process_cpu_seconds_total", ())] > 0
    assert samples[("oms_process_resident_memory_bytes", ())] > 1e6
    assert samples[("oms_process_open_fds", ())] >= 3 and samples[("oms_process_max_fds", ())] > 0
    assert 0 < time.time() - samples[("oms_process_start_time_seconds", ())] < 86_400
