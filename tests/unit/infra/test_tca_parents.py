"""Parent-algo TCA (`oms report tca-parents`) against an independent computation from the raw records.

Algo parents of every kind (TWAP, VWAP, POV, iceberg, bracket) with children that fill in part on several venues
(fees and rebates), IOC remainders, a rejected child, children canceled by a parent cancel, an unfilled remainder,
a parent journaled without a time (it takes its journal entry's), one before any market data, one still working and
one whose cancel is on its way, next to an order of the same account that belongs to no parent. The records go into
an embedded ClickHouse through the sink's row builders: the algo engine's journal records into `parents`, the
children's account journal events into `orders` and `executions`, a seeded tape into `market_trades` and `quotes`.

The expected figures are computed here in Python and numpy from those records, following docs/compliance.md, never
from the SQL; a parent's status is the algo engine's own state machine (`oms.core.algos.parents`) replayed over the
parent's records.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from oms.apps.cli import main
from oms.apps.report import DEFAULT_CONFIG
from oms.core.accounts import AccountEvent
from oms.core.algos.messages import (
    AlgoRecord,
    CancelParent,
    CancelSent,
    ChildDone,
    ChildFilled,
    ChildSent,
    ParentClosing,
    ParentStatus,
    SubmitBracket,
    SubmitIceberg,
    SubmitParent,
    SubmitPov,
    SubmitTwap,
    SubmitVwap,
    VolumeObserved,
)
from oms.core.algos.parents import make_parent
from oms.core.model.enums import CancelReason, OrdType, RejectReason, Side, TimeInForce
from oms.core.model.instruments import InstrumentRegistry
from oms.core.model.messages import (
    OrderAccepted,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    TradePrinted,
)
from oms.infra.clickhouse.clickhouse import Client, apply_schema, connect
from oms.infra.clickhouse.reports import Report, ReportEmpty, render, tca_orders, tca_parents, tca_parents_summary
from oms.infra.clickhouse.rows import (
    PARENT_RECORDS,
    fill_columns,
    order_columns,
    parent_columns,
    quote_columns,
    trade_columns,
)
from oms.infra.clickhouse.settings import AnalyticsSettings, load_analytics_settings
from oms.infra.clickhouse.tape import Quote
from tests.unit.infra.test_tca import CONFIGS, MID0, SCALE, SEC, SETTINGS, T0, TICK, Market, Series, px, qty, simulate

INSTRUMENTS = InstrumentRegistry.load(CONFIGS / "instruments.toml")
MS = 1_000_000
DB = "parents"
SHORTFALL = ("is_delay_bps", "is_realized_bps", "is_opportunity_bps", "is_fees_bps", "is_total_bps")


# -- the records: what the algo engine and the accounts would have journaled --


@dataclass
class Flow:
    """The algo journal (records with the time their entry was written) and the accounts' journal events."""

    algo: list[tuple[int, AlgoRecord]] = field(default_factory=list)
    events: list[AccountEvent] = field(default_factory=list)
    next_order: int = 5_000
    next_exec: int = 80_000

    def parent(self, cmd: SubmitParent, at_ns: int) -> Run:
        """A parent accepted at `at_ns` (its command may carry no time: `ts_ns` 0)."""
        self.algo.append((at_ns, cmd))
        return Run(self, cmd)

    def entries(self) -> tuple[list[AlgoRecord], list[bytes]]:
        """The algo records in journal order and their entry ids `<ms>-<seq>` (ms: when each was written)."""
        ordered = sorted(enumerate(self.algo), key=lambda x: (x[1][0], x[0]))
        return [rec for _, (_, rec) in ordered], [f"{t // MS}-{n}".encode() for n, (_, (t, _)) in enumerate(ordered)]


@dataclass
class Run:
    flow: Flow
    cmd: SubmitParent
    seq: int = 0

    def child(
        self,
        at_ns: int,
        child_qty: int,
        fills: Sequence[tuple[int, int, int, str]] = (),  # (after ns, qty, price units, venue)
        end: str = "ioc",  # ioc | canceled | expired | filled | working | rejected | lost
        end_ns: int | None = None,
        side: Side | None = None,
        role: str = "slice",
        ord_type: OrdType = OrdType.MARKET,
        tif: TimeInForce = TimeInForce.IOC,
        price: int | None = None,
        entry_ns: int | None = None,
    ) -> None:
        """One child sent at `at_ns`: accepted (or rejected), its fills, and how it ends. `entry_ns`: when its
        ChildSent's journal entry was written by Redis's clock, if not at `at_ns` by the engine's."""
        f, c, pid = self.flow, self.cmd, self.cmd.parent_id
        side = c.side if side is None else side
        self.seq += 1
        cl = f"{pid}.{self.seq}"
        sent = ChildSent(pid, cl, role, side, ord_type, tif, child_qty, price, None, self.seq, at_ns)
        f.algo.append((at_ns if entry_ns is None else entry_ns, sent))
        if end == "rejected":
            f.events.append(OrderRejected(0, cl, c.account, c.symbol, RejectReason.CREDIT_LIMIT, "limit", at_ns, side,
                                          ord_type, tif, child_qty, price, None, "ALGO"))  # fmt: skip
            f.algo.append((at_ns, ChildDone(pid, cl, "rejected", int(RejectReason.CREDIT_LIMIT), "limit", at_ns)))
            return
        f.next_order += 1
        oid = f.next_order
        f.events.append(OrderAccepted(oid, cl, c.account, c.symbol, side, ord_type, tif, child_qty, price, at_ns,
                                      session="ALGO", parent_id=pid, venue="XNAS"))  # fmt: skip
        cum = notional = 0
        for after, q, p, venue in fills:
            f.next_exec += 1
            cum, notional, t = cum + q, notional + q * p, at_ns + after
            f.events.append(OrderFilled(oid, cl, c.account, c.symbol, f.next_exec, side, q, p, child_qty - cum, cum,
                                        notional, True, t, None, venue))  # fmt: skip
            f.algo.append((t, ChildFilled(pid, cl, q, q * p, f.next_exec, t)))
        assert cum <= child_qty and (end == "filled") == (cum == child_qty)
        t = at_ns if end_ns is None else end_ns
        match end:
            case "ioc":
                f.events.append(OrderCanceled(oid, cl, c.account, c.symbol, CancelReason.IOC, child_qty - cum, t))
                f.algo.append((t, ChildDone(pid, cl, "canceled", int(CancelReason.IOC), "IOC", t)))
            case "canceled":
                self.seq += 1
                f.algo.append((t, CancelSent(pid, cl, f"{pid}.{self.seq}", t)))
                f.events.append(OrderCanceled(oid, f"{pid}.{self.seq}", c.account, c.symbol, CancelReason.USER,
                                              child_qty - cum, t, cl))  # fmt: skip
                f.algo.append((t, ChildDone(pid, cl, "canceled", int(CancelReason.USER), "USER", t)))
            case "expired":
                f.events.append(OrderExpired(oid, cl, c.account, c.symbol, child_qty - cum, t))
                f.algo.append((t, ChildDone(pid, cl, "expired", 0, "", t)))
            case "lost":  # not found after a restart: only the parent's journal says it ended
                f.algo.append((t, ChildDone(pid, cl, "lost", 0, "not found after a restart", t)))

    def cancel(self, at_ns: int) -> None:
        self.flow.algo.append((at_ns, CancelParent(self.cmd.parent_id, at_ns)))

    def close(self, at_ns: int, status: ParentStatus, text: str) -> None:
        self.flow.algo.append((at_ns, ParentClosing(self.cmd.parent_id, status, text, at_ns)))

    def observe(self, at_ns: int, volume: int) -> None:
        self.flow.algo.append((at_ns, VolumeObserved(self.cmd.parent_id, volume, at_ns)))


def mid(symbol: str, at_ns: int, market: Market) -> int:
    """A price near the market at `at_ns`, in price units (the fills' prices are built around it)."""
    s = Series(market, symbol)
    value = s.price(at_ns, strict=False) or MID0[symbol] / SCALE[symbol].price_div
    return round(value * SCALE[symbol].price_div / TICK[symbol]) * TICK[symbol]


def world_flow(market: Market) -> Flow:
    """The parents of the seeded world (times in s after T0; the market has data from 0 s to 240 s, EURUSD from
    30 s)."""
    f = Flow()
    at = lambda s: T0 + round(s * SEC)  # noqa: E731
    aapl = lambda s, ticks=0: mid("AAPL", at(s), market) + ticks * TICK["AAPL"]  # noqa: E731
    es = lambda s, ticks=0: mid("ESZ6", at(s), market) + ticks * TICK["ESZ6"]  # noqa: E731

    # TWAP buy: IOC slices filled in part on two venues, the last one short; the schedule expires with 120 unfilled
    twap = f.parent(SubmitTwap("TW1", "ACC1", "AAPL", Side.BUY, 600, at(20), at(140), 4, None, 0, 0, at(20)), at(20))
    twap.child(at(20), 150, [(2 * MS, 100, aapl(20, 1), "XNAS"), (3 * MS, 50, aapl(20, 2), "ARCA")], "filled")
    twap.child(at(50), 150, [(1 * MS, 90, aapl(50, 1), "ARCA")], "ioc", at(50) + 2 * MS)
    twap.child(at(80), 210, [(4 * MS, 110, aapl(80, -1), "XNAS"), (5 * MS, 60, aapl(80, 1), "BATS")], "ioc",
               at(80) + 6 * MS)  # fmt: skip
    twap.child(at(110), 70, [(2 * MS, 70, aapl(110, 2), "XNAS")], "filled")
    twap.close(at(140), ParentStatus.EXPIRED, "schedule ended with 120 unfilled")

    # VWAP sell journaled without a time (the REST API leaves it 0): its arrival is its journal entry's, to the ms
    vwap = f.parent(SubmitVwap("VW1", "ACC2", "ESZ6", Side.SELL, 40, at(30), at(130), [1, 2, 1]), at(30.0004))
    vwap.child(at(30.5), 10, end="rejected")
    vwap.child(at(31), 10, [(1 * MS, 6, es(31, -1), "XNAS"), (2 * MS, 4, es(31), "ARCA")], "filled",
               ord_type=OrdType.LIMIT, price=es(31, -2))  # fmt: skip
    vwap.child(at(63), 20, [(3 * MS, 12, es(63, -1), "BATS")], "ioc", at(63) + 4 * MS, ord_type=OrdType.LIMIT,
               price=es(63, -2))  # fmt: skip
    vwap.child(at(85), 8, end="lost", end_ns=at(89), ord_type=OrdType.LIMIT, price=es(85, -2))
    vwap.cancel(at(90))

    # POV sell filled in full; the volume it followed is the engine's working record, no row
    pov = f.parent(SubmitPov("PV1", "ACC2", "AAPL", Side.SELL, 200, 1000, 50, 100, at(40), at(200)), at(40))
    pov.observe(at(45), 900)
    pov.child(at(45), 100, [(1 * MS, 100, aapl(45, -1), "ARCA")], "filled")
    pov.observe(at(75), 1200)
    pov.child(at(75), 100, [(2 * MS, 30, aapl(75, -2), "XNAS"), (3 * MS, 70, aapl(75, -1), "XNAS")], "filled")

    # iceberg buy: the first slice fills in two prints, the second is canceled by the parent's cancel: 160 unfilled
    ice = f.parent(SubmitIceberg("IC1", "ACC1", "AAPL", Side.BUY, 300, 100, aapl(60), at(60)), at(60))
    ice.child(at(60), 100, [(SEC, 40, aapl(60), "XNAS"), (3 * SEC, 60, aapl(60), "ARCA")], "filled",
              ord_type=OrdType.LIMIT, tif=TimeInForce.GTC, price=aapl(60))  # fmt: skip
    ice.child(at(63), 100, [(5 * SEC, 40, aapl(60), "BATS")], "canceled", at(150), ord_type=OrdType.LIMIT,
              tif=TimeInForce.GTC, price=aapl(60))  # fmt: skip
    ice.cancel(at(149.9))  # the engine then cancels the working child

    # bracket buy: the entry fills (with rebates), then the take-profit (a sell) closes it: FILLED; the exit is not
    # part of the cost
    brk = f.parent(SubmitBracket("BR1", "ACC1", "ESZ6", Side.BUY, 10, es(70), es(70, 8), es(70, -8)), at(70))
    brk.child(at(70), 10, [(2 * SEC, 4, es(70), "ARCA"), (4 * SEC, 6, es(70), "ARCA")], "filled", role="entry",
              ord_type=OrdType.LIMIT, tif=TimeInForce.GTC, price=es(70))  # fmt: skip
    brk.child(at(75), 10, [(90 * SEC, 10, es(70, 8), "XNAS")], "filled", side=Side.SELL, role="tp",
              ord_type=OrdType.LIMIT, tif=TimeInForce.GTC, price=es(70, 8))  # fmt: skip

    # TWAP sell still working: one slice done in part, nothing closing
    work = f.parent(SubmitTwap("TW2", "ACC1", "ESZ6", Side.SELL, 30, at(150), at(400), 3, es(150, -4)), at(150))
    work.child(at(150), 10, [(MS, 7, es(150, -1), "XNAS")], "ioc", at(150) + 2 * MS, ord_type=OrdType.LIMIT,
               price=es(150, -4))  # fmt: skip

    # iceberg sell whose cancel is on its way: the child still works (PENDING_CANCEL)
    pend = f.parent(SubmitIceberg("IC2", "ACC2", "AAPL", Side.SELL, 50, 50, aapl(170, 3), at(170)), at(170))
    pend.child(at(170), 50, [(2 * SEC, 20, aapl(170, 3), "XNAS")], "working", ord_type=OrdType.LIMIT,
               tif=TimeInForce.GTC, price=aapl(170, 3))  # fmt: skip
    pend.cancel(at(180))

    # TWAP buy of EURUSD before its first market data: no arrival price, no shortfall
    early = f.parent(SubmitTwap("TW3", "ACC2", "EURUSD", Side.BUY, 5000, at(10), at(60), 2, None, 0, 0, at(10)),
                     at(10))  # fmt: skip
    early.child(at(35), 5000, [(MS, 3000, mid("EURUSD", at(35), market), "XNAS")], "ioc", at(35) + 2 * MS)

    # POV buy of MSFT (prints only: arrival from the last trade) journaled without a time, its entry stamped by a
    # Redis clock 1.2 ms ahead of the engine's: its first child, sent when it was accepted, marks its arrival
    late = f.parent(SubmitPov("PV2", "ACC1", "MSFT", Side.BUY, 60, 2000, 10, 60), at(120) + 1_800_000)
    msft = mid("MSFT", at(120), market)
    late.child(at(120) + 600_000, 30, [(1_500_000, 30, msft, "XNAS")], "filled", entry_ns=at(120) + 1_900_000)
    late.child(at(125), 30, [(MS, 20, msft + 100, "ARCA")], "ioc", at(125) + 2 * MS)

    # an order of the same account and symbol that belongs to no parent
    f.events.append(OrderAccepted(9_999, "own1", "ACC1", "AAPL", Side.BUY, OrdType.LIMIT, TimeInForce.DAY, 500,
                                  aapl(65), at(65)))  # fmt: skip
    f.events.append(OrderFilled(9_999, "own1", "ACC1", "AAPL", 99_999, Side.BUY, 500, aapl(65), 0, 500,
                                500 * aapl(65), True, at(66), None, "XNAS"))  # fmt: skip
    return f


def load(ch: Client, flow: Flow, market: Market | None = None) -> None:
    """Insert the flow (and the market) through the sink's row builders."""
    records, ids = flow.entries()
    mapped = [(r, i) for r, i in zip(records, ids, strict=True) if isinstance(r, PARENT_RECORDS)]
    orders = [e for e in flow.events if not isinstance(e, OrderFilled)]
    fills = [e for e in flow.events if isinstance(e, OrderFilled)]
    base = ch.query("SELECT count() FROM orders").result_rows[0][0] + 1  # fresh entry ids in every load
    tables = [
        ("parents", parent_columns([r for r, _ in mapped], [i for _, i in mapped], SCALE)),
        ("orders", order_columns(orders, [f"{base}-{n}".encode() for n in range(len(orders))], SCALE)),
        ("executions", fill_columns(fills, [f"{base}-{n}".encode() for n in range(len(fills))], SCALE)),
    ]
    if market is not None:
        tables.append(("market_trades", trade_columns(market.trades, _ids(len(market.trades)), SCALE)))
        tables.append(("quotes", quote_columns(market.quotes, _ids(len(market.quotes)), SCALE)))
    for table, (names, cols) in tables:
        if cols[0]:
            ch.insert(table, cols, column_names=list(names), column_oriented=True)


def _ids(n: int) -> list[bytes]:
    return [f"1767260000000-{i}".encode() for i in range(n)]


# -- the independent computation --


def expected(flow: Flow, market: Market, settings: AnalyticsSettings = SETTINGS) -> dict[str, dict[str, Any]]:
    """Every figure of tca-parents per parent, from the records (docs/compliance.md, `oms report tca-parents`)."""
    records, ids = flow.entries()
    entry_ns = {id(r): int(i.split(b"-")[0]) * MS for r, i in zip(records, ids, strict=True)}
    out = {}
    for cmd in (r for r in records if isinstance(r, SubmitParent)):
        pid, symbol, s = cmd.parent_id, cmd.symbol, Series(market, cmd.symbol)
        sgn = 1 if cmd.side is Side.BUY else -1
        own = [r for r in records if not isinstance(r, SubmitParent) and r.parent_id == pid]
        state = make_parent(cmd, INSTRUMENTS.by_symbol(symbol))  # type: ignore[arg-type]
        for rec in own:
            state.apply(rec)  # type: ignore[arg-type]
        child_side = {r.cl_ord_id: r.side for r in own if isinstance(r, ChildSent)}
        kids = {e.order_id for e in flow.events if isinstance(e, OrderAccepted) and e.parent_id == pid
                and e.side is cmd.side}  # fmt: skip
        events = [e for e in flow.events if getattr(e, "order_id", 0) in kids]
        fills = [e for e in events if isinstance(e, OrderFilled)]
        stamped = [r.ts_ns for r in own if isinstance(r, ChildSent | ChildDone | CancelParent | ParentClosing)
                   and r.ts_ns]  # fmt: skip
        arrival = cmd.ts_ns or min([entry_ns[id(cmd)], *stamped])
        journal_times = [
            r.ts_ns for r in own
            if isinstance(r, CancelParent | ParentClosing)
            or (isinstance(r, ChildSent | ChildDone) and child_side[r.cl_ord_id] is cmd.side)
        ]  # fmt: skip
        end = max([arrival, *(e.ts_ns for e in events), *journal_times])
        x, filled = cmd.qty, sum(e.qty for e in fills)  # integer units: exact
        notional = sum(qty(symbol, e.qty) * px(symbol, e.price) for e in fills)
        fees = sum(qty(symbol, e.qty) * px(symbol, e.price) * settings.fees_bps.get(e.venue, settings.default_fee_bps)
                   for e in fills) / 1e4  # fmt: skip
        xq, sq = qty(symbol, x), qty(symbol, filled)
        avg = notional / sq if filled else None
        p_d, source = s.arrival(arrival, round(settings.arrival_max_age_s * SEC))
        p_0 = s.price(min(e.ts_ns for e in fills), strict=True) if fills else None
        p_n = s.price(end, strict=False)
        vwap, volume = s.vwap_volume(arrival, end)
        twap = s.twap(arrival, end)

        def cost(benchmark: float | None, avg: float | None = avg, sgn: int = sgn) -> float | None:
            return None if avg is None or benchmark is None else sgn * (avg - benchmark) / benchmark * 1e4

        row: dict[str, Any] = {
            "kind": type(cmd).__name__.removeprefix("Submit").upper(), "account": cmd.account, "symbol": symbol,
            "side": cmd.side.name, "status": state.status.name, "parent_qty": xq, "filled_qty": sq,
            "fill_rate": sq / xq, "n_children": len(kids), "n_fills": len(fills), "avg_px": avg, "arrival_px": p_d,
            "arrival_source": source, "vwap": vwap, "twap": twap, "slippage_arrival_bps": cost(p_d),
            "slippage_vwap_bps": cost(vwap), "slippage_twap_bps": cost(twap), "start_px": p_0, "end_px": p_n,
            "fees": fees, "participation": sq / volume if volume else None, "arrival_ns": arrival, "end_ns": end,
        }  # fmt: skip
        if p_d is not None:
            paper = xq * p_d
            row["paper_notional"] = paper
            row["is_delay_bps"] = sgn * (p_0 - p_d) * sq / paper * 1e4 if fills else 0.0
            row["is_realized_bps"] = sgn * (notional - p_0 * sq) / paper * 1e4 if fills else 0.0
            row["is_opportunity_bps"] = sgn * (p_n - p_d) * qty(symbol, x - filled) / paper * 1e4
            row["is_fees_bps"] = fees / paper * 1e4
            row["is_total_bps"] = sum(row[k] for k in SHORTFALL[:-1])
        else:
            row.update(dict.fromkeys(("paper_notional", *SHORTFALL)))
        out[pid] = row
    return out


def _same(got: object, want: object) -> bool:
    if want is None:
        return got is None or (isinstance(got, float) and math.isnan(got))
    if isinstance(want, str):
        return got == want
    return got == pytest.approx(want, rel=1e-9, abs=1e-9)


# -- fixtures --


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"chdb://{tmp_path_factory.mktemp('tca-parents')}/store"


@pytest.fixture(scope="module")
def ch(store: str) -> Iterator[Client]:
    client = connect(store, DB)
    apply_schema(client)
    yield client
    client.close()


@pytest.fixture(scope="module")
def world(ch: Client) -> tuple[Market, Flow, Report]:
    market, _ = simulate()
    flow = world_flow(market)
    load(ch, flow, market)
    return market, flow, tca_parents(ch, end_ns=T0 + 1000 * SEC, settings=SETTINGS)


# -- tests --


def test_every_accepted_parent_has_one_row_in_order_of_arrival(world: tuple[Market, Flow, Report]) -> None:
    market, flow, report = world
    want = expected(flow, market)
    assert [r["parent_id"] for r in report.records()] == sorted(want, key=lambda p: (want[p]["arrival_ns"], p))


def test_every_figure_equals_the_independent_computation(world: tuple[Market, Flow, Report]) -> None:
    market, flow, report = world
    want = expected(flow, market)
    mismatches = [
        (r["parent_id"], column, r[column], value)
        for r in report.records()
        for column, value in want[r["parent_id"]].items()
        if not _same(r[column], value)
    ]
    assert mismatches == []


def test_the_data_covers_the_cases_that_matter(world: tuple[Market, Flow, Report]) -> None:
    _, flow, report = world
    rows = {r["parent_id"]: r for r in report.records()}
    assert {r["kind"] for r in rows.values()} == {"TWAP", "VWAP", "POV", "ICEBERG", "BRACKET"}
    assert {r["status"] for r in rows.values()} == {
        "EXPIRED", "CANCELED", "FILLED", "PARTIALLY_FILLED", "PENDING_CANCEL"
    }  # fmt: skip
    assert {r["side"] for r in rows.values()} == {"BUY", "SELL"}
    assert rows["TW1"]["is_opportunity_bps"] not in (None, 0) and rows["IC1"]["is_opportunity_bps"] not in (None, 0)
    assert rows["PV1"]["fill_rate"] == 1 and rows["PV1"]["is_opportunity_bps"] == 0
    assert {r["arrival_source"] for r in rows.values()} == {"mid", "last_trade", "none"}
    assert rows["BR1"]["is_fees_bps"] < 0  # rebates only
    assert max(r["is_fees_bps"] for r in rows.values() if r["is_fees_bps"] is not None) > 0
    venues = {e.venue for e in flow.events if isinstance(e, OrderFilled) and e.cl_ord_id.startswith("TW1.")}
    assert len(venues) >= 2
    records, _ = flow.entries()
    assert next(r for r in records if getattr(r, "parent_id", "") == "VW1").ts_ns == 0  # the entry's time is used
    assert rows["VW1"]["arrival_ns"] == (T0 + round(30.0004 * SEC)) // MS * MS
    assert rows["PV2"]["arrival_ns"] == T0 + 120 * SEC + 600_000  # its entry's ms (120.001 s) came after its child


def test_a_brackets_exit_is_not_part_of_its_cost(world: tuple[Market, Flow, Report]) -> None:
    """The take-profit sold 10 at a gain; the parent's figures are its entry's buys alone, its life ends with the
    entry (the exit was sent a second later and filled 90 s after that)."""
    _, flow, report = world
    row = next(r for r in report.records() if r["parent_id"] == "BR1")
    entry = [e for e in flow.events if isinstance(e, OrderFilled) and e.cl_ord_id == "BR1.1"]
    assert (row["filled_qty"], row["n_children"], row["n_fills"]) == (10.0, 1, 2)
    assert row["avg_px"] == pytest.approx(sum(e.qty * e.price for e in entry) / 10 / SCALE["ESZ6"].price_div)
    assert row["end_ns"] == max(e.ts_ns for e in entry) and row["status"] == "FILLED"


def test_an_order_outside_any_parent_is_not_counted(world: tuple[Market, Flow, Report]) -> None:
    _, _, report = world
    twap, ice = (next(r for r in report.records() if r["parent_id"] == p) for p in ("TW1", "IC1"))
    assert (twap["filled_qty"], ice["filled_qty"]) == (480.0, 140.0)  # the own order's 500 are in neither


def test_shortfall_components_add_up_to_the_total(world: tuple[Market, Flow, Report]) -> None:
    _, _, report = world
    for r in report.records():
        if r["is_total_bps"] is not None:
            assert r["is_total_bps"] == pytest.approx(sum(r[k] for k in SHORTFALL[:-1]), abs=1e-9)


@pytest.mark.parametrize("by", ["kind", "account"])
def test_the_roll_up_per_algo_is_computed_from_totals(world: tuple[Market, Flow, Report], by: str) -> None:
    """Per kind (and per kind and account): slippage as the whole executed notional against the benchmark value of
    the same quantities, Perold's shortfall as total shortfall over total paper value (unfilled parents and
    remainders included), from the independent per-parent figures."""
    market, flow, report = world
    want = expected(flow, market)
    keys = ("kind",) if by == "kind" else ("kind", "account")
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in want.values():
        groups.setdefault(tuple(row[k] for k in keys), []).append(row)

    rows = {tuple(r[k] for k in keys): r for r in tca_parents_summary(report, by).records()}  # type: ignore[arg-type]

    assert set(rows) == set(groups)
    for key, parents in groups.items():
        filled = [p for p in parents if p["filled_qty"]]
        priced = [p for p in filled if p["arrival_px"] is not None]
        sgn = {id(p): 1 if p["side"] == "BUY" else -1 for p in parents}
        value = sum(p["filled_qty"] * p["arrival_px"] for p in priced)
        paid = sum(sgn[id(p)] * p["filled_qty"] * (p["avg_px"] - p["arrival_px"]) for p in priced)
        vw_value = sum(p["filled_qty"] * p["vwap"] for p in filled if p["vwap"] is not None)
        vw_paid = sum(sgn[id(p)] * p["filled_qty"] * (p["avg_px"] - p["vwap"]) for p in filled if p["vwap"] is not None)
        papers = [p for p in parents if p["paper_notional"]]
        paper = sum(p["paper_notional"] for p in papers)
        money = {k: sum(p[k] * p["paper_notional"] / 1e4 for p in papers) for k in SHORTFALL}
        row = rows[key]
        assert (row["parents"], row["filled_parents"]) == (len(parents), len(filled))
        assert _same(row["filled_notional"], sum(p["filled_qty"] * p["avg_px"] for p in filled))
        assert _same(row["fees"], sum(p["fees"] for p in parents))
        assert _same(row["slippage_arrival_bps"], paid / value * 1e4 if value else None)
        assert _same(row["slippage_vwap_bps"], vw_paid / vw_value * 1e4 if vw_value else None)
        for k in SHORTFALL:
            assert _same(row[k], money[k] / paper * 1e4 if paper else None), (key, k)
    assert len(rows) < len(want)  # some group holds more than one parent: its figures are not one parent's


def test_a_parent_costs_its_fills_against_its_own_arrival_not_its_childrens(ch: Client) -> None:
    """Why: a TWAP buys 300 in three children while the market rises 100.00 -> 100.05 -> 100.10. Each child pays one
    cent above the mid at its own arrival (about +1 bp each, what a per-order summary of the children shows), but the
    parent, decided at 100.00, paid 100.06 on average: +6 bps against its arrival, all of it realized."""
    t = T0 + 10_000 * SEC  # after everything else in the store
    quotes = [Quote("XNAS", "MSFT", m - 100, 500, m + 100, 500, t + k * 60 * SEC - SEC // 2)
              for k, m in enumerate((1_000_000, 1_000_500, 1_001_000))]  # fmt: skip
    market = Market(quotes=quotes, trades=[TradePrinted("XNAS", "MSFT", 990_001, 1_000_000, 5, Side.BUY, t - SEC)])
    flow = Flow(next_order=7_000, next_exec=90_000)  # order and exec ids are unique across the OMS
    run = flow.parent(SubmitTwap("WHY1", "WHY", "MSFT", Side.BUY, 300, t, t + 180 * SEC, 3, None, 0, 0, t), t)
    for k, q in enumerate(quotes):
        run.child(t + k * 60 * SEC, 100, [(MS, 100, (q.bid + q.ask) // 2 + 100, "XNAS")], "filled")
    load(ch, flow, market)
    settings = AnalyticsSettings(dsn="unused")  # no fees: the figures are the prices alone

    (parent,) = tca_parents(ch, account="WHY", settings=settings).records()
    children = tca_orders(ch, account="WHY", settings=settings).records()

    want = expected(flow, market, settings)["WHY1"]
    assert parent["arrival_px"] == pytest.approx(100.0) and parent["avg_px"] == pytest.approx(100.06)
    assert parent["slippage_arrival_bps"] == pytest.approx(want["slippage_arrival_bps"]) == pytest.approx(6.0)
    assert parent["is_total_bps"] == pytest.approx(6.0) and parent["is_opportunity_bps"] == 0
    child_costs = [c["slippage_arrival_bps"] for c in children]
    assert len(child_costs) == 3 and all(c == pytest.approx(1.0, abs=0.002) for c in child_costs)
    assert abs(parent["slippage_arrival_bps"] - sum(child_costs) / 3) > 4.9


def test_a_filter_by_kind_and_an_unknown_parent(ch: Client, world: tuple[Market, Flow, Report]) -> None:
    assert [r["parent_id"] for r in tca_parents(ch, kind="iceberg", settings=SETTINGS).records()] == ["IC1", "IC2"]
    with pytest.raises(ReportEmpty, match=r"^parent NOPE not found: no accepted parent with that id at any time"):
        tca_parents(ch, parent_id="NOPE")
    with pytest.raises(ValueError, match="unknown parent kind 'algo'"):
        tca_parents(ch, kind="algo")


def _cli(store: str, *args: str) -> list[str]:
    return ["report", "tca-parents", *args, "--dsn", store, "--database", DB]


def test_oms_report_tca_parents_prints_parents_and_roll_ups(
    ch: Client, world: tuple[Market, Flow, Report], store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    window = ["--to", str(T0 + 1000 * SEC)]

    assert main(_cli(store, "--format", "json", *window)) == 0
    as_json = json.loads(capsys.readouterr().out)
    assert main(_cli(store, "--format", "csv", "--by", "account", *window)) == 0
    as_csv = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert main(_cli(store, "--parent-id", "TW1")) == 0
    lines = dict(line.split(None, 1) for line in capsys.readouterr().out.splitlines())

    report = tca_parents(ch, end_ns=T0 + 1000 * SEC, settings=load_analytics_settings(DEFAULT_CONFIG))  # the CLI's
    assert as_json == json.loads(render(report, "json"))
    assert [(r["kind"], r["account"]) for r in as_csv] == [
        (r["kind"], r["account"]) for r in tca_parents_summary(report, "account").records()
    ]
    assert lines["parent_id"].strip() == "TW1" and lines["status"].strip() == "EXPIRED"


def test_no_parent_is_one_clear_line_and_exit_code_1(
    world: tuple[Market, Flow, Report], store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(_cli(store, "--from", "2020-01-01", "--to", "2020-01-02")) == 1

    err = capsys.readouterr().err
    assert err.startswith("oms report tca-parents: no parents accepted between 2020-01-01")
    assert err.count("\n") == 1 and "Traceback" not in err
