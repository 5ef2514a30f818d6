"""An account's allowance (reserved mode): the grant, its top-ups and spends, and the certificate that keeps it valid.

`AccountState.grant_allowance` gives the engine a budget it may spend without asking (order tokens, credit, per
symbol and side quantity headroom, a band of limit prices and a valuation cap), recorded as AllowanceGranted. The
grant is a certificate, not a carve-out: strict decisions ignore it, and after every event the account re-checks
that any order within the unspent budget would still pass `decide`; the moment it would not (a fill, mark, cancel,
replace or strict decision ate into it, a breaker tripped), the allowance is void. KillSwitchSet, TradingStateSet,
LimitsChanged, DayStarted, AllowanceRevoked and AllowanceReturned void it outright. AllowanceSpent (the engine's
report, journaled just before the OrderAccepted it covers) draws it down; a report against a void or unknown grant
is refused (StaleAllowance). `top_up_allowance` (AllowanceToppedUp) adds to the live grant under the same id,
certified the same way, so spends already on their way against that grant stay good. Voiding is a pure function of
the event sequence, so replay rebuilds it. `oms.core.reserved` holds the proof and the rules the engine side
follows; `risk.rules.RULES` says, check by check, which of the terms below covers it.

`Allowances` holds that state for one `AccountState` and reads the account through its `AccountView` only.
"""

from __future__ import annotations

import msgspec

from oms.core.accounts.events import (
    AccountEvent,
    AllowanceEvent,
    AllowanceGranted,
    AllowanceOverdrawn,
    AllowanceReturned,
    AllowanceRevoked,
    AllowanceSpent,
    AllowanceToppedUp,
    DayStarted,
    KillSwitchSet,
    LimitsChanged,
    StaleAllowance,
    SymbolAllowance,
    SymbolTopUp,
    TradingStateSet,
)
from oms.core.accounts.view import AccountView
from oms.core.model.enums import RejectReason, Side, TradingState
from oms.core.model.messages import OrderAccepted
from risk import checks
from risk.breakers import BP
from risk.money import notional_money

__all__ = ["AllowanceRequest", "AllowanceState", "Allowances", "SymbolHeadroom", "copy_allowance"]

_OK = RejectReason.NONE
_VOIDING = (KillSwitchSet, TradingStateSet, LimitsChanged, DayStarted)


class AllowanceRequest(msgspec.Struct, frozen=True):
    """How much of its headroom an account is asked to grant; shares are basis points of what is available."""

    orders: int = 64  # order tokens at most (also bounded by the rate window and open-order room)
    credit_share_bp: int = 5_000  # of the buying power
    qty_share_bp: int = 5_000  # of each symbol and side's position/gross/net headroom
    band_share_bp: int = 5_000  # of the collar: limit prices within this share of it around the reference
    symbols: tuple[str, ...] | None = None  # None: every tradable symbol with a reference price


class SymbolHeadroom(msgspec.Struct):
    """The unspent part of a SymbolAllowance."""

    lo: int
    hi: int
    value_cap: int
    buy_qty: int
    sell_qty: int


class AllowanceState(msgspec.Struct):
    """The live allowance: what is left of it. `rate_used` counts the rate-window entries newer than
    ts_ns - window_ns at the grant plus every order accepted since, an upper bound of the window's count at any
    time >= ts_ns; the grant stays valid only while rate_used + orders <= orders_per_window."""

    grant_id: int
    ts_ns: int
    orders: int
    credit: int
    rate_used: int
    symbols: dict[str, SymbolHeadroom]


def copy_allowance(a: AllowanceState | None) -> AllowanceState | None:
    """A deep copy (None stays None)."""
    if a is None:
        return None
    symbols = {k: msgspec.structs.replace(v) for k, v in a.symbols.items()}
    return AllowanceState(a.grant_id, a.ts_ns, a.orders, a.credit, a.rate_used, symbols)


class Allowances:
    """One account's allowance: the live grant (None: none), the last grant id handed out, and the spend just
    applied (transient: it lets the acceptance it covers skip the certificate, see `_spent_on`)."""

    __slots__ = ("_last_spend", "grant_seq", "live")

    def __init__(self, live: AllowanceState | None = None, grant_seq: int = 0) -> None:
        self.live = live
        self.grant_seq = grant_seq
        self._last_spend: AllowanceSpent | None = None

    @property
    def grant_id(self) -> int:
        """The live grant's id, 0 when there is none."""
        return 0 if self.live is None else self.live.grant_id

    # -- EVENTS --

    def take(self, event: AllowanceEvent) -> None:
        """Apply one of the allowance's own events. Raises StaleAllowance for a spend or top-up on a grant that is
        not live, AllowanceOverdrawn for a spend beyond what is left or a top-up of a symbol the grant lacks."""
        match event:
            case AllowanceGranted():
                self.grant_seq = max(self.grant_seq, event.grant_id)
                self.live = AllowanceState(
                    event.grant_id, event.ts_ns, event.orders, event.credit, event.rate_used,
                    {s.symbol: SymbolHeadroom(s.lo, s.hi, s.value_cap, s.buy_qty, s.sell_qty) for s in event.symbols},
                )  # fmt: skip
            case AllowanceSpent():
                self._spend(event)
            case AllowanceToppedUp():
                a = self.live
                if a is None or a.grant_id != event.grant_id:
                    raise StaleAllowance(
                        f"account {event.account}: top-up of grant {event.grant_id}, live {self.grant_id}"
                    )
                _add(a, event)
            case AllowanceReturned():
                if self.live is not None and self.live.grant_id == event.grant_id:
                    self.live = None
            case AllowanceRevoked():
                self.live = None

    def after(self, account: AccountView, event: AccountEvent) -> None:
        """Run after `account` applied `event` (breakers included): count an acceptance against the rate term,
        void the grant on an event that voids it outright, or when the certificate no longer holds."""
        a = self.live
        if a is not None:
            if isinstance(event, OrderAccepted):
                a.rate_used += 1
            if isinstance(event, _VOIDING):
                self.live = None
            elif type(event) is not AllowanceSpent and not self._spent_on(account, event) and not _holds(account, a):
                # a spend only shrinks the budget and changes nothing else, and every check of the certificate is
                # monotone in the budget, so it needs no check; nor does the acceptance it covers (`_spent_on`)
                self.live = None
        self._last_spend = event if type(event) is AllowanceSpent else None

    def _spend(self, e: AllowanceSpent) -> None:
        a = self.live
        if a is None or a.grant_id != e.grant_id:
            raise StaleAllowance(f"account {e.account}: spend on grant {e.grant_id}, live grant {self.grant_id}")
        room = a.symbols.get(e.symbol)
        left = None if room is None else (room.buy_qty if e.side is Side.BUY else room.sell_qty) - e.qty
        if room is None or left is None or left < 0 or e.qty <= 0 or a.orders < 1 or e.credit > a.credit:
            raise AllowanceOverdrawn(f"account {e.account}: {e!r} exceeds what is left of grant {e.grant_id}")
        a.orders -= 1
        a.credit -= e.credit
        if e.side is Side.BUY:
            room.buy_qty = left
        else:
            room.sell_qty = left

    def _spent_on(self, account: AccountView, event: AccountEvent) -> bool:
        """True for the OrderAccepted a spend just before it covers (same order, symbol, side and quantity, a hold
        within the credit spent). That pair keeps the certificate: tokens and rate use, open orders and tokens move
        one for one; buying power drops by the hold, credit by at least as much; on the order's symbol and side the
        working quantity grows by what the headroom shrinks, so the worst-case positions at the ends of the
        remaining headroom stay where they were or move inward (gross and net pass on an interval); nothing else
        changes."""
        spend = self._last_spend
        if spend is None or type(event) is not OrderAccepted:
            return False
        order = account.open_order(event.order_id)
        return (
            order is not None
            and spend.order_id == event.order_id
            and spend.symbol == event.symbol
            and spend.side is event.side
            and spend.qty == event.qty
            and spend.credit >= order.hold
        )

    # -- OFFERS: the event to apply, or None; nothing changes here --

    def grant(self, account: AccountView, request: AllowanceRequest, ts_ns: int) -> AllowanceGranted | None:
        """The allowance `request` asks for, sized to what the account can certify now; None when it can grant
        nothing (kill switch, not ACTIVE, no rate or open-order room, no tradable symbol with a reference price)."""
        if account.kill_switch or account.trading_state is not TradingState.ACTIVE:
            return None
        lim = account.limits
        rate_used = account.orders_in_window(ts_ns)
        orders = min(request.orders, lim.orders_per_window - rate_used, lim.max_open_orders - account.open_order_count)
        if orders < 1:
            return None
        credit = max(account.buying_power(), 0) * request.credit_share_bp // BP
        gross, net = _gross_net(account.market_values())
        wanted = sorted(lim.symbols) if request.symbols is None else request.symbols
        granted: list[SymbolAllowance] = []
        for symbol in wanted:
            ref = account.reference_price(symbol)
            if ref is None or not account.tradable(symbol):
                continue
            collar = lim.symbols[symbol].collar_bp
            half = ref * collar * request.band_share_bp // (BP * BP)
            lo, hi = max(ref - half, 1), ref + half
            cap = checks.collared_price(hi, collar)
            sides = [
                _max_headroom(account, symbol, side, cap, gross, net) * request.qty_share_bp // BP
                for side in (Side.BUY, Side.SELL)
            ]
            if any(sides):
                granted.append(SymbolAllowance(symbol, lo, hi, cap, sides[0], sides[1]))
        if not granted:
            return None
        return AllowanceGranted(account.account, self.grant_seq + 1, orders, credit, rate_used, tuple(granted), ts_ns)

    def top_up(
        self, account: AccountView, grant_id: int, request: AllowanceRequest, ts_ns: int
    ) -> AllowanceToppedUp | None:
        """What brings the live grant `grant_id` back up to what `request` would grant now, keeping its id, price
        bands and `rate_used`; None when that grant is not live, nothing can be added, or the topped-up allowance
        would not pass the certificate."""
        a = self.live
        if a is None or a.grant_id != grant_id:
            return None
        lim = account.limits
        room_orders = min(
            request.orders, lim.orders_per_window - a.rate_used, lim.max_open_orders - account.open_order_count
        )
        orders = max(room_orders - a.orders, 0)
        credit = max(max(account.buying_power(), 0) * request.credit_share_bp // BP - a.credit, 0)
        gross, net = _gross_net(account.market_values())
        added: list[SymbolTopUp] = []
        share = request.qty_share_bp
        for symbol, room in sorted(a.symbols.items()):
            buy, sell = (
                max(_max_headroom(account, symbol, side, room.value_cap, gross, net) * share // BP - left, 0)
                for side, left in ((Side.BUY, room.buy_qty), (Side.SELL, room.sell_qty))
            )
            if buy or sell:
                added.append(SymbolTopUp(symbol, buy, sell))
        if not (orders or credit or added):
            return None
        event = AllowanceToppedUp(account.account, grant_id, orders, credit, tuple(added), ts_ns)
        trial = copy_allowance(a)
        assert trial is not None
        _add(trial, event)
        return event if _holds(account, trial) else None


def _add(a: AllowanceState, e: AllowanceToppedUp) -> None:
    """Add top-up `e` to `a`. AllowanceOverdrawn when it names a symbol `a` does not hold (a bug upstream)."""
    a.orders += e.orders
    a.credit += e.credit
    for t in e.symbols:
        room = a.symbols.get(t.symbol)
        if room is None:
            raise AllowanceOverdrawn(f"account {e.account}: top-up of {t.symbol}, not in grant {e.grant_id}")
        room.buy_qty += t.buy_qty
        room.sell_qty += t.sell_qty


def _holds(account: AccountView, a: AllowanceState) -> bool:
    """The certificate: True while every order allowance `a` covers would pass the account's `decide` (see
    `oms.core.reserved`)."""
    lim = account.limits
    if account.kill_switch or account.trading_state is not TradingState.ACTIVE:
        return False
    open_orders = account.open_order_count
    if a.rate_used + a.orders > lim.orders_per_window or open_orders + a.orders > lim.max_open_orders:
        return False
    if account.buying_power() < a.credit:
        return False
    values = account.market_values()
    gross, net = _gross_net(values)
    for symbol, room in a.symbols.items():
        collar = lim.symbols[symbol].collar_bp
        ref = account.reference_price(symbol)
        before = values.get(symbol, 0)
        if (
            ref is None
            or checks.check_collar(room.lo, ref, collar) is not _OK
            or checks.check_collar(room.hi, ref, collar) is not _OK
            or checks.collared_price(ref, collar) > room.value_cap
            or not _headroom_ok(account, symbol, Side.BUY, room.buy_qty, room.value_cap, gross, net, before)
            or not _headroom_ok(account, symbol, Side.SELL, room.sell_qty, room.value_cap, gross, net, before)
        ):
            return False
    return True


def _headroom_ok(
    account: AccountView, symbol: str, side: Side, qty: int, value_cap: int, gross: int, net: int, before: int
) -> bool:
    """True when every order of 1..`qty` on `symbol` and `side`, valued at any price in (0, value_cap], passes the
    position, gross and net checks (`before`: the symbol's market value), with the side's working quantity as it is
    and with any part of it canceled. The worst-case position is affine in the order's qty and in the working qty,
    so its extremes lie at the ends (order qty 0 and `qty`; working qty 0 and all of it): see docs/reserved.md for
    why checking those suffices, and why it makes a cancel or an expiry keep the certificate."""
    if qty <= 0:
        return True
    working = account.working_qty(symbol, side)
    ends = (working, 0) if working else (0,)
    return all(_passes(account, symbol, side, qty, value_cap, gross, net, before, w) for w in ends)


def _passes(
    account: AccountView, symbol: str, side: Side, qty: int, value_cap: int, gross: int, net: int, before: int,
    working: int,
) -> bool:  # fmt: skip
    """`_headroom_ok` with the side's working quantity at `working`."""
    lim = account.limits
    inst = account.instrument(symbol)
    pos_qty = account.position(symbol).qty
    p0 = checks.worst_case_position(side, 0, pos_qty, working)
    pq = p0 + side.sign * qty
    if checks.check_position(pq, pos_qty, lim.symbols[symbol].max_position) is not _OK:
        return False
    worst = notional_money(inst, max(abs(p0), abs(pq)), value_cap)
    if checks.check_gross(gross - abs(before) + worst, gross, lim.max_gross_notional) is not _OK:
        return False
    for end in (min(p0, pq, 0), max(p0, pq, 0)):
        after = net - before + notional_money(inst, end, value_cap)
        if checks.check_net(after, net, lim.max_net_notional) is not _OK:
            return False
    return True


def _max_headroom(account: AccountView, symbol: str, side: Side, value_cap: int, gross: int, net: int) -> int:
    """The largest qty `_headroom_ok` passes (it passes a downward-closed set of quantities)."""
    before = account.market_value(symbol)
    lo = 0
    hi = account.limits.symbols[symbol].max_position + abs(account.position(symbol).qty) + 1
    hi += account.working_qty(symbol, side)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if _headroom_ok(account, symbol, side, mid, value_cap, gross, net, before):
            lo = mid
        else:
            hi = mid - 1
    return lo


def _gross_net(values: dict[str, int]) -> tuple[int, int]:
    """Gross (sum of |value|) and net (sum of value) of the market values of the account's positions."""
    return sum(abs(v) for v in values.values()), sum(values.values())
