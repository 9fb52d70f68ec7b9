"""Routes both services serve: health, readiness, metrics, the publish API, the transcript."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Request, Response
from fastapi.responses import JSONResponse

from infrastructure.auth.dependencies import ServiceCaller, SessionAccess, SessionNamePath
from infrastructure.auth.limits import JSONTooDeep, check_json_depth
from infrastructure.config import Settings
from infrastructure.events import NAME_PATTERN, Target, TargetKind
from infrastructure.metrics import render
from infrastructure.web.deps import Bus, SessionStore
from infrastructure.web.errors import unprocessable
from infrastructure.web.models import EventAccepted, MessagePublic, Readiness

router = APIRouter()

EventTypeQuery = Annotated[
    str, Query(alias="type", pattern=r"^[a-z][a-z0-9_]{0,31}$", description="the event's type")
]
PublishBody = Annotated[
    dict[str, Any], Body(description="the event's payload: any JSON object, published as it is")
]


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
    if not bus.accepting:
        reasons.append("shutting down")
    body = Readiness(
        ready=not reasons,
        mode=bus.mode,
        redis=redis_state,
        store=store_state,
        outbox=bus.manager.outbox_size() if bus.manager else 0,
        warnings=warnings,
        reasons=reasons,
    )
    return JSONResponse(body.model_dump(), status_code=200 if body.ready else 503)


@router.get("/metrics", tags=["operations"], response_class=Response)
async def metrics(request: Request) -> Response:
    """Prometheus text format."""
    return Response(render(request.app.state.metrics), media_type="text/plain; version=0.0.4")


def _check_payload(request: Request, payload: dict[str, Any]) -> None:
    try:
        check_json_depth(payload, request.app.state.settings.MAX_JSON_DEPTH)
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
    request: Request,
    bus: Bus,
    caller: ServiceCaller,
    payload: PublishBody,
    event_type: EventTypeQuery = "notification",
) -> EventAccepted:
    _check_payload(request, payload)
    return await _publish(bus, Target.broadcast(), event_type, payload, caller.subject)


@router.post(
    "/api/events/{kind}/{target}",
    tags=["events"],
    status_code=202,
    response_model=EventAccepted,
    summary="Publish an event to a session or an agent",
)
async def publish_event(
    request: Request,
    bus: Bus,
    caller: ServiceCaller,
    kind: Annotated[str, Path(pattern=r"^(session|agent)$")],
    target: Annotated[str, Path(pattern=NAME_PATTERN)],
    payload: PublishBody,
    event_type: EventTypeQuery = "notification",
) -> EventAccepted:
    _check_payload(request, payload)
    parsed = Target.session(target) if kind == TargetKind.SESSION else Target.agent(target)
    return await _publish(bus, parsed, event_type, payload, caller.subject)


async def _publish(
    bus: Bus, target: Target, event_type: str, payload: dict[str, Any], source: str
) -> EventAccepted:
    event = await bus.publish(target, event_type, payload, source)
    return EventAccepted(id=event.token if event.id else "", channel=event.channel)


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
