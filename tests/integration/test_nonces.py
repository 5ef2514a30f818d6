"""Signed REST requests' nonces kept in Redis: a request replayed after a restart of the OMS is still refused."""

from __future__ import annotations

import time

import pytest
import redis

from oms.adapters.api.errors import ApiError
from oms.adapters.api.security import Authenticator
from oms.infra.redis.nonces import RedisNonces
from tests.unit.adapters.test_api_security import RING, _headers

pytestmark = pytest.mark.integration


def test_a_nonce_is_refused_again_after_a_restart_and_forgotten_after_its_horizon(redis_client: redis.Redis) -> None:
    redis_client.flushdb()
    now = time.time()
    before = Authenticator(RING, signing_required=True, max_skew_s=30, nonces=RedisNonces(redis_client, 60))
    headers = _headers(ts=now, nonce="r1")
    assert before.authenticate("POST", "/v1/orders", headers, b"{}", now=now).key_id == "t"

    after = Authenticator(RING, signing_required=True, max_skew_s=30, nonces=RedisNonces(redis_client, 60))
    with pytest.raises(ApiError) as exc:  # a new process, the same Redis: the replay is still seen
        after.authenticate("POST", "/v1/orders", headers, b"{}", now=now)

    assert exc.value.code == "replayed_nonce"
    assert 0 < redis_client.pttl("oms:nonce:t:r1") <= 60_000  # kept for the horizon only
