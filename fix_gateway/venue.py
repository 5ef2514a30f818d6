"""An external venue reached over FIX: the OMS is the initiator, the venue (an exchange, a broker, or
`oms exchange-sim`) the acceptor.

Orders leave as NewOrderSingle / OrderCancelRequest / OrderCancelReplaceRequest, and the `submit` / `cancel` /
`replace` calls return nothing: the venue answers later. Its ExecutionReports, OrderCancelRejects and
BusinessMessageRejects come back on QuickFIX's thread, which hands each one's translation into model events to the
runtime's `apply` (the Venue port's contract, `oms.core.engine.Venue`): it runs in the core's sequence, so the maps
kept here and the engine's orders never disagree, and the answers reach the engine in the order the venue sent them.
Meanwhile the OrderManager reports the order as PendingNew, PendingCancel or PendingReplace.

IDS ON THE VENUE
Each order's ClOrdID on the venue is its OMS order id; each cancel or replace of it is `<order id>-<n>`. Both are
unique across restarts (order ids are per start), and any answer names the OMS order it is about. The venue's
ExecIDs dedupe resent reports (PossDupFlag): a fill is applied once. Fills get OMS execution ids from
`exec_id_base` up, so they never collide with another venue's.

WHAT THE OMS DOES WITH EACH ANSWER
ExecType New -> OrderAccepted; PartialFill/Fill/Trade -> OrderFilled (LastQty, LastPx, LeavesQty, and
LastLiquidityInd for passive/aggressive); Canceled -> OrderCanceled (the client's cancel, the OMS's own withdraw,
or reason VENUE when the venue canceled on its own); Replaced -> OrderReplaced; Rejected -> OrderRejected
(VENUE_REJECTED with the venue's text); Expired -> OrderExpired. PendingNew/PendingCancel/PendingReplace, status
answers and restatements change nothing. OrderCancelReject -> CancelRejected. A BusinessMessageReject naming one
of our ClOrdIDs rejects that order or request. Anything about an order this venue does not hold is logged.
While the session is not logged on, new orders are rejected (VENUE_UNAVAILABLE) and so are cancels and replaces;
orders already at the venue stay working and the session's resend brings their missed reports at the next logon.

RECONCILIATION AT EACH LOGON
The venue may have lost orders (it restarted with an empty book) or the OMS may have restarted (`recover` hands it
the orders its journal says are here). So at each logon, once the session has caught up (a TestRequest's Heartbeat
comes back after the venue's resend of what the OMS missed), the adapter sends an OrderStatusRequest for every order
it holds, and applies each answer: fills the venue reports beyond what the OMS counted become one fill at their
average price; an order the venue says is canceled, expired or unknown ends (OrderCanceled reason VENUE_LOST for an
order it no longer knows, OrderRejected for one it never acknowledged); a working one stays. An OrderCancelReject
saying "unknown order" asks the same question. Until an answer comes, the order stays working and its exposure held:
an outcome not known is never taken as flat. A fill is counted once by its CumQty as well as its ExecID, so a report
the OMS applied before a restart and gets again in a resend changes nothing.

MARKET DATA
Given a sink (`feed_market`, the market tape), the adapter subscribes at each logon, once the session has caught up,
to the venue's top of book and trades of the symbols routed to it, and hands what comes back to the sink as quotes
and prints (`fix_gateway.md_feed`). Those messages never reach the core's sequence: QuickFIX's thread queues them for
the feed's own thread. `market_data = false` in the venue's table turns it off.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal, InvalidOperation
from pathlib import Path

from fix_gateway import tags as T
from fix_gateway.client import FixClient, Received
from fix_gateway.codec import ORD_TYPE_CHARS, SIDE_CHARS, TIF_CHARS, utc_timestamp
from fix_gateway.door import DoorProcess, TunnelSettings, free_loopback_port
from fix_gateway.md_feed import MarketSink, VenueMarketData, is_market_data
from fix_gateway.settings import FixVenueSettings
from oms.core.engine import ApplyVenue
from oms.core.model.enums import CancelReason, RejectReason, TimeInForce
from oms.core.model.instruments import (
    ConfigError,
    Instrument,
    InstrumentRegistry,
    format_price,
    format_qty,
    parse_price,
    parse_qty,
)  # fmt: skip
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
    ReplaceOrder,
    SubmitOrder,
)
from oms.core.model.numbers import to_units
from risk.reasons import describe

__all__ = ["FixVenue"]

log = logging.getLogger("oms.venue")

_FILL_EXEC_TYPES = frozenset({"1", "2", "F"})  # 4.2 PartialFill / Fill, 4.4 Trade
_QUIET_EXEC_TYPES = frozenset({"3", "6", "A", "D", "E", "I"})  # done for day, pendings, restated, status
_CXL_REJ_REASONS = {"0": RejectReason.TOO_LATE_TO_CANCEL, "1": RejectReason.TOO_LATE_TO_CANCEL,
                    "3": RejectReason.ORDER_PENDING}  # fmt: skip

Request = CancelOrder | ReplaceOrder | CancelReason  # a client's cancel or replace, or the OMS's own withdraw


class _Routed:
    """What the venue adapter keeps of one order it sent: the client's terms and what the venue reported."""

    __slots__ = ("accepted", "cl_ord_id", "cmd", "cum_notional", "cum_qty", "id_uncertain", "inst", "price", "qty",
                 "requests", "venue_cl")  # fmt: skip

    def __init__(self, cmd_order_id: int, cmd: SubmitOrder, inst: Instrument) -> None:
        self.cmd = cmd
        self.inst = inst
        self.cl_ord_id = cmd.cl_ord_id  # the client's current ClOrdID (changes with each replace)
        self.qty = cmd.qty
        self.price = cmd.price
        self.cum_qty = 0
        self.cum_notional = 0
        self.venue_cl = str(cmd_order_id)  # the order's ClOrdID on the venue (changes with each replace)
        self.accepted = False
        self.requests: Iterator[int | str] = itertools.count(1)  # numbers this order's cancels and replaces
        self.id_uncertain = False  # the venue may know it by a ClOrdID this run does not (replaced in an earlier run)


class FixVenue:
    """The Venue port over one FIX initiator session (see the module text for what goes and comes back).
    Its commands and the translation of its answers both run in the core's sequence, never at the same time."""

    def __init__(
        self,
        name: str,
        instruments: InstrumentRegistry,
        settings: FixVenueSettings,
        exec_id_base: int = 0,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        """The session keeps its sequence numbers and sent messages under `settings.data_dir`; fills get execution
        ids `exec_id_base` + 1, + 2, ... (give each venue and each start its own base)."""
        self.name = name
        self._instruments = instruments
        self._settings = settings
        self._clock = clock
        self._exec_ids = itertools.count(exec_id_base + 1)
        self._run = exec_id_base  # unique per start: names the requests of orders taken over from an earlier run
        # the maps below are used only in the core's sequence: by the commands, and by the steps handed to `apply`
        self._orders: dict[int, _Routed] = {}
        self._requests: dict[str, tuple[int, Request]] = {}  # venue ClOrdID of a pending cancel/replace
        self._seen: set[str] = set()  # venue ExecIDs already applied
        self._asked: set[int] = set()  # orders whose status this adapter asked for and has no answer to yet
        self._apply: ApplyVenue | None = None
        self._market: VenueMarketData | None = None
        host, port = settings.host, settings.port
        self._tunnel: DoorProcess | None = None
        if settings.tls is not None:  # the initiator reaches the venue through a local TLS tunnel
            tls = settings.tls
            listen = free_loopback_port()
            tunnel = TunnelSettings(listen, host, port, tls.ca, tls.cert, tls.key, tls.server_name)
            try:
                self._tunnel = DoorProcess(tunnel, Path(settings.data_dir) / "tunnel.log")
            except ValueError as exc:
                raise ConfigError(f"venue {name}: {exc}") from None
            host, port = "127.0.0.1", listen
        self._client = FixClient(
            settings.begin_string, settings.sender_comp_id, port, settings.data_dir,
            target=settings.target_comp_id, password=settings.password, host=host,
            heartbeat=settings.heartbeat, on_app=self._on_message, on_synced=self._on_synced,
        )  # fmt: skip

    # -- LIFECYCLE --

    def start(self, apply: ApplyVenue, wait: float = 0.0) -> None:
        """Connect (and keep reconnecting) to the venue; the translation of each of its answers goes to `apply`, to
        run in the core's sequence. With `wait`, raise TimeoutError when the logon takes longer than `wait`
        seconds."""
        self._apply = apply
        if self._tunnel is not None and not self._tunnel.running:
            self._tunnel.start()
        if self._market is not None:
            self._market.start()
        self._client.start(wait)

    def stop(self) -> None:
        """Log out and disconnect; orders at the venue stay there. Safe to call twice."""
        self._client.stop()
        if self._market is not None:
            self._market.stop()
        if self._tunnel is not None:
            self._tunnel.stop()

    def feed_market(self, sink: MarketSink, symbols: Iterable[str]) -> bool:
        """From the next `start` on, put the venue's quotes and prints of `symbols` (those routed to it) on `sink`
        (see MARKET DATA in the module text). Returns False, and does nothing, when the venue's table turned market
        data off or `symbols` is empty. Raises ValueError for an unknown symbol, RuntimeError once started."""
        if self._apply is not None:
            raise RuntimeError(f"venue {self.name}: feed_market must come before start")
        symbols = list(symbols)
        if not self._settings.market_data or not symbols:
            return False
        self._market = VenueMarketData(
            self.name, self._settings.begin_string, self._instruments, symbols, sink, self._client.send_message,
            self._run,
        )  # fmt: skip
        return True

    @property
    def connected(self) -> bool:
        """True while the session is logged on."""
        return self._client.logged_on.is_set()

    def wait_connected(self, timeout: float) -> bool:
        """True once the session is logged on, False after `timeout` seconds without."""
        return self._client.logged_on.wait(timeout)

    def quote(self, symbol: str) -> tuple[int, int] | None:
        """(best bid, best ask) of `symbol` as the venue's market data shows them; None without market data, before
        its snapshot, or with a side empty."""
        top = None if self._market is None else self._market.top(symbol)
        return (top.bid, top.ask) if top is not None and top.bid_qty and top.ask_qty else None

    # -- COMMANDS (in the core's sequence) --

    def submit(self, order_id: int, cmd: SubmitOrder, ts_ns: int) -> list[Message]:
        """Send `cmd` to the venue as order `order_id`; nothing now, the venue answers later."""
        inst = self._instruments.by_symbol(cmd.symbol)
        if inst is None:
            reason = RejectReason.UNKNOWN_SYMBOL
            return [self._rejected(order_id, cmd, reason, describe(reason), ts_ns)]
        if not self.connected:
            return [self._rejected(order_id, cmd, RejectReason.VENUE_UNAVAILABLE, self._unavailable(), ts_ns)]
        fields = [(T.CL_ORD_ID, str(order_id)), *self._account(), (T.HANDL_INST, "1"), (T.SYMBOL, cmd.symbol),
                  (T.SIDE, SIDE_CHARS[cmd.side]), (T.ORDER_QTY, format_qty(inst, cmd.qty)),
                  (T.ORD_TYPE, ORD_TYPE_CHARS[cmd.ord_type]), (T.TIME_IN_FORCE, TIF_CHARS[cmd.tif])]  # fmt: skip
        if cmd.price is not None:
            fields.append((T.PRICE, format_price(inst, cmd.price)))
        if cmd.stop_price is not None:
            fields.append((T.STOP_PX, format_price(inst, cmd.stop_price)))
        if cmd.display_qty is not None:
            fields.append((T.MAX_FLOOR, format_qty(inst, cmd.display_qty)))
        if cmd.tif == TimeInForce.GTD and cmd.expire_ts_ns is not None:
            fields.append((T.EXPIRE_TIME, utc_timestamp(cmd.expire_ts_ns)))
        fields.append((T.TRANSACT_TIME, utc_timestamp(ts_ns)))
        self._orders[order_id] = _Routed(order_id, cmd, inst)
        if not self._send(T.MT_NEW_ORDER_SINGLE, fields):
            del self._orders[order_id]
            return [self._rejected(order_id, cmd, RejectReason.VENUE_UNAVAILABLE, self._unavailable(), ts_ns)]
        return []

    def cancel(self, order_id: int, cmd: CancelOrder, ts_ns: int) -> list[Message]:
        """Ask the venue to cancel order `order_id` for the client's `cmd`; it answers later."""
        return self._request(order_id, cmd, ts_ns)

    def replace(self, order_id: int, cmd: ReplaceOrder, ts_ns: int) -> list[Message]:
        """Ask the venue to change order `order_id` to `cmd.qty` (new total) at `cmd.price`; it answers later."""
        return self._request(order_id, cmd, ts_ns)

    def withdraw(self, order_id: int, reason: CancelReason, ts_ns: int) -> list[Message]:
        """Ask the venue to cancel order `order_id` on the OMS's own initiative; its Canceled carries `reason`."""
        return self._request(order_id, reason, ts_ns)

    def expire(self, order_id: int, ts_ns: int) -> list[Message]:
        """Nothing: the venue got the order's ExpireTime and reports its expiry itself."""
        return []

    def end_of_day(self, ts_ns: int) -> list[Message]:
        """Nothing: the venue ends its DAY orders at its own close and reports them."""
        return []

    def recover(
        self, order_id: int, cmd: SubmitOrder, cum_qty: int, cum_notional: int, ts_ns: int, replaced: bool = False
    ) -> list[Message]:
        """Nothing now: the venue may still hold order `order_id`. It is this venue's again, as if just routed and
        acknowledged with `cum_qty` filled, so what the venue sends about it (its resend at the next logon, later
        fills, the answer to its status request, the answer to a cancel) is applied; until then it stays working,
        and its exposure held. Its cancels and replaces get venue ClOrdIDs no earlier run used. When `replaced`,
        the venue may know it only by a ClOrdID of an earlier run that is not journaled: a venue that does not
        know it by its first one does not end it (see `_status`)."""
        inst = self._instruments.by_symbol(cmd.symbol)
        if inst is None:
            return []
        routed = _Routed(order_id, cmd, inst)
        routed.accepted, routed.cum_qty, routed.cum_notional = True, cum_qty, cum_notional
        routed.requests = (f"{self._run}.{n}" for n in itertools.count(1))
        routed.id_uncertain = replaced
        self._orders[order_id] = routed
        return []

    # -- ANSWERS (read on QuickFIX's thread, translated in the core's sequence) --

    def _on_message(self, msg: Received) -> None:
        assert self._apply is not None, "FixVenue.start names where answers go"
        if self._market is not None and is_market_data(msg):
            self._market.on_message(msg)  # queued for the feed's thread: never in the core's sequence
            return
        self._apply(lambda: self._understood(msg))

    def _on_synced(self) -> None:
        assert self._apply is not None, "FixVenue.start names where answers go"
        self._apply(self._reconcile)
        if self._market is not None:
            self._market.logged_on()

    def _reconcile(self) -> list[Message]:
        """Ask the venue the status of every order it holds for the OMS (see RECONCILIATION in the module text)."""
        for order_id, routed in list(self._orders.items()):
            self._ask(order_id, routed)
        if self._orders:
            log.info("venue %s: asked the status of %d orders", self.name, len(self._orders))
        return []

    def _ask(self, order_id: int, routed: _Routed) -> None:
        fields = [(T.CL_ORD_ID, routed.venue_cl), (T.SYMBOL, routed.cmd.symbol), (T.SIDE, SIDE_CHARS[routed.cmd.side])]
        if self._send(T.MT_ORDER_STATUS_REQUEST, fields):
            self._asked.add(order_id)

    def _understood(self, msg: Received) -> list[Message]:
        """The events `msg` means; none when it is not understood (logged: the order's state stays as it was)."""
        try:
            return self._translate(msg)
        except (KeyError, ValueError):  # a report missing a field or with a bad value: the venue's bug
            log.exception("venue %s: report not understood, order state unchanged: %s", self.name, dict(msg))
            return []

    def _translate(self, msg: Received) -> list[Message]:
        msg_type = msg.msg_type
        if msg_type == T.MT_BUSINESS_MESSAGE_REJECT:
            return self._business_reject(msg)
        venue_cl = msg.get(T.CL_ORD_ID, "")
        if msg_type == T.MT_ORDER_CANCEL_REJECT and venue_cl in self._requests:  # the order may be done by now
            order_id, request = self._requests.pop(venue_cl)
            reason = _CXL_REJ_REASONS.get(msg.get(T.CXL_REJ_REASON, ""), RejectReason.VENUE_REJECTED)
            routed = self._orders.get(order_id)
            if msg.get(T.CXL_REJ_REASON) == "1" and routed is not None:  # the venue does not know an order we hold
                self._ask(order_id, routed)
            return self._cancel_rejected(order_id, request, reason, _venue_text(msg, reason), self._clock())
        order_id = _order_id(venue_cl)
        routed = self._orders.get(order_id)
        if routed is None and _is_status(msg):  # an order that ended before its status came back
            self._asked.discard(order_id)
            return []
        if routed is None or msg_type != T.MT_EXECUTION_REPORT:
            log.warning("venue %s: message about no order or request of ours: %s", self.name, dict(msg))
            return []
        now = self._clock()
        exec_type = msg.get(T.EXEC_TYPE, "")
        if _is_status(msg):
            return self._status(order_id, routed, msg, now)
        if exec_type in _QUIET_EXEC_TYPES:
            return []
        exec_id = msg.get(T.EXEC_ID, "")
        if exec_id in self._seen or (exec_type in _FILL_EXEC_TYPES and self._counted(routed, msg)):
            return []  # a resent report (PossDupFlag) already applied, in this run or before a restart
        self._seen.add(exec_id)
        out: list[Message] = []
        if exec_type != "8" and not routed.accepted:  # the venue's first word may be a fill
            out.append(self._accepted(order_id, routed, now))
        if exec_type in _FILL_EXEC_TYPES:
            out.append(self._filled(order_id, routed, msg, now))
        elif exec_type == "4":
            out.append(self._canceled(order_id, routed, self._requests.pop(venue_cl, (0, None))[1], now))
        elif exec_type == "5":
            out += self._replaced(order_id, routed, venue_cl, msg, now)
        elif exec_type == "8":
            text = _venue_text(msg, RejectReason.VENUE_REJECTED)
            out.append(self._rejected(order_id, routed.cmd, RejectReason.VENUE_REJECTED, text, now))
            del self._orders[order_id]
        elif exec_type == "C":
            out.append(self._expired(order_id, routed, now))
        elif exec_type != "0":
            log.warning("venue %s: ExecType %r not understood: %s", self.name, exec_type, dict(msg))
        return out

    def _status(self, order_id: int, routed: _Routed, msg: Received, now: int) -> list[Message]:
        """What the venue's answer to our status request changes (see RECONCILIATION in the module text). An
        answer not asked for, or resent, is history and changes nothing."""
        if order_id not in self._asked or msg.get(T.POSS_DUP_FLAG) == "Y":
            return []
        self._asked.discard(order_id)
        status = msg.get(T.ORD_STATUS, "")
        c = routed.cmd
        if status == "8" and msg.get(T.ORD_REJ_REASON) == "5" and routed.id_uncertain:
            log.error(
                "venue %s does not know order %d by its first ClOrdID, and it was replaced in an earlier "
                "run: it stays working, its exposure held, until the venue reports on it",
                self.name,
                order_id,
            )
            return []
        if status == "8" and msg.get(T.ORD_REJ_REASON) == "5":  # unknown order: the venue does not hold it
            log.warning("venue %s does not know order %d: it ends here", self.name, order_id)
            if not routed.accepted:
                del self._orders[order_id]
                text = f"venue {self.name} does not know the order"
                return [self._rejected(order_id, c, RejectReason.VENUE_REJECTED, text, now)]
            return [self._canceled(order_id, routed, CancelReason.VENUE_LOST, now)]
        out: list[Message] = []
        if status != "8" and not routed.accepted:
            out.append(self._accepted(order_id, routed, now))
        cum = to_units(msg.get(T.CUM_QTY, "0"), routed.inst.qty_precision, field="CumQty")
        if cum > routed.cum_qty:  # fills the OMS never got (the session's resend did not bring them)
            qty = cum - routed.cum_qty
            price = _average_price(msg, routed, cum, qty)
            leaves = max(routed.qty - cum, 0)  # what is left of the order after them; its status says the rest
            log.warning("venue %s: order %d filled %d more than reported: booked at their average price %d",
                        self.name, order_id, qty, price)  # fmt: skip
            out.append(self._fill(order_id, routed, qty, price, leaves, True, now))
        if order_id not in self._orders:  # filled now
            return out
        if status == "8" and not routed.accepted:
            del self._orders[order_id]
            text = _venue_text(msg, RejectReason.VENUE_REJECTED)
            return [self._rejected(order_id, c, RejectReason.VENUE_REJECTED, text, now)]
        if status in ("3", "4", "8"):  # done for day, canceled, rejected after its ack
            out.append(self._canceled(order_id, routed, None, now))
        elif status == "C":
            out.append(self._expired(order_id, routed, now))
        return out

    @staticmethod
    def _counted(routed: _Routed, msg: Received) -> bool:
        """True when a fill report's CumQty is no more than what the OMS already counted for the order."""
        cum = msg.get(T.CUM_QTY)
        return cum is not None and to_units(cum, routed.inst.qty_precision, field="CumQty") <= routed.cum_qty

    def _accepted(self, order_id: int, routed: _Routed, now: int) -> OrderAccepted:
        routed.accepted = True
        c = routed.cmd
        return OrderAccepted(
            order_id, c.cl_ord_id, c.account, c.symbol, c.side, c.ord_type, c.tif, c.qty, c.price, now, c.stop_price,
            c.session, c.parent_id, self.name,
        )  # fmt: skip

    def _filled(self, order_id: int, routed: _Routed, msg: Received, now: int) -> OrderFilled:
        inst = routed.inst
        qty, price = parse_qty(inst, msg[T.LAST_QTY]), parse_price(inst, msg[T.LAST_PX])
        leaves = to_units(msg[T.LEAVES_QTY], inst.qty_precision, field="LeavesQty")
        aggressor = msg.get(T.LAST_LIQUIDITY_IND) != "1"  # 1: added liquidity; unknown counts as taking it
        return self._fill(order_id, routed, qty, price, leaves, aggressor, now)

    def _fill(
        self, order_id: int, routed: _Routed, qty: int, price: int, leaves: int, aggressor: bool, now: int
    ) -> OrderFilled:
        routed.cum_qty += qty
        routed.cum_notional += qty * price
        if leaves == 0:
            del self._orders[order_id]
        c = routed.cmd
        return OrderFilled(
            order_id, routed.cl_ord_id, c.account, c.symbol, next(self._exec_ids), c.side, qty, price, leaves,
            routed.cum_qty, routed.cum_notional, aggressor, now, None, self.name,
        )  # fmt: skip

    def _canceled(self, order_id: int, routed: _Routed, request: Request | None, now: int) -> OrderCanceled:
        del self._orders[order_id]
        c, left = routed.cmd, routed.qty - routed.cum_qty
        if isinstance(request, CancelOrder):
            return OrderCanceled(order_id, request.cl_ord_id, c.account, c.symbol, CancelReason.USER, left, now,
                                 routed.cl_ord_id)  # fmt: skip
        reason = request if isinstance(request, CancelReason) else CancelReason.VENUE
        return OrderCanceled(order_id, routed.cl_ord_id, c.account, c.symbol, reason, left, now)

    def _expired(self, order_id: int, routed: _Routed, now: int) -> OrderExpired:
        del self._orders[order_id]
        c = routed.cmd
        return OrderExpired(order_id, routed.cl_ord_id, c.account, c.symbol, routed.qty - routed.cum_qty, now)

    def _replaced(self, order_id: int, routed: _Routed, venue_cl: str, msg: Received, now: int) -> list[Message]:
        request = self._requests.pop(venue_cl, (0, None))[1]
        if not isinstance(request, ReplaceOrder):
            log.warning("venue %s: Replaced without a replace of ours: %s", self.name, dict(msg))
            return []
        orig = routed.cl_ord_id
        routed.cl_ord_id, routed.qty, routed.price = request.cl_ord_id, request.qty, request.price
        routed.venue_cl = venue_cl
        leaves = to_units(msg[T.LEAVES_QTY], routed.inst.qty_precision, field="LeavesQty")
        if leaves == 0:
            del self._orders[order_id]
        c = routed.cmd
        return [OrderReplaced(order_id, request.cl_ord_id, orig, c.account, c.symbol, request.qty, request.price,
                              leaves, now)]  # fmt: skip

    def _business_reject(self, msg: Received) -> list[Message]:
        venue_cl = msg.get(T.BUSINESS_REJECT_REF_ID, "")
        text = _venue_text(msg, RejectReason.VENUE_REJECTED)
        now = self._clock()
        if venue_cl in self._requests:
            order_id, request = self._requests.pop(venue_cl)
            return self._cancel_rejected(order_id, request, RejectReason.VENUE_REJECTED, text, now)
        order_id = _order_id(venue_cl)
        routed = self._orders.get(order_id)
        if routed is None or routed.accepted:
            log.error("venue %s: BusinessMessageReject: %s", self.name, dict(msg))
            return []
        del self._orders[order_id]
        return [self._rejected(order_id, routed.cmd, RejectReason.VENUE_REJECTED, text, now)]

    def _cancel_rejected(
        self, order_id: int, request: Request, reason: RejectReason, text: str, now: int
    ) -> list[Message]:
        if isinstance(request, CancelReason):  # the OMS's own withdraw: no client is waiting for an answer
            log.warning("venue %s refused to cancel order %d (%s): %s", self.name, order_id, request.name, text)
            return []
        return self._refused(order_id, request, reason, text, now)

    # -- INTERNALS --

    def _request(self, order_id: int, request: Request, ts_ns: int) -> list[Message]:
        routed = self._orders.get(order_id)
        if routed is None:
            if isinstance(request, CancelReason):
                return []
            reason = RejectReason.TOO_LATE_TO_CANCEL
            return self._refused(order_id, request, reason, describe(reason), ts_ns)
        if not self.connected:
            if isinstance(request, CancelReason):
                log.error("venue %s not connected: order %d not withdrawn (%s)", self.name, order_id, request.name)
                return []
            return self._refused(order_id, request, RejectReason.VENUE_UNAVAILABLE, self._unavailable(), ts_ns)
        venue_cl, orig = f"{order_id}-{next(routed.requests)}", routed.venue_cl
        c, inst = routed.cmd, routed.inst
        fields = [(T.CL_ORD_ID, venue_cl), (T.ORIG_CL_ORD_ID, orig), *self._account(), (T.SYMBOL, c.symbol),
                  (T.SIDE, SIDE_CHARS[c.side])]  # fmt: skip
        if isinstance(request, ReplaceOrder):
            fields += [(T.HANDL_INST, "1"), (T.ORDER_QTY, format_qty(inst, request.qty)),
                       (T.ORD_TYPE, ORD_TYPE_CHARS[c.ord_type])]  # fmt: skip
            if request.price is not None:
                fields.append((T.PRICE, format_price(inst, request.price)))
            msg_type = T.MT_ORDER_CANCEL_REPLACE_REQUEST
        else:
            fields.append((T.ORDER_QTY, format_qty(inst, routed.qty)))
            msg_type = T.MT_ORDER_CANCEL_REQUEST
        fields.append((T.TRANSACT_TIME, utc_timestamp(ts_ns)))
        self._requests[venue_cl] = (order_id, request)
        if self._send(msg_type, fields):
            return []
        del self._requests[venue_cl]
        if isinstance(request, CancelReason):
            return []
        return self._refused(order_id, request, RejectReason.VENUE_UNAVAILABLE, self._unavailable(), ts_ns)

    def _send(self, msg_type: str, fields: list[tuple[int, str]]) -> bool:
        try:
            self._client.send(msg_type, fields)
        except ConnectionError:  # logged out between the check and the send
            return False
        return True

    def _account(self) -> list[tuple[int, str]]:
        return [(T.ACCOUNT, self._settings.account)] if self._settings.account else []

    def _unavailable(self) -> str:
        return f"venue {self.name} not connected"

    @staticmethod
    def _rejected(order_id: int, cmd: SubmitOrder, reason: RejectReason, text: str, ts_ns: int) -> OrderRejected:
        return OrderRejected.of(cmd, order_id, reason, text, ts_ns)

    @staticmethod
    def _refused(
        order_id: int, request: CancelOrder | ReplaceOrder, reason: RejectReason, text: str, ts_ns: int
    ) -> list[Message]:
        response_to = "cancel" if isinstance(request, CancelOrder) else "replace"
        return [CancelRejected(order_id, request.cl_ord_id, request.orig_cl_ord_id, request.account, request.symbol,
                               reason, text, response_to, ts_ns)]  # fmt: skip


def _order_id(venue_cl_ord_id: str) -> int:
    """The OMS order id a venue ClOrdID (`<order id>` or `<order id>-<n>`) names; 0 for anything else."""
    head = venue_cl_ord_id.partition("-")[0]
    return int(head) if head.isdigit() else 0


def _is_status(msg: Received) -> bool:
    """True for an ExecutionReport answering a status request (4.4 ExecType I, 4.2 ExecTransType Status)."""
    return msg.get(T.EXEC_TYPE) == "I" or msg.get(T.EXEC_TRANS_TYPE) == "3"


def _average_price(msg: Received, routed: _Routed, cum: int, qty: int) -> int:
    """The price (in price units, rounded) of the last `qty` of `cum` filled, from the venue's AvgPx over all
    `cum` and the notional the OMS already counted."""
    try:
        avg = Decimal(msg[T.AVG_PX]) * 10**routed.inst.price_precision
    except InvalidOperation:
        raise ValueError(f"AvgPx {msg[T.AVG_PX]!r} is not a number") from None
    return round((avg * cum - routed.cum_notional) / qty)


def _venue_text(msg: Received, reason: RejectReason) -> str:
    text = msg.get(T.TEXT)
    return f"{describe(reason)}: {text}" if text else describe(reason)
