"""Where the default configuration is and where a run's files go, in a checkout and in an installed wheel.

The default configuration has one copy: `configs/` at the top of the checkout. The package reaches it as package
data through `oms/configs`, a symlink to `../configs`: setuptools copies the files behind it into the wheel
(`[tool.setuptools.package-data]` in pyproject.toml), and `importlib.resources` finds them in either place.

- In a checkout (the package's `configs` leads out of the package to a folder beside `pyproject.toml`), the
  defaults are the checkout's `configs/` and runs write under the checkout's `var/`, wherever the command starts.
- Installed from a wheel, runs write under `./var` of the working directory, and the default configuration is
  `./configs/` when the working directory has one (`oms init configs` writes it) and otherwise the packaged copy.
  The files the defaults' relative data directories (`../var/...`) name must not land inside the installed package,
  so `oms serve` and `oms exchange-sim` first write the packaged copy to `./configs` (`serving_config`).
"""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

__all__ = [
    "InitRefused",
    "checkout_root",
    "config_files",
    "default_config",
    "init_configs",
    "packaged_configs",
    "serving_config",
    "work_dir",
]


class InitRefused(Exception):
    """`init_configs` would overwrite files that exist (and was not told to)."""


def packaged_configs() -> Path:
    """The folder of the default configuration the package carries (the checkout's `configs/` when run from one)."""
    return Path(str(resources.files("oms").joinpath("configs"))).resolve()


def config_files() -> list[str]:
    """Every file of the default configuration, relative to its folder (`dev.toml`, `fix/acceptor.cfg`, ...)."""
    source = packaged_configs()
    return sorted(
        p.relative_to(source).as_posix() for p in source.rglob("*") if p.is_file() and p.suffix in (".toml", ".cfg")
    )


def checkout_root() -> Path | None:
    """The source checkout the package runs from, or None when it runs installed from a wheel."""
    root = packaged_configs().parent
    return root if (root / "pyproject.toml").is_file() and (root / "oms").is_dir() else None


def work_dir() -> Path:
    """Where `var/` (journal, stores, logs, demo runs) goes by default: the checkout, or the working directory."""
    root = checkout_root()
    return root if root is not None else Path.cwd()


def default_config(name: str = "dev.toml") -> Path:
    """The default configuration file `name`: the checkout's, else `./configs/<name>` if it exists, else the
    packaged copy."""
    if checkout_root() is None:
        local = Path.cwd() / "configs" / name
        if local.is_file():
            return local.resolve()
    return packaged_configs() / name


def serving_config(name: str = "dev.toml") -> tuple[Path, str | None]:
    """The default configuration file `name` for a command that writes files next to it (`../var`): as
    `default_config`, except that the packaged copy of an installed wheel is first written to `./configs` (so the
    run's files go to `./var`, not into the package). Returns (path, a line saying what was written, or None)."""
    path = default_config(name)
    if checkout_root() is not None or path.parent != packaged_configs():
        return path, None
    target = Path.cwd() / "configs"
    written = init_configs(target)
    return (target / name).resolve(), f"wrote the default configuration to {target} ({len(written)} files)"


def init_configs(target: Path, force: bool = False) -> list[Path]:
    """Copy every file of the default configuration into `target` (created), keeping `fix/`; returns the files
    written. Raises InitRefused naming the files that exist, unless `force` (then they are overwritten)."""
    source = packaged_configs()
    names = config_files()
    existing = [target / name for name in names if (target / name).exists()]
    if existing and not force:
        raise InitRefused(", ".join(str(p) for p in existing))
    written = []
    for name in names:
        dest = target / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / name, dest)
        written.append(dest)
    return written
