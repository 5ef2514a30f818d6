"""FIX 4.4: ExecType F (Trade) for fills, no OrdStatus Replaced, ExecType I for status answers, LastLiquidityInd,
CopyMsgIndicator on drop copies, and the longer reject-reason enumerations."""

from __future__ import annotations

from typing import Any

from fix_gateway import tags as T
from fix_gateway.codec import LIMIT_REASONS, Codec
from oms.core.model.enums import OrdStatus
from oms.core.model.enums import RejectReason as R

# FIX 4.4 OrdRejReason: 0 broker option, 1 unknown symbol, 2 exchange closed, 3 order exceeds limit, 5 unknown order,
# 6 duplicate, 11 unsupported order characteristic, 13 incorrect quantity, 15 unknown account, 99 other
_ORD_REJ = {
    R.UNKNOWN_SYMBOL: "1",
    R.VENUE_UNAVAILABLE: "2",  # exchange closed
    R.UNKNOWN_ORDER: "5",
    R.DUPLICATE_CL_ORD_ID: "6",
    R.DUPLICATE_ORDER_ID: "6",
    R.UNKNOWN_ACCOUNT: "15",
    **dict.fromkeys(LIMIT_REASONS, "3"),
    **dict.fromkeys((R.INVALID_SIDE, R.INVALID_ORD_TYPE, R.INVALID_TIF, R.INVALID_DISPLAY_QTY), "11"),
    **dict.fromkeys((R.INVALID_QTY, R.OFF_LOT, R.QTY_BELOW_FILLED), "13"),
    **dict.fromkeys((R.INVALID_PRICE, R.OFF_TICK, R.INVALID_STOP_PRICE, R.PRICE_COLLAR, R.NO_REFERENCE_PRICE,
                     R.INVALID_NUMBER, R.EXCESS_PRECISION, R.FOK_UNFILLABLE), "99"),
    **dict.fromkeys((R.RESTRICTED_SYMBOL, R.REDUCE_ONLY, R.HALTED, R.KILL_SWITCH, R.SYSTEM_BUSY, R.INTERNAL_ERROR,
                     R.SHUTTING_DOWN, R.NOT_READY, R.JOURNAL_UNAVAILABLE), "0"),  # broker option
}  # fmt: skip
# FIX 4.4 CxlRejReason: 0 too late, 1 unknown order, 2 broker option, 3 already pending, 6 duplicate ClOrdID
_CXL_REJ = {R.TOO_LATE_TO_CANCEL: "0", R.UNKNOWN_ORDER: "1", R.ORDER_PENDING: "3", R.DUPLICATE_CL_ORD_ID: "6"}


class Fix44Codec(Codec):
    begin_string = "FIX.4.4"

    def exec_type_fill(self, leaves_qty: int) -> str:
        return "F"  # Trade; OrdStatus tells partial from full

    def ord_status(self, status: OrdStatus, cum_qty: int) -> str:
        if status is OrdStatus.REPLACED:  # 4.4 has no Replaced status: the order is New or PartiallyFilled
            return "1" if cum_qty else "0"
        return super().ord_status(status, cum_qty)

    def status_fields(self, msg: Any, ord_status: str, req_id: str | None) -> None:
        msg.setField(T.EXEC_TYPE, "I")  # Order Status
        if req_id is not None:
            msg.setField(T.ORD_STATUS_REQ_ID, req_id)

    def liquidity(self, msg: Any, aggressor: bool) -> None:
        msg.setField(T.LAST_LIQUIDITY_IND, "2" if aggressor else "1")  # 1 added, 2 removed liquidity

    def ord_rej_reason(self, reason: R) -> str:
        return _ORD_REJ.get(reason, "0")

    def cxl_rej_reason(self, reason: R) -> str:
        return _CXL_REJ.get(reason, "2")

    def mark_copy(self, msg: Any) -> None:
        msg.setField(T.COPY_MSG_INDICATOR, "Y")
