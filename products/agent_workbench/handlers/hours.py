"""Messages customers left out of hours: the agents' list."""

from __future__ import annotations

from infrastructure.bootstrap.sse import SseBus
from infrastructure.hours.inbox import left_messages_of


async def waiting(bus: SseBus) -> list[dict[str, object]]:
    return [m.public() for m in await left_messages_of(bus).pending()]


async def done(bus: SseBus, session_name: str) -> bool:
    return await left_messages_of(bus).done(session_name)
