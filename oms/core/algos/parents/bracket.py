"""The bracket parent: an entry, then take-profit and stop-loss exits that cancel each other (OCO)."""

from __future__ import annotations

from oms.core.algos.messages import AlgoKind, ParentStatus, StopTriggered, SubmitBracket, VolumeObserved
from oms.core.algos.parents.base import RETRY_NS, Action, CancelChild, Child, Close, NewChild, Parent, ParentView
from oms.core.model.enums import OrdType, Side, TimeInForce

__all__ = ["BracketParent"]


class BracketParent(Parent):
    """Entry, then take-profit (tp) and stop-loss (sl) legs on the entry's filled quantity, one-cancels-other.

    The exits go out when the entry is done (filled, or ended with a partial fill). The first fill of either leg
    cancels the other. With a synthetic stop (default) the sl leg exists only in this parent until a trade reaches
    the stop while tp has filled nothing: then tp is canceled, and only once tp has ended with nothing filled does
    the sl child go out (market IOC, or IOC limit at stop_limit; retried every RETRY_NS until the exit is done).
    A tp fill seen first disarms the stop. So the two legs never both fill, whatever the venue does.
    """

    kind = AlgoKind.BRACKET

    def __init__(self, cmd: SubmitBracket, lot: int, max_rejects: int) -> None:
        super().__init__(cmd, lot, max_rejects)
        self.br = cmd
        self.exit_side = cmd.side.opposite
        self.triggered = False
        self.breach_reported = False

    # -- legs --

    def leg(self, role: str) -> list[Child]:
        return [c for c in self.children.values() if c.role == role]

    def _one(self, role: str) -> Child | None:
        legs = self.leg(role)
        return legs[0] if legs else None

    def _cum(self, role: str) -> tuple[int, int]:
        legs = self.leg(role)
        return sum(c.cum_qty for c in legs), sum(c.cum_notional for c in legs)

    @property
    def cum_qty(self) -> int:
        return self._cum("entry")[0]

    @property
    def cum_notional(self) -> int:
        return self._cum("entry")[1]

    def exit_target(self) -> int:
        entry = self._one("entry")
        return entry.cum_qty if entry is not None and entry.done else 0

    def is_filled(self) -> bool:
        target = self.exit_target()
        return target > 0 and self._cum("tp")[0] + self._cum("sl")[0] >= target

    def breached(self) -> bool:
        """Both legs executed (must never happen with a synthetic stop)."""
        return self._cum("tp")[0] > 0 and self._cum("sl")[0] > 0

    def view(self) -> ParentView:
        tp, sl = self._cum("tp"), self._cum("sl")
        return super().view()._replace(exit_cum_qty=tp[0] + sl[0], exit_cum_notional=tp[1] + sl[1])

    def armed(self) -> bool:
        tp = self._one("tp")
        return (
            self.br.synthetic_stop and not self.triggered and self.closing is None and tp is not None
            and tp.cum_qty == 0 and not tp.done
        )  # fmt: skip

    def observe_print(self, price: int) -> bool:
        if not self.armed():
            return False
        return price <= self.br.stop_loss if self.side is Side.BUY else price >= self.br.stop_loss

    def _on_market(self, rec: VolumeObserved | StopTriggered) -> None:
        if isinstance(rec, StopTriggered):
            self.triggered = True

    # -- schedule --

    def _next(self, now_ns: int) -> list[Action]:
        br, side = self.br, self.exit_side
        entry = self._one("entry")
        if entry is None:
            if br.entry_price is None:
                return [NewChild("entry", self.side, OrdType.MARKET, TimeInForce.IOC, self.qty)]
            return [NewChild("entry", self.side, OrdType.LIMIT, TimeInForce.GTC, self.qty, br.entry_price)]
        if not entry.done:
            return []
        if entry.cum_qty == 0:
            return [Close(ParentStatus.STOPPED, f"entry {entry.outcome} with nothing filled: {self.last_reject}")]
        target = entry.cum_qty
        tp, sl_legs = self._one("tp"), self.leg("sl")
        if tp is None:
            acts: list[Action] = [NewChild("tp", side, OrdType.LIMIT, TimeInForce.GTC, target, br.take_profit)]
            if not br.synthetic_stop:
                kind = OrdType.STOP if br.stop_limit is None else OrdType.STOP_LIMIT
                acts.append(NewChild("sl", side, kind, TimeInForce.GTC, target, br.stop_limit, br.stop_loss))
            return acts
        if not br.synthetic_stop:
            return self._venue_oco(tp, sl_legs[0] if sl_legs else None, target)
        if tp.cum_qty > 0:
            if tp.done and tp.cum_qty < target:
                return [Close(ParentStatus.STOPPED, f"take-profit ended ({tp.outcome}) with {target - tp.cum_qty} "
                                                    "left and the stop disarmed")]  # fmt: skip
            return []
        if not self.triggered:
            if tp.done:
                return [Close(ParentStatus.STOPPED, f"take-profit ended ({tp.outcome}) before the stop fired")]
            return []
        if not tp.done:
            return [] if tp.cancel_requested else [CancelChild(tp.cl_ord_id)]
        if any(not c.done for c in sl_legs):
            return []
        left = target - self._cum("sl")[0]
        if left <= 0 or (sl_legs and now_ns < self.last_child_ts + RETRY_NS):
            return []
        if br.stop_limit is None:
            return [NewChild("sl", side, OrdType.MARKET, TimeInForce.IOC, left)]
        return [NewChild("sl", side, OrdType.LIMIT, TimeInForce.IOC, left, br.stop_limit)]

    def _venue_oco(self, tp: Child, sl: Child | None, target: int) -> list[Action]:
        assert sl is not None
        if tp.cum_qty > 0 and not sl.done and not sl.cancel_requested:
            return [CancelChild(sl.cl_ord_id)]
        if sl.cum_qty > 0 and not tp.done and not tp.cancel_requested:
            return [CancelChild(tp.cl_ord_id)]
        if tp.done and sl.done and tp.cum_qty + sl.cum_qty < target:
            return [Close(ParentStatus.STOPPED, f"both legs ended with {target - tp.cum_qty - sl.cum_qty} left")]
        return []
