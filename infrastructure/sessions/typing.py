"""Typing indicators: "… is typing" on the other side of a chat.

A typing signal is ephemeral (``SseBus.publish_ephemeral``): it is not kept in the
session's history, so a reconnect never replays an old one, and it is not archived or
sent to webhooks. The customer's signal goes to the holding agent's channel (none while
no agent holds the chat: nobody would see it); the agent's to the session channel the
customer follows. The pages send one while the person types, at most one per 2 s, and
hide the indicator after a few seconds without news.
"""

from __future__ import annotations

from infrastructure.bus.api import SseBus
from infrastructure.events import Target
from infrastructure.sessions.models import NotHolder, SessionConflict, SessionStatus
from infrastructure.sessions.store import SessionStore

#: The event's type on the wire.
TYPING_EVENT = "typing"


class ChatEnded(SessionConflict):
    """A signal about a chat that is closed: nobody is on the other side any more."""

    def __init__(self, session_name: str) -> None:
        super().__init__(f"session {session_name!r} is closed")


async def signal_typing(
    bus: SseBus,
    store: SessionStore,
    session_name: str,
    agent_id: str | None,
    typing: bool,
    source: str | None = None,
) -> bool:
    """The customer (``agent_id`` None) or the holding agent is typing (or has stopped).

    Returns whether anyone was told (False: a customer with no agent yet). Raises
    :class:`NotHolder` for an agent who does not hold the chat and :class:`ChatEnded`
    for a closed one."""
    session = await store.get(session_name)
    if session.status is SessionStatus.CLOSED:
        raise ChatEnded(session_name)
    if agent_id is not None and session.agent_id != agent_id:
        raise NotHolder(session_name, agent_id, session.agent_id)
    payload = {
        "session_name": session_name,
        "who": "agent" if agent_id else "customer",
        "agent_id": agent_id,
        "typing": typing,
    }
    if agent_id is not None:
        target = Target.session(session_name)
    elif session.agent_id and session.status is SessionStatus.AGENT_ACTIVE:
        target = Target.agent(session.agent_id)
    else:
        return False
    await bus.publish_ephemeral(target, TYPING_EVENT, payload, source)
    return True
