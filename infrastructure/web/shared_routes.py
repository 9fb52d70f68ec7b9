"""Routes both services serve: health, readiness, metrics, the publish API, the transcript,
a session's event stream."""

from __future__ import annotations

import re
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Body, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp

from infrastructure.auth.dependencies import (
    ServiceCaller,
    SessionAccess,
    SessionNamePath,
    SessionStreamAccess,
    SettingsDep,
    require_role,
)
from infrastructure.auth.limits import JSONTooDeep, StreamSlotsDep, check_json_depth
from infrastructure.auth.rate_limit import TypingRateLimiter, enforce_rate_limit
from infrastructure.auth.tokens import AGENT_ROLE, CUSTOMER_ROLE, SERVICE_ROLE, Principal
from infrastructure.config import Settings
from infrastructure.events import AGENT_KIND, NAME_PATTERN, SESSION_KIND, Target
from infrastructure.metrics import render
from infrastructure.sessions.receipts import read_receipt
from infrastructure.sessions.typing import signal_typing
from infrastructure.web.deps import Bus, Desk, LastEventId, Presence, SessionStore
from infrastructure.web.errors import unprocessable
from infrastructure.web.fast_path import FastRequest, FastRoute, NotFast, as_json
from infrastructure.web.models import (
    EventAccepted,
    MessagePublic,
    QueuePlace,
    Readiness,
    ReadReceipt,
    SessionPublic,
    TypingSignal,
)
from infrastructure.web.sse_response import EventStreamResponse
from infrastructure.web.streams import STREAM_RESPONSES, fast_session_events, open_session_stream

router = APIRouter()

EVENT_TYPE_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"
_EVENT_TYPE_RE = re.compile(EVENT_TYPE_PATTERN)
DEFAULT_EVENT_TYPE = "notification"

EventTypeQuery = Annotated[
    str, Query(alias="type", pattern=EVENT_TYPE_PATTERN, description="the event's type")
]
PublishBody = Annotated[
    dict[str, Any], Body(description="the event's payload: any JSON object, published as it is")
]


@router.get("/api/limits", tags=["operations"])
async def limits(request: Request) -> dict[str, int]:
    """What the pages check before sending (so they refuse clearly, never cut a text)."""
    settings: Settings = request.app.state.settings
    return {
        "message_max_chars": settings.MESSAGE_MAX_CHARS,
        "attachment_max_bytes": settings.ATTACHMENT_MAX_BYTES,
    }


@router.get("/healthz", tags=["operations"])
async def healthz() -> dict[str, str]:
    """Alive: the process answers."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    tags=["operations"],
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "not ready"}},
)
async def readyz(request: Request, bus: Bus, store: SessionStore) -> JSONResponse:
    """Ready: Redis reachable (when it is expected), the store answers."""
    settings: Settings = request.app.state.settings
    reasons: list[str] = []
    warnings: list[str] = []
    if bus.manager is None:
        redis_state = "disabled (USE_REDIS_SSE=false: events stay in this process)"
    elif await bus.manager.health_check():
        redis_state = "ok"
    else:
        redis_state = "unreachable"
        reasons.append(
            f"Redis at REDIS_URL is unreachable ({bus.manager.last_error or 'no answer'})"
        )
    try:
        store_state = "ok" if await store.ping() else "unreachable"
    except Exception as exc:  # a readiness probe reports, it does not fail
        store_state = f"unreachable ({type(exc).__name__})"
    if store_state != "ok":
        reasons.append("session store does not answer")
    if settings.uses_development_secret:
        warnings.append("AUTH_SECRET is the built-in development secret: set your own")
    # The record (SQL) is not the live path: its troubles are warnings, never "not ready".
    record = getattr(request.app.state, "record", None)
    if record is not None:
        warnings.extend(record.warnings())
    if not bus.accepting:
        reasons.append("shutting down")
    body = Readiness(
        ready=not reasons,
        mode=bus.mode,
        redis=redis_state,
        store=store_state,
        outbox=bus.manager.outbox_size() if bus.manager else 0,
        topology=bus.manager.topology.describe() if bus.manager else None,
        warnings=warnings,
        reasons=reasons,
    )
    return JSONResponse(body.model_dump(), status_code=200 if body.ready else 503)


@router.get("/metrics", tags=["operations"], response_class=Response)
async def metrics(request: Request) -> Response:
    """Prometheus text format."""
    return Response(render(request.app.state.metrics), media_type="text/plain; version=0.0.4")


def _check_payload(settings: Settings, payload: dict[str, Any], raw: bytes | None) -> None:
    """422 for a payload nested deeper than ``MAX_JSON_DEPTH``. With the body it was
    parsed from (``raw``): each level of nesting opens with a bracket of its own, so a
    body with no more brackets than the limit cannot be too deep (brackets inside
    strings only make the count larger, never smaller). Counting them in C spares
    the walk of the parsed payload (measured: bench/README.md)."""
    limit = settings.MAX_JSON_DEPTH
    if raw is not None and raw.count(b"{") + raw.count(b"[") <= limit:
        return
    try:
        check_json_depth(payload, limit)
    except JSONTooDeep as exc:
        raise unprocessable(str(exc)) from None


@router.post(
    "/api/events/broadcast",
    tags=["events"],
    status_code=202,
    response_model=EventAccepted,
    summary="Publish an event to every agent",
)
async def publish_broadcast(
    settings: SettingsDep,
    bus: Bus,
    caller: ServiceCaller,
    payload: PublishBody,
    event_type: EventTypeQuery = DEFAULT_EVENT_TYPE,
) -> dict[str, str]:
    return await _publish(settings, bus, Target.broadcast(), event_type, payload, caller)


@router.post(
    "/api/events/{kind}/{target}",
    tags=["events"],
    status_code=202,
    response_model=EventAccepted,
    summary="Publish an event to a session or an agent",
)
async def publish_event(
    settings: SettingsDep,
    bus: Bus,
    caller: ServiceCaller,
    kind: Annotated[str, Path(pattern=r"^(session|agent)$")],
    target: Annotated[str, Path(pattern=NAME_PATTERN)],
    payload: PublishBody,
    event_type: EventTypeQuery = DEFAULT_EVENT_TYPE,
) -> dict[str, str]:
    return await _publish(settings, bus, _target(kind, target), event_type, payload, caller)


def _target(kind: str, name: str) -> Target:
    return Target.session(name) if kind == SESSION_KIND else Target.agent(name)


async def _publish(
    settings: Settings,
    bus: Bus,
    target: Target,
    event_type: str,
    payload: dict[str, Any],
    caller: Principal,
    raw: bytes | None = None,
) -> dict[str, str]:
    """The use case of both publish paths; the answer has ``EventAccepted``'s fields.
    A plain dict: the routes' ``response_model`` validates it, and the fast path writes
    it as it is (building and dumping the model cost a publish more: bench/README.md).
    ``raw``: the body ``payload`` was parsed from, when the caller has it."""
    require_role(caller, SERVICE_ROLE)
    _check_payload(settings, payload, raw)
    event = await bus.publish(target, event_type, payload, caller.subject)
    return {"id": event.token if event.id else "", "channel": event.channel}


async def _fast_publish(request: FastRequest) -> ASGIApp:
    """``POST /api/events/{kind}/{target}`` when all is well (see fast_path)."""
    kind = request.params["kind"]
    if kind != SESSION_KIND and kind != AGENT_KIND:
        raise NotFast
    event_type = request.query("type")
    if event_type is None:
        event_type = DEFAULT_EVENT_TYPE
    elif not _EVENT_TYPE_RE.fullmatch(event_type):
        raise NotFast
    content_type = request.header(b"content-type")
    if content_type is not None and not content_type.lower().startswith("application/json"):
        raise NotFast  # FastAPI reads other types differently: let it
    caller = request.principal()
    body = await request.body()
    payload = orjson.loads(body)
    if not isinstance(payload, dict):
        raise NotFast
    accepted = await _publish(
        request.settings,
        request.bus,
        _target(kind, request.params["target"]),
        event_type,
        payload,
        caller,
        body,
    )
    return as_json(202, accepted)


@router.get(
    "/api/sessions/{session_name}/events",
    tags=["sessions"],
    response_class=EventStreamResponse,
    status_code=200,
    responses=STREAM_RESPONSES,
)
async def session_events(
    session_name: SessionNamePath,
    principal: SessionStreamAccess,
    bus: Bus,
    slots: StreamSlotsDep,
    store: SessionStore,
    last_event_id: LastEventId,
    presence: Presence,
) -> EventStreamResponse:
    """The session's events as Server-Sent Events (``: ping`` every ``SSE_HEARTBEAT_SECONDS``);
    resume with ``Last-Event-ID``. A waiting customer with no stream open for
    ``CUSTOMER_ABANDON_SECONDS`` leaves the queue."""
    return await open_session_stream(
        store, bus, slots, principal, session_name, last_event_id, presence
    )


@router.post("/api/sessions/{session_name}/read", response_model=SessionPublic, tags=["sessions"])
async def mark_read(
    session_name: SessionNamePath,
    principal: SessionAccess,
    bus: Bus,
    store: SessionStore,
    body: ReadReceipt | None = None,
) -> SessionPublic:
    """A read receipt: the customer (its token) or the agent holding the chat has read it
    (up to ``up_to``); the other side sees "Seen" (an older receipt than the last one moves
    nothing and tells nobody). The agent's unread count goes back to 0."""
    require_role(principal, CUSTOMER_ROLE, AGENT_ROLE)
    agent = principal.subject if principal.role is AGENT_ROLE else None
    up_to = body.up_to if body else None
    return SessionPublic.of(await read_receipt(bus, store, session_name, agent, up_to))


@router.post(
    "/api/sessions/{session_name}/typing",
    status_code=204,
    tags=["sessions"],
    responses={403: {"description": "an agent who does not hold the chat"}},
)
async def typing(
    session_name: SessionNamePath,
    principal: SessionAccess,
    bus: Bus,
    store: SessionStore,
    limiter: TypingRateLimiter,
    body: TypingSignal | None = None,
) -> Response:
    """Someone is typing: the customer (its token) or the agent holding the chat is typing (or,
    with ``{"typing": false}``, stopped). Ephemeral: never kept, never replayed (409 for a
    closed chat, 429 past ``TYPING_RATE_LIMIT_PER_MINUTE``)."""
    require_role(principal, CUSTOMER_ROLE, AGENT_ROLE)
    await enforce_rate_limit(limiter, principal, "typing signals")
    agent = principal.subject if principal.role is AGENT_ROLE else None
    await signal_typing(bus, store, session_name, agent, body.typing if body else True)
    return Response(status_code=204)


@router.get("/api/sessions/{session_name}/queue", response_model=QueuePlace, tags=["sessions"])
async def queue_place(session_name: SessionNamePath, _: SessionAccess, desk: Desk) -> QueuePlace:
    """The customer's place in the queue and the wait to expect (from the latest real
    waits: what is left of their median); both null when not waiting."""
    return QueuePlace.model_validate(await desk.queue_of(session_name))


#: Served ahead of FastAPI by both services (see infrastructure/web/fast_path.py).
fast_routes = [
    FastRoute("POST", "/api/events/{kind}/{target}", _fast_publish),
    FastRoute("GET", "/api/sessions/{session_name}/events", fast_session_events),
]


@router.get(
    "/api/sessions/{session_name}/messages",
    tags=["sessions"],
    response_model=list[MessagePublic],
    summary="The transcript, oldest first",
)
async def transcript(
    session_name: SessionNamePath,
    _: SessionAccess,
    store: SessionStore,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[MessagePublic]:
    await store.get(session_name)
    return [MessagePublic.of(m) for m in await store.messages(session_name, limit=limit)]
