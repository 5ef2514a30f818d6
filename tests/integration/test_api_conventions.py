"""The REST API's broker conventions (after Alpaca's orders API), over loopback on the in-process core: open/closed
status filters, lookup by client_order_id, a replace that keeps the client's id, order timestamps, cursor paging,
and a 400 for any query parameter a route does not take."""

from __future__ import annotations

import calendar
import json
import re
import time
from collections.abc import Iterator

import httpx
import msgspec
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from oms.adapters.api import ApiServer, ApiSettings
from oms.apps.local_api import local_core
from oms.apps.serve import LoadedConfig, load_config
from oms.core.model.messages import Message, OrderAccepted
from tests.integration.test_api import ADMIN, COMPLIANCE, TRADER1, TRADER2, Api, _error, _events

pytestmark = pytest.mark.integration

RFC3339_NS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$")


@pytest.fixture(scope="module")
def loaded() -> LoadedConfig:
    return load_config()


@pytest.fixture
def api(loaded: LoadedConfig) -> Iterator[Api]:
    a = Api(loaded, ApiSettings(port=0, rate_limit=10_000))
    yield a
    a.close()


def _ids(r: httpx.Response) -> list[int]:
    assert r.status_code == 200, r.text
    return [o["order_id"] for o in r.json()]


def _ns(text: str) -> int:
    """An RFC 3339 UTC text with nine fraction digits back to epoch nanoseconds."""
    assert RFC3339_NS.match(text), text
    return calendar.timegm(time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S")) * 1_000_000_000 + int(text[20:29])


# -- status=open|closed|all --


def test_the_list_defaults_to_open_orders_and_open_includes_a_replaced_one(api: Api) -> None:
    working = api.order(TRADER1, price="90").json()["order_id"]
    replaced = api.order(TRADER1, price="91").json()["order_id"]
    assert api.http.patch(f"/v1/orders/{replaced}", json={"price": "91.5"}, headers=TRADER1).json()["status"] == (
        "replaced"
    )
    canceled = api.order(TRADER1, price="92").json()["order_id"]
    api.http.delete(f"/v1/orders/{canceled}", headers=TRADER1)
    api.order(TRADER1, account="ACC2", side="sell", qty="5", price="101")
    filled = api.order(TRADER1, qty="5", price="101").json()
    rejected = api.order(TRADER1, tif="fok", qty="6", price="101").json()  # nothing left to fill it
    assert (filled["status"], rejected["status"]) == ("filled", "rejected")

    def listed(**params: str) -> list[int]:
        return _ids(api.http.get("/v1/orders", params={"account": "ACC1", **params}, headers=TRADER1))

    assert listed() == [replaced, working]
    assert listed(status="open") == [replaced, working]
    assert listed(status="new") == [working]  # the exact status misses the replaced order: open is what to ask
    assert listed(status="replaced") == [replaced]
    assert listed(status="closed") == [rejected["order_id"], filled["order_id"], canceled]
    assert listed(status="all") == [rejected["order_id"], filled["order_id"], canceled, replaced, working]
    _error(api.http.get("/v1/orders", params={"status": "opened"}, headers=TRADER1), 400, "invalid_request")


# -- GET /v1/orders:by_client_order_id --


def test_an_order_is_found_by_the_client_order_id_of_its_own_key_only(api: Api) -> None:
    mine = api.order(TRADER1, client_order_id="abc-1").json()
    admins = api.order(ADMIN, client_order_id="abc-1", price="99").json()

    def by_id(headers: dict[str, str], cl: str) -> httpx.Response:
        return api.http.get("/v1/orders:by_client_order_id", params={"client_order_id": cl}, headers=headers)

    assert by_id(TRADER1, "abc-1").json() == api.http.get(f"/v1/orders/{mine['order_id']}", headers=TRADER1).json()
    assert by_id(ADMIN, "abc-1").json()["order_id"] == admins["order_id"]  # unique per key, found per key
    body = _error(by_id(TRADER1, "nope"), 404, "unknown_order")
    assert "nope" in body["message"]
    _error(by_id(COMPLIANCE, "abc-1"), 404, "unknown_order")  # another key's orders are not looked at
    _error(by_id(TRADER2, "abc-1"), 404, "unknown_order")
    _error(api.http.get("/v1/orders:by_client_order_id", headers=TRADER1), 400, "invalid_request")
    _error(by_id(TRADER1, "x" * 65), 400, "invalid_request")


def test_an_order_is_found_by_each_client_order_id_a_replace_gave_it(api: Api) -> None:
    oid = api.order(TRADER1, client_order_id="first").json()["order_id"]
    api.http.patch(f"/v1/orders/{oid}", json={"price": "100.5", "client_order_id": "second"}, headers=TRADER1)

    for cl in ("first", "second"):
        r = api.http.get("/v1/orders:by_client_order_id", params={"client_order_id": cl}, headers=TRADER1)
        assert (r.status_code, r.json()["order_id"], r.json()["client_order_id"]) == (200, oid, "second")


# -- PATCH keeps the client's id --


def test_a_replace_without_a_new_client_order_id_keeps_the_clients_id_everywhere(api: Api) -> None:
    with api.ws("ACC1", TRADER1) as ws:
        _events(ws, 1)
        oid = api.order(TRADER1, qty="10", price="100", client_order_id="keep-me").json()["order_id"]
        first = api.http.patch(f"/v1/orders/{oid}", json={"price": "100.5"}, headers=TRADER1)
        second = api.http.patch(f"/v1/orders/{oid}", json={"qty": "12"}, headers=TRADER1)
        api.order(TRADER1, account="ACC2", side="sell", qty="4", price="100.5")  # fills part of it
        canceled = api.http.delete(f"/v1/orders/{oid}", headers=TRADER1)
        frames = [e for e in _events(ws, 5) if e["order_id"] == oid]

    assert [r.json()["client_order_id"] for r in (first, second, canceled)] == ["keep-me"] * 3
    assert (second.json()["qty"], second.json()["price"], canceled.json()["status"]) == ("12", "100.5", "canceled")
    assert api.http.get(f"/v1/orders/{oid}", headers=TRADER1).json()["client_order_id"] == "keep-me"
    assert [(f["type"], f["client_order_id"], f.get("orig_client_order_id")) for f in frames] == [
        ("order_accepted", "keep-me", None),
        ("order_replaced", "keep-me", "keep-me"),
        ("order_replaced", "keep-me", "keep-me"),
        ("order_filled", "keep-me", None),
        ("order_canceled", "keep-me", "keep-me"),
    ]
    (fill,) = api.http.get("/v1/accounts/ACC1/executions", headers=TRADER1).json()
    assert (fill["order_id"], fill["client_order_id"]) == (oid, "keep-me")


def test_a_replace_with_a_new_client_order_id_moves_the_order_to_it_and_later_ones_keep_it(api: Api) -> None:
    oid = api.order(TRADER1, client_order_id="v1").json()["order_id"]
    taken = api.order(TRADER1, client_order_id="taken", price="99").json()["order_id"]

    renamed = api.http.patch(f"/v1/orders/{oid}", json={"price": "100.5", "client_order_id": "v2"}, headers=TRADER1)
    kept = api.http.patch(f"/v1/orders/{oid}", json={"price": "100.25"}, headers=TRADER1)

    assert (renamed.json()["client_order_id"], kept.json()["client_order_id"]) == ("v2", "v2")
    _error(api.http.patch(f"/v1/orders/{oid}", json={"qty": "9", "client_order_id": "v1"}, headers=TRADER1), 409,
           "duplicate_cl_ord_id")  # fmt: skip
    assert api.http.get(f"/v1/orders/{taken}", headers=TRADER1).json()["client_order_id"] == "taken"


def test_a_client_order_id_starting_with_a_tilde_is_refused_it_marks_the_oms_own_ids(api: Api) -> None:
    _error(api.order(TRADER1, client_order_id="~r1~x"), 400, "invalid_request")
    oid = api.order(TRADER1, client_order_id="x~1").json()["order_id"]  # a tilde elsewhere is an ordinary character
    _error(api.http.patch(f"/v1/orders/{oid}", json={"qty": "9", "client_order_id": "~y"}, headers=TRADER1), 400,
           "invalid_request")  # fmt: skip
    assert api.http.patch(f"/v1/orders/{oid}", json={"qty": "9"}, headers=TRADER1).json()["client_order_id"] == "x~1"


def test_after_a_restart_the_order_shows_the_clients_id_and_its_times(loaded: LoadedConfig) -> None:
    """The journal's events rebuild a second core (`OrderManager.restore`, the desk hearing them as `replayed`):
    the internal ClOrdID of the replace still reads back to the client's id, and the times are the first run's."""
    first = Api(loaded, ApiSettings(port=0, rate_limit=10_000))
    journal: list[Message] = []
    session_of = first.core.host.engine.session_of

    def keep(reports: list[tuple[Message, object]]) -> None:  # the journal keeps an acceptance with its session
        for e, _ in reports:
            accepted = isinstance(e, OrderAccepted)
            journal.append(msgspec.structs.replace(e, session=session_of[e.order_id]) if accepted else e)

    first.core.host.subscribe(keep, "journal")
    try:
        oid = first.order(TRADER1, client_order_id="survivor").json()["order_id"]
        first.http.patch(f"/v1/orders/{oid}", json={"price": "100.5"}, headers=TRADER1)
        before = first.http.get(f"/v1/orders/{oid}", headers=TRADER1).json()
    finally:
        first.close()
    core = local_core(loaded, generation=2)
    server = ApiServer(core.host, core.view, ApiSettings(port=0)).start()
    try:
        core.host.run(lambda engine: engine.restore(journal, server.desk.replayed))
        with httpx.Client(base_url=server.url, timeout=10) as http:
            after = http.get(f"/v1/orders/{oid}", headers=TRADER1).json()
            found = http.get("/v1/orders:by_client_order_id", params={"client_order_id": "survivor"}, headers=TRADER1)
    finally:
        server.stop()

    assert (after["client_order_id"], after["price"], after["status"]) == ("survivor", "100.5", "replaced")
    assert [after[k] for k in ("created_at", "updated_at", "filled_at", "canceled_at")] == [
        before[k] for k in ("created_at", "updated_at", "filled_at", "canceled_at")
    ]
    assert found.json()["order_id"] == oid


# -- timestamps --


def test_every_order_carries_its_times_in_rfc3339_utc_with_nanoseconds(api: Api) -> None:
    t0 = time.time_ns()
    working = api.order(TRADER1, price="90").json()
    rejected = api.order(TRADER1, tif="fok", qty="6", price="101").json()
    t1 = time.time_ns()
    canceled = api.http.delete(f"/v1/orders/{working['order_id']}", headers=TRADER1).json()
    api.order(TRADER1, account="ACC2", side="sell", qty="10", price="100")
    partial = api.order(TRADER1, qty="4", price="100").json()  # fills at once, the sell stays partly filled
    t2 = time.time_ns()
    sell = api.http.get("/v1/orders", params={"account": "ACC2"}, headers=TRADER1).json()[0]

    assert working["filled_at"] is working["canceled_at"] is None
    assert t0 <= _ns(working["created_at"]) == _ns(working["updated_at"]) <= t1
    assert rejected["status"] == "rejected" and t0 <= _ns(rejected["created_at"]) <= t1
    assert canceled["created_at"] == working["created_at"]
    assert t1 <= _ns(canceled["canceled_at"]) == _ns(canceled["updated_at"]) <= t2
    assert canceled["filled_at"] is None
    assert partial["status"] == "filled" and t1 <= _ns(partial["filled_at"]) <= t2
    assert sell["status"] == "partially_filled" and sell["filled_at"] is None
    assert _ns(sell["updated_at"]) > _ns(sell["created_at"])  # the fill changed it
    schema = api.http.get("/schema/openapi.json").json()["components"]["schemas"]["OrderOut"]["properties"]
    assert {"created_at", "updated_at", "filled_at", "canceled_at"} <= set(schema)


# -- cursor paging --


def test_pages_follow_one_another_without_gaps_or_repeats_in_both_directions(api: Api) -> None:
    ids = [api.order(TRADER1, price=str(90 + i)).json()["order_id"] for i in range(5)]

    def walk(**params: str) -> tuple[list[list[int]], list[str]]:
        pages, links = [], []
        r = api.http.get("/v1/orders", params={"limit": "2", **params}, headers=TRADER1)
        while True:
            pages.append(_ids(r))
            token = r.headers.get("X-Next-Page-Token")
            if token is None:
                assert "Link" not in r.headers
                return pages, links
            links.append(r.headers["Link"])
            r = api.http.get("/v1/orders", params={"limit": "2", **params, "page_token": token}, headers=TRADER1)

    pages, links = walk()
    assert pages == [[ids[4], ids[3]], [ids[2], ids[1]], [ids[0]]]
    assert walk(direction="asc")[0] == [[ids[0], ids[1]], [ids[2], ids[3]], [ids[4]]]
    url = re.fullmatch(r'<(/v1/orders\?[^>]+)>; rel="next"', links[0])
    assert url is not None and _ids(api.http.get(url.group(1), headers=TRADER1)) == [ids[2], ids[1]]
    exact = api.http.get("/v1/orders", params={"limit": "5"}, headers=TRADER1)
    assert _ids(exact) == ids[::-1] and "X-Next-Page-Token" not in exact.headers  # no empty last page


def test_a_new_order_does_not_shift_the_pages_already_handed_out(api: Api) -> None:
    ids = [api.order(TRADER1, price=str(90 + i)).json()["order_id"] for i in range(3)]
    r = api.http.get("/v1/orders", params={"limit": "2"}, headers=TRADER1)

    api.order(TRADER1, price="80")  # newer than everything listed
    rest = api.http.get("/v1/orders", params={"limit": "2", "page_token": r.headers["X-Next-Page-Token"]},
                        headers=TRADER1)  # fmt: skip

    assert (_ids(r), _ids(rest)) == ([ids[2], ids[1]], [ids[0]])


def test_a_bad_page_token_or_limit_is_a_400(api: Api) -> None:
    api.order(TRADER1)
    api.order(TRADER1, price="99")
    token = api.http.get("/v1/orders", params={"limit": "1"}, headers=TRADER1).headers["X-Next-Page-Token"]

    for bad in ("garbage", "bzEuZGVzYy4xeA", token + "x"):
        r = api.http.get("/v1/orders", params={"page_token": bad}, headers=TRADER1)
        _error(r, 400, "invalid_page_token")
    r = api.http.get("/v1/orders", params={"page_token": token, "direction": "asc"}, headers=TRADER1)
    assert "direction=desc" in _error(r, 400, "invalid_page_token")["message"]
    for limit in ("0", "1001", "x"):
        _error(api.http.get("/v1/orders", params={"limit": limit}, headers=TRADER1), 400, "invalid_request")


# -- unknown query parameters --


def _get_paths(api: Api) -> list[str]:
    """Every GET route the OpenAPI document lists, its path parameters filled with real values."""
    order = api.order(TRADER1).json()["order_id"]
    spec = api.http.get("/schema/openapi.json").json()
    paths = [p for p, ops in spec["paths"].items() if "get" in ops]
    values = {"order_id": str(order), "parent_id": "P1", "account": "ACC1"}
    return [re.sub(r"{(\w+)}", lambda m: values[m.group(1)], p) for p in paths]


def test_every_get_route_refuses_a_query_parameter_it_does_not_take_naming_it(api: Api) -> None:
    paths = _get_paths(api)
    assert {"/v1/orders", "/v1/orders:by_client_order_id", "/healthz", "/metrics"} <= set(paths)

    for path in paths:
        r = api.http.get(path, params={"stauts": "new"}, headers=ADMIN)
        body = _error(r, 400, "unknown_parameter")
        assert "stauts" in body["message"], (path, body)
    _error(api.http.get("/v1/orders", params={"stauts": "new"}), 401, "missing_key")  # credentials come first


def test_a_known_query_parameter_given_twice_is_refused(api: Api) -> None:
    r = api.http.get("/v1/orders", params=[("status", "new"), ("status", "filled")], headers=TRADER1)
    assert "status" in _error(r, 400, "unknown_parameter")["message"]
    assert api.http.get("/v1/orders", params={"status": "new", "limit": "5"}, headers=TRADER1).status_code == 200


def test_the_stream_refuses_a_query_parameter(api: Api) -> None:
    url = f"ws://127.0.0.1:{api.server.port}/v1/accounts/ACC1/stream?since=5"
    with connect(url, additional_headers=TRADER1) as ws:
        refusal = json.loads(ws.recv(timeout=10))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert (refusal["code"], closed.value.rcvd.code if closed.value.rcvd else None) == ("unknown_parameter", 4400)
    assert "since" in refusal["message"]
