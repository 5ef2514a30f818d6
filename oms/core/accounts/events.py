"""What an account's journal holds: the admin and allowance events `AccountState.apply` takes besides the order
events of `oms.core.model.messages`, their one msgpack codec, and the errors for events that can only be bugs.

The msgspec tags are the journal's: records already on disk decode by them (tests/unit/core/test_accounts.py pins the
bytes).

Exceptions are for bugs only: events for another account (WrongAccount), fills or replaces for orders the account
never accepted (UnknownOrder), an order accepted twice (DuplicateOrder), an overfill (OverfillError), an order
without a limit price accepted while the account has no reference price for it (MissingReference), a spend or
top-up against a void or unknown grant (StaleAllowance), a spend beyond what is left of the grant or a top-up of a
symbol it does not hold (AllowanceOverdrawn).
"""

from __future__ import annotations

import msgspec

from oms.core.model.enums import Side, TradingState
from oms.core.model.messages import Event
from risk.limits import AccountLimits

__all__ = [
    "AccountError",
    "AccountEvent",
    "AdminEvent",
    "AllowanceEvent",
    "AllowanceGranted",
    "AllowanceOverdrawn",
    "AllowanceReturned",
    "AllowanceRevoked",
    "AllowanceSpent",
    "AllowanceToppedUp",
    "DayStarted",
    "DuplicateOrder",
    "KillSwitchSet",
    "LimitsChanged",
    "Marked",
    "MissingReference",
    "OverfillError",
    "Quoted",
    "StaleAllowance",
    "SymbolAllowance",
    "SymbolTopUp",
    "TradingStateSet",
    "UnknownOrder",
    "WrongAccount",
    "account_decoder",
    "account_encoder",
]


# -- ERRORS (bugs, never decisions) --


class AccountError(Exception):
    """An event the account cannot take: a bug upstream or a journal that does not belong to this account."""


class WrongAccount(AccountError):
    pass


class UnknownOrder(AccountError):
    pass


class DuplicateOrder(AccountError):
    pass


class OverfillError(AccountError):
    pass


class MissingReference(AccountError):
    pass


class StaleAllowance(AccountError):
    """A spend reported against an allowance that is void or was never granted."""


class AllowanceOverdrawn(AccountError):
    """A spend larger than what is left of the allowance."""


# -- ADMIN EVENTS --


class Marked(msgspec.Struct, frozen=True, tag="marked"):
    """A last trade: marks positions to `price` and becomes the symbol's reference price."""

    account: str
    symbol: str
    price: int
    ts_ns: int


class Quoted(msgspec.Struct, frozen=True, tag="quoted"):
    """Best bid and ask; their mid is the reference price while the symbol has no last trade."""

    account: str
    symbol: str
    bid: int | None
    ask: int | None
    ts_ns: int


class KillSwitchSet(msgspec.Struct, frozen=True, tag="kill_switch_set"):
    account: str
    on: bool
    ts_ns: int


class TradingStateSet(msgspec.Struct, frozen=True, tag="trading_state_set"):
    """An operator's choice of trading state: the only way back to ACTIVE after a breaker tripped."""

    account: str
    state: TradingState
    ts_ns: int


class LimitsChanged(msgspec.Struct, frozen=True, tag="limits_changed"):
    """New limits. Cash is not touched (`start_cash` only seeds a new account)."""

    account: str
    limits: AccountLimits
    ts_ns: int


class DayStarted(msgspec.Struct, frozen=True, tag="day_started"):
    """Start of a trading day: start-of-day equity becomes the current equity; seen ClOrdIDs are forgotten."""

    account: str
    ts_ns: int


class SymbolAllowance(msgspec.Struct, frozen=True):
    """What an allowance grants on one symbol: limit prices in [lo, hi], every order valued at most at `value_cap`
    (orders without a limit price at exactly `value_cap`), and at most `buy_qty` / `sell_qty` more on each side."""

    symbol: str
    lo: int
    hi: int
    value_cap: int
    buy_qty: int
    sell_qty: int


class AllowanceGranted(msgspec.Struct, frozen=True, tag="allowance_granted"):
    """A budget the engine may spend without asking: `orders` order tokens, `credit` money of holds, and the
    per-symbol terms. `rate_used` is how many orders the rate window counted at `ts_ns` (see `AllowanceState`)."""

    account: str
    grant_id: int
    orders: int
    credit: int
    rate_used: int
    symbols: tuple[SymbolAllowance, ...]
    ts_ns: int


class AllowanceSpent(msgspec.Struct, frozen=True, tag="allowance_spent"):
    """The engine accepted order `order_id` under grant `grant_id`, spending one token, `credit` and `qty` of the
    symbol's headroom on `side`. Journaled immediately before that order's OrderAccepted. `wal`: the id of the gate's
    write-ahead entry holding the pair (`oms.infra.redis.reportlog`), empty when the gate keeps no log."""

    account: str
    grant_id: int
    order_id: int
    symbol: str
    side: Side
    qty: int
    credit: int
    ts_ns: int
    wal: str = ""


class SymbolTopUp(msgspec.Struct, frozen=True):
    """Quantity headroom a top-up adds to one symbol of the live allowance (its price band stays)."""

    symbol: str
    buy_qty: int
    sell_qty: int


class AllowanceToppedUp(msgspec.Struct, frozen=True, tag="allowance_topped_up"):
    """More of grant `grant_id`, same terms otherwise: `orders` more tokens, `credit` more money, more quantity
    headroom per symbol. The grant id stays, so spends already on their way against it remain good."""

    account: str
    grant_id: int
    orders: int
    credit: int
    symbols: tuple[SymbolTopUp, ...]
    ts_ns: int


class AllowanceReturned(msgspec.Struct, frozen=True, tag="allowance_returned"):
    """The engine gives back what is left of grant `grant_id` (a no-op when it is already void)."""

    account: str
    grant_id: int
    ts_ns: int


class AllowanceRevoked(msgspec.Struct, frozen=True, tag="allowance_revoked"):
    """An operator voids whatever allowance the account has out."""

    account: str
    ts_ns: int


AllowanceEvent = AllowanceGranted | AllowanceSpent | AllowanceToppedUp | AllowanceReturned | AllowanceRevoked
AdminEvent = Marked | Quoted | KillSwitchSet | TradingStateSet | LimitsChanged | DayStarted | AllowanceEvent
AccountEvent = Event | AdminEvent

account_encoder = msgspec.msgpack.Encoder()
account_decoder: msgspec.msgpack.Decoder[AccountEvent] = msgspec.msgpack.Decoder(AccountEvent)
