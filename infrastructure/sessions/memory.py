"""The in-memory session store: one process, the same semantics as Redis.

Every method does its check and its write without an ``await`` in between, so on
one event loop each call is atomic: concurrent takeovers cannot both win.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from infrastructure.events import check_name

from .models import (
    AlreadyRated,
    ChatMessage,
    NotClosed,
    Note,
    NotHolder,
    SenderRole,
    Session,
    SessionClosed,
    SessionExists,
    SessionNotFound,
    SessionStatus,
    datetime_to_ms,
    is_newer,
    ms_to_datetime,
    now_ms,
)
from .record_log import KIND_RATING, KIND_SESSION_CREATED, RecordLog
from .store import DEFAULT_MAX_MESSAGES, DEFAULT_MESSAGE_LIMIT
from .transitions import (
    CANCEL_FROM,
    ESCALATE_FROM,
    RELEASE_FROM,
    REQUEUE_FROM,
    apply_transition,
    check_request,
)

#: Expired sessions are dropped when touched, and swept at most this often.
_SWEEP_INTERVAL_MS = 60_000
#: How many recent waits before an agent are kept for the queue's estimate.
RECENT_WAITS = 50


class InMemorySessionStore:
    def __init__(
        self,
        *,
        ttl_seconds: int | None = None,
        max_messages: int = DEFAULT_MAX_MESSAGES,
        clock: Callable[[], int] = now_ms,
        record: RecordLog | None = None,
    ) -> None:
        """``ttl_seconds`` as ``SESSION_TTL_SECONDS`` (None: never expire); ``clock``
        gives epoch milliseconds (tests pass a fake one); ``record``: the record
        stream's twin, which every change is appended to (as the Lua scripts do)."""
        self.record = record
        if max_messages < 1:
            raise ValueError("max_messages must be >= 1")
        self._ttl_ms = None if ttl_seconds is None else ttl_seconds * 1000
        self._max_messages = max_messages
        self._clock = clock
        self._sessions: dict[str, Session] = {}
        self._transcripts: dict[str, deque[ChatMessage]] = {}
        self._expires_at: dict[str, int] = {}
        # The last message id of each session, so that ids keep increasing even
        # when the clock does not (the same rule as Redis stream ids).
        self._last_id: dict[str, tuple[int, int]] = {}
        self._last_sweep = clock()
        self._waits: deque[int] = deque(maxlen=RECENT_WAITS)
        self._notes: dict[str, list[Note]] = {}

    # --- internals (all synchronous: atomic on the event loop) ---------------

    def _expired(self, name: str, now: int) -> bool:
        expires = self._expires_at.get(name)
        return expires is not None and expires <= now

    def _drop(self, name: str) -> None:
        self._notes.pop(name, None)
        self._sessions.pop(name, None)
        self._transcripts.pop(name, None)
        self._expires_at.pop(name, None)
        self._last_id.pop(name, None)

    def _sweep(self, now: int) -> None:
        if now - self._last_sweep < _SWEEP_INTERVAL_MS:
            return
        self._last_sweep = now
        for name in [n for n in self._expires_at if self._expired(n, now)]:
            self._drop(name)

    def _load(self, name: str, now: int) -> Session:
        if self._expired(name, now):
            self._drop(name)
        session = self._sessions.get(name)
        if session is None:
            raise SessionNotFound(name)
        return session

    def _touch(self, name: str, now: int) -> None:
        if self._ttl_ms is not None:
            self._expires_at[name] = now + self._ttl_ms

    def _move(
        self,
        name: str,
        requested: SessionStatus,
        agent_id: str | None,
        reason: str | None = None,
        only_from: frozenset[SessionStatus] | None = None,
        *,
        front: bool = False,
    ) -> Session:
        check_request(requested, agent_id)
        now = self._clock()
        current = self._load(name, now)
        queued_at = None
        if front:  # ahead of everyone waiting now (as front_of_queue in lib.lua)
            waiting = self._waiting()
            queued_at = now
            if waiting and waiting[0].waiting_since is not None:
                queued_at = min(datetime_to_ms(waiting[0].waiting_since) - 1, now)
        updated = apply_transition(
            current,
            requested,
            agent_id=agent_id,
            reason=reason,
            now_ms=now,
            only_from=only_from,
            queued_at_ms=queued_at,
        )
        if updated is not current:
            if updated.status is SessionStatus.AGENT_ACTIVE and current.waiting_since:
                self._waits.appendleft(now - datetime_to_ms(current.waiting_since))
            self._sessions[name] = updated
            self._touch(name, now)
            if self.record is not None:  # record (as transition.lua)
                self.record.moved(now, current, updated, reason or "")
        return updated

    # --- what the in-memory desk reads and moves (synchronous: atomic) ---------

    def move_now(
        self,
        name: str,
        requested: SessionStatus,
        agent_id: str | None = None,
        *,
        front: bool = False,
    ) -> Session:
        """A move, checked like every other (the desk's assignment and sweep)."""
        return self._move(name, requested, agent_id, front=front)

    def reassign_now(
        self, name: str, from_agent: str, to_agent: str, note: str, reason: str | None = None
    ) -> Session:
        """A held chat to another agent (the desk's transfer and forced takeover; their
        checks are the desk's). ``reason``: the record's (default: a transfer's)."""
        now = self._clock()
        session = self._load(name, now)
        if session.status is not SessionStatus.AGENT_ACTIVE or session.agent_id != from_agent:
            raise NotHolder(name, from_agent, session.agent_id)
        at = ms_to_datetime(now)
        moved = session.model_copy(
            update={"agent_id": to_agent, "updated_at": at, "last_activity_at": at}
        )
        self._sessions[name] = moved
        self._touch(name, now)
        if self.record is not None:  # record (as reassign in lib.lua)
            self.record.moved(now, session, moved, reason or f"transfer from {from_agent}: {note}")
        return moved

    def peek(self, name: str) -> Session | None:
        try:
            return self._load(name, self._clock())
        except SessionNotFound:
            return None

    def waiting_now(self) -> list[Session]:
        return self._waiting()

    def held_now(self) -> list[Session]:
        now = self._clock()
        return [
            s
            for name, s in self._sessions.items()
            if s.status is SessionStatus.AGENT_ACTIVE and not self._expired(name, now)
        ]

    def _waiting(self) -> list[Session]:
        now = self._clock()
        waiting = [
            s
            for name, s in self._sessions.items()
            if s.status is SessionStatus.WAITING_AGENT and not self._expired(name, now)
        ]
        # The order of the Redis ZSET: by waiting_since (ms), ties by name.
        waiting.sort(key=lambda s: (s.waiting_since, s.session_name))
        return waiting

    # --- SessionStore ---------------------------------------------------------

    async def create(self, session_name: str, display_name: str | None = None) -> Session:
        # The name becomes part of Redis keys (and their hash tag): never let a
        # "{", ":" or "*" in; routes check it too, this is the last line.
        check_name(session_name)
        now = self._clock()
        self._sweep(now)
        if self._expired(session_name, now):
            self._drop(session_name)
        if session_name in self._sessions:
            raise SessionExists(session_name)
        at = ms_to_datetime(now)
        session = Session(
            session_name=session_name, created_at=at, updated_at=at, display_name=display_name
        )
        self._sessions[session_name] = session
        self._transcripts[session_name] = deque(maxlen=self._max_messages)
        self._touch(session_name, now)
        if self.record is not None:  # record (as create.lua)
            self.record.append(KIND_SESSION_CREATED, session_name, now)
        return session

    async def get(self, session_name: str) -> Session:
        return self._load(session_name, self._clock())

    async def exists(self, session_name: str) -> bool:
        try:
            self._load(session_name, self._clock())
        except SessionNotFound:
            return False
        return True

    async def escalate(self, session_name: str, reason: str | None = None) -> Session:
        return self._move(
            session_name, SessionStatus.WAITING_AGENT, None, reason, only_from=ESCALATE_FROM
        )

    async def requeue(self, session_name: str, agent_id: str | None = None) -> Session:
        return self._move(
            session_name, SessionStatus.WAITING_AGENT, agent_id, only_from=REQUEUE_FROM, front=True
        )

    async def rate(self, session_name: str, score: int, comment: str | None = None) -> Session:
        now = self._clock()
        session = self._load(session_name, now)
        if session.status is not SessionStatus.CLOSED:
            raise NotClosed(session_name, session.status)
        if session.rating is not None:
            raise AlreadyRated(session_name)
        rated = session.model_copy(update={"rating": score, "rating_comment": comment or None})
        self._sessions[session_name] = rated
        if self.record is not None:  # record (as rate.lua)
            self.record.append(
                KIND_RATING, session_name, now, score=str(score), comment=comment or ""
            )
        return rated

    async def mark_read(
        self, session_name: str, agent_id: str | None, up_to: str | None = None
    ) -> Session:
        session = self._load(session_name, self._clock())
        update: dict[str, object] = {}
        if agent_id is not None:
            if session.status is not SessionStatus.AGENT_ACTIVE or session.agent_id != agent_id:
                raise NotHolder(session_name, agent_id, session.agent_id)
            update["unread"] = 0
            if up_to and is_newer(up_to, session.agent_read_up_to):
                update["agent_read_up_to"] = up_to
        elif up_to and is_newer(up_to, session.customer_read_up_to):
            update["customer_read_up_to"] = up_to
        read = session.model_copy(update=update)
        self._sessions[session_name] = read
        return read

    async def add_note(self, session_name: str, agent_id: str, content: str) -> Note:
        now = self._clock()
        self._load(session_name, now)
        notes = self._notes.setdefault(session_name, [])
        last = notes[-1].id if notes else "0-0"
        last_ms, last_seq = (int(part) for part in last.split("-"))
        note_id = f"{now}-0" if now > last_ms else f"{last_ms}-{last_seq + 1}"
        note = Note(
            id=note_id,
            session_name=session_name,
            agent_id=agent_id,
            content=content,
            timestamp=ms_to_datetime(now),
        )
        notes.append(note)
        if self.record is not None:  # record (as append_note.lua)
            self.record.note(note, now)
        return note

    async def notes(self, session_name: str) -> list[Note]:
        self._load(session_name, self._clock())
        return list(self._notes.get(session_name, []))

    async def recent_waits(self) -> list[int]:
        return list(self._waits)

    async def cancel_wait(self, session_name: str) -> Session:
        return self._move(session_name, SessionStatus.AI, None, only_from=CANCEL_FROM)

    async def takeover(self, session_name: str, agent_id: str) -> Session:
        return self._move(session_name, SessionStatus.AGENT_ACTIVE, agent_id)

    async def release(self, session_name: str, agent_id: str) -> Session:
        return self._move(session_name, SessionStatus.AI, agent_id, only_from=RELEASE_FROM)

    async def close(self, session_name: str, agent_id: str | None = None) -> Session:
        return self._move(session_name, SessionStatus.CLOSED, agent_id)

    async def set_status(
        self,
        session_name: str,
        status: SessionStatus,
        agent_id: str | None = None,
        *,
        reason: str | None = None,
    ) -> Session:
        return self._move(session_name, SessionStatus(status), agent_id, reason)

    async def queue(self) -> list[Session]:
        return self._waiting()

    async def held_by(self, agent_id: str) -> list[Session]:
        now = self._clock()
        held = [
            session
            for name, session in list(self._sessions.items())
            if not self._expired(name, now)
            and session.status is SessionStatus.AGENT_ACTIVE
            and session.agent_id == agent_id
        ]
        return sorted(held, key=lambda s: s.session_name)

    async def queue_position(self, session_name: str) -> int | None:
        for position, session in enumerate(self._waiting(), start=1):
            if session.session_name == session_name:
                return position
        return None

    async def append_message(self, message: ChatMessage) -> ChatMessage:
        name = message.session_name
        now = self._clock()
        session = self._load(name, now)
        if message.attachment is not None and session.status is SessionStatus.CLOSED:
            raise SessionClosed(name)
        if message.sender is SenderRole.AGENT and (
            session.status is not SessionStatus.AGENT_ACTIVE
            or message.sender_id != session.agent_id
        ):
            raise NotHolder(name, message.sender_id or "", session.agent_id)
        last_ms, last_seq = self._last_id.get(name, (0, -1))
        ms, seq = (now, 0) if now > last_ms else (last_ms, last_seq + 1)
        self._last_id[name] = (ms, seq)
        # Millisecond timestamps, as the Redis store keeps them.
        stamp = ms_to_datetime(datetime_to_ms(message.timestamp))
        stored = message.model_copy(update={"id": f"{ms}-{seq}", "timestamp": stamp})
        self._transcripts[name].append(stored)
        self._sessions[name] = _after_message(session, stored, now)
        self._touch(name, now)
        if self.record is not None:  # record (as append_message.lua)
            self.record.message(stored, datetime_to_ms(stamp))
        return stored

    async def messages(
        self, session_name: str, limit: int = DEFAULT_MESSAGE_LIMIT
    ) -> list[ChatMessage]:
        self._load(session_name, self._clock())
        if limit <= 0:
            return []
        return list(self._transcripts[session_name])[-limit:]

    async def ping(self) -> bool:
        return True

    def forget(self, session_name: str) -> bool:
        """Erase a session and its transcript now (a customer's data deleted)."""
        found = session_name in self._sessions
        self._drop(session_name)
        return found


def _after_message(session: Session, message: ChatMessage, now: int) -> Session:
    """What a message changes in its session (as ``append_message.lua`` does)."""
    update: dict[str, object] = {"last_activity_at": ms_to_datetime(now)}
    if message.sender is SenderRole.CUSTOMER:
        if session.status in (SessionStatus.WAITING_AGENT, SessionStatus.AGENT_ACTIVE):
            update["unread"] = session.unread + 1
        if session.first_message is None:
            update["first_message"] = message.content[:200]
    elif message.sender is SenderRole.AGENT:
        update["unread"] = 0
    return session.model_copy(update=update)
