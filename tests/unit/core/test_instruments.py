from pathlib import Path

import pytest

from oms.core.model.enums import RejectReason
from oms.core.model.instruments import (
    MAX_UNITS,
    TOO_LARGE,
    ConfigError,
    Instrument,
    InstrumentRegistry,
    format_price,
    format_qty,
    parse_price,
    parse_qty,
)
from oms.core.model.numbers import InvalidValue

CONFIG = Path(__file__).resolve().parents[3] / "configs" / "instruments.toml"

AAPL_TOML = """
[[instrument]]
symbol = "AAPL"
id = 1
asset_class = "equity"
currency = "USD"
tick_size = "0.01"
lot_size = "1"
price_precision = 4
"""


@pytest.fixture(scope="module")
def registry() -> InstrumentRegistry:
    return InstrumentRegistry.load(CONFIG)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "instruments.toml"
    path.write_text(text)
    return path


def test_loads_every_instrument_with_derived_tick_and_lot(registry: InstrumentRegistry) -> None:
    symbols = [inst.symbol for inst in registry]

    assert len(registry) == len(symbols) == 5
    assert symbols[0] == "AAPL"
    assert (registry.by_symbol("AAPL").tick, registry.by_symbol("AAPL").lot) == (100, 1)
    assert (registry.by_symbol("ESZ6").tick, registry.by_symbol("ESZ6").lot) == (25, 1)
    assert (registry.by_symbol("BTC-USD").tick, registry.by_symbol("BTC-USD").lot) == (50, 1)
    assert (registry.by_symbol("EURUSD").tick, registry.by_symbol("EURUSD").lot) == (5, 1000)


def test_lookup_by_id_and_symbol_agree_and_unknown_gives_none(registry: InstrumentRegistry) -> None:
    assert registry.by_id(3) is registry.by_symbol("ESZ6")
    assert registry.by_symbol("NOPE") is None
    assert registry.by_id(999) is None


def test_parse_price_on_tick_gives_price_units(registry: InstrumentRegistry) -> None:
    assert parse_price(registry.by_symbol("AAPL"), "123.45") == 1234500
    assert parse_price(registry.by_symbol("ESZ6"), "5000.25") == 500025
    assert parse_price(registry.by_symbol("EURUSD"), "1.08465") == 108465


@pytest.mark.parametrize(
    ("symbol", "text"),
    [("AAPL", "123.455"), ("AAPL", "123.45001"), ("ESZ6", "5000.10"), ("EURUSD", "1.08461"), ("BTC-USD", "1.25")],
)
def test_parse_price_off_tick_is_rejected_as_off_tick(registry: InstrumentRegistry, symbol: str, text: str) -> None:
    with pytest.raises(InvalidValue) as err:
        parse_price(registry.by_symbol(symbol), text)

    assert err.value.reason is RejectReason.OFF_TICK
    assert err.value.field == "price"


@pytest.mark.parametrize("text", ["0", "-1.00", "abc", "", "1e2"])
def test_parse_price_non_positive_or_malformed_is_invalid_price(registry: InstrumentRegistry, text: str) -> None:
    with pytest.raises(InvalidValue) as err:
        parse_price(registry.by_symbol("AAPL"), text)

    assert err.value.reason is RejectReason.INVALID_PRICE


def test_parse_qty_on_lot_gives_qty_units(registry: InstrumentRegistry) -> None:
    assert parse_qty(registry.by_symbol("BTC-USD"), "0.015") == 15
    assert parse_qty(registry.by_symbol("EURUSD"), "250000") == 250000


@pytest.mark.parametrize(("symbol", "text"), [("EURUSD", "1500"), ("AAPL", "1.5"), ("BTC-USD", "0.0001")])
def test_parse_qty_off_lot_is_rejected_as_off_lot(registry: InstrumentRegistry, symbol: str, text: str) -> None:
    with pytest.raises(InvalidValue) as err:
        parse_qty(registry.by_symbol(symbol), text)

    assert err.value.reason is RejectReason.OFF_LOT
    assert err.value.field == "qty"


@pytest.mark.parametrize("text", ["0", "-5", "ten"])
def test_parse_qty_non_positive_or_malformed_is_invalid_qty(registry: InstrumentRegistry, text: str) -> None:
    with pytest.raises(InvalidValue) as err:
        parse_qty(registry.by_symbol("AAPL"), text)

    assert err.value.reason is RejectReason.INVALID_QTY


def test_format_is_the_inverse_of_parse(registry: InstrumentRegistry) -> None:
    btc = registry.by_symbol("BTC-USD")

    assert format_price(btc, parse_price(btc, "64000.50")) == "64000.5"
    assert format_qty(btc, parse_qty(btc, "0.250")) == "0.25"


def test_unknown_key_fails_naming_file_instrument_and_key(tmp_path: Path) -> None:
    path = _write(tmp_path, AAPL_TOML + 'tick_sise = "0.01"\n')

    with pytest.raises(ConfigError) as err:
        InstrumentRegistry.load(path)

    message = str(err.value)
    assert str(path) in message and "AAPL" in message and "tick_sise" in message


def test_duplicate_id_fails_naming_both_instruments(tmp_path: Path) -> None:
    path = _write(tmp_path, AAPL_TOML + AAPL_TOML.replace('"AAPL"', '"MSFT"'))

    with pytest.raises(ConfigError, match=r"MSFT: duplicate id 1 \(already used by AAPL\)"):
        InstrumentRegistry.load(path)


def test_duplicate_symbol_fails(tmp_path: Path) -> None:
    path = _write(tmp_path, AAPL_TOML + AAPL_TOML.replace("id = 1", "id = 2"))

    with pytest.raises(ConfigError, match="AAPL: duplicate symbol"):
        InstrumentRegistry.load(path)


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ('tick_size = "0.01"', 'tick_size = "0.00001"', "tick_size"),
        ('tick_size = "0.01"', 'tick_size = "0"', "tick_size"),
        ('lot_size = "1"', 'lot_size = "-1"', "lot_size"),
        ('lot_size = "1"', 'lot_size = "0.5"', "lot_size"),
        ("id = 1", 'id = "1"', "id"),
        ("id = 1", "id = 0", "id"),
        ("price_precision = 4", "price_precision = -1", "price_precision"),
        ('symbol = "AAPL"\n', "", "symbol"),
    ],
)
def test_bad_field_fails_naming_it(tmp_path: Path, old: str, new: str, field: str) -> None:
    path = _write(tmp_path, AAPL_TOML.replace(old, new))

    with pytest.raises(ConfigError, match=field):
        InstrumentRegistry.load(path)


@pytest.mark.parametrize("key", ["tick = 100", "lot = 1"])
def test_derived_keys_are_refused_in_config(tmp_path: Path, key: str) -> None:
    path = _write(tmp_path, AAPL_TOML + key + "\n")

    with pytest.raises(ConfigError, match=f"`{key.split()[0]}` is derived"):
        InstrumentRegistry.load(path)


def test_unknown_top_level_key_fails_naming_it(tmp_path: Path) -> None:
    path = _write(tmp_path, "[instruments]\n")

    with pytest.raises(ConfigError, match="instruments"):
        InstrumentRegistry.load(path)


def test_missing_file_and_bad_toml_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"missing\.toml"):
        InstrumentRegistry.load(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="invalid TOML"):
        InstrumentRegistry.load(_write(tmp_path, "[[instrument]\n"))


def test_direct_construction_derives_tick_and_rejects_a_disagreeing_one() -> None:
    fields = dict(
        symbol="X", id=9, asset_class="equity", currency="USD", tick_size="0.05", lot_size="10", price_precision=2
    )

    inst = Instrument(**fields)

    assert (inst.tick, inst.lot) == (5, 10)
    with pytest.raises(ValueError, match="tick"):
        Instrument(**fields, tick=7)


def test_prices_and_quantities_past_64_bit_arithmetic_are_refused_as_too_large(registry: InstrumentRegistry) -> None:
    aapl = registry.by_symbol("AAPL")  # 4 price decimals, whole shares
    assert parse_qty(aapl, str(MAX_UNITS - 1)) == MAX_UNITS - 1
    with pytest.raises(InvalidValue) as qty:
        parse_qty(aapl, "9223372036854775808")  # 2**63: a FIX MaxFloor past any int64
    with pytest.raises(InvalidValue) as price:
        parse_price(aapl, "1" + "0" * 30)  # 1e30 written out
    with pytest.raises(InvalidValue) as edge:
        parse_price(aapl, format_price(aapl, MAX_UNITS))

    assert (qty.value.reason, qty.value.problem) == (RejectReason.INVALID_QTY, TOO_LARGE)
    assert (price.value.reason, price.value.problem) == (RejectReason.INVALID_PRICE, TOO_LARGE)
    assert edge.value.reason is RejectReason.INVALID_PRICE
