"""The venue registry: every kind of venue the OMS can route to besides its own book, by the `[venues.<kind>]`
table of the OMS config that names its venues.

`[venues]` routes each symbol to INTERNAL (the native matching core in this process, always there) or to a venue
named in one kind's table, e.g. `[venues.fix.EXCH]`. A kind is an adapter module that provides two things: the
Struct of one `[venues.<kind>.NAME]` table (a `VenueTable`) and a class fulfilling the Venue port
(`oms.core.engine.Venue`) that is built from such a table (a `VenueFactory`). The `[venues]` table's schema, its
start-up checks, the routing and every venue's start and stop (`oms.apps.serve`) follow from `VENUE_KINDS`, so

    adding a venue kind = one adapter module + one line in `VENUE_KINDS`.

The registry sits with the composition roots: it is the one module that knows every venue adapter, and the layer
contract keeps the adapter packages (`fix_gateway`, `oms.adapters`) independent of one another.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple, Protocol, Self

import msgspec

from fix_gateway.md_feed import MarketSink
from fix_gateway.settings import FixVenueSettings
from fix_gateway.venue import FixVenue
from oms.core.engine import Venue
from oms.core.model.instruments import ConfigError, InstrumentRegistry

__all__ = [
    "INTERNAL",
    "VENUE_KINDS",
    "MarketDataVenue",
    "VenueFactory",
    "VenueKind",
    "VenueSettings",
    "VenueTable",
    "feed_market_data",
]

INTERNAL = "INTERNAL"  # the name of the native matching core in this process


class VenueTable(Protocol):
    """One `[venues.<kind>.NAME]` table: a frozen msgspec Struct that forbids unknown fields."""

    def resolved(self, base: Path, name: str) -> Self:
        """These settings with their paths the venue `name`'s own, relative ones taken relative to `base` (the
        OMS config's folder)."""
        ...

    def describe(self) -> str:
        """Where the venue is reached, in words (`oms serve` prints it at start)."""
        ...


class VenueFactory(Protocol):
    def __call__(self, name: str, instruments: InstrumentRegistry, settings: Any, exec_id_base: int) -> Venue:
        """The venue `name` configured by `settings` (its table), not started; its fills get execution ids
        `exec_id_base` + 1, + 2, ..."""
        ...


class MarketDataVenue(Protocol):
    """A venue that publishes market data the OMS can put on its market tape (a `FixVenue`); it has a `feed_market`
    beside the Venue port."""

    def feed_market(self, sink: MarketSink, symbols: Iterable[str]) -> bool:
        """From its next start, hand `sink` the venue's quotes and prints of `symbols`; False when it will not (its
        table turned market data off, or no symbol)."""
        ...


class VenueKind(NamedTuple):
    """What the registry knows of one kind of venue."""

    table: type[msgspec.Struct]  # a VenueTable: one `[venues.<kind>.NAME]` table
    build: VenueFactory


VENUE_KINDS: dict[str, VenueKind] = {
    "fix": VenueKind(FixVenueSettings, FixVenue),  # an exchange or broker over a FIX initiator session
}

# one field per kind: `[venues.fix.EXCH]` is `VenueSettings.fix["EXCH"]`
_KindTables = msgspec.defstruct(
    "_KindTables",
    [(kind, dict[str, k.table], {}) for kind, k in VENUE_KINDS.items()],
    frozen=True,
    forbid_unknown_fields=True,
)


class VenueSettings(_KindTables, frozen=True, forbid_unknown_fields=True):  # type: ignore[misc, valid-type]
    """The `[venues]` table: where each symbol is routed (`default`, and per-symbol `routes`: INTERNAL or a venue
    that one kind's table names), and that table for each kind of `VENUE_KINDS`."""

    default: str = INTERNAL
    routes: dict[str, str] = {}

    def venue_of(self, symbol: str) -> str:
        """The name of the venue `symbol` is routed to."""
        return self.routes.get(symbol, self.default)

    def tables(self) -> Iterator[tuple[str, str, VenueTable]]:
        """(name, kind, table) of every venue the kinds' tables name: kind by kind as `VENUE_KINDS` lists them,
        each kind's in file order."""
        for kind in VENUE_KINDS:
            for name, table in getattr(self, kind).items():
                yield name, kind, table

    def routed(self) -> list[tuple[str, str, VenueTable]]:
        """(name, kind, table) of the venues some symbol is routed to, in `tables` order."""
        used = {self.default, *self.routes.values()}
        return [venue for venue in self.tables() if venue[0] in used]

    def resolved(self, path: Path) -> VenueSettings:
        """These settings with each venue's paths resolved against the folder of `path` (the OMS config file).
        Raises ConfigError naming `path` for a venue name used twice (INTERNAL included) or a route to a venue that
        no table names."""
        known = [INTERNAL, *(name for name, _, _ in self.tables())]
        twice = sorted({name for name in known if known.count(name) > 1})
        if twice:
            raise ConfigError(f"{path}: venues: venue name {twice[0]!r} used twice")
        for venue in sorted({self.default, *self.routes.values()}):
            if venue not in known:
                raise ConfigError(f"{path}: venues: unknown venue {venue!r} (known: {', '.join(known)})")
        tables = {
            kind: {name: table.resolved(path.parent, name) for name, table in getattr(self, kind).items()}
            for kind in VENUE_KINDS
        }
        return msgspec.structs.replace(self, **tables)


def feed_market_data(
    venues: Mapping[str, Venue], settings: VenueSettings, instruments: InstrumentRegistry, sink: MarketSink
) -> list[str]:
    """Hand `sink` to every venue of `venues` that publishes market data (`MarketDataVenue`), with the symbols
    `settings` routes to it; call it before the venues start. Returns the names of the venues that will feed it."""
    fed = []
    for name, venue in venues.items():
        feed = getattr(venue, "feed_market", None)  # the Venue port has no market data: only some kinds publish it
        symbols = [i.symbol for i in instruments if settings.venue_of(i.symbol) == name]
        if feed is not None and feed(sink, symbols):
            fed.append(name)
    return fed
