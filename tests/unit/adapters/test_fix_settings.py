"""The FIX session settings file is validated whole before QuickFIX sees it."""

from __future__ import annotations

from pathlib import Path

import pytest

from fix_gateway.settings import load_sessions
from oms.core.model.instruments import ConfigError

ACCOUNTS = ["ACC1", "ACC2"]
GOOD = """
[DEFAULT]
ConnectionType=acceptor
SenderCompID=OMS
[SESSION]
BeginString=FIX.4.2
TargetCompID=CLIENT42
Accounts=ACC1, ACC2
[SESSION]
BeginString=FIX.4.4
TargetCompID=CLIENT44
Accounts=ACC2
LogonPassword=secret
[SESSION]
BeginString=FIX.4.4
TargetCompID=DROPCOPY
DropCopy=Y
"""
SECOND_DROPCOPY = "[SESSION]\nBeginString=FIX.4.4\nTargetCompID=DROPCOPY\nDropCopy=Y"


def load(tmp_path: Path, text: str):
    path = tmp_path / "acceptor.cfg"
    path.write_text(text)
    return load_sessions(path, ACCOUNTS)


def test_sessions_merge_defaults_and_carry_the_oms_keys(tmp_path: Path) -> None:
    s42, s44, dc = load(tmp_path, GOOD)

    assert s42.name == "FIX.4.2:OMS->CLIENT42" and s42.accounts == ("ACC1", "ACC2") and s42.password is None
    assert (s44.accounts, s44.password, s44.drop_copy) == (("ACC2",), "secret", False)
    assert dc.drop_copy and dc.accounts == ()
    assert "Accounts" not in s42.keys and s42.keys["ConnectionType"] == "acceptor"


def test_the_shipped_settings_file_loads() -> None:
    path = Path(__file__).parents[3] / "configs" / "fix" / "acceptor.cfg"

    names = [s.name for s in load_sessions(path, ["ACC1", "ACC2", "TIGHT1"])]

    assert names == ["FIX.4.2:OMS->CLIENT42", "FIX.4.4:OMS->CLIENT44", "FIX.4.4:OMS->DROPCOPY"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("TargetCompID=CLIENT42", "TargetCompID=CLIENT42\nHeartBtInterval=30"), "unknown key 'HeartBtInterval'"),
        (("Accounts=ACC2\n", "Accounts=NOPE\n"), "unknown account 'NOPE'"),
        (("BeginString=FIX.4.2", "BeginString=FIX.4.3"), "BeginString 'FIX.4.3' not supported"),
        (("Accounts=ACC1, ACC2", "Accounts=ACC1\nLogonPassword=x"), "LogonPassword needs FIX.4.4"),
        (("DropCopy=Y", "DropCopy=Y\nAccounts=ACC1"), "a DropCopy session trades no account"),
        (("DropCopy=Y", "DropCopy=yes"), "DropCopy must be Y or N"),
        (("DropCopy=Y", f"DropCopy=Y\n{SECOND_DROPCOPY}"), "given twice"),
        (("SenderCompID=OMS", "SenderCompID=OMS\nSocketAcceptPort=1"), "set by the OMS"),
        (("[DEFAULT]", "[DEFAULTS]"), "unknown section [DEFAULTS]"),
        (("Accounts=ACC2\n", "\n"), "Accounts missing"),
    ],
)
def test_a_bad_settings_file_names_what_is_wrong(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load(tmp_path, GOOD.replace(*change, 1))
