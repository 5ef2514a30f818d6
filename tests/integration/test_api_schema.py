"""schemathesis against the live server's own OpenAPI document: no 5xx, every response as documented.

An admin key (every route reachable) on a fresh in-process core; the examples per operation are bounded so the
whole module runs well under a minute.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from oms.api import ApiServer, ApiSettings
from oms.api.local import local_core
from oms.app import load_config

pytestmark = pytest.mark.integration

ADMIN = {"X-API-Key": "admin-dev-secret"}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def server() -> Iterator[ApiServer]:
    core = local_core(load_config())
    s = ApiServer(core.host, core.view, ApiSettings(port=0, rate_limit=1_000_000)).start()
    yield s
    s.stop()


def test_no_server_error_and_every_response_matches_the_schema(server: ApiServer) -> None:
    # hypothesis drives schemathesis directly: its pytest plugin breaks on pytest 9.2
    schema = schemathesis.openapi.from_url(f"{server.url}/schema/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(base_url=server.url, headers=ADMIN, checks=CHECKS)

        check()
