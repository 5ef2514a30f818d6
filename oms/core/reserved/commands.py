"""Operator changes as a host applies them (see docs/reserved.md: they revoke the account's allowance)."""

from __future__ import annotations

from typing import Any

from oms.core.accounts import AccountState, AdminEvent

__all__ = ["ADMIN_OPS", "admin"]

#: The operator changes a host applies through `gate_operate`: the AccountState admin command of that name.
ADMIN_OPS = frozenset({"set_kill_switch", "set_trading_state", "set_limits", "start_day", "revoke_allowance"})


def admin(state: AccountState, op: str, args: tuple[Any, ...], ts_ns: int) -> AdminEvent:
    """Apply operator change `op` (one of ADMIN_OPS) with `args` to `state`; returns its event for the journal.
    ValueError for any other name."""
    if op not in ADMIN_OPS:
        raise ValueError(f"not an operator change: {op!r} (known: {', '.join(sorted(ADMIN_OPS))})")
    return getattr(state, op)(*args, ts_ns)
