"""Starting the core from its configuration: everything or nothing, and errors that name the problem."""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import pytest

from oms.apps.serve import OmsApp, load_config
from oms.core.model.enums import OrdType, RejectReason, Side
from oms.core.model.instruments import ConfigError
from oms.core.model.messages import OrderAccepted, OrderRejected, SubmitOrder
from oms.infra.redis.server import JournalUnavailable

pytestmark = pytest.mark.integration

CONFIGS = Path(__file__).parents[2] / "configs"


@pytest.fixture
def configs(tmp_path: Path) -> Path:
    """A copy of configs/ whose managed Redis keeps its data in the test's temp dir."""
    target = tmp_path / "configs"
    shutil.copytree(CONFIGS, target)
    dev = target / "dev.toml"
    dev.write_text(dev.read_text().replace('data_dir = "../var/redis"', f'data_dir = "{tmp_path / "redis"}"'))
    return target


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def ray_running() -> bool:
    import ray

    return ray.is_initialized()


def test_the_default_config_is_valid():
    loaded = load_config()

    assert {"ACC1", "ACC2"} <= set(loaded.risk.accounts)
    assert loaded.instruments.by_symbol("AAPL") is not None


def test_start_trade_and_stop_cleanly(configs):
    app = OmsApp.start(configs / "dev.toml")
    try:
        assert app.engine is not None
        buy = SubmitOrder("ACC1", "b1", "AAPL", Side.BUY, OrdType.LIMIT, 10, 1_500_000, session="S")
        unknown = SubmitOrder("NOBODY", "x1", "AAPL", Side.BUY, OrdType.LIMIT, 10, 1_500_000, session="S")
        (ack,) = app.engine.submit(buy, time.time_ns())
        (rej,) = app.engine.submit(unknown, time.time_ns())
        assert isinstance(ack, OrderAccepted)
        assert isinstance(rej, OrderRejected) and rej.reason == RejectReason.UNKNOWN_ACCOUNT
    finally:
        app.stop()
        app.stop()
    assert not ray_running()


@pytest.mark.parametrize(
    ("file", "old", "new", "message"),
    [
        ("dev.toml", "[ray]", "[ray]\nnum_cpu = 2", "num_cpu"),
        ("dev.toml", 'appendfsync = "always"', 'appendfsync = "sometimes"', "appendfsync"),
        ("dev.toml", 'default = "INTERNAL"', 'default = "NYSE"', "NYSE"),
        ("accounts.toml", "[accounts.ACC1]", '[accounts.ACC1]\ncredit_limt = "5"', "credit_limt"),
        ("instruments.toml", 'tick_size = "0.01"', 'tick_size = "0.00001"', "tick_size"),
    ],
)
def test_a_bad_config_is_refused_by_name_before_anything_starts(configs, file, old, new, message):
    edit(configs / file, old, new)

    with pytest.raises(ConfigError, match=re.escape(message)):
        OmsApp.start(configs / "dev.toml")
    assert not ray_running()


def test_an_unreachable_redis_is_named_and_nothing_is_left_running(configs):
    edit(configs / "dev.toml", '# url = "redis://127.0.0.1:6379/0"', 'url = "redis://127.0.0.1:9/0"')

    with pytest.raises(JournalUnavailable, match=re.escape("redis://127.0.0.1:9/0")):
        OmsApp.start(configs / "dev.toml")
    assert not ray_running()
