"""Exact fixed-point conversion between decimal text and integer units.

A value with precision `p` is stored as an integer count of 10**-p units: "123.45" at precision 4 is 1234500.
Nothing here touches a float, so a price read from FIX or REST reaches the book digit for digit.

Accepted text is plain decimal notation only: an optional leading "-", one or more ASCII digits, and optionally a
"." followed by one or more ASCII digits ("-12", "0.5", "007.10"). Rejected: empty strings, surrounding
whitespace, "+", exponents ("1e5"), "nan", "inf", ".5", "5.", digit separators and non-ASCII digits. Callers trim
at the edge if their protocol allows padding; the core never guesses.

Canonical form (what `from_units` writes): no trailing zeros after the point, no point when the fraction is
zero, no leading zeros, "-" only for values below zero. So 1234500 at precision 4 is "123.45", 1000000 is "100",
-5 at precision 2 is "-0.05". `to_units(from_units(u, p), p) == u` for every integer `u` and precision `p`.
"""

from __future__ import annotations

import re

from oms.core.model.enums import RejectReason

__all__ = ["InvalidValue", "from_units", "to_units"]

_DECIMAL = re.compile(r"(-?)([0-9]+)(?:\.([0-9]+))?")


class InvalidValue(ValueError):
    """A value that cannot be accepted; `reason` is the code a reject reports, the message names field and value."""

    def __init__(self, reason: RejectReason, field: str, value: object, problem: str) -> None:
        super().__init__(f"{field} {value!r}: {problem}")
        self.reason = reason
        self.field = field
        self.value = value
        self.problem = problem


def to_units(
    text: str,
    precision: int,
    *,
    field: str = "value",
    reason: RejectReason = RejectReason.INVALID_NUMBER,
    excess_reason: RejectReason = RejectReason.EXCESS_PRECISION,
) -> int:
    """Parse plain decimal `text` into an integer count of 10**-precision units, exactly.

    Trailing zeros beyond `precision` are accepted ("1.2300" at precision 2 is 123). Raises `InvalidValue` with
    `reason` when the text is not plain decimal notation (see the module docstring), and with `excess_reason`
    when a non-zero digit sits beyond `precision`. `field` names the value in the message. A negative
    `precision` is a programming error and raises plain `ValueError`.
    """
    if precision < 0:
        raise ValueError(f"precision must be >= 0, got {precision}")
    match = _DECIMAL.fullmatch(text)
    if match is None:
        raise InvalidValue(reason, field, text, "not a plain decimal number")
    sign, whole, frac = match.groups()
    if frac is None:
        frac = ""
    elif len(frac) > precision:
        if frac[precision:].strip("0"):
            raise InvalidValue(excess_reason, field, text, f"more than {precision} decimal places")
        frac = frac[:precision]
    try:
        units = int(whole + frac + "0" * (precision - len(frac)))
    except ValueError:  # beyond the interpreter's int/str conversion digit limit
        raise InvalidValue(reason, field, text, "too many digits") from None
    return -units if sign else units


def from_units(units: int, precision: int) -> str:
    """Write `units` (10**-precision each) in the canonical decimal form described in the module docstring.

    A negative `precision` is a programming error and raises `ValueError`.
    """
    if precision < 0:
        raise ValueError(f"precision must be >= 0, got {precision}")
    digits = str(abs(units))
    sign = "-" if units < 0 else ""
    if precision == 0:
        return sign + digits
    digits = digits.rjust(precision + 1, "0")
    whole, frac = digits[:-precision], digits[-precision:].rstrip("0")
    return f"{sign}{whole}.{frac}" if frac else sign + whole
