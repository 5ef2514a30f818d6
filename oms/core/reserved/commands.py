"""Typed commands of reserved mode: operator changes, and the calls a gate makes to the shard owning its accounts.

Operator changes (`OperatorCommand`; each revokes the account's allowance, see docs/reserved.md): `apply_operator`
applies one to its account's state and returns the event to journal; `OperatorMethods` gives every class that
applies them (the gate and the hosts) the same methods, each building its command.

Gate calls (`GateCall`): what an `AllowanceGate` asks of its `Shard`, one struct per call, so a shard in another
process receives the call as data and dispatches on its type (`oms.infra.ray.shard.AccountShard.serve_gate`).
"""

from __future__ import annotations

from typing import Protocol

import msgspec

from oms.core.accounts import AccountEvent, AccountState, AdminEvent, AllowanceRequest
from oms.core.model.enums import TradingState
from oms.core.model.messages import OrderAccepted, OrderRejected, ReplaceOrder, SubmitOrder, TradePrinted
from oms.core.reserved.allowance import GrantAsk
from risk.limits import AccountLimits

__all__ = [
    "CheckReplace",
    "Decide",
    "Decision",
    "GateCall",
    "Item",
    "Operate",
    "OperatorCommand",
    "OperatorMethods",
    "Resync",
    "ReturnAllowance",
    "RevokeAllowance",
    "SetKillSwitch",
    "SetLimits",
    "SetTradingState",
    "Settle",
    "StartDay",
    "TopUp",
    "apply_operator",
]

# -- OPERATOR COMMANDS --


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


# -- GATE CALLS --

Decision = OrderAccepted | OrderRejected
Item = tuple[SubmitOrder, int, int]  # (command, order id, now_ns)


class Decide(msgspec.Struct, frozen=True, tag="decide"):
    """Strict decisions of `items`, in order (each sees the ones before it), then the grants `asks` call for.
    `quotes`: symbol -> (best bid, best ask) where it is routed, for items without a limit price: an account without
    a trade price for the symbol takes the quote (journaled, `Quoted`) and values the order at its mid."""

    items: list[Item]
    asks: dict[str, GrantAsk]
    quotes: dict[str, tuple[int, int]] = {}


class CheckReplace(msgspec.Struct, frozen=True, tag="check_replace"):
    """The strict check of replace `cmd` (RejectReason.NONE: it may go to the venue; nothing changes until then)."""

    cmd: ReplaceOrder
    order_id: int
    now_ns: int


class Settle(msgspec.Struct, frozen=True, tag="settle"):
    """Post-trade `events`, then the trade `prints` (they mark the accounts), then the grants `asks` call for.
    `wal`: per account, the write-ahead entry that holds its `events` (written before the call; none without a log):
    a host that rebuilt the account from its log since then has journaled them already and skips them."""

    events: list[AccountEvent]
    prints: list[TradePrinted]
    asks: dict[str, GrantAsk]
    wal: dict[str, str] = {}


class TopUp(msgspec.Struct, frozen=True, tag="top_up"):
    """More of `account`'s live grant `grant_id`, sized by `request` (see `AccountState.top_up_allowance`)."""

    account: str
    grant_id: int
    request: AllowanceRequest
    ts_ns: int


class ReturnAllowance(msgspec.Struct, frozen=True, tag="return_allowance"):
    """What is left of `account`'s grant `grant_id` goes back to the account (a no-op when the grant is void)."""

    account: str
    grant_id: int
    ts_ns: int


class Operate(msgspec.Struct, frozen=True, tag="operate"):
    """An operator change made through the gate, which has dropped the account's allowance first."""

    command: OperatorCommand


class Resync(msgspec.Struct, frozen=True, tag="resync"):
    """Rebuild `account` from its journal and the gate's write-ahead log: post-trade events the gate wrote ahead but
    the host may not have taken (its call failed) are journaled, once."""

    account: str


GateCall = Decide | CheckReplace | Settle | TopUp | ReturnAllowance | Operate | Resync
