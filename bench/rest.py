"""REST benchmark: POST /v1/orders -> 201 (the order acknowledged) over loopback, one at a time and concurrently.

The server is the OMS's `oms.adapters.api.ApiServer` (uvicorn on uvloop, httptools) in a process of its own
(`python -m bench.rest serve ...`) over the in-process core (`oms.apps.local_api.local_core`: accounts in reserved mode
in that process, the native book, no journal), so this measures HTTP, JSON, authentication, rate limiting, risk and
matching, not the Ray hop or the Redis journal. This process is the client: plain `http.client` keep-alive
connections with TCP_NODELAY.

- top level `p50`/`p99`/`p999`/`max`: submit -> ack round trips, one request in flight, non-marketable limit buys,
  timed from just before the send to the parsed response; `ops_per_sec`: acknowledged orders per second with
  `connections` connections each keeping one request in flight (a thread per connection);
- `baseline`: the same two runs against a bare uvicorn app (`python -m bench.rest serve-bare`), same server
  settings (uvloop, httptools), which parses each order's JSON and answers 201 with a fixed order: HTTP and JSON
  and nothing else, as the bare QuickFIX acceptor is for `oms bench fix`; `ratio`: OMS over baseline;
- every answer is checked (201, status `new`, its own client_order_id, a unique order_id), and each server confirms
  at exit how many orders it booked; a mismatch fails the benchmark.

Both latencies are closed loop (`load: "closed"`): one request in flight, the next sent when the answer arrived;
each keeps its whole distribution (`hdr`, see `bench.report`).
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

from bench.paths import CONFIGS
from bench.report import latency_fields, write_result
from bench.risk import bench_accounts_toml
from oms.runtime.signals import StopSignal

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
LogonPassword=unused
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


def _start_server(mode: str, root: Path) -> tuple[subprocess.Popen[str], int]:
    """A `python -m bench.rest serve|serve-bare` child process and the port it listens on."""
    args = ["--config", str(root / "oms.toml"), "--keys", str(root / "keys.toml")] if mode == "serve" else []
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.rest", mode, *args],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().split()
    if len(line) != 2 or line[0] != "ready":
        proc.kill()
        proc.communicate(timeout=30)
        raise RuntimeError(f"bench.rest {mode} server did not start (said {line!r})")
    return proc, int(line[1])


def _measure(mode: str, root: Path, p: RestBenchParams, progress: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(figures, what the server booked) of the sequential and concurrent runs against one server."""
    proc, port = _start_server(mode, root)
    seen: set[int] = set()
    what = "OMS" if mode == "serve" else "bare uvicorn"
    try:
        progress(f"rest bench, {what}: sequential submit -> ack")
        result: dict[str, Any] = _sequential(port, p, seen)
        progress(f"rest bench, {what}: {p.connections} connections")
        result["ops_per_sec"] = _concurrent(port, p, seen)
    except BaseException:
        proc.kill()
        proc.communicate(timeout=30)
        raise
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    if proc.returncode != 0:
        raise RuntimeError(f"bench.rest {mode} server exited with {proc.returncode}")
    booked = json.loads(out.strip().splitlines()[-1])
    sent = p.warmup + p.orders + p.concurrent
    if booked["orders"] != sent or booked.get("working", sent) != sent or len(seen) != sent:
        raise AssertionError(f"{what} server booked {booked}, sent {sent}, distinct acks {len(seen)}")
    return result, booked


def run(p: RestBenchParams, out_dir: str = "bench/results", progress: Any = print) -> dict[str, Any]:
    """Run the benchmark, write `<out_dir>/rest.json` and return what it wrote."""
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="oms-bench-rest-") as tmp:
        root = Path(tmp)
        (root / "accounts.toml").write_text(bench_accounts_toml([ACCOUNT]))
        (root / "keys.toml").write_text(KEYS)
        (root / "sessions.cfg").write_text(SESSIONS)
        (root / "oms.toml").write_text(
            f'instruments = "{CONFIGS / "instruments.toml"}"\naccounts = "accounts.toml"\n'
            '[fix]\nsettings = "sessions.cfg"\ndata_dir = "fix"\n'
        )
        oms, _ = _measure("serve", root, p, progress)
        bare, _ = _measure("serve-bare", root, p, progress)
    result = {
        "name": "rest",
        **oms,
        "baseline": {"name": "bare_uvicorn", **bare},
        "ratio": {
            "p50": oms["p50"] / bare["p50"],
            "p99": oms["p99"] / bare["p99"],
            "ops_per_sec": oms["ops_per_sec"] / bare["ops_per_sec"],
        },
        "core": "ApiServer (uvicorn, uvloop, httptools) in its own process; in-process accounts (reserved mode, no "
        "journal), native book; client: http.client keep-alive, TCP_NODELAY",
        "baseline_core": "a bare ASGI app on the same uvicorn settings, in its own process: parses the order JSON, "
        "answers 201 with a fixed order (no authentication, no OMS)",
        "verified": True,
        "params": asdict(p),
        "machine": {"cpus": os.cpu_count(), "load_before": load_before, "load_after": os.getloadavg()},
    }
    write_result("rest", result, out_dir)
    return result


def summary(r: dict[str, Any]) -> str:
    """The measured figures beside the bare uvicorn baseline, as a short table."""
    keys = ("p50", "p99", "p999", "max")
    b = r["baseline"]
    return "\n".join(
        [
            f"{'latency (us)':30s}" + "".join(f"{k:>10s}" for k in keys),
            f"{'REST POST /v1/orders -> 201':30s}" + "".join(f"{r[k]:>10.1f}" for k in keys),
            f"{'bare uvicorn (fixed 201)':30s}" + "".join(f"{b[k]:>10.1f}" for k in keys),
            f"{r['params']['connections']} connections: {r['ops_per_sec']:,.0f} orders/s acknowledged, "
            f"bare uvicorn {b['ops_per_sec']:,.0f}/s; ratio OMS/bare: p50 {r['ratio']['p50']:.2f}, "
            f"p99 {r['ratio']['p99']:.2f}, orders/s {r['ratio']['ops_per_sec']:.2f}",
        ]
    )


def _serve(argv: list[str]) -> int:
    """The server side: `python -m bench.rest serve --config C --keys K`; prints `ready <port>`, runs until
    SIGTERM/SIGINT, then prints one JSON line with what it booked."""
    parser = argparse.ArgumentParser(prog="python -m bench.rest serve")
    parser.add_argument("--config", required=True)
    parser.add_argument("--keys", required=True)
    args = parser.parse_args(argv)
    from oms.adapters.api import ApiServer, ApiSettings
    from oms.apps.local_api import local_core
    from oms.apps.serve import load_config

    core = local_core(load_config(args.config))
    done = StopSignal()
    server = ApiServer(core.host, core.view, ApiSettings(port=0, keys=args.keys, rate_limit=10**9)).start()
    print(f"ready {server.port}", flush=True)
    done.wait()
    server.stop()
    engine = core.engine
    working = sum(1 for o in engine.orders.values() if not o.is_terminal)
    print(json.dumps({"orders": len(engine.orders), "working": working}), flush=True)
    return 0


class BareApp:
    """A bare ASGI app: each POST's body is parsed as an order's JSON and answered 201 with a fixed new order
    carrying its client_order_id and a fresh order_id. No authentication, no OMS: HTTP and JSON only."""

    def __init__(self) -> None:
        self.orders = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        try:
            cl = json.loads(body)["client_order_id"]
        except (ValueError, KeyError, TypeError):
            await self._answer(send, 400, {"error": "expected an order with a client_order_id"})
            return
        self.orders += 1
        await self._answer(send, 201, {"client_order_id": cl, "order_id": self.orders, "status": "new"})

    @staticmethod
    async def _answer(send: Any, status: int, payload: dict[str, Any]) -> None:
        out = json.dumps(payload).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(out)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": out})


def _serve_bare(argv: list[str]) -> int:
    """The baseline server: `python -m bench.rest serve-bare`; prints `ready <port>`, runs until SIGTERM/SIGINT,
    then prints one JSON line with how many orders it answered."""
    argparse.ArgumentParser(prog="python -m bench.rest serve-bare").parse_args(argv)
    import uvicorn

    app = BareApp()
    config = uvicorn.Config(app, host="127.0.0.1", port=0, loop="uvloop", http="httptools", lifespan="off",
                            log_level="warning", access_log=False)  # fmt: skip
    server = uvicorn.Server(config)
    done = StopSignal()
    thread = threading.Thread(target=server.run, name="bench-bare-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            print("failed", flush=True)
            return 1
        time.sleep(0.005)
    print(f"ready {server.servers[0].sockets[0].getsockname()[1]}", flush=True)
    done.wait()
    server.should_exit = True
    thread.join(15)
    print(json.dumps({"orders": app.orders}), flush=True)
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        sys.exit(_serve(sys.argv[2:]))
    if sys.argv[1:2] == ["serve-bare"]:
        sys.exit(_serve_bare(sys.argv[2:]))
    sys.exit("usage: python -m bench.rest serve --config C --keys K | serve-bare (the benchmark: oms bench rest)")
