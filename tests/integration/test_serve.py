"""`oms serve` as a user runs it: a FIX client trades through the whole OMS (Ray actors, Redis journal), and
SIGTERM stops it cleanly, reporting the working order it cancels."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import redis
from msgspec.structs import replace

from fix_gateway import tags as T
from fix_gateway.client import FixClient
from fix_gateway.codec import utc_timestamp
from oms.core.accounts import AccountEvent
from oms.core.model.enums import CancelReason, Side
from oms.core.model.messages import OrderCanceled, TradePrinted
from oms.infra.clickhouse.clickhouse import connect
from oms.infra.clickhouse.reports import tca_orders
from oms.infra.clickhouse.tape import Quote, TapeRecord, tape_decoder, tape_key
from oms.infra.ray.actors import AccountShard, ShardConfig
from oms.infra.redis.journal import Journal
from oms.infra.redis.server import ManagedRedis, free_port, make_client

pytestmark = pytest.mark.integration

CONFIGS = Path(__file__).parents[2] / "configs"


@pytest.fixture
def configs(tmp_path: Path) -> tuple[Path, int]:
    return serve_configs(tmp_path)


def serve_configs(tmp_path: Path) -> tuple[Path, int]:
    """A copy of the default configuration under `tmp_path`, on free ports, its data there too: (dev.toml, FIX port)."""
    target = tmp_path / "configs"
    shutil.copytree(CONFIGS, target)
    dev = target / "dev.toml"
    port = free_port()
    dev.write_text(
        dev.read_text()
        .replace('data_dir = "../var/redis"', f'data_dir = "{tmp_path / "redis"}"')
        .replace('data_dir = "../var/fix"', f'data_dir = "{tmp_path / "fix"}"')
        .replace("port = 9878", f"port = {port}")
        .replace("port = 8080", f"port = {free_port()}")
    )
    return dev, port


def test_serve_trades_over_fix_and_stops_cleanly_on_sigterm(configs: tuple[Path, int], tmp_path: Path) -> None:
    config, port = configs
    proc = subprocess.Popen(
        [sys.executable, "-m", "oms", "serve", "--config", str(config)], stdout=subprocess.PIPE, text=True
    )
    lines = read_until_ready(proc)
    client = FixClient("FIX.4.2", "CLIENT42", port, tmp_path / "client", password="client42-dev").start()
    try:
        client.new_order("s1", "AAPL", "2", "100", "150")
        client.new_order("b1", "AAPL", "1", "40", "150", account="ACC2")
        ack, ack2, fill_b, fill_s = client.expect(4, timeout=30)
        client.new_order("big", "AAPL", "1", "100", "250", account="TIGHT1")
        (rejected,) = client.expect(1, timeout=30)
        # REST trades against the FIX client's resting order, through the same core
        api = next(line.split()[1] for line in lines if line.startswith("api "))
        rest = httpx.post(
            f"{api}/v1/orders", headers={"X-API-Key": "trader1-dev-secret"}, timeout=30,
            json={"account": "ACC2", "symbol": "AAPL", "side": "buy", "qty": "10", "price": "150"},
        )  # fmt: skip
        (fill_s2,) = client.expect(1, timeout=30)
        positions = httpx.get(
            f"{api}/v1/accounts/ACC2/positions", headers={"X-API-Key": "trader1-dev-secret"}, timeout=30
        )

        proc.send_signal(signal.SIGTERM)
        (shutdown,) = client.expect(1, timeout=60)
    finally:
        client.stop()
        out, _ = proc.communicate(timeout=120)

    assert any(line.startswith(f"fix       port {port}") for line in lines)
    assert any(line.startswith("analytics chdb://") for line in lines)
    assert (ack[T.ORD_STATUS], ack2[T.EXEC_TYPE]) == ("0", "0")
    assert {(m[T.CL_ORD_ID], m[T.ORD_STATUS]) for m in (fill_b, fill_s)} == {("b1", "2"), ("s1", "1")}
    assert (rejected[T.ORD_STATUS], rejected[T.TEXT]) == ("8", "order notional above the account's maximum")
    assert rest.status_code == 201 and rest.json()["status"] == "filled"
    assert (fill_s2[T.CL_ORD_ID], fill_s2[T.LAST_QTY], fill_s2[T.CUM_QTY]) == ("s1", "10", "50")
    assert positions.status_code == 200
    assert [(p["symbol"], p["qty"]) for p in positions.json()["positions"]] == [("AAPL", "50")]  # 40 FIX + 10 REST
    assert (shutdown[T.CL_ORD_ID], shutdown[T.ORD_STATUS], shutdown[T.CUM_QTY]) == ("s1", "4", "50")
    assert proc.returncode == 0 and "stopped" in out
    # every fill reached ClickHouse, once, by the time serve stopped
    ch = connect(f"chdb://{tmp_path / 'var' / 'clickhouse'}")
    try:
        rows = ch.query("SELECT order_id, qty FROM executions FINAL ORDER BY exec_id").result_rows
        trades = ch.query("SELECT count() FROM market_trades FINAL").result_rows
    finally:
        ch.close()
    assert [qty for _, qty in rows] == [40.0, 40.0, 10.0, 10.0] and trades == [(2,)]


def test_every_event_reaches_the_store_with_who_and_where(configs: tuple[Path, int], tmp_path: Path) -> None:
    """What compliance reads in ClickHouse after a run: each accepted order's session and the venue it was routed to,
    a risk reject with the order's full terms, a refused cancel (nothing moved, yet recorded) and each kill-switch
    action with the key that pulled it."""
    config, port = configs
    log = tmp_path / "oms.jsonl"
    proc, api = start_serve(config, "--log", str(log))
    client = FixClient("FIX.4.2", "CLIENT42", port, tmp_path / "client", password="client42-dev").start()
    risk = {"X-API-Key": "risk1-dev-secret"}
    try:
        client.new_order("r1", "AAPL", "1", "10", "140")
        client.new_order("big", "AAPL", "1", "100", "250", account="TIGHT1")
        client.cancel("x-nope", "nope", "AAPL", "1", "10")
        answers = client.expect(3, timeout=30)
        on = httpx.post(f"{api}/v1/accounts/ACC2/kill-switch", headers=risk, json={"on": True}, timeout=30)
        off = httpx.post(f"{api}/v1/accounts/ACC2/kill-switch", headers=risk, json={"on": False}, timeout=30)
        # while it runs, its embedded store is read through its sink
        live = _sql_until(config, "SELECT count() FROM operator_actions FINAL", "2")
        refused = _oms("sql", "--config", str(config), "INSERT INTO operator_actions (action) VALUES ('x')")
        report = _oms("report", "tca", "--config", str(config), "--format", "csv")
        proc.send_signal(signal.SIGTERM)
        client.expect(1, timeout=60)  # r1 canceled at the stop
    finally:
        client.stop()
        out, _ = proc.communicate(timeout=120)

    assert sorted(m.msg_type for m in answers) == ["8", "8", "9"] and on.status_code == off.status_code == 200
    assert live.returncode == 0, live.stderr
    assert refused.returncode == 1 and "only one reading statement is taken" in refused.stderr
    assert report.returncode == 0 and report.stdout.splitlines()[1].startswith(tuple("0123456789")), report.stderr
    assert proc.returncode == 0, out
    ch = connect(f"chdb://{tmp_path / 'var' / 'clickhouse'}")
    try:
        rows = ch.query("SELECT event, cl_ord_id, account, side, ord_type, qty, price, session, venue, reason, src "
                        "FROM orders FINAL WHERE event != 'canceled' ORDER BY ts_ns").result_rows  # fmt: skip
        actions = ch.query("SELECT action, account, detail, actor FROM operator_actions FINAL ORDER BY ts_ns")
        changes = ch.query("SELECT account, change, detail FROM account_changes FINAL WHERE change = 'kill_switch' "
                           "ORDER BY ts_ns").result_rows  # fmt: skip
    finally:
        ch.close()
    session = "FIX.4.2:OMS->CLIENT42"
    assert rows == [
        ("accepted", "r1", "ACC1", "BUY", "LIMIT", 10.0, 140.0, session, "INTERNAL", "", ""),
        ("rejected", "big", "TIGHT1", "BUY", "LIMIT", 100.0, 250.0, session, "", "MAX_ORDER_NOTIONAL", ""),
        ("cancel_rejected", "x-nope", "ACC1", "", "", None, None, "", "", "UNKNOWN_ORDER", "records"),
    ]
    assert actions.result_rows == [("kill_switch", "ACC2", "on", "REST:risk1"), ("kill_switch", "ACC2", "off",
                                                                                 "REST:risk1")]
    assert changes == [("ACC2", "kill_switch", "on"), ("ACC2", "kill_switch", "off")]  # as the account journaled them
    lines = [json.loads(line) for line in log.read_text().splitlines()]  # the JSON log says who did what too
    assert [(o["detail"], o["actor"]) for o in lines if o["logger"] == "oms.operator"] == [("on", "REST:risk1"),
                                                                                          ("off", "REST:risk1")]
    acked = [o for o in lines if o["logger"] == "oms.orders" and o["msg"] == "order acked"]
    assert [(o["cl_ord_id"], o["session"], o["venue"]) for o in acked] == [("r1", session, "INTERNAL")]


def _oms(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "oms", *args], capture_output=True, text=True, timeout=120)


def _sql_until(config: Path, statement: str, want: str, within_s: float = 30) -> subprocess.CompletedProcess[str]:
    """`oms sql --format csv` until its one value is `want` (the sink commits each second), or the last answer."""
    deadline = time.monotonic() + within_s
    while True:
        done = _oms("sql", "--config", str(config), "--format", "csv", statement)
        if done.returncode != 0 or done.stdout.splitlines()[-1:] == [want] or time.monotonic() > deadline:
            return done
        time.sleep(0.3)


def test_a_busy_fix_port_is_named_in_one_line_and_nothing_keeps_running(configs: tuple[Path, int]) -> None:
    config, port = configs
    with socket.create_server(("0.0.0.0", port)):
        done = subprocess.run(
            [sys.executable, "-m", "oms", "serve", "--config", str(config)], capture_output=True, text=True,
            timeout=120,
        )  # fmt: skip

    assert done.returncode == 1
    assert done.stderr == f"oms serve: FIX acceptor: port {port} is busy (Address already in use)\n"


def start_serve(config: Path, *args: str) -> tuple[subprocess.Popen[str], str]:
    """`oms serve --config config [args]`, once it is ready, and the URL its API listens on."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "oms", "serve", "--config", str(config), *args], stdout=subprocess.PIPE, text=True
    )
    lines = read_until_ready(proc)
    return proc, next(line.split()[1] for line in lines if line.startswith("api "))


def read_until_ready(proc: subprocess.Popen[str]) -> list[str]:
    assert proc.stdout is not None
    lines: list[str] = []
    while not lines or not lines[-1].startswith("ready"):
        line = proc.stdout.readline()
        assert line, f"exited before ready (exit code {proc.wait(timeout=60)}): {lines}"
        lines.append(line)
    return lines


def _serve_routing_msft_to_the_simulator(
    config: Path, tmp_path: Path
) -> tuple[int, subprocess.Popen[str], subprocess.Popen[str]]:
    """`oms exchange-sim` on a free port and `oms serve` routing MSFT to it, both started (not yet ready):
    (the simulator's port, the simulator, the OMS)."""
    sim_port = free_port()
    exchange = config.parent / "exchange.toml"
    exchange.write_text(
        exchange.read_text()
        .replace("port = 9879", f"port = {sim_port}")
        .replace('data_dir = "../var/exchange"', f'data_dir = "{tmp_path / "exchange"}"')
    )
    config.write_text(
        config.read_text()
        .replace('# routes = { "MSFT" = "EXCH" }', 'routes = { "MSFT" = "EXCH" }')
        .replace("port = 9879", f"port = {sim_port}")
        .replace('data_dir = "../var/venues"', f'data_dir = "{tmp_path / "venues"}"')
    )
    sim = subprocess.Popen(
        [sys.executable, "-m", "oms", "exchange-sim", "--config", str(exchange)], stdout=subprocess.PIPE, text=True
    )
    oms = subprocess.Popen([sys.executable, "-m", "oms", "serve", "--config", str(config)], stdout=subprocess.PIPE,
                           text=True)  # fmt: skip
    return sim_port, sim, oms


def test_serve_routes_a_symbol_to_the_exchange_simulator_over_fix(configs: tuple[Path, int], tmp_path: Path) -> None:
    config, port = configs
    sim_port, sim, oms = _serve_routing_msft_to_the_simulator(config, tmp_path)
    clients: list[FixClient] = []
    try:
        sim_lines, oms_lines = read_until_ready(sim), read_until_ready(oms)
        maker = FixClient("FIX.4.4", "MAKER", sim_port, tmp_path / "maker", target="EXCH").start()
        clients.append(maker)
        client = FixClient("FIX.4.2", "CLIENT42", port, tmp_path / "client", password="client42-dev").start()
        clients.append(client)
        maker.new_order("m1", "MSFT", "2", "50", "300")
        maker.expect(1, timeout=30)
        client.new_order("b1", "MSFT", "1", "20", "300")
        ack, fill = client.expect(2, timeout=30)
        (maker_fill,) = maker.expect(1, timeout=30)
    finally:
        for c in clients:
            c.stop()
        oms.send_signal(signal.SIGTERM)
        oms_out, _ = oms.communicate(timeout=120)
        sim.send_signal(signal.SIGTERM)
        sim_out, _ = sim.communicate(timeout=60)

    assert f"port {sim_port}" in sim_lines[1] and "MAKER" in sim_lines[1]
    assert any(line.startswith(f"venue     EXCH: FIX initiator to 127.0.0.1:{sim_port}") for line in oms_lines)
    assert (ack[T.EXEC_TYPE], fill[T.EXEC_TYPE], fill[T.LAST_QTY], fill[T.LAST_PX]) == ("0", "2", "20", "300")
    assert (maker_fill[T.LAST_QTY], maker_fill[T.LEAVES_QTY]) == ("20", "30")
    assert (oms.returncode, sim.returncode) == (0, 0)
    assert "stopped" in oms_out and "stopped" in sim_out


def test_serve_puts_the_simulators_quotes_and_prints_on_the_tape_and_tca_benchmarks_routed_orders(
    configs: tuple[Path, int], tmp_path: Path
) -> None:
    config, port = configs
    sim_port, sim, oms = _serve_routing_msft_to_the_simulator(config, tmp_path)
    clients: list[FixClient] = []
    try:
        read_until_ready(sim)
        oms_lines = read_until_ready(oms)
        tape = make_client(next(line.split()[1] for line in oms_lines if line.startswith("redis ")))
        maker = FixClient("FIX.4.4", "MAKER", sim_port, tmp_path / "maker", target="EXCH").start()
        clients.append(maker)
        maker.new_order("m1", "MSFT", "2", "50", "301")
        maker.new_order("m2", "MSFT", "1", "50", "299")
        maker.expect(2, timeout=30)
        quoted = Quote("EXCH", "MSFT", 299 * 10**4, 50, 301 * 10**4, 50, 0)
        _wait_tape(tape, lambda rs: any(isinstance(r, Quote) and replace(r, ts_ns=0) == quoted for r in rs))
        client = FixClient("FIX.4.2", "CLIENT42", port, tmp_path / "client", password="client42-dev").start()
        clients.append(client)
        client.new_order("b1", "MSFT", "1", "20", "300")  # rests at the venue, inside its spread
        (ack,) = client.expect(1, timeout=30)
        maker.new_order("m3", "MSFT", "2", "20", "300")  # the venue's own member crosses it
        (fill,) = client.expect(1, timeout=30)
        records = _wait_tape(tape, lambda rs: any(isinstance(r, TradePrinted) for r in rs))
        tape.close()
    finally:
        for c in clients:
            c.stop()
        oms.send_signal(signal.SIGTERM)
        oms.communicate(timeout=120)
        sim.send_signal(signal.SIGTERM)
        sim.communicate(timeout=60)

    assert any(
        line.startswith("venue     EXCH:") and line.endswith("(market data to the tape)\n") for line in oms_lines
    )
    assert (ack[T.EXEC_TYPE], fill[T.EXEC_TYPE], fill[T.LAST_PX]) == ("0", "2", "300")
    (trade,) = [r for r in records if isinstance(r, TradePrinted)]
    assert (trade.venue, trade.symbol, trade.price, trade.qty, trade.aggressor_side) == ("EXCH", "MSFT", 300 * 10**4,
                                                                                         20, Side.SELL)  # fmt: skip
    # the sink took the tape into ClickHouse by the time serve stopped: the routed order has its benchmarks
    ch = connect(f"chdb://{tmp_path / 'var' / 'clickhouse'}")
    try:
        (row,) = tca_orders(ch, symbol="MSFT").records()
    finally:
        ch.close()
    # arrival: the venue's mid as the OMS accepted the order, before it reached the venue's book
    assert (row["arrival_source"], row["arrival_px"]) == ("mid", 300.0)
    assert (row["filled_qty"], row["vwap"], row["participation"]) == (20.0, 300.0, 1.0)


def _wait_tape(
    client: redis.Redis, found: Callable[[list[TapeRecord]], bool], seconds: float = 30.0
) -> list[TapeRecord]:
    """The tape's records once `found` says so; raises TimeoutError after `seconds`."""
    deadline = time.monotonic() + seconds
    while not found(records := [tape_decoder.decode(f[b"r"]) for _, f in client.xrange(tape_key())]):
        if time.monotonic() > deadline:
            raise TimeoutError(f"not on the tape within {seconds} s: {records}")
        time.sleep(0.05)
    return records


def test_exchange_sim_names_a_busy_port_in_one_line(tmp_path: Path) -> None:
    port = free_port()
    with socket.create_server(("0.0.0.0", port)):
        done = subprocess.run(
            [sys.executable, "-m", "oms", "exchange-sim", "--port", str(port)], capture_output=True, text=True,
            timeout=60,
        )  # fmt: skip

    assert done.returncode == 1
    assert done.stderr == f"oms exchange-sim: FIX acceptor: port {port} is busy (Address already in use)\n"


def test_values_past_64_bits_get_specific_rejects_and_order_entry_goes_on(
    configs: tuple[Path, int], tmp_path: Path
) -> None:
    config, port = configs
    proc, api = start_serve(config)
    trader, algo = {"X-API-Key": "trader1-dev-secret"}, {"X-API-Key": "algo-dev-secret"}
    twap = {"kind": "twap", "account": "ALGO1", "symbol": "AAPL", "side": "buy", "qty": "100", "slices": 2,
            "end_ns": 2**62}  # fmt: skip
    client = FixClient("FIX.4.2", "CLIENT42", port, tmp_path / "client", password="client42-dev").start()
    try:
        client.new_order("mf", "AAPL", "1", "100", "150", extra={T.MAX_FLOOR: "9223372036854775808"})
        (max_floor,) = client.expect(1, timeout=30)
        client.new_order("sp", "AAPL", "1", "100", None, ord_type="3", extra={T.STOP_PX: "1" + "0" * 30})
        (stop_px,) = client.expect(1, timeout=30)
        seed = httpx.post(f"{api}/v1/algos", headers=algo, json={**twap, "seed": 2**64}, timeout=30)
        # afterwards every channel still takes orders
        client.new_order("ok", "AAPL", "1", "10", "149")
        (ok,) = client.expect(1, timeout=30)
        rest = httpx.post(
            f"{api}/v1/orders", headers=trader, timeout=30,
            json={"account": "ACC2", "symbol": "AAPL", "side": "buy", "qty": "10", "price": "149"},
        )  # fmt: skip
        parent = httpx.post(f"{api}/v1/algos", headers=algo, json={**twap, "seed": 7}, timeout=30)
        orders = httpx.get(f"{api}/v1/orders", headers=trader, timeout=30)
    finally:
        client.stop()
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=120)

    assert (max_floor[T.CL_ORD_ID], max_floor[T.ORD_STATUS], max_floor[T.ORD_REJ_REASON]) == ("mf", "8", "0")
    assert "too large" in max_floor[T.TEXT] and "Traceback" not in max_floor[T.TEXT]
    assert (stop_px[T.CL_ORD_ID], stop_px[T.ORD_STATUS]) == ("sp", "8") and "too large" in stop_px[T.TEXT]
    assert seed.status_code == 400 and "seed" in seed.text
    assert (ok[T.CL_ORD_ID], ok[T.ORD_STATUS]) == ("ok", "0")
    assert rest.status_code == 201 and rest.json()["status"] == "new"
    assert parent.status_code == 201, parent.text
    assert orders.status_code == 200
    assert orders.json() and [o for o in orders.json() if o["status"] == "pending_new"] == []


def test_sigterm_cancels_every_channels_working_orders_and_refuses_new_ones_meanwhile(
    configs: tuple[Path, int], tmp_path: Path
) -> None:
    """A clean stop leaves no ghost exposure: REST orders are withdrawn like FIX ones, every cancel is journaled, and
    the accounts rebuilt from the journal afterwards hold no working order."""
    config, port = configs
    proc, api = start_serve(config)
    client = FixClient("FIX.4.4", "CLIENT44", port, tmp_path / "client", password="client44-dev").start()
    try:
        client.new_order("f1", "AAPL", "1", "10", "140", account="ACC2")
        (fix_ack,) = client.expect(1, timeout=30)
        rest = httpx.post(
            f"{api}/v1/orders", headers={"X-API-Key": "trader1-dev-secret"}, timeout=30,
            json={"account": "ACC1", "symbol": "AAPL", "side": "sell", "qty": "5", "price": "160"},
        )  # fmt: skip
        proc.send_signal(signal.SIGTERM)
        (fix_canceled,) = client.expect(1, timeout=60)
    finally:
        client.stop()
        out, _ = proc.communicate(timeout=120)

    assert fix_ack[T.EXEC_TYPE] == "0" and rest.status_code == 201 and rest.json()["status"] == "new"
    assert (fix_canceled[T.CL_ORD_ID], fix_canceled[T.EXEC_TYPE]) == ("f1", "4")
    assert proc.returncode == 0 and "stopped" in out
    with ManagedRedis(tmp_path / "redis") as server:
        shard = AccountShard(["ACC1", "ACC2"], ShardConfig(server.url, str(config.parent / "instruments.toml"),
                                                            str(config.parent / "accounts.toml")))  # fmt: skip
        assert shard.summary("ACC1")["working_orders"] == []  # the REST order: canceled, not left as exposure
        assert shard.summary("ACC2")["working_orders"] == []
        canceled = [r for _, r in Journal(make_client(server.url), AccountEvent).read("ACC1")
                    if isinstance(r, OrderCanceled)]  # fmt: skip
        assert [c.reason for c in canceled] == [CancelReason.SHUTDOWN]


def test_gtd_orders_expire_at_their_time_and_a_past_expiry_is_refused_on_every_channel(
    configs: tuple[Path, int], tmp_path: Path
) -> None:
    config, port = configs
    proc, api = start_serve(config)
    client = FixClient("FIX.4.4", "CLIENT44", port, tmp_path / "client", password="client44-dev").start()
    try:
        expiry = time.time_ns() + 2 * 10**9
        client.new_order("g1", "AAPL", "1", "10", "140", tif="6", account="ACC2",
                         extra={T.EXPIRE_TIME: utc_timestamp(expiry)})  # fmt: skip
        (ack,) = client.expect(1, timeout=30)
        client.new_order("g0", "AAPL", "1", "10", "140", tif="6", account="ACC2",
                         extra={T.EXPIRE_TIME: utc_timestamp(time.time_ns() - 10**9)})  # fmt: skip
        (past,) = client.expect(1, timeout=30)
        (expired,) = client.expect(1, timeout=30)
        rest = httpx.post(
            f"{api}/v1/orders", headers={"X-API-Key": "trader1-dev-secret"}, timeout=30,
            json={"account": "ACC1", "symbol": "AAPL", "side": "buy", "qty": "5", "price": "140", "tif": "gtd",
                  "expire_at_ns": 10**18},
        )  # fmt: skip
    finally:
        client.stop()
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=120)

    assert ack[T.EXEC_TYPE] == "0"
    assert (past[T.CL_ORD_ID], past[T.EXEC_TYPE]) == ("g0", "8")
    assert (expired[T.CL_ORD_ID], expired[T.EXEC_TYPE], expired[T.ORD_STATUS]) == ("g1", "C", "C")
    assert time.time_ns() >= expiry
    assert rest.status_code == 400 and rest.json()["code"] == "invalid_tif"
