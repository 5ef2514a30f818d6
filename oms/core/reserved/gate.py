"""`AllowanceGate`: the engine's risk gate in reserved mode, deciding locally within allowances (docs/reserved.md)."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import msgspec

from oms.core.accounts import AccountEvent, AllowanceRequest, AllowanceSpent, AllowanceToppedUp
from oms.core.engine import Unsettled
from oms.core.model.enums import OrdType, RejectReason, RiskMode, Side
from oms.core.model.instruments import InstrumentRegistry
from oms.core.model.messages import (
    Message,
    OrderAccepted,
    OrderCanceled,
    OrderExpired,
    OrderRejected,
    OrderReplaced,
    ReplaceOrder,
    SubmitOrder,
    TradePrinted,
)
from oms.core.reserved.allowance import Allowance, Answer, GrantAsk, Lease
from oms.core.reserved.commands import (
    CheckReplace,
    Decide,
    Operate,
    OperatorCommand,
    OperatorMethods,
    Resync,
    ReturnAllowance,
    SetLimits,
    Settle,
    TopUp,
)
from oms.core.reserved.shard import Shard, WriteAhead
from risk.checks import check_collar, collared_price
from risk.money import money_factor
from risk.reasons import describe

__all__ = ["GRANT_RETRY_NS", "HARD_BATCHES", "AllowanceGate"]


@dataclass(slots=True)
class _Side:
    lo: int
    hi: int
    value_cap: int
    collar: int  # the symbol's collar, in basis points of the reference
    factor: int  # money per (qty unit * price unit)
    max_qty: int
    buy: int
    sell: int


@dataclass(slots=True)
class _Local:
    """The gate's copy of one account's grant: what it may still spend."""

    account: str
    grant_id: int
    ts_ns: int
    lease: Lease
    orders: int
    low_at: int  # tokens left at which a top-up is asked for
    credit: int
    max_notional: int
    cl_ord_ids: set[str]  # the gate's set for the account (AllowanceGate._seen), shared across its grants
    symbols: dict[str, _Side]
    exposed: set[str]  # symbols with a position or working order of the account's: a trade print in one moves it


@dataclass(slots=True, eq=False)
class _Settle:
    """One step's post-trade events and trade prints on their way to the host: sent once their write-ahead entries
    are written (with the queued reports ahead of them), answered later."""

    events: list[AccountEvent]
    prints: list[TradePrinted]
    at: int  # its place among the queued reports: those before it are sent first
    owners: list[str]  # the accounts whose events it carries (one write-ahead entry each)
    suspends: frozenset[str]  # the accounts it may move: none of them decides locally until it is answered
    rebands: frozenset[str]  # of those, the ones whose band a print broke: a fresh grant is asked for each
    wal: dict[str, str] = field(default_factory=dict)  # owner -> its entry's id, once written
    waiting: int = 0  # entries not yet written
    reports: list[AccountEvent] = field(default_factory=list)  # the queued reports sent with it
    answer: Answer[dict[str, Allowance | None]] | None = None


@dataclass(slots=True)
class _Ticket:
    """One write of the log: its entries, for each one the index of its spend in the queue (-1: none) or the
    settle it belongs to, once sent ahead (`AllowanceGate.start_write`) the call that waits for its answer, and,
    once written, their ids."""

    entries: list[tuple[str, list[AccountEvent]]]
    at: list[int | _Settle]
    ids: list[str] | None = None
    sent: Callable[[], list[str]] | None = None


def _breaks_band(loc: _Local, p: TradePrinted) -> bool:
    """Whether print `p`, as the account's new reference, voids the allowance `loc` through its band: it covers the
    symbol, and one of the band's ends falls outside the collar around the price or the valuation cap below the
    collar's top (the certificate's reference checks, docs/reserved.md). For an account flat in the symbol with no
    order in it, that is all the print moves."""
    side = loc.symbols.get(p.symbol)
    return side is not None and (
        check_collar(side.lo, p.price, side.collar) is not RejectReason.NONE
        or check_collar(side.hi, p.price, side.collar) is not RejectReason.NONE
        or collared_price(p.price, side.collar) > side.value_cap
    )


def _moved(at: int | _Settle, by: int) -> int | _Settle:
    """`at` once the first `by` queued reports are sent."""
    return at - by if type(at) is int and at >= 0 else at


def _affords(loc: _Local, side: _Side, buy: bool, qty: int, credit: int) -> bool:
    """A token left, `credit` within the credit left and the order notional cap, `qty` within the side's headroom."""
    headroom = side.buy if buy else side.sell
    return loc.orders >= 1 and credit <= loc.credit and credit <= loc.max_notional and qty <= headroom


def _no_wait() -> None:
    """Without a runtime that writes sealed entries later, every write returned before the next step began."""


GRANT_RETRY_NS = 50_000_000  # after an empty grant (or top-up), the account is not asked again for this long
_LOOSENING = (OrderCanceled, OrderExpired)  # events that keep every certificate: reported in batches, no call
HARD_BATCHES = 8  # with `flush_after_ns`: a decision sends the queued reports itself only past this many batches


class AllowanceGate(OperatorMethods):
    """The OrderManager's risk gate in reserved mode (the `oms.core.engine.RiskGate` protocol).

    Accounts in `accounts` are decided locally within their allowance and fall back to a strict decision by the
    host otherwise; any other account of the host is always decided by the host. See docs/reserved.md for the
    rules.
    """

    def __init__(
        self,
        host: Shard,
        instruments: InstrumentRegistry,
        accounts: Iterable[str],
        request: AllowanceRequest | None = None,
        batch: int = 32,
        low_orders: int = 4,
        flush_after_ns: int | None = None,
        log: WriteAhead | None = None,
        group_commit: bool = False,
    ) -> None:
        """`batch`: order reports queued before they are sent on their own; `low_orders`: tokens left at which a
        top-up is asked for (capped at half the account's `orders_per_window`: no grant holds more than that);
        `flush_after_ns`: a post-trade step sends queued reports once `batch` are queued or the oldest is this old (by
        the order clock), and a decision only once `HARD_BATCHES` batches are (so the send stays off the order's path);
        None: every step sends them, and a decision once `batch` are queued. `log`: where each local acceptance is
        written before it is returned (`oms.infra.redis.reportlog`); a host with a journal needs it, or a crash loses
        the acceptances whose reports had not reached it. `group_commit`: the log's entries are held back and written
        together once per batch (`seal`) instead of one by one; nothing reaches the account ahead of its entry."""
        self._host = host
        self._log = log
        self._group = group_commit and log is not None
        # (account, records, spend's index in _pending or the settle they belong to)
        self._unwritten: list[tuple[str, list[AccountEvent], int | _Settle]] = []
        # a replace just accepted here under group commit: its spend, its held entry and the new ClOrdID, which the
        # venue's OrderReplaced joins if nothing was queued or written since (`_join_replace`)
        self._replacing: tuple[AllowanceSpent, list[AccountEvent], str] | None = None
        self._tickets: deque[_Ticket] = deque()  # writes sealed or sent, oldest first, ids not on their spends yet
        self._unsealed: list[_Ticket] = []  # writes sent ahead since the last seal (`start_write`)
        self.wait_written: Callable[[], None] = _no_wait  # the runtime's: returns once every sealed write returned
        # the runtime's, called on the writer's thread once a sealed write holding post-trade events returned: it
        # runs `flush_written` in sequence soon after, so they reach the host without waiting for the next batch
        self.settle_ready: Callable[[], None] = _no_wait
        self._queued: deque[_Settle] = deque()  # settles not sent yet (their entries not all written), oldest first
        self._inflight: deque[_Settle] = deque()  # settles sent and not answered yet, oldest first
        self._suspended: dict[str, int] = {}  # account -> settles queued or in flight that may move it
        self._unsettled: list[Unsettled] = []  # failed settles, raised by the next `on_events`
        self.unsynced: set[str] = set()  # accounts whose post-trade call failed: to be rebuilt by the host (`resync`)
        self.resync_failures = 0  # rebuilds asked for that failed (tried again), and the last one's error
        self.last_resync_error = ""
        self._instruments = instruments
        self._accounts = set(accounts)
        self._request = request or AllowanceRequest()
        self._batch = max(batch, 1)
        self._low_orders = low_orders
        self._quotes: dict[str, tuple[int, int]] = {}  # symbol -> the latest (bid, ask) `quote` gave
        self._flush_after = flush_after_ns
        self._hard = 2 * self._batch * (1 if flush_after_ns is None else HARD_BATCHES)  # events (2 per order)
        self._local: dict[str, _Local] = {}
        self._seen: dict[str, set[str]] = {}  # per account: its ClOrdIDs at a grant, plus every one sent here since
        self._pending: list[AccountEvent] = []
        self._oldest = 0  # now_ns of the oldest queued report
        self._low: set[str] = set()
        self._topups: dict[str, Answer[AllowanceToppedUp | None]] = {}
        self._retry_at: dict[str, int] = {}  # account -> earliest ts to ask again after a grant came back empty
        self._topup_at: dict[str, int] = {}  # account -> earliest ts to ask again after a top-up came back empty
        self._clock = 0  # the latest now_ns seen: grants asked for outside a decision are stamped with it
        self.local_accepts = 0
        self.local_replaces = 0  # replaces accepted within an allowance
        self.replace_checks = 0  # replaces the host decided
        self.replaces_joined = 0  # local replaces whose OrderReplaced went with their spend, without a call
        self.local_rejects = 0
        self.fallbacks = 0
        self.top_ups = 0
        for account in self._accounts:
            host.attach_drain(account, self.flush)

    # -- RiskGate --

    def decide(self, cmd: SubmitOrder, order_id: int, now_ns: int) -> OrderAccepted | OrderRejected:
        """Accept within the account's allowance (or reject what the account surely would) here, else ask the host,
        whose answer brings a fresh grant when the account needs one."""
        loc = self._catch_up(cmd.account, now_ns)
        if loc is not None:
            accepted = self._spend(loc, cmd, order_id, now_ns)
            if accepted is not None:
                return accepted
        return self._fallback(cmd, order_id, now_ns)

    def decide_replace(self, cmd: ReplaceOrder, order_id: int, now_ns: int, ord_type: OrdType) -> RejectReason:
        """A replace of a LIMIT order to terms its account's allowance covers is accepted here, spending as a new
        order on the same side would (`_spend_replace`); any other goes to the host's strict check. `ord_type`:
        the order's own (the replace keeps it)."""
        loc = self._catch_up(cmd.account, now_ns)
        if ord_type is OrdType.LIMIT and loc is not None and self._spend_replace(loc, cmd, order_id, now_ns):
            return RejectReason.NONE
        self.replace_checks += 1
        return self._host.gate_check_replace(self._take(), CheckReplace(cmd, order_id, now_ns))

    def _catch_up(self, account: str, now_ns: int) -> _Local | None:
        """Before a decision for `account`: the clock moved on, the answers of top-ups and settles that came in taken,
        and the account's own settles answered (they may void or replace its allowance). Its allowance if it may
        decide locally now, else None."""
        if now_ns > self._clock:
            self._clock = now_ns
        if self._topups:
            self._collect_top_ups()
        if self._inflight:
            self._collect_settles(wait=False)
        if account in self._suspended:
            self._settle_now()
        loc = self._local.get(account)
        return loc if loc is not None and not loc.lease.void and now_ns >= loc.ts_ns else None

    def on_events(self, events: Iterable[Message]) -> None:
        """Post-trade events and trade prints go to the host without waiting for it (`_queue_settle`); a step whose
        events are all cancels and expiries of reserved accounts' orders is queued like spends instead (written
        ahead with a `log`, reported in batches, no call): they keep every certificate (docs/reserved.md); so does
        the OrderReplaced of a replace accepted here in the same step, which joins its spend (`_join_replace`). Without
        any, queued reports go when due. Then top-ups are asked for allowances running low. Raises `Unsettled` when
        a settle sent earlier failed (its events are written ahead: the accounts are rebuilt, `resync`)."""
        events = list(events)
        replacing, self._replacing = self._replacing, None
        if replacing is not None and len(events) == 1 and self._join_replace(replacing, events[0]):
            events = []
        if self._inflight:
            self._collect_settles(wait=False)
        if events and all(type(e) in _LOOSENING and e.account in self._accounts for e in events):  # type: ignore[union-attr]
            self._queue_loosening(events)  # type: ignore[arg-type]
            events = []
        batch: list[AccountEvent] = []
        prints: list[TradePrinted] = []
        for e in events:
            if isinstance(e, TradePrinted):
                prints.append(e)
                continue
            if isinstance(e, OrderReplaced | OrderRejected):
                seen = self._seen.get(e.account)
                if seen is not None:
                    seen.add(e.cl_ord_id)
            batch.append(e)  # type: ignore[arg-type]
        if batch or prints:
            self._queue_settle(batch, prints)
        elif self._pending and not self._group and self._due():  # with group commit: when the batch is sealed
            self.flush()
        if self._low:
            self._request_top_ups()
        if self._unsettled:
            failed, self._unsettled = self._unsettled, []
            raise Unsettled("; ".join(str(exc) for exc in failed)) from failed[0].__cause__

    def _queue_settle(self, batch: list[AccountEvent], prints: list[TradePrinted]) -> None:
        """The host's post-trade call, made without waiting for its answer. With a `log`, the events are written
        ahead first, one entry per account (under group commit in this batch's seal, else here), and the call goes
        once they are written (`_dispatch`), carrying the queued reports ahead of it; each entry's id goes with it
        (`Settle.wal`), so a host that rebuilt the account from the log since skips its events. Until the answer is
        in, the accounts the call may move decide nothing locally (`_suspended`): those of the events, every one
        with a position or working order in a printed symbol, every one whose allowance a print's price takes out
        of its band (`_breaks_band`: a fresh grant is asked for, since a host applies prints only to the accounts
        they move), and every reserved one without an allowance (the call may bring it one). The call asks grants
        for these accounts only, so no answer replaces the grant of an account that decides locally meanwhile.
        Without a log the call is made and answered here, and what the host raises propagates."""
        owners: dict[str, list[AccountEvent]] = {}
        for e in batch:
            owners.setdefault(e.account, []).append(e)  # type: ignore[union-attr]
        local = self._local
        suspends = set(owners)
        rebands: set[str] = set()
        for a, loc in local.items() if prints else ():
            if any(p.symbol in loc.exposed for p in prints):
                suspends.add(a)
            elif any(_breaks_band(loc, p) for p in prints):
                rebands.add(a)
        suspends |= rebands
        suspends.update(a for a in self._accounts if (loc := local.get(a)) is None or loc.lease.void)
        settle = _Settle(batch, prints, len(self._pending), list(owners), frozenset(suspends), frozenset(rebands))
        for account in suspends:
            self._suspended[account] = self._suspended.get(account, 0) + 1
        self._queued.append(settle)
        if self._log is not None:
            self._unwritten += [(account, records, settle) for account, records in owners.items()]
            settle.waiting = len(owners)
            if self._group:
                return
            try:
                self._write_held()
            except Exception as exc:  # held: written before anything after it is sent
                self._lost([], owners)
                self._unsettled.append(Unsettled(f"the post-trade events of {sorted(owners)} are not written ahead "
                                                 f"yet (written before anything later leaves): {exc!r}"))  # fmt: skip
                return
        self._dispatch()
        if self._log is None:
            self._collect_settles(wait=True)

    def _dispatch(self) -> None:
        """Send, oldest first, each queued settle whose entries are written, with the queued reports ahead of it;
        its accounts waiting for their rebuild are rebuilt first (`_rebuild_first`)."""
        queued = self._queued
        while queued and queued[0].waiting == 0:
            settle = queued.popleft()
            reports = self._cut(settle.at)
            try:
                self._rebuild_first(settle.owners)
                asks = {a: ask for a, ask in self._asks().items() if a in settle.suspends}
                for a in settle.rebands.intersection(asks):  # its host may not apply the print: it is asked anew
                    asks[a] = GrantAsk(self._request, self._clock, 0, a not in self._seen)
                call = Settle(settle.events, settle.prints, asks, settle.wal)
                settle.answer = self._host.gate_settle(reports, call)
            except Exception as exc:
                self._settle_failed(settle, reports, exc)
                continue
            settle.reports = reports
            self._inflight.append(settle)

    def _advance_settles(self) -> None:
        """Without waiting: the ids of the writes that landed put in place, the settles they complete sent, the
        answers that are in taken."""
        self._patch()
        self._dispatch()
        if self._inflight:
            self._collect_settles(wait=False)

    def _collect_settles(self, wait: bool) -> None:
        """Take the answers of the settles in flight, oldest first, as far as they are in (all of them, waiting for
        them, with `wait`): their grants are installed, and their accounts decide locally again."""
        inflight = self._inflight
        while inflight and (wait or inflight[0].answer.done()):  # type: ignore[union-attr]
            settle = inflight.popleft()
            try:
                granted = settle.answer.result()  # type: ignore[union-attr]
            except Exception as exc:
                self._settle_failed(settle, settle.reports, exc)
                continue
            self._release(settle)
            self._install(granted)

    def _settle_failed(self, settle: _Settle, reports: list[AccountEvent], exc: Exception) -> None:
        """The host did not take `settle` (it died mid-call, its journal did not answer). With a log nothing it
        carried is lost: the accounts it touched lose their allowances here (their next orders go to the host) and
        are rebuilt from the log by their host once it answers again (`resync`; a restarted actor does so anyway);
        the next `on_events` raises `Unsettled`. Without a log, `exc` is raised."""
        self._release(settle)
        self._lost(reports, settle.owners)
        if self._log is None:
            raise exc
        failed = Unsettled(f"the host of {sorted(settle.owners)} did not take {len(settle.events)} post-trade events; "
                           f"they are written ahead and journaled when it is rebuilt: {exc!r}")  # fmt: skip
        failed.__cause__ = exc
        self._unsettled.append(failed)

    def _release(self, settle: _Settle) -> None:
        """`settle` is answered (or failed): its accounts no longer wait for it."""
        suspended = self._suspended
        for account in settle.suspends:
            n = suspended[account] - 1
            if n:
                suspended[account] = n
            else:
                del suspended[account]

    def _settle_now(self) -> None:
        """Every held entry written, every settle sent and answered: for a call or a decision that must see the
        host as of now. Raises when a write fails (nothing after it is sent)."""
        if self._tickets:
            self.wait_written()
            for ticket in self._unsealed:  # sent ahead in this batch: no runtime writer has them yet
                if ticket.ids is None:
                    sent, ticket.sent = ticket.sent, None
                    assert sent is not None
                    ticket.ids = sent()  # raises with the entries held: the batch's seal writes them again
            self._patch()
            assert not self._tickets, "wait_written returned before every sealed entry was written"
        self._write_held()
        self._dispatch()
        self._collect_settles(wait=True)

    def _rebuild_first(self, accounts: Iterable[str]) -> None:
        """Before a call that journals new entries of `accounts` (and so deletes their log up to those entries):
        each of them waiting for its rebuild (`unsynced`) is rebuilt now, so the entries an earlier failed call
        left in the log are journaled first. Every entry is written by then (`_take`). Raises when a rebuild
        fails: the call is not made."""
        for account in sorted(self.unsynced.intersection(accounts)):
            self._host.gate_resync([], Resync(account))
            self.unsynced.discard(account)

    def _lost(self, reports: list[AccountEvent], accounts: Iterable[str]) -> None:
        """A host call failed with `reports` (written ahead: the log has them) and events of `accounts`: each such
        account loses its allowance and is rebuilt by its host from the log later (`resync`)."""
        for account in {*(r.account for r in reports), *accounts}:  # type: ignore[union-attr]
            if self._log is not None:
                self.unsynced.add(account)
            self._drop(account)

    def resync(self) -> None:
        """Have the host rebuild every account whose post-trade call failed (`unsynced`) from its journal and this
        gate's log, once everything written ahead has landed; an account whose rebuild fails stays `unsynced` (the
        next call tries again) and its allowance dropped."""
        if not self.unsynced:
            return
        self._patch()  # the writes that landed
        if self._tickets or self._unwritten:
            return
        for account in sorted(self.unsynced):
            reports = self._take()
            try:
                self._host.gate_resync(reports, Resync(account))
            except Exception as exc:  # the host or its journal is still away: the next call tries again
                self._lost(reports, [account])
                self.resync_failures += 1
                self.last_resync_error = repr(exc)
                continue
            self.unsynced.discard(account)

    def _drop(self, account: str) -> None:
        """Forget `account`'s allowance: its next orders are decided by the host until it grants a new one."""
        self._local.pop(account, None)
        self._low.discard(account)
        self._topups.pop(account, None)

    def accounts(self) -> list[str]:
        """Every account of the host (reserved ones are decided here within their allowance, the others there)."""
        return self._host.accounts()

    # -- operator changes (`OperatorMethods` builds them; the kill switch is the RiskGate's) --

    def operate(self, command: OperatorCommand) -> list[int]:
        """Apply `command` at the host; returns the account's working orders. The account's allowance is dropped
        here first and the queued reports reach the host ahead of the change, so nothing is accepted locally after
        it. After a SetLimits the account's risk mode follows `limits.risk_mode`."""
        account = command.account
        reports = self._take()
        self._drop(account)
        if command.ts_ns > self._clock:
            self._clock = command.ts_ns
        working = self._host.gate_operate(reports, Operate(command))
        match command:
            case SetLimits(limits=limits) if limits.risk_mode is RiskMode.RESERVED:
                if account not in self._accounts:
                    self._accounts.add(account)
                    self._host.attach_drain(account, self.flush)
            case SetLimits():
                self._accounts.discard(account)
        return working

    # -- reserved mode --

    def reserved_accounts(self) -> list[str]:
        """The accounts this gate decides for locally."""
        return sorted(self._accounts)

    def flush(self) -> None:
        """Hand every queued report to the host (over Ray: without waiting); their entries are written first."""
        if self._pending:
            self._host.report_spent(self._take())

    def flush_written(self) -> None:
        """Send the settles and hand the queued reports whose entries are written to the host, and take the answers
        that are in, never waiting for a write or an answer (the runtime's timer, and `settle_ready`: a journal that
        stalls must not stall the sequence with it); then `resync`."""
        self._advance_settles()
        self._report_written()
        self.resync()

    def refill(self) -> None:
        """Ask now for a fresh grant for every reserved account without a valid allowance, and for a top-up of
        every allowance running low."""
        asks = {
            a: GrantAsk(self._request, self._clock, 0, a not in self._seen)
            for a in self._accounts
            if (loc := self._local.get(a)) is None or loc.lease.void
        }
        if asks:
            self._install(self._host.gate_settle(self._take(), Settle([], [], asks)).result())
        if self._low:
            self._request_top_ups()

    def give_back(self, account: str) -> None:
        """Return what is left of `account`'s allowance to the host."""
        reports = self._take()
        loc = self._local.pop(account, None)
        self._low.discard(account)
        if loc is not None and not loc.lease.void:
            self._host.gate_return(reports, ReturnAllowance(account, loc.grant_id, self._clock))
        elif reports:
            self._host.report_spent(reports)

    def close(self) -> None:
        """Return every allowance (each return carries the queued reports) and send what is still queued; from
        then on every order goes to the host. For a clean stop, before the host goes."""
        for account in sorted(self._local):
            self.give_back(account)
        self._accounts.clear()
        self.flush()

    def quote(self, symbol: str, bid: int, ask: int, now_ns: int) -> None:
        """The venue's best bid and ask of `symbol` (`RiskGate.quote`): they go with the strict decision of the order
        without a limit price that follows (reserved decisions value such orders at the grant's price cap)."""
        self._quotes[symbol] = (bid, ask)

    def allowance_left(self, account: str) -> tuple[int, int] | None:
        """(tokens, credit) left of `account`'s valid allowance, None when it has none."""
        loc = self._local.get(account)
        if loc is None or loc.lease.void:
            return None
        return loc.orders, loc.credit

    # -- internals --

    def start_write(self) -> None:
        """Under group commit, on the sequence once a step has decided and before its reports are published: when
        no earlier write is outstanding, the entries held since the last write are sent now
        (`WriteAhead.send_many`), so that their fsync runs while the sequence publishes the step's reports and seals
        its batch; the seal's write then waits for their answer. While an earlier write is outstanding they stay
        held for the seal (writes land in order, and under load one write takes the entries of whole batches)."""
        if not self._unwritten or not self._group or any(t.ids is None for t in self._tickets):
            return
        assert self._log is not None
        ticket = self._held_ticket()
        ticket.sent = self._log.send_many(ticket.entries)  # should it raise, the entries stay held for the seal
        self._unwritten = []
        self._tickets.append(ticket)
        self._unsealed.append(ticket)

    def seal(self) -> Callable[[], None] | None:
        """Group commit, on the sequence at the end of a batch: the log entries `decide` and `on_events` held back
        since the last seal, as one write (`WriteAhead.write_many`) for the runtime to run off the sequence, in seal
        order, together with the answers of the writes `start_write` sent ahead in the batch; None when there are
        none. A write also takes the entries of every batch sealed after it by the time it runs (those batches' own
        writes then find nothing left to do). The runtime releases the batch's reports to clients only once that
        write returned (retrying it while it raises; a write sent ahead whose answer failed is made again). Queued
        reports go to the account only when their entries are written: here, when due, those whose writes have
        returned; in any other call to the account, after waiting for the rest (`wait_written`)."""
        self._advance_settles()
        if self._pending and self._due():
            self._send_written()
        if self._unwritten:
            ticket = self._held_ticket()
            self._unwritten = []
            self._tickets.append(ticket)
            self._unsealed.append(ticket)
        if not self._unsealed:
            return None
        mine, self._unsealed = self._unsealed, []
        last, tickets, log = mine[-1], self._tickets, self._log
        assert log is not None
        settles = any(type(at) is not int for t in mine for at in t.at)

        def write() -> None:
            """This seal's entries and those of every batch sealed since (their writes still queued behind this
            one), in one round trip: under load the runtime's writes queue up, and each would cost an fsync of its
            own; the answers of those sent ahead first. A later seal's write finds its entries written and
            returns."""
            if last.ids is not None:
                return
            due = [t for t in tuple(tickets) if t.ids is None]  # oldest first: every earlier write has returned
            assert any(due[0] is t for t in mine), "a sealed write ran before an earlier one returned"
            for t in due:
                if t.sent is None:
                    break
                sent, t.sent = t.sent, None
                t.ids = sent()  # raises: the runtime calls again, and the entries are written again
            due = [t for t in due if t.ids is None]
            if due:
                ids = log.write_many([entry for t in due for entry in t.entries])
                at = 0
                for t in due:
                    t.ids, at = ids[at : at + len(t.entries)], at + len(t.entries)
            if settles:
                self.settle_ready()

        return write

    def _held_ticket(self) -> _Ticket:
        """The entries held back since the last write, as one write to make (they stay held until it is made)."""
        return _Ticket([(a, records) for a, records, _ in self._unwritten], [at for _, _, at in self._unwritten])

    def _due(self) -> bool:
        """Whether the queued reports should go now: `batch` orders' worth, or the oldest `flush_after_ns` old."""
        return (
            self._flush_after is None
            or len(self._pending) >= 2 * self._batch
            or self._clock - self._oldest >= self._flush_after
        )

    def _patch(self) -> None:
        """Put the id of each written entry on its spend or its settle, oldest write first, up to the first not yet
        written."""
        pending, tickets = self._pending, self._tickets
        while tickets and tickets[0].ids is not None:
            ticket = tickets.popleft()
            for (account, _), at, wal in zip(ticket.entries, ticket.at, ticket.ids, strict=True):  # type: ignore[arg-type]
                if type(at) is not int:
                    at.wal[account] = wal  # type: ignore[union-attr]
                    at.waiting -= 1  # type: ignore[union-attr]
                elif at >= 0:
                    pending[at] = msgspec.structs.replace(pending[at], wal=wal)  # type: ignore[type-var]

    def _report_written(self) -> None:
        """Hand the queued reports whose entries are written to the host, never waiting for a write."""
        if self._pending:
            self._patch()
            self._send_written()

    def _send_written(self) -> None:
        """Send the queued reports up to the first whose entry is not yet written, or the first settle not yet
        sent (without waiting)."""
        ats = [at for t in self._tickets for at in t.at if type(at) is int and at >= 0]
        ats += [at for _, _, at in self._unwritten if type(at) is int and at >= 0]
        if self._queued:
            ats.append(self._queued[0].at)
        upto = min(ats, default=len(self._pending))
        if upto:
            self._host.report_spent(self._cut(upto))

    def _cut(self, upto: int) -> list[AccountEvent]:
        """The first `upto` queued reports, off the queue (every place in it held elsewhere moves down)."""
        if upto == 0:
            return []
        reports, self._pending = self._pending[:upto], self._pending[upto:]
        for t in self._tickets:
            t.at = [_moved(at, upto) for at in t.at]
        self._unwritten = [(a, records, _moved(at, upto)) for a, records, at in self._unwritten]
        for settle in self._queued:
            settle.at -= upto
        self._oldest = self._clock
        return reports

    def _write_held(self) -> None:
        """The entries held since the last write, written here (after every earlier write: the log keeps their
        order). Raises with the entries still held."""
        if self._unwritten:
            ticket = self._held_ticket()
            assert self._log is not None
            ticket.ids = self._log.write_many(ticket.entries)
            self._unwritten = []
            self._tickets.append(ticket)
            self._patch()

    def _take(self) -> list[AccountEvent]:
        """The queued reports, for the host call about to be made (which applies them first); their log entries are
        written and every settle is sent and answered first (`_settle_now`)."""
        self._settle_now()
        reports, self._pending = self._pending, []
        return reports

    def _spend(self, loc: _Local, cmd: SubmitOrder, order_id: int, now_ns: int) -> OrderAccepted | OrderRejected | None:
        side = loc.symbols.get(cmd.symbol)
        if side is None:
            return None
        cl = cmd.cl_ord_id
        seen = loc.cl_ord_ids
        if cl in seen:
            return None
        qty = cmd.qty
        if qty <= 0 or qty > side.max_qty:
            return self._reject(
                cmd, order_id, now_ns, RejectReason.INVALID_QTY if qty <= 0 else RejectReason.MAX_ORDER_QTY
            )
        if cmd.ord_type is OrdType.LIMIT:
            value = cmd.price
            if value is None:
                return None
            if abs(qty * value * side.factor) > loc.max_notional:
                return self._reject(cmd, order_id, now_ns, RejectReason.MAX_ORDER_NOTIONAL)
            if value < side.lo or value > side.hi:
                return None
        elif cmd.ord_type is OrdType.MARKET and cmd.symbol in loc.exposed:
            # (its hold is valued at the account's reference, which its host keeps current only in symbols the
            # account is exposed to: elsewhere a print may reach the host after the acceptance, docs/reserved.md)
            value = side.value_cap
        else:
            return None
        buy = cmd.side is Side.BUY
        credit = qty * value * side.factor
        if not _affords(loc, side, buy, qty, credit):
            return None
        accepted = OrderAccepted(
            order_id, cl, cmd.account, cmd.symbol, cmd.side, cmd.ord_type, cmd.tif, qty, cmd.price, now_ns,
            cmd.stop_price, cmd.session, cmd.parent_id, cmd.venue,
        )  # fmt: skip
        spent = AllowanceSpent(cmd.account, loc.grant_id, order_id, cmd.symbol, cmd.side, qty, credit, now_ns)
        if wal := self._write_ahead(cmd.account, [spent, accepted]):
            spent = msgspec.structs.replace(spent, wal=wal)
        loc.exposed.add(cmd.symbol)
        seen.add(cl)
        self.local_accepts += 1
        self._charge(loc, side, buy, qty, credit, [spent, accepted], now_ns)
        return accepted

    def _spend_replace(self, loc: _Local, cmd: ReplaceOrder, order_id: int, now_ns: int) -> bool:
        """Accept a replace of LIMIT order `order_id` to (cmd.qty, cmd.price) here when a new LIMIT order of those
        terms on its side would be accepted here (docs/reserved.md, "Replaces"): spends one token, cmd.qty of the
        side's headroom and cmd.qty * price of credit, and queues the AllowanceSpent like an order's. False (nothing
        spent) otherwise: the host decides. Never a local reject."""
        side = loc.symbols.get(cmd.symbol)
        price, qty = cmd.price, cmd.qty
        if side is None or price is None or price < side.lo or price > side.hi or qty <= 0 or qty > side.max_qty:
            return False
        buy = cmd.side is Side.BUY
        credit = qty * price * side.factor
        if not _affords(loc, side, buy, qty, credit):
            return False
        spent = AllowanceSpent(cmd.account, loc.grant_id, order_id, cmd.symbol, cmd.side, qty, credit, now_ns)
        records: list[AccountEvent] = [spent]
        if wal := self._write_ahead(cmd.account, records):
            spent = msgspec.structs.replace(spent, wal=wal)
        elif self._group:  # held: the venue's OrderReplaced may join it in this step
            self._replacing = (spent, records, cmd.cl_ord_id)
        self.local_replaces += 1
        self._charge(loc, side, buy, qty, credit, [spent], now_ns)
        return True

    def _write_ahead(self, account: str, records: list[AccountEvent]) -> str:
        """A spend's `records` (the spend first) into the log before its report leaves: under group commit held as
        one entry for the batch's write (`seal`; the id goes on the spend once written), "" here; else written now,
        its id (a failure raises with nothing spent); "" without a log."""
        if self._group:
            self._unwritten.append((account, records, len(self._pending)))
            return ""
        return "" if self._log is None else self._log.write(account, records)

    def _charge(
        self, loc: _Local, side: _Side, buy: bool, qty: int, credit: int, reports: list[AccountEvent], now_ns: int
    ) -> None:
        """Spend one token, `qty` of the side's headroom and `credit`, and queue the spend's `reports`; a top-up is
        asked for once the tokens run low, and the queue sent once it is full."""
        if buy:
            side.buy -= qty
        else:
            side.sell -= qty
        loc.orders -= 1
        loc.credit -= credit
        pending = self._pending
        if not pending:
            self._oldest = now_ns
        pending += reports
        if loc.orders <= loc.low_at:
            self._low.add(loc.account)
        if len(pending) >= self._hard:
            self.flush()

    def _join_replace(self, replacing: tuple[AllowanceSpent, list[AccountEvent], str], e: Message) -> bool:
        """Whether `e`, the only event of the step that accepted a replace here, is the venue's OrderReplaced of it,
        while its spend is still the last report queued and its entry the last held; if so it joins them (written in
        the same entry, reported right after the spend, no call): applied together they keep the certificate
        (docs/reserved.md, "Replaces")."""
        spent, records, cl_ord_id = replacing
        pending = self._pending
        if (
            type(e) is not OrderReplaced or e.order_id != spent.order_id or e.cl_ord_id != cl_ord_id
            or not pending or pending[-1] is not spent or not self._unwritten or self._unwritten[-1][1] is not records
        ):  # fmt: skip
            return False
        records.append(e)
        pending.append(e)
        seen = self._seen.get(e.account)
        if seen is not None:
            seen.add(e.cl_ord_id)
        self.replaces_joined += 1
        return True

    def _queue_loosening(self, events: list[OrderCanceled | OrderExpired]) -> None:
        """Write `events` ahead (one entry per account) and queue them for the host's next batch."""
        if self._log is not None:  # durable before the reports leave; a failure raises with nothing queued
            by_account: dict[str, list[AccountEvent]] = {}
            for e in events:
                by_account.setdefault(e.account, []).append(e)
            for account, records in by_account.items():
                if self._group:
                    self._unwritten.append((account, records, -1))
                else:
                    self._log.write(account, records)
        pending = self._pending
        if not pending:
            self._oldest = self._clock
        pending.extend(events)

    def _reject(self, cmd: SubmitOrder, order_id: int, now_ns: int, reason: RejectReason) -> OrderRejected:
        """A reject the account would make too (see "Local rejects" in docs/reserved.md), queued like a spend."""
        rejected = OrderRejected.of(cmd, order_id, reason, describe(reason), now_ns)
        self._local[cmd.account].cl_ord_ids.add(cmd.cl_ord_id)
        pending = self._pending
        if not pending:
            self._oldest = now_ns
        pending.append(rejected)
        self.local_rejects += 1
        if len(pending) >= self._hard:
            self.flush()
        return rejected

    def _fallback(self, cmd: SubmitOrder, order_id: int, now_ns: int) -> OrderAccepted | OrderRejected:
        """The host's strict decision; for a reserved account the same call brings a fresh grant when its
        allowance is missing, void or low, or when this decision voids it."""
        self.fallbacks += 1
        account = cmd.account
        reports = self._take()  # first: the settles it answers may void or replace the account's allowance
        asks: dict[str, GrantAsk] = {}
        if account in self._accounts:
            loc = self._local.get(account)
            if loc is not None and not loc.lease.void and account not in self._low:
                asks[account] = GrantAsk(self._request, now_ns, loc.grant_id, False)
            elif now_ns >= self._retry_at.get(account, 0):
                asks[account] = GrantAsk(self._request, now_ns, 0, account not in self._seen)
        try:
            quote = self._quotes.get(cmd.symbol) if cmd.price is None else None
            quotes = {} if quote is None else {cmd.symbol: quote}
            (decision,), granted = self._host.gate_decide(reports, Decide([(cmd, order_id, now_ns)], asks, quotes))
        except Exception:
            self._lost(reports, [account])
            raise
        seen = self._seen.get(account)
        if seen is not None:
            seen.add(cmd.cl_ord_id)
        if granted:
            self._install(granted)
        if type(decision) is OrderAccepted and (loc := self._local.get(account)) is not None:
            loc.exposed.add(cmd.symbol)
        return decision

    def _asks(self) -> dict[str, GrantAsk]:
        """Per reserved account: keep the grant held while it lives, else (once past its retry time) a fresh one.
        None for an account waiting for its rebuild (`unsynced`): its log may hold entries its host has not
        journaled, and a local acceptance's report would have the host delete the log up to that later entry."""
        asks: dict[str, GrantAsk] = {}
        clock = self._clock
        for account in self._accounts:
            if account in self.unsynced:
                continue
            loc = self._local.get(account)
            if loc is not None and not loc.lease.void:
                asks[account] = GrantAsk(self._request, clock, loc.grant_id, False)
            elif clock >= self._retry_at.get(account, 0):
                asks[account] = GrantAsk(self._request, clock, 0, account not in self._seen)
        return asks

    def _install(self, granted: dict[str, Allowance | None]) -> None:
        """Take the grants a host call brought: a new allowance replaces the account's, None means none for now."""
        for account, allowance in granted.items():
            self._low.discard(account)
            if allowance is None:
                self._local.pop(account, None)
                self._retry_at[account] = self._clock + GRANT_RETRY_NS
                continue
            self._retry_at.pop(account, None)
            seen = self._seen.get(account)
            if seen is None:
                seen = self._seen[account] = set(allowance.cl_ord_ids)
            elif allowance.cl_ord_ids:
                seen |= allowance.cl_ord_ids
            g, lim = allowance.grant, allowance.limits
            symbols: dict[str, _Side] = {}
            for s in g.symbols:
                inst = self._instruments.by_symbol(s.symbol)
                if inst is None:
                    continue
                max_qty = lim.symbols[s.symbol].max_order_qty
                collar = lim.symbols[s.symbol].collar_bp
                symbols[s.symbol] = _Side(
                    s.lo, s.hi, s.value_cap, collar, money_factor(inst), max_qty, s.buy_qty, s.sell_qty
                )
            # an account can never hold more tokens than its rate window allows: asking for more while it holds
            # fewer than `low_orders` would ask on every order, so it asks once half its window is spent
            low_at = min(self._low_orders, lim.orders_per_window // 2)
            self._local[account] = _Local(
                account, g.grant_id, g.ts_ns, allowance.lease, g.orders, low_at, g.credit, lim.max_order_notional,
                seen, symbols, set(allowance.exposed),
            )  # fmt: skip

    def _request_top_ups(self) -> None:
        """Ask, without waiting, for a top-up of every allowance running low (one at a time per account). The queued
        reports whose entries are written go first; the rest follow when theirs are (waiting for them here would
        hold the sequence for a write or two). A spend the host has not heard of yet still counts in the grant it
        was spent from, so a top-up can only come out smaller for it, never larger (docs/reserved.md, Refills); one
        that comes out empty is asked for again `GRANT_RETRY_NS` later."""
        sent = False
        for account in list(self._low):
            if account in self._topups or self._clock < self._topup_at.get(account, 0):
                continue
            self._low.discard(account)
            loc = self._local.get(account)
            if loc is None or loc.lease.void:
                continue
            if not sent:
                self._report_written()
                sent = True
            self._topups[account] = self._host.gate_top_up(TopUp(account, loc.grant_id, self._request, self._clock))
        self._collect_top_ups()

    def _collect_top_ups(self) -> None:
        """Add the top-ups that have arrived to the allowances they were asked for (if still held)."""
        for account, answer in list(self._topups.items()):
            if not answer.done():
                continue
            del self._topups[account]
            try:
                event = answer.result()
            except Exception:
                self._local.pop(account, None)  # the host may have lost the grant: decide strictly until told
                raise
            if event is None:
                self._topup_at[account] = self._clock + GRANT_RETRY_NS
                continue
            loc = self._local.get(account)
            if loc is None or loc.lease.void or loc.grant_id != event.grant_id:
                continue
            loc.orders += event.orders
            loc.credit += event.credit
            for t in event.symbols:
                side = loc.symbols.get(t.symbol)
                if side is not None:
                    side.buy += t.buy_qty
                    side.sell += t.sell_qty
            self.top_ups += 1
