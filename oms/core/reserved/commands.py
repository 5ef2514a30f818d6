"""Operator changes as typed commands (see docs/reserved.md: each revokes the account's allowance).

`apply_operator` applies one to its account's state and returns the event to journal; `OperatorMethods` gives
every class that applies them (the gate and the hosts) the same methods, each building its command.
"""

from __future__ import annotations

from typing import Protocol

import msgspec

from oms.core.accounts import AccountState, AdminEvent
from oms.core.model.enums import TradingState
from risk.limits import AccountLimits

__all__ = [
    "OperatorCommand",
    "OperatorMethods",
    "RevokeAllowance",
    "SetKillSwitch",
    "SetLimits",
    "SetTradingState",
    "StartDay",
    "apply_operator",
]


class SetKillSwitch(msgspec.Struct, frozen=True, tag="set_kill_switch"):
    """Block (on) or allow new orders of `account`; its working orders are left for the caller to cancel."""

    account: str
    on: bool
    ts_ns: int


class SetTradingState(msgspec.Struct, frozen=True, tag="set_trading_state"):
    """Set `account`'s trading state outright, de-escalation included."""

    account: str
    trading_state: TradingState
    ts_ns: int


class SetLimits(msgspec.Struct, frozen=True, tag="set_limits"):
    """New limits for `account` (its risk mode follows `limits.risk_mode`)."""

    account: str
    limits: AccountLimits
    ts_ns: int


class StartDay(msgspec.Struct, frozen=True, tag="start_day"):
    """Start `account`'s trading day."""

    account: str
    ts_ns: int


class RevokeAllowance(msgspec.Struct, frozen=True, tag="revoke_allowance"):
    """Void whatever allowance `account` has out."""

    account: str
    ts_ns: int


OperatorCommand = SetKillSwitch | SetTradingState | SetLimits | StartDay | RevokeAllowance


def apply_operator(state: AccountState, command: OperatorCommand) -> AdminEvent:
    """Apply `command` to `state` (the state of `command.account`) and return its event for the journal.
    TypeError for anything that is not an OperatorCommand."""
    match command:
        case SetKillSwitch(on=on, ts_ns=ts_ns):
            return state.set_kill_switch(on, ts_ns)
        case SetTradingState(trading_state=trading_state, ts_ns=ts_ns):
            return state.set_trading_state(trading_state, ts_ns)
        case SetLimits(limits=limits, ts_ns=ts_ns):
            return state.set_limits(limits, ts_ns)
        case StartDay(ts_ns=ts_ns):
            return state.start_day(ts_ns)
        case RevokeAllowance(ts_ns=ts_ns):
            return state.revoke_allowance(ts_ns)
    raise TypeError(f"not an operator command: {command!r}")


class _Operates(Protocol):
    def operate(self, command: OperatorCommand) -> list[int]: ...


class OperatorMethods:
    """The operator changes as methods; the class they are mixed into applies each command in `operate`, which
    returns the account's working order ids."""

    def set_kill_switch(self: _Operates, account: str, on: bool, ts_ns: int) -> list[int]:
        """Block (or unblock) new orders of `account`; returns its working order ids for the caller to cancel."""
        return self.operate(SetKillSwitch(account, on, ts_ns))

    def set_trading_state(self: _Operates, account: str, trading_state: TradingState, ts_ns: int) -> None:
        self.operate(SetTradingState(account, trading_state, ts_ns))

    def set_limits(self: _Operates, account: str, limits: AccountLimits, ts_ns: int) -> None:
        self.operate(SetLimits(account, limits, ts_ns))

    def start_day(self: _Operates, account: str, ts_ns: int) -> None:
        self.operate(StartDay(account, ts_ns))

    def revoke_allowance(self: _Operates, account: str, ts_ns: int) -> None:
        """Void whatever allowance `account` has out."""
        self.operate(RevokeAllowance(account, ts_ns))
