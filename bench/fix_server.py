"""The server side of `oms bench fix`, run in its own process: the OMS's FIX gateway, or a bare QuickFIX acceptor.

    python -m bench.fix_server oms  --config DIR/dev.toml --port P --dir DIR
    python -m bench.fix_server bare --config DIR/dev.toml --port P --dir DIR

It prints `ready` once it listens, runs until SIGTERM or SIGINT, stops cleanly and prints one JSON line with what it
booked (`orders`, `fills`), which the benchmark checks against what it sent.
"""

from __future__ import annotations

import argparse
import itertools
import json
import signal
import sys
import threading
from typing import Any

import quickfix as fix

from fix_gateway import tags as T
from fix_gateway.application import QuietApplication
from fix_gateway.gateway import FixGateway
from fix_gateway.settings import quickfix_settings
from oms.apps.serve import load_config, local_engine
from oms.runtime.sequencer import Sequencer


class BareApplication(QuietApplication):
    """Answers each NewOrderSingle at once with a fixed ExecutionReport (New): QuickFIX and nothing else."""

    def __init__(self) -> None:
        super().__init__()
        self.orders = 0
        self._exec_ids = itertools.count(1)

    def fromApp(self, message: Any, session_id: Any) -> None:
        self.orders += 1
        er = fix.Message()
        header = er.getHeader()
        header.setField(T.BEGIN_STRING, session_id.getBeginString().getValue())
        header.setField(T.MSG_TYPE, T.MT_EXECUTION_REPORT)
        for tag, value in (
            (T.ORDER_ID, "1"), (T.CL_ORD_ID, message.getField(T.CL_ORD_ID)), (T.EXEC_ID, str(next(self._exec_ids))),
            (T.EXEC_TYPE, "0"), (T.ORD_STATUS, "0"), (T.SYMBOL, message.getField(T.SYMBOL)),
            (T.SIDE, message.getField(T.SIDE)), (T.LEAVES_QTY, message.getField(T.ORDER_QTY)), (T.CUM_QTY, "0"),
            (T.AVG_PX, "0"),
        ):  # fmt: skip
            er.setField(tag, value)
        fix.Session.sendToTarget(er, session_id)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fix_server")
    parser.add_argument("mode", choices=["oms", "bare"])
    parser.add_argument("--config", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", required=True)
    args = parser.parse_args(argv)
    loaded = load_config(args.config)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
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
        settings = quickfix_settings(loaded.fix_sessions, args.port, args.dir)
        app = BareApplication()
        store, logs = fix.FileStoreFactory(settings), fix.FileLogFactory(settings)
        acceptor = fix.ThreadedSocketAcceptor(app, store, settings, logs)
        acceptor.start()
        print("ready", flush=True)
        done.wait()
        acceptor.stop(True)
        del acceptor
        stats = {"orders": app.orders}
    print(json.dumps(stats), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
