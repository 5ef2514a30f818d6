"""The REST + WebSocket API (docs/api.md): `ApiServer(host, account_view, settings).start()`."""

from oms.api.accounts import AccountView, LocalAccountView, RayAccountView
from oms.api.server import ApiServer
from oms.api.settings import ApiSettings

__all__ = ["AccountView", "ApiServer", "ApiSettings", "LocalAccountView", "RayAccountView"]
