"""API keys: the dev keys file loads against the configured accounts; every bad file is refused by name."""

from __future__ import annotations

import pytest

from oms.adapters.api.keys import DEFAULT_KEYS, Permission, Role, load_keys, parse_keys
from oms.apps.serve import load_config
from oms.core.model.instruments import ConfigError


def test_the_dev_keys_file_loads_against_the_configured_accounts() -> None:
    ring = load_keys(DEFAULT_KEYS, set(load_config().risk.accounts))

    trader = ring.by_secret("trader1-dev-secret")
    assert trader is not None and trader.key_id == "trader1" and trader.session == "REST:trader1"
    assert {k.role for k in ring} == set(Role)
    assert ring.by_id("admin") is ring.by_secret("admin-dev-secret")
    assert ring.by_secret("nope") is None


def test_permissions_follow_role_and_accounts() -> None:
    ring = load_keys(DEFAULT_KEYS)
    trader, risk, compliance = ring.by_id("trader1"), ring.by_id("risk1"), ring.by_id("compliance1")
    assert trader is not None and risk is not None and compliance is not None

    assert trader.may(Permission.TRADE, "ACC1") and not trader.may(Permission.TRADE, "TIGHT1")
    assert not trader.may(Permission.KILL_SWITCH, "ACC1")
    assert risk.may(Permission.KILL_SWITCH) and not risk.may(Permission.TRADE, "ACC1")
    assert compliance.may(Permission.READ_ORDERS, "TIGHT1") and not compliance.may(Permission.READ_RISK, "ACC1")


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"k": {"role": "trader", "secret": "s", "accounts": ["ACC1"], "colour": "x"}}, "unknown field `colour`"),
        ({"k": {"role": "boss", "secret": "s"}}, "Invalid enum value 'boss'"),
        ({"k": {"role": "admin"}}, "key 'k': `secret` is missing"),
        ({"k": {"role": "trader", "secret": "s"}}, "key 'k': `accounts`: a trader key needs"),
        ({"k": {"role": "risk", "secret": "s", "accounts": ["ACC1"]}}, "key 'k': `accounts`: role 'risk'"),
        ({"k": {"role": "trader", "secret": "s", "accounts": ["ZZZ"]}}, "key 'k': accounts: unknown account 'ZZZ'"),
        ({"a": {"role": "admin", "secret": "s"}, "b": {"role": "risk", "secret": "s"}}, "key 'b': same secret as"),
        ({"k": {"role": "admin", "secret_env": "OMS_TEST_UNSET_VAR"}}, "OMS_TEST_UNSET_VAR' is not set"),
    ],
)
def test_a_bad_keys_file_is_refused_naming_the_key_and_field(keys: dict, message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_keys({"keys": keys}, {"ACC1"}, source="keys.toml")
    assert message in str(exc.value) and str(exc.value).startswith("keys.toml")


def test_an_unknown_top_level_table_is_refused() -> None:
    with pytest.raises(ConfigError, match="unknown field `key`"):
        parse_keys({"key": {}})


def test_a_secret_may_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMS_TEST_SECRET", "from-env")

    ring = parse_keys({"keys": {"ops": {"role": "admin", "secret_env": "OMS_TEST_SECRET"}}})

    assert ring.by_secret("from-env") is ring.by_id("ops")
