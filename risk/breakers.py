"""Drawdown circuit breakers on start-of-day equity.

drawdown = (sod_equity - equity) / sod_equity, compared with thresholds in basis points by integer
cross-multiplication, so there is no rounding anywhere. Defaults: 5 % warn, 10 % reduce-only, 20 % halt.

Escalation is automatic and one-way: WARN is a flag only (it blocks nothing), REDUCE moves an ACTIVE account to
REDUCING, HALT moves any account to HALTED. Nothing here ever de-escalates; going back to ACTIVE takes an explicit
`set_trading_state` by an operator. Breakers are inert while sod_equity <= 0 (there is no drawdown of nothing).
"""

from __future__ import annotations

from enum import IntEnum
from fractions import Fraction

from oms.core.model.enums import TradingState

__all__ = ["BP", "DrawdownLevel", "drawdown", "drawdown_level", "escalate"]

BP = 10_000  # basis points in 1


class DrawdownLevel(IntEnum):
    NONE = 0
    WARN = 1
    REDUCE = 2
    HALT = 3


def drawdown(sod_equity: int, equity: int) -> Fraction:
    """Exact fractional loss since the start of day (negative for a gain); 0 when sod_equity <= 0."""
    if sod_equity <= 0:
        return Fraction(0)
    return Fraction(sod_equity - equity, sod_equity)


def drawdown_level(sod_equity: int, equity: int, warn_bp: int, reduce_bp: int, halt_bp: int) -> DrawdownLevel:
    """The highest threshold the drawdown has reached (>=); NONE while sod_equity <= 0."""
    if sod_equity <= 0:
        return DrawdownLevel.NONE
    loss_bp_scaled = (sod_equity - equity) * BP  # compare loss/sod >= t/BP as loss*BP >= t*sod
    if loss_bp_scaled >= halt_bp * sod_equity:
        return DrawdownLevel.HALT
    if loss_bp_scaled >= reduce_bp * sod_equity:
        return DrawdownLevel.REDUCE
    if loss_bp_scaled >= warn_bp * sod_equity:
        return DrawdownLevel.WARN
    return DrawdownLevel.NONE


def escalate(state: TradingState, level: DrawdownLevel) -> TradingState:
    """The trading state after `level` is reached: never less restrictive than `state`."""
    if level >= DrawdownLevel.HALT:
        return TradingState.HALTED
    if level >= DrawdownLevel.REDUCE and state is TradingState.ACTIVE:
        return TradingState.REDUCING
    return state
