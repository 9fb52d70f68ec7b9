"""Checks on what a user sent that depend on settings (so not in the models)."""

from __future__ import annotations

from fastapi import HTTPException

from infrastructure.config import Settings
from infrastructure.web.errors import unprocessable


def check_message_size(settings: Settings, content: str) -> None:
    # Refused whole, never cut: the sender learns the limit and how far over it they are.
    if len(content) > settings.MESSAGE_MAX_CHARS:
        raise HTTPException(
            413,
            f"message too long: {len(content)} characters received, "
            f"at most {settings.MESSAGE_MAX_CHARS} allowed (MESSAGE_MAX_CHARS)",
        )
    if not content.strip():
        raise unprocessable("message is empty", "body", "content")
