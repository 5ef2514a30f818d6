from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oms.core.model.enums import RejectReason
from oms.core.model.numbers import InvalidValue, from_units, to_units


@pytest.mark.parametrize(
    ("text", "precision", "units"),
    [
        ("123.45", 4, 1234500),
        ("123.45", 2, 12345),
        ("-1", 2, -100),
        ("0.001", 3, 1),
        ("0", 0, 0),
        ("-0.00", 2, 0),
        ("007.10", 2, 710),
        ("1.2300", 2, 123),
        ("0.1", 1, 1),
        ("0.3", 17, 30000000000000000),  # 0.1 + 0.2 territory: exact here
        ("99999999999999999999.99", 2, 9999999999999999999999),
    ],
)
def test_to_units_parses_plain_decimal_exactly(text: str, precision: int, units: int) -> None:
    assert to_units(text, precision) == units


@pytest.mark.parametrize(
    ("units", "precision", "text"),
    [
        (1234500, 4, "123.45"),
        (1000000, 4, "100"),
        (-5, 2, "-0.05"),
        (0, 3, "0"),
        (1, 9, "0.000000001"),
        (-120, 0, "-120"),
        (10, 1, "1"),
    ],
)
def test_from_units_writes_canonical_form(units: int, precision: int, text: str) -> None:
    assert from_units(units, precision) == text


NOT_PLAIN_DECIMAL = [
    *("1.2.3", "", "abc", "1e5", "1E-3", "nan", "NaN", "inf", "-inf", "0x10", "--1", "1-", "-"),
    *(" 1", "1 ", "\t1", "1\n", "+1", ".5", "5.", "1,000", "1_000"),
    "\u0661",  # ARABIC-INDIC DIGIT ONE: int() would take it
]


@pytest.mark.parametrize("text", NOT_PLAIN_DECIMAL)
def test_to_units_rejects_anything_but_plain_decimal(text: str) -> None:
    with pytest.raises(InvalidValue) as err:
        to_units(text, 4, field="price")

    assert err.value.reason is RejectReason.INVALID_NUMBER
    assert "price" in str(err.value)
    assert repr(text) in str(err.value)


def test_to_units_rejects_nonzero_digits_beyond_precision() -> None:
    with pytest.raises(InvalidValue) as err:
        to_units("1.234", 2, field="qty")

    assert err.value.reason is RejectReason.EXCESS_PRECISION
    assert err.value.field == "qty"
    assert err.value.value == "1.234"


def test_to_units_reports_the_reasons_the_caller_chose() -> None:
    with pytest.raises(InvalidValue) as malformed:
        to_units("x", 2, reason=RejectReason.INVALID_PRICE, excess_reason=RejectReason.OFF_TICK)
    with pytest.raises(InvalidValue) as excess:
        to_units("0.001", 2, reason=RejectReason.INVALID_PRICE, excess_reason=RejectReason.OFF_TICK)

    assert malformed.value.reason is RejectReason.INVALID_PRICE
    assert excess.value.reason is RejectReason.OFF_TICK


def test_to_units_rejects_more_digits_than_int_conversion_allows_as_invalid_value() -> None:
    with pytest.raises(InvalidValue):
        to_units("9" * 10_000, 0)


@pytest.mark.parametrize("convert", [lambda: to_units("1", -1), lambda: from_units(1, -1)])
def test_negative_precision_is_a_programming_error(convert: Callable[[], object]) -> None:
    with pytest.raises(ValueError, match="precision"):
        convert()


@given(units=st.integers(), precision=st.integers(min_value=0, max_value=9))
def test_round_trip_through_text_is_exact_for_every_integer(units: int, precision: int) -> None:
    assert to_units(from_units(units, precision), precision) == units


@given(
    whole=st.integers(min_value=-(10**12), max_value=10**12),
    frac=st.text(alphabet="0123456789", max_size=9),
    precision=st.integers(min_value=0, max_value=9),
)
def test_canonical_text_is_a_fixed_point(whole: int, frac: str, precision: int) -> None:
    text = f"{whole}.{frac}" if frac else str(whole)
    try:
        units = to_units(text, precision)
    except InvalidValue:
        return

    canonical = from_units(units, precision)

    assert from_units(to_units(canonical, precision), precision) == canonical
    assert not canonical.endswith(".") and not (("." in canonical) and canonical.endswith("0"))
