"""OrderManager: commands in, events out.

It assigns order ids, keeps ClOrdIDs unique per session, asks the account's risk gate before anything reaches a
venue, routes to the venue, drives each order's state machine with what comes back, and hands the events that move
an account (fills, cancels, rejects, replaces, expiries) back to the gate. It does no I/O of its own: gates and
venues are adapters (in-process account state, Ray actors, the native book, a FIX venue).

Rejects happen before an order id is spent where the command itself is wrong (unknown symbol, duplicate ClOrdID,
unknown order to cancel): those events carry order_id 0. Everything else carries the order's id.

Every event any call produces also lands in the outbox with the order's view right after that event
(`take_reports`), so the adapters that answer clients (FIX, REST) report each event with the CumQty, LeavesQty and
AvgPx it caused, whichever adapter's command caused it, and route it by `session_of`.

A port that raises (the gate, a venue) never leaves a trace: the order it was deciding or routing is rejected with
INTERNAL_ERROR and the gate is told (so nothing stays held or PendingNew), a cancel or replace is refused with
INTERNAL_ERROR and the order stays as it was, a mass cancel goes on with the other orders; the exception waits in
`take_faults` for the runtime to log. Only a failure of the gate's post-trade call propagates: the venue's events
stand, and the account is reconciled from its journal.

An adapter that times its orders (`oms.runtime.metrics.StageClock`) passes a `StageStamps` to `submit`: the manager
stamps it when the risk decision is made and when the venue has done its part, and nothing else; without one it reads no
clock.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from typing import Literal, Protocol

import msgspec

from oms.core.model.enums import CancelReason, OrdStatus, OrdType, RejectReason, TimeInForce, TradingState
from oms.core.model.instruments import InstrumentRegistry
from oms.core.model.messages import (
    CancelOrder,
    CancelRejected,
    ChangePending,
    Message,
    OrderAccepted,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderReplaced,
    ReplaceOrder,
    SubmitOrder,
    TradePrinted,
)
from oms.core.orders import Order, OrderView
from risk.limits import AccountLimits
from risk.reasons import describe


class RiskGate(Protocol):
    """Pre-trade decisions and post-trade updates for the accounts behind an OrderManager."""

    def decide(self, cmd: SubmitOrder, order_id: int, now_ns: int) -> OrderAccepted | OrderRejected:
        """Accept (and hold exposure for) or reject a new order."""
        ...

    def decide_replace(self, cmd: ReplaceOrder, order_id: int, now_ns: int, ord_type: OrdType) -> RejectReason:
        """RejectReason.NONE when the replace may go to the venue, else why not. `ord_type`: the order's (a replace
        changes its quantity and price only; the manager has refused one that changes its side)."""
        ...

    def on_events(self, events: Iterable[Message]) -> None:
        """Post-trade: fills, cancels, rejects, replaces and expiries of orders the gate accepted; trade prints."""
        ...

    def set_kill_switch(self, account: str, on: bool, now_ns: int) -> None:
        """Block (on) or allow new orders of `account` from now on."""
        ...

    def set_trading_state(self, account: str, trading_state: TradingState, now_ns: int) -> None:
        """Set `account`'s trading state from now on: ACTIVE, REDUCING (only orders that reduce a position) or
        HALTED (no new order); an operator's choice, de-escalation (resuming a halted account) included."""
        ...

    def set_limits(self, account: str, limits: AccountLimits, now_ns: int) -> None:
        """Judge `account`'s new orders by `limits` from now on (an operator's change; its risk mode follows
        `limits.risk_mode`)."""
        ...

    def quote(self, symbol: str, bid: int, ask: int, now_ns: int) -> None:
        """The best bid and ask of `symbol` where it is routed, as an order without a limit price is about to be
        decided: an account without a trade price for the symbol values such orders at their mid."""
        ...

    def accounts(self) -> list[str]:
        """Every account the gate decides for."""
        ...


class Unsettled(Exception):
    """Raised by a gate's `on_events` when its accounts' host did not take post-trade events (it died mid-call: these
    events' call, or an earlier one whose answer came in since), although they are durable: written ahead, so the
    account journals them when it is rebuilt. The engine records the fault and goes on; anything else a gate raises
    from `on_events` propagates."""


class StageStamps(Protocol):
    """Where an order's hot-path timestamps go (`oms.runtime.metrics.StageClock`)."""

    def risk_decided(self) -> None:
        """The order was accepted or refused before routing (by the gate, or the manager's own checks)."""
        ...

    def venue_done(self) -> None:
        """The venue returned from `submit`: the order matched or rests, or is on its way to a FIX venue."""
        ...


VenueStep = Callable[[], list[Message]]  # a venue's translation of what it heard into model events
ApplyVenue = Callable[[VenueStep], None]  # the runtime's: run a VenueStep in the core's sequence and apply its events


class Venue(Protocol):
    """Where orders are matched: the native book (`oms.core.venues.internal.InternalVenue`) or an external venue
    (`fix_gateway.venue.FixVenue`). The registry of venue kinds is `oms.apps.venues`.

    COMMANDS. The engine calls `submit`, `cancel`, `replace` and `withdraw` inside the core's sequence, one at a
    time, and takes the events they return: whatever the venue decided at once. A command never blocks its caller
    waiting for the venue: a venue that answers over the network hands the request to its session and returns
    (nothing, or a reject when it cannot send), and its answer comes later, as below.

    ANSWERS THAT COME LATER. `start(apply)` gives the venue `apply`, the runtime's way into the core
    (`oms.runtime.sequencer.Sequencer.apply_venue`). Whenever the venue has heard something (on its own threads: a
    session's reader thread, a timer), it calls `apply(step)`: the runtime runs `step()` in the core's sequence,
    between two engine steps, applies the events it returns to the engine and publishes them to every adapter,
    then returns. So the venue's own state (what it keeps of each order and request) and the engine's never
    disagree, and the venue takes no lock of the core's.

    A venue never:
    - calls the engine, or keeps a reference to it: what it has to say goes through `apply` or a command's result;
    - calls `apply` from inside a command or a step (their events are returned instead), nor while holding a lock
      its commands take (the sequence may be waiting in a command for that lock);
    - blocks inside a step (no I/O, no waiting): the whole core waits for it. A step reads and updates the venue's
      own state only.

    LIFECYCLE. `start` before any order is routed to the venue (connect, and keep reconnecting); `stop` when the
    process is done with it (disconnect; orders at the venue stay there), safe to call twice. The internal venue
    answers every command at once, so its `start` and `stop` do nothing.
    """

    name: str  # recorded with each order routed here (OrderAccepted.venue)

    def start(self, apply: ApplyVenue) -> None:
        """Begin serving: from now on the venue may hand what it hears to `apply` (see the class text)."""
        ...

    def stop(self) -> None:
        """Stop serving: no `apply` after this returns; orders at the venue stay there. Safe to call twice."""
        ...

    def submit(self, order_id: int, cmd: SubmitOrder, ts_ns: int) -> list[Message]:
        """Route `cmd` as order `order_id`; what the venue decided at once (nothing when it answers later)."""
        ...

    def quote(self, symbol: str) -> tuple[int, int] | None:
        """(best bid, best ask) of `symbol` here now, when the venue has both and knows them; None otherwise. A read
        of the venue's own state (never waits): the risk gate values an order without a limit price on it while the
        account has no trade price for the symbol."""
        ...

    def cancel(self, order_id: int, cmd: CancelOrder, ts_ns: int) -> list[Message]:
        """Cancel order `order_id` for the client's `cmd`; CancelRejected when the venue no longer holds it."""
        ...

    def replace(self, order_id: int, cmd: ReplaceOrder, ts_ns: int) -> list[Message]:
        """Change order `order_id` to `cmd`'s terms; CancelRejected when the venue no longer holds it."""
        ...

    def withdraw(self, order_id: int, reason: CancelReason, ts_ns: int) -> list[Message]:
        """Cancel order `order_id` on the OMS's own initiative (`reason`); nothing when it is no longer working."""
        ...

    def expire(self, order_id: int, ts_ns: int) -> list[Message]:
        """The GTD order `order_id` reached its expiry time by the OMS's clock: OrderExpired, or nothing when the
        venue no longer holds it or expires its orders itself (an external venue got the ExpireTime)."""
        ...

    def end_of_day(self, ts_ns: int) -> list[Message]:
        """The trading day closed by the OMS's clock: OrderExpired for every DAY order the venue holds, or nothing
        when the venue ends its day itself."""
        ...

    def recover(
        self, order_id: int, cmd: SubmitOrder, cum_qty: int, cum_notional: int, ts_ns: int, replaced: bool = False
    ) -> list[Message]:
        """At start, before any command: order `order_id` (`cmd`'s terms, `cum_qty` filled for `cum_notional`) was
        working here when the OMS last stopped, by its journal; `replaced` when a replace of it was applied in an
        earlier run (the venue may know it by another id than the first). What became of it: OrderCanceled (reason
        RESTART) when the venue's book went with the process; nothing when the venue may still hold it (from now
        on the venue answers for it as for any order it routed, later, through `apply`)."""
        ...


# what moves an account, and the tape that marks its positions
_GATE_EVENTS = (OrderFilled, OrderCanceled, OrderRejected, OrderReplaced, OrderExpired, TradePrinted)
_PENDING = frozenset({OrdStatus.PENDING_NEW, OrdStatus.PENDING_CANCEL, OrdStatus.PENDING_REPLACE})


class OrderManager:
    """One OMS core: risk gate, venue routing and order state for every session it serves."""

    def __init__(
        self,
        instruments: InstrumentRegistry,
        gate: RiskGate,
        venue_for: Callable[[str], Venue],
        first_order_id: int = 1,
        ready: bool = True,
    ) -> None:
        """`venue_for(symbol)` names the venue an instrument is routed to. Not `ready`: new orders are refused
        (NOT_READY) until `recover` has run."""
        self._instruments = instruments
        self._gate = gate
        self._venue_for = venue_for
        self._next_id = first_order_id
        self._by_clordid: dict[tuple[str, str], int] = {}  # (session, ClOrdID) -> order id, every one ever seen
        self.orders: dict[int, Order] = {}
        self.session_of: dict[int, str] = {}  # order id -> the session its reports go to
        self._outbox: list[tuple[Message, OrderView | None]] = []
        self._faults: list[tuple[str, Exception]] = []  # (which port, what it raised): for the runtime to log
        self._replaced_before: set[int] = set()  # orders `restore` found replaced in an earlier run
        self.closed = False  # no new orders (`close`)
        self.ready = ready  # new orders taken (`recover` makes it so)
        self._expiries: list[tuple[int, int]] = []  # heap of (expiry time, order id) of GTD orders

    # -- COMMANDS --

    def submit(self, cmd: SubmitOrder, now_ns: int, stamps: StageStamps | None = None) -> list[Message]:
        """Risk-check and route a new order; returns the events for the client and the tape. `stamps`, when
        given, is stamped once the order is accepted or refused before routing, and once the venue returned."""
        key = (cmd.session, cmd.cl_ord_id)
        if self.closed:
            return self._refuse(cmd, RejectReason.SHUTTING_DOWN, now_ns, stamps)
        if not self.ready:
            return self._refuse(cmd, RejectReason.NOT_READY, now_ns, stamps)
        if key in self._by_clordid:
            return self._refuse(cmd, RejectReason.DUPLICATE_CL_ORD_ID, now_ns, stamps)
        if self._instruments.by_symbol(cmd.symbol) is None:
            return self._refuse(cmd, RejectReason.UNKNOWN_SYMBOL, now_ns, stamps)
        venue = self._venue_for(cmd.symbol)
        cmd = msgspec.structs.replace(cmd, venue=venue.name)  # the routing decision, journaled with the acceptance
        order_id = self._next_id
        self._next_id += 1
        self._by_clordid[key] = order_id
        order = Order(
            order_id, cmd.cl_ord_id, cmd.account, cmd.symbol, cmd.side, cmd.ord_type, cmd.tif, cmd.qty, cmd.price
        )
        self.orders[order_id] = order
        self.session_of[order_id] = cmd.session
        try:
            if cmd.price is None and (top := venue.quote(cmd.symbol)) is not None:
                self._gate.quote(cmd.symbol, *top, now_ns)
            decision = self._gate.decide(cmd, order_id, now_ns)
        except Exception as exc:
            return self._failed(order, cmd, "risk gate", exc, now_ns, stamps)
        if stamps is not None:
            stamps.risk_decided()
        if isinstance(decision, OrderRejected):  # the gate held nothing: it is not told again
            order.on_rejected()
            return self._report([decision])
        if cmd.tif is TimeInForce.GTD and cmd.expire_ts_ns is not None:
            heapq.heappush(self._expiries, (cmd.expire_ts_ns, order_id))
        try:
            events = venue.submit(order_id, cmd, now_ns)
        except Exception as exc:
            return self._failed(order, cmd, "venue", exc, now_ns, None)
        if stamps is not None:
            stamps.venue_done()
        return self._settle(events)

    def cancel(self, cmd: CancelOrder, now_ns: int) -> list[Message]:
        """Ask the venue to cancel the order `cmd.orig_cl_ord_id` names."""
        order = self._find(cmd, "cancel", now_ns)
        if isinstance(order, CancelRejected):
            return self._report([order])
        self._by_clordid[(cmd.session, cmd.cl_ord_id)] = order.order_id
        order.on_pending_cancel()
        try:
            answer = self._venue_for(order.symbol).cancel(order.order_id, cmd, now_ns)
        except Exception as exc:
            return self._change_failed(order, cmd, "cancel", exc, now_ns)
        events = self._settle(answer)
        return self._pending(order, cmd, "cancel", events, now_ns)

    def replace(self, cmd: ReplaceOrder, now_ns: int) -> list[Message]:
        """Risk-check and send a cancel/replace for the order `cmd.orig_cl_ord_id` names."""
        order = self._find(cmd, "replace", now_ns)
        if isinstance(order, CancelRejected):
            return self._report([order])
        self._by_clordid[(cmd.session, cmd.cl_ord_id)] = order.order_id
        reason = RejectReason.INVALID_SIDE  # a replace keeps the side (the FIX codec refuses it too)
        if cmd.side is order.side:
            reason = self._gate.decide_replace(cmd, order.order_id, now_ns, order.ord_type)
        if reason != RejectReason.NONE:
            return self._report([self._cancel_rejected(cmd, order.order_id, "replace", reason, now_ns)])
        order.on_pending_replace()
        try:
            answer = self._venue_for(order.symbol).replace(order.order_id, cmd, now_ns)
        except Exception as exc:
            return self._change_failed(order, cmd, "replace", exc, now_ns)
        events = self._settle(answer)
        return self._pending(order, cmd, "replace", events, now_ns)

    def kill_switch(self, account: str | None, on: bool, now_ns: int) -> list[Message]:
        """Block (on) or allow new orders of `account` (every account when None); turning it on also cancels the
        account's working orders (reason KILL_SWITCH). Returns the cancels and what they caused."""
        accounts = self._gate.accounts() if account is None else [account]
        events: list[Message] = []
        for acct in accounts:
            self._gate.set_kill_switch(acct, on, now_ns)
            if not on:
                continue
            for order in self.working(account=acct):
                events += self._withdraw(order, CancelReason.KILL_SWITCH, now_ns)
        return self._settle(events)

    def set_trading_state(self, account: str, trading_state: TradingState, now_ns: int) -> None:
        """An operator's halt (HALTED), reduce-only (REDUCING) or resume (ACTIVE) of `account`: new orders are judged
        by it from the next one on; working orders stay (the kill switch is what cancels them)."""
        if account not in self._gate.accounts():
            raise KeyError(account)
        self._gate.set_trading_state(account, trading_state, now_ns)

    def set_limits(self, account: str, limits: AccountLimits, now_ns: int) -> None:
        """An operator's new limits for `account`, from its next order on (working orders stay)."""
        if account not in self._gate.accounts():
            raise KeyError(account)
        self._gate.set_limits(account, limits, now_ns)

    def mass_cancel(
        self, session: str | None, symbol: str | None, now_ns: int, reason: CancelReason = CancelReason.USER
    ) -> list[Message]:
        """Cancel every working order of `session` (every session's when None; in `symbol` only, when given);
        returns what that caused."""
        events: list[Message] = []
        for order in self.working(session, symbol):
            events += self._withdraw(order, reason, now_ns)
        return self._settle(events)

    def expire_due(self, now_ns: int) -> list[Message]:
        """Expire every GTD order whose expiry time is at or before `now_ns` and still works (its venue reports
        OrderExpired); returns what that caused."""
        expiries, events = self._expiries, []
        while expiries and expiries[0][0] <= now_ns:
            _, order_id = heapq.heappop(expiries)
            order = self.orders[order_id]
            if not order.is_terminal:
                try:
                    events += self._venue_for(order.symbol).expire(order_id, now_ns)
                except Exception as exc:
                    self._faults.append(("venue", exc))
        return self._settle(events)

    def next_expiry(self) -> int | None:
        """The earliest GTD expiry time still to come (it may name an order that ended since), None when none."""
        expiries = self._expiries
        return expiries[0][0] if expiries else None

    def end_of_day(self, now_ns: int) -> list[Message]:
        """The trading day closed: every venue holding a working DAY order expires its DAY orders; returns what
        that caused."""
        venues: dict[int, Venue] = {}
        for order in self.working():
            if order.tif is TimeInForce.DAY:
                venue = self._venue_for(order.symbol)
                venues[id(venue)] = venue
        events: list[Message] = []
        for venue in venues.values():
            try:
                events += venue.end_of_day(now_ns)
            except Exception as exc:
                self._faults.append(("venue", exc))
        return self._settle(events)

    def close(self, now_ns: int) -> list[Message]:
        """Stop taking new orders (from now on every channel's are refused with SHUTTING_DOWN; cancels still go
        through) and withdraw every working order of every session (reason SHUTDOWN); returns what that caused."""
        self.closed = True
        return self.mass_cancel(None, None, now_ns, CancelReason.SHUTDOWN)

    def restore(self, events: Iterable[Message], replayed: Callable[[Message, OrderView], None] | None = None) -> int:
        """Rebuild the orders a journal recorded, before the first command: OrderAccepted (with the session its
        reports go to), then that order's fills, cancels, replaces, expiries and venue rejects, in journal order
        (events of different orders may interleave). From then on status requests, duplicate ClOrdIDs (the order's,
        its cancels' and replaces') and cancels are judged as before the restart. Nothing reaches the gate, a venue
        or the outbox: call `recover` next for the orders still working. `replayed(event, view)` hears each event
        applied, with the order as it left it (`session_of` already names the order's session), so an adapter can
        tell what it may still owe its clients. Events of orders whose acceptance is not among them are skipped;
        returns how many were."""
        orders: dict[int, Order] = {}
        by_clordid, session_of = self._by_clordid, self.session_of
        skipped = 0
        for e in events:
            if isinstance(e, OrderAccepted):
                if e.order_id in orders or e.order_id in self.orders:
                    continue
                order = Order(e.order_id, e.cl_ord_id, e.account, e.symbol, e.side, e.ord_type, e.tif, e.qty, e.price)
                orders[e.order_id] = order
                session_of[e.order_id] = e.session
                by_clordid[(e.session, e.cl_ord_id)] = e.order_id
                if replayed is not None:
                    replayed(e, order.view())
                continue
            order = orders.get(getattr(e, "order_id", 0))
            if order is None:
                skipped += 1
                continue
            if order.status is OrdStatus.PENDING_NEW and not isinstance(e, OrderRejected):
                order.on_accepted()  # the account accepted it; its venue's ack is not journaled
            match e:
                case OrderFilled():
                    order.on_fill(e.qty, e.price)
                case OrderCanceled():
                    order.on_canceled()
                    if e.orig_cl_ord_id:
                        by_clordid[(session_of[e.order_id], e.cl_ord_id)] = e.order_id
                case OrderReplaced():
                    order.on_pending_replace()
                    order.on_replaced(e.qty, e.price, e.cl_ord_id)
                    by_clordid[(session_of[e.order_id], e.cl_ord_id)] = e.order_id
                    self._replaced_before.add(e.order_id)
                case OrderExpired():
                    order.on_expired()
                case OrderRejected():  # a venue's reject of an order the account had accepted
                    order.on_rejected()
            if replayed is not None:
                replayed(e, order.view())
        for order_id in sorted(orders):
            order = orders[order_id]
            if order.status is OrdStatus.PENDING_NEW:
                order.on_accepted()
            self.orders[order_id] = order
        return skipped

    def recover(self, now_ns: int) -> list[Message]:
        """Hand every order still working after `restore` to its venue (`Venue.recover`): the internal book cancels
        its own (reason RESTART), an external venue takes the order back. The cancels move the accounts (the gate
        is told) and are reported like any other; from now on new orders are taken (`ready`). Returns what that
        caused."""
        events: list[Message] = []
        for order in self.working():
            cmd = SubmitOrder(
                order.account, order.cl_ord_id, order.symbol, order.side, order.ord_type, order.qty, order.price,
                tif=order.tif, session=self.session_of[order.order_id],
            )  # fmt: skip
            try:
                replaced = order.order_id in self._replaced_before
                events += self._venue_for(order.symbol).recover(
                    order.order_id, cmd, order.cum_qty, order.cum_notional, now_ns, replaced
                )
            except Exception as exc:
                self._faults.append(("venue", exc))
        self.ready = True
        return self._settle(events)

    def on_venue_events(self, events: list[Message]) -> list[Message]:
        """Events a venue produced on its own (a resting order filled by someone else's flow, an expiry)."""
        return self._settle(events)

    # -- QUERIES --

    def find(self, session: str, cl_ord_id: str) -> Order | None:
        """The order that `cl_ord_id` (its first ClOrdID, a cancel's or a replace's) names on `session`."""
        return self.orders.get(self._by_clordid.get((session, cl_ord_id), 0))

    def working(self, session: str | None = None, symbol: str | None = None, account: str | None = None) -> list[Order]:
        """Orders not yet terminal, of `session`, in `symbol` and of `account` when given, oldest first."""
        return [
            o for oid, o in self.orders.items()
            if not o.is_terminal and (session is None or self.session_of[oid] == session)
            and (symbol is None or o.symbol == symbol) and (account is None or o.account == account)
        ]  # fmt: skip

    def take_faults(self) -> list[tuple[str, Exception]]:
        """What a port (the risk gate, a venue) raised since the last call, as (port, exception), oldest first; the
        command it broke was answered with INTERNAL_ERROR and left nothing held. Empties the list."""
        faults, self._faults = self._faults, []
        return faults

    def take_reports(self) -> list[tuple[Message, OrderView | None]]:
        """Every event since the last call, in order, each with its order's view right after it (None when the
        event names no order of this manager); empties the outbox."""
        reports, self._outbox = self._outbox, []
        return reports

    # -- INTERNALS --

    def _settle(self, events: list[Message]) -> list[Message]:
        """Drive each order's state machine with the venue's events, queue them with the views they leave for the
        client adapters, and pass the account-moving ones to the gate."""
        outbox = self._outbox
        for e in events:
            order = self.orders.get(getattr(e, "order_id", 0))
            if order is None:
                outbox.append((e, None))
                continue
            match e:
                case OrderAccepted():
                    order.on_accepted()
                case OrderRejected():
                    order.on_rejected()
                case OrderFilled():
                    order.on_fill(e.qty, e.price)
                case OrderCanceled():
                    order.on_canceled()
                case OrderExpired():
                    order.on_expired()
                case OrderReplaced():
                    order.on_replaced(e.qty, e.price, e.cl_ord_id)
                case CancelRejected():
                    if not order.is_terminal:
                        order.on_cancel_rejected()
            outbox.append((e, order.view()))
        try:
            self._gate.on_events([e for e in events if isinstance(e, _GATE_EVENTS)])
        except Unsettled as exc:  # durable all the same: reported like the rest
            self._faults.append(("risk gate", exc))
        return events

    def _failed(
        self, order: Order, cmd: SubmitOrder, port: str, exc: Exception, now_ns: int, stamps: StageStamps | None
    ) -> list[Message]:
        """`port` raised while order `order` was decided or routed: it is rejected (INTERNAL_ERROR) and the gate is
        told, so whatever it may hold for the order is released (an account that never took the order ignores
        it)."""
        self._faults.append((port, exc))
        if stamps is not None:
            stamps.risk_decided()
        order.on_rejected()
        rejected = self._reject(cmd, order.order_id, RejectReason.INTERNAL_ERROR, now_ns)
        try:
            self._gate.on_events([rejected])
        except Exception as gate_exc:  # the account may still hold it: reconciled from its journal at the next start
            self._faults.append(("risk gate", gate_exc))
        return self._report([rejected])

    def _change_failed(
        self, order: Order, cmd: CancelOrder | ReplaceOrder, request: Literal["cancel", "replace"], exc: Exception,
        now_ns: int,
    ) -> list[Message]:  # fmt: skip
        """The venue raised on a cancel or replace: the order stays as it was and the request is refused."""
        self._faults.append(("venue", exc))
        order.on_cancel_rejected()
        return self._report([self._cancel_rejected(cmd, order.order_id, request, RejectReason.INTERNAL_ERROR, now_ns)])

    def _withdraw(self, order: Order, reason: CancelReason, now_ns: int) -> list[Message]:
        """The venue's answer to withdrawing `order`; nothing (and a fault) when it raised, so the other orders of a
        mass cancel or kill switch are still withdrawn."""
        try:
            return self._venue_for(order.symbol).withdraw(order.order_id, reason, now_ns)
        except Exception as exc:
            self._faults.append(("venue", exc))
            return []

    def _pending(
        self, order: Order, cmd: CancelOrder | ReplaceOrder, request: Literal["cancel", "replace"],
        events: list[Message], now_ns: int,
    ) -> list[Message]:  # fmt: skip
        """`events` plus a ChangePending when the venue has not answered `cmd` yet (it answers later)."""
        if order.status not in _PENDING:
            return events
        pending = ChangePending(order.order_id, cmd.cl_ord_id, order.cl_ord_id, order.account, order.symbol, request,
                                now_ns)  # fmt: skip
        self._outbox.append((pending, order.view()))
        return [*events, pending]

    def _refuse(self, cmd: SubmitOrder, reason: RejectReason, now_ns: int, stamps: StageStamps | None) -> list[Message]:
        """Reject a new order before an order id is spent for it."""
        if stamps is not None:
            stamps.risk_decided()
        return self._report([self._reject(cmd, 0, reason, now_ns)])

    def _report(self, events: list[Message]) -> list[Message]:
        """Queue answers that moved no order state and no account (rejected commands) for the client adapters."""
        for e in events:
            order = self.orders.get(getattr(e, "order_id", 0))
            self._outbox.append((e, None if order is None else order.view()))
        return events

    def _find(self, cmd: CancelOrder | ReplaceOrder, response_to: str, now_ns: int) -> Order | CancelRejected:
        """The working order `cmd` targets, or the CancelRejected that answers it."""
        reason = RejectReason.NONE
        order_id = self._by_clordid.get((cmd.session, cmd.orig_cl_ord_id), 0)
        order = self.orders.get(order_id)
        if (cmd.session, cmd.cl_ord_id) in self._by_clordid:
            reason = RejectReason.DUPLICATE_CL_ORD_ID
        elif order is None or order.account != cmd.account or order.symbol != cmd.symbol:
            order_id, reason = 0, RejectReason.UNKNOWN_ORDER
        elif order.is_terminal:
            reason = RejectReason.TOO_LATE_TO_CANCEL
        elif order.status in _PENDING:  # FIX: "order already in Pending Cancel or Pending Replace status"
            reason = RejectReason.ORDER_PENDING
        if reason != RejectReason.NONE:
            return self._cancel_rejected(cmd, order_id, response_to, reason, now_ns)
        assert order is not None
        return order

    @staticmethod
    def _reject(cmd: SubmitOrder, order_id: int, reason: RejectReason, now_ns: int) -> OrderRejected:
        return OrderRejected.of(cmd, order_id, reason, describe(reason), now_ns)

    @staticmethod
    def _cancel_rejected(
        cmd: CancelOrder | ReplaceOrder, order_id: int, response_to: str, reason: RejectReason, now_ns: int
    ) -> CancelRejected:
        return CancelRejected(
            order_id, cmd.cl_ord_id, cmd.orig_cl_ord_id, cmd.account, cmd.symbol, reason, describe(reason),
            response_to, now_ns,
        )  # fmt: skip
