"""schemathesis against the live server's own OpenAPI document: no 5xx, every response as documented.

An admin key (every route reachable) on a fresh in-process core with an algo engine (the parent-order routes answer
for real); the examples per operation are bounded so the whole module runs well under a minute.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from oms.adapters.algos import AlgoEngine, MemoryStore
from oms.adapters.api import ApiServer, ApiSettings
from oms.apps.local_api import local_core
from oms.apps.serve import load_config

pytestmark = pytest.mark.integration

ADMIN = {"X-API-Key": "admin-dev-secret"}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def server() -> Iterator[ApiServer]:
    loaded = load_config()
    core = local_core(loaded)
    algos = AlgoEngine(core.host, loaded.instruments, store=MemoryStore(), profiles={"u-shape": [4, 1, 1, 4]})
    s = ApiServer(core.host, core.view, ApiSettings(port=0, rate_limit=1_000_000), algos=algos).start()
    yield s
    s.stop()
    algos.close()


def test_no_server_error_and_every_response_matches_the_schema(server: ApiServer) -> None:
    # hypothesis drives schemathesis directly: its pytest plugin breaks on pytest 9.2
    schema = schemathesis.openapi.from_url(f"{server.url}/schema/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 14
    routes = {(op.method.upper(), op.path) for op in operations}
    assert {("POST", "/v1/algos"), ("GET", "/v1/algos"), ("GET", "/v1/algos/{parent_id}"),
            ("DELETE", "/v1/algos/{parent_id}")} <= routes  # fmt: skip
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(base_url=server.url, headers=ADMIN, checks=CHECKS)

        check()


_PRICES = st.sampled_from(["149", "149.5", "150", "150.01", "151", "0.5", "150.001", "-1"])
_QTYS = st.sampled_from(["1", "10", "100", "0", "2.5", "-3", "5000"])
_FIELDS = {
    "limit_price": _PRICES,
    "price": _PRICES,
    "entry_price": _PRICES,
    "take_profit": _PRICES,
    "stop_loss": _PRICES,
    "stop_limit": _PRICES,
    "display_qty": _QTYS,
    "min_clip": _QTYS,
    "max_clip": _QTYS,
    "rate_pct": st.sampled_from(["0.01", "10", "100", "0", "101", "12.345"]),
    "start_ns": st.integers(-120, 120).map(lambda s: time.time_ns() + s * 10**9),
    "end_ns": st.integers(-120, 600).map(lambda s: time.time_ns() + s * 10**9),
    "slices": st.integers(-1, 50),
    "buckets": st.integers(-1, 50),
    "profile": st.one_of(st.sampled_from(["flat", "history", "u-shape", "nope"]), st.lists(st.integers(-1, 9))),
}


def test_parents_past_the_first_checks_never_5xx_and_match_the_schema(server: ApiServer) -> None:
    """Submits as schemathesis builds them, with the account, symbol, quantities, prices and times drawn from
    plausible values (random ones rarely get past the account check), then a get and a cancel of what was made."""
    schema = schemathesis.openapi.from_url(f"{server.url}/schema/openapi.json")
    ops = {(op.method.upper(), op.path): op for op in (r.ok() for r in schema.get_all_operations())}
    submit, get_one, cancel = (ops[k] for k in (("POST", "/v1/algos"), ("GET", "/v1/algos/{parent_id}"),
                                                ("DELETE", "/v1/algos/{parent_id}")))  # fmt: skip
    doc = httpx.get(f"{server.url}/schema/openapi.json", timeout=30).json()
    known = {name for component in doc["components"]["schemas"].values() for name in component.get("properties", {})}
    made: list[int] = []

    @given(case=submit.as_strategy(), data=st.data())
    @settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def check(case: schemathesis.Case, data: st.DataObject) -> None:
        # the key authenticates (drawn HMAC headers would make it a signed request, stopped at the 401 check); each
        # submit is a new request (a drawn Idempotency-Key is mostly one already used); drawn unknown fields are 400s
        headers = {k: v for k, v in (case.headers or {}).items() if not k.lower().startswith("x-api-")}
        if "Idempotency-Key" in headers:
            headers["Idempotency-Key"] = uuid.uuid4().hex
        case.headers = headers
        if isinstance(case.body, dict):
            case.body = {k: v for k, v in case.body.items() if k in known}
            case.body.update(
                account="ALGO1", symbol=data.draw(st.sampled_from(["AAPL", "BTC-USD", "EURUSD"])), qty=data.draw(_QTYS)
            )
            for name, values in _FIELDS.items():
                if name in case.body:
                    case.body[name] = data.draw(values)
        response = case.call_and_validate(base_url=server.url, headers=ADMIN, checks=CHECKS)
        made.append(response.status_code)
        if response.status_code == 201:
            pid = response.json()["parent_id"]
            for op in (get_one, cancel):
                op.Case(path_parameters={"parent_id": pid}).call_and_validate(
                    base_url=server.url, headers=ADMIN, checks=CHECKS
                )

    check()
    assert 201 in made and 400 in made  # both sides of the checks were reached


def test_the_document_tags_names_and_secures_every_operation(server: ApiServer) -> None:
    doc = httpx.get(f"{server.url}/schema/openapi.json", timeout=30).json()
    operations = [(path, method, op) for path, item in doc["paths"].items() for method, op in item.items()]
    ids = [op["operationId"] for _, _, op in operations]
    assert len(ids) == len(set(ids)) and all(re.fullmatch(r"[a-z]+(?:[A-Z][a-z]+)*", i) for i in ids), ids
    tags = {t["name"] for t in doc["tags"]}
    assert all(len(op["tags"]) == 1 and op["tags"][0] in tags for _, _, op in operations)
    assert "security" not in doc  # per operation: the public ones need no key
    schemes = doc["components"]["securitySchemes"]
    for path, _, op in operations:
        if path in ("/healthz", "/readyz", "/metrics"):
            assert "security" not in op, path
        else:
            key, signed = op["security"]
            assert key == {"apiKey": []} and set(signed) == {"hmacKeyId", "hmacTimestamp", "hmacNonce", "hmacSignature"}
    assert {s["name"] for s in schemes.values()} == {"X-API-Key", "X-API-Key-Id", "X-API-Timestamp", "X-API-Nonce",
                                                    "X-API-Signature"}  # fmt: skip
    assert "/v1/accounts/{account}/stream" in doc["info"]["description"]  # the WebSocket, which OpenAPI cannot hold
    root = httpx.get(f"{server.url}/schema", timeout=30)  # the document itself, not a page loading from CDNs
    assert root.status_code == 200 and root.json()["info"]["title"] == "OMS REST API"
    assert httpx.get(f"{server.url}/schema/redoc", timeout=30).status_code == 404
