"""Per-order TCA (`oms report tca`) against an independent numpy computation over the same fills and market data.

A seeded market (quotes, some one-sided, and prints on two venues) and orders on both sides (market, limit, stop and
stop-limit orders routed to seven venues, partial fills, unfilled cancels, replaces, an instant fill, a symbol without
quotes, an order before any market data) go into an embedded
ClickHouse through the sink's row builders. The expected figures are computed here with numpy straight from the
Python records, following the definitions in `docs/compliance.md`, never from the SQL.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import msgspec
import numpy as np
import pytest

from oms.core.model.enums import CancelReason, OrdType, RejectReason, Side, TimeInForce
from oms.core.model.instruments import InstrumentRegistry
from oms.core.model.messages import (
    CancelRejected,
    OrderAccepted,
    OrderCanceled,
    OrderFilled,
    OrderReplaced,
    TradePrinted,
)
from oms.infra.clickhouse.clickhouse import Client, apply_schema, connect
from oms.infra.clickhouse.reports import Report, ReportEmpty, tca_orders, tca_summary
from oms.infra.clickhouse.rows import Scale, fill_columns, order_columns, quote_columns, scales, trade_columns
from oms.infra.clickhouse.settings import AnalyticsSettings
from oms.infra.clickhouse.tape import Quote

CONFIGS = Path(__file__).resolve().parents[3] / "configs"
SCALE = scales(InstrumentRegistry.load(CONFIGS / "instruments.toml"))
T0 = 1_767_260_000_000_000_000  # 2026-01-01T09:33:20Z
SEC = 1_000_000_000
SETTINGS = AnalyticsSettings(
    dsn="unused", fees_bps={"XNAS": 0.3, "ARCA": -0.2}, default_fee_bps=0.1, markout_horizons_s=[1.0, 5.0, 60.0]
)
QUOTED = ("AAPL", "ESZ6", "EURUSD")  # MSFT has prints only: its benchmarks fall back to the last trade
MID0 = {"AAPL": 1_500_000, "ESZ6": 500_000, "EURUSD": 108_000, "MSFT": 4_000_000}  # price units
TICK = {"AAPL": 100, "ESZ6": 25, "EURUSD": 5, "MSFT": 100}
LOT = {"AAPL": 1, "ESZ6": 1, "EURUSD": 1000, "MSFT": 1}
VENUES = ("XNAS", "ARCA", "INTERNAL")
FILL_VENUES = (*VENUES, "BATS", "IEX", "EDGX", "MEMX")  # more than five: best execution lists the top five
SESSIONS = ("FIX.4.4:OMS->CLIENT44", "REST:trader1")


@dataclass
class Market:
    quotes: list[Quote] = field(default_factory=list)
    trades: list[TradePrinted] = field(default_factory=list)


@dataclass
class Book:
    """The orders' journal records, in the order the OMS would have written them."""

    accepted: list[OrderAccepted] = field(default_factory=list)
    other: list[OrderCanceled | OrderReplaced] = field(default_factory=list)
    fills: list[OrderFilled] = field(default_factory=list)


def simulate(seed: int = 5) -> tuple[Market, Book]:
    rng = random.Random(seed)
    market = Market()
    match_id = 0
    for symbol, mid0 in MID0.items():
        tick, mid, t = TICK[symbol], mid0, T0 + (30 * SEC if symbol == "EURUSD" else 0)
        while t < T0 + 240 * SEC:
            t += rng.randint(20, 400) * 1_000_000 + rng.randint(0, 999)
            mid += rng.choice((-1, 0, 0, 1)) * tick * 2
            if symbol in QUOTED and rng.random() < 0.7:
                half = rng.randint(1, 2) * tick
                one_sided = rng.random() < 0.05
                market.quotes.append(
                    Quote("XNAS", symbol, mid - half, 0 if one_sided else 300, mid + half, 200, t)
                )  # an empty bid: the quote gives no mid
            else:
                match_id += 1
                px = mid + rng.randint(-2, 2) * tick
                market.trades.append(
                    TradePrinted(rng.choice(VENUES), symbol, match_id, px, rng.randint(1, 20) * LOT[symbol],
                                 rng.choice((Side.BUY, Side.SELL)), t)
                )  # fmt: skip
    book = Book()
    exec_id = 10_000
    for n in range(1, 61):
        symbol = ("AAPL", "ESZ6", "EURUSD", "MSFT")[n % 4]
        side = Side.BUY if n % 2 else Side.SELL
        lot, tick = LOT[symbol], TICK[symbol]
        arrival = T0 + (5 if n != 3 else 1) * SEC + rng.randint(0, 150 * SEC)  # order 3 is EURUSD before any data
        qty = rng.randint(5, 40) * lot
        ord_type, price, stop_price = terms(n, symbol)
        book.accepted.append(
            OrderAccepted(n, f"c{n}", "ACC1" if n % 3 else "ACC2", symbol, side, ord_type, TimeInForce.DAY, qty,
                          price, arrival, stop_price, SESSIONS[n % 2])
        )  # fmt: skip
        first_fill = len(book.fills)
        t, cum, notional = arrival, 0, 0
        if n % 7 == 0:  # replaced before any fill: the order's quantity is the new one
            t += rng.randint(1, 500) * 1_000_000
            qty += 10 * lot
            book.other.append(OrderReplaced(n, f"r{n}", f"c{n}", "ACC1", symbol, qty, MID0[symbol], qty, t))
        n_fills = 0 if n % 6 == 0 else rng.randint(1, 4)
        for k in range(n_fills):
            instant = n == 10 and k == 0  # filled at its arrival time, in full: a life of zero length
            t += 0 if instant else rng.randint(1, 3000) * 1_000_000
            fill = qty if instant else min(qty - cum, rng.randint(1, 12) * lot)
            if fill <= 0:
                break
            px = MID0[symbol] + rng.randint(-6, 6) * tick
            cum, notional, exec_id = cum + fill, notional + fill * px, exec_id + 1
            book.fills.append(
                OrderFilled(n, f"c{n}", book.accepted[-1].account, symbol, exec_id, side, fill, px, qty - cum, cum,
                            notional, rng.random() < 0.5, t, None, rng.choice(FILL_VENUES))
            )  # fmt: skip
        route(book, n, first_fill)
        if cum < qty:
            t += rng.randint(1, 4000) * 1_000_000
            book.other.append(OrderCanceled(n, f"x{n}", "ACC1", symbol, CancelReason.USER, qty - cum, t, f"c{n}"))
    return market, book


def terms(n: int, symbol: str) -> tuple[OrdType, int | None, int | None]:
    """Order n's type, limit price and stop price: market orders, stops and stop-limits among limit orders priced a
    few ticks either side of the starting mid, so that some are marketable on arrival and some not."""
    mid, tick = MID0[symbol], TICK[symbol]
    if n % 5 == 0:
        return OrdType.MARKET, None, None
    if n % 8 == 0:
        return OrdType.STOP, None, mid + 4 * tick
    if n % 9 == 0:
        return OrdType.STOP_LIMIT, mid + 5 * tick, mid + 4 * tick
    return OrdType.LIMIT, mid + (n % 7 - 3) * 2 * tick, None


def route(book: Book, n: int, first_fill: int) -> None:
    """Record where order n (the last accepted) was routed: the venue its fills came from, as in the OMS, where an
    order executes at the venue it was routed to; an unfilled order went to one of VENUES. Every 13th order's row
    has no venue, like the rows written before the store recorded routing: it was not routed as far as the store
    knows, though its fills keep their venue."""
    fills = book.fills[first_fill:]
    venue = fills[0].venue if fills else VENUES[n % len(VENUES)]
    book.fills[first_fill:] = [msgspec.structs.replace(f, venue=venue) for f in fills]
    book.accepted[-1] = msgspec.structs.replace(book.accepted[-1], venue="" if n % 13 == 0 else venue)


def _ids(n: int) -> list[bytes]:
    return [f"1767260000000-{i}".encode() for i in range(n)]


def load(ch: Client, market: Market, book: Book, scale: dict[str, Scale] = SCALE) -> None:
    orders = [*book.accepted, *book.other]
    for table, (names, cols) in (
        ("orders", order_columns(orders, _ids(len(orders)), scale)),
        ("executions", fill_columns(book.fills, _ids(len(book.fills)), scale)),
        ("market_trades", trade_columns(market.trades, _ids(len(market.trades)), scale)),
        ("quotes", quote_columns(market.quotes, _ids(len(market.quotes)), scale)),
    ):
        if cols[0]:
            ch.insert(table, cols, column_names=list(names), column_oriented=True)


@pytest.fixture(scope="module")
def ch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    client = connect(f"chdb://{tmp_path_factory.mktemp('tca')}/store", "tca")
    apply_schema(client)
    yield client
    client.close()


@pytest.fixture(scope="module")
def world(ch: Client) -> tuple[Market, Book, Report]:
    market, book = simulate()
    load(ch, market, book)
    return market, book, tca_orders(ch, settings=SETTINGS)


# -- the independent computation --


def px(symbol: str, units: int) -> float:
    return units / SCALE[symbol].price_div


def qty(symbol: str, units: int) -> float:
    return units / SCALE[symbol].qty_div


class Series:
    """A symbol's mids (two-sided quotes only) and prints as sorted numpy arrays."""

    def __init__(self, market: Market, symbol: str) -> None:
        quotes = sorted((q for q in market.quotes if q.symbol == symbol and q.bid_qty and q.ask_qty),
                        key=lambda q: q.ts_ns)  # fmt: skip
        trades = sorted((t for t in market.trades if t.symbol == symbol), key=lambda t: t.ts_ns)
        self.q_ts = np.array([q.ts_ns for q in quotes], dtype=np.int64)
        self.mid = np.array([(px(symbol, q.bid) + px(symbol, q.ask)) / 2 for q in quotes])
        self.t_ts = np.array([t.ts_ns for t in trades], dtype=np.int64)
        self.t_px = np.array([px(symbol, t.price) for t in trades])
        self.t_qty = np.array([qty(symbol, t.qty) for t in trades])
        books = sorted((q for q in market.quotes if q.symbol == symbol), key=lambda q: q.ts_ns)
        self.b_ts = np.array([q.ts_ns for q in books], dtype=np.int64)  # every quote, one-sided ones too
        self.b_mid = [(px(symbol, q.bid) + px(symbol, q.ask)) / 2 if q.bid_qty and q.ask_qty else None for q in books]
        every = [q.ts_ns for q in market.quotes if q.symbol == symbol] + [t.ts_ns for t in trades]
        self.data_end = max(every) if every else None  # one-sided quotes count: the store covers up to here

    @staticmethod
    def _at(ts: np.ndarray, values: np.ndarray, t: int, strict: bool) -> float | None:
        i = int(np.searchsorted(ts, t, side="left" if strict else "right")) - 1
        return float(values[i]) if i >= 0 else None

    def price(self, t: int, strict: bool) -> float | None:
        """Mid of the last two-sided quote before t (strict) or at/before t, else the last print."""
        mid = self._at(self.q_ts, self.mid, t, strict)
        return mid if mid is not None else self._at(self.t_ts, self.t_px, t, strict)

    def arrival(self, t: int, max_age_ns: int) -> tuple[float | None, str]:
        """The mid of the book just before t if it was two-sided and at most max_age_ns old, else the last print
        before t within that age, else none."""
        i = int(np.searchsorted(self.b_ts, t, side="left")) - 1
        if i >= 0 and self.b_mid[i] is not None and t - int(self.b_ts[i]) <= max_age_ns:
            return self.b_mid[i], "mid"
        j = int(np.searchsorted(self.t_ts, t, side="left")) - 1
        if j >= 0 and t - int(self.t_ts[j]) <= max_age_ns:
            return float(self.t_px[j]), "last_trade"
        return None, "none"

    def vwap_volume(self, a: int, e: int) -> tuple[float | None, float]:
        inside = (self.t_ts >= a) & (self.t_ts <= e)
        volume = float(self.t_qty[inside].sum())
        return (float((self.t_qty[inside] * self.t_px[inside]).sum() / volume) if volume else None), volume

    def twap(self, a: int, e: int) -> float | None:
        """Integral of the last print's price over [a, e] / covered time; the print at e if nothing is covered."""
        before = int(np.searchsorted(self.t_ts, a, side="right")) - 1
        inner = (self.t_ts > a) & (self.t_ts < e)
        if before >= 0:
            times = np.concatenate(([a], self.t_ts[inner]))
            prices = np.concatenate(([self.t_px[before]], self.t_px[inner]))
        else:
            times, prices = self.t_ts[inner], self.t_px[inner]
        durations = np.diff(np.concatenate((times, [e]))).astype(np.float64)
        if len(times) and durations.sum() > 0:
            return float((prices * durations).sum() / durations.sum())
        return self._at(self.t_ts, self.t_px, e, strict=False)


def expected(
    market: Market, book: Book, settings: AnalyticsSettings = SETTINGS
) -> dict[int, dict[str, float | int | None]]:
    series = {s: Series(market, s) for s in {a.symbol for a in book.accepted}}
    out = {}
    for acc in book.accepted:
        n, symbol, s = acc.order_id, acc.symbol, series[acc.symbol]
        sgn = 1 if acc.side is Side.BUY else -1
        fills = [f for f in book.fills if f.order_id == n]
        others = [o for o in book.other if o.order_id == n]
        replaced = [o for o in others if isinstance(o, OrderReplaced)]
        x = qty(symbol, replaced[-1].qty if replaced else acc.qty)
        q = np.array([qty(symbol, f.qty) for f in fills])
        p = np.array([px(symbol, f.price) for f in fills])
        fee_bps = np.array([settings.fees_bps.get(f.venue, settings.default_fee_bps) for f in fills])
        filled, notional = float(q.sum()), float((q * p).sum())
        a = acc.ts_ns
        e = max([a, *(o.ts_ns for o in others), *(f.ts_ns for f in fills)])
        avg = notional / filled if filled else None
        p_d, source = s.arrival(a, round(settings.arrival_max_age_s * SEC))
        p_0 = s.price(fills[0].ts_ns, strict=True) if fills else None
        p_n = s.price(e, strict=False)
        vwap, volume = s.vwap_volume(a, e)
        twap = s.twap(a, e)

        def cost(benchmark: float | None, avg: float | None = avg, sgn: int = sgn) -> float | None:
            return None if avg is None or benchmark is None else sgn * (avg - benchmark) / benchmark * 1e4

        row: dict[str, float | int | None] = {
            "order_qty": x, "filled_qty": filled, "fill_rate": filled / x, "n_fills": len(fills), "avg_px": avg,
            "arrival_px": p_d, "arrival_source": source, "vwap": vwap, "twap": twap, "slippage_arrival_bps": cost(p_d),
            "slippage_vwap_bps": cost(vwap), "slippage_twap_bps": cost(twap), "start_px": p_0, "end_px": p_n,
            "fees": float((q * p * fee_bps).sum() / 1e4), "participation": filled / volume if volume else None,
            "end_ns": e,
        }  # fmt: skip
        if p_d is not None:
            paper = x * p_d
            row["is_delay_bps"] = sgn * (p_0 - p_d) * filled / paper * 1e4 if fills else 0.0
            row["is_realized_bps"] = sgn * (notional - p_0 * filled) / paper * 1e4 if fills else 0.0
            row["is_opportunity_bps"] = sgn * (p_n - p_d) * (x - filled) / paper * 1e4 if x > filled else 0.0
            row["is_fees_bps"] = row["fees"] / paper * 1e4
            row["is_total_bps"] = sum(row[k] for k in ("is_delay_bps", "is_realized_bps", "is_opportunity_bps",
                                                          "is_fees_bps"))  # fmt: skip
        else:
            for k in ("is_delay_bps", "is_realized_bps", "is_opportunity_bps", "is_fees_bps", "is_total_bps"):
                row[k] = None
        for h in settings.markout_horizons_s:
            at = [f.ts_ns + round(h * SEC) for f in fills]
            marks = [s.price(t, strict=False) if s.data_end is not None and t <= s.data_end else None for t in at]
            have = [(qi, pi, m) for qi, pi, m in zip(q, p, marks, strict=True) if m is not None]
            weight = sum(qi for qi, _, _ in have)
            row[f"markout_{h:g}s_bps"] = (
                sum(qi * sgn * (pi - m) / m for qi, pi, m in have) / weight * 1e4 if weight else None
            )
        out[n] = row
    return out


def _same(got: object, want: object) -> bool:
    if want is None:
        return got is None or (isinstance(got, float) and math.isnan(got))
    if isinstance(want, str):  # pytest.approx takes numbers only
        return got == want
    return got == pytest.approx(want, rel=1e-9, abs=1e-9)


# -- tests --


def test_every_accepted_order_has_one_row(world: tuple[Market, Book, Report]) -> None:
    _, book, report = world
    assert [r["order_id"] for r in report.records()] == [
        a.order_id for a in sorted(book.accepted, key=lambda a: (a.ts_ns, a.order_id))
    ]


def test_every_figure_equals_the_numpy_computation(world: tuple[Market, Book, Report]) -> None:
    market, book, report = world
    want = expected(market, book)
    mismatches = [
        (r["order_id"], column, r[column], value)
        for r in report.records()
        for column, value in want[r["order_id"]].items()
        if not _same(r[column], value)
    ]
    assert mismatches == []


def test_the_data_covers_the_cases_that_matter(world: tuple[Market, Book, Report]) -> None:
    _, _, report = world
    rows = report.records()
    assert {r["side"] for r in rows} == {"BUY", "SELL"}
    assert any(0 < r["fill_rate"] < 1 for r in rows)  # partially filled
    assert any(r["filled_qty"] == 0 and r["is_opportunity_bps"] not in (None, 0) for r in rows)  # never filled
    assert any(r["arrival_px"] is None for r in rows)  # before any market data
    assert {r["arrival_source"] for r in rows} == {"mid", "last_trade", "none"}
    assert any(r["arrival_ns"] == r["end_ns"] for r in rows)  # an instant fill
    fees = [r["is_fees_bps"] for r in rows if r["is_fees_bps"] is not None]
    assert min(fees) < 0 < max(fees)  # rebates and fees
    for side in ("BUY", "SELL"):  # costs and gains on both sides
        figures = [r["slippage_arrival_bps"] for r in rows if r["side"] == side and r["slippage_arrival_bps"]]
        assert min(figures) < 0 < max(figures)


def test_the_summary_is_computed_from_totals_per_side(world: tuple[Market, Book, Report]) -> None:
    """Per account, symbol and side: average price and slippage from the summed notionals, Perold's shortfall as
    total shortfall over total paper value (unfilled orders' opportunity cost included), from the numpy figures."""
    market, book, report = world
    want = expected(market, book)
    groups: dict[tuple[str, str, str], list[int]] = {}
    for acc in book.accepted:
        groups.setdefault((acc.account, acc.symbol, acc.side.name), []).append(acc.order_id)
    rows = {(r["account"], r["symbol"], r["side"]): r for r in tca_summary(report).records()}

    assert set(rows) == set(groups)
    for key, ids in groups.items():
        sgn = 1 if key[2] == "BUY" else -1
        orders = [want[n] for n in ids]
        filled = [o for o in orders if o["filled_qty"]]
        qty_ = sum(o["filled_qty"] for o in filled)
        notional = sum(o["filled_qty"] * o["avg_px"] for o in filled)
        priced = [o for o in filled if o["arrival_px"] is not None]
        value = sum(o["filled_qty"] * o["arrival_px"] for o in priced)
        paid = sum(o["filled_qty"] * o["avg_px"] for o in priced)
        papers = [(o["order_qty"] * o["arrival_px"], o["is_total_bps"]) for o in orders if o["arrival_px"]]
        shortfall = sum(p * bps / 1e4 for p, bps in papers)  # in money
        row = rows[key]
        assert row["filled_qty"] == pytest.approx(qty_) and row["orders"] == len(ids)
        assert _same(row["avg_px"], notional / qty_ if qty_ else None)
        assert _same(row["slippage_arrival_bps"], sgn * (paid - value) / value * 1e4 if value else None)
        assert _same(row["is_total_bps"], shortfall / sum(p for p, _ in papers) * 1e4 if papers else None)


def test_shortfall_components_add_up_to_the_total(world: tuple[Market, Book, Report]) -> None:
    _, _, report = world
    for r in report.records():
        if r["is_total_bps"] is not None:
            parts = r["is_delay_bps"] + r["is_realized_bps"] + r["is_opportunity_bps"] + r["is_fees_bps"]
            assert r["is_total_bps"] == pytest.approx(parts, abs=1e-9)


def test_buying_above_and_selling_below_the_arrival_mid_are_both_positive_costs(ch: Client) -> None:
    t = T0 + 500 * SEC
    market = Market(
        quotes=[Quote("XNAS", "MSFT", 990_000, 10, 1_010_000, 10, t - SEC)],  # mid 100.00
        trades=[TradePrinted("XNAS", "MSFT", 900_001, 1_000_000, 50, Side.BUY, t - 2 * SEC)],
    )
    book = Book(
        accepted=[
            OrderAccepted(901, "b", "SIGN", "MSFT", Side.BUY, OrdType.MARKET, TimeInForce.IOC, 10, None, t),
            OrderAccepted(902, "s", "SIGN", "MSFT", Side.SELL, OrdType.MARKET, TimeInForce.IOC, 10, None, t),
        ],
        fills=[
            OrderFilled(901, "b", "SIGN", "MSFT", 900_001, Side.BUY, 10, 1_010_000, 0, 10, 10_100_000, True, t),
            OrderFilled(902, "s", "SIGN", "MSFT", 900_002, Side.SELL, 10, 990_000, 0, 10, 9_900_000, True, t),
        ],
    )
    load(ch, market, book)

    rows = {r["side"]: r for r in tca_orders(ch, account="SIGN", settings=SETTINGS).records()}

    assert rows["BUY"]["slippage_arrival_bps"] == pytest.approx(100.0)  # paid 101 against a mid of 100
    assert rows["SELL"]["slippage_arrival_bps"] == pytest.approx(100.0)  # sold at 99 against a mid of 100
    assert rows["BUY"]["is_realized_bps"] == pytest.approx(100.0)


def test_a_markout_past_the_last_market_data_is_null_not_the_last_quote(ch: Client) -> None:
    """The store's MSFT data ends 2 s after the fill: the 1 s markout is there, the 5 s and 60 s ones are not known
    yet (the latest quote must not stand in for them, or they would change with when the report is run)."""
    t = T0 + 100_000 * SEC  # after everything else in the store
    market = Market(quotes=[Quote("XNAS", "MSFT", 990_000, 10, 1_010_000, 10, t - SEC),
                            Quote("XNAS", "MSFT", 1_000_000, 10, 1_020_000, 10, t + 2 * SEC)])  # fmt: skip
    book = Book(
        accepted=[OrderAccepted(911, "late", "LATE", "MSFT", Side.BUY, OrdType.MARKET, TimeInForce.IOC, 10, None, t)],
        fills=[OrderFilled(911, "late", "LATE", "MSFT", 911_001, Side.BUY, 10, 1_010_000, 0, 10, 10_100_000, True, t)],
    )
    load(ch, market, book)

    (row,) = tca_orders(ch, account="LATE", settings=SETTINGS).records()

    assert row["markout_1s_bps"] == pytest.approx(100.0)  # bought at 101, the mid 1 s later still 100
    assert row["markout_5s_bps"] is None and row["markout_60s_bps"] is None


def test_arrival_on_a_one_sided_book_falls_back_to_the_last_print_and_says_so(ch: Client) -> None:
    """The book was two-sided (149.80 / 150.20) until the bid left; at arrival only the ask (149.85) stands. The old
    mid (150.00) is not the arrival price: the last print is, flagged; with market data older than the bound, none."""
    t = T0 + 200_000 * SEC  # after everything else in the store
    market = Market(
        quotes=[Quote("XNAS", "AAPL", 1_498_000, 10, 1_502_000, 10, t - 3 * SEC),
                Quote("XNAS", "AAPL", 0, 0, 1_498_500, 10, t - SEC)],
        trades=[TradePrinted("XNAS", "AAPL", 920_001, 1_499_000, 5, Side.BUY, t - 2 * SEC)],
    )  # fmt: skip
    accepted = [OrderAccepted(921, "one", "ONESIDED", "AAPL", Side.BUY, OrdType.LIMIT, TimeInForce.DAY, 10,
                              1_500_000, t)]  # fmt: skip
    load(ch, market, Book(accepted=accepted))

    (row,) = tca_orders(ch, account="ONESIDED", settings=SETTINGS).records()
    strict = msgspec.structs.replace(SETTINGS, arrival_max_age_s=1.5)
    (stale,) = tca_orders(ch, account="ONESIDED", settings=strict).records()

    assert (row["arrival_px"], row["arrival_source"]) == (pytest.approx(149.90), "last_trade")
    assert (stale["arrival_px"], stale["arrival_source"], stale["is_total_bps"]) == (None, "none", None)


def test_a_refused_cancel_does_not_extend_an_orders_life(ch: Client) -> None:
    """The order's life ends at its last event; a cancel refused later (TOO_LATE_TO_CANCEL, from the OMS's record)
    changed nothing and must not stretch the window its VWAP and opportunity cost are measured over."""
    t = T0 + 300_000 * SEC
    book = Book(
        accepted=[OrderAccepted(941, "f", "LIFE", "AAPL", Side.BUY, OrdType.LIMIT, TimeInForce.DAY, 10, 1_500_000, t)],
        fills=[OrderFilled(941, "f", "LIFE", "AAPL", 941_001, Side.BUY, 10, 1_500_000, 0, 10, 15_000_000, True,
                           t + SEC)],
    )  # fmt: skip
    load(ch, Market(), book)
    refused = CancelRejected(941, "x", "f", "LIFE", "AAPL", RejectReason.TOO_LATE_TO_CANCEL, "too late", "cancel",
                             t + 60 * SEC)  # fmt: skip
    names, cols = order_columns([refused], [b"1767260300000-0"], SCALE, ["records"])
    ch.insert("orders", cols, column_names=list(names), column_oriented=True)

    (row,) = tca_orders(ch, account="LIFE", settings=SETTINGS).records()

    assert row["end_ns"] == t + SEC


def test_an_unknown_order_id_is_one_clear_line(ch: Client) -> None:
    with pytest.raises(ReportEmpty, match=r"^order 424242 not found: no accepted order with that id at any time"):
        tca_orders(ch, order_id=424242)


def test_an_empty_window_is_one_clear_line(ch: Client) -> None:
    with pytest.raises(ReportEmpty, match=r"^no orders accepted between 2020-01-01T00:00:00.000000Z and "):
        tca_orders(ch, start_ns=1_577_836_800 * SEC, end_ns=1_577_923_200 * SEC)
