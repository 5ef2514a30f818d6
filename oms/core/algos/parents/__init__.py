"""Parent orders as pure state machines: records in (`apply`), actions out (`evaluate`). No I/O, no clock.

A parent changes only through `apply(record)` (its own submit command is given at construction; `CancelParent`
and the records of `oms.core.algos.messages` follow), so replaying its journal rebuilds it exactly. `evaluate(now_ns)`
is a query: from the state and the time it says what to do next (`NewChild`, `CancelChild`, `Close`), changing
nothing; the engine journals the record of each action (`ChildSent`, `CancelSent`, `ParentClosing`), applies it and
only then acts, and evaluates again until nothing is left to do.

Rules every kind shares:
- cum qty and cum notional are the sums over the children's fills (for a bracket: the entry's), so the average
  price `cum_notional / cum_qty` is exact; leaves = qty - cum.
- Child ClOrdIDs are `<parent_id>.<n>`, n counting every child and cancel the parent sent (cancels take a number
  too), so they are unique on the engine's session and the same after a replay.
- A child refused `max_rejects` times in a row stops the parent (STOPPED); a fill resets the count. A child canceled
  by the kill switch or a shutdown stops it too. Other unsolicited ends (IOC remainder, no liquidity, self-trade
  prevention) return the child's remainder to the schedule.
- Closing (CancelParent, stop, expiry) cancels every working child; the parent is terminal once none works. A
  parent whose whole quantity filled is FILLED, even when a cancel was on its way.

`base` holds the actions and `Parent`; one module per family adds its schedule (`scheduled`: TWAP, VWAP and POV;
`iceberg`; `bracket`: bracket/OCO); `construction` checks a command (`validate`) and builds its parent
(`make_parent`). Every name is importable from this package.
"""

from oms.core.algos.parents.base import RETRY_NS, Action, CancelChild, Child, Close, NewChild, Parent, ParentView
from oms.core.algos.parents.bracket import BracketParent
from oms.core.algos.parents.construction import make_parent, validate
from oms.core.algos.parents.iceberg import IcebergParent
from oms.core.algos.parents.scheduled import PovParent, ScheduleParent, twap_plan, vwap_times

__all__ = [
    "RETRY_NS",
    "Action",
    "BracketParent",
    "CancelChild",
    "Child",
    "Close",
    "IcebergParent",
    "NewChild",
    "Parent",
    "ParentView",
    "PovParent",
    "ScheduleParent",
    "make_parent",
    "twap_plan",
    "validate",
    "vwap_times",
]
