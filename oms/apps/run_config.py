"""A configuration made to run on embedded defaults in a directory of its own (the demo's and the benchmarks' runs).

`embedded_config` reads an OMS configuration (TOML) and returns its table with every file the run writes moved into
`run_dir` (the managed Redis, chDB, FIX stores and logs), every file it reads made absolute, no external Redis,
Ray cluster or ClickHouse, and the FIX acceptor and the API on the given ports. The caller adjusts what its run
needs and writes it with `write_config`.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import tomli_w

__all__ = ["embedded_config", "write_config"]


def embedded_config(config: Path, run_dir: Path, fix_port: int, api_port: int) -> dict[str, Any]:
    """The table of `config` on embedded defaults with its files in `run_dir` (see the module text)."""
    raw = tomllib.loads(config.read_text())
    base = config.parent
    raw["instruments"] = str(base / raw.get("instruments", "instruments.toml"))
    raw["accounts"] = str(base / raw.get("accounts", "accounts.toml"))
    redis = raw.setdefault("redis", {})
    redis.pop("url", None)
    redis["data_dir"] = str(run_dir / "redis")
    raw.setdefault("ray", {}).pop("address", None)
    fix = raw.setdefault("fix", {})
    settings = base / fix.get("settings", "fix/acceptor.cfg")
    fix.update(port=fix_port, data_dir=str(run_dir / "fix"), settings=str(settings))
    api = raw.setdefault("api", {})
    api.update(port=api_port, keys=str(base / api.get("keys", "api_keys.toml")))
    analytics = raw.setdefault("analytics", {})
    analytics.pop("dsn", None)
    analytics["data_dir"] = str(run_dir / "clickhouse")
    return raw


def write_config(raw: dict[str, Any], path: Path) -> Path:
    """Write `raw` as TOML at `path` (its directory created); returns `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(tomli_w.dumps(raw))
    return path
