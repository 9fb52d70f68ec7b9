"""The SSE bus as callers see it: one interface, whichever mode is active.

``enqueue_sse_message(target, payload)`` and ``subscribe_sse_events(target)``
are the seed's functions. With ``USE_REDIS_SSE`` (the default) events cross
processes through :mod:`infrastructure.bootstrap.redis_sse`; without it, or
while Redis is unreachable, listeners of this process are still served at once
(the seed's 降级 mode). Callers never know which mode is active.

Everything hangs off one :class:`SseBus` per process, created by the app's
lifespan (:func:`init_sse_bus`); the module functions use it.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from infrastructure.bootstrap.fanout import Event, Listener, LocalHub, envelopes
from infrastructure.bootstrap.history import MemoryHistory, parse_cursor
from infrastructure.config import Settings, get_settings
from infrastructure.events import EventType, Target, build_envelope, dumps

if TYPE_CHECKING:
    from infrastructure.bootstrap.redis_sse import RedisSseManager

#: The seed's switch, read once from the environment through Settings.
USE_REDIS_SSE: bool = get_settings().USE_REDIS_SSE

_ENVELOPE_KEYS = frozenset({"type", "payload", "timestamp", "source"})


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
    """The local hub, the in-memory history, and (in Redis mode) the manager."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        self.stats = BusStats()
        self.hub = LocalHub()
        self.hub.on_written = self.stats.count_event
        self.memory = MemoryHistory(
            self.settings.SSE_HISTORY_LENGTH, self.settings.SSE_HISTORY_TTL_SECONDS
        )
        self.use_redis = self.settings.USE_REDIS_SSE
        self.manager: RedisSseManager | None = None
        self.accepting = True

    async def start(self) -> None:
        if self.use_redis:
            redis_sse = _get_redis_sse_module()
            self.manager = redis_sse.RedisSseManager(self.settings, self.hub)
            await self.manager.connect()
            redis_sse.adopt_manager(self.manager)

    async def stop(self) -> None:
        self.accepting = False
        self.hub.close_all("shutdown")
        if self.manager is not None:
            manager, self.manager = self.manager, None
            await manager.close()
            _get_redis_sse_module().forget_manager(manager)

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
        envelope = build_envelope(event_type, dict(payload), source or self.settings.SERVICE_NAME)
        channel, body = self.channel(target), dumps(envelope)
        if self.manager is not None:
            event = await self.manager.publish(channel, body)
        else:
            event = self._publish_to_memory(channel, body)
        # The type as given: the body is not parsed again to count it.
        self.stats.count_published(envelope["type"])
        return event

    def _publish_to_memory(self, channel: str, body: bytes) -> Event:
        event = self.memory.append(channel, body)
        self.hub.dispatch(event)
        return event

    # --- subscribing ---

    async def open(
        self, targets: Sequence[str | Target], last_event_id: str | None = None
    ) -> Listener:
        """A listener on ``targets``, attached and, with ``last_event_id``, caught up.

        Raises :class:`~infrastructure.bootstrap.history.InvalidCursor` for an id
        this service did not issue.
        """
        channels = [self.channel(t) for t in targets]
        cursor = parse_cursor(last_event_id, len(channels)) if last_event_id else None
        listener = Listener(channels, self.settings.SSE_QUEUE_MAXSIZE, cursor)
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
            from infrastructure.bootstrap.redis_sse import deliver_replay

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


# --- the process-wide bus ---

_bus: SseBus | None = None


def set_sse_bus(bus: SseBus | None) -> None:
    """Make ``bus`` the process's bus (the app's lifespan does, on start and stop)."""
    global _bus
    _bus = bus


async def init_sse_bus(settings: Settings | None = None) -> SseBus:
    global _bus
    if _bus is None:
        _bus = SseBus(settings)
        await _bus.start()
    return _bus


def get_sse_bus() -> SseBus:
    """The process's bus; created (in memory mode until started) on first use."""
    global _bus
    if _bus is None:
        _bus = SseBus()
    return _bus


async def shutdown_sse_bus() -> None:
    global _bus
    bus, _bus = _bus, None
    if bus is not None:
        await bus.stop()


def _get_redis_sse_module() -> Any:
    # Loaded lazily (the seed's 延迟加载): memory mode never imports redis.
    return importlib.import_module("infrastructure.bootstrap.redis_sse")


def _get_redis_sse_manager() -> RedisSseManager | None:
    return get_sse_bus().manager


# --- the seed's functions ---


def _split_payload(
    payload: Mapping[str, Any], event_type: str | None
) -> tuple[str, Any, str | None]:
    """Accept the seed's call ``enqueue_sse_message(name, {"type": ..., "payload": ...})``
    as well as a bare payload with ``event_type=``."""
    if event_type is None and "type" in payload and set(payload) <= _ENVELOPE_KEYS:
        return str(payload["type"]), payload.get("payload", {}), payload.get("source")
    return event_type or EventType.NOTIFICATION, payload, None


async def enqueue_sse_message(
    target: str | Target,
    payload: Mapping[str, Any],
    *,
    event_type: str | None = None,
    source: str | None = None,
) -> str:
    """Publish an event to ``target``; returns its id (``<epoch>.<ms>-<seq>``, or ""
    while it waits in the outbox)."""
    kind, body, given_source = _split_payload(payload, event_type)
    event = await get_sse_bus().publish(target, kind, dict(body), source or given_source)
    return event.token if event.id else ""


async def subscribe_sse_events(
    target: str | Target, last_event_id: str | None = None
) -> AsyncGenerator[dict[str, Any], None]:
    """The envelopes published to ``target`` from now on (or after ``last_event_id``)."""
    # aclosing: closing this generator releases the listener at once, not at the
    # next garbage collection.
    async with contextlib.aclosing(get_sse_bus().subscribe(target, last_event_id)) as events:
        async for envelope in events:
            yield envelope


async def _enqueue_to_memory(target: str | Target, payload: Mapping[str, Any]) -> str:
    bus = get_sse_bus()
    kind, body, source = _split_payload(payload, None)
    envelope = build_envelope(kind, dict(body), source or bus.settings.SERVICE_NAME)
    return bus._publish_to_memory(bus.channel(target), dumps(envelope)).token


async def _subscribe_from_memory(target: str | Target) -> AsyncGenerator[dict[str, Any], None]:
    bus = get_sse_bus()
    listener = Listener([bus.channel(target)], bus.settings.SSE_QUEUE_MAXSIZE)
    bus.hub.add(listener)
    try:
        async with contextlib.aclosing(envelopes(listener)) as events:
            async for envelope in events:
                yield envelope
    finally:
        bus.close(listener)


def get_sse_queues() -> dict[str, list[Listener]]:
    """Channel -> the bounded listener queues of this process."""
    return get_sse_bus().hub.registry()


def get_or_create_sse_queue(target: str | Target) -> Listener:
    """A new listener queue on ``target`` (close it with :func:`remove_sse_queue`)."""
    bus = get_sse_bus()
    listener = Listener([bus.channel(target)], bus.settings.SSE_QUEUE_MAXSIZE)
    bus.hub.add(listener)
    return listener


def remove_sse_queue(target: str | Target) -> int:
    """Close every listener of ``target`` in this process; returns how many."""
    bus = get_sse_bus()
    listeners = bus.hub.listeners(bus.channel(target))
    for listener in listeners:
        bus.close(listener)
    return len(listeners)
