"""FIX session settings: the `[fix]` table of the OMS config and the QuickFIX settings file it names.

The settings file is QuickFIX's own format (shared keys in `[DEFAULT]`, one `[SESSION]` per counterparty) plus three
keys of the OMS's (`Accounts`, `LogonPassword`, `DropCopy`, documented in `configs/fix/acceptor.cfg`). Loading
validates it whole: an unknown key, a bad value, an unknown account or a duplicate session raises ConfigError naming
the file, the section and the key, so a typo stops start-up instead of being ignored by QuickFIX.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from os import PathLike
from pathlib import Path
from typing import Annotated, Literal

import msgspec

from oms.core.model.instruments import ConfigError

__all__ = [
    "FixSettings",
    "FixVenueSettings",
    "SessionSpec",
    "dictionary_path",
    "load_sessions",
    "quickfix_settings",
]

VERSIONS = ("FIX.4.2", "FIX.4.4")

# QuickFIX's own session keys this OMS accepts (QuickFIX itself ignores unknown ones silently).
_QUICKFIX_KEYS = frozenset(
    {
        "BeginString", "SenderCompID", "TargetCompID", "SenderSubID", "TargetSubID", "SessionQualifier",
        "ConnectionType", "StartTime", "EndTime", "StartDay", "EndDay", "TimeZone", "UseLocalTime", "HeartBtInt",
        "SocketAcceptPort", "SocketReuseAddress", "SocketNodelay", "SocketSendBufferSize", "SocketReceiveBufferSize",
        "UseDataDictionary", "DataDictionary", "ValidateUserDefinedFields", "ValidateFieldsOutOfOrder",
        "ValidateFieldsHaveValues", "ValidateLengthAndChecksum", "AllowUnknownMsgFields", "CheckCompID",
        "CheckLatency", "MaxLatency", "ResetOnLogon", "ResetOnLogout", "ResetOnDisconnect", "RefreshOnLogon",
        "PersistMessages", "FileStorePath", "FileLogPath", "MillisecondsInTimeStamp", "TimestampPrecision",
        "LogonTimeout", "LogoutTimeout", "SendRedundantResendRequests",
    }
)  # fmt: skip
_OMS_KEYS = frozenset({"Accounts", "LogonPassword", "DropCopy"})
_FILLED_IN = frozenset({"SocketAcceptPort", "FileStorePath", "FileLogPath", "DataDictionary"})
_YES_NO_KEYS = frozenset(
    {
        "DropCopy", "UseDataDictionary", "ValidateUserDefinedFields", "ValidateFieldsOutOfOrder",
        "ValidateFieldsHaveValues", "ValidateLengthAndChecksum", "AllowUnknownMsgFields", "CheckCompID",
        "CheckLatency", "ResetOnLogon", "ResetOnLogout", "ResetOnDisconnect", "RefreshOnLogon", "PersistMessages",
        "SocketNodelay", "SocketReuseAddress", "UseLocalTime", "MillisecondsInTimeStamp",
        "SendRedundantResendRequests",
    }
)  # fmt: skip


class FixSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The `[fix]` table: where the acceptor listens and where its sessions are described and stored."""

    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 9878
    settings: str = "fix/acceptor.cfg"  # relative to the OMS config file
    data_dir: str = "../var/fix"  # FileStore (sequence numbers, sent messages) and message logs


class FixVenueSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One `[venues.fix.NAME]` table: the initiator session to an external venue reached over FIX."""

    port: Annotated[int, msgspec.Meta(ge=1, le=65535)]
    host: str = "127.0.0.1"
    begin_string: Literal["FIX.4.2", "FIX.4.4"] = "FIX.4.4"
    sender_comp_id: str = "OMS"
    target_comp_id: str = "EXCH"
    account: str = ""  # Account (1) on every order: the account the venue knows the OMS by; none when empty
    password: str | None = None  # FIX 4.4 Logon Password (554), when the venue asks for one
    heartbeat: Annotated[int, msgspec.Meta(ge=1)] = 30
    data_dir: str = "../var/venues"  # FileStore and log, one folder per venue; relative to the OMS config file

    def resolved(self, base: str | PathLike[str], name: str) -> FixVenueSettings:
        """These settings with `data_dir` the venue `name`'s own folder, a relative one taken relative to `base`
        (the OMS config's folder)."""
        return msgspec.structs.replace(self, data_dir=str(Path(base) / self.data_dir / name))

    def describe(self) -> str:
        """Where the venue is reached, in words."""
        return f"FIX initiator to {self.host}:{self.port}"


class SessionSpec(msgspec.Struct, frozen=True):
    """One counterparty session, with every QuickFIX key that applies to it (defaults merged in)."""

    begin_string: str
    sender_comp_id: str
    target_comp_id: str
    accounts: tuple[str, ...]  # the first is the default for orders without Account
    password: str | None  # FIX 4.4 Logon Password (554) required, when set
    drop_copy: bool
    keys: dict[str, str]

    @property
    def name(self) -> str:
        """QuickFIX's text form of the session id, e.g. `FIX.4.2:OMS->CLIENT42`."""
        return f"{self.begin_string}:{self.sender_comp_id}->{self.target_comp_id}"


def _sections(path: Path) -> list[tuple[str, int, dict[str, str]]]:
    """(section name, line, keys) in file order; raises ConfigError on a line that is neither."""
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from exc
    sections: list[tuple[str, int, dict[str, str]]] = []
    for n, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            name = line[1:-1].strip()
            if name not in ("DEFAULT", "SESSION"):
                raise ConfigError(f"{path}:{n}: unknown section [{name}] (known: [DEFAULT], [SESSION])")
            if name == "DEFAULT" and any(s[0] == "DEFAULT" for s in sections):
                raise ConfigError(f"{path}:{n}: a second [DEFAULT] section")
            sections.append((name, n, {}))
            continue
        key, sep, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key:
            raise ConfigError(f"{path}:{n}: expected key=value, got {raw!r}")
        if not sections:
            raise ConfigError(f"{path}:{n}: {key} outside any section")
        if key not in _QUICKFIX_KEYS and key not in _OMS_KEYS:
            raise ConfigError(f"{path}:{n}: unknown key {key!r}")
        if key in _FILLED_IN:
            raise ConfigError(f"{path}:{n}: {key} is set by the OMS from its [fix] table; remove it here")
        if key in sections[-1][2]:
            raise ConfigError(f"{path}:{n}: {key} given twice in one section")
        sections[-1][2][key] = value
    return sections


def load_sessions(path: str | PathLike[str], known_accounts: Iterable[str] | None) -> list[SessionSpec]:
    """Every session of the settings file at `path`, validated; raises ConfigError naming what is wrong. Accounts
    must be among `known_accounts` (any name, when None)."""
    path = Path(path)
    known = None if known_accounts is None else set(known_accounts)
    sections = _sections(path)
    defaults = next((keys for name, _, keys in sections if name == "DEFAULT"), {})
    specs: list[SessionSpec] = []
    for name, line, own in sections:
        if name != "SESSION":
            continue
        keys = {**defaults, **own}
        where = f"{path}:{line}: [SESSION]"
        for key in ("BeginString", "SenderCompID", "TargetCompID"):
            if not keys.get(key):
                raise ConfigError(f"{where}: {key} missing")
        if keys["BeginString"] not in VERSIONS:
            raise ConfigError(f"{where}: BeginString {keys['BeginString']!r} not supported (supported: {VERSIONS})")
        if keys.get("ConnectionType", "acceptor") != "acceptor":
            raise ConfigError(f"{where}: ConnectionType must be acceptor")
        for key in _YES_NO_KEYS & keys.keys():
            if keys[key] not in ("Y", "N"):
                raise ConfigError(f"{where}: {key} must be Y or N, not {keys[key]!r}")
        drop_copy = keys.pop("DropCopy", "N") == "Y"
        accounts = tuple(a.strip() for a in keys.pop("Accounts", "").split(",") if a.strip())
        password = keys.pop("LogonPassword", None)
        unknown = [] if known is None else [a for a in accounts if a not in known]
        if unknown:
            raise ConfigError(f"{where}: Accounts: unknown account {unknown[0]!r}")
        if drop_copy and accounts:
            raise ConfigError(f"{where}: a DropCopy session trades no account; remove Accounts")
        if not drop_copy and not accounts:
            raise ConfigError(f"{where}: Accounts missing (the accounts this session may trade)")
        if password is not None and keys["BeginString"] != "FIX.4.4":
            raise ConfigError(f"{where}: LogonPassword needs FIX.4.4 (FIX 4.2 Logon has no Password field)")
        spec = SessionSpec(
            keys["BeginString"], keys["SenderCompID"], keys["TargetCompID"], accounts, password, drop_copy, keys
        )
        if any(s.name == spec.name for s in specs):
            raise ConfigError(f"{where}: session {spec.name} given twice")
        specs.append(spec)
    if not specs:
        raise ConfigError(f"{path}: no [SESSION] section")
    return specs


def dictionary_path(begin_string: str) -> Path:
    """The data dictionary QuickFIX installed for `begin_string` (`<prefix>/share/quickfix/FIX4x.xml`)."""
    name = "FIX" + begin_string.removeprefix("FIX.").replace(".", "") + ".xml"
    for prefix in (sys.prefix, sys.base_prefix, "/usr/local", "/usr"):
        candidate = Path(prefix) / "share" / "quickfix" / name
        if candidate.is_file():
            return candidate
    raise ConfigError(f"FIX data dictionary {name} not found under {sys.prefix}/share/quickfix (pip install quickfix)")


def quickfix_settings(specs: Iterable[SessionSpec], port: int, data_dir: str | PathLike[str]) -> object:
    """A `quickfix.SessionSettings` for `specs`, listening on `port`, storing under `data_dir`."""
    import quickfix as fix

    data = Path(data_dir)
    (data / "store").mkdir(parents=True, exist_ok=True)
    (data / "log").mkdir(parents=True, exist_ok=True)
    settings = fix.SessionSettings()
    shared = fix.Dictionary()  # QuickFIX's global log and store read these from [DEFAULT]
    shared.setString("FileStorePath", str(data / "store"))
    shared.setString("FileLogPath", str(data / "log"))
    settings.set(shared)
    for spec in specs:
        d = fix.Dictionary()
        for key, value in spec.keys.items():
            d.setString(key, value)
        d.setString("SocketAcceptPort", str(port))
        d.setString("FileStorePath", str(data / "store"))
        d.setString("FileLogPath", str(data / "log"))
        d.setString("DataDictionary", str(dictionary_path(spec.begin_string)))
        session_id = fix.SessionID(spec.begin_string, spec.sender_comp_id, spec.target_comp_id)
        settings.set(session_id, d)
    return settings
