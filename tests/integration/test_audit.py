"""The audit trail over a real Redis: journals written by the real writers verify; tampering with them does not."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import msgspec
import pytest
import redis

from oms.apps.audit import main
from oms.core.model.enums import CancelReason, OrdType, Side, TimeInForce
from oms.core.model.messages import OrderCanceled, OrderFilled, SubmitOrder
from oms.infra.ray.actors import AccountShard, ShardConfig
from oms.infra.redis.audit import Fault, verify
from oms.infra.redis.journal import Journal, journal_key, snapshot_key
from oms.infra.redis.server import ManagedRedis, make_client

pytestmark = pytest.mark.integration

ROOT = Path(__file__).parents[2]
CONFIGS = ROOT / "configs"
PX = 1_500_000  # AAPL 150.00


class Added(msgspec.Struct, frozen=True, tag="added"):
    n: int


@pytest.fixture
def journal(redis_client: redis.Redis) -> Journal[Added]:
    return Journal(redis_client, Added, snapshot_type=Added)


def _rewrite(client: redis.Redis, key: str, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
    """Replace the stream by `entries` under their explicit ids, keeping its counter: a tamperer covering tracks."""
    added = client.xinfo_stream(key)["entries-added"]
    client.delete(key)
    for entry_id, fields in entries:
        client.xadd(key, fields, id=entry_id)
    client.execute_command("XSETID", key, entries[-1][0], "ENTRIESADDED", added)


def _first(report_stream) -> tuple[str, Fault]:  # type: ignore[no-untyped-def]
    p = report_stream.problems[0]
    return p.entry_id, p.fault


# -- written by the real writers --


def test_a_journal_written_by_account_hosts_verifies_intact(fresh_redis: redis.Redis, redis_server: ManagedRedis):
    config = ShardConfig(
        redis_url=redis_server.url,
        instruments_path=str(CONFIGS / "instruments.toml"),
        risk_path=str(CONFIGS / "accounts.toml"),
        snapshot_every=5,  # several snapshots, each anchoring the chain
    )
    host = AccountShard(["ACC1", "ACC2"], config)
    now = time.time_ns()
    for i in range(6):
        for account in ("ACC1", "ACC2"):
            order = SubmitOrder(account, f"c{i}", "AAPL", Side.BUY, OrdType.LIMIT, 10, PX, TimeInForce.GTC)
            host.submit_batch([(order, i + 1, now)])
    host.apply_batch([OrderFilled(1, "c0", "ACC1", "AAPL", 1, Side.BUY, 10, PX, 0, 10, 10 * PX, True, now)])
    host.apply_batch([OrderCanceled(2, "c1", "ACC2", "AAPL", CancelReason.USER, 10, now)])
    host.mark("AAPL", PX + 100, now)
    restarted = AccountShard(["ACC1", "ACC2"], config)  # a new process's writer: reads the chain head from Redis
    restarted.apply_batch([OrderFilled(3, "c2", "ACC1", "AAPL", 2, Side.BUY, 10, PX, 0, 10, 10 * PX, True, now)])

    report = verify(fresh_redis)

    assert report.ok, report.first_problem
    by_stream = {s.stream: s for s in report.streams}
    assert set(by_stream) == {journal_key("ACC1"), journal_key("ACC2")}
    for account in ("ACC1", "ACC2"):
        checked = by_stream[journal_key(account)]
        assert checked.records == checked.added == checked.last_seq == fresh_redis.xlen(journal_key(account))
        assert checked.snapshot == fresh_redis.hget(snapshot_key(account), "upto").decode()


def test_writers_that_interleave_on_one_stream_still_make_one_chain(redis_server: ManagedRedis, account: str) -> None:
    def writer(w: int) -> None:
        client = make_client(redis_server.url)
        journal: Journal[Added] = Journal(client, Added)
        for b in range(15):
            journal.append_many(account, [Added(w * 1000 + b * 10 + i) for i in range(1 + b % 3)])
            journal.append(account, Added(-w))
        client.close()

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    client = make_client(redis_server.url)
    report = verify(client, account)
    client.close()
    assert report.ok, report.first_problem
    assert report.streams[0].records == 3 * (15 + 30)


def test_appends_across_accounts_are_one_batch_and_keep_every_chain_when_writers_interleave(
    redis_server: ManagedRedis, account: str
) -> None:
    accounts = [f"{account}-{k}" for k in range(3)]

    def writer(w: int) -> None:
        client = make_client(redis_server.url)
        journal: Journal[Added] = Journal(client, Added)
        for b in range(15):  # every writer writes every stream: each batch finds some of them stale
            batch = [(a, [Added(w * 1000 + b * 10 + i) for i in range(1 + (b + k) % 3)], None)
                     for k, a in enumerate(accounts)]  # fmt: skip
            written = journal.append_accounts([*batch, (f"{account}-empty", [], None)])
            assert [len(ids) for ids in written] == [len(records) for _, records, _ in batch] + [0]
        client.close()

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    client = make_client(redis_server.url)
    for a in accounts:
        report = verify(client, a)
        assert report.ok, report.first_problem
        assert report.streams[0].records == 3 * sum(1 + (b + accounts.index(a)) % 3 for b in range(15))
    journal: Journal[Added] = Journal(client, Added)
    for a in accounts:  # each batch's records of a stream are contiguous: no other batch landed inside one
        batches = [r.n // 10 for _, r in journal.read(a)]  # writer and batch of each record, in stream order
        runs = [k for i, k in enumerate(batches) if i == 0 or batches[i - 1] != k]
        assert len(runs) == len(set(runs)) == 3 * 15
    client.close()


def test_a_writer_that_another_writer_overtook_continues_the_chain(redis_client: redis.Redis, account: str) -> None:
    first: Journal[Added] = Journal(redis_client, Added)
    second: Journal[Added] = Journal(redis_client, Added)

    first.append_many(account, [Added(1), Added(2)])
    second.append(account, Added(3))
    first.append(account, Added(4))  # its cached head is stale: the append script refuses, it re-seals

    report = verify(redis_client, account)
    assert report.ok, report.first_problem
    assert [r.n for _, r in first.read(account)] == [1, 2, 3, 4]


def test_a_stream_trimmed_up_to_its_snapshot_verifies_and_one_trimmed_past_it_does_not(
    journal: Journal[Added], redis_client: redis.Redis, account: str
) -> None:
    ids = journal.append_many(account, [Added(i) for i in range(20)])
    journal.save_snapshot(account, Added(0), ids[14])
    redis_client.xtrim(journal_key(account), maxlen=5, approximate=False)

    covered = verify(redis_client, account).streams[0]
    redis_client.xtrim(journal_key(account), maxlen=4, approximate=False)
    past = verify(redis_client, account).streams[0]

    assert covered.ok and covered.trimmed == 15 and covered.records == 5
    assert not past.ok and _first(past) == (ids[16], Fault.REMOVED)


def test_stream_maxlen_trimming_with_snapshots_verifies(redis_client: redis.Redis, account: str) -> None:
    journal: Journal[Added] = Journal(redis_client, Added, stream_maxlen=20)
    for i in range(0, 500, 10):
        ids = journal.append_many(account, [Added(n) for n in range(i, i + 10)])
        journal.save_snapshot(account, Added(i), ids[-1])

    report = verify(redis_client, account).streams[0]

    assert report.ok, report.problems
    assert report.trimmed > 0 and report.trimmed + report.records == 500


def test_the_journal_of_an_oms_verifies_while_it_runs_and_after_it_stopped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from oms.apps.serve import OmsApp

    configs = tmp_path / "configs"
    shutil.copytree(CONFIGS, configs)
    dev = configs / "dev.toml"
    dev.write_text(dev.read_text().replace('data_dir = "../var/redis"', f'data_dir = "{tmp_path / "redis"}"'))
    app = OmsApp.start(dev)  # managed Redis, the account actors on Ray (each journals its accounts), the engine
    try:
        assert app.engine is not None
        now = time.time_ns()
        for i, (account, side) in enumerate([("ACC1", Side.SELL), ("ACC2", Side.BUY), ("ACC1", Side.BUY)]):
            order = SubmitOrder(account, f"o{i}", "AAPL", side, OrdType.LIMIT, 10, PX, session="S")
            app.engine.submit(order, now)  # the second crosses the first: accepts, fills, a print, marks
        assert main(["verify", "--redis-url", app.redis_url]) == 0  # the running OMS, by its URL
        running = capsys.readouterr().out
        assert main(["verify", "--config", str(dev)]) == 2  # its data dir is in use
        assert "is running on" in capsys.readouterr().err
    finally:
        app.stop()

    assert main(["verify", "--config", str(dev)]) == 0  # the stopped OMS, by its config
    stopped = capsys.readouterr().out
    for account in ("ACC1", "ACC2"):
        assert f"{journal_key(account)}: " in running and f"{journal_key(account)}: " in stopped
    assert "journal intact" in stopped


# -- tampering --


def test_altering_one_record_fails_naming_it(journal: Journal[Added], redis_client: redis.Redis, account: str) -> None:
    ids = journal.append_many(account, [Added(i) for i in range(10)])
    assert verify(redis_client, account).ok
    key = journal_key(account)
    entries = redis_client.xrange(key)
    data = entries[4][1][b"r"]
    entries[4] = (entries[4][0], {b"r": data.replace(b"\xa1n\x04", b"\xa1n\x05", 1)})  # Added(4) -> Added(5)
    _rewrite(redis_client, key, entries)

    report = verify(redis_client, account)

    assert not report.ok
    assert _first(report.streams[0]) == (ids[4], Fault.ALTERED)
    assert [r.n for _, r in journal.read(account)][4] == 5  # the reader sees the altered value: only the chain tells


def test_deleting_one_entry_fails_naming_the_record_after_the_gap(
    journal: Journal[Added], redis_client: redis.Redis, account: str
) -> None:
    ids = journal.append_many(account, [Added(i) for i in range(10)])

    redis_client.xdel(journal_key(account), ids[4])
    report = verify(redis_client, account)

    assert _first(report.streams[0]) == (ids[5], Fault.REMOVED)
    assert f"XDEL, the last at {ids[4]}" in report.streams[0].problems[0].detail


def test_deleting_the_last_entries_fails_naming_the_last_one_left(
    journal: Journal[Added], redis_client: redis.Redis, account: str
) -> None:
    ids = journal.append_many(account, [Added(i) for i in range(10)])

    redis_client.xdel(journal_key(account), ids[8], ids[9])
    report = verify(redis_client, account)

    assert _first(report.streams[0]) == (ids[7], Fault.REMOVED)
    assert "2 removed from the end" in report.streams[0].problems[0].detail


def test_truncating_a_rebuilt_stream_below_its_snapshot_fails(
    journal: Journal[Added], redis_client: redis.Redis, account: str
) -> None:
    ids = journal.append_many(account, [Added(i) for i in range(10)])
    journal.save_snapshot(account, Added(0), ids[8])
    key = journal_key(account)
    kept = redis_client.xrange(key)[:6]
    redis_client.delete(key)
    for entry_id, fields in kept:  # the counter now agrees with what is left: only the snapshot remembers more
        redis_client.xadd(key, fields, id=entry_id)

    report = verify(redis_client, account)

    assert _first(report.streams[0]) == (ids[8], Fault.REMOVED)


def test_swapping_two_records_fails_as_reordered(
    journal: Journal[Added], redis_client: redis.Redis, account: str
) -> None:
    ids = journal.append_many(account, [Added(i) for i in range(10)])
    key = journal_key(account)
    entries = redis_client.xrange(key)
    (a, fa), (b, fb) = entries[3], entries[4]
    entries[3], entries[4] = (a, fb), (b, fa)  # ids in order, contents swapped
    _rewrite(redis_client, key, entries)

    report = verify(redis_client, account)

    assert _first(report.streams[0]) == (ids[3], Fault.REORDERED)
    assert [(p.entry_id, p.fault) for p in report.streams[0].problems] == [
        (ids[3], Fault.REORDERED),
        (ids[4], Fault.REORDERED),
    ]


def test_an_entry_added_by_someone_else_fails_as_unchained(
    journal: Journal[Added], redis_client: redis.Redis, account: str
) -> None:
    journal.append_many(account, [Added(i) for i in range(3)])
    foreign = redis_client.xadd(journal_key(account), {b"r": msgspec.msgpack.encode(Added(99))}).decode()
    journal.append(account, Added(3))

    report = verify(redis_client, account)

    assert _first(report.streams[0]) == (foreign, Fault.UNCHAINED)


def test_a_deleted_stream_whose_snapshot_remains_fails(
    journal: Journal[Added], redis_client: redis.Redis, account: str
) -> None:
    ids = journal.append_many(account, [Added(i) for i in range(4)])
    journal.save_snapshot(account, Added(0), ids[2])
    redis_client.delete(journal_key(account))

    report = verify(redis_client)  # found by its snapshot key

    (gone,) = [s for s in report.streams if s.stream == journal_key(account)]
    assert not gone.exists and _first(gone) == (ids[2], Fault.REMOVED)


# -- the command --


def test_verify_command_exit_codes_and_messages(
    journal: Journal[Added], redis_client: redis.Redis, redis_server: ManagedRedis, account: str,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    ids = journal.append_many(account, [Added(i) for i in range(5)])

    assert main(["verify", "--redis-url", redis_server.url, "--account", account]) == 0
    out = capsys.readouterr().out
    assert f"{journal_key(account)}: 5 records, seq 1..5" in out and "journal intact: 1 streams, 5 records" in out

    redis_client.xdel(journal_key(account), ids[2])
    assert main(["verify", "--redis-url", redis_server.url, "--account", account]) == 1
    captured = capsys.readouterr()
    assert f"first bad record: {journal_key(account)} {ids[3]}: removed:" in captured.err

    assert main(["verify", "--redis-url", redis_server.url, "--account", account + "-none"]) == 2
    assert "no journal for account" in capsys.readouterr().err


def test_a_pinned_head_catches_a_tail_rewritten_with_recomputed_hashes(
    journal: Journal[Added], redis_client: redis.Redis, redis_server: ManagedRedis, account: str,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    journal.append_many(account, [Added(i) for i in range(6)])
    url, key = redis_server.url, journal_key(account)
    assert main(["verify", "--redis-url", url, "--account", account, "--json"]) == 0
    (checked,) = msgspec.json.decode(capsys.readouterr().out)["streams"]
    head = f"{checked['stream']}@{checked['last_seq']}={checked['head']}"  # kept somewhere the journal is not
    entries = redis_client.xrange(key)[:3]
    redis_client.delete(key)
    for entry_id, fields in entries:
        redis_client.xadd(key, fields, id=entry_id)
    forger: Journal[Added] = Journal(redis_client, Added)
    forger.append_many(account, [Added(-1), Added(-2), Added(-3)])  # recomputed, counter consistent: 6 records

    assert main(["verify", "--redis-url", url, "--account", account]) == 0  # nothing inside the journal tells
    capsys.readouterr()
    assert main(["verify", "--redis-url", url, "--account", account, "--pin", head]) == 1
    assert ": altered: seq 6 does not have the hash recorded for it outside the journal" in capsys.readouterr().err


def test_verify_command_with_an_unreachable_redis_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["verify", "--redis-url", "redis://:secret@127.0.0.1:1/0"])

    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("oms audit verify: Redis at redis://:***@127.0.0.1:1/0")


def test_verify_command_checks_a_stopped_oms_by_its_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "conf" / "oms.toml"
    config.parent.mkdir()
    config.write_text('[redis]\ndata_dir = "../redis"\nappendfsync = "everysec"\n')
    assert main(["verify", "--config", str(config)]) == 2
    assert "no journal in" in capsys.readouterr().err

    with ManagedRedis(tmp_path / "redis") as server:
        client = make_client(server.url)
        Journal(client, Added).append_many("ACC9", [Added(i) for i in range(7)])
        assert main(["verify", "--config", str(config)]) == 2  # the OMS (its redis-server) is up: use the URL
        assert "is running on" in capsys.readouterr().err
        client.close()

    assert main(["verify", "--config", str(config)]) == 0  # started on the data dir, checked, stopped again
    out = capsys.readouterr().out
    assert "oms:journal:ACC9: 7 records" in out and "managed redis-server on" in out
    assert main(["verify", "--config", str(config)]) == 0  # and the data dir is free again


def test_python_m_oms_audit_runs_the_command(
    journal: Journal[Added], redis_client: redis.Redis, redis_server: ManagedRedis, account: str
) -> None:
    ids = journal.append_many(account, [Added(i) for i in range(3)])
    redis_client.xdel(journal_key(account), ids[1])

    done = subprocess.run(
        [sys.executable, "-m", "oms.apps.audit", "verify", "--redis-url", redis_server.url,
         "--account", account],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip

    assert done.returncode == 1
    assert f"first bad record: {journal_key(account)} {ids[2]}: removed" in done.stderr


def _audit_wired() -> bool:
    from oms.apps.cli import build_parser

    commands = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return any("audit" in a.choices for a in commands)


def test_oms_audit_verify_through_the_oms_command(
    journal: Journal[Added], redis_server: ManagedRedis, account: str
) -> None:
    if not _audit_wired():
        pytest.skip("`oms audit` is not wired into oms.apps.cli yet (add_audit_command)")
    journal.append_many(account, [Added(i) for i in range(3)])

    done = subprocess.run(
        [sys.executable, "-m", "oms", "audit", "verify", "--redis-url", redis_server.url, "--account", account],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert "journal intact: 1 streams, 3 records" in done.stdout
