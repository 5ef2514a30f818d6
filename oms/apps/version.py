"""`oms --version`: the package's version, then what it runs on (QuickFIX, Ray, chDB, the redis-server it starts).

The first line is the package's own version (`importlib.metadata`) and where it is imported from, so an installed
wheel and a checkout are told apart; each further line names a dependency and its version, or says it is missing.
Nothing is imported or started: versions come from the installed distributions' metadata and `redis-server
--version`.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

__all__ = ["version_lines"]

#: the distributions whose versions matter to a bug report, by the name `oms --version` shows
DEPENDENCIES = (("quickfix", "quickfix"), ("ray", "ray"), ("chdb", "chdb"), ("msgspec", "msgspec"))


def _distribution_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def _redis_server_version() -> str:
    """The version `redis-server --version` prints (`v=7.0.15`), or why there is none."""
    exe = shutil.which("redis-server")
    if exe is None:
        return "not found on PATH (the OMS starts one unless [redis] url is set)"
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        return f"{exe}: {exc}"
    found = re.search(r"v=(\S+)", out)
    return f"{found.group(1)} ({exe})" if found else f"{out.strip()} ({exe})"


def version_lines() -> list[str]:
    """`oms <version> (<package folder>, Python <version>)`, then one line per dependency."""
    here = Path(__file__).resolve().parents[1]
    python = ".".join(map(str, sys.version_info[:3]))
    lines = [f"oms {_distribution_version('oms')} ({here}, Python {python})"]
    lines += [f"{shown:<12} {_distribution_version(dist)}" for shown, dist in DEPENDENCIES]
    lines.append(f"{'redis-server':<12} {_redis_server_version()}")
    return lines
