"""The engine's side of the account actors: `ShardClient` reaches AccountShard actors over Ray, and
`RayAllowanceGate` is the engine's risk gate over them.

`ShardClient` is an `oms.core.reserved.Shard`: it sends each typed gate call to `AccountShard.serve_gate`, whose
reply also carries every account's live grant id. `RayAllowanceGate`: strict accounts make one round trip per
decision; reserved ones (`build_gate` picks them by their configured `risk_mode`) decide locally within allowances
(`oms.core.reserved`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from oms.core.accounts import AccountEvent, AllowanceRequest, AllowanceToppedUp
from oms.core.model.enums import RejectReason, RiskMode
from oms.core.model.instruments import InstrumentRegistry
from oms.core.model.messages import OrderAccepted, OrderRejected, TradePrinted
from oms.core.reserved import Allowance, AllowanceGate, GrantAsk, Lease
from oms.core.reserved.commands import (
    CheckReplace,
    Decide,
    Decision,
    GateCall,
    Operate,
    Resync,
    ReturnAllowance,
    Settle,
    TopUp,
)
from oms.infra.ray.shard import UnknownAccount
from oms.infra.ray.wire import pack, pack_request
from oms.infra.redis.reportlog import ReportLog
from risk.limits import RiskConfig
from risk.reasons import describe

__all__ = [
    "RAY_BATCH",
    "RAY_FLUSH_AFTER_NS",
    "RAY_LOW_ORDERS",
    "RAY_REQUEST",
    "RayAllowanceGate",
    "ShardClient",
    "build_gate",
    "reserved_accounts",
    "summary_reader",
]


class _RayAnswer:
    """A top-up on its way back from an actor (`oms.core.reserved.Answer`)."""

    __slots__ = ("_future",)

    def __init__(self, ref: Any) -> None:
        self._future = ref.future()

    def done(self) -> bool:
        return self._future.done()

    def result(self) -> AllowanceToppedUp | None:
        result, _live = self._future.result()  # a top-up voids no grant: the live ids are not needed
        return result


class _Settling:
    """A settle on its way back from the actors it went to (`oms.core.reserved.Answer`): `result()` takes their
    replies as a synchronous call would (leases voided, grants taken)."""

    __slots__ = ("_client", "_futures", "_refs")

    def __init__(self, client: ShardClient, refs: dict[Any, Any]) -> None:
        self._client = client
        self._refs = refs
        self._futures = [ref.future() for ref in refs.values()]

    def done(self) -> bool:
        return all(f.done() for f in self._futures)

    def result(self) -> dict[str, Allowance | None]:
        granted: dict[str, Allowance | None] = {}
        for h, allowances in self._client._receive(self._refs, wait_sent=False).items():
            granted.update(self._client._take_grants(h, allowances))
        return granted


class ShardClient:
    """`oms.core.reserved.Shard` over AccountShard actors (several accounts may share one handle).

    Each gate call goes to the actors of the accounts it concerns as one `serve_gate` call per actor (the typed
    call, packed with what must reach the actor ahead of it: `oms.infra.ray.wire.pack_request`), all in flight at
    once; reports for other actors go fire-and-forget (`report_spent`), and so does `report_spent` itself. Every call
    but `gate_settle` waits for its replies; a settle's are taken when the gate takes its answer. A sender's
    calls to one actor run in the order sent, so every report lands before the next call. Every reply carries the
    live grant ids of that actor's accounts; a lease whose grant is no longer live is voided. The fire-and-forget
    calls are checked at the next synchronous call to the same actor: a failure there (a lost report: the actor
    died) raises, as a failed call does, after voiding that actor's leases. The lost reports' acceptances are not
    lost: the restarted actor journals them from the gate's write-ahead log.

    Trade prints go only to the actors with an account that has a position or a working order in the symbol (a
    superset the host keeps from what it sends, acceptances included, and from each actor's `in_play` at start); the
    others get the last print of each symbol they missed ahead of their next call, before anything there depends on
    it. An allowance alone does not put an actor in play: its gate checks the band against each print and asks for a
    fresh grant when a print breaks it (docs/reserved.md).
    """

    def __init__(self, actors: Mapping[str, Any]) -> None:
        import ray

        self._ray = ray
        self._actors = dict(actors)
        self._handles = list(dict.fromkeys(self._actors.values()))
        self._accounts_of: dict[Any, list[str]] = {h: [] for h in self._handles}
        for account, h in self._actors.items():
            self._accounts_of[h].append(account)
        self._leases: dict[str, Lease] = {}
        self._sent: dict[Any, list[Any]] = {h: [] for h in self._handles}  # fire-and-forget refs, not yet checked
        self._last: dict[str, TradePrinted] = {}  # symbol -> its latest print
        self._missed: dict[Any, set[str]] = {h: set() for h in self._handles}  # symbols whose last print h lacks
        self._in_play: dict[str, set[Any]] = {}  # symbol -> actors that may have an account in it
        for h, symbols in zip(self._handles, ray.get([h.in_play.remote() for h in self._handles]), strict=True):
            for symbol in symbols:
                self._in_play.setdefault(symbol, set()).add(h)

    # -- Shard --

    def accounts(self) -> list[str]:
        return sorted(self._actors)

    def attach_drain(self, account: str, drain: Callable[[], None]) -> None:
        """Nothing to attach: an actor cannot call back into the engine. The gate's queued reports travel ahead of
        each of its calls instead, and operator changes must go through the gate."""

    def report_spent(self, events: list[AccountEvent]) -> None:
        for h, batch in self._by_actor(events).items():
            self._fire(h, batch)

    def gate_decide(
        self, reports: list[AccountEvent], call: Decide
    ) -> tuple[list[Decision], dict[str, Allowance | None]]:
        items = call.items
        decisions: list[Decision | None] = [None] * len(items)
        by_actor: dict[Any, list[int]] = {}
        for i, (cmd, order_id, now_ns) in enumerate(items):
            h = self._actors.get(cmd.account)
            if h is None:
                reason = RejectReason.UNKNOWN_ACCOUNT
                decisions[i] = OrderRejected.of(cmd, order_id, reason, describe(reason), now_ns)
            else:
                by_actor.setdefault(h, []).append(i)
        calls: dict[Any, GateCall] = {
            h: Decide([items[i] for i in idx], self._asks_for(h, call.asks), call.quotes) for h, idx in by_actor.items()
        }
        replies = self._call(reports, calls)
        granted: dict[str, Allowance | None] = {}
        for h, (got, allowances) in replies.items():
            for i, d in zip(by_actor[h], got, strict=True):
                decisions[i] = d
                self._play(h, items[i][0].symbol)
            granted.update(self._take_grants(h, allowances))
        return [d for d in decisions if d is not None], granted

    def gate_check_replace(self, reports: list[AccountEvent], call: CheckReplace) -> RejectReason:
        h = self._actors.get(call.cmd.account)
        if h is None:
            self.report_spent(reports)
            return RejectReason.UNKNOWN_ACCOUNT
        return self._call(reports, {h: call})[h]

    def gate_settle(self, reports: list[AccountEvent], call: Settle) -> _Settling:
        """Sent without waiting; the answer's `result()` raises what a call raised."""
        parts = self._by_actor(reports)  # first: the orders accepted ahead of these prints work when they apply
        per: dict[Any, tuple[list[AccountEvent], list[TradePrinted]]] = {}
        for e in call.events:
            h = self._actors.get(e.account)
            if h is None:
                raise UnknownAccount(f"event for account {e.account!r}, which no actor hosts: {e!r}")
            per.setdefault(h, ([], []))[0].append(e)
            symbol = getattr(e, "symbol", None)
            if symbol is not None:
                self._play(h, symbol)
        for p in call.prints:
            self._last[p.symbol] = p
            playing = self._in_play.get(p.symbol, ())
            for h in self._handles:
                if h in playing:
                    per.setdefault(h, ([], []))[1].append(p)
                else:
                    self._missed[h].add(p.symbol)
        for account, ask in call.asks.items():  # an account the gate wants a grant for: its actor is called too
            h = self._actors.get(account)
            if h is not None and not ask.held:
                per.setdefault(h, ([], []))
        calls: dict[Any, GateCall] = {
            h: Settle(events, prints, self._asks_for(h, call.asks),
                      {a: w for a, w in call.wal.items() if self._actors.get(a) is h})
            for h, (events, prints) in per.items()
        }  # fmt: skip
        return _Settling(self, self._send(parts, calls))

    def gate_top_up(self, call: TopUp) -> _RayAnswer:
        # without waiting, and without the prints the actor missed: a failed top-up is not a lost call (`_lost`)
        return _RayAnswer(self._actors[call.account].serve_gate.remote(pack_request(call)))

    def gate_return(self, reports: list[AccountEvent], call: ReturnAllowance) -> None:
        self._drop(call.account)
        h = self._actors[call.account]
        self._call(reports, {h: call})

    def gate_operate(self, reports: list[AccountEvent], call: Operate) -> list[int]:
        account = call.command.account
        self._drop(account)  # before anything is sent: the very next decision is strict
        h = self._actors.get(account)
        if h is None:
            raise UnknownAccount(f"account {account!r}: no actor hosts it")
        return self._call(reports, {h: call})[h]

    def gate_resync(self, reports: list[AccountEvent], call: Resync) -> None:
        self._drop(call.account)
        self._call(reports, {self._actors[call.account]: call})

    def wait_sent(self) -> None:
        """Wait until every fire-and-forget call has been applied by its actor; raise what one raised."""
        for h in self._handles:
            self._check_sent(h, wait=True)

    # -- internals --

    def _call(self, reports: list[AccountEvent], calls: dict[Any, GateCall]) -> dict[Any, Any]:
        """One `serve_gate` call per actor in `calls` (`_send`); waits for every reply (`_receive`)."""
        return self._receive(self._send(self._by_actor(reports), calls), wait_sent=True)

    def _send(self, parts: dict[Any, list[AccountEvent]], calls: dict[Any, GateCall]) -> dict[Any, Any]:
        """One `serve_gate` call per actor in `calls`, carrying its part of the reports (`parts`, `_by_actor`) and
        the prints it missed (the actor applies them in that order, ahead of the call); the other parts go
        fire-and-forget. Returns each actor's reply on its way."""
        refs: dict[Any, Any] = {}
        for h, call in calls.items():
            marks = [self._last[s] for s in sorted(self._missed[h])]
            self._missed[h].clear()
            refs[h] = h.serve_gate.remote(pack_request(call, parts.pop(h, None), marks))
        for h, batch in parts.items():
            self._fire(h, batch)
        return refs

    def _receive(self, refs: dict[Any, Any], wait_sent: bool) -> dict[Any, Any]:
        """The replies of `_send`'s calls, each actor's result; a lease whose grant the reply says is no longer live
        is voided. Then raises what a fire-and-forget call to those actors raised (all of them with `wait_sent`,
        else those done). A failed call voids its actor's leases and raises."""
        try:
            replies = self._ray.get(list(refs.values()))
        except Exception:
            for h in refs:
                self._lost(h)
            raise
        out: dict[Any, Any] = {}
        for h, (result, live) in zip(refs, replies, strict=True):
            for account, grant_id in live.items():
                lease = self._leases.get(account)
                if lease is not None and lease.grant_id != grant_id:
                    self._drop(account)
            out[h] = result
        for h in refs:
            self._check_sent(h, wait=wait_sent)
        return out

    def _fire(self, h: Any, batch: list[AccountEvent]) -> None:
        sent = self._sent[h]
        sent.append(h.report_spent.remote(pack(batch)))
        if len(sent) >= 64:
            self._check_sent(h, wait=False)

    def _check_sent(self, h: Any, wait: bool) -> None:
        """Raise what a fire-and-forget call to `h` raised (all of them when `wait`, else those already done)."""
        sent = self._sent[h]
        if not sent:
            return
        if wait:
            done, self._sent[h] = sent, []
        else:
            done, self._sent[h] = self._ray.wait(sent, num_returns=len(sent), timeout=0)
        try:
            self._ray.get(done)
        except Exception as exc:
            self._lost(h)
            exc.add_note("reports of accepted orders may be missing from their accounts' journals")
            raise

    def _lost(self, h: Any) -> None:
        """After a failed call to `h`: void its accounts' leases and resend every print it may have lost."""
        for account in self._accounts_of[h]:
            self._drop(account)
        self._missed[h] = set(self._last)
        self._sent[h] = []

    def _drop(self, account: str) -> None:
        lease = self._leases.pop(account, None)
        if lease is not None:
            lease.void = True

    def _take_grants(self, h: Any, allowances: dict[str, Allowance | None]) -> dict[str, Allowance | None]:
        """The actor's Allowances with a lease of this process (the actor's own leases do not travel)."""
        out: dict[str, Allowance | None] = {}
        for account, a in allowances.items():
            self._drop(account)
            if a is None:
                out[account] = None
                continue
            lease = self._leases[account] = Lease(account, a.grant.grant_id)
            out[account] = Allowance(a.grant, a.limits, a.cl_ord_ids, lease, a.exposed)
        return out

    def _asks_for(self, h: Any, asks: dict[str, GrantAsk]) -> dict[str, GrantAsk]:
        return {a: ask for a, ask in asks.items() if self._actors.get(a) is h}

    def _by_actor(self, events: list[AccountEvent]) -> dict[Any, list[AccountEvent]]:
        """`events` split by the actor of their account; an acceptance among them puts its actor in play in its
        symbol (the order works there from now on)."""
        out: dict[Any, list[AccountEvent]] = {}
        for e in events:
            h = self._actors[e.account]
            out.setdefault(h, []).append(e)
            if type(e) is OrderAccepted:
                self._play(h, e.symbol)
        return out

    def _play(self, h: Any, symbol: str) -> None:
        actors = self._in_play.get(symbol)
        if actors is None:
            self._in_play[symbol] = {h}
        else:
            actors.add(h)


#: Reserved accounts over Ray: large grants (each refill costs an actor call) topped up at half.
RAY_REQUEST = AllowanceRequest(orders=256)
RAY_LOW_ORDERS = 128
RAY_BATCH = 64  # order reports per fire-and-forget call: each costs a Ray submission on the engine's thread
RAY_FLUSH_AFTER_NS = 50_000_000  # queued reports older than 50 ms (order clock) go when the next batch is sealed


class RayAllowanceGate(AllowanceGate):
    """The OrderManager's risk gate over AccountShard actors.

    Accounts in `reserved` are in reserved mode (`oms.core.reserved`): decided here within allowances their actors
    grant, reports sent without waiting, top-ups asked for when low, revoked at once by a kill switch, a limits or
    trading-state change made through this gate. Every other account is strict: each decision is a round trip to
    its actor. Post-trade events go to the actors of the accounts they concern without waiting (`_Settling`), once
    written ahead to the report log, so no fill leaves the OMS ahead of its durable record (docs/reserved.md).
    """

    def __init__(
        self,
        actors: Mapping[str, Any],
        instruments: InstrumentRegistry | None = None,
        reserved: Iterable[str] = (),
        request: AllowanceRequest = RAY_REQUEST,
        batch: int = RAY_BATCH,
        low_orders: int = RAY_LOW_ORDERS,
        flush_after_ns: int | None = RAY_FLUSH_AFTER_NS,
        log: ReportLog[AccountEvent] | None = None,
        group_commit: bool = False,
    ) -> None:
        """`actors`: account -> actor handle (several accounts may share one handle); `instruments` and `log` (on
        the actors' Redis) are needed when `reserved` names accounts; see AllowanceGate for the rest."""
        reserved = sorted(reserved)
        if reserved and (instruments is None or log is None):
            raise ValueError("reserved accounts need the instrument registry and a report log")
        unknown = [a for a in reserved if a not in actors]
        if unknown:
            raise UnknownAccount(f"reserved account {unknown[0]!r} has no actor")
        registry = instruments if instruments is not None else InstrumentRegistry(())
        self._ray_host = ShardClient(actors)
        super().__init__(
            self._ray_host, registry, reserved, request, batch, low_orders, flush_after_ns, log, group_commit
        )

    def close(self) -> None:
        """Return every allowance and report everything, and wait until the actors have journaled it all: call it
        before the actors stop (their journals then hold every order this gate accepted)."""
        super().close()
        self._ray_host.wait_sent()


def summary_reader(actors: Mapping[str, Any]) -> Callable[[str], dict[str, object]]:
    """A function reading one account's `AccountShard.summary` from its actor (one synchronous call per read)."""
    import ray

    return lambda account: ray.get(actors[account].summary.remote(account))


def reserved_accounts(accounts: Iterable[str], risk: RiskConfig) -> list[str]:
    """The accounts among `accounts` whose configured `risk_mode` is reserved."""
    return sorted(a for a in accounts if (lim := risk.limits_for(a)) is not None and lim.risk_mode is RiskMode.RESERVED)


def build_gate(
    actors: Mapping[str, Any],
    risk: RiskConfig,
    instruments: InstrumentRegistry,
    log: ReportLog[AccountEvent],
    group_commit: bool = False,
) -> RayAllowanceGate:
    """The engine's gate over `actors` (account -> handle): each account strict or reserved as its limits say;
    `log` on the actors' Redis; `group_commit`: its entries written by `commit`, once per sequencer batch."""
    return RayAllowanceGate(actors, instruments, reserved_accounts(actors, risk), log=log, group_commit=group_commit)
