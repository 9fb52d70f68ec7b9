"""Messages customers left out of hours: the agents' list."""

from __future__ import annotations

from infrastructure.bootstrap.sse import SseBus
from infrastructure.events import Target
from infrastructure.hours.inbox import left_messages_of

SOURCE = "agent_workbench"
#: On the broadcast channel: a left message was handled (every agent's list drops it).
LEFT_MESSAGE_DONE = "left_message_done"


async def waiting(bus: SseBus) -> list[dict[str, object]]:
    return [m.public() for m in await left_messages_of(bus).pending()]


async def done(bus: SseBus, session_name: str, agent_id: str) -> bool:
    """Handled by ``agent_id``: out of the inbox, and out of every agent's list."""
    if not await left_messages_of(bus).done(session_name):
        return False
    payload = {"session_name": session_name, "agent_id": agent_id}
    await bus.publish(Target.broadcast(), LEFT_MESSAGE_DONE, payload, SOURCE)
    return True
