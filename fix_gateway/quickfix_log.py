"""QuickFIX's file log with every Logon credential masked before it is written.

QuickFIX's FileLog writes each message as it came and went, so a Logon's Password (554) and RawData (96), wrong
ones included, would sit in `*.messages.current.log` in clear. `MaskingLogFactory` hands QuickFIX a Log of its own
that replaces those values with `********` in any Logon (and any event text that quotes one) and passes the rest
to QuickFIX's own FileLog unchanged. The files are written with the process's umask (`oms serve` runs with 077).
"""

from __future__ import annotations

import re
from typing import Any

import quickfix as fix

__all__ = ["MaskingLogFactory", "mask"]

_SECRET = re.compile("(\x01(?:554|96)=)[^\x01]*")
_LOGON = "\x0135=A\x01"
MASK = r"\1********"


def mask(text: str) -> str:
    """`text` with the Password (554) and RawData (96) of a Logon in it replaced by `********`; other text as is."""
    return _SECRET.sub(MASK, text) if _LOGON in text else text


class _MaskingLog(fix.Log):  # type: ignore[misc]
    def __init__(self, inner: Any) -> None:
        super().__init__()
        self._inner = inner

    def clear(self) -> None:
        self._inner.clear()

    def backup(self) -> None:
        self._inner.backup()

    def onIncoming(self, text: str) -> None:
        self._inner.onIncoming(_SECRET.sub(MASK, text) if _LOGON in text else text)

    def onOutgoing(self, text: str) -> None:
        self._inner.onOutgoing(_SECRET.sub(MASK, text) if _LOGON in text else text)

    def onEvent(self, text: str) -> None:
        self._inner.onEvent(_SECRET.sub(MASK, text) if _LOGON in text else text)


class MaskingLogFactory(fix.LogFactory):  # type: ignore[misc]
    """A QuickFIX LogFactory: QuickFIX's FileLogFactory for `settings` behind a masking Log. Keep it alive as long
    as the acceptor or initiator using it (QuickFIX holds a reference, not a copy)."""

    def __init__(self, settings: Any) -> None:
        super().__init__()
        self._files = fix.FileLogFactory(settings)
        self._logs: dict[int, tuple[_MaskingLog, Any]] = {}  # Python owns the wrappers QuickFIX points at

    def create(self, *session_id: Any) -> Any:
        inner = self._files.create(*session_id)
        log = _MaskingLog(inner)
        log.__disown__()  # QuickFIX owns the C++ side from here on (without this, SWIG frees it under QuickFIX)
        self._logs[id(log)] = (log, inner)
        return log

    def destroy(self, log: Any) -> None:
        entry = self._logs.pop(id(log), None)
        if entry is not None:
            self._files.destroy(entry[1])
