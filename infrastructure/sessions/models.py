"""Session states, the legal moves between them, and the errors of the session store.

The transition table lives here, once, as data: the in-memory store applies it in
Python and the Redis store's Lua script (``transition.lua``) mirrors it. The shared
contract tests run the same cases against both so that the two cannot drift apart.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Final

from pydantic import BaseModel, ConfigDict, Field

from infrastructure.attachments.models import Attachment

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS: Final = timedelta(milliseconds=1)


class SessionStatus(StrEnum):
    AI = "ai"
    WAITING_AGENT = "waiting_agent"
    AGENT_ACTIVE = "agent_active"
    CLOSED = "closed"
    #: The customer left the queue (no open stream for ``CUSTOMER_ABANDON_SECONDS``).
    ABANDONED = "abandoned"


#: The main path is ``ai -> waiting_agent -> agent_active -> ai (release) | closed``.
#: Beyond it the spec's diagram leaves out, these are allowed too:
#:   * ``ai -> closed``            the customer leaves before ever asking for a human;
#:   * ``waiting_agent -> closed`` the customer leaves while queued;
#:   * ``waiting_agent -> ai``     the customer cancels the request for a human;
#:   * ``waiting_agent -> abandoned`` the customer is gone (no open stream for a while);
#:   * ``agent_active -> waiting_agent`` its agent is gone: back to the front of the queue;
#:   * ``abandoned -> ai | waiting_agent | closed`` the customer came back after all.
#: ``closed`` is terminal: a closed conversation is never reopened (start a new session).
ALLOWED_TRANSITIONS: Final[dict[SessionStatus, frozenset[SessionStatus]]] = {
    SessionStatus.AI: frozenset({SessionStatus.WAITING_AGENT, SessionStatus.CLOSED}),
    SessionStatus.WAITING_AGENT: frozenset(
        {
            SessionStatus.AGENT_ACTIVE,
            SessionStatus.AI,
            SessionStatus.CLOSED,
            SessionStatus.ABANDONED,
        }
    ),
    SessionStatus.AGENT_ACTIVE: frozenset(
        {SessionStatus.AI, SessionStatus.CLOSED, SessionStatus.WAITING_AGENT}
    ),
    SessionStatus.ABANDONED: frozenset(
        {SessionStatus.AI, SessionStatus.WAITING_AGENT, SessionStatus.CLOSED}
    ),
    SessionStatus.CLOSED: frozenset(),
}


def can_transition(current: SessionStatus, requested: SessionStatus) -> bool:
    return requested in ALLOWED_TRANSITIONS[current]


class SenderRole(StrEnum):
    CUSTOMER = "customer"
    BOT = "bot"
    AGENT = "agent"
    SYSTEM = "system"


# Times are kept at millisecond precision everywhere: Redis stores integer
# milliseconds, and truncating in memory too keeps both stores' answers identical.
def now_ms() -> int:
    return time.time_ns() // 1_000_000


def ms_to_datetime(ms: int) -> datetime:
    return _EPOCH + ms * _ONE_MS


def datetime_to_ms(value: datetime) -> int:
    return (value - _EPOCH) // _ONE_MS


def _utc_now() -> datetime:
    return ms_to_datetime(now_ms())


class Session(BaseModel):
    # Frozen: the in-memory store hands out the very objects it keeps, so a caller
    # must not be able to change the store's state by mutating an answer.
    model_config = ConfigDict(frozen=True)

    session_name: str
    status: SessionStatus = SessionStatus.AI
    #: The agent holding the session; set only while ``agent_active``.
    agent_id: str | None = None
    created_at: datetime
    updated_at: datetime
    #: When the customer asked for a human; set only while ``waiting_agent``.
    waiting_since: datetime | None = None
    #: Why the session was escalated; kept while an agent holds it, cleared back in ``ai``.
    escalation_reason: str | None = None
    #: The name the customer gave at the start (optional): what agents see in the queue.
    display_name: str | None = None
    #: The customer's first message: what agents see in the queue before taking it.
    first_message: str | None = None
    #: Customer messages since the holding agent last wrote or read (since the escalation
    #: while waiting).
    unread: int = 0
    #: The last message either way (or the takeover): what the idle close measures.
    last_activity_at: datetime | None = None
    #: The customer's rating of a closed chat (1-5) and its comment; once.
    rating: int | None = None
    rating_comment: str | None = None
    #: Read receipts: the last message id each side has seen.
    customer_read_up_to: str | None = None
    agent_read_up_to: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(frozen=True)

    #: Assigned by the store on append (``"<ms>-<seq>"``, ordered); empty until then.
    id: str = ""
    session_name: str
    sender: SenderRole
    #: The agent id for agent messages (required there); free-form or None otherwise.
    sender_id: str | None = None
    content: str
    timestamp: datetime = Field(default_factory=_utc_now)
    #: The file the message carries (images, PDFs); its ``content`` is then the file's name.
    attachment: Attachment | None = None


class Note(BaseModel):
    """An agent's internal note: agents read it, a customer never does."""

    model_config = ConfigDict(frozen=True)

    id: str
    session_name: str
    agent_id: str
    content: str
    timestamp: datetime


# --- errors -----------------------------------------------------------------


class SessionError(Exception):
    """Base of every error the session store raises on purpose."""


class SessionNotFound(SessionError, LookupError):
    def __init__(self, session_name: str) -> None:
        super().__init__(f"session {session_name!r} not found")
        self.session_name = session_name


class SessionConflict(SessionError):
    """The request contradicts the session's current state (an HTTP 409)."""


class SessionExists(SessionConflict):
    def __init__(self, session_name: str) -> None:
        super().__init__(f"session {session_name!r} already exists")
        self.session_name = session_name


class IllegalTransition(SessionConflict):
    def __init__(
        self, session_name: str, current_status: SessionStatus, requested: SessionStatus
    ) -> None:
        allowed = sorted(ALLOWED_TRANSITIONS[current_status])
        hint = ", ".join(allowed) if allowed else "nothing (it is final)"
        super().__init__(
            f"session {session_name!r} is {current_status}: it cannot move to {requested}"
            f" (from {current_status} it can move to {hint})"
        )
        self.session_name = session_name
        self.current_status = current_status
        self.requested = requested


class SessionHeldByAnother(SessionConflict):
    """A takeover of a session another agent already holds."""

    def __init__(self, agent_id: str, session_name: str | None = None) -> None:
        where = f"session {session_name!r}" if session_name else "the session"
        super().__init__(f"{where} is already held by agent {agent_id!r}")
        self.agent_id = agent_id
        self.session_name = session_name


class AlreadyRated(SessionConflict):
    def __init__(self, session_name: str) -> None:
        super().__init__(
            f"session {session_name!r} has been rated already (a rating is given once)"
        )
        self.session_name = session_name


class NotClosed(SessionConflict):
    def __init__(self, session_name: str, status: SessionStatus) -> None:
        super().__init__(f"session {session_name!r} is {status}: only a closed chat can be rated")
        self.session_name = session_name
        self.status = status


class SessionClosed(SessionConflict):
    """A file sent to a closed chat (a closed conversation is never written to again)."""

    def __init__(self, session_name: str) -> None:
        super().__init__(f"session {session_name!r} is closed: nothing more can be sent to it")
        self.session_name = session_name


class AgentUnavailable(SessionConflict):
    """A transfer to an agent who is not online (away, or offline)."""

    def __init__(self, agent_id: str, presence: str) -> None:
        super().__init__(
            f"agent {agent_id!r} is {presence}: a chat is transferred to an online agent only"
        )
        self.agent_id = agent_id
        self.presence = presence


class AgentAtCapacity(SessionConflict):
    def __init__(self, agent_id: str, chats: int) -> None:
        super().__init__(f"agent {agent_id!r} already holds {chats} chats (its capacity)")
        self.agent_id = agent_id
        self.chats = chats


class NotHolder(SessionConflict):
    """An agent releasing, closing or writing to a session it does not hold."""

    def __init__(self, session_name: str, agent_id: str, holder: str | None) -> None:
        held = f"held by agent {holder!r}" if holder else "not held by any agent"
        super().__init__(f"agent {agent_id!r} does not hold session {session_name!r} ({held})")
        self.session_name = session_name
        self.agent_id = agent_id
        self.holder = holder


class NotTakeable(SessionConflict):
    """A supervisor's forced takeover of a chat that is not held by another agent (waiting,
    closed, its own already), or that moved since the supervisor looked (``expected``)."""

    def __init__(self, session_name: str, reason: str) -> None:
        super().__init__(f"session {session_name!r} cannot be taken over: {reason}")
        self.session_name = session_name
        self.reason = reason


def not_takeable_reason(status: str, holder: str, supervisor: str, expected: str) -> str | None:
    """Why a forced takeover is refused (None: it may go ahead); the Lua script's twin."""
    if status != SessionStatus.AGENT_ACTIVE:
        return f"it is {status}, not held by an agent (take a waiting chat from the queue)"
    if holder == supervisor:
        return "you hold it already"
    if expected and holder != expected:
        return f"it is held by {holder!r} now, not {expected!r}"
    return None


def is_newer(candidate: str, current: str | None) -> bool:
    """Whether message id ``candidate`` (``<ms>-<seq>``) comes after ``current``."""
    if not current:
        return True
    ms, _, seq = candidate.partition("-")
    current_ms, _, current_seq = current.partition("-")
    return (int(ms), int(seq or 0)) > (int(current_ms), int(current_seq or 0))
