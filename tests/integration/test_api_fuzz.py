"""schemathesis over the real `oms serve`'s REST API, its bodies made hostile: a field nested 2,000 deep, numbers of
400 digits, 1e999, -0, strings and numbers where booleans go, NaN, an unterminated document.

The oracle: no 5xx on any route, no exception text in any answer, and afterwards the server is still ready, and
`oms audit verify` passes on its journal. Bounded by `EXAMPLES` per route; the counts are printed."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.test_fix_door import Served

pytestmark = pytest.mark.integration

EXAMPLES = 12
ADMIN = {"X-API-Key": "admin-dev-secret"}
ROOT = Path(__file__).parents[2]
HOSTILE = [
    "[" * 2000 + "1" + "]" * 2000,
    '{"a":' * 2000 + "1" + "}" * 2000,
    "9" * 400,
    "-" + "9" * 400,
    "1e999",
    "-0",
    "0.1e-400",
    '"false"',
    "0",
    "NaN",
    '"\\ud800"',
    '"' + "x" * 10_000 + '"',
]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    s = Served(tmp_path_factory.mktemp("apifuzz"))
    yield s
    s.stop()


def test_hostile_bodies_on_every_route_get_4xx_never_5xx(served: Served, capsys: pytest.CaptureFixture[str]) -> None:
    api = next(line.split()[1] for line in served.lines if line.startswith("api "))
    schema = schemathesis.openapi.from_url(f"{api}/schema/openapi.json")
    operations = [r.ok() for r in schema.get_all_operations()]
    statuses: Counter[int] = Counter()
    bad: list[str] = []
    seed = {"account": "ACC1", "symbol": "AAPL", "side": "buy", "qty": "10", "price": "149", "tif": "gtc"}
    first = httpx.post(f"{api}/v1/orders", json=seed, headers={"X-API-Key": "trader1-dev-secret"}, timeout=30)
    assert first.status_code == 201, first.text  # so the journal has something for the audit to verify
    with httpx.Client(timeout=30) as http:
        for operation in operations:

            @given(case=operation.as_strategy(), data=st.data())
            @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
            def check(case: schemathesis.Case, data: st.DataObject) -> None:
                kwargs = case.as_transport_kwargs(base_url=api, headers=ADMIN)
                body = kwargs.pop("json", None)
                if isinstance(body, dict) and body:
                    key = data.draw(st.sampled_from(sorted(body)))
                    raw = data.draw(st.sampled_from(HOSTILE))
                    text = json.dumps({**body, key: "__HOSTILE__"}).replace('"__HOSTILE__"', raw)
                elif case.method.upper() in ("POST", "PUT", "PATCH"):
                    text = data.draw(st.sampled_from([HOSTILE[0], HOSTILE[1], '{"a": 1', "", "null", "[]"]))
                else:
                    text = None
                if text is not None:
                    kwargs["content"] = text.encode()
                    kwargs.setdefault("headers", {})["content-type"] = "application/json"
                kwargs.pop("timeout", None)
                kwargs.pop("cookies", None)  # the API reads none
                response = http.request(**kwargs)
                statuses[response.status_code] += 1
                if response.status_code >= 500 or "Traceback" in response.text or 'File "' in response.text:
                    bad.append(f"{case.method} {case.formatted_path} {(text or '')[:80]!r} -> "
                               f"{response.status_code} {response.text[:200]}")  # fmt: skip

            check()
    ready = httpx.get(f"{api}/readyz", timeout=30)
    redis = next(line.split()[1] for line in served.lines if line.startswith("redis "))
    audit = subprocess.run([sys.executable, "-m", "oms", "audit", "verify", "--redis-url", redis],
                           capture_output=True, text=True, cwd=ROOT, timeout=120)  # fmt: skip
    with capsys.disabled():
        print(f"\nREST fuzz: {sum(statuses.values())} requests over {len(operations)} routes; "
              f"statuses {dict(sorted(statuses.items()))}; 5xx or exception text {len(bad)}; "
              f"readyz {ready.status_code}; audit exit {audit.returncode}")  # fmt: skip

    assert bad == []
    assert ready.status_code == 200
    assert audit.returncode == 0, audit.stdout[-2000:] + audit.stderr[-2000:]
