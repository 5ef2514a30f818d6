"""One account's state and rules, pure: what an account actor owns.

- `events`: the admin and allowance events an account journals besides the order events, their msgpack codec, and
  the errors for events that can only be bugs.
- `ledger`: reference prices, positions (cost basis, realized P&L) and working orders.
- `view`: `AccountView`, every read of an account: its books valued at the marks, and the decisions on new orders
  and replaces by the checks of `risk.rules.RULES`, in that order (the native kernel answers most of them).
- `allowance`: reserved mode's allowance: grant, top-up, spends, and the certificate that keeps it valid.
- `state`: `AccountState(AccountView)`, the only way an account changes: events applied, admin commands, the
  kernel's copy of the numbers, snapshots.

Every name below is importable from `oms.core.accounts` itself.
"""

from oms.core.accounts.allowance import AllowanceRequest, AllowanceState, SymbolHeadroom
from oms.core.accounts.events import (
    AccountError,
    AccountEvent,
    AdminEvent,
    AllowanceGranted,
    AllowanceOverdrawn,
    AllowanceReturned,
    AllowanceRevoked,
    AllowanceSpent,
    AllowanceToppedUp,
    DayStarted,
    DuplicateOrder,
    KillSwitchSet,
    LimitsChanged,
    Marked,
    MissingReference,
    OverfillError,
    Quoted,
    StaleAllowance,
    SymbolAllowance,
    SymbolTopUp,
    TradingStateSet,
    UnknownOrder,
    WrongAccount,
    account_decoder,
    account_encoder,
)
from oms.core.accounts.ledger import MarketPrices, MarketView, OpenOrder, Position
from oms.core.accounts.state import AccountSnapshot, AccountState

__all__ = [
    "AccountError",
    "AccountEvent",
    "AccountSnapshot",
    "AccountState",
    "AdminEvent",
    "AllowanceGranted",
    "AllowanceOverdrawn",
    "AllowanceRequest",
    "AllowanceReturned",
    "AllowanceRevoked",
    "AllowanceSpent",
    "AllowanceState",
    "AllowanceToppedUp",
    "DayStarted",
    "DuplicateOrder",
    "KillSwitchSet",
    "LimitsChanged",
    "Marked",
    "MarketPrices",
    "MarketView",
    "MissingReference",
    "OpenOrder",
    "OverfillError",
    "Position",
    "Quoted",
    "StaleAllowance",
    "SymbolAllowance",
    "SymbolHeadroom",
    "SymbolTopUp",
    "TradingStateSet",
    "UnknownOrder",
    "WrongAccount",
    "account_decoder",
    "account_encoder",
]
