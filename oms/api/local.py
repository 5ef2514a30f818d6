"""An in-process core for the API: `oms.app.local_engine`'s engine (accounts in reserved mode over a LocalHost,
the native book, no journal) with the LocalHost kept, so a `LocalAccountView` can read the accounts.
For tests, benchmarks and single-process use; `OmsApp` is the journaled, actor-backed core.
"""

from __future__ import annotations

from typing import NamedTuple

from oms.api.accounts import LocalAccountView
from oms.app import LoadedConfig, local_accounts, local_engine
from oms.engine import OrderManager, Venue
from oms.host import EngineHost
from oms.reserved import LocalHost

__all__ = ["LocalCore", "local_core"]


class LocalCore(NamedTuple):
    host: EngineHost
    view: LocalAccountView
    accounts: LocalHost

    @property
    def engine(self) -> OrderManager:
        return self.host.engine


def local_core(loaded: LoadedConfig, generation: int = 1, venues: dict[str, Venue] | None = None) -> LocalCore:
    """`oms.app.local_engine` wrapped in an EngineHost, with a LocalAccountView over its accounts."""
    local = local_accounts(loaded)
    host = EngineHost(local_engine(loaded, generation, venues, local))
    return LocalCore(host, LocalAccountView(local, sorted(loaded.risk.accounts), loaded.instruments, host.lock), local)
