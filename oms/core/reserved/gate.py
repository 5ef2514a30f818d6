"""`AllowanceGate`: the engine's risk gate in reserved mode, deciding locally within allowances (docs/reserved.md)."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

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
from risk.money import money_factor
from risk.reasons import describe

__all__ = ["GRANT_RETRY_NS", "HARD_BATCHES", "AllowanceGate"]


@dataclass(slots=True)
class _Side:
    lo: int
    hi: int
    value_cap: int
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


@dataclass(slots=True)
class _Ticket:
    """One sealed write of the log: its entries, the index of each one's spend in the queue (-1: none) and, once
    written, their ids."""

    entries: list[tuple[str, list[AccountEvent]]]
    at: list[int]
    ids: list[str] | None = None


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
        self._unwritten: list[tuple[str, list[AccountEvent], int]] = []  # (account, records, spend's index in _pending)
        self._tickets: deque[_Ticket] = deque()  # sealed writes, oldest first, whose ids are not on their spends yet
        self.wait_written: Callable[[], None] = _no_wait  # the runtime's: returns once every sealed write returned
        self._written: list[str] = []  # the ids of the entries `_take` wrote last
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
        self.local_rejects = 0
        self.fallbacks = 0
        self.top_ups = 0
        for account in self._accounts:
            host.attach_drain(account, self.flush)

    # -- RiskGate --

    def decide(self, cmd: SubmitOrder, order_id: int, now_ns: int) -> OrderAccepted | OrderRejected:
        """Accept within the account's allowance (or reject what the account surely would) here, else ask the host,
        whose answer brings a fresh grant when the account needs one."""
        if now_ns > self._clock:
            self._clock = now_ns
        if self._topups:
            self._collect_top_ups()
        loc = self._local.get(cmd.account)
        if loc is not None and not loc.lease.void and now_ns >= loc.ts_ns:
            accepted = self._spend(loc, cmd, order_id, now_ns)
            if accepted is not None:
                return accepted
        return self._fallback(cmd, order_id, now_ns)

    def decide_replace(self, cmd: ReplaceOrder, order_id: int, now_ns: int) -> RejectReason:
        """Always the host's strict check (replaces are not covered by allowances)."""
        return self._host.gate_check_replace(self._take(), CheckReplace(cmd, order_id, now_ns))

    def on_events(self, events: Iterable[Message]) -> None:
        """Post-trade events and trade prints go to the host in one synchronous call (queued reports ahead of them,
        fresh grants for allowances they voided behind them); without any, queued reports go when due. A step whose
        events are all cancels and expiries of reserved accounts' orders makes no call: they keep every certificate
        (docs/reserved.md), so they are written ahead (with a `log`) and queued like spends. Then top-ups are asked
        for allowances running low."""
        events = list(events)
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
            self._settle(batch, prints)
        elif self._pending and not self._group and self._due():  # with group commit: when the batch is sealed
            self.flush()
        if self._low:
            self._request_top_ups()

    def _settle(self, batch: list[AccountEvent], prints: list[TradePrinted]) -> None:
        """The host's synchronous post-trade call. With a `log`, the batch's events are written ahead first (one
        entry per account, in the same write as the queued reports' entries), so a host that dies mid-call loses
        none: its rebuilt account journals them from the log (and skips them if the call is made again). Then such a
        failure is `Unsettled`: the accounts it touched lose their allowances here (their next orders go to the host)
        and are rebuilt from the log by their host once it answers again (`resync`; a restarted actor does so
        anyway). Without a log, whatever the host raises propagates."""
        ahead: dict[str, list[AccountEvent]] = {}
        if self._log is not None:
            for e in batch:
                ahead.setdefault(e.account, []).append(e)  # type: ignore[union-attr]
            self._unwritten += [(account, records, -1) for account, records in ahead.items()]
        reports: list[AccountEvent] = []
        try:  # a write that fails leaves the entries held: the batch's seal writes them before any report leaves
            reports = self._take()
            wal = dict(zip(ahead, self._written[len(self._written) - len(ahead) :], strict=True)) if ahead else {}
            self._rebuild_first(ahead)
            answer = self._host.gate_settle(reports, Settle(batch, prints, self._asks(), wal))
        except Exception as exc:
            self._lost(reports, ahead)
            if not ahead:
                raise
            raise Unsettled(f"the host of {sorted(ahead)} did not take {len(batch)} post-trade events; they are "
                            f"written ahead and journaled when it is rebuilt: {exc!r}") from exc  # fmt: skip
        self._install(answer)

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
        self._drop(account)
        if command.ts_ns > self._clock:
            self._clock = command.ts_ns
        working = self._host.gate_operate(self._take(), Operate(command))
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
        """Hand the queued reports whose entries are written to the host, never waiting for a write (the runtime's
        timer: a journal that stalls must not stall the sequence with it); then `resync`."""
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
            self._install(self._host.gate_settle(self._take(), Settle([], [], asks)))
        if self._low:
            self._request_top_ups()

    def give_back(self, account: str) -> None:
        """Return what is left of `account`'s allowance to the host."""
        loc = self._local.pop(account, None)
        self._low.discard(account)
        reports = self._take()
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

    def seal(self) -> Callable[[], None] | None:
        """Group commit, on the sequence at the end of a batch: the log entries `decide` and `on_events` held back
        since the last seal, as one write (`WriteAhead.write_many`) for the runtime to run off the sequence, in seal
        order; None when there are none. A write also takes the entries of every batch sealed after it by the time
        it runs (those batches' own writes then find nothing left to do). The runtime releases the batch's reports
        to clients only once that write returned (retrying it while it raises). Queued reports go to the account
        only when their entries are written: here, when due, those whose writes have returned; in any other call to
        the account, after waiting for the rest (`wait_written`)."""
        self._patch()
        if self._pending and self._due():
            self._send_written()
        if not self._unwritten:
            return None
        ticket = self._held_ticket()
        self._unwritten = []
        tickets = self._tickets
        tickets.append(ticket)
        log = self._log
        assert log is not None

        def write() -> None:
            """This seal's entries and those of every batch sealed since (their writes still queued behind this
            one), in one round trip: under load the runtime's writes queue up, and each would cost an fsync of its
            own. A later seal's write finds its entries written and returns."""
            if ticket.ids is not None:
                return
            due = [t for t in tuple(tickets) if t.ids is None]  # oldest first: every earlier write has returned
            assert due[0] is ticket, "a sealed write ran before an earlier one returned"
            ids = log.write_many([entry for t in due for entry in t.entries])
            at = 0
            for t in due:
                t.ids, at = ids[at : at + len(t.entries)], at + len(t.entries)

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
        """Put the id of each written entry on its spend, oldest write first, up to the first not yet written."""
        pending, tickets = self._pending, self._tickets
        while tickets and tickets[0].ids is not None:
            ticket = tickets.popleft()
            for at, wal in zip(ticket.at, ticket.ids, strict=True):  # type: ignore[arg-type]
                if at >= 0:
                    pending[at] = msgspec.structs.replace(pending[at], wal=wal)  # type: ignore[type-var]

    def _report_written(self) -> None:
        """Hand the queued reports whose entries are written to the host, never waiting for a write."""
        if self._pending:
            self._patch()
            self._send_written()

    def _send_written(self) -> None:
        """Send the queued reports up to the first whose entry is not yet written (without waiting)."""
        ats = [at for t in self._tickets for at in t.at if at >= 0]
        ats += [at for _, _, at in self._unwritten if at >= 0]
        upto = min(ats, default=len(self._pending))
        if upto == 0:
            return
        reports, self._pending = self._pending[:upto], self._pending[upto:]
        for t in self._tickets:
            t.at = [at - upto if at >= 0 else at for at in t.at]
        self._unwritten = [(a, records, at - upto if at >= 0 else at) for a, records, at in self._unwritten]
        self._oldest = self._clock
        self._host.report_spent(reports)

    def _take(self) -> list[AccountEvent]:
        """The queued reports, for the host call about to be made (which applies them first); their log entries are
        written first."""
        if self._tickets:
            self.wait_written()
            self._patch()
            assert not self._tickets, "wait_written returned before every sealed entry was written"
        if self._unwritten:  # this batch's, written here (after every earlier one: the log keeps their order)
            ticket = self._held_ticket()
            assert self._log is not None
            ticket.ids = self._written = self._log.write_many(ticket.entries)  # raises with the entries still held
            self._unwritten = []
            self._tickets.append(ticket)
            self._patch()
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
        elif cmd.ord_type is OrdType.MARKET:
            value = side.value_cap
        else:
            return None
        if loc.orders < 1:
            return None
        credit = qty * value * side.factor
        if credit > loc.credit or credit > loc.max_notional:
            return None
        buy = cmd.side is Side.BUY
        if qty > (side.buy if buy else side.sell):
            return None
        accepted = OrderAccepted(
            order_id, cl, cmd.account, cmd.symbol, cmd.side, cmd.ord_type, cmd.tif, qty, cmd.price, now_ns,
            cmd.stop_price, cmd.session, cmd.parent_id, cmd.venue,
        )  # fmt: skip
        spent = AllowanceSpent(cmd.account, loc.grant_id, order_id, cmd.symbol, cmd.side, qty, credit, now_ns)
        if self._group:  # written once the batch is sealed (`seal`), before the acceptance leaves
            self._unwritten.append((cmd.account, [spent, accepted], len(self._pending)))
        elif self._log is not None:  # durable before the acceptance leaves; a failure raises with nothing spent
            spent = msgspec.structs.replace(spent, wal=self._log.write(cmd.account, (spent, accepted)))
        if buy:
            side.buy -= qty
        else:
            side.sell -= qty
        loc.orders -= 1
        loc.credit -= credit
        seen.add(cl)
        pending = self._pending
        if not pending:
            self._oldest = now_ns
        pending.append(spent)
        pending.append(accepted)
        self.local_accepts += 1
        if loc.orders <= loc.low_at:
            self._low.add(cmd.account)
        if len(pending) >= self._hard:
            self.flush()
        return accepted

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
        asks: dict[str, GrantAsk] = {}
        if account in self._accounts:
            loc = self._local.get(account)
            if loc is not None and not loc.lease.void and account not in self._low:
                asks[account] = GrantAsk(self._request, now_ns, loc.grant_id, False)
            elif now_ns >= self._retry_at.get(account, 0):
                asks[account] = GrantAsk(self._request, now_ns, 0, account not in self._seen)
        reports = self._take()
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
                symbols[s.symbol] = _Side(s.lo, s.hi, s.value_cap, money_factor(inst), max_qty, s.buy_qty, s.sell_qty)
            # an account can never hold more tokens than its rate window allows: asking for more while it holds
            # fewer than `low_orders` would ask on every order, so it asks once half its window is spent
            low_at = min(self._low_orders, lim.orders_per_window // 2)
            self._local[account] = _Local(
                account, g.grant_id, g.ts_ns, allowance.lease, g.orders, low_at, g.credit, lim.max_order_notional,
                seen, symbols,
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
