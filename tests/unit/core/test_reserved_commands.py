"""Typed commands of reserved mode: operator changes applied by one dispatch, gate calls that cross Ray intact."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from oms.core.accounts import (
    AccountState,
    AllowanceRequest,
    AllowanceRevoked,
    DayStarted,
    KillSwitchSet,
    LimitsChanged,
    Marked,
    TradingStateSet,
)
from oms.core.model.enums import OrdType, Side, TradingState
from oms.core.model.instruments import InstrumentRegistry
from oms.core.model.messages import ReplaceOrder, SubmitOrder, TradePrinted
from oms.core.reserved import (
    CheckReplace,
    Decide,
    GateCall,
    GrantAsk,
    Operate,
    OperatorCommand,
    ReturnAllowance,
    RevokeAllowance,
    SetKillSwitch,
    SetLimits,
    Settle,
    SetTradingState,
    StartDay,
    TopUp,
    apply_operator,
)
from oms.infra.ray.wire import pack_request, unpack_request
from risk.limits import load_risk_config

ROOT = Path(__file__).resolve().parents[3]
REG = InstrumentRegistry.load(ROOT / "configs" / "instruments.toml")
LIMITS = load_risk_config(ROOT / "configs" / "accounts.toml", REG).limits_for("ACC1")
ACC = "ACC1"

COMMANDS: list[tuple[OperatorCommand, Any]] = [
    (SetKillSwitch(ACC, True, 7), KillSwitchSet(ACC, True, 7)),
    (SetTradingState(ACC, TradingState.REDUCING, 7), TradingStateSet(ACC, TradingState.REDUCING, 7)),
    (SetLimits(ACC, LIMITS, 7), LimitsChanged(ACC, LIMITS, 7)),
    (StartDay(ACC, 7), DayStarted(ACC, 7)),
    (RevokeAllowance(ACC, 7), AllowanceRevoked(ACC, 7)),
]


@pytest.mark.parametrize(("command", "event"), COMMANDS)
def test_an_operator_command_is_applied_and_returns_the_event_to_journal(command: OperatorCommand, event: Any) -> None:
    state = AccountState(ACC, LIMITS, REG)
    replayed = AccountState(ACC, LIMITS, REG)

    returned = apply_operator(state, command)
    replayed.apply(returned)

    assert returned == event
    assert state.state_hash() == replayed.state_hash()


def test_anything_but_an_operator_command_is_refused() -> None:
    with pytest.raises(TypeError, match="not an operator command"):
        apply_operator(AccountState(ACC, LIMITS, REG), ReturnAllowance(ACC, 1, 7))  # type: ignore[arg-type]


ASKS = {ACC: GrantAsk(AllowanceRequest(orders=8), 5, held=3, with_ids=False)}
PRINT = TradePrinted("XNAS", "AAPL", 11, 1_500_000, 100, Side.SELL, 4)
CALLS: list[GateCall] = [
    Decide([(SubmitOrder(ACC, "c1", "AAPL", Side.BUY, OrdType.LIMIT, 10, 1_500_000), 1, 2)], ASKS),
    CheckReplace(ReplaceOrder(ACC, "c2", "c1", "AAPL", Side.BUY, 20, 1_500_100), 1, 3),
    Settle([Marked(ACC, "AAPL", 1_500_000, 2)], [PRINT], ASKS),
    TopUp(ACC, 3, AllowanceRequest(orders=8), 4),
    ReturnAllowance(ACC, 3, 5),
    *(Operate(command) for command, _ in COMMANDS),
]


@pytest.mark.parametrize("call", CALLS, ids=lambda c: type(c).__name__)
def test_a_gate_call_crosses_the_wire_with_its_reports_and_prints_intact(call: GateCall) -> None:
    reports = [Marked(ACC, "AAPL", 1_500_000, 1)]

    request = unpack_request(pack_request(call, reports, [PRINT]))

    assert (request.call, request.reports, request.marks) == (call, reports, [PRINT])
