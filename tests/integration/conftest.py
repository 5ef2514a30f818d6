"""A real `redis-server` for the whole test session, on a free loopback port with its data in a temp dir."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis

from oms.redis_server import ManagedRedis, make_client


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManagedRedis]:
    with ManagedRedis(tmp_path_factory.mktemp("redis"), appendfsync="everysec") as server:
        yield server


@pytest.fixture
def redis_client(redis_server: ManagedRedis) -> Iterator[redis.Redis]:
    client = make_client(redis_server.url)
    yield client
    client.close()


@pytest.fixture
def account() -> str:
    """A fresh account name per test, so tests share the server without flushing it."""
    return f"T-{uuid.uuid4().hex[:12]}"
