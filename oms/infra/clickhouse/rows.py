"""Turning journal and tape records into ClickHouse columns. Pure: no I/O.

Prices and quantities leave the integer domain here as exact decimals (`Decimal`, the integer scaled by
10**-precision of its instrument), for the Decimal(38, 9) columns; timestamps stay integer ns. Each builder returns
`(column_names, columns)` ready for `client.insert(table, columns, column_names=..., column_oriented=True)`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, NamedTuple

import msgspec

from oms.core.accounts import DayStarted, KillSwitchSet, LimitsChanged, TradingStateSet
from oms.core.algos.messages import (
    AlgoRecord,
    CancelParent,
    ChildDone,
    ChildSent,
    ParentClosing,
    SubmitBracket,
    SubmitIceberg,
    SubmitPov,
    SubmitTwap,
    SubmitVwap,
)
from oms.core.model.enums import CancelReason, OrdType, RejectReason, Side, TimeInForce
from oms.core.model.instruments import InstrumentRegistry
from oms.core.model.messages import (
    CancelRejected,
    OperatorAction,
    OrderAccepted,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderReplaced,
    TradePrinted,
)
from oms.infra.clickhouse.tape import Quote

__all__ = [
    "ORDER_EVENTS",
    "PARENT_RECORDS",
    "PARENT_SUBMITS",
    "Columns",
    "Scale",
    "action_columns",
    "fill_columns",
    "order_columns",
    "parent_columns",
    "quote_columns",
    "scales",
    "split_ids",
    "trade_columns",
]

ORDER_EVENTS = (OrderAccepted, OrderRejected, OrderCanceled, OrderReplaced, OrderExpired, CancelRejected)
_SIDE = {Side.BUY: "BUY", Side.SELL: "SELL"}
_ORD_TYPE = {t: t.name for t in OrdType}
_TIF = {t: t.name for t in TimeInForce}

Columns = tuple[tuple[str, ...], list[list[Any]]]


class Scale(NamedTuple):
    """How to turn an instrument's integer units into decimals, and its class for best-execution reports."""

    price_div: int
    qty_div: int
    asset_class: str
    price_places: int = 0
    qty_places: int = 0


def scales(instruments: InstrumentRegistry) -> dict[str, Scale]:
    """Symbol -> Scale for every instrument."""
    return {
        i.symbol: Scale(10**i.price_precision, 10**i.qty_precision, i.asset_class, i.price_precision,
                        i.qty_precision)
        for i in instruments
    }  # fmt: skip


def split_ids(ids: Sequence[bytes]) -> tuple[list[int], list[int]]:
    """Stream ids `b"<ms>-<seq>"` as two integer lists (ms, seq)."""
    both = list(map(int, b" ".join(ids).replace(b"-", b" ").split()))
    return both[0::2], both[1::2]


FILL_COLUMNS = (
    "exec_id", "order_id", "cl_ord_id", "contra_order_id", "account", "symbol", "asset_class", "side", "qty", "price",
    "leaves_qty", "cum_qty", "venue", "liquidity", "ts_ns", "src_ms", "src_seq",
)  # fmt: skip


def fill_columns(fills: Sequence[OrderFilled], ids: Sequence[bytes], scale: dict[str, Scale]) -> Columns:
    """Columns of `executions` for fills whose symbols are all in `scale` (KeyError otherwise)."""
    sc = [scale[f.symbol] for f in fills]
    ms, seq = split_ids(ids)
    cols = [
        [f.exec_id for f in fills],
        [f.order_id for f in fills],
        [f.cl_ord_id for f in fills],
        [f.contra_order_id for f in fills],
        [f.account for f in fills],
        [f.symbol for f in fills],
        [s.asset_class for s in sc],
        [_SIDE[f.side] for f in fills],
        [Decimal(f.qty).scaleb(-s.qty_places) for f, s in zip(fills, sc, strict=True)],
        [Decimal(f.price).scaleb(-s.price_places) for f, s in zip(fills, sc, strict=True)],
        [Decimal(f.leaves_qty).scaleb(-s.qty_places) for f, s in zip(fills, sc, strict=True)],
        [Decimal(f.cum_qty).scaleb(-s.qty_places) for f, s in zip(fills, sc, strict=True)],
        [f.venue for f in fills],
        ["AGGRESSIVE" if f.aggressor else "PASSIVE" for f in fills],
        [f.ts_ns for f in fills],
        ms,
        seq,
    ]
    return FILL_COLUMNS, cols


ORDER_COLUMNS = (
    "event", "order_id", "cl_ord_id", "orig_cl_ord_id", "account", "symbol", "asset_class", "side", "ord_type", "tif",
    "session", "venue", "parent_id", "qty", "price", "stop_price", "leaves_qty", "reason", "text", "ts_ns", "src",
    "src_ms", "src_seq",
)  # fmt: skip


def _px(units: int | None, s: Scale | None) -> Decimal | None:
    return None if units is None or s is None else Decimal(units).scaleb(-s.price_places)


def _qty(units: int | None, s: Scale | None) -> Decimal | None:
    return None if units is None or s is None else Decimal(units).scaleb(-s.qty_places)


def order_columns(
    events: Sequence[Any], ids: Sequence[bytes], scale: dict[str, Scale], srcs: Sequence[str] | None = None
) -> Columns:
    """Columns of `orders` for order events other than fills (`ORDER_EVENTS`); `srcs`: each row's source stream
    ('' for an account journal, the default; 'records' for the OMS's own record).

    Only a reject may name a symbol missing from `scale` (its price and quantity are then left NULL); any other
    event with an unknown symbol raises KeyError.
    """
    rows: list[tuple[Any, ...]] = []
    for e in events:
        s = scale.get(e.symbol)
        asset_class = s.asset_class if s is not None else ""
        match e:
            case OrderAccepted():
                s = scale[e.symbol]
                rows.append((
                    "accepted", e.order_id, e.cl_ord_id, "", e.account, e.symbol, asset_class, _SIDE[e.side],
                    _ORD_TYPE[e.ord_type], _TIF[e.tif], e.session, e.venue, e.parent_id, _qty(e.qty, s),
                    _px(e.price, s), _px(e.stop_price, s), None, "", "", e.ts_ns,
                ))  # fmt: skip
            case OrderRejected():  # the order's terms when the refusal had them; the symbol may be unknown
                rows.append((
                    "rejected", e.order_id, e.cl_ord_id, "", e.account, e.symbol, asset_class,
                    "" if e.side is None else _SIDE[e.side], "" if e.ord_type is None else _ORD_TYPE[e.ord_type],
                    "" if e.tif is None else _TIF[e.tif], e.session, "", "", _qty(e.qty, s), _px(e.price, s),
                    _px(e.stop_price, s), None, e.reason.name, e.text, e.ts_ns,
                ))  # fmt: skip
            case OrderCanceled():
                s = scale[e.symbol]
                rows.append((
                    "canceled", e.order_id, e.cl_ord_id, e.orig_cl_ord_id, e.account, e.symbol, asset_class, "", "",
                    "", "", "", "", _qty(e.canceled_qty, s), None, None, None, e.reason.name, "", e.ts_ns,
                ))  # fmt: skip
            case OrderReplaced():
                s = scale[e.symbol]
                rows.append((
                    "replaced", e.order_id, e.cl_ord_id, e.orig_cl_ord_id, e.account, e.symbol, asset_class, "", "",
                    "", "", "", "", _qty(e.qty, s), _px(e.price, s), None, _qty(e.leaves_qty, s), "", "", e.ts_ns,
                ))  # fmt: skip
            case OrderExpired():
                s = scale[e.symbol]
                rows.append((
                    "expired", e.order_id, e.cl_ord_id, "", e.account, e.symbol, asset_class, "", "", "", "", "", "",
                    _qty(e.expired_qty, s), None, None, None, "", "", e.ts_ns,
                ))  # fmt: skip
            case CancelRejected():
                rows.append((
                    f"{e.response_to}_rejected", e.order_id, e.cl_ord_id, e.orig_cl_ord_id, e.account, e.symbol,
                    asset_class, "", "", "", "", "", "", None, None, None, None, e.reason.name, e.text, e.ts_ns,
                ))  # fmt: skip
            case _:
                raise TypeError(f"not an order event: {type(e).__name__}")
    ms, seq = split_ids(ids)
    cols = [list(c) for c in zip(*rows, strict=True)] if rows else [[] for _ in range(len(ORDER_COLUMNS) - 3)]
    return ORDER_COLUMNS, [*cols, [""] * len(rows) if srcs is None else list(srcs), ms, seq]


ACCOUNT_CHANGES = (KillSwitchSet, TradingStateSet, LimitsChanged, DayStarted)
CHANGE_COLUMNS = ("account", "change", "detail", "ts_ns", "src_ms", "src_seq")


def change_columns(changes: Sequence[Any], ids: Sequence[bytes]) -> Columns:
    """Columns of `account_changes` for journal events of the kinds in `ACCOUNT_CHANGES` (TypeError otherwise)."""
    rows: list[tuple[str, str]] = []
    for e in changes:
        match e:
            case KillSwitchSet():
                rows.append(("kill_switch", "on" if e.on else "off"))
            case TradingStateSet():
                rows.append(("trading_state", e.state.name))
            case LimitsChanged():
                rows.append(("limits", msgspec.json.encode(e.limits).decode()))
            case DayStarted():
                rows.append(("day_started", ""))
            case _:
                raise TypeError(f"not an account change: {type(e).__name__}")
    ms, seq = split_ids(ids)
    cols = [[e.account for e in changes], [r[0] for r in rows], [r[1] for r in rows], [e.ts_ns for e in changes],
            ms, seq]  # fmt: skip
    return CHANGE_COLUMNS, cols


ACTION_COLUMNS = ("action", "account", "detail", "actor", "ts_ns", "src_ms", "src_seq")


def action_columns(actions: Sequence[OperatorAction], ids: Sequence[bytes]) -> Columns:
    """Columns of `operator_actions`."""
    ms, seq = split_ids(ids)
    cols = [[a.action for a in actions], [a.account for a in actions], [a.detail for a in actions],
            [a.actor for a in actions], [a.ts_ns for a in actions], ms, seq]  # fmt: skip
    return ACTION_COLUMNS, cols


TRADE_COLUMNS = (
    "venue", "symbol", "asset_class", "match_id", "price", "qty", "aggressor_side", "ts_ns", "src_ms", "src_seq",
)  # fmt: skip


def trade_columns(trades: Sequence[TradePrinted], ids: Sequence[bytes], scale: dict[str, Scale]) -> Columns:
    """Columns of `market_trades` (KeyError for a symbol missing from `scale`)."""
    sc = [scale[t.symbol] for t in trades]
    ms, seq = split_ids(ids)
    cols = [
        [t.venue for t in trades],
        [t.symbol for t in trades],
        [s.asset_class for s in sc],
        [t.match_id for t in trades],
        [_px(t.price, s) for t, s in zip(trades, sc, strict=True)],
        [_qty(t.qty, s) for t, s in zip(trades, sc, strict=True)],
        [_SIDE[t.aggressor_side] for t in trades],
        [t.ts_ns for t in trades],
        ms,
        seq,
    ]
    return TRADE_COLUMNS, cols


QUOTE_COLUMNS = ("venue", "symbol", "bid", "bid_qty", "ask", "ask_qty", "ts_ns", "src_ms", "src_seq")


def quote_columns(quotes: Sequence[Quote], ids: Sequence[bytes], scale: dict[str, Scale]) -> Columns:
    """Columns of `quotes`: an empty side (qty 0) gets a NULL price (KeyError for a symbol missing from `scale`)."""
    sc = [scale[q.symbol] for q in quotes]
    ms, seq = split_ids(ids)
    cols = [
        [q.venue for q in quotes],
        [q.symbol for q in quotes],
        [_px(q.bid, s) if q.bid_qty > 0 else None for q, s in zip(quotes, sc, strict=True)],
        [_qty(q.bid_qty, s) for q, s in zip(quotes, sc, strict=True)],
        [_px(q.ask, s) if q.ask_qty > 0 else None for q, s in zip(quotes, sc, strict=True)],
        [_qty(q.ask_qty, s) for q, s in zip(quotes, sc, strict=True)],
        [q.ts_ns for q in quotes],
        ms,
        seq,
    ]
    return QUOTE_COLUMNS, cols


# -- algo parents (the algo engine's journal) --

PARENT_SUBMITS = (SubmitTwap, SubmitVwap, SubmitPov, SubmitIceberg, SubmitBracket)
PARENT_RECORDS = (*PARENT_SUBMITS, CancelParent, ParentClosing, ChildSent, ChildDone)
"""The algo journal records that become rows of `parents`; the others (ChildFilled: the fill is a row of
`executions`; CancelSent, CancelFailed, VolumeObserved, StopTriggered) are the engine's working state, no row."""

PARENT_COLUMNS = (
    "event", "parent_id", "kind", "account", "symbol", "asset_class", "side", "qty", "price", "stop_price",
    "sched_start_ns", "sched_end_ns", "params", "status", "child_cl_ord_id", "role", "ord_type", "tif", "outcome",
    "reason", "text", "ts_ns", "ts_source", "src_ms", "src_seq",
)  # fmt: skip
_KIND = {SubmitTwap: "TWAP", SubmitVwap: "VWAP", SubmitPov: "POV", SubmitIceberg: "ICEBERG", SubmitBracket: "BRACKET"}


def _reason_name(outcome: str, code: int) -> str:
    """The name of a ChildDone's reason code: a CancelReason for `canceled`, a RejectReason for `rejected`."""
    enum: type[CancelReason] | type[RejectReason] | None = {"canceled": CancelReason, "rejected": RejectReason}.get(
        outcome
    )
    if enum is None or code == 0:
        return ""
    try:
        return enum(code).name
    except ValueError:
        return str(code)


def _json(params: dict[str, Any]) -> str:
    """The kind's other terms as JSON, decimals as their exact text."""
    return json.dumps(params, default=str)


def _terms(cmd: Any, s: Scale) -> tuple[Decimal | None, Decimal | None, int | None, int | None, str]:
    """(limit price, stop price, schedule start, schedule end, the kind's other terms as JSON) of a parent command."""
    match cmd:
        case SubmitTwap():
            params = {"slices": cmd.slices, "jitter_pct": cmd.jitter_pct, "seed": cmd.seed}
            return _px(cmd.limit_price, s), None, cmd.start_ns, cmd.end_ns, _json(params)
        case SubmitVwap():
            params = {"profile": list(cmd.profile), "profile_name": cmd.profile_name}
            return _px(cmd.limit_price, s), None, cmd.start_ns, cmd.end_ns, _json(params)
        case SubmitPov():
            params = {"rate_bp": cmd.rate_bp, "min_clip": _qty(cmd.min_clip, s), "max_clip": _qty(cmd.max_clip, s)}
            return _px(cmd.limit_price, s), None, cmd.start_ns, cmd.end_ns, _json(params)
        case SubmitIceberg():
            return _px(cmd.price, s), None, None, None, _json({"display_qty": _qty(cmd.display_qty, s)})
        case SubmitBracket():
            params = {"take_profit": _px(cmd.take_profit, s), "stop_limit": _px(cmd.stop_limit, s),
                      "synthetic_stop": cmd.synthetic_stop}  # fmt: skip
            return _px(cmd.entry_price, s), _px(cmd.stop_loss, s), None, None, _json(params)
    raise TypeError(f"not a parent command: {type(cmd).__name__}")


def parent_columns(records: Sequence[AlgoRecord], ids: Sequence[bytes], scale: dict[str, Scale]) -> Columns:
    """Columns of `parents` for algo journal records of the kinds in `PARENT_RECORDS`, `ids` their stream entries.

    A record's time is its `ts_ns`; a command journaled without one (0: the REST API leaves it to the engine's
    clock, which the journal does not keep) gets its entry's time, to the millisecond (the engine journals a
    command just before it acts on it), and `ts_source` 'entry'. Child rows carry only the parent id and the
    child's own fields: a child's parent terms are on its parent's `accepted` row.

    Raises KeyError for a parent command whose symbol is missing from `scale`, TypeError for another record kind.
    """
    ms, seq = split_ids(ids)
    rows: list[tuple[Any, ...]] = []
    for rec, entry_ms in zip(records, ms, strict=True):
        ts, source = (rec.ts_ns, "record") if rec.ts_ns else (entry_ms * 1_000_000, "entry")
        match rec:
            case SubmitTwap() | SubmitVwap() | SubmitPov() | SubmitIceberg() | SubmitBracket():
                s = scale[rec.symbol]
                price, stop, start, end, params = _terms(rec, s)
                rows.append((
                    "accepted", rec.parent_id, _KIND[type(rec)], rec.account, rec.symbol, s.asset_class,
                    _SIDE[rec.side], _qty(rec.qty, s), price, stop, start, end, params, "", "", "", "", "", "", "",
                    "", ts, source,
                ))  # fmt: skip
            case CancelParent():
                rows.append((
                    "cancel_requested", rec.parent_id, "", "", "", "", "", None, None, None, None, None, "",
                    "CANCELED", "", "", "", "", "", "", "canceled on request", ts, source,
                ))  # fmt: skip
            case ParentClosing():
                rows.append((
                    "closing", rec.parent_id, "", "", "", "", "", None, None, None, None, None, "", rec.status.name,
                    "", "", "", "", "", "", rec.text, ts, source,
                ))  # fmt: skip
            case ChildSent():
                rows.append((
                    "child_sent", rec.parent_id, "", "", "", "", _SIDE[rec.side], None, None, None, None, None, "",
                    "", rec.cl_ord_id, rec.role, _ORD_TYPE[rec.ord_type], _TIF[rec.tif], "", "", "", ts, source,
                ))  # fmt: skip
            case ChildDone():
                rows.append((
                    "child_done", rec.parent_id, "", "", "", "", "", None, None, None, None, None, "", "",
                    rec.cl_ord_id, "", "", "", rec.outcome, _reason_name(rec.outcome, rec.reason), rec.text, ts,
                    source,
                ))  # fmt: skip
            case _:
                raise TypeError(f"not a parent record with a row: {type(rec).__name__}")
    cols = [list(c) for c in zip(*rows, strict=True)] if rows else [[] for _ in range(len(PARENT_COLUMNS) - 2)]
    return PARENT_COLUMNS, [*cols, ms, seq]
