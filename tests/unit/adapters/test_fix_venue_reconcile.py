"""How the FIX venue adapter reconciles: the venue's answers to its status requests, and fill reports it gets twice.

The adapter's QuickFIX initiator is built but never started; what it would send is captured instead, and the
venue's answers are handed to it as the messages QuickFIX would deliver."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from fix_gateway import tags as T
from fix_gateway.client import Received
from fix_gateway.settings import FixVenueSettings
from fix_gateway.venue import FixVenue
from oms.core.model.enums import CancelReason, OrdType, RejectReason, Side, TimeInForce
from oms.core.model.instruments import InstrumentRegistry
from oms.core.model.messages import (
    CancelOrder,
    Message,
    OrderAccepted,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    SubmitOrder,
)

INSTRUMENTS = InstrumentRegistry.load(Path(__file__).parents[3] / "configs" / "instruments.toml")
ORDER = 7


class Harness:
    def __init__(self, tmp: Path, begin_string: str = "FIX.4.4") -> None:
        settings = FixVenueSettings(port=1, begin_string=begin_string, data_dir=str(tmp))  # type: ignore[arg-type]
        self.venue = FixVenue("EXCH", INSTRUMENTS, settings, exec_id_base=1000, clock=lambda: 5)
        self.sent: list[tuple[str, dict[int, str]]] = []
        self.venue._send = lambda msg_type, fields: self.sent.append((msg_type, dict(fields))) or True  # type: ignore[method-assign]
        self.steps: list[Callable[[], list[Message]]] = []
        self.venue._apply = self.steps.append

    def adopt(self, cum_qty: int = 0, cum_notional: int = 0, replaced: bool = False) -> None:
        """Order ORDER (buy 100 MSFT at 300) is the venue's, as a restart's `recover` hands it over."""
        cmd = SubmitOrder("ACC1", "c1", "MSFT", Side.BUY, OrdType.LIMIT, 100, 300_0000, tif=TimeInForce.DAY)
        self.venue.recover(ORDER, cmd, cum_qty, cum_notional, 1, replaced)

    def route(self) -> None:
        cmd = SubmitOrder("ACC1", "c1", "MSFT", Side.BUY, OrdType.LIMIT, 100, 300_0000, tif=TimeInForce.DAY)
        self.venue._client.logged_on.set()
        assert self.venue.submit(ORDER, cmd, 1) == []

    def synced(self) -> None:
        """The session caught up after a logon: the adapter asks its questions."""
        self.venue._on_synced()
        assert self.steps.pop()() == []

    def answer(self, **fields: str) -> list[Message]:
        msg = Received({T.MSG_TYPE: "8", T.CL_ORD_ID: str(ORDER), **{getattr(T, k): v for k, v in fields.items()}})
        return self.venue._translate(msg)


@pytest.fixture
def h(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


def test_each_logon_asks_the_status_of_every_order_the_venue_holds(h: Harness) -> None:
    h.adopt()
    h.synced()
    assert h.sent == [("H", {T.CL_ORD_ID: "7", T.SYMBOL: "MSFT", T.SIDE: "1"})]


def test_an_order_the_venue_no_longer_knows_is_canceled_venue_lost(h: Harness) -> None:
    h.adopt(cum_qty=30, cum_notional=30 * 300_0000)
    h.synced()
    (event,) = h.answer(EXEC_TYPE="I", ORD_STATUS="8", ORD_REJ_REASON="5", CUM_QTY="0", AVG_PX="0")
    assert isinstance(event, OrderCanceled)
    assert (event.reason, event.canceled_qty, event.cl_ord_id) == (CancelReason.VENUE_LOST, 70, "c1")
    # the order is no longer the venue's: a later word about it changes nothing
    assert h.answer(EXEC_TYPE="F", EXEC_ID="x9", LAST_QTY="10", LAST_PX="300", LEAVES_QTY="60", CUM_QTY="40") == []


def test_an_order_never_acknowledged_that_the_venue_does_not_know_is_rejected(h: Harness) -> None:
    h.route()
    h.synced()
    (event,) = h.answer(EXEC_TYPE="I", ORD_STATUS="8", ORD_REJ_REASON="5", CUM_QTY="0", AVG_PX="0")
    assert isinstance(event, OrderRejected) and event.reason is RejectReason.VENUE_REJECTED
    assert event.text == "venue EXCH does not know the order"


def test_fills_the_venue_reports_beyond_what_was_counted_are_booked_at_their_average_price(h: Harness) -> None:
    h.adopt(cum_qty=30, cum_notional=30 * 300_0000)  # 30 at 300.00 known
    h.synced()
    # the venue says 80 filled at an average of 300.125: the 50 missing ones cost 300.20
    (fill,) = h.answer(EXEC_TYPE="I", ORD_STATUS="1", CUM_QTY="80", LEAVES_QTY="20", AVG_PX="300.125")
    assert isinstance(fill, OrderFilled)
    assert (fill.qty, fill.price, fill.leaves_qty, fill.cum_qty) == (50, 300_2000, 20, 80)
    assert fill.cum_notional == 30 * 300_0000 + 50 * 300_2000 and fill.exec_id == 1001


def test_a_canceled_or_expired_answer_ends_the_order_after_its_missing_fills(h: Harness) -> None:
    h.adopt()
    h.synced()
    fill, canceled = h.answer(EXEC_TYPE="I", ORD_STATUS="4", CUM_QTY="10", LEAVES_QTY="0", AVG_PX="299")
    assert isinstance(fill, OrderFilled) and (fill.qty, fill.price) == (10, 299_0000)
    assert isinstance(canceled, OrderCanceled) and (canceled.reason, canceled.canceled_qty) == (CancelReason.VENUE, 90)

    h.adopt()
    h.synced()
    (expired,) = h.answer(EXEC_TYPE="I", ORD_STATUS="C", CUM_QTY="0", LEAVES_QTY="0", AVG_PX="0")
    assert isinstance(expired, OrderExpired)


def test_a_working_answer_changes_nothing(h: Harness) -> None:
    h.adopt(cum_qty=30, cum_notional=30 * 300_0000)
    h.synced()
    assert h.answer(EXEC_TYPE="I", ORD_STATUS="1", CUM_QTY="30", LEAVES_QTY="70", AVG_PX="300") == []


def test_a_working_answer_acknowledges_an_order_not_yet_acknowledged(h: Harness) -> None:
    h2 = h
    h2.route()
    h2.synced()
    (ack,) = h2.answer(EXEC_TYPE="I", ORD_STATUS="0", CUM_QTY="0", LEAVES_QTY="100", AVG_PX="0")
    assert isinstance(ack, OrderAccepted)


def test_an_answer_not_asked_for_or_resent_changes_nothing(h: Harness) -> None:
    h.adopt()
    assert h.answer(EXEC_TYPE="I", ORD_STATUS="8", ORD_REJ_REASON="5", CUM_QTY="0", AVG_PX="0") == []
    h.synced()
    resent = h.answer(EXEC_TYPE="I", ORD_STATUS="8", ORD_REJ_REASON="5", CUM_QTY="0", AVG_PX="0", POSS_DUP_FLAG="Y")
    assert resent == []


def test_fix42_status_answers_are_told_by_their_exec_trans_type(tmp_path: Path) -> None:
    h = Harness(tmp_path, "FIX.4.2")
    h.adopt()
    h.synced()
    # FIX 4.2 answers with ExecType = OrdStatus: a PartiallyFilled status is not a new fill of LastShares
    (fill,) = h.answer(EXEC_TRANS_TYPE="3", EXEC_TYPE="1", ORD_STATUS="1", CUM_QTY="10", LEAVES_QTY="90",
                       AVG_PX="300", LAST_QTY="10", LAST_PX="300")  # fmt: skip
    assert isinstance(fill, OrderFilled) and fill.qty == 10
    assert h.answer(EXEC_TRANS_TYPE="3", EXEC_TYPE="1", ORD_STATUS="1", CUM_QTY="10", LEAVES_QTY="90",
                    AVG_PX="300", LAST_QTY="10", LAST_PX="300") == []  # fmt: skip


def test_a_fill_counted_before_a_restart_and_resent_after_it_is_applied_once(h: Harness) -> None:
    h.adopt(cum_qty=30, cum_notional=30 * 300_0000)  # the journal counted a fill of 30
    again = h.answer(EXEC_TYPE="F", EXEC_ID="v1", LAST_QTY="30", LAST_PX="300", LEAVES_QTY="70", CUM_QTY="30",
                     POSS_DUP_FLAG="Y")  # fmt: skip
    assert again == []
    (new,) = h.answer(EXEC_TYPE="F", EXEC_ID="v2", LAST_QTY="5", LAST_PX="300", LEAVES_QTY="65", CUM_QTY="35")
    assert isinstance(new, OrderFilled) and (new.qty, new.cum_qty) == (5, 35)


def test_a_cancel_reject_for_an_unknown_order_asks_its_status(h: Harness) -> None:
    h.adopt()
    h.venue._client.logged_on.set()
    h.venue.cancel(ORDER, CancelOrder("ACC1", "x1", "c1", "MSFT", Side.BUY), 2)
    venue_cl = h.sent[-1][1][T.CL_ORD_ID]
    msg = Received({T.MSG_TYPE: "9", T.CL_ORD_ID: venue_cl, T.ORIG_CL_ORD_ID: "7", T.CXL_REJ_REASON: "1"})
    (cancel_rejected,) = h.venue._translate(msg)
    assert cancel_rejected.reason is RejectReason.TOO_LATE_TO_CANCEL
    assert h.sent[-1] == ("H", {T.CL_ORD_ID: "7", T.SYMBOL: "MSFT", T.SIDE: "1"})
    (canceled,) = h.answer(EXEC_TYPE="I", ORD_STATUS="8", ORD_REJ_REASON="5", CUM_QTY="0", AVG_PX="0")
    assert isinstance(canceled, OrderCanceled) and canceled.reason is CancelReason.VENUE_LOST


def test_an_order_replaced_in_an_earlier_run_is_not_ended_by_an_unknown_answer_to_its_first_id(h: Harness) -> None:
    h.adopt(replaced=True)  # the venue may know it only by a replace's ClOrdID, which no journal holds
    h.synced()
    assert h.answer(EXEC_TYPE="I", ORD_STATUS="8", ORD_REJ_REASON="5", CUM_QTY="0", AVG_PX="0") == []
    assert h.venue._orders  # still working, its exposure held


def test_requests_for_an_order_taken_over_from_an_earlier_run_get_ids_no_earlier_run_used(h: Harness) -> None:
    h.adopt()
    h.venue._client.logged_on.set()
    h.venue.cancel(ORDER, CancelOrder("ACC1", "x1", "c1", "MSFT", Side.BUY), 2)
    assert h.sent[-1][1][T.CL_ORD_ID] == "7-1000.1"  # `<order id>-<this start's id base>.<n>`
