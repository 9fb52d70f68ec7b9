"""Out of hours: the customer leaves a message for the agents (name, contact, text)."""

from __future__ import annotations

from infrastructure.bootstrap.sse import SseBus
from infrastructure.hours.inbox import LeftMessage, left_messages_of
from infrastructure.hours.service import leave_message as leave
from infrastructure.sessions import ChatMessage, SessionStore
from infrastructure.sessions.models import now_ms
from products.ai_chatbot.handlers.manual import SOURCE


async def leave_message(
    bus: SseBus, store: SessionStore, session_name: str, name: str, contact: str, text: str
) -> ChatMessage:
    """Kept in the transcript and in the inbox agents read; the latest one per session."""
    await store.get(session_name)  # a session that does not exist: 404
    left = LeftMessage(session_name, name.strip(), contact.strip(), text.strip(), now_ms())
    return await leave(bus, store, left_messages_of(bus), left, SOURCE)
