"""API keys and roles, loaded from TOML (`configs/api_keys.toml`) and validated at load.

    [keys.<key id>]
    role = "trader"                 # trader | risk | compliance | admin
    secret = "..."                  # or secret_env = "ENV_VAR_NAME" (the secret is read from the environment)
    accounts = ["ACC1"]             # trader only, and required for it: the accounts the key trades and reads
    rate_limit = 200                # optional: requests per rate window, overriding ApiSettings.rate_limit

What each role may do (`PERMISSIONS`):
- trader: order entry (submit, cancel, replace) and reads (orders, executions, positions, risk state, stream) of
  its own accounts only;
- risk: kill switch (per account and global), halt/reduce-only/resume, risk state, limits (read and change),
  positions, of any account; no order entry;
- compliance: read-only orders, executions, positions and the stream of any account;
- admin: everything.

`load_keys` raises ConfigError naming the file, the key and the field for: unknown fields, a missing or empty
secret, an unknown role, a trader without accounts, accounts on a role that sees every account, accounts the OMS
does not know (when `known_accounts` is given), a secret shared by two keys, an unset `secret_env`.
"""

from __future__ import annotations

import enum
import hashlib
import os
from importlib import resources
from os import PathLike
from pathlib import Path
from typing import Annotated

import msgspec

from oms.core.model.instruments import ConfigError, read_toml

__all__ = ["DEFAULT_KEYS", "PERMISSIONS", "ApiKey", "KeyRing", "Permission", "Role", "load_keys"]

# the packaged default (`oms/configs` is the checkout's `configs/`, or its copy in an installed wheel)
DEFAULT_KEYS = Path(str(resources.files("oms").joinpath("configs", "api_keys.toml")))


class Role(enum.Enum):
    TRADER = "trader"
    RISK = "risk"
    COMPLIANCE = "compliance"
    ADMIN = "admin"


class Permission(enum.Enum):
    TRADE = "trade"  # submit, cancel, replace
    READ_ORDERS = "read_orders"  # orders, executions, the event stream
    READ_POSITIONS = "read_positions"  # positions and P&L
    READ_RISK = "read_risk"  # risk state and limits
    KILL_SWITCH = "kill_switch"
    TRADING_STATE = "trading_state"  # halt, reduce-only, resume
    LIMITS = "limits"  # change an account's limits


P = Permission
PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.TRADER: frozenset({P.TRADE, P.READ_ORDERS, P.READ_POSITIONS, P.READ_RISK}),
    Role.RISK: frozenset({P.KILL_SWITCH, P.TRADING_STATE, P.LIMITS, P.READ_RISK, P.READ_POSITIONS}),
    Role.COMPLIANCE: frozenset({P.READ_ORDERS, P.READ_POSITIONS}),
    Role.ADMIN: frozenset(Permission),
}


class _KeySpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    role: Role
    secret: str | None = None
    secret_env: str | None = None
    accounts: list[str] | None = None
    rate_limit: Annotated[int, msgspec.Meta(ge=1)] | None = None


class _File(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    keys: dict[str, _KeySpec] = {}


class ApiKey(msgspec.Struct, frozen=True):
    """One key. `accounts` is None for roles that see every account."""

    key_id: str
    role: Role
    secret: bytes
    accounts: frozenset[str] | None
    rate_limit: int | None = None

    @property
    def session(self) -> str:
        """The OMS session its orders belong to (ClOrdIDs are unique per session)."""
        return f"REST:{self.key_id}"

    def may(self, permission: Permission, account: str | None = None) -> bool:
        """True when the key holds `permission` on `account` (on every account when None)."""
        if permission not in PERMISSIONS[self.role]:
            return False
        if self.accounts is None:
            return True
        return account is not None and account in self.accounts

    def sees(self, account: str) -> bool:
        return self.accounts is None or account in self.accounts


class KeyRing:
    """Keys by id and by secret."""

    def __init__(self, keys: list[ApiKey]) -> None:
        self._by_id = {k.key_id: k for k in keys}
        self._by_digest = {hashlib.sha256(k.secret).digest(): k for k in keys}

    def by_id(self, key_id: str) -> ApiKey | None:
        return self._by_id.get(key_id)

    def by_secret(self, secret: str) -> ApiKey | None:
        return self._by_digest.get(hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest())

    def __iter__(self):
        return iter(self._by_id.values())

    def __len__(self) -> int:
        return len(self._by_id)


def load_keys(path: str | PathLike[str] = DEFAULT_KEYS, known_accounts: set[str] | None = None) -> KeyRing:
    """Read and validate a keys file; see the module docstring for what it refuses."""
    return parse_keys(read_toml(path), known_accounts, source=str(path))


def parse_keys(raw: dict, known_accounts: set[str] | None = None, source: str = "<keys>") -> KeyRing:
    """Validate an already-parsed keys document."""
    try:
        spec = msgspec.convert(raw, _File)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{source}: {exc}") from exc
    keys: list[ApiKey] = []
    seen: dict[bytes, str] = {}
    for key_id, k in spec.keys.items():
        where = f"{source}: key {key_id!r}"
        if k.secret is not None and k.secret_env is not None:
            raise ConfigError(f"{where}: give `secret` or `secret_env`, not both")
        secret = k.secret
        if k.secret_env is not None:
            secret = os.environ.get(k.secret_env)
            if not secret:
                raise ConfigError(f"{where}: secret_env: environment variable {k.secret_env!r} is not set")
        if not secret:
            raise ConfigError(f"{where}: `secret` is missing or empty")
        if k.role is Role.TRADER and not k.accounts:
            raise ConfigError(f"{where}: `accounts`: a trader key needs at least one account")
        if k.role is not Role.TRADER and k.accounts is not None:
            raise ConfigError(f"{where}: `accounts`: role {k.role.value!r} sees every account; remove it")
        if known_accounts is not None and k.accounts:
            unknown = sorted(set(k.accounts) - known_accounts)
            if unknown:
                raise ConfigError(f"{where}: accounts: unknown account {unknown[0]!r}")
        digest = hashlib.sha256(secret.encode()).digest()
        if digest in seen:
            raise ConfigError(f"{where}: same secret as key {seen[digest]!r}")
        seen[digest] = key_id
        accounts = frozenset(k.accounts) if k.accounts is not None else None
        keys.append(ApiKey(key_id, k.role, secret.encode(), accounts, k.rate_limit))
    return KeyRing(keys)
