"""How gate calls and batches cross Ray between the engine and its account actors.

Batches cross Ray as msgpack bytes (`pack`): a list of structs pickles ~15x slower, and a gate pays that on the
engine's thread for every report it sends.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from oms.core.accounts import AccountEvent
from oms.core.model.messages import SubmitOrder
from oms.core.reserved.shard import Decision, Item

__all__ = ["Mark", "pack", "unpack_decisions", "unpack_events", "unpack_items"]

Mark = tuple[str, int, int]  # (symbol, price, ts_ns) of a trade print

_packer = msgspec.msgpack.Encoder()
_events_decoder = msgspec.msgpack.Decoder(list[AccountEvent])
_items_decoder = msgspec.msgpack.Decoder(list[tuple[SubmitOrder, int, int]])
_decisions_decoder = msgspec.msgpack.Decoder(list[Decision])


def pack(batch: Sequence[Any]) -> bytes:
    """Events, (order, order id, now) items or decisions as msgpack, for the `*_packed` calls and their answers."""
    return _packer.encode(batch)


def unpack_decisions(data: bytes) -> list[Decision]:
    """The answer of `AccountShard.submit_packed`."""
    return _decisions_decoder.decode(data)


def unpack_items(data: bytes) -> list[Item]:
    """The (order, order id, now) items of `AccountShard.submit_packed`."""
    return _items_decoder.decode(data)


def unpack_events(batch: list[AccountEvent] | bytes) -> list[AccountEvent]:
    """Events as sent: a list as it is, `pack`ed ones decoded."""
    return _events_decoder.decode(batch) if isinstance(batch, bytes) else batch
