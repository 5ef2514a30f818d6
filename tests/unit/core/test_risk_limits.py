from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from oms.core.model.enums import RiskMode
from oms.core.model.instruments import ConfigError, Instrument, InstrumentRegistry
from risk.limits import BUILTIN, LimitsSpec, load_risk_config, parse_risk_config, resolve_limits
from risk.money import MONEY_PRECISION, format_money, notional_money, parse_money

ROOT = Path(__file__).resolve().parents[3]
REG = InstrumentRegistry.load(ROOT / "configs" / "instruments.toml")


def test_shipped_accounts_file_loads() -> None:
    config = load_risk_config(ROOT / "configs" / "accounts.toml", REG)
    assert {"ACC1", "ACC2", "ALGO1", "TIGHT1"} <= set(config.accounts)
    assert config.accounts["ACC2"].restricted_symbols == ("BTC-USD",)
    assert config.accounts["ALGO1"].risk_mode is RiskMode.RESERVED
    assert config.accounts["TIGHT1"].symbols["BTC-USD"].max_order_qty == 500  # "0.5" at qty precision 3
    assert config.limits_for("NOPE") is None


def test_money_is_exact_integer_notional() -> None:
    aapl, btc = REG.by_symbol("AAPL"), REG.by_symbol("BTC-USD")
    assert aapl is not None and btc is not None
    assert notional_money(aapl, 10, 1_000_000) == parse_money("1000")  # 10 x 100.00
    assert notional_money(btc, 1500, 5_000_050) == parse_money("75000.75")  # 1.5 x 50000.50
    assert format_money(parse_money("12.5")) == "12.5"


def test_defaults_and_builtins_fill_what_an_account_leaves_out() -> None:
    config = parse_risk_config({"defaults": {"credit_limit": "7"}, "accounts": {"A": {}}}, REG)
    limits = config.accounts["A"]
    assert limits.credit_limit == 7 * 10**MONEY_PRECISION
    assert limits.max_open_orders == BUILTIN.max_open_orders
    assert (limits.drawdown_warn_bp, limits.drawdown_reduce_bp, limits.drawdown_halt_bp) == (500, 1000, 2000)
    assert limits.window_ns == 1_000_000_000


def test_symbol_tables_layer_field_by_field() -> None:
    raw = {
        "defaults": {"max_order_qty": "10", "symbols": {"AAPL": {"max_order_qty": "20", "collar_pct": "2.5"}}},
        "accounts": {"A": {"max_order_qty": "30"}, "B": {"symbols": {"AAPL": {"max_position": "7"}}}},
    }
    config = parse_risk_config(raw, REG)
    assert config.accounts["A"].symbols["AAPL"].max_order_qty == 30  # the account's top level beats defaults
    b = config.accounts["B"].symbols["AAPL"]
    assert (b.max_order_qty, b.max_position, b.collar_bp) == (20, 7, 250)
    assert config.accounts["B"].symbols["MSFT"].max_order_qty == 10


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ({"accounts": {"ACC9": {"credit_limt": "1"}}}, ["credit_limt"]),
        ({"defaults": {"max_open_orders": 0}}, ["max_open_orders"]),
        ({"accounts": {"ACC9": {"credit_limit": "1e6"}}}, ["account ACC9", "credit_limit"]),
        ({"accounts": {"ACC9": {"credit_limit": "-1"}}}, ["account ACC9", "credit_limit", ">= 0"]),
        ({"accounts": {"ACC9": {"start_cash": "0.0000000001"}}}, ["account ACC9", "start_cash"]),
        ({"accounts": {"ACC9": {"max_gross_notional": "100000000000"}}}, ["max_gross_notional", "64-bit"]),
        ({"defaults": {"max_position": "10000000000000000000"}}, ["max_position", "<= 4611686018427387904"]),
        ({"accounts": {"ACC9": {"symbols": {"NOPE": {}}}}}, ["account ACC9", "NOPE"]),
        ({"accounts": {"ACC9": {"restricted_symbols": ["NOPE"]}}}, ["account ACC9", "restricted_symbols"]),
        ({"accounts": {"ACC9": {"symbols": {"BTC-USD": {"max_order_qty": "0.0001"}}}}}, ["BTC-USD", "max_order_qty"]),
        ({"accounts": {"ACC9": {"collar_pct": "0"}}}, ["account ACC9", "collar_pct"]),
        ({"accounts": {"ACC9": {"drawdown_warn_pct": "15"}}}, ["account ACC9", "warn <= reduce <= halt"]),
        ({"accounts": {"ACC9": {"drawdown_halt_pct": "101"}}}, ["account ACC9", "drawdown_halt_pct"]),
        ({"accounts": {"ACC9": {"risk_mode": "yolo"}}}, ["risk_mode"]),
        ({"acounts": {}}, ["acounts"]),
    ],
)
def test_bad_config_stops_start_up_naming_the_field(raw: dict[str, Any], words: list[str]) -> None:
    with pytest.raises(ConfigError) as err:
        parse_risk_config(raw, REG, source="accounts.toml")
    assert all(w in str(err.value) for w in ["accounts.toml", *words]), str(err.value)


def test_an_instrument_too_precise_for_money_is_refused() -> None:
    fine = Instrument("FINE", 9, "crypto", "USD", "0.000001", "0.00001", price_precision=6, qty_precision=5)
    with pytest.raises(ConfigError, match=r"FINE.*MONEY_PRECISION"):
        parse_risk_config({}, InstrumentRegistry([fine]), source="x.toml")


def test_missing_and_broken_files_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.toml"):
        load_risk_config(tmp_path / "nope.toml", REG)
    bad = tmp_path / "bad.toml"
    bad.write_text("[defaults\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_risk_config(bad, REG)


def test_resolve_limits_builds_limits_from_a_spec() -> None:
    limits = resolve_limits(LimitsSpec(max_open_orders=3, restricted_symbols=["MSFT", "AAPL"]), REG)
    assert limits.max_open_orders == 3
    assert limits.restricted_symbols == ("AAPL", "MSFT")
    assert set(limits.symbols) == {i.symbol for i in REG}
