"""Per-account risk limits, loaded and validated from TOML (`configs/accounts.toml`) at start-up.

File layout (every key optional; unknown keys are errors):

    [defaults]                 # applies to every account; built-in values (BUILTIN) fill what it leaves out
    max_order_notional = "1000000"          # currency, decimal string
    max_order_qty = "10000"                 # instrument quantity notation, default for every symbol
    ...
    [defaults.symbols.BTC-USD]             # per-symbol overrides: max_order_qty, max_position, collar_pct
    max_order_qty = "2"
    [accounts.ACC1]                         # one table per account; overrides [defaults] key by key
    max_order_qty = "100"                   # beats [defaults] and [defaults.symbols.*], not its own symbols.*
    credit_limit = "5000000"
    [session]                               # per-session message throttle (gateway / engine)
    messages_per_window = 200
    window_ms = 1000

Money is decimal currency text (see `risk.money`), quantities are text in the instrument's notation, percentages
are decimal text with at most two decimal places (stored as basis points). `load_risk_config` and
`parse_risk_config` raise `ConfigError` naming the file, the account and the field for: unknown keys, wrong types,
malformed or negative numbers, numbers above MAX_UNITS units (2^62: an account's state is journaled as 64-bit
integers, so about 4.6 billion in money), too many decimals, unknown symbols, drawdown thresholds not ordered
0 < warn <= reduce <= halt <= 100, and instruments whose precisions exceed MONEY_PRECISION. Accounts not listed
have no limits (`RiskConfig.limits_for` gives None: reject with UNKNOWN_ACCOUNT).
"""

from __future__ import annotations

from collections.abc import Mapping
from os import PathLike
from typing import Annotated, Any

import msgspec

from oms.core.model.enums import RiskMode
from oms.core.model.instruments import ConfigError, InstrumentRegistry, read_toml
from oms.core.model.numbers import InvalidValue, from_units, to_units
from risk.money import MONEY_PRECISION, money_factor

__all__ = [
    "BUILTIN",
    "MAX_UNITS",
    "AccountLimits",
    "LimitsSpec",
    "RiskConfig",
    "SessionLimits",
    "SymbolLimits",
    "SymbolSpec",
    "load_risk_config",
    "parse_risk_config",
    "resolve_limits",
]

_Count = Annotated[int, msgspec.Meta(ge=1)]
_PCT_PRECISION = 2  # "2.5" % -> 250 bp
MAX_UNITS = 2**62  # the largest amount or quantity a limit may give, in units: half of what a journaled integer holds
_NS_PER_MS = 1_000_000
_SYMBOL_FIELDS = ("max_order_qty", "max_position", "collar_pct")


# -- WHAT THE FILE SAYS --


class SymbolSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    max_order_qty: str | None = None
    max_position: str | None = None
    collar_pct: str | None = None


class LimitsSpec(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True, kw_only=True):
    """One `[defaults]` or `[accounts.NAME]` table, as written. None means "inherit"."""

    max_order_qty: str | None = None
    max_position: str | None = None
    collar_pct: str | None = None
    max_order_notional: str | None = None
    credit_limit: str | None = None
    max_gross_notional: str | None = None
    max_net_notional: str | None = None
    start_cash: str | None = None
    max_open_orders: _Count | None = None
    orders_per_window: _Count | None = None
    window_ms: _Count | None = None
    restricted_symbols: list[str] | None = None
    drawdown_warn_pct: str | None = None
    drawdown_reduce_pct: str | None = None
    drawdown_halt_pct: str | None = None
    risk_mode: RiskMode | None = None
    symbols: dict[str, SymbolSpec] = {}


class SessionLimits(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Per-session message throttle (see `risk.throttle.SessionThrottle`)."""

    messages_per_window: _Count = 500
    window_ms: _Count = 1000

    @property
    def window_ns(self) -> int:
        return self.window_ms * _NS_PER_MS


class _File(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    defaults: LimitsSpec = LimitsSpec()
    accounts: dict[str, LimitsSpec] = {}
    session: SessionLimits = SessionLimits()


#: Values used where neither [defaults] nor the account says anything.
BUILTIN = LimitsSpec(
    max_order_qty="100000",
    max_position="1000000",
    collar_pct="10",
    max_order_notional="1000000",
    credit_limit="1000000",
    max_gross_notional="10000000",
    max_net_notional="5000000",
    start_cash="1000000",
    max_open_orders=500,
    orders_per_window=100,
    window_ms=1000,
    restricted_symbols=[],
    drawdown_warn_pct="5",
    drawdown_reduce_pct="10",
    drawdown_halt_pct="20",
    risk_mode=RiskMode.STRICT,
)


# -- WHAT THE CORE USES --


class SymbolLimits(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    max_order_qty: int  # quantity units
    max_position: int  # quantity units, on |position|
    collar_bp: int  # band around the reference price, basis points


class AccountLimits(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Resolved limits of one account: integers only (money units, quantity units, basis points, nanoseconds).

    `symbols` holds an entry for every instrument of the registry it was resolved against; a symbol missing from it
    is unknown to the account. `restricted_symbols` is sorted, so equal limits encode to equal bytes.
    """

    max_order_notional: int
    credit_limit: int
    max_gross_notional: int
    max_net_notional: int
    start_cash: int
    max_open_orders: int
    orders_per_window: int
    window_ns: int
    restricted_symbols: tuple[str, ...]
    drawdown_warn_bp: int
    drawdown_reduce_bp: int
    drawdown_halt_bp: int
    risk_mode: RiskMode
    symbols: dict[str, SymbolLimits]


class RiskConfig(msgspec.Struct, frozen=True):
    defaults: AccountLimits
    accounts: dict[str, AccountLimits]
    session: SessionLimits

    def limits_for(self, account: str) -> AccountLimits | None:
        """The account's limits, or None for an account the file does not list."""
        return self.accounts.get(account)


# -- LOADING --


def load_risk_config(path: str | PathLike[str], instruments: InstrumentRegistry) -> RiskConfig:
    """Read and validate `path` against `instruments`; ConfigError (naming file, account, field) on any problem."""
    return parse_risk_config(read_toml(path), instruments, source=str(path))


def parse_risk_config(raw: Mapping[str, Any], instruments: InstrumentRegistry, source: str = "<config>") -> RiskConfig:
    """Validate an already-parsed TOML document; see the module docstring for what is refused."""
    for inst in instruments:
        try:
            money_factor(inst)
        except ValueError as exc:
            raise ConfigError(f"{source}: {exc}") from None
    try:
        spec = msgspec.convert(raw, _File)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{source}: {exc}") from exc
    defaults = resolve_limits(spec.defaults, instruments, where=f"{source}: [defaults]")
    accounts = {
        name: resolve_limits(acc, instruments, base=spec.defaults, where=f"{source}: account {name}")
        for name, acc in spec.accounts.items()
    }
    return RiskConfig(defaults=defaults, accounts=accounts, session=spec.session)


def _merge(*specs: LimitsSpec) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for spec in specs:
        merged.update((k, v) for k, v in msgspec.structs.asdict(spec).items() if v is not None and k != "symbols")
    return merged


def resolve_limits(
    spec: LimitsSpec, instruments: InstrumentRegistry, base: LimitsSpec | None = None, where: str = "limits"
) -> AccountLimits:
    """Layer BUILTIN, then `base`, then `spec` key by key (symbol tables field by field) into AccountLimits.

    Raises ConfigError prefixed by `where` and naming the field for every problem listed in the module docstring.
    """
    layers: tuple[LimitsSpec, ...] = (BUILTIN, spec) if base is None else (BUILTIN, base, spec)
    v = _merge(*layers)

    def money(field: str) -> int:
        return _units(v[field], MONEY_PRECISION, field, where)

    def pct(field: str) -> int:
        bp = _units(v[field], _PCT_PRECISION, field, where)
        if bp <= 0 or bp > 100 * 10**_PCT_PRECISION:
            raise ConfigError(f"{where}: {field} {v[field]!r}: must be > 0 and <= 100")
        return bp

    for layer in layers:
        unknown = sorted(s for s in layer.symbols if instruments.by_symbol(s) is None)
        if unknown:
            raise ConfigError(f"{where}: symbols.{unknown[0]}: unknown symbol")
    restricted = tuple(sorted(set(v["restricted_symbols"])))
    for s in restricted:
        if instruments.by_symbol(s) is None:
            raise ConfigError(f"{where}: restricted_symbols: unknown symbol {s!r}")

    symbols: dict[str, SymbolLimits] = {}
    for inst in instruments:
        fields: dict[str, str] = {}
        for layer in layers:  # each layer's own symbol table beats its top-level keys, later layers beat earlier
            for table in (layer, layer.symbols.get(inst.symbol)):
                if table is not None:
                    fields.update((k, getattr(table, k)) for k in _SYMBOL_FIELDS if getattr(table, k) is not None)
        at = f"{where}: symbols.{inst.symbol}"
        max_qty = _units(fields["max_order_qty"], inst.qty_precision, "max_order_qty", at)
        max_pos = _units(fields["max_position"], inst.qty_precision, "max_position", at)
        if max_qty <= 0:
            raise ConfigError(f"{at}: max_order_qty {fields['max_order_qty']!r}: must be > 0")
        collar = _units(fields["collar_pct"], _PCT_PRECISION, "collar_pct", at)
        if collar <= 0:
            raise ConfigError(f"{at}: collar_pct {fields['collar_pct']!r}: must be > 0")
        symbols[inst.symbol] = SymbolLimits(max_order_qty=max_qty, max_position=max_pos, collar_bp=collar)

    warn, reduce, halt = pct("drawdown_warn_pct"), pct("drawdown_reduce_pct"), pct("drawdown_halt_pct")
    if not warn <= reduce <= halt:
        raise ConfigError(
            f"{where}: drawdown thresholds must satisfy warn <= reduce <= halt "
            f"(got {v['drawdown_warn_pct']}, {v['drawdown_reduce_pct']}, {v['drawdown_halt_pct']})"
        )
    return AccountLimits(
        max_order_notional=money("max_order_notional"),
        credit_limit=money("credit_limit"),
        max_gross_notional=money("max_gross_notional"),
        max_net_notional=money("max_net_notional"),
        start_cash=money("start_cash"),
        max_open_orders=v["max_open_orders"],
        orders_per_window=v["orders_per_window"],
        window_ns=v["window_ms"] * _NS_PER_MS,
        restricted_symbols=restricted,
        drawdown_warn_bp=warn,
        drawdown_reduce_bp=reduce,
        drawdown_halt_bp=halt,
        risk_mode=v["risk_mode"],
        symbols=symbols,
    )


def _units(text: str, precision: int, field: str, where: str) -> int:
    """Non-negative decimal text as units, at most MAX_UNITS; ConfigError naming `where` and `field` otherwise."""
    try:
        units = to_units(text, precision, field=field)
    except InvalidValue as exc:
        raise ConfigError(f"{where}: {exc}") from None
    if units < 0:
        raise ConfigError(f"{where}: {field} {text!r}: must be >= 0")
    if units > MAX_UNITS:
        raise ConfigError(f"{where}: {field} {text!r}: must be <= {from_units(MAX_UNITS, precision)} (an account's "
                          f"state is journaled as 64-bit integers, and sums of such amounts must fit too)")  # fmt: skip
    return units
