"""A venue's market data over its FIX acceptor: the exchange simulator's sessions subscribe to the top of book and
the trades of its books (`fix_gateway.market_data` says what goes on the wire).

HOW IT STAYS IN STEP WITH THE BOOK
A MarketDataRequest is read on its session's reader thread and handed to the sequencer like an order: in the core's
sequence the publisher reads the requested books' tops and queues the request with them. After every step, in the
same sequence, it reads the top of each book the step touched and queues what changed, with the step's prints. One
thread of the publisher's own takes the queue in that order: it keeps the subscriptions, answers each request (its
snapshots or a MarketDataRequestReject) and sends each change to the subscriptions it concerns. So a subscriber's
snapshot and the updates after it never miss or repeat a change, each print is published once, and neither the
sequencer nor a reader thread ever waits on a subscriber's socket.

SESSIONS
A subscription lives as long as its session's logon: a new Logon of the session ends the ones it had, and so does
finding the session logged out when something is to be sent (nothing is queued for resend to a session that is not
there; a subscriber subscribes again at each logon). MDReqIDs are the subscriber's: a second live subscription under
the same MDReqID is rejected (MDReqRejReason 1); unsubscribing (SubscriptionRequestType 2) one that is not live is
answered with a MarketDataRequestReject without a reason.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, NamedTuple

import quickfix as fix

from fix_gateway import tags as T
from fix_gateway.codec import MAX_ID_LENGTH
from fix_gateway.gateway import FixGateway
from fix_gateway.market_data import EMPTY, MdCodec, MdRequest, Print, Top
from fix_gateway.settings import SessionSpec
from oms.core.model.instruments import Instrument, InstrumentRegistry
from oms.core.model.messages import TradePrinted
from oms.runtime.sequencer import Reports, Sequencer

__all__ = ["MarketDataGateway", "MarketDataPublisher"]

log = logging.getLogger("oms.fix.market_data")

TopOf = Callable[[str], Top]  # a symbol's top of book now (called in the core's sequence)
_ID_CHARS = re.compile("[!-~]+")  # as the gateway's ids: printable ASCII, no space


class _Request(NamedTuple):
    session: str
    request: MdRequest
    tops: dict[str, Top]
    ts_ns: int


class _Change(NamedTuple):
    changes: list[tuple[str, Instrument, list[Print], Top, Top, int]]  # (symbol, ..., top before, top after, ts)


class _Logon(NamedTuple):
    session: str


class _Answer(NamedTuple):
    session: str
    msg: Any


class _Subscription(NamedTuple):
    symbols: frozenset[str]
    types: frozenset[str]


class MarketDataPublisher:
    """The market data of the books behind `host`, to the sessions of `specs` that subscribe (see the module text).
    `top_of(symbol)` reads a book's top; every symbol of `instruments` has a book."""

    def __init__(
        self,
        host: Sequencer,
        instruments: InstrumentRegistry,
        specs: Iterable[SessionSpec],
        top_of: TopOf,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self._host = host
        self._instruments = instruments
        self._top_of = top_of
        self._clock = clock
        self._specs = {s.name: s for s in specs}
        self._codecs = {name: MdCodec(s.begin_string) for name, s in self._specs.items()}
        self._session_ids = {
            name: fix.SessionID(s.begin_string, s.sender_comp_id, s.target_comp_id) for name, s in self._specs.items()
        }
        self._last: dict[str, Top] = {}  # each book's top as last queued (in the core's sequence)
        self._subs: dict[str, dict[str, _Subscription]] = {}  # by session, by MDReqID (the publisher's thread)
        self._queue: queue.SimpleQueue[_Request | _Change | _Logon | _Answer | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    # -- LIFECYCLE --

    def start(self) -> None:
        """Follow the books (every step's reports) and start the thread that answers and publishes."""
        if self._thread is not None:
            return
        self._host.subscribe(self._on_reports, "market data")
        self._thread = threading.Thread(target=self._run, name="market-data", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Send what is queued (to sessions still logged on), then stop. Safe to call twice."""
        if self._thread is None:
            return
        self._host.unsubscribe(self._on_reports)
        self._queue.put(None)
        self._thread.join(timeout_s)
        self._thread = None

    # -- ON A READER THREAD --

    def on_request(self, msg: Any, session_id: Any) -> None:
        """A MarketDataRequest: read here, then queued in the core's sequence with the tops it asks for. A field it
        needs that is missing raises `fix.FieldNotFound` (the gateway answers it with a session Reject)."""
        name = session_id.toString()
        request = self._codecs[name].read_request(msg)
        if request.problem is None and request.kind != T.UNSUBSCRIBE:
            unknown = [s for s in request.symbols if self._instruments.by_symbol(s) is None]
            if unknown:
                request = request._replace(problem=(T.MD_REJ_UNKNOWN_SYMBOL, f"unknown symbol {unknown[0]!r}"))
        self._host.post(lambda _: self._queue_request(name, request), lambda exc: self._failed(name, request, exc))

    def on_logon(self, session: str) -> None:
        """Session `session` is logging on: the subscriptions of its earlier logon end (in sequence, so a request
        of the new logon is never dropped with them)."""

        def failed(exc: Exception) -> None:
            log.error("market data: the logon of %s not taken into account", session, exc_info=exc)

        self._host.post(lambda _: self._queue.put(_Logon(session)), failed)

    # -- IN THE CORE'S SEQUENCE --

    def _queue_request(self, session: str, request: MdRequest) -> None:
        tops: dict[str, Top] = {}
        if request.problem is None and request.kind != T.UNSUBSCRIBE:
            for symbol in request.symbols:
                tops[symbol] = self._last[symbol] = self._top_of(symbol)
        self._queue.put(_Request(session, request, tops, self._clock()))

    def _on_reports(self, reports: Reports) -> None:
        """The tops of the books the step touched that changed, and its prints, queued as one change."""
        touched: dict[str, list[Print]] = {}
        for event, _ in reports:
            symbol = getattr(event, "symbol", None)
            if symbol is None:
                continue
            prints = touched.setdefault(symbol, [])
            if isinstance(event, TradePrinted):
                prints.append(Print(str(event.match_id), event.price, event.qty, event.ts_ns))
        if not touched:
            return
        now = self._clock()
        changes = []
        for symbol, prints in touched.items():
            inst = self._instruments.by_symbol(symbol)
            if inst is None:
                continue
            top = self._top_of(symbol)
            before = self._last.get(symbol, EMPTY)
            if top != before or prints:
                self._last[symbol] = top
                changes.append((symbol, inst, prints, before, top, now))
        if changes:
            self._queue.put(_Change(changes))

    def _failed(self, session: str, request: MdRequest, exc: Exception) -> None:
        log.error("market data request %s of %s failed: %s", request.req_id, session, exc, exc_info=exc)
        reply = self._codecs[session].reject(request.req_id, None, f"internal error ({type(exc).__name__})")
        self._queue.put(_Answer(session, reply))

    # -- THE PUBLISHER'S THREAD --

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            try:
                match item:
                    case _Request():
                        self._answer(item)
                    case _Change():
                        self._publish(item)
                    case _Logon():
                        if self._subs.pop(item.session, None):
                            log.info("%s logged on again: its market data subscriptions ended", item.session)
                    case _Answer():
                        self._send(item.session, item.msg)
            except Exception:  # a bug here must not end the publishing for every subscriber; it is logged
                log.exception("market data: failed to handle %r", item)

    def _answer(self, item: _Request) -> None:
        session, request = item.session, item.request
        codec = self._codecs[session]
        subs = self._subs.setdefault(session, {})
        if request.kind == T.UNSUBSCRIBE:
            if subs.pop(request.req_id, None) is None:
                self._send(session, codec.reject(request.req_id, None, f"no subscription {request.req_id!r}"))
            return
        if request.problem is not None:
            self._send(session, codec.reject(request.req_id, *request.problem))
            return
        if request.req_id in subs:
            reply = codec.reject(request.req_id, T.MD_REJ_DUPLICATE_REQ_ID, f"MDReqID {request.req_id!r} in use")
            self._send(session, reply)
            return
        if request.kind == T.SUBSCRIBE_UPDATES:
            subs[request.req_id] = _Subscription(frozenset(request.symbols), request.entry_types)
        for symbol in request.symbols:
            inst = self._instruments.by_symbol(symbol)
            assert inst is not None  # unknown symbols were rejected on the reader thread
            msg = codec.snapshot(request.req_id, symbol, inst, item.tops[symbol], request.entry_types, item.ts_ns)
            if not self._send(session, msg):
                return

    def _publish(self, item: _Change) -> None:
        for session, subs in list(self._subs.items()):
            codec = self._codecs[session]
            for req_id, sub in list(subs.items()):
                mine = [c for c in item.changes if c[0] in sub.symbols]
                msg = codec.update(req_id, mine, sub.types) if mine else None
                if msg is not None and not self._send(session, msg):
                    break

    def _send(self, session: str, msg: Any) -> bool:
        """Send `msg` to `session` if it is logged on; else end its subscriptions (see SESSIONS) and say False."""
        sid = self._session_ids[session]
        live = fix.Session.lookupSession(sid)
        if live is not None and live.isLoggedOn() and fix.Session.sendToTarget(msg, sid):
            return True
        if self._subs.pop(session, None):
            log.info("%s is not logged on: its market data subscriptions ended", session)
        return False


class MarketDataGateway(FixGateway):
    """A FixGateway whose sessions may also subscribe to the market data of its books (`MarketDataPublisher`):
    MarketDataRequest, which the plain gateway refuses as an unsupported message type, goes to the publisher; every
    other message is the gateway's. `top_of(symbol)` reads a book's top in the core's sequence."""

    def __init__(
        self,
        host: Sequencer,
        instruments: InstrumentRegistry,
        sessions: Iterable[SessionSpec],
        port: int,
        data_dir: str | Path,
        generation: int,
        top_of: TopOf,
    ) -> None:
        sessions = list(sessions)
        super().__init__(host, instruments, sessions, port, data_dir, generation)
        self.market_data = MarketDataPublisher(host, instruments, sessions, top_of)

    def start(self) -> None:
        """Start publishing, then listen (see `FixGateway.start`)."""
        self.market_data.start()
        try:
            super().start()
        except BaseException:
            self.market_data.stop()
            raise

    def stop(self, cancel_working: bool = True) -> None:
        """Stop the sessions (see `FixGateway.stop`), then the publishing."""
        super().stop(cancel_working)
        self.market_data.stop()

    def on_unsupported(self, msg: Any, session_id: Any) -> None:
        """MarketDataRequest to the publisher (an MDReqID out of bounds gets a session Reject, SessionRejectReason 5,
        as any id the gateway would echo); any other message type the gateway does not serve is refused."""
        if msg.getHeader().getField(T.MSG_TYPE) != T.MT_MARKET_DATA_REQUEST:
            return super().on_unsupported(msg, session_id)
        req_id = msg.getField(T.MD_REQ_ID)
        if len(req_id) > MAX_ID_LENGTH or not _ID_CHARS.fullmatch(req_id):
            text = f"MDReqID ({T.MD_REQ_ID}) must be 1 to {MAX_ID_LENGTH} printable ASCII characters without spaces"
            return self._session_reject(msg, session_id.toString(), T.MD_REQ_ID, T.SESSION_REJECT_VALUE_INCORRECT,
                                        text)  # fmt: skip
        return self.market_data.on_request(msg, session_id)

    def check_logon(self, msg: Any, session_id: Any) -> None:
        """The gateway's Logon check; a Logon it lets through ends the session's earlier subscriptions."""
        super().check_logon(msg, session_id)
        self.market_data.on_logon(session_id.toString())
