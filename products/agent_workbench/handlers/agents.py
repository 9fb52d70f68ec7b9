"""Agent login: a password checked against the configured accounts, a token back."""

from __future__ import annotations

from infrastructure.auth.passwords import authenticate_agent
from infrastructure.auth.tokens import Role, issue_token
from infrastructure.config import Settings


class LoginFailed(Exception):
    pass


async def login(settings: Settings, agent_id: str, password: str) -> str:
    if not await authenticate_agent(settings, agent_id, password):
        raise LoginFailed("unknown agent or wrong password")
    return issue_token(settings, Role.AGENT, agent_id)
