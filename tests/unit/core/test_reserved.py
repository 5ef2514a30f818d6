"""Reserved mode: grants, local spending, exhaustion and fallback, revocation, returns, journal replay."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from oms.core.accounts import (
    AccountState,
    AllowanceGranted,
    AllowanceRequest,
    AllowanceReturned,
    AllowanceSpent,
    AllowanceToppedUp,
    StaleAllowance,
    account_decoder,
    account_encoder,
)
from oms.core.engine import Unsettled
from oms.core.model.enums import CancelReason, OrdType, RejectReason, RiskMode, Side, TradingState
from oms.core.model.instruments import InstrumentRegistry
from oms.core.model.messages import (
    OrderAccepted,
    OrderCanceled,
    OrderFilled,
    OrderRejected,
    OrderReplaced,
    ReplaceOrder,
    SubmitOrder,
    TradePrinted,
)
from oms.core.reserved import AllowanceGate, LocalShard
from risk.limits import LimitsSpec, resolve_limits
from risk.money import notional_money

ROOT = Path(__file__).resolve().parents[3]
REG = InstrumentRegistry.load(ROOT / "configs" / "instruments.toml")
ACC = "ACC1"
PX = 1_000_000  # AAPL 100.00
SPEC: dict[str, Any] = {
    "start_cash": "100000",
    "credit_limit": "0",
    "max_order_notional": "50000",
    "max_gross_notional": "1000000",
    "max_net_notional": "1000000",
    "max_position": "100000",
    "collar_pct": "10",
    "orders_per_window": 100,
    "max_open_orders": 100,
}
FULL = AllowanceRequest(orders=4, credit_share_bp=10_000, qty_share_bp=10_000, band_share_bp=5_000)


def limits(**kw: Any) -> Any:
    return resolve_limits(LimitsSpec(**{**SPEC, **kw}), REG)


def setup(request: AllowanceRequest = FULL, low_orders: int = 0, **kw: Any) -> tuple[LocalShard, AllowanceGate]:
    state = AccountState(ACC, limits(**kw), REG)
    host = LocalShard([state])
    host.mark("AAPL", PX, 0)
    gate = AllowanceGate(host, REG, [ACC], request, batch=8, low_orders=low_orders)
    return host, gate


def buy(cl: str, qty: int = 10, price: int | None = PX, ord_type: OrdType | None = None) -> SubmitOrder:
    kind = ord_type or (OrdType.LIMIT if price is not None else OrdType.MARKET)
    return SubmitOrder(ACC, cl, "AAPL", Side.BUY, kind, qty, price)


def warm(gate: AllowanceGate) -> None:
    """The first order of an account has no allowance yet: it is decided strictly and a grant follows."""
    assert isinstance(gate.decide(buy("warm", 1), 1, 1), OrderAccepted)
    assert gate.fallbacks == 1 and gate.allowance_left(ACC) is not None


def test_a_grant_is_journaled_and_orders_within_it_are_accepted_without_the_host() -> None:
    host, gate = setup()
    warm(gate)
    granted = [e for e in host.events(ACC) if isinstance(e, AllowanceGranted)]
    assert len(granted) == 1 and granted[0].orders == 4 and granted[0].symbols
    journal_before = len(host.events(ACC))

    decision = gate.decide(buy("b1"), 2, 10)

    assert decision == OrderAccepted(2, "b1", ACC, "AAPL", Side.BUY, OrdType.LIMIT, decision.tif, 10, PX, 10)
    assert gate.local_accepts == 1 and gate.fallbacks == 1
    assert len(host.events(ACC)) == journal_before  # queued, not yet reported
    gate.flush()
    spent, accepted = host.events(ACC)[journal_before:]
    assert isinstance(spent, AllowanceSpent) and spent.order_id == 2 and spent.qty == 10
    assert accepted == decision
    state = host.state(ACC)
    assert state.working_orders() == [1, 2]
    allowance = state.allowance()
    assert allowance is not None and allowance.orders == 3
    assert (allowance.orders, allowance.credit) == gate.allowance_left(ACC)


def test_exhausted_allowance_falls_back_to_a_strict_decision_and_asks_again() -> None:
    host, gate = setup(request=msgspec.structs.replace(FULL, orders=2))
    warm(gate)
    for i in (2, 3):
        assert isinstance(gate.decide(buy(f"b{i}"), i, 10), OrderAccepted)
    assert gate.local_accepts == 2 and gate.allowance_left(ACC) == (0, gate.allowance_left(ACC)[1])  # type: ignore[index]

    assert isinstance(gate.decide(buy("b4"), 4, 11), OrderAccepted)

    assert gate.fallbacks == 2 and gate.local_accepts == 2
    assert [e.grant_id for e in host.events(ACC) if isinstance(e, AllowanceGranted)] == [1, 2]
    assert isinstance(gate.decide(buy("b5"), 5, 12), OrderAccepted) and gate.local_accepts == 3


def test_an_order_the_allowance_cannot_cover_is_decided_strictly_and_a_sure_reject_locally() -> None:
    _host, gate = setup()
    warm(gate)
    outside_band = buy("far", price=PX * 108 // 100)  # inside the 10 % collar, outside the 5 % band
    stop = buy("stop", price=None, ord_type=OrdType.STOP)
    too_big = buy("big", qty=600)  # notional 60000 > max_order_notional

    assert isinstance(gate.decide(outside_band, 2, 10), OrderAccepted)
    assert isinstance(gate.decide(stop, 3, 11), OrderAccepted)
    rejected = gate.decide(too_big, 4, 12)

    assert isinstance(rejected, OrderRejected) and rejected.reason is RejectReason.MAX_ORDER_NOTIONAL
    assert (gate.local_accepts, gate.local_rejects, gate.fallbacks) == (0, 1, 3)


def test_local_rejects_are_the_accounts_own_and_are_journaled() -> None:
    host, gate = setup()
    warm(gate)
    mirror = AccountState.restore(host.state(ACC).snapshot(), REG)
    big = buy("big", qty=200_000)  # above max_order_qty (the notional would fail too: the quantity is checked first)
    zero = buy("zero", qty=0)

    decisions = [gate.decide(big, 2, 10), gate.decide(zero, 3, 11)]

    assert [d.reason for d in decisions] == [RejectReason.MAX_ORDER_QTY, RejectReason.INVALID_QTY]  # type: ignore[union-attr]
    assert decisions == [mirror.decide(big, 2, 10), mirror.decide(zero, 3, 11)]
    assert (gate.local_rejects, gate.fallbacks) == (2, 1)
    again = gate.decide(buy("big", qty=5), 4, 12)  # a ClOrdID the gate has seen: the account decides (duplicate)
    assert isinstance(again, OrderRejected) and again.reason is RejectReason.DUPLICATE_CL_ORD_ID and gate.fallbacks == 2
    assert [e for e in host.events(ACC) if isinstance(e, OrderRejected)][:2] == decisions


def test_a_kill_switch_drains_the_queue_then_revokes_at_once() -> None:
    host, gate = setup()
    warm(gate)
    assert isinstance(gate.decide(buy("b2"), 2, 10), OrderAccepted)  # queued, not reported

    to_cancel = host.set_kill_switch(ACC, True, 11)

    assert to_cancel == [1, 2]  # the locally accepted order was reported before the switch
    assert gate.allowance_left(ACC) is None
    decision = gate.decide(buy("b3"), 3, 12)
    assert isinstance(decision, OrderRejected) and decision.reason is RejectReason.KILL_SWITCH


@pytest.mark.parametrize(
    "change",
    [
        lambda host: host.set_limits(ACC, limits(max_position="50"), 11),
        lambda host: host.set_limits(ACC, limits(), 11),  # even unchanged values: a limits change revokes
        lambda host: host.set_trading_state(ACC, TradingState.REDUCING, 11),
        lambda host: host.start_day(ACC, 11),
        lambda host: host.revoke_allowance(ACC, 11),
    ],
)
def test_operator_changes_revoke_the_allowance(change: Any) -> None:
    host, gate = setup()
    warm(gate)
    change(host)
    assert host.state(ACC).allowance() is None and gate.allowance_left(ACC) is None


def test_a_mark_outside_the_band_voids_the_allowance_and_a_small_one_does_not() -> None:
    host, gate = setup()
    warm(gate)
    host.mark("AAPL", PX * 101 // 100, 5)
    assert gate.allowance_left(ACC) is not None
    assert host.state(ACC).allowance_id == 1
    gate.on_events([TradePrinted("SIM", "AAPL", 1, PX * 120 // 100, 1, Side.BUY, 6)])
    granted = [e for e in host.events(ACC) if isinstance(e, AllowanceGranted)]
    assert [g.grant_id for g in granted] == [1, 2]  # grant 1 voided; the refill is banded around the new price
    assert host.state(ACC).allowance_id == 2 and granted[1].symbols[0].lo > PX * 110 // 100


def test_a_strict_decision_that_eats_into_the_allowance_voids_it() -> None:
    # credit_limit 0, cash 100000: a full-credit grant certifies 100000 of holds (little quantity, so only the
    # credit is at stake)
    host, gate = setup(request=msgspec.structs.replace(FULL, qty_share_bp=1_000))
    warm(gate)
    assert gate.allowance_left(ACC) is not None
    stop = buy("stop", qty=400, price=None, ord_type=OrdType.STOP)  # a strict decision: holds 400 * 110.00

    assert isinstance(gate.decide(stop, 2, 10), OrderAccepted)

    assert host.state(ACC).buying_power() < 100_000 * 10**9 - 40_000 * 10**9
    allowance = host.state(ACC).allowance()
    assert allowance is not None and allowance.grant_id == 2  # the first grant is void; a refill sized to what is left
    assert allowance.credit <= host.state(ACC).buying_power()


def test_a_drawdown_breaker_voids_the_allowance() -> None:
    host, gate = setup(drawdown_warn_pct="1", drawdown_reduce_pct="5", drawdown_halt_pct="50")
    assert isinstance(gate.decide(buy("warm", 500), 1, 1), OrderAccepted)
    gate.on_events([OrderFilled(1, "warm", ACC, "AAPL", 1, Side.BUY, 500, PX, 0, 500, 500 * PX, True, 2)])
    assert host.state(ACC).allowance() is not None

    host.mark("AAPL", PX * 80 // 100, 3)  # 500 * 20.00 lost: 10 % of the start-of-day equity

    assert host.state(ACC).trading_state is TradingState.REDUCING
    assert host.state(ACC).allowance() is None and gate.allowance_left(ACC) is None
    gate.refill()
    assert host.state(ACC).allowance() is None  # no grant while REDUCING


def test_a_returned_allowance_is_gone_and_spends_against_it_are_refused() -> None:
    host, gate = setup()
    warm(gate)
    grant_id = host.state(ACC).allowance_id
    gate.give_back(ACC)

    assert isinstance(host.events(ACC)[-1], AllowanceReturned)
    assert host.state(ACC).allowance() is None and gate.allowance_left(ACC) is None
    with pytest.raises(StaleAllowance):
        host.report_spent([AllowanceSpent(ACC, grant_id, 9, "AAPL", Side.BUY, 1, PX * 10**5, 20)])
    # with nothing out, the next order is strict and brings a new grant
    assert isinstance(gate.decide(buy("b9"), 9, 21), OrderAccepted) and gate.fallbacks == 2


def test_replaying_the_journal_with_grants_rebuilds_the_same_state() -> None:
    host, gate = setup(low_orders=1)
    warm(gate)
    for i in range(2, 12):
        gate.decide(buy(f"b{i}", qty=5 + i), i, 10 + i)
        if i % 3 == 0:
            gate.on_events([OrderFilled(i, f"b{i}", ACC, "AAPL", i, Side.BUY, 5 + i, PX, 0, 5 + i, PX, True, 10 + i)])
    gate.flush()
    state = host.state(ACC)
    assert state.allowance() is not None

    replayed = AccountState(ACC, limits(), REG)
    replayed.apply_all(account_decoder.decode(account_encoder.encode(e)) for e in host.events(ACC))

    assert replayed.state_hash() == state.state_hash()
    assert replayed.allowance() == state.allowance()
    restored = AccountState.restore(state.snapshot(), REG)
    assert restored.state_hash() == state.state_hash() and restored.allowance_id == state.allowance_id


def test_snapshots_without_allowances_encode_as_before() -> None:
    state = AccountState(ACC, limits(), REG)
    encoded = msgspec.msgpack.encode(state.snapshot())
    assert b"allowance" not in encoded and b"grant_seq" not in encoded


def test_no_grant_while_the_account_cannot_trade() -> None:
    state = AccountState(ACC, limits(), REG)
    state.mark("AAPL", PX)
    state.set_kill_switch(True)
    assert state.grant_allowance(FULL, 1) is None
    state.set_kill_switch(False)
    state.set_trading_state(TradingState.REDUCING)
    assert state.grant_allowance(FULL, 1) is None
    state.set_trading_state(TradingState.ACTIVE)
    assert state.grant_allowance(FULL, 1) is not None


def test_accounts_not_in_reserved_mode_are_always_decided_by_the_host() -> None:
    host, _ = setup()
    gate = AllowanceGate(host, REG, [], FULL)
    for i in range(3):
        assert isinstance(gate.decide(buy(f"s{i}"), i + 1, 10), OrderAccepted)
    assert gate.local_accepts == 0 and gate.fallbacks == 3
    assert host.state(ACC).allowance() is None


def test_kill_switch_through_the_engine_cancels_working_orders_and_blocks_new_ones() -> None:
    from oms.core.engine import OrderManager
    from oms.core.model.messages import OrderCanceled
    from oms.core.venues.internal import InternalVenue

    host, gate = setup()
    venue = InternalVenue(REG)
    engine = OrderManager(REG, gate, lambda symbol: venue)
    engine.submit(buy("w1"), 1)

    (canceled,) = engine.kill_switch(ACC, True, 2)
    (rejected,) = engine.submit(buy("w2"), 3)

    assert isinstance(canceled, OrderCanceled) and canceled.cl_ord_id == "w1"
    assert isinstance(rejected, OrderRejected) and rejected.reason == RejectReason.KILL_SWITCH
    assert gate.accounts() == [ACC] and host.state(ACC).kill_switch


def test_an_account_whose_rate_window_is_below_the_low_mark_asks_for_top_ups_at_half_its_window() -> None:
    # orders_per_window 8: no grant holds more than 8 tokens, so a low mark of 128 would ask on every order
    state = AccountState(ACC, limits(orders_per_window=8), REG)
    asked: list[int] = []  # tokens the gate held at each top-up it asked for

    class CountingShard(LocalShard):
        def gate_top_up(self, call: Any) -> Any:
            asked.append(gate.allowance_left(ACC)[0])  # type: ignore[index]
            return super().gate_top_up(call)

    host = CountingShard([state])
    host.mark("AAPL", PX, 0)
    request = AllowanceRequest(orders=8, credit_share_bp=10_000, qty_share_bp=10_000)
    gate = AllowanceGate(host, REG, [ACC], request, batch=8, low_orders=128)
    warm(gate)  # the strict decision took one of the window's 8: the grant holds 7
    left = []
    for i in range(2, 6):  # 100 ms apart: past the pause after a top-up that came back empty, within the window
        assert isinstance(gate.decide(buy(f"b{i}", 1), i, i * 100_000_000), OrderAccepted)
        gate.on_events([])  # a post-trade step: it asks for a top-up only when the allowance is low
        left.append(gate.allowance_left(ACC)[0])  # type: ignore[index]

    assert gate.local_accepts == 4 and left == [6, 5, 4, 3]
    assert asked == [4, 3]  # from half the window (4 tokens) on, not at every order


def test_a_low_allowance_is_topped_up_under_the_same_grant_and_replays() -> None:
    host, gate = setup(low_orders=2)
    warm(gate)
    for i in (2, 3):
        assert isinstance(gate.decide(buy(f"b{i}"), i, 10), OrderAccepted)
    assert gate.allowance_left(ACC) is not None and gate.allowance_left(ACC)[0] == 2  # type: ignore[index]

    gate.on_events([])  # a post-trade step: the allowance is low, the host tops it up

    (topped,) = [e for e in host.events(ACC) if isinstance(e, AllowanceToppedUp)]
    assert topped.grant_id == 1 and topped.orders == 2 and gate.top_ups == 1
    allowance = host.state(ACC).allowance()
    assert allowance is not None and allowance.grant_id == 1
    assert (allowance.orders, allowance.credit) == gate.allowance_left(ACC)
    assert isinstance(gate.decide(buy("b4"), 4, 11), OrderAccepted) and gate.local_accepts == 3
    gate.flush()
    replayed = AccountState(ACC, limits(), REG)
    replayed.apply_all(account_decoder.decode(account_encoder.encode(e)) for e in host.events(ACC))
    assert replayed.state_hash() == host.state(ACC).state_hash()


def test_a_top_up_needs_the_grant_it_names_to_be_live() -> None:
    state = AccountState(ACC, limits(), REG)
    state.mark("AAPL", PX)
    granted = state.grant_allowance(FULL, 1)
    assert granted is not None
    assert state.top_up_allowance(granted.grant_id, FULL, 2) is None  # nothing spent: nothing to add
    state.revoke_allowance(3)
    assert state.top_up_allowance(granted.grant_id, FULL, 4) is None
    with pytest.raises(StaleAllowance):
        state.apply(AllowanceToppedUp(ACC, granted.grant_id, 1, 0, (), 5))


def test_operator_changes_through_the_gate_report_the_queue_first_and_revoke() -> None:
    host, gate = setup()
    warm(gate)
    assert isinstance(gate.decide(buy("b2"), 2, 10), OrderAccepted)  # queued

    gate.set_limits(ACC, limits(max_order_qty="5"), 11)

    assert host.state(ACC).working_orders() == [1, 2] and gate.allowance_left(ACC) is None
    rejected = gate.decide(buy("b3"), 3, 12)
    assert isinstance(rejected, OrderRejected) and rejected.reason is RejectReason.MAX_ORDER_QTY
    gate.set_limits(ACC, msgspec.structs.replace(limits(), risk_mode=RiskMode.STRICT), 13)
    assert gate.reserved_accounts() == []  # strict from now on: every order to the host
    assert isinstance(gate.decide(buy("b4"), 4, 14), OrderAccepted) and gate.allowance_left(ACC) is None


def test_no_grant_counts_on_room_that_only_a_working_order_makes() -> None:
    # short 200 over a max_position of 100, gross at its limit, and a working buy of 150 that would bring the
    # position back: with the buy the account could certify buy headroom, without it none. A grant sized on the
    # working buy would be voided by its cancel, which the gate queues without asking the account; so headroom is
    # certified with and without each side's working orders, and here nothing is granted
    host, gate = setup(low_orders=0)
    sell = SubmitOrder(ACC, "s", "AAPL", Side.SELL, OrdType.LIMIT, 200, PX)
    assert isinstance(gate.decide(sell, 1, 1), OrderAccepted)
    gate.on_events([OrderFilled(1, "s", ACC, "AAPL", 1, Side.SELL, 200, PX, 0, 200, 200 * PX, True, 2)])
    host.set_limits(ACC, limits(max_position="100", max_gross_notional="20500"), 3)
    assert isinstance(gate.decide(buy("b", 150), 2, 4), OrderAccepted)
    gate.refill()
    gate.flush()
    assert host.state(ACC).allowance() is None

    gate.on_events([OrderCanceled(2, "b", ACC, "AAPL", CancelReason.USER, 150, 5)])
    assert gate.fallbacks == 2  # the cancel asked nothing of the account
    gate.flush()
    assert host.state(ACC).open_order(2) is None


def test_a_cancel_is_queued_and_keeps_the_grant() -> None:
    host, _ = setup()
    gate = AllowanceGate(host, REG, [ACC], FULL, batch=8, low_orders=0, flush_after_ns=10**9)  # reports: 1 s old
    warm(gate)
    assert isinstance(gate.decide(buy("b", 10), 2, 2), OrderAccepted)
    granted = host.state(ACC).allowance_id
    before = len(host.events(ACC))

    gate.on_events([OrderCanceled(2, "b", ACC, "AAPL", CancelReason.USER, 10, 3)])
    assert len(host.events(ACC)) == before  # queued: the account hears of it with the next batch
    gate.flush()

    assert host.state(ACC).open_order(2) is None
    assert host.state(ACC).allowance_id == granted


class MemoryLog:
    """A WriteAhead in memory: entries in order, ids 1-1, 1-2, ..."""

    def __init__(self) -> None:
        self.entries: list[tuple[str, list[Any]]] = []
        self.sent: list[int] = []  # the entries of each send_many, in order

    def write(self, account: str, records: Any) -> str:
        return self.write_many([(account, records)])[0]

    def write_many(self, entries: Any) -> list[str]:
        ids = []
        for account, records in entries:
            self.entries.append((account, list(records)))
            ids.append(f"1-{len(self.entries)}")
        return ids

    def send_many(self, entries: Any) -> Callable[[], list[str]]:
        """Stored when the answer is asked for: a write made before an earlier send is answered lands first and
        shows in the ids."""
        self.sent.append(len(entries))
        return lambda: self.write_many(entries)


def group_gate(host: LocalShard, log: MemoryLog, flush_after_ns: int = 10**9) -> AllowanceGate:
    return AllowanceGate(host, REG, [ACC], FULL, batch=8, low_orders=0, flush_after_ns=flush_after_ns, log=log,
                         group_commit=True)  # fmt: skip


def spends(host: LocalShard) -> list[AllowanceSpent]:
    return [e for e in host.events(ACC) if isinstance(e, AllowanceSpent)]


def test_group_commit_writes_a_batchs_acceptances_in_one_write_when_sealed() -> None:
    host, _ = setup()
    log = MemoryLog()
    gate = group_gate(host, log)
    warm(gate)
    for i in (2, 3):
        assert isinstance(gate.decide(buy(f"b{i}"), i, i), OrderAccepted)
    assert log.entries == []  # held back until the batch ends

    write = gate.seal()
    assert write is not None and log.entries == []
    write()
    assert [len(records) for _, records in log.entries] == [2, 2]  # one entry per acceptance, one write
    assert gate.seal() is None  # nothing new to write

    gate.flush()
    assert [s.wal for s in spends(host)] == ["1-1", "1-2"]


class CountingLog(MemoryLog):
    """A MemoryLog that counts its round trips; while `away`, a write raises and stores nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.round_trips = 0
        self.away = False

    def write_many(self, entries: Any) -> list[str]:
        if self.away:
            raise ConnectionError("Redis away")
        self.round_trips += 1
        return super().write_many(entries)


def sealed_batches(gate: AllowanceGate, order_ids: Iterable[int]) -> list[Callable[[], None]]:
    """One batch per order id, each accepted and sealed; their writes, not run yet."""
    writes = []
    for i in order_ids:
        assert isinstance(gate.decide(buy(f"b{i}"), i, i), OrderAccepted)
        write = gate.seal()
        assert write is not None
        writes.append(write)
    return writes


def test_a_write_takes_the_entries_of_batches_sealed_while_it_waited_in_one_round_trip() -> None:
    host, _ = setup()
    log = CountingLog()
    gate = group_gate(host, log)
    warm(gate)
    writes = sealed_batches(gate, (2, 3, 4))  # three batches end before the committer runs the first one's write

    writes[0]()
    assert log.round_trips == 1
    assert [r[1].order_id for _, r in log.entries] == [2, 3, 4]  # in seal order
    writes[1]()  # their own writes: nothing left to do
    writes[2]()
    assert log.round_trips == 1

    assert isinstance(gate.decide(buy("b5"), 5, 5), OrderAccepted)  # a batch sealed after it ran: a write of its own
    last = gate.seal()
    assert last is not None
    last()
    assert log.round_trips == 2
    gate.flush()
    assert [(s.order_id, s.wal) for s in spends(host)] == [(2, "1-1"), (3, "1-2"), (4, "1-3"), (5, "1-4")]


def test_a_failed_write_leaves_every_batch_it_took_to_be_written_again() -> None:
    host, _ = setup()
    log = CountingLog()
    gate = group_gate(host, log)
    warm(gate)
    writes = sealed_batches(gate, (2, 3))
    log.away = True
    with pytest.raises(ConnectionError):
        writes[0]()
    log.away = False

    writes[0]()  # the runtime retries the same write: it takes both again
    writes[1]()
    gate.flush()
    assert log.round_trips == 1
    assert [(s.order_id, s.wal) for s in spends(host)] == [(2, "1-1"), (3, "1-2")]


def accepted_b2() -> tuple[LocalShard, CountingLog, AllowanceGate]:
    """A group-commit gate whose step accepted b2 (order 2), its entry held."""
    host, _ = setup()
    log = CountingLog()
    gate = group_gate(host, log)
    warm(gate)
    assert isinstance(gate.decide(buy("b2"), 2, 2), OrderAccepted)
    return host, log, gate


def sent_ahead() -> tuple[LocalShard, CountingLog, AllowanceGate]:
    """`accepted_b2`, the entry sent ahead (`start_write`), unanswered."""
    host, log, gate = accepted_b2()
    gate.start_write()
    return host, log, gate


def test_a_lone_orders_entry_goes_before_its_batch_is_sealed_and_the_seals_write_takes_its_answer() -> None:
    host, log, gate = sent_ahead()  # the step decided; its reports are about to be published
    assert log.sent == [1] and log.entries == []  # on its way, not answered yet

    write = gate.seal()
    assert write is not None and log.round_trips == 0
    write()
    assert log.round_trips == 1 and [r[1].order_id for _, r in log.entries] == [2]
    assert gate.seal() is None
    gate.flush()
    assert [(s.order_id, s.wal) for s in spends(host)] == [(2, "1-1")]


def test_while_a_write_is_outstanding_a_steps_entries_wait_for_the_seal() -> None:
    host, log, gate = sent_ahead()
    first = gate.seal()
    assert isinstance(gate.decide(buy("b3"), 3, 3), OrderAccepted)
    gate.start_write()  # b2's answer is not in: b3's entry would otherwise race it
    assert log.sent == [1]
    second = gate.seal()
    assert first is not None and second is not None

    first()  # b2's answer, then b3's entry (sealed by then) in one more round trip
    second()
    assert log.round_trips == 2 and [r[1].order_id for _, r in log.entries] == [2, 3]
    assert isinstance(gate.decide(buy("b4"), 4, 4), OrderAccepted)
    gate.start_write()  # nothing outstanding again
    assert log.sent == [1, 1]
    last = gate.seal()
    assert last is not None
    last()
    gate.flush()
    assert [(s.order_id, s.wal) for s in spends(host)] == [(2, "1-1"), (3, "1-2"), (4, "1-3")]


def test_an_entry_whose_answer_failed_is_written_again_by_its_seals_write() -> None:
    host, log, gate = sent_ahead()
    write = gate.seal()
    assert write is not None
    log.away = True
    with pytest.raises(ConnectionError):
        write()
    gate.flush_written()
    assert spends(host) == []  # nothing reaches the account before its entry is written
    log.away = False

    write()  # the runtime retries: the entry is written again, in a round trip of its own
    assert log.round_trips == 1 and [r[1].order_id for _, r in log.entries] == [2]
    gate.flush()
    assert [(s.order_id, s.wal) for s in spends(host)] == [(2, "1-1")]


def test_entries_that_could_not_be_sent_ahead_stay_held_and_the_seal_writes_them() -> None:
    host, log, gate = accepted_b2()
    send_many = log.send_many
    log.send_many = lambda entries: (_ for _ in ()).throw(OverflowError("cannot encode"))  # type: ignore[method-assign]
    with pytest.raises(OverflowError):
        gate.start_write()
    log.send_many = send_many  # type: ignore[method-assign]

    write = gate.seal()
    assert write is not None
    write()
    gate.flush()
    assert [(s.order_id, s.wal) for s in spends(host)] == [(2, "1-1")]  # nothing lost


def test_a_host_call_in_the_batch_takes_the_answer_of_the_entry_sent_ahead_first() -> None:
    host, log, gate = sent_ahead()
    gate.wait_written = lambda: None  # the runtime has no sealed write: this batch's is not sealed yet

    gate.flush()  # a call to the host in the same batch (a fallback decision, an operator's change)

    assert [(s.order_id, s.wal) for s in spends(host)] == [(2, "1-1")]  # its entry written first
    write = gate.seal()
    assert write is not None
    write()  # the answer is in already: nothing more to write
    assert log.round_trips == 1


class RemoteShard(LocalShard):
    """A LocalShard that, like an actor over Ray, cannot call back into the gate to drain its queued reports."""

    def attach_drain(self, account: str, drain: Callable[[], None]) -> None:
        pass


def test_a_top_up_is_asked_for_without_holding_the_sequence_for_a_write() -> None:
    host = RemoteShard([AccountState(ACC, limits(), REG)])
    host.mark("AAPL", PX, 0)
    log = MemoryLog()
    gate = AllowanceGate(host, REG, [ACC], FULL, batch=8, low_orders=2, flush_after_ns=10**9, log=log,
                         group_commit=True)  # fmt: skip
    warm(gate)
    (first,) = sealed_batches(gate, (2,))
    first()  # the committer has written this batch's entry
    (second,) = sealed_batches(gate, (3,))  # the allowance is low now; this batch's write is still queued

    def hold() -> None:
        raise AssertionError("the sequence waited for a write to ask for a top-up")

    runtime_wait, gate.wait_written = gate.wait_written, hold
    gate.on_events([])  # a post-trade step: the host tops the allowance up

    # the written spend first, then the top-up
    assert [type(e) for e in host.events(ACC)][-3:] == [AllowanceSpent, OrderAccepted, AllowanceToppedUp]
    assert [s.order_id for s in spends(host)] == [2]  # the other's entry is not written: it stays queued
    second()
    gate.wait_written = runtime_wait
    gate.flush()
    assert [(s.order_id, s.wal) for s in spends(host)] == [(2, "1-1"), (3, "1-2")]
    replayed = AccountState(ACC, limits(), REG)
    replayed.apply_all(account_decoder.decode(account_encoder.encode(e)) for e in host.events(ACC))
    assert replayed.state_hash() == host.state(ACC).state_hash()


def test_group_commit_never_reports_an_acceptance_before_its_entry_is_written() -> None:
    host, _ = setup()
    log = MemoryLog()
    gate = group_gate(host, log)
    warm(gate)
    assert isinstance(gate.decide(buy("b2"), 2, 2), OrderAccepted)
    write = gate.seal()
    assert write is not None
    waited: list[int] = []
    gate.wait_written = lambda: (waited.append(1), write())  # the committer, finishing the sealed write

    assert isinstance(gate.decide(buy("b3"), 3, 3), OrderAccepted)  # this batch's entry is not sealed yet
    gate.flush()

    assert waited == [1]
    assert [s.wal for s in spends(host)] == ["1-1", "1-2"]  # the sealed write first, then this batch's
    assert [r[1].order_id for _, r in log.entries] == [2, 3]


def test_a_due_seal_reports_only_what_is_already_written() -> None:
    host, _ = setup()
    log = MemoryLog()
    gate = group_gate(host, log, flush_after_ns=0)  # reports are always due
    warm(gate)
    assert isinstance(gate.decide(buy("b2"), 2, 2), OrderAccepted)
    first = gate.seal()
    assert first is not None and spends(host) == []  # due, but not written yet
    first()
    assert isinstance(gate.decide(buy("b3"), 3, 3), OrderAccepted)

    second = gate.seal()  # sends b2's pair, written; b3's waits for its write

    assert second is not None
    assert [s.order_id for s in spends(host)] == [2]
    second()
    assert gate.seal() is None
    assert [(s.order_id, s.wal) for s in spends(host)] == [(2, "1-1"), (3, "1-2")]


def test_post_trade_events_are_written_ahead_and_a_failed_call_is_resynced_once_the_writes_landed() -> None:
    host, _ = setup()
    log = MemoryLog()
    gate = group_gate(host, log)
    warm(gate)
    assert isinstance(gate.decide(buy("b2"), 2, 2), OrderAccepted)
    fill = OrderFilled(2, "b2", ACC, "AAPL", 7, Side.BUY, 4, PX, 6, 4, 4 * PX, True, 3)
    calls: list[str] = []
    settle, resync = host.gate_settle, host.gate_resync

    def failing_settle(reports, call):  # type: ignore[no-untyped-def]
        calls.append(f"settle wal={call.wal}")
        raise ConnectionError("the host died mid-call")

    host.gate_settle = failing_settle  # type: ignore[method-assign]
    host.gate_resync = lambda reports, call: (calls.append(f"resync {call.account}"), resync(reports, call))[1]  # type: ignore[method-assign]
    gate.on_events([fill])
    assert calls == []  # nothing leaves before its entry is written
    write = gate.seal()
    assert write is not None
    write()
    assert [r for _, r in log.entries][-1] == [fill]  # written ahead, before the call

    gate.flush_written()  # the write landed: the call goes, fails, and the account is rebuilt from the log
    assert calls == [f"settle wal={{'{ACC}': '1-{len(log.entries)}'}}", f"resync {ACC}"]
    assert gate.unsynced == set() and gate.allowance_left(ACC) is None
    with pytest.raises(Unsettled, match="written ahead"):  # the engine hears of it at its next post-trade step
        gate.on_events([])
    gate.on_events([])
    host.gate_settle = settle  # type: ignore[method-assign]
    gate.flush_written()
    assert calls.count(f"resync {ACC}") == 1


def test_without_a_log_a_failed_post_trade_call_raises_what_the_host_raised() -> None:
    host, gate = setup()
    warm(gate)

    def failing_settle(reports, call):  # type: ignore[no-untyped-def]
        raise ConnectionError("gone")

    host.gate_settle = failing_settle  # type: ignore[method-assign]
    with pytest.raises(ConnectionError):
        gate.on_events([OrderFilled(1, "w", ACC, "AAPL", 7, Side.BUY, 1, PX, 0, 1, PX, True, 3)])
    assert gate.unsynced == set()


def test_post_trade_events_reach_the_host_only_once_their_write_ahead_lands() -> None:
    host, _ = setup()
    log = MemoryLog()
    gate = group_gate(host, log)
    warm(gate)
    gate.flush()
    fill = OrderFilled(1, "warm", ACC, "AAPL", 7, Side.BUY, 1, PX, 0, 1, PX, True, 3)
    gate.on_events([fill])
    write = gate.seal()
    assert write is not None
    write_many = log.write_many
    log.write_many = lambda entries: (_ for _ in ()).throw(ConnectionError("redis gone"))  # type: ignore[method-assign]
    with pytest.raises(ConnectionError):
        write()
    gate.flush_written()
    assert fill not in host.events(ACC)  # not sent while its entry is not written
    log.write_many = write_many  # type: ignore[method-assign]
    write()  # the committer tries again
    assert [r for _, r in log.entries][-1] == [fill]
    gate.flush_written()
    assert fill in host.events(ACC) and gate.unsynced == set()


def count_settles(host: LocalShard) -> list[list[Any]]:
    """The events of each post-trade call `host` gets from now on."""
    calls: list[list[Any]] = []
    settle = host.gate_settle

    def counted(reports: Any, call: Any) -> Any:
        calls.append(list(call.events))
        return settle(reports, call)

    host.gate_settle = counted  # type: ignore[method-assign]
    return calls


def commit(gate: AllowanceGate) -> None:
    """Seal the batch and run its write, as the sequencer and its committer do."""
    write = gate.seal()
    assert write is not None
    write()


def replace(qty: int, price: int | None = PX) -> ReplaceOrder:
    return ReplaceOrder(ACC, "b2r", "b2", "AAPL", Side.BUY, qty, price)


def test_a_replace_the_allowance_covers_is_accepted_here_and_its_spend_reaches_the_host_before_the_replace() -> None:
    host, _ = setup()
    log = MemoryLog()
    gate = group_gate(host, log)
    warm(gate)
    assert isinstance(gate.decide(buy("b2", 10), 2, 2), OrderAccepted)
    commit(gate)
    gate.flush()
    granted, before = host.state(ACC).allowance_id, len(host.events(ACC))
    left = gate.allowance_left(ACC)
    assert left is not None
    tokens, credit = left

    assert gate.decide_replace(replace(30, PX - 1_000), 2, 3, OrdType.LIMIT) is RejectReason.NONE

    assert (gate.local_replaces, gate.replace_checks, len(host.events(ACC))) == (1, 0, before)  # the host not asked
    spent = notional_money(REG.by_symbol("AAPL"), 30, PX - 1_000)  # as a new order of 30 at 99.99 would
    assert gate.allowance_left(ACC) == (tokens - 1, credit - spent)
    settles = count_settles(host)
    replaced = OrderReplaced(2, "b2r", "b2", ACC, "AAPL", 30, PX - 1_000, 30, 4)
    gate.on_events([replaced])  # the venue's answer in the same step: it joins the spend, no call
    commit(gate)
    assert [type(r) for r in log.entries[-1][1]] == [AllowanceSpent, OrderReplaced]  # one entry
    gate.flush()
    spend, applied = host.events(ACC)[before:]
    assert isinstance(spend, AllowanceSpent) and (spend.order_id, spend.qty, spend.credit) == (2, 30, spent)
    assert applied == replaced and settles == [] and gate.replaces_joined == 1
    assert host.state(ACC).allowance_id == granted  # applied together they keep the certificate


@pytest.mark.parametrize("meanwhile", ["the batch is written", "another order is accepted"])
def test_a_replace_answered_after_its_step_goes_to_the_host_in_a_post_trade_call(meanwhile: str) -> None:
    host, _ = setup()
    log = MemoryLog()
    gate = group_gate(host, log)
    warm(gate)
    assert isinstance(gate.decide(buy("b2", 10), 2, 2), OrderAccepted)
    assert gate.decide_replace(replace(30, PX - 1_000), 2, 3, OrdType.LIMIT) is RejectReason.NONE
    if meanwhile == "the batch is written":  # the step ends with the replace at an external venue
        commit(gate)
    else:  # the next step, in the same batch, is an order
        assert isinstance(gate.decide(buy("b3", 10), 3, 3), OrderAccepted)
    settles = count_settles(host)

    replaced = OrderReplaced(2, "b2r", "b2", ACC, "AAPL", 30, PX - 1_000, 30, 4)
    gate.on_events([replaced])  # a later step: events may have moved the account meanwhile
    commit(gate)
    gate.flush_written()

    assert [e for call in settles for e in call] == [replaced] and gate.replaces_joined == 0
    assert [type(r) for r in log.entries[-1][1]] == [OrderReplaced]  # written ahead as a post-trade entry


@pytest.mark.parametrize(
    ("cmd", "ord_type"),
    [
        (replace(30, PX * 107 // 100), OrdType.LIMIT),  # inside the collar, outside the band
        (replace(30, None), OrdType.MARKET),
        (replace(0), OrdType.LIMIT),
    ],
)
def test_a_replace_the_allowance_does_not_cover_is_the_hosts_check(cmd: ReplaceOrder, ord_type: OrdType) -> None:
    host, gate = setup()
    warm(gate)
    assert isinstance(gate.decide(buy("b2", 10, None if ord_type is OrdType.MARKET else PX), 2, 2), OrderAccepted)
    left = gate.allowance_left(ACC)

    reason = gate.decide_replace(cmd, 2, 3, ord_type)

    assert reason is host.state(ACC).decide_replace(cmd, 2, 3)
    assert (gate.local_replaces, gate.replace_checks, gate.allowance_left(ACC)) == (0, 1, left)


class Held:
    """A post-trade call's answer, in once the test says so (`arrived`); `waited`: the gate took it before."""

    def __init__(self, answer: Any) -> None:
        self._answer = answer
        self.arrived = False
        self.waited = False

    def done(self) -> bool:
        return self.arrived

    def result(self) -> Any:
        self.waited = not self.arrived
        self.arrived = True
        return self._answer.result()


def hold_answers(host: LocalShard) -> list[Held]:
    """`host`'s post-trade calls applied when made but answered only once arrived (or waited for), as over Ray."""
    held: list[Held] = []
    settle = host.gate_settle

    def gate_settle(reports, call):  # type: ignore[no-untyped-def]
        held.append(Held(settle(reports, call)))
        return held[-1]

    host.gate_settle = gate_settle  # type: ignore[method-assign]
    return held


def two_accounts(request: AllowanceRequest = FULL) -> tuple[LocalShard, AllowanceGate, list[Held]]:
    """ACC1 and ACC2, both reserved and warmed up (each holds a grant), the post-trade answers held."""
    host = LocalShard([AccountState(ACC, limits(), REG), AccountState("ACC2", limits(), REG)])
    host.mark("AAPL", PX, 0)
    host.mark("BTC-USD", 5_000, 0)
    gate = AllowanceGate(host, REG, [ACC, "ACC2"], request, batch=8, low_orders=0, log=MemoryLog())
    for n, account in enumerate((ACC, "ACC2"), 1):
        warm_cmd = msgspec.structs.replace(buy(f"warm{n}", 1), account=account)
        assert isinstance(gate.decide(warm_cmd, n, 1), OrderAccepted)
    assert gate.allowance_left(ACC) is not None and gate.allowance_left("ACC2") is not None
    return host, gate, hold_answers(host)


def test_a_fill_reaches_the_host_without_waiting_and_holds_back_only_its_own_accounts_local_decisions() -> None:
    host, gate, answers = two_accounts()
    fill = OrderFilled(1, "warm1", ACC, "AAPL", 7, Side.BUY, 1, PX, 0, 1, PX, True, 3)

    gate.on_events([fill])

    assert fill in host.events(ACC) and [a.waited for a in answers] == [False]  # applied, its answer not waited for
    other = gate.decide(msgspec.structs.replace(buy("o1"), account="ACC2"), 10, 4)
    assert isinstance(other, OrderAccepted) and gate.local_accepts == 1 and [a.waited for a in answers] == [False]
    own = gate.decide(buy("o2"), 11, 5)  # the filled account's decision waits for the answer, then is local
    assert isinstance(own, OrderAccepted) and gate.local_accepts == 2 and [a.waited for a in answers] == [True]
    assert gate.fallbacks == 2  # the two warm-ups only


def test_a_trade_print_holds_back_the_accounts_it_moves_and_no_other() -> None:
    _, gate, answers = two_accounts(msgspec.structs.replace(FULL, symbols=("AAPL",)))  # grants cover AAPL only
    btc = SubmitOrder(ACC, "btc", "BTC-USD", Side.BUY, OrdType.LIMIT, 1, 5_000)
    assert isinstance(gate.decide(btc, 3, 2), OrderAccepted) and gate.fallbacks == 3  # strict: not in the grant

    gate.on_events([TradePrinted("SIM", "BTC-USD", 1, 5_100, 1, Side.BUY, 3)])  # ACC1 has an order in BTC-USD

    assert isinstance(gate.decide(msgspec.structs.replace(buy("o1"), account="ACC2"), 10, 4), OrderAccepted)
    assert [a.waited for a in answers] == [False]  # ACC2: neither granted BTC-USD nor in it, so not moved by the print
    assert isinstance(gate.decide(buy("o2"), 11, 5), OrderAccepted)
    assert [a.waited for a in answers] == [True] and gate.fallbacks == 3  # ACC1 waited for the answer, then local

    gate.on_events([TradePrinted("SIM", "AAPL", 2, PX + 100, 1, Side.BUY, 6)])  # both have AAPL orders working
    assert isinstance(gate.decide(msgspec.structs.replace(buy("o3"), account="ACC2"), 12, 7), OrderAccepted)
    assert [a.waited for a in answers] == [True, True]


def test_a_trade_print_in_a_symbol_an_account_is_flat_in_holds_it_back_only_when_it_leaves_the_band() -> None:
    host = LocalShard([AccountState(ACC, limits(), REG)])
    host.mark("AAPL", PX, 0)
    host.mark("BTC-USD", 5_000, 0)
    gate = AllowanceGate(host, REG, [ACC], FULL, batch=8, low_orders=0, log=MemoryLog())
    btc = SubmitOrder(ACC, "btc", "BTC-USD", Side.BUY, OrdType.LIMIT, 1, 5_000)
    assert isinstance(gate.decide(btc, 1, 1), OrderAccepted)  # the grant covers AAPL: flat in it, no order in it
    answers = hold_answers(host)

    gate.on_events([TradePrinted("SIM", "AAPL", 1, PX + 100, 1, Side.BUY, 2)])  # within the band: nothing moves
    assert isinstance(gate.decide(buy("a1"), 2, 3), OrderAccepted)
    assert [a.waited for a in answers] == [False] and gate.local_accepts == 1
    answers[0].arrived = True

    gate.on_events([TradePrinted("SIM", "AAPL", 2, PX * 12 // 10, 1, Side.BUY, 4)])  # 20 % up: the band is out
    decision = gate.decide(buy("a2", price=PX * 12 // 10), 3, 5)
    assert [a.waited for a in answers] == [False, True]  # it waited for the answer, which brought a fresh grant
    assert isinstance(decision, OrderAccepted) and gate.local_accepts == 2 and gate.fallbacks == 1
