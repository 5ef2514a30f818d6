"""The shipped monitoring files: Prometheus accepts the alert rules and the example configuration and each alert fires
as its unit tests say (promtool), every expression of the Grafana dashboard is valid PromQL, and every `oms_*` metric
they reference is one the OMS exposes (here over the process registry with every state collector fed;
`tests/integration/test_monitoring.py` checks the same against a real `oms serve`)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest

from oms.runtime.metrics import (
    REGISTRY,
    AccountFlags,
    AccountGauges,
    FixSessionGauges,
    JournalGauges,
    RedisGauges,
    SinkGauges,
    StreamLag,
    VenueGauges,
)

DEPLOY = Path(__file__).parents[3] / "deploy"
RULES = DEPLOY / "prometheus" / "oms-alerts.yml"
RULE_TESTS = DEPLOY / "prometheus" / "oms-alerts.test.yml"
CONFIG = DEPLOY / "prometheus" / "prometheus.yml"
DASHBOARD = DEPLOY / "grafana" / "oms-dashboard.json"
ALERTS = {"OmsDown", "OmsJournalStalled", "OmsRedisDown", "OmsSinkDown", "OmsSinkLagHigh", "OmsFixSessionDown",
          "OmsKillSwitchEngaged", "OmsAckLatencyHigh"}  # fmt: skip
# Grafana's variables, as a query would see them once Grafana has expanded them
_GRAFANA_VARS = {"$__rate_interval": "1m", "$instance": ".*"}
_NAME = re.compile(r"\boms_[a-zA-Z0-9_]+")
_LABEL_VALUES = re.compile(r"^label_values\((.+),\s*\w+\)$")


def promtool() -> str:
    """The promtool binary: CI installs it (scripts/setup.sh, Debian's `prometheus`); missing is a failure."""
    path = shutil.which("promtool")
    assert path is not None, "promtool is not installed: apt-get install prometheus (scripts/setup.sh does)"
    return path


def dashboard_exprs() -> list[str]:
    """Every PromQL expression of the dashboard (panels' targets and query variables), Grafana variables expanded."""
    dash = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    # a query variable's label_values(metric, label) is Grafana's: the PromQL it runs is the metric's series
    exprs += [_LABEL_VALUES.sub(r"\1", v["definition"]) for v in dash["templating"]["list"] if v["type"] == "query"]
    out = []
    for expr in exprs:
        for var, value in _GRAFANA_VARS.items():
            expr = expr.replace(var, value)
        out.append(expr)
    return out


def rule_exprs() -> list[str]:
    return [rule["expr"] for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def referenced_names() -> set[str]:
    """Every `oms_*` series name the dashboard and the alert rules query (label_values' metric included)."""
    return {m for expr in [*dashboard_exprs(), *rule_exprs()] for m in _NAME.findall(expr)}


def exposed_names(text: str) -> set[str]:
    """Every series name a Prometheus text exposition can answer for: each family's (with a histogram's _bucket,
    _count and _sum) and each sample's."""
    names: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            names.add(name)
            if kind == "histogram":
                names |= {f"{name}_bucket", f"{name}_count", f"{name}_sum"}
        elif line and not line.startswith("#"):
            match = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line)
            assert match is not None
            names.add(match.group())
    return names


def test_promtool_accepts_the_alert_rules_and_the_example_config() -> None:
    rules = subprocess.run([promtool(), "check", "rules", str(RULES)], capture_output=True, text=True)
    config = subprocess.run([promtool(), "check", "config", str(CONFIG)], capture_output=True, text=True)

    assert rules.returncode == 0, rules.stdout + rules.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in rules.stdout
    assert config.returncode == 0, config.stdout + config.stderr


def test_each_alert_fires_when_and_only_when_its_condition_has_lasted(tmp_path: Path) -> None:
    """promtool's unit tests of the rules (deploy/prometheus/oms-alerts.test.yml): every alert is tested."""
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]

    done = subprocess.run([promtool(), "test", "rules", str(RULE_TESTS)], capture_output=True, text=True)

    assert done.returncode == 0, done.stdout + done.stderr
    assert {case["alertname"] for test in tests for case in test["alert_rule_test"] if case["exp_alerts"]} == ALERTS


def test_the_rules_file_has_every_alert_an_operator_is_told_about() -> None:
    rules = [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]
    docs = (Path(__file__).parents[3] / "docs" / "operations.md").read_text()

    assert {rule["alert"] for rule in rules} == ALERTS
    assert all(rule["annotations"]["summary"] and rule["annotations"]["description"] for rule in rules)
    assert [alert for alert in sorted(ALERTS) if f"`{alert}`" not in docs] == []


def test_every_dashboard_expression_is_valid_promql(tmp_path: Path) -> None:
    """promtool parses each expression as a recording rule (it has no other offline PromQL check)."""
    exprs = dashboard_exprs()
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:expr_{i}", "expr": expr} for i, expr in enumerate(exprs)]}]}  # fmt: skip
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(yaml.safe_dump(rules))

    done = subprocess.run([promtool(), "check", "rules", str(path)], capture_output=True, text=True)

    assert done.returncode == 0, done.stdout + done.stderr
    assert len(exprs) >= 20


def test_the_dashboard_shows_what_an_operator_watches() -> None:
    dash = json.loads(DASHBOARD.read_text())
    titles = {p["title"] for p in dash["panels"]}
    names = {m for expr in dashboard_exprs() for m in _NAME.findall(expr)}

    assert dash["uid"] == "oms-overview"
    assert {v["name"] for v in dash["templating"]["list"]} == {"datasource", "instance"}
    assert {"Orders in by channel", "Order in -> ack out latency", "Rejects by reason", "FIX sessions logged on",
            "Sink lag (age)", "Journal write-ahead", "Kill switches engaged", "CPU",
            "Resident memory"} <= titles  # fmt: skip
    assert {"oms_orders_in_total", "oms_stage_seconds_bucket", "oms_rejects_total", "oms_fix_session_logged_on",
            "oms_sink_lag_seconds", "oms_journal_stalled_seconds", "oms_account_kill_switch",
            "oms_process_cpu_seconds_total", "oms_process_resident_memory_bytes"} <= names  # fmt: skip
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))


def test_every_metric_the_dashboard_and_rules_query_is_exposed_by_the_process_registry() -> None:
    """The process registry (hot path, scrape errors, process) plus one of each state collector, fed."""
    registry = CollectorRegistry()
    for collector in (
        FixSessionGauges(lambda: {"FIX.4.4:OMS->C": True}, lambda: True),
        JournalGauges(lambda: 0.0, lambda: 0, lambda: 0.0, lambda: 0.0, lambda: 0),
        RedisGauges(lambda: True),
        SinkGauges(lambda: True, lambda: {"oms:tape": StreamLag(0, 0, 0.0)}),
        AccountGauges(lambda: {"ACC1": AccountFlags(False, "active")}),
        VenueGauges(lambda: {"INTERNAL": True}),
    ):
        registry.register(collector)  # type: ignore[arg-type]
    text = (generate_latest(REGISTRY) + generate_latest(registry)).decode()

    missing = referenced_names() - exposed_names(text)

    assert missing == set()


@pytest.mark.parametrize("text, names", [
    ("# TYPE a_seconds histogram\na_seconds_bucket{le=\"1\"} 1\n", {"a_seconds", "a_seconds_bucket", "a_seconds_count",
                                                                   "a_seconds_sum"}),
    ("# TYPE b_total counter\n", {"b_total"}),
    ("c{x=\"1\"} 2\n", {"c"}),
])  # fmt: skip
def test_exposed_names_reads_families_and_samples(text: str, names: set[str]) -> None:
    assert exposed_names(text) == names
