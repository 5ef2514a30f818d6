"""What a grant gives the engine and the host-side bookkeeping of grants (see docs/reserved.md).

`Allowance` is what a gate gets with a grant, `Lease` the host's handle that voids it, `GrantAsk` what a gate wants
at the end of a synchronous call; `AllowanceDesk` and `serve_asks` are what every host (`LocalShard`,
`oms.infra.ray.shard.AccountShard`) shares.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

import msgspec

from oms.core.accounts import AccountState, AllowanceGranted, AllowanceRequest
from risk.limits import AccountLimits

__all__ = ["Allowance", "AllowanceDesk", "Answer", "GrantAsk", "Lease", "Ready", "serve_asks"]

T = TypeVar("T")


class Lease:
    """The host's side of a grant held by an in-process gate: `void` turns True once, when the grant is dropped."""

    __slots__ = ("account", "grant_id", "void")

    def __init__(self, account: str, grant_id: int) -> None:
        self.account = account
        self.grant_id = grant_id
        self.void = False


@dataclass(frozen=True, slots=True)
class Allowance:
    """What the engine gets with a grant: the journaled terms plus the static view it needs to decide locally."""

    grant: AllowanceGranted
    limits: AccountLimits
    cl_ord_ids: frozenset[str]  # the account's seen ClOrdIDs at the grant (empty when the gate did not ask for them)
    lease: Lease
    exposed: frozenset[str] = frozenset()  # symbols with a position or working order at the grant (exposed_symbols)


class GrantAsk(msgspec.Struct, frozen=True):
    """What a gate wants for one account at the end of a synchronous call: keep grant `held` while the account still
    holds it, else a fresh grant sized by `request` and stamped `ts_ns` (`held` 0: a fresh grant whatever is live).
    `with_ids`: send the account's seen ClOrdIDs along (the gate has no copy yet)."""

    request: AllowanceRequest
    ts_ns: int
    held: int = 0
    with_ids: bool = True


class Answer(Protocol[T]):
    """An answer that may arrive later (a top-up over Ray); `result()` raises what the call raised."""

    def done(self) -> bool: ...

    def result(self) -> T: ...


class Ready(Generic[T]):
    """An answer that is already here."""

    __slots__ = ("_value",)

    def __init__(self, value: T) -> None:
        self._value = value

    def done(self) -> bool:
        return True

    def result(self) -> T:
        return self._value


class AllowanceDesk:
    """Host-side bookkeeping shared by `LocalShard` and `oms.infra.ray.actors.AccountShard`: leases and drain
    callbacks."""

    def __init__(self) -> None:
        self._leases: dict[str, Lease] = {}
        self._drains: dict[str, Callable[[], None]] = {}

    def attach_drain(self, account: str, drain: Callable[[], None]) -> None:
        """`drain()` must hand every queued report of `account` to the host before it returns."""
        self._drains[account] = drain

    def drain(self, account: str) -> None:
        """Run before applying anything for `account` that does not come from its gate."""
        fn = self._drains.get(account)
        if fn is not None:
            fn()

    def issue(self, state: AccountState, event: AllowanceGranted | None, with_ids: bool = True) -> Allowance | None:
        """The Allowance for a grant `state` just applied, or None when it granted nothing (or voided it at once)."""
        self.sync(state)
        if event is None or state.allowance_id != event.grant_id:
            return None
        lease = self._leases[state.account] = Lease(state.account, event.grant_id)
        ids = state.seen_cl_ord_ids() if with_ids else frozenset()
        return Allowance(event, state.limits, ids, lease, frozenset(state.exposed_symbols()))

    def sync(self, state: AccountState) -> None:
        """Void the account's lease if the account no longer holds that grant."""
        lease = self._leases.get(state.account)
        if lease is not None and state.allowance_id != lease.grant_id:
            lease.void = True
            del self._leases[state.account]

    def void_all(self) -> None:
        """Void every lease (the host lost its state: a failed journal append, a restart)."""
        for lease in self._leases.values():
            lease.void = True
        self._leases.clear()


def serve_asks(
    states: dict[str, AccountState], asks: dict[str, GrantAsk], grant: Callable[[str, GrantAsk], Allowance | None]
) -> dict[str, Allowance | None]:
    """The grants a host owes for `asks` (accounts it does not own are left out): nothing for an account that still
    holds the grant its gate holds, else `grant(account, ask)` (None when it can grant nothing)."""
    out: dict[str, Allowance | None] = {}
    for account, ask in asks.items():
        state = states.get(account)
        if state is None or (ask.held and state.allowance_id == ask.held):
            continue
        out[account] = grant(account, ask)
    return out
