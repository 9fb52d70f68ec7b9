"""An agent's work on sessions: the queue, takeover, release, messages, streams.

Takeover is atomic in the store (one Lua script in Redis): of many agents
taking the same session at once exactly one wins; the others get a 409 naming
the holder.
"""

from __future__ import annotations

from infrastructure.bootstrap.sse import SseBus
from infrastructure.desk.service import DeskService
from infrastructure.events import Target
from infrastructure.sessions import (
    ChatMessage,
    NotHolder,
    SenderRole,
    Session,
    SessionStatus,
    SessionStore,
)
from infrastructure.sessions.models import Note
from infrastructure.sessions.notify import (
    publish_message,
    publish_note,
    publish_status,
    session_payload,
)
from infrastructure.web.models import SessionPublic
from infrastructure.webhooks.emit import emit_webhook

SOURCE = "agent_workbench"


async def waiting_queue(store: SessionStore) -> list[SessionPublic]:
    """Waiting sessions, oldest first, each with its place and time waited."""
    return [SessionPublic.of(s, place) for place, s in enumerate(await store.queue(), start=1)]


async def held_sessions(store: SessionStore, agent_id: str) -> list[SessionPublic]:
    """What an agent holds: its workbench after a reload or on a second screen."""
    return [SessionPublic.of(s) for s in await store.held_by(agent_id)]


#: What ``GET /api/sessions?status=`` can list: the queue, and the caller's own sessions.
LISTABLE = (SessionStatus.WAITING_AGENT, SessionStatus.AGENT_ACTIVE)


async def sessions_by_status(
    store: SessionStore, status: SessionStatus, agent_id: str
) -> list[SessionPublic]:
    if status is SessionStatus.WAITING_AGENT:
        return await waiting_queue(store)
    if status is SessionStatus.AGENT_ACTIVE:
        return await held_sessions(store, agent_id)
    raise ValueError(f"status={status} cannot be listed: use one of {', '.join(LISTABLE)}")


def agent_targets(agent_id: str) -> list[Target]:
    """An agent follows its own channel and the broadcast (new transfer requests)."""
    return [Target.agent(agent_id), Target.broadcast()]


async def takeover(desk: DeskService, session_name: str, agent_id: str) -> Session:
    """A manual pick from the queue (both modes): of many agents at once, one wins."""
    bus, store = desk.bus, desk.store
    before = await store.get(session_name)
    session = await store.takeover(session_name, agent_id)
    if before.status is not SessionStatus.AGENT_ACTIVE:
        # The customer sees "agent <id> joined"; those behind in the queue move up.
        await publish_status(bus, store, session, SOURCE, previous=before.status)
        await emit_webhook(bus, "assigned", session_name, session_payload(session))
        await desk.queue_changed()
    return session


async def release(desk: DeskService, session_name: str, agent_id: str) -> Session:
    """Back to the bot; the agent's freed slot takes the oldest waiting chat."""
    session = await desk.store.release(session_name, agent_id)
    await publish_status(
        desk.bus,
        desk.store,
        session,
        SOURCE,
        previous=SessionStatus.AGENT_ACTIVE,
        previous_agent=agent_id,
    )
    await desk.queue_changed()
    return session


async def close(desk: DeskService, session_name: str, agent_id: str) -> Session:
    """Closed by the agent holding it; the customer's page then asks for a rating."""
    bus, store = desk.bus, desk.store
    before = await store.get(session_name)
    session = await store.close(session_name, agent_id)
    await publish_status(
        bus, store, session, SOURCE, previous=before.status, previous_agent=before.agent_id
    )
    await emit_webhook(bus, "closed", session_name, {**session_payload(session), "by": agent_id})
    await desk.queue_changed()
    return session


async def agent_message(
    bus: SseBus, store: SessionStore, session_name: str, agent_id: str, content: str
) -> ChatMessage:
    """An agent writes to a session it holds; the bot never answers it."""
    session = await store.get(session_name)
    if session.status is not SessionStatus.AGENT_ACTIVE or session.agent_id != agent_id:
        raise NotHolder(session_name, agent_id, session.agent_id)
    message = await store.append_message(
        ChatMessage(
            session_name=session_name, sender=SenderRole.AGENT, sender_id=agent_id, content=content
        )
    )
    await publish_message(bus, message, SOURCE, holder=agent_id)
    return message


async def transfer(
    desk: DeskService, session_name: str, agent_id: str, to_agent_id: str | None, note: str
) -> Session:
    """To a colleague (atomic: one of two transfers at once wins), or back to the queue."""
    if to_agent_id is None:
        return await desk.to_queue(session_name, agent_id)
    if to_agent_id == agent_id:
        raise ValueError("a chat is transferred to another agent, not to its holder")
    return await desk.transfer(session_name, agent_id, to_agent_id, note)


async def add_note(
    bus: SseBus, store: SessionStore, session_name: str, agent_id: str, text: str
) -> Note:
    """An internal note on any session an agent can see: agents read it, customers never."""
    note = await store.add_note(session_name, agent_id, text)
    session = await store.get(session_name)
    await publish_note(bus, note, session.agent_id, SOURCE)
    return note
