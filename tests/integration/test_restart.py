"""A restart of `oms serve` after a crash: every earlier order is known again (status requests, duplicate
ClOrdIDs, PossResend, the REST order list), and what the lost internal book held is canceled, journaled and
reported, so the accounts hold no ghost exposure."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx
import pytest

from fix_gateway import tags as T
from fix_gateway.client import FixClient
from tests.integration.test_serve import configs, start_serve  # noqa: F401 (a fixture)

pytestmark = pytest.mark.integration

TRADER = {"X-API-Key": "trader1-dev-secret"}
IDEMPOTENT = {**TRADER, "Idempotency-Key": "k-1"}
REST_ORDER = {"account": "ACC1", "symbol": "AAPL", "side": "sell", "qty": "5", "price": "155"}


def test_a_restart_after_sigkill_knows_every_earlier_order_and_cancels_what_the_lost_book_held(
    configs: tuple[Path, int],  # noqa: F811
    tmp_path: Path,
) -> None:
    config, port = configs
    proc, api = start_serve(config)
    client = FixClient("FIX.4.4", "CLIENT44", port, tmp_path / "client", password="client44-dev").start()
    try:
        client.new_order("s1", "AAPL", "2", "50", "150", account="ACC1")
        client.new_order("b1", "AAPL", "1", "20", "150", account="ACC2")
        first = client.expect(4, timeout=30)  # both acks, both fills
        client.new_order("r1", "AAPL", "1", "10", "145", account="ACC2")
        (rested,) = client.expect(1, timeout=30)
        rest = httpx.post(f"{api}/v1/orders", headers=IDEMPOTENT, json=REST_ORDER, timeout=30).json()
    finally:
        client.stop()
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=60)
    assert {(m[T.CL_ORD_ID], m[T.EXEC_TYPE]) for m in first} == {("s1", "0"), ("b1", "0"), ("s1", "F"), ("b1", "F")}
    assert rested[T.EXEC_TYPE] == "0" and rest["status"] == "new"

    proc, api = start_serve(config)
    client = FixClient("FIX.4.4", "CLIENT44", port, tmp_path / "client", password="client44-dev").start()
    try:
        # sent while the session was away: they come with the session's resend at logon
        canceled = {m[T.CL_ORD_ID]: m for m in client.expect(2, timeout=30)}
        client.send(T.MT_ORDER_STATUS_REQUEST, {T.CL_ORD_ID: "b1", T.SYMBOL: "AAPL", T.SIDE: "1",
                                                 T.ORD_STATUS_REQ_ID: "q1"})  # fmt: skip
        (status,) = client.expect(1, timeout=30)
        client.new_order("b1", "AAPL", "1", "20", "150", account="ACC2", extra={T.POSS_RESEND: "Y"})
        (resent,) = client.expect(1, timeout=30)
        client.new_order("b1", "AAPL", "1", "20", "150", account="ACC2")
        (duplicate,) = client.expect(1, timeout=30)
        client.cancel("x-r1", "r1", "AAPL", "1", "10")
        (too_late,) = client.expect(1, timeout=30)
        listed = httpx.get(f"{api}/v1/orders", headers=TRADER, params={"status": "all"}, timeout=30).json()
        retried = httpx.post(f"{api}/v1/orders", headers=IDEMPOTENT, json=REST_ORDER, timeout=30)
        changed = httpx.post(f"{api}/v1/orders", headers=IDEMPOTENT, json={**REST_ORDER, "qty": "6"}, timeout=30)
        risk = {a: httpx.get(f"{api}/v1/accounts/{a}/risk", headers=TRADER, timeout=30).json()
                for a in ("ACC1", "ACC2")}  # fmt: skip
        client.new_order("n1", "AAPL", "1", "5", "145", account="ACC2")
        (fresh,) = client.expect(1, timeout=30)
    finally:
        client.stop()
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=120)

    assert set(canceled) == {"s1", "r1"}  # the working ones: their book died with the process
    kinds = {(m[T.EXEC_TYPE], m[T.ORD_STATUS], m[T.TEXT]) for m in canceled.values()}
    assert kinds == {("4", "4", "canceled: restart")}
    assert (canceled["s1"][T.CUM_QTY], canceled["s1"][T.LEAVES_QTY]) == ("20", "0")
    assert (status[T.CL_ORD_ID], status[T.EXEC_TYPE], status[T.ORD_STATUS], status[T.CUM_QTY]) == ("b1", "I", "2", "20")
    assert status[T.ORD_STATUS_REQ_ID] == "q1" and status[T.ORDER_ID] == first[1][T.ORDER_ID]
    assert (resent[T.EXEC_TYPE], resent[T.ORD_STATUS], resent[T.ORDER_ID]) == ("I", "2", status[T.ORDER_ID])
    assert (duplicate[T.EXEC_TYPE], duplicate[T.ORD_REJ_REASON]) == ("8", "6")
    assert (too_late[T.MSG_TYPE], too_late[T.CXL_REJ_REASON]) == ("9", "0")
    by_id = {o["order_id"]: o for o in listed}
    assert by_id[rest["order_id"]]["status"] == "canceled"  # the REST order: known, and canceled
    assert {o["status"] for o in listed} == {"filled", "canceled"}
    assert all(o["created_at"] and o["updated_at"] for o in listed)  # earlier runs' orders keep their times
    assert by_id[rest["order_id"]]["canceled_at"] is not None
    # the Idempotency-Key outlives the process: the retry gets the order the first request made, not a second one
    assert retried.status_code == 201 and retried.headers["Idempotent-Replayed"] == "true"
    assert (retried.json()["order_id"], retried.json()["status"]) == (rest["order_id"], "canceled")
    assert changed.status_code == 409 and changed.json()["code"] == "idempotency_key_reused"
    assert [risk[a]["working_orders"] for a in ("ACC1", "ACC2")] == [0, 0]  # no ghost exposure
    assert (fresh[T.EXEC_TYPE], fresh[T.CL_ORD_ID]) == ("0", "n1")
