"""Response models of the record's endpoints (they show in OpenAPI)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from infrastructure.attachments.models import Attachment
from infrastructure.sessions.models import ms_to_datetime


def _at(ms: int | None) -> datetime | None:
    return None if ms is None else ms_to_datetime(ms)


class ConversationSummary(BaseModel):
    session_name: str
    created_at: datetime
    #: The latest change of the conversation: the list is sorted by it, newest first.
    last_at: datetime
    status: str
    agent_id: str | None = None
    message_count: int
    rating_score: int | None = None
    #: The first message that matched ``q``, around the match.
    snippet: str | None = None

    @classmethod
    def of(cls, row: dict[str, Any]) -> ConversationSummary:
        return cls(**{**row, "created_at": _at(row["created_at"]), "last_at": _at(row["last_at"])})


class ConversationPage(BaseModel):
    items: list[ConversationSummary]
    #: Pass as ``cursor`` for the next (older) page; null on the last page.
    next_cursor: str | None = None


class RecordedMessage(BaseModel):
    id: str
    session_name: str
    sender: str
    sender_id: str | None = None
    content: str
    timestamp: datetime
    attachment: Attachment | None = None


class StatusChange(BaseModel):
    at: datetime
    status: str
    previous: str | None = None
    agent_id: str | None = None
    reason: str | None = None


class Transcript(ConversationSummary):
    rating_comment: str | None = None
    rated_at: datetime | None = None
    messages: list[RecordedMessage]
    status_history: list[StatusChange]

    @classmethod
    def of(cls, row: dict[str, Any]) -> Transcript:
        return cls(
            **{
                **row,
                "created_at": _at(row["created_at"]),
                "last_at": _at(row["last_at"]),
                "rated_at": _at(row["rated_at"]),
                "messages": [
                    RecordedMessage(**{**m, "timestamp": _at(m["ts"])}) for m in row["messages"]
                ],
                "status_history": [
                    StatusChange(**{**c, "at": _at(c["ts"])}) for c in row["status_history"]
                ],
            }
        )


class ReportFigures(BaseModel):
    conversations: int
    escalations: int
    abandoned: int
    wait_median_seconds: float | None = None
    wait_p90_seconds: float | None = None
    handle_median_seconds: float | None = None
    rating_average: float | None = None
    rating_count: int


class AgentFigures(ReportFigures):
    agent_id: str


class DayFigures(BaseModel):
    date: str
    conversations: int
    escalations: int
    abandoned: int


class ReportSummary(BaseModel):
    from_: datetime = Field(alias="from")
    to: datetime
    total: ReportFigures
    agents: list[AgentFigures]
    days: list[DayFigures]

    model_config = {"populate_by_name": True}

    @classmethod
    def of(cls, row: dict[str, Any]) -> ReportSummary:
        return cls.model_validate({**row, "from": _at(row["from"]), "to": _at(row["to"])})


class CustomerExport(BaseModel):
    customer_id: str
    #: What the record (SQL) holds; null when it has nothing.
    record: Transcript | None = None
    #: What Redis still holds (the live session and its transcript); null when nothing.
    live: dict[str, Any] | None = None


class CustomerErased(BaseModel):
    customer_id: str
    record: bool = Field(description="the record (SQL) had data of this customer")
    live: bool = Field(description="Redis had data of this customer")
    files: int = Field(default=0, description="attachments of this customer's chat deleted")
