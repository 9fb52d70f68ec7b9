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
    #: ``["supervisor"]`` for an agent listed in ``SUPERVISORS`` (the token carries it).
    roles: list[str] = Field(default_factory=list)


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
    #: Listed in ``SUPERVISORS`` (the team sees who can watch and take over its chats).
    supervisor: bool = False


class LogoutResult(BaseModel):
    #: The sessions handed back to the queue.
    handed_back: list[str]


class TransferRequest(_Strict):
    #: The colleague who takes the chat (online, under capacity); none: back to the queue.
    to_agent_id: str | None = Field(default=None, pattern=NAME_PATTERN)
    #: What the colleague should know (shown to agents only).
    note: str | None = Field(default=None, max_length=1000)


#: What follows ``/`` in the reply box.
SHORTCUT_PATTERN = r"^[a-z0-9_-]{1,32}$"


class CannedReplyCreate(_Strict):
    shortcut: str = Field(pattern=SHORTCUT_PATTERN, description="lower-case letters, digits, _ -")
    #: ``{customer_name}`` and ``{agent_name}`` are filled in when it is inserted.
    content: str = Field(min_length=1, max_length=4000)


class CannedReplyPublic(BaseModel):
    id: int
    shortcut: str
    content: str
    created_by: str
    updated_at: int


class NoteCreate(_Strict):
    content: str = Field(min_length=1, max_length=4000)


class NotePublic(BaseModel):
    id: str
    session_name: str
    agent_id: str
    content: str
    timestamp: datetime


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


class TakeOverRequest(_Strict):
    #: The agent the supervisor saw holding the chat: refused (409) if it moved meanwhile.
    expected_holder: str | None = Field(default=None, pattern=NAME_PATTERN)


class SupervisedAgent(BaseModel):
    agent_id: str
    status: AgentStatus
    chats: int
    capacity: int
    supervisor: bool


class ActiveChat(BaseModel):
    session_name: str
    status: str
    agent_id: str | None
    display_name: str | None = None
    first_message: str | None = None
    unread: int = 0
    last_activity_at: datetime | None = None


class WaitingChat(BaseModel):
    session_name: str
    queue_position: int | None
    waiting_since: datetime | None
    waited_seconds: float | None
    display_name: str | None = None
    first_message: str | None = None
    escalation_reason: str | None = None


class SupervisorOverview(BaseModel):
    #: When the snapshot was taken (waits are counted from then on by the page).
    at: datetime
    agents: list[SupervisedAgent]
    queue: list[WaitingChat]
    chats: list[ActiveChat]
