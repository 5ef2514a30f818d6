"""FIX 4.2: ExecTransType on every ExecutionReport, ExecType 1/2 for partial and full fills, OrdStatus 5 Replaced."""

from __future__ import annotations

from typing import Any

from fix_gateway import tags as T
from fix_gateway.codec import LIMIT_REASONS, Codec
from oms.core.model.enums import RejectReason as R

# FIX 4.2 OrdRejReason: 0 broker option, 1 unknown symbol, 2 exchange closed, 3 order exceeds limit,
# 4 too late to enter, 5 unknown order, 6 duplicate order
_ORD_REJ = {
    R.UNKNOWN_SYMBOL: "1",
    R.VENUE_UNAVAILABLE: "2",  # exchange closed
    R.UNKNOWN_ORDER: "5",
    R.DUPLICATE_CL_ORD_ID: "6",
    R.DUPLICATE_ORDER_ID: "6",
    **dict.fromkeys(LIMIT_REASONS, "3"),
    # broker option: none of 1-6 fits these
    **dict.fromkeys((R.INVALID_QTY, R.PRICE_COLLAR, R.NO_REFERENCE_PRICE, R.RESTRICTED_SYMBOL, R.REDUCE_ONLY,
                     R.HALTED, R.KILL_SWITCH, R.UNKNOWN_ACCOUNT, R.SYSTEM_BUSY,
                     R.INTERNAL_ERROR, R.SHUTTING_DOWN, R.NOT_READY, R.JOURNAL_UNAVAILABLE), "0"),
}  # fmt: skip
# FIX 4.2 CxlRejReason: 0 too late to cancel, 1 unknown order, 2 broker option, 3 already pending
_CXL_REJ = {R.TOO_LATE_TO_CANCEL: "0", R.UNKNOWN_ORDER: "1", R.ORDER_PENDING: "3"}


class Fix42Codec(Codec):
    begin_string = "FIX.4.2"

    def exec_fields(self, msg: Any, exec_type: str) -> None:
        msg.setField(T.EXEC_TRANS_TYPE, "0")  # New
        msg.setField(T.EXEC_TYPE, exec_type)

    def exec_type_fill(self, leaves_qty: int) -> str:
        return "1" if leaves_qty else "2"

    def status_fields(self, msg: Any, ord_status: str, req_id: str | None) -> None:
        msg.setField(T.EXEC_TRANS_TYPE, "3")  # Status
        msg.setField(T.EXEC_TYPE, ord_status)  # FIX 4.2 answers a status request with ExecType = OrdStatus

    def ord_rej_reason(self, reason: R) -> str:
        return _ORD_REJ.get(reason, "0")

    def cxl_rej_reason(self, reason: R) -> str:
        return _CXL_REJ.get(reason, "2")
