"""`/metrics` of a real `oms serve`: the state gauges read at scrape time (FIX sessions, journal write-ahead, Redis,
the ClickHouse sink and its lag, kill switches and trading states, venues, the process) show what is true of the
running OMS, and every `oms_*` metric the shipped dashboard and alert rules query is exposed."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from fix_gateway.client import FixClient
from tests.integration.test_serve import configs, start_serve  # noqa: F401 (configs: a fixture)
from tests.unit.deploy.test_monitoring_files import exposed_names, referenced_names

pytestmark = pytest.mark.integration

CLIENT44 = "FIX.4.4:OMS->CLIENT44"
CLIENT42 = "FIX.4.2:OMS->CLIENT42"
RISK = {"X-API-Key": "risk1-dev-secret"}
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(api: str) -> tuple[str, Samples]:
    """The page, and each sample's value by (name, its labels sorted)."""
    text = httpx.get(f"{api}/metrics", timeout=10).text
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    return text, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def labelled(samples: Samples, name: str, label: str) -> dict[str, float]:
    """`name`'s samples by the value of its one label `label`."""
    return {dict(key)[label]: v for (n, key), v in samples.items() if n == name}


def scrape_until(api: str, condition: Callable[[Samples], bool], within_s: float = 30) -> Samples:
    deadline = time.monotonic() + within_s
    while True:
        _, samples = scrape(api)
        if condition(samples) or time.monotonic() > deadline:
            return samples
        time.sleep(0.2)


@pytest.fixture
def serve(configs: tuple[Path, int]) -> Iterator[tuple[subprocess.Popen[str], str, int]]:  # noqa: F811
    config, port = configs
    proc, api = start_serve(config)
    yield proc, api, port
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=120)


def test_metrics_of_a_running_oms_show_its_sessions_journal_sink_accounts_and_process(
    serve: tuple[subprocess.Popen[str], str, int], tmp_path: Path
) -> None:
    _, api, port = serve
    _, before = scrape(api)
    client = FixClient("FIX.4.4", "CLIENT44", port, tmp_path / "client", password="client44-dev").start()
    try:
        client.new_order("s1", "AAPL", "2", "100", "150", account="ACC1")
        client.new_order("b1", "AAPL", "1", "40", "150", account="ACC2")
        client.expect(4, timeout=30)  # two acks, two fills
        client.new_order("big", "AAPL", "1", "100", "250", account="TIGHT1")
        client.expect(1, timeout=30)  # rejected: above the account's max notional
        kill = httpx.post(f"{api}/v1/accounts/ACC1/kill-switch", headers=RISK, json={"on": True}, timeout=30)
        # the sink commits what was journaled: its lag comes back to nothing
        during = scrape_until(api, lambda s: value(s, "oms_account_kill_switch", account="ACC1") == 1
                              and sum(labelled(s, "oms_sink_lag_entries", "stream").values()) == 0)  # fmt: skip
        text, _ = scrape(api)
    finally:
        client.stop()
    after = scrape_until(api, lambda s: value(s, "oms_fix_session_logged_on", session=CLIENT44) == 0)

    assert kill.status_code == 200, kill.text
    # FIX: one client logged on, then off
    assert before[("oms_fix_session_logged_on", (("session", CLIENT44),))] == 0
    assert labelled(during, "oms_fix_session_logged_on", "session")[CLIENT44] == 1
    assert labelled(during, "oms_fix_session_logged_on", "session")[CLIENT42] == 0
    assert value(during, "oms_fix_sessions_configured") == len(labelled(during, "oms_fix_session_logged_on", "session"))
    assert value(during, "oms_fix_door_up") == 1
    assert value(after, "oms_fix_session_logged_on", session=CLIENT44) == 0
    # the journal and Redis are well
    assert 0 <= value(during, "oms_journal_stalled_seconds") < 1
    assert value(during, "oms_journal_outstanding_batches") >= 0
    assert 0 <= value(during, "oms_sequencer_busy_seconds") < 1 and value(during, "oms_sequencer_waiting_steps") >= 0
    assert value(during, "oms_redis_up") == 1 and 0 < value(during, "oms_redis_ping_seconds") < 0.5
    # the sink runs, reads every account journal and the OMS's own streams, and has caught up
    lag = labelled(during, "oms_sink_lag_entries", "stream")
    assert value(during, "oms_sink_up") == 1
    assert {"oms:tape", "oms:journal:ACC1", "oms:journal:ACC2", "oms:records:journal:events"} <= set(lag)
    assert set(lag.values()) == {0} and set(labelled(during, "oms_sink_lag_seconds", "stream").values()) == {0}
    assert set(labelled(during, "oms_sink_pending_entries", "stream").values()) == {0}
    # accounts: the kill switch pulled on ACC1 only; ACC2 trades
    kills = labelled(during, "oms_account_kill_switch", "account")
    assert kills["ACC1"] == 1 and {a for a, on in kills.items() if on} == {"ACC1"}
    assert value(during, "oms_account_trading_state", account="ACC2", state="active") == 1
    assert value(during, "oms_account_trading_state", account="ACC2", state="halted") == 0
    assert labelled(during, "oms_venue_connected", "venue")["INTERNAL"] == 1
    # the hot path counted the flow; no source failed
    assert labelled(during, "oms_orders_in_total", "channel")["fix"] == 3
    assert labelled(during, "oms_rejects_total", "reason")["max_order_notional"] >= 1
    assert labelled(during, "oms_scrape_errors_total", "collector") == {}
    # the process
    assert value(during, "oms_process_cpu_seconds_total") > 0
    assert value(during, "oms_process_resident_memory_bytes") > 50e6
    assert value(during, "oms_process_open_fds") > 10
    assert time.time() - 600 < value(during, "oms_process_start_time_seconds") < time.time()
    # what the dashboard and the alerts query is there
    assert referenced_names() - exposed_names(text) == set()
