"""A port that raises leaves no trace: random orders, cancels, replaces and mass cancels through the OrderManager,
with the risk gate or the venue failing at random calls (before doing anything, or, for a decision, after the
account took it and its answer was lost). After every step no order is left pending, and every account holds open
exactly the orders the engine has working; at the end, withdrawing every working order empties the book.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st

from oms.core.accounts import AccountState
from oms.core.engine import OrderManager
from oms.core.model.enums import OrdStatus, OrdType, RejectReason, Side, TradingState
from oms.core.model.enums import TimeInForce as T
from oms.core.model.instruments import InstrumentRegistry
from oms.core.model.messages import CancelOrder, Message, OrderAccepted, OrderRejected, ReplaceOrder, SubmitOrder
from oms.core.reserved import AllowanceGate, LocalShard
from oms.core.venues.internal import InternalVenue
from risk.limits import AccountLimits, LimitsSpec, resolve_limits

REG = InstrumentRegistry.load(Path(__file__).parents[2] / "configs" / "instruments.toml")
PX = 1_500_000
LIMITS = resolve_limits(LimitsSpec(start_cash="10000000", credit_limit="0", max_order_notional="1000000",
                                   max_gross_notional="100000000", max_net_notional="100000000", max_position="100000",
                                   orders_per_window=1000, max_open_orders=1000, collar_pct="10"), REG)  # fmt: skip
ACCOUNTS = ("ACC1", "ACC2")  # ACC1 decided within its allowance, ACC2 strictly by its account
PENDING = {OrdStatus.PENDING_NEW, OrdStatus.PENDING_CANCEL, OrdStatus.PENDING_REPLACE}


class InjectedFault(RuntimeError):
    pass


class FaultyGate:
    """The gate, failing its next `decide` once when told: before it decides, or after (the answer lost)."""

    def __init__(self, inner: AllowanceGate) -> None:
        self.inner = inner
        self.fail: str | None = None

    def decide(self, cmd: SubmitOrder, order_id: int, now_ns: int) -> OrderAccepted | OrderRejected:
        fail, self.fail = self.fail, None
        if fail == "before":
            raise InjectedFault("gate down")
        decision = self.inner.decide(cmd, order_id, now_ns)
        if fail == "after":
            raise InjectedFault("answer lost")
        return decision

    def decide_replace(self, cmd: ReplaceOrder, order_id: int, now_ns: int, ord_type: OrdType) -> RejectReason:
        return self.inner.decide_replace(cmd, order_id, now_ns, ord_type)

    def on_events(self, events: Iterable[Message]) -> None:
        self.inner.on_events(events)

    def set_kill_switch(self, account: str, on: bool, now_ns: int) -> None:
        self.inner.set_kill_switch(account, on, now_ns)

    def set_trading_state(self, account: str, trading_state: TradingState, now_ns: int) -> None:
        self.inner.set_trading_state(account, trading_state, now_ns)

    def quote(self, symbol: str, bid: int, ask: int, now_ns: int) -> None:
        self.inner.quote(symbol, bid, ask, now_ns)

    def set_limits(self, account: str, limits: AccountLimits, now_ns: int) -> None:
        self.inner.set_limits(account, limits, now_ns)

    def accounts(self) -> list[str]:
        return self.inner.accounts()


class FaultyVenue:
    """The internal venue, failing the next call named in `fail` once, before doing anything."""

    def __init__(self, inner: InternalVenue) -> None:
        self.inner = inner
        self.fail: str | None = None

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.inner, name)

        def call(*args: Any) -> Any:
            if self.fail == name:
                self.fail = None
                raise InjectedFault(f"venue {name} failed")
            return method(*args)

        return call


def check(engine: OrderManager, host: LocalShard, gate: AllowanceGate) -> None:
    assert not [o for o in engine.orders.values() if o.status in PENDING]
    gate.flush()
    for account in ACCOUNTS:
        working = {o.order_id for o in engine.working(account=account)}
        assert set(host.state(account).working_orders()) == working, account


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_a_failing_port_leaves_no_order_pending_and_no_exposure_unexplained(data: st.DataObject) -> None:
    host = LocalShard([AccountState(a, LIMITS, REG) for a in ACCOUNTS])
    host.mark("AAPL", PX, 0)
    inner = AllowanceGate(host, REG, ["ACC1"], batch=data.draw(st.integers(1, 4)))
    gate = FaultyGate(inner)
    venue = FaultyVenue(InternalVenue(REG))
    engine = OrderManager(REG, gate, lambda symbol: venue)  # type: ignore[arg-type]
    ts = 1
    faults = 0  # how many the steps met (some draws arm a fault for a call the step does not make)
    for n in range(data.draw(st.integers(1, 40))):
        ts += 1_000
        op = data.draw(st.sampled_from(["submit"] * 4 + ["cancel", "replace", "mass"]))
        fault = data.draw(st.sampled_from([None, None, "gate before", "gate after", "venue"]))
        working = engine.working()
        if op == "submit":
            account = data.draw(st.sampled_from(ACCOUNTS))
            price = PX + data.draw(st.integers(-5, 5)) * 100
            cmd = SubmitOrder(account, f"c{n}", "AAPL", data.draw(st.sampled_from(Side)), OrdType.LIMIT,
                              data.draw(st.integers(1, 50)), price, tif=T.GTC, session=account)  # fmt: skip
            if fault in ("gate before", "gate after"):
                gate.fail = fault.split()[1]
            elif fault == "venue":
                venue.fail = "submit"
            events = engine.submit(cmd, ts)
            if fault is not None:
                assert [type(e) for e in events] == [OrderRejected]
                assert events[0].reason is RejectReason.INTERNAL_ERROR  # type: ignore[union-attr]
        elif op in ("cancel", "replace") and working:
            order = data.draw(st.sampled_from(working))
            if fault == "venue":
                venue.fail = op
            if op == "cancel":
                engine.cancel(CancelOrder(order.account, f"x{n}", order.cl_ord_id, "AAPL", order.side,
                                          session=order.account), ts)  # fmt: skip
            else:
                qty = order.cum_qty + data.draw(st.integers(1, 50))
                engine.replace(ReplaceOrder(order.account, f"r{n}", order.cl_ord_id, "AAPL", order.side, qty,
                                            order.price, session=order.account), ts)  # fmt: skip
        elif op == "mass":
            if fault == "venue":
                venue.fail = "withdraw"
            engine.mass_cancel(None, None, ts)
        gate.fail = venue.fail = None  # a fault armed for a call the step did not make is dropped
        faults += len(engine.take_faults())
        check(engine, host, inner)
    event(f"faults met: {min(faults, 3)}{'+' if faults >= 3 else ''}")
    engine.mass_cancel(None, None, ts + 1)
    assert engine.take_faults() == []
    check(engine, host, inner)
    assert engine.working() == []
    _, bid_qty, _, ask_qty = venue.inner.engine.l1(REG.by_symbol("AAPL").id)  # type: ignore[union-attr]
    assert bid_qty == 0 and ask_qty == 0  # nothing left at the venue that the engine does not know
