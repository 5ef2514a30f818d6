"""`oms config check` and `oms init` on copies of the default configuration: a valid one is `ok` with a summary, a
broken one is one line per problem naming the file and the key, exit 1; init copies every file and refuses to
overwrite without --force."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from oms.apps.cli import main
from oms.apps.config_check import check_config
from oms.apps.paths import checkout_root, config_files, default_config, packaged_configs

CONFIGS = Path(__file__).resolve().parents[3] / "configs"


@pytest.fixture
def configs(tmp_path: Path) -> Path:
    """A copy of configs/; returns its dev.toml."""
    target = tmp_path / "configs"
    shutil.copytree(CONFIGS, target)
    return target / "dev.toml"


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_packaged_configs_in_a_checkout_are_the_checkouts_configs_folder() -> None:
    assert packaged_configs() == CONFIGS
    assert checkout_root() == CONFIGS.parent
    assert default_config() == CONFIGS / "dev.toml"
    assert "dev.toml" in config_files() and "fix/acceptor.cfg" in config_files()


def test_the_default_configuration_checks_ok_with_a_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"ok: {CONFIGS / 'dev.toml'}\n")
    assert "accounts     5 (ACC1, ACC2, ALGO1, MM1, TIGHT1)" in out
    assert "FIX.4.2:OMS->CLIENT42" in out
    assert "api          port 8080: 7 keys" in out
    assert "FIX42.xml" in out and "FIX44.xml" in out


def test_a_misspelt_key_in_the_main_file_names_the_file_and_the_key(configs: Path) -> None:
    _edit(configs, "appendfsync =", "appendfsynk =")

    report = check_config(configs)

    assert report.problems == [f"{configs}: Object contains unknown field `appendfsynk` - at `$.redis`"]
    assert report.summary == []


def test_a_misspelt_key_in_a_named_file_names_the_config_key_the_file_and_its_key(configs: Path) -> None:
    _edit(configs.parent / "accounts.toml", "max_open_orders = 200", "max_open_order = 200")

    report = check_config(configs)

    accounts = configs.parent / "accounts.toml"
    assert report.problems == [
        f"{configs}: accounts: {accounts}: Object contains unknown field `max_open_order` - at `$.defaults`"
    ]


def test_a_misspelt_quickfix_key_names_the_settings_file_and_line(configs: Path) -> None:
    _edit(configs.parent / "fix" / "acceptor.cfg", "HeartBtInt=30", "HeartBeatInt=30")

    report = check_config(configs)

    settings = configs.parent / "fix" / "acceptor.cfg"
    assert len(report.problems) == 1
    assert report.problems[0].startswith(f"{configs}: fix.settings: {settings}:")
    assert report.problems[0].endswith("unknown key 'HeartBeatInt'")


def test_a_missing_file_names_the_key_that_names_it(configs: Path) -> None:
    _edit(configs, 'keys = "api_keys.toml"', 'keys = "keys.toml"')

    report = check_config(configs)

    assert report.problems == [f"{configs}: api.keys: {configs.parent / 'keys.toml'}: No such file or directory"]


def test_independent_problems_are_each_reported(configs: Path) -> None:
    _edit(configs.parent / "accounts.toml", "max_open_orders = 200", "max_open_order = 200")
    _edit(configs.parent / "api_keys.toml", 'role = "risk"', 'rol = "risk"')

    report = check_config(configs)

    assert len(report.problems) == 2
    assert "accounts: " in report.problems[0] and "`max_open_order`" in report.problems[0]
    assert "api.keys: " in report.problems[1] and "`rol`" in report.problems[1]


def test_an_api_key_for_an_unknown_account_is_found_without_starting_the_api(configs: Path) -> None:
    _edit(configs.parent / "api_keys.toml", 'accounts = ["TIGHT1"]', 'accounts = ["TIGHT9"]')

    report = check_config(configs)

    assert len(report.problems) == 1
    assert report.problems[0].startswith(f"{configs}: api.keys: {configs.parent / 'api_keys.toml'}:")
    assert "TIGHT9" in report.problems[0]


def test_the_command_prints_each_problem_on_stderr_and_exits_1(
    configs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _edit(configs, 'accounts = "accounts.toml"', 'accounts = "acounts.toml"')

    assert main(["config", "check", "--config", str(configs)]) == 1

    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"{configs}: accounts: {configs.parent / 'acounts.toml'}: No such file or directory\n"


def test_init_writes_every_default_file_then_refuses_to_overwrite_unless_forced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "cfg"

    assert main(["init", str(target)]) == 0
    out = capsys.readouterr().out
    for name in config_files():
        assert (target / name).read_bytes() == (CONFIGS / name).read_bytes()
    assert f"oms serve --config {target / 'dev.toml'}" in out
    assert check_config(target / "dev.toml").ok

    (target / "dev.toml").write_text("# edited\n")
    assert main(["init", str(target)]) == 1
    assert "would overwrite" in capsys.readouterr().err
    assert (target / "dev.toml").read_text() == "# edited\n"

    assert main(["init", str(target), "--force"]) == 0
    assert (target / "dev.toml").read_bytes() == (CONFIGS / "dev.toml").read_bytes()


def test_version_names_the_package_and_what_it_runs_on(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])

    assert exit_.value.code == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("oms ") and f"({CONFIGS.parent / 'oms'}, Python 3." in lines[0]
    assert [line.split()[0] for line in lines[1:]] == ["quickfix", "ray", "chdb", "msgspec", "redis-server"]
