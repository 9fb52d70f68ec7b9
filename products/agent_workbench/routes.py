"""HTTP wiring of the workbench service: paths, models, auth. The work is in handlers/."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Response
from fastapi.responses import FileResponse

from infrastructure.auth.dependencies import (
    AgentSelf,
    AgentStreamSelf,
    CurrentAgent,
    SessionNamePath,
    SettingsDep,
    clear_auth_cookie,
    require_agent_identity,
    require_role,
    set_auth_cookie,
)
from infrastructure.auth.limits import RateLimitedPrincipal, StreamSlotsDep
from infrastructure.auth.tokens import Role
from infrastructure.events import NAME_PATTERN
from infrastructure.sessions import SessionStatus
from infrastructure.web.deps import Bus, LastEventId, SessionStore
from infrastructure.web.errors import unprocessable
from infrastructure.web.fast_path import FastRequest, FastRoute
from infrastructure.web.limits import check_message_size
from infrastructure.web.models import MessagePublic, SessionPublic
from infrastructure.web.record_models import ConversationPage, ReportSummary
from infrastructure.web.record_routes import RecordDep
from infrastructure.web.sse_response import EventStreamResponse
from infrastructure.web.streams import STREAM_RESPONSES, open_event_stream
from products.agent_workbench.handlers import agents, record, sessions
from products.agent_workbench.paths import STATIC_DIR
from products.agent_workbench.schemas import (
    AgentAction,
    AgentLogin,
    AgentMessageCreate,
    AgentToken,
)

router = APIRouter()


@router.get("/", include_in_schema=False)
async def index() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html")


@router.get("/history", include_in_schema=False)
async def history_page() -> FileResponse:
    return FileResponse(STATIC_DIR / "history.html")


@router.get("/reports", include_in_schema=False)
async def reports_page() -> FileResponse:
    return FileResponse(STATIC_DIR / "reports.html")


@router.get("/api/conversations", response_model=ConversationPage, tags=["record"])
async def conversations(
    _: CurrentAgent,
    record_: RecordDep,
    q: Annotated[
        str | None, Query(max_length=200, description="words the messages contain")
    ] = None,
    agent_id: Annotated[str | None, Query(pattern=NAME_PATTERN)] = None,
    status: Annotated[str | None, Query(pattern=r"^[a-z_]{1,32}$")] = None,
    start: Annotated[datetime | None, Query(alias="from")] = None,
    end: Annotated[datetime | None, Query(alias="to")] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> ConversationPage:
    """Recorded conversations, newest activity first, ``limit`` a page; ``q`` finds
    messages holding every word (substrings: Chinese too); ``agent_id``: conversations
    that agent held; ``from``/``to``: active within the period."""
    return await record.conversations(
        record_,
        q=q,
        agent_id=agent_id,
        status=status,
        start=start,
        end=end,
        cursor=cursor,
        limit=limit,
    )


@router.get(
    "/api/reports/summary",
    response_model=ReportSummary,
    response_model_by_alias=True,
    tags=["record"],
)
async def report_summary(
    _: CurrentAgent,
    record_: RecordDep,
    start: Annotated[datetime | None, Query(alias="from")] = None,
    end: Annotated[datetime | None, Query(alias="to")] = None,
) -> ReportSummary:
    """Conversations, escalations, abandoned, wait before an agent (median, p90), handle
    time, ratings: in total, per agent and per day (default: the last 7 days)."""
    try:
        return await record.summary(record_, start, end)
    except record.PeriodTooLong as exc:
        raise unprocessable(str(exc), "query", "from") from None


@router.post("/api/agents/login", response_model=AgentToken, tags=["agents"])
async def login(body: AgentLogin, settings: SettingsDep, response: Response) -> AgentToken:
    try:
        token = await agents.login(settings, body.agent_id, body.password)
    except agents.LoginFailed as exc:
        raise HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from None
    set_auth_cookie(response, settings, Role.AGENT, token)
    return AgentToken(agent_id=body.agent_id, token=token)


@router.post("/api/agents/logout", status_code=204, tags=["agents"])
async def logout(settings: SettingsDep, response: Response) -> None:
    """Forget the page's stream cookie (tokens themselves expire on their own)."""
    clear_auth_cookie(response, settings, Role.AGENT)


@router.get("/api/agents/{agent_id}/sessions", response_model=list[SessionPublic], tags=["agents"])
async def agent_sessions(agent_id: str, _: AgentSelf, store: SessionStore) -> list[SessionPublic]:
    """The sessions this agent holds."""
    return await sessions.held_sessions(store, agent_id)


@router.get("/api/sessions", response_model=list[SessionPublic], tags=["sessions"])
async def list_sessions(
    principal: CurrentAgent,
    store: SessionStore,
    status: Annotated[Literal["waiting_agent", "agent_active"], Query()] = "waiting_agent",
) -> list[SessionPublic]:
    """``waiting_agent``: the queue, oldest first, with time waited; ``agent_active``: the
    sessions the calling agent holds."""
    try:
        return await sessions.sessions_by_status(store, SessionStatus(status), principal.subject)
    except ValueError as exc:
        raise unprocessable(str(exc), "query", "status") from None


@router.get("/api/sessions/{session_name}", response_model=SessionPublic, tags=["sessions"])
async def get_session(
    session_name: SessionNamePath, _: CurrentAgent, store: SessionStore
) -> SessionPublic:
    session = await store.get(session_name)
    return SessionPublic.of(session, await store.queue_position(session_name))


@router.get(
    "/api/agents/{agent_id}/events",
    tags=["agents"],
    response_class=EventStreamResponse,
    status_code=200,
    responses=STREAM_RESPONSES,
)
async def agent_events(
    agent_id: str,
    principal: AgentStreamSelf,
    bus: Bus,
    slots: StreamSlotsDep,
    last_event_id: LastEventId,
) -> EventStreamResponse:
    """The agent's own events and every broadcast (new transfer requests)."""
    return await open_event_stream(
        bus, slots, principal, sessions.agent_targets(agent_id), last_event_id
    )


async def _fast_agent_events(request: FastRequest) -> EventStreamResponse:
    agent_id = request.params["agent_id"]
    principal = require_agent_identity(request.stream_principal(), agent_id)
    return await open_event_stream(
        request.bus,
        request.slots,
        principal,
        sessions.agent_targets(agent_id),
        request.last_event_id,
    )


@router.post(
    "/api/sessions/{session_name}/takeover",
    response_model=SessionPublic,
    tags=["sessions"],
    responses={409: {"description": "another agent holds it, or it is not waiting"}},
)
async def takeover(
    session_name: SessionNamePath,
    body: AgentAction,
    principal: CurrentAgent,
    bus: Bus,
    store: SessionStore,
) -> SessionPublic:
    require_agent_identity(principal, body.agent_id)
    return SessionPublic.of(await sessions.takeover(bus, store, session_name, body.agent_id))


@router.post(
    "/api/sessions/{session_name}/release", response_model=SessionPublic, tags=["sessions"]
)
async def release(
    session_name: SessionNamePath,
    body: AgentAction,
    principal: CurrentAgent,
    bus: Bus,
    store: SessionStore,
) -> SessionPublic:
    """Hand the session back to the bot."""
    require_agent_identity(principal, body.agent_id)
    return SessionPublic.of(await sessions.release(bus, store, session_name, body.agent_id))


@router.post("/api/sessions/{session_name}/close", response_model=SessionPublic, tags=["sessions"])
async def close(
    session_name: SessionNamePath,
    body: AgentAction,
    principal: CurrentAgent,
    bus: Bus,
    store: SessionStore,
) -> SessionPublic:
    require_agent_identity(principal, body.agent_id)
    return SessionPublic.of(await sessions.close(bus, store, session_name, body.agent_id))


@router.post(
    "/api/sessions/{session_name}/messages",
    status_code=201,
    response_model=MessagePublic,
    tags=["sessions"],
)
async def post_message(
    session_name: SessionNamePath,
    body: AgentMessageCreate,
    principal: RateLimitedPrincipal,
    bus: Bus,
    store: SessionStore,
    settings: SettingsDep,
) -> MessagePublic:
    """An agent's message to the customer (only into a session the agent holds)."""
    require_role(principal, Role.AGENT)
    require_agent_identity(principal, body.agent_id)
    check_message_size(settings, body.content)
    message = await sessions.agent_message(bus, store, session_name, body.agent_id, body.content)
    return MessagePublic.of(message)


#: Served ahead of FastAPI when all is well (infrastructure/web/fast_path.py).
fast_routes = [
    FastRoute("GET", "/api/agents/{agent_id}/events", _fast_agent_events),
]
