"""The workbench service (port 8002): agents see the queue, take over, talk, release."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from infrastructure.config import Settings
from infrastructure.hours.opening import opening_notices
from infrastructure.web.app import create_service_app
from infrastructure.web.fast_path import ServiceApp
from infrastructure.webhooks.worker import delivery_worker
from products.agent_workbench.canned_routes import router as canned_router
from products.agent_workbench.paths import STATIC_DIR
from products.agent_workbench.routes import fast_routes, router
from products.agent_workbench.supervisor_routes import router as supervisor_router


@asynccontextmanager
async def background(app: FastAPI) -> AsyncIterator[None]:
    """The workbench's own work: webhook deliveries, the notice when hours begin."""
    async with delivery_worker(app), opening_notices(app):
        yield


def create_app(settings: Settings | None = None) -> ServiceApp:
    return create_service_app(
        service="agent_workbench",
        title="Agent workbench",
        description="The agents' side: the live queue, takeover, chat, release.",
        routers=[router, canned_router, supervisor_router],
        fast_routes=fast_routes,
        settings=settings,
        static_dir=STATIC_DIR,
        archiver=True,
        extra_lifespan=background,
    )
