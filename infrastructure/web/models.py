"""Response models shared by both services (they show in OpenAPI)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from infrastructure.sessions import ChatMessage, SenderRole, Session, SessionStatus


class SessionPublic(BaseModel):
    session_name: str
    status: SessionStatus
    agent_id: str | None = None
    created_at: datetime
    updated_at: datetime
    waiting_since: datetime | None = None
    escalation_reason: str | None = None
    #: 1-based place in the waiting queue, while ``waiting_agent``.
    queue_position: int | None = None
    #: Seconds since the customer asked for a human, while ``waiting_agent``.
    waited_seconds: float | None = None
    display_name: str | None = None
    first_message: str | None = None
    #: Customer messages the holding agent has not read yet.
    unread: int = 0
    rating: int | None = None
    rating_comment: str | None = None
    customer_read_up_to: str | None = None
    agent_read_up_to: str | None = None

    @classmethod
    def of(cls, session: Session, position: int | None = None) -> SessionPublic:
        waited = None
        if session.waiting_since is not None and session.status is SessionStatus.WAITING_AGENT:
            waited = max(
                0.0,
                (
                    datetime.now(session.waiting_since.tzinfo) - session.waiting_since
                ).total_seconds(),
            )
        return cls(
            **session.model_dump(),
            queue_position=position if session.status is SessionStatus.WAITING_AGENT else None,
            waited_seconds=waited,
        )


class ReadReceipt(BaseModel):
    model_config = ConfigDict(extra="forbid")
    #: The last message id read (``<ms>-<seq>``, as in the transcript); none: just "read".
    up_to: str | None = Field(default=None, pattern=r"^[0-9]{1,20}-[0-9]{1,20}$")


class TypingSignal(BaseModel):
    model_config = ConfigDict(extra="forbid")
    #: False when the person stopped (sent the message, cleared the box).
    typing: bool = True


class QueuePlace(BaseModel):
    session_name: str
    #: 1-based; null when the session is not waiting.
    position: int | None
    #: What is left of the median of the latest waits; null without data or not waiting.
    estimated_wait_seconds: float | None


class MessagePublic(BaseModel):
    id: str
    session_name: str
    sender: SenderRole
    sender_id: str | None = None
    content: str
    timestamp: datetime

    @classmethod
    def of(cls, message: ChatMessage) -> MessagePublic:
        return cls(**message.model_dump())


class EventAccepted(BaseModel):
    #: The event's position (``<epoch>.<ms>-<seq>``); empty while it waits for Redis.
    id: str
    channel: str


class Readiness(BaseModel):
    ready: bool
    mode: str = Field(description="redis | redis-degraded | memory")
    redis: str
    store: str
    outbox: int
    #: Where the bus's Redis is (Redis mode): kind, primary, replicas, required acks,
    #: failovers seen, seconds since the subscription last delivered.
    topology: dict[str, Any] | None = None
    warnings: list[str] = Field(default_factory=list)
    reasons: list[str] = Field(default_factory=list)
