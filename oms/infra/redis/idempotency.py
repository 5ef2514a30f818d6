"""REST Idempotency-Keys in Redis, so a retry after a restart still gets what the first request made.

Key `oms:idem:{kind}:{key id}:{Idempotency-Key}` (kind `order` or `parent`): a msgpack [request digest, id], set
with NX and an expiry of the store's TTL. One round trip per request that carries the header (two for a retry).
"""

from __future__ import annotations

import msgspec
import redis

__all__ = ["RedisIdempotency"]


class RedisIdempotency:
    """`oms.adapters.api.security.IdempotencyStore` over Redis."""

    def __init__(self, client: redis.Redis, kind: str, ttl_s: float, prefix: str = "oms") -> None:
        self._client = client
        self._ttl_ms = max(int(ttl_s * 1000), 1)
        self._prefix = f"{prefix}:idem:{kind}"

    def claim(self, key_id: str, idem: str, digest: bytes, made: str) -> tuple[bytes, str]:
        """(digest, id) of the first request with this key: (`digest`, `made`) when this is the first. Raises when
        Redis does not answer: the request is then refused, not run unguarded."""
        key = f"{self._prefix}:{key_id}:{idem}"
        while True:
            if self._client.set(key, msgspec.msgpack.encode((digest, made)), nx=True, px=self._ttl_ms):
                return digest, made
            raw = self._client.get(key)
            if raw is not None:  # else it expired between the two calls: claim again
                return msgspec.msgpack.decode(raw, type=tuple[bytes, str])
