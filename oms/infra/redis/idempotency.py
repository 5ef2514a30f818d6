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

    def claim(self, key_id: str, idem: str, digest: bytes, made: str) -> tuple[bytes, str, bool]:
        """(digest, id) of the first request with this key, and whether this call made the claim. Raises when Redis
        does not answer: the request is then refused, not run unguarded."""
        key = self._key(key_id, idem)
        while True:
            if self._client.set(key, msgspec.msgpack.encode((digest, made)), nx=True, px=self._ttl_ms):
                return digest, made, True
            raw = self._client.get(key)
            if raw is not None:  # else it expired between the two calls: claim again
                first, made = msgspec.msgpack.decode(raw, type=tuple[bytes, str])
                return first, made, False

    def release(self, key_id: str, idem: str) -> None:
        """Forget the claim (its request made nothing)."""
        self._client.delete(self._key(key_id, idem))

    def _key(self, key_id: str, idem: str) -> str:
        return f"{self._prefix}:{key_id}:{idem}"
