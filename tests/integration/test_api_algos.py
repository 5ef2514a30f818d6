"""Parent orders over the REST API and the account stream, on the in-process core with a real AlgoEngine in
simulated time (ManualClock) against a seeded market maker and noise taker: every kind, get/list/cancel, roles,
idempotency, bad input, the 503 without an engine, parent events on the WebSocket, and VWAP profiles from an
embedded ClickHouse holding real rows."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import ClientConnection, connect

from oms.adapters.algos import AlgoEngine, ManualClock, MemoryStore
from oms.adapters.api import ApiServer, ApiSettings
from oms.adapters.api.desk import avg_px_text
from oms.apps.local_api import LocalCore, local_core
from oms.apps.serve import LoadedConfig, api_profiles, load_config
from oms.apps.sim import MarketMaker, NoiseTaker
from oms.core.model.enums import Side
from oms.core.model.messages import TradePrinted
from oms.infra.clickhouse.clickhouse import apply_schema
from oms.infra.clickhouse.clickhouse import connect as ch_connect
from oms.infra.clickhouse.profile import DAY_NS, WEIGHT_TOTAL
from oms.infra.clickhouse.rows import scales, trade_columns

pytestmark = pytest.mark.integration

ALGO = {"X-API-Key": "algo-dev-secret"}  # trader of ALGO1
TRADER1 = {"X-API-Key": "trader1-dev-secret"}  # ACC1, ACC2
RISK = {"X-API-Key": "risk1-dev-secret"}
COMPLIANCE = {"X-API-Key": "compliance1-dev-secret"}
ADMIN = {"X-API-Key": "admin-dev-secret"}
S = 1_000_000_000
T0 = 1_767_260_000_000_000_000  # 2026-01-01T09:33:20Z: the simulated clock's start
MID = 1_500_000  # AAPL 150.00 (price precision 4)
TICK = 100


@pytest.fixture(scope="module")
def loaded() -> LoadedConfig:
    return load_config()


class AlgoApi:
    """A server over a fresh core with an AlgoEngine on a manual clock, a market maker (ACC2) and a noise taker
    (ACC1) on AAPL, and an HTTP client."""

    def __init__(
        self,
        loaded: LoadedConfig,
        settings: ApiSettings,
        with_algos: bool = True,
        configured: dict[str, list[int]] | None = None,
    ) -> None:
        self.core: LocalCore = local_core(loaded)
        host = self.core.host
        self.clock = ManualClock(T0)
        self.algos = (
            AlgoEngine(host, loaded.instruments, self.clock, MemoryStore(), profiles=configured) if with_algos else None
        )
        self.maker = MarketMaker(host, "ACC2", "AAPL", MID, TICK, 2000, seed=0)
        self.noise = NoiseTaker(host, "ACC1", "AAPL", self.maker, 200, 1, 1.0, seed=1)
        self.maker.requote(T0)
        self.noise.step(T0, Side.BUY, 1)  # an opening print: market children need a reference price
        self.server = ApiServer(
            host, self.core.view, settings, algos=self.algos, clock=self.clock, profiles=api_profiles(settings)
        ).start()
        self.http = httpx.Client(base_url=self.server.url, timeout=10)

    def close(self) -> None:
        self.http.close()
        self.server.stop()
        if self.algos is not None:
            self.algos.close()

    def step(self, drift: int | None = None, noise: bool = True) -> None:
        """One simulated second: the maker re-quotes, the taker trades, the algos run what is due."""
        now = self.clock.now_ns + S
        self.clock.set(now)
        self.maker.step(now, drift)
        if noise:
            self.noise.step(now)
        assert self.algos is not None
        self.algos.on_timer(now)

    def run_until(self, t_ns: int) -> None:
        while self.clock.now_ns + S <= t_ns:
            self.step()

    def submit(self, headers: dict[str, str] = ALGO, **fields: object) -> httpx.Response:
        body = {"account": "ALGO1", "symbol": "AAPL", "side": "buy", **fields}
        return self.http.post("/v1/algos", json={k: v for k, v in body.items() if v is not None}, headers=headers)

    def parent(self, parent_id: str, headers: dict[str, str] = ALGO) -> dict:
        r = self.http.get(f"/v1/algos/{parent_id}", headers=headers)
        assert r.status_code == 200, r.text
        return r.json()

    def ws(self, account: str, headers: dict[str, str]) -> ClientConnection:
        return connect(f"ws://127.0.0.1:{self.server.port}/v1/accounts/{account}/stream", additional_headers=headers)


@pytest.fixture
def api(loaded: LoadedConfig) -> Iterator[AlgoApi]:
    a = AlgoApi(loaded, ApiSettings(port=0, rate_limit=10_000), configured={"u-shape": [4, 1, 1, 4]})
    yield a
    a.close()


def _error(r: httpx.Response, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["code"] == code and body["message"], body
    return body


def _avg_px(children: list[dict], api: AlgoApi) -> str | None:
    """The exact average price of the children's fills, from the engine's own orders, as the API writes it."""
    orders = [api.core.engine.orders[c["order_id"]] for c in children if c["order_id"] is not None]
    inst = api.core.engine._instruments.by_symbol("AAPL")
    return avg_px_text(inst, sum(o.cum_notional for o in orders), sum(o.cum_qty for o in orders))


# -- each kind --


def test_a_twap_slices_on_schedule_and_reports_cum_qty_avg_px_and_children(api: AlgoApi) -> None:
    r = api.submit(kind="twap", qty="600", start_ns=T0 + 10 * S, end_ns=T0 + 70 * S, slices=6, parent_id="tw-1")

    assert r.status_code == 201, r.text
    p = r.json()
    assert (p["parent_id"], p["kind"], p["status"], p["qty"], p["cum_qty"], p["avg_px"]) == (
        "tw-1", "twap", "new", "600", "0", None,
    )  # fmt: skip
    assert (p["start_ns"], p["end_ns"], p["slices"], p["children"]) == (T0 + 10 * S, T0 + 70 * S, 6, [])
    api.run_until(T0 + 75 * S)

    p = api.parent("tw-1")
    assert (p["status"], p["cum_qty"], p["leaves_qty"], p["working_qty"], p["child_count"]) == (
        "filled", "600", "0", "0", 6,
    )  # fmt: skip
    assert [(c["client_order_id"], c["qty"], c["status"], c["ord_type"]) for c in p["children"]] == [
        (f"tw-1.{n}", "100", "filled", "market") for n in range(1, 7)
    ]
    assert [c["ts_ns"] for c in p["children"]] == [T0 + (10 + 10 * i) * S for i in range(6)]
    assert p["avg_px"] == _avg_px(p["children"], api)


def test_a_vwap_follows_a_given_profile_a_flat_one_and_a_configured_one(api: AlgoApi) -> None:
    window = {"kind": "vwap", "qty": "1000", "start_ns": T0 + 10 * S, "end_ns": T0 + 50 * S}
    given = api.submit(**window, profile=[1, 3, 0, 6]).json()
    flat = api.submit(**window, profile="flat", buckets=5).json()
    named = api.submit(**window, profile="u-shape").json()
    api.run_until(T0 + 60 * S)

    assert (given["profile_source"], given["profile"]) == ("given", [1, 3, 0, 6])
    assert (flat["profile_source"], flat["profile"]) == ("flat", [1] * 5)
    assert (named["profile_source"], named["profile_name"], named["profile"]) == ("configured", "u-shape", [4, 1, 1, 4])
    qty = {pid: [c["qty"] for c in api.parent(pid)["children"]] for pid in (given["parent_id"], flat["parent_id"],
                                                                             named["parent_id"])}  # fmt: skip
    assert qty[given["parent_id"]] == ["100", "300", "600"]  # the empty bucket sends nothing
    assert qty[flat["parent_id"]] == ["200"] * 5
    assert qty[named["parent_id"]] == ["400", "100", "100", "400"]
    assert all(api.parent(pid)["status"] == "filled" for pid in qty)


def test_a_vwap_asking_for_history_without_a_source_falls_back_and_says_why(api: AlgoApi) -> None:
    window = {"kind": "vwap", "qty": "100", "start_ns": T0 + 10 * S, "end_ns": T0 + 50 * S}

    flat = api.submit(**window, buckets=4).json()  # "history" is the default profile
    configured = api.submit(**window, profile="history", fallback="u-shape").json()

    assert (flat["profile_source"], flat["profile"]) == ("flat", [1, 1, 1, 1])
    assert "no ClickHouse history source" in flat["profile_note"] and "flat profile used" in flat["profile_note"]
    assert (configured["profile_source"], configured["profile_name"]) == ("configured", "u-shape")
    assert "configured profile 'u-shape' used" in configured["profile_note"]
    assert api.parent(flat["parent_id"])["profile_note"] == flat["profile_note"]


def test_a_pov_trades_its_share_of_the_volume_others_print(api: AlgoApi) -> None:
    p = api.submit(kind="pov", qty="5000", rate_pct="10", min_clip="20", max_clip="200").json()
    assert (p["status"], p["rate_pct"], p["min_clip"], p["max_clip"], p["start_ns"]) == ("new", "10", "20", "200", T0)

    for _ in range(120):
        api.step()

    p = api.parent(p["parent_id"])
    assert api.algos is not None
    target = api.algos.parent(p["parent_id"]).target()  # 10 % of the volume printed by others, on the lot grid
    cum = int(p["cum_qty"])
    assert p["status"] == "partially_filled" and target - 20 < cum <= target
    assert all(c["ord_type"] == "market" and int(c["qty"]) <= 200 for c in p["children"])


def test_an_iceberg_shows_one_slice_of_display_qty_at_its_price(api: AlgoApi) -> None:
    r = api.submit(kind="iceberg", qty="50", display_qty="10", price="149.90")

    assert r.status_code == 201, r.text
    p = r.json()
    assert (p["status"], p["display_qty"], p["price"], p["working_qty"]) == ("new", "10", "149.9", "10")
    assert [(c["qty"], c["price"], c["ord_type"], c["status"]) for c in p["children"]] == [
        ("10", "149.9", "limit", "new")
    ]


def test_a_bracket_enters_then_exits_by_its_stop_loss_and_never_fills_both_legs(api: AlgoApi) -> None:
    ask = "150.01"
    r = api.submit(kind="bracket", qty="10", entry_price=ask, take_profit="151", stop_loss="149.95")

    assert r.status_code == 201, r.text
    p = r.json()
    assert (p["status"], p["cum_qty"], p["avg_px"], p["exit_cum_qty"]) == ("partially_filled", "10", ask, "0")
    assert [(c["role"], c["status"]) for c in p["children"]] == [("entry", "filled"), ("tp", "new")]
    for _ in range(12):  # the market walks down through the stop
        api.step(drift=-1)

    p = api.parent(p["parent_id"])
    assert (p["status"], p["exit_cum_qty"], p["synthetic_stop"]) == ("filled", "10", True)
    roles = {c["role"]: c for c in p["children"]}
    assert (roles["tp"]["status"], roles["tp"]["cum_qty"], roles["sl"]["cum_qty"]) == ("canceled", "0", "10")
    assert Fraction(p["exit_avg_px"]) < Fraction("149.96")


# -- get, list, cancel --


def test_list_filters_newest_first_and_cancel_ends_a_parent_once(api: AlgoApi) -> None:
    later = {"kind": "twap", "qty": "100", "start_ns": T0 + 100 * S, "end_ns": T0 + 200 * S, "slices": 2}
    a = api.submit(**later).json()["parent_id"]
    b = api.submit(kind="iceberg", qty="50", display_qty="10", price="149.90").json()["parent_id"]
    c = api.submit(**later, side="sell").json()["parent_id"]

    def listed(**params: str) -> list[str]:
        r = api.http.get("/v1/algos", params=params, headers=ALGO)
        assert r.status_code == 200, r.text
        assert all("children" not in p for p in r.json())
        return [p["parent_id"] for p in r.json()]

    assert listed() == [c, b, a]
    assert listed(account="ALGO1", kind="twap") == [c, a]
    assert listed(kind="iceberg", symbol="AAPL") == [b]
    assert listed(limit="1") == [c]

    r = api.http.delete(f"/v1/algos/{b}", headers=ALGO)

    assert r.status_code == 200, r.text
    canceled = r.json()
    assert (canceled["status"], canceled["working_qty"], canceled["children"][0]["status"]) == ("canceled", "0",
                                                                                                "canceled")  # fmt: skip
    assert api.http.delete(f"/v1/algos/{a}", headers=ALGO).json()["status"] == "canceled"  # nothing was working
    assert listed(status="canceled") == [b, a]
    assert listed(status="new") == [c]
    _error(api.http.delete(f"/v1/algos/{b}", headers=ALGO), 409, "parent_done")
    _error(api.http.delete("/v1/algos/nope", headers=ALGO), 404, "unknown_parent")
    _error(api.http.get("/v1/algos/nope", headers=ALGO), 404, "unknown_parent")


def test_a_child_refused_by_risk_shows_on_the_parent_and_three_in_a_row_stop_it(api: AlgoApi) -> None:
    assert api.http.post("/v1/accounts/ALGO1/kill-switch", json={"on": True}, headers=RISK).status_code == 200
    pid = api.submit(kind="twap", qty="300", end_ns=T0 + 50 * S, slices=5).json()["parent_id"]
    for _ in range(30):
        api.step()

    p = api.parent(pid)

    assert (p["status"], p["child_rejects"], p["cum_qty"]) == ("stopped", 3, "0")
    assert "3 children rejected in a row" in p["text"]
    assert [c["status"] for c in p["children"]] == ["rejected"] * 3


# -- roles, idempotency, limits --


def _role_calls(parent_id: str) -> dict[str, tuple[str, str, dict | None]]:
    body = {"kind": "iceberg", "account": "ALGO1", "symbol": "AAPL", "side": "buy", "qty": "5",
            "display_qty": "1", "price": "149"}  # fmt: skip
    return {
        "submit": ("POST", "/v1/algos", body),
        "get": ("GET", f"/v1/algos/{parent_id}", None),
        "list": ("GET", "/v1/algos?account=ALGO1", None),
        "cancel": ("DELETE", f"/v1/algos/{parent_id}", None),
    }


ALLOWED = {
    "algo": {"submit", "get", "list", "cancel"},
    "trader1": set(),  # ALGO1 is not one of its accounts
    "risk": set(),  # no order entry, no order reads: the kill switch stops parents
    "compliance": {"get", "list"},
    "admin": {"submit", "get", "list", "cancel"},
}
KEYS = {"algo": ALGO, "trader1": TRADER1, "risk": RISK, "compliance": COMPLIANCE, "admin": ADMIN}


@pytest.mark.parametrize("role", sorted(ALLOWED))
def test_each_role_can_do_exactly_what_it_should_with_parents(api: AlgoApi, role: str) -> None:
    pid = api.submit(ADMIN, kind="iceberg", qty="5", display_qty="1", price="149").json()["parent_id"]
    for name, (method, path, body) in _role_calls(pid).items():
        r = api.http.request(method, path, json=body, headers=KEYS[role])
        if name in ALLOWED[role]:
            assert r.status_code < 300, (role, name, r.text)
        else:
            assert r.status_code in (403, 404), (role, name, r.text)
            assert r.json()["code"] in ("forbidden", "unknown_parent") and r.json()["message"], r.json()


def test_a_trader_sees_only_the_parents_of_its_own_accounts(api: AlgoApi) -> None:
    mine = api.submit(TRADER1, account="ACC1", kind="iceberg", qty="5", display_qty="1", price="149").json()
    api.submit(kind="iceberg", qty="5", display_qty="1", price="149")

    assert [p["parent_id"] for p in api.http.get("/v1/algos", headers=TRADER1).json()] == [mine["parent_id"]]
    assert len(api.http.get("/v1/algos", headers=COMPLIANCE).json()) == 2
    _error(api.http.get("/v1/algos", params={"account": "ALGO1"}, headers=TRADER1), 403, "forbidden")
    _error(api.http.get(f"/v1/algos/{mine['parent_id']}", headers=ALGO), 404, "unknown_parent")


def test_a_retried_submit_with_the_same_idempotency_key_returns_the_same_parent(api: AlgoApi) -> None:
    headers = {**ALGO, "Idempotency-Key": "p-1"}
    body = {"kind": "twap", "qty": "100", "start_ns": T0 + 100 * S, "end_ns": T0 + 200 * S, "slices": 2}

    first = api.submit(headers, **body)
    again = api.submit(headers, **body)

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    assert len(api.http.get("/v1/algos", headers=ALGO).json()) == 1
    _error(api.submit(headers, **{**body, "qty": "200"}), 409, "idempotency_key_reused")
    assert api.submit({**ADMIN, "Idempotency-Key": "p-1"}, **body).json()["parent_id"] != first.json()["parent_id"]


def test_concurrent_submits_with_one_idempotency_key_make_one_parent(api: AlgoApi) -> None:
    """The key is claimed before the request awaits anything (here: a history VWAP profile lookup), so requests
    racing with it make one parent between them, and every one of them answers with it."""
    headers = {**ALGO, "Idempotency-Key": "race-1"}
    body = {"kind": "vwap", "qty": "100", "start_ns": T0 + 10 * S, "end_ns": T0 + 50 * S, "profile": "history"}
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: api.submit(headers, **body), range(8)))

    assert {r.status_code for r in answers} == {201}
    assert len({r.json()["parent_id"] for r in answers}) == 1
    assert len(api.http.get("/v1/algos", headers=ALGO).json()) == 1


def test_a_duplicate_parent_id_is_refused_and_changes_nothing(api: AlgoApi) -> None:
    body = {"kind": "iceberg", "qty": "5", "display_qty": "1", "price": "149", "parent_id": "same"}
    assert api.submit(**body).status_code == 201

    _error(api.submit(**{**body, "qty": "7"}), 409, "duplicate_parent_id")

    assert api.parent("same")["qty"] == "5"


def test_the_algo_routes_count_against_the_rate_limit(loaded: LoadedConfig) -> None:
    a = AlgoApi(loaded, ApiSettings(port=0, rate_limit=3, rate_window_ms=60_000))
    try:
        codes = [a.http.get("/v1/algos", headers=ADMIN).status_code for _ in range(2)]
        codes += [a.submit(ADMIN, kind="twap", qty="1", end_ns=T0 + S, slices=1).status_code for _ in range(2)]
        assert codes == [200, 200, 201, 429]
        _error(a.submit(ADMIN, kind="twap", qty="1", end_ns=T0 + S, slices=1), 429, "rate_limited")
        assert a.http.get("/v1/algos", headers=COMPLIANCE).status_code == 200  # per key
    finally:
        a.close()


def test_without_an_algo_engine_every_algo_route_answers_503(loaded: LoadedConfig) -> None:
    a = AlgoApi(loaded, ApiSettings(port=0), with_algos=False)
    try:
        for method, path, body in _role_calls("P1").values():
            _error(a.http.request(method, path, json=body, headers=ADMIN), 503, "algos_unavailable")
        assert a.http.get("/v1/orders", headers=ADMIN).status_code == 200
    finally:
        a.close()


# -- bad input --

GOOD = {"kind": "twap", "qty": "100", "end_ns": T0 + 100 * S, "slices": 4}
VWAP = {"kind": "vwap", "slices": None}
POV = {"kind": "pov", "slices": None, "end_ns": None, "rate_pct": "10"}
ICEBERG = {"kind": "iceberg", "slices": None, "end_ns": None, "display_qty": "10", "price": "150"}
BRACKET = {"kind": "bracket", "slices": None, "end_ns": None, "take_profit": "151", "stop_loss": "149"}


@pytest.mark.parametrize(
    ("fields", "status", "code"),
    [
        ({"kind": "vwapp"}, 400, "unknown_kind"),
        ({"kind": None}, 400, "unknown_kind"),
        ({"symbol": "NOPE"}, 400, "unknown_symbol"),
        ({"account": "NOBODY"}, 400, "unknown_account"),
        ({"qty": "-5"}, 400, "invalid_qty"),
        ({"qty": "0"}, 400, "invalid_qty"),
        ({"qty": 5}, 400, "invalid_request"),  # decimal strings only
        ({"qty": "10.5"}, 400, "off_lot"),
        ({"start_ns": T0 + 200 * S}, 400, "invalid_window"),  # end before start
        ({"end_ns": T0 - S}, 400, "invalid_window"),  # ended before it was sent
        ({"slices": 0}, 400, "invalid_slices"),
        ({"slices": 10_001}, 400, "invalid_slices"),
        ({"jitter_pct": 101}, 400, "invalid_jitter"),
        ({"limit_price": "150.001"}, 400, "off_tick"),
        ({"limit_price": "-1"}, 400, "invalid_price"),
        ({"colour": "red"}, 400, "invalid_request"),
        ({"parent_id": "has.dot"}, 400, "invalid_request"),
        ({**VWAP, "profile": "nope"}, 400, "unknown_profile"),
        ({**VWAP, "profile": [1, -1]}, 400, "invalid_profile"),
        ({**VWAP, "profile": [0, 0]}, 400, "invalid_profile"),
        ({**VWAP, "profile": []}, 400, "invalid_profile"),
        ({**VWAP, "profile": "flat", "buckets": 0}, 400, "invalid_profile"),
        ({**VWAP, "fallback": "history"}, 400, "invalid_profile"),
        ({**VWAP, "fallback": "nope"}, 400, "unknown_profile"),
        ({**POV, "rate_pct": "0"}, 400, "invalid_rate"),
        ({**POV, "rate_pct": "100.01"}, 400, "invalid_rate"),
        ({**POV, "rate_pct": "ten"}, 400, "invalid_rate"),
        ({**POV, "min_clip": "50", "max_clip": "20"}, 400, "invalid_clip"),
        ({**POV, "min_clip": "-1"}, 400, "invalid_clip"),
        ({**ICEBERG, "display_qty": "101"}, 400, "invalid_display_qty"),
        ({**ICEBERG, "display_qty": "0"}, 400, "invalid_display_qty"),
        ({**ICEBERG, "price": None}, 400, "invalid_request"),
        ({**BRACKET, "take_profit": "149", "stop_loss": "151"}, 400, "invalid_bracket"),
        ({**BRACKET, "entry_price": "152"}, 400, "invalid_bracket"),
        ({**BRACKET, "take_profit": "151.005"}, 400, "off_tick"),
    ],
)
def test_bad_input_is_a_4xx_with_a_specific_code_and_makes_no_parent(
    api: AlgoApi, fields: dict, status: int, code: str
) -> None:
    body = {"account": "ALGO1", "symbol": "AAPL", "side": "buy", **GOOD, **fields}
    r = api.http.post("/v1/algos", json={k: v for k, v in body.items() if v is not None}, headers=ADMIN)

    _error(r, status, code)
    assert api.http.get("/v1/algos", headers=ADMIN).json() == []


@pytest.mark.parametrize("raw", [b"{bad", b"", b"[1]"])
def test_a_body_that_is_not_a_json_object_is_refused(api: AlgoApi, raw: bytes) -> None:
    r = api.http.post("/v1/algos", content=raw, headers={**ADMIN, "Content-Type": "application/json"})

    assert r.status_code == 400 and r.json()["code"] in ("bad_json", "invalid_request"), r.text


# -- the stream --


def _frames_until(ws: ClientConnection, *wanted: tuple[str, str], limit: int = 200) -> list[dict]:
    """Frames until every (type, parent_id or client_order_id) in `wanted` has been seen."""
    frames: list[dict] = []
    missing = set(wanted)
    while missing and len(frames) < limit:
        frames.append(f := json.loads(ws.recv(timeout=10)))
        missing.discard((f["type"], f.get("client_order_id") or f.get("parent_id")))
    assert not missing, (missing, frames)
    return frames


def test_the_account_stream_carries_parent_events_beside_the_child_order_events(api: AlgoApi) -> None:
    with api.ws("ALGO1", ALGO) as ws, api.ws("ALGO1", COMPLIANCE) as watcher:
        assert json.loads(ws.recv(timeout=10))["type"] == "subscribed"
        assert json.loads(watcher.recv(timeout=10))["type"] == "subscribed"
        pid = api.submit(kind="twap", qty="200", end_ns=T0 + 20 * S, slices=2).json()["parent_id"]
        api.run_until(T0 + 25 * S)

        wanted = (("parent_done", pid), ("order_filled", f"{pid}.2"))
        frames = _frames_until(ws, *wanted)
        seen = _frames_until(watcher, *wanted)

    parent = [f for f in frames if f["type"].startswith("parent_")]
    children = [f for f in frames if f["type"].startswith("order_")]
    assert parent[0] == {"seq": 1, "type": "parent_accepted", "parent_id": pid, "account": "ALGO1", "symbol": "AAPL",
                         "kind": "twap", "ts_ns": T0, "status": "new", "side": "buy", "qty": "200"}  # fmt: skip
    assert [f["seq"] for f in frames] == list(range(1, len(frames) + 1))  # parents' and children's, one numbering
    updates = [(f["status"], f["cum_qty"]) for f in parent if f["type"] == "parent_updated"]
    assert updates[-1] == ("filled", "200") and ("partially_filled", "100") in updates
    assert (parent[-1]["type"], parent[-1]["status"], parent[-1]["cum_qty"]) == ("parent_done", "filled", "200")
    assert parent[-1]["avg_px"] == api.parent(pid)["avg_px"]
    assert {(f["type"], f["client_order_id"]) for f in children} >= {
        ("order_accepted", f"{pid}.1"), ("order_filled", f"{pid}.1"),
        ("order_accepted", f"{pid}.2"), ("order_filled", f"{pid}.2"),
    }  # fmt: skip
    assert seen == frames


def test_the_stream_reports_refused_children_and_the_parent_stopping(api: AlgoApi) -> None:
    api.http.post("/v1/accounts/ALGO1/kill-switch", json={"on": True}, headers=RISK)
    with api.ws("ALGO1", ALGO) as ws:
        json.loads(ws.recv(timeout=10))
        pid = api.submit(kind="twap", qty="300", end_ns=T0 + 30 * S, slices=3).json()["parent_id"]
        api.run_until(T0 + 30 * S)

        frames = _frames_until(ws, ("parent_done", pid))

    rejected = [f for f in frames if f["type"] == "child_rejected"]
    assert [(f["client_order_id"], f["reason_code"]) for f in rejected] == [
        (f"{pid}.{n}", "kill_switch") for n in (1, 2, 3)
    ]
    done = next(f for f in frames if f["type"] == "parent_done")
    assert (done["status"], done["cum_qty"]) == ("stopped", "0") and "rejected in a row" in done["reason"]


# -- VWAP profiles from ClickHouse --


def _history(symbol: str, start_ns: int, days: dict[int, list[tuple[int, int]]]) -> list[TradePrinted]:
    """Prints of `symbol`: for each day back d, (seconds into the window, qty) pairs."""
    trades, match = [], 0
    for d, prints in days.items():
        for offset_s, qty in prints:
            match += 1
            trades.append(TradePrinted("XNAS", symbol, match, MID, qty, Side.BUY, start_ns - d * DAY_NS + offset_s * S))
    return trades


def test_a_vwap_with_history_takes_its_profile_from_clickhouse(loaded: LoadedConfig, tmp_path: Path) -> None:
    dsn = f"chdb://{tmp_path / 'store'}"
    start, end = T0, T0 + 3600 * S  # from now, an hour cut into four buckets of 15 minutes
    trades = _history("AAPL", start, {
        1: [(60, 100), (1000, 100), (2000, 200), (3000, 600)],  # shares 0.1 0.1 0.2 0.6
        2: [(10, 50), (950, 150), (1900, 100), (3599, 100)],  # 0.125 0.375 0.25 0.25
        3: [(-10, 10_000), (3600, 10_000)],  # just outside the window: ignored
    })  # fmt: skip
    client = ch_connect(dsn, "oms")
    try:
        apply_schema(client)
        names, cols = trade_columns(trades, [f"1-{i}".encode() for i in range(len(trades))], scales(loaded.instruments))
        client.insert("market_trades", cols, column_names=list(names), column_oriented=True)
    finally:
        client.close()
    a = AlgoApi(loaded, ApiSettings(port=0, profile_dsn=dsn, profile_lookback_days=5))
    try:
        p = a.submit(kind="vwap", qty="1000", start_ns=start, end_ns=end, buckets=4).json()
        short = a.submit(kind="vwap", qty="1000", start_ns=start, end_ns=end, buckets=4, symbol="MSFT").json()
    finally:
        a.close()

    expected = [(0.1 + 0.125) / 2, (0.1 + 0.375) / 2, (0.2 + 0.25) / 2, (0.6 + 0.25) / 2]
    assert p["profile_source"] == "history" and sum(p["profile"]) == WEIGHT_TOTAL
    assert p["profile"] == [round(w * WEIGHT_TOTAL) for w in expected]
    assert p["profile_note"] == "market_trades: 2 day(s), volume 1400"
    assert [c["qty"] for c in p["children"]] == ["112"]  # the first bucket's share, sent at the start
    assert short["profile_source"] == "flat" and "no trade of MSFT" in short["profile_note"]
