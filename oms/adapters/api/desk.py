"""`OrderDesk`: the API's side of the OMS core. It turns requests into commands run on the `Sequencer` (under
the engine's lock), answers with the order as it stands after the step, and subscribes to the host's reports for
the executions list, the WebSocket streams and the counters, whichever adapter's order an event belongs to.

Orders entered here belong to session `REST:<key id>`; ClOrdIDs (`client_order_id`) are unique per session and
generated when the client sends none. Cancels and replaces name the order by its OrderID and go to the session the
order belongs to, so a trader (or an admin) can cancel an order of one of its accounts that came over FIX.

The engine follows FIX: every cancel and replace carries a ClOrdID of its own, and a replace moves the order to it.
A REST client keeps its id instead: a cancel, or a replace whose body names no new `client_order_id`, gets an
internal ClOrdID `~<kind><n>~<client's id>` (a client's id never starts with '~'), and the answers show the
client's id, read back from it. So the client's id survives a restart with the journal, with no state of its own.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from fractions import Fraction
from typing import TypeVar

import msgspec

from oms.adapters.api.errors import ApiError, reason_error
from oms.adapters.api.keys import PERMISSIONS, ApiKey, Permission
from oms.adapters.api.metrics import ApiMetrics
from oms.adapters.api.schemas import (
    EventOut,
    ExecutionOut,
    KillSwitchOut,
    LimitsChange,
    OrderOut,
    OrderRequest,
    ReplaceRequest,
    TradingStateOut,
)
from oms.core.engine import OrderManager
from oms.core.model.enums import CancelReason, OrdStatus, OrdType, RejectReason, Side, TimeInForce, TradingState
from oms.core.model.instruments import (
    TOO_LARGE,
    Instrument,
    InstrumentRegistry,
    format_price,
    format_qty,
    parse_price,
    parse_qty,
)
from oms.core.model.messages import (
    CancelOrder,
    CancelRejected,
    ChangePending,
    Message,
    OperatorAction,
    OrderAccepted,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderReplaced,
    OrderTriggered,
    ReplaceOrder,
    SubmitOrder,
)
from oms.core.model.numbers import InvalidValue, from_units
from oms.core.orders import TERMINAL, Order, OrderView
from oms.runtime.sequencer import Reports, Sequencer
from risk.limits import AccountLimits
from risk.money import parse_money

__all__ = [
    "OrderDesk",
    "avg_px_text",
    "client_id",
    "lower_name",
    "page_token",
    "price_units",
    "qty_units",
    "read_page_token",
    "rfc3339",
    "role_forbidden",
]

AVG_PX_EXTRA_DIGITS = 6  # like FIX AvgPx: digits beyond the instrument's price precision
_SIDE = {"buy": Side.BUY, "sell": Side.SELL}
_ORD_TYPE = {"market": OrdType.MARKET, "limit": OrdType.LIMIT, "stop": OrdType.STOP, "stop_limit": OrdType.STOP_LIMIT}
_TIF = {
    "day": TimeInForce.DAY,
    "gtc": TimeInForce.GTC,
    "ioc": TimeInForce.IOC,
    "fok": TimeInForce.FOK,
    "gtd": TimeInForce.GTD,
}
_WITH_PRICE = frozenset({OrdType.LIMIT, OrdType.STOP_LIMIT})
_WITH_STOP = frozenset({OrdType.STOP, OrdType.STOP_LIMIT})
_UNAVAILABLE = frozenset({RejectReason.SHUTTING_DOWN, RejectReason.NOT_READY})  # 503: send it again later
CONFIRM_TIMEOUT_S = 5.0  # how long a REST command waits for the journal to confirm it before answering 504
T = TypeVar("T")
_STREAMED = (
    OrderAccepted,
    OrderRejected,
    OrderFilled,
    OrderCanceled,
    OrderReplaced,
    OrderExpired,
    CancelRejected,
    ChangePending,
    OrderTriggered,
)
_json = msgspec.json.Encoder()
_STATUS_SETS: dict[str, frozenset[OrdStatus] | None] = {
    "open": frozenset(s for s in OrdStatus if s not in TERMINAL),
    "closed": frozenset(TERMINAL),
    "all": None,
}
_TOKEN_PREFIX = "o1."  # the page token's version: a token of another shape is refused, never misread
_INTERNAL = "~"  # the first character of the ClOrdIDs the desk makes for a client's cancels and replaces


def client_id(session: str, cl_ord_id: str) -> str:
    """The id a client knows an order (or an event of it) by: a REST order's internal ClOrdID
    (`~<kind><n>~<client's id>`) read back to the client's id; any other ClOrdID (a FIX session's) as it is."""
    if cl_ord_id.startswith(_INTERNAL) and session.startswith("REST:"):
        parts = cl_ord_id.split(_INTERNAL, 2)
        if len(parts) == 3:
            return parts[2]
    return cl_ord_id


def rfc3339(ts_ns: int | None) -> str | None:
    """Epoch nanoseconds as RFC 3339 UTC with all nine fraction digits (`2026-12-06T19:24:43.123456789Z`), so the
    texts sort as the times do; None stays None."""
    if ts_ns is None:
        return None
    seconds, nanos = divmod(ts_ns, 1_000_000_000)
    return f"{datetime.fromtimestamp(seconds, UTC):%Y-%m-%dT%H:%M:%S}.{nanos:09d}Z"


def page_token(last_order_id: int, direction: str) -> str:
    """The opaque cursor after `last_order_id` in `direction` (asc or desc)."""
    raw = f"{_TOKEN_PREFIX}{direction}.{last_order_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def read_page_token(token: str, direction: str) -> int:
    """The order id a `page_token` continues after; 400 invalid_page_token when it is not one this API made, or
    was made for the other direction."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("ascii")
        version, made_for, last = raw.split(".")
        if f"{version}." != _TOKEN_PREFIX or made_for not in ("asc", "desc") or not last.isdigit():
            raise ValueError(raw)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ApiError(400, "invalid_page_token", "page_token is not a token this API returned") from None
    if made_for != direction:
        raise ApiError(400, "invalid_page_token", f"page_token was made for direction={made_for}, not {direction}")
    return int(last)


def lower_name(e: object) -> str:
    """An enum member's name in lower case: how the API writes enumerations."""
    return e.name.lower()  # type: ignore[attr-defined]


class _Extra(msgspec.Struct):
    """What an order's state machine does not keep but its REST view shows."""

    stop_price: int | None = None
    display_qty: int | None = None
    reject: RejectReason | None = None
    reject_text: str | None = None


class _Times:
    """When an order was created and last changed, filled and canceled (event times, epoch nanoseconds)."""

    __slots__ = ("canceled", "created", "filled", "updated")

    def __init__(self, ts_ns: int) -> None:
        self.created = self.updated = ts_ns
        self.filled: int | None = None
        self.canceled: int | None = None


STREAM_KEPT = 10_000  # frames of each streamed account kept for clients that resume


class _Stream:
    """One account's WebSocket stream: its frames numbered from 1, the last STREAM_KEPT kept, and its listeners.
    Used under the desk's state lock."""

    __slots__ = ("kept", "listeners", "seq")

    def __init__(self) -> None:
        self.seq = 0
        self.kept: deque[tuple[int, bytes]] = deque(maxlen=STREAM_KEPT)
        self.listeners: set[Callable[[bytes], None]] = set()

    def deliver(self, payload: bytes) -> None:
        """Number `payload` (a JSON object), keep it, and push it to every listener."""
        self.seq += 1
        frame = b'{"seq":%d,%s' % (self.seq, payload[1:])
        self.kept.append((self.seq, frame))
        for push in list(self.listeners):
            push(frame)

    def since(self, seq: int) -> list[bytes] | None:
        """The frames after `seq`; None when `seq` is ahead of the stream or frames after it are no longer kept."""
        if seq > self.seq or seq < self.seq - len(self.kept):
            return None
        return [frame for n, frame in self.kept if n > seq]


class OrderDesk:
    """Commands in, order views out; one per ApiServer."""

    def __init__(
        self,
        host: Sequencer,
        instruments: InstrumentRegistry,
        accounts: list[str],
        metrics: ApiMetrics,
        executions_kept: int = 100_000,
        record: Callable[[OperatorAction], None] | None = None,
    ) -> None:
        """`record`: keeps an operator's action with the running batch (`oms.infra.redis.records.RecordLog.add`), so
        it is durable before the answer leaves."""
        self.host = host
        self._record = record
        self.instruments = instruments
        self.accounts = frozenset(accounts)
        self.metrics = metrics
        self._executions: dict[str, deque[OrderFilled]] = {a: deque(maxlen=executions_kept) for a in accounts}
        self._extra: dict[int, _Extra] = {}
        self._times: dict[int, _Times] = {}
        self._streams: dict[str, _Stream] = {}  # an account's, from its first listener on
        self.stream_id = os.urandom(8).hex()  # this server's numbering of the streams: a resume names it
        self._prefix = f"api{os.getpid() % 1000:03d}{os.urandom(3).hex()}-"
        self._ids = itertools.count(1)
        self._state_lock = threading.Lock()  # streams and executions, read from the event loop
        self._held: list[tuple[_Stream, bytes]] = []  # frames of the batch running, not yet committed
        host.subscribe(self._on_reports, "rest")
        host.after_commit(self._seal)

    def close(self) -> None:
        self.host.unsubscribe(self._on_reports)
        self.host.remove_after_commit(self._seal)

    # -- ORDERS --

    def submit(self, key: ApiKey, req: OrderRequest, now_ns: int) -> OrderOut:
        """Validate `req` and run it; returns the order after the step (status `rejected` on a risk reject).
        Raises ApiError 400/403/409 for requests that never become orders, 503 while the OMS starts or stops."""
        return self.submit_order(key, req, now_ns, once=False)[0]

    def submit_order(self, key: ApiKey, req: OrderRequest, now_ns: int, once: bool) -> tuple[OrderOut, bool]:
        """`submit`, and whether the answer is a replay. `once`: the request's client_order_id was claimed by an
        Idempotency-Key, so when the session has an order with it already (this run's, or an earlier run's from the
        journal) the answer is that order, and True. Past capacity (`Sequencer.overloaded`) it raises 503
        system_busy at once, booking nothing."""
        clock = self.host.metrics.clock("rest")  # gateway in: counts oms_orders_in{channel="rest"}
        try:
            cmd, extra = self._command(key, req, now_ns)
        except ApiError as exc:
            if exc.status == 400:  # bad input, refused before the engine (the engine's rejects count themselves)
                self.host.metrics.reject(exc.code)
            clock.acked()
            raise
        session = key.session
        self._journal_check()
        if self.host.overloaded():  # past capacity: refused at once, like a FIX order (fix_gateway.handlers, OVERLOAD)
            self.host.metrics.reject(RejectReason.SYSTEM_BUSY)
            clock.acked()
            raise reason_error(503, RejectReason.SYSTEM_BUSY)

        def step(engine: OrderManager) -> tuple[OrderOut, bool] | ApiError:
            cl = cmd.cl_ord_id
            if cl:
                earlier = engine.find(session, cl)
                if earlier is not None and once:
                    return self._out(earlier, session), True
                if earlier is not None:
                    return reason_error(409, RejectReason.DUPLICATE_CL_ORD_ID, f"client_order_id {cl!r}")
                c = cmd
            else:
                while engine.find(session, cl := f"{self._prefix}{next(self._ids)}") is not None:
                    pass
                c = msgspec.structs.replace(cmd, cl_ord_id=cl)
            events = engine.submit(c, now_ns, clock)
            order = engine.find(session, cl)
            if order is None:  # refused before an order id was spent
                rej = next((e for e in events if isinstance(e, OrderRejected)), None)
                reason = rej.reason if rej is not None else RejectReason.INVALID_ORDER_ID
                return reason_error(503 if reason in _UNAVAILABLE else 400, reason)
            if extra is not None:
                self._extra[order.order_id] = extra
            for e in events:
                if isinstance(e, OrderRejected) and e.order_id == order.order_id:
                    self._note_reject(e)
            self._stamp_step(events, order)
            return self._out(order, session), False

        result = self._confirmed(step, f"order {cmd.cl_ord_id or '(generated id)'!r}")
        clock.acked()  # ack out: the answer is ready for the HTTP response
        if isinstance(result, ApiError):
            raise result
        return result

    def cancel(self, key: ApiKey, order_id: int, now_ns: int) -> OrderOut:
        """Cancel a working order of an account the key trades; 404 when it cannot see it, 409 when refused."""

        def step(engine: OrderManager) -> OrderOut | ApiError:
            order = self._visible(engine, key, order_id, Permission.TRADE)
            if isinstance(order, ApiError):
                return order
            if order.is_terminal:
                return reason_error(409, RejectReason.TOO_LATE_TO_CANCEL, f"order {order_id} is {order.status.value}")
            session = engine.session_of[order_id]
            cl = self._internal_id(engine, session, "c", order.cl_ord_id)
            cmd = CancelOrder(order.account, cl, order.cl_ord_id, order.symbol, order.side, now_ns, session)
            events = engine.cancel(cmd, now_ns)
            self._stamp_step(events, order)
            return self._refused(events) or self._out(order, session)

        return self._run(step)

    def replace(self, key: ApiKey, order_id: int, req: ReplaceRequest, now_ns: int) -> OrderOut:
        """Change a working order's total quantity and/or price; 409 (with the reason) when refused. The order keeps
        its client_order_id unless `req` names a new one (409 duplicate_cl_ord_id when the session used it before):
        the engine's replace gets an internal ClOrdID that carries the client's id (see the module's docstring)."""
        if req.qty is None and req.price is None:
            raise ApiError(400, "invalid_request", "a replace needs qty, price or both")

        def step(engine: OrderManager) -> OrderOut | ApiError:
            order = self._visible(engine, key, order_id, Permission.TRADE)
            if isinstance(order, ApiError):
                return order
            inst = self.instruments.by_symbol(order.symbol)
            assert inst is not None
            try:
                qty = order.qty if req.qty is None else qty_units(inst, req.qty, "qty")
                price = order.price
                if req.price is not None:
                    if order.ord_type not in _WITH_PRICE:
                        return reason_error(
                            400, RejectReason.INVALID_PRICE, f"a {lower_name(order.ord_type)} order has no limit price"
                        )
                    price = price_units(inst, req.price, "price")
            except ApiError as exc:
                return exc
            if order.is_terminal:
                return reason_error(409, RejectReason.TOO_LATE_TO_CANCEL, f"order {order_id} is {order.status.value}")
            session = engine.session_of[order_id]
            cl = req.client_order_id
            if cl is None:
                cl = self._internal_id(engine, session, "r", order.cl_ord_id)
            elif engine.find(session, cl) is not None:
                return reason_error(409, RejectReason.DUPLICATE_CL_ORD_ID, f"client_order_id {cl!r}")
            cmd = ReplaceOrder(
                order.account, cl, order.cl_ord_id, order.symbol, order.side, qty, price, now_ns, session
            )
            events = engine.replace(cmd, now_ns)
            self._stamp_step(events, order)
            return self._refused(events) or self._out(order, session)

        return self._run(step)

    def get(self, key: ApiKey, order_id: int) -> OrderOut:
        def step(engine: OrderManager) -> OrderOut | ApiError:
            order = self._visible(engine, key, order_id, Permission.READ_ORDERS)
            return order if isinstance(order, ApiError) else self._out(order, engine.session_of[order_id])

        return self._read(step)

    def by_client_order_id(self, key: ApiKey, client_order_id: str) -> OrderOut:
        """The order this key entered whose client_order_id is (or was, before a replace named a new one)
        `client_order_id`; orders of other keys and other adapters are not looked at. 404 unknown_order when
        there is none the key can still see."""

        def step(engine: OrderManager) -> OrderOut | ApiError:
            if Permission.READ_ORDERS not in PERMISSIONS[key.role]:
                return role_forbidden(key, Permission.READ_ORDERS)
            order = engine.find(key.session, client_order_id)
            if order is None or not key.may(Permission.READ_ORDERS, order.account):
                return ApiError(
                    404, "unknown_order", f"no order with client_order_id {client_order_id!r} from key {key.key_id!r}"
                )
            return self._out(order, key.session)

        return self._read(step)

    def list(
        self,
        key: ApiKey,
        account: str | None,
        status: str,
        symbol: str | None,
        limit: int,
        direction: str = "desc",
        token: str | None = None,
    ) -> tuple[list[OrderOut], str | None]:
        """At most `limit` orders of the accounts the key may read (or `account` only), in the order the OMS took
        them (order ids grow in that order): newest first (`direction` desc) or oldest first (asc), after the page
        `token` names. `status`: open, closed, all or one exact status. Returns them and the token of the next page
        (None when this is the last). 400 invalid_page_token for a token this API did not make (or made for the
        other direction)."""
        if account is not None:
            self.check_account(key, account, Permission.READ_ORDERS)
        elif Permission.READ_ORDERS not in PERMISSIONS[key.role]:
            raise role_forbidden(key, Permission.READ_ORDERS)
        wanted = _STATUS_SETS[status] if status in _STATUS_SETS else frozenset({OrdStatus(status)})
        after = None if token is None else read_page_token(token, direction)

        def step(engine: OrderManager) -> tuple[list[OrderOut], str | None]:
            out: list[OrderOut] = []
            ids: Iterable[int] = reversed(engine.orders) if direction == "desc" else engine.orders
            for oid in ids:
                if after is not None and (oid >= after if direction == "desc" else oid <= after):
                    continue
                o = engine.orders[oid]
                if (account is not None and o.account != account) or not key.sees(o.account):
                    continue
                if (wanted is not None and o.status not in wanted) or (symbol is not None and o.symbol != symbol):
                    continue
                if len(out) == limit:  # one more matches: there is a next page
                    return out, page_token(out[-1].order_id, direction)
                out.append(self._out(o, engine.session_of[oid]))
            return out, None

        return self._read(step)

    def kill_switch(self, key: ApiKey, account: str | None, on: bool, now_ns: int) -> KillSwitchOut:
        """Engage (cancelling the working orders) or release the kill switch of `account`, or of every account."""
        if account is None:
            if not key.may(Permission.KILL_SWITCH):
                raise ApiError(403, "forbidden", f"key {key.key_id!r} may not use the global kill switch")
        else:
            self.check_account(key, account, Permission.KILL_SWITCH)
        accounts = sorted(self.accounts) if account is None else [account]

        def step(engine: OrderManager) -> tuple[list[Message], list[int]]:
            events = engine.kill_switch(account, on, now_ns)
            if self._record is not None:
                self._record(OperatorAction("kill_switch", account or "", "on" if on else "off", key.session, now_ns))
            # what is still working now waits for a venue that answers later (a FIX venue)
            pending = [o.order_id for a in accounts for o in engine.working(account=a)] if on else []
            return events, pending

        events, pending = self.host.run(step)
        canceled = [e.order_id for e in events if isinstance(e, OrderCanceled) and e.reason == CancelReason.KILL_SWITCH]
        return KillSwitchOut(accounts, on, canceled, sorted(pending))

    def trading_state(self, key: ApiKey, account: str, state: TradingState, now_ns: int) -> TradingStateOut:
        """Halt (HALTED: no new order), reduce-only (REDUCING) or resume (ACTIVE) `account`, recorded as an
        operator action of `key`; its working orders stay (the kill switch is what cancels them)."""
        self.check_account(key, account, Permission.TRADING_STATE)

        def step(engine: OrderManager) -> None:
            engine.set_trading_state(account, state, now_ns)
            if self._record is not None:
                self._record(OperatorAction("trading_state", account, state.value, key.session, now_ns))

        self.host.run(step)
        return TradingStateOut(account, state.value)

    def set_limits(
        self, key: ApiKey, account: str, change: LimitsChange, read: Callable[[str], AccountLimits], now_ns: int
    ) -> None:
        """The account's limits now (`read`) with what `change` gives, judged from the account's next order on,
        recorded as an operator action of `key` (the fields changed, with their new values). 403/404 before anything
        is read; 400 when it changes nothing."""
        self.check_account(key, account, Permission.LIMITS)
        given = {k: v for k, v in msgspec.structs.asdict(change).items() if v is not None}
        if not given:
            raise ApiError(400, "invalid_request", "no limit given: name at least one to change")
        values: dict[str, int] = {}
        for field, value in given.items():
            if field == "window_ms":
                values["window_ns"] = value * 1_000_000
            elif isinstance(value, str):
                try:
                    values[field] = parse_money(value, field)
                except InvalidValue as exc:
                    raise ApiError(400, "invalid_request", f"{field}: {exc}") from None
            else:
                values[field] = value
        limits = msgspec.structs.replace(read(account), **values)
        detail = ",".join(f"{k}={v}" for k, v in sorted(given.items()))

        def step(engine: OrderManager) -> None:
            engine.set_limits(account, limits, now_ns)
            if self._record is not None:
                self._record(OperatorAction("limits", account, detail, key.session, now_ns))

        self.host.run(step)

    def visible_accounts(self, key: ApiKey) -> list[str]:
        """The accounts `key` may see, sorted."""
        return sorted(a for a in self.accounts if key.sees(a))

    # -- EXECUTIONS AND STREAMS --

    def executions(self, key: ApiKey, account: str, since_exec_id: int, limit: int) -> list[ExecutionOut]:
        """Fills of `account` seen since this server started, oldest first, exec_id > since_exec_id."""
        self.check_account(key, account, Permission.READ_ORDERS)
        with self._state_lock:
            fills = [f for f in self._executions[account] if f.exec_id > since_exec_id][:limit]
        return [self._execution(f) for f in fills]

    def listen(
        self, account: str, push: Callable[[bytes], None], since_seq: int | None = None, stream_id: str | None = None
    ) -> tuple[int, list[bytes] | None]:
        """`push(frame)` for every frame of `account`'s stream from now on (on the committer's thread, or the algo
        engine's), each a JSON object with its `seq` (1, 2, ... per account since this server started). Returns the
        stream's last seq, and, when `since_seq` is given, the frames after it to send first: None when they cannot
        all be given (`stream_id` is not this server's, `since_seq` is ahead of the stream, or frames after it are
        no longer kept: the client reads the orders again)."""
        with self.host.lock, self._state_lock:
            stream = self._streams.get(account)
            if stream is None:
                stream = self._streams[account] = _Stream()
            stream.listeners.add(push)
            if since_seq is None:
                return stream.seq, []
            if stream_id != self.stream_id:
                return stream.seq, None
            return stream.seq, stream.since(since_seq)

    def unlisten(self, account: str, push: Callable[[bytes], None]) -> None:
        with self.host.lock, self._state_lock:
            stream = self._streams.get(account)
            if stream is not None:
                stream.listeners.discard(push)  # its frames are still numbered and kept, for a client that resumes

    # -- STREAMS OF OTHER EVENTS --

    def push(self, account: str, payload: bytes) -> None:
        """Send `payload` (a JSON object) to `account`'s stream, numbered after its order events; call it with the
        host's lock held (the algo engine's listeners run under it)."""
        with self._state_lock:
            stream = self._streams.get(account)
            if stream is not None:
                stream.deliver(payload)

    # -- ACCESS --

    def check_account(self, key: ApiKey, account: str, permission: Permission) -> None:
        """403 when the key may not do `permission` on `account`, 404 when no such account exists."""
        if permission not in PERMISSIONS[key.role]:
            raise role_forbidden(key, permission)
        if not key.sees(account):
            raise ApiError(403, "forbidden", f"key {key.key_id!r} may not access account {account[:64]!r}")
        if account not in self.accounts:
            raise ApiError(404, "unknown_account", f"unknown account {account[:64]!r}")

    # -- INTERNALS --

    def _run(self, step: Callable[[OrderManager], OrderOut | ApiError]) -> OrderOut:
        self._journal_check()
        result = self._confirmed(step, "the request")
        if isinstance(result, ApiError):
            raise result
        return result

    def _journal_check(self) -> None:
        """503 journal_unavailable while the journal has not answered for MAX_JOURNAL_STALL_S (system_busy while the
        sequencer has been on one batch as long): nothing is taken."""
        reason = self.host.stalled()
        if reason is not RejectReason.NONE:
            raise reason_error(503, reason)

    def _confirmed(self, step: Callable[[OrderManager], T], what: str) -> T:
        """`host.run(step)`, or 504 not_confirmed once CONFIRM_TIMEOUT_S passed without the journal confirming it:
        the step ran (or will), and its outcome is journaled and published when the journal answers."""
        try:
            return self.host.run(step, timeout=CONFIRM_TIMEOUT_S)
        except TimeoutError:
            raise ApiError(
                504, "not_confirmed", f"{what} was taken but the journal did not confirm it within "
                f"{CONFIRM_TIMEOUT_S:g} s; its outcome is kept and shown once the journal answers (GET /v1/orders)",
            ) from None

    def _read(self, step):  # reads change nothing: no reports to publish
        with self.host.lock:
            result = step(self.host.engine)
        if isinstance(result, ApiError):
            raise result
        return result

    def _visible(self, engine: OrderManager, key: ApiKey, order_id: int, permission: Permission) -> Order | ApiError:
        if permission not in PERMISSIONS[key.role]:
            return role_forbidden(key, permission)
        order = engine.orders.get(order_id)
        if order is None or not key.may(permission, order.account):
            return ApiError(404, "unknown_order", f"no order {order_id} visible to key {key.key_id!r}")
        return order

    @staticmethod
    def _refused(events: list[Message]) -> ApiError | None:
        rej = next((e for e in events if isinstance(e, CancelRejected)), None)
        return None if rej is None else reason_error(409, rej.reason)

    def _internal_id(self, engine: OrderManager, session: str, kind: str, current: str) -> str:
        """A ClOrdID the session never used, for a cancel (`kind` "c") or replace ("r") of the order whose ClOrdID
        is `current`. On a REST session it carries the client's id, so the order keeps showing it; an order of a FIX
        session (canceled here by a trader of its account) gets a plain generated one, as its client knows no
        other form."""
        if not session.startswith("REST:"):
            while engine.find(session, cl := f"{self._prefix}{next(self._ids)}") is not None:
                pass
            return cl
        shown = client_id(session, current)
        while engine.find(session, cl := f"{_INTERNAL}{kind}{next(self._ids)}{_INTERNAL}{shown}") is not None:
            pass
        return cl

    def _command(self, key: ApiKey, req: OrderRequest, now_ns: int) -> tuple[SubmitOrder, _Extra | None]:
        self.check_account_for_order(key, req.account)
        inst = self.instruments.by_symbol(req.symbol)
        if inst is None:
            raise reason_error(400, RejectReason.UNKNOWN_SYMBOL, repr(req.symbol[:64]))
        ord_type, tif = _ORD_TYPE[req.ord_type], _TIF[req.tif]
        qty = qty_units(inst, req.qty, "qty")
        price = stop = display = None
        if ord_type in _WITH_PRICE:
            if req.price is None:
                raise reason_error(400, RejectReason.INVALID_PRICE, f"a {req.ord_type} order needs a price")
            price = price_units(inst, req.price, "price")
        elif req.price is not None:
            raise reason_error(400, RejectReason.INVALID_PRICE, f"a {req.ord_type} order takes no price")
        if ord_type in _WITH_STOP:
            if req.stop_price is None:
                raise reason_error(400, RejectReason.INVALID_STOP_PRICE, f"a {req.ord_type} order needs a stop_price")
            stop = price_units(inst, req.stop_price, "stop_price")
        elif req.stop_price is not None:
            raise reason_error(400, RejectReason.INVALID_STOP_PRICE, f"a {req.ord_type} order takes no stop_price")
        if req.display_qty is not None:
            display = qty_units(inst, req.display_qty, "display_qty")
            if display > qty:
                raise reason_error(400, RejectReason.INVALID_DISPLAY_QTY, "display_qty above qty")
        if (tif is TimeInForce.GTD) != (req.expire_at_ns is not None):
            raise reason_error(400, RejectReason.INVALID_TIF, "expire_at_ns goes with tif gtd, and only with it")
        if req.expire_at_ns is not None and req.expire_at_ns <= now_ns:
            raise reason_error(400, RejectReason.INVALID_TIF, f"expire_at_ns {req.expire_at_ns} is not in the future")
        cmd = SubmitOrder(
            req.account,
            req.client_order_id or "",
            req.symbol,
            _SIDE[req.side],
            ord_type,
            qty,
            price,
            stop,
            tif,
            display,
            req.expire_at_ns,
            now_ns,
            key.session,
        )
        extra = _Extra(stop, display) if stop is not None or display is not None else None
        return cmd, extra

    def check_account_for_order(self, key: ApiKey, account: str) -> None:
        if Permission.TRADE not in PERMISSIONS[key.role]:
            raise role_forbidden(key, Permission.TRADE)
        if not key.sees(account):
            raise ApiError(403, "forbidden", f"key {key.key_id!r} may not trade account {account[:64]!r}")
        if account not in self.accounts:
            raise reason_error(400, RejectReason.UNKNOWN_ACCOUNT, repr(account[:64]))

    def _out(self, o: Order, session: str) -> OrderOut:
        inst = self.instruments.by_symbol(o.symbol)
        assert inst is not None
        x = self._extra.get(o.order_id)
        t = self._times.get(o.order_id)
        return OrderOut(
            order_id=o.order_id,
            client_order_id=client_id(session, o.cl_ord_id),
            account=o.account,
            symbol=o.symbol,
            side=lower_name(o.side),
            ord_type=lower_name(o.ord_type),
            tif=lower_name(o.tif),  # type: ignore[arg-type]
            qty=format_qty(inst, o.qty),
            price=None if o.price is None else format_price(inst, o.price),
            stop_price=None if x is None or x.stop_price is None else format_price(inst, x.stop_price),
            display_qty=None if x is None or x.display_qty is None else format_qty(inst, x.display_qty),
            status=o.status.value,  # type: ignore[arg-type]
            cum_qty=format_qty(inst, o.cum_qty),
            leaves_qty=format_qty(inst, o.leaves_qty),
            avg_px=avg_px_text(inst, o.cum_notional, o.cum_qty),
            reject_code=None if x is None or x.reject is None else lower_name(x.reject),
            reject_reason=None if x is None else x.reject_text,
            session=session,
            created_at=None if t is None else rfc3339(t.created),
            updated_at=None if t is None else rfc3339(t.updated),
            filled_at=None if t is None else rfc3339(t.filled),
            canceled_at=None if t is None else rfc3339(t.canceled),
        )

    def _execution(self, f: OrderFilled) -> ExecutionOut:
        inst = self.instruments.by_symbol(f.symbol)
        assert inst is not None
        return ExecutionOut(
            exec_id=f.exec_id,
            order_id=f.order_id,
            client_order_id=client_id(self.host.engine.session_of.get(f.order_id, ""), f.cl_ord_id),
            account=f.account,
            symbol=f.symbol,
            side=lower_name(f.side),
            qty=format_qty(inst, f.qty),
            price=format_price(inst, f.price),  # type: ignore[arg-type]
            cum_qty=format_qty(inst, f.cum_qty),
            leaves_qty=format_qty(inst, f.leaves_qty),
            aggressor=f.aggressor,
            contra_order_id=f.contra_order_id,
            venue=f.venue,
            ts_ns=f.ts_ns,
        )

    # -- REPORTS (on the sequence; streamed once the batch is committed) --

    def _on_reports(self, reports: Reports) -> None:
        session_of = self.host.engine.session_of
        metrics = self.metrics
        for event, view in reports:
            if not isinstance(event, _STREAMED):
                continue
            oid = event.order_id
            session = session_of.get(oid, "")
            rest = session.startswith("REST:")
            if oid:
                self._stamp(event, None if view is None else view.status)
            if isinstance(event, OrderFilled):
                with self._state_lock:
                    log = self._executions.get(event.account)
                    if log is not None:
                        log.append(event)
                if rest:
                    metrics.fills.inc()
            elif isinstance(event, OrderAccepted):
                if rest:
                    metrics.acks.inc()
            elif isinstance(event, OrderRejected) and oid:
                self._note_reject(event)
                if rest:
                    metrics.rejects.labels(lower_name(event.reason)).inc()
            stream = self._streams.get(event.account)
            if stream is not None:
                self._held.append((stream, _json.encode(self._event(event, view, session))))

    def _seal(self) -> Callable[[], None] | None:
        """What the batch just run streamed, to push to the WebSocket listeners (in order) once it is durable."""
        if not self._held:
            return None
        held, self._held = self._held, []
        lock = self._state_lock

        def release() -> None:
            with lock:
                for stream, payload in held:
                    stream.deliver(payload)

        return release

    def replayed(self, event: Message, view: OrderView) -> None:
        """An event of an earlier run that `OrderManager.restore` applied (its `replayed` callback): the order's
        timestamps follow it as they did then. Without it, orders of earlier runs answer null timestamps."""
        if isinstance(event, _STREAMED) and event.order_id:
            self._stamp(event, view.status)

    def _stamp_step(self, events: list[Message], order: Order) -> None:
        """Stamp `order`'s times from the events its command just caused, before the answer is made (the reports
        that stamp them too are published after the step)."""
        mine = [e for e in events if isinstance(e, _STREAMED) and e.order_id == order.order_id]
        for i, e in enumerate(mine):
            self._stamp(e, order.status if i == len(mine) - 1 else None)

    def _stamp(self, e: Message, status: OrdStatus | None) -> None:
        """Note event `e` of an order (`status`: the order's status right after it, when known); hearing an event
        twice changes nothing."""
        ts = e.ts_ns  # type: ignore[union-attr]
        t = self._times.get(e.order_id)  # type: ignore[union-attr]
        if t is None:
            t = self._times[e.order_id] = _Times(ts)  # type: ignore[union-attr]
        t.created, t.updated = min(t.created, ts), max(t.updated, ts)
        if isinstance(e, OrderCanceled) and t.canceled is None:
            t.canceled = ts
        if status is OrdStatus.FILLED and isinstance(e, OrderFilled | OrderReplaced) and t.filled is None:
            t.filled = ts

    def _note_reject(self, e: OrderRejected) -> None:
        x = self._extra.get(e.order_id)
        if x is None:
            x = self._extra[e.order_id] = _Extra()
        x.reject, x.reject_text = e.reason, e.text

    def _event(self, e: Message, view: OrderView | None, session: str) -> EventOut:
        inst = self.instruments.by_symbol(e.symbol)  # type: ignore[union-attr]
        assert inst is not None
        fields: dict[str, object] = {}
        if view is not None:
            fields.update(
                status=view.status.value,
                cum_qty=format_qty(inst, view.cum_qty),
                leaves_qty=format_qty(inst, view.leaves_qty),
                avg_px=avg_px_text(inst, view.cum_notional, view.cum_qty),
            )
        match e:
            case OrderFilled():
                fields.update(
                    exec_id=e.exec_id,
                    side=lower_name(e.side),
                    last_qty=format_qty(inst, e.qty),
                    last_px=format_price(inst, e.price),
                    aggressor=e.aggressor,
                    venue=e.venue,
                )
            case OrderAccepted():
                fields.update(
                    side=lower_name(e.side),
                    qty=format_qty(inst, e.qty),
                    price=None if e.price is None else format_price(inst, e.price),
                )
            case OrderRejected() | CancelRejected():
                fields.update(reason_code=lower_name(e.reason), reason=e.text)
            case OrderCanceled():
                orig = client_id(session, e.orig_cl_ord_id) if e.orig_cl_ord_id else None
                fields.update(reason_code=lower_name(e.reason), orig_client_order_id=orig)
            case OrderReplaced():
                fields.update(
                    orig_client_order_id=client_id(session, e.orig_cl_ord_id),
                    qty=format_qty(inst, e.qty),
                    price=None if e.price is None else format_price(inst, e.price),
                )
            case ChangePending():
                fields.update(orig_client_order_id=client_id(session, e.orig_cl_ord_id))
            case OrderTriggered():
                fields.update(last_px=format_price(inst, e.last_price))
        return EventOut(
            type=type(e).__struct_config__.tag,
            order_id=e.order_id,
            client_order_id=client_id(session, e.cl_ord_id),  # type: ignore[union-attr]
            account=e.account,
            symbol=e.symbol,
            ts_ns=e.ts_ns,
            **fields,
        )  # type: ignore[union-attr,arg-type]


_VERB = {
    Permission.TRADE: "enter or change orders",
    Permission.READ_ORDERS: "read orders and executions",
    Permission.READ_POSITIONS: "read positions",
    Permission.READ_RISK: "read risk state and limits",
    Permission.KILL_SWITCH: "use the kill switch",
    Permission.TRADING_STATE: "halt, reduce or resume an account",
    Permission.LIMITS: "change an account's limits",
}


def role_forbidden(key: ApiKey, permission: Permission) -> ApiError:
    """The 403 for a key whose role lacks `permission`."""
    return ApiError(403, "forbidden", f"role {key.role.value!r} may not {_VERB[permission]}")


def avg_px_text(inst: Instrument, cum_notional: int, cum_qty: int) -> str | None:
    """The exact average cum_notional / cum_qty, rounded to AVG_PX_EXTRA_DIGITS beyond the price precision."""
    if not cum_qty:
        return None
    units = round(Fraction(cum_notional, cum_qty) * 10**AVG_PX_EXTRA_DIGITS)
    return from_units(units, inst.price_precision + AVG_PX_EXTRA_DIGITS)


def qty_units(inst: Instrument, text: str, field: str) -> int:
    """`text` as quantity units of `inst`; ApiError 400 (invalid_qty, off_lot) naming `field` otherwise."""
    try:
        return parse_qty(inst, text)
    except InvalidValue as exc:
        raise reason_error(400, exc.reason, _named(field, text, exc)) from None


def price_units(inst: Instrument, text: str, field: str) -> int:
    """`text` as price units of `inst`; ApiError 400 (invalid_price or invalid_stop_price for `stop_price`,
    off_tick) naming `field` otherwise."""
    try:
        return parse_price(inst, text)
    except InvalidValue as exc:
        reason = exc.reason
        if field == "stop_price" and reason is RejectReason.INVALID_PRICE:
            reason = RejectReason.INVALID_STOP_PRICE
        raise reason_error(400, reason, _named(field, text, exc)) from None


def _named(field: str, text: str, exc: InvalidValue) -> str:
    """The field and its value (cut to 64 characters), and "is too large" when that is what is wrong."""
    return f"{field} {text[:64]!r}" + (" is too large" if exc.problem == TOO_LARGE else "")
