"""An in-process core for the API: `oms.apps.serve.local_engine`'s engine (accounts in reserved mode over a LocalShard,
the native book, no journal) with the LocalShard kept, so a `LocalAccountView` can read the accounts.
For tests, benchmarks and single-process use; `OmsApp` is the journaled, actor-backed core.
"""

from __future__ import annotations

from typing import NamedTuple

from oms.adapters.api.accounts import LocalAccountView
from oms.apps.serve import LoadedConfig, local_accounts, local_engine
from oms.core.engine import OrderManager, Venue
from oms.core.reserved import LocalShard
from oms.runtime.sequencer import Sequencer

__all__ = ["LocalCore", "local_core"]


class LocalCore(NamedTuple):
    host: Sequencer
    view: LocalAccountView
    accounts: LocalShard

    @property
    def engine(self) -> OrderManager:
        return self.host.engine


def local_core(loaded: LoadedConfig, generation: int = 1, venues: dict[str, Venue] | None = None) -> LocalCore:
    """`oms.apps.serve.local_engine` wrapped in an Sequencer, with a LocalAccountView over its accounts."""
    local = local_accounts(loaded)
    host = Sequencer(local_engine(loaded, generation, venues, local))
    return LocalCore(host, LocalAccountView(local, sorted(loaded.risk.accounts), loaded.instruments, host.lock), local)
