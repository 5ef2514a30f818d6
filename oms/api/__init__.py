"""The REST + WebSocket API (docs/api.md): `ApiServer(host, account_view, settings, algos=algo_engine).start()`:
orders, parent orders (TWAP, VWAP, POV, iceberg, bracket), accounts, kill switches and the account streams."""

from oms.api.accounts import AccountView, LocalAccountView, RayAccountView
from oms.api.server import ApiServer
from oms.api.settings import ApiSettings

__all__ = ["AccountView", "ApiServer", "ApiSettings", "LocalAccountView", "RayAccountView"]
