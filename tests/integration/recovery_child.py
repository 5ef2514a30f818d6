"""An account host under load until it is killed: `python -m tests.integration.recovery_child REDIS_URL CONFIGS`.

Each batch submits one buy per account and fills every accepted one in full; only after the host has answered
(so after the journal holds them) does it print `ACKED account:order_id ...` for the filled orders.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from oms.core.model.enums import OrdType, Side, TimeInForce
from oms.core.model.messages import OrderAccepted, OrderFilled, SubmitOrder
from oms.infra.ray.actors import AccountShard, ShardConfig

ACCOUNTS = ("ACC1", "ACC2")
PX = 1_500_000
QTY = 10


def main(url: str, configs: Path) -> None:
    host = AccountShard(
        list(ACCOUNTS), ShardConfig(url, str(configs / "instruments.toml"), str(configs / "accounts.toml"), 25)
    )
    order_id = 0
    while True:
        batch = []
        for account in ACCOUNTS:
            order_id += 1
            cmd = SubmitOrder(account, f"c{order_id}", "AAPL", Side.BUY, OrdType.LIMIT, QTY, PX, tif=TimeInForce.GTC)
            batch.append((cmd, order_id, time.time_ns()))
        accepted = [d for d in host.submit_batch(batch) if isinstance(d, OrderAccepted)]
        fills = [
            OrderFilled(
                d.order_id,
                d.cl_ord_id,
                d.account,
                d.symbol,
                d.order_id,
                d.side,
                QTY,
                PX,
                0,
                QTY,
                QTY * PX,
                True,
                time.time_ns(),
            )
            for d in accepted
        ]
        host.apply_batch(fills)
        print("ACKED", *(f"{d.account}:{d.order_id}" for d in accepted), flush=True)
        time.sleep(0.02)  # stay within the accounts' order-rate limit


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
