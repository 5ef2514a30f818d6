import typing
from fractions import Fraction

import msgspec
import pytest

from oms.core.model.enums import CancelReason, OrdType, RejectReason, Side, TimeInForce
from oms.core.model.messages import (
    CancelOrder,
    CancelRejected,
    Command,
    Event,
    OrderAccepted,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderReplaced,
    ReplaceOrder,
    SubmitOrder,
    decoder,
    encoder,
)

TS = 1_700_000_000_123_456_789
IDS = {"order_id": 42, "cl_ord_id": "c-2", "account": "ACC1", "symbol": "AAPL"}

SAMPLES = [
    SubmitOrder("ACC1", "c-1", "AAPL", Side.BUY, OrdType.LIMIT, 100, 1234500, ts_ns=TS, session="CLIENT44"),
    SubmitOrder(
        "ACC1",
        "c-1",
        "AAPL",
        Side.SELL,
        OrdType.STOP_LIMIT,
        100,
        1234500,
        stop_price=1230000,
        tif=TimeInForce.GTD,
        display_qty=10,
        expire_ts_ns=TS + 1,
        ts_ns=TS,
    ),
    SubmitOrder("ACC1", "c-1", "AAPL", Side.BUY, OrdType.MARKET, 5, None, tif=TimeInForce.IOC),
    CancelOrder("ACC1", "c-3", "c-1", "AAPL", Side.BUY, ts_ns=TS, session="CLIENT42"),
    ReplaceOrder("ACC1", "c-2", "c-1", "AAPL", Side.BUY, 150, 1234600, ts_ns=TS),
    OrderAccepted(**IDS, side=Side.BUY, ord_type=OrdType.LIMIT, tif=TimeInForce.DAY, qty=100, price=1234500, ts_ns=TS),
    OrderRejected(**IDS, reason=RejectReason.OFF_TICK, text="price '1.001': off tick", ts_ns=TS),
    OrderFilled(
        **IDS,
        exec_id=7,
        side=Side.BUY,
        qty=30,
        price=1234500,
        leaves_qty=70,
        cum_qty=30,
        cum_notional=30 * 1234500,
        aggressor=True,
        ts_ns=TS,
        contra_order_id=41,
    ),
    OrderCanceled(**IDS, reason=CancelReason.USER, canceled_qty=70, ts_ns=TS, orig_cl_ord_id="c-1"),
    OrderReplaced(**IDS, orig_cl_ord_id="c-1", qty=150, price=1234600, leaves_qty=120, ts_ns=TS),
    OrderExpired(**IDS, expired_qty=70, ts_ns=TS),
    CancelRejected(
        **IDS,
        orig_cl_ord_id="c-1",
        reason=RejectReason.TOO_LATE_TO_CANCEL,
        text="filled",
        response_to="replace",
        ts_ns=TS,
    ),
]


def test_samples_cover_every_command_and_event_type() -> None:
    every_type = set(typing.get_args(Command)) | set(typing.get_args(Event))

    assert {type(m) for m in SAMPLES} == every_type


@pytest.mark.parametrize("message", SAMPLES, ids=lambda m: type(m).__name__)
def test_msgpack_round_trip_restores_the_same_message(message: msgspec.Struct) -> None:
    decoded = decoder.decode(encoder.encode(message))

    assert type(decoded) is type(message)
    assert decoded == message


def test_enums_decode_as_enum_members() -> None:
    decoded = decoder.decode(encoder.encode(SAMPLES[0]))

    assert decoded.side is Side.BUY
    assert decoded.tif is TimeInForce.DAY


def test_every_message_type_has_a_distinct_tag() -> None:
    tags = [msgspec.inspect.type_info(type(m)).tag for m in SAMPLES]

    assert len(set(tags)) == len({type(m) for m in SAMPLES})


def test_messages_are_immutable() -> None:
    with pytest.raises(AttributeError):
        SAMPLES[0].qty = 1  # type: ignore[misc]


def test_decoder_rejects_an_unknown_response_to() -> None:
    raw = msgspec.to_builtins(SAMPLES[-1]) | {"type": "cancel_rejected", "response_to": "submit"}

    with pytest.raises(msgspec.ValidationError, match="response_to"):
        decoder.decode(encoder.encode(raw))


def test_fill_avg_px_is_exact() -> None:
    fill = OrderFilled(
        **IDS,
        exec_id=1,
        side=Side.SELL,
        qty=1,
        price=2,
        leaves_qty=0,
        cum_qty=3,
        cum_notional=5,
        aggressor=False,
        ts_ns=0,
    )

    assert fill.avg_px == Fraction(5, 3)
