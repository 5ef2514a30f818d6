"""Market data messages of FIX 4.2 and 4.4, top of book and trades: what the exchange simulator publishes
(`fix_gateway.md_publisher`) and what the OMS's venue adapter reads (`fix_gateway.md_feed`).

REQUEST (MarketDataRequest, V): MDReqID; SubscriptionRequestType 1 (snapshot + updates), 0 (snapshot only) or 2
(unsubscribe the MDReqID); MarketDepth 1 (top of book: the only depth published); MDUpdateType 1 (incremental
refresh: required with 1, the only one published); NoMDEntryTypes of 0 bid, 1 offer, 2 trade; NoRelatedSym with
Symbol. The two versions differ only in their group layouts (4.4 wraps Symbol in the Instrument component), which
QuickFIX's generated group classes carry.

SNAPSHOT (MarketDataSnapshotFullRefresh, W), one per symbol: MDReqID, Symbol, and an entry per side asked for that
is not empty (MDEntryType, MDEntryPx, MDEntrySize, MDEntryDate, MDEntryTime); NoMDEntries 0 for an empty book.
Trades are never in a snapshot: W has no MDEntryID, so a print in it could not be told apart from the same print
in an update; each print is published once, as an update.

UPDATE (MarketDataIncrementalRefresh, X), one per subscription per change of the venue's books: MDReqID, then
entries, each with Symbol: every trade first (MDUpdateAction 0 New, MDEntryType 2, MDEntryID the venue's match id,
MDEntryPx, MDEntrySize, MDEntryDate, MDEntryTime), then for each side whose top changed: 0 New (a new best price,
or the side was empty), 1 Change (the same price, another size) or 2 Delete (the side is now empty; no price).
A reader keeps each side's top: New and Change set it, Delete empties it.

REJECT (MarketDataRequestReject, Y): MDReqID, MDReqRejReason, Text.

Times are UTC: MDEntryDate `YYYYMMDD` and MDEntryTime `HH:MM:SS.nnnnnnnnn` (nanoseconds, which both dictionaries'
UTCTimeOnly take). Prices and sizes go through the instrument's grid both ways, never through a float.
"""

from __future__ import annotations

import calendar
import hashlib
import time
from collections.abc import Iterable
from typing import Any, NamedTuple

import quickfix as fix
import quickfix42
import quickfix44

from fix_gateway import tags as T
from oms.core.model.instruments import Instrument, format_price, format_qty
from oms.core.model.numbers import InvalidValue, to_units

__all__ = [
    "EMPTY",
    "ENTRY_TYPES",
    "MAX_MATCH_ID",
    "MdCodec",
    "MdRequest",
    "Print",
    "Top",
    "entries",
    "fields",
    "match_id",
    "md_time",
    "parse_md_time",
]

ENTRY_TYPES = frozenset({T.MD_BID, T.MD_OFFER, T.MD_TRADE})
MAX_MATCH_ID = 2**63 - 1  # match ids are stored as UInt64 and handled as int64 on the way: keep them below 2^63
_VERSIONS: dict[str, Any] = {"FIX.4.2": quickfix42, "FIX.4.4": quickfix44}


class Top(NamedTuple):
    """A symbol's top of book in the instrument's units; a side with size 0 is empty (its price means nothing)."""

    bid: int
    bid_qty: int
    ask: int
    ask_qty: int


EMPTY = Top(0, 0, 0, 0)


class Print(NamedTuple):
    """A trade as published: the venue's id for it, price and size in the instrument's units, time in ns."""

    entry_id: str
    price: int
    qty: int
    ts_ns: int


class MdRequest(NamedTuple):
    """A MarketDataRequest as read: the fields the publisher acts on, and the first thing it cannot serve."""

    req_id: str
    kind: str  # SubscriptionRequestType
    symbols: tuple[str, ...]
    entry_types: frozenset[str]
    problem: tuple[str, str] | None  # (MDReqRejReason, Text) for a request that gets a MarketDataRequestReject


def md_time(ts_ns: int) -> tuple[str, str]:
    """(MDEntryDate, MDEntryTime) of `ts_ns` (ns since the epoch), UTC, to the nanosecond."""
    seconds, ns = divmod(ts_ns, 1_000_000_000)
    t = time.gmtime(seconds)
    return time.strftime("%Y%m%d", t), time.strftime("%H:%M:%S", t) + f".{ns:09d}"


def parse_md_time(date: str | None, clock: str | None, now_ns: int) -> int:
    """ns since the epoch of MDEntryDate `date` and MDEntryTime `clock` (UTC; a fraction of up to nine digits).
    Without a time: `now_ns`. Without a date: the day of `now_ns` (a venue that sends no date means today). Raises
    ValueError for a malformed value."""
    if clock is None:
        return now_ns
    whole, _, frac = clock.partition(".")
    if date is None:
        date = time.strftime("%Y%m%d", time.gmtime(now_ns // 1_000_000_000))
    try:
        seconds = calendar.timegm(time.strptime(f"{date}-{whole}", "%Y%m%d-%H:%M:%S"))
        ns = to_units("0." + frac, 9) if frac else 0
    except InvalidValue as exc:
        raise ValueError(f"MDEntryTime {clock!r}: {exc}") from None
    return seconds * 1_000_000_000 + ns


def match_id(entry_id: str) -> int:
    """The TradePrinted match id of a venue's MDEntryID: the number itself when it is a decimal number below 2^63,
    else a stable 63-bit hash of the text (so the same print gets the same id in every run)."""
    if entry_id.isascii() and entry_id.isdigit() and int(entry_id) <= MAX_MATCH_ID:
        return int(entry_id)
    return int.from_bytes(hashlib.blake2b(entry_id.encode(), digest_size=8).digest(), "big") >> 1


def fields(raw: str) -> list[tuple[int, str]]:
    """Every (tag, value) of a raw FIX message, in order, repeats included."""
    out: list[tuple[int, str]] = []
    for part in raw.split("\x01"):
        tag, sep, value = part.partition("=")
        if sep and tag.isdigit():
            out.append((int(tag), value))
    return out


def entries(pairs: Iterable[tuple[int, str]], delimiter: int) -> list[dict[int, str]]:
    """The NoMDEntries group of a message's (tag, value) pairs: one dict per entry, each begun by `delimiter`
    (MDEntryType in W, MDUpdateAction in X). Raises ValueError when the count and the entries differ."""
    out: list[dict[int, str]] = []
    count: int | None = None
    for tag, value in pairs:
        if tag == T.NO_MD_ENTRIES:
            if not value.isdigit():
                raise ValueError(f"NoMDEntries {value!r} is not a count")
            count = int(value)
        elif count is None or tag == 10:  # before the group, or the trailer
            continue
        elif tag == delimiter:
            out.append({tag: value})
        elif out:
            out[-1][tag] = value
    if count is None or count != len(out):
        raise ValueError(f"NoMDEntries {count} but {len(out)} entries")
    return out


class MdCodec:
    """Market data messages of one FIX version (`begin_string`)."""

    def __init__(self, begin_string: str) -> None:
        """Raises KeyError for a version other than FIX.4.2 and FIX.4.4."""
        self.begin_string = begin_string
        self._v = _VERSIONS[begin_string]

    # -- THE SUBSCRIBER'S SIDE --

    def request(self, req_id: str, kind: str, symbols: Iterable[str], entry_types: Iterable[str]) -> Any:
        """MarketDataRequest `req_id` of `kind` (SubscriptionRequestType) for top of book, incremental refresh."""
        msg = self._message(T.MT_MARKET_DATA_REQUEST)
        msg.setField(T.MD_REQ_ID, req_id)
        msg.setField(T.SUBSCRIPTION_REQUEST_TYPE, kind)
        msg.setField(T.MARKET_DEPTH, "1")
        msg.setField(T.MD_UPDATE_TYPE, T.MD_UPDATE_INCREMENTAL)
        for entry_type in entry_types:
            group = self._v.MarketDataRequest.NoMDEntryTypes()
            group.setField(T.MD_ENTRY_TYPE, entry_type)
            msg.addGroup(group)
        for symbol in symbols:
            group = self._v.MarketDataRequest.NoRelatedSym()
            group.setField(T.SYMBOL, symbol)
            msg.addGroup(group)
        return msg

    # -- THE PUBLISHER'S SIDE --

    def read_request(self, msg: Any) -> MdRequest:
        """The MarketDataRequest `msg` (as QuickFIX parsed it with the data dictionary), with the first reason it
        cannot be served (`MdRequest.problem`), if any. Raises `fix.FieldNotFound` for a field it needs that the
        dictionary does not require (MDUpdateType with SubscriptionRequestType 1, Symbol in NoRelatedSym)."""
        req_id = msg.getField(T.MD_REQ_ID)
        kind = msg.getField(T.SUBSCRIPTION_REQUEST_TYPE)
        types: list[str] = []
        group = self._v.MarketDataRequest.NoMDEntryTypes()
        for i in range(1, _count(msg, T.NO_MD_ENTRY_TYPES) + 1):
            msg.getGroup(i, group)
            types.append(group.getField(T.MD_ENTRY_TYPE))
        symbols: list[str] = []
        group = self._v.MarketDataRequest.NoRelatedSym()
        for i in range(1, _count(msg, T.NO_RELATED_SYM) + 1):
            msg.getGroup(i, group)
            if not group.isSetField(T.SYMBOL):
                raise fix.FieldNotFound(T.SYMBOL)
            symbols.append(group.getField(T.SYMBOL))
        request = MdRequest(req_id, kind, tuple(dict.fromkeys(symbols)), frozenset(types), None)
        if kind == T.UNSUBSCRIBE:
            return request
        return request._replace(problem=self._problem(msg, kind, types))

    def _problem(self, msg: Any, kind: str, types: list[str]) -> tuple[str, str] | None:
        if kind not in (T.SUBSCRIBE_SNAPSHOT, T.SUBSCRIBE_UPDATES):
            return T.MD_REJ_SUBSCRIPTION_TYPE, f"SubscriptionRequestType {kind!r} not supported (0, 1, 2)"
        depth = msg.getField(T.MARKET_DEPTH)
        if depth != "1":
            return T.MD_REJ_MARKET_DEPTH, f"MarketDepth {depth!r} not supported: only 1 (top of book)"
        if kind == T.SUBSCRIBE_UPDATES:
            if not msg.isSetField(T.MD_UPDATE_TYPE):
                raise fix.FieldNotFound(T.MD_UPDATE_TYPE)  # conditionally required: a session Reject
            update = msg.getField(T.MD_UPDATE_TYPE)
            if update != T.MD_UPDATE_INCREMENTAL:
                return T.MD_REJ_UPDATE_TYPE, f"MDUpdateType {update!r} not supported: only 1 (incremental refresh)"
        if msg.isSetField(T.AGGREGATED_BOOK) and msg.getField(T.AGGREGATED_BOOK) != "Y":
            return T.MD_REJ_AGGREGATED_BOOK, "AggregatedBook N not supported: the top of book is aggregated"
        unsupported = sorted(set(types) - ENTRY_TYPES)
        if unsupported:
            return T.MD_REJ_ENTRY_TYPE, f"MDEntryType {unsupported[0]!r} not supported (0 bid, 1 offer, 2 trade)"
        if self.begin_string == "FIX.4.4":  # fields only 4.4's request has, and reasons only its dictionary knows
            for tag, reason, name in (
                (T.NO_TRADING_SESSIONS, T.MD_REJ_TRADING_SESSION, "TradingSessionID"),
                (T.SCOPE, T.MD_REJ_SCOPE, "Scope"),
                (T.OPEN_CLOSE_SETTL_FLAG, T.MD_REJ_OPEN_CLOSE_SETTL, "OpenCloseSettlFlag"),
                (T.MD_IMPLICIT_DELETE, T.MD_REJ_IMPLICIT_DELETE, "MDImplicitDelete"),
            ):
                if msg.isSetField(tag):
                    return reason, f"{name} ({tag}) not supported"
        return None

    def snapshot(self, req_id: str, symbol: str, inst: Instrument, top: Top, types: frozenset[str], ts_ns: int) -> Any:
        """MarketDataSnapshotFullRefresh of `symbol`'s `top` as of `ts_ns`: the sides of `types` that are not
        empty."""
        msg = self._message(T.MT_MARKET_DATA_SNAPSHOT)
        msg.setField(T.MD_REQ_ID, req_id)
        msg.setField(T.SYMBOL, symbol)
        date, clock = md_time(ts_ns)
        sides = ((T.MD_BID, top.bid, top.bid_qty), (T.MD_OFFER, top.ask, top.ask_qty))
        chosen = [(entry_type, px, qty) for entry_type, px, qty in sides if entry_type in types and qty > 0]
        msg.setField(T.NO_MD_ENTRIES, str(len(chosen)))  # an empty book too: the count says so
        for entry_type, px, qty in chosen:
            group = self._v.MarketDataSnapshotFullRefresh.NoMDEntries()
            for tag, value in ((T.MD_ENTRY_TYPE, entry_type), (T.MD_ENTRY_PX, format_price(inst, px)),
                               (T.MD_ENTRY_SIZE, format_qty(inst, qty)), (T.MD_ENTRY_DATE, date),
                               (T.MD_ENTRY_TIME, clock)):  # fmt: skip
                group.setField(tag, value)
            msg.addGroup(group)
        return msg

    def update(self, req_id: str, changes: Iterable[tuple[str, Instrument, list[Print], Top, Top, int]],
               types: frozenset[str]) -> Any | None:  # fmt: skip
        """MarketDataIncrementalRefresh of `changes` ((symbol, instrument, prints, top before, top after, time of
        the change) each) for a subscription to `types`; None when none of it is of those types."""
        msg = self._message(T.MT_MARKET_DATA_INCREMENTAL)
        msg.setField(T.MD_REQ_ID, req_id)
        n = 0
        for symbol, inst, prints, before, after, ts_ns in changes:
            if T.MD_TRADE in types:
                for p in prints:
                    date, clock = md_time(p.ts_ns)
                    self._entry(msg, T.MD_ACTION_NEW, T.MD_TRADE, symbol, p.entry_id,
                                (format_price(inst, p.price), format_qty(inst, p.qty), date, clock))  # fmt: skip
                    n += 1
            date, clock = md_time(ts_ns)
            for entry_type, old, new in (
                (T.MD_BID, (before.bid, before.bid_qty), (after.bid, after.bid_qty)),
                (T.MD_OFFER, (before.ask, before.ask_qty), (after.ask, after.ask_qty)),
            ):
                if entry_type not in types or (old[1] == 0 and new[1] == 0) or old == new:
                    continue
                if new[1] == 0:
                    self._entry(msg, T.MD_ACTION_DELETE, entry_type, symbol, None, None)
                else:
                    action = T.MD_ACTION_CHANGE if old[1] and old[0] == new[0] else T.MD_ACTION_NEW
                    values = (format_price(inst, new[0]), format_qty(inst, new[1]), date, clock)
                    self._entry(msg, action, entry_type, symbol, None, values)
                n += 1
        return msg if n else None

    def reject(self, req_id: str, reason: str | None, text: str) -> Any:
        """MarketDataRequestReject of `req_id`: MDReqRejReason `reason` (left out when None) and `text`."""
        msg = self._message(T.MT_MARKET_DATA_REQUEST_REJECT)
        msg.setField(T.MD_REQ_ID, req_id)
        if reason is not None:
            msg.setField(T.MD_REQ_REJ_REASON, reason)
        msg.setField(T.TEXT, text)
        return msg

    def _entry(self, msg: Any, action: str, entry_type: str, symbol: str, entry_id: str | None,
               values: tuple[str, str, str, str] | None) -> None:  # fmt: skip
        group = self._v.MarketDataIncrementalRefresh.NoMDEntries()
        group.setField(T.MD_UPDATE_ACTION, action)
        group.setField(T.MD_ENTRY_TYPE, entry_type)
        if entry_id is not None:
            group.setField(T.MD_ENTRY_ID, entry_id)
        group.setField(T.SYMBOL, symbol)
        if values is not None:
            for tag, value in zip((T.MD_ENTRY_PX, T.MD_ENTRY_SIZE, T.MD_ENTRY_DATE, T.MD_ENTRY_TIME), values,
                                  strict=True):  # fmt: skip
                group.setField(tag, value)
        msg.addGroup(group)

    def _message(self, msg_type: str) -> Any:
        msg = fix.Message()
        header = msg.getHeader()
        header.setField(T.BEGIN_STRING, self.begin_string)
        header.setField(T.MSG_TYPE, msg_type)
        return msg


def _count(msg: Any, tag: int) -> int:
    return int(msg.getField(tag)) if msg.isSetField(tag) else 0
