"""Reserved risk mode: the account grants the engine an allowance, the engine decides locally within it.

Reserved mode never accepts an order that strict mode would reject given the same history: docs/reserved.md says
why (the allowance, the certificate, the local rule, refills, reports and revocation).
"""

from oms.core.reserved.allowance import Allowance, AllowanceDesk, Answer, GrantAsk, Lease, Ready, serve_asks
from oms.core.reserved.commands import (
    CheckReplace,
    Decide,
    Decision,
    GateCall,
    Item,
    Operate,
    OperatorCommand,
    OperatorMethods,
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
from oms.core.reserved.gate import AllowanceGate
from oms.core.reserved.shard import LocalShard, Shard, WriteAhead

__all__ = [
    "Allowance",
    "AllowanceDesk",
    "AllowanceGate",
    "Answer",
    "CheckReplace",
    "Decide",
    "Decision",
    "GateCall",
    "GrantAsk",
    "Item",
    "Lease",
    "LocalShard",
    "Operate",
    "OperatorCommand",
    "OperatorMethods",
    "Ready",
    "ReturnAllowance",
    "RevokeAllowance",
    "SetKillSwitch",
    "SetLimits",
    "SetTradingState",
    "Settle",
    "Shard",
    "StartDay",
    "TopUp",
    "WriteAhead",
    "apply_operator",
    "serve_asks",
]
