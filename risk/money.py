"""Money as integers: amounts are counts of 10**-MONEY_PRECISION currency units.

A single currency is assumed: every instrument's notional is added to the same cash and limits, whatever its
`currency` field says (a multi-currency book needs FX conversion first, which is not here).

notional_money(inst, qty, price) = qty * price * 10**(MONEY_PRECISION - price_precision - qty_precision) is exact
because qty is in 10**-qty_precision units and price in 10**-price_precision units. Instruments whose precisions
add up to more than MONEY_PRECISION cannot be valued exactly and are refused when risk limits are loaded.
"""

from __future__ import annotations

from oms.core.model.instruments import Instrument
from oms.core.model.numbers import from_units, to_units

__all__ = ["MONEY_PRECISION", "format_money", "money_factor", "notional_money", "parse_money"]

MONEY_PRECISION = 9


def money_factor(inst: Instrument) -> int:
    """Money units per (qty unit * price unit) of `inst`; ValueError when the precisions exceed MONEY_PRECISION."""
    shift = MONEY_PRECISION - inst.price_precision - inst.qty_precision
    if shift < 0:
        raise ValueError(
            f"instrument {inst.symbol}: price_precision {inst.price_precision} + qty_precision "
            f"{inst.qty_precision} exceeds MONEY_PRECISION {MONEY_PRECISION}"
        )
    return 10**shift


def notional_money(inst: Instrument, qty: int, price: int) -> int:
    """qty (quantity units) times price (price units) in money units, exactly; signed like qty * price."""
    return qty * price * money_factor(inst)


def parse_money(text: str, field: str = "money") -> int:
    """Decimal currency text ("1000000", "12.5") as money units; raises InvalidValue on bad text."""
    return to_units(text, MONEY_PRECISION, field=field)


def format_money(units: int) -> str:
    """Money units as canonical decimal text."""
    return from_units(units, MONEY_PRECISION)
