"""The market tape: venue trade prints and top-of-book quotes, appended to the Redis stream `oms:tape`.

The analytics sink consumes this stream into the `market_trades` and `quotes` tables, which give TCA its market
benchmarks (interval VWAP/TWAP, arrival mid, markouts, participation). Entries look like the journal's: one field
`r` holding a tagged msgspec msgpack record, `TradePrinted` (from `oms.core.model.messages`) or `Quote` (here). Prices
and quantities are integers in the instrument's units, timestamps integer ns since the epoch.

Writing is an ordinary XADD (several in one round trip for `append_many`, on a connection of the tape's own): the
tape is market data, not the OMS's state, so it does not need the journal's all-or-nothing batches. `maxlen` trims
the stream (XADD MAXLEN ~); keep it well above what the sink can lag behind, or prints are lost to the reports.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterable

import msgspec
import redis

from oms.core.model.instruments import InstrumentRegistry
from oms.core.model.messages import Message, TradePrinted
from oms.core.venues.internal import InternalVenue
from oms.infra.redis.link import Link

__all__ = ["MarketFeed", "Quote", "Tape", "TapeRecord", "TapeWriter", "tape_decoder", "tape_key"]

log = logging.getLogger("oms.infra.clickhouse.tape")


class Quote(msgspec.Struct, frozen=True, tag="quote"):
    """A venue's top of book for a symbol at `ts_ns`. A side with qty 0 is empty (its price is ignored)."""

    venue: str
    symbol: str
    bid: int  # price units; meaningful only when bid_qty > 0
    bid_qty: int
    ask: int
    ask_qty: int
    ts_ns: int


TapeRecord = TradePrinted | Quote
tape_decoder: msgspec.msgpack.Decoder[TapeRecord] = msgspec.msgpack.Decoder(TapeRecord)
_encoder = msgspec.msgpack.Encoder()
RECORD_FIELD = b"r"


def tape_key(prefix: str = "oms") -> str:
    return f"{prefix}:tape"


class Tape:
    """Appends trade prints and quotes to `<prefix>:tape` over a synchronous redis-py client.

    Every call returns once Redis has answered, with the stream ids of what it wrote, in order.
    """

    def __init__(self, client: redis.Redis, *, prefix: str = "oms", maxlen: int | None = None) -> None:
        if maxlen is not None and maxlen < 1:
            raise ValueError(f"maxlen must be None or >= 1, not {maxlen}")
        self.key = tape_key(prefix)
        self._xadd = ("XADD", self.key, *(() if maxlen is None else ("MAXLEN", "~", maxlen)), "*", RECORD_FIELD)
        self._link = Link(client)

    def trade(self, trade: TradePrinted) -> str:
        """Append one trade print."""
        return self.append_many([trade])[0]

    def quote(self, quote: Quote) -> str:
        """Append one top-of-book quote."""
        return self.append_many([quote])[0]

    def append_many(self, records: Iterable[TapeRecord]) -> list[str]:
        """Append prints and quotes in order, in one round trip; everything is encoded first."""
        xadd, encode = self._xadd, _encoder.encode
        commands = [(*xadd, encode(r)) for r in records]
        return [_text(sid) for sid in self._link.round_trip(commands)] if commands else []


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


# the feed's thread appends what came in over this long (each record keeps its own timestamp): each round trip is
# a Redis write, which appendfsync always makes an fsync, so fewer of them leave the disk to the order path's
FEED_LINGER_S = 0.1


class MarketFeed:
    """The internal book's trade prints and top of book, onto the tape through a `TapeWriter` (its own thread).

    `on_events` takes the events of each engine step (on the sequence): it keeps the prints and, for each symbol of
    `symbols` an event touched, the book's top when it changed. The writer appends them in batches, at most one round
    trip per `FEED_LINGER_S`, so the order path never waits on Redis and a busy book costs few round trips. If Redis
    fails, the batch is logged as lost (the tape is market data for reports; the journal, not the tape, is the OMS's
    record).
    """

    def __init__(self, tape: Tape, venue: InternalVenue, instruments: InstrumentRegistry, symbols: Iterable[str]):
        self._venue = venue
        self._ids = {s: inst.id for s in symbols if (inst := instruments.by_symbol(s)) is not None}
        self._last: dict[str, tuple[int, int, int, int]] = {}
        self._writer = TapeWriter(tape)

    def on_events(self, events: Iterable[Message]) -> None:
        touched: set[str] = set()
        for e in events:
            symbol = getattr(e, "symbol", None)
            if isinstance(e, TradePrinted):
                self._writer.trade(e)
            if symbol in self._ids:
                touched.add(symbol)
        if not touched:
            return
        now = time.time_ns()
        for symbol in touched:
            top = self._venue.engine.l1(self._ids[symbol])
            if self._last.get(symbol) != top:
                self._last[symbol] = top
                self._writer.quote(self._venue.name, symbol, *top, now)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Append what is queued, then stop the writer's thread."""
        self._writer.stop(timeout_s)


class TapeWriter:
    """Quotes and prints handed over from any thread, onto the tape from a thread of its own.

    `quote` and `trade` only queue the record and return: the caller (the internal book's `MarketFeed`, a venue
    session's market data feed) never waits on Redis. The thread appends what came in over `linger_s` in one round
    trip; a batch Redis refuses is logged as lost, never raised to the caller.
    """

    def __init__(self, tape: Tape, linger_s: float = FEED_LINGER_S) -> None:
        self._tape = tape
        self._linger_s = linger_s
        self._queue: queue.SimpleQueue[TapeRecord | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="tape-writer", daemon=True)
        self._thread.start()

    def quote(self, venue: str, symbol: str, bid: int, bid_qty: int, ask: int, ask_qty: int, ts_ns: int) -> None:
        """Queue `venue`'s top of book of `symbol` at `ts_ns` (an empty side: qty 0)."""
        self._queue.put(Quote(venue, symbol, bid, bid_qty, ask, ask_qty, ts_ns))

    def trade(self, trade: TradePrinted) -> None:
        """Queue a venue's trade print."""
        self._queue.put(trade)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Append what is queued, then stop the thread."""
        self._queue.put(None)
        self._thread.join(timeout_s)

    def _run(self) -> None:
        done = False
        while not done:
            record = self._queue.get()
            if record is not None:
                time.sleep(self._linger_s)  # what else comes in meanwhile goes in the same round trip
            batch: list[TapeRecord] = []
            while record is not None:
                batch.append(record)
                if len(batch) >= 1000 or self._queue.empty():
                    break
                record = self._queue.get()
            done = record is None
            if not batch:
                continue
            try:
                self._tape.append_many(batch)
            except redis.RedisError:
                log.exception("market tape: %d records lost", len(batch))
