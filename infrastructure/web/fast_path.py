"""A raw ASGI path for the few endpoints every event goes through.

Opening a stream and publishing an event are what a busy deployment does all day,
and the profile of the benchmark showed FastAPI's request machinery (routing,
dependency solving, the middleware wrappers every ``send`` passes through) costing
about as much as the work itself. So these endpoints are served here first, by
handlers that call the *same* functions the documented FastAPI routes call (the
token checks, the scope checks, the use cases).

The rule that keeps the two paths from ever disagreeing: the fast path only
*accepts*. Whatever it does not like -- a name that does not match, a bad or
missing token, a 404, a full slot table, a body over the limit, an ``Origin``
header when CORS is on, any exception before the response starts -- it hands the
request, untouched (the body it read is replayed), to the FastAPI app, whose
route answers with its documented 4xx. The FastAPI routes stay the contract (the
OpenAPI document, the errors); this is a shortcut for the requests that succeed.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import orjson
from fastapi import FastAPI
from starlette.datastructures import State
from starlette.middleware import Middleware
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from infrastructure.auth.dependencies import (
    AGENT_COOKIE_NAME,
    CUSTOMER_COOKIE_NAME,
    TOKEN_QUERY_PARAM,
    bearer_token,
    stream_principal,
    verify_principal,
)
from infrastructure.auth.limits import StreamSlots, stream_slots_of
from infrastructure.auth.tokens import Principal
from infrastructure.bus.api import SseBus
from infrastructure.config import Settings
from infrastructure.desk.monitor import DeskMonitor
from infrastructure.sessions import SessionStore
from infrastructure.web.direct_write import one_write

logger = logging.getLogger(__name__)

#: Where a client says what it last saw: the header (EventSource sets it on reconnect),
#: else this query parameter (for clients that cannot set headers on the first request).
LAST_EVENT_ID_HEADER = "last-event-id"
LAST_EVENT_ID_QUERY = "last_event_id"

#: What a path parameter may be on the fast path: a name (``NAME_PATTERN``). Anything
#: else goes to the FastAPI route, which answers 422.
_PARAM = "[A-Za-z0-9_-]{1,64}"


class NotFast(Exception):
    """Raised by a fast handler: let the FastAPI route answer this request."""


class FastRequest:
    """What a fast handler reads of a request: small, lazy, no framework objects."""

    __slots__ = ("_body", "_headers", "_query", "_values", "app", "params", "receive", "scope")

    def __init__(
        self, app: ServiceApp, scope: Scope, receive: Receive, params: dict[str, str]
    ) -> None:
        self.app = app
        self._values = app.values
        self.scope = scope
        self.receive = receive
        self.params = params
        self._headers: dict[bytes, bytes] | None = None
        self._query: dict[str, str] | None = None
        self._body: bytes | None = None

    # --- what the app holds (``app.state``, read from its dict: see ServiceApp.values) ---

    @property
    def settings(self) -> Settings:
        settings: Settings = self._values["settings"]
        return settings

    @property
    def bus(self) -> SseBus:
        bus: SseBus = self._values["bus"]
        return bus

    @property
    def store(self) -> SessionStore:
        store: SessionStore = self._values["store"]
        return store

    @property
    def presence(self) -> DeskMonitor | None:
        presence: DeskMonitor | None = self._values.get("presence")
        return presence

    @property
    def slots(self) -> StreamSlots:
        return stream_slots_of(self.app.state, self.settings)

    # --- what the client sent ---

    def header(self, name: bytes) -> str | None:
        """The first value of a header (``name`` in lower case, as ASGI gives them)."""
        if self._headers is None:
            # One pass for all the lookups of a request (a publish makes three);
            # reversed, so that the first of repeated headers wins, as in Starlette.
            self._headers = dict(reversed(self.scope["headers"]))
        value = self._headers.get(name)
        return None if value is None else str(value.decode("latin-1"))

    def query(self, name: str) -> str | None:
        if self._query is None:
            # The last value wins, as in Starlette's QueryParams.get.
            self._query = dict(query_pairs(self.scope["query_string"].decode("latin-1")))
        return self._query.get(name)

    @property
    def last_event_id(self) -> str | None:
        return self.header(LAST_EVENT_ID_HEADER.encode()) or self.query(LAST_EVENT_ID_QUERY)

    def principal(self) -> Principal:
        """The caller, from ``Authorization: Bearer`` (as ``CurrentPrincipal``)."""
        token = bearer_token(self.header(b"authorization"))
        if token is None:
            raise NotFast
        return verify_principal(self.settings, token)

    def stream_principal(self) -> Principal:
        """The caller of a stream: Bearer, ``?token=``, cookie (as ``StreamPrincipal``)."""
        authorization = self.header(b"authorization")
        bearer = bearer_token(authorization)
        if authorization is not None and bearer is None:
            raise NotFast  # some other scheme: FastAPI's reading of it decides
        cookie = self.header(b"cookie")
        cookies = cookie_parser(cookie) if cookie else {}
        return stream_principal(
            self.settings,
            bearer,
            self.query(TOKEN_QUERY_PARAM),
            (cookies.get(AGENT_COOKIE_NAME), cookies.get(CUSTOMER_COOKIE_NAME)),
        )

    async def body(self) -> bytes:
        """The whole body, at most ``MAX_BODY_BYTES`` (announced by Content-Length:
        anything else, chunked bodies included, takes the FastAPI path)."""
        if self._body is None:
            length = self.header(b"content-length")
            if length is None or not length.isdigit() or int(length) > self.settings.MAX_BODY_BYTES:
                raise NotFast
            chunks: list[bytes] = []
            more = True
            while more:
                message = await self.receive()
                if message["type"] != "http.request":
                    raise NotFast  # the client left: the FastAPI path notices it too
                chunks.append(message.get("body", b""))
                more = message.get("more_body", False)
            self._body = b"".join(chunks)
        return self._body


#: A fast handler: returns the response to send (an ASGI app), or raises.
FastHandler = Callable[[FastRequest], Awaitable[ASGIApp]]


@dataclass(frozen=True)
class FastRoute:
    """``method`` + ``path`` (``{name}`` parameters) served by ``handler`` first."""

    method: str
    path: str
    handler: FastHandler
    _regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z/_{}]+", self.path):
            raise ValueError(f"fast route paths are plain: {self.path!r}")
        pattern = re.sub(r"\{([a-z_]+)\}", lambda m: f"(?P<{m[1]}>{_PARAM})", self.path)
        object.__setattr__(self, "_regex", re.compile(pattern))

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if method != self.method:
            return None
        found = self._regex.fullmatch(path)
        return found.groupdict() if found is not None else None


class ServiceApp(FastAPI):
    """The FastAPI app, with :class:`FastRoute` handlers served by an explicit layer of
    its middleware stack (:class:`FastPathMiddleware`).

    A request goes, outermost first, through: middleware added after :meth:`seal` (the
    app factory seals once its own middleware is in; they see every request, the fast
    path's too), the fast path, then FastAPI (its telemetry, then its stack: error
    handling, the factory's middleware (CORS, the body limit), the routes). The fast
    path sits outside FastAPI because FastAPI's stack wraps ``send`` (its error
    middleware), which would hide uvicorn's connection from ``direct_write`` and
    ``one_write``, and because its per-request telemetry check costs as much as a tenth
    of a publish (bench/README.md); a middleware added later that wraps ``send`` turns
    the direct writes off for what it wraps, and nothing else changes (they are
    feature-detected).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: What ``app.state`` holds, as the dict it keeps it in: the fast path reads it
        #: with a dict lookup (``state.x`` goes through ``State.__getattr__``, reached
        #: only after the normal lookup has made and dropped an AttributeError).
        self.values: dict[str, Any] = {}
        self.state = State(self.values)
        self.fast_routes: Sequence[FastRoute] = ()
        #: Requests the fast path served, and those it handed to FastAPI (/metrics).
        self.fast_outcomes: dict[str, int] = {"served": 0, "declined": 0}
        #: Middleware added after :meth:`seal`: around the fast path.
        self._outer: list[Middleware] = []
        self._sealed = False
        self._entry: ASGIApp | None = None

    def seal(self) -> None:
        """From now on, :meth:`add_middleware` wraps the fast path too."""
        self._sealed = True

    def add_middleware(self, middleware_class: Any, *args: Any, **kwargs: Any) -> None:
        if not self._sealed:
            super().add_middleware(middleware_class, *args, **kwargs)
            return
        if self._entry is not None:
            raise RuntimeError("Cannot add middleware after an application has started")
        self._outer.insert(0, Middleware(middleware_class, *args, **kwargs))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        entry = self._entry
        if entry is None:
            entry = self._entry = self._build_entry()
        await entry(scope, receive, send)

    def _build_entry(self) -> ASGIApp:
        """The outer middleware, then the fast path, then FastAPI (its ``__call__``:
        telemetry, then its own stack), built once."""
        fastapi_app: ASGIApp = super().__call__
        app: ASGIApp = FastPathMiddleware(fastapi_app, self)
        for cls, args, kwargs in reversed(self._outer):
            app = cls(app, *args, **kwargs)
        return app

    async def try_fast(self, scope: Scope, receive: Receive, send: Send) -> tuple[bool, Receive]:
        """Serve the request on the fast path if a fast route takes it: (True, ...);
        else (False, the ``receive`` FastAPI reads the request with)."""
        if scope.get("root_path") or (
            self.values["settings"].CORS_ORIGINS and _has_header(scope, b"origin")
        ):
            return False, receive  # the middleware (CORS) must see these
        for route in self.fast_routes:
            params = route.match(scope["method"], scope["path"])
            if params is None:
                continue
            request = FastRequest(self, scope, receive, params)
            try:
                response = await route.handler(request)
            except Exception as exc:
                if not isinstance(exc, NotFast) and logger.isEnabledFor(logging.DEBUG):
                    logger.debug(
                        "fast path declined %s %s: %r", scope["method"], scope["path"], exc
                    )
                self.fast_outcomes["declined"] += 1
                return False, _replaying(request._body, receive)
            self.fast_outcomes["served"] += 1
            await response(scope, receive, send)
            return True, receive
        return False, receive


class FastPathMiddleware:
    """The fast path as a layer of the stack: a request a :class:`FastRoute` takes is
    served here; anything else goes on, untouched (its body replayed), to FastAPI."""

    def __init__(self, app: ASGIApp, service: ServiceApp) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.service.fast_routes:
            served, receive = await self.service.try_fast(scope, receive, send)
            if served:
                return
        await self.app(scope, receive, send)


def _has_header(scope: Scope, name: bytes) -> bool:
    return any(key == name for key, _ in scope["headers"])


def _replaying(body: bytes | None, receive: Receive) -> Receive:
    """``receive``, giving back first the body the fast path already read."""
    if body is None:
        return receive
    pending: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]

    async def replay() -> Message:
        if pending:
            return pending.pop()
        return await receive()

    return replay


def query_pairs(query: str) -> list[tuple[str, str]]:
    """``parse_qsl(query, keep_blank_values=True)``, cheaper when there is nothing to
    decode (no ``%`` escape, no ``+``): split on ``&`` and the first ``=``. urllib's
    general path cost a publish measurably for ``?type=...`` (bench/README.md)."""
    if "%" in query or "+" in query:
        return parse_qsl(query, keep_blank_values=True)
    pairs = []
    for part in query.split("&"):
        if part:
            key, _, value = part.partition("=")
            pairs.append((key, value))
    return pairs


def as_json(status: int, content: Any) -> ASGIApp:
    """A small JSON response (what FastAPI would render for ``content``: the same
    status, body and headers), its head and body written to the socket at once.

    Two ASGI messages rather than a Starlette ``Response``: its header assembly and
    its ``__call__`` cost a publish measurably more (bench/README.md)."""
    body = orjson.dumps(content)
    start: Message = {
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-length", str(len(body)).encode()),
            (b"content-type", b"application/json"),
        ],
    }

    async def send_whole(scope: Scope, receive: Receive, send: Send) -> None:
        with one_write(send):
            await send(start)
            await send({"type": "http.response.body", "body": body})

    return send_whole
