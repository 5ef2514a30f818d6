from __future__ import annotations

import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import msgspec
import pytest

from oms.infra.redis.server import (
    RAY_RESERVED_PORTS,
    JournalUnavailable,
    ManagedRedis,
    RedisNotFound,
    RedisSettings,
    RedisStartError,
    connect,
    make_client,
)
from tests.integration.procs import gone_within

pytestmark = pytest.mark.integration


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_managed_redis_answers_on_loopback_outside_ray_ports_with_aof_on(redis_server: ManagedRedis) -> None:
    assert redis_server.port is not None
    assert redis_server.port not in RAY_RESERVED_PORTS
    assert redis_server.url == f"redis://127.0.0.1:{redis_server.port}/0"
    client = make_client(redis_server.url)
    try:
        assert client.ping()
        config = client.config_get("*")
    finally:
        client.close()
    assert config["bind"] == "127.0.0.1"
    assert config["protected-mode"] == "yes"
    assert config["appendonly"] == "yes"
    assert config["appendfsync"] == "everysec"
    assert config["aof-use-rdb-preamble"] == "yes"
    assert config["save"] == ""


def test_restart_on_the_same_data_dir_keeps_the_data(tmp_path: Path) -> None:
    with ManagedRedis(tmp_path, appendfsync="no", aof_use_rdb_preamble=False) as first:
        client = make_client(first.url)
        client.set("k", b"v1")
        client.xadd("s", {"r": b"x"})
        client.close()
    with ManagedRedis(tmp_path) as second:
        client = make_client(second.url)
        assert client.get("k") == b"v1"
        assert client.xlen("s") == 1
        client.close()


def test_stop_is_clean_idempotent_and_frees_the_port(tmp_path: Path) -> None:
    server = ManagedRedis(tmp_path).start()
    process, port = server.process, server.port
    assert process is not None and port is not None

    server.stop()
    server.stop()

    assert process.returncode == 0
    assert not _listening(port)
    assert "ready to accept connections" in (tmp_path / "redis.log").read_text().lower()


def test_busy_port_raises_a_start_error_quoting_the_server_log(tmp_path: Path) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        with pytest.raises(RedisStartError, match=rf"(?s)port {port}.*Address already in use"):
            ManagedRedis(tmp_path, port=port).start()


def test_missing_binary_raises_redis_not_found_naming_it(tmp_path: Path) -> None:
    with pytest.raises(RedisNotFound, match="redis-server-missing not found: apt-get install redis-server"):
        ManagedRedis(tmp_path, binary="redis-server-missing").start()


def test_port_in_rays_reserved_range_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="Ray"):
        ManagedRedis(tmp_path, port=10002)


def test_unknown_appendfsync_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="appendfsync"):
        ManagedRedis(tmp_path, appendfsync="sometimes")  # type: ignore[arg-type]


def test_a_second_server_on_the_same_data_dir_is_refused(tmp_path: Path) -> None:
    with ManagedRedis(tmp_path):
        second = ManagedRedis(tmp_path, start_timeout_s=0.2)
        with pytest.raises(RedisStartError, match="in use by another redis-server"):
            second.start()
        assert second.process is None


def test_connect_to_a_dead_port_raises_journal_unavailable_naming_the_url() -> None:
    url = f"redis://127.0.0.1:{_dead_port()}/0"
    with pytest.raises(JournalUnavailable, match=f"Redis at {url} does not answer"):
        connect(RedisSettings(url=url, timeout_s=0.5))


def test_connect_hides_the_password_of_the_url() -> None:
    url = f"redis://oms:s3cret@127.0.0.1:{_dead_port()}/0"
    with pytest.raises(JournalUnavailable) as info:
        connect(RedisSettings(url=url, timeout_s=0.5))
    assert "s3cret" not in str(info.value)
    assert "oms:***@127.0.0.1" in str(info.value)


def test_connect_without_url_starts_a_managed_server_with_the_settings(tmp_path: Path) -> None:
    client, managed = connect(RedisSettings(data_dir=str(tmp_path), appendfsync="always"))
    try:
        assert managed is not None
        assert client.config_get("appendfsync") == {"appendfsync": "always"}
    finally:
        client.close()
        if managed is not None:
            managed.stop()


def test_connect_with_url_uses_that_server(redis_server: ManagedRedis) -> None:
    client, managed = connect(RedisSettings(url=redis_server.url))
    assert managed is None
    assert client.ping()
    client.close()


def test_settings_reject_a_misspelt_key_by_name() -> None:
    with pytest.raises(msgspec.ValidationError, match="appendfsynk"):
        msgspec.toml.decode(b'appendfsynk = "always"', type=RedisSettings)
    with pytest.raises(msgspec.ValidationError, match="appendfsync"):
        msgspec.toml.decode(b'appendfsync = "sometimes"', type=RedisSettings)


def test_server_shuts_down_when_the_process_that_started_it_is_killed(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import sys, time
        from oms.infra.redis.server import ManagedRedis, make_client
        server = ManagedRedis({str(tmp_path)!r}, appendfsync="always").start()
        client = make_client(server.url)
        client.set("survivor", b"yes")
        print(server.pid, flush=True)
        time.sleep(60)
        """
    )
    owner = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    assert owner.stdout is not None
    redis_pid = int(owner.stdout.readline())
    owner.stdout.close()

    owner.send_signal(signal.SIGKILL)
    owner.wait()

    assert not gone_within([redis_pid], 5)
    with ManagedRedis(tmp_path) as restarted:
        client = make_client(restarted.url)
        assert client.get("survivor") == b"yes"
        client.close()
