"""The desk in one process (memory mode, unit tests): the rules of the Redis scripts in
Python, over the in-memory session store. Every method does its reads and writes without
an ``await`` in between, so each is atomic on the event loop."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from infrastructure.config import Settings
from infrastructure.sessions.memory import InMemorySessionStore
from infrastructure.sessions.models import (
    AgentAtCapacity,
    AgentUnavailable,
    NotHolder,
    NotTakeable,
    Session,
    SessionNotFound,
    SessionStatus,
    datetime_to_ms,
    not_takeable_reason,
    now_ms,
)

from .models import (
    AgentPresence,
    AgentStatus,
    Assignment,
    PresenceChange,
    PresenceKind,
    SweepResult,
)


class InMemoryDesk:
    def __init__(
        self,
        store: InMemorySessionStore,
        settings: Settings,
        replica: str = "local",
        *,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self._store = store
        self._settings = settings
        self._replica = replica
        self._clock = clock
        #: What each agent said; what others saw last; since when it is gone.
        self._said: dict[str, AgentStatus] = {}
        self._seen: dict[str, AgentStatus] = {}
        self._gone_since: dict[str, int] = {}
        self._last_assigned: dict[str, float] = {}
        #: (kind, id) -> replica -> when its live stream expires (ms).
        self._streams: dict[tuple[PresenceKind, str], dict[str, int]] = {}
        self._customer_gone: dict[str, int] = {}

    # --- presence ---------------------------------------------------------------

    def _live(self, kind: PresenceKind, key: str, now: int) -> bool:
        return any(expires > now for expires in self._streams.get((kind, key), {}).values())

    def _presence(self, agent_id: str, now: int) -> AgentStatus:
        said = self._said.get(agent_id, AgentStatus.ONLINE)
        if said is AgentStatus.OFFLINE or not self._live("agent", agent_id, now):
            return AgentStatus.OFFLINE
        return said

    def _note(self, agent_id: str, now: int, changes: list[PresenceChange]) -> None:
        seen = self._presence(agent_id, now)
        if self._seen.get(agent_id) is not seen:
            self._seen[agent_id] = seen
            changes.append(PresenceChange(agent_id, seen))

    def _load(self) -> dict[str, list[str]]:
        held: dict[str, list[str]] = {}
        for session in sorted(self._store.held_now(), key=lambda s: s.session_name):
            held.setdefault(session.agent_id or "", []).append(session.session_name)
        return held

    async def enter(self, kind: PresenceKind, ids: Sequence[str]) -> list[PresenceChange]:
        now = self._clock()
        expires = now + int(self._settings.PRESENCE_TTL_SECONDS * 1000)
        changes: list[PresenceChange] = []
        for key in ids:
            self._streams.setdefault((kind, key), {})[self._replica] = expires
            if kind == "customer":
                self._customer_gone.pop(key, None)
            else:
                self._note(key, now, changes)
        return changes

    async def leave(self, kind: PresenceKind, ids: Sequence[str]) -> list[PresenceChange]:
        now = self._clock()
        changes: list[PresenceChange] = []
        for key in ids:
            self._streams.get((kind, key), {}).pop(self._replica, None)
            if kind == "agent":
                self._note(key, now, changes)
        return changes

    async def set_status(self, agent_id: str, status: AgentStatus) -> list[PresenceChange]:
        self._said[agent_id] = status
        changes: list[PresenceChange] = []
        self._note(agent_id, self._clock(), changes)
        return changes

    def _known(self) -> set[str]:
        return set(self._said) | {key for kind, key in self._streams if kind == "agent"}

    async def agents(self, agent_ids: Sequence[str] = ()) -> list[AgentPresence]:
        now = self._clock()
        load = self._load()
        capacity = self._settings.AGENT_MAX_CHATS
        return [
            AgentPresence(a, self._presence(a, now), len(load.get(a, [])), capacity)
            for a in sorted(self._known() | set(agent_ids))
        ]

    # --- transfer and assignment -----------------------------------------------

    async def transfer(
        self, session_name: str, from_agent: str, to_agent: str, note: str = ""
    ) -> Session:
        now = self._clock()
        session = self._store.peek(session_name)
        if session is None:
            raise SessionNotFound(session_name)
        if session.status is not SessionStatus.AGENT_ACTIVE or session.agent_id != from_agent:
            raise NotHolder(session_name, from_agent, session.agent_id)
        seen = self._presence(to_agent, now)
        if seen is not AgentStatus.ONLINE:
            raise AgentUnavailable(to_agent, str(seen))
        chats = len(self._load().get(to_agent, []))
        if chats >= self._settings.AGENT_MAX_CHATS:
            raise AgentAtCapacity(to_agent, chats)
        self._last_assigned[to_agent] = now
        return self._store.reassign_now(session_name, from_agent, to_agent, note)

    async def take_over(
        self, session_name: str, supervisor: str, expected_holder: str = ""
    ) -> tuple[Session, str]:
        session = self._store.peek(session_name)
        if session is None:
            raise SessionNotFound(session_name)
        holder = session.agent_id or ""
        why = not_takeable_reason(str(session.status), holder, supervisor, expected_holder)
        if why is not None:
            raise NotTakeable(session_name, why)
        reason = f"taken over from {holder} by {supervisor}"
        self._last_assigned[supervisor] = self._clock()
        return self._store.reassign_now(session_name, holder, supervisor, "", reason), holder

    async def active_chats(self) -> list[Session]:
        return sorted(self._store.held_now(), key=lambda s: s.session_name)

    async def assign(self) -> list[Assignment]:
        now = self._clock()
        capacity = self._settings.AGENT_MAX_CHATS
        load = {a: len(names) for a, names in self._load().items()}
        candidates = [
            a
            for a in sorted(self._known())
            if self._presence(a, now) is AgentStatus.ONLINE and load.get(a, 0) < capacity
        ]
        assigned: list[Assignment] = []
        for session in self._store.waiting_now():
            free = [a for a in candidates if load.get(a, 0) < capacity]
            if not free:
                break
            best = min(free, key=lambda a: (load.get(a, 0), self._last_assigned.get(a, 0), a))
            self._store.move_now(session.session_name, SessionStatus.AGENT_ACTIVE, best)
            load[best] = load.get(best, 0) + 1
            # Later than anyone idle before this call (ties within one call).
            self._last_assigned[best] = now + len(assigned) / 1000 + 0.001
            assigned.append(Assignment(session.session_name, best))
        return assigned

    # --- the sweep --------------------------------------------------------------

    async def sweep(self) -> SweepResult:
        s = self._settings
        now = self._clock()
        result = SweepResult([], [], [], [])
        holders = self._load()
        for agent in sorted(self._known()):
            self._note(agent, now, result.presence)
            seen = self._seen[agent]
            if seen is AgentStatus.OFFLINE and holders.get(agent):
                gone = self._gone_since.setdefault(agent, now)
                if now - gone >= s.AGENT_OFFLINE_GRACE_SECONDS * 1000:
                    # Each to the front, the last first: they keep the order they were held.
                    names = holders.pop(agent)
                    for name in reversed(names):
                        self._store.move_now(name, SessionStatus.WAITING_AGENT, front=True)
                    result.returned.extend(Assignment(name, agent) for name in names)
                    del self._gone_since[agent]
            elif seen is not AgentStatus.OFFLINE:
                self._gone_since.pop(agent, None)

        waiting = self._store.waiting_now()
        queued = {session.session_name for session in waiting}
        # A session that left the queue starts afresh if it comes back (as the scripts
        # clear customer_gone_since on every move).
        self._customer_gone = {k: v for k, v in self._customer_gone.items() if k in queued}
        for session in waiting:
            name = session.session_name
            if self._live("customer", name, now):
                self._customer_gone.pop(name, None)
                continue
            gone = self._customer_gone.setdefault(name, now)
            if now - gone >= s.CUSTOMER_ABANDON_SECONDS * 1000:
                self._store.move_now(name, SessionStatus.ABANDONED)
                del self._customer_gone[name]
                result.abandoned.append(name)

        idle_ms = s.SESSION_IDLE_CLOSE_SECONDS * 1000
        for agent, held in holders.items():
            for name in held:
                found = self._store.peek(name)
                last = found.last_activity_at if found else None
                if last is not None and now - datetime_to_ms(last) >= idle_ms:
                    self._store.move_now(name, SessionStatus.CLOSED)
                    result.idle_closed.append(Assignment(name, agent))
        return result
