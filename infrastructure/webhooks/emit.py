"""The producers' side: ``await emit_webhook(bus, "closed", session_name, data)``, called by
the use cases right where they publish the same event on the bus.

The process's :class:`WebhookOutbox` hangs off its bus (both services register one at start
when ``WEBHOOKS`` is set), so a use case that has the bus needs nothing more. With no hook
asking for the event type, nothing is written: ``message`` costs nothing unless a hook wants it.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any
from weakref import WeakKeyDictionary

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from infrastructure.config import Settings

from .models import WebhookConfig
from .queue import WebhookQueue

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


_outboxes: WeakKeyDictionary[object, WebhookOutbox] = WeakKeyDictionary()


def attach_webhooks(
    bus: object, redis: aioredis.Redis | None, settings: Settings
) -> Callable[[], None]:
    """Give ``bus``'s process an outbox when hooks are configured; returns how to detach it."""
    if not settings.WEBHOOKS or redis is None:
        return lambda: None
    _outboxes[bus] = WebhookOutbox(WebhookQueue(redis, settings), list(settings.WEBHOOKS))

    def detach() -> None:
        _outboxes.pop(bus, None)

    return detach


def outbox_of(bus: object) -> WebhookOutbox | None:
    return _outboxes.get(bus)


async def emit_webhook(
    bus: object, event_type: str, session_name: str, data: Mapping[str, Any]
) -> None:
    """Queue ``event_type`` of ``session_name`` for every hook that wants it (none: no-op)."""
    outbox = _outboxes.get(bus)
    if outbox is not None:
        await outbox.enqueue(event_type, session_name, data)
