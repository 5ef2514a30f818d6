"""`oms exchange-sim`: a venue to route to over FIX, built from the OMS's own parts.

It is a FIX acceptor (the same gateway and codecs the OMS faces its clients with) in front of the native matching
core, one book per instrument of its instruments file. It keeps no accounts and checks no risk: members are the
sessions of its settings file, each with the accounts it may trade (`Accounts`), and every valid order goes to the
book. What a member sees is what a client of an exchange sees: acks, fills with LastLiquidityInd, cancels (also the
exchange's own, for an IOC remainder), replaces, rejects with reasons, OrderCancelRejects. Members may also
subscribe to its market data (MarketDataRequest: top of book and trades of every book, `fix_gateway.md_publisher`).

Order and execution ids are unique across restarts: each start takes the next number from the file `generation`
in its data folder.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from os import PathLike
from pathlib import Path
from typing import Literal

import msgspec

from fix_gateway.door import loopback_only
from fix_gateway.market_data import Top
from fix_gateway.md_publisher import MarketDataGateway
from fix_gateway.settings import FixSettings, SessionSpec, load_sessions
from oms.apps.paths import packaged_configs
from oms.apps.serve import check_port_free, id_bases
from oms.core.engine import OrderManager
from oms.core.model.enums import OrdType, RejectReason, StpMode, TradingState
from oms.core.model.instruments import ConfigError, InstrumentRegistry, read_toml
from oms.core.model.messages import Message, OrderAccepted, OrderRejected, ReplaceOrder, SubmitOrder
from oms.core.venues.internal import InternalVenue
from oms.runtime.sequencer import Sequencer
from risk.limits import AccountLimits

__all__ = ["DEFAULT_EXCHANGE_CONFIG", "ExchangeConfig", "ExchangeSim", "OpenGate", "load_exchange_config"]

DEFAULT_EXCHANGE_CONFIG = packaged_configs() / "exchange.toml"  # the checkout's configs/ when run from one

_STP = {"none": StpMode.NONE, "cancel_resting": StpMode.CANCEL_RESTING, "cancel_incoming": StpMode.CANCEL_INCOMING,
        "cancel_both": StpMode.CANCEL_BOTH}  # fmt: skip


class ExchangeConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The exchange simulator's configuration file (see `configs/exchange.toml`)."""

    name: str = "EXCH"
    instruments: str = "instruments.toml"
    self_trade: Literal["none", "cancel_resting", "cancel_incoming", "cancel_both"] = "cancel_resting"
    fix: FixSettings = FixSettings(port=9879, settings="fix/exchange.cfg", data_dir="../var/exchange")


class LoadedExchange(msgspec.Struct, frozen=True):
    config: ExchangeConfig
    instruments: InstrumentRegistry
    sessions: list[SessionSpec]


def load_exchange_config(path: str | PathLike[str] = DEFAULT_EXCHANGE_CONFIG) -> LoadedExchange:
    """Read and validate the simulator's configuration and the files it names (paths relative to it); raises
    ConfigError naming the file and the field."""
    path = Path(path)
    try:
        config = msgspec.convert(read_toml(path), ExchangeConfig)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    base = path.parent
    fix = msgspec.structs.replace(
        config.fix, settings=str(base / config.fix.settings), data_dir=str(base / config.fix.data_dir)
    )
    config = msgspec.structs.replace(config, fix=fix)
    instruments = InstrumentRegistry.load(base / config.instruments)
    return LoadedExchange(config, instruments, load_sessions(fix.settings, None, require_password=False))


class OpenGate:
    """The exchange's RiskGate: it accepts every order the book takes (members' risk is their own business)."""

    def __init__(self, accounts: Iterable[str] = ()) -> None:
        self._accounts = sorted(set(accounts))

    def decide(self, cmd: SubmitOrder, order_id: int, now_ns: int) -> OrderAccepted | OrderRejected:
        return OrderAccepted(
            order_id, cmd.cl_ord_id, cmd.account, cmd.symbol, cmd.side, cmd.ord_type, cmd.tif, cmd.qty, cmd.price,
            now_ns, cmd.stop_price,
        )  # fmt: skip

    def decide_replace(self, cmd: ReplaceOrder, order_id: int, now_ns: int, ord_type: OrdType) -> RejectReason:
        return RejectReason.NONE

    def on_events(self, events: Iterable[Message]) -> None:
        pass

    def set_kill_switch(self, account: str, on: bool, now_ns: int) -> None:
        pass

    def set_trading_state(self, account: str, trading_state: TradingState, now_ns: int) -> None:
        pass

    def quote(self, symbol: str, bid: int, ask: int, now_ns: int) -> None:
        pass

    def set_limits(self, account: str, limits: AccountLimits, now_ns: int) -> None:
        pass

    def accounts(self) -> list[str]:
        return list(self._accounts)


class ExchangeSim:
    """A running simulator: the book (`venue`), the engine in front of it and its FIX acceptor (which publishes
    the books' market data to the members that subscribe)."""

    def __init__(self, loaded: LoadedExchange, port: int | None = None) -> None:
        """Listens on `port` (the configured one when None)."""
        cfg = loaded.config
        self.name = cfg.name
        self.instruments = loaded.instruments
        self.sessions = loaded.sessions
        self.port = cfg.fix.port if port is None else port
        data = Path(cfg.fix.data_dir)
        self.generation = _next_generation(data / "generation")
        first_order_id, exec_base = id_bases(self.generation)  # its own id ranges per start, like the OMS's
        self.venue = venue = InternalVenue(loaded.instruments, _STP[cfg.self_trade], cfg.name, exec_id_base=exec_base)
        members = [a for s in loaded.sessions for a in s.accounts]
        self.engine = OrderManager(loaded.instruments, OpenGate(members), lambda symbol: venue, first_order_id)
        self.host = Sequencer(self.engine)
        self.gateway = MarketDataGateway(
            self.host, loaded.instruments, loaded.sessions, self.port, data, self.generation, self.top_of
        )

    def top_of(self, symbol: str) -> Top:
        """`symbol`'s top of book now (read it in the core's sequence); KeyError for a symbol with no book."""
        inst = self.instruments.by_symbol(symbol)
        if inst is None:
            raise KeyError(symbol)
        return Top(*self.venue.engine.l1(inst.id))

    @classmethod
    def start(cls, path: str | PathLike[str] = DEFAULT_EXCHANGE_CONFIG, port: int | None = None) -> ExchangeSim:
        """Load the configuration and listen; raises ConfigError or OSError naming what is wrong."""
        loaded = load_exchange_config(path)
        check_port_free(loaded.config.fix.port if port is None else port, "FIX acceptor")
        sim = cls(loaded, port)
        sim.gateway.start()
        if ipaddress.ip_address(loaded.config.fix.host).is_loopback:  # QuickFIX itself binds every address
            loopback_only(sim.port)
        return sim

    def stop(self) -> None:
        """Cancel every resting order (reported to its member), log the members out, close the port, stop
        publishing."""
        self.gateway.stop()


def _next_generation(path: Path) -> int:
    """1 + the number stored at `path` (0 when there is none), written back before it is returned."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = path.read_text().strip() if path.exists() else "0"
    if not text.isdigit():
        raise ConfigError(f"{path}: expected a start count, found {text[:40]!r}")
    generation = int(text) + 1
    tmp = path.with_suffix(".tmp")
    tmp.write_text(f"{generation}\n")
    tmp.replace(path)
    return generation
