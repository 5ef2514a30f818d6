"""What crosses the REST/WebSocket API: msgspec Structs (litestar decodes, encodes and documents them).

Prices, quantities and money are decimal strings, converted exactly at the edge (`oms.model.instruments`,
`risk.money`); no float ever carries one. Enumerations are lower-case strings.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

__all__ = [
    "AccountSummary",
    "EventOut",
    "ExecutionOut",
    "Health",
    "KillSwitchOut",
    "KillSwitchRequest",
    "LimitsOut",
    "OrderOut",
    "OrderRequest",
    "PositionOut",
    "ReplaceRequest",
    "RiskOut",
    "SymbolLimitsOut",
]

SideText = Literal["buy", "sell"]
OrdTypeText = Literal["market", "limit", "stop", "stop_limit"]
TifText = Literal["day", "gtc", "ioc", "fok", "gtd"]
StatusText = Literal[
    "pending_new",
    "new",
    "partially_filled",
    "filled",
    "pending_cancel",
    "canceled",
    "pending_replace",
    "replaced",
    "rejected",
    "expired",
    "done_for_day",
]
Decimal = Annotated[
    str, msgspec.Meta(max_length=64, description='plain decimal text, e.g. "101.25"; never a JSON number')
]
Name = Annotated[str, msgspec.Meta(max_length=64)]
ClientOrderId = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[!-~]+$")]


class OrderRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A new order. `price` for limit and stop_limit, `stop_price` for stop and stop_limit, `display_qty` makes an
    iceberg, `expire_at_ns` (epoch nanoseconds) goes with tif gtd only."""

    account: Name
    symbol: Name
    side: SideText
    qty: Decimal
    ord_type: OrdTypeText = "limit"
    price: Decimal | None = None
    stop_price: Decimal | None = None
    tif: TifText = "day"
    display_qty: Decimal | None = None
    expire_at_ns: Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)] | None = None
    client_order_id: ClientOrderId | None = None  # generated when absent


class ReplaceRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A cancel/replace: the new total quantity (filled part included, like FIX OrderQty) and/or the new price."""

    qty: Decimal | None = None
    price: Decimal | None = None
    client_order_id: ClientOrderId | None = None  # the replace's own id; generated when absent


class OrderOut(msgspec.Struct, frozen=True, kw_only=True):
    """An order as it stands. A risk reject is an order with status `rejected` and `reject_code`/`reject_reason`."""

    order_id: int
    client_order_id: str
    account: str
    symbol: str
    side: SideText
    ord_type: OrdTypeText
    tif: TifText
    qty: str
    price: str | None
    stop_price: str | None = None
    display_qty: str | None = None
    status: StatusText
    cum_qty: str
    leaves_qty: str
    avg_px: str | None  # exact average rounded to 6 digits beyond the price precision; null before a fill
    reject_code: str | None = None
    reject_reason: str | None = None
    session: str


class ExecutionOut(msgspec.Struct, frozen=True, kw_only=True):
    exec_id: int
    order_id: int
    client_order_id: str
    account: str
    symbol: str
    side: SideText
    qty: str
    price: str
    cum_qty: str
    leaves_qty: str
    aggressor: bool
    contra_order_id: int | None
    venue: str
    ts_ns: int


class EventOut(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One order event on the WebSocket stream, with the order's status and quantities right after it."""

    type: str  # order_accepted, order_rejected, order_filled, order_canceled, order_replaced, order_expired, ...
    order_id: int
    client_order_id: str
    account: str
    symbol: str
    ts_ns: int
    status: StatusText | None = None
    cum_qty: str | None = None
    leaves_qty: str | None = None
    avg_px: str | None = None
    exec_id: int | None = None
    side: SideText | None = None
    last_qty: str | None = None
    last_px: str | None = None
    aggressor: bool | None = None
    orig_client_order_id: str | None = None
    qty: str | None = None
    price: str | None = None
    reason_code: str | None = None
    reason: str | None = None


class KillSwitchRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    on: bool


class KillSwitchOut(msgspec.Struct, frozen=True):
    accounts: list[str]
    on: bool
    canceled: list[int]  # order ids the switch canceled


class PositionOut(msgspec.Struct, frozen=True, kw_only=True):
    symbol: str
    qty: str
    cost: str  # money basis of the open quantity
    realized_pnl: str
    market_value: str | None = None  # at the account's reference price (null when the view cannot say)
    unrealized_pnl: str | None = None


class AccountSummary(msgspec.Struct, frozen=True, kw_only=True):
    account: str
    cash: str
    equity: str
    realized_pnl: str
    unrealized_pnl: str
    exposure: str  # money held for working orders
    positions: list[PositionOut]


class SymbolLimitsOut(msgspec.Struct, frozen=True):
    max_order_qty: str
    max_position: str
    collar_pct: str


class LimitsOut(msgspec.Struct, frozen=True, kw_only=True):
    max_order_notional: str
    credit_limit: str
    max_gross_notional: str
    max_net_notional: str
    start_cash: str
    max_open_orders: int
    orders_per_window: int
    window_ms: int
    restricted_symbols: list[str]
    drawdown_warn_pct: str
    drawdown_reduce_pct: str
    drawdown_halt_pct: str
    risk_mode: str
    symbols: dict[str, SymbolLimitsOut]


class RiskOut(msgspec.Struct, frozen=True, kw_only=True):
    account: str
    trading_state: str
    kill_switch: bool
    working_orders: int
    buying_power: str | None = None
    drawdown_level: str | None = None
    limits: LimitsOut


class Health(msgspec.Struct, frozen=True):
    status: str
    orders: int
