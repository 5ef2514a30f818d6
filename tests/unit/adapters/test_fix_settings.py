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
LogonPassword=secret42
[SESSION]
BeginString=FIX.4.4
TargetCompID=CLIENT44
Accounts=ACC2
LogonPassword=secret
[SESSION]
BeginString=FIX.4.4
TargetCompID=DROPCOPY
DropCopy=Y
LogonPassword=copy
"""
SECOND_DROPCOPY = "[SESSION]\nBeginString=FIX.4.4\nTargetCompID=DROPCOPY\nDropCopy=Y\nLogonPassword=x"


def load(tmp_path: Path, text: str):
    path = tmp_path / "acceptor.cfg"
    path.write_text(text)
    return load_sessions(path, ACCOUNTS)


def test_sessions_merge_defaults_and_carry_the_oms_keys(tmp_path: Path) -> None:
    s42, s44, dc = load(tmp_path, GOOD)

    assert s42.name == "FIX.4.2:OMS->CLIENT42" and s42.accounts == ("ACC1", "ACC2") and s42.password == "secret42"
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
        (("LogonPassword=copy\n", "\n"), "LogonPassword missing"),
        (("DropCopy=Y", "DropCopy=Y\nServerCertificateFile=c.pem"), "belongs in [DEFAULT]"),
        (("DropCopy=Y", "DropCopy=Y\nMySQLStoreHost=db"), "has no effect here .the OMS uses QuickFIX's file store"),
        (("DropCopy=Y", "DropCopy=Y\nSocketConnectHost=h"), "has no effect here .a key of initiators"),
        (("DropCopy=Y", "DropCopy=Y\nSocketAcceptHost=0.0.0.0"), "set `host` in the OMS config's .fix. table"),
        (("DropCopy=Y", "DropCopy=Y\nAllowedRemoteAddresses=10.0.0.1,nope"), "'nope' is not an IP address"),
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


def test_every_key_quickfix_defines_is_known(tmp_path: Path) -> None:
    """The list comes from the installed QuickFIX, so keys this file never named load (these are not in the
    shipped settings), and the session carries them to QuickFIX."""
    extra = "PreserveMessageFieldsOrder=Y\nLogonTimeout=5\nAllowedRemoteAddresses=10.1.2.3,10.9.0.0/16\n"

    dc = load(tmp_path, GOOD.replace("DropCopy=Y\n", "DropCopy=Y\n" + extra))[2]

    assert dc.keys["PreserveMessageFieldsOrder"] == "Y" and dc.keys["LogonTimeout"] == "5"


def test_the_simulator_may_go_without_passwords(tmp_path: Path) -> None:
    path = tmp_path / "acceptor.cfg"
    path.write_text(GOOD.replace("LogonPassword=copy\n", ""))

    assert load_sessions(path, ACCOUNTS, require_password=False)[2].password is None
