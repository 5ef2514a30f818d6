"""The venue registry: the `[venues]` table follows from the kinds it lists, is checked whole, and names the venues
to build."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest

from fix_gateway.settings import FixVenueSettings
from oms.apps.venues import INTERNAL, VENUE_KINDS, VenueSettings
from oms.core.model.instruments import ConfigError

CONFIG = Path("/etc/oms/oms.toml")


def venues(table: dict[str, Any]) -> VenueSettings:
    return msgspec.convert(table, VenueSettings)


def test_each_kind_of_the_registry_is_a_table_of_the_venues_section() -> None:
    settings = venues({"default": "EXCH", "fix": {"EXCH": {"port": 9879}, "SPARE": {"port": 9880}}})

    assert set(VENUE_KINDS) == {"fix"}
    assert [(name, kind) for name, kind, _ in settings.tables()] == [("EXCH", "fix"), ("SPARE", "fix")]
    assert settings.fix["EXCH"] == FixVenueSettings(port=9879)  # type: ignore[attr-defined]


def test_only_venues_some_symbol_is_routed_to_are_built() -> None:
    settings = venues({"routes": {"MSFT": "EXCH"}, "fix": {"EXCH": {"port": 9879}, "SPARE": {"port": 9880}}})

    assert [name for name, _, _ in settings.routed()] == ["EXCH"]
    assert settings.venue_of("MSFT") == "EXCH" and settings.venue_of("AAPL") == INTERNAL


def test_a_table_of_no_known_kind_stops_start_up_with_its_name() -> None:
    with pytest.raises(msgspec.ValidationError, match="unknown field `fx`"):
        venues({"fx": {"EXCH": {"port": 9879}}})


def test_resolving_gives_each_venue_its_own_folder_beside_the_config() -> None:
    settings = venues({"fix": {"EXCH": {"port": 9879, "data_dir": "../var/venues"}}}).resolved(CONFIG)

    assert settings.fix["EXCH"].data_dir == "/etc/oms/../var/venues/EXCH"  # type: ignore[attr-defined]


def test_a_route_to_a_venue_no_table_names_is_refused_with_the_known_ones() -> None:
    settings = venues({"routes": {"MSFT": "NYSE"}, "fix": {"EXCH": {"port": 9879}}})

    with pytest.raises(ConfigError, match=r"oms.toml: venues: unknown venue 'NYSE' \(known: INTERNAL, EXCH\)"):
        settings.resolved(CONFIG)


def test_a_venue_may_not_take_the_internal_books_name() -> None:
    settings = venues({"fix": {INTERNAL: {"port": 9879}}})

    with pytest.raises(ConfigError, match="venue name 'INTERNAL' used twice"):
        settings.resolved(CONFIG)
