"""A reserved-mode gate under load until it is killed: `python -m tests.integration.reserved_child REDIS_URL CONFIGS`.

The gate decides ALGO1's orders locally and keeps their reports queued (they would reach the account host only in
large batches); it writes each acceptance ahead to the report log, and only after `decide` has returned does this
print `ACKED order_id`.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from oms.core.accounts import AccountEvent, AllowanceRequest
from oms.core.model.enums import OrdType, Side, TimeInForce
from oms.core.model.instruments import InstrumentRegistry
from oms.core.model.messages import OrderAccepted, SubmitOrder, TradePrinted
from oms.core.reserved import AllowanceGate
from oms.infra.ray.actors import AccountShard, ShardConfig
from oms.infra.redis.reportlog import ReportLog
from oms.infra.redis.server import make_client

PX = 1_500_000


def main(url: str, configs: Path) -> None:
    host = AccountShard(["ALGO1"], ShardConfig(url, str(configs / "instruments.toml"), str(configs / "accounts.toml")))
    log = ReportLog(make_client(url), AccountEvent)
    gate = AllowanceGate(
        host,
        InstrumentRegistry.load(configs / "instruments.toml"),
        ["ALGO1"],
        AllowanceRequest(orders=400),
        batch=10_000,
        flush_after_ns=10**15,
        log=log,
    )
    gate.on_events([TradePrinted("SIM", "AAPL", 1, PX, 1, Side.BUY, time.time_ns())])
    order_id = 0
    while True:
        order_id += 1
        cmd = SubmitOrder("ALGO1", f"c{order_id}", "AAPL", Side.BUY, OrdType.LIMIT, 1, PX, tif=TimeInForce.GTC)
        if isinstance(gate.decide(cmd, order_id, time.time_ns()), OrderAccepted):
            print("ACKED", order_id, flush=True)
        time.sleep(0.003)  # within the account's order-rate limit


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
