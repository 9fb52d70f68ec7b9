"""Request and response bodies of the chatbot service, named by role."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from infrastructure.events import NAME_PATTERN
from infrastructure.sessions import SessionStatus
from infrastructure.web.models import MessagePublic, SessionPublic

_NAME_DOC = "^[A-Za-z0-9_-]{1,64}$"
SessionNameField = Field(pattern=NAME_PATTERN, description=_NAME_DOC)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SessionCreate(_Strict):
    #: Chosen by the caller, or generated.
    session_name: str | None = Field(default=None, pattern=NAME_PATTERN, description=_NAME_DOC)
    #: What agents call the customer (optional): shown in the queue and in notices.
    display_name: str | None = Field(default=None, min_length=1, max_length=64)


class SessionCreated(BaseModel):
    session_name: str
    status: SessionStatus
    #: The customer's token for this session: ``Authorization: Bearer`` or ``?token=``.
    token: str


class MessageCreate(_Strict):
    content: str = Field(min_length=1)


class CustomerMessageAccepted(BaseModel):
    message: MessagePublic
    status: SessionStatus
    reply: MessagePublic | None = None
    escalated: bool = False


class EscalateRequest(_Strict):
    session_name: str = SessionNameField
    reason: str | None = Field(default=None, max_length=500)


class ManualMessage(_Strict):
    session_name: str = SessionNameField
    content: str = Field(min_length=1)


class CallbackRequest(_Strict):
    session_name: str = SessionNameField
    status: SessionStatus
    agent_id: str | None = Field(default=None, pattern=NAME_PATTERN)


__all__ = [
    "CallbackRequest",
    "CustomerMessageAccepted",
    "EscalateRequest",
    "ManualMessage",
    "MessageCreate",
    "SessionCreate",
    "SessionCreated",
    "SessionPublic",
]


class RatingCreate(_Strict):
    score: int = Field(ge=1, le=5, description="1 (poor) to 5 (excellent)")
    comment: str | None = Field(default=None, max_length=2000)


class LeaveMessage(_Strict):
    """Out of hours: what the customer leaves for the agents."""

    name: str = Field(min_length=1, max_length=100)
    contact: str = Field(min_length=1, max_length=200, description="an email or phone number")
    text: str = Field(min_length=1)
