"""A FIX venue's market data, read by the OMS's venue adapter (`fix_gateway.venue`) and handed to a `MarketSink`
(the market tape) as quotes and trade prints.

SUBSCRIBING. At each logon of the venue session, once the session has caught up (see `FixClient.on_synced`), the
feed sends a MarketDataRequest (snapshot + incremental updates, top of book, bids, offers and trades) for the symbols
routed to the venue, under an MDReqID no earlier logon or run used. The venue answers with a snapshot per symbol,
then updates (`fix_gateway.market_data`); a MarketDataRequestReject, or a BusinessMessageReject of the request
(a venue that publishes no market data), is logged, and the feed asks again at the next logon.

OFF THE ORDER PATH. QuickFIX's reader thread for the session only queues the market data messages (one `put`); a
thread of the feed's own reads them, keeps each symbol's top, and hands what changed to the sink, whose calls must
return at once (the tape's writer queues them for its own thread). Nothing here takes the engine's lock or waits on
the sequencer, and a failure here is logged, never raised into the session.

WHAT GOES TO THE SINK
- A quote per snapshot, and per update message for each symbol whose top it changed: the venue's name, the symbol,
  bid and ask in the instrument's units (an empty side: size 0), at the entries' MDEntryDate/MDEntryTime (the
  venue's clock; the OMS's clock when the venue sends no time).
- A trade print per trade entry: its MDEntryID as match id (the number itself when it is one below 2^63, else a
  stable hash of it; without an MDEntryID, a hash of the symbol, time, price and size), so the same print has the
  same id in every run and the store keeps it once per (venue, match id). The aggressor side, which FIX 4.2 and 4.4
  market data does not carry, is inferred (Lee and Ready's rule): a print at or above the venue's best offer just
  before it was bought, at or below the best bid sold; between them, above or below the mid; at the mid or without a
  quote, the tick rule against the symbol's previous print (up: bought, down: sold, unchanged: as the previous one);
  bought when nothing tells.
- A resent update (PossDupFlag) is history: its quotes are ignored (the next logon's snapshot gives the book as it
  stands), its prints are taken, each once per run by its id.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from fix_gateway import tags as T
from fix_gateway.client import Received
from fix_gateway.market_data import EMPTY, MdCodec, Top, entries, fields, match_id, parse_md_time
from oms.core.model.enums import Side
from oms.core.model.instruments import InstrumentRegistry, parse_price, parse_qty
from oms.core.model.messages import TradePrinted

__all__ = ["MARKET_DATA_TYPES", "MarketSink", "VenueMarketData", "is_market_data"]

log = logging.getLogger("oms.venue.market_data")

MARKET_DATA_TYPES = frozenset(
    {T.MT_MARKET_DATA_SNAPSHOT, T.MT_MARKET_DATA_INCREMENTAL, T.MT_MARKET_DATA_REQUEST_REJECT}
)
SEEN_PRINTS = 100_000  # print ids remembered per venue, to take a resent print once
_SUBSCRIBE = "subscribe"


class MarketSink(Protocol):
    """Where a venue's market data goes (the market tape). Both calls return at once, from any thread."""

    def quote(self, venue: str, symbol: str, bid: int, bid_qty: int, ask: int, ask_qty: int, ts_ns: int) -> None:
        """`venue`'s top of book of `symbol` at `ts_ns`, in the instrument's units (an empty side: qty 0)."""
        ...

    def trade(self, trade: TradePrinted) -> None:
        """A print on the venue."""
        ...


def is_market_data(msg: Received) -> bool:
    """True for a message of the market data flow: a snapshot, an update, a request reject, or a
    BusinessMessageReject of a MarketDataRequest."""
    return msg.msg_type in MARKET_DATA_TYPES or (
        msg.msg_type == T.MT_BUSINESS_MESSAGE_REJECT and msg.get(T.REF_MSG_TYPE) == T.MT_MARKET_DATA_REQUEST
    )


class VenueMarketData:
    """The market data of venue `venue` for `symbols`, from its session's messages to `sink` (see the module text).
    `send` sends a message on the session (raising ConnectionError when it is not logged on); `run` makes this
    run's MDReqIDs its own (give each start its own number)."""

    def __init__(
        self,
        venue: str,
        begin_string: str,
        instruments: InstrumentRegistry,
        symbols: Iterable[str],
        sink: MarketSink,
        send: Callable[[Any], None],
        run: int,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        """Raises ValueError for a symbol `instruments` does not know."""
        self.venue = venue
        self.symbols = tuple(dict.fromkeys(symbols))
        unknown = [s for s in self.symbols if instruments.by_symbol(s) is None]
        if unknown:
            raise ValueError(f"venue {venue}: market data for unknown symbol {unknown[0]!r}")
        self._instruments = instruments
        self._codec = MdCodec(begin_string)
        self._sink = sink
        self._send = send
        self._run = run
        self._clock = clock
        self._requests = 0
        self._req_id: str | None = None  # the live subscription's (this logon's)
        self._tops: dict[str, Top] = {}  # per symbol, once its snapshot came
        self._last_print: dict[str, tuple[int, Side]] = {}  # per symbol: price and aggressor of its last print
        self._seen: OrderedDict[int, None] = OrderedDict()
        self._queue: queue.SimpleQueue[Received | str | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    # -- LIFECYCLE --

    def top(self, symbol: str) -> Top | None:
        """`symbol`'s top of book as the venue's market data last showed it (None before its snapshot); any thread."""
        return self._tops.get(symbol)

    def start(self) -> None:
        """Start the feed's thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run_loop, name=f"market-data-{self.venue}", daemon=True)
            self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Hand what is queued to the sink, then stop the thread. Safe to call twice."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout_s)
            self._thread = None

    # -- FROM THE SESSION (QuickFIX's thread): queued, nothing more --

    def logged_on(self) -> None:
        """The session logged on and caught up: subscribe (again)."""
        self._queue.put(_SUBSCRIBE)

    def on_message(self, msg: Received) -> None:
        """A message of the market data flow (`is_market_data`)."""
        self._queue.put(msg)

    # -- THE FEED'S THREAD --

    def _run_loop(self) -> None:
        while (item := self._queue.get()) is not None:
            try:
                if item == _SUBSCRIBE:
                    self._subscribe()
                else:
                    assert isinstance(item, Received)
                    self._read(item)
            except (KeyError, ValueError):  # a message missing a field or with a bad value: the venue's bug
                log.warning("venue %s: market data not understood: %s", self.venue, item, exc_info=True)
            except Exception:  # the sink or a bug: logged, and the feed goes on with the next message
                log.exception("venue %s: market data lost: %s", self.venue, item)

    def _subscribe(self) -> None:
        self._requests += 1
        req_id = f"md-{self._run}-{self._requests}"
        self._req_id, self._tops = req_id, {}  # what the last logon showed is no longer known to be the book
        types = (T.MD_BID, T.MD_OFFER, T.MD_TRADE)
        try:
            self._send(self._codec.request(req_id, T.SUBSCRIBE_UPDATES, self.symbols, types))
        except ConnectionError:  # logged out meanwhile: the next logon subscribes
            log.info("venue %s: logged out before its market data request %s left", self.venue, req_id)
            return
        log.info("venue %s: market data requested for %s (%s)", self.venue, ", ".join(self.symbols), req_id)

    def _read(self, msg: Received) -> None:
        match msg.msg_type:
            case T.MT_MARKET_DATA_SNAPSHOT:
                self._snapshot(msg)
            case T.MT_MARKET_DATA_INCREMENTAL:
                self._update(msg)
            case T.MT_MARKET_DATA_REQUEST_REJECT:
                log.error("venue %s refused market data request %s (MDReqRejReason %s): %s", self.venue,
                          msg.get(T.MD_REQ_ID), msg.get(T.MD_REQ_REJ_REASON, "none"), msg.get(T.TEXT, ""))  # fmt: skip
            case _:
                log.error("venue %s does not take market data requests: %s", self.venue, msg.get(T.TEXT, ""))

    def _snapshot(self, msg: Received) -> None:
        symbol = msg[T.SYMBOL]
        if msg.get(T.MD_REQ_ID) != self._req_id or symbol not in self.symbols or msg.get(T.POSS_DUP_FLAG) == "Y":
            return  # an earlier logon's, resent, or not asked for
        inst = self._instruments.by_symbol(symbol)
        assert inst is not None
        now = self._clock()
        bid = ask = (0, 0)
        ts = 0
        for entry in entries(fields(msg.raw), T.MD_ENTRY_TYPE):
            side = entry[T.MD_ENTRY_TYPE]
            if side not in (T.MD_BID, T.MD_OFFER):
                continue
            level = (parse_price(inst, entry[T.MD_ENTRY_PX]), parse_qty(inst, entry[T.MD_ENTRY_SIZE]))
            if side == T.MD_BID:
                bid = level
            else:
                ask = level
            ts = max(ts, parse_md_time(entry.get(T.MD_ENTRY_DATE), entry.get(T.MD_ENTRY_TIME), now))
        top = self._tops[symbol] = Top(bid[0], bid[1], ask[0], ask[1])
        self._sink.quote(self.venue, symbol, *top, ts or now)

    def _update(self, msg: Received) -> None:
        now = self._clock()
        history = msg.get(T.POSS_DUP_FLAG) == "Y"
        current = not history and msg.get(T.MD_REQ_ID, self._req_id) == self._req_id
        changed: dict[str, int] = {}  # symbol -> time of its latest quote entry
        for entry in entries(fields(msg.raw), T.MD_UPDATE_ACTION):
            symbol = entry.get(T.SYMBOL)
            inst = self._instruments.by_symbol(symbol) if symbol in self.symbols else None
            if inst is None:
                continue
            kind = entry.get(T.MD_ENTRY_TYPE)
            ts = parse_md_time(entry.get(T.MD_ENTRY_DATE), entry.get(T.MD_ENTRY_TIME), now)
            if kind == T.MD_TRADE:
                if entry[T.MD_UPDATE_ACTION] == T.MD_ACTION_NEW:
                    price, qty = parse_price(inst, entry[T.MD_ENTRY_PX]), parse_qty(inst, entry[T.MD_ENTRY_SIZE])
                    self._print(symbol, entry, price, qty, ts)
                continue
            if kind not in (T.MD_BID, T.MD_OFFER) or not current or symbol not in self._tops:
                continue
            top = self._tops[symbol]
            if entry[T.MD_UPDATE_ACTION] == T.MD_ACTION_DELETE:
                level = (0, 0)
            else:
                level = (parse_price(inst, entry[T.MD_ENTRY_PX]), parse_qty(inst, entry[T.MD_ENTRY_SIZE]))
            if kind == T.MD_BID:
                self._tops[symbol] = top._replace(bid=level[0], bid_qty=level[1])
            else:
                self._tops[symbol] = top._replace(ask=level[0], ask_qty=level[1])
            changed[symbol] = max(changed.get(symbol, 0), ts)
        for symbol, ts in changed.items():
            self._sink.quote(self.venue, symbol, *self._tops[symbol], ts)

    def _print(self, symbol: str, entry: dict[int, str], price: int, qty: int, ts_ns: int) -> None:
        """Hand one trade entry to the sink, unless this run already did."""
        entry_id = entry.get(T.MD_ENTRY_ID)
        if entry_id is None:
            entry_id = "|".join((symbol, entry.get(T.MD_ENTRY_DATE, ""), entry.get(T.MD_ENTRY_TIME, ""),
                                 entry[T.MD_ENTRY_PX], entry[T.MD_ENTRY_SIZE]))  # fmt: skip
        mid = match_id(entry_id)
        if mid in self._seen:
            return
        self._seen[mid] = None
        if len(self._seen) > SEEN_PRINTS:
            self._seen.popitem(last=False)
        side = self._aggressor(symbol, price)
        self._last_print[symbol] = (price, side)
        self._sink.trade(TradePrinted(self.venue, symbol, mid, price, qty, side, ts_ns))

    def _aggressor(self, symbol: str, price: int) -> Side:
        """The side that took liquidity in a print at `price` (see the module text)."""
        top = self._tops.get(symbol, EMPTY)
        if top.ask_qty and price >= top.ask:
            return Side.BUY
        if top.bid_qty and price <= top.bid:
            return Side.SELL
        if top.bid_qty and top.ask_qty and 2 * price != top.bid + top.ask:
            return Side.BUY if 2 * price > top.bid + top.ask else Side.SELL
        last = self._last_print.get(symbol)
        if last is None:
            return Side.BUY
        return Side.BUY if price > last[0] else Side.SELL if price < last[0] else last[1]
