"""Algorithmic parent orders: TWAP, VWAP, POV, iceberg and bracket/OCO over the OrderManager.

API (the details are in docs/algos.md and in each module):

- `messages`: commands `SubmitTwap`, `SubmitVwap`, `SubmitPov`, `SubmitIceberg`, `SubmitBracket`, `CancelParent`;
  events `ParentAccepted`, `ParentRejected` (an `AlgoRejectReason` and text), `CancelParentRejected`,
  `ParentUpdated` (status, cum qty, exact cum notional, leaves, working), `ChildRejected`, `ParentDone`,
  `OcoBreach`; and the journal records a parent is rebuilt from (`AlgoRecord`).
- `parents`: one pure state machine per kind (`Parent.apply(record)`, `Parent.evaluate(now_ns) -> actions`,
  `Parent.view() -> ParentView`); no I/O, no clock.
- `engine.AlgoEngine(host, instruments, clock, store=None, session="ALGO", profiles=None)`: the adapter over an
  `oms.runtime.sequencer.Sequencer`: `submit`, `cancel`, `on_timer(now_ns)` / `advance`, `recover`, `view`, `views`,
  `subscribe`, `take_events`. Children are ordinary SubmitOrders on `session`, ClOrdIDs `<parent_id>.<n>`.
- `store`: the `AlgoStore` port and `MemoryStore`; the durable one is `oms.infra.redis.algo_store.RedisStore`.
- `oms.apps.sim`: a seeded synthetic market (market maker and noise taker on their own sessions) for tests and demos.
"""

from oms.adapters.algos.engine import AlgoEngine, ManualClock
from oms.core.algos.messages import (
    AlgoKind,
    AlgoRejectReason,
    CancelParent,
    ChildRejected,
    OcoBreach,
    ParentAccepted,
    ParentDone,
    ParentRejected,
    ParentStatus,
    ParentUpdated,
    SubmitBracket,
    SubmitIceberg,
    SubmitPov,
    SubmitTwap,
    SubmitVwap,
)
from oms.core.algos.parents import ParentView
from oms.core.algos.store import MemoryStore

__all__ = [
    "AlgoEngine",
    "AlgoKind",
    "AlgoRejectReason",
    "CancelParent",
    "ChildRejected",
    "ManualClock",
    "MemoryStore",
    "OcoBreach",
    "ParentAccepted",
    "ParentDone",
    "ParentRejected",
    "ParentStatus",
    "ParentUpdated",
    "ParentView",
    "SubmitBracket",
    "SubmitIceberg",
    "SubmitPov",
    "SubmitTwap",
    "SubmitVwap",
]
