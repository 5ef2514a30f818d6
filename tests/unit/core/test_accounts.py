"""AccountState: every reason code through decide, exposure hold/release, P&L, breakers, replay and snapshots."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import msgspec
import pytest

from oms.core.accounts import (
    AccountState,
    AllowanceGranted,
    AllowanceRequest,
    AllowanceReturned,
    AllowanceRevoked,
    AllowanceSpent,
    AllowanceToppedUp,
    DayStarted,
    DuplicateOrder,
    KillSwitchSet,
    LimitsChanged,
    Marked,
    MarketPrices,
    MissingReference,
    OverfillError,
    Quoted,
    SymbolAllowance,
    SymbolTopUp,
    TradingStateSet,
    UnknownOrder,
    WrongAccount,
    account_decoder,
    account_encoder,
)
from oms.core.model.enums import CancelReason, OrdType, RejectReason, Side, TimeInForce, TradingState
from oms.core.model.instruments import InstrumentRegistry
from oms.core.model.messages import (
    CancelRejected,
    OrderAccepted,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderReplaced,
    ReplaceOrder,
    SubmitOrder,
)
from risk.breakers import DrawdownLevel
from risk.limits import LimitsSpec, resolve_limits
from risk.money import parse_money

ROOT = Path(__file__).resolve().parents[3]
REG = InstrumentRegistry.load(ROOT / "configs" / "instruments.toml")
R = RejectReason
ACC = "ACC1"
PX = 1_000_000  # AAPL 100.00 (price precision 4)
GENEROUS: dict[str, Any] = {
    "start_cash": "1000000",
    "credit_limit": "0",
    "max_order_notional": "10000000",
    "max_gross_notional": "100000000",
    "max_net_notional": "100000000",
    "max_position": "100000",
    "collar_pct": "5",
}


def money(text: str) -> int:
    return parse_money(text)


def make(**spec: Any) -> AccountState:
    state = AccountState(ACC, resolve_limits(LimitsSpec(**{**GENEROUS, **spec}), REG), REG)
    state.mark("AAPL", PX, ts_ns=1)
    return state


def sub(cl: str, side: Side, qty: int, price: int | None = PX, **kw: Any) -> SubmitOrder:
    kw.setdefault("ord_type", OrdType.LIMIT if price is not None else OrdType.MARKET)
    return SubmitOrder(kw.pop("account", ACC), cl, kw.pop("symbol", "AAPL"), side, qty=qty, price=price, **kw)


_ids = iter(range(1, 10**9))


def accept(state: AccountState, cmd: SubmitOrder, ts: int = 10) -> OrderAccepted:
    event = state.decide(cmd, next(_ids), ts)
    assert isinstance(event, OrderAccepted), event
    state.apply(event)
    return event


def reason(state: AccountState, cmd: SubmitOrder, ts: int = 10, market: MarketPrices | None = None) -> RejectReason:
    event = state.decide(cmd, 99_999, ts, market)
    if isinstance(event, OrderRejected):
        assert event.text and event.order_id == 99_999
        return event.reason
    return R.NONE


_exec = iter(range(1, 10**9))


def fill(state: AccountState, order_id: int, qty: int, price: int = PX) -> OrderFilled:
    order = state.open_order(order_id)
    assert order is not None
    cum = order.qty - order.leaves + qty
    event = OrderFilled(order_id, order.cl_ord_id, ACC, order.symbol, next(_exec), order.side, qty, price,
                        order.leaves - qty, cum, cum * price, True, 20)  # fmt: skip
    state.apply(event)
    return event


def buy_position(state: AccountState, qty: int, price: int = PX) -> None:
    fill(state, accept(state, sub(f"pos{qty}-{price}", Side.BUY, qty, price)).order_id, qty, price)


# -- every reason code --


def test_a_plain_limit_order_is_accepted_with_the_commands_terms() -> None:
    state = make()
    event = state.decide(sub("c1", Side.BUY, 10, tif=TimeInForce.GTC), 7, 123)
    assert event == OrderAccepted(7, "c1", ACC, "AAPL", Side.BUY, OrdType.LIMIT, TimeInForce.GTC, 10, PX, 123, None)


def test_decide_changes_nothing() -> None:
    state = make()
    before = state.state_hash()
    state.decide(sub("c1", Side.BUY, 10), 1, 10)
    assert state.state_hash() == before


def test_another_accounts_order_is_unknown_account() -> None:
    assert reason(make(), sub("c1", Side.BUY, 1, account="ACC2")) is R.UNKNOWN_ACCOUNT


def test_kill_switch_blocks_new_orders_and_lists_working_ones() -> None:
    state = make()
    ids = [accept(state, sub(f"c{i}", Side.BUY, 1)).order_id for i in range(3)]
    state.set_kill_switch(True)
    assert reason(state, sub("k", Side.SELL, 1)) is R.KILL_SWITCH
    assert state.working_orders() == sorted(ids)
    state.set_kill_switch(False)
    assert reason(state, sub("k", Side.BUY, 1)) is R.NONE


def test_halted_rejects_even_reducing_orders() -> None:
    state = make()
    buy_position(state, 100)
    state.set_trading_state(TradingState.HALTED)
    assert reason(state, sub("s", Side.SELL, 10)) is R.HALTED


def test_unknown_symbol() -> None:
    assert reason(make(), sub("c1", Side.BUY, 1, symbol="NOPE")) is R.UNKNOWN_SYMBOL


def test_restricted_symbol() -> None:
    assert reason(make(restricted_symbols=["AAPL"]), sub("c1", Side.BUY, 1)) is R.RESTRICTED_SYMBOL


def test_duplicate_cl_ord_id_including_rejected_ones_until_the_next_day() -> None:
    state = make(max_order_qty="10")
    accept(state, sub("c1", Side.BUY, 1))
    assert reason(state, sub("c1", Side.BUY, 1)) is R.DUPLICATE_CL_ORD_ID
    rejected = state.decide(sub("big", Side.BUY, 11), 50, 10)
    assert isinstance(rejected, OrderRejected)
    state.apply(rejected)
    assert reason(state, sub("big", Side.BUY, 1)) is R.DUPLICATE_CL_ORD_ID
    state.start_day()
    assert reason(state, sub("c1", Side.BUY, 1)) is R.NONE


def test_order_qty() -> None:
    state = make(max_order_qty="100")
    assert reason(state, sub("c", Side.BUY, 100)) is R.NONE
    assert reason(state, sub("c", Side.BUY, 101)) is R.MAX_ORDER_QTY
    assert reason(state, sub("c", Side.BUY, 0)) is R.INVALID_QTY


def test_order_notional() -> None:
    state = make(max_order_notional="1000")
    assert reason(state, sub("c", Side.BUY, 10)) is R.NONE  # 10 x 100.00
    assert reason(state, sub("c", Side.BUY, 11)) is R.MAX_ORDER_NOTIONAL


def test_market_order_is_valued_at_the_top_of_the_collar() -> None:
    state = make(max_order_notional="1050")
    assert reason(state, sub("m", Side.BUY, 10, None)) is R.NONE  # 10 x 105.00
    state = make(max_order_notional="1049.99")
    assert reason(state, sub("m", Side.BUY, 10, None)) is R.MAX_ORDER_NOTIONAL


def test_market_order_without_reference_price_is_refused() -> None:
    state = make()
    assert reason(state, sub("m", Side.BUY, 1, None, symbol="MSFT")) is R.NO_REFERENCE_PRICE
    assert reason(state, sub("s", Side.SELL, 1, None, ord_type=OrdType.STOP, symbol="MSFT")) is R.NO_REFERENCE_PRICE
    state.quote("MSFT", 999_900, 1_000_100)  # mid 100.00 serves
    assert reason(state, sub("m", Side.BUY, 1, None, symbol="MSFT")) is R.NONE
    assert reason(state, sub("m", Side.BUY, 1, None, symbol="MSFT"), market=MarketPrices()) is R.NO_REFERENCE_PRICE


def test_price_collar_around_the_last_trade() -> None:
    state = make(collar_pct="5")
    assert reason(state, sub("c", Side.BUY, 1, 1_050_000)) is R.NONE
    assert reason(state, sub("c", Side.BUY, 1, 1_050_100)) is R.PRICE_COLLAR
    assert reason(state, sub("c", Side.SELL, 1, 949_900)) is R.PRICE_COLLAR
    assert reason(state, sub("c", Side.BUY, 1, 1_050_100), market=MarketPrices(last={"AAPL": 1_010_000})) is R.NONE
    assert reason(state, sub("c", Side.BUY, 1, 5_000_000, symbol="MSFT")) is R.NONE  # no reference: no collar


def test_rate_limit_flood_denies_the_order_past_the_limit() -> None:
    state = make(orders_per_window=5, window_ms=1000)
    ms = 1_000_000
    for i in range(5):
        accept(state, sub(f"c{i}", Side.BUY, 1), ts=i * ms)
    assert reason(state, sub("c5", Side.BUY, 1), ts=5 * ms) is R.ORDER_RATE
    assert reason(state, sub("c5", Side.BUY, 1), ts=999 * ms) is R.ORDER_RATE
    assert reason(state, sub("c5", Side.BUY, 1), ts=1000 * ms) is R.NONE  # the first one left the window


def test_max_open_orders_counts_only_working_orders() -> None:
    state = make(max_open_orders=2)
    first = accept(state, sub("a", Side.BUY, 1))
    accept(state, sub("b", Side.BUY, 1))
    assert reason(state, sub("c", Side.BUY, 1)) is R.MAX_OPEN_ORDERS
    state.apply(OrderCanceled(first.order_id, "a", ACC, "AAPL", CancelReason.USER, 1, 11))
    assert reason(state, sub("c", Side.BUY, 1)) is R.NONE


def test_reducing_denies_an_increasing_order_and_passes_a_reducing_one() -> None:
    state = make()
    buy_position(state, 100)
    state.set_trading_state(TradingState.REDUCING)
    assert reason(state, sub("b", Side.BUY, 1)) is R.REDUCE_ONLY
    assert reason(state, sub("s", Side.SELL, 100)) is R.NONE
    assert reason(state, sub("s", Side.SELL, 101)) is R.REDUCE_ONLY
    accept(state, sub("s1", Side.SELL, 60))
    assert reason(state, sub("s2", Side.SELL, 41)) is R.REDUCE_ONLY  # with the working sell it could go short
    assert reason(state, sub("s2", Side.SELL, 40)) is R.NONE


def test_position_limit_counts_working_orders_on_the_same_side() -> None:
    state = make(max_position="100")
    accept(state, sub("a", Side.BUY, 60))
    assert reason(state, sub("b", Side.BUY, 41)) is R.POSITION_LIMIT
    assert reason(state, sub("b", Side.BUY, 40)) is R.NONE
    assert reason(state, sub("s", Side.SELL, 100)) is R.NONE
    assert reason(state, sub("s", Side.SELL, 101)) is R.POSITION_LIMIT


def test_gross_limit() -> None:
    state = make(max_gross_notional="10000")
    buy_position(state, 50)  # 5000
    state.mark("MSFT", PX)
    assert reason(state, sub("m", Side.SELL, 50, symbol="MSFT")) is R.NONE  # gross 10000
    assert reason(state, sub("m", Side.SELL, 51, symbol="MSFT")) is R.GROSS_LIMIT


def test_net_limit() -> None:
    state = make(max_net_notional="6000")
    buy_position(state, 50)  # net 5000
    state.mark("MSFT", PX)
    assert reason(state, sub("m", Side.BUY, 10, symbol="MSFT")) is R.NONE
    assert reason(state, sub("m", Side.BUY, 11, symbol="MSFT")) is R.NET_LIMIT
    assert reason(state, sub("m", Side.SELL, 110, symbol="MSFT")) is R.NONE  # net -6000
    assert reason(state, sub("m", Side.SELL, 111, symbol="MSFT")) is R.NET_LIMIT


def test_credit_limit_includes_open_order_exposure() -> None:
    state = make(start_cash="1000", credit_limit="500")
    accept(state, sub("a", Side.BUY, 10))  # holds 1000
    assert state.buying_power() == money("500")
    assert reason(state, sub("b", Side.BUY, 5)) is R.NONE
    assert reason(state, sub("b", Side.BUY, 6)) is R.CREDIT_LIMIT


def test_short_sale_proceeds_buy_nothing() -> None:
    state = make(start_cash="1000")
    order = accept(state, sub("s", Side.SELL, 10))  # opens a short: holds 1000
    assert state.exposure == money("1000")
    assert state.buying_power() == 0
    fill(state, order.order_id, 10)
    assert (state.cash, state.exposure, state.buying_power()) == (money("2000"), 0, 0)
    assert reason(state, sub("more", Side.SELL, 1)) is R.CREDIT_LIMIT


# -- exposure: hold at accept, release on fill, cancel, reject, replace --


def test_buy_hold_is_released_in_proportion_to_fills_then_on_cancel() -> None:
    state = make()
    order = accept(state, sub("a", Side.BUY, 10))
    assert state.exposure == money("1000")
    fill(state, order.order_id, 3)
    assert state.exposure == money("700")
    state.apply(OrderCanceled(order.order_id, "a", ACC, "AAPL", CancelReason.USER, 7, 30))
    assert (state.exposure, state.working_orders(), state.working_qty("AAPL", Side.BUY)) == (0, [], 0)


def test_venue_reject_and_expiry_release_the_hold() -> None:
    state = make()
    a, b = accept(state, sub("a", Side.BUY, 10)), accept(state, sub("b", Side.BUY, 5))
    state.apply(OrderRejected(a.order_id, "a", ACC, "AAPL", R.INVALID_PRICE, "x", 30))
    state.apply(OrderExpired(b.order_id, "b", ACC, "AAPL", 5, 30))
    assert (state.exposure, state.working_orders()) == (0, [])


def test_a_sell_that_closes_a_long_holds_nothing_and_the_excess_holds_its_notional() -> None:
    state = make()
    buy_position(state, 100)
    accept(state, sub("s1", Side.SELL, 60))
    assert state.exposure == 0
    accept(state, sub("s2", Side.SELL, 50))  # 40 close what the first sell leaves, 10 open a short
    assert state.exposure == money("1000")


def test_market_order_holds_at_the_top_of_the_collar() -> None:
    state = make()
    accept(state, sub("m", Side.BUY, 10, None))
    assert state.exposure == money("1050")


def test_replace_recomputes_the_hold() -> None:
    state = make()
    order = accept(state, sub("a", Side.BUY, 10))
    fill(state, order.order_id, 4)
    state.apply(OrderReplaced(order.order_id, "a2", "a", ACC, "AAPL", 20, 990_000, 16, 40))
    assert state.exposure == money("1584")  # 16 x 99.00
    assert state.working_qty("AAPL", Side.BUY) == 16
    assert reason(state, sub("a2", Side.BUY, 1)) is R.DUPLICATE_CL_ORD_ID


def test_cancel_rejected_changes_nothing() -> None:
    state = make()
    order = accept(state, sub("a", Side.BUY, 10))
    before = state.state_hash()
    state.apply(CancelRejected(order.order_id, "x", "a", ACC, "AAPL", R.TOO_LATE_TO_CANCEL, "t", "cancel", 50))
    assert state.state_hash() == before


def test_decide_replace() -> None:
    state = make(start_cash="2000", max_position="30")
    order = accept(state, sub("a", Side.BUY, 10))
    oid = order.order_id

    def replace(qty: int, price: int = PX, oid: int = oid) -> RejectReason:
        return state.decide_replace(ReplaceOrder(ACC, "a2", "a", "AAPL", Side.BUY, qty, price), oid, 50)

    assert replace(20) is R.NONE  # hold 2000 replaces the 1000 held
    assert replace(21) is R.CREDIT_LIMIT
    assert replace(5, 1_100_000) is R.PRICE_COLLAR
    assert replace(10, oid=12345) is R.UNKNOWN_ORDER
    state.set_kill_switch(True)
    assert replace(5) is R.KILL_SWITCH


# -- P&L --


def test_pnl_through_open_reduce_and_flip() -> None:
    state = make()
    buy_position(state, 10, 1_000_000)  # long 10 @ 100
    state.mark("AAPL", 1_100_000)
    assert state.unrealized("AAPL") == money("100")
    assert state.avg_cost("AAPL") == 1_000_000
    order = accept(state, sub("s", Side.SELL, 16, 1_150_000))
    fill(state, order.order_id, 4, 1_200_000)  # close 4 @ 120: +80
    assert (state.position("AAPL").qty, state.realized()) == (6, money("80"))
    fill(state, order.order_id, 12, 1_150_000)  # close 6 @ 115 (+90), open 6 short @ 115
    pos = state.position("AAPL")
    assert (pos.qty, pos.cost, pos.realized) == (-6, -money("690"), money("170"))
    assert state.cash == money("1000000") - money("1000") + money("480") + money("1380")
    assert state.equity() == state.cash + pos.qty * 1_150_000 * 10**5


# -- breakers --


def test_drawdown_thresholds_escalate_warn_reduce_halt() -> None:
    state = make()
    buy_position(state, 4000)  # 400,000 at 100.00; equity 1,000,000
    state.mark("AAPL", 875_100)
    assert state.drawdown_level() is DrawdownLevel.NONE
    state.mark("AAPL", 875_000)  # -50,000: 5 %
    assert (state.drawdown_warning, state.trading_state) == (True, TradingState.ACTIVE)
    assert reason(state, sub("b", Side.BUY, 1, 875_000)) is R.NONE
    state.mark("AAPL", 750_000)  # 10 %
    assert state.trading_state is TradingState.REDUCING
    assert reason(state, sub("b", Side.BUY, 1, 750_000)) is R.REDUCE_ONLY
    assert reason(state, sub("s", Side.SELL, 1, 750_000)) is R.NONE
    state.mark("AAPL", 500_000)  # 20 %
    assert state.trading_state is TradingState.HALTED
    state.mark("AAPL", 1_000_000)  # recovery does not de-escalate
    assert state.trading_state is TradingState.HALTED


def test_explicit_de_escalation_holds_until_the_drawdown_gets_worse() -> None:
    state = make()
    buy_position(state, 4000)
    state.mark("AAPL", 750_000)
    state.set_trading_state(TradingState.ACTIVE)
    state.mark("AAPL", 740_000)
    assert state.trading_state is TradingState.ACTIVE  # still the level the operator accepted
    state.mark("AAPL", 500_000)
    assert state.trading_state is TradingState.HALTED


def test_start_day_resets_start_of_day_equity() -> None:
    state = make()
    buy_position(state, 4000)
    state.mark("AAPL", 880_000)
    state.start_day()
    assert state.sod_equity == state.equity() and state.drawdown() == 0


# -- bugs raise --


def test_events_that_can_only_be_bugs_raise_named_errors() -> None:
    state = make()
    order = accept(state, sub("a", Side.BUY, 10))
    with pytest.raises(UnknownOrder):
        state.apply(OrderFilled(777, "x", ACC, "AAPL", 1, Side.BUY, 1, PX, 0, 1, PX, True, 1))
    with pytest.raises(OverfillError):
        state.apply(OrderFilled(order.order_id, "a", ACC, "AAPL", 2, Side.BUY, 11, PX, 0, 11, PX, True, 1))
    with pytest.raises(DuplicateOrder):
        state.apply(order)
    with pytest.raises(WrongAccount):
        state.apply(Marked("ACC2", "AAPL", PX, 1))
    with pytest.raises(UnknownOrder):
        state.apply(OrderReplaced(777, "b", "a", ACC, "AAPL", 5, PX, 5, 1))
    accepted = state.decide(sub("m", Side.BUY, 1, None, symbol="MSFT"), 5, 1, MarketPrices(last={"MSFT": PX}))
    assert isinstance(accepted, OrderAccepted)
    with pytest.raises(MissingReference):
        state.apply(accepted)  # the account itself has no reference for MSFT


# -- replay, snapshots, codec --


def test_replay_snapshot_restore_and_codec_round_trip() -> None:
    state = make()
    events: list[Any] = [Marked(ACC, "AAPL", PX, 1)]
    events.append(accept(state, sub("a", Side.BUY, 10)))
    events.append(fill(state, events[-1].order_id, 4))
    events.append(state.quote("MSFT", 999_900, 1_000_100))
    events.append(state.set_limits(resolve_limits(LimitsSpec(**{**GENEROUS, "max_open_orders": 7}), REG)))
    events.append(state.set_kill_switch(True))
    events.append(state.set_trading_state(TradingState.REDUCING))
    events.append(state.start_day())
    decoded = [account_decoder.decode(account_encoder.encode(e)) for e in events]
    assert decoded == events
    assert isinstance(decoded[3], Quoted) and isinstance(decoded[4], LimitsChanged)

    replayed = AccountState(ACC, make().limits, REG)
    replayed.apply_all(decoded)
    assert replayed.state_hash() == state.state_hash()

    snap = msgspec.msgpack.decode(msgspec.msgpack.encode(state.snapshot()), type=type(state.snapshot()))
    restored = AccountState.restore(snap, REG)
    assert restored.state_hash() == state.state_hash()
    assert (restored.exposure, restored.working_qty("AAPL", Side.BUY)) == (state.exposure, 6)
    assert restored.limits.max_open_orders == 7


def _one_of_each_account_event() -> list[Any]:
    """One record of every admin and allowance event type, with fixed values."""
    lim = resolve_limits(LimitsSpec(**{**GENEROUS, "restricted_symbols": ["MSFT"]}), REG)
    return [
        Marked(ACC, "AAPL", PX, 1),
        Quoted(ACC, "AAPL", PX - 100, None, 2),
        KillSwitchSet(ACC, True, 3),
        TradingStateSet(ACC, TradingState.REDUCING, 4),
        LimitsChanged(ACC, lim, 5),
        DayStarted(ACC, 6),
        AllowanceGranted(ACC, 7, 4, 5_000, 1, (SymbolAllowance("AAPL", PX - 10, PX + 10, PX + 60, 30, 20),), 7),
        AllowanceSpent(ACC, 7, 11, "AAPL", Side.SELL, 5, 4_000, 8),
        AllowanceSpent(ACC, 7, 12, "AAPL", Side.BUY, 5, 4_000, 9, wal="1-0"),
        AllowanceToppedUp(ACC, 7, 2, 1_000, (SymbolTopUp("AAPL", 3, 4),), 10),
        AllowanceReturned(ACC, 7, 11),
        AllowanceRevoked(ACC, 12),
    ]


def _history_with_a_live_allowance() -> AccountState:
    """A fixed history (fixed ids, not the shared counters) that leaves positions, orders and an allowance."""
    state = make(credit_limit="50000")
    state.quote("MSFT", 999_900, 1_000_100, 2)
    for order_id, cl, side, qty, price in ((1, "a", Side.BUY, 10, PX), (2, "b", Side.SELL, 3, PX + 100)):
        decision = state.decide(sub(cl, side, qty, price), order_id, 10)
        assert isinstance(decision, OrderAccepted)
        state.apply(decision)
    state.apply(OrderFilled(1, "a", ACC, "AAPL", 1, Side.BUY, 4, PX, 6, 4, 4 * PX, True, 11))
    grant = state.grant_allowance(AllowanceRequest(orders=8), 20)
    assert grant is not None
    state.apply(AllowanceSpent(ACC, grant.grant_id, 900, "AAPL", Side.BUY, 2, 2 * PX * 10, 21))
    state.apply(OrderAccepted(900, "g1", ACC, "AAPL", Side.BUY, OrdType.LIMIT, TimeInForce.DAY, 2, PX, 21))
    return state


# blake2b-128 of each record's encoding, taken when these types were written; a change here means journals (and
# snapshots) already on disk no longer decode to the same records.
JOURNAL_DIGESTS = [
    ("Marked", "7144a9ef6a42f7b34f2a7b7894e9e671"),
    ("Quoted", "ab20582ec5d31a4635fb031df370d20a"),
    ("KillSwitchSet", "f9b79446e42a5d60000952769c319d6e"),
    ("TradingStateSet", "c73850c2063bf648f78f1bf9a7ac641b"),
    ("LimitsChanged", "4f4eddd3e1beb1d748f23d4efb876ffb"),
    ("DayStarted", "bd930f87450badc5453a1e977d413cab"),
    ("AllowanceGranted", "3a7e653671428f6dbdeccde55703d03d"),
    ("AllowanceSpent", "fcdfcb9e94d22bf348313860290d1266"),
    ("AllowanceSpent", "383a31cafe27ff2a64fdc09e645dd0b3"),
    ("AllowanceToppedUp", "799b7aa50a667ebf158e48bd79d02e84"),
    ("AllowanceReturned", "bfd5bd0ee5032f330bc3ee366e5cb419"),
    ("AllowanceRevoked", "104dde2e4829d6ff4866e9f8d43ae35b"),
]
SNAPSHOT_DIGEST = "af82f41149e1b417bdb38a48ddeab1af"
STATE_HASH = "079caef21161b8270e26b25f04cb5014"


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def test_journal_encoding_of_every_account_event_is_unchanged() -> None:
    events = _one_of_each_account_event()
    assert [(type(e).__name__, _digest(account_encoder.encode(e))) for e in events] == JOURNAL_DIGESTS
    assert [account_decoder.decode(account_encoder.encode(e)) for e in events] == events


def test_snapshot_encoding_and_state_hash_are_unchanged() -> None:
    state = _history_with_a_live_allowance()
    assert state.allowance_id
    assert _digest(account_encoder.encode(state.snapshot())) == SNAPSHOT_DIGEST
    assert state.state_hash() == STATE_HASH
