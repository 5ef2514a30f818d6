"""Micro-benchmark of the FIX 4.4 codec round trip: a NewOrderSingle built with QuickFIX is decoded into a
SubmitOrder (`Fix44Codec.new_order`), and the ExecutionReport(New) of its acceptance is encoded and serialized
(`Fix44Codec.report`, then its QuickFIX message's `toString`).

After timing, the benchmark checks the command and the report (read back from the wire text). The times are
reported, never asserted. See the figures with `pytest tests/perf --benchmark-only`; a plain `pytest` runs it briefly
(bounded rounds) and `--benchmark-disable` runs the round trip once, still checked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import quickfix as fix
import quickfix44
from pytest_benchmark.fixture import BenchmarkFixture

from fix_gateway import tags as T
from fix_gateway.codec import Refusal
from fix_gateway.fix44 import Fix44Codec
from fix_gateway.settings import SessionSpec
from oms.core.model.enums import OrdType, Side, TimeInForce
from oms.core.model.instruments import InstrumentRegistry
from oms.core.model.messages import OrderAccepted, SubmitOrder
from oms.core.orders import Order

INSTRUMENTS = InstrumentRegistry.load(Path(__file__).resolve().parents[2] / "configs" / "instruments.toml")
SPEC = SessionSpec("FIX.4.4", "OMS", "CLIENT44", ("ACC2",), None, False, {})
NOW = 1_767_225_600_000_000_000  # 2026-01-01 00:00:00 UTC
ORDER_ID = 7


def new_order_single() -> Any:
    """A FIX 4.4 NewOrderSingle: buy 100 AAPL, limit 150.25, day, on the session's default account."""
    msg = quickfix44.NewOrderSingle()
    for tag, value in (
        (T.CL_ORD_ID, "n1"), (T.HANDL_INST, "1"), (T.SYMBOL, "AAPL"), (T.SIDE, "1"), (T.ORDER_QTY, "100"),
        (T.ORD_TYPE, "2"), (T.PRICE, "150.25"), (T.TIME_IN_FORCE, "0"), (T.TRANSACT_TIME, "20260101-00:00:00.000"),
    ):  # fmt: skip
        msg.setField(tag, value)
    return msg


def round_trip(codec: Fix44Codec, nos: Any) -> tuple[SubmitOrder, str]:
    """The command `nos` decodes to, and the wire text of the ExecutionReport that acknowledges it."""
    cmd = codec.new_order(nos, NOW)
    if isinstance(cmd, Refusal):
        raise AssertionError(f"the NewOrderSingle was refused: {cmd}")
    order = Order(ORDER_ID, cmd.cl_ord_id, cmd.account, cmd.symbol, cmd.side, cmd.ord_type, cmd.tif, cmd.qty, cmd.price)
    order.on_accepted()
    ack = OrderAccepted(
        ORDER_ID, cmd.cl_ord_id, cmd.account, cmd.symbol, cmd.side, cmd.ord_type, cmd.tif, cmd.qty, cmd.price, NOW
    )
    report = codec.report(ack, order.view(), order, "E1")
    assert report is not None
    return cmd, report.message().toString()


def test_new_order_single_to_submit_order_to_execution_report(benchmark: BenchmarkFixture) -> None:
    codec, nos = Fix44Codec(INSTRUMENTS, SPEC), new_order_single()

    cmd, wire = benchmark.pedantic(round_trip, args=(codec, nos), rounds=2_000, warmup_rounds=20)

    assert cmd == SubmitOrder(
        "ACC2", "n1", "AAPL", Side.BUY, OrdType.LIMIT, 100, 1_502_500, tif=TimeInForce.DAY, ts_ns=NOW, session=SPEC.name
    )
    er = fix.Message(wire, False)
    header = er.getHeader()
    assert (header.getField(T.BEGIN_STRING), header.getField(T.MSG_TYPE)) == ("FIX.4.4", T.MT_EXECUTION_REPORT)
    assert [er.getField(t) for t in (T.ORDER_ID, T.CL_ORD_ID, T.EXEC_ID, T.EXEC_TYPE, T.ORD_STATUS)] == [
        str(ORDER_ID), "n1", "E1", "0", "0"
    ]  # fmt: skip
    assert [er.getField(t) for t in (T.ACCOUNT, T.SYMBOL, T.SIDE, T.ORDER_QTY, T.PRICE)] == [
        "ACC2", "AAPL", "1", "100", "150.25"
    ]  # fmt: skip
    assert [er.getField(t) for t in (T.LEAVES_QTY, T.CUM_QTY, T.AVG_PX)] == ["100", "0", "0"]
