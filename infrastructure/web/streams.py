"""Opening an event stream: what every stream endpoint does the same way."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import HTTPException

from infrastructure.auth.dependencies import require_session_access
from infrastructure.auth.limits import StreamSlots
from infrastructure.auth.tokens import Principal
from infrastructure.bus.api import SseBus
from infrastructure.desk.monitor import DeskMonitor
from infrastructure.events import Target
from infrastructure.sessions import SessionNotFound, SessionStore
from infrastructure.web.fast_path import FastRequest
from infrastructure.web.sse_response import EventStreamResponse

#: How every stream endpoint documents its 200 in OpenAPI.
STREAM_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"content": {"text/event-stream": {}}, "description": "SSE stream"}
}


async def open_event_stream(
    bus: SseBus,
    slots: StreamSlots,
    principal: Principal,
    targets: Sequence[Target],
    last_event_id: str | None,
    presence: DeskMonitor | None = None,
) -> EventStreamResponse:
    """Resume after ``last_event_id`` (if any) and stream. 503 while shutting down: the
    client retries elsewhere. With ``presence``, the caller is present while it lasts."""
    if not bus.accepting:
        raise HTTPException(503, "shutting down", headers={"Retry-After": "1"})
    slot = slots.acquire(principal)
    try:
        listener = await bus.open(targets, last_event_id or None)
    except BaseException:
        slot.release()
        raise
    if presence is None:
        return EventStreamResponse(bus, listener, on_close=slot.release)
    leave = presence.enter(principal)

    def closed() -> None:
        slot.release()
        leave()

    return EventStreamResponse(bus, listener, on_close=closed)


async def open_session_stream(
    store: SessionStore,
    bus: SseBus,
    slots: StreamSlots,
    principal: Principal,
    session_name: str,
    last_event_id: str | None,
    presence: DeskMonitor | None = None,
) -> EventStreamResponse:
    """``GET /api/sessions/{session_name}/events`` of both services: 404 for a session
    that does not exist, else its stream (a customer's keeps it in the queue)."""
    if not await store.exists(session_name):
        raise SessionNotFound(session_name)
    return await open_event_stream(
        bus, slots, principal, [Target.session(session_name)], last_event_id, presence
    )


async def fast_session_events(request: FastRequest) -> EventStreamResponse:
    """The same, on the fast path (see fast_path.py)."""
    session_name = request.params["session_name"]
    principal = require_session_access(request.stream_principal(), session_name)
    return await open_session_stream(
        request.store,
        request.bus,
        request.slots,
        principal,
        session_name,
        request.last_event_id,
        request.presence,
    )
