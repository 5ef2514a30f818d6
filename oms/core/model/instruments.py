"""Tradable instruments and their price/quantity grids, loaded from TOML (`configs/instruments.toml`).

A price is an integer count of 10**-price_precision units and must be a positive multiple of `tick`; a quantity
is an integer count of 10**-qty_precision units and must be a positive multiple of `lot`. `tick` and `lot` are
derived from `tick_size` and `lot_size` once, when the Instrument is built, so the hot path only does `%`.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Iterator
from os import PathLike
from typing import Annotated, Any

import msgspec

from oms.core.model.enums import RejectReason
from oms.core.model.numbers import InvalidValue, from_units, to_units

__all__ = [
    "MAX_UNITS",
    "TOO_LARGE",
    "ConfigError",
    "Instrument",
    "InstrumentRegistry",
    "format_price",
    "format_qty",
    "parse_price",
    "parse_qty",
    "read_toml",
]

_DERIVED = frozenset({"tick", "lot"})
_Precision = Annotated[int, msgspec.Meta(ge=0, le=18)]


class ConfigError(Exception):
    """A configuration file that cannot be used; the message names the file, the entry and the bad field."""


def read_toml(path: str | PathLike[str]) -> dict[str, Any]:
    """The TOML file at `path` as a dict; ConfigError naming the file when it cannot be read or is not TOML."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from exc


class Instrument(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One instrument. `tick` and `lot` are derived from `tick_size` and `lot_size`; leave them out of configs.

    Construction rejects (ValueError, or msgspec.ValidationError when converting) a tick or lot size that is not
    a positive value exactly on its precision grid, and a supplied `tick`/`lot` that disagrees with the sizes.
    """

    symbol: Annotated[str, msgspec.Meta(min_length=1)]
    id: Annotated[int, msgspec.Meta(ge=1, le=2**31 - 1)]  # the matching core's int32 symbol id
    asset_class: str
    currency: str
    tick_size: str
    lot_size: str
    price_precision: _Precision
    qty_precision: _Precision = 0
    tick: int = 0  # tick size in price units
    lot: int = 0  # lot size in quantity units

    def __post_init__(self) -> None:
        tick = _grid_step("tick_size", self.tick_size, self.price_precision, "price_precision")
        lot = _grid_step("lot_size", self.lot_size, self.qty_precision, "qty_precision")
        if self.tick not in (0, tick):
            raise ValueError(f"tick {self.tick} disagrees with tick_size {self.tick_size!r} (expected {tick})")
        if self.lot not in (0, lot):
            raise ValueError(f"lot {self.lot} disagrees with lot_size {self.lot_size!r} (expected {lot})")
        msgspec.structs.force_setattr(self, "tick", tick)
        msgspec.structs.force_setattr(self, "lot", lot)


def _grid_step(field: str, text: str, precision: int, precision_field: str) -> int:
    try:
        step = to_units(text, precision, field=field)
    except InvalidValue as exc:
        raise ValueError(f"{exc} (on the {precision_field}={precision} grid)") from None
    if step <= 0:
        raise ValueError(f"{field} {text!r}: must be > 0")
    return step


#: Every price and quantity is below this many units: the matching core and the risk kernel compute in 64-bit
#: integers (a price times a quantity included, see `native`), so larger values are refused where they come in.
MAX_UNITS = 2**62
TOO_LARGE = "too large"  # the InvalidValue problem of a value of MAX_UNITS units or more


def parse_price(inst: Instrument, text: str) -> int:
    """Parse a limit/stop price into price units.

    Rejects (InvalidValue) malformed text, prices <= 0 and prices of MAX_UNITS units or more with INVALID_PRICE, and
    prices off the tick grid (including digits beyond the price precision) with OFF_TICK.
    """
    return _on_grid(text, inst.price_precision, inst.tick, f"tick {inst.tick_size}", "price",
                    RejectReason.INVALID_PRICE, RejectReason.OFF_TICK)  # fmt: skip


def parse_qty(inst: Instrument, text: str) -> int:
    """Parse an order quantity into quantity units.

    Rejects (InvalidValue) malformed text, quantities <= 0 and quantities of MAX_UNITS units or more with
    INVALID_QTY, and quantities off the lot grid (including digits beyond the quantity precision) with OFF_LOT.
    """
    return _on_grid(text, inst.qty_precision, inst.lot, f"lot {inst.lot_size}", "qty",
                    RejectReason.INVALID_QTY, RejectReason.OFF_LOT)  # fmt: skip


def _on_grid(
    text: str, precision: int, step: int, step_name: str, field: str, invalid: RejectReason, off_grid: RejectReason
) -> int:
    """`text` in units of 10**-precision: positive, below MAX_UNITS (else `invalid`) and a multiple of `step`
    (else `off_grid`, as are digits beyond the precision)."""
    units = to_units(text, precision, field=field, reason=invalid, excess_reason=off_grid)
    if units <= 0:
        raise InvalidValue(invalid, field, text, "must be > 0")
    if units >= MAX_UNITS:
        raise InvalidValue(invalid, field, text, TOO_LARGE)
    if units % step:
        raise InvalidValue(off_grid, field, text, f"not a multiple of {step_name}")
    return units


def format_price(inst: Instrument, units: int) -> str:
    """Price units as canonical decimal text (see `oms.core.model.numbers`)."""
    return from_units(units, inst.price_precision)


def format_qty(inst: Instrument, units: int) -> str:
    """Quantity units as canonical decimal text (see `oms.core.model.numbers`)."""
    return from_units(units, inst.qty_precision)


class InstrumentRegistry:
    """Instruments by symbol and by id, in file order. Symbols and ids are unique."""

    __slots__ = ("_by_id", "_by_symbol")

    def __init__(self, instruments: Iterable[Instrument]) -> None:
        """Index `instruments`; raises ConfigError on a duplicate symbol or id."""
        self._by_symbol: dict[str, Instrument] = {}
        self._by_id: dict[int, Instrument] = {}
        for inst in instruments:
            if inst.symbol in self._by_symbol:
                raise ConfigError(f"instrument {inst.symbol}: duplicate symbol")
            if inst.id in self._by_id:
                raise ConfigError(
                    f"instrument {inst.symbol}: duplicate id {inst.id} (already used by {self._by_id[inst.id].symbol})"
                )
            self._by_symbol[inst.symbol] = inst
            self._by_id[inst.id] = inst

    @classmethod
    def load(cls, path: str | PathLike[str]) -> InstrumentRegistry:
        """Load a TOML file holding an `[[instrument]]` array of tables.

        Raises ConfigError, naming the file, the instrument and the field, for unreadable or invalid TOML, top-level
        keys other than `instrument`, unknown, derived (`tick`, `lot`) or missing keys, wrong types, bad tick/lot
        sizes, and duplicate symbols or ids.
        """
        raw = read_toml(path)
        unknown = sorted(set(raw) - {"instrument"})
        if unknown:
            raise ConfigError(f"{path}: unknown top-level key `{unknown[0]}` (expected only [[instrument]])")
        tables = raw.get("instrument", [])
        if not isinstance(tables, list):
            raise ConfigError(f"{path}: `instrument` must be an array of tables ([[instrument]])")
        instruments = []
        for n, table in enumerate(tables, 1):
            name = table.get("symbol", f"#{n}") if isinstance(table, dict) else f"#{n}"
            derived = sorted(_DERIVED & set(table)) if isinstance(table, dict) else []
            if derived:
                raise ConfigError(f"{path}: instrument {name}: `{derived[0]}` is derived from its size; remove it")
            try:
                instruments.append(msgspec.convert(table, Instrument))
            except msgspec.ValidationError as exc:
                raise ConfigError(f"{path}: instrument {name}: {exc}") from exc
        try:
            return cls(instruments)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from exc

    def by_symbol(self, symbol: str) -> Instrument | None:
        return self._by_symbol.get(symbol)

    def by_id(self, id: int) -> Instrument | None:
        return self._by_id.get(id)

    def __iter__(self) -> Iterator[Instrument]:
        return iter(self._by_symbol.values())

    def __len__(self) -> int:
        return len(self._by_symbol)
