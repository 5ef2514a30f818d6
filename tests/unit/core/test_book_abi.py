"""The native engine's C constants must equal the model's enum values: they are one ABI."""

from __future__ import annotations

import pytest

from native import _book
from oms.core.model.enums import BookEventKind, CancelReason, OrdType, RejectReason, Side, StpMode, TimeInForce

PREFIXES = {"K_": BookEventKind, "R_": RejectReason, "C_": CancelReason, "STP_": StpMode}
PLAIN = (Side, OrdType, TimeInForce)


@pytest.mark.parametrize(("name", "value"), sorted(_book.ABI.items()))
def test_native_constant_equals_the_model_enum_member(name: str, value: int) -> None:
    for prefix, enum in PREFIXES.items():
        if name.startswith(prefix):
            assert enum[name.removeprefix(prefix)] == value
            return
    matches = [enum[name] for enum in PLAIN if name in enum.__members__]
    assert matches == [value]


def test_every_book_event_kind_is_known_to_the_native_engine() -> None:
    assert {f"K_{k.name}" for k in BookEventKind} <= set(_book.ABI)
