"""The manual (human) side of a chatbot session: the seed's ``manual`` handlers.

``manual_escalate`` is "转人工": the session waits for an agent, the customer is
told its place in the queue, and every agent hears of it (``transfer_request``
on the broadcast channel). ``manual_message`` is a customer message while a human
is (or will be) in charge. ``notify_callback`` is an outside system reporting a
status change; it is checked and published like any other.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from infrastructure.bootstrap.sse import SseBus
from infrastructure.desk.service import DeskService
from infrastructure.hours.service import tell_out_of_hours
from infrastructure.sessions import (
    ChatMessage,
    SenderRole,
    Session,
    SessionStatus,
    SessionStore,
)
from infrastructure.sessions.notify import (
    publish_message,
    publish_status,
    publish_transfer_request,
    session_payload,
)
from infrastructure.webhooks.emit import emit_webhook

SOURCE = "ai_chatbot"
_CJK = re.compile(r"[\u3400-\u9fff]")


async def manual_escalate(
    desk: DeskService, session_name: str, reason: str | None = None, now: datetime | None = None
) -> Session:
    """The customer waits for an agent: every agent hears of it, and (in ``auto`` mode) the
    least busy online agent gets it at once. Outside ``BUSINESS_HOURS`` the bot answers
    with the next opening time and offers to leave a message; the session stays as it was."""
    bus, store = desk.bus, desk.store
    hours, now = desk.settings.BUSINESS_HOURS, now or datetime.now(UTC)
    if hours is not None and not hours.is_open(now):
        chinese = bool(_CJK.search(reason or ""))
        await tell_out_of_hours(bus, store, session_name, hours, now, chinese, SOURCE)
        return await store.get(session_name)
    before = await store.get(session_name)
    session = await store.escalate(session_name, reason)
    await publish_status(bus, store, session, SOURCE, previous=before.status)
    await publish_transfer_request(bus, store, session, SOURCE)
    await emit_webhook(bus, "escalated", session_name, session_payload(session))
    await desk.queue_changed()
    return await store.get(session_name)


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
    desk: DeskService,
    session_name: str,
    status: SessionStatus,
    agent_id: str | None = None,
) -> Session:
    bus, store = desk.bus, desk.store
    before = await store.get(session_name)
    session = await store.set_status(session_name, status, agent_id)
    await publish_status(
        bus, store, session, SOURCE, previous=before.status, previous_agent=before.agent_id
    )
    if status is SessionStatus.WAITING_AGENT:
        await publish_transfer_request(bus, store, session, SOURCE)
    if SessionStatus.WAITING_AGENT in (status, before.status) or (
        before.status is SessionStatus.AGENT_ACTIVE
    ):
        await desk.queue_changed()
    return session
