"""Pre-trade risk benchmark: the in-process check, the strict actor round trip, and Ray's bare actor call beside it.

Figures, all from one run:

- top level: `AccountState.decide` timed call by call in this process (`in_process_apply`: decide + apply),
  `time.perf_counter_ns` around each call (the timer's own cost included).
- `strict`: a synchronous `ray.get(actor.submit_batch.remote([order]))` through real `AccountShard` actors that
  journal every decision to a real `redis-server` (AOF, `appendfsync` as given) before answering; and
  `strict.throughput`: decisions per second with `batch` orders per call (`AccountShard.submit_packed`: the
  batch and its answers cross Ray as msgpack bytes) and `in_flight` calls outstanding per actor, spread over
  `accounts` accounts packed into `actors` actors; the orders are made before the clock starts.
- `reserved`: reserved mode over Ray: `RayAllowanceGate.decide` for reserved accounts (`BENCHR000`, ...) on their own
  AccountShard actors, timed call by call. Decisions are local within allowances the actors grant; reports go to the
  actors without waiting, top-ups are asked for at half (`reserved_tokens`), and an order the allowance cannot
  cover is a round trip (counted in `fallbacks`, timed like the others). Each local acceptance is written ahead to
  the Redis report log before `decide` returns (`oms.infra.redis.reportlog`, one XADD, `appendfsync` as given): the top
  figures are the decision without that write (its time, measured around it in the same call, subtracted),
  `durable` the whole call. After each decision the engine's
  post-trade step (`on_events`) runs untimed, with a batch of fills/cancels every `retire_batch` orders;
  `with_step` times decision + that step when it has no fills to carry; `ops_per_sec` is the whole run's orders
  per second, those synchronous post-trade steps (fills journaled before they return) included.
- `baseline`: a bare Ray actor method returning its argument (the same one-order payload): synchronous round trip
  and pipelined calls per second.

A fast wrong answer is not a result, so the run checks itself and fails (AssertionError) otherwise:

- in-process: a second `AccountState` per account, fed the same commands and events, makes the same decisions and
  ends with the same state hash;
- strict: every decision the actors returned equals the decision of an in-process replica fed the same orders and
  events in the same order; the working orders the actors report equal the accepts the harness counted minus those
  it retired; each account's journal holds exactly its decisions, events and marks; each account's `state_hash`
  equals the replica's and the actor's `replayed_hash` (a fresh rebuild from the journal).
- reserved: replaying each account's journal without its allowance events into a strict replica, every journaled
  decision equals the replica's decision of the same order (local accepts included: the safety property on this
  run) and the decision the gate returned; every decision is journaled once; working orders as counted; the
  actor's state without its allowance equals the replica's, and its `state_hash` its `replayed_hash`.

The bench accounts are generated (`BENCH000`, ...) into a temporary accounts file: `[defaults]` of
`configs/accounts.toml`, with limits widened so that decisions are accepts except the orders deliberately sized
above `max_order_qty` (`p_reject`). Orders are limit orders on AAPL and MSFT within 1 % of a fixed reference. In
both modes each account keeps about `working` orders working; older ones are filled or canceled (untimed in
process; through `apply_batch` calls in the strict throughput run, counted in its seconds).
"""

from __future__ import annotations

import gc
import json
import os
import random
import tempfile
import time
import tomllib
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

import msgspec
from hdrh.histogram import HdrHistogram

from bench.report import latency_fields, write_result
from oms.core.accounts import AccountEvent, AccountState, AllowanceRequest
from oms.core.model.enums import CancelReason, OrdType, Side, TimeInForce
from oms.core.model.instruments import Instrument, InstrumentRegistry
from oms.core.model.messages import OrderAccepted, OrderCanceled, OrderFilled, OrderRejected, SubmitOrder, TradePrinted
from oms.infra.ray.actors import RayAllowanceGate, ShardConfig, account_actor_class, pack, unpack_decisions
from oms.infra.ray.runtime import RaySettings, start_ray, stop_ray
from oms.infra.redis.journal import Journal
from oms.infra.redis.reportlog import ReportLog
from oms.infra.redis.server import AppendFsync, ManagedRedis, make_client
from risk.limits import RiskConfig, load_risk_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
INSTRUMENTS = CONFIGS / "instruments.toml"
ACCOUNTS = CONFIGS / "accounts.toml"

#: Reference prices in price units (AAPL 150.00, MSFT 400.00; both have price_precision 4).
REFERENCE = {"AAPL": 1_500_000, "MSFT": 4_000_000}

#: What the bench accounts change in `[defaults]`: room for every order the run sends, the checks still run.
GENEROUS = {
    "start_cash": "10000000",
    "credit_limit": "100000000",
    "max_gross_notional": "50000000",
    "max_net_notional": "25000000",
    "max_order_qty": "1000",
    "max_position": "10000000",
    "max_open_orders": 1_000_000,
    "orders_per_window": 1_000_000,
    "window_ms": 1000,
}

TARGETS = {"in_process_p50_us": 2.0, "reserved_over_in_process_p50_us": 5.0, "strict_ops_per_sec": 20_000.0}

Item = tuple[SubmitOrder, int, int]  # (command, order id, now_ns): what `AccountShard.submit_batch` takes
Decision = OrderAccepted | OrderRejected


@dataclass(frozen=True)
class RiskBenchParams:
    checks: int = 100_000  # in-process decisions, each timed on its own
    strict_calls: int = 2_000  # synchronous one-order round trips to the account actors
    strict_orders: int = 100_000  # orders in the strict throughput run
    reserved_orders: int = 100_000  # reserved-mode decisions through the Ray gate, each timed on its own
    reserved_tokens: int = 256  # order tokens a grant asks for (top-ups asked for at half)
    baseline_calls: int = 2_000  # synchronous round trips to a bare actor
    baseline_pipelined: int = 10_000  # calls in the bare actors' pipelined run
    warmup: int = 100  # untimed calls before each Ray measurement
    accounts: int = 16
    actors: int = 4  # accounts are packed round-robin into this many actors
    batch: int = 256  # orders per actor call in the strict throughput run
    in_flight: int = 3  # calls outstanding per actor in the pipelined runs
    working: int = 16  # working orders per account before the oldest are filled or canceled
    retire_batch: int = 256  # strict throughput: fills/cancels per apply_batch call; 0: never (the state grows)
    p_fill: float = 0.5  # share of retired orders that fill (the others are canceled)
    p_reject: float = 0.02  # share of orders sized above max_order_qty (rejected)
    appendfsync: str = "always"  # the journal's redis-server: always | everysec | no
    snapshot_every: int = 1_000  # journal records between snapshots of an account
    seed: int = 7


# -- WORKLOAD --


def account_names(n: int) -> list[str]:
    return [f"BENCH{i:03d}" for i in range(n)]


def _toml_value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str | list):
        return json.dumps(v)  # JSON strings and string lists are valid TOML
    raise TypeError(f"cannot write {v!r} as TOML")


def reserved_names(n: int) -> list[str]:
    return [f"BENCHR{i:03d}" for i in range(n)]


def bench_accounts_toml(accounts: Iterable[str], source: Path = ACCOUNTS, reserved: Iterable[str] = ()) -> str:
    """An accounts file: `[defaults]` (with its symbol tables) of `source` widened by GENEROUS, strict, one empty
    table per account (`risk_mode = "reserved"` for those in `reserved`), and `source`'s `[session]`."""
    with open(source, "rb") as f:
        raw = tomllib.load(f)
    defaults = {**raw.get("defaults", {}), **GENEROUS, "risk_mode": "strict"}
    symbols: Mapping[str, Mapping[str, object]] = defaults.pop("symbols", {})
    lines = ["[defaults]", *(f"{k} = {_toml_value(v)}" for k, v in defaults.items())]
    for sym, table in symbols.items():
        lines += ["", f'[defaults.symbols."{sym}"]', *(f"{k} = {_toml_value(v)}" for k, v in table.items())]
    for name in accounts:
        lines += ["", f"[accounts.{name}]"]
    for name in reserved:
        lines += ["", f"[accounts.{name}]", 'risk_mode = "reserved"']
    if "session" in raw:
        lines += ["", "[session]", *(f"{k} = {_toml_value(v)}" for k, v in raw["session"].items())]
    return "\n".join(lines) + "\n"


class OrderFlow:
    """Seeded new limit orders: either side, within 1 % of the reference on the tick grid, 1-100 shares; a share
    `p_reject` is one lot above the account's max_order_qty. Order ids and the clock only go up."""

    def __init__(self, risk: RiskConfig, instruments: InstrumentRegistry, p_reject: float, seed: int) -> None:
        self._rng = random.Random(seed)
        self._p_reject = p_reject
        self._symbols = sorted(REFERENCE)
        self._tick = {s: _inst(instruments, s).tick for s in self._symbols}
        self._too_big = {s: risk.defaults.symbols[s].max_order_qty + _inst(instruments, s).lot for s in self._symbols}
        self._order_id = 0
        self._now = time.time_ns()

    def next_now(self) -> int:
        """The next tick of the flow's clock (for events the harness makes between orders)."""
        self._now += 1_000
        return self._now

    def next(self, account: str) -> Item:
        rng = self._rng
        self._order_id += 1
        self._now += 1_000
        sym = rng.choice(self._symbols)
        tick, ref = self._tick[sym], REFERENCE[sym]
        side = Side.BUY if rng.random() < 0.5 else Side.SELL
        price = ref + rng.randint(-ref // 100 // tick, ref // 100 // tick) * tick
        qty = self._too_big[sym] if rng.random() < self._p_reject else rng.randint(1, 100)
        cmd = SubmitOrder(account, f"C{self._order_id}", sym, side, OrdType.LIMIT, qty, price, tif=TimeInForce.DAY)
        return cmd, self._order_id, self._now


def _inst(instruments: InstrumentRegistry, symbol: str) -> Instrument:
    inst = instruments.by_symbol(symbol)
    if inst is None:
        raise ValueError(f"{INSTRUMENTS} lacks {symbol}, which the benchmark trades")
    return inst


def _hist() -> HdrHistogram:
    return HdrHistogram(1, 60_000_000_000, 3)


# -- IN PROCESS --

Entry = Item | AccountEvent  # what an account was fed, in order: a new order to decide or an event to apply


def measure_in_process(
    p: RiskBenchParams, risk: RiskConfig, instruments: InstrumentRegistry
) -> tuple[HdrHistogram, HdrHistogram, dict[str, Any]]:
    """(decide ns, decide + apply ns, verified counts) over `p.checks` orders spread over the accounts."""
    accounts = account_names(p.accounts)
    flow = OrderFlow(risk, instruments, p.p_reject, p.seed)
    items = [flow.next(accounts[i % len(accounts)]) for i in range(p.checks)]
    start = items[0][2] - 1 if items else 0
    states: dict[str, AccountState] = {}
    fed: dict[str, list[Entry]] = {}
    decided: dict[str, list[Decision]] = {a: [] for a in accounts}
    working: dict[str, deque[OrderAccepted]] = {a: deque() for a in accounts}
    for a in accounts:
        limits = risk.limits_for(a)
        assert limits is not None
        states[a] = AccountState(a, limits, instruments)
        fed[a] = [states[a].mark(sym, px, start) for sym, px in REFERENCE.items()]
    rng = random.Random(p.seed + 1)
    decide_h, apply_h = _hist(), _hist()
    clock = time.perf_counter_ns
    fills = 0
    gc.collect()
    gc.freeze()  # the pre-built workload is the harness's, not the accounts': keep the collector off it
    try:
        for item in items:
            cmd, order_id, now = item
            state = states[cmd.account]
            t0 = clock()
            d = state.decide(cmd, order_id, now)
            t1 = clock()
            state.apply(d)
            t2 = clock()
            decide_h.record_value(max(t1 - t0, 1))
            apply_h.record_value(max(t2 - t0, 1))
            fed[cmd.account].append(item)
            decided[cmd.account].append(d)
            if type(d) is OrderAccepted:
                ring = working[cmd.account]
                ring.append(d)
                if len(ring) > p.working:  # the venue's answer to the oldest working order (untimed)
                    event = _retire(ring.popleft(), rng.random() < p.p_fill, now)
                    fills += type(event) is OrderFilled
                    state.apply(event)
                    fed[cmd.account].append(event)
    finally:
        gc.unfreeze()
    counts = _verify_in_process(fed, decided, states, risk, instruments)
    return decide_h, apply_h, {**counts, "fills": fills}


def _retire(order: OrderAccepted, fill: bool, now: int) -> OrderFilled | OrderCanceled:
    """The venue's last word on a working order: one full fill at its limit price, or a cancel."""
    a, px = order, order.price
    assert px is not None
    if fill:
        return OrderFilled(a.order_id, a.cl_ord_id, a.account, a.symbol, a.order_id, a.side, a.qty, px, 0, a.qty,
                           a.qty * px, False, now)  # fmt: skip
    return OrderCanceled(a.order_id, a.cl_ord_id, a.account, a.symbol, CancelReason.USER, a.qty, now)


def _verify_in_process(
    fed: dict[str, list[Entry]],
    decided: dict[str, list[Decision]],
    states: dict[str, AccountState],
    risk: RiskConfig,
    instruments: InstrumentRegistry,
) -> dict[str, Any]:
    """A second AccountState per account fed the same entries: same decisions, same final state hash."""
    accepted = 0
    reasons: Counter[str] = Counter()
    for account, entries in fed.items():
        limits = risk.limits_for(account)
        assert limits is not None
        replica = AccountState(account, limits, instruments)
        again: list[Decision] = []
        for e in entries:
            if isinstance(e, tuple):
                d = replica.decide(*e)
                replica.apply(d)
                again.append(d)
            else:
                replica.apply(e)
        if again != decided[account]:
            pairs = zip(again, decided[account], strict=False)
            first = next((i for i, (x, y) in enumerate(pairs) if x != y), min(len(again), len(decided[account])))
            raise AssertionError(f"in-process {account}: decisions differ on replay from decision {first}")
        if replica.state_hash() != states[account].state_hash():
            raise AssertionError(f"in-process {account}: replica ends in another state")
        accepted += sum(type(d) is OrderAccepted for d in again)
        reasons.update(d.reason.name for d in again if type(d) is OrderRejected)
    rejected = sum(reasons.values())
    return {
        "decisions": accepted + rejected,
        "accepted": accepted,
        "rejected": rejected,
        "reject_reasons": dict(reasons),
    }


# -- RAY --


class Echo:
    """The bare actor: one method that returns its argument."""

    def echo(self, x: object) -> object:
        return x


def _sync_round_trips(call: Callable[[], object], n: int, warmup: int) -> HdrHistogram:
    """ns per synchronous `call()` (it submits and `ray.get`s), `warmup` untimed calls first."""
    for _ in range(warmup):
        call()
    hist, clock = _hist(), time.perf_counter_ns
    for _ in range(n):
        t0 = clock()
        call()
        hist.record_value(max(clock() - t0, 1))
    return hist


def _pipeline(
    n_actors: int, in_flight: int, submit: Callable[[int], Any], on_result: Callable[[Any, Any], None]
) -> float:
    """Keep `in_flight` calls outstanding on each actor until `submit(k)` returns None for every actor; returns
    the seconds it took. `submit(k)` -> (ref, tag) | None; `on_result(tag, value)` sees every result (`ray.wait`,
    then `ray.get` of what is ready: never one blocking get after another)."""
    import ray

    pending: dict[Any, tuple[int, Any]] = {}
    t0 = time.perf_counter()
    for k in range(n_actors):
        for _ in range(in_flight):
            call = submit(k)
            if call is None:
                break
            pending[call[0]] = (k, call[1])
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        for ref, value in zip(ready, ray.get(ready), strict=True):
            k, tag = pending.pop(ref)
            on_result(tag, value)
            call = submit(k)
            if call is not None:
                pending[call[0]] = (k, call[1])
    return time.perf_counter() - t0


def measure_baseline(p: RiskBenchParams, payload: list[Item]) -> tuple[HdrHistogram, float]:
    """(sync round trip ns, pipelined calls/s) of bare actors echoing `payload`."""
    import ray

    echo_cls = ray.remote(num_cpus=0)(Echo)
    actors = [echo_cls.remote() for _ in range(p.actors)]
    try:
        ray.get([a.echo.remote(None) for a in actors])
        first = actors[0]
        hist = _sync_round_trips(lambda: ray.get(first.echo.remote(payload)), p.baseline_calls, p.warmup)
        left = [p.baseline_pipelined // p.actors + (k < p.baseline_pipelined % p.actors) for k in range(p.actors)]
        got = [0]

        def submit(k: int) -> Any:
            if left[k] == 0:
                return None
            left[k] -= 1
            return actors[k].echo.remote(payload), None

        def on_result(_tag: object, value: object) -> None:
            got[0] += 1
            assert value == payload

        elapsed = _pipeline(p.actors, p.in_flight, submit, on_result)
        assert got[0] == p.baseline_pipelined
        return hist, p.baseline_pipelined / elapsed if elapsed else 0.0
    finally:
        for a in actors:
            ray.kill(a)


class StrictRun:
    """Account actors on a real journal, and what the harness sent them and heard back.

    In the throughput run each actor's accounts keep about `working` orders working: once an actor has more than
    that (per account) plus `retire_batch`, the harness retires its oldest `retire_batch` accepted orders with one
    `apply_batch` call (a full fill with probability `p_fill`, else a cancel), in the same pipeline as the
    decisions. So the state and the snapshots stay the same size however many orders run.
    """

    def __init__(self, p: RiskBenchParams, config: ShardConfig, risk: RiskConfig, instruments: InstrumentRegistry):
        import ray

        self._ray = ray
        self.p = p
        self.accounts = account_names(p.accounts)
        self.owner = {a: i % p.actors for i, a in enumerate(self.accounts)}
        host_cls = account_actor_class()
        self.actors = [
            host_cls.remote([a for a in self.accounts if self.owner[a] == k], config) for k in range(p.actors)
        ]
        ray.get([a.accounts.remote() for a in self.actors])  # every actor is up and has recovered its accounts
        ray.get([a.mark.remote(sym, px, time.time_ns()) for a in self.actors for sym, px in REFERENCE.items()])
        self.flow = OrderFlow(risk, instruments, p.p_reject, p.seed + 2)
        self.sent: dict[str, list[Entry]] = {a: [] for a in self.accounts}  # in each actor's execution order
        self.answers: dict[int, Decision] = {}
        self.live: list[deque[OrderAccepted]] = [deque() for _ in range(p.actors)]  # accepted, not yet retired
        self.accepted = self.retired = 0
        self._rng = random.Random(p.seed + 3)
        self._next = 0

    def next_item(self, accounts: list[str] | None = None) -> Item:
        pool = self.accounts if accounts is None else accounts
        self._next += 1
        item = self.flow.next(pool[self._next % len(pool)])
        self.sent[item[0].account].append(item)
        return item

    def record(self, items: list[Item], decisions: list[Decision]) -> None:
        """Keep the decisions that came back for `items` (the accepted ones become retirable)."""
        if len(decisions) != len(items):
            raise AssertionError(f"{len(items)} orders sent, {len(decisions)} decisions back")
        for (cmd, order_id, _), d in zip(items, decisions, strict=True):
            self.answers[order_id] = d
            if type(d) is OrderAccepted:
                self.accepted += 1
                self.live[self.owner[cmd.account]].append(d)

    def one(self) -> None:
        """One synchronous round trip with one order."""
        item = self.next_item()
        actor = self.actors[self.owner[item[0].account]]
        self.record([item], self._ray.get(actor.submit_batch.remote([item])))

    def throughput(self) -> tuple[int, int, float]:
        """(orders, post-trade events, seconds) of `strict_orders` orders in batches of `batch`, `in_flight` calls
        outstanding per actor. The orders are made before the clock starts; what the harness does with the answers
        (and the fills and cancels it sends) runs on the clock."""
        p = self.p
        per_actor = [[a for a in self.accounts if self.owner[a] == k] for k in range(p.actors)]
        counts = [p.strict_orders // p.actors + (k < p.strict_orders % p.actors) for k in range(p.actors)]
        queued = [deque(self.flow.next(per_actor[k][i % len(per_actor[k])]) for i in range(counts[k]))
                  for k in range(p.actors)]  # fmt: skip
        last_now = [0] * p.actors
        events_sent = [0]

        def submit(k: int) -> Any:
            live, todo = self.live[k], queued[k]
            if p.retire_batch and todo and len(live) > p.working * len(per_actor[k]) + p.retire_batch:
                now = last_now[k]
                events = [_retire(live.popleft(), self._rng.random() < p.p_fill, now) for _ in range(p.retire_batch)]
                for e in events:
                    self.sent[e.account].append(e)
                events_sent[0] += len(events)
                self.retired += len(events)
                return self.actors[k].apply_batch.remote(pack(events)), None
            if not todo:
                return None
            items = [todo.popleft() for _ in range(min(p.batch, len(todo)))]
            for item in items:
                self.sent[item[0].account].append(item)
            last_now[k] = items[-1][2]
            return self.actors[k].submit_packed.remote(pack(items)), items

        def on_result(items: list[Item] | None, value: Any) -> None:
            if items is not None:
                self.record(items, unpack_decisions(value))

        elapsed = _pipeline(p.actors, p.in_flight, submit, on_result)
        return p.strict_orders, events_sent[0], elapsed

    def verify(self, config: ShardConfig, risk: RiskConfig, instruments: InstrumentRegistry) -> dict[str, Any]:
        """Replica decisions, working-order counts, journal lengths and replayed hashes (see the module doc)."""
        ray = self._ray
        journal = Journal(make_client(config.redis_url), AccountEvent)
        decisions = journaled = working = 0
        reasons: Counter[str] = Counter()
        for account in self.accounts:
            limits = risk.limits_for(account)
            assert limits is not None
            replica = AccountState(account, limits, instruments)
            records = 0
            for entry in self.sent[account]:
                records += 1
                if not isinstance(entry, tuple):
                    replica.apply(entry)
                    continue
                cmd, order_id, now = entry
                ref = REFERENCE[cmd.symbol]
                if replica.reference_price(cmd.symbol) != ref:  # what the host does with the mark it was given
                    replica.mark(cmd.symbol, ref, now)
                    records += 1
                d = replica.decide(cmd, order_id, now)
                replica.apply(d)
                decisions += 1
                if type(d) is OrderRejected:
                    reasons[d.reason.name] += 1
                if self.answers.get(order_id) != d:
                    raise AssertionError(
                        f"strict {account}: order {order_id}: actor said {self.answers.get(order_id)!r}, "
                        f"the in-process replica {d!r}"
                    )
            actor = self.actors[self.owner[account]]
            summary, live, replayed = ray.get(
                [actor.summary.remote(account), actor.state_hash.remote(account), actor.replayed_hash.remote(account)]
            )
            if not live == replayed == replica.state_hash():
                raise AssertionError(f"strict {account}: state {live}, replayed {replayed}, replica differs")
            length = journal.length(account)
            if length != records:
                raise AssertionError(f"strict {account}: journal holds {length} records, expected {records}")
            journaled += length
            working += len(summary["working_orders"])
        if decisions != len(self.answers):
            raise AssertionError(f"{len(self.answers)} decisions came back for {decisions} orders sent")
        if working != self.accepted - self.retired:
            raise AssertionError(
                f"actors report {working} working orders, the harness counted {self.accepted} accepts "
                f"and retired {self.retired}"
            )
        return {
            "decisions": decisions,
            "accepted": self.accepted,
            "rejected": decisions - self.accepted,
            "reject_reasons": dict(reasons),
            "retired": self.retired,
            "working": working,
            "journal_records": journaled,
            "accounts_hash_equal_replay": len(self.accounts),
        }

    def close(self) -> None:
        for a in self.actors:
            self._ray.kill(a, no_restart=True)


class _TimedLog(ReportLog[AccountEvent]):
    """The gate's write-ahead log, timing each write: a decision's own time is its time without it."""

    def __init__(self, client: Any) -> None:
        super().__init__(client, AccountEvent)
        self.last_ns = 0
        self.writes = 0

    def write(self, account: str, records: Sequence[AccountEvent]) -> str:
        t0 = time.perf_counter_ns()
        wal = super().write(account, records)
        self.last_ns = time.perf_counter_ns() - t0
        self.writes += 1
        return wal


class ReservedRun:
    """Reserved accounts on AccountShard actors of their own, behind an `RayAllowanceGate`, and what the harness saw.

    The first trade print per symbol goes through the gate (as the engine's post-trade step would carry it) and
    brings every account its first grant in the same calls. Each account then keeps about `working` orders working:
    once more than that (per account) plus `retire_batch` are live, the oldest `retire_batch` are filled or canceled
    in one post-trade step, the only synchronous calls besides fallbacks.
    """

    def __init__(self, p: RiskBenchParams, config: ShardConfig, risk: RiskConfig, instruments: InstrumentRegistry):
        import ray

        self._ray = ray
        self.p = p
        self.accounts = reserved_names(p.accounts)
        owner = {a: i % p.actors for i, a in enumerate(self.accounts)}
        host_cls = account_actor_class()
        self.actors = [host_cls.remote([a for a in self.accounts if owner[a] == k], config) for k in range(p.actors)]
        ray.get([a.accounts.remote() for a in self.actors])
        self.actor_of = {a: self.actors[owner[a]] for a in self.accounts}
        request = AllowanceRequest(orders=p.reserved_tokens)
        self.log = _TimedLog(make_client(config.redis_url))
        self.gate = RayAllowanceGate(
            self.actor_of, instruments, self.accounts, request, low_orders=p.reserved_tokens // 2, log=self.log
        )
        now = time.time_ns()
        self.gate.on_events([TradePrinted("BENCH", s, 0, px, 1, Side.BUY, now) for s, px in REFERENCE.items()])
        self.flow = OrderFlow(risk, instruments, p.p_reject, p.seed + 4)
        self.sent: dict[int, SubmitOrder] = {}
        self.answers: dict[int, Decision] = {}
        self.live: deque[OrderAccepted] = deque()
        self.retired = 0
        self._rng = random.Random(p.seed + 5)

    def run(self) -> tuple[HdrHistogram, HdrHistogram, HdrHistogram, float]:
        """(decide ns without the write-ahead, decide ns, decide + empty post-trade step ns, seconds) of `warmup` +
        `reserved_orders` orders spread over the accounts (the warm-up ones untimed)."""
        p, gate, flow, log = self.p, self.gate, self.flow, self.log
        decide_h, durable_h, step_h, clock = _hist(), _hist(), _hist(), time.perf_counter_ns
        n = len(self.accounts)
        items = [flow.next(self.accounts[i % n]) for i in range(p.warmup + p.reserved_orders)]
        room = p.working * n + p.retire_batch
        gc.collect()
        gc.freeze()
        t_start = time.perf_counter()
        try:
            for i, (cmd, order_id, now) in enumerate(items):
                log.last_ns = 0
                t0 = clock()
                d = gate.decide(cmd, order_id, now)
                t1 = clock()
                wrote = log.last_ns
                self.sent[order_id] = cmd
                self.answers[order_id] = d
                if type(d) is OrderAccepted:
                    self.live.append(d)
                post: list[OrderFilled | OrderCanceled] = []
                if p.retire_batch and len(self.live) > room:
                    post = [
                        _retire(self.live.popleft(), self._rng.random() < p.p_fill, now) for _ in range(p.retire_batch)
                    ]
                    self.retired += len(post)
                gate.on_events(post)
                t2 = clock()
                if i >= p.warmup:
                    decide_h.record_value(max(t1 - t0 - wrote, 1))
                    durable_h.record_value(max(t1 - t0, 1))
                    if not post:
                        step_h.record_value(max(t2 - t0, 1))
        finally:
            gc.unfreeze()
        return decide_h, durable_h, step_h, time.perf_counter() - t_start

    def verify(self, config: ShardConfig, risk: RiskConfig, instruments: InstrumentRegistry) -> dict[str, Any]:
        """Journal replays against strict replicas, decisions, working orders and hashes (see the module doc)."""
        ray = self._ray
        self.gate.close()  # every allowance returned, every report journaled
        journal = Journal(make_client(config.redis_url), AccountEvent)
        decisions = working = records = accepted = 0
        reasons: Counter[str] = Counter()
        for account in self.accounts:
            actor = self.actor_of[account]
            snap, live, replayed, summary = ray.get([
                actor.snapshot.remote(account), actor.state_hash.remote(account),
                actor.replayed_hash.remote(account), actor.summary.remote(account),
            ])  # fmt: skip
            if live != replayed:
                raise AssertionError(f"reserved {account}: state {live}, replayed from its journal {replayed}")
            limits = risk.limits_for(account)
            assert limits is not None
            replica = AccountState(account, limits, instruments)
            for _, record in journal.read(account):
                records += 1
                if type(record).__name__.startswith("Allowance"):
                    continue
                if isinstance(record, OrderAccepted | OrderRejected) and record.order_id in self.sent:
                    strict = replica.decide(self.sent[record.order_id], record.order_id, record.ts_ns)
                    if strict != record or self.answers.get(record.order_id) != record:
                        raise AssertionError(
                            f"reserved {account}: order {record.order_id}: journal {record!r}, gate "
                            f"{self.answers.get(record.order_id)!r}, strict replica {strict!r}"
                        )
                    decisions += 1
                    accepted += type(record) is OrderAccepted
                    if type(record) is OrderRejected:
                        reasons[record.reason.name] += 1
                replica.apply(record)
            bare = AccountState.restore(msgspec.structs.replace(snap, allowance=None, grant_seq=0), instruments)
            if bare.state_hash() != replica.state_hash():
                raise AssertionError(f"reserved {account}: the actor's state is not the strict replica's")
            working += len(summary["working_orders"])
        if decisions != len(self.answers):
            raise AssertionError(f"{len(self.answers)} reserved decisions made, {decisions} journaled")
        left = {a: n for a in self.accounts if (n := self.log.length(a))}
        if left:
            raise AssertionError(f"write-ahead entries not settled by the journal: {left}")
        if working != accepted - self.retired:
            raise AssertionError(f"actors report {working} working orders, expected {accepted} - {self.retired}")
        g = self.gate
        return {
            "decisions": decisions,
            "accepted": accepted,
            "rejected": decisions - accepted,
            "reject_reasons": dict(reasons),
            "local": g.local_accepts + g.local_rejects,
            "local_rejects": g.local_rejects,
            "fallbacks": g.fallbacks,
            "top_ups": g.top_ups,
            "written_ahead": self.log.writes,
            "retired": self.retired,
            "working": working,
            "journal_records": records,
            "journal_decisions_equal_strict_replay": decisions,
        }

    def close(self) -> None:
        for a in self.actors:
            self._ray.kill(a, no_restart=True)


# -- THE RUN --


def _appendfsync(value: str) -> AppendFsync:
    if value not in ("always", "everysec", "no"):
        raise ValueError(f"appendfsync must be always, everysec or no, not {value!r}")
    return cast(AppendFsync, value)


def run(p: RiskBenchParams, out_dir: str = "bench/results", progress: Callable[[str], None] = print) -> dict:
    """Run the whole benchmark, write `<out_dir>/risk.json` and return what it wrote."""
    import ray

    if p.actors < 1 or p.accounts < p.actors or p.batch < 1 or p.in_flight < 1:
        raise ValueError("need accounts >= actors >= 1, batch >= 1, in_flight >= 1")
    _appendfsync(p.appendfsync)
    instruments = InstrumentRegistry.load(INSTRUMENTS)
    notes: list[str] = []
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="oms-bench-risk-") as tmp:
        risk_path = Path(tmp) / "accounts.toml"
        risk_path.write_text(bench_accounts_toml(account_names(p.accounts), reserved=reserved_names(p.accounts)))
        risk = load_risk_config(risk_path, instruments)

        progress(f"in-process: {p.checks:,} decisions over {p.accounts} accounts, each timed ...")
        decide_h, apply_h, in_verified = measure_in_process(p, risk, instruments)

        redis_server = ManagedRedis(Path(tmp) / "redis", appendfsync=_appendfsync(p.appendfsync))
        started_ray = not ray.is_initialized()
        strict: StrictRun | None = None
        reserved_run: ReservedRun | None = None
        try:
            redis_server.start()
            progress(f"redis-server on {redis_server.url} (appendfsync {p.appendfsync}); starting Ray ...")
            start_ray(RaySettings(num_cpus=2, object_store_mb=200))
            config = ShardConfig(redis_server.url, str(INSTRUMENTS), str(risk_path), p.snapshot_every)

            progress(f"baseline: {p.baseline_calls:,} bare actor round trips, {p.baseline_pipelined:,} pipelined ...")
            payload = [OrderFlow(risk, instruments, 0.0, p.seed).next(account_names(1)[0])]
            base_h, base_calls_per_sec = measure_baseline(p, payload)

            progress(f"strict: {p.actors} account actors for {p.accounts} accounts; {p.strict_calls:,} round trips ...")
            strict = StrictRun(p, config, risk, instruments)
            strict_h = _sync_round_trips(strict.one, p.strict_calls, p.warmup)

            progress(
                f"strict throughput: {p.strict_orders:,} orders, {p.batch} a call, "
                f"{p.in_flight} calls in flight per actor ..."
            )
            orders, post_trade, elapsed = strict.throughput()
            progress("verifying the actors' decisions, journals and states ...")
            strict_verified = strict.verify(config, risk, instruments)
            strict.close()
            strict = None

            progress(
                f"reserved: {p.reserved_orders:,} decisions through the Ray gate over {p.accounts} reserved accounts "
                f"on {p.actors} actors ..."
            )
            reserved_run = ReservedRun(p, config, risk, instruments)
            reserved_h, durable_h, reserved_step_h, reserved_s = reserved_run.run()
            progress("verifying the reserved decisions against strict replays of the journals ...")
            reserved_verified = reserved_run.verify(config, risk, instruments)
        finally:
            if strict is not None:
                strict.close()
            if reserved_run is not None:
                reserved_run.close()
            if started_ray:
                stop_ray()
            redis_server.stop()

    top = latency_fields(decide_h)
    strict_lat = latency_fields(strict_h)
    base = latency_fields(base_h)
    ops = orders / elapsed if elapsed else 0.0
    res = latency_fields(reserved_h)
    reserved = {
        **res,
        "durable": latency_fields(durable_h),
        "with_step": latency_fields(reserved_step_h),
        "ops_per_sec": (p.warmup + p.reserved_orders) / reserved_s if reserved_s else 0.0,
        "over_in_process_p50_us": res["p50"] - top["p50"],
        "local_share": reserved_verified["local"] / reserved_verified["decisions"],
        "fallbacks": reserved_verified["fallbacks"],
        "top_ups": reserved_verified["top_ups"],
        "tokens_per_grant": p.reserved_tokens,
        "seconds": reserved_s,
        "accounts": p.accounts,
        "actors": p.actors,
    }
    result = {
        "name": "risk",
        **top,
        "in_process_apply": latency_fields(apply_h),
        "strict": {
            **strict_lat,
            "appendfsync": p.appendfsync,
            "throughput": {
                "ops_per_sec": ops,
                "count": orders,
                "seconds": elapsed,
                "post_trade_events": post_trade,
                "batch": p.batch,
                "in_flight": p.in_flight,
                "accounts": p.accounts,
                "actors": p.actors,
            },
        },
        "reserved": reserved,
        "baseline": {
            "name": "ray_actor_echo",
            **base,
            "ops_per_sec": base_calls_per_sec,
            "pipelined": {
                "calls_per_sec": base_calls_per_sec,
                "count": p.baseline_pipelined,
                "in_flight": p.in_flight,
                "actors": p.actors,
            },
        },
        "ratio": {
            "strict_p50_over_baseline_p50": strict_lat["p50"] / base["p50"],
            "strict_p50_minus_baseline_p50_us": strict_lat["p50"] - base["p50"],
            "strict_ops_per_sec_over_baseline_calls_per_sec": ops / base_calls_per_sec if base_calls_per_sec else None,
            "strict_p50_over_in_process_p50": strict_lat["p50"] / top["p50"],
            "in_process_p50_over_target": top["p50"] / TARGETS["in_process_p50_us"],
            "strict_ops_per_sec_over_target": ops / TARGETS["strict_ops_per_sec"],
            "reserved_p50_over_in_process_p50": res["p50"] / top["p50"],
            "strict_p50_over_reserved_p50": strict_lat["p50"] / res["p50"],
        },
        "targets": {
            **TARGETS,
            "in_process_met": top["p50"] <= TARGETS["in_process_p50_us"],
            "reserved_met": reserved["over_in_process_p50_us"] <= TARGETS["reserved_over_in_process_p50_us"],
            "strict_met": ops >= TARGETS["strict_ops_per_sec"],
        },
        "verified": {"in_process": in_verified, "strict": strict_verified, "reserved": reserved_verified},
        "machine": {
            "cpus": os.cpu_count(),
            "loadavg_1_5_15_before": load_before,
            "loadavg_1_5_15_after": os.getloadavg(),
        },
        "params": asdict(p),
        "notes": [
            "top-level p50/p99/p999/max: AccountState.decide in this process, microseconds, timer included; "
            "in_process_apply: decide + apply",
            "strict: ray.get(actor.submit_batch.remote([one order])) through AccountShard actors journaling each "
            "decision to redis-server before answering; throughput: decisions/s with batched (msgpack-packed) "
            "pipelined calls",
            "baseline: a bare Ray actor method returning the same one-order payload, same run",
            "reserved: RayAllowanceGate.decide for reserved accounts over AccountShard actors (local within "
            "allowances, fallbacks and top-ups included), less the write-ahead of each local acceptance to Redis; "
            "durable: the whole call, that write included; with_step adds the engine's post-trade step after each "
            "decision",
            *notes,
        ],
    }
    write_result("risk", result, out_dir)
    return result


def summary(r: dict) -> str:
    """A table of the measured figures and what was verified."""
    s, b, a, t = r["strict"], r["baseline"], r["in_process_apply"], r["strict"]["throughput"]
    res = r["reserved"]

    def row(label: str, d: dict) -> str:
        return f"{label:30s}" + "".join(f"{d[k]:>12.2f}" for k in ("p50", "p99", "p999", "max"))

    v_in, v_st, v_re = r["verified"]["in_process"], r["verified"]["strict"], r["verified"]["reserved"]
    m = r["machine"]
    return "\n".join(
        [
            f"{'latency (us)':30s}{'p50':>12s}{'p99':>12s}{'p999':>12s}{'max':>12s}",
            row("in-process decide", r),
            row("in-process decide+apply", a),
            row("reserved (Ray gate)", res),
            row(f"reserved + write-ahead ({s['appendfsync']})", res["durable"]),
            row("reserved + post-trade step", res["with_step"]),
            row(f"strict round trip ({s['appendfsync']})", s),
            row("baseline: bare Ray actor", b),
            f"{'throughput':30s}",
            f"{'strict decisions/s':30s}{t['ops_per_sec']:>12,.0f}  ({t['batch']} a call, {t['in_flight']} in flight "
            f"per actor, {t['accounts']} accounts on {t['actors']} actors, {t['post_trade_events']:,} fills/cancels "
            f"applied meanwhile)",
            f"{'baseline bare calls/s':30s}{b['ops_per_sec']:>12,.0f}  (one order a call, same pipelining)",
            f"targets: in-process p50 <= {r['targets']['in_process_p50_us']} us: "
            f"{'met' if r['targets']['in_process_met'] else 'not met'}; reserved p50 - in-process p50 = "
            f"{res['over_in_process_p50_us']:.2f} us <= {r['targets']['reserved_over_in_process_p50_us']} us: "
            f"{'met' if r['targets']['reserved_met'] else 'not met'}; strict >= "
            f"{r['targets']['strict_ops_per_sec']:,.0f}/s: {'met' if r['targets']['strict_met'] else 'not met'}; "
            f"strict p50 = {r['ratio']['strict_p50_over_baseline_p50']:.2f}x bare Ray",
            f"verified in-process: {v_in['decisions']:,} decisions ({v_in['rejected']:,} rejects, {v_in['fills']:,} "
            f"fills) equal a replica's, same final states",
            f"verified strict: {v_st['decisions']:,} actor decisions equal an in-process replica's; "
            f"{v_st['accepted']:,} accepts - {v_st['retired']:,} retired = {v_st['working']:,} working orders the "
            f"actors report; {v_st['journal_records']:,} journal "
            f"records as expected; state_hash = replayed_hash = replica's for {v_st['accounts_hash_equal_replay']} "
            f"accounts",
            f"verified reserved: {v_re['decisions']:,} decisions ({v_re['local']:,} local, {v_re['fallbacks']:,} "
            f"round trips, {v_re['top_ups']:,} top-ups) equal a strict replay of each journal; "
            f"{v_re['accepted']:,} accepts - {v_re['retired']:,} retired = {v_re['working']:,} working orders; "
            f"{v_re['written_ahead']:,} acceptances written ahead, every one settled by its journal",
            f"rejects (in-process, strict, reserved): {v_in['reject_reasons']}, {v_st['reject_reasons']}, "
            f"{v_re['reject_reasons']}",
            *(f"note: {n}" for n in r["notes"][4:]),
            f"machine: {m['cpus']} cpus, 1-min load average {m['loadavg_1_5_15_before'][0]:.2f} before, "
            f"{m['loadavg_1_5_15_after'][0]:.2f} after (anything else running skews the Ray figures)",
        ]
    )
