"""A seeded synthetic market over an Sequencer, for tests, backtests and demos of the algos.

`MarketMaker` quotes a bid and an ask around a mid that random-walks by whole ticks; `NoiseTaker` sends marketable
IOC limits of random size and side, which print trades. Both are ordinary clients: SubmitOrder / CancelOrder on
their own sessions through `host.run`, so they pass the same risk checks as anyone. `Tape` collects every print
the host reports (for the market TWAP / VWAP a test computes on its own).
"""

from __future__ import annotations

import random

from oms.core.model.enums import OrdType, Side, TimeInForce
from oms.core.model.messages import CancelOrder, SubmitOrder, TradePrinted
from oms.runtime.sequencer import Reports, Sequencer

__all__ = ["MarketMaker", "NoiseTaker", "Tape"]


class Tape:
    """Every TradePrinted the host reports, in order."""

    def __init__(self, host: Sequencer) -> None:
        self.prints: list[TradePrinted] = []
        host.subscribe(self._on_reports)

    def _on_reports(self, reports: Reports) -> None:
        self.prints.extend(e for e, _ in reports if isinstance(e, TradePrinted))


class MarketMaker:
    """Two-sided quotes of `size` at mid -/+ `half_spread` ticks; each `step` moves the mid by -1, 0 or +1 tick
    (seeded) and re-quotes (cancel, then new orders)."""

    def __init__(
        self, host: Sequencer, account: str, symbol: str, mid: int, tick: int, size: int,
        half_spread: int = 1, seed: int = 0, session: str = "MM",
    ) -> None:  # fmt: skip
        self.host, self.account, self.symbol, self.session = host, account, symbol, session
        self.mid, self.tick, self.size, self.half_spread = mid, tick, size, half_spread
        self.rng = random.Random(seed)
        self.n = 0
        self.quotes: dict[Side, str] = {}

    def step(self, now_ns: int, drift: int | None = None) -> None:
        """Move the mid (by `drift` ticks when given, else at random) and re-quote at `now_ns`."""
        self.mid += self.tick * (self.rng.choice((-1, 0, 1)) if drift is None else drift)
        self.requote(now_ns)

    def requote(self, now_ns: int) -> None:
        for side, cl in list(self.quotes.items()):
            order = self.host.engine.find(self.session, cl)
            if order is not None and not order.is_terminal:
                self.n += 1
                cancel = CancelOrder(self.account, f"mmx{self.n}", cl, self.symbol, side, now_ns, self.session)
                self.host.run(lambda e, c=cancel: e.cancel(c, now_ns))
        for side, px in ((Side.BUY, self.bid), (Side.SELL, self.ask)):
            self.n += 1
            cl = f"mm{self.n}"
            cmd = SubmitOrder(self.account, cl, self.symbol, side, OrdType.LIMIT, self.size, px,
                              tif=TimeInForce.GTC, ts_ns=now_ns, session=self.session)  # fmt: skip
            self.host.run(lambda e, c=cmd: e.submit(c, now_ns))
            self.quotes[side] = cl

    @property
    def bid(self) -> int:
        return self.mid - self.half_spread * self.tick

    @property
    def ask(self) -> int:
        return self.mid + self.half_spread * self.tick


class NoiseTaker:
    """With probability `p` per step, an IOC limit of 1..`max_qty` lots on a random side, `reach` ticks through the
    maker's mid: it trades at the maker's quote."""

    def __init__(
        self, host: Sequencer, account: str, symbol: str, maker: MarketMaker, max_qty: int, lot: int = 1,
        p: float = 1.0, reach: int = 5, seed: int = 1, session: str = "NOISE",
    ) -> None:  # fmt: skip
        self.host, self.account, self.symbol, self.session = host, account, symbol, session
        self.maker, self.max_qty, self.lot, self.p, self.reach = maker, max_qty, lot, p, reach
        self.rng = random.Random(seed)
        self.n = 0

    def step(self, now_ns: int, side: Side | None = None, qty: int | None = None) -> None:
        if side is None and self.rng.random() >= self.p:
            return
        side = side or self.rng.choice((Side.BUY, Side.SELL))
        qty = qty or self.rng.randint(1, self.max_qty // self.lot) * self.lot
        px = self.maker.mid + side.sign * self.reach * self.maker.tick
        self.n += 1
        cmd = SubmitOrder(self.account, f"nz{self.n}", self.symbol, side, OrdType.LIMIT, qty, px,
                          tif=TimeInForce.IOC, ts_ns=now_ns, session=self.session)  # fmt: skip
        self.host.run(lambda e: e.submit(cmd, now_ns))


class SimMarket:
    """A host over `oms.apps.serve.local_engine`, a manual clock, an AlgoEngine, a maker and a noise taker on `symbol`,
    stepped one `step_ns` at a time: maker re-quotes, taker trades, algos run what is due."""

    def __init__(
        self, symbol: str = "AAPL", mid: int = 1_500_000, size: int = 2000, noise_qty: int = 200,
        noise_p: float = 1.0, seed: int = 0, store: object = None, step_ns: int = 1_000_000_000,
        maker_account: str = "ACC2", noise_account: str = "ACC1", config: object = None,
        profiles: dict[str, list[int]] | None = None, start_ns: int = 0,
    ) -> None:  # fmt: skip
        from oms.adapters.algos.engine import AlgoEngine, ManualClock
        from oms.apps.serve import load_config, local_engine

        self.loaded = load_config() if config is None else load_config(config)  # type: ignore[arg-type]
        self.instruments = self.loaded.instruments
        inst = self.instruments.by_symbol(symbol)
        assert inst is not None
        self.inst = inst
        self.host = Sequencer(local_engine(self.loaded))
        self.clock = ManualClock(start_ns)
        self.tape = Tape(self.host)
        self.algos = AlgoEngine(
            self.host,
            self.instruments,
            self.clock,
            store,
            profiles=profiles,  # type: ignore[arg-type]
        )
        self.maker = MarketMaker(self.host, maker_account, symbol, mid, inst.tick, size, seed=seed)
        self.noise = NoiseTaker(
            self.host, noise_account, symbol, self.maker, noise_qty, inst.lot, noise_p, seed=seed + 1
        )
        self.step_ns = step_ns
        self.maker.requote(start_ns)
        self.noise.step(start_ns, Side.BUY, inst.lot)  # an opening print: market orders need a reference price

    @property
    def now(self) -> int:
        return self.clock.now_ns

    def step(self, drift: int | None = None) -> None:
        """One step of simulated time."""
        now = self.clock.now_ns + self.step_ns
        self.clock.set(now)
        self.maker.step(now, drift)
        self.noise.step(now)
        self.algos.on_timer(now)

    def run_until(self, t_ns: int) -> None:
        while self.clock.now_ns + self.step_ns <= t_ns:
            self.step()
