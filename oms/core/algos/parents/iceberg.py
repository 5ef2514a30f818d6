"""The iceberg parent: a resting limit order shown one slice at a time."""

from __future__ import annotations

from oms.core.algos.messages import AlgoKind, SubmitIceberg
from oms.core.algos.parents.base import RETRY_NS, Action, NewChild, Parent
from oms.core.model.enums import OrdType, TimeInForce

__all__ = ["IcebergParent"]


class IcebergParent(Parent):
    """One resting GTC limit child of display_qty (or what is left) at a time; the next when it is done."""

    kind = AlgoKind.ICEBERG

    def __init__(self, cmd: SubmitIceberg, lot: int, max_rejects: int) -> None:
        super().__init__(cmd, lot, max_rejects)
        self.ice = cmd

    def _next(self, now_ns: int) -> list[Action]:
        if self.working():
            return []
        if self.last_child_empty and now_ns < self.last_child_ts + RETRY_NS:
            return []
        qty = min(self.ice.display_qty, self.qty - self.cum_qty)
        return [NewChild("slice", self.side, OrdType.LIMIT, TimeInForce.GTC, qty, self.ice.price, slot=self.seq)]
