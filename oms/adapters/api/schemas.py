"""What crosses the REST/WebSocket API: msgspec Structs (litestar decodes, encodes and documents them).

Prices, quantities and money are decimal strings, converted exactly at the edge (`oms.core.model.instruments`,
`risk.money`); no float ever carries one. Enumerations are lower-case strings.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

__all__ = [
    "AccountSummary",
    "BracketRequest",
    "ChildOut",
    "EventOut",
    "ExecutionOut",
    "Health",
    "IcebergRequest",
    "KillSwitchOut",
    "KillSwitchRequest",
    "LimitsOut",
    "OrderOut",
    "OrderRequest",
    "ParentEventOut",
    "ParentOut",
    "ParentRequest",
    "PositionOut",
    "PovRequest",
    "ReplaceRequest",
    "RiskOut",
    "SymbolLimitsOut",
    "TwapRequest",
    "VwapRequest",
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
StatusFilterText = Literal["open", "closed", "all", StatusText]  # typing flattens it: the statuses too
DirectionText = Literal["asc", "desc"]
Decimal = Annotated[
    str, msgspec.Meta(max_length=64, description='plain decimal text, e.g. "101.25"; never a JSON number')
]
Name = Annotated[str, msgspec.Meta(max_length=64)]
CLIENT_ORDER_ID_PATTERN = r"^[!-}][!-~]*$"  # printable ASCII, no space; a leading '~' marks the OMS's own ids
ClientOrderId = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=64,
        pattern=CLIENT_ORDER_ID_PATTERN,
        description="printable ASCII without spaces, not starting with '~' (kept for the OMS's own ids)",
    ),
]
EpochNs = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1, description="nanoseconds since the epoch (UTC)")]
ParentId = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=48,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="letters, digits, '_' and '-': child orders are `<parent_id>.<n>`",
    ),
]
KindText = Literal["twap", "vwap", "pov", "iceberg", "bracket"]
ParentStatusText = Literal["new", "partially_filled", "pending_cancel", "filled", "canceled", "expired", "stopped"]
ProfileSourceText = Literal["given", "configured", "flat", "history"]


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
    client_order_id: ClientOrderId | None = None  # the order's new id; absent: it keeps the one it has


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
    # RFC 3339 UTC with nanoseconds (always 9 digits); null when it does not apply (yet), or not known (below)
    created_at: str | None = None  # the OMS took it (accepted, or rejected by risk)
    updated_at: str | None = None  # its last event: ack, fill, cancel, replace, expiry, reject, pending change
    filled_at: str | None = None  # it became filled
    canceled_at: str | None = None  # it was canceled


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
    venue: str | None = None  # of a fill: where it was executed
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
    pending: list[int] = []  # order ids whose cancel waits for their venue's answer (PendingCancel)


class TradingStateRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`halted`: no new order; `reducing`: only orders that reduce a position; `active`: resume."""

    state: Literal["active", "reducing", "halted"]


class TradingStateOut(msgspec.Struct, frozen=True):
    account: str
    state: str


Money = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{1,15}(\.[0-9]{1,9})?$", description="decimal, >= 0")]
Count = Annotated[int, msgspec.Meta(ge=1, le=1_000_000_000)]


class LimitsChange(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """New values for some of an account's limits; those not given stay."""

    max_order_notional: Money | None = None
    credit_limit: Money | None = None
    max_gross_notional: Money | None = None
    max_net_notional: Money | None = None
    max_open_orders: Count | None = None
    orders_per_window: Count | None = None
    window_ms: Count | None = None


class StreamTicketOut(msgspec.Struct, frozen=True):
    ticket: str  # good for one WebSocket handshake: /v1/accounts/{account}/stream?ticket=...
    expires_in_s: float


class AccountsOut(msgspec.Struct, frozen=True):
    accounts: list[str]  # the accounts the key may see, sorted


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


class Readiness(msgspec.Struct, frozen=True):
    """`ready` when every check is `ok` (or `ok (...)`, with a note); else `not_ready`, and each failing check says
    why."""

    status: str
    checks: dict[str, str]


# -- ALGORITHMIC PARENT ORDERS (docs/api.md, docs/algos.md) --


class _ParentRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True, tag_field="kind"):
    account: Name
    symbol: Name
    side: SideText
    qty: Decimal
    parent_id: ParentId | None = None  # generated when absent; unique among every parent of the engine


class TwapRequest(_ParentRequest, tag="twap", kw_only=True):
    """`qty` in `slices` equal IOC slices from `start_ns` (default: now) to `end_ns`: market orders, or limits at
    `limit_price` (a cap for a buy, a floor for a sell). `jitter_pct` (0-100) moves each slice later and changes
    its size by up to that share, from a seeded generator (`seed`): the same request gives the same schedule."""

    end_ns: EpochNs
    start_ns: EpochNs | None = None
    slices: int
    limit_price: Decimal | None = None
    jitter_pct: int = 0
    seed: Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)] = 0


class VwapRequest(_ParentRequest, tag="vwap", kw_only=True):
    """[start_ns, end_ns] cut into buckets, each getting its weight's share of `qty` at the bucket's start.
    `profile`: a list of integer weights (one per bucket), `"flat"` (`buckets` equal buckets), `"history"` (the
    default: `buckets` buckets weighted by the symbol's traded volume at the same time of day on past days, from
    ClickHouse; when there is none, `fallback` is used, `"flat"` or a configured profile's name, and the answer's
    `profile_note` says why), or the name of a profile configured in the algo engine."""

    end_ns: EpochNs
    start_ns: EpochNs | None = None
    profile: list[int] | Name = "history"
    buckets: int = 10
    fallback: Name = "flat"
    limit_price: Decimal | None = None


class PovRequest(_ParentRequest, tag="pov", kw_only=True):
    """Trade `rate_pct` percent (0.01 to 100, two decimals) of the volume others print from `start_ns` (default:
    now) until `qty` is done or `end_ns` passes, in IOC children of `min_clip` (default: one lot) to `max_clip`
    (default: qty), market or limited at `limit_price`."""

    rate_pct: Decimal
    min_clip: Decimal | None = None
    max_clip: Decimal | None = None
    start_ns: EpochNs | None = None
    end_ns: EpochNs | None = None
    limit_price: Decimal | None = None


class IcebergRequest(_ParentRequest, tag="iceberg", kw_only=True):
    """One resting GTC limit child of `display_qty` at `price` at a time, the next as soon as it fills."""

    display_qty: Decimal
    price: Decimal


class BracketRequest(_ParentRequest, tag="bracket", kw_only=True):
    """An entry (GTC limit at `entry_price`, or a market order when absent), then a take-profit limit and a
    stop-loss as an OCO pair on the filled quantity. `synthetic_stop` (default) keeps the stop in the algo engine
    (sent, market or IOC limit at `stop_limit`, only once the take-profit is canceled with nothing filled);
    otherwise it rests at the venue as a stop / stop-limit order. A buy needs stop_loss < entry_price <
    take_profit, a sell the reverse."""

    take_profit: Decimal
    stop_loss: Decimal
    entry_price: Decimal | None = None
    stop_limit: Decimal | None = None
    synthetic_stop: bool = True


ParentRequest = TwapRequest | VwapRequest | PovRequest | IcebergRequest | BracketRequest


class ChildOut(msgspec.Struct, frozen=True, kw_only=True):
    """One child order of a parent. `status` is the order's (`lost`: not found after an OMS restart);
    `order_id` is null for a child refused before it got one."""

    client_order_id: str
    order_id: int | None
    role: str  # slice, entry, tp (take-profit), sl (stop-loss)
    side: SideText
    ord_type: OrdTypeText
    qty: str
    price: str | None
    cum_qty: str
    avg_px: str | None
    status: str
    outcome: str | None  # filled, canceled, expired, rejected or lost once it ended; null while it works
    ts_ns: int


class ParentOut(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A parent as it stands: the fields every kind has, then its own parameters (absent when they do not apply).
    `cum_qty` and `avg_px` are sums over the children's fills (a bracket: its entry's; the exit is `exit_*`)."""

    parent_id: str
    kind: KindText
    account: str
    symbol: str
    side: SideText
    qty: str
    status: ParentStatusText
    cum_qty: str
    leaves_qty: str
    working_qty: str  # in working children now
    avg_px: str | None
    child_count: int
    child_rejects: int  # children refused (risk or venue)
    text: str | None  # why it ended, or the latest child reject
    exit_cum_qty: str | None = None
    exit_avg_px: str | None = None
    start_ns: int | None = None
    end_ns: int | None = None
    limit_price: str | None = None
    slices: int | None = None
    jitter_pct: int | None = None
    seed: int | None = None
    profile: list[int] | None = None
    profile_source: ProfileSourceText | None = None
    profile_name: str | None = None
    profile_note: str | None = None
    rate_pct: str | None = None
    min_clip: str | None = None
    max_clip: str | None = None
    display_qty: str | None = None
    price: str | None = None
    entry_price: str | None = None
    take_profit: str | None = None
    stop_loss: str | None = None
    stop_limit: str | None = None
    synthetic_stop: bool | None = None
    children: list[ChildOut] | None = None  # GET /v1/algos/{parent_id} and POST; the list leaves them out


class ParentEventOut(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One parent event on the account's stream: parent_accepted, parent_updated (status and quantities after a
    change), parent_done, child_rejected, cancel_parent_rejected, oco_breach."""

    type: str
    parent_id: str
    account: str
    symbol: str
    kind: KindText
    ts_ns: int
    status: ParentStatusText | None = None
    side: SideText | None = None
    qty: str | None = None
    cum_qty: str | None = None
    leaves_qty: str | None = None
    working_qty: str | None = None
    avg_px: str | None = None
    client_order_id: str | None = None
    reason_code: str | None = None
    reason: str | None = None
