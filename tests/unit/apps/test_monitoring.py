"""`AppMetrics`: the state collectors of a running OMS, registered and taken out again; with Redis out of reach the
scrape still answers, saying so."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from fix_gateway.settings import SessionSpec
from oms.apps.monitoring import AppMetrics, fix_session_states
from oms.core.venues.internal import InternalVenue
from oms.infra.redis.server import free_port
from oms.runtime.metrics import REGISTRY, SCRAPE_ERRORS
from tests.unit.core.test_engine import INSTRUMENTS
from tests.unit.runtime.test_sequencer import make_host


class Process:
    """A child process that is running or not."""

    def __init__(self, running: bool) -> None:
        self.running = running


def spec(target: str) -> SessionSpec:
    return SessionSpec("FIX.4.4", "OMS", target, ("ACC1",), None, False, {})


def families(registry: CollectorRegistry) -> dict[str, list[tuple[dict[str, str], float]]]:
    return {
        f.name: [(s.labels, s.value) for s in f.samples]
        for f in text_string_to_metric_families(generate_latest(registry).decode())
    }


def test_with_redis_out_of_reach_the_scrape_says_so_and_leaves_only_the_sinks_lag_out() -> None:
    registry = CollectorRegistry()
    metrics = AppMetrics(
        make_host(), f"redis://127.0.0.1:{free_port()}/0", {"INTERNAL": InternalVenue(INSTRUMENTS)},
        fix_sessions=[spec("C1"), spec("C2")], door=Process(False), sink=Process(True), registry=registry,
    ).register()  # fmt: skip
    try:
        seen = families(registry)
    finally:
        metrics.close()
    metrics.close()

    assert seen["oms_redis_up"] == [({}, 0)]
    assert seen["oms_sink_up"] == [({}, 1)] and "oms_sink_lag_entries" not in seen  # measured in Redis: left out
    assert seen["oms_fix_session_logged_on"] == [({"session": "FIX.4.4:OMS->C1"}, 0),
                                                 ({"session": "FIX.4.4:OMS->C2"}, 0)]  # fmt: skip
    assert seen["oms_fix_door_up"] == [({}, 0)] and seen["oms_venue_connected"] == [({"venue": "INTERNAL"}, 1)]
    assert seen["oms_journal_stalled_seconds"] == [({}, 0)]
    assert "oms_account_kill_switch" not in seen  # no accounts given
    assert families(registry) == {}  # closed: nothing left registered


def test_no_session_is_logged_on_without_an_acceptor() -> None:
    assert fix_session_states([spec("C1")])() == {"FIX.4.4:OMS->C1": False}


def test_on_the_process_registry_a_scrape_counts_its_own_failures() -> None:
    before = SCRAPE_ERRORS.counts().get("sink_lag", 0)
    metrics = AppMetrics(make_host(), f"redis://127.0.0.1:{free_port()}/0", {}, sink=Process(True)).register()
    try:
        seen = families(REGISTRY)
    finally:
        metrics.close()

    assert ({"collector": "sink_lag"}, before + 1) in seen["oms_scrape_errors"]
    assert "oms_sink_up" not in families(REGISTRY)
