"""The QuickFIX Application: hands each message to the gateway by (BeginString, MsgType), nothing else."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import quickfix as fix

from fix_gateway import tags as T
from fix_gateway import threadstate
from fix_gateway.codec import field_problem
from fix_gateway.fields import Received

__all__ = ["GatewayApplication", "Handlers", "QuietApplication"]

Handler = Callable[[Any, Any], None]  # (message, session id)


class Handlers(Protocol):
    """What the application routes to (`fix_gateway.gateway.FixGateway`): one handler per message it serves."""

    on_new_order: Handler
    on_cancel: Handler
    on_replace: Handler
    on_status: Handler
    on_mass_cancel: Handler
    on_unsupported: Handler

    def check_logon(self, message: Any, session_id: Any) -> None: ...

    def on_error(self, message: Any, session_id: Any, exc: Exception) -> None: ...

    def on_bad_field(self, message: Any, session_id: Any, tag: int, text: str) -> None: ...


class QuietApplication(fix.Application):  # type: ignore[misc]
    """A QuickFIX Application whose callbacks do nothing: subclasses override only what they use."""

    def onCreate(self, session_id: Any) -> None:
        pass

    def onLogon(self, session_id: Any) -> None:
        pass

    def onLogout(self, session_id: Any) -> None:
        pass

    def toAdmin(self, message: Any, session_id: Any) -> None:
        pass

    def fromAdmin(self, message: Any, session_id: Any) -> None:
        pass

    def toApp(self, message: Any, session_id: Any) -> None:
        pass

    def fromApp(self, message: Any, session_id: Any) -> None:
        pass


class GatewayApplication(QuietApplication):
    """QuickFIX callbacks for a FixGateway. An exception escaping a handler is answered, never swallowed."""

    def __init__(self, gateway: Handlers) -> None:
        super().__init__()
        self._gateway = gateway
        g = gateway
        self._router: dict[tuple[str, str], Handler] = {
            ("FIX.4.2", T.MT_NEW_ORDER_SINGLE): g.on_new_order,
            ("FIX.4.2", T.MT_ORDER_CANCEL_REQUEST): g.on_cancel,
            ("FIX.4.2", T.MT_ORDER_CANCEL_REPLACE_REQUEST): g.on_replace,
            ("FIX.4.2", T.MT_ORDER_STATUS_REQUEST): g.on_status,
            ("FIX.4.4", T.MT_NEW_ORDER_SINGLE): g.on_new_order,
            ("FIX.4.4", T.MT_ORDER_CANCEL_REQUEST): g.on_cancel,
            ("FIX.4.4", T.MT_ORDER_CANCEL_REPLACE_REQUEST): g.on_replace,
            ("FIX.4.4", T.MT_ORDER_STATUS_REQUEST): g.on_status,
            ("FIX.4.4", T.MT_ORDER_MASS_CANCEL_REQUEST): g.on_mass_cancel,
        }

    def fromAdmin(self, message: Any, session_id: Any) -> None:
        if message.getHeader().getField(T.MSG_TYPE) == T.MT_LOGON:
            self._gateway.check_logon(message, session_id)

    def onLogout(self, session_id: Any) -> None:
        threadstate.release()  # the connection's thread is done with Python (see fromApp)

    def fromApp(self, message: Any, session_id: Any) -> None:
        """An order message reaches its handler as `Received` fields (read once, kept by the sequencer); any other
        goes to `on_unsupported` as QuickFIX's message. The connection's thread keeps its Python thread state from
        its first application message to its logout (`fix_gateway.threadstate`)."""
        threadstate.hold()
        header = message.getHeader()
        key = (header.getField(T.BEGIN_STRING), header.getField(T.MSG_TYPE))
        handler = self._router.get(key)
        try:
            msg = message if handler is None else Received(message.toString())
            problem = field_problem(msg)  # before anything keeps or echoes it
            if problem is not None:
                return self._gateway.on_bad_field(msg, session_id, *problem)
            (handler or self._gateway.on_unsupported)(msg, session_id)
        except Exception as exc:  # answered with a BusinessMessageReject and logged, see FixGateway.on_error
            self._gateway.on_error(message, session_id, exc)
