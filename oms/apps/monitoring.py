"""What `oms serve` exposes on `/metrics` beside the hot path (`oms.runtime.metrics`): the state of its parts, read
when Prometheus scrapes, never on the order path. `AppMetrics` builds the collectors from the running parts and
registers them in the process's registry (`oms.runtime.metrics.REGISTRY`, which the REST API renders); `close`
takes them out again.

Each source is bounded by `SCRAPE_TIMEOUT_S` (the scrape runs on the REST API's event loop): Redis PING and the
sink's lag on a client of their own with that socket timeout; the accounts' flags with one Ray call per account, all
in flight at once and awaited together for at most that long. A source that fails or times out is left out of that
scrape and counted in `oms_scrape_errors` (`StateCollector`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

import redis
from prometheus_client import CollectorRegistry

from fix_gateway.settings import SessionSpec
from oms.core.engine import Venue
from oms.infra.redis.server import make_client
from oms.runtime.metrics import (
    REGISTRY,
    SCRAPE_ERRORS,
    AccountFlags,
    AccountGauges,
    FixSessionGauges,
    JournalGauges,
    RedisGauges,
    SinkGauges,
    StateCollector,
    VenueGauges,
)
from oms.runtime.sequencer import Sequencer

__all__ = ["SCRAPE_TIMEOUT_S", "AppMetrics", "account_flags", "fix_session_states", "outstanding_batches"]

log = logging.getLogger(__name__)

SCRAPE_TIMEOUT_S = 0.5  # how long one source may take to answer a scrape before it is left out
FlagsReader = Callable[[], dict[str, AccountFlags]]


class Running(Protocol):
    """A child process of the OMS (the ClickHouse sink, the FIX front door)."""

    @property
    def running(self) -> bool: ...


def fix_session_states(specs: Iterable[SessionSpec]) -> Callable[[], dict[str, bool]]:
    """A function answering, for each of the FIX acceptor's sessions (by name), whether it is logged on now; it reads
    QuickFIX's session table (what `FixGateway.logged_on` counts), taking no lock of the OMS."""
    import quickfix as fix

    ids = {s.name: fix.SessionID(s.begin_string, s.sender_comp_id, s.target_comp_id) for s in specs}

    def states() -> dict[str, bool]:
        sessions = {name: fix.Session.lookupSession(sid) for name, sid in ids.items()}
        return {name: session is not None and bool(session.isLoggedOn()) for name, session in sessions.items()}

    return states


def outstanding_batches(host: Sequencer) -> Callable[[], int]:
    """A function answering how many batches `host` has sealed whose write-ahead and releases are not done yet."""
    return host.outstanding


def account_flags(by_account: Mapping[str, Any], timeout_s: float = SCRAPE_TIMEOUT_S) -> FlagsReader:
    """A function reading every account's kill switch and trading state from its actor (`AccountShard.summary`,
    what the API's `SummaryAccountView.risk` reads), all calls in flight at once; raises when they take longer
    than `timeout_s` together."""
    import ray

    accounts = sorted(by_account)

    def read() -> dict[str, AccountFlags]:
        summaries = ray.get([by_account[a].summary.remote(a) for a in accounts], timeout=timeout_s)
        return {
            a: AccountFlags(bool(d["kill_switch"]), str(d["trading_state"]).lower())
            for a, d in zip(accounts, summaries, strict=True)
        }

    return read


def _alive(process: Running) -> Callable[[], bool]:
    return lambda: process.running


class AppMetrics:
    """The collectors of one running OMS, registered in `registry` until `close`."""

    def __init__(
        self,
        host: Sequencer,
        redis_url: str,
        venues: Mapping[str, Venue],
        by_account: Mapping[str, Any] | None = None,
        fix_sessions: Iterable[SessionSpec] | None = None,
        door: Running | None = None,
        sink: Running | None = None,
        sink_group: str = "oms-clickhouse",
        registry: CollectorRegistry = REGISTRY,
    ) -> None:
        """`by_account`: account -> its actor (None: no account gauges). `fix_sessions`: the acceptor's sessions
        (None: no FIX acceptor). `door`, `sink`: the FIX front door's and the ClickHouse sink's processes (None: not
        running). `sink_group`: the sink's consumer group, whose lag is measured on the streams it reads."""
        self._registry = registry
        self._redis: redis.Redis | None = make_client(redis_url, SCRAPE_TIMEOUT_S)
        client = self._redis
        venue_table = dict(venues)
        self.collectors: list[StateCollector] = [
            JournalGauges(
                host.journal_stalled_s, outstanding_batches(host), host.commit_lag_s, host.busy_s, host.waiting
            ),
            RedisGauges(client.ping),
            VenueGauges(lambda: {name: bool(getattr(v, "connected", True)) for name, v in venue_table.items()}),
        ]
        if by_account:
            self.collectors.append(AccountGauges(account_flags(by_account)))
        if fix_sessions is not None:
            door_running = None if door is None else _alive(door)
            self.collectors.append(FixSessionGauges(fix_session_states(fix_sessions), door_running))
        if sink is not None:
            from oms.infra.clickhouse.lag import SinkLag, sink_streams

            streams = sink_streams(sorted(by_account or ()))
            self.collectors.append(SinkGauges(_alive(sink), SinkLag(client, sink_group, streams).read))
        self._registered: list[StateCollector] = []

    def register(self) -> AppMetrics:
        """Expose the collectors on `registry` from now on."""
        for collector in self.collectors:
            self._registry.register(collector)  # type: ignore[arg-type]
            self._registered.append(collector)
        if self._registry is REGISTRY:  # collected after the collectors: a scrape shows its own failures
            REGISTRY.unregister(SCRAPE_ERRORS)  # type: ignore[arg-type]
            REGISTRY.register(SCRAPE_ERRORS)  # type: ignore[arg-type]
        return self

    def close(self) -> None:
        """Take the collectors out of the registry and close the Redis client. Safe to call twice."""
        while self._registered:
            self._registry.unregister(self._registered.pop())  # type: ignore[arg-type]
        if self._redis is not None:
            self._redis.close()
            self._redis = None
