"""Order book benchmark: native engine vs the pure-Python reference, batch throughput and single-call latency.

The workload is a seeded mix of passive limit orders around a drifting mid, cancels and replaces of recent orders,
and marketable IOC/market orders. The reference engine runs a prefix of the same stream; both engines must emit
identical events on it and end in the same book, or the benchmark fails: a fast wrong answer is not a result.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
from hdrh.histogram import HdrHistogram

from bench.report import latency_fields, write_result
from native import CMD_CANCEL, CMD_DTYPE, CMD_NEW, CMD_REPLACE, EVENT_DTYPE, MatchingEngine, ReferenceEngine
from oms.core.model.enums import OrdType, Side, StpMode, TimeInForce

SYMBOL = 1


@dataclass(frozen=True)
class BookBenchParams:
    ops: int = 1_000_000  # commands in the native batch run
    ref_ops: int = 100_000  # prefix of the same stream run through both engines
    latency_calls: int = 200_000  # single-call API calls timed one by one (native); a tenth of it for the reference
    p_new: float = 0.50  # passive limit orders
    p_cancel: float = 0.25
    p_replace: float = 0.10  # the rest are marketable: IOC limits and market orders
    p_iceberg: float = 0.05  # share of passive orders that are icebergs
    accounts: int = 50
    mid: int = 100_000  # in ticks of 1
    spread_ticks: int = 20  # passive orders rest within this many ticks of the mid
    max_lots: int = 10
    recent: int = 2_000  # cancels and replaces pick among the last `recent` passive orders
    batch: int = 65_536  # commands per call of the batch API
    seed: int = 7


def workload(p: BookBenchParams, n: int | None = None) -> np.ndarray:
    """A CMD_DTYPE array of `n` (default `p.ops`) commands, the same for the same parameters."""
    n = p.ops if n is None else n
    rng = np.random.default_rng(p.seed)
    cmds = np.zeros(n, dtype=CMD_DTYPE)
    u = rng.random(n)
    p_new_all = 1 - p.p_cancel - p.p_replace  # passive and marketable new orders
    new_mask = u < p_new_all
    marketable = new_mask & (u >= p.p_new)
    op = np.where(new_mask, CMD_NEW, np.where(u < p_new_all + p.p_cancel, CMD_CANCEL, CMD_REPLACE))
    cmds["op"] = op
    # every row gets a fresh id so a new order never collides; cancels and replaces point back at one of the
    # last `recent` passive orders (some of which have traded or gone meanwhile, as in real flow)
    ids = np.arange(1, n + 1, dtype=np.int64)
    passive_rows = np.flatnonzero(new_mask & ~marketable)
    earlier = np.searchsorted(passive_rows, np.arange(n)) - rng.integers(1, p.recent + 1, n)
    target = passive_rows[np.clip(earlier, 0, len(passive_rows) - 1)] + 1 if len(passive_rows) else ids
    cmds["order_id"] = np.where(new_mask, ids, target)
    cmds["account"] = rng.integers(1, p.accounts + 1, n)
    cmds["symbol"] = SYMBOL
    side = rng.integers(1, 3, n).astype(np.int8)
    cmds["side"] = side
    mid = p.mid + np.cumsum(rng.integers(-1, 2, n)) // 8
    away = rng.integers(1, p.spread_ticks + 1, n)
    passive_px = np.where(side == Side.BUY, mid - away, mid + away)
    cross_px = np.where(side == Side.BUY, mid + p.spread_ticks // 2, mid - p.spread_ticks // 2)
    is_market = marketable & (rng.random(n) < 0.3)
    cmds["ord_type"] = np.where(is_market, OrdType.MARKET, OrdType.LIMIT)
    cmds["tif"] = np.where(marketable, TimeInForce.IOC, TimeInForce.GTC)
    lots = rng.integers(1, p.max_lots + 1, n)
    cmds["qty"] = lots
    cmds["price"] = np.where(is_market, 0, np.where(marketable, cross_px, passive_px))
    iceberg = new_mask & ~marketable & (rng.random(n) < p.p_iceberg) & (lots > 1)
    cmds["display_qty"] = np.where(iceberg, 1, 0)
    # replaces: a new price near the mid and a new total qty
    rep = op == CMD_REPLACE
    cmds["qty"][rep] = rng.integers(1, p.max_lots + 1, int(rep.sum()))
    cmds["price"][rep] = passive_px[rep]
    return cmds


def new_engine(factory: Callable[..., object], capacity: int = 1 << 16) -> object:
    """An engine with the benchmark's symbol; the native one pre-sizes its pools as a deployment would."""
    engine = (
        MatchingEngine(StpMode.CANCEL_RESTING, capacity)
        if factory is MatchingEngine
        else factory(StpMode.CANCEL_RESTING)
    )
    engine.add_symbol(SYMBOL, tick=1, lot=1)
    return engine


def throughput(engine: object, cmds: np.ndarray, batch: int) -> tuple[float, np.ndarray]:
    """(ops/s, event kind counts) of the batch API fed `batch` commands per call."""
    chunks = [np.ascontiguousarray(cmds[i : i + batch]) for i in range(0, len(cmds), batch)]
    kinds = np.zeros(16, dtype=np.int64)
    buffer = np.zeros(8 * batch, dtype=EVENT_DTYPE)  # reused: the steady state of a pipeline
    elapsed = 0.0
    for chunk in chunks:
        t0 = time.perf_counter()
        events = engine.process(chunk, buffer) if isinstance(engine, MatchingEngine) else engine.process(chunk)
        elapsed += time.perf_counter() - t0
        kinds += np.bincount(events["kind"], minlength=16)
    return len(cmds) / elapsed, kinds


def single_call_latency(engine: object, cmds: np.ndarray) -> HdrHistogram:
    """Per-call latency in ns of the single-call API over `cmds` (timer overhead included)."""
    hist = HdrHistogram(1, 60_000_000_000, 3)
    clock = time.perf_counter_ns
    submit, cancel, replace = engine.submit, engine.cancel, engine.replace
    for op, oid, acct, sym, side, typ, tif, qty, px, stop, disp in cmds.tolist():
        if op == CMD_NEW:
            t0 = clock()
            submit(oid, acct, sym, side, typ, tif, qty, px, stop, disp)
        elif op == CMD_CANCEL:
            t0 = clock()
            cancel(oid)
        else:
            t0 = clock()
            replace(oid, qty, px)
        hist.record_value(max(clock() - t0, 1))
    return hist


def verify_same_run(cmds: np.ndarray) -> dict[str, int]:
    """Both engines on the same stream: identical events and final books, else AssertionError."""
    native, ref = new_engine(MatchingEngine), new_engine(ReferenceEngine)
    a, b = native.process(cmds), ref.process(cmds)
    if not np.array_equal(a, b):
        first = int(np.argmax(a != b)) if len(a) == len(b) else min(len(a), len(b))
        raise AssertionError(
            f"engines diverge at event {first}: native {a[first : first + 1]} ref {b[first : first + 1]}"
        )
    if native.snapshot(SYMBOL) != ref.snapshot(SYMBOL):
        raise AssertionError("engines end with different books")
    kinds = np.bincount(a["kind"], minlength=11)
    return {"commands": len(cmds), "events": len(a), "fills": int(kinds[3]), "resting": native.open_orders()}


def run(p: BookBenchParams, out_dir: str = "bench/results", progress: Callable[[str], None] = print) -> dict:
    """Run the whole benchmark, write `<out_dir>/book.json` and return what it wrote."""
    cmds = workload(p)
    prefix = np.ascontiguousarray(cmds[: p.ref_ops])

    progress(f"verifying native == reference on {len(prefix):,} commands ...")
    verified = verify_same_run(prefix)

    progress(f"batch throughput: native on {len(cmds):,} commands, reference on {len(prefix):,}, {p.batch:,} a call")
    native_ops, kinds = throughput(new_engine(MatchingEngine), cmds, p.batch)
    ref_ops, _ = throughput(new_engine(ReferenceEngine), prefix, p.batch)

    progress(f"single-call latency: native {p.latency_calls:,} calls, reference {p.latency_calls // 10:,} ...")
    native_lat = latency_fields(single_call_latency(new_engine(MatchingEngine), cmds[: p.latency_calls]))
    ref_lat = latency_fields(single_call_latency(new_engine(ReferenceEngine), cmds[: p.latency_calls // 10]))

    percentiles = ("p50", "p99", "p999", "max")
    result = {
        "name": "book",
        "unit": "ops/s",
        "count": len(cmds),
        "ops_per_sec": native_ops,
        **{k: native_lat[k] for k in percentiles},
        "load": "closed",
        "latency": native_lat,
        "baseline": {
            "name": "reference",
            "unit": "ops/s",
            "count": len(prefix),
            "ops_per_sec": ref_ops,
            **{k: ref_lat[k] for k in percentiles},
            "load": "closed",
            "latency": ref_lat,
        },
        "ratio": {"ops_per_sec": native_ops / ref_ops, "p50": ref_lat["p50"] / native_lat["p50"]},
        "verified": verified,
        "events": {"total": int(kinds.sum()), "fills": int(kinds[3]), "trades": int(kinds[4])},
        "params": asdict(p),
        "note": "top-level p50/p99/p999/max: single-call API latency in microseconds, one call after another "
        "(closed loop; the distribution is latency.hdr); ratio: native over reference",
    }
    write_result("book", result, out_dir)
    return result


def summary(r: dict) -> str:
    b = r["baseline"]
    return "\n".join(
        [
            f"{'':22s}{'native':>14s}{'reference':>14s}{'ratio':>10s}",
            f"{'batch ops/s':22s}{r['ops_per_sec']:>14,.0f}{b['ops_per_sec']:>14,.0f}"
            f"{r['ratio']['ops_per_sec']:>9.1f}x",
            *(
                f"{'single call ' + k + ' (us)':22s}{r[k]:>14.2f}{b[k]:>14.2f}{b[k] / r[k]:>9.1f}x"
                for k in ("p50", "p99", "p999", "max")
            ),
            f"verified: identical events and books on {r['verified']['commands']:,} commands "
            f"({r['verified']['fills']:,} fills)",
        ]
    )
