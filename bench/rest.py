"""REST benchmark: POST /v1/orders -> 201 (the order acknowledged) over loopback, one at a time and concurrently.

The server is the OMS's `oms.api.ApiServer` (uvicorn on uvloop, httptools) in a process of its own
(`python -m bench.rest serve ...`) over the in-process core (`oms.api.local.local_core`: accounts in reserved mode
in that process, the native book, no journal), so this measures HTTP, JSON, authentication, rate limiting, risk and
matching, not the Ray hop or the Redis journal. This process is the client: plain `http.client` keep-alive
connections with TCP_NODELAY.

- top level `p50`/`p99`/`p999`/`max`: submit -> ack round trips, one request in flight, non-marketable limit buys,
  timed from just before the send to the parsed response; `ops_per_sec`: acknowledged orders per second with
  `connections` connections each keeping one request in flight (a thread per connection);
- every answer is checked (201, status `new`, its own client_order_id, a unique order_id), and the server confirms
  at exit how many orders it booked; a mismatch fails the benchmark.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hdrh.histogram import HdrHistogram

from bench.report import latency_fields, write_result
from bench.risk import bench_accounts_toml

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
ACCOUNT = "RESTA"
SECRET = "bench-rest-secret"
KEYS = f'[keys.bench]\nrole = "trader"\nsecret = "{SECRET}"\naccounts = ["{ACCOUNT}"]\n'
PRICE = "100"
SESSIONS = f"""[DEFAULT]
ConnectionType=acceptor
SenderCompID=OMS
StartTime=00:00:00
EndTime=00:00:00
HeartBtInt=30

[SESSION]
BeginString=FIX.4.4
TargetCompID=UNUSED
Accounts={ACCOUNT}
"""  # load_config wants a FIX sessions file; no acceptor runs here


@dataclass
class RestBenchParams:
    orders: int = 5_000  # sequential submit -> ack round trips, each timed
    concurrent: int = 20_000  # orders sent over `connections` connections for ops_per_sec
    connections: int = 4
    warmup: int = 500  # untimed round trips first


def _histogram() -> HdrHistogram:
    return HdrHistogram(1, 60_000_000_000, 3)


class _Client:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, port: int, prefix: str) -> None:
        self._conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self._conn.connect()
        assert self._conn.sock is not None
        self._conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._headers = {"X-API-Key": SECRET, "Content-Type": "application/json"}
        self._prefix, self._n = prefix, 0

    def submit(self) -> tuple[str, dict[str, Any]]:
        self._n += 1
        cl = f"{self._prefix}{self._n}"
        body = (
            f'{{"account":"{ACCOUNT}","symbol":"AAPL","side":"buy","qty":"1","price":"{PRICE}",'
            f'"tif":"gtc","client_order_id":"{cl}"}}'
        ).encode()
        self._conn.request("POST", "/v1/orders", body, self._headers)
        resp = self._conn.getresponse()
        data = resp.read()
        if resp.status != 201:
            raise AssertionError(f"order {cl}: HTTP {resp.status}: {data[:300]!r}")
        return cl, json.loads(data)

    def close(self) -> None:
        self._conn.close()


def _check(cl: str, order: dict[str, Any], seen: set[int]) -> None:
    if order["client_order_id"] != cl or order["status"] != "new" or order["order_id"] in seen:
        raise AssertionError(f"order {cl}: expected its own new order with a fresh id, got {order}")
    seen.add(order["order_id"])


def _sequential(port: int, p: RestBenchParams, seen: set[int]) -> dict[str, Any]:
    c = _Client(port, "s")
    try:
        for _ in range(p.warmup):
            _check(*c.submit(), seen)
        hist = _histogram()
        for _ in range(p.orders):
            t0 = time.perf_counter_ns()
            cl, order = c.submit()
            hist.record_value(max(time.perf_counter_ns() - t0, 1))
            _check(cl, order, seen)
    finally:
        c.close()
    return latency_fields(hist)


def _concurrent(port: int, p: RestBenchParams, seen: set[int]) -> float:
    per = [p.concurrent // p.connections + (i < p.concurrent % p.connections) for i in range(p.connections)]
    clients = [_Client(port, f"c{i}-") for i in range(p.connections)]
    results: list[list[tuple[str, dict[str, Any]]]] = [[] for _ in clients]
    errors: list[BaseException] = []
    start = threading.Barrier(p.connections + 1)

    def work(i: int) -> None:
        start.wait()
        try:
            results[i] = [clients[i].submit() for _ in range(per[i])]
        except BaseException as exc:  # reported after the join
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(p.connections)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    for c in clients:
        c.close()
    if errors:
        raise errors[0]
    for got in results:
        for cl, order in got:
            _check(cl, order, seen)
    return p.concurrent / elapsed


def run(p: RestBenchParams, out_dir: str = "bench/results", progress: Any = print) -> dict[str, Any]:
    """Run the benchmark, write `<out_dir>/rest.json` and return what it wrote."""
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="oms-bench-rest-") as tmp:
        root = Path(tmp)
        (root / "accounts.toml").write_text(bench_accounts_toml([ACCOUNT]))
        (root / "keys.toml").write_text(KEYS)
        (root / "sessions.cfg").write_text(SESSIONS)
        config = root / "oms.toml"
        config.write_text(
            f'instruments = "{CONFIGS / "instruments.toml"}"\naccounts = "accounts.toml"\n'
            '[fix]\nsettings = "sessions.cfg"\ndata_dir = "fix"\n'
        )
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.rest", "serve", "--config", str(config), "--keys", str(root / "keys.toml")],
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parents[1],
        )
        assert proc.stdout is not None
        line = proc.stdout.readline().split()
        if not line or line[0] != "ready":
            proc.kill()
            proc.communicate(timeout=30)
            raise RuntimeError(f"bench.rest server did not start (said {line!r})")
        port = int(line[1])
        seen: set[int] = set()
        try:
            progress("rest bench: sequential submit -> ack")
            result: dict[str, Any] = _sequential(port, p, seen)
            progress(f"rest bench: {p.connections} connections")
            result["ops_per_sec"] = _concurrent(port, p, seen)
        except BaseException:
            proc.kill()
            proc.communicate(timeout=30)
            raise
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
        if proc.returncode != 0:
            raise RuntimeError(f"bench.rest server exited with {proc.returncode}")
        booked = json.loads(out.strip().splitlines()[-1])
    sent = p.warmup + p.orders + p.concurrent
    if booked["orders"] != sent or booked["working"] != sent or len(seen) != sent:
        raise AssertionError(f"server booked {booked}, sent {sent}, distinct acks {len(seen)}")
    result = {
        "name": "rest",
        **result,
        "core": "ApiServer (uvicorn, uvloop, httptools) in its own process; in-process accounts (reserved mode, no "
        "journal), native book; client: http.client keep-alive, TCP_NODELAY",
        "verified": True,
        "params": asdict(p),
        "machine": {"cpus": os.cpu_count(), "load_before": load_before, "load_after": os.getloadavg()},
    }
    write_result("rest", result, out_dir)
    return result


def summary(r: dict[str, Any]) -> str:
    """The measured figures as a short table."""
    return "\n".join(
        [
            f"{'latency (us)':30s}" + "".join(f"{k:>10s}" for k in ("p50", "p99", "p999", "max")),
            f"{'REST POST /v1/orders -> 201':30s}" + "".join(f"{r[k]:>10.1f}" for k in ("p50", "p99", "p999", "max")),
            f"{r['params']['connections']} connections: {r['ops_per_sec']:,.0f} orders/s acknowledged",
        ]
    )


def _serve(argv: list[str]) -> int:
    """The server side: `python -m bench.rest serve --config C --keys K`; prints `ready <port>`, runs until
    SIGTERM/SIGINT, then prints one JSON line with what it booked."""
    parser = argparse.ArgumentParser(prog="python -m bench.rest serve")
    parser.add_argument("--config", required=True)
    parser.add_argument("--keys", required=True)
    args = parser.parse_args(argv)
    from oms.api import ApiServer, ApiSettings
    from oms.api.local import local_core
    from oms.app import load_config

    core = local_core(load_config(args.config))
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    server = ApiServer(core.host, core.view, ApiSettings(port=0, keys=args.keys, rate_limit=10**9)).start()
    print(f"ready {server.port}", flush=True)
    done.wait()
    server.stop()
    engine = core.engine
    working = sum(1 for o in engine.orders.values() if not o.is_terminal)
    print(json.dumps({"orders": len(engine.orders), "working": working}), flush=True)
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        sys.exit(_serve(sys.argv[2:]))
    sys.exit("usage: python -m bench.rest serve --config C --keys K (the benchmark itself: oms bench rest)")
