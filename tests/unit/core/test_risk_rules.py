"""risk.rules.RULES is the one list of new-order checks: the Python rules, the Cython kernel, reserved mode's cover
and the reason maps are each held to it here."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from fix_gateway import fix42, fix44
from native import _risk
from oms.core.accounts import AccountState, AllowanceGranted, SymbolAllowance
from oms.core.model.enums import OrdType, RejectReason, Side, TimeInForce, TradingState
from oms.core.model.instruments import InstrumentRegistry
from oms.core.model.messages import OrderAccepted, OrderFilled, ReplaceOrder, SubmitOrder
from risk import checks
from risk.limits import LimitsSpec, resolve_limits
from risk.reasons import TEXT
from risk.rules import KERNEL_ORDER, REASONS, RULES, Cover

ROOT = Path(__file__).resolve().parents[3]
REG = InstrumentRegistry.load(ROOT / "configs" / "instruments.toml")
ACC = "ACC1"
PX = 1_000_000  # AAPL 100.00
LIMITS = resolve_limits(
    LimitsSpec(start_cash="1000000", credit_limit="0", max_order_notional="10000000", max_gross_notional="100000000",
               max_net_notional="100000000", max_position="100000", collar_pct="5", restricted_symbols=["ESZ6"]),
    REG,
)  # fmt: skip
NAMES = [rule.name for rule in RULES]


@contextmanager
def traced(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The names of the rules whose check functions run inside the block, in call order."""
    calls: list[str] = []

    def spy(name: str, fn: Callable[..., RejectReason]) -> Callable[..., RejectReason]:
        def call(*args: Any) -> RejectReason:
            calls.append(name)
            return fn(*args)

        return call

    with monkeypatch.context() as m:
        for rule in RULES:
            m.setattr(checks, rule.check.__name__, spy(rule.name, rule.check))
        yield calls


def reducing_long(qty: int = 50) -> AccountState:
    """An account long `qty` AAPL at PX with a reference price, in REDUCING: a sell within the position passes every
    check, reduce-only included, so every check runs."""
    state = AccountState(ACC, LIMITS, REG)
    state.mark("AAPL", PX, 1)
    state.apply(OrderAccepted(1, "pos", ACC, "AAPL", Side.BUY, OrdType.LIMIT, TimeInForce.DAY, qty, PX, 2))
    state.apply(OrderFilled(1, "pos", ACC, "AAPL", 1, Side.BUY, qty, PX, 0, qty, qty * PX, True, 3))
    state.set_trading_state(TradingState.REDUCING, 4)
    return state


def sell(cl: str, qty: int, price: int | None = PX, **kw: Any) -> SubmitOrder:
    kw.setdefault("ord_type", OrdType.LIMIT if price is not None else OrdType.MARKET)
    return SubmitOrder(kw.pop("account", ACC), cl, kw.pop("symbol", "AAPL"), Side.SELL, qty=qty, price=price, **kw)


# -- THE LIST ITSELF --


def test_every_check_function_is_one_rule_and_every_rule_has_its_own_reasons() -> None:
    assert len(set(NAMES)) == len(NAMES)
    assert {n for n in checks.__all__ if n.startswith("check_")} == {rule.check.__name__ for rule in RULES}
    assert all(getattr(checks, rule.check.__name__) is rule.check for rule in RULES)
    reasons = [reason for rule in RULES for reason in rule.reasons]
    assert all(rule.reasons for rule in RULES)
    assert RejectReason.NONE not in reasons
    assert len(set(reasons)) == len(reasons) and set(reasons) == REASONS


# -- THE PYTHON RULES --


def test_decide_runs_every_check_in_the_lists_order(monkeypatch: pytest.MonkeyPatch) -> None:
    state = reducing_long()
    with traced(monkeypatch) as calls:
        reason = state.reference_reason(sell("s", 10), 10)
    assert reason is RejectReason.NONE
    assert calls == NAMES


def test_decide_replace_runs_the_checks_the_list_marks_for_replaces_in_its_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    state = reducing_long()
    state.set_trading_state(TradingState.ACTIVE, 5)
    decision = state.decide(sell("s", 10), 2, 6)
    assert isinstance(decision, OrderAccepted)
    state.apply(decision)
    state.set_trading_state(TradingState.REDUCING, 7)
    with traced(monkeypatch) as calls:
        reason = state.decide_replace(ReplaceOrder(ACC, "r", "s", "AAPL", Side.SELL, 20, PX), 2, 8)
    assert reason is RejectReason.NONE
    assert calls == [rule.name for rule in RULES if rule.replace]


@pytest.mark.parametrize(
    ("cmd", "expected"),
    [
        (sell("a", 10, account="OTHER"), RejectReason.UNKNOWN_ACCOUNT),
        (sell("b", 10, symbol="NOPE"), RejectReason.UNKNOWN_SYMBOL),
        (sell("c", 10, symbol="ESZ6"), RejectReason.RESTRICTED_SYMBOL),
        (sell("pos", 10), RejectReason.DUPLICATE_CL_ORD_ID),
        (sell("d", 0), RejectReason.INVALID_QTY),
        (sell("e", 10, symbol="MSFT", price=None), RejectReason.NO_REFERENCE_PRICE),
        (sell("f", 10, price=None), RejectReason.NONE),  # a MARKET order: no collar
        (sell("g", 10, PX * 2), RejectReason.PRICE_COLLAR),
        (sell("h", 60), RejectReason.REDUCE_ONLY),
    ],
    ids=["account", "symbol", "restricted", "duplicate", "qty", "reference", "market-passes", "collar", "reduce-only"],
)
def test_a_decision_stops_at_the_first_failing_check_having_run_the_earlier_ones_in_order(
    monkeypatch: pytest.MonkeyPatch, cmd: SubmitOrder, expected: RejectReason
) -> None:
    state = reducing_long()
    with traced(monkeypatch) as calls:
        reason = state.reference_reason(cmd, 10)
    assert reason is expected
    positions = [NAMES.index(name) for name in calls]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)
    assert expected is RejectReason.NONE or expected in RULES[positions[-1]].reasons


# -- THE KERNEL --


def test_the_kernel_checks_the_lists_reasons_in_the_lists_order() -> None:
    assert tuple(int(reason) for reason in KERNEL_ORDER) == _risk.CHECK_ORDER


def test_only_the_account_check_is_left_out_of_the_kernel() -> None:
    """The kernel holds one account's numbers; `decide` answers an order of another account itself."""
    assert [rule.name for rule in RULES if not rule.native] == ["account"]


# -- RESERVED MODE --

TERMS = set(AllowanceGranted.__struct_fields__) | set(SymbolAllowance.__struct_fields__)


@pytest.mark.parametrize("rule", RULES, ids=NAMES)
def test_every_check_declares_how_reserved_mode_covers_it_with_terms_the_allowance_has(rule: Any) -> None:
    assert isinstance(rule.reserved, Cover)
    assert rule.reserved is not Cover.TERMS or rule.terms, f"{rule.name}: covered by terms, but names none"
    assert set(rule.terms) <= TERMS, f"{rule.name}: {sorted(set(rule.terms) - TERMS)} are not allowance terms"


# -- REASON MAPS --


@pytest.mark.parametrize("reason", sorted(REASONS), ids=lambda r: r.name)
def test_every_reason_the_checks_give_has_a_text_and_an_ord_rej_reason_in_both_fix_codecs(reason: RejectReason) -> None:
    assert TEXT.get(reason)
    # both codecs answer "0" (broker option) for a reason their table lacks, so only the tables show that a reason
    # was given its OrdRejReason on purpose
    assert reason in fix42._ORD_REJ, f"FIX 4.2 has no OrdRejReason for {reason.name}"
    assert reason in fix44._ORD_REJ, f"FIX 4.4 has no OrdRejReason for {reason.name}"
