"""`oms serve` when Redis, its journal, stalls or dies: every order gets a definite answer within the deadline
(JOURNAL_UNAVAILABLE, never a traceback or a hang), readiness says why, and order entry resumes by itself."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from fix_gateway import tags as T
from fix_gateway.client import FixClient
from oms.core.accounts import AccountEvent
from oms.core.model.messages import OrderAccepted
from oms.infra.redis.journal import Journal
from oms.infra.redis.server import ManagedRedis, make_client
from oms.runtime.sequencer import MAX_JOURNAL_STALL_S
from tests.integration.procs import descendants, gone_within, listening, name
from tests.integration.test_serve import configs, read_until_ready  # noqa: F401 (a fixture)

pytestmark = pytest.mark.integration

TRADER = {"X-API-Key": "trader1-dev-secret"}
ORDER = {"account": "ACC1", "symbol": "AAPL", "side": "buy", "qty": "1", "price": "149"}


def _serve(config: Path) -> tuple[subprocess.Popen[str], str, str]:
    """`oms serve`, once ready; the URLs of its API and of its Redis."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "oms", "serve", "--config", str(config)], stdout=subprocess.PIPE, text=True
    )
    lines = read_until_ready(proc)
    api = next(line.split()[1] for line in lines if line.startswith("api "))
    url = next(line.split()[1] for line in lines if line.startswith("redis "))
    return proc, api, url


def _redis_pid(url: str) -> int:
    client = make_client(url)
    try:
        return int(client.info("server")["process_id"])
    finally:
        client.close()


def test_a_stalled_journal_refuses_new_orders_at_once_and_order_entry_resumes_when_it_answers(
    configs: tuple[Path, int],  # noqa: F811
    tmp_path: Path,
) -> None:
    config, port = configs
    proc, api, url = _serve(config)
    pid = _redis_pid(url)
    client = FixClient("FIX.4.4", "CLIENT44", port, tmp_path / "client", password="client44-dev").start()
    try:
        client.new_order("before", "AAPL", "1", "1", "149", account="ACC2")
        (before,) = client.expect(1, timeout=30)
        os.kill(pid, signal.SIGSTOP)
        try:
            client.new_order("held", "AAPL", "1", "1", "149", account="ACC2")  # taken: answered once Redis is back
            time.sleep(MAX_JOURNAL_STALL_S + 0.5)
            sent = time.monotonic()
            client.new_order("refused", "AAPL", "1", "1", "149", account="ACC2")
            (refused,) = client.expect(1, timeout=10)
            refused_in = time.monotonic() - sent
            client.cancel("x-before", "before", "AAPL", "1", "1")
            rest = httpx.post(f"{api}/v1/orders", headers=TRADER, json=ORDER, timeout=30)
            ready = httpx.get(f"{api}/readyz", timeout=30)
        finally:
            os.kill(pid, signal.SIGCONT)
        later = {m[T.CL_ORD_ID]: m for m in client.expect(2, timeout=30)}  # the order taken, the cancel
        client.new_order("after", "AAPL", "1", "1", "149", account="ACC2")
        (after,) = client.expect(1, timeout=30)
        ready_after = httpx.get(f"{api}/readyz", timeout=30)
    finally:
        client.stop()
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=120)

    assert before[T.EXEC_TYPE] == "0"
    # refused at once, unseen: JOURNAL_UNAVAILABLE when the committer's write stalls, SYSTEM_BUSY when the sequencer
    # is held up by an account actor waiting on the journal (this account's orders are decided there: no reference
    # price yet)
    assert (refused[T.CL_ORD_ID], refused[T.EXEC_TYPE], refused[T.ORD_REJ_REASON]) == ("refused", "8", "0")
    assert refused[T.TEXT].startswith(("journal unavailable", "system busy")) and refused_in < 5
    assert rest.status_code == 503 and rest.json()["code"] in ("journal_unavailable", "system_busy")
    assert ready.status_code == 503 and ready.json()["status"] == "not_ready"
    failing = {k for k, v in ready.json()["checks"].items() if v != "ok"}
    assert "redis" in failing and failing & {"journal", "sequencer"}, ready.json()
    assert later["held"][T.EXEC_TYPE] == "0"  # taken before the stall showed: acknowledged once it is durable
    assert (later["x-before"][T.EXEC_TYPE], later["x-before"][T.ORIG_CL_ORD_ID]) == ("4", "before")  # and the cancel
    assert (after[T.CL_ORD_ID], after[T.EXEC_TYPE]) == ("after", "0")
    assert ready_after.status_code == 200 and ready_after.json()["status"] == "ready", ready_after.text


def test_the_managed_redis_is_started_again_when_it_dies_and_nothing_acknowledged_is_lost(
    configs: tuple[Path, int],  # noqa: F811
    tmp_path: Path,
) -> None:
    config, port = configs
    proc, api, url = _serve(config)
    client = FixClient("FIX.4.4", "CLIENT44", port, tmp_path / "client", password="client44-dev").start()
    answers: dict[str, str] = {}
    try:
        for n in range(20):
            client.new_order(f"a{n}", "AAPL", "1", "1", "149", account="ACC2")
        answers.update((m[T.CL_ORD_ID], m[T.EXEC_TYPE]) for m in client.expect(20, timeout=30))
        os.kill(_redis_pid(url), signal.SIGKILL)
        deadline = time.monotonic() + 30
        n = 0
        while time.monotonic() < deadline:  # orders go on: each is answered, refused while Redis is away
            n += 1
            client.new_order(f"b{n}", "AAPL", "1", "1", "149", account="ACC2")
            m = client.next(timeout=15)
            answers[m[T.CL_ORD_ID]] = m[T.EXEC_TYPE]
            if m[T.EXEC_TYPE] == "0" and n > 1:
                break
            time.sleep(0.1)
        ready = httpx.get(f"{api}/readyz", timeout=30)
        revived = _redis_pid(url)
    finally:
        client.stop()
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=120)

    assert answers[f"b{n}"] == "0", "order entry did not resume within 30 s of the kill"
    assert ready.status_code == 200, ready.text
    assert revived > 0 and proc.returncode == 0
    acked = {cl for cl, kind in answers.items() if kind == "0"}
    with ManagedRedis(tmp_path / "redis") as server:
        client = make_client(server.url)
        try:
            journaled = {r.cl_ord_id for _, r in Journal(client, AccountEvent).read("ACC2")
                         if isinstance(r, OrderAccepted)}  # fmt: skip
        finally:
            client.close()
    assert acked <= journaled, f"acknowledged, not journaled: {sorted(acked - journaled)[:5]}"


def test_readyz_says_ready_with_each_check_once_the_oms_has_started(configs: tuple[Path, int]) -> None:  # noqa: F811
    config, _ = configs
    proc, api, _ = _serve(config)
    try:
        ready = httpx.get(f"{api}/readyz", timeout=30)
        live = httpx.get(f"{api}/healthz", timeout=30)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=120)

    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    checks = ready.json()["checks"]
    assert {"reconciled", "order_entry", "journal", "redis", "accounts", "sink", "fix_sessions"} <= set(checks)
    assert all(v.startswith("ok") for v in checks.values()), checks
    assert live.status_code == 200


def test_a_sigkilled_oms_leaves_no_process_behind(configs: tuple[Path, int]) -> None:  # noqa: F811
    config, _ = configs
    proc, _, _ = _serve(config)
    below = descendants(proc.pid)
    names = {pid: name(pid) for pid in below}
    # Ray's agents are the raylet's children, not the OMS's: the ones a SIGKILL used to leave running
    assert {"ray::DashboardAgent", "ray::RuntimeEnvAgent"} <= set(names.values()), names

    proc.kill()
    proc.communicate(timeout=30)
    left = gone_within(below, 20)

    assert not left, {p: names[p] for p in left}


def test_the_ray_cluster_of_oms_serve_listens_on_loopback_only(configs: tuple[Path, int]) -> None:  # noqa: F811
    config, _ = configs
    proc, _, _ = _serve(config)
    try:
        below = descendants(proc.pid)
        ray_pids = [p for p in below if "ray" in Path(f"/proc/{p}/cmdline").read_bytes().decode(errors="replace")]
        heard = listening(ray_pids)
    finally:
        proc.terminate()
        proc.communicate(timeout=120)

    assert len(heard) >= 3, heard  # the GCS, the raylet, the workers (at least)
    assert all(ip.is_loopback for ip, _ in heard), heard
