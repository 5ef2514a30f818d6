"""`oms config check`: the whole configuration loaded and validated as `oms serve` loads it, nothing started.

It runs the loaders `oms serve` runs before it starts anything (`oms.apps.serve.load_config`: the file itself,
instruments, accounts and risk limits, venues and routes, the schedule, the FIX sessions and their QuickFIX keys, the
FIX front door), then what `oms serve` would otherwise meet only while starting: the API keys against the accounts,
the FIX data dictionary of each FIX version in use and the construction of every routed venue. Each problem is one
line naming the file and the key (the loaders' own ConfigError text; a file the configuration names is introduced by
the configuration file and its key); a problem in the main loader stops the checks that need its result.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import msgspec

from fix_gateway.settings import dictionary_path
from oms.adapters.api.keys import load_keys
from oms.apps.paths import checkout_root, default_config, packaged_configs
from oms.apps.serve import LoadedConfig, OmsConfig, build_venues, load_config
from oms.core.model.instruments import ConfigError, read_toml

__all__ = ["ConfigReport", "add_config_command", "check_config"]


class ConfigReport:
    """What `check_config` found: `problems` (one line each, empty when the configuration is valid) and, when it
    loaded, a `summary` of what `oms serve` would start (a line each)."""

    def __init__(self, path: Path, problems: list[str], summary: list[str]) -> None:
        self.path = path
        self.problems = problems
        self.summary = summary

    @property
    def ok(self) -> bool:
        """True when nothing is wrong."""
        return not self.problems


def check_config(path: str | Path) -> ConfigReport:
    """Load and validate the OMS configuration at `path` as `oms serve` would, starting nothing and writing
    nothing; collects every problem the loaders report rather than stopping at the first where they are
    independent."""
    path = Path(path)
    problems: list[str] = []

    def attempt(check: Callable[[], object]) -> object | None:
        try:
            return check()
        except ConfigError as exc:
            problems.append(_one_line(str(exc)))
        except OSError as exc:  # an unreadable file the loader did not wrap
            problems.append(_one_line(f"{exc.filename or path}: {exc.strerror or exc}"))
        return None

    loaded = attempt(lambda: load_config(path))
    files = _named_files(path)
    if not isinstance(loaded, LoadedConfig):
        if "api.keys" in files:  # the keys file on its own (its accounts are checked once the accounts load)
            attempt(lambda: load_keys(files["api.keys"]))
        return ConfigReport(path, _named(problems, path, files), [])
    cfg = loaded.config
    keys = attempt(lambda: load_keys(cfg.api.keys, set(loaded.risk.accounts)))
    versions = {s.begin_string for s in loaded.fix_sessions}
    versions |= {v for _, _, table in cfg.venues.routed() if (v := getattr(table, "begin_string", None))}
    dictionaries = [attempt(lambda v=v: dictionary_path(v)) for v in sorted(versions)]
    venues = attempt(lambda: build_venues(loaded, 0))
    summary = _summary(loaded, keys, [d for d in dictionaries if d is not None], venues)
    return ConfigReport(path, _named(problems, path, files), summary)


def _summary(loaded: LoadedConfig, keys: object, dictionaries: list[object], venues: object) -> list[str]:
    """A line each: the files, what would trade, where it would listen and write."""
    cfg = loaded.config
    sessions = ", ".join(f"{s.name}" for s in loaded.fix_sessions)
    routes = ", ".join(f"{symbol} -> {venue}" for symbol, venue in sorted(cfg.venues.routes.items())) or "none"
    lines = [
        f"config       {loaded.path}",
        f"instruments  {len(loaded.instruments)} ({', '.join(i.symbol for i in loaded.instruments)}) from "
        f"{loaded.instruments_path}",
        f"accounts     {len(loaded.risk.accounts)} ({', '.join(sorted(loaded.risk.accounts))}) from "
        f"{loaded.accounts_path}",
        f"fix          port {cfg.fix.port} on {cfg.fix.host}: {sessions} ({cfg.fix.settings})",
        f"venues       default {cfg.venues.default}; routes: {routes}",
        f"redis        {cfg.redis.url or f'managed redis-server, data in {Path(cfg.redis.data_dir).resolve()}'}",
        f"analytics    {cfg.analytics.dsn}",
    ]
    if keys is not None:
        lines.append(f"api          port {cfg.api.port}: {len(keys)} keys from {cfg.api.keys}")  # type: ignore[arg-type]
    if dictionaries:
        lines.append(f"dictionaries {', '.join(str(d) for d in dictionaries)}")
    if isinstance(venues, dict):
        lines.append(f"built        venues {', '.join(venues)}")
    return lines


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _named_files(path: Path) -> dict[str, Path]:
    """The files the configuration at `path` names, by key (`accounts`, `fix.settings`, ...), as `load_config`
    resolves them (relative to the file); empty when the file itself does not load."""
    try:
        cfg = msgspec.convert(read_toml(path), OmsConfig)
    except (ConfigError, msgspec.ValidationError):
        return {}
    named = {"instruments": cfg.instruments, "accounts": cfg.accounts, "fix.settings": cfg.fix.settings}
    named["api.keys"] = cfg.api.keys
    return {key: path.parent / value for key, value in named.items()}


def _named(problems: list[str], path: Path, files: dict[str, Path]) -> list[str]:
    """Each problem once, in the order found; a problem in a file the configuration names (a missing one, say) is
    prefixed with the configuration file and the key that names it."""
    out = []
    for problem in dict.fromkeys(problems):
        key = next((k for k, f in files.items() if problem.startswith(f"{f}:")), None)
        out.append(f"{path}: {key}: {problem}" if key is not None else problem)
    return out


def _run(args: argparse.Namespace) -> int:
    report = check_config(args.config)
    if not report.ok:
        for problem in report.problems:
            print(problem, file=sys.stderr)
        return 1
    print(f"ok: {report.path}")
    for line in report.summary:
        print(f"  {line}")
    if checkout_root() is None and report.path.parent == packaged_configs():
        print("  (the packaged defaults: `oms serve` without --config first writes them to ./configs, so its files "
              "go to ./var)")  # fmt: skip
    return 0


def add_config_command(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register `oms config check`."""
    config = commands.add_parser("config", help="check the configuration (`oms config check`)")
    actions = config.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    check = actions.add_parser(
        "check",
        help="load and validate the whole configuration as `oms serve` would, starting nothing; exit 1 on a problem",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument(
        "--config",
        type=Path,
        default=default_config(),
        help="OMS config (default: configs/dev.toml of the checkout, else ./configs/dev.toml, else the packaged one)",
    )
    check.set_defaults(func=_run)
