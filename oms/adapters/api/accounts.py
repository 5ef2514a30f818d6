"""`AccountView`: what the API reads about accounts (positions, P&L, risk state, limits), two implementations.

- `LocalAccountView` over `oms.core.reserved.LocalShard` (accounts in this process). Their states change under the
  engine's lock, so every read takes it.
- `SummaryAccountView` over a function that reads one account's summary where its state lives (the composition root
  passes `oms.infra.ray.actors.summary_reader`: one actor call per read), limits from the loaded risk configuration.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

import msgspec

from oms.adapters.api.schemas import AccountSummary, LimitsOut, PositionOut, RiskOut, SymbolLimitsOut
from oms.core.model.instruments import InstrumentRegistry, format_qty
from oms.core.model.numbers import from_units
from oms.core.reserved import LocalShard
from risk.limits import AccountLimits
from risk.money import format_money

__all__ = ["AccountView", "LocalAccountView", "SummaryAccountView", "limits_out"]

_NS_PER_MS = 1_000_000


class AccountView(Protocol):
    def accounts(self) -> list[str]:
        """Every account the OMS knows."""
        ...

    def summary(self, account: str) -> AccountSummary:
        """Cash, equity, P&L, exposure and positions of a known account."""
        ...

    def risk(self, account: str) -> RiskOut:
        """Trading state, kill switch and limits of a known account."""
        ...

    def limits(self, account: str) -> AccountLimits:
        """The limits a known account's orders are judged by now."""
        ...


def _pct(bp: int) -> str:
    return from_units(bp, 2)


def limits_out(lim: AccountLimits, instruments: InstrumentRegistry) -> LimitsOut:
    symbols = {}
    for sym, s in lim.symbols.items():
        inst = instruments.by_symbol(sym)
        if inst is not None:
            symbols[sym] = SymbolLimitsOut(
                format_qty(inst, s.max_order_qty), format_qty(inst, s.max_position), _pct(s.collar_bp)
            )
    return LimitsOut(
        max_order_notional=format_money(lim.max_order_notional),
        credit_limit=format_money(lim.credit_limit),
        max_gross_notional=format_money(lim.max_gross_notional),
        max_net_notional=format_money(lim.max_net_notional),
        start_cash=format_money(lim.start_cash),
        max_open_orders=lim.max_open_orders,
        orders_per_window=lim.orders_per_window,
        window_ms=lim.window_ns // _NS_PER_MS,
        restricted_symbols=list(lim.restricted_symbols),
        drawdown_warn_pct=_pct(lim.drawdown_warn_bp),
        drawdown_reduce_pct=_pct(lim.drawdown_reduce_bp),
        drawdown_halt_pct=_pct(lim.drawdown_halt_bp),
        risk_mode=lim.risk_mode.value,
        symbols=symbols,
    )


class LocalAccountView:
    """Reads `AccountState`s of a LocalShard under the engine's lock."""

    def __init__(
        self, host: LocalShard, accounts: list[str], instruments: InstrumentRegistry, lock: threading.RLock
    ) -> None:
        self._host = host
        self._accounts = sorted(accounts)
        self._instruments = instruments
        self._lock = lock

    def accounts(self) -> list[str]:
        return list(self._accounts)

    def summary(self, account: str) -> AccountSummary:
        with self._lock:
            s = self._host.state(account)
            positions = []
            unrealized = 0
            for sym, p in sorted(s.positions().items()):
                inst = self._instruments.by_symbol(sym)
                if inst is None:
                    continue
                u = s.unrealized(sym)
                unrealized += u
                positions.append(
                    PositionOut(
                        symbol=sym,
                        qty=format_qty(inst, p.qty),
                        cost=format_money(p.cost),
                        realized_pnl=format_money(p.realized),
                        market_value=format_money(s.market_value(sym)),
                        unrealized_pnl=format_money(u),
                    )
                )
            return AccountSummary(
                account=account,
                cash=format_money(s.cash),
                equity=format_money(s.equity()),
                realized_pnl=format_money(s.realized()),
                unrealized_pnl=format_money(unrealized),
                exposure=format_money(s.exposure),
                positions=positions,
            )

    def limits(self, account: str) -> AccountLimits:
        with self._lock:
            return self._host.state(account).limits

    def risk(self, account: str) -> RiskOut:
        with self._lock:
            s = self._host.state(account)
            return RiskOut(
                account=account,
                trading_state=s.trading_state.value,
                kill_switch=s.kill_switch,
                working_orders=len(s.working_orders()),
                buying_power=format_money(s.buying_power()),
                drawdown_level=s.drawdown_level().name.lower(),
                limits=limits_out(s.limits, self._instruments),
            )


class SummaryAccountView:
    """Reads each account's summary through `read` (a dict as `AccountShard.summary` returns it), limits included."""

    def __init__(self, accounts: list[str], read: Callable[[str], dict], instruments: InstrumentRegistry) -> None:
        self._accounts = list(accounts)
        self._read = read
        self._instruments = instruments

    def accounts(self) -> list[str]:
        return list(self._accounts)

    def _summary(self, account: str) -> dict:
        return self._read(account)

    def summary(self, account: str) -> AccountSummary:
        d = self._summary(account)
        positions, unrealized = [], 0
        for sym, p in sorted(d["positions"].items()):
            inst = self._instruments.by_symbol(sym)
            if inst is None:
                continue
            u = d["unrealized"][sym]
            unrealized += u
            positions.append(
                PositionOut(
                    symbol=sym,
                    qty=format_qty(inst, p["qty"]),
                    cost=format_money(p["cost"]),
                    realized_pnl=format_money(p["realized"]),
                    market_value=format_money(d["market_values"][sym]),
                    unrealized_pnl=format_money(u),
                )
            )
        return AccountSummary(
            account=account,
            cash=format_money(d["cash"]),
            equity=format_money(d["equity"]),
            realized_pnl=format_money(d["realized"]),
            unrealized_pnl=format_money(unrealized),
            exposure=format_money(d["exposure"]),
            positions=positions,
        )

    def limits(self, account: str) -> AccountLimits:
        return msgspec.convert(self._summary(account)["limits"], AccountLimits)

    def risk(self, account: str) -> RiskOut:
        d = self._summary(account)
        limits = msgspec.convert(d["limits"], AccountLimits)  # as the account holds them: an operator may change them
        return RiskOut(
            account=account,
            trading_state=str(d["trading_state"]).lower(),
            kill_switch=bool(d["kill_switch"]),
            working_orders=len(d["working_orders"]),
            buying_power=format_money(d["buying_power"]),
            drawdown_level=str(d["drawdown_level"]),
            limits=limits_out(limits, self._instruments),
        )
