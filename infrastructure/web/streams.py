"""Opening an event stream: what every stream endpoint does the same way."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import HTTPException

from infrastructure.auth.limits import StreamSlots
from infrastructure.auth.tokens import Principal
from infrastructure.bootstrap.sse import SseBus
from infrastructure.events import Target
from infrastructure.web.sse_response import EventStreamResponse

#: Where a client says what it last saw: the header (EventSource sets it on reconnect),
#: else this query parameter (for clients that cannot set headers on the first request).
LAST_EVENT_ID_HEADER = "last-event-id"
LAST_EVENT_ID_QUERY = "last_event_id"


async def open_event_stream(
    bus: SseBus,
    slots: StreamSlots,
    principal: Principal,
    targets: Sequence[Target],
    last_event_id: str | None,
    heartbeat_seconds: float | None = None,
) -> EventStreamResponse:
    """Resume after ``last_event_id`` (if any) and stream. 503 while shutting down: the
    client retries elsewhere."""
    if not bus.accepting:
        raise HTTPException(503, "shutting down", headers={"Retry-After": "1"})
    slot = slots.acquire(principal)
    try:
        listener = await bus.open(targets, last_event_id or None)
    except BaseException:
        slot.release()
        raise
    return EventStreamResponse(
        bus, listener, heartbeat_seconds=heartbeat_seconds, on_close=slot.release
    )
