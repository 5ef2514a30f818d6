"""The risk benchmark's workload: its parameters, the generated accounts file, and the seeded order flow.

The bench accounts are generated (`BENCH000`, ...; reserved ones `BENCHR000`, ...) into a temporary accounts file:
`[defaults]` of `configs/accounts.toml`, with limits widened (GENEROUS) so that decisions are accepts except the
orders deliberately sized above `max_order_qty` (`p_reject`). Orders are limit orders on AAPL and MSFT within 1 % of a
fixed reference (REFERENCE); `retire` is the venue's last word on a working order (a full fill or a cancel).
"""

from __future__ import annotations

import json
import random
import time
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from hdrh.histogram import HdrHistogram

from bench.paths import CONFIGS
from oms.core.accounts import AccountEvent
from oms.core.model.enums import CancelReason, OrdType, Side, TimeInForce
from oms.core.model.instruments import Instrument, InstrumentRegistry
from oms.core.model.messages import OrderAccepted, OrderCanceled, OrderFilled, OrderRejected, SubmitOrder
from risk.limits import RiskConfig

__all__ = [
    "ACCOUNTS",
    "GENEROUS",
    "INSTRUMENTS",
    "REFERENCE",
    "Decision",
    "Entry",
    "Item",
    "OrderFlow",
    "RiskParams",
    "account_names",
    "bench_accounts_toml",
    "new_histogram",
    "reserved_names",
    "retire",
]

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


Item = tuple[SubmitOrder, int, int]  # (command, order id, now_ns): what `AccountShard.submit_batch` takes
Decision = OrderAccepted | OrderRejected
Entry = Item | AccountEvent  # what an account was fed, in order: a new order to decide or an event to apply


@dataclass(frozen=True)
class RiskParams:
    """What a run of the risk benchmark does: how many of each measurement, the accounts and actors, the order
    mix and the journal's server (`bench.risk.RiskBenchParams` is this, one command-line flag per field)."""

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


def new_histogram() -> HdrHistogram:
    """A histogram of nanoseconds from 1 ns to a minute, 3 significant digits (what every section records)."""
    return HdrHistogram(1, 60_000_000_000, 3)


def retire(order: OrderAccepted, fill: bool, now: int) -> OrderFilled | OrderCanceled:
    """The venue's last word on a working order: one full fill at its limit price, or a cancel."""
    a, px = order, order.price
    assert px is not None
    if fill:
        return OrderFilled(a.order_id, a.cl_ord_id, a.account, a.symbol, a.order_id, a.side, a.qty, px, 0, a.qty,
                           a.qty * px, False, now)  # fmt: skip
    return OrderCanceled(a.order_id, a.cl_ord_id, a.account, a.symbol, CancelReason.USER, a.qty, now)
