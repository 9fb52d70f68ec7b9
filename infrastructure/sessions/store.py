"""The session store interface. Two implementations share its semantics exactly:
``InMemorySessionStore`` (memory mode, unit tests) and ``RedisSessionStore``.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from .models import ChatMessage, Note, Session, SessionStatus

#: How many messages :meth:`SessionStore.messages` returns when not told.
DEFAULT_MESSAGE_LIMIT = 100
#: How many messages a transcript keeps; older ones are dropped first.
DEFAULT_MAX_MESSAGES = 1000


@runtime_checkable
class SessionStore(Protocol):
    """Every method that changes a session checks its state and writes in one atomic step.

    Errors (all from :mod:`infrastructure.sessions.models`): ``SessionNotFound``;
    ``SessionExists``; ``IllegalTransition`` (a move the state machine forbids);
    ``SessionHeldByAnother`` (a takeover of a session another agent holds);
    ``NotHolder`` (an agent acting on a session it does not hold); ``ValueError``
    for a move to ``agent_active`` without an agent id.
    """

    async def create(self, session_name: str, display_name: str | None = None) -> Session:
        """A new session in ``ai``. Raises ``SessionExists`` (also for a closed one)."""
        ...

    async def get(self, session_name: str) -> Session: ...

    async def exists(self, session_name: str) -> bool:
        """Whether ``get`` would find the session (what a stream open checks: cheaper)."""
        ...

    async def escalate(self, session_name: str, reason: str | None = None) -> Session:
        """``ai | abandoned -> waiting_agent``: sets ``waiting_since``, joins the queue's
        tail."""
        ...

    async def requeue(self, session_name: str, agent_id: str | None = None) -> Session:
        """``agent_active -> waiting_agent`` at the front of the queue (its agent handed it
        back or is gone). With an ``agent_id``, only the holder may."""
        ...

    async def rate(self, session_name: str, score: int, comment: str | None = None) -> Session:
        """The customer's rating of a closed chat: ``NotClosed`` before it is closed,
        ``AlreadyRated`` the second time."""
        ...

    async def mark_read(
        self, session_name: str, agent_id: str | None, up_to: str | None = None
    ) -> Session:
        """A side has read the chat (up to the message ``up_to``): the holding agent
        (``unread`` back to 0; ``NotHolder`` for anyone else), or the customer (``None``)."""
        ...

    async def add_note(self, session_name: str, agent_id: str, content: str) -> Note:
        """An agent's internal note, kept apart from the transcript (customers never read
        notes: not on their channel, not in their transcript, not in their export)."""
        ...

    async def notes(self, session_name: str) -> list[Note]:
        """The session's notes, oldest first (agents only)."""
        ...

    async def recent_waits(self) -> list[int]:
        """The latest waits before an agent (ms, newest first, at most 50)."""
        ...

    async def cancel_wait(self, session_name: str) -> Session:
        """``waiting_agent -> ai``: the customer no longer wants a human."""
        ...

    async def takeover(self, session_name: str, agent_id: str) -> Session:
        """``waiting_agent -> agent_active``. Exactly one of many concurrent agents wins;
        the others get ``SessionHeldByAnother``. Idempotent for the holder."""
        ...

    async def release(self, session_name: str, agent_id: str) -> Session:
        """``agent_active -> ai``, by the holder only (``NotHolder`` otherwise)."""
        ...

    async def close(self, session_name: str, agent_id: str | None = None) -> Session:
        """``* -> closed``. With an ``agent_id``, a held session closes only for its holder."""
        ...

    async def set_status(
        self,
        session_name: str,
        status: SessionStatus,
        agent_id: str | None = None,
        *,
        reason: str | None = None,
    ) -> Session:
        """Any move, checked like the dedicated methods (for the outside status callback)."""
        ...

    async def queue(self) -> list[Session]:
        """Sessions in ``waiting_agent``, longest waiting first."""
        ...

    async def held_by(self, agent_id: str) -> list[Session]:
        """The sessions ``agent_id`` holds (``agent_active``), by name."""
        ...

    async def queue_position(self, session_name: str) -> int | None:
        """1-based place in the queue, ``None`` when the session is not waiting."""
        ...

    async def append_message(self, message: ChatMessage) -> ChatMessage:
        """Stores the message and returns it with its ``id``. An agent message is
        accepted only from the agent holding the session (``NotHolder``); a message with
        an ``attachment`` never goes to a closed session (``SessionClosed``)."""
        ...

    async def messages(
        self, session_name: str, limit: int = DEFAULT_MESSAGE_LIMIT
    ) -> list[ChatMessage]:
        """The latest ``limit`` messages, oldest first."""
        ...

    async def ping(self) -> bool:
        """True when the backing storage answers."""
        ...
