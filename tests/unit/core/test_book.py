"""One contract, two engines: every behaviour of the matching core, run against the native and the reference engine."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from native import CMD_CANCEL, CMD_DTYPE, CMD_NEW, CMD_REPLACE, EVENT_FIELDS, MatchingEngine, ReferenceEngine
from oms.core.model.enums import BookEventKind as K
from oms.core.model.enums import CancelReason as C
from oms.core.model.enums import OrdType, Side, StpMode
from oms.core.model.enums import RejectReason as R
from oms.core.model.enums import TimeInForce as T

SYM = 7
TICK = 5
LOT = 10
BUY, SELL = Side.BUY, Side.SELL
LMT, MKT, STP, STL = OrdType.LIMIT, OrdType.MARKET, OrdType.STOP, OrdType.STOP_LIMIT


def ev(e: tuple) -> dict:
    return dict(zip(EVENT_FIELDS, e, strict=True))


def kinds(events: list) -> list[K]:
    return [K(e[0]) for e in events]


class BookContract:
    """Behaviour both engines must show. Subclasses provide `make`."""

    make: Callable[..., object]

    @pytest.fixture
    def book(self):
        return self.book_with(StpMode.CANCEL_RESTING)

    def book_with(self, stp: StpMode):
        engine = self.make(stp)
        engine.add_symbol(SYM, tick=TICK, lot=LOT)
        return engine

    @staticmethod
    def limit(book, oid, side, qty, price, account=1, tif=T.GTC, display=0):
        return book.submit(oid, account, SYM, side, LMT, tif, qty, price, 0, display)

    # -- acceptance and resting --

    def test_limit_that_does_not_cross_rests_and_is_accepted(self, book):
        events = self.limit(book, 1, BUY, 100, 1000)

        assert kinds(events) == [K.ACCEPTED]
        assert ev(events[0]) | {"exec_id": 0} == dict(
            kind=K.ACCEPTED, symbol=SYM, order_id=1, other_id=0, side=BUY, price=1000, qty=100, leaves=100,
            exec_id=0, reason=0, aggressor=0,
        )  # fmt: skip
        assert book.snapshot(SYM) == [(BUY, 1000, 1, 100, 100)]
        assert book.open_orders() == 1

    def test_better_price_trades_first_then_time_priority_within_a_level(self, book):
        self.limit(book, 1, SELL, 10, 1010, account=2)
        self.limit(book, 2, SELL, 10, 1005, account=3)
        self.limit(book, 3, SELL, 10, 1005, account=4)

        events = self.limit(book, 4, BUY, 30, 1010)

        makers = [e[2] for e in events if e[0] == K.FILL and e[10] == 0]
        assert makers == [2, 3, 1]
        assert [e[5] for e in events if e[0] == K.TRADE] == [1005, 1005, 1010]
        assert book.snapshot(SYM) == []

    def test_a_match_reports_both_sides_with_unique_exec_ids_and_a_trade_print(self, book):
        self.limit(book, 1, SELL, 50, 1000, account=2)

        events = self.limit(book, 2, BUY, 20, 1000)

        assert kinds(events) == [K.ACCEPTED, K.FILL, K.FILL, K.TRADE]
        taker, maker, trade = (ev(e) for e in events[1:])
        assert (taker["order_id"], taker["other_id"], taker["aggressor"], taker["leaves"]) == (2, 1, 1, 0)
        assert (maker["order_id"], maker["other_id"], maker["aggressor"], maker["leaves"]) == (1, 2, 0, 30)
        assert (trade["order_id"], trade["other_id"], trade["side"], trade["price"], trade["qty"]) == (
            2,
            1,
            BUY,
            1000,
            20,
        )
        assert len({e[8] for e in events}) == len(events)
        assert book.last_price(SYM) == 1000

    def test_taker_trades_at_the_makers_price(self, book):
        self.limit(book, 1, BUY, 10, 1000, account=2)

        events = self.limit(book, 2, SELL, 10, 950)

        assert [e[5] for e in events if e[0] == K.FILL] == [1000, 1000]

    # -- market, IOC, FOK --

    def test_market_order_sweeps_levels_and_cancels_the_rest_for_lack_of_liquidity(self, book):
        self.limit(book, 1, SELL, 10, 1000, account=2)
        self.limit(book, 2, SELL, 10, 1005, account=2)

        events = book.submit(3, 1, SYM, BUY, MKT, T.DAY, 30)

        assert kinds(events) == [K.ACCEPTED, K.FILL, K.FILL, K.TRADE, K.FILL, K.FILL, K.TRADE, K.CANCELED]
        assert ev(events[-1])["qty"] == 10
        assert ev(events[-1])["reason"] == C.NO_LIQUIDITY
        assert book.open_orders() == 0

    def test_ioc_remainder_is_canceled_not_rested(self, book):
        self.limit(book, 1, SELL, 10, 1000, account=2)

        events = self.limit(book, 2, BUY, 30, 1000, tif=T.IOC)

        assert ev(events[-1])["kind"] == K.CANCELED
        assert ev(events[-1])["reason"] == C.IOC
        assert ev(events[-1])["qty"] == 20
        assert book.snapshot(SYM) == []

    def test_fok_that_cannot_fill_entirely_is_rejected_and_touches_nothing(self, book):
        self.limit(book, 1, SELL, 10, 1000, account=2)
        self.limit(book, 2, SELL, 10, 1010, account=2)

        events = self.limit(book, 3, BUY, 20, 1005, tif=T.FOK)

        assert kinds(events) == [K.REJECTED]
        assert ev(events[0])["reason"] == R.FOK_UNFILLABLE
        assert book.snapshot(SYM) == [(SELL, 1000, 1, 10, 10), (SELL, 1010, 2, 10, 10)]

    def test_fok_that_can_fill_fills_completely(self, book):
        self.limit(book, 1, SELL, 10, 1000, account=2)
        self.limit(book, 2, SELL, 10, 1010, account=2)

        events = self.limit(book, 3, BUY, 20, 1010, tif=T.FOK)

        assert sum(e[6] for e in events if e[0] == K.FILL and e[2] == 3) == 20
        assert book.snapshot(SYM) == []

    # -- stops --

    def test_buy_stop_waits_for_last_trade_at_or_above_its_stop_then_trades_at_market(self, book):
        book.submit(1, 1, SYM, BUY, STP, T.GTC, 10, 0, 1010)
        self.limit(book, 2, SELL, 10, 1005, account=2)
        self.limit(book, 3, SELL, 10, 1020, account=2)
        assert book.snapshot(SYM)[-1] == (BUY, 1010, 1, 10, 0)

        self.limit(book, 4, BUY, 10, 1005, account=3)  # last = 1005: below the stop
        assert book.order(1) is not None
        events = self.limit(book, 5, SELL, 10, 1010, account=3)
        events += self.limit(book, 6, BUY, 10, 1010, account=4)  # last = 1010: triggers

        trig = [ev(e) for e in events if e[0] == K.TRIGGERED]
        assert [(t["order_id"], t["price"]) for t in trig] == [(1, 1010)]
        fills = [ev(e) for e in events if e[0] == K.FILL and e[2] == 1]
        assert [(f["price"], f["qty"]) for f in fills] == [(1020, 10)]

    def test_sell_stop_limit_rests_at_its_limit_after_triggering(self, book):
        book.submit(1, 1, SYM, SELL, STL, T.GTC, 10, 990, 995)
        self.limit(book, 2, BUY, 10, 995, account=2)

        events = self.limit(book, 3, SELL, 10, 995, account=3)

        assert K.TRIGGERED in kinds(events)
        assert book.snapshot(SYM) == [(SELL, 990, 1, 10, 10)]

    def test_stop_already_beyond_last_trade_fires_on_arrival(self, book):
        self.limit(book, 1, SELL, 10, 1000, account=2)
        self.limit(book, 2, BUY, 10, 1000, account=3)
        self.limit(book, 3, SELL, 10, 1005, account=2)

        events = book.submit(4, 1, SYM, BUY, STP, T.GTC, 10, 0, 995)

        assert kinds(events)[:2] == [K.ACCEPTED, K.TRIGGERED]
        assert [e[5] for e in events if e[0] == K.TRADE] == [1005]

    def test_stops_triggered_together_fire_in_arrival_order_and_cascade(self, book):
        book.submit(1, 1, SYM, BUY, STP, T.GTC, 10, 0, 1000)
        book.submit(2, 5, SYM, BUY, STP, T.GTC, 10, 0, 995)
        book.submit(3, 6, SYM, BUY, STP, T.GTC, 10, 0, 1005)
        for oid, px in ((4, 1000), (5, 1005), (6, 1010), (7, 1015)):
            self.limit(book, oid, SELL, 10, px, account=2)

        events = self.limit(book, 8, BUY, 10, 1000, account=3)  # last = 1000 triggers 1 and 2, not 3

        assert [e[2] for e in events if e[0] == K.TRIGGERED] == [1, 2, 3]
        assert [(e[2], e[5]) for e in events if e[0] == K.TRADE] == [(8, 1000), (1, 1005), (2, 1010), (3, 1015)]
        assert book.snapshot(SYM) == []

    # -- icebergs --

    def test_iceberg_shows_only_its_display_qty_in_depth(self, book):
        self.limit(book, 1, SELL, 100, 1000, display=20)

        _, asks = book.l2(SYM, 2)

        assert asks[0].tolist() == [1000, 20, 1]
        assert book.l1(SYM) == (0, 0, 1000, 20)

    def test_replenished_iceberg_slice_goes_to_the_back_of_the_level(self, book):
        self.limit(book, 1, SELL, 100, 1000, account=2, display=20)
        self.limit(book, 2, SELL, 30, 1000, account=3)

        self.limit(book, 3, BUY, 20, 1000)  # consumes the shown slice

        assert [r[2] for r in book.snapshot(SYM)] == [2, 1]
        assert book.snapshot(SYM)[1] == (SELL, 1000, 1, 80, 20)

    def test_aggressor_reaches_hidden_iceberg_qty_through_refills(self, book):
        self.limit(book, 1, SELL, 100, 1000, account=2, display=20)
        self.limit(book, 2, SELL, 10, 1000, account=3)

        events = self.limit(book, 3, BUY, 60, 1000)

        makers = [(e[2], e[6]) for e in events if e[0] == K.FILL and e[10] == 0]
        assert makers == [(1, 20), (2, 10), (1, 20), (1, 10)]
        assert book.snapshot(SYM) == [(SELL, 1000, 1, 50, 10)]

    # -- cancel and replace --

    def test_cancel_takes_the_order_off_the_book(self, book):
        self.limit(book, 1, BUY, 100, 1000)

        events = book.cancel(1)

        assert kinds(events) == [K.CANCELED]
        assert (ev(events[0])["qty"], ev(events[0])["reason"]) == (100, C.USER)
        assert book.snapshot(SYM) == []
        assert book.l2(SYM, 1)[0].tolist() == [[0, 0, 0]]

    def test_cancel_of_an_unknown_order_is_rejected_with_a_reason(self, book):
        events = book.cancel(42)

        assert kinds(events) == [K.CANCEL_REJECTED]
        assert ev(events[0])["reason"] == R.UNKNOWN_ORDER

    def test_cancel_of_a_waiting_stop_removes_it(self, book):
        book.submit(1, 1, SYM, BUY, STP, T.GTC, 10, 0, 1010)

        assert kinds(book.cancel(1)) == [K.CANCELED]
        assert book.snapshot(SYM) == []

    def test_replace_that_lowers_qty_keeps_time_priority(self, book):
        self.limit(book, 1, BUY, 100, 1000)
        self.limit(book, 2, BUY, 100, 1000)

        events = book.replace(1, 50, 1000)

        assert kinds(events) == [K.REPLACED]
        assert book.snapshot(SYM) == [(BUY, 1000, 1, 50, 50), (BUY, 1000, 2, 100, 100)]

    def test_replace_that_raises_qty_loses_time_priority(self, book):
        self.limit(book, 1, BUY, 100, 1000)
        self.limit(book, 2, BUY, 100, 1000)

        book.replace(1, 150, 1000)

        assert [r[2] for r in book.snapshot(SYM)] == [2, 1]

    def test_replace_that_changes_price_loses_priority_and_may_trade(self, book):
        self.limit(book, 1, SELL, 10, 1010, account=2)
        self.limit(book, 2, BUY, 30, 1000)

        events = book.replace(2, 30, 1010)

        assert kinds(events) == [K.REPLACED, K.FILL, K.FILL, K.TRADE]
        assert book.snapshot(SYM) == [(BUY, 1010, 2, 20, 20)]

    def test_replace_qty_is_the_new_total_including_what_was_filled(self, book):
        self.limit(book, 1, BUY, 100, 1000)
        self.limit(book, 2, SELL, 40, 1000, account=2)

        events = book.replace(1, 70, 1000)

        assert ev(events[0])["leaves"] == 30
        assert book.order(1) == (BUY, 1000, 30, 40, 30)

    def test_replace_below_the_filled_qty_is_rejected(self, book):
        self.limit(book, 1, BUY, 100, 1000)
        self.limit(book, 2, SELL, 40, 1000, account=2)

        events = book.replace(1, 40, 1000)

        assert kinds(events) == [K.REPLACE_REJECTED]
        assert ev(events[0])["reason"] == R.QTY_BELOW_FILLED
        assert book.order(1) == (BUY, 1000, 60, 40, 60)

    @pytest.mark.parametrize(
        ("oid", "qty", "price", "reason"),
        [(99, 10, 1000, R.UNKNOWN_ORDER), (1, 0, 1000, R.INVALID_QTY), (1, 15, 1000, R.INVALID_QTY),
         (1, 10, 1001, R.INVALID_PRICE), (1, 10, 0, R.INVALID_PRICE)],
    )  # fmt: skip
    def test_bad_replace_is_rejected_with_its_reason(self, book, oid, qty, price, reason):
        self.limit(book, 1, BUY, 100, 1000)

        events = book.replace(oid, qty, price)

        assert kinds(events) == [K.REPLACE_REJECTED]
        assert ev(events[0])["reason"] == reason
        assert book.snapshot(SYM) == [(BUY, 1000, 1, 100, 100)]

    # -- self-trade prevention --

    def test_stp_cancel_resting_cancels_own_order_and_keeps_matching(self):
        book = self.book_with(StpMode.CANCEL_RESTING)
        self.limit(book, 1, SELL, 10, 1000, account=1)
        self.limit(book, 2, SELL, 10, 1000, account=2)

        events = self.limit(book, 3, BUY, 10, 1000, account=1)

        assert kinds(events) == [K.ACCEPTED, K.CANCELED, K.FILL, K.FILL, K.TRADE]
        assert (events[1][2], events[1][9]) == (1, C.SELF_TRADE)

    def test_stp_cancel_incoming_cancels_the_aggressor_remainder(self):
        book = self.book_with(StpMode.CANCEL_INCOMING)
        self.limit(book, 1, SELL, 10, 1000, account=2)
        self.limit(book, 2, SELL, 10, 1000, account=1)

        events = self.limit(book, 3, BUY, 30, 1000, account=1)

        assert kinds(events) == [K.ACCEPTED, K.FILL, K.FILL, K.TRADE, K.CANCELED]
        assert (events[-1][2], events[-1][6], events[-1][9]) == (3, 20, C.SELF_TRADE)
        assert book.snapshot(SYM) == [(SELL, 1000, 2, 10, 10)]

    def test_stp_cancel_both_cancels_resting_and_incoming(self):
        book = self.book_with(StpMode.CANCEL_BOTH)
        self.limit(book, 1, SELL, 10, 1000, account=1)

        events = self.limit(book, 2, BUY, 30, 1000, account=1)

        assert kinds(events) == [K.ACCEPTED, K.CANCELED, K.CANCELED]
        assert [e[2] for e in events[1:]] == [1, 2]
        assert book.snapshot(SYM) == []

    def test_stp_none_lets_an_account_trade_with_itself(self):
        book = self.book_with(StpMode.NONE)
        self.limit(book, 1, SELL, 10, 1000, account=1)

        assert K.TRADE in kinds(self.limit(book, 2, BUY, 10, 1000, account=1))

    def test_fok_counts_only_liquidity_it_may_trade_with(self):
        book = self.book_with(StpMode.CANCEL_INCOMING)
        self.limit(book, 1, SELL, 10, 1000, account=1)
        self.limit(book, 2, SELL, 10, 1000, account=2)

        events = self.limit(book, 3, BUY, 10, 1000, account=1, tif=T.FOK)

        assert ev(events[0])["reason"] == R.FOK_UNFILLABLE

    # -- bad input --

    @pytest.mark.parametrize(
        ("kwargs", "reason"),
        [
            ({"symbol": 999}, R.UNKNOWN_SYMBOL),
            ({"qty": 0}, R.INVALID_QTY),
            ({"qty": -10}, R.INVALID_QTY),
            ({"qty": 15}, R.INVALID_QTY),
            ({"price": 1003}, R.INVALID_PRICE),
            ({"price": 0}, R.INVALID_PRICE),
            ({"price": -1000}, R.INVALID_PRICE),
            ({"side": 3}, R.INVALID_SIDE),
            ({"ord_type": 9}, R.INVALID_ORD_TYPE),
            ({"tif": 2}, R.INVALID_TIF),
            ({"order_id": 0}, R.INVALID_ORDER_ID),
            ({"order_id": 1}, R.DUPLICATE_ORDER_ID),
            ({"display_qty": 15}, R.INVALID_DISPLAY_QTY),
            ({"display_qty": 100}, R.INVALID_DISPLAY_QTY),
            ({"display_qty": 10, "tif": T.IOC}, R.INVALID_DISPLAY_QTY),
            ({"ord_type": MKT}, R.INVALID_PRICE),
            ({"ord_type": MKT, "price": 0, "tif": T.GTC}, R.INVALID_TIF),
            ({"stop_price": 1000}, R.INVALID_STOP_PRICE),
            ({"ord_type": STP, "price": 0, "stop_price": 0}, R.INVALID_STOP_PRICE),
            ({"ord_type": STL, "stop_price": 1002}, R.INVALID_STOP_PRICE),
        ],
    )
    def test_bad_order_is_rejected_with_a_specific_reason_and_books_nothing(self, book, kwargs, reason):
        self.limit(book, 1, BUY, 10, 900)
        order = dict(order_id=2, account=1, symbol=SYM, side=BUY, ord_type=LMT, tif=T.GTC, qty=100, price=1000,
                     stop_price=0, display_qty=0) | kwargs  # fmt: skip

        events = book.submit(**order)

        assert kinds(events) == [K.REJECTED]
        assert ev(events[0])["reason"] == reason
        assert book.snapshot(SYM) == [(BUY, 900, 1, 10, 10)]

    # -- end of day, queries, batch --

    def test_end_of_day_expires_day_orders_and_keeps_gtc(self, book):
        self.limit(book, 3, BUY, 10, 1000, tif=T.DAY)
        self.limit(book, 1, BUY, 10, 995, tif=T.GTC)
        book.submit(2, 1, SYM, SELL, STP, T.DAY, 10, 0, 900)

        events = book.end_of_day()

        assert [(e[0], e[2], e[9]) for e in events] == [(K.EXPIRED, 2, C.EXPIRED), (K.EXPIRED, 3, C.EXPIRED)]
        assert book.snapshot(SYM) == [(BUY, 995, 1, 10, 10)]

    def test_l2_aggregates_levels_best_first(self, book):
        for oid, px in ((1, 1000), (2, 1005), (3, 1005)):
            self.limit(book, oid, BUY, 10, px)
        self.limit(book, 4, SELL, 20, 1020)

        bids, asks = book.l2(SYM, 3)

        assert bids.tolist() == [[1005, 20, 2], [1000, 10, 1], [0, 0, 0]]
        assert asks.tolist() == [[1020, 20, 1], [0, 0, 0], [0, 0, 0]]
        assert book.l1(SYM) == (1005, 20, 1020, 20)

    def test_batch_api_gives_the_same_events_as_single_calls(self, book):
        single = self.book_with(StpMode.CANCEL_RESTING)
        rows = [
            (CMD_NEW, 1, 1, SYM, SELL, LMT, T.GTC, 50, 1000, 0, 0),
            (CMD_NEW, 2, 2, SYM, BUY, LMT, T.GTC, 20, 1000, 0, 0),
            (CMD_REPLACE, 1, 0, 0, 0, 0, 0, 60, 1005, 0, 0),
            (CMD_CANCEL, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0),
            (CMD_NEW, 3, 2, SYM, BUY, MKT, T.IOC, 50, 0, 0, 0),
        ]
        expected = single.submit(1, 1, SYM, SELL, LMT, T.GTC, 50, 1000)
        expected += single.submit(2, 2, SYM, BUY, LMT, T.GTC, 20, 1000)
        expected += single.replace(1, 60, 1005)
        expected += single.cancel(9)
        expected += single.submit(3, 2, SYM, BUY, MKT, T.IOC, 50)

        out = book.process(np.array(rows, dtype=CMD_DTYPE))

        assert out.tolist() == expected

    def test_thousands_of_orders_stay_findable_through_interleaved_cancels(self, book):
        rng = np.random.default_rng(3)
        ids = rng.permutation(np.arange(1, 20_001) * 7919)  # spread ids so the id map sees collisions and wraps
        for i, oid in enumerate(ids.tolist()):
            self.limit(book, oid, BUY if i % 2 else SELL, 10, 1000 - TICK if i % 2 else 1000 + TICK)
        gone = set(ids[rng.random(len(ids)) < 0.6].tolist())

        results = [book.cancel(oid) for oid in ids.tolist() if oid in gone]

        assert all(kinds(r) == [K.CANCELED] for r in results)
        assert book.open_orders() == len(ids) - len(gone)
        assert all((book.order(oid) is None) == (oid in gone) for oid in ids.tolist())
        assert kinds(book.cancel(next(iter(gone)))) == [K.CANCEL_REJECTED]

    def test_batch_with_an_unknown_op_is_refused(self, book):
        with pytest.raises(ValueError, match="unknown batch op"):
            book.process(np.array([(9, 1, 1, SYM, BUY, LMT, T.GTC, 10, 1000, 0, 0)], dtype=CMD_DTYPE))


class TestNativeEngine(BookContract):
    make = staticmethod(lambda stp: MatchingEngine(stp))

    def test_batch_of_the_wrong_dtype_is_refused(self):
        with pytest.raises(TypeError, match="CMD_DTYPE"):
            MatchingEngine().process(np.zeros(3, dtype=np.int64))


class TestReferenceEngine(BookContract):
    make = staticmethod(lambda stp: ReferenceEngine(stp))
