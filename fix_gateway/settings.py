"""FIX session settings: the `[fix]` table of the OMS config and the QuickFIX settings file it names.

The settings file is QuickFIX's own format (shared keys in `[DEFAULT]`, one `[SESSION]` per counterparty) plus three
keys of the OMS's (`Accounts`, `LogonPassword`, `DropCopy`, documented in `configs/fix/acceptor.cfg`). Loading
validates it whole: an unknown key, a bad value, an unknown account or a duplicate session raises ConfigError naming
the file, the section and the key, so a typo stops start-up instead of being ignored by QuickFIX.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Iterable
from os import PathLike
from pathlib import Path
from typing import Annotated, Literal

import msgspec

from fix_gateway.door import DoorSettings, DoorTls, networks, session_key
from oms.core.model.instruments import ConfigError

__all__ = [
    "FixSettings",
    "FixVenueSettings",
    "SessionSpec",
    "VenueTls",
    "dictionary_path",
    "load_sessions",
    "quickfix_settings",
]

VERSIONS = ("FIX.4.2", "FIX.4.4")

_OMS_KEYS = frozenset({"Accounts", "LogonPassword", "DropCopy"})
_FILLED_IN = frozenset({"SocketAcceptPort", "FileStorePath", "FileLogPath", "DataDictionary"})
# QuickFIX's TLS keys: the front door (fix_gateway.door) terminates TLS, so they belong in [DEFAULT] and mean there
# what they mean to QuickFIX's SSL acceptor
TLS_KEYS = frozenset(
    {"ServerCertificateFile", "ServerCertificateKeyFile", "CertificationAuthoritiesFile", "CertificateVerifyLevel",
     "SSLCipherSuite"}
)  # fmt: skip
_NO_EFFECT = {
    "SSLProtocol": "the front door speaks TLS 1.2 and 1.3 only",
    "TLSCipherSuites": "the front door uses OpenSSL's TLS 1.3 suites",
    "CertificationAuthoritiesDirectory": "name one CertificationAuthoritiesFile",
    "CertificateRevocationListDirectory": "not supported by the front door",
    "CertificateRevocationListFile": "not supported by the front door",
    "ClientCertificateFile": "a key of initiators",
    "ClientCertificateKeyFile": "a key of initiators",
    "ReconnectInterval": "a key of initiators",
    "HttpAcceptPort": "the OMS serves no QuickFIX status page",
    "FileLogBackupPath": "the OMS writes QuickFIX's logs under its [fix] data_dir",
}
_NO_EFFECT_PREFIXES = {
    ("MySQL", "PostgreSQL", "Odbc"): "the OMS uses QuickFIX's file store and file log",
    ("SocketConnect", "HostSelectionPolicy"): "a key of initiators",
    ("ScreenLog",): "the OMS uses QuickFIX's file log",
}
_YES_NO_KEYS = frozenset(
    {
        "DropCopy", "UseDataDictionary", "ValidateUserDefinedFields", "ValidateFieldsOutOfOrder",
        "ValidateFieldsHaveValues", "ValidateLengthAndChecksum", "AllowUnknownMsgFields", "CheckCompID",
        "CheckLatency", "ResetOnLogon", "ResetOnLogout", "ResetOnDisconnect", "RefreshOnLogon", "PersistMessages",
        "SocketNodelay", "SocketReuseAddress", "UseLocalTime", "MillisecondsInTimeStamp",
        "SendRedundantResendRequests", "PreserveMessageFieldsOrder", "NonStopSession", "SendNextExpectedMsgSeqNum",
        "SendResetSeqNumFlag",
    }
)  # fmt: skip


@functools.cache
def quickfix_keys() -> frozenset[str]:
    """Every session key the installed QuickFIX defines (its module's string constants, `SOCKET_ACCEPT_PORT` =
    "SocketAcceptPort" and so on)."""
    import quickfix as fix

    return frozenset(v for k, v in vars(fix).items() if k.isupper() and isinstance(v, str) and v[:1].isupper())


def _no_effect(key: str) -> str | None:
    """Why `key`, a QuickFIX key, cannot take effect on the OMS's acceptor; None when it can."""
    if key in _NO_EFFECT:
        return _NO_EFFECT[key]
    return next((why for prefixes, why in _NO_EFFECT_PREFIXES.items() if key.startswith(prefixes)), None)


class FixSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The `[fix]` table: where the acceptor listens, who may connect, and where its sessions are described and
    stored. `host`, `port` and the limits are the front door's (`fix_gateway.door`)."""

    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 9878
    host: str = "127.0.0.1"  # the address to listen on: "0.0.0.0" for every IPv4 address
    settings: str = "fix/acceptor.cfg"  # relative to the OMS config file
    data_dir: str = "../var/fix"  # FileStore (sequence numbers, sent messages) and message logs
    allow: list[str] = []  # addresses or networks (CIDR) that may connect; empty: any
    max_connections: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 64
    max_connections_per_source: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 8
    logon_timeout_s: Annotated[float, msgspec.Meta(gt=0, le=300)] = 10.0  # a connection's first message: Logon
    max_message_bytes: Annotated[int, msgspec.Meta(ge=1024, le=16_777_216)] = 65536  # largest BodyLength let in

    def door(self, specs: Iterable[SessionSpec], upstream_port: int) -> DoorSettings:
        """The front door's settings: these, each session's AllowedRemoteAddresses, and TLS from the settings
        file's [DEFAULT] keys (paths relative to that file). Raises ConfigError for a bad address or TLS key."""
        specs = list(specs)
        try:
            networks(self.allow, "[fix] allow")
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        sessions = {
            session_key(s.begin_string, s.target_comp_id, s.sender_comp_id): tuple(
                a.strip() for a in s.keys["AllowedRemoteAddresses"].split(",") if a.strip()
            )
            for s in specs
            if "AllowedRemoteAddresses" in s.keys
        }
        return DoorSettings(
            self.host, self.port, upstream_port, tuple(self.allow), self.max_connections,
            self.max_connections_per_source, self.logon_timeout_s, self.max_message_bytes,
            _tls(specs[0].keys if specs else {}, Path(self.settings).parent), sessions,
        )  # fmt: skip


class VenueTls(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`[venues.fix.NAME.tls]`: reach the venue over TLS (through a tunnel the OMS starts, `fix_gateway.door`).
    Paths relative to the OMS config file."""

    ca: str | None = None  # CA file (PEM) the venue's certificate must chain to; unset: the system's CAs
    cert: str | None = None  # a client certificate chain (PEM), when the venue asks for one
    key: str | None = None  # its private key
    server_name: str | None = None  # the name (or address) the venue's certificate must carry; unset: `host`


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
    tls: VenueTls | None = None
    # subscribe to the venue's top of book and trades of the symbols routed to it, for the market tape (and TCA)
    market_data: bool = True

    def resolved(self, base: str | PathLike[str], name: str) -> FixVenueSettings:
        """These settings with `data_dir` the venue `name`'s own folder and the TLS files, relative ones taken
        relative to `base` (the OMS config's folder)."""
        tls = self.tls
        if tls is not None:
            files = {k: str(Path(base) / v) for k in ("ca", "cert", "key") if (v := getattr(tls, k)) is not None}
            tls = msgspec.structs.replace(tls, **files)
        return msgspec.structs.replace(self, data_dir=str(Path(base) / self.data_dir / name), tls=tls)

    def describe(self) -> str:
        """Where the venue is reached, in words."""
        return f"FIX initiator to {self.host}:{self.port}{' over TLS' if self.tls is not None else ''}"


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
        if key == "SocketAcceptHost":  # QuickFIX/J's; this QuickFIX binds every address, the front door does not
            raise ConfigError(f"{path}:{n}: SocketAcceptHost: set `host` in the OMS config's [fix] table instead")
        if key not in _OMS_KEYS and key not in quickfix_keys():
            raise ConfigError(f"{path}:{n}: unknown key {key!r}")
        why = _no_effect(key)
        if why is not None:
            raise ConfigError(f"{path}:{n}: {key} has no effect here ({why}); remove it")
        if key in TLS_KEYS and sections[-1][0] != "DEFAULT":
            raise ConfigError(f"{path}:{n}: {key} belongs in [DEFAULT] (one TLS listener serves every session)")
        if key in _FILLED_IN:
            raise ConfigError(f"{path}:{n}: {key} is set by the OMS from its [fix] table; remove it here")
        if key in sections[-1][2]:
            raise ConfigError(f"{path}:{n}: {key} given twice in one section")
        sections[-1][2][key] = value
    return sections


def load_sessions(
    path: str | PathLike[str], known_accounts: Iterable[str] | None, require_password: bool = True
) -> list[SessionSpec]:
    """Every session of the settings file at `path`, validated; raises ConfigError naming what is wrong. Accounts
    must be among `known_accounts` (any name, when None); every session needs a LogonPassword when
    `require_password` (the OMS's acceptor; the exchange simulator's sessions may go without)."""
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
        if require_password and not password:
            raise ConfigError(f"{where}: LogonPassword missing (every session authenticates, drop copies too)")
        if "AllowedRemoteAddresses" in keys:
            try:
                networks(keys["AllowedRemoteAddresses"].split(","), "AllowedRemoteAddresses")
            except ValueError as exc:
                raise ConfigError(f"{where}: {exc}") from None
        if "CertificateVerifyLevel" in keys and not keys["CertificateVerifyLevel"].isdigit():
            raise ConfigError(f"{where}: CertificateVerifyLevel must be a number (0: none, 1: client certificate)")
        spec = SessionSpec(
            keys["BeginString"], keys["SenderCompID"], keys["TargetCompID"], accounts, password, drop_copy, keys
        )
        if any(s.name == spec.name for s in specs):
            raise ConfigError(f"{where}: session {spec.name} given twice")
        specs.append(spec)
    if not specs:
        raise ConfigError(f"{path}: no [SESSION] section")
    return specs


def _tls(keys: dict[str, str], base: Path) -> DoorTls | None:
    """The door's TLS from QuickFIX's TLS keys; None without ServerCertificateFile. Raises ConfigError for a file
    that cannot be read or a half-given pair."""
    if "ServerCertificateFile" not in keys:
        extra = sorted(TLS_KEYS & keys.keys())
        if extra:
            raise ConfigError(f"{extra[0]} without ServerCertificateFile")
        return None
    if "ServerCertificateKeyFile" not in keys:
        raise ConfigError("ServerCertificateFile without ServerCertificateKeyFile")
    paths = {}
    for key in ("ServerCertificateFile", "ServerCertificateKeyFile", "CertificationAuthoritiesFile"):
        if key in keys:
            path = base / keys[key]
            if not path.is_file():
                raise ConfigError(f"{key}: {path} not found")
            paths[key] = str(path)
    verify = int(keys.get("CertificateVerifyLevel", "0"))
    if verify and "CertificationAuthoritiesFile" not in paths:
        raise ConfigError("CertificateVerifyLevel needs CertificationAuthoritiesFile (the CA of client certificates)")
    return DoorTls(
        paths["ServerCertificateFile"], paths["ServerCertificateKeyFile"],
        paths.get("CertificationAuthoritiesFile") if verify else None, keys.get("SSLCipherSuite"),
    )  # fmt: skip


def dictionary_path(begin_string: str) -> Path:
    """The data dictionary QuickFIX installed for `begin_string` (`<prefix>/share/quickfix/FIX4x.xml`)."""
    name = "FIX" + begin_string.removeprefix("FIX.").replace(".", "") + ".xml"
    for prefix in (sys.prefix, sys.base_prefix, "/usr/local", "/usr"):
        candidate = Path(prefix) / "share" / "quickfix" / name
        if candidate.is_file():
            return candidate
    raise ConfigError(f"FIX data dictionary {name} not found under {sys.prefix}/share/quickfix (pip install quickfix)")


def quickfix_settings(
    specs: Iterable[SessionSpec], port: int, data_dir: str | PathLike[str], behind_door: bool = False
) -> object:
    """A `quickfix.SessionSettings` for `specs`, listening on `port`, storing under `data_dir`. `behind_door`: the
    front door enforces AllowedRemoteAddresses and TLS, and QuickFIX lets a session log on only from loopback (the
    door's address)."""
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
            if key not in TLS_KEYS:  # this QuickFIX build has no TLS: the door terminates it
                d.setString(key, value)
        if behind_door:
            d.setString("AllowedRemoteAddresses", "127.0.0.1")
        d.setString("SocketAcceptPort", str(port))
        d.setString("FileStorePath", str(data / "store"))
        d.setString("FileLogPath", str(data / "log"))
        d.setString("DataDictionary", str(dictionary_path(spec.begin_string)))
        session_id = fix.SessionID(spec.begin_string, spec.sender_comp_id, spec.target_comp_id)
        settings.set(session_id, d)
    return settings
