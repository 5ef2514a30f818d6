"""Signed REST requests' nonces in Redis, so a request replayed after a restart is still refused.

Key `oms:nonce:{key id}:{nonce}`, set with NX and an expiry of the store's horizon (twice the allowed clock skew: an
older request is refused as stale before its nonce is looked at). One round trip per signed request.
"""

from __future__ import annotations

import redis

__all__ = ["RedisNonces"]


class RedisNonces:
    """`oms.adapters.api.security.NonceStore` over Redis."""

    def __init__(self, client: redis.Redis, horizon_s: float, prefix: str = "oms") -> None:
        self._client = client
        self._ttl_ms = max(int(horizon_s * 1000), 1)
        self._prefix = prefix

    def first_use(self, key_id: str, nonce: str, now: float) -> bool:
        """Remember (key id, nonce) for the horizon; False when it is remembered already. Raises when Redis does
        not answer (the request is then refused: a replay must not pass because Redis was away)."""
        key = f"{self._prefix}:nonce:{key_id}:{nonce}"
        return bool(self._client.set(key, b"1", nx=True, px=self._ttl_ms))
