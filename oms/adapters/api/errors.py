"""API errors: every refusal is an `ApiError` with an HTTP status, a stable `code` and a human `message`.

Codes are snake_case. Where a refusal has a `RejectReason` (bad numbers, unknown symbol, duplicate ClOrdID, refused
cancels and replaces), the code is the reason's name in lower case and the message starts with `risk.reasons`'
text for it, so REST and FIX say the same thing for the same cause.
"""

from __future__ import annotations

import msgspec

from oms.core.model.enums import RejectReason
from risk.reasons import describe

__all__ = ["ApiError", "ErrorBody", "reason_code", "reason_error"]


class ErrorBody(msgspec.Struct, frozen=True):
    """What every 4xx (and the 5xx that should never happen) carries."""

    code: str
    message: str


class ApiError(Exception):
    """A request refused with `status`; rendered as an ErrorBody (plus `headers`)."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def reason_code(reason: RejectReason) -> str:
    return reason.name.lower()


def reason_error(status: int, reason: RejectReason, detail: str = "") -> ApiError:
    """An ApiError whose code and text come from `reason`; `detail` (e.g. the offending field) is appended."""
    text = describe(reason)
    return ApiError(status, reason_code(reason), f"{text}: {detail}" if detail else text)
