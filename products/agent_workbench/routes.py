"""HTTP wiring of the workbench service: paths, models, auth. The work is in handlers/."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Request, Response
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
from infrastructure.auth.limits import StreamSlotsDep
from infrastructure.auth.rate_limit import RateLimitedPrincipal
from infrastructure.auth.tokens import Role
from infrastructure.events import NAME_PATTERN
from infrastructure.sessions import SessionStatus
from infrastructure.web.deps import Bus, Desk, LastEventId, Presence, SessionStore
from infrastructure.web.errors import unprocessable
from infrastructure.web.fast_path import FastRequest, FastRoute
from infrastructure.web.limits import check_message_size
from infrastructure.web.models import MessagePublic, SessionPublic
from infrastructure.web.record_models import ConversationPage, ReportSummary
from infrastructure.web.record_routes import RecordDep
from infrastructure.web.sse_response import EventStreamResponse
from infrastructure.web.streams import STREAM_RESPONSES, open_event_stream
from products.agent_workbench.handlers import agents, hours, record, sessions, webhooks
from products.agent_workbench.handlers import desk as desk_handlers
from products.agent_workbench.paths import STATIC_DIR
from products.agent_workbench.schemas import (
    AgentAction,
    AgentLogin,
    AgentLogout,
    AgentMessageCreate,
    AgentPublic,
    AgentStatusUpdate,
    AgentToken,
    LogoutResult,
    NoteCreate,
    NotePublic,
    TransferRequest,
    WebhookStatus,
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
async def login(
    body: AgentLogin, settings: SettingsDep, response: Response, desk: Desk
) -> AgentToken:
    try:
        token = await agents.login(settings, body.agent_id, body.password)
    except agents.LoginFailed as exc:
        raise HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from None
    set_auth_cookie(response, settings, Role.AGENT, token)
    await desk_handlers.signed_in(desk, body.agent_id)
    return AgentToken(
        agent_id=body.agent_id, token=token, roles=agents.roles_of(settings, body.agent_id)
    )


@router.post("/api/agents/logout", response_model=LogoutResult, tags=["agents"])
async def logout(
    principal: CurrentAgent,
    settings: SettingsDep,
    response: Response,
    desk: Desk,
    body: AgentLogout | None = None,
) -> LogoutResult:
    """Sign out: offline at once, the chats held back to the front of the queue (unless
    ``hand_back`` is false), and the page's stream cookie forgotten."""
    handed = await desk_handlers.sign_out(desk, principal.subject, body.hand_back if body else True)
    clear_auth_cookie(response, settings, Role.AGENT)
    return LogoutResult(handed_back=handed)


@router.get("/api/agents", response_model=list[AgentPublic], tags=["agents"])
async def list_agents(_: CurrentAgent, desk: Desk, settings: SettingsDep) -> list[AgentPublic]:
    """Every agent: presence, chats held, capacity, and whether it is a supervisor."""
    supervisors = set(settings.SUPERVISORS)
    return [
        AgentPublic(**asdict(a), supervisor=a.agent_id in supervisors) for a in await desk.agents()
    ]


@router.get("/api/webhooks/status", response_model=WebhookStatus, tags=["operations"])
async def webhook_status(_: CurrentAgent, settings: SettingsDep, request: Request) -> WebhookStatus:
    """Each outgoing webhook's last status and counts, and the deliveries waiting."""
    worker = getattr(request.app.state, "webhook_worker", None)
    return await webhooks.webhook_status(settings, worker.queue if worker else None)


@router.get("/api/left-messages", tags=["sessions"])
async def left_messages(_: CurrentAgent, bus: Bus) -> list[dict[str, object]]:
    """Messages customers left out of hours, oldest first, until one is marked done."""
    return await hours.waiting(bus)


@router.post("/api/left-messages/{session_name}/done", tags=["sessions"])
async def left_message_done(
    session_name: SessionNamePath, principal: CurrentAgent, bus: Bus
) -> dict[str, str]:
    """Handled: it leaves every agent's list (404 when there is none for that session)."""
    if not await hours.done(bus, session_name, principal.subject):
        raise HTTPException(404, f"no message left for session {session_name!r}")
    return {"session_name": session_name, "status": "done"}


@router.get("/api/agents/me/sessions", response_model=list[SessionPublic], tags=["agents"])
async def my_sessions(principal: CurrentAgent, desk: Desk) -> list[SessionPublic]:
    """The chats the calling agent holds, with unread counts (every page load and
    reconnect asks: a new tab shows the same chats)."""
    return await desk_handlers.my_sessions(desk, principal.subject)


@router.put("/api/agents/me/status", response_model=AgentPublic, tags=["agents"])
async def put_status(
    body: AgentStatusUpdate, principal: CurrentAgent, desk: Desk, settings: SettingsDep
) -> AgentPublic:
    """``online`` takes chats, ``away`` keeps its chats but gets no new ones, ``offline``
    (its chats go back to the queue after ``AGENT_OFFLINE_GRACE_SECONDS``)."""
    presence = await desk_handlers.set_status(desk, principal.subject, body.status)
    return AgentPublic(**asdict(presence), supervisor=presence.agent_id in settings.SUPERVISORS)


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
    presence: Presence,
) -> EventStreamResponse:
    """The agent's own events and every broadcast (new transfer requests, presence). While
    one is open on any replica, the agent is present."""
    return await open_event_stream(
        bus, slots, principal, sessions.agent_targets(agent_id), last_event_id, presence
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
        request.presence,
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
    desk: Desk,
) -> SessionPublic:
    require_agent_identity(principal, body.agent_id)
    return SessionPublic.of(await sessions.takeover(desk, session_name, body.agent_id))


@router.post(
    "/api/sessions/{session_name}/release", response_model=SessionPublic, tags=["sessions"]
)
async def release(
    session_name: SessionNamePath,
    body: AgentAction,
    principal: CurrentAgent,
    desk: Desk,
) -> SessionPublic:
    """Hand the session back to the bot."""
    require_agent_identity(principal, body.agent_id)
    return SessionPublic.of(await sessions.release(desk, session_name, body.agent_id))


@router.post("/api/sessions/{session_name}/close", response_model=SessionPublic, tags=["sessions"])
async def close(
    session_name: SessionNamePath,
    body: AgentAction,
    principal: CurrentAgent,
    desk: Desk,
) -> SessionPublic:
    """Close the chat (the agent holding it); the customer is asked for a rating."""
    require_agent_identity(principal, body.agent_id)
    return SessionPublic.of(await sessions.close(desk, session_name, body.agent_id))


@router.post(
    "/api/sessions/{session_name}/transfer",
    response_model=SessionPublic,
    tags=["sessions"],
    responses={409: {"description": "not the holder; the colleague is away, offline or full"}},
)
async def transfer(
    session_name: SessionNamePath, body: TransferRequest, principal: CurrentAgent, desk: Desk
) -> SessionPublic:
    """The holder hands the chat to an online colleague with room (with a note for agents
    only), or back to the front of the queue (``to_agent_id`` left out)."""
    try:
        session = await sessions.transfer(
            desk, session_name, principal.subject, body.to_agent_id, body.note or ""
        )
    except ValueError as exc:
        raise unprocessable(str(exc), "body", "to_agent_id") from None
    return SessionPublic.of(session, await desk.store.queue_position(session_name))


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


# --- internal notes ------------------------------------------------------------------------


@router.post(
    "/api/sessions/{session_name}/notes",
    status_code=201,
    response_model=NotePublic,
    tags=["sessions"],
)
async def add_note(
    session_name: SessionNamePath,
    body: NoteCreate,
    principal: CurrentAgent,
    bus: Bus,
    store: SessionStore,
) -> NotePublic:
    """An internal note: shown to agents in the transcript, never to the customer (not on
    its channel, in its transcript, its record or its export)."""
    note = await sessions.add_note(bus, store, session_name, principal.subject, body.content)
    return NotePublic(**note.model_dump())


@router.get(
    "/api/sessions/{session_name}/notes", response_model=list[NotePublic], tags=["sessions"]
)
async def list_notes(
    session_name: SessionNamePath, _: CurrentAgent, store: SessionStore
) -> list[NotePublic]:
    return [NotePublic(**n.model_dump()) for n in await store.notes(session_name)]
