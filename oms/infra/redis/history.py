"""The order history an OMS start rebuilds its orders from: every account journal's order events, oldest first.

The account journals (`oms:journal:{account}`, docs/journal.md) hold each accepted order's OrderAccepted (with the
session its reports go to), fills, cancels, replaces, expiries and venue rejects; the write-ahead log's entries are
in them too once the account actors have rebuilt their accounts (they journal what the log still holds). Orders
refused before an account took them are not journaled, so a restart does not know their ClOrdIDs.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import redis

from oms.core.accounts import AccountEvent
from oms.core.model.messages import (
    Message,
    OrderAccepted,
    OrderCanceled,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    OrderReplaced,
)
from oms.infra.redis.journal import Journal

__all__ = ["ORDER_EVENTS", "order_history"]

#: what moves an order's state; everything else an account journals (admin, allowances, marks) is not read
ORDER_EVENTS = (OrderAccepted, OrderFilled, OrderCanceled, OrderReplaced, OrderExpired, OrderRejected)


def order_history(client: redis.Redis, accounts: Iterable[str]) -> Iterator[Message]:
    """Every order event in the journals of `accounts`, each account's in journal order (accounts one after the
    other). Raises `CorruptRecord` at a record that does not decode: a start must not guess at what it missed."""
    journal: Journal[object] = Journal(client, AccountEvent, batch=5000)
    for account in accounts:
        for _, record in journal.read(account):
            if isinstance(record, ORDER_EVENTS):
                yield record
