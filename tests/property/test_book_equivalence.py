"""Random command streams into both engines: identical events, and the book's invariants after every command."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from native import CMD_CANCEL, CMD_DTYPE, CMD_NEW, CMD_REPLACE, MatchingEngine, ReferenceEngine
from oms.core.model.enums import BookEventKind as K
from oms.core.model.enums import OrdType, Side, StpMode
from oms.core.model.enums import TimeInForce as T

SYM = 1
TICK = 5
LOT = 10
MID = 1000

# A raw step: (op, a, b, c, d, e, f, g) of small ints; `to_command` gives it meaning. Small ranges on purpose:
# few accounts, few price levels and reused ids make crosses, self-trades, stops and rejects frequent.
raw_step = st.tuples(
    st.sampled_from(["new"] * 12 + ["cancel"] * 2 + ["replace"] * 2 + ["eod"]),
    st.integers(1, 3),  # account
    st.sampled_from([Side.BUY] * 10 + [Side.SELL] * 10 + [3]),
    st.sampled_from([OrdType.LIMIT] * 12 + [OrdType.MARKET] * 2 + [OrdType.STOP, OrdType.STOP_LIMIT] * 2),
    st.sampled_from([T.GTC] * 8 + [T.DAY] * 4 + [T.IOC] * 2 + [T.FOK] * 2 + [T.GTD, 2]),
    st.sampled_from(list(range(1, 7)) * 5 + [0, -1]),  # qty in lots (0, -1 invalid)
    st.integers(-4, 4),  # price offset in ticks from MID
    st.integers(0, 19),  # misc: display lots / stop offset / id choice; 17-19 make the command invalid
)
streams = st.lists(raw_step, min_size=4, max_size=80)
stp_modes = st.sampled_from(list(StpMode))


def to_commands(steps: list[tuple]) -> list[tuple]:
    """Turn raw steps into engine commands: ('new', kwargs) / ('cancel', id) / ('replace', id, qty, px) / ('eod',)."""
    out: list[tuple] = []
    next_id = 1
    for op, account, side, ord_type, tif, lots, off, misc in steps:
        qty = lots * LOT + (3 if misc == 17 else 0)  # off the lot grid
        price = MID + off * TICK + (1 if misc == 18 else 0)  # off the tick grid
        if op == "new":
            oid = next_id if misc != 19 else max(next_id - 1, 0)  # duplicate (or zero) id
            next_id += 1
            stop = 0
            if ord_type in (OrdType.STOP, OrdType.STOP_LIMIT):
                stop = MID + (misc % 7 - 3) * TICK
            px = 0 if ord_type in (OrdType.MARKET, OrdType.STOP) else price
            display = misc * LOT if ord_type == OrdType.LIMIT and misc in (1, 2) else 0
            out.append(("new", (oid, account, SYM, side, ord_type, tif, qty, px, stop, display)))
        elif op == "cancel":
            out.append(("cancel", (max(next_id - 1 - misc % 8, 0),)))
        elif op == "replace":
            out.append(("replace", (max(next_id - 1 - misc % 8, 0), qty, price)))
        else:
            out.append(("eod", ()))
    return out


def apply(engine, cmd: tuple) -> list:
    op, args = cmd
    if op == "new":
        return engine.submit(*args)
    if op == "cancel":
        return engine.cancel(*args)
    if op == "replace":
        return engine.replace(*args)
    return engine.end_of_day()


def engines(stp: StpMode) -> tuple[MatchingEngine, ReferenceEngine]:
    native, ref = MatchingEngine(stp), ReferenceEngine(stp)
    for e in (native, ref):
        e.add_symbol(SYM, tick=TICK, lot=LOT)
    return native, ref


class Ledger:
    """Follows the events and checks what they promise: conservation, FIFO, an uncrossed book."""

    def __init__(self) -> None:
        self.qty: dict[int, int] = {}
        self.filled: defaultdict[int, int] = defaultdict(int)
        self.removed: defaultdict[int, int] = defaultdict(int)
        self.plain: set[int] = set()  # never replaced, not iceberg, never triggered: must keep arrival order
        self.traded = {int(Side.BUY): 0, int(Side.SELL): 0}

    def feed(self, cmd: tuple, events: list) -> None:
        fills = [e for e in events if e[0] == K.FILL]
        assert len(fills) % 2 == 0
        for taker, maker in zip(fills[::2], fills[1::2], strict=True):
            assert taker[10] == 1 and maker[10] == 0
            assert (taker[2], taker[6], taker[5]) == (maker[3], maker[6], maker[5])
            assert taker[6] > 0
        for e in events:
            kind, oid = e[0], e[2]
            if kind == K.ACCEPTED:  # an id is unique among working orders; a finished order's id may return
                self.qty[oid] = e[6]
                self.filled[oid] = self.removed[oid] = 0
                if cmd[0] == "new" and cmd[1][9] == 0 and cmd[1][4] == OrdType.LIMIT:
                    self.plain.add(oid)
            elif kind == K.REPLACED:
                self.qty[oid] = e[6]
                self.plain.discard(oid)
            elif kind == K.TRIGGERED:
                self.plain.discard(oid)
            elif kind == K.FILL:
                self.filled[oid] += e[6]
                self.traded[e[4]] += e[6]
            elif kind in (K.CANCELED, K.EXPIRED):
                self.removed[oid] += e[6]
        assert len({e[8] for e in events}) == len(events)
        assert self.traded[int(Side.BUY)] == self.traded[int(Side.SELL)]

    def check_book(self, engine) -> None:
        snap = engine.snapshot(SYM)
        working = {row[2]: row for row in snap}
        assert len(working) == len(snap) == engine.open_orders()
        for oid, qty in self.qty.items():
            leaves = working[oid][3] if oid in working else 0
            assert qty == self.filled[oid] + self.removed[oid] + leaves, f"qty not conserved for order {oid}"
        for _, _, _, leaves, visible in snap:
            assert leaves > 0
            assert 0 <= visible <= leaves
        resting = [r for r in snap if r[4] > 0]  # waiting stops show nothing
        bids, asks = engine.l2(SYM, 100)
        assert bids[:, 2].sum() + asks[:, 2].sum() == len(resting), "an order rests with nothing visible"
        levels: defaultdict[tuple[int, int], list[int]] = defaultdict(list)
        for side, price, oid, _, _ in resting:
            levels[(side, price)].append(oid)
        for ids in levels.values():
            plain = [i for i in ids if i in self.plain]
            assert plain == sorted(plain), "FIFO broken within a level"
        if bids[0, 1] and asks[0, 1]:
            assert bids[0, 0] < asks[0, 0], "book left crossed"


@settings(max_examples=2500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=streams, stp=stp_modes)
def test_native_and_reference_emit_identical_events_and_keep_invariants(steps: list[tuple], stp: StpMode) -> None:
    native, ref = engines(stp)
    ledger = Ledger()
    for cmd in to_commands(steps):
        got = apply(native, cmd)
        want = apply(ref, cmd)
        assert got == want, f"{cmd}"
        ledger.feed(cmd, got)
        ledger.check_book(native)
        assert native.snapshot(SYM) == ref.snapshot(SYM)
        assert native.l1(SYM) == ref.l1(SYM)
    assert [x.tolist() for x in native.l2(SYM, 20)] == [x.tolist() for x in ref.l2(SYM, 20)]
    assert native.last_price(SYM) == ref.last_price(SYM)


@settings(max_examples=500, deadline=None)
@given(steps=streams, stp=stp_modes)
def test_batch_api_equals_single_calls_on_the_reference(steps: list[tuple], stp: StpMode) -> None:
    native, ref = engines(stp)
    rows, expected = [], []
    for cmd in to_commands(steps):
        op, args = cmd
        if op == "new":
            rows.append((CMD_NEW, args[0], args[1], SYM, *args[3:]))
        elif op == "cancel":
            rows.append((CMD_CANCEL, args[0], 0, 0, 0, 0, 0, 0, 0, 0, 0))
        elif op == "replace":
            rows.append((CMD_REPLACE, args[0], 0, 0, 0, 0, 0, args[1], args[2], 0, 0))
        else:
            continue
        expected += apply(ref, cmd)

    out = native.process(np.array(rows, dtype=CMD_DTYPE))

    assert out.tolist() == expected
    assert native.snapshot(SYM) == ref.snapshot(SYM)
