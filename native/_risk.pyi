"""Type stub of the native pre-trade check (native/_risk.pyx)."""

from collections.abc import Collection, Iterable, Mapping

from oms.core.model.messages import SubmitOrder

CHECK_ORDER: tuple[int, ...]
UNDECIDED: int
ACTIVE: int
REDUCING: int
HALTED: int

class RiskKernel:
    def __init__(self, symbols: Iterable[str], factors: Iterable[int]) -> None: ...
    # -- PUSHES --
    def set_seen(self, seen: set[str]) -> None: ...
    def set_limits(
        self,
        max_order_notional: int,
        credit_limit: int,
        max_gross: int,
        max_net: int,
        max_open_orders: int,
        window_ns: int,
        symbols: Mapping[str, tuple[int, int, int]],
        restricted: Collection[str],
    ) -> None: ...
    def set_account(
        self, kill: bool, state: int, cash: int, exposure: int, open_orders: int, rate_oldest: int | None
    ) -> None: ...
    def set_symbol(self, symbol: str, pos: int, cost: int, ref: int | None, work_buy: int, work_sell: int) -> None: ...
    # -- THE CHECK --
    def check(self, cmd: SubmitOrder, now_ns: int) -> int: ...
