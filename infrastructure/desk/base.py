"""The desk interface. ``RedisDesk`` (any number of replicas) and ``InMemoryDesk`` (one
process, unit tests) share its semantics; the contract tests run both."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from infrastructure.sessions.models import Session

from .models import (
    AgentPresence,
    AgentStatus,
    Assignment,
    PresenceChange,
    PresenceKind,
    SweepResult,
)


class Desk(Protocol):
    """Presence, automatic assignment and the periodic sweep, each atomic."""

    async def enter(self, kind: PresenceKind, ids: Sequence[str]) -> list[PresenceChange]:
        """This replica has a live stream of each of ``ids`` (refreshed while it lasts)."""
        ...

    async def leave(self, kind: PresenceKind, ids: Sequence[str]) -> list[PresenceChange]:
        """This replica's last stream of each of ``ids`` has closed."""
        ...

    async def set_status(self, agent_id: str, status: AgentStatus) -> list[PresenceChange]:
        """What the agent says it is (``offline`` wins over any open stream)."""
        ...

    async def agents(self, agent_ids: Sequence[str] = ()) -> list[AgentPresence]:
        """Every agent seen (and each of ``agent_ids``), by id."""
        ...

    async def transfer(
        self, session_name: str, from_agent: str, to_agent: str, note: str = ""
    ) -> Session:
        """The holder hands a chat to another agent, atomically: ``NotHolder`` unless
        ``from_agent`` holds it, ``AgentUnavailable`` unless ``to_agent`` is online,
        ``AgentAtCapacity`` when it is full."""
        ...

    async def take_over(
        self, session_name: str, supervisor: str, expected_holder: str = ""
    ) -> tuple[Session, str]:
        """A supervisor takes a chat another agent holds, atomically (whatever its own load
        or presence); the chat and who held it. ``NotTakeable`` unless it is held by another
        agent (and, when given, by ``expected_holder``)."""
        ...

    async def active_chats(self) -> list[Session]:
        """Every chat an agent holds now, by name (the supervisor's view)."""
        ...

    async def assign(self) -> list[Assignment]:
        """The oldest waiting chats to the online agents with the fewest chats under
        capacity (ties: idle longest). Never a chat twice, never over capacity."""
        ...

    async def sweep(self) -> SweepResult:
        """Presence that expired, gone agents' chats back to the queue's front, gone
        customers out of the queue, idle chats closed."""
        ...
