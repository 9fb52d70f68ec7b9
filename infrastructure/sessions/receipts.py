"""Read receipts: a side of a chat has read it up to a message; the other side sees "Seen".

A page sends a receipt for the newest message it shows, without waiting for the previous
one's answer, so two can arrive out of order. The stores keep each side's mark only moving
forward (``models.is_newer``), and a receipt that moved nothing publishes nothing: "Seen" never
goes back to an older message.
"""

from __future__ import annotations

from infrastructure.bus.api import SseBus
from infrastructure.sessions.models import Session
from infrastructure.sessions.notify import publish_read
from infrastructure.sessions.store import SessionStore


async def read_receipt(
    bus: SseBus, store: SessionStore, session_name: str, agent_id: str | None, up_to: str | None
) -> Session:
    """The customer (``agent_id`` None) or the holding agent has read the chat (up to
    ``up_to``: the other side is told, if that moved the mark). Raises ``NotHolder`` for an
    agent who does not hold the chat."""
    session = await store.mark_read(session_name, agent_id, up_to)
    mark = session.agent_read_up_to if agent_id else session.customer_read_up_to
    if up_to and mark == up_to:
        await publish_read(bus, session, "agent" if agent_id else "customer", up_to)
    return session
