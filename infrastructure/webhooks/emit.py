"""The producers' side: ``await emit_webhook(bus, "closed", session_name, data)``, called by
the use cases right where they publish the same event on the bus.

The process's :class:`WebhookOutbox` is built with its bus (``SseBus(webhooks=...)``, by the
composition root, for a service in Redis mode with ``WEBHOOKS`` set): the events that reach
browsers and the ones that reach hooks leave from the same object, so a use case that has the
bus needs nothing more. With no hook asking for the event type, nothing is written: ``message``
costs nothing unless a hook wants it.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from infrastructure.config import Settings

from .models import WebhookConfig
from .queue import WebhookQueue

if TYPE_CHECKING:
    from infrastructure.bus.api import SseBus

logger = logging.getLogger(__name__)


class WebhookOutbox:
    def __init__(self, queue: WebhookQueue, hooks: list[WebhookConfig]) -> None:
        self.queue = queue
        self.hooks = hooks
        self.enqueue_failures = 0

    def hooks_for(self, event_type: str) -> list[str]:
        return [h.hook_id for h in self.hooks if h.wants(event_type)]

    async def enqueue(self, event_type: str, session_name: str, data: Mapping[str, Any]) -> None:
        hooks = self.hooks_for(event_type)
        if not hooks:
            return
        event_id = "evt_" + secrets.token_hex(12)
        body = orjson.dumps(
            {
                "id": event_id,
                "type": event_type,
                "created": int(time.time()),
                "session_name": session_name,
                "data": dict(data),
            }
        )
        try:
            await self.queue.enqueue(hooks, session_name, event_type, event_id, body)
        except (RedisError, OSError) as error:
            # The change itself is done and published; failing the request now would only
            # hide that. Logged and counted for the operator.
            self.enqueue_failures += 1
            logger.error("webhooks: %s of %s not queued (%r)", event_type, session_name, error)


def build_outbox(redis: aioredis.Redis, settings: Settings) -> WebhookOutbox | None:
    """The outbox of a process whose settings configure hooks (none: ``None``)."""
    if not settings.WEBHOOKS:
        return None
    return WebhookOutbox(WebhookQueue(redis, settings), list(settings.WEBHOOKS))


async def emit_webhook(
    bus: SseBus, event_type: str, session_name: str, data: Mapping[str, Any]
) -> None:
    """Queue ``event_type`` of ``session_name`` for every hook that wants it (none: no-op)."""
    if bus.webhooks is not None:
        await bus.webhooks.enqueue(event_type, session_name, data)
