"""Customer sessions: create, read (for polling), follow."""

from __future__ import annotations

import secrets

from infrastructure.auth.tokens import Role, issue_token
from infrastructure.bootstrap.sse import SseBus
from infrastructure.config import Settings
from infrastructure.events import Target
from infrastructure.sessions import Session, SessionStore
from infrastructure.web.models import SessionPublic
from infrastructure.webhooks.emit import emit_webhook
from products.ai_chatbot.handlers.manual import SOURCE


async def create_session(
    store: SessionStore,
    settings: Settings,
    session_name: str | None,
    display_name: str | None = None,
) -> tuple[Session, str]:
    """A new session in status ``ai`` and the customer's token for it."""
    name = session_name or f"s-{secrets.token_urlsafe(12)}"
    session = await store.create(name, display_name.strip() or None if display_name else None)
    token = issue_token(settings, Role.CUSTOMER, session.session_name)
    return session, token


async def session_status(store: SessionStore, session_name: str) -> SessionPublic:
    session = await store.get(session_name)
    return SessionPublic.of(session, await store.queue_position(session_name))


async def rate(
    bus: SseBus, store: SessionStore, session_name: str, score: int, comment: str | None
) -> Session:
    """The customer rates a closed chat, once; the agents hear of it."""
    session = await store.rate(session_name, score, comment)
    rating = {
        "session_name": session_name,
        "display_name": session.display_name,
        "score": score,
        "comment": session.rating_comment,
    }
    await bus.publish(Target.broadcast(), "rated", rating, SOURCE)
    await emit_webhook(bus, "rated", session_name, rating)
    return session
