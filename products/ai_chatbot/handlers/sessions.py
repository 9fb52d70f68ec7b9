"""Customer sessions: create, read (for polling), follow."""

from __future__ import annotations

import secrets

from infrastructure.auth.tokens import Role, issue_token
from infrastructure.config import Settings
from infrastructure.sessions import Session, SessionStore
from infrastructure.web.models import SessionPublic


async def create_session(
    store: SessionStore, settings: Settings, session_name: str | None
) -> tuple[Session, str]:
    """A new session in status ``ai`` and the customer's token for it."""
    session = await store.create(session_name or f"s-{secrets.token_urlsafe(12)}")
    token = issue_token(settings, Role.CUSTOMER, session.session_name)
    return session, token


async def session_status(store: SessionStore, session_name: str) -> SessionPublic:
    session = await store.get(session_name)
    return SessionPublic.of(session, await store.queue_position(session_name))
