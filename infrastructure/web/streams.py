"""Opening an event stream: what every stream endpoint does the same way."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import HTTPException, Request

from infrastructure.auth.limits import StreamSlots
from infrastructure.auth.tokens import Principal
from infrastructure.bootstrap.sse import SseBus
from infrastructure.events import Target
from infrastructure.web.sse_response import EventStreamResponse


async def open_event_stream(
    request: Request,
    bus: SseBus,
    slots: StreamSlots,
    principal: Principal,
    targets: Sequence[Target],
    heartbeat_seconds: float | None = None,
) -> EventStreamResponse:
    """Resume from ``Last-Event-ID`` (header, or ``?last_event_id=`` for clients that
    cannot set it) and stream. 503 while shutting down: the client retries elsewhere."""
    if not bus.accepting:
        raise HTTPException(503, "shutting down", headers={"Retry-After": "1"})
    last_event_id = request.headers.get("last-event-id") or request.query_params.get(
        "last_event_id"
    )
    slot = slots.acquire(principal)
    try:
        listener = await bus.open(targets, last_event_id or None)
    except BaseException:
        slot.release()
        raise
    return EventStreamResponse(
        bus, listener, heartbeat_seconds=heartbeat_seconds, on_close=slot.release
    )
