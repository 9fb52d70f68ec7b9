"""The desk's vocabulary: agent presence, what the sweep and the assignment change."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal


class AgentStatus(StrEnum):
    ONLINE = "online"
    AWAY = "away"
    OFFLINE = "offline"


#: Whose streams count for presence: an agent's (its id) or a customer's (its session).
PresenceKind = Literal["agent", "customer"]


@dataclass(frozen=True, slots=True)
class PresenceChange:
    """What others see of an agent changed (it came online, went away, is gone)."""

    agent_id: str
    status: AgentStatus


@dataclass(frozen=True, slots=True)
class AgentPresence:
    agent_id: str
    status: AgentStatus
    chats: int
    capacity: int


@dataclass(frozen=True, slots=True)
class Assignment:
    session_name: str
    agent_id: str


@dataclass(frozen=True, slots=True)
class SweepResult:
    """What one sweep did (each list in the order it happened)."""

    presence: list[PresenceChange]
    #: (session, the agent who was gone): back at the front of the queue.
    returned: list[Assignment]
    abandoned: list[str]
    #: (session, its holder): closed after ``SESSION_IDLE_CLOSE_SECONDS`` without a message.
    idle_closed: list[Assignment]

    @property
    def queue_moved(self) -> bool:
        return bool(self.returned or self.abandoned)
