"""Reserved risk mode: the account grants the engine an allowance, the engine decides locally within it.

Reserved mode never accepts an order that strict mode would reject given the same history: docs/reserved.md says
why (the allowance, the certificate, the local rule, refills, reports and revocation).
"""

from oms.core.reserved.allowance import Allowance, AllowanceDesk, Answer, GrantAsk, Lease, Ready, serve_asks
from oms.core.reserved.commands import ADMIN_OPS, admin
from oms.core.reserved.gate import AllowanceGate
from oms.core.reserved.shard import LocalShard, Shard, WriteAhead

__all__ = [
    "ADMIN_OPS",
    "Allowance",
    "AllowanceDesk",
    "AllowanceGate",
    "Answer",
    "GrantAsk",
    "Lease",
    "LocalShard",
    "Ready",
    "Shard",
    "WriteAhead",
    "admin",
    "serve_asks",
]
