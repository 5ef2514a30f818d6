"""The sink in one process (real redis-server, real chDB): what it does with unusable entries, admin events, new
account streams, one-sided quotes, and how `SinkService` starts and stops."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal

import pytest
import redis

from oms.core.accounts import (
    AccountEvent,
    DayStarted,
    KillSwitchSet,
    LimitsChanged,
    Marked,
    TradingStateSet,
    account_encoder,
)
from oms.core.model.enums import CancelReason, OrdType, RejectReason, Side, TimeInForce, TradingState
from oms.core.model.instruments import InstrumentRegistry
from oms.core.model.messages import (
    CancelRejected,
    OperatorAction,
    OrderAccepted,
    OrderCanceled,
    OrderFilled,
    OrderRejected,
    SubmitOrder,
    TradePrinted,
)
from oms.infra.clickhouse.clickhouse import Client, apply_schema, connect
from oms.infra.clickhouse.rows import scales
from oms.infra.clickhouse.service import SinkService
from oms.infra.clickhouse.settings import AnalyticsSettings
from oms.infra.clickhouse.sink import Sink, dead_letter_key
from oms.infra.clickhouse.tape import Quote, Tape
from oms.infra.redis.journal import Journal, journal_key
from oms.infra.redis.records import RecordLog
from oms.infra.redis.server import ManagedRedis
from risk.limits import load_risk_config
from tests.integration.sink_child import INSTRUMENTS

pytestmark = pytest.mark.integration

SCALE = scales(InstrumentRegistry.load(INSTRUMENTS))
T = 1_767_225_600_000_000_000


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    return f"chdb://{tmp_path_factory.mktemp('sink')}/store"


@pytest.fixture
def db(store: str) -> Iterator[tuple[Client, str]]:
    """A fresh database with the schema, and a fresh stream prefix, per test."""
    name = f"t{uuid.uuid4().hex[:10]}"
    ch = connect(store, name)
    apply_schema(ch)
    yield ch, name
    ch.close()


def fill(exec_id: int, symbol: str = "AAPL", account: str = "ACC1") -> OrderFilled:
    return OrderFilled(7, "c7", account, symbol, exec_id, Side.BUY, 10, 1_500_000, 0, 10, 15_000_000, False, T)


def count(ch: Client, table: str) -> int:
    return int(ch.query(f"SELECT count() FROM {table} FINAL").result_rows[0][0])


def test_unusable_entries_become_dead_letters_and_do_not_stall_the_rest(
    redis_client: redis.Redis, db: tuple[Client, str]
) -> None:
    ch, prefix = db
    journal: Journal[AccountEvent] = Journal(redis_client, AccountEvent, prefix=prefix)
    journal.append("ACC1", fill(1))
    redis_client.xadd(journal_key("ACC1", prefix), {"r": b"\xc1 not msgpack"})
    redis_client.xadd(journal_key("ACC1", prefix), {"x": b"no r field"})
    journal.append("ACC1", fill(2, symbol="NOPE"))
    journal.append("ACC1", Marked("ACC1", "AAPL", 1_500_000, T))  # an admin event: no row, not dead either
    journal.append("ACC1", fill(3))
    sink = Sink(redis_client, ch, SCALE, AnalyticsSettings(dsn="x"), prefix=prefix)

    sink.drain()

    assert sorted(r[0] for r in ch.query("SELECT exec_id FROM executions FINAL").result_rows) == [1, 3]
    dead = redis_client.xrange(dead_letter_key(prefix))
    reasons = sorted(fields[b"reason"].decode().split(":")[0] for _, fields in dead)
    assert reasons == ["does not decode", "no record field 'r' (or the entry was deleted while pending)",
                       "unknown instrument 'NOPE'"]  # fmt: skip
    assert sink.stats.entries == 6 and sink.stats.dead == 3
    assert redis_client.xpending(journal_key("ACC1", prefix), "oms-clickhouse")["pending"] == 0


def test_a_running_service_picks_up_new_accounts_and_commits_on_stop(
    redis_server: ManagedRedis, redis_client: redis.Redis, db: tuple[Client, str], store: str
) -> None:
    ch, prefix = db
    journal: Journal[AccountEvent] = Journal(redis_client, AccountEvent, prefix=prefix)
    journal.append("ACC1", fill(1))
    settings = AnalyticsSettings(dsn=store, database=prefix, batch_interval_s=30.0, discover_interval_s=0.05)
    service = SinkService(settings, redis_server.url, SCALE, prefix=prefix).start()
    try:
        time.sleep(0.3)
        journal.append("NEWACC", fill(2, account="NEWACC"))  # a stream that did not exist when the sink started
        time.sleep(0.3)
        assert count(ch, "executions") == 0  # held: neither batch_rows nor batch_interval_s reached
    finally:
        service.stop()

    assert service.error is None
    assert sorted(r[0] for r in ch.query("SELECT account FROM executions FINAL").result_rows) == ["ACC1", "NEWACC"]


def test_tape_prints_and_quotes_land_in_their_tables_with_empty_sides_as_null(
    redis_client: redis.Redis, db: tuple[Client, str]
) -> None:
    ch, prefix = db
    Tape(redis_client, prefix=prefix).append_many(
        [
            TradePrinted("XNAS", "AAPL", 1, 1_500_100, 5, Side.SELL, T),
            Quote("XNAS", "AAPL", 1_499_900, 0, 1_500_100, 300, T + 1),  # no bid
            Quote("XNAS", "AAPL", 1_499_900, 200, 1_500_100, 300, T + 2),
        ]
    )
    Journal(redis_client, AccountEvent, prefix=prefix).append(
        "ACC1", OrderAccepted(7, "c7", "ACC1", "AAPL", Side.BUY, OrdType.MARKET, TimeInForce.IOC, 10, None, T)
    )

    Sink(redis_client, ch, SCALE, AnalyticsSettings(dsn="x"), prefix=prefix).drain()

    assert ch.query("SELECT price, qty, aggressor_side FROM market_trades FINAL").result_rows == [
        (Decimal("150.01"), 5, "SELL")
    ]  # exact decimals, not the nearest floats
    assert ch.query("SELECT bid, ask FROM quotes FINAL ORDER BY ts_ns").result_rows == [
        (None, Decimal("150.01")),
        (Decimal("149.99"), Decimal("150.01")),
    ]
    assert ch.query("SELECT event, side, ord_type, tif, qty, price FROM orders FINAL").result_rows == [
        ("accepted", "BUY", "MARKET", "IOC", 10.0, None)
    ]


def test_the_oms_records_land_in_orders_and_operator_actions_apart_from_the_journal_rows(
    redis_client: redis.Redis, db: tuple[Client, str]
) -> None:
    """A refused cancel, an order refused before it had an id (with its terms) and a kill-switch action, from the
    OMS's own record; a journal entry of the same order with the same entry id stays a row of its own."""
    ch, prefix = db
    records = RecordLog(redis_client, prefix=f"{prefix}:records")
    submit = SubmitOrder("ACC1", "dup", "AAPL", Side.SELL, OrdType.LIMIT, 5, 1_510_000, session="REST:trader1")
    records.on_reports([
        (CancelRejected(7, "x7", "c7", "ACC1", "AAPL", RejectReason.TOO_LATE_TO_CANCEL, "too late", "cancel", T), None),
        (OrderRejected.of(submit, 0, RejectReason.DUPLICATE_CL_ORD_ID, "duplicate", T + 1), None),
        (OrderRejected(8, "c8", "ACC1", "AAPL", RejectReason.CREDIT_LIMIT, "journaled by its account", T + 2), None),
    ])  # fmt: skip
    records.add(OperatorAction("kill_switch", "ACC1", "on", "REST:risk1", T + 3))
    write = records.seal()
    assert write is not None and records.seal() is None
    write()
    sid = redis_client.xrange(f"{prefix}:records:journal:events")[0][0]  # the refused cancel's entry id
    canceled = OrderCanceled(7, "c7", "ACC1", "AAPL", CancelReason.USER, 10, T, "")
    redis_client.xadd(journal_key("ACC1", prefix), {"r": account_encoder.encode(canceled)}, id=sid)

    Sink(redis_client, ch, SCALE, AnalyticsSettings(dsn="x"), prefix=prefix).drain()

    rows = ch.query("SELECT event, order_id, cl_ord_id, side, qty, price, session, reason, src FROM orders FINAL "
                    "ORDER BY ts_ns, event").result_rows  # fmt: skip
    assert rows == [
        ("cancel_rejected", 7, "x7", "", None, None, "", "TOO_LATE_TO_CANCEL", "records"),
        ("canceled", 7, "c7", "", 10.0, None, "", "USER", ""),
        ("rejected", 0, "dup", "SELL", 5.0, 151.0, "REST:trader1", "DUPLICATE_CL_ORD_ID", "records"),
    ]  # the account's own reject (order 8) is not the OMS's to record
    assert ch.query("SELECT action, account, detail, actor FROM operator_actions FINAL").result_rows == [
        ("kill_switch", "ACC1", "on", "REST:risk1")
    ]


def test_an_accounts_kill_switch_trading_state_limits_and_day_starts_land_in_account_changes(
    redis_client: redis.Redis, db: tuple[Client, str]
) -> None:
    ch, prefix = db
    limits = load_risk_config(INSTRUMENTS.parent / "accounts.toml", InstrumentRegistry.load(INSTRUMENTS)).defaults
    journal: Journal[AccountEvent] = Journal(redis_client, AccountEvent, prefix=prefix)
    journal.append_many("ACC1", [
        KillSwitchSet("ACC1", True, T), TradingStateSet("ACC1", TradingState.HALTED, T + 1),
        LimitsChanged("ACC1", limits, T + 2), DayStarted("ACC1", T + 3), Marked("ACC1", "AAPL", 1_500_000, T + 4),
    ])  # fmt: skip

    Sink(redis_client, ch, SCALE, AnalyticsSettings(dsn="x"), prefix=prefix).drain()

    rows = ch.query("SELECT account, change, detail FROM account_changes FINAL ORDER BY ts_ns").result_rows
    assert [r[:2] for r in rows] == [("ACC1", "kill_switch"), ("ACC1", "trading_state"), ("ACC1", "limits"),
                                     ("ACC1", "day_started")]  # fmt: skip
    assert (rows[0][2], rows[1][2], rows[3][2]) == ("on", "HALTED", "")
    assert json.loads(rows[2][2])["max_order_notional"] == limits.max_order_notional
