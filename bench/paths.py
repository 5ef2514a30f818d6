"""The default configuration the benchmarks start from: the package's (`oms/configs`, which is the checkout's
`configs/` when run from a checkout and package data in an installed wheel; see `oms.apps.paths`)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["CONFIGS"]

CONFIGS = Path(str(resources.files("oms").joinpath("configs"))).resolve()
