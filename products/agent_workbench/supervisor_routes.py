"""HTTP wiring of the supervisor's live view (agents listed in ``SUPERVISORS``; a plain
agent gets a 403 saying so). The work is in handlers/supervisor.py.

A whisper is the ordinary internal note (``POST /api/sessions/{name}/notes``), which any
agent may add to any session: the holder sees it, the customer never does."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from infrastructure.auth.dependencies import (
    CurrentSupervisor,
    SessionNamePath,
    SettingsDep,
    StreamSupervisor,
)
from infrastructure.auth.limits import StreamSlotsDep
from infrastructure.web.deps import Bus, Desk
from infrastructure.web.models import SessionPublic
from infrastructure.web.sse_response import EventStreamResponse
from infrastructure.web.streams import STREAM_RESPONSES, open_event_stream
from products.agent_workbench.handlers import supervisor
from products.agent_workbench.schemas import SupervisorOverview, TakeOverRequest

router = APIRouter(tags=["supervisor"])

_FORBIDDEN: dict[int | str, dict[str, Any]] = {
    403: {"description": "not a supervisor (SUPERVISORS lists them)"}
}


@router.get("/api/supervisor/overview", response_model=SupervisorOverview, responses=_FORBIDDEN)
async def overview(_: CurrentSupervisor, desk: Desk) -> SupervisorOverview:
    """Every agent with presence, chats and capacity; the queue with each wait so far; every
    active chat with its holder and last activity. Then follow ``/api/supervisor/events``."""
    return SupervisorOverview.model_validate(await supervisor.overview(desk))


@router.get(
    "/api/supervisor/events",
    response_class=EventStreamResponse,
    status_code=200,
    responses={**STREAM_RESPONSES, **_FORBIDDEN},
)
async def events(
    principal: StreamSupervisor, settings: SettingsDep, bus: Bus, slots: StreamSlotsDep
) -> EventStreamResponse:
    """The broadcast channel and every agent's channel: presence, the queue, assignments,
    status changes, messages and notes of every active chat. It does not make the
    supervisor present (its own agent stream does).

    It never resumes: a ``Last-Event-ID`` is ignored, and the page takes a new snapshot
    (the overview) on every reconnect. A cursor holds one position per channel, and past a
    dozen agents it would pass the bus's bound on its length (a 400 on every reconnect)."""
    return await open_event_stream(
        bus, slots, principal, supervisor.supervisor_targets(settings), None
    )


@router.post(
    "/api/supervisor/sessions/{session_name}/takeover",
    response_model=SessionPublic,
    responses={
        **_FORBIDDEN,
        409: {"description": "not held by another agent, or no longer by the one expected"},
    },
)
async def take_over(
    session_name: SessionNamePath,
    principal: CurrentSupervisor,
    desk: Desk,
    body: TakeOverRequest | None = None,
) -> SessionPublic:
    """Take a chat another agent holds, at once (atomic; whatever the supervisor's load):
    the agent's page drops it with a notice, the customer sees the supervisor join."""
    session = await supervisor.take_over(
        desk, session_name, principal.subject, body.expected_holder if body else None
    )
    return SessionPublic.of(session)
