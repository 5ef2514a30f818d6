"""The baselines' server side, run in its own process: the OMS's FIX gateway over the in-process core
(`oms bench fix`), a bare QuickFIX acceptor (`oms bench fix` and `oms bench serve`), or a durable bare one
(`oms bench serve`).

    python -m bench.fix_server oms     --config DIR/dev.toml --port P --dir DIR
    python -m bench.fix_server bare    --config DIR/dev.toml --port P --dir DIR
    python -m bench.fix_server durable --config DIR/dev.toml --port P --dir DIR

`bare` answers each NewOrderSingle at once with an ExecutionReport New, each OrderCancelRequest with an ExecutionReport
Canceled and each OrderCancelReplaceRequest with an ExecutionReport Replaced, from memory: QuickFIX and nothing else. A
sell rests in its memory; a buy at the price of a resting sell trades with it instead (an ExecutionReport Trade to each
side), for the benchmark's cross mix.
`durable` does the same after one XADD per message to a redis-server it starts itself in DIR with appendfsync always
(the fsync every durable acknowledgement needs).

It prints `ready` once it listens, runs until SIGTERM or SIGINT, stops cleanly and prints one JSON line with what it
booked (`orders`, `fills`), which the benchmark checks against what it sent.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections import deque
from typing import Any

import quickfix as fix

from fix_gateway import tags as T
from fix_gateway.application import QuietApplication
from fix_gateway.gateway import FixGateway
from fix_gateway.settings import quickfix_settings
from oms.apps.serve import load_config, local_engine
from oms.infra.redis.server import ManagedRedis, make_client
from oms.runtime.sequencer import Sequencer
from oms.runtime.signals import StopSignal


class BareApplication(QuietApplication):
    """Answers each NewOrderSingle with an ExecutionReport New, each OrderCancelRequest with an ExecutionReport Canceled
    and each OrderCancelReplaceRequest with an ExecutionReport Replaced, at once and from memory; a buy at the price of
    a resting sell trades with it (a Trade to each side, the whole quantity of each). `durable`: a Redis client each
    message is appended to (XADD, one round trip) before its answer leaves."""

    def __init__(self, durable: Any = None) -> None:
        super().__init__()
        self.orders = 0
        self.cancels = 0
        self.replaces = 0
        self.fills = 0
        self._durable = durable
        self._exec_ids = itertools.count(1)
        self._sells: dict[tuple[str, str], deque[tuple[Any, str, str]]] = {}  # (symbol, price) -> (session, cl, qty)

    def fromApp(self, message: Any, session_id: Any) -> None:
        msg_type = message.getHeader().getField(T.MSG_TYPE)
        if msg_type not in (T.MT_NEW_ORDER_SINGLE, T.MT_ORDER_CANCEL_REQUEST, T.MT_ORDER_CANCEL_REPLACE_REQUEST):
            return
        if self._durable is not None:
            self._durable.xadd("bench:orders", {"m": message.toString()})
        cl, symbol, side = message.getField(T.CL_ORD_ID), message.getField(T.SYMBOL), message.getField(T.SIDE)
        if msg_type == T.MT_ORDER_CANCEL_REQUEST:
            self.cancels += 1
            self._report(session_id, cl, symbol, side, "4", "4", "0", "0")
            return
        if msg_type == T.MT_ORDER_CANCEL_REPLACE_REQUEST:
            self.replaces += 1
            self._report(session_id, cl, symbol, side, "5", "0", message.getField(T.ORDER_QTY), "0")
            return
        self.orders += 1
        qty = message.getField(T.ORDER_QTY)
        book = (symbol, message.getField(T.PRICE)) if message.isSetField(T.PRICE) else None
        resting = self._sells.get(book) if book is not None and side == "1" else None
        if resting:
            maker, maker_cl, maker_qty = resting.popleft()
            self.fills += 2
            self._report(session_id, cl, symbol, side, "F", "2", "0", qty)
            self._report(maker, maker_cl, symbol, "2", "F", "2", "0", maker_qty)
            return
        if book is not None and side == "2":
            self._sells.setdefault(book, deque()).append((session_id, cl, qty))
        self._report(session_id, cl, symbol, side, "0", "0", qty, "0")

    def _report(
        self, session_id: Any, cl: str, symbol: str, side: str, exec_type: str, status: str, leaves: str, cum: str
    ) -> None:
        er = fix.Message()
        header = er.getHeader()
        header.setField(T.BEGIN_STRING, session_id.getBeginString().getValue())
        header.setField(T.MSG_TYPE, T.MT_EXECUTION_REPORT)
        for tag, value in (
            (T.ORDER_ID, "1"), (T.CL_ORD_ID, cl), (T.EXEC_ID, str(next(self._exec_ids))), (T.EXEC_TYPE, exec_type),
            (T.ORD_STATUS, status), (T.SYMBOL, symbol), (T.SIDE, side), (T.LEAVES_QTY, leaves), (T.CUM_QTY, cum),
            (T.AVG_PX, "0"),
        ):  # fmt: skip
            er.setField(tag, value)
        fix.Session.sendToTarget(er, session_id)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fix_server")
    parser.add_argument("mode", choices=["oms", "bare", "durable"])
    parser.add_argument("--config", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", required=True)
    args = parser.parse_args(argv)
    loaded = load_config(args.config)
    done = StopSignal()
    if args.mode == "oms":
        gateway = FixGateway(
            Sequencer(local_engine(loaded)), loaded.instruments, loaded.fix_sessions, args.port, args.dir, generation=1
        )
        gateway.start()
        print("ready", flush=True)
        done.wait()
        engine = gateway.engine
        gateway.stop(cancel_working=False)
        filled: dict[str, int] = {}
        for order in engine.orders.values():
            filled[order.account] = filled.get(order.account, 0) + order.cum_qty
        stats = {"orders": len(engine.orders), "filled_qty": filled}
    else:
        redis = ManagedRedis(f"{args.dir}/redis", appendfsync="always").start() if args.mode == "durable" else None
        settings = quickfix_settings(loaded.fix_sessions, args.port, args.dir)
        app = BareApplication(None if redis is None else make_client(redis.url))
        store, logs = fix.FileStoreFactory(settings), fix.FileLogFactory(settings)
        acceptor = fix.ThreadedSocketAcceptor(app, store, settings, logs)
        acceptor.start()
        print("ready", flush=True)
        done.wait()
        acceptor.stop(True)
        del acceptor
        if redis is not None:
            redis.stop()
        stats = {"orders": app.orders, "cancels": app.cancels, "replaces": app.replaces, "fills": app.fills}
    print(json.dumps(stats), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
