"""FIX benchmark: the OMS's FIX gateway against a bare QuickFIX acceptor and raw TCP, all in one run.

Each server runs in its own process (`bench.fix_server`); this process is the QuickFIX initiator (FIX 4.4,
FileStore, data dictionary on, like the servers). Figures:

- top level: NewOrderSingle -> ExecutionReport(New) round trips through the OMS gateway, one order at a time
  (non-marketable limit orders), timed from just before the send to the arrival of the report in the initiator's
  callback; and `ops_per_sec`: acknowledged orders per second with `window` orders in flight.
- `fill`: NewOrderSingle -> ExecutionReport(Fill) for marketable orders against resting liquidity.
- `baseline`: the same round trips and pipelined run against a bare QuickFIX acceptor that answers each order with
  a fixed ExecutionReport (no OMS behind it).
- `floor`: a raw TCP ping-pong of a message-sized payload between two Python processes.
- `ratio`: OMS over baseline for p50, p99 (targets: <= 1.5 and <= 2) and ops_per_sec.

Every latency here is closed loop (`load: "closed"`): one order in flight, the next sent when the report arrived;
each section keeps its whole distribution (`hdr`, see `bench.report`).

The OMS core behind the gateway is the in-process one (`oms.apps.serve.local_engine`: accounts in this process in
reserved mode, the native book, no journal): this measures the gateway, codecs, risk and matching, not the Ray
hop or the Redis journal (`oms bench risk` measures those). Every report is checked: each order is acknowledged
exactly once with its own OrderID, every marketable order is filled in full at the resting price, and the server
confirms how many orders it booked and how much it filled.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hdrh.histogram import HdrHistogram

from bench.paths import CONFIGS
from bench.report import latency_fields, write_result
from bench.risk import bench_accounts_toml
from fix_gateway import tags as T
from fix_gateway.client import FixClient, Received
from oms.infra.redis.server import free_port

SESSIONS = """[DEFAULT]
ConnectionType=acceptor
SenderCompID=OMS
StartTime=00:00:00
EndTime=00:00:00
HeartBtInt=30
SocketNodelay=Y
UseDataDictionary=Y
ResetOnLogon=N
PersistMessages=Y

[SESSION]
BeginString=FIX.4.4
TargetCompID=BENCH
Accounts=FIXA
LogonPassword=bench

[SESSION]
BeginString=FIX.4.4
TargetCompID=LIQUIDITY
Accounts=FIXB
LogonPassword=bench
"""
TARGETS = {"p50_ratio": 1.5, "p99_ratio": 2.0, "ops_per_sec": 10_000.0}
REST_PX, FILL_PX, PIPE_PX = "100", "150", "149.5"  # resting buys, the liquidity's sell price, pipelined buys
LOT = 1000  # the bench accounts' max_order_qty: liquidity is posted in orders of this size


@dataclass
class FixBenchParams:
    orders: int = 5_000  # sequential NOS -> ER(New) round trips, each timed
    fills: int = 2_000  # sequential marketable orders, NOS -> ER(Fill) timed
    pipelined: int = 20_000  # orders sent with `window` in flight, for ops_per_sec
    window: int = 64
    warmup: int = 500  # untimed round trips before each timed run
    pings: int = 5_000  # raw TCP round trips for the floor


def _histogram() -> HdrHistogram:
    return HdrHistogram(1, 60_000_000_000, 3)


class _Server:
    """A `bench.fix_server` child process and an initiator session to it."""

    def __init__(self, mode: str, root: Path, config: Path) -> None:
        self.port = free_port()
        self.dir = root / mode
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "bench.fix_server", mode, "--config", str(config), "--port", str(self.port),
             "--dir", str(self.dir / "server")],
            stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[1],
        )  # fmt: skip
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline().strip()
        if line != "ready":
            self._proc.kill()
            raise RuntimeError(f"bench.fix_server {mode} did not start (said {line!r})")
        self.client = FixClient("FIX.4.4", "BENCH", self.port, self.dir / "bench", password="bench").start()
        self.liquidity: FixClient | None = None

    def kill(self) -> None:
        """Stop everything after a failure, without checking anything."""
        for c in (self.client, self.liquidity):
            if c is not None:
                c.stop()
        self._proc.kill()
        self._proc.communicate(timeout=30)

    def stop(self) -> dict[str, Any]:
        """Stop the clients and the server; what the server says it booked."""
        import json

        self.client.stop()
        if self.liquidity is not None:
            self.liquidity.stop()
        self._proc.terminate()
        out, _ = self._proc.communicate(timeout=60)
        if self._proc.returncode != 0:
            raise RuntimeError(f"bench.fix_server exited with {self._proc.returncode}")
        return json.loads(out.strip().splitlines()[-1])


class _Ids:
    def __init__(self, prefix: str) -> None:
        self._prefix, self._n = prefix, 0

    def __call__(self) -> str:
        self._n += 1
        return f"{self._prefix}{self._n}"


def _round_trips(c: FixClient, n: int, ids: _Ids, price: str, hist: HdrHistogram | None, want: str) -> list[Received]:
    """`n` buy orders one at a time; records send -> report with ExecType/OrdStatus `want` ("new" or "fill")."""
    got = []
    for _ in range(n):
        cl = ids()
        t0 = time.perf_counter_ns()
        c.new_order(cl, "AAPL", "1", "1", price)
        ack = c.next(timeout=30)
        report = ack if want == "new" else c.next(timeout=30)
        if hist is not None:
            hist.record_value(max(report.received_ns - t0, 1))
        if ack[T.CL_ORD_ID] != cl or ack[T.EXEC_TYPE] != "0":
            raise AssertionError(f"order {cl}: expected its ack, got {dict(ack)}")
        if want == "fill" and (report[T.CL_ORD_ID], report[T.ORD_STATUS], report[T.LAST_PX]) != (cl, "2", FILL_PX):
            raise AssertionError(f"order {cl}: expected a full fill at {FILL_PX}, got {dict(report)}")
        got.append(report)
    return got


def _pipelined(c: FixClient, n: int, window: int, ids: _Ids, price: str) -> tuple[float, list[Received]]:
    """`n` orders with at most `window` unacknowledged; acknowledged orders per second."""
    acks: list[Received] = []
    sent = 0
    started = time.perf_counter()
    while len(acks) < n:
        while sent < n and sent - len(acks) < window:
            c.new_order(ids(), "AAPL", "1", "1", price)
            sent += 1
        acks.append(c.next(timeout=30))
    return n / (time.perf_counter() - started), acks


def _check_acks(acks: list[Received], expected: int) -> None:
    if len({m[T.CL_ORD_ID] for m in acks}) != expected or any(m[T.EXEC_TYPE] != "0" for m in acks):
        raise AssertionError("pipelined run: not exactly one ack per order")


def _measure(server: _Server, p: FixBenchParams, oms: bool) -> dict[str, Any]:
    try:
        result = _timed_runs(server, p, oms)
    except BaseException:
        server.kill()
        raise
    booked = server.stop()
    sent = p.warmup + p.orders + p.pipelined + (p.warmup + p.fills if oms else 0)
    liquidity_orders = -(-(p.warmup + p.fills) // LOT) if oms else 0
    if booked["orders"] != sent + liquidity_orders:
        raise AssertionError(f"server booked {booked['orders']} orders, sent {sent + liquidity_orders}")
    if oms and booked["filled_qty"].get("FIXA") != p.warmup + p.fills:
        raise AssertionError(f"server filled {booked['filled_qty']}, expected {p.warmup + p.fills} for FIXA")
    return result


def _timed_runs(server: _Server, p: FixBenchParams, oms: bool) -> dict[str, Any]:
    c = server.client
    ids = _Ids("o")
    _round_trips(c, p.warmup, ids, REST_PX, None, "new")
    hist = _histogram()
    acks = _round_trips(c, p.orders, ids, REST_PX, hist, "new")
    if oms and len({m[T.ORDER_ID] for m in acks}) != p.orders:
        raise AssertionError("OrderIDs are not unique")
    result: dict[str, Any] = latency_fields(hist)
    if oms:
        server.liquidity = FixClient(
            "FIX.4.4", "LIQUIDITY", server.port, server.dir / "liquidity", password="bench"
        ).start()
        total = p.warmup + p.fills
        for i in range(0, total, LOT):
            server.liquidity.new_order(f"liq{i}", "AAPL", "2", str(min(LOT, total - i)), FILL_PX)
            server.liquidity.next(timeout=30)
        _round_trips(c, p.warmup, ids, FILL_PX, None, "fill")
        fill_hist = _histogram()
        _round_trips(c, p.fills, ids, FILL_PX, fill_hist, "fill")
        result["fill"] = latency_fields(fill_hist)
    rate, pipe_acks = _pipelined(c, p.pipelined, p.window, ids, PIPE_PX)
    _check_acks(pipe_acks, p.pipelined)
    result["ops_per_sec"] = rate
    return result


def _floor(pings: int, size: int = 200) -> dict[str, Any]:
    """Raw TCP ping-pong between this process and an echo child process."""
    port = free_port()
    echo = (
        "import socket,sys\n"
        "s=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
        f"s.bind(('127.0.0.1',{port}));s.listen(1);print('ready',flush=True)\n"
        "c,_=s.accept();c.setsockopt(socket.IPPROTO_TCP,socket.TCP_NODELAY,1)\n"
        "while (d:=c.recv(65536)):c.sendall(d)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", echo], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    proc.stdout.readline()
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    payload = b"x" * size
    hist = _histogram()
    warmup = min(500, pings // 10)
    for i in range(warmup + pings):
        t0 = time.perf_counter_ns()
        sock.sendall(payload)
        got = 0
        while got < size:
            got += len(sock.recv(65536))
        if i >= warmup:
            hist.record_value(max(time.perf_counter_ns() - t0, 1))
    sock.close()
    proc.wait(timeout=10)
    proc.stdout.close()
    return {**latency_fields(hist), "payload_bytes": size}


def run(p: FixBenchParams, out_dir: str = "bench/results", progress: Any = print) -> dict[str, Any]:
    """Run the whole benchmark, write `<out_dir>/fix.json` and return what it wrote."""
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="oms-bench-fix-") as tmp:
        root = Path(tmp)
        (root / "accounts.toml").write_text(bench_accounts_toml(["FIXA", "FIXB"]))
        (root / "sessions.cfg").write_text(SESSIONS)
        config = root / "oms.toml"
        config.write_text(
            f'instruments = "{CONFIGS / "instruments.toml"}"\naccounts = "accounts.toml"\n'
            f'[fix]\nsettings = "sessions.cfg"\ndata_dir = "fix"\n'
        )
        progress("fix bench: OMS gateway")
        oms = _measure(_Server("oms", root, config), p, oms=True)
        progress("fix bench: bare QuickFIX acceptor")
        bare = _measure(_Server("bare", root, config), p, oms=False)
        progress("fix bench: raw TCP floor")
        floor = _floor(p.pings)
    result = {
        "name": "fix",
        **oms,
        "baseline": {"name": "bare_quickfix", **bare},
        "floor": {"name": "raw_tcp", **floor},
        "ratio": {
            "p50": oms["p50"] / bare["p50"],
            "p99": oms["p99"] / bare["p99"],
            "ops_per_sec": oms["ops_per_sec"] / bare["ops_per_sec"],
        },
        "targets": TARGETS,
        "core": "in-process accounts (reserved mode, no journal), native book, FileStore, dictionary on",
        "verified": True,
        "params": asdict(p),
        "machine": {"cpus": os.cpu_count(), "load_before": load_before, "load_after": os.getloadavg()},
    }
    write_result("fix", result, out_dir)
    return result


def summary(r: dict[str, Any]) -> str:
    """A table of the measured figures beside their same-run baseline."""

    def row(label: str, d: dict[str, Any]) -> str:
        return f"{label:34s}" + "".join(f"{d[k]:>10.1f}" for k in ("p50", "p99", "p999", "max"))

    return "\n".join(
        [
            f"{'latency (us)':34s}{'p50':>10s}{'p99':>10s}{'p999':>10s}{'max':>10s}",
            row("OMS gateway NOS->ER(New)", r),
            row("OMS gateway NOS->ER(Fill)", r["fill"]),
            row("bare QuickFIX NOS->ER(New)", r["baseline"]),
            row("raw TCP ping-pong", r["floor"]),
            f"pipelined ({r['params']['window']} in flight): OMS {r['ops_per_sec']:,.0f} orders/s, "
            f"bare {r['baseline']['ops_per_sec']:,.0f} orders/s",
            f"ratio OMS/bare: p50 {r['ratio']['p50']:.2f} (target <= {TARGETS['p50_ratio']}), "
            f"p99 {r['ratio']['p99']:.2f} (target <= {TARGETS['p99_ratio']}); "
            f"target >= {TARGETS['ops_per_sec']:,.0f} orders/s on one session",
        ]
    )
