"""The manual (human) side of a chatbot session: the seed's ``manual`` handlers.

``manual_escalate`` is "转人工": the session waits for an agent, the customer is
told its place in the queue, and every agent hears of it (``transfer_request``
on the broadcast channel). ``manual_message`` is a customer message while a human
is (or will be) in charge. ``notify_callback`` is an outside system reporting a
status change; it is checked and published like any other.
"""

from __future__ import annotations

from infrastructure.bootstrap.sse import SseBus
from infrastructure.sessions import (
    ChatMessage,
    SenderRole,
    Session,
    SessionStatus,
    SessionStore,
)
from infrastructure.sessions.notify import (
    publish_message,
    publish_queue_moved,
    publish_status,
    publish_transfer_request,
)

SOURCE = "ai_chatbot"


async def manual_escalate(
    bus: SseBus, store: SessionStore, session_name: str, reason: str | None = None
) -> Session:
    session = await store.escalate(session_name, reason)
    await publish_status(bus, store, session, SOURCE, previous=SessionStatus.AI)
    await publish_transfer_request(bus, store, session, SOURCE)
    return session


async def manual_message(
    bus: SseBus, store: SessionStore, session_name: str, content: str
) -> ChatMessage:
    session = await store.get(session_name)
    message = await store.append_message(
        ChatMessage(session_name=session_name, sender=SenderRole.CUSTOMER, content=content)
    )
    await publish_message(bus, message, SOURCE, holder=session.agent_id)
    return message


async def notify_callback(
    bus: SseBus,
    store: SessionStore,
    session_name: str,
    status: SessionStatus,
    agent_id: str | None = None,
) -> Session:
    before = await store.get(session_name)
    session = await store.set_status(session_name, status, agent_id)
    await publish_status(
        bus, store, session, SOURCE, previous=before.status, previous_agent=before.agent_id
    )
    if status is SessionStatus.WAITING_AGENT:
        await publish_transfer_request(bus, store, session, SOURCE)
    elif before.status is SessionStatus.WAITING_AGENT:
        await publish_queue_moved(bus, store, SOURCE)
    return session
