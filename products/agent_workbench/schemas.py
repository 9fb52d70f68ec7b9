"""Request and response bodies of the workbench service, named by role."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

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
