"""Agent login: a password checked against the configured accounts, a token back."""

from __future__ import annotations

from infrastructure.auth.passwords import authenticate_agent
from infrastructure.auth.tokens import SUPERVISOR_SCOPE, Role, issue_token
from infrastructure.config import Settings


class LoginFailed(Exception):
    pass


def roles_of(settings: Settings, agent_id: str) -> list[str]:
    """An agent's extra roles: ``supervisor`` when ``SUPERVISORS`` lists it."""
    return [SUPERVISOR_SCOPE] if agent_id in settings.SUPERVISORS else []


async def login(settings: Settings, agent_id: str, password: str) -> str:
    """A token for the agent, carrying its roles as scopes."""
    if not await authenticate_agent(settings, agent_id, password):
        raise LoginFailed("unknown agent or wrong password")
    return issue_token(settings, Role.AGENT, agent_id, scopes=roles_of(settings, agent_id))
