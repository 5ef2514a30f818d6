"""`oms operator ...`: an operator's commands to a running OMS, over its REST API (wired into `oms.apps.cli`).

    oms operator kill-switch on|off ACCOUNT|--all
    oms operator halt|reduce|resume ACCOUNT
    oms operator limits ACCOUNT [--max-order-notional MONEY] [--credit-limit MONEY] [--max-open-orders N] ...
    oms operator status ACCOUNT

Each is one request to `oms serve`'s API (the address of the configuration's `[api]` table, or `--url`), made with
the API key in `--key` or the environment variable OMS_API_KEY (a key of the risk or admin role for the changes).
The OMS records every change with the key that made it, as it does for the same request from anywhere else. The
answer is printed as one JSON line (exit 0); a refusal is one line on stderr with the HTTP status and the API's
error code and message (exit 1), and so is an OMS that does not answer.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote

from oms.apps.paths import default_config
from oms.core.model.instruments import ConfigError

__all__ = ["add_operator_command", "api_url"]

KEY_ENV = "OMS_API_KEY"
TIMEOUT_S = 30.0
_STATES = {"halt": "halted", "reduce": "reducing", "resume": "active"}
_LIMITS = {  # what `limits` may change: name -> (type, what its value is)
    "max_order_notional": (str, "money"), "credit_limit": (str, "money"), "max_gross_notional": (str, "money"),
    "max_net_notional": (str, "money"), "max_open_orders": (int, "orders"), "orders_per_window": (int, "orders"),
    "window_ms": (int, "ms"),
}


def api_url(config: Path) -> str:
    """The base URL of the API `oms serve --config config` listens on (a wildcard host is reached on loopback)."""
    from oms.apps.serve import load_config

    api = load_config(config).config.api
    host = "127.0.0.1" if api.host in ("0.0.0.0", "::", "") else api.host
    return f"http://{f'[{host}]' if ':' in host else host}:{api.port}"


def _request(url: str, key: str, method: str, path: str, body: object | None = None) -> tuple[int, dict]:
    data = None if body is None else json.dumps(body).encode()
    headers = {"X-API-Key": key, **({"Content-Type": "application/json"} if data is not None else {})}
    req = urllib.request.Request(url + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT_S) as answer:
            return answer.status, json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        try:
            return exc.code, json.loads(raw)
        except ValueError:
            return exc.code, {"code": "http_error", "message": raw.decode(errors="replace")[:200]}


def run_operator(args: argparse.Namespace) -> int:
    """One operator command as one request to the running OMS (see the module doc); the exit code."""
    key = args.key or os.environ.get(KEY_ENV)
    if not key:
        print(f"oms operator: no API key: give --key or set {KEY_ENV}", file=sys.stderr)
        return 1
    try:
        url = (args.url or api_url(Path(args.config))).rstrip("/")
    except (ConfigError, OSError) as exc:
        print(f"oms operator: {exc}", file=sys.stderr)
        return 1
    everyone = getattr(args, "all", False)
    base = "" if everyone else f"/v1/accounts/{quote(args.account, safe='')}"  # the account's resources
    match args.action:
        case "kill-switch":
            path = "/v1/kill-switch" if everyone else f"{base}/kill-switch"
            method, body = "POST", {"on": args.setting == "on"}
        case "status":
            method, path, body = "GET", f"{base}/risk", None
        case "limits":
            body = {name: value for name in _LIMITS if (value := getattr(args, name)) is not None}
            method, path = "PATCH", f"{base}/limits"
        case action:
            method, path, body = "POST", f"{base}/trading-state", {"state": _STATES[action]}
    try:
        status, answer = _request(url, key, method, path, body)
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        print(f"oms operator: no OMS answers at {url} ({reason}): is `oms serve` running?", file=sys.stderr)
        return 1
    if status >= 400:
        code, message = (answer.get("code"), answer.get("message")) if isinstance(answer, dict) else (None, answer)
        print(f"oms operator: {status} {code}: {message}", file=sys.stderr)
        return 1
    print(json.dumps(answer))
    return 0


def add_operator_command(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register `oms operator`."""
    operator = commands.add_parser(
        "operator",
        help="kill switch, halt, reduce-only, resume or read an account of a running OMS (over its REST API)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = operator.add_subparsers(dest="action", metavar="ACTION", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", default=str(default_config()), help="where [api] says the OMS listens")
        p.add_argument("--url", help="the API's base URL instead (e.g. http://127.0.0.1:8080)")
        p.add_argument("--key", help=f"the API key (default: ${KEY_ENV})")
        p.set_defaults(func=run_operator)

    kill = actions.add_parser("kill-switch", help="engage (cancels working orders) or release an account's kill switch")
    kill.add_argument("setting", choices=["on", "off"])
    target = kill.add_mutually_exclusive_group(required=True)
    target.add_argument("account", nargs="?", metavar="ACCOUNT")
    target.add_argument("--all", action="store_true", help="every account")
    common(kill)
    for action, text in (("halt", "no new order for ACCOUNT (working orders stay)"),
                         ("reduce", "only orders that reduce a position"), ("resume", "trade again"),
                         ("status", "the account's risk state and limits")):  # fmt: skip
        p = actions.add_parser(action, help=text)
        p.add_argument("account", metavar="ACCOUNT")
        common(p)
    limits = actions.add_parser("limits", help="change some of ACCOUNT's limits (the rest stay); prints its risk state")
    limits.add_argument("account", metavar="ACCOUNT")
    for name, (kind, metavar) in _LIMITS.items():
        limits.add_argument(f"--{name.replace('_', '-')}", dest=name, type=kind, metavar=metavar.upper())
    common(limits)
