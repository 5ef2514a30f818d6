"""How gate calls and batches cross Ray between the engine and its account actors.

Everything the engine sends crosses as msgpack bytes, encoded by one Encoder and decoded by one Decoder per type:
a list of structs pickles ~15x slower, and a gate pays that on the engine's thread for every call it makes. A gate
call travels as one `GateRequest` (`pack_request`); fire-and-forget report batches and `submit_packed` items as
lists (`pack`). Answers come back as Ray pickles them, except `submit_packed`'s (`unpack_decisions`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from oms.core.accounts import AccountEvent
from oms.core.model.messages import SubmitOrder, TradePrinted
from oms.core.reserved.commands import Decision, GateCall, Item

__all__ = [
    "GateRequest",
    "pack",
    "pack_request",
    "unpack_decisions",
    "unpack_events",
    "unpack_items",
    "unpack_request",
]


class GateRequest(msgspec.Struct, frozen=True):
    """One gate call to one actor (`AccountShard.serve_gate`): `reports`, the gate's queued reports for the actor's
    accounts, are applied first, then `marks`, the trade prints the actor missed, then `call`."""

    call: GateCall
    reports: list[AccountEvent] = []
    marks: list[TradePrinted] = []


_packer = msgspec.msgpack.Encoder()
_events_decoder = msgspec.msgpack.Decoder(list[AccountEvent])
_items_decoder = msgspec.msgpack.Decoder(list[tuple[SubmitOrder, int, int]])
_decisions_decoder = msgspec.msgpack.Decoder(list[Decision])
_request_decoder = msgspec.msgpack.Decoder(GateRequest)


def pack(batch: Sequence[Any]) -> bytes:
    """Events, (order, order id, now) items or decisions as msgpack, for the `*_packed` calls and their answers."""
    return _packer.encode(batch)


def pack_request(
    call: GateCall, reports: list[AccountEvent] | None = None, marks: list[TradePrinted] | None = None
) -> bytes:
    """`call` with the reports and prints that must reach the actor ahead of it, as one msgpack message."""
    return _packer.encode(GateRequest(call, reports or [], marks or []))


def unpack_request(data: bytes) -> GateRequest:
    """The GateRequest `pack_request` packed; msgspec.ValidationError for anything else."""
    return _request_decoder.decode(data)


def unpack_decisions(data: bytes) -> list[Decision]:
    """The answer of `AccountShard.submit_packed`."""
    return _decisions_decoder.decode(data)


def unpack_items(data: bytes) -> list[Item]:
    """The (order, order id, now) items of `AccountShard.submit_packed`."""
    return _items_decoder.decode(data)


def unpack_events(batch: list[AccountEvent] | bytes) -> list[AccountEvent]:
    """Events as sent: a list as it is, `pack`ed ones decoded."""
    return _events_decoder.decode(batch) if isinstance(batch, bytes) else batch
