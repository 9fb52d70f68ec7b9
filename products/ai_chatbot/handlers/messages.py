"""A customer's message: the bot answers while the session is ``ai``.

Asking for a human ("转人工", "human", ...) escalates instead of answering. Once
an agent is involved, the message goes to the agent and the bot stays quiet.
"""

from __future__ import annotations

from dataclasses import dataclass

from infrastructure.desk.service import DeskService
from infrastructure.events import EventType, Target
from infrastructure.sessions import ChatMessage, SenderRole, SessionStatus
from infrastructure.sessions.notify import publish_message
from products.ai_chatbot.handlers.manual import SOURCE, manual_escalate, manual_message
from products.ai_chatbot.responders.base import Responder, wants_human

HISTORY_FOR_BOT = 20


@dataclass(frozen=True, slots=True)
class CustomerMessageResult:
    message: ChatMessage
    status: SessionStatus
    reply: ChatMessage | None = None
    escalated: bool = False


def _waits(status: SessionStatus) -> bool:
    """Escalated: in the queue or with an agent (out of hours it stays where it was)."""
    return status in (SessionStatus.WAITING_AGENT, SessionStatus.AGENT_ACTIVE)


async def customer_message(
    desk: DeskService, responder: Responder, session_name: str, content: str
) -> CustomerMessageResult:
    bus, store = desk.bus, desk.store
    session = await store.get(session_name)
    if session.status is SessionStatus.ABANDONED:
        # Back after leaving the queue: they still want a human (at the queue's tail).
        message = await manual_message(bus, store, session_name, content)
        escalated = await manual_escalate(desk, session_name, reason=content[:200])
        return CustomerMessageResult(message, escalated.status, escalated=_waits(escalated.status))
    if session.status is not SessionStatus.AI:
        message = await manual_message(bus, store, session_name, content)
        return CustomerMessageResult(message, session.status)

    message = await store.append_message(
        ChatMessage(session_name=session_name, sender=SenderRole.CUSTOMER, content=content)
    )
    await publish_message(bus, message, SOURCE)
    if wants_human(content):
        escalated = await manual_escalate(desk, session_name, reason=content[:200])
        return CustomerMessageResult(message, escalated.status, escalated=_waits(escalated.status))

    history = await store.messages(session_name, limit=HISTORY_FOR_BOT)
    parts: list[str] = []
    async for delta in responder.reply(session, history, content):
        parts.append(delta)
        # Streamed answers show as they come; the final new_message is the whole text.
        await bus.publish(
            Target.session(session_name),
            EventType.NEW_MESSAGE,
            {"session_name": session_name, "sender": "bot", "delta": delta, "partial": True},
            SOURCE,
        )
    reply = await store.append_message(
        ChatMessage(session_name=session_name, sender=SenderRole.BOT, content="".join(parts))
    )
    await publish_message(bus, reply, SOURCE)
    return CustomerMessageResult(message, SessionStatus.AI, reply=reply)
