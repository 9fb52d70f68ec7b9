"""Picks the bot named by ``settings.BOT_RESPONDER``."""

from __future__ import annotations

import httpx

from infrastructure.config import Settings

from .base import Responder
from .faq import FaqResponder
from .openai_compat import OpenAICompatResponder


def build_responder(settings: Settings, http_client: httpx.AsyncClient) -> Responder:
    """``faq`` (the default, self-contained) or ``openai`` (an OpenAI-compatible
    endpoint at ``OPENAI_BASE_URL``). ``http_client`` is the app's shared client; the
    responder does not close it."""
    if settings.BOT_RESPONDER == "openai":
        return OpenAICompatResponder(
            base_url=settings.OPENAI_BASE_URL,
            api_key=settings.OPENAI_API_KEY,
            model=settings.OPENAI_MODEL,
            http=http_client,
        )
    return FaqResponder(settings.BUSINESS_HOURS)
