"""A real `redis-server` for the whole test session, on a free loopback port with its data in a temp dir."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis

from oms.infra.ray.runtime import RaySettings, start_ray, stop_ray
from oms.infra.redis.server import ManagedRedis, make_client


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


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
    """A local Ray cluster sized for a 2-core machine, per test module (modules that start Ray themselves may
    stop it, so none is shared across modules)."""
    start_ray(RaySettings(num_cpus=2, object_store_mb=200))
    yield
    stop_ray()


@pytest.fixture
def fresh_redis(redis_server: ManagedRedis) -> Iterator[redis.Redis]:
    """The shared server, emptied: for tests of the configured accounts (ACC1, ...), whose names are fixed."""
    client = make_client(redis_server.url)
    client.flushdb()
    yield client
    client.close()
