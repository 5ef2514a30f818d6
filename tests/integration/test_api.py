"""The REST + WebSocket API over loopback, on the in-process core (native book, LocalShard accounts): orders, errors,
roles, the event stream, executions, positions, kill switches, metrics, signing, idempotency, rate limits."""

from __future__ import annotations

import concurrent.futures
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from oms.adapters.api import ApiServer, ApiSettings
from oms.adapters.api.keys import DEFAULT_KEYS
from oms.adapters.api.security import sign
from oms.apps.local_api import LocalCore, local_core
from oms.apps.serve import LoadedConfig, load_config
from oms.core.model.enums import OrdType, Side, TimeInForce
from oms.core.model.messages import SubmitOrder
from tests.stubs import HeldWrites

pytestmark = pytest.mark.integration

TRADER1 = {"X-API-Key": "trader1-dev-secret"}  # ACC1, ACC2
TRADER2 = {"X-API-Key": "trader2-dev-secret"}  # TIGHT1
RISK = {"X-API-Key": "risk1-dev-secret"}
COMPLIANCE = {"X-API-Key": "compliance1-dev-secret"}
ADMIN = {"X-API-Key": "admin-dev-secret"}


@pytest.fixture(scope="module")
def loaded() -> LoadedConfig:
    return load_config()


class Api:
    """A running server on a fresh core, and an HTTP client to it."""

    def __init__(self, loaded: LoadedConfig, settings: ApiSettings) -> None:
        self.core: LocalCore = local_core(loaded)
        self.server = ApiServer(self.core.host, self.core.view, settings).start()
        self.http = httpx.Client(base_url=self.server.url, timeout=10)

    def close(self) -> None:
        self.http.close()
        self.server.stop()

    def order(self, headers: dict[str, str], **fields: object) -> httpx.Response:
        body = {"account": "ACC1", "symbol": "AAPL", "side": "buy", "qty": "10", "price": "100", **fields}
        return self.http.post("/v1/orders", json={k: v for k, v in body.items() if v is not None}, headers=headers)

    def ws(self, account: str, headers: dict[str, str]) -> ClientConnection:
        return connect(f"ws://127.0.0.1:{self.server.port}/v1/accounts/{account}/stream", additional_headers=headers)


@pytest.fixture
def api(loaded: LoadedConfig) -> Iterator[Api]:
    a = Api(loaded, ApiSettings(port=0, rate_limit=10_000))
    yield a
    a.close()


def _error(r: httpx.Response, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["code"] == code and body["message"], body
    return body


# -- (a) orders, cancels, replaces, queries --


def test_a_limit_order_is_acknowledged_with_prices_and_quantities_as_decimal_strings(api: Api) -> None:
    r = api.order(TRADER1, symbol="BTC-USD", qty="0.125", price="50000.5", client_order_id="c1")

    assert r.status_code == 201, r.text
    o = r.json()
    assert (o["status"], o["qty"], o["price"], o["leaves_qty"], o["cum_qty"]) == (
        "new",
        "0.125",
        "50000.5",
        "0.125",
        "0",
    )
    assert (o["client_order_id"], o["session"], o["avg_px"]) == ("c1", "REST:trader1", None)
    assert api.http.get(f"/v1/orders/{o['order_id']}", headers=TRADER1).json() == o


def test_every_order_type_and_time_in_force_reaches_the_book(api: Api) -> None:
    api.order(TRADER1, account="ACC2", side="sell", qty="5", price="101")  # liquidity
    cases = [
        ({"ord_type": "limit", "price": "101", "qty": "5"}, "filled"),  # the last trade: a reference price
        ({"ord_type": "limit", "tif": "gtc", "price": "99"}, "new"),
        ({"ord_type": "limit", "tif": "ioc", "price": "99"}, "canceled"),  # nothing to trade against
        ({"ord_type": "limit", "tif": "fok", "price": "101", "qty": "6"}, "rejected"),  # nothing left there
        ({"ord_type": "limit", "tif": "gtd", "price": "98", "expire_at_ns": time.time_ns() + 10**12}, "new"),
        ({"ord_type": "stop", "price": None, "stop_price": "105", "tif": "gtc"}, "new"),
        ({"ord_type": "stop_limit", "price": "106", "stop_price": "105"}, "new"),
        ({"ord_type": "limit", "price": "97", "qty": "100", "display_qty": "10"}, "new"),  # iceberg
        ({"ord_type": "market", "price": None, "qty": "1"}, "canceled"),  # valued off the last trade; no sellers
    ]
    for fields, status in cases:
        r = api.order(TRADER1, **fields)
        assert r.status_code == 201, (fields, r.text)
        assert r.json()["status"] == status, (fields, r.json())
    iceberg = api.http.get("/v1/orders", params={"status": "new", "account": "ACC1"}, headers=TRADER1).json()
    assert [o["display_qty"] for o in iceberg if o["price"] == "97"] == ["10"]
    assert [o["stop_price"] for o in iceberg if o["ord_type"] == "stop_limit"] == ["105"]
    filled = api.http.get("/v1/orders", params={"status": "filled"}, headers=TRADER1).json()
    assert [(o["account"], o["avg_px"]) for o in filled] == [("ACC1", "101"), ("ACC2", "101")]


def test_a_risk_reject_is_the_order_in_status_rejected_with_the_reason(api: Api) -> None:
    r = api.order(TRADER2, account="TIGHT1", qty="101")  # TIGHT1: max_order_qty 100

    assert r.status_code == 201
    o = r.json()
    assert (o["status"], o["reject_code"], o["reject_reason"]) == (
        "rejected",
        "max_order_qty",
        "order quantity above the account's maximum",
    )
    market = api.order(TRADER1, ord_type="market", price=None).json()  # no trade yet: nothing to value it at
    assert (market["status"], market["reject_code"]) == ("rejected", "no_reference_price")
    metrics = api.http.get("/metrics").text
    assert 'oms_api_rejects_total{reason="max_order_qty"} 1.0' in metrics


def test_list_filters_by_account_and_status_newest_first(api: Api) -> None:
    ids = [
        api.order(TRADER1, account=acct, price=px).json()["order_id"]
        for acct, px in [("ACC1", "90"), ("ACC2", "91"), ("ACC1", "92")]
    ]
    api.http.delete(f"/v1/orders/{ids[0]}", headers=TRADER1)

    def listed(**params: str) -> list[int]:
        r = api.http.get("/v1/orders", params=params, headers=TRADER1)
        assert r.status_code == 200, r.text
        return [o["order_id"] for o in r.json()]

    assert listed() == [ids[2], ids[1]]  # open orders by default
    assert listed(status="all") == ids[::-1]
    assert listed(account="ACC1", status="all") == [ids[2], ids[0]]
    assert listed(account="ACC1", status="new") == [ids[2]]
    assert listed(status="canceled") == [ids[0]]
    assert listed(limit="1") == [ids[2]]


def test_past_capacity_a_new_order_is_refused_503_system_busy_at_once_and_a_cancel_is_not(loaded: LoadedConfig) -> None:
    """The sequencer runs on its own thread (the deployed path) and the batch ahead waits for its write-ahead past the
    overload bound (`Sequencer.overloaded`, 50 ms): a new order is answered 503 system_busy at once, booking nothing,
    as a FIX order would be; a cancel is taken, and answered once the write lands."""
    held = HeldWrites(hold=False)
    a = Api(loaded, ApiSettings(port=0, rate_limit=10_000))
    host = a.core.host
    host.add_seal(held.seal)
    host.start()
    try:
        oid = a.order(TRADER1, client_order_id="k0").json()["order_id"]
        held.hold.set()
        host.post(lambda engine: None, pytest.fail)  # a batch whose write-ahead is held
        time.sleep(0.2)
        refused = a.order(TRADER1, client_order_id="k1")
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            cancel = pool.submit(a.http.delete, f"/v1/orders/{oid}", headers=TRADER1)
            time.sleep(0.1)
            waited = not cancel.done()
            held.release.set()
            canceled = cancel.result(10)
        after = a.order(TRADER1, client_order_id="k1")
    finally:
        held.release.set()
        a.close()
        host.stop()

    _error(refused, 503, "system_busy")
    assert waited and (canceled.status_code, canceled.json()["status"]) == (200, "canceled")
    assert after.status_code == 201, after.text  # the refused ClOrdID was never booked


def test_cancel_takes_the_order_off_and_a_second_cancel_is_too_late(api: Api) -> None:
    oid = api.order(TRADER1).json()["order_id"]

    r = api.http.delete(f"/v1/orders/{oid}", headers=TRADER1)

    assert (r.status_code, r.json()["status"], r.json()["leaves_qty"]) == (200, "canceled", "0")
    _error(api.http.delete(f"/v1/orders/{oid}", headers=TRADER1), 409, "too_late_to_cancel")
    _error(api.http.delete("/v1/orders/999", headers=TRADER1), 404, "unknown_order")


def test_replace_changes_quantity_and_price_and_keeps_the_order_id(api: Api) -> None:
    o = api.order(TRADER1, qty="10", price="100", client_order_id="r1").json()

    r = api.http.patch(f"/v1/orders/{o['order_id']}", json={"qty": "15", "price": "100.5"}, headers=TRADER1)

    assert r.status_code == 200, r.text
    new = r.json()
    assert (new["order_id"], new["qty"], new["price"], new["leaves_qty"], new["status"]) == (
        o["order_id"],
        "15",
        "100.5",
        "15",
        "replaced",
    )
    assert new["client_order_id"] == "r1"  # the engine's ClOrdID of the replace is its own
    _error(api.http.patch(f"/v1/orders/{o['order_id']}", json={"price": "100.505"}, headers=TRADER1), 400, "off_tick")
    _error(api.http.patch(f"/v1/orders/{o['order_id']}", json={}, headers=TRADER1), 400, "invalid_request")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b'{"account": "ACC1", "symbol": ', "bad_json"),
        (b"{bad", "bad_json"),
        (b"", "bad_json"),
        (b"[1, 2]", "invalid_request"),
        ({"symbol": "NOPE"}, "unknown_symbol"),
        ({"qty": "-5"}, "invalid_qty"),
        ({"qty": "0"}, "invalid_qty"),
        ({"qty": 10}, "invalid_request"),  # a JSON number is refused: decimal strings only
        ({"qty": "1e3"}, "invalid_qty"),
        ({"qty": "10.5"}, "off_lot"),
        ({"symbol": "EURUSD", "qty": "1500", "price": "1.1"}, "off_lot"),
        ({"price": "100.001"}, "off_tick"),
        ({"price": "-1"}, "invalid_price"),
        ({"price": None}, "invalid_price"),  # a limit order needs one
        ({"ord_type": "market"}, "invalid_price"),  # and a market order takes none
        ({"ord_type": "stop", "price": None}, "invalid_stop_price"),
        ({"tif": "gtd"}, "invalid_tif"),
        ({"display_qty": "11"}, "invalid_display_qty"),
        ({"account": "NOBODY"}, "unknown_account"),
        ({"side": "short"}, "invalid_request"),
        ({"colour": "red"}, "invalid_request"),
        ({"price": "9" * 30}, "invalid_price"),
    ],
)
def test_bad_input_is_a_4xx_with_a_code_and_a_message(api: Api, body: dict | bytes, code: str) -> None:
    if isinstance(body, bytes):
        r = api.http.post("/v1/orders", content=body, headers={**ADMIN, "Content-Type": "application/json"})
    else:
        r = api.order(ADMIN, **body)
    _error(r, 400, code)


def test_a_duplicate_client_order_id_is_refused_and_creates_nothing(api: Api) -> None:
    assert api.order(TRADER1, client_order_id="dup").status_code == 201

    _error(api.order(TRADER1, client_order_id="dup", price="99"), 409, "duplicate_cl_ord_id")

    assert len(api.http.get("/v1/orders", headers=TRADER1).json()) == 1
    assert api.order(ADMIN, client_order_id="dup").status_code == 201  # unique per key (session), not globally


# -- roles --


def _role_calls(order_id: int) -> dict[str, tuple[str, str, dict | None]]:
    return {
        "submit": (
            "POST",
            "/v1/orders",
            {"account": "ACC1", "symbol": "AAPL", "side": "buy", "qty": "1", "price": "50"},
        ),
        "get": ("GET", f"/v1/orders/{order_id}", None),
        "list": ("GET", "/v1/orders?account=ACC1", None),
        "replace": ("PATCH", f"/v1/orders/{order_id}", {"price": "51"}),
        "executions": ("GET", "/v1/accounts/ACC1/executions", None),
        "positions": ("GET", "/v1/accounts/ACC1/positions", None),
        "risk": ("GET", "/v1/accounts/ACC1/risk", None),
        "kill": ("POST", "/v1/accounts/ACC1/kill-switch", {"on": False}),
        "global_kill": ("POST", "/v1/kill-switch", {"on": False}),
        "cancel": ("DELETE", f"/v1/orders/{order_id}", None),
    }


ALLOWED = {
    "trader1": {"submit", "get", "list", "replace", "executions", "positions", "risk", "cancel"},
    "trader2": set(),  # TIGHT1 only: ACC1 is not its account
    "risk": {"positions", "risk", "kill", "global_kill"},
    "compliance": {"get", "list", "executions", "positions"},
    "admin": {"submit", "get", "list", "replace", "executions", "positions", "risk", "kill", "global_kill", "cancel"},
}
KEYS = {"trader1": TRADER1, "trader2": TRADER2, "risk": RISK, "compliance": COMPLIANCE, "admin": ADMIN}


@pytest.mark.parametrize("role", sorted(ALLOWED))
def test_each_role_can_do_exactly_what_it_should(api: Api, role: str) -> None:
    oid = api.order(ADMIN, price="50").json()["order_id"]
    for name, (method, path, body) in _role_calls(oid).items():
        r = api.http.request(method, path, json=body, headers=KEYS[role])
        if name in ALLOWED[role]:
            assert r.status_code < 300, (role, name, r.text)
        else:
            assert r.status_code in (403, 404), (role, name, r.text)
            assert r.json()["code"] in ("forbidden", "unknown_order") and r.json()["message"], r.json()


def test_a_trader_sees_only_its_own_accounts(api: Api) -> None:
    tight = api.order(TRADER2, account="TIGHT1", qty="1").json()["order_id"]

    _error(api.order(TRADER1, account="TIGHT1"), 403, "forbidden")
    _error(api.http.get(f"/v1/orders/{tight}", headers=TRADER1), 404, "unknown_order")
    _error(api.http.get("/v1/accounts/TIGHT1/positions", headers=TRADER1), 403, "forbidden")
    assert [o["account"] for o in api.http.get("/v1/orders", headers=TRADER1).json()] == []
    assert [o["order_id"] for o in api.http.get("/v1/orders", headers=COMPLIANCE).json()] == [tight]


def test_a_wrong_or_missing_key_is_401_with_a_clear_body(api: Api) -> None:
    _error(api.http.get("/v1/orders", headers={"X-API-Key": "guess"}), 401, "unknown_key")
    _error(api.http.get("/v1/orders"), 401, "missing_key")
    _error(api.http.post("/v1/orders", content=b"{bad"), 401, "missing_key")  # credentials before the body
    assert api.http.get("/healthz").json()["status"] == "ok"


# -- (b) stream, executions, positions, kill switch, metrics --


def _events(ws: ClientConnection, n: int) -> list[dict]:
    return [json.loads(ws.recv(timeout=10)) for _ in range(n)]


def test_the_stream_carries_acks_and_fills_of_two_orders_that_cross(api: Api) -> None:
    with api.ws("ACC1", TRADER1) as acc1, api.ws("ACC2", COMPLIANCE) as acc2:
        (hello,) = _events(acc1, 1)
        assert hello == {"type": "subscribed", "account": "ACC1", "stream_id": hello["stream_id"], "seq": 0,
                         "resumed": False}  # fmt: skip
        assert _events(acc2, 1)[0]["type"] == "subscribed"
        sell = api.order(TRADER1, account="ACC1", side="sell", qty="10", price="100").json()
        buy = api.order(TRADER1, account="ACC2", side="buy", qty="4", price="100").json()

        a1 = _events(acc1, 2)
        a2 = _events(acc2, 2)

    assert [(e["seq"], e["type"], e["order_id"], e["status"]) for e in a1] == [
        (1, "order_accepted", sell["order_id"], "new"),
        (2, "order_filled", sell["order_id"], "partially_filled"),
    ]
    assert (a1[1]["last_qty"], a1[1]["last_px"], a1[1]["leaves_qty"], a1[1]["aggressor"]) == ("4", "100", "6", False)
    assert [(e["type"], e["status"]) for e in a2] == [("order_accepted", "new"), ("order_filled", "filled")]
    assert a2[1]["exec_id"] != a1[1]["exec_id"] and a2[1]["avg_px"] == "100"
    assert buy["status"] == "filled"


def test_a_client_that_reconnects_resumes_after_the_last_seq_it_saw(api: Api) -> None:
    with api.ws("ACC1", TRADER1) as ws:
        stream_id = _events(ws, 1)[0]["stream_id"]
        for n in range(3):
            api.order(TRADER1, account="ACC1", side="buy", qty="1", price=f"9{n}")
        seen = _events(ws, 3)
    assert [e["seq"] for e in seen] == [1, 2, 3]
    api.order(TRADER1, account="ACC1", side="buy", qty="1", price="80")  # while nobody listens: numbered and kept
    url = f"ws://127.0.0.1:{api.server.port}/v1/accounts/ACC1/stream"
    with connect(f"{url}?since_seq=1&stream_id={stream_id}", additional_headers=TRADER1) as ws:
        hello, *again = _events(ws, 4)
    assert (hello["seq"], hello["resumed"]) == (4, True)
    assert again[:2] == seen[1:] and (again[2]["seq"], again[2]["price"]) == (4, "80")
    for query in (f"since_seq=9&stream_id={stream_id}", "since_seq=1&stream_id=another-run"):
        with connect(f"{url}?{query}", additional_headers=TRADER1) as ws:  # ahead of the stream, another server's
            assert _events(ws, 1)[0]["resumed"] is False
    with connect(f"{url}?since_seq=-1", additional_headers=TRADER1) as ws:
        assert json.loads(ws.recv(timeout=10))["code"] == "invalid_request"


def test_a_browser_opens_the_stream_with_a_one_time_ticket(api: Api) -> None:
    ticket = api.http.post("/v1/stream-tickets", headers=TRADER1)
    assert ticket.status_code == 201 and ticket.json()["expires_in_s"] > 0
    url = f"ws://127.0.0.1:{api.server.port}/v1/accounts"
    with connect(f"{url}/ACC1/stream?ticket={ticket.json()['ticket']}") as ws:  # no header at all
        assert _events(ws, 1)[0]["type"] == "subscribed"
        api.order(TRADER1, account="ACC1", side="buy", qty="1", price="90")
        assert _events(ws, 1)[0]["type"] == "order_accepted"
    for attempt in (ticket.json()["ticket"], "made-up"):  # used once already; never issued
        with connect(f"{url}/ACC1/stream?ticket={attempt}") as ws:
            assert json.loads(ws.recv(timeout=10))["code"] == "bad_ticket"
    other = api.http.post("/v1/stream-tickets", headers=TRADER1).json()["ticket"]
    with connect(f"{url}/TIGHT1/stream?ticket={other}") as ws:  # the ticket is the key: its accounts only
        assert json.loads(ws.recv(timeout=10))["code"] == "forbidden"
    _error(api.http.post("/v1/stream-tickets"), 401, "missing_key")


def test_orders_of_other_adapters_reach_the_account_stream(api: Api) -> None:
    with api.ws("ACC1", TRADER1) as ws:
        _events(ws, 1)
        cmd = SubmitOrder(
            "ACC1",
            "FIX-1",
            "MSFT",
            Side.BUY,
            OrdType.LIMIT,
            7,
            2_000_000,
            tif=TimeInForce.GTC,
            session="FIX.4.4:OMS->CLIENT44",
        )
        api.core.host.run(lambda engine: engine.submit(cmd, time.time_ns()))

        (event,) = _events(ws, 1)

    assert (event["type"], event["client_order_id"], event["qty"], event["price"]) == (
        "order_accepted",
        "FIX-1",
        "7",
        "200",
    )
    order = api.http.get(f"/v1/orders/{event['order_id']}", headers=TRADER1).json()
    assert order["session"] == "FIX.4.4:OMS->CLIENT44"
    assert api.http.delete(f"/v1/orders/{event['order_id']}", headers=TRADER1).json()["status"] == "canceled"


def test_the_stream_refuses_a_key_without_the_account(api: Api) -> None:
    with api.ws("ACC1", TRADER2) as ws:
        refusal = json.loads(ws.recv(timeout=10))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert refusal["code"] == "forbidden" and refusal["message"]
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403


def test_executions_and_positions_follow_the_fills(api: Api) -> None:
    api.order(TRADER1, account="ACC2", side="sell", qty="10", price="100")
    api.order(TRADER1, account="ACC1", side="buy", qty="6", price="100")
    api.order(TRADER1, account="ACC1", side="buy", qty="4", price="100")

    fills = api.http.get("/v1/accounts/ACC1/executions", headers=COMPLIANCE).json()
    later = api.http.get(
        "/v1/accounts/ACC1/executions", params={"since_exec_id": fills[0]["exec_id"]}, headers=TRADER1
    ).json()
    pos = api.http.get("/v1/accounts/ACC1/positions", headers=RISK).json()
    short = api.http.get("/v1/accounts/ACC2/positions", headers=TRADER1).json()

    assert [(f["qty"], f["price"], f["side"], f["aggressor"]) for f in fills] == [
        ("6", "100", "buy", True),
        ("4", "100", "buy", True),
    ]
    assert later == fills[1:]
    assert [(p["symbol"], p["qty"], p["cost"]) for p in pos["positions"]] == [("AAPL", "10", "1000")]
    assert short["positions"][0]["qty"] == "-10" and pos["cash"] == "999000"


def test_the_kill_switch_cancels_working_orders_and_blocks_new_ones(api: Api) -> None:
    working = [api.order(TRADER1, price=px).json()["order_id"] for px in ("95", "96")]
    other = api.order(TRADER1, account="ACC2", price="94").json()["order_id"]

    r = api.http.post("/v1/accounts/ACC1/kill-switch", json={"on": True}, headers=RISK)

    assert r.status_code == 200, r.text
    assert r.json() == {"accounts": ["ACC1"], "on": True, "canceled": working, "pending": []}
    blocked = api.order(TRADER1).json()
    assert (blocked["status"], blocked["reject_code"]) == ("rejected", "kill_switch")
    assert api.http.get("/v1/accounts/ACC1/risk", headers=RISK).json()["kill_switch"] is True
    assert api.http.get(f"/v1/orders/{other}", headers=TRADER1).json()["status"] == "new"
    api.http.post("/v1/accounts/ACC1/kill-switch", json={"on": False}, headers=RISK)
    assert api.order(TRADER1).json()["status"] == "new"

    everything = api.http.post("/v1/kill-switch", json={"on": True}, headers=ADMIN).json()

    assert other in everything["canceled"] and "TIGHT1" in everything["accounts"]
    assert api.order(TRADER1, account="ACC2").json()["reject_code"] == "kill_switch"
    _error(api.http.post("/v1/kill-switch", json={"on": False}, headers=TRADER1), 403, "forbidden")


def test_risk_halts_an_account_and_resumes_it_working_orders_stay(api: Api) -> None:
    working = api.order(TRADER1, price="95").json()["order_id"]

    r = api.http.post("/v1/accounts/ACC1/trading-state", json={"state": "halted"}, headers=RISK)

    assert r.status_code == 200 and r.json() == {"account": "ACC1", "state": "halted"}, r.text
    halted = api.order(TRADER1).json()
    assert (halted["status"], halted["reject_code"]) == ("rejected", "halted")
    assert api.http.get("/v1/accounts/ACC1/risk", headers=RISK).json()["trading_state"] == "halted"
    assert api.http.get(f"/v1/orders/{working}", headers=TRADER1).json()["status"] == "new"
    assert api.order(TRADER1, account="ACC2").json()["status"] == "new"  # another account trades on
    api.http.post("/v1/accounts/ACC1/trading-state", json={"state": "active"}, headers=RISK)
    assert api.order(TRADER1).json()["status"] == "new"
    assert api.http.get("/v1/accounts/ACC1/risk", headers=TRADER1).json()["trading_state"] == "active"

    _error(api.http.post("/v1/accounts/ACC1/trading-state", json={"state": "halted"}, headers=TRADER1), 403,
           "forbidden")  # fmt: skip
    _error(api.http.post("/v1/accounts/ACC1/trading-state", json={"state": "paused"}, headers=RISK), 400,
           "invalid_request")  # fmt: skip
    _error(api.http.post("/v1/accounts/NOPE/trading-state", json={"state": "halted"}, headers=RISK), 404,
           "unknown_account")  # fmt: skip


def test_a_market_order_on_a_fresh_book_is_valued_at_the_quote_when_nothing_traded_yet(api: Api) -> None:
    lonely = api.order(TRADER1, account="ACC2", side="sell", qty="5", price="101").json()  # one side only
    first = api.order(TRADER1, side="buy", qty="1", ord_type="market", price=None).json()
    assert (first["status"], first["reject_code"]) == ("rejected", "no_reference_price")

    api.order(TRADER1, account="ACC2", side="buy", qty="5", price="99")  # two-sided now: mid 100, nothing traded
    second = api.order(TRADER1, side="buy", qty="1", ord_type="market", price=None).json()

    assert (second["status"], second["avg_px"]) == ("filled", "101"), second
    assert api.http.get(f"/v1/orders/{lonely['order_id']}", headers=TRADER1).json()["cum_qty"] == "1"


def test_risk_changes_an_accounts_limits_and_the_next_order_is_judged_by_them(api: Api) -> None:
    assert api.order(TRADER1, qty="10", price="100").json()["status"] == "new"
    before = api.http.get("/v1/accounts/ACC1/risk", headers=RISK).json()["limits"]

    r = api.http.patch("/v1/accounts/ACC1/limits", json={"max_order_notional": "500", "max_open_orders": 7},
                       headers=RISK)  # fmt: skip

    assert r.status_code == 200, r.text
    limits = r.json()["limits"]
    assert (limits["max_order_notional"], limits["max_open_orders"]) == ("500", 7)
    assert {k: v for k, v in limits.items() if k not in ("max_order_notional", "max_open_orders")} == {
        k: v for k, v in before.items() if k not in ("max_order_notional", "max_open_orders")}  # the others stay
    refused = api.order(TRADER1, qty="10", price="100").json()
    assert (refused["status"], refused["reject_code"]) == ("rejected", "max_order_notional")
    assert api.order(TRADER1, qty="4", price="100").json()["status"] == "new"
    assert api.http.get("/v1/accounts/ACC1/risk", headers=TRADER1).json()["limits"]["max_order_notional"] == "500"

    for body, code in (({}, "invalid_request"), ({"max_order_notional": 500}, "invalid_request"),
                       ({"max_order_notional": "-1"}, "invalid_request"), ({"collar": "1"}, "invalid_request")):
        _error(api.http.patch("/v1/accounts/ACC1/limits", json=body, headers=RISK), 400, code)
    _error(api.http.patch("/v1/accounts/ACC1/limits", json={"max_open_orders": 1}, headers=TRADER1), 403,
           "forbidden")  # fmt: skip


def test_the_accounts_list_holds_what_the_key_may_see(api: Api) -> None:
    assert api.http.get("/v1/accounts", headers=TRADER1).json() == {"accounts": ["ACC1", "ACC2"]}
    everything = api.http.get("/v1/accounts", headers=RISK).json()["accounts"]
    assert {"ACC1", "ACC2", "TIGHT1"} <= set(everything) and everything == sorted(everything)


def test_metrics_count_orders_acks_fills_and_latency(api: Api) -> None:
    api.order(TRADER1, account="ACC2", side="sell", price="100")
    api.order(TRADER1, side="buy", price="100")
    api.order(TRADER1, qty="0")

    text = api.http.get("/metrics").text

    for line in (
        "oms_api_orders_in_total 3.0",
        "oms_api_acks_total 2.0",
        "oms_api_fills_total 2.0",
        'oms_api_rejects_total{reason="invalid_qty"} 1.0',
        "oms_api_submit_ack_seconds_count 2.0",
    ):
        assert line in text, line


# -- (c) signing, idempotency, rate limits --


def _signed(
    key_id: str, secret: str, method: str, path: str, body: bytes = b"", ts: int | None = None, nonce: str | None = None
) -> dict[str, str]:
    ts_text = str(int(time.time()) if ts is None else ts)
    nonce = nonce or uuid.uuid4().hex
    return {
        "X-API-Key-Id": key_id,
        "X-API-Timestamp": ts_text,
        "X-API-Nonce": nonce,
        "X-API-Signature": sign(secret, method, path, ts_text, nonce, body),
        "Content-Type": "application/json",
    }


ORDER = json.dumps({"account": "ACC1", "symbol": "AAPL", "side": "buy", "qty": "1", "price": "10"}).encode()


def test_a_signed_request_is_accepted_and_stale_replayed_or_forged_ones_are_401(api: Api) -> None:
    ok = _signed("trader1", "trader1-dev-secret", "POST", "/v1/orders", ORDER, nonce="n1")
    assert api.http.post("/v1/orders", content=ORDER, headers=ok).status_code == 201

    _error(api.http.post("/v1/orders", content=ORDER, headers=ok), 401, "replayed_nonce")
    stale = _signed("trader1", "trader1-dev-secret", "POST", "/v1/orders", ORDER, ts=int(time.time()) - 31)
    body = _error(api.http.post("/v1/orders", content=ORDER, headers=stale), 401, "stale_timestamp")
    assert "30 s" in body["message"]
    forged = _signed("trader1", "not-the-secret", "POST", "/v1/orders", ORDER)
    _error(api.http.post("/v1/orders", content=ORDER, headers=forged), 401, "bad_signature")
    tampered = _signed("trader1", "trader1-dev-secret", "POST", "/v1/orders", ORDER)
    _error(api.http.post("/v1/orders", content=ORDER.replace(b'"1"', b'"9"'), headers=tampered), 401, "bad_signature")
    query = _signed("trader1", "trader1-dev-secret", "GET", "/v1/orders?status=new")
    assert api.http.get("/v1/orders", params={"status": "new"}, headers=query).status_code == 200
    _error(api.http.get("/v1/orders", headers=_signed("nobody", "x", "GET", "/v1/orders")), 401, "unknown_key")
    assert len(api.http.get("/v1/orders", headers=TRADER1).json()) == 1


def test_signing_required_refuses_a_plain_key(loaded: LoadedConfig) -> None:
    a = Api(loaded, ApiSettings(port=0, signing="required"))
    try:
        _error(a.http.get("/v1/orders", headers=TRADER1), 401, "signature_required")
        assert (
            a.http.get("/v1/orders", headers=_signed("admin", "admin-dev-secret", "GET", "/v1/orders")).status_code
            == 200
        )
    finally:
        a.close()


def test_a_retried_submit_with_the_same_idempotency_key_returns_the_same_order(api: Api) -> None:
    headers = {**TRADER1, "Idempotency-Key": "k-1"}

    first = api.order(headers)
    again = api.order(headers)

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    assert len(api.http.get("/v1/orders", headers=TRADER1).json()) == 1
    _error(api.order(headers, qty="11"), 409, "idempotency_key_reused")
    assert api.order({**ADMIN, "Idempotency-Key": "k-1"}).json()["order_id"] != first.json()["order_id"]


def test_an_idempotency_key_is_not_spent_by_a_refused_request_and_never_replays_an_order_it_did_not_make(
    api: Api,
) -> None:
    refused = api.order({**TRADER1, "Idempotency-Key": "k-2"}, symbol="NOPE")  # 400: made nothing
    taken = api.order({**TRADER1, "Idempotency-Key": "k-2"})  # so the key serves this other request
    api.order(TRADER1, client_order_id="mine")
    clash = api.order({**TRADER1, "Idempotency-Key": "k-3"}, client_order_id="mine")

    assert refused.status_code == 400 and taken.status_code == 201 and "Idempotent-Replayed" not in taken.headers
    _error(clash, 409, "duplicate_cl_ord_id")  # the id is another request's order, not this key's


def test_a_key_over_its_rate_limit_gets_429(loaded: LoadedConfig, tmp_path: Path) -> None:
    keys = tmp_path / "keys.toml"
    keys.write_text(DEFAULT_KEYS.read_text() + '\n[keys.slow]\nrole = "compliance"\nsecret = "slow"\nrate_limit = 3\n')
    a = Api(loaded, ApiSettings(port=0, keys=str(keys), rate_limit=50, rate_window_ms=60_000))
    try:
        codes = [a.http.get("/v1/orders", headers={"X-API-Key": "slow"}).status_code for _ in range(5)]
        assert codes == [200, 200, 200, 429, 429]
        r = a.http.get("/v1/orders", headers={"X-API-Key": "slow"})
        _error(r, 429, "rate_limited")
        assert int(r.headers["Retry-After"]) >= 1
        assert a.http.get("/v1/orders", headers=COMPLIANCE).status_code == 200  # per key
    finally:
        a.close()


def test_once_the_oms_stops_taking_orders_a_new_one_is_503_and_the_working_ones_are_canceled(api: Api) -> None:
    working = api.order(TRADER1, client_order_id="w1", price="99").json()
    api.core.host.run(lambda engine: engine.close(time.time_ns()))  # what a stop does first

    _error(api.order(TRADER1, client_order_id="w2"), 503, "shutting_down")
    after = api.http.get(f"/v1/orders/{working['order_id']}", headers=TRADER1).json()
    assert (working["status"], after["status"]) == ("new", "canceled")


def test_a_signature_with_a_non_ascii_character_is_401_not_a_crash(api: Api) -> None:
    headers = _signed("trader1", "trader1-dev-secret", "POST", "/v1/orders", ORDER)
    headers["X-API-Signature"] = "\u00e9" + headers["X-API-Signature"][1:]
    raw = httpx.Headers({k: v.encode() for k, v in headers.items()})  # the header as UTF-8 bytes on the wire

    _error(api.http.post("/v1/orders", content=ORDER, headers=raw), 401, "bad_signature")


@pytest.mark.parametrize("path", ["/v1/orders", "/v1/algos", "/v1/accounts/ACC1/kill-switch", "/v1/kill-switch"])
def test_a_body_nested_too_deep_is_400_before_it_is_parsed(api: Api, path: str) -> None:
    body = b'{"on": ' + b"[" * 1000 + b"]" * 1000 + b"}"

    body_out = _error(api.http.post(path, content=body, headers={**ADMIN, "Content-Type": "application/json"}),
                      400, "too_deep")  # fmt: skip
    assert "16 levels" in body_out["message"]


def test_a_body_over_the_size_limit_is_413(api: Api) -> None:
    body = json.dumps({"account": "ACC1", "symbol": "AAPL", "side": "buy", "qty": "1", "price": "10",
                       "client_order_id": "x" * 70_000}).encode()  # fmt: skip

    r = api.http.post("/v1/orders", content=body, headers={**ADMIN, "Content-Type": "application/json"})

    assert r.status_code == 413 and r.json()["code"]


@pytest.mark.parametrize("on", [0, 1, "false", "true", None])
def test_a_kill_switch_takes_only_a_json_boolean(api: Api, on: object) -> None:
    r = api.http.post("/v1/accounts/ACC1/kill-switch", json={"on": on}, headers=RISK)

    body = _error(r, 400, "invalid_request")
    assert "bool" in body["message"]
    assert api.http.get("/v1/accounts/ACC1/risk", headers=RISK).json()["kill_switch"] is False
