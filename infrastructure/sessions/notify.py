"""How a session's changes become events: one place, used by both services.

* every message, either way: ``new_message`` on the session channel (and on the
  holding agent's channel, so an agent's own stream shows its sessions);
* every status change: ``status_change`` on the session channel, with the queue
  position and time waited while waiting (as Zammad and Rocket.Chat show it);
* an escalation: also ``transfer_request`` on the broadcast channel;
* a session leaving the queue moves those behind it up: each gets a
  ``status_change`` with its new place.
"""

from __future__ import annotations

import statistics
from datetime import UTC, datetime
from typing import Any

from infrastructure.bus.api import SseBus
from infrastructure.events import EventType, Target
from infrastructure.sessions.models import ChatMessage, Note, Session, SessionStatus
from infrastructure.sessions.store import SessionStore
from infrastructure.webhooks.emit import emit_webhook


def session_payload(session: Session, position: int | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "session_name": session.session_name,
        "status": str(session.status),
        "agent_id": session.agent_id,
    }
    if session.status is SessionStatus.WAITING_AGENT and session.waiting_since is not None:
        payload["queue_position"] = position
        payload["waiting_since"] = session.waiting_since.isoformat()
        payload["waited_seconds"] = round(
            (datetime.now(UTC) - session.waiting_since).total_seconds(), 3
        )
    if session.escalation_reason:
        payload["reason"] = session.escalation_reason
    if session.display_name:
        payload["display_name"] = session.display_name
    if session.first_message:
        payload["first_message"] = session.first_message
    return payload


def message_payload(message: ChatMessage) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "session_name": message.session_name,
        "message_id": message.id,
        "sender": str(message.sender),
        "sender_id": message.sender_id,
        "content": message.content,
        "timestamp": message.timestamp.isoformat(),
    }
    if message.attachment is not None:
        # What the pages show (a thumbnail, a file chip) and the links they fetch it by.
        payload["attachment"] = message.attachment.model_dump()
    return payload


async def publish_status(
    bus: SseBus,
    store: SessionStore,
    session: Session,
    source: str,
    previous: SessionStatus | None = None,
    previous_agent: str | None = None,
) -> None:
    position = await store.queue_position(session.session_name)
    payload = session_payload(session, position)
    if previous is not None:
        payload["previous_status"] = str(previous)
    await bus.publish(
        Target.session(session.session_name), EventType.STATUS_CHANGE, payload, source
    )
    # Agents hear of their sessions on their own channel: the holder, and an agent
    # who just lost the session (released, closed, or moved away by a callback).
    agents = {session.agent_id} if session.status is SessionStatus.AGENT_ACTIVE else set()
    if previous_agent:
        agents.add(previous_agent)
    for agent_id in sorted(a for a in agents if a):
        await bus.publish(Target.agent(agent_id), EventType.STATUS_CHANGE, payload, source)


async def publish_transfer_request(
    bus: SseBus, store: SessionStore, session: Session, source: str
) -> None:
    position = await store.queue_position(session.session_name)
    await bus.publish(
        Target.broadcast(), EventType.TRANSFER_REQUEST, session_payload(session, position), source
    )


def estimate_wait(recent_waits_ms: list[int], waited_seconds: float) -> float | None:
    """What is left of a typical wait: the median of the latest waits before an agent,
    less what this customer has waited already (None until anyone was assigned)."""
    if not recent_waits_ms:
        return None
    median = statistics.median(recent_waits_ms) / 1000
    return round(max(0.0, median - waited_seconds))


def queue_info(
    session: Session, position: int | None, recent_waits_ms: list[int]
) -> dict[str, Any]:
    """The ``queue_position`` event's payload (and ``GET .../queue``'s answer)."""
    estimate = None
    if position is not None and session.waiting_since is not None:
        waited = (datetime.now(UTC) - session.waiting_since).total_seconds()
        estimate = estimate_wait(recent_waits_ms, waited)
    return {
        "session_name": session.session_name,
        "position": position,
        "estimated_wait_seconds": estimate,
    }


async def publish_queue_moved(bus: SseBus, store: SessionStore, source: str) -> None:
    """Tell every waiting session its (new) place and wait; and agents, the queue."""
    waiting = await store.queue()
    waits = await store.recent_waits() if waiting else []
    for place, session in enumerate(waiting, start=1):
        target = Target.session(session.session_name)
        await bus.publish(target, EventType.STATUS_CHANGE, session_payload(session, place), source)
        await bus.publish(target, "queue_position", queue_info(session, place, waits), source)
    await bus.publish(
        Target.broadcast(),
        "queue_changed",
        {
            "waiting": [s.session_name for s in waiting],
            "length": len(waiting),
            "names": {s.session_name: s.display_name for s in waiting if s.display_name},
        },
        source,
    )


async def publish_message(
    bus: SseBus, message: ChatMessage, source: str, holder: str | None = None
) -> None:
    payload = message_payload(message)
    await bus.publish(Target.session(message.session_name), EventType.NEW_MESSAGE, payload, source)
    if holder:
        await bus.publish(Target.agent(holder), EventType.NEW_MESSAGE, payload, source)
    await emit_webhook(bus, "message", message.session_name, payload)


async def publish_read(
    bus: SseBus, session: Session, reader: str, up_to: str, source: str | None = None
) -> None:
    """A read receipt: ``reader`` (``customer`` | ``agent``) has seen up to ``up_to``; both
    sides' pages show "Seen" under the messages it covers."""
    payload = {"session_name": session.session_name, "reader": reader, "up_to": up_to}
    await bus.publish(Target.session(session.session_name), "read", payload, source)
    if session.agent_id:
        await bus.publish(Target.agent(session.agent_id), "read", payload, source)


async def publish_note(bus: SseBus, note: Note, holder: str | None, source: str) -> None:
    """An internal note: to agents only (the holder's channel and its author's), never on
    the session channel a customer follows."""
    payload = {
        "session_name": note.session_name,
        "note_id": note.id,
        "agent_id": note.agent_id,
        "content": note.content,
        "timestamp": note.timestamp.isoformat(),
    }
    for agent_id in sorted({a for a in (holder, note.agent_id) if a}):
        await bus.publish(Target.agent(agent_id), "note", payload, source)
