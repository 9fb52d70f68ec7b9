"""The workbench's small scheduler: every ``DESK_TICK_SECONDS`` it checks whether an open
window has begun with messages waiting, and tells the agents once per window (a key in
Redis decides which replica does). Agents who sign in later read ``GET /api/left-messages``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from fastapi import FastAPI
from redis.exceptions import RedisError

from infrastructure.bootstrap.sse import SseBus
from infrastructure.bus.waiting import stop_task
from infrastructure.config import Settings

from .inbox import left_messages_of
from .service import announce_opening

logger = logging.getLogger(__name__)


async def _every_tick(bus: SseBus, settings: Settings, source: str) -> None:
    while True:
        # A periodic timer (as the desk's tick), not a wait for a condition.
        await asyncio.sleep(settings.DESK_TICK_SECONDS)
        try:
            await announce_opening(
                bus, settings.BUSINESS_HOURS, left_messages_of(bus), datetime.now(UTC), source
            )
        except (RedisError, OSError) as error:
            logger.warning("hours: the opening notice failed (%r); next tick", error)


@asynccontextmanager
async def opening_notices(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    if settings.BUSINESS_HOURS is None:  # always open: nothing is ever left
        yield
        return
    task = asyncio.create_task(_every_tick(app.state.bus, settings, app.state.service))
    try:
        yield
    finally:
        await stop_task(task)
