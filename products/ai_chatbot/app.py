"""The chatbot service (port 8000): customers talk to the bot, and ask for a human."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from infrastructure.config import Settings, get_settings
from infrastructure.web.app import create_service_app
from infrastructure.web.fast_path import ServiceApp
from products.ai_chatbot.paths import STATIC_DIR
from products.ai_chatbot.responders.factory import build_responder
from products.ai_chatbot.routes import router


def create_app(settings: Settings | None = None) -> ServiceApp:
    settings = settings or get_settings()

    @asynccontextmanager
    async def bot(app: FastAPI) -> AsyncIterator[None]:
        async with httpx.AsyncClient(timeout=30.0) as http:
            app.state.responder = build_responder(settings, http)
            yield

    return create_service_app(
        service="ai_chatbot",
        title="AI chatbot",
        description="The customer side: chat with the bot, ask for a human (转人工).",
        routers=[router],
        settings=settings,
        static_dir=STATIC_DIR,
        extra_lifespan=bot,
    )
