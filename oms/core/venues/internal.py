"""The native matching engine as a venue: model commands in, model events out.

The adapter keeps, per working order, what the book does not: ClOrdID chain, account name, symbol, total quantity,
cumulative quantity and notional, so every OrderFilled carries exact CumQty and AvgPx. Order ids are the OMS's.

Answers, in book order:
- OrderAccepted / OrderRejected for a submit; OrderFilled for each side of a match, then TradePrinted for the print;
- OrderTriggered when a stop fires; OrderCanceled (client cancel, IOC remainder, no liquidity, self-trade, FOK);
- OrderReplaced / CancelRejected (response_to "replace") for a replace; CancelRejected (response_to "cancel");
- OrderExpired for `expire` and `end_of_day`.
A cancel or replace of an order the book no longer holds is refused with TOO_LATE_TO_CANCEL: the OMS only sends
ids it issued, so a missing one has already filled, been canceled or expired.
"""

from __future__ import annotations

from native import MatchingEngine
from oms.core.engine import ApplyVenue
from oms.core.model.enums import BookEventKind as K
from oms.core.model.enums import CancelReason, RejectReason, Side, StpMode
from oms.core.model.instruments import InstrumentRegistry
from oms.core.model.messages import (
    CancelOrder,
    CancelRejected,
    Message,
    OrderAccepted,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderReplaced,
    OrderTriggered,
    ReplaceOrder,
    SubmitOrder,
    TradePrinted,
)
from risk.reasons import describe


class _Working:
    __slots__ = ("account", "cl_ord_id", "cum_notional", "cum_qty", "qty", "side", "symbol")

    def __init__(self, cl_ord_id: str, account: str, symbol: str, side: Side, qty: int) -> None:
        self.cl_ord_id = cl_ord_id
        self.account = account
        self.symbol = symbol
        self.side = side
        self.qty = qty
        self.cum_qty = 0
        self.cum_notional = 0


class InternalVenue:
    """A venue backed by `native.MatchingEngine`, one book per instrument of the registry."""

    def __init__(
        self,
        instruments: InstrumentRegistry,
        stp_mode: StpMode = StpMode.CANCEL_RESTING,
        name: str = "INTERNAL",
        exec_id_base: int = 0,
    ) -> None:
        """Execution ids are `exec_id_base` + the book's own (1, 2, ...): give each start its own base so ids stay
        unique across restarts."""
        self.name = name
        self._exec_id_base = exec_id_base
        self._instruments = instruments
        self._engine = MatchingEngine(stp_mode)
        self._symbols: dict[int, str] = {}
        for inst in instruments:
            self._engine.add_symbol(inst.id, inst.tick, inst.lot)
            self._symbols[inst.id] = inst.symbol
        self._accounts: dict[str, int] = {}  # account name -> number the book compares for self-trade prevention
        self._orders: dict[int, _Working] = {}

    @property
    def engine(self) -> MatchingEngine:
        """The underlying book (queries: l1, l2, snapshot, last_price)."""
        return self._engine

    # -- LIFECYCLE --

    def start(self, apply: ApplyVenue) -> None:
        """Nothing to start: the book answers every command at once, so it never needs `apply`."""

    def stop(self) -> None:
        """Nothing to stop: the book lives and dies with this object."""

    def quote(self, symbol: str) -> tuple[int, int] | None:
        """(best bid, best ask) of the book of `symbol` (visible quantity), None unless both sides have some."""
        inst = self._instruments.by_symbol(symbol)
        if inst is None:
            return None
        bid, bid_qty, ask, ask_qty = self._engine.l1(inst.id)
        return (bid, ask) if bid_qty and ask_qty else None

    # -- COMMANDS --

    def submit(self, order_id: int, cmd: SubmitOrder, ts_ns: int) -> list[Message]:
        """Enter `cmd` as order `order_id`; returns every event it caused, other orders' included."""
        inst = self._instruments.by_symbol(cmd.symbol)
        if inst is None:
            reason = RejectReason.UNKNOWN_SYMBOL
            return [OrderRejected.of(cmd, order_id, reason, describe(reason), ts_ns)]
        account = self._accounts.setdefault(cmd.account, len(self._accounts) + 1)
        self._orders[order_id] = _Working(cmd.cl_ord_id, cmd.account, cmd.symbol, cmd.side, cmd.qty)
        book_events = self._engine.submit(
            order_id, account, inst.id, cmd.side, cmd.ord_type, cmd.tif, cmd.qty,
            cmd.price or 0, cmd.stop_price or 0, cmd.display_qty or 0,
        )  # fmt: skip
        return self._translate(book_events, ts_ns, submit=cmd)

    def cancel(self, order_id: int, cmd: CancelOrder, ts_ns: int) -> list[Message]:
        """Cancel order `order_id` on behalf of `cmd`."""
        working = self._orders.get(order_id)
        if working is None:
            return [self._cancel_rejected(order_id, cmd, "cancel", RejectReason.TOO_LATE_TO_CANCEL, ts_ns)]
        book_events = self._engine.cancel(order_id)
        return self._translate(book_events, ts_ns, cancel=cmd)

    def withdraw(self, order_id: int, reason: CancelReason, ts_ns: int) -> list[Message]:
        """Cancel order `order_id` on the OMS's own initiative (kill switch, risk); nothing when it is not working."""
        if order_id not in self._orders:
            return []
        return self._translate(self._engine.cancel(order_id), ts_ns, withdraw=reason)

    def replace(self, order_id: int, cmd: ReplaceOrder, ts_ns: int) -> list[Message]:
        """Change order `order_id` to `cmd.qty` (new total) at `cmd.price`; may trade when the new price crosses."""
        working = self._orders.get(order_id)
        if working is None:
            return [self._cancel_rejected(order_id, cmd, "replace", RejectReason.TOO_LATE_TO_CANCEL, ts_ns)]
        book_events = self._engine.replace(order_id, cmd.qty, cmd.price or 0)
        return self._translate(book_events, ts_ns, replace=cmd)

    def expire(self, order_id: int, ts_ns: int) -> list[Message]:
        """Expire order `order_id` (GTD reached); nothing when the book no longer holds it."""
        if order_id not in self._orders:
            return []
        return self._translate(self._engine.expire(order_id), ts_ns)

    def end_of_day(self, ts_ns: int) -> list[Message]:
        """Expire every working DAY order."""
        return self._translate(self._engine.end_of_day(), ts_ns)

    def recover(
        self, order_id: int, cmd: SubmitOrder, cum_qty: int, cum_notional: int, ts_ns: int, replaced: bool = False
    ) -> list[Message]:
        """The book is this process's: an order it held when the OMS last stopped is gone with it. Canceled (reason
        RESTART) for its unfilled quantity, so the account releases what it held."""
        return [OrderCanceled(order_id, cmd.cl_ord_id, cmd.account, cmd.symbol, CancelReason.RESTART,
                              cmd.qty - cum_qty, ts_ns)]  # fmt: skip

    # -- TRANSLATION --

    def _translate(
        self,
        book_events: list[tuple],
        ts_ns: int,
        submit: SubmitOrder | None = None,
        cancel: CancelOrder | None = None,
        replace: ReplaceOrder | None = None,
        withdraw: CancelReason | None = None,
    ) -> list[Message]:
        out: list[Message] = []
        for kind, sym_id, oid, other, side, price, qty, leaves, book_exec_id, reason, aggressor in book_events:
            exec_id = self._exec_id_base + book_exec_id
            if kind == K.TRADE:
                out.append(TradePrinted(self.name, self._symbols[sym_id], exec_id, price, qty, Side(side), ts_ns))
                continue
            if kind in (K.CANCEL_REJECTED, K.REPLACE_REJECTED):
                request = cancel if kind == K.CANCEL_REJECTED else replace
                assert request is not None
                why = RejectReason(reason)
                if why == RejectReason.UNKNOWN_ORDER:
                    why = RejectReason.TOO_LATE_TO_CANCEL
                out.append(self._cancel_rejected(oid, request, "cancel" if cancel else "replace", why, ts_ns))
                continue
            if kind == K.REJECTED:
                assert submit is not None
                del self._orders[oid]
                why = RejectReason(reason)
                out.append(OrderRejected.of(submit, oid, why, describe(why), ts_ns))
                continue
            w = self._orders[oid]
            if kind == K.ACCEPTED:
                assert submit is not None
                out.append(
                    OrderAccepted(
                        oid, w.cl_ord_id, w.account, w.symbol, submit.side, submit.ord_type, submit.tif,
                        submit.qty, submit.price, ts_ns, submit.stop_price, submit.session, submit.parent_id,
                        self.name,
                    )
                )  # fmt: skip
            elif kind == K.FILL:
                w.cum_qty += qty
                w.cum_notional += qty * price
                out.append(
                    OrderFilled(
                        oid, w.cl_ord_id, w.account, w.symbol, exec_id, w.side, qty, price, leaves,
                        w.cum_qty, w.cum_notional, bool(aggressor), ts_ns, other, self.name,
                    )
                )  # fmt: skip
            elif kind == K.TRIGGERED:
                out.append(OrderTriggered(oid, w.cl_ord_id, w.account, w.symbol, price, ts_ns))
            elif kind == K.REPLACED:
                assert replace is not None
                orig, w.cl_ord_id, w.qty = w.cl_ord_id, replace.cl_ord_id, qty
                out.append(
                    OrderReplaced(oid, w.cl_ord_id, orig, w.account, w.symbol, qty, replace.price, leaves, ts_ns)
                )
            elif kind == K.CANCELED:
                why = CancelReason(reason) if withdraw is None else withdraw
                if why == CancelReason.USER and cancel is not None:
                    out.append(OrderCanceled(oid, cancel.cl_ord_id, w.account, w.symbol, why, qty, ts_ns, w.cl_ord_id))
                else:
                    out.append(OrderCanceled(oid, w.cl_ord_id, w.account, w.symbol, why, qty, ts_ns))
            elif kind == K.EXPIRED:
                out.append(OrderExpired(oid, w.cl_ord_id, w.account, w.symbol, qty, ts_ns))
            else:
                raise AssertionError(f"unhandled book event kind {kind}")
            if kind != K.ACCEPTED and kind != K.TRIGGERED and kind != K.REPLACED and leaves == 0:
                del self._orders[oid]
        return out

    @staticmethod
    def _cancel_rejected(
        order_id: int, request: CancelOrder | ReplaceOrder, response_to: str, reason: RejectReason, ts_ns: int
    ) -> CancelRejected:
        return CancelRejected(
            order_id, request.cl_ord_id, request.orig_cl_ord_id, request.account, request.symbol, reason,
            describe(reason), response_to, ts_ns,
        )  # fmt: skip
