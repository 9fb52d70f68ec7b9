"""The SSE bus as callers see it: one interface, whichever mode is active.

:class:`SseBus` publishes and opens listeners. With ``USE_REDIS_SSE`` (the default)
events cross processes through :mod:`infrastructure.bus.redis.manager`; without it,
listeners of this process are served from memory (the seed's 降级 mode), with an
in-memory history for resume. Callers never know which mode is active.

One bus per process, built by the composition root (:mod:`infrastructure.container`).
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from infrastructure.bus.cursor import parse_cursor
from infrastructure.bus.event import Event
from infrastructure.bus.history import MemoryHistory, deliver_replay
from infrastructure.bus.hub import LocalHub
from infrastructure.bus.listener import Listener, envelopes
from infrastructure.config import Settings, get_settings
from infrastructure.events import Target, build_envelope, dumps

if TYPE_CHECKING:
    from infrastructure.bus.redis.manager import RedisSseManager
    from infrastructure.webhooks.emit import WebhookOutbox


class BusStats:
    """Plain counters on the hot path; :mod:`infrastructure.metrics` reads them at
    scrape time, so no Prometheus call is made per event."""

    __slots__ = ("delivered", "open_streams", "published")

    def __init__(self) -> None:
        self.open_streams = 0
        self.published: dict[str, int] = {}
        self.delivered: dict[str, int] = {}

    def count_published(self, event_type: str) -> None:
        self.published[event_type] = self.published.get(event_type, 0) + 1

    def count_delivered(self, batch: Sequence[Event | bytes]) -> None:
        for item in batch:
            if isinstance(item, Event):
                self.count_event(item)

    def count_event(self, event: Event, listeners: int = 1) -> None:
        """``event`` written to ``listeners`` streams."""
        if not event.id_only:  # a position marker, not an event
            kind = event.type
            self.delivered[kind] = self.delivered.get(kind, 0) + listeners


class SseBus:
    """The local hub, the in-memory history, and (in Redis mode) the manager.

    ``redis``: the Redis side, as the composition root built it (with ``stats`` as
    its hub's delivery counter). Without it, ``USE_REDIS_SSE`` decides: a manager on
    clients of its own, or memory mode. The manager serves from :meth:`start` on.
    ``webhooks``: the process's webhook outbox, if any (the use cases' hook events
    leave with their bus events).
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        redis: RedisSseManager | None = None,
        stats: BusStats | None = None,
        webhooks: WebhookOutbox | None = None,
    ) -> None:
        self.settings = settings = settings or get_settings()
        self.stats = stats or BusStats()
        if redis is None and settings.USE_REDIS_SSE:
            # Loaded lazily (the seed's 延迟加载): memory mode never imports redis.
            module = importlib.import_module("infrastructure.bus.redis.manager")
            redis = module.RedisSseManager(settings, counter=self.stats)
        self._redis = redis
        self.hub = redis.hub if redis is not None else LocalHub(counter=self.stats)
        self.memory = MemoryHistory(settings.SSE_HISTORY_LENGTH, settings.SSE_HISTORY_TTL_SECONDS)
        self.use_redis = redis is not None
        #: The Redis side once started (None in memory mode, and before ``start``).
        self.manager: RedisSseManager | None = None
        self.accepting = True
        #: Where the use cases' webhook events go (see ``infrastructure/webhooks/emit.py``).
        self.webhooks = webhooks

    async def start(self) -> None:
        if self._redis is not None:
            self.manager = self._redis
            await self.manager.connect()

    async def stop(self) -> None:
        self.accepting = False
        self.hub.close_all("shutdown")
        if self.manager is not None:
            manager, self.manager = self.manager, None
            await manager.close()

    @property
    def mode(self) -> str:
        """``redis``; ``redis-degraded`` while Redis is unreachable (local delivery and
        the outbox); ``memory`` with ``USE_REDIS_SSE=false``."""
        if self.manager is None:
            return "memory"
        return "redis" if self.manager.connected else "redis-degraded"

    def channel(self, target: str | Target) -> str:
        return Target.parse(target).channel(self.settings.REDIS_SSE_CHANNEL_PREFIX)

    # --- publishing ---

    async def publish(
        self,
        target: str | Target,
        event_type: str,
        payload: Mapping[str, Any],
        source: str | None = None,
    ) -> Event:
        channel, body = self._encode(target, event_type, payload, source)
        if self.manager is not None:
            event = await self.manager.publish(channel, body)
        else:
            event = self.publish_to_memory(channel, body)
        return event

    async def publish_ephemeral(
        self,
        target: str | Target,
        event_type: str,
        payload: Mapping[str, Any],
        source: str | None = None,
    ) -> None:
        """An event for whoever listens now, never kept: no history entry and no id, so a
        reconnect does not replay it and nothing archives it (typing indicators)."""
        channel, body = self._encode(target, event_type, payload, source)
        if self.manager is not None:
            await self.manager.publish_ephemeral(channel, body)
        else:
            self.hub.dispatch(Event(channel, "", "", body))

    def _encode(
        self,
        target: str | Target,
        event_type: str,
        payload: Mapping[str, Any],
        source: str | None,
    ) -> tuple[str, bytes]:
        """The channel and the envelope's bytes; counts the event as published (by the
        type as given: the body is not parsed again to count it)."""
        channel = self.channel(target)
        envelope = build_envelope(event_type, dict(payload), source or self.settings.SERVICE_NAME)
        body = dumps(envelope)
        self.stats.count_published(envelope["type"])
        return channel, body

    def publish_to_memory(self, channel: str, body: bytes) -> Event:
        event = self.memory.append(channel, body)
        self.hub.dispatch(event)
        return event

    # --- subscribing ---

    async def open(
        self, targets: Sequence[str | Target], last_event_id: str | None = None
    ) -> Listener:
        """A listener on ``targets``, attached and, with ``last_event_id``, caught up.

        Raises :class:`~infrastructure.bus.cursor.InvalidCursor` for an id
        this service did not issue.
        """
        channels = [self.channel(t) for t in targets]
        cursor = parse_cursor(last_event_id, len(channels)) if last_event_id else None
        listener = Listener(channels, self.settings.SSE_QUEUE_MAXSIZE, cursor, self.hub)
        if self.manager is not None:
            await self.manager.attach(listener, cursor)
            return listener
        self.hub.add(listener)
        if cursor is None:
            for index, channel in enumerate(channels):
                position = self.memory.position(channel)
                if position is not None:
                    listener.start_at(index, *position)
        else:
            for channel, (epoch, event_id) in zip(channels, cursor, strict=True):
                deliver_replay(listener, channel, self.memory.after(channel, epoch, event_id))
        return listener

    def close(self, listener: Listener) -> None:
        listener.close("done")
        self.hub.remove(listener)

    async def subscribe(
        self, target: str | Target, last_event_id: str | None = None
    ) -> AsyncGenerator[dict[str, Any], None]:
        listener = await self.open([target], last_event_id)
        try:
            async with contextlib.aclosing(envelopes(listener)) as events:
                async for envelope in events:
                    yield envelope
        finally:
            self.close(listener)
