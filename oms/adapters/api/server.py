"""`ApiServer`: the REST/WebSocket API on uvicorn (uvloop event loop, httptools parser), on a thread of its own."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import uvicorn

from oms.adapters.api.accounts import AccountView
from oms.adapters.api.algos import AlgoDesk
from oms.adapters.api.app import ApiState, build_app
from oms.adapters.api.desk import OrderDesk
from oms.adapters.api.keys import load_keys
from oms.adapters.api.metrics import ApiMetrics
from oms.adapters.api.security import Authenticator, IdempotencyStore, MemoryIdempotency, NonceStore, RateLimiter
from oms.adapters.api.settings import ApiSettings
from oms.core.model.instruments import InstrumentRegistry
from oms.core.model.messages import OperatorAction
from oms.runtime.sequencer import Sequencer

if TYPE_CHECKING:
    from oms.adapters.algos.engine import AlgoEngine
    from oms.core.algos.profiles import ProfileSource

__all__ = ["ApiServer"]


class ApiServer:
    """Build with the sequencer, an AccountView and settings; `start()` returns once it listens, `stop()` shuts
    it down (open WebSockets are closed) and may be called twice.

    The keys file is loaded and validated in the constructor (ConfigError naming the key and field), against the
    accounts `account_view` knows. `instruments` defaults to the engine's own registry.

    `algos`: the AlgoEngine driving parent orders on the same host (None: the /v1/algos routes answer 503).
    `clock`: the algo engine's clock (ns), for the defaults and checks of parent start/end times (wall clock when
    None). `profiles`: where VWAP `history` profiles come from (the composition root builds
    `ClickHouseProfiles` from `settings.profile_dsn`); None: no history source. `nonces`: where signed requests'
    nonces are remembered (`oms serve` keeps them in Redis, so a restart forgets none); None: in memory.
    """

    def __init__(
        self,
        host: Sequencer,
        account_view: AccountView,
        settings: ApiSettings | None = None,
        instruments: InstrumentRegistry | None = None,
        algos: AlgoEngine | None = None,
        clock: Callable[[], int] | None = None,
        profiles: ProfileSource | None = None,
        nonces: NonceStore | None = None,
        idempotency: tuple[IdempotencyStore, IdempotencyStore] | None = None,
        readiness: Callable[[], dict[str, str]] | None = None,
        record: Callable[[OperatorAction], None] | None = None,
    ) -> None:
        settings = ApiSettings() if settings is None else settings
        self.settings = settings
        accounts = account_view.accounts()
        keys = load_keys(settings.keys, set(accounts))
        if instruments is None:
            instruments = host.engine._instruments  # the engine's registry: the symbols it routes
        self.metrics = ApiMetrics()
        if idempotency is None:  # in this process: a restart forgets them
            idempotency = MemoryIdempotency(settings.idempotency_ttl_s), MemoryIdempotency(settings.idempotency_ttl_s)
        orders_idem, parents_idem = idempotency
        self.desk = OrderDesk(host, instruments, accounts, self.metrics, settings.executions_kept, record)
        self.algo_desk = AlgoDesk(algos, self.desk, instruments, clock or time.time_ns, profiles)
        self.state = ApiState(
            self.desk,
            account_view,
            Authenticator(keys, settings.signing == "required", settings.max_clock_skew_s, nonces),
            RateLimiter(settings.rate_limit, settings.rate_window_ms / 1000),
            orders_idem,
            self.metrics,
            self.algo_desk,
            parents_idem,
            readiness,
        )
        self.app = build_app(self.state)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._closed = False
        self.port = settings.port

    @property
    def url(self) -> str:
        return f"http://{self.settings.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> ApiServer:
        """Serve on a thread of its own; returns once the socket listens. Raises OSError when it cannot bind."""
        config = uvicorn.Config(
            self.app,
            host=self.settings.host,
            port=self.settings.port,
            loop="uvloop",
            http="httptools",
            ws="websockets-sansio",
            lifespan="on",
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=5,
            ws_ping_interval=None,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, name=f"oms-api-{self.settings.port}", daemon=True)
        thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive():
                self.stop()
                raise OSError(f"REST API: cannot listen on {self.settings.host}:{self.settings.port}")
            if time.monotonic() > deadline:
                server.should_exit = True
                thread.join(10)
                self.stop()
                raise OSError(f"REST API: not listening after {timeout:g} s")
            time.sleep(0.005)
        self._server, self._thread = server, thread
        self.port = server.servers[0].sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        """Stop serving (waits for the thread) and stop listening to the engine's reports and parent events."""
        if self._server is not None:
            self._server.should_exit = True
            assert self._thread is not None
            self._thread.join(15)
            self._server = self._thread = None
        if not self._closed:
            self._closed = True
            self.desk.close()
            self.algo_desk.close()
