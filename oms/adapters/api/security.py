"""Who is calling and how often: API key or HMAC-signed request, nonce replay cache, per-key rate limits,
idempotency keys.

Signed requests carry `X-API-Key-Id`, `X-API-Timestamp` (integer Unix seconds), `X-API-Nonce` (1-64 printable
characters, never reused by the key) and `X-API-Signature`: lower-case hex HMAC-SHA256, keyed by the key's secret,
of `METHOD "\\n" PATH "\\n" TIMESTAMP "\\n" NONCE "\\n"` followed by the raw body bytes, where PATH is the path
with its query string (`/v1/orders?status=new`). The checks run in this order, each a 401 with its own code:
unknown key id (`unknown_key`), timestamp not within `max_clock_skew_s` of the server's clock (`stale_timestamp`),
signature mismatch (`bad_signature`), nonce already seen from that key within the skew window (`replayed_nonce`).
A nonce is remembered only once its signature checks, so nobody can burn another key's nonces.

A browser cannot put headers on a WebSocket handshake: it asks for a stream ticket first (`StreamTickets`, a POST
authenticated as any other), then opens the stream with `?ticket=...`. A ticket is random, good for one handshake,
within `TICKET_TTL_S`, and stands for the key that asked for it (its role and accounts).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Mapping
from typing import Protocol

from oms.adapters.api.errors import ApiError
from oms.adapters.api.keys import ApiKey, KeyRing

__all__ = [
    "TICKET_TTL_S", "Authenticator", "IdempotencyStore", "MemoryIdempotency", "NonceStore", "RateLimiter",
    "StreamTickets", "first_claim", "idempotent_id", "sign",
]  # fmt: skip

H_KEY = "x-api-key"
H_KEY_ID = "x-api-key-id"
H_TS = "x-api-timestamp"
H_NONCE = "x-api-nonce"
H_SIG = "x-api-signature"


def sign(secret: bytes | str, method: str, path: str, timestamp: str, nonce: str, body: bytes = b"") -> str:
    """The X-API-Signature value for a request (clients and tests use it too)."""
    key = secret.encode() if isinstance(secret, str) else secret
    msg = f"{method.upper()}\n{path}\n{timestamp}\n{nonce}\n".encode() + body
    return hmac.new(key, msg, hashlib.sha256).hexdigest()


class NonceStore(Protocol):
    """Where signed requests' nonces are remembered for `horizon_s` (twice the allowed clock skew: an older request
    is refused as stale anyway): in memory, or in Redis so a restart does not forget them
    (`oms.infra.redis.nonces.RedisNonces`)."""

    def first_use(self, key_id: str, nonce: str, now: float) -> bool:
        """Remember (key id, nonce); False when it was remembered already."""
        ...


class _Nonces:
    """Nonces seen per key, forgotten once older than the skew window (older requests are refused as stale)."""

    def __init__(self, horizon_s: float) -> None:
        self._horizon = horizon_s
        self._seen: OrderedDict[tuple[str, str], float] = OrderedDict()

    def first_use(self, key_id: str, nonce: str, now: float) -> bool:
        seen = self._seen
        while seen:
            t = next(iter(seen.values()))
            if now - t <= self._horizon:
                break
            seen.popitem(last=False)
        if (key_id, nonce) in seen:
            return False
        seen[(key_id, nonce)] = now
        return True


class Authenticator:
    """Turns request headers (and body) into the calling ApiKey, or raises a 401 ApiError saying why."""

    def __init__(
        self, keys: KeyRing, signing_required: bool, max_skew_s: int, nonces: NonceStore | None = None
    ) -> None:
        """`nonces`: where nonces are remembered (default: in memory, for 2 x `max_skew_s`)."""
        self.keys = keys
        self._required = signing_required
        self._skew = max_skew_s
        self._nonces = nonces if nonces is not None else _Nonces(2 * max_skew_s)

    def needs_body(self, headers: Mapping[str, str]) -> bool:
        """True when the request is signed (the signature covers the body)."""
        return H_SIG in headers or H_KEY_ID in headers

    def authenticate(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes, now: float | None = None
    ) -> ApiKey:
        if self.needs_body(headers):
            return self._signed(method, path, headers, body, time.time() if now is None else now)
        if self._required:
            raise ApiError(
                401,
                "signature_required",
                "requests must be signed (X-API-Key-Id, X-API-Timestamp, X-API-Nonce, X-API-Signature)",
            )
        secret = headers.get(H_KEY)
        if not secret:
            raise ApiError(401, "missing_key", "no credentials: send X-API-Key, or sign the request")
        key = self.keys.by_secret(secret)
        if key is None:
            raise ApiError(401, "unknown_key", "X-API-Key is not a valid key")
        return key

    def _signed(self, method: str, path: str, headers: Mapping[str, str], body: bytes, now: float) -> ApiKey:
        missing = [h for h in (H_KEY_ID, H_TS, H_NONCE, H_SIG) if not headers.get(h)]
        if missing:
            raise ApiError(401, "missing_signature_header", f"signed request without {missing[0]}")
        key = self.keys.by_id(headers[H_KEY_ID])
        if key is None:
            raise ApiError(401, "unknown_key", f"unknown key id {headers[H_KEY_ID][:64]!r}")
        ts_text = headers[H_TS]
        if not (ts_text.isascii() and ts_text.isdigit() and len(ts_text) <= 12):
            raise ApiError(401, "bad_timestamp", "X-API-Timestamp must be integer Unix seconds")
        skew = now - int(ts_text)
        if abs(skew) > self._skew:
            raise ApiError(
                401,
                "stale_timestamp",
                f"X-API-Timestamp is {skew:+.0f} s from the server's clock (at most {self._skew} s allowed)",
            )
        nonce = headers[H_NONCE]
        if len(nonce) > 64 or not nonce.isprintable():
            raise ApiError(401, "bad_nonce", "X-API-Nonce must be 1-64 printable characters")
        expected = sign(key.secret, method, path, ts_text, nonce, body)
        signature = headers[H_SIG]
        if not signature.isascii():  # compare_digest takes ASCII text only: anything else is no match
            raise ApiError(401, "bad_signature", "X-API-Signature must be the hexadecimal HMAC-SHA256")
        if not hmac.compare_digest(expected, signature.lower()):
            raise ApiError(401, "bad_signature", "X-API-Signature does not match the request")
        if not self._nonces.first_use(key.key_id, nonce, now):
            raise ApiError(401, "replayed_nonce", "X-API-Nonce was already used by this key")
        return key


TICKET_TTL_S = 30.0
TICKETS_PER_KEY = 32  # unused tickets a key may hold at once; asking for more drops its oldest


class StreamTickets:
    """One-time tickets that open a WebSocket stream as the key that asked for them (see the module doc)."""

    def __init__(self, ttl_s: float = TICKET_TTL_S, per_key: int = TICKETS_PER_KEY) -> None:
        self._ttl = ttl_s
        self._per_key = per_key
        self._tickets: OrderedDict[str, tuple[ApiKey, float]] = OrderedDict()  # oldest first
        self._lock = threading.Lock()

    def issue(self, key: ApiKey, now: float | None = None) -> str:
        """A new ticket for `key`, good once within the TTL."""
        now = time.monotonic() if now is None else now
        ticket = secrets.token_urlsafe(24)
        with self._lock:
            self._expire(now)
            mine = [t for t, (k, _) in self._tickets.items() if k.key_id == key.key_id]
            for old in mine[: max(len(mine) - self._per_key + 1, 0)]:
                del self._tickets[old]
            self._tickets[ticket] = (key, now + self._ttl)
        return ticket

    def redeem(self, ticket: str, now: float | None = None) -> ApiKey:
        """The key `ticket` stands for, which it no longer does; a 401 ApiError (`bad_ticket`) when it is unknown,
        used or expired."""
        now = time.monotonic() if now is None else now
        with self._lock:
            self._expire(now)
            entry = self._tickets.pop(ticket, None)
        if entry is None:
            raise ApiError(401, "bad_ticket", "unknown, used or expired stream ticket: ask for a new one")
        return entry[0]

    def _expire(self, now: float) -> None:
        tickets = self._tickets
        while tickets:
            first = next(iter(tickets))
            if tickets[first][1] > now:
                break
            del tickets[first]


class RateLimiter:
    """Per-key sliding window: at most `limit` requests in any `window_s` interval."""

    def __init__(self, default_limit: int, window_s: float) -> None:
        self._default = default_limit
        self._window = window_s
        self._times: dict[str, deque[float]] = {}

    def check(self, key: ApiKey, now: float | None = None) -> None:
        """Count the request, or raise a 429 ApiError (with Retry-After) when the key is over its limit."""
        now = time.monotonic() if now is None else now
        limit = key.rate_limit or self._default
        times = self._times.get(key.key_id)
        if times is None:
            times = self._times[key.key_id] = deque()
        cutoff = now - self._window
        while times and times[0] <= cutoff:
            times.popleft()
        if len(times) >= limit:
            retry = max(times[0] + self._window - now, 0.001)
            raise ApiError(
                429,
                "rate_limited",
                f"key {key.key_id!r}: more than {limit} requests in {self._window:g} s",
                headers={"Retry-After": str(max(1, round(retry + 0.5)))},
            )
        times.append(now)


class IdempotencyStore(Protocol):
    """(key id, Idempotency-Key) -> (digest of the request, the id it makes: an order's client_order_id, a parent's
    parent_id), kept for the store's TTL: in memory (`MemoryIdempotency`), or in Redis so a restart forgets none
    (`oms.infra.redis.idempotency.RedisIdempotency`). One store per kind of request, so the same Idempotency-Key may
    serve an order and a parent. The id is claimed before the request runs: a retry (even one racing the first
    request, or sent after a restart) runs with the same id, and the engine, which judges ids in sequence and knows
    every journaled order and parent, answers it with what the first one made."""

    def claim(self, key_id: str, idem: str, digest: bytes, made: str) -> tuple[bytes, str, bool]:
        """(digest, id) of the first request with this key, and whether this call made the claim (then they are
        `digest` and `made`)."""
        ...

    def release(self, key_id: str, idem: str) -> None:
        """Forget the claim: the request that made it made nothing (refused before it ran)."""
        ...


def first_claim(store: IdempotencyStore, key_id: str, idem: str, body: bytes, made: str) -> tuple[str, bool]:
    """The id the first request with this Idempotency-Key claimed in `store`, and whether this is that request
    (then the id is `made`; a retry runs with the first one's id and is answered with what it made). Raises ApiError
    409 `idempotency_key_reused` when that request's body differed from `body`."""
    digest = hashlib.sha256(body).digest()
    first, made, mine = store.claim(key_id, idem, digest, made)
    if first != digest:
        raise ApiError(409, "idempotency_key_reused", "this Idempotency-Key was used with a different request")
    return made, mine


def idempotent_id(key_id: str, idem: str) -> str:
    """The id a request with an Idempotency-Key gets when it names none: the same for every retry."""
    return "idem-" + hashlib.sha256(f"{key_id}\x00{idem}".encode()).hexdigest()[:24]


class MemoryIdempotency:
    """`IdempotencyStore` in this process: forgotten at a restart and after `ttl_s` seconds."""

    def __init__(self, ttl_s: float, max_entries: int = 1_000_000) -> None:
        self._ttl = ttl_s
        self._max = max_entries
        self._entries: OrderedDict[tuple[str, str], tuple[float, bytes, str]] = OrderedDict()

    def claim(
        self, key_id: str, idem: str, digest: bytes, made: str, now: float | None = None
    ) -> tuple[bytes, str, bool]:
        now = time.monotonic() if now is None else now
        entries = self._entries
        while entries:
            _, (t, _, _) = next(iter(entries.items()))
            if now - t <= self._ttl and len(entries) <= self._max:
                break
            entries.popitem(last=False)
        mine = (now, digest, made)
        first = entries.setdefault((key_id, idem), mine)
        return first[1], first[2], first is mine

    def release(self, key_id: str, idem: str) -> None:
        self._entries.pop((key_id, idem), None)
