"""HTTP wiring of the chatbot service: paths, models, auth. The work is in handlers/."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import FileResponse

from infrastructure.auth.dependencies import (
    CurrentPrincipal,
    ServiceCaller,
    SessionAccess,
    SessionNamePath,
    SettingsDep,
    require_role,
    require_session_access,
    set_auth_cookie,
)
from infrastructure.auth.rate_limit import (
    EscalationLimitedPrincipal,
    EscalationRateLimiter,
    MessageRateLimiter,
    RateLimitedPrincipal,
    enforce_rate_limit,
)
from infrastructure.auth.tokens import Role
from infrastructure.web.deps import Bus, Desk, SessionStore
from infrastructure.web.errors import unprocessable
from infrastructure.web.limits import check_message_size
from infrastructure.web.models import MessagePublic, SessionPublic
from products.ai_chatbot.handlers import hours, manual, messages, sessions
from products.ai_chatbot.paths import STATIC_DIR
from products.ai_chatbot.responders.base import Responder, wants_human
from products.ai_chatbot.schemas import (
    CallbackRequest,
    CustomerMessageAccepted,
    EscalateRequest,
    LeaveMessage,
    ManualMessage,
    MessageCreate,
    RatingCreate,
    SessionCreate,
    SessionCreated,
)


async def get_responder(request: Request) -> Responder:
    responder: Responder = request.app.state.responder
    return responder


BotResponder = Annotated[Responder, Depends(get_responder)]

router = APIRouter()


@router.get("/", include_in_schema=False)
async def index() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html")


@router.post("/api/sessions", status_code=201, response_model=SessionCreated, tags=["sessions"])
async def create_session(
    store: SessionStore,
    settings: SettingsDep,
    response: Response,
    body: SessionCreate | None = None,
) -> SessionCreated:
    """Start a conversation with the bot; the answer carries the customer's token."""
    session, token = await sessions.create_session(
        store,
        settings,
        body.session_name if body else None,
        body.display_name if body else None,
    )
    set_auth_cookie(response, settings, Role.CUSTOMER, token)
    return SessionCreated(session_name=session.session_name, status=session.status, token=token)


@router.get("/api/sessions/{session_name}", response_model=SessionPublic, tags=["sessions"])
async def get_session(
    session_name: SessionNamePath, _: SessionAccess, store: SessionStore
) -> SessionPublic:
    """The session's status, its place in the queue and the time waited (for polling)."""
    return await sessions.session_status(store, session_name)


@router.post(
    "/api/sessions/{session_name}/messages",
    status_code=201,
    response_model=CustomerMessageAccepted,
    tags=["sessions"],
)
async def post_message(
    session_name: SessionNamePath,
    body: MessageCreate,
    principal: CurrentPrincipal,
    limiter: MessageRateLimiter,
    escalation_limiter: EscalationRateLimiter,
    desk: Desk,
    responder: BotResponder,
    settings: SettingsDep,
) -> CustomerMessageAccepted:
    """A customer message: the bot answers while the status is ``ai``; otherwise it
    goes to the agent. Asking for a human ("转人工") escalates.

    Rate-limited per token (429 with ``Retry-After``); a message asking for a human that the
    message bucket refuses is charged to the escalation bucket instead, so 转人工 still works."""
    require_role(principal, Role.CUSTOMER)
    require_session_access(principal, session_name)
    overflow = escalation_limiter if wants_human(body.content) else None
    await enforce_rate_limit(limiter, principal, overflow=overflow)
    check_message_size(settings, body.content)
    result = await messages.customer_message(desk, responder, session_name, body.content)
    return CustomerMessageAccepted(
        message=MessagePublic.of(result.message),
        status=result.status,
        reply=MessagePublic.of(result.reply) if result.reply else None,
        escalated=result.escalated,
    )


@router.post("/api/manual/escalate", response_model=SessionPublic, tags=["manual"])
async def escalate(
    body: EscalateRequest, principal: EscalationLimitedPrincipal, desk: Desk
) -> SessionPublic:
    """转人工: the session waits for an agent; agents hear of it at once (in ``auto`` mode
    the least busy online agent gets it at once).

    Not charged to the message rate limit (a customer who used it up can still ask for a
    human): it has its own, more generous bucket (``ESCALATION_RATE_LIMIT_*``)."""
    require_role(principal, Role.CUSTOMER, Role.SERVICE)
    require_session_access(principal, body.session_name)
    session = await manual.manual_escalate(desk, body.session_name, body.reason)
    return SessionPublic.of(session, await desk.store.queue_position(session.session_name))


@router.post("/api/manual/message", status_code=201, response_model=MessagePublic, tags=["manual"])
async def manual_message(
    body: ManualMessage,
    principal: RateLimitedPrincipal,
    bus: Bus,
    store: SessionStore,
    settings: SettingsDep,
) -> MessagePublic:
    """A customer message in manual mode, to the agent."""
    require_role(principal, Role.CUSTOMER, Role.SERVICE)
    require_session_access(principal, body.session_name)
    check_message_size(settings, body.content)
    return MessagePublic.of(
        await manual.manual_message(bus, store, body.session_name, body.content)
    )


@router.post("/api/manual/callback", response_model=SessionPublic, tags=["manual"])
async def callback(body: CallbackRequest, _: ServiceCaller, desk: Desk) -> SessionPublic:
    """An outside system reports a status change (service token)."""
    store = desk.store
    try:
        session = await manual.notify_callback(desk, body.session_name, body.status, body.agent_id)
    except ValueError as exc:  # e.g. agent_active without an agent_id
        raise unprocessable(str(exc), "body", "status") from None
    return SessionPublic.of(session, await store.queue_position(session.session_name))


@router.post(
    "/api/sessions/{session_name}/rating",
    status_code=201,
    response_model=SessionPublic,
    tags=["sessions"],
    responses={409: {"description": "the chat is not closed yet, or was rated already"}},
)
async def rate(
    session_name: SessionNamePath,
    body: RatingCreate,
    principal: CurrentPrincipal,
    bus: Bus,
    store: SessionStore,
) -> SessionPublic:
    """The customer rates its closed chat (1-5, an optional comment), once."""
    require_role(principal, Role.CUSTOMER)
    require_session_access(principal, session_name)
    return SessionPublic.of(await sessions.rate(bus, store, session_name, body.score, body.comment))


@router.post(
    "/api/sessions/{session_name}/leave-message",
    status_code=201,
    response_model=MessagePublic,
    tags=["sessions"],
)
async def leave_message(
    session_name: SessionNamePath,
    body: LeaveMessage,
    principal: RateLimitedPrincipal,
    bus: Bus,
    store: SessionStore,
    settings: SettingsDep,
) -> MessagePublic:
    """Out of hours (转人工 says when we open): a message for the agents, kept in the
    transcript; agents see it waiting, and are told again when hours begin."""
    require_role(principal, Role.CUSTOMER)
    require_session_access(principal, session_name)
    check_message_size(settings, body.text)
    return MessagePublic.of(
        await hours.leave_message(bus, store, session_name, body.name, body.contact, body.text)
    )
