"""The litestar application: routes under /v1, authentication before every route, JSON errors everywhere.

Handlers run on the server's event loop and drive the engine synchronously under its lock (`Sequencer.run`):
one step is microseconds with in-process accounts, so handing it to a thread pool would cost more than it saves.

A query parameter a route does not take is refused (400 unknown_parameter, naming it) on every route, before the
handler runs, and so is a repeated one: a misspelt filter must not widen the answer the client acts on.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

import msgspec
from litestar import Litestar, MediaType, Request, Response, Router, WebSocket, delete, get, patch, post, websocket
from litestar.datastructures import ResponseHeader
from litestar.exceptions import HTTPException, SerializationException, ValidationException, WebSocketDisconnect
from litestar.handlers import BaseRouteHandler, HTTPRouteHandler
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.plugins import JsonRenderPlugin, YamlRenderPlugin
from litestar.openapi.spec import Components, Reference, SecurityRequirement, SecurityScheme, Tag
from litestar.params import FromPath, HeaderParameter, JSONBody, ParameterKwarg, ParamType, QueryParameter
from litestar.response import Redirect
from litestar.static_files import create_static_files_router
from litestar.status_codes import HTTP_200_OK

from oms.adapters.api.accounts import AccountView
from oms.adapters.api.algos import KINDS, AlgoDesk
from oms.adapters.api.desk import OrderDesk
from oms.adapters.api.errors import ApiError, ErrorBody
from oms.adapters.api.keys import ApiKey, Permission
from oms.adapters.api.metrics import CONTENT_TYPE, ApiMetrics
from oms.adapters.api.schemas import (
    CLIENT_ORDER_ID_PATTERN,
    AccountsOut,
    AccountSummary,
    DirectionText,
    ExecutionOut,
    Health,
    KillSwitchOut,
    KillSwitchRequest,
    KindText,
    LimitsChange,
    OrderOut,
    OrderRequest,
    ParentOut,
    ParentRequest,
    ParentStatusText,
    Readiness,
    ReplaceRequest,
    RiskOut,
    StatusFilterText,
    StreamTicketOut,
    TradingStateOut,
    TradingStateRequest,
    VwapRequest,
)
from oms.adapters.api.security import (
    TICKET_TTL_S,
    Authenticator,
    IdempotencyStore,
    MemoryIdempotency,
    RateLimiter,
    StreamTickets,
    first_claim,
    idempotent_id,
)
from oms.core.model.enums import TradingState

__all__ = ["ApiState", "build_app"]

log = logging.getLogger("oms.adapters.api")
_PAGES = ("/schema", "/docs", "/desk")  # the API document and the pages: no key (the desk page asks for one itself)
_PUBLIC = ("/healthz", "/readyz", "/metrics", *_PAGES)
STATIC = Path(__file__).parent / "static"  # the desk page's and the API docs page's files, shipped in the package
_PAGE_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
_FRAMING = "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# the desk page runs only its own script and talks only to this server
_DESK_HEADERS = {
    **_PAGE_HEADERS,
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    f"connect-src 'self' ws: wss:; {_FRAMING}",
}
# the API docs page (Redoc, shipped in the package): its inline styles, web worker and schema compiler, nothing else;
# its one link out (Redocly's logo) is blocked, so the page loads nothing from the network
_DOCS_HEADERS = {
    **_PAGE_HEADERS,
    "Content-Security-Policy": "default-src 'none'; script-src 'self' 'unsafe-eval'; style-src 'self' "
    "'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; "
    f"connect-src 'self'; {_FRAMING}",
}
MAX_BODY_BYTES = 64 * 1024  # a request body past this is refused 413 before it is parsed
MAX_JSON_DEPTH = 16  # objects and arrays nested deeper are refused 400 before they are parsed
_JSON_STRINGS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_JSON_BRACKETS = re.compile(rb"[\[\]{}]")
_FAILURES = itertools.count(1)  # the references of failures logged server-side


def json_too_deep(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when `body` (JSON text, well-formed or not) nests objects and arrays more than `limit` deep; brackets
    inside strings do not count."""
    depth = 0
    for m in _JSON_BRACKETS.finditer(_JSON_STRINGS.sub(b"", body)):
        if m.group() in (b"[", b"{"):
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def strict(body: bytes, kind: Any) -> Any:
    """`body` decoded as `kind` with no coercion (a boolean must be true or false, not 0 or "false"); the request
    framework's own decoding, which coerces, has already accepted it. Raises ApiError 400 otherwise."""
    try:
        return msgspec.json.decode(body, type=kind)
    except msgspec.ValidationError as exc:
        raise ApiError(400, "invalid_request", str(exc)[:500]) from None
_STREAM_QUEUE_MAX = 10_000  # events queued for one WebSocket before it is closed as too slow
_STREAM_PARAMS = frozenset({"ticket", "since_seq", "stream_id"})


def _since_seq(text: str | None) -> int | None:
    """The stream's `since_seq` query parameter: None when absent; a 400 ApiError when not a whole number >= 0."""
    if text is None:
        return None
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        raise ApiError(400, "invalid_request", f"since_seq must be a whole number >= 0, not {text[:32]!r}")
    return int(text)
_ERROR_TEXT = {
    400: "bad input: malformed JSON, unknown field, unknown or repeated query parameter (unknown_parameter), bad "
    "page_token, unknown symbol or account, bad number, off tick or lot, unknown parent kind or profile, bad window, "
    "rate, clips or bracket prices",
    401: "no or bad credentials: unknown key, stale timestamp, replayed nonce, bad signature",
    403: "the key's role or accounts do not allow this",
    404: "no such order, parent or account (or not visible to this key)",
    409: "duplicate client_order_id or parent_id, reused Idempotency-Key, or a cancel/replace the order (or a cancel "
    "the parent) cannot take",
    429: "the key is over its rate limit",
    503: "not taken, send it again later: the OMS is starting (not_ready) or stopping (shutting_down), its journal "
    "does not answer (journal_unavailable), it is past capacity (system_busy), or (algos) the algo engine does not run "
    "on this server",
    504: "taken, but the journal did not confirm it in time (not_confirmed): its outcome shows once it does",
}


def _errors(*codes: int) -> dict[int, ResponseSpec]:
    return {c: ResponseSpec(data_container=ErrorBody, description=_ERROR_TEXT[c]) for c in codes}


_AUTH = (400, 401, 403, 429)
NEXT_PAGE_HEADER = "X-Next-Page-Token"


def query_names(handler: BaseRouteHandler) -> frozenset[str]:
    """The query parameters `handler` declares (their wire names): every other one is refused."""
    paths = {m for path in handler.paths for m in re.findall(r"{(\w+)(?::\w+)?}", path)}
    names = set()
    for name, field in handler.parsed_fn_signature.parameters.items():
        kwarg = field.kwarg_definition
        if isinstance(kwarg, ParameterKwarg) and kwarg.param_type in (ParamType.QUERY, None) and name not in paths:
            names.add(kwarg.name or name)
    return frozenset(names)


def unknown_query(query: Iterable[tuple[str, str]], allowed: frozenset[str]) -> ApiError | None:
    """The 400 for the first query parameter not in `allowed`, or given twice; None when there is none."""
    seen: set[str] = set()
    for name, _ in query:
        if name not in allowed:
            takes = ", ".join(sorted(allowed)) or "none"
            message = f"unknown query parameter {name[:64]!r} (this route takes: {takes})"
            return ApiError(400, "unknown_parameter", message)
        if name in seen:
            return ApiError(400, "unknown_parameter", f"query parameter {name[:64]!r} given more than once")
        seen.add(name)
    return None


_CODES_FOR_HTTP = {
    400: "invalid_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
}


class ApiState:
    """Everything the handlers share."""

    def __init__(
        self,
        desk: OrderDesk,
        view: AccountView,
        auth: Authenticator,
        limiter: RateLimiter,
        idempotency: IdempotencyStore,
        metrics: ApiMetrics,
        algos: AlgoDesk | None = None,
        algo_idempotency: IdempotencyStore | None = None,
        readiness: Callable[[], dict[str, str]] | None = None,
    ) -> None:
        """`algos`: the parent-order desk (None: one without an algo engine, every algo route answers 503).
        `readiness`: what `/readyz` checks, each check's name -> "ok" or why not (blocking calls allowed; it runs off
        the event loop); None: the engine's own state only."""
        self.readiness = readiness if readiness is not None else desk.host.readiness
        self.algos = algos if algos is not None else AlgoDesk(None, desk, desk.instruments, time.time_ns)
        self.algo_idempotency = algo_idempotency if algo_idempotency is not None else MemoryIdempotency(86_400)
        self.desk = desk
        self.view = view
        self.auth = auth
        self.limiter = limiter
        self.idempotency = idempotency
        self.metrics = metrics
        self.tickets = StreamTickets()


@contextlib.contextmanager
def _released_unless_taken(store: IdempotencyStore, key_id: str, idem: str | None, first: bool) -> Iterator[None]:
    """Around the request that made an Idempotency-Key's claim: when it is refused before it ran (a 4xx, a 503), the
    claim is released, so the key may serve another request; a 504 (taken, not yet confirmed) keeps it."""
    try:
        yield
    except ApiError as exc:
        if idem is not None and first and exc.status != 504:
            store.release(key_id, idem)
        raise


def build_app(s: ApiState) -> Litestar:
    desk, view, metrics, algos = s.desk, s.view, s.metrics, s.algos

    def key_of(request: Request) -> ApiKey:
        return request.state.key

    def path_of(scope: Any) -> str:
        qs = scope.get("query_string", b"")
        return scope["path"] + ("?" + qs.decode("latin-1") if qs else "")

    async def authenticate(request: Request) -> None:
        if request.method in ("POST", "PUT", "PATCH") and json_too_deep(await request.body()):
            raise ApiError(400, "too_deep", f"the JSON body nests more than {MAX_JSON_DEPTH} levels")
        path = request.url.path
        if path != "/" and not path.startswith(_PUBLIC):
            headers = request.headers
            body = await request.body() if s.auth.needs_body(headers) else b""
            key = s.auth.authenticate(request.method, path_of(request.scope), headers, body)
            s.limiter.check(key)
            request.state.key = key
        allowed = queries.get(request.route_handler)
        if allowed is not None and (bad := unknown_query(request.query_params.multi_items(), allowed)) is not None:
            raise bad

    # -- ORDERS --

    @post(
        "/v1/orders",
        status_code=201,
        responses=_errors(*_AUTH, 409, 503, 504),
        summary="Submit an order",
        description="Market, limit, stop or stop-limit; day/gtc/ioc/fok/gtd; iceberg with display_qty. A risk "
        "reject is answered 201 with the order in status `rejected` and its reject_code/reject_reason. "
        "A retry with the same Idempotency-Key returns the same order (header Idempotent-Replayed: true).",
    )
    async def submit_order(
        request: Request,
        data: JSONBody[OrderRequest],
        idempotency_key: Annotated[str | None, HeaderParameter(name="Idempotency-Key", max_length=128)] = None,
    ) -> Response[OrderOut]:
        t0 = time.perf_counter()
        key = key_of(request)
        metrics.orders_in.inc()
        try:
            if idempotency_key is None:
                out, replayed = desk.submit(key, data, time.time_ns()), False
            else:  # the client_order_id is claimed first: a retry runs with it and gets the order it made
                cl = data.client_order_id or idempotent_id(key.key_id, idempotency_key)
                cl, first = first_claim(s.idempotency, key.key_id, idempotency_key, msgspec.json.encode(data), cl)
                data = msgspec.structs.replace(data, client_order_id=cl)
                with _released_unless_taken(s.idempotency, key.key_id, idempotency_key, first):
                    out, replayed = desk.submit_order(key, data, time.time_ns(), once=not first)
        except ApiError as exc:
            metrics.rejects.labels(exc.code).inc()
            raise
        metrics.submit_latency.observe(time.perf_counter() - t0)
        return Response(out, status_code=201, headers={"Idempotent-Replayed": "true"} if replayed else None)

    @get(
        "/v1/orders",
        responses=_errors(*_AUTH, 404),
        summary="List orders: open ones by default, newest first, a page at a time",
        description="`status`: open (the default: pending_new, new, partially_filled, replaced, pending_cancel, "
        "pending_replace), closed (filled, canceled, expired, rejected, done_for_day), all, or one exact status. "
        "Ordered as the OMS took them (by creation, then order id). When more orders match, the answer carries "
        f'`{NEXT_PAGE_HEADER}` and `Link: <...>; rel="next"`: send the token back as `page_token` with the same '
        "filters. The body stays a JSON array of orders.",
        response_headers=[
            ResponseHeader(
                name=NEXT_PAGE_HEADER,
                documentation_only=True,
                description="the next page's page_token (absent on the last page)",
            ),
            ResponseHeader(
                name="Link",
                documentation_only=True,
                description='the next page\'s URL, rel="next" (absent on the last page)',
            ),
        ],
    )
    async def list_orders(
        request: Request,
        account: Annotated[str | None, QueryParameter(max_length=64)] = None,
        status: Annotated[StatusFilterText, QueryParameter()] = "open",
        symbol: Annotated[str | None, QueryParameter(max_length=64)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
        direction: Annotated[DirectionText, QueryParameter()] = "desc",
        page_token_: Annotated[str | None, QueryParameter(name="page_token", max_length=200)] = None,
    ) -> Response[list[OrderOut]]:
        orders, token = desk.list(key_of(request), account, status, symbol, limit, direction, page_token_)
        if token is None:
            return Response(orders)
        query = [(k, v) for k, v in request.query_params.multi_items() if k != "page_token"] + [("page_token", token)]
        link = f'<{request.url.path}?{urlencode(query)}>; rel="next"'
        return Response(orders, headers={NEXT_PAGE_HEADER: token, "Link": link})

    @get(
        "/v1/orders:by_client_order_id",
        responses=_errors(*_AUTH, 404),
        summary="Get an order of this key by its client_order_id",
        description="Looks only at the orders this key entered: the client_order_id they were entered with, or one a "
        "replace gave them. 404 unknown_order when none has it.",
    )
    async def get_order_by_client_id(
        request: Request,
        client_order_id: Annotated[str, QueryParameter(min_length=1, max_length=64, pattern=CLIENT_ORDER_ID_PATTERN)],
    ) -> OrderOut:
        return desk.by_client_order_id(key_of(request), client_order_id)

    @get("/v1/orders/{order_id:int}", responses=_errors(*_AUTH, 404), summary="Get an order")
    async def get_order(request: Request, order_id: FromPath[int]) -> OrderOut:
        return desk.get(key_of(request), order_id)

    @delete(
        "/v1/orders/{order_id:int}",
        status_code=HTTP_200_OK,
        responses=_errors(*_AUTH, 404, 409, 503, 504),
        summary="Cancel an order",
    )
    async def cancel_order(request: Request, order_id: FromPath[int]) -> OrderOut:
        return desk.cancel(key_of(request), order_id, time.time_ns())

    @patch(
        "/v1/orders/{order_id:int}",
        responses=_errors(*_AUTH, 404, 409, 503, 504),
        summary="Replace an order: new total qty and/or price",
    )
    async def replace_order(request: Request, order_id: FromPath[int], data: JSONBody[ReplaceRequest]) -> OrderOut:
        return desk.replace(key_of(request), order_id, data, time.time_ns())

    # -- ALGORITHMIC PARENT ORDERS --

    @post(
        "/v1/algos",
        status_code=201,
        responses=_errors(*_AUTH, 409, 503),
        summary="Submit a parent order: TWAP, VWAP, POV, iceberg or bracket (tagged by `kind`)",
        description="Checked before the algo engine sees it: bad input is a 400 with a specific code and makes no "
        "parent. The answer is the parent after its first step (children due at once already sent). Its children "
        "pass the same risk checks as any order; a refused child shows on the parent. A retry with the same "
        "Idempotency-Key returns the same parent (header Idempotent-Replayed: true).",
    )
    async def submit_parent(
        request: Request,
        data: JSONBody[ParentRequest],
        idempotency_key: Annotated[str | None, HeaderParameter(name="Idempotency-Key", max_length=128)] = None,
    ) -> Response[ParentOut]:
        key = key_of(request)
        data = strict(await request.body(), ParentRequest)
        first = True
        if idempotency_key is not None:  # the parent_id is claimed first: a retry runs with it
            pid = data.parent_id or idempotent_id(key.key_id, idempotency_key)
            pid, first = first_claim(s.algo_idempotency, key.key_id, idempotency_key, msgspec.json.encode(data), pid)
            data = msgspec.structs.replace(data, parent_id=pid)
        with _released_unless_taken(s.algo_idempotency, key.key_id, idempotency_key, first):
            if isinstance(data, VwapRequest) and data.profile == "history" and algos.profiles is not None:
                out, replayed = await asyncio.to_thread(algos.submit_parent, key, data, not first)  # ClickHouse
            else:
                out, replayed = algos.submit_parent(key, data, not first)
        return Response(out, status_code=201, headers={"Idempotent-Replayed": "true"} if replayed else None)

    @get("/v1/algos", responses=_errors(*_AUTH, 404, 503), summary="List parent orders, newest first")
    async def list_parents(
        request: Request,
        account: Annotated[str | None, QueryParameter(max_length=64)] = None,
        status: Annotated[ParentStatusText | None, QueryParameter()] = None,
        kind: Annotated[KindText | None, QueryParameter()] = None,
        symbol: Annotated[str | None, QueryParameter(max_length=64)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
    ) -> list[ParentOut]:
        return algos.list(key_of(request), account, status, kind, symbol, limit)

    @get(
        "/v1/algos/{parent_id:str}",
        responses=_errors(*_AUTH, 404, 503),
        summary="Get a parent order with its children",
    )
    async def get_parent(request: Request, parent_id: FromPath[str]) -> ParentOut:
        return algos.get(key_of(request), parent_id)

    @delete(
        "/v1/algos/{parent_id:str}",
        status_code=HTTP_200_OK,
        responses=_errors(*_AUTH, 404, 409, 503),
        summary="Cancel a parent order: its working children are canceled, nothing new is sent",
    )
    async def cancel_parent(request: Request, parent_id: FromPath[str]) -> ParentOut:
        return algos.cancel(key_of(request), parent_id)

    # -- ACCOUNTS --

    @get(
        "/v1/accounts/{account:str}/executions",
        responses=_errors(*_AUTH, 404),
        summary="Fills of an account seen since the server started, oldest first",
    )
    async def list_executions(
        request: Request,
        account: FromPath[str],
        since_exec_id: Annotated[int, QueryParameter(ge=0)] = 0,
        limit: Annotated[int, QueryParameter(ge=1, le=10_000)] = 1000,
    ) -> list[ExecutionOut]:
        return desk.executions(key_of(request), account, since_exec_id, limit)

    @get("/v1/accounts", responses=_errors(*_AUTH), summary="The accounts this key may see")
    async def list_accounts(request: Request) -> AccountsOut:
        return AccountsOut(desk.visible_accounts(key_of(request)))

    @get("/v1/accounts/{account:str}/positions", responses=_errors(*_AUTH, 404), summary="Positions and P&L")
    async def get_positions(request: Request, account: FromPath[str]) -> AccountSummary:
        desk.check_account(key_of(request), account, Permission.READ_POSITIONS)
        return view.summary(account)

    @get("/v1/accounts/{account:str}/risk", responses=_errors(*_AUTH, 404), summary="Risk state and limits")
    async def get_risk(request: Request, account: FromPath[str]) -> RiskOut:
        desk.check_account(key_of(request), account, Permission.READ_RISK)
        return view.risk(account)

    @post(
        "/v1/accounts/{account:str}/kill-switch",
        status_code=HTTP_200_OK,
        responses=_errors(*_AUTH, 404),
        summary="Engage (cancels working orders, blocks new ones) or release an account's kill switch",
    )
    async def set_account_kill_switch(
        request: Request, account: FromPath[str], data: JSONBody[KillSwitchRequest]
    ) -> KillSwitchOut:
        data = strict(await request.body(), KillSwitchRequest)
        return desk.kill_switch(key_of(request), account, data.on, time.time_ns())

    @post(
        "/v1/accounts/{account:str}/trading-state",
        status_code=HTTP_200_OK,
        responses=_errors(*_AUTH, 404),
        summary="Halt an account (no new order), make it reduce-only, or resume it",
        description="`halted`: every new order is rejected (`halted`); `reducing`: only orders that reduce a position "
        "are taken; `active`: resume. Working orders stay (the kill switch is what cancels them). Recorded as an "
        "operator action with the acting key.",
    )
    async def set_account_trading_state(
        request: Request, account: FromPath[str], data: JSONBody[TradingStateRequest]
    ) -> TradingStateOut:
        data = strict(await request.body(), TradingStateRequest)
        return desk.trading_state(key_of(request), account, TradingState(data.state), time.time_ns())

    @patch(
        "/v1/accounts/{account:str}/limits",
        responses=_errors(*_AUTH, 404),
        summary="Change some of an account's limits",
        description="The limits given replace the account's (money as decimal strings, counts as integers); the "
        "others stay. New orders are judged by them from the next one on; working orders stay. Answers the "
        "account's risk state with its limits now. Recorded as an operator action with the acting key.",
    )
    async def set_account_limits(request: Request, account: FromPath[str], data: JSONBody[LimitsChange]) -> RiskOut:
        data = strict(await request.body(), LimitsChange)
        await asyncio.to_thread(desk.set_limits, key_of(request), account, data, view.limits, time.time_ns())
        return await asyncio.to_thread(view.risk, account)

    @post(
        "/v1/kill-switch",
        status_code=HTTP_200_OK,
        responses=_errors(*_AUTH),
        summary="Engage or release the kill switch of every account",
    )
    async def set_global_kill_switch(request: Request, data: JSONBody[KillSwitchRequest]) -> KillSwitchOut:
        data = strict(await request.body(), KillSwitchRequest)
        return desk.kill_switch(key_of(request), None, data.on, time.time_ns())

    # -- STREAM --

    @post(
        "/v1/stream-tickets",
        status_code=201,
        responses=_errors(*_AUTH),
        summary="A one-time ticket to open a WebSocket stream from a browser",
        description="A browser cannot send the API key on a WebSocket handshake: it asks for a ticket here, then "
        f"opens `/v1/accounts/{{account}}/stream?ticket=...` within {TICKET_TTL_S:g} s. The ticket is good for one "
        "handshake and stands for this key.",
    )
    async def create_stream_ticket(request: Request) -> StreamTicketOut:
        return StreamTicketOut(s.tickets.issue(key_of(request)), TICKET_TTL_S)

    @websocket("/v1/accounts/{account:str}/stream")
    async def stream(socket: WebSocket, account: FromPath[str]) -> None:
        """Every order event of `account` (any adapter's orders) and every event of its parent orders, as JSON text
        frames, each with its `seq` (1, 2, ... per account since the server started); the first frame is
        {"type": "subscribed", "account", "stream_id", "seq": the last seq so far, "resumed"}. Authenticated by the
        key's headers, or by `?ticket=` (POST /v1/stream-tickets). With `?since_seq=N&stream_id=...` (the
        subscribed frame's) the frames after N come first ("resumed": true); when they cannot ("resumed": false:
        another server run, or too old) the client reads the orders again. Refusals send one {"code", "message"}
        frame, then close 4400/4401/4403/4404/4429."""
        try:
            params = socket.query_params
            if (bad := unknown_query(params.multi_items(), _STREAM_PARAMS)) is not None:
                raise bad
            ticket, since_text, stream_id = params.get("ticket"), params.get("since_seq"), params.get("stream_id")
            if ticket is not None:
                key = s.tickets.redeem(ticket)
            else:
                key = s.auth.authenticate("GET", path_of(socket.scope), socket.headers, b"")
            s.limiter.check(key)
            desk.check_account(key, account, Permission.READ_ORDERS)
            since = _since_seq(since_text)
        except ApiError as exc:
            await socket.accept()
            await socket.send_text(msgspec.json.encode(ErrorBody(exc.code, exc.message)).decode())
            await socket.close(code=4000 + exc.status, reason=exc.code)
            return
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[bytes | None] = asyncio.Queue()

        def offer(payload: bytes | None) -> None:
            queue.put_nowait(payload if queue.qsize() < _STREAM_QUEUE_MAX else None)

        def push(payload: bytes) -> None:  # on the committer thread, once the batch is durable
            with contextlib.suppress(RuntimeError):  # the loop is closed: the server is stopping
                loop.call_soon_threadsafe(offer, payload)

        await socket.accept()
        seq, replay = desk.listen(account, push, since, stream_id)

        async def receive() -> None:
            try:
                while True:
                    await socket.receive_data(mode="text")
            except (WebSocketDisconnect, Exception):
                queue.put_nowait(None)

        receiver = asyncio.create_task(receive())
        try:
            hello = {"type": "subscribed", "account": account, "stream_id": desk.stream_id, "seq": seq,
                     "resumed": since is not None and replay is not None}  # fmt: skip
            await socket.send_text(msgspec.json.encode(hello).decode())
            for frame in replay or ():
                await socket.send_text(frame.decode())
            while (payload := await queue.get()) is not None:
                await socket.send_text(payload.decode())
        except (WebSocketDisconnect, Exception):
            pass
        finally:
            desk.unlisten(account, push)
            receiver.cancel()
        if queue.qsize() >= _STREAM_QUEUE_MAX:
            with contextlib.suppress(Exception):
                await socket.close(code=1008, reason="slow consumer")

    # -- THE DESK PAGE --

    @get("/", include_in_schema=False)
    async def home() -> Redirect:
        return Redirect("/desk/")

    desk_page = _static_pages("desk", _DESK_HEADERS)

    # -- OPERATIONS --

    @get("/healthz", summary="Liveness: the process answers (restart it when this fails)")
    async def liveness() -> Health:
        return Health("ok", len(desk.host.engine.orders))

    @get(
        "/readyz",
        summary="Readiness: orders are taken now (reconciled, journal, account actors, sink, venues); 503 when not",
        responses={503: ResponseSpec(data_container=Readiness, description="not ready: the failing checks say why")},
    )
    async def readiness() -> Response[Readiness]:
        checks = await asyncio.to_thread(s.readiness)
        ready = all(v == "ok" or v.startswith("ok ") for v in checks.values())
        return Response(Readiness("ready" if ready else "not_ready", checks), status_code=200 if ready else 503)

    @get("/metrics", media_type=CONTENT_TYPE, summary="Prometheus metrics", include_in_schema=True)
    async def get_metrics() -> Response[bytes]:
        # collectors read Ray, Redis and QuickFIX (bounded per source): off the loop that takes orders
        return Response(await asyncio.to_thread(metrics.render), media_type=CONTENT_TYPE)

    # -- ERRORS --

    def error(
        request: Request, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> Response:
        metrics.errors.labels(str(status), code).inc()
        return Response(ErrorBody(code, message), status_code=status, headers=headers, media_type=MediaType.JSON)

    def on_api_error(request: Request, exc: ApiError) -> Response:
        return error(request, exc.status, exc.code, exc.message, exc.headers)

    def on_validation(request: Request, exc: ValidationException) -> Response:
        detail = str(exc.detail)
        extra = exc.extra
        if isinstance(extra, list) and extra:
            first = extra[0] if isinstance(extra[0], dict) else {}
            if first.get("key") == "data" and first.get("message") == "'data'":
                return error(request, 400, "bad_json", "the request body is missing: a JSON object is required")
            if request.url.path == "/v1/algos" and request.method == "POST" and _names_kind(first):
                return error(request, 400, "unknown_kind", f"`kind` must be one of {KINDS}: {first.get('message')}")
            detail = f"{first.get('message', detail)}" + (f" (at {first['key']})" if first.get("key") else "")
        return error(request, 400, "invalid_request", detail[:500])

    def on_http(request: Request, exc: HTTPException) -> Response:
        status = exc.status_code if 400 <= exc.status_code < 500 else 400
        detail = str(exc.detail)
        code = _CODES_FOR_HTTP.get(status, "invalid_request")
        if status == 400 and isinstance(exc.__cause__, SerializationException):
            code, detail = "bad_json", f"body is not valid JSON: {detail.removeprefix('SerializationException - ')}"
        return error(request, status, code, detail[:500], getattr(exc, "headers", None))

    def on_crash(request: Request, exc: Exception) -> Response:
        """The whole story goes to the log under a reference; the body says only the kind of failure and the
        reference, never the exception's text (paths, hosts, another component's traceback)."""
        ref = f"E{next(_FAILURES)}"
        log.error("unhandled error on %s %s [%s]", request.method, request.url.path, ref, exc_info=exc)
        return error(request, 500, "internal_error", f"internal error ({type(exc).__name__}): logged as {ref}")

    openapi = OpenAPIConfig(
        title="OMS REST API",
        version="1.0.0",
        description=_API_DESCRIPTION,
        components=Components(security_schemes=_SECURITY_SCHEMES),
        tags=[Tag(name=name, description=text) for name, text in _TAG_TEXT.items()],
        operation_id_creator=lambda handler, *_: _camel(handler.handler_name),
        path="/schema",
        render_plugins=[JsonRenderPlugin(), YamlRenderPlugin()],  # litestar's pages load from CDNs: /docs/ instead
    )
    api_docs = _static_pages("docs", _DOCS_HEADERS)
    handlers = [
        submit_order,
        list_orders,
        get_order_by_client_id,
        get_order,
        cancel_order,
        replace_order,
        list_executions,
        get_positions,
        get_risk,
        list_accounts,
        set_account_kill_switch,
        set_account_trading_state,
        set_account_limits,
        create_stream_ticket,
        set_global_kill_switch,
        submit_parent,
        list_parents,
        get_parent,
        cancel_parent,
        stream,
        home,
        desk_page,
        api_docs,
        liveness,
        readiness,
        get_metrics,
    ]
    for handler in handlers:
        _document(handler)
    queries: dict[Any, frozenset[str]] = {}  # each handler -> the query parameters it takes
    app = Litestar(
        route_handlers=handlers,
        before_request=authenticate,
        exception_handlers={
            ApiError: on_api_error,
            ValidationException: on_validation,
            HTTPException: on_http,
            Exception: on_crash,
        },
        openapi_config=openapi,
        request_max_body_size=MAX_BODY_BYTES,
        debug=False,
        logging_config=None,
    )
    for route in app.routes:
        if not route.path.startswith(_PAGES):  # pages (the desk page reads its own query)
            for handler in getattr(route, "route_handlers", ()):
                queries[handler] = query_names(handler)
    return app


_API_DESCRIPTION = """Orders, cancels, replaces, algorithmic parent orders, executions, positions, risk state, kill
switches and trading states of the OMS. Prices and quantities are decimal strings; times RFC 3339 with nanoseconds.
Errors are `{"code", "message"}`. The whole contract, with examples: docs/api.md.

**Authentication**: `X-API-Key`, or an HMAC-signed request (`X-API-Key-Id`, `X-API-Timestamp`, `X-API-Nonce`,
`X-API-Signature`: lower-case hex HMAC-SHA256 of `METHOD\\nPATH\\nTIMESTAMP\\nNONCE\\n` + body, keyed by the key's
secret); the server may require signing. Liveness, readiness and metrics need no key.

**Stream** (WebSocket, which OpenAPI does not describe): `GET /v1/accounts/{account}/stream`, with the key's headers
or `?ticket=` from `POST /v1/stream-tickets` (browsers), and `?since_seq=&stream_id=` to resume. JSON text frames:
first `{"type": "subscribed", "account", "stream_id", "seq", "resumed"}`, then every order event and parent event of
the account, each with its `seq`. A refusal is one `{"code", "message"}` frame and close code 4000 + HTTP status."""

_TAG_TEXT = {
    "Orders": "Enter, list, read, replace and cancel orders (any channel's: FIX orders too)",
    "Parent orders (algos)": "TWAP, VWAP, POV, iceberg and bracket parents and their children",
    "Accounts": "Positions, P&L, executions and risk state of the accounts a key may see",
    "Risk actions": "Kill switches and trading states (halt, reduce-only, resume): risk and admin keys",
    "Stream": "Tickets that open the account stream from a browser (the stream itself: see the description)",
    "Operations": "Liveness, readiness and Prometheus metrics; no key",
}
_TAGS = (
    (re.compile(r"/v1/orders"), "Orders"),
    (re.compile(r"/v1/algos"), "Parent orders (algos)"),
    (re.compile(r"/v1/kill-switch|/v1/accounts/[^/]+/(kill-switch|trading-state|limits)"), "Risk actions"),
    (re.compile(r"/v1/accounts"), "Accounts"),
    (re.compile(r"/v1/stream-tickets"), "Stream"),
    (re.compile(r"/(healthz|readyz|metrics)$"), "Operations"),
)
_SIGNED = ("X-API-Key-Id", "X-API-Timestamp", "X-API-Nonce", "X-API-Signature")
_SECURITY_SCHEMES: dict[str, SecurityScheme | Reference] = {
    "apiKey": SecurityScheme(type="apiKey", name="X-API-Key", security_scheme_in="header",
                             description="The key's secret as it is (unless the server requires signing)"),
    **{
        f"hmac{name.removeprefix('X-API-').replace('-', '')}": SecurityScheme(
            type="apiKey", name=name, security_scheme_in="header",
            description="A signed request carries all four headers (see the API description)",
        )
        for name in _SIGNED
    },
}  # fmt: skip
# either the key, or all four signing headers together
_SECURITY: list[SecurityRequirement] = [
    {"apiKey": []},
    {f"hmac{name.removeprefix('X-API-').replace('-', '')}": [] for name in _SIGNED},
]


def _static_pages(name: str, headers: dict[str, str]) -> Router:
    """The package's pages under /<name>/ (the files of STATIC/<name>, index.html for the folder), each answer with
    `headers`."""

    def with_headers(response: Response) -> Response:
        response.headers.update(headers)
        return response

    return create_static_files_router(
        f"/{name}", directories=[STATIC / name], html_mode=True, name=name, after_request=with_headers,
        include_in_schema=False,
    )


def _camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(word.capitalize() for word in rest)


def _document(handler: Any) -> None:
    """Give a route handler its tag in the API document, and its security unless it is public (a router of static
    pages and the WebSocket route are left as they are)."""
    if not isinstance(handler, HTTPRouteHandler):
        return
    for path in handler.paths:
        tag = next((tag for pattern, tag in _TAGS if pattern.match(path)), None)
        if tag is not None:
            handler.tags = [tag]
        if path.startswith("/v1"):
            handler.security = _SECURITY


def _names_kind(first: dict) -> bool:
    """True when a body validation error is about the parent's `kind` (missing, or not a known one)."""
    message = str(first.get("message", ""))
    return first.get("key") == "kind" or "required field `kind`" in message
