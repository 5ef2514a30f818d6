"""Signing, replayed nonces, stale timestamps, rate limits and idempotency keys, without a server."""

from __future__ import annotations

import pytest

from oms.adapters.api.errors import ApiError
from oms.adapters.api.keys import parse_keys
from oms.adapters.api.security import (
    Authenticator,
    MemoryIdempotency,
    RateLimiter,
    first_claim,
    idempotent_id,
    sign,
)

RING = parse_keys(
    {
        "keys": {
            "t": {"role": "trader", "secret": "sekret", "accounts": ["A"]},
            "fast": {"role": "admin", "secret": "fast", "rate_limit": 5},
        }
    }
)
NOW = 1_700_000_000.0


def _headers(ts: float = NOW, nonce: str = "n1", secret: str = "sekret", body: bytes = b"{}") -> dict[str, str]:
    ts_text = str(int(ts))
    return {
        "x-api-key-id": "t",
        "x-api-timestamp": ts_text,
        "x-api-nonce": nonce,
        "x-api-signature": sign(secret, "POST", "/v1/orders", ts_text, nonce, body),
    }


def _code(fn) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(ApiError) as exc:
        fn()
    assert exc.value.status in (401, 409, 429) and exc.value.message
    return exc.value.code


def test_the_signature_covers_method_path_timestamp_nonce_and_body() -> None:
    base = sign("s", "POST", "/v1/orders", "1", "n", b"{}")

    assert base == sign("s", "post", "/v1/orders", "1", "n", b"{}")
    others = {
        sign("s", "PUT", "/v1/orders", "1", "n", b"{}"),
        sign("s", "POST", "/v1/orders?x", "1", "n", b"{}"),
        sign("s", "POST", "/v1/orders", "2", "n", b"{}"),
        sign("s", "POST", "/v1/orders", "1", "m", b"{}"),
        sign("s", "POST", "/v1/orders", "1", "n", b"{ }"),
        sign("t", "POST", "/v1/orders", "1", "n", b"{}"),
    }
    assert base not in others and len(others) == 6


def test_a_signed_request_passes_once_and_its_nonce_never_again() -> None:
    auth = Authenticator(RING, signing_required=True, max_skew_s=30)

    assert auth.authenticate("POST", "/v1/orders", _headers(), b"{}", now=NOW).key_id == "t"
    assert _code(lambda: auth.authenticate("POST", "/v1/orders", _headers(), b"{}", now=NOW + 1)) == "replayed_nonce"


@pytest.mark.parametrize(
    ("headers", "body", "code"),
    [
        (_headers(ts=NOW - 31), b"{}", "stale_timestamp"),
        (_headers(ts=NOW + 31), b"{}", "stale_timestamp"),
        (_headers(secret="wrong"), b"{}", "bad_signature"),
        (_headers(), b'{"x": 1}', "bad_signature"),
        ({**_headers(), "x-api-key-id": "who"}, b"{}", "unknown_key"),
        ({**_headers(), "x-api-timestamp": "soon"}, b"{}", "bad_timestamp"),
        ({k: v for k, v in _headers().items() if k != "x-api-nonce"}, b"{}", "missing_signature_header"),
        ({"x-api-key": "sekret"}, b"{}", "signature_required"),
    ],
)
def test_stale_forged_or_incomplete_requests_are_401(headers: dict[str, str], body: bytes, code: str) -> None:
    auth = Authenticator(RING, signing_required=True, max_skew_s=30)

    assert _code(lambda: auth.authenticate("POST", "/v1/orders", headers, body, now=NOW)) == code


def test_a_bad_signature_does_not_burn_the_nonce() -> None:
    auth = Authenticator(RING, signing_required=False, max_skew_s=30)
    _code(lambda: auth.authenticate("POST", "/v1/orders", _headers(secret="wrong"), b"{}", now=NOW))

    assert auth.authenticate("POST", "/v1/orders", _headers(), b"{}", now=NOW).key_id == "t"


def test_nonces_are_forgotten_only_once_their_timestamps_are_stale_anyway() -> None:
    auth = Authenticator(RING, signing_required=False, max_skew_s=30)
    auth.authenticate("POST", "/v1/orders", _headers(), b"{}", now=NOW)

    assert _code(lambda: auth.authenticate("POST", "/v1/orders", _headers(), b"{}", now=NOW + 30)) == "replayed_nonce"
    assert _code(lambda: auth.authenticate("POST", "/v1/orders", _headers(), b"{}", now=NOW + 61)) == "stale_timestamp"


def test_the_rate_limit_is_a_sliding_window_per_key() -> None:
    limiter = RateLimiter(default_limit=3, window_s=1.0)
    trader, fast = RING.by_id("t"), RING.by_id("fast")
    assert trader is not None and fast is not None
    for t in (0.0, 0.4, 0.8):
        limiter.check(trader, now=t)

    assert _code(lambda: limiter.check(trader, now=0.9)) == "rate_limited"
    limiter.check(trader, now=1.01)  # the request at 0.0 left the window
    assert _code(lambda: limiter.check(trader, now=1.02)) == "rate_limited"
    for _ in range(5):  # its own limit
        limiter.check(fast, now=0.5)


def test_an_idempotency_key_claims_one_id_for_one_request() -> None:
    store = MemoryIdempotency(ttl_s=10)
    assert store.claim("t", "k", b"d1", "c1", now=0) == (b"d1", "c1", True)

    assert store.claim("t", "k", b"d1", "c2", now=5) == (b"d1", "c1", False)  # a retry gets the first claim
    assert store.claim("u", "k", b"d1", "c3", now=5) == (b"d1", "c3", True)  # another key's
    assert store.claim("t", "k", b"d2", "c4", now=5) == (b"d1", "c1", False)
    assert store.claim("t", "k", b"d2", "c5", now=11) == (b"d2", "c5", True)  # forgotten after the TTL
    store.release("t", "k")
    assert store.claim("t", "k", b"d3", "c6", now=12) == (b"d3", "c6", True)  # released: the key is free again


def test_a_retry_runs_with_the_first_requests_id_and_a_different_body_is_refused() -> None:
    store = MemoryIdempotency(ttl_s=10)
    made = idempotent_id("t", "k")

    assert first_claim(store, "t", "k", b"body", made) == (made, True)
    assert first_claim(store, "t", "k", b"body", "other") == (made, False)
    assert made != idempotent_id("t", "k2") and made != idempotent_id("u", "k")
    assert _code(lambda: first_claim(store, "t", "k", b"changed", made)) == "idempotency_key_reused"
