"""Request and response bodies of the workbench service, named by role."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from infrastructure.desk.models import AgentStatus
from infrastructure.events import NAME_PATTERN


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AgentLogin(_Strict):
    agent_id: str = Field(pattern=NAME_PATTERN)
    password: str = Field(min_length=1, max_length=1024)


class AgentToken(BaseModel):
    agent_id: str
    #: ``Authorization: Bearer`` for the API; the page's streams use the cookie set too.
    token: str


class AgentAction(_Strict):
    agent_id: str = Field(pattern=NAME_PATTERN)


class AgentMessageCreate(_Strict):
    agent_id: str = Field(pattern=NAME_PATTERN)
    content: str = Field(min_length=1)


class AgentStatusUpdate(_Strict):
    #: ``online`` (takes chats), ``away`` (keeps its chats, gets no new ones), ``offline``.
    status: AgentStatus


class AgentLogout(_Strict):
    #: True (the default): the chats this agent holds go back to the front of the queue;
    #: false: the agent keeps them (it comes back within ``AGENT_OFFLINE_GRACE_SECONDS``).
    hand_back: bool = True


class AgentPublic(BaseModel):
    agent_id: str
    status: AgentStatus
    chats: int
    capacity: int


class LogoutResult(BaseModel):
    #: The sessions handed back to the queue.
    handed_back: list[str]


class WebhookHookStatus(BaseModel):
    id: str
    url: str
    events: list[str]
    delivered: int
    failures: int
    gave_up: int
    #: Failed attempts since the last success: 0 when the hook is healthy.
    consecutive_failures: int
    healthy: bool
    last_status: str | None
    last_error: str | None
    last_attempt_at: datetime | None
    last_success_at: datetime | None


class WebhookStatus(BaseModel):
    #: Deliveries waiting (all hooks, all replicas).
    backlog: int
    hooks: list[WebhookHookStatus]
