"""`AlgoDesk`: algorithmic parent orders over the API. Requests become `oms.adapters.algos` commands run by the
AlgoEngine (under the sequencer's lock); parents are answered as they stand after the step; the algo engine's parent
events go to the account streams beside the order events.

Input is checked here, before the engine sees it, with the engine's own rules (`oms.core.algos.parents.validate`), so
a bad request is a 4xx with a specific code (the `AlgoRejectReason` or `RejectReason` name in lower case) and never
becomes a parent. A parent is not risk-checked itself: its children are, like every order, and a refused child
shows on the parent (`child_rejects`, `text`, a `child_rejected` event); three in a row stop it.

VWAP profiles are resolved here, so the engine journals the weights it trades on: a list as given, `flat`,
`history` (a `ProfileSource` over ClickHouse; when it has nothing, the request's `fallback`), or a profile
configured in the algo engine, by name. The command's `profile_name` keeps where the weights came from (`history`,
`flat`, the configured name, or empty for a given list), so it survives a restart; why history was not used is
kept for the life of this server (`profile_note`).
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import msgspec

from oms.adapters.api.desk import OrderDesk, avg_px_text, lower_name, price_units, qty_units, role_forbidden
from oms.adapters.api.errors import ApiError
from oms.adapters.api.keys import PERMISSIONS, ApiKey, Permission
from oms.adapters.api.schemas import (
    BracketRequest,
    ChildOut,
    IcebergRequest,
    ParentEventOut,
    ParentOut,
    ParentRequest,
    PovRequest,
    TwapRequest,
    VwapRequest,
)
from oms.core.algos.messages import (
    AlgoEvent,
    AlgoKind,
    AlgoRejectReason,
    CancelParent,
    CancelParentRejected,
    ChildRejected,
    OcoBreach,
    ParentAccepted,
    ParentDone,
    ParentRejected,
    ParentUpdated,
    SubmitBracket,
    SubmitIceberg,
    SubmitParent,
    SubmitPov,
    SubmitTwap,
    SubmitVwap,
)
from oms.core.algos.parents import Child, Parent, validate
from oms.core.model.enums import Side
from oms.core.model.instruments import Instrument, InstrumentRegistry, format_price, format_qty
from oms.core.model.numbers import InvalidValue, from_units, to_units

if TYPE_CHECKING:
    from oms.adapters.algos.engine import AlgoEngine
    from oms.core.algos.profiles import ProfileSource

__all__ = ["KINDS", "MAX_BUCKETS", "MAX_SLICES", "AlgoDesk", "algo_error"]

log = logging.getLogger("oms.adapters.api")

MAX_SLICES = 10_000  # TWAP slices
MAX_BUCKETS = 1_000  # VWAP buckets (given profiles, flat and history)
RESERVED_PROFILES = ("history", "flat")  # profile names the API resolves itself
_SIDE = {"buy": Side.BUY, "sell": Side.SELL}
_STATUS = {  # a refused parent command: HTTP status by reason (400 otherwise)
    AlgoRejectReason.DUPLICATE_PARENT_ID: 409,
    AlgoRejectReason.JOURNAL_UNAVAILABLE: 503,
    AlgoRejectReason.UNKNOWN_PARENT: 404,
    AlgoRejectReason.PARENT_DONE: 409,
}
_json = msgspec.json.Encoder()


def algo_error(reason: AlgoRejectReason, text: str) -> ApiError:
    """The ApiError for a refused parent command: the reason's name in lower case as the code, its text."""
    return ApiError(_STATUS.get(reason, 400), reason.name.lower(), text)


_T = TypeVar("_T")


class _Unavailable(ApiError):
    def __init__(self) -> None:
        super().__init__(503, "algos_unavailable", "the algo engine does not run on this server: no parent orders")


class AlgoDesk:
    """Parent commands in, parent views out; one per ApiServer. Without an AlgoEngine every call is a 503."""

    def __init__(
        self,
        algos: AlgoEngine | None,
        orders: OrderDesk,
        instruments: InstrumentRegistry,
        clock: Callable[[], int],
        profiles: ProfileSource | None = None,
    ) -> None:
        """`clock` gives now (ns) for defaults and checks of start/end: the algo engine's clock. `profiles`
        computes VWAP `history` profiles (None: no history, the fallback is used)."""
        self.algos = algos
        self.orders = orders
        self.host = orders.host
        self.instruments = instruments
        self.clock = clock
        self.profiles = profiles
        self._notes: dict[str, str] = {}  # parent id -> how its VWAP profile was chosen
        self._prefix = f"P{os.getpid() % 1000:03d}{os.urandom(3).hex()}-"
        self._ids = itertools.count(1)
        self._closed = False
        if algos is not None:
            algos.subscribe(self._on_event)

    def close(self) -> None:
        """Stop streaming parent events."""
        if not self._closed and self.algos is not None:
            self.algos.unsubscribe(self._on_event)
        self._closed = True

    # -- COMMANDS --

    def submit(self, key: ApiKey, req: ParentRequest) -> ParentOut:
        """Check `req`, then hand it to the algo engine; returns the parent after the step (its first children sent
        when they are due). Raises ApiError: 400 for bad input, 403, 409 duplicate_parent_id, 503 without engine."""
        return self.submit_parent(key, req, once=False)[0]

    def submit_parent(self, key: ApiKey, req: ParentRequest, once: bool) -> tuple[ParentOut, bool]:
        """`submit`, and whether the answer is a replay. `once`: the request's parent_id was claimed by an
        Idempotency-Key, so when that parent exists already (this run's, or an earlier run's from the algo journal)
        the answer is it, and True."""
        algos = self._engine()
        self.orders.check_account_for_order(key, req.account)
        inst = self.instruments.by_symbol(req.symbol)
        if inst is None:
            raise algo_error(AlgoRejectReason.UNKNOWN_SYMBOL, f"unknown symbol {req.symbol[:64]!r}")
        cmd, note = self._command(req, inst, self.clock())
        check = cmd
        if isinstance(cmd, SubmitVwap) and not cmd.profile:  # a configured profile: the engine resolves the name
            check = msgspec.structs.replace(cmd, profile=[1])
        reason, text = validate(check, inst)
        if reason != AlgoRejectReason.NONE:
            raise algo_error(reason, text)

        def step() -> tuple[ParentOut, bool] | ApiError:
            c = cmd
            earlier = algos.parent(c.parent_id) if once else None
            if earlier is not None:
                return self._out(earlier, children=True), True
            if not c.parent_id:
                while algos.parent(pid := f"{self._prefix}{next(self._ids)}") is not None:
                    pass
                c = msgspec.structs.replace(c, parent_id=pid)
            for e in algos.submit(c):
                if isinstance(e, ParentRejected) and e.parent_id == c.parent_id:
                    return algo_error(e.reason, e.text)
            if note:
                self._notes[c.parent_id] = note
            parent = algos.parent(c.parent_id)
            assert parent is not None
            return self._out(parent, children=True), False

        return self._locked(step)

    def cancel(self, key: ApiKey, parent_id: str) -> ParentOut:
        """Cancel a working parent of an account the key trades: its working children are canceled, nothing new is
        sent. 404 unknown_parent when the key cannot see it, 409 parent_done when it already ended or is ending."""
        algos = self._engine()

        def step() -> ParentOut | ApiError:
            parent = self._visible(key, parent_id, Permission.TRADE)
            if isinstance(parent, ApiError):
                return parent
            for e in algos.cancel(CancelParent(parent_id)):
                if isinstance(e, CancelParentRejected) and e.parent_id == parent_id:
                    return algo_error(e.reason, f"parent {parent_id}: {e.text}")
            return self._out(parent, children=True)

        return self._locked(step)

    # -- QUERIES --

    def get(self, key: ApiKey, parent_id: str) -> ParentOut:
        """The parent with its children; 404 unknown_parent when the key cannot see it."""
        self._engine()
        with self.host.lock:
            parent = self._visible(key, parent_id, Permission.READ_ORDERS)
            if isinstance(parent, ApiError):
                raise parent
            return self._out(parent, children=True)

    def list(
        self,
        key: ApiKey,
        account: str | None,
        status: str | None,
        kind: str | None,
        symbol: str | None,
        limit: int,
    ) -> list[ParentOut]:
        """Newest first, at most `limit`, of the accounts the key may read (or `account` only); without children."""
        algos = self._engine()
        if account is not None:
            self.orders.check_account(key, account, Permission.READ_ORDERS)
        elif Permission.READ_ORDERS not in PERMISSIONS[key.role]:
            raise role_forbidden(key, Permission.READ_ORDERS)
        out: list[ParentOut] = []
        with self.host.lock:
            views = algos.views()
            for view in reversed(views):
                if (account is not None and view.account != account) or not key.sees(view.account):
                    continue
                if status is not None and view.status.value != status:
                    continue
                if (kind is not None and view.kind.value != kind) or (symbol is not None and view.symbol != symbol):
                    continue
                parent = algos.parent(view.parent_id)
                assert parent is not None
                out.append(self._out(parent, children=False))
                if len(out) >= limit:
                    break
        return out

    # -- INTERNALS --

    def _engine(self) -> AlgoEngine:
        if self.algos is None:
            raise _Unavailable()
        return self.algos

    def _locked(self, step: Callable[[], _T | ApiError]) -> _T:
        """`step` under the host's lock (the engine calls inside it publish their own reports)."""
        with self.host.lock:
            result = step()
        if isinstance(result, ApiError):
            raise result
        return result

    def _visible(self, key: ApiKey, parent_id: str, permission: Permission) -> Parent | ApiError:
        if permission not in PERMISSIONS[key.role]:
            return role_forbidden(key, permission)
        assert self.algos is not None
        parent = self.algos.parent(parent_id)
        if parent is None or not key.may(permission, parent.account):
            return ApiError(404, "unknown_parent", f"no parent {parent_id[:64]!r} visible to key {key.key_id!r}")
        return parent

    def _command(self, req: ParentRequest, inst: Instrument, now: int) -> tuple[SubmitParent, str]:
        """The engine command for `req` (parent_id empty when the client gave none) and the VWAP profile note."""
        side, pid = _SIDE[req.side], req.parent_id or ""
        qty = qty_units(inst, req.qty, "qty")
        match req:
            case TwapRequest():
                start = now if req.start_ns is None else req.start_ns
                self._check_end(req.end_ns, now)
                if not 1 <= req.slices <= MAX_SLICES:
                    raise algo_error(
                        AlgoRejectReason.INVALID_SLICES, f"slices {req.slices} must be within 1..{MAX_SLICES}"
                    )
                limit = _opt_price(inst, req.limit_price, "limit_price")
                cmd = SubmitTwap(pid, req.account, req.symbol, side, qty, start, req.end_ns, req.slices, limit,
                                 req.jitter_pct, req.seed)  # fmt: skip
                return cmd, ""
            case VwapRequest():
                start = now if req.start_ns is None else req.start_ns
                self._check_end(req.end_ns, now)
                limit = _opt_price(inst, req.limit_price, "limit_price")
                if req.end_ns <= start:  # before asking ClickHouse for a profile of an empty window
                    raise algo_error(AlgoRejectReason.INVALID_WINDOW, "end_ns must be after start_ns")
                profile, name, note = self._profile(req, start)
                cmd = SubmitVwap(pid, req.account, req.symbol, side, qty, start, req.end_ns, profile, name, limit)
                return cmd, note
            case PovRequest():
                start = now if req.start_ns is None else req.start_ns
                if req.end_ns is not None:
                    self._check_end(req.end_ns, now)
                rate = _rate_bp(req.rate_pct)
                min_clip = inst.lot if req.min_clip is None else _clip(inst, req.min_clip, "min_clip")
                max_clip = qty if req.max_clip is None else _clip(inst, req.max_clip, "max_clip")
                limit = _opt_price(inst, req.limit_price, "limit_price")
                cmd = SubmitPov(pid, req.account, req.symbol, side, qty, rate, min_clip, max_clip, start, req.end_ns,
                                limit)  # fmt: skip
                return cmd, ""
            case IcebergRequest():
                try:
                    display = qty_units(inst, req.display_qty, "display_qty")
                except ApiError as exc:
                    raise ApiError(400, "invalid_display_qty", exc.message) from None
                price = price_units(inst, req.price, "price")
                return SubmitIceberg(pid, req.account, req.symbol, side, qty, display, price), ""
            case BracketRequest():
                entry = _opt_price(inst, req.entry_price, "entry_price")
                take_profit = price_units(inst, req.take_profit, "take_profit")
                stop_loss = price_units(inst, req.stop_loss, "stop_loss")
                stop_limit = _opt_price(inst, req.stop_limit, "stop_limit")
                cmd = SubmitBracket(pid, req.account, req.symbol, side, qty, entry, take_profit, stop_loss, stop_limit,
                                    req.synthetic_stop)  # fmt: skip
                return cmd, ""
        raise TypeError(f"not a parent request: {req!r}")

    @staticmethod
    def _check_end(end_ns: int, now: int) -> None:
        if end_ns <= now:
            raise algo_error(AlgoRejectReason.INVALID_WINDOW, f"end_ns {end_ns} is not in the future (now {now})")

    def _profile(self, req: VwapRequest, start: int) -> tuple[list[int], str, str]:
        """(weights, profile_name for the command, note). Empty weights: the engine resolves the configured name."""
        p, buckets = req.profile, req.buckets
        if isinstance(p, list):
            if not 1 <= len(p) <= MAX_BUCKETS:
                raise algo_error(AlgoRejectReason.INVALID_PROFILE, f"a profile has 1..{MAX_BUCKETS} weights")
            return list(p), "", ""
        if p in RESERVED_PROFILES and not 1 <= buckets <= MAX_BUCKETS:
            raise algo_error(AlgoRejectReason.INVALID_PROFILE, f"buckets {buckets} must be within 1..{MAX_BUCKETS}")
        if p == "flat":
            return [1] * buckets, "flat", ""
        if p != "history":
            return [], p, ""
        if req.fallback == "history":
            raise algo_error(AlgoRejectReason.INVALID_PROFILE, "fallback must be 'flat' or a configured profile")
        if self.profiles is None:
            why = "no ClickHouse history source on this server ([api] profile_dsn)"
        else:
            found = self.profiles.profile(req.symbol, start, req.end_ns, buckets)
            if found.found:
                return found.weights, "history", f"{found.table}: {found.days} day(s), volume {found.volume:g}"
            why = found.reason[:400]
        if req.fallback == "flat":
            return [1] * buckets, "flat", f"no history profile ({why}): flat profile used"
        return [], req.fallback, f"no history profile ({why}): configured profile {req.fallback!r} used"

    # -- OUT --

    def _out(self, p: Parent, children: bool) -> ParentOut:
        inst = self.instruments.by_symbol(p.symbol)
        assert inst is not None
        v = p.view()
        fields: dict[str, object] = {}
        cmd = p.cmd
        px = _price_text(inst)
        match cmd:
            case SubmitTwap():
                fields.update(start_ns=cmd.start_ns, end_ns=cmd.end_ns, limit_price=px(cmd.limit_price),
                              slices=cmd.slices, jitter_pct=cmd.jitter_pct, seed=cmd.seed)  # fmt: skip
            case SubmitVwap():
                source = {"": "given", "flat": "flat", "history": "history"}.get(cmd.profile_name, "configured")
                fields.update(
                    start_ns=cmd.start_ns, end_ns=cmd.end_ns, limit_price=px(cmd.limit_price),
                    profile=list(cmd.profile), profile_source=source, profile_note=self._notes.get(p.parent_id),
                    profile_name=cmd.profile_name if source == "configured" else None,
                )  # fmt: skip
            case SubmitPov():
                fields.update(start_ns=cmd.start_ns, end_ns=cmd.end_ns, limit_price=px(cmd.limit_price),
                              rate_pct=from_units(cmd.rate_bp, 2), min_clip=format_qty(inst, cmd.min_clip),
                              max_clip=format_qty(inst, cmd.max_clip))  # fmt: skip
            case SubmitIceberg():
                fields.update(display_qty=format_qty(inst, cmd.display_qty), price=px(cmd.price))
            case SubmitBracket():
                fields.update(entry_price=px(cmd.entry_price), take_profit=px(cmd.take_profit),
                              stop_loss=px(cmd.stop_loss), stop_limit=px(cmd.stop_limit),
                              synthetic_stop=cmd.synthetic_stop, exit_cum_qty=format_qty(inst, v.exit_cum_qty),
                              exit_avg_px=avg_px_text(inst, v.exit_cum_notional, v.exit_cum_qty))  # fmt: skip
        if children:
            fields["children"] = [self._child(inst, c) for c in p.children.values()]
        return ParentOut(
            parent_id=v.parent_id,
            kind=v.kind.value,  # type: ignore[arg-type]
            account=v.account,
            symbol=v.symbol,
            side=lower_name(v.side),  # type: ignore[arg-type]
            qty=format_qty(inst, v.qty),
            status=v.status.value,  # type: ignore[arg-type]
            cum_qty=format_qty(inst, v.cum_qty),
            leaves_qty=format_qty(inst, v.leaves_qty),
            working_qty=format_qty(inst, v.working_qty),
            avg_px=avg_px_text(inst, v.cum_notional, v.cum_qty),
            child_count=v.children,
            child_rejects=v.rejects,
            text=v.text or None,
            **fields,  # type: ignore[arg-type]
        )

    def _child(self, inst: Instrument, c: Child) -> ChildOut:
        assert self.algos is not None
        order = self.host.engine.find(self.algos.session, c.cl_ord_id)
        status = order.status.value if order is not None else (c.outcome or "pending_new")
        return ChildOut(
            client_order_id=c.cl_ord_id,
            order_id=None if order is None else order.order_id,
            role=c.role,
            side=lower_name(c.side),  # type: ignore[arg-type]
            ord_type=lower_name(c.ord_type),  # type: ignore[arg-type]
            qty=format_qty(inst, c.qty),
            price=None if c.price is None else format_price(inst, c.price),
            cum_qty=format_qty(inst, c.cum_qty),
            avg_px=avg_px_text(inst, c.cum_notional, c.cum_qty),
            status=status,
            outcome=c.outcome or None,
            ts_ns=c.ts_ns,
        )

    # -- EVENTS (the algo engine's listener: under the host's lock, on the thread driving the engine) --

    def _on_event(self, e: AlgoEvent) -> None:
        if self._closed:
            return
        try:
            out = self._event(e)
            if out is not None:
                self.orders.push(out.account, _json.encode(out))
        except Exception:  # a stream must never break the algo engine's step
            log.exception("parent event %r not streamed", e)

    def _event(self, e: AlgoEvent) -> ParentEventOut | None:
        """The stream frame of `e`; None for events that name no known parent (a refused submit, which the
        client that sent it was answered with, or a cancel of an unknown parent)."""
        assert self.algos is not None
        parent = self.algos.parent(e.parent_id)
        if parent is None or isinstance(e, ParentRejected):
            return None
        inst = self.instruments.by_symbol(parent.symbol)
        assert inst is not None
        fields: dict[str, object] = {}
        match e:
            case ParentAccepted():
                fields.update(side=lower_name(e.side), qty=format_qty(inst, e.qty), status="new")
            case ParentUpdated():
                fields.update(
                    status=e.status.value, qty=format_qty(inst, e.qty), cum_qty=format_qty(inst, e.cum_qty),
                    leaves_qty=format_qty(inst, e.leaves_qty), working_qty=format_qty(inst, e.working_qty),
                    avg_px=avg_px_text(inst, e.cum_notional, e.cum_qty),
                )  # fmt: skip
            case ParentDone():
                fields.update(status=e.status.value, cum_qty=format_qty(inst, e.cum_qty),
                              avg_px=avg_px_text(inst, e.cum_notional, e.cum_qty), reason=e.text or None)  # fmt: skip
            case ChildRejected():
                fields.update(client_order_id=e.cl_ord_id, reason_code=lower_name(e.reason), reason=e.text)
            case CancelParentRejected():
                fields.update(reason_code=e.reason.name.lower(), reason=e.text)
            case OcoBreach():
                fields.update(
                    reason_code="oco_breach",
                    reason=f"both legs executed: take-profit {e.take_profit_cl_ord_id} "
                    f"{format_qty(inst, e.take_profit_cum_qty)}, stop-loss {e.stop_loss_cl_ord_id} "
                    f"{format_qty(inst, e.stop_loss_cum_qty)}",
                )
        return ParentEventOut(
            type=type(e).__struct_config__.tag,  # type: ignore[arg-type]
            parent_id=e.parent_id,
            account=parent.account,
            symbol=parent.symbol,
            kind=parent.kind.value,  # type: ignore[arg-type]
            ts_ns=e.ts_ns,
            **fields,  # type: ignore[arg-type]
        )


def _price_text(inst: Instrument) -> Callable[[int | None], str | None]:
    return lambda units: None if units is None else format_price(inst, units)


def _opt_price(inst: Instrument, text: str | None, field: str) -> int | None:
    return None if text is None else price_units(inst, text, field)


def _clip(inst: Instrument, text: str, field: str) -> int:
    try:
        return qty_units(inst, text, field)
    except ApiError as exc:
        raise ApiError(400, "invalid_clip", exc.message) from None


def _rate_bp(text: str) -> int:
    """A participation rate in percent (two decimals at most) as basis points; 400 invalid_rate otherwise."""
    try:
        bp = to_units(text, 2, field="rate_pct")
    except InvalidValue as exc:
        raise algo_error(AlgoRejectReason.INVALID_RATE, f"rate_pct {text[:64]!r}: {exc}") from None
    if not 0 < bp <= 10_000:
        raise algo_error(AlgoRejectReason.INVALID_RATE, f"rate_pct {text[:64]!r} must be within 0.01..100")
    return bp


KINDS = ", ".join(k.value for k in AlgoKind)  # for messages
