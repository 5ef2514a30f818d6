"""Every pure check in risk.checks, and the text table of risk.reasons."""

from __future__ import annotations

import pytest

from oms.core.model.enums import RejectReason as R
from oms.core.model.enums import Side, TradingState
from risk import checks
from risk.reasons import TEXT, describe


def test_every_reject_reason_has_a_text() -> None:
    assert set(TEXT) == set(R)
    assert all(describe(r) and describe(r) == TEXT[r] for r in R)


def test_risk_reasons_are_numbered_from_50_and_book_codes_are_unchanged() -> None:
    risk = [R.MAX_ORDER_QTY, R.MAX_ORDER_NOTIONAL, R.PRICE_COLLAR, R.NO_REFERENCE_PRICE, R.CREDIT_LIMIT,
            R.POSITION_LIMIT, R.GROSS_LIMIT, R.NET_LIMIT, R.ORDER_RATE, R.SESSION_RATE, R.MAX_OPEN_ORDERS,
            R.RESTRICTED_SYMBOL, R.REDUCE_ONLY, R.HALTED, R.KILL_SWITCH, R.UNKNOWN_ACCOUNT]  # fmt: skip
    assert [int(r) for r in risk] == list(range(50, 66))
    assert (R.DUPLICATE_CL_ORD_ID, R.EXCESS_PRECISION) == (14, 19)


@pytest.mark.parametrize(
    ("state", "kill", "expected"),
    [
        (TradingState.ACTIVE, False, R.NONE),
        (TradingState.REDUCING, False, R.NONE),
        (TradingState.HALTED, False, R.HALTED),
        (TradingState.ACTIVE, True, R.KILL_SWITCH),
        (TradingState.HALTED, True, R.KILL_SWITCH),
    ],
)
def test_trading_state_blocks_halted_and_kill_switch(state: TradingState, kill: bool, expected: R) -> None:
    assert checks.check_trading_state(state, kill) is expected


def test_restricted_symbol_is_refused() -> None:
    assert checks.check_restricted("AAPL", ("AAPL",)) is R.RESTRICTED_SYMBOL
    assert checks.check_restricted("MSFT", ("AAPL",)) is R.NONE


@pytest.mark.parametrize(("qty", "expected"), [(0, R.INVALID_QTY), (-1, R.INVALID_QTY), (1, R.NONE), (100, R.NONE),
                                               (101, R.MAX_ORDER_QTY)])  # fmt: skip
def test_order_qty_up_to_the_maximum_passes(qty: int, expected: R) -> None:
    assert checks.check_order_qty(qty, 100) is expected


def test_order_notional_up_to_the_maximum_passes() -> None:
    assert checks.check_order_notional(1000, 1000) is R.NONE
    assert checks.check_order_notional(1001, 1000) is R.MAX_ORDER_NOTIONAL
    assert checks.check_order_notional(-1001, 1000) is R.MAX_ORDER_NOTIONAL


def test_collar_is_inclusive_and_symmetric() -> None:
    # 5 % around 10000: [9500, 10500]
    assert checks.check_collar(10500, 10000, 500) is R.NONE
    assert checks.check_collar(9500, 10000, 500) is R.NONE
    assert checks.check_collar(10501, 10000, 500) is R.PRICE_COLLAR
    assert checks.check_collar(9499, 10000, 500) is R.PRICE_COLLAR


def test_collar_without_reference_passes_limit_orders() -> None:
    assert checks.check_collar(1, None, 500) is R.NONE


def test_collared_price_rounds_up() -> None:
    assert checks.collared_price(10000, 500) == 10500
    assert checks.collared_price(10001, 500) == 10502  # 10501.05 rounded up


def test_max_open_orders_counts_the_new_one() -> None:
    assert checks.check_max_open_orders(4, 5) is R.NONE
    assert checks.check_max_open_orders(5, 5) is R.MAX_OPEN_ORDERS


@pytest.mark.parametrize(
    ("side", "qty", "position", "working", "expected"),
    [
        (Side.SELL, 100, 100, 0, R.NONE),  # closes the long
        (Side.SELL, 101, 100, 0, R.REDUCE_ONLY),  # would flip short
        (Side.SELL, 60, 100, 50, R.REDUCE_ONLY),  # with the working sell it could flip
        (Side.SELL, 50, 100, 50, R.NONE),
        (Side.BUY, 10, 100, 0, R.REDUCE_ONLY),  # adds to the long
        (Side.BUY, 10, 0, 0, R.REDUCE_ONLY),  # flat: anything opens
        (Side.SELL, 10, 0, 0, R.REDUCE_ONLY),
        (Side.BUY, 30, -30, 0, R.NONE),  # covers the short
        (Side.BUY, 31, -30, 0, R.REDUCE_ONLY),
    ],
)
def test_reduce_only_passes_only_orders_that_cannot_grow_the_position(
    side: Side, qty: int, position: int, working: int, expected: R
) -> None:
    assert checks.check_reduce_only(side, qty, position, working) is expected


def test_position_limit_uses_the_worst_case_and_lets_reductions_through() -> None:
    assert checks.worst_case_position(Side.BUY, 10, 50, 40) == 100
    assert checks.worst_case_position(Side.SELL, 10, 50, 40) == 0
    assert checks.check_position(100, 50, 100) is R.NONE
    assert checks.check_position(101, 50, 100) is R.POSITION_LIMIT
    assert checks.check_position(-101, 0, 100) is R.POSITION_LIMIT
    assert checks.check_position(150, 200, 100) is R.NONE  # oversized already, but shrinking


def test_gross_limit_refuses_growth_past_the_limit_only() -> None:
    assert checks.check_gross(1000, 0, 1000) is R.NONE
    assert checks.check_gross(1001, 0, 1000) is R.GROSS_LIMIT
    assert checks.check_gross(1500, 2000, 1000) is R.NONE


def test_net_limit_compares_absolute_values() -> None:
    assert checks.check_net(-1000, 0, 1000) is R.NONE
    assert checks.check_net(-1001, 0, 1000) is R.NET_LIMIT
    assert checks.check_net(-1500, 2000, 1000) is R.NONE


def test_credit_passes_a_hold_equal_to_the_buying_power() -> None:
    assert checks.check_credit(500, 500) is R.NONE
    assert checks.check_credit(501, 500) is R.CREDIT_LIMIT
    assert checks.check_credit(1, -5) is R.CREDIT_LIMIT
