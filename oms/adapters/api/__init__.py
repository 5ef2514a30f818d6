"""The REST + WebSocket API (docs/api.md): `ApiServer(host, account_view, settings, algos=algo_engine).start()`:
orders, parent orders (TWAP, VWAP, POV, iceberg, bracket), accounts, kill switches and the account streams."""

from oms.adapters.api.accounts import AccountView, LocalAccountView, SummaryAccountView
from oms.adapters.api.server import ApiServer
from oms.adapters.api.settings import ApiSettings

__all__ = ["AccountView", "ApiServer", "ApiSettings", "LocalAccountView", "SummaryAccountView"]
