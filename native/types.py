"""Record layouts shared by the native engine, the reference engine and their callers."""

from __future__ import annotations

import numpy as np

# -- BATCH COMMANDS --
CMD_NEW = 1
CMD_CANCEL = 2
CMD_REPLACE = 3

#: One command per row. `op` is CMD_NEW / CMD_CANCEL / CMD_REPLACE; cancel reads only `order_id`, replace reads
#: `order_id`, `qty` (new total) and `price`.
CMD_DTYPE = np.dtype(
    [
        ("op", np.int8),
        ("order_id", np.int64),
        ("account", np.int64),
        ("symbol", np.int32),
        ("side", np.int8),
        ("ord_type", np.int8),
        ("tif", np.int8),
        ("qty", np.int64),
        ("price", np.int64),
        ("stop_price", np.int64),
        ("display_qty", np.int64),
    ],
    align=True,
)

# -- EVENTS --
#: Field order of an event tuple from the single-call API, and the columns of EVENT_DTYPE.
EVENT_FIELDS = (
    "kind",  # BookEventKind
    "symbol",
    "order_id",
    "other_id",  # FILL: the counterparty order; TRADE: the maker
    "side",
    "price",  # FILL/TRADE: trade price; ACCEPTED/REPLACED/CANCELED: limit price; TRIGGERED: last trade
    "qty",  # FILL/TRADE: traded qty; ACCEPTED/REPLACED: total qty; CANCELED/EXPIRED: qty taken off the book
    "leaves",  # the order's remaining qty after the event
    "exec_id",  # engine-wide sequence number, unique per event
    "reason",  # RejectReason for *_REJECTED, CancelReason for CANCELED/EXPIRED
    "aggressor",  # FILL: 1 for the taker, 0 for the maker
)
_EVENT_LAYOUT = {  # name: (format, byte offset) -- wide fields first so the record packs into 56 bytes
    "kind": (np.int8, 52),
    "symbol": (np.int32, 48),
    "order_id": (np.int64, 0),
    "other_id": (np.int64, 8),
    "side": (np.int8, 53),
    "price": (np.int64, 16),
    "qty": (np.int64, 24),
    "leaves": (np.int64, 32),
    "exec_id": (np.int64, 40),
    "reason": (np.int8, 54),
    "aggressor": (np.int8, 55),
}
EVENT_DTYPE = np.dtype(
    {
        "names": list(_EVENT_LAYOUT),
        "formats": [f for f, _ in _EVENT_LAYOUT.values()],
        "offsets": [o for _, o in _EVENT_LAYOUT.values()],
        "itemsize": 56,
    }
)
assert EVENT_DTYPE.names == EVENT_FIELDS

#: (kind, symbol, order_id, other_id, side, price, qty, leaves, exec_id, reason, aggressor)
BookEvent = tuple[int, int, int, int, int, int, int, int, int, int, int]
