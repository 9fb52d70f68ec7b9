"""The state machine as a pure function: what a requested move does to a session.

``InMemorySessionStore`` calls :func:`apply_transition` directly. ``transition.lua``
is the same decision tree for Redis (in the same order of checks, so that both
stores raise the same error for the same request).
"""

from __future__ import annotations

from .models import (
    IllegalTransition,
    NotHolder,
    Session,
    SessionHeldByAnother,
    SessionStatus,
    can_transition,
    ms_to_datetime,
)


def check_request(requested: SessionStatus, agent_id: str | None) -> None:
    """Checks that need no state: ``agent_active`` always names its agent."""
    if requested is SessionStatus.AGENT_ACTIVE and not agent_id:
        raise ValueError("an agent_id is required to move a session to agent_active")


def apply_transition(
    session: Session,
    requested: SessionStatus,
    *,
    agent_id: str | None,
    reason: str | None,
    now_ms: int,
    only_from: frozenset[SessionStatus] | None = None,
    queued_at_ms: int | None = None,
) -> Session:
    """The session after the move, or the same object when it is a no-op.

    ``agent_id`` is who asks. ``None`` means an outside authority (the status
    callback, the customer closing the chat): it may move a held session without
    being its holder. An agent that names itself must be the holder.
    ``only_from`` narrows the table for a dedicated method: ``release`` and
    ``cancel_wait`` both request ``ai`` but each from one state only.
    ``queued_at_ms``: the queue time of a session moving to ``waiting_agent`` when it is
    not ``now_ms`` (a chat returned to the front of the queue).
    """
    check_request(requested, agent_id)
    current = session.status
    name = session.session_name

    if current is SessionStatus.AGENT_ACTIVE and requested is SessionStatus.AGENT_ACTIVE:
        # A repeated takeover by the holder (a double click, a retried request) succeeds.
        if agent_id == session.agent_id:
            return session
        raise SessionHeldByAnother(session.agent_id or "", name)
    if only_from is not None and current not in only_from:
        raise IllegalTransition(name, current, requested)
    if not can_transition(current, requested):
        raise IllegalTransition(name, current, requested)
    if (
        current is SessionStatus.AGENT_ACTIVE
        and agent_id is not None
        and agent_id != session.agent_id
    ):
        raise NotHolder(name, agent_id, session.agent_id)

    now = ms_to_datetime(now_ms)
    # What every move does; each target state then sets what is its own.
    update: dict[str, object] = {
        "status": requested,
        "updated_at": now,
        "agent_id": None,
        "waiting_since": None,
    }
    match requested:
        case SessionStatus.WAITING_AGENT if current is SessionStatus.AGENT_ACTIVE:
            # Back in the queue (its agent is gone): the reason and the unread count stay.
            update["waiting_since"] = ms_to_datetime(queued_at_ms or now_ms)
        case SessionStatus.WAITING_AGENT:
            update |= {
                "waiting_since": ms_to_datetime(queued_at_ms or now_ms),
                "escalation_reason": reason or None,
                "unread": 0,
            }
        case SessionStatus.AGENT_ACTIVE:
            # The reason stays: the agent reads it.
            update |= {"agent_id": agent_id, "last_activity_at": now}
        case SessionStatus.AI:
            update["escalation_reason"] = None
        case SessionStatus.CLOSED | SessionStatus.ABANDONED:
            pass
    return session.model_copy(update=update)


# ``release`` and ``cancel_wait`` both request ``ai``; each is legal from one state
# only, so that a release never cancels a queued request and vice versa.
RELEASE_FROM = frozenset({SessionStatus.AGENT_ACTIVE})
CANCEL_FROM = frozenset({SessionStatus.WAITING_AGENT})
#: A customer (or a service) asks for a human from the bot, or again after leaving the
#: queue; never from ``agent_active`` (that is :data:`REQUEUE_FROM`, for a gone agent).
ESCALATE_FROM = frozenset({SessionStatus.AI, SessionStatus.ABANDONED})
REQUEUE_FROM = frozenset({SessionStatus.AGENT_ACTIVE})
