"""Best execution (`oms report best-ex`: RTS 28's top five venues) and order routing (`oms report routing`: SEC Rule
606(a)(1)) against an independent pure-Python computation from the raw records, following docs/compliance.md.

The store: the seeded world of `test_tca` (orders routed to seven venues, fees and rebates, market, limit, stop and
stop-limit orders, limits either side of the touch, a symbol without quotes, one-sided quotes, routed orders that
never executed, orders whose rows record no venue) plus a few hand-made accounts, each pinning one definition that
the executions-based reports got wrong or lacked: passive and aggressive are shares of orders, not executions; Rule 606
counts the orders routed, executed or not, and lists the ten busiest venues and any other with 5 %; the low-activity
flag follows the period's business days; a one-sided or stale book leaves a limit order non-marketable and flagged.
"""

from __future__ import annotations

import bisect
import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
import pytest

from oms.apps.cli import main
from oms.core.model.enums import CancelReason, OrdType, Side, TimeInForce
from oms.core.model.instruments import ConfigError
from oms.core.model.messages import OrderAccepted, OrderCanceled, OrderFilled
from oms.infra.clickhouse.clickhouse import Client, apply_schema, connect
from oms.infra.clickhouse.reports import FOREVER_NS, Report, best_execution, render, routing
from oms.infra.clickhouse.settings import AnalyticsSettings, load_analytics_settings
from oms.infra.clickhouse.tape import Quote
from tests.unit.infra.test_tca import SCALE, SEC, SETTINGS, T0, Book, Market, load, px, qty, simulate

# EDGX and MEMX have no MIC here: the reports show their names and an empty MIC
MICS = {"XNAS": "XNAS", "ARCA": "ARCX", "BATS": "BATS", "IEX": "IEXG", "INTERNAL": "XOFF"}
BX = msgspec.structs.replace(SETTINGS, venue_mics=MICS)
FROM, TO = T0 + 23_700_000_000, T0 + 187_300_000_000  # inside the seeded world's four minutes
DAY = 86_400 * SEC
T_RTS = T0 + 6 * DAY  # Wednesday 2026-01-07
T_606 = T0 + 7 * DAY  # Thursday 2026-01-08
SATURDAY = int(datetime(2026, 1, 10, tzinfo=UTC).timestamp()) * SEC
YEAR_2026 = (1_767_225_600 * SEC, 1_798_761_600 * SEC)  # [2026-01-01, 2027-01-01) UTC

RTS_COLUMNS = ["asset_class", "low_activity", "rank", "venue", "mic", "pct_volume", "pct_orders", "pct_passive",
               "pct_aggressive", "pct_directed"]  # fmt: skip
RULE_606_COLUMNS = [
    "month", "asset_class", "pct_ndo", "pct_ndo_market", "pct_ndo_marketable_limit", "pct_ndo_non_marketable_limit",
    "pct_ndo_other", "rank", "venue", "mic", "pct_orders", "pct_market", "pct_marketable_limit",
    "pct_non_marketable_limit", "pct_other", "net_payment_market", "net_payment_market_cph",
    "net_payment_marketable_limit", "net_payment_marketable_limit_cph", "net_payment_non_marketable_limit",
    "net_payment_non_marketable_limit_cph", "net_payment_other", "net_payment_other_cph",
]  # fmt: skip
CATEGORIES = ("market", "marketable_limit", "non_marketable_limit", "other")


def _fill(order_id: int, account: str, exec_id: int, side: Side, n: int, price: int, aggressor: bool, t: int,
          venue: str) -> OrderFilled:  # fmt: skip
    return OrderFilled(order_id, f"c{order_id}", account, "AAPL", exec_id, side, n, price, 0, n, n * price,
                       aggressor, t, None, venue)  # fmt: skip


def _accepted(order_id: int, account: str, side: Side, ord_type: OrdType, price: int | None, t: int,
              venue: str) -> OrderAccepted:  # fmt: skip
    return OrderAccepted(order_id, f"c{order_id}", account, "AAPL", side, ord_type, TimeInForce.DAY, 10, price, t,
                         None, "REST:trader1", "", venue)  # fmt: skip


def rts28_orders() -> Book:
    """Account RTS28, 2026-01-07: on XNAS one order of three provided liquidity (one passive execution), the two
    others took it in five executions; on ARCA one order did both. Eight executions in all. Account WEEKEND: one
    execution on Saturday 2026-01-10."""
    t, buy = T_RTS, Side.BUY
    book = Book(accepted=[_accepted(n, "RTS28", buy, OrdType.LIMIT, 1_500_000, t, v)
                          for n, v in ((701, "XNAS"), (702, "XNAS"), (703, "XNAS"), (704, "ARCA"))])  # fmt: skip
    for i, (n, aggressor, venue) in enumerate([(701, False, "XNAS"), (702, True, "XNAS"), (702, True, "XNAS"),
                                               (702, True, "XNAS"), (703, True, "XNAS"), (703, True, "XNAS"),
                                               (704, False, "ARCA"), (704, True, "ARCA")]):  # fmt: skip
        book.fills.append(_fill(n, "RTS28", 70_001 + i, buy, 1, 1_500_000, aggressor, t + (i + 1) * SEC, venue))
    book.fills.append(_fill(731, "WEEKEND", 73_001, buy, 1, 1_500_000, True, SATURDAY + SEC, "XNAS"))
    return book


def rule606_orders() -> tuple[Market, Book]:
    """Accounts R606 and ONESIDED, 2026-01-08. R606: two market orders and a non-marketable limit routed to XNAS;
    only one market order executes. ONESIDED: the AAPL book shows an ask of 150.00 and no bid; a sell limit at
    149.00 (marketable against any bid) is non-marketable and flagged, a buy limit at the ask is marketable, and a
    buy limit accepted when that quote is older than the age bound is non-marketable and flagged."""
    t = T_606
    market = Market(quotes=[Quote("XNAS", "AAPL", 0, 0, 1_500_000, 100, t - SEC)])
    book = Book(
        accepted=[
            _accepted(711, "R606", Side.BUY, OrdType.MARKET, None, t, "XNAS"),
            _accepted(712, "R606", Side.SELL, OrdType.MARKET, None, t + SEC, "XNAS"),
            _accepted(713, "R606", Side.BUY, OrdType.LIMIT, 1_400_000, t + 2 * SEC, "XNAS"),
            _accepted(721, "ONESIDED", Side.SELL, OrdType.LIMIT, 1_490_000, t + 3 * SEC, "ARCA"),
            _accepted(722, "ONESIDED", Side.BUY, OrdType.LIMIT, 1_500_000, t + 4 * SEC, "ARCA"),
            _accepted(723, "ONESIDED", Side.BUY, OrdType.LIMIT, 1_600_000, t + 1000 * SEC, "ARCA"),
        ],
        other=[OrderCanceled(n, f"x{n}", "R606", "AAPL", CancelReason.USER, 10, t + 10 * SEC, f"c{n}")
               for n in (712, 713)],
        fills=[_fill(711, "R606", 71_001, Side.BUY, 10, 1_500_000, True, t + SEC // 2, "XNAS")],
    )  # fmt: skip
    return market, book


def many_venues_orders() -> Book:
    """Account MANY, 2026-01-09: market orders routed to twelve venues, V01 to V11 two each and V12 one (4.3 %)."""
    venues = [f"V{v:02}" for v in range(1, 12) for _ in range(2)] + ["V12"]
    return Book(accepted=[_accepted(741 + i, "MANY", Side.BUY, OrdType.MARKET, None, T0 + 8 * DAY + i * SEC, v)
                          for i, v in enumerate(venues)])  # fmt: skip


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"chdb://{tmp_path_factory.mktemp('best-ex')}/store"


@pytest.fixture(scope="module")
def world(store: str) -> Iterator[tuple[Client, Market, Book]]:
    """Every record loaded, and the same records for the independent computation."""
    market, book = simulate(seed=8)
    extra_market, extra_book = rule606_orders()
    rts, many = rts28_orders(), many_venues_orders()
    market = Market(quotes=[*market.quotes, *extra_market.quotes], trades=market.trades)
    book = Book(accepted=[*book.accepted, *rts.accepted, *extra_book.accepted, *many.accepted],
                other=[*book.other, *extra_book.other], fills=[*book.fills, *rts.fills, *extra_book.fills])  # fmt: skip
    client = connect(store, "bx")
    apply_schema(client)
    load(client, market, book)
    yield client, market, book
    client.close()


# -- the independent computation --


def _business_days(start: int, end: int, fills: list[OrderFilled]) -> int:
    """Mon-Fri UTC days that [start, end) touches, an open end closed at the first / last fill; at least one."""
    lo = start if start > 0 else min(f.ts_ns for f in fills)
    hi = (end if end < FOREVER_NS else max(f.ts_ns for f in fills) + 1) - 1
    first, last = (datetime.fromtimestamp(ns // SEC, UTC).date() for ns in (lo, hi))
    days = [first + timedelta(d) for d in range((last - first).days + 1)]
    return max(1, sum(d.weekday() < 5 for d in days))


def rts28(book: Book, start: int = 0, end: int = FOREVER_NS, account: str = "") -> dict[tuple, dict[str, object]]:
    """RTS 28 Table 1 per (class, rank), from the fills."""
    fills = [f for f in book.fills if start <= f.ts_ns < end and account in ("", f.account)]
    days = _business_days(start, end, fills) if fills else 1
    out: dict[tuple, dict[str, object]] = {}
    for cls in sorted({SCALE[f.symbol].asset_class for f in fills}):
        in_class = [f for f in fills if SCALE[f.symbol].asset_class == cls]

        def notional(fs: list[OrderFilled]) -> float:
            return sum(qty(f.symbol, f.qty) * px(f.symbol, f.price) for f in fs)

        by_venue = {v: [f for f in in_class if f.venue == v] for v in {f.venue for f in in_class}}
        ranked = sorted(by_venue, key=lambda v: (-notional(by_venue[v]), v))[:5]
        class_orders = len({f.order_id for f in in_class})
        for rank, v in enumerate(ranked, 1):
            at = by_venue[v]
            orders = {f.order_id for f in at}
            passive = {f.order_id for f in at if not f.aggressor}
            aggressive = {f.order_id for f in at if f.aggressor}
            out[(cls, rank)] = {
                "low_activity": "Y" if len(in_class) / days < 1 else "N", "venue": v, "mic": MICS.get(v, ""),
                "pct_volume": 100 * notional(at) / notional(in_class), "pct_orders": 100 * len(orders) / class_orders,
                "pct_passive": 100 * len(passive) / len(orders), "pct_aggressive": 100 * len(aggressive) / len(orders),
                "pct_directed": 0.0, "notional": notional(at), "orders": len(orders), "passive_orders": len(passive),
                "aggressive_orders": len(aggressive), "directed_orders": 0, "executions": len(at),
                "class_executions": len(in_class), "business_days": days,
            }  # fmt: skip
    return out


def category(market: Market, a: OrderAccepted, max_age_ns: int) -> tuple[str, bool]:
    """Rule 606's category of an accepted order, and whether it is a limit order judged without the quote side it
    would take (then non-marketable)."""
    if a.ord_type is OrdType.MARKET:
        return "market", False
    if a.ord_type is not OrdType.LIMIT:
        return "other", False
    quotes = sorted((q for q in market.quotes if q.symbol == a.symbol), key=lambda q: q.ts_ns)  # stable: load order
    i = bisect.bisect_left([q.ts_ns for q in quotes], a.ts_ns) - 1
    q = quotes[i] if i >= 0 and a.ts_ns - quotes[i].ts_ns <= max_age_ns else None
    buy = a.side is Side.BUY
    if q is None or not (q.ask_qty if buy else q.bid_qty):
        return "non_marketable_limit", True
    limit, touch = px(a.symbol, a.price or 0), px(a.symbol, q.ask if buy else q.bid)
    return ("marketable_limit" if (limit >= touch if buy else limit <= touch) else "non_marketable_limit"), False


def rule606(market: Market, book: Book, start: int = 0, end: int = FOREVER_NS, account: str = "",
            settings: AnalyticsSettings = BX) -> dict[tuple, dict[str, object]]:  # fmt: skip
    """Rule 606(a)(1) per (month, class, rank), from the accepted orders, the quotes and the fills."""
    max_age = round(settings.arrival_max_age_s * SEC)
    routed = [a for a in book.accepted if a.venue and start <= a.ts_ns < end and account in ("", a.account)]
    orders = []
    for a in routed:
        fills = [f for f in book.fills if f.order_id == a.order_id]
        fee = [settings.fees_bps.get(f.venue, settings.default_fee_bps) for f in fills]
        cat, unquoted = category(market, a, max_age)
        orders.append({
            "month": datetime.fromtimestamp(a.ts_ns // SEC, UTC).strftime("%Y-%m"),
            "class": SCALE[a.symbol].asset_class, "venue": a.venue, "category": cat, "unquoted": unquoted,
            "executed": sum(qty(f.symbol, f.qty) for f in fills),
            "payment": -sum(qty(f.symbol, f.qty) * px(f.symbol, f.price) * b for f, b in zip(fills, fee, strict=True))
            / 1e4,
        })  # fmt: skip
    out: dict[tuple, dict[str, object]] = {}
    for month, cls in sorted({(o["month"], o["class"]) for o in orders}):
        section = [o for o in orders if (o["month"], o["class"]) == (month, cls)]
        n = len(section)  # every order is non-directed
        per_cat = {c: sum(o["category"] == c for o in section) for c in CATEGORIES}
        head = {"pct_ndo": 100.0, **{f"pct_ndo_{c}": 100 * per_cat[c] / n for c in CATEGORIES}}
        venues = {v: [o for o in section if o["venue"] == v] for v in {o["venue"] for o in section}}
        ranked = sorted(venues, key=lambda v: (-len(venues[v]), v))
        for rank, v in enumerate(ranked, 1):
            at = venues[v]
            if rank > 10 and 100 * len(at) / n < 5:
                continue
            row: dict[str, object] = {**head, "venue": v, "mic": MICS.get(v, ""), "pct_orders": 100 * len(at) / n}
            for c in CATEGORIES:
                mine = [o for o in at if o["category"] == c]
                row[f"pct_{c}"] = 100 * len(mine) / per_cat[c] if per_cat[c] else 0.0
            for c in CATEGORIES:
                mine = [o for o in at if o["category"] == c]
                paid, shares = sum(o["payment"] for o in mine), sum(o["executed"] for o in mine)
                row[f"net_payment_{c}"] = paid
                row[f"net_payment_{c}_cph"] = paid * 1e4 / shares if shares else 0.0
            row |= {"routed_orders": n, **{f"{c}_orders": per_cat[c] for c in CATEGORIES},
                    "unquoted_limit_orders": sum(o["unquoted"] for o in section), "venue_orders": len(at)}  # fmt: skip
            out[(month, cls, rank)] = row
    return out


def _close(got: object, want: object) -> bool:
    if isinstance(want, str):  # pytest.approx takes numbers only
        return got == want
    return got == pytest.approx(want, rel=1e-9, abs=1e-9)


def _diff(report: Report, want: dict[tuple, dict[str, object]], key: tuple[str, ...]) -> list[tuple]:
    got = {tuple(r[k] for k in key): r for r in report.records()}
    assert sorted(got) == sorted(want)
    return [(k, c, got[k][c], v) for k, row in want.items() for c, v in row.items() if not _close(got[k][c], v)]


# -- RTS 28 --


@pytest.mark.parametrize(("start", "end"), [(0, FOREVER_NS), (FROM, TO), YEAR_2026], ids=["all", "minutes", "year"])
def test_rts28_every_figure_equals_the_independent_computation(
    world: tuple[Client, Market, Book], start: int, end: int
) -> None:
    client, _, book = world

    report = best_execution(client, start_ns=start, end_ns=end, settings=BX)

    assert _diff(report, rts28(book, start, end), ("asset_class", "rank")) == []


def test_rts28_columns_are_in_the_order_of_annex_ii_table_1(world: tuple[Client, Market, Book]) -> None:
    client, _, _ = world

    report = best_execution(client, settings=BX)

    assert report.columns[: len(RTS_COLUMNS)] == RTS_COLUMNS


def test_rts28_passive_and_aggressive_are_shares_of_orders_not_executions(world: tuple[Client, Market, Book]) -> None:
    """On XNAS one order of three provided liquidity, in one execution of six: 33.3 % of orders were passive (the
    executions' share would be 16.7 %) and two of three aggressive. ARCA's one order did both: it counts in both."""
    client, _, _ = world

    rows = {r["venue"]: r for r in best_execution(client, account="RTS28", settings=BX).records()}

    assert rows["XNAS"]["pct_passive"] == pytest.approx(100 / 3)
    assert rows["XNAS"]["pct_aggressive"] == pytest.approx(200 / 3)
    assert rows["XNAS"]["pct_orders"] == pytest.approx(75.0)  # three of the class's four orders
    assert (rows["ARCA"]["pct_passive"], rows["ARCA"]["pct_aggressive"]) == (100.0, 100.0)
    assert {r["pct_directed"] for r in rows.values()} == {0.0}


def test_rts28_low_activity_flag_follows_the_periods_business_days(world: tuple[Client, Market, Book]) -> None:
    """Eight executions: on their one business day, eight a day (N); over 2026's 261 business days, fewer than one
    a day (Y)."""
    client, _, _ = world
    day = (T_RTS // DAY * DAY, T_RTS // DAY * DAY + DAY)

    (busy, *_) = best_execution(client, start_ns=day[0], end_ns=day[1], account="RTS28", settings=BX).records()
    (quiet, *_) = best_execution(client, start_ns=YEAR_2026[0], end_ns=YEAR_2026[1], account="RTS28",
                                 settings=BX).records()  # fmt: skip

    assert (busy["low_activity"], busy["class_executions"], busy["business_days"]) == ("N", 8, 1)
    assert (quiet["low_activity"], quiet["class_executions"], quiet["business_days"]) == ("Y", 8, 261)


def test_a_weekend_counts_as_one_business_day(world: tuple[Client, Market, Book]) -> None:
    """Saturday 2026-01-10 has no business day: the period counts as one, so its execution is not divided by 0."""
    client, _, _ = world

    (row,) = best_execution(client, start_ns=SATURDAY, end_ns=SATURDAY + DAY, account="WEEKEND").records()

    assert (row["business_days"], row["low_activity"], row["class_executions"]) == (1, "N", 1)


def test_a_venue_without_a_mic_keeps_its_name_and_an_empty_mic(world: tuple[Client, Market, Book]) -> None:
    client, _, _ = world

    rows = best_execution(client, settings=BX).records()
    bare = best_execution(client).records()

    assert {r["mic"] for r in rows if r["venue"] in ("EDGX", "MEMX")} == {""}
    assert {r["venue"]: r["mic"] for r in rows if r["venue"] in MICS} == {v: MICS[v] for v in {r["venue"] for r in rows}
                                                                         if v in MICS}  # fmt: skip
    assert {r["mic"] for r in bare} == {""} and [r["venue"] for r in bare] == [r["venue"] for r in rows]


def test_a_mic_that_is_not_iso_10383_shaped_is_refused_at_load(tmp_path: Path) -> None:
    config = tmp_path / "oms.toml"
    config.write_text('[analytics]\nvenue_mics = { XNAS = "nasdaq" }\n')

    with pytest.raises(ConfigError, match=r"analytics: Expected `str` matching regex .* at `\$.venue_mics"):
        load_analytics_settings(config)


# -- Rule 606 --


@pytest.mark.parametrize(("start", "end"), [(0, FOREVER_NS), (FROM, TO)], ids=["all", "minutes"])
def test_rule606_every_figure_equals_the_independent_computation(
    world: tuple[Client, Market, Book], start: int, end: int
) -> None:
    client, market, book = world

    report = routing(client, start_ns=start, end_ns=end, settings=BX)

    assert _diff(report, rule606(market, book, start, end), ("month", "asset_class", "rank")) == []


def test_rule606_columns_are_in_the_order_of_the_rules_report(world: tuple[Client, Market, Book]) -> None:
    client, _, _ = world

    report = routing(client, settings=BX)

    assert report.columns[: len(RULE_606_COLUMNS)] == RULE_606_COLUMNS


def test_rule606_counts_routed_orders_that_never_executed(world: tuple[Client, Market, Book]) -> None:
    """Two market orders and a limit order routed to XNAS; one market order executed. All three were routed."""
    client, _, _ = world

    (row,) = routing(client, account="R606", settings=BX).records()

    assert (row["venue"], row["routed_orders"], row["market_orders"], row["non_marketable_limit_orders"]) == (
        "XNAS", 3, 2, 1,
    )  # fmt: skip
    assert row["pct_ndo_market"] == pytest.approx(200 / 3) and row["pct_market"] == 100.0
    assert row["net_payment_market"] == pytest.approx(-10 * 150.0 * 0.3 / 1e4)  # a fee of 0.3 bps, paid
    assert row["net_payment_market_cph"] == pytest.approx(-45.0)  # $0.0045 a share: 45 cents per hundred shares


def test_rule606_judges_a_limit_against_the_side_it_would_take(world: tuple[Client, Market, Book]) -> None:
    """An ask of 150.00 and no bid: the buy at 150.00 is marketable; the sell at 149.00 has no bid to meet and the
    buy accepted 1,000 s after the last quote has no fresh one: both non-marketable and flagged."""
    client, _, _ = world

    (row,) = routing(client, account="ONESIDED", settings=BX).records()

    assert (row["marketable_limit_orders"], row["non_marketable_limit_orders"], row["unquoted_limit_orders"]) == (
        1, 2, 2,
    )  # fmt: skip
    assert (row["venue"], row["mic"], row["pct_marketable_limit"]) == ("ARCA", "ARCX", 100.0)


def test_rule606_lists_the_ten_busiest_venues_and_any_other_with_five_percent(
    world: tuple[Client, Market, Book],
) -> None:
    """Twelve venues: V11, eleventh with 2 orders of 23 (8.7 %), is listed; V12, with 1 (4.3 %), is not."""
    client, _, _ = world

    rows = routing(client, account="MANY", settings=BX).records()

    assert [(r["rank"], r["venue"]) for r in rows] == [(n, f"V{n:02}") for n in range(1, 12)]
    assert rows[-1]["pct_orders"] == pytest.approx(200 / 23) and rows[0]["routed_orders"] == 23


def test_orders_without_a_venue_are_not_routed(world: tuple[Client, Market, Book]) -> None:
    client, _, book = world
    unrouted = [a for a in book.accepted if not a.venue]

    report = routing(client, settings=BX)

    assert unrouted and sum(r["routed_orders"] for r in report.records() if r["rank"] == 1) == len(
        [a for a in book.accepted if a.venue]
    )


def test_the_store_has_the_cases_that_matter(world: tuple[Client, Market, Book]) -> None:
    client, market, book = world
    want = rule606(market, book)
    rows = routing(client, settings=BX).records()
    payments = [r[f"net_payment_{c}"] for r in want.values() for c in CATEGORIES]
    max_age = round(BX.arrival_max_age_s * SEC)
    routed = [a for a in book.accepted if a.venue]
    filled = {f.order_id for f in book.fills}

    assert min(payments) < 0 < max(payments)  # fees paid and rebates received
    assert len({r["venue"] for r in rows if r["mic"]}) >= 2 and any(not r["mic"] for r in rows)
    assert {category(market, a, max_age)[0] for a in routed} == set(CATEGORIES)
    assert {a.ord_type for a in routed} == set(OrdType)  # market, limit, stop and stop-limit
    assert any(q.bid_qty == 0 for q in market.quotes)  # one-sided books
    assert any(a.order_id not in filled for a in routed)  # routed, never executed
    assert any(category(market, a, max_age)[1] for a in routed)  # limits judged without a quote
    assert len({f.venue for f in book.fills if SCALE[f.symbol].asset_class == "equity"}) > 5  # a top five to pick


# -- the command line --


def test_oms_report_best_ex_and_routing_print_json_csv_and_a_table(
    world: tuple[Client, Market, Book], store: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Both reports through `oms report` with a config's fees and MICs: the same rows as the functions give."""
    client, _, _ = world
    config = tmp_path / "oms.toml"
    config.write_text(
        "[analytics]\nfees_bps = { XNAS = 0.3, ARCA = -0.2 }\ndefault_fee_bps = 0.1\n"
        'venue_mics = { XNAS = "XNAS", ARCA = "ARCX", BATS = "BATS", IEX = "IEXG", INTERNAL = "XOFF" }\n'
    )
    for name, run in (("best-ex", best_execution), ("routing", routing)):
        args = ["report", name, "--config", str(config), "--dsn", store, "--database", "bx"]
        want = run(client, settings=BX)

        assert main([*args, "--format", "json"]) == 0
        assert json.loads(capsys.readouterr().out) == json.loads(render(want, "json"))
        assert main([*args, "--format", "csv"]) == 0
        as_csv = list(csv.reader(io.StringIO(capsys.readouterr().out)))
        assert as_csv[0] == want.columns and len(as_csv) == 1 + len(want.rows)
        assert main(args) == 0
        table = capsys.readouterr().out.splitlines()
        assert table[0].split() == want.columns and len(table) == 2 + len(want.rows)
