"""OCO never lets both legs fill: random price paths through a bracket's take-profit and stop-loss, on the real
OMS core (local_engine + native book), with the synthetic stop and with a venue-resident stop."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oms.adapters.algos import AlgoEngine, ManualClock, OcoBreach, ParentStatus, SubmitBracket
from oms.apps.serve import load_config, local_engine
from oms.core.model.enums import OrdType, Side, TimeInForce
from oms.core.model.messages import SubmitOrder
from oms.runtime.sequencer import Sequencer

S = 1_000_000_000
C = 10_000  # one dollar in AAPL price units
STEP = 1_000  # ten cents
LOADED = load_config()

# (what, price offset from 150.00 in ten-cent steps, qty): resting bids and asks, and IOC takers on either side
actions = st.lists(
    st.tuples(st.sampled_from(["bid", "ask", "buy", "sell"]), st.integers(-25, 25), st.integers(1, 120)),
    min_size=1,
    max_size=40,
)


def run_path(path: list[tuple[str, int, int]], synthetic: bool, side: Side) -> None:
    host = Sequencer(local_engine(LOADED))
    clock = ManualClock(S)
    algos = AlgoEngine(host, LOADED.instruments, clock)
    tp, sl = (151 * C, 149 * C) if side is Side.BUY else (149 * C, 151 * C)
    algos.submit(SubmitBracket("B", "ALGO1", "AAPL", side, 100, 150 * C, tp, sl, synthetic_stop=synthetic))
    contra = "ACC2" if side is Side.BUY else "ACC1"
    entry = SubmitOrder(contra, "e", "AAPL", side.opposite, OrdType.LIMIT, 100, 150 * C, tif=TimeInForce.IOC)
    host.run(lambda e: e.submit(entry, S))
    parent = algos.parent("B")
    assert parent is not None and parent.exit_target() == 100
    for n, (what, offset, qty) in enumerate(path):
        now = S + (n + 1) * S // 10
        clock.set(now)
        account = "ACC1" if what in ("bid", "buy") else "ACC2"
        order_side = Side.BUY if what in ("bid", "buy") else Side.SELL
        tif = TimeInForce.GTC if what in ("bid", "ask") else TimeInForce.IOC
        cmd = SubmitOrder(account, f"x{n}", "AAPL", order_side, OrdType.LIMIT, qty, 150 * C + offset * STEP,
                          tif=tif, session="MKT")  # fmt: skip
        host.run(lambda e, c=cmd, t=now: e.submit(c, t))
        algos.on_timer(now)

        tp_cum = sum(c.cum_qty for c in parent.leg("tp"))
        sl_cum = sum(c.cum_qty for c in parent.leg("sl"))
        assert not (tp_cum and sl_cum), f"both legs filled after step {n}: tp {tp_cum}, sl {sl_cum}"
        assert tp_cum + sl_cum <= 100  # never closes more than the entry bought
        assert not any(isinstance(e, OcoBreach) for e in algos.take_events())
        if synthetic and parent.leg("sl"):  # the stop went out only after tp ended with nothing filled
            (tp_child,) = parent.leg("tp")
            assert tp_child.done and tp_child.cum_qty == 0
        if parent.status is ParentStatus.FILLED:
            assert tp_cum + sl_cum == 100
    # the exits the OrderManager saw agree with the parent's books
    engine = host.engine
    exits = [o for oid, o in engine.orders.items() if engine.session_of[oid] == "ALGO" and o.side is side.opposite]
    assert sum(o.cum_qty for o in exits) == parent.view().exit_cum_qty


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=actions, side=st.sampled_from([Side.BUY, Side.SELL]))
def test_a_synthetic_stop_and_its_take_profit_never_both_fill(path, side):
    run_path(path, synthetic=True, side=side)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=actions, side=st.sampled_from([Side.BUY, Side.SELL]))
def test_a_venue_stop_and_its_take_profit_never_both_fill_on_the_internal_venue(path, side):
    run_path(path, synthetic=False, side=side)
