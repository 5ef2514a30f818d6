"""Redis for the journal: a `redis-server` the OMS starts itself (the embedded default) or one given by URL.

`ManagedRedis` runs Debian's `redis-server` as a child process:

- bound to 127.0.0.1 only, `protected-mode yes`, on a free port outside 10002-19999 (Ray's worker ports);
- no config file: every setting is a command-line argument, so what runs is what this module says;
- AOF on (`appendonly yes`) in `data_dir/appendonlydir`, `appendfsync` as configured, RDB save points off (the AOF,
  with an RDB preamble after each rewrite, is the only persistence);
- stdout/stderr go to `data_dir/redis.log`; a start that fails quotes its tail;
- `data_dir/.lock` is flock-ed by this process and inherited by the server, so a second server can never run on
  the same AOF, even when the process that started the first one was killed (SIGKILL) and the server outlived it;
- on Linux the server gets SIGTERM (a clean shutdown that flushes the AOF) when the thread that started it dies,
  so a killed OMS leaves no orphan behind. Start it from a thread that lives as long as the server should.

What each `appendfsync` promises (Redis answers a write only after appending it to the AOF buffer):

- `always`: the AOF is fsync-ed before Redis answers, so every acknowledged write survives a process crash *and*
  a machine crash or power loss. Costs one fsync per event-loop iteration (writes arriving together share one).
- `everysec`: fsync in the background once a second; a crash of the Redis process loses nothing acknowledged
  (the data is in the OS page cache), a machine crash or power loss loses up to ~1 s (2 s worst case when the disk
  stalls) of acknowledged writes.
- `no`: Redis never fsyncs; the OS flushes when it likes (about 30 s on Linux). Process crash: nothing lost;
  machine crash: an unbounded recent window is lost.

With a `url` the server's own persistence settings apply; the OMS neither checks nor changes them.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import time
import types
from pathlib import Path
from typing import IO, Annotated, Literal
from urllib.parse import urlsplit, urlunsplit

import msgspec
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from oms.infra.children import die_with_parent

__all__ = [
    "RAY_RESERVED_PORTS",
    "AppendFsync",
    "JournalUnavailable",
    "ManagedRedis",
    "RedisNotFound",
    "RedisSettings",
    "RedisStartError",
    "connect",
    "make_client",
]

AppendFsync = Literal["always", "everysec", "no"]

RAY_RESERVED_PORTS = range(10002, 20000)
"""Ray's default worker ports; a Redis there would collide with Ray workers."""

_LOG_TAIL_LINES = 25


class JournalUnavailable(RuntimeError):
    """The journal's Redis cannot be reached or started. The message names what and where."""


class RedisNotFound(JournalUnavailable):
    """The `redis-server` binary is not installed (or not on PATH)."""


class RedisStartError(JournalUnavailable):
    """`redis-server` was found but did not come up: bad port, data dir in use, crash at start, timeout."""


class RedisSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The `[redis]` table of the config. A misspelt key fails at start-up with its name.

    - `url`: `redis://host:port/db` of an existing server; `None` starts a managed `redis-server` (see module doc).
    - `data_dir`: the managed server's directory (AOF, log, lock); ignored with a `url`.
    - `appendfsync`: the managed server's fsync policy, `always` | `everysec` | `no` (promises in the module doc).
    - `aof_use_rdb_preamble`: AOF rewrites start with a compact RDB image (faster restart); managed server only.
    - `snapshot_every`: journal records between two snapshots of an account's state.
    - `stream_maxlen`: trim each account stream to about this many records; `None` never trims. Only safe when
      snapshots are taken more often than that: recovery refuses a journal trimmed past its snapshot.
    - `timeout_s`: connect and command timeout of the client.
    """

    url: str | None = None
    data_dir: str = "var/redis"
    appendfsync: AppendFsync = "always"  # an acknowledged report survives even a machine crash
    aof_use_rdb_preamble: bool = True
    snapshot_every: Annotated[int, msgspec.Meta(ge=1)] = 10_000
    stream_maxlen: Annotated[int, msgspec.Meta(ge=1)] | None = None
    timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 5.0


def free_port() -> int:
    """A loopback port the kernel considers free right now, never in Ray's reserved range."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in RAY_RESERVED_PORTS:
            return port
    raise RedisStartError("no free loopback port outside 10002-19999 (Ray's worker range)")


def _redact(url: str) -> str:
    """The URL without its password, for error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def make_client(url: str, timeout_s: float = 5.0) -> redis.Redis:
    """A redis-py client for the journal: bytes responses, no automatic retries.

    Retries are off on purpose: a command re-sent after a timeout may already have been applied, and a journal
    record appended twice would be replayed twice. Errors reach the caller, who knows whether a retry is safe.
    """
    return redis.Redis.from_url(
        url,
        socket_connect_timeout=timeout_s,
        socket_timeout=timeout_s,
        retry=Retry(NoBackoff(), 0),
        decode_responses=False,
    )


class ManagedRedis:
    """A `redis-server` child process on a loopback port with its data in `data_dir` (see the module doc).

    `start()` returns only once the server answers PING and has finished loading its AOF; it raises
    `RedisNotFound` when the binary is missing and `RedisStartError` (with the server's log tail) when the
    server exits, cannot bind, or does not answer within `start_timeout_s`. Restarting on the same `data_dir`
    brings back every write the AOF holds. `stop()` is idempotent. Usable as a context manager.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        port: int | None = None,
        appendfsync: AppendFsync = "always",
        aof_use_rdb_preamble: bool = True,
        binary: str = "redis-server",
        start_timeout_s: float = 10.0,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        if appendfsync not in ("always", "everysec", "no"):
            raise ValueError(f"appendfsync must be always, everysec or no, not {appendfsync!r}")
        if port is not None and (port in RAY_RESERVED_PORTS or not 0 < port < 65536):
            raise ValueError(f"Redis port {port} is invalid or in Ray's reserved range 10002-19999")
        self.data_dir = Path(data_dir).resolve()
        self.appendfsync: AppendFsync = appendfsync
        self.aof_use_rdb_preamble = aof_use_rdb_preamble
        self.binary = binary
        self.start_timeout_s = start_timeout_s
        self.extra_args = extra_args
        self._fixed_port = port
        self.port: int | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._log_offset = 0
        self._lock_fd: int | None = None

    # -- QUERIES --

    @property
    def url(self) -> str:
        """`redis://127.0.0.1:PORT/0`; only once started."""
        if self.port is None:
            raise RuntimeError("ManagedRedis is not started")
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def log_path(self) -> Path:
        return self.data_dir / "redis.log"

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        """The last lines the server wrote since this start."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self._log_offset)
                text = f.read().decode(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    # -- COMMANDS --

    def start(self) -> ManagedRedis:
        """Start the server and wait until it is ready. Returns self."""
        if self.process is not None:
            raise RuntimeError("ManagedRedis is already started")
        exe = shutil.which(self.binary)
        if exe is None:
            raise RedisNotFound(f"{self.binary} not found: apt-get install redis-server")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._acquire_dir_lock()
        try:
            attempts = 1 if self._fixed_port is not None else 3
            for attempt in range(attempts):
                port = self._fixed_port if self._fixed_port is not None else free_port()
                try:
                    self._spawn(exe, port)
                    self._wait_ready()
                    return self
                except RedisStartError as exc:
                    self._reap()
                    # Another process may take an auto-chosen port between probing and binding: pick another.
                    if attempt + 1 < attempts and "Address already in use" in str(exc):
                        continue
                    raise
        except BaseException:
            self._reap()
            self._release_dir_lock()
            raise
        raise AssertionError("unreachable")

    def stop(self, timeout_s: float = 10.0) -> None:
        """SHUTDOWN (the server flushes its AOF), then SIGTERM, then SIGKILL, each with a timeout. Idempotent."""
        proc = self.process
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(redis.RedisError, OSError):
                client = make_client(self.url, timeout_s=min(timeout_s, 2.0))
                try:
                    client.shutdown()
                finally:
                    client.close()
            for sig in (None, signal.SIGTERM, signal.SIGKILL):
                if sig is not None:
                    with contextlib.suppress(ProcessLookupError):
                        proc.send_signal(sig)
                try:
                    proc.wait(timeout=timeout_s)
                    break
                except subprocess.TimeoutExpired:
                    continue
        self._reap()
        self._release_dir_lock()

    def revive(self) -> int | None:
        """When the server has exited on its own (killed, crashed), start it again on the same port and data dir
        (its AOF brings back every write it acknowledged, as `appendfsync` says) and return the exit code it died
        with; None when it is running (or was never started). Raises RedisStartError when it does not come back.
        Call from the thread that should own it (see the module text)."""
        proc = self.process
        if proc is None or proc.poll() is None:
            return None
        code = proc.returncode
        exe = shutil.which(self.binary)
        assert exe is not None and self.port is not None
        self._reap()
        self._spawn(exe, self.port)
        try:
            self._wait_ready()
        except RedisStartError:
            self._reap()
            raise
        return code

    def kill(self) -> None:
        """SIGKILL the server (crash tests); the data dir stays locked until `stop()` reaps it."""
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            self.process.wait()

    def __enter__(self) -> ManagedRedis:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: types.TracebackType | None
    ) -> None:
        self.stop()

    # -- internals --

    def _args(self, exe: str, port: int) -> list[str]:
        return [
            exe,
            "--bind", "127.0.0.1",
            "--port", str(port),
            "--protected-mode", "yes",
            "--daemonize", "no",
            "--supervised", "no",
            "--dir", str(self.data_dir),
            "--logfile", "",
            "--save", "",
            "--appendonly", "yes",
            "--appenddirname", "appendonlydir",
            "--appendfsync", self.appendfsync,
            "--aof-use-rdb-preamble", "yes" if self.aof_use_rdb_preamble else "no",
            *self.extra_args,
        ]  # fmt: skip

    def _spawn(self, exe: str, port: int) -> None:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in _reap
        self._log_offset = self._log.tell()
        parent = os.getpid()
        assert self._lock_fd is not None
        self.process = subprocess.Popen(
            self._args(exe, port),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            pass_fds=(self._lock_fd,),  # the server holds the data-dir lock for as long as it lives
            preexec_fn=lambda: die_with_parent(parent),
            start_new_session=True,  # a Ctrl-C in the terminal reaches the OMS, which then stops Redis in order
        )
        self.port = port

    def _wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + self.start_timeout_s
        client = make_client(self.url, timeout_s=0.5)
        try:
            while True:
                code = self.process.poll()
                if code is not None:
                    raise RedisStartError(
                        f"redis-server exited with code {code} at start (port {self.port}, dir {self.data_dir}):\n"
                        f"{self.log_tail()}"
                    )
                try:
                    # The pid check: a foreign server that answers on the same port must not pass for ours.
                    if (
                        client.ping()
                        and int(client.info("server")["process_id"]) == self.process.pid
                        and int(client.info("persistence")["loading"]) == 0
                    ):
                        return
                except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
                    pass
                if time.monotonic() > deadline:
                    raise RedisStartError(
                        f"redis-server did not answer PING within {self.start_timeout_s:.1f} s "
                        f"(port {self.port}, dir {self.data_dir}):\n{self.log_tail()}"
                    )
                time.sleep(0.01)
        finally:
            client.close()

    def _reap(self) -> None:
        proc, self.process = self.process, None
        if proc is not None:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def _acquire_dir_lock(self) -> None:
        """Exclusive lock on `data_dir/.lock`, waiting briefly for a server that is still shutting down."""
        fd = os.open(self.data_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.start_timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(fd)
                    raise RedisStartError(
                        f"data dir {self.data_dir} is in use by another redis-server "
                        f"(it holds {self.data_dir / '.lock'}); stop it or use another data_dir"
                    ) from None
                time.sleep(0.05)
        self._lock_fd = fd

    def _release_dir_lock(self) -> None:
        fd, self._lock_fd = self._lock_fd, None
        if fd is not None:
            os.close(fd)


def connect(settings: RedisSettings) -> tuple[redis.Redis, ManagedRedis | None]:
    """A ready client for the journal and the managed server behind it (`None` with a `url`).

    Fails fast, leaving nothing running, with `JournalUnavailable` (or its subclasses `RedisNotFound` /
    `RedisStartError`) whose message names the URL or the data dir and the cause. The caller owns both results:
    `client.close()`, then `managed.stop()`.
    """
    managed: ManagedRedis | None = None
    if settings.url is None:
        managed = ManagedRedis(
            settings.data_dir,
            appendfsync=settings.appendfsync,
            aof_use_rdb_preamble=settings.aof_use_rdb_preamble,
        ).start()
        url = managed.url
    else:
        url = settings.url
    try:
        client = make_client(url, timeout_s=settings.timeout_s)
    except ValueError as exc:
        raise JournalUnavailable(f"invalid Redis URL {_redact(url)!r}: {exc}") from exc
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        if managed is not None:
            managed.stop()
        raise JournalUnavailable(f"Redis at {_redact(url)} does not answer: {exc}") from exc
    return client, managed
