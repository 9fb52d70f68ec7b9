"""What every bot offers, and how a request for a human is recognised."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Final, Protocol

from infrastructure.sessions.models import ChatMessage, Session


class Responder(Protocol):
    # Declared without ``async``: implementations are async generators
    # (``async def reply(...): yield ...``), and calling one returns the iterator
    # itself, not a coroutine. Use it as ``async for delta in responder.reply(...)``.
    def reply(self, session: Session, history: list[ChatMessage], text: str) -> AsyncIterator[str]:
        """The answer to ``text`` as text deltas, in order; joined they are the whole
        answer (a non-streaming bot yields one chunk). ``history`` is the transcript
        before ``text``, oldest first. Never raises for a backend failure: it yields
        an apology instead, so that the customer always gets an answer."""
        ...


# Chinese: any mention of 人工 ("manual/human", as in 转人工, 人工客服, 找人工) is a
# request, except 人工智能 ("artificial intelligence"); 真人 is "a real person". English:
# whole words only, so that "agenda", "humane" or "reagent" never match.
_HUMAN_PATTERNS: Final = (
    re.compile(r"人工(?!智能)"),
    re.compile(r"真人"),
    re.compile(
        r"\b(?:humans?|agents?|real\s+person|live\s+person|representative|operator)\b",
        re.IGNORECASE,
    ),
)


def wants_human(text: str) -> bool:
    """True when the customer asks for a human agent (in Chinese or English)."""
    return any(pattern.search(text) for pattern in _HUMAN_PATTERNS)
