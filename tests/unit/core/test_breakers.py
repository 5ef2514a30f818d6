from __future__ import annotations

from fractions import Fraction

import pytest

from oms.core.model.enums import TradingState
from risk.breakers import DrawdownLevel, drawdown, drawdown_level, escalate

SOD = 1_000_000
DEFAULTS = (500, 1000, 2000)  # 5 %, 10 %, 20 %


def test_drawdown_is_exact() -> None:
    assert drawdown(3, 2) == Fraction(1, 3)
    assert drawdown(100, 120) == Fraction(-1, 5)
    assert drawdown(0, -10) == 0


@pytest.mark.parametrize(
    ("equity", "level"),
    [
        (SOD, DrawdownLevel.NONE),
        (950_001, DrawdownLevel.NONE),
        (950_000, DrawdownLevel.WARN),  # exactly 5 %
        (900_001, DrawdownLevel.WARN),
        (900_000, DrawdownLevel.REDUCE),  # exactly 10 %
        (800_001, DrawdownLevel.REDUCE),
        (800_000, DrawdownLevel.HALT),  # exactly 20 %
        (-5, DrawdownLevel.HALT),
        (2 * SOD, DrawdownLevel.NONE),
    ],
)
def test_default_thresholds_trip_at_exactly_5_10_20_percent(equity: int, level: DrawdownLevel) -> None:
    assert drawdown_level(SOD, equity, *DEFAULTS) is level


def test_breakers_are_inert_without_start_of_day_equity() -> None:
    assert drawdown_level(0, -100, *DEFAULTS) is DrawdownLevel.NONE


@pytest.mark.parametrize(
    ("state", "level", "after"),
    [
        (TradingState.ACTIVE, DrawdownLevel.WARN, TradingState.ACTIVE),  # a flag, not a block
        (TradingState.ACTIVE, DrawdownLevel.REDUCE, TradingState.REDUCING),
        (TradingState.ACTIVE, DrawdownLevel.HALT, TradingState.HALTED),
        (TradingState.REDUCING, DrawdownLevel.HALT, TradingState.HALTED),
        (TradingState.HALTED, DrawdownLevel.REDUCE, TradingState.HALTED),  # never de-escalates
        (TradingState.REDUCING, DrawdownLevel.NONE, TradingState.REDUCING),
    ],
)
def test_escalation_is_one_way(state: TradingState, level: DrawdownLevel, after: TradingState) -> None:
    assert escalate(state, level) is after
