"""The session store: who is talking to whom, in which state, and what was said.

Import the implementation you need from its module (``memory`` or ``redis_store``);
this package exports the vocabulary every caller shares.
"""

from __future__ import annotations

from .models import (
    ALLOWED_TRANSITIONS,
    AlreadyRated,
    ChatMessage,
    IllegalTransition,
    NotClosed,
    NotHolder,
    SenderRole,
    Session,
    SessionClosed,
    SessionConflict,
    SessionError,
    SessionExists,
    SessionHeldByAnother,
    SessionNotFound,
    SessionStatus,
    can_transition,
)
from .store import SessionStore

__all__ = [
    "ALLOWED_TRANSITIONS",
    "AlreadyRated",
    "ChatMessage",
    "IllegalTransition",
    "NotClosed",
    "NotHolder",
    "SenderRole",
    "Session",
    "SessionClosed",
    "SessionConflict",
    "SessionError",
    "SessionExists",
    "SessionHeldByAnother",
    "SessionNotFound",
    "SessionStatus",
    "SessionStore",
    "can_transition",
]
