"""Account actors: the one place an account's state changes, and the engine's risk gate over them.

The names other code imports, from where they live: `oms.infra.ray.shard` (`AccountShard`, the actor class, its
config), `oms.infra.ray.client` (`ShardClient`, `RayAllowanceGate`, `build_gate`, `summary_reader`) and
`oms.infra.ray.wire` (how batches cross Ray).
"""

from oms.core.reserved import AllowanceGate
from oms.infra.ray.client import RayAllowanceGate, ShardClient, build_gate, summary_reader
from oms.infra.ray.shard import AccountShard, ShardConfig, UnknownAccount, account_actor_class
from oms.infra.ray.wire import pack, unpack_decisions

__all__ = [
    "AccountShard",
    "AllowanceGate",
    "RayAllowanceGate",
    "ShardClient",
    "ShardConfig",
    "UnknownAccount",
    "account_actor_class",
    "build_gate",
    "pack",
    "summary_reader",
    "unpack_decisions",
]
