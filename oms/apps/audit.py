"""`oms audit verify`: check the journal's hash chain from the command line (`python -m oms.apps.audit verify` too).

The check itself is `oms.infra.redis.audit.verify`; this module finds the journal (a running OMS's Redis URL, or a
stopped OMS's data dir, on which it starts the managed redis-server for the check), prints the report and turns it
into an exit code: 0 intact, 1 naming the first bad record, 2 when nothing could be checked.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

import msgspec
import redis

from oms.apps.paths import default_config
from oms.core.model.instruments import ConfigError, read_toml
from oms.infra.redis.audit import verify
from oms.infra.redis.journal import DIGEST_SIZE
from oms.infra.redis.server import JournalUnavailable, ManagedRedis, RedisSettings, connect

__all__ = ["add_audit_command", "load_redis_settings", "main", "parse_pin", "run_verify"]

DEFAULT_CONFIG = default_config()  # configs/dev.toml of the checkout, or ./configs, or the packaged copy


def load_redis_settings(config_path: str | os.PathLike[str]) -> RedisSettings:
    """The `[redis]` table of the OMS config at `config_path`, its `data_dir` taken relative to the file.

    Raises ConfigError naming the file (and the field) for an unreadable file, invalid TOML or a bad field.
    """
    path = Path(config_path)
    try:
        settings = msgspec.convert(read_toml(path).get("redis", {}), RedisSettings)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{path}: redis: {exc}") from exc
    if settings.url is None and not Path(settings.data_dir).is_absolute():
        settings = msgspec.structs.replace(settings, data_dir=str((path.parent / settings.data_dir).resolve()))
    return settings


def _in_use(data_dir: Path) -> bool:
    """True when a redis-server holds the data dir's lock (see oms.infra.redis.server): the OMS is running."""
    try:
        fd = os.open(data_dir / ".lock", os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing releases a lock taken here
    return False


def _without_password(url: str | None) -> str:
    """`url` with its password masked, fit to print."""
    parts = urlsplit(url or "")
    if parts.password is None:
        return url or ""
    return parts._replace(netloc=f"{parts.username or ''}:***@{parts.netloc.rsplit('@', 1)[1]}").geturl()


def _open(args: argparse.Namespace) -> tuple[redis.Redis, ManagedRedis | None, str]:
    """A client on the journal named by the arguments, the managed server started for it (or None), and where."""
    settings = RedisSettings(url=args.redis_url) if args.redis_url else load_redis_settings(args.config)
    if settings.url is None:
        data_dir = Path(settings.data_dir)
        if not (data_dir / "appendonlydir").is_dir():
            raise ConfigError(f"no journal in {data_dir} (no appendonlydir): has the OMS run with {args.config}?")
        if _in_use(data_dir):
            raise JournalUnavailable(
                f"the journal's redis-server is running on {data_dir} (the OMS is up): "
                f"pass --redis-url with the address `oms serve` printed"
            )
    client, managed = connect(settings)
    where = f"managed redis-server on {settings.data_dir}" if managed is not None else _without_password(settings.url)
    return client, managed, where


def run_verify(args: argparse.Namespace) -> int:
    """`oms audit verify`: 0 when every stream is intact, 1 naming the first bad record, 2 when nothing could be
    checked (no journal, Redis unreachable, bad config), each failure one line on stderr."""
    try:
        client, managed, where = _open(args)
    except (ConfigError, JournalUnavailable) as exc:
        print(f"oms audit verify: {exc}", file=sys.stderr)
        return 2
    pins: dict[str, dict[int, bytes]] = {}
    for key, seq, digest in args.pin:
        pins.setdefault(key, {})[seq] = digest
    try:
        report = verify(client, args.account, pins=pins)
    except (redis.RedisError, ValueError) as exc:
        print(f"oms audit verify: checking the journal at {where} failed: {exc}", file=sys.stderr)
        return 2
    finally:
        client.close()
        if managed is not None:
            managed.stop()
    if args.json:
        print(msgspec.json.encode(report).decode())
    else:
        for stream in report.streams:
            print(stream.describe())
            for p in stream.problems:
                print(f"  {p.entry_id or '(no entry)'}  {p.fault}: {p.detail}")
            if stream.more_problems:
                print(f"  ... and {stream.more_problems} more")
    first = report.first_problem
    if first is not None:
        print(f"oms audit verify: journal NOT intact: first bad record: {first}", file=sys.stderr)
        return 1
    if not any(s.exists for s in report.streams):
        what = f"account {args.account!r}" if args.account else "any account"
        print(f"oms audit verify: no journal for {what} at {where}", file=sys.stderr)
        return 2
    if not args.json:
        print(f"journal intact: {len(report.streams)} streams, {report.records} records ({where})")
    return 0


def parse_pin(text: str) -> tuple[str, int, bytes]:
    """`oms:journal:ACC1@1234=<32 hex digits>` (as `describe` prints heads) -> (stream, seq, hash).

    Raises argparse.ArgumentTypeError for anything else.
    """
    key, _, rest = text.rpartition("@")
    seq, _, digest = rest.partition("=")
    try:
        parsed = (key, int(seq), bytes.fromhex(digest))
    except ValueError:
        parsed = None
    if parsed is None or ":journal:" not in key or parsed[1] < 1 or len(parsed[2]) != DIGEST_SIZE:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not STREAM@SEQ=HASH (e.g. oms:journal:ACC1@12={'0' * 2 * DIGEST_SIZE})"
        )
    return parsed


def _add_verify(actions: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    verify_cmd = actions.add_parser(
        "verify",
        help="check the hash chain of every journal stream; exit 1 naming the first bad record",
        description="Reads every journal stream (or one account's) and checks its hash chain: altered, removed, "
        "reordered or unchained records, a tail shorter than the stream's counter or the snapshot. Exit 0 when "
        "intact, 1 naming the first bad record, 2 when nothing could be checked. With --config and no [redis] url, "
        "the managed redis-server is started on the configured data dir for the check and stopped again (the OMS "
        "must be stopped; for a running OMS pass --redis-url). Only reads.",
    )
    where = verify_cmd.add_mutually_exclusive_group()
    where.add_argument("--config", default=str(DEFAULT_CONFIG), help="OMS config (default: configs/dev.toml)")
    where.add_argument("--redis-url", help="redis://host:port/db of a running journal (overrides the config)")
    verify_cmd.add_argument("--account", help="check this account's stream only")
    verify_cmd.add_argument(
        "--pin",
        type=parse_pin,
        action="append",
        default=[],
        metavar="STREAM@SEQ=HASH",
        help="a head an earlier run printed: the record with that seq must still carry that hash (repeatable)",
    )
    verify_cmd.add_argument("--json", action="store_true", help="print the report as JSON")
    verify_cmd.set_defaults(func=run_verify)


def add_audit_command(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add `audit` and its action `verify` to the `oms` command's subparsers (handler in `args.func`)."""
    audit = commands.add_parser(
        "audit",
        help="the audit trail: verify the journal's hash chain",
        description="Every journal record carries the hash of the one before it (docs/journal.md).",
    )
    actions = audit.add_subparsers(dest="audit", metavar="ACTION", required=True)
    _add_verify(actions)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m oms.apps.audit verify ...`: the same as `oms audit verify ...`."""
    parser = argparse.ArgumentParser(prog="python -m oms.apps.audit", description="Audit the journal's hash chain.")
    _add_verify(parser.add_subparsers(dest="audit", metavar="ACTION", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
